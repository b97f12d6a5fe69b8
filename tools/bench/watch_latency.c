/*
 * watch_latency.c - the measuring half of tools/bench/watch (built by that
 * script with cc; libc and common/monoclock.h only).
 *
 * Starts capvaultd with its log on a pipe, waits for "started:", then
 * renames the files of STAGE into INBOX and times each until the daemon's
 * "imported <path>: capture <id>" line arrives. The daemon writes that
 * line after import_file returned, i.e. after the catalog batch is
 * committed, so the capture is queryable by then: the line's arrival is
 * an upper bound of drop-to-queryable (the pipe adds microseconds). In
 * "one" mode each import is then confirmed over the API's unix socket
 * (GET /v1/captures/<id> must answer 200), and that time is reported
 * too, so the bound is checked rather than assumed.
 *
 * usage: watch_latency CAPVAULTD CONFIG SOCKET STAGE INBOX one|burst [GAP_MS]
 *   one:   one file at a time (the next once the previous is imported,
 *          plus GAP_MS, default 0); prints p50/p90/p99/max, ms.
 *   burst: every file renamed in as fast as possible; prints files/s
 *          from the first rename to the last import line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monoclock.h"
#define WAIT_MS 120000

static pid_t daemon_pid;
static int log_fd = -1;
static int stopping; /* end of the log is expected */
static char lbuf[1 << 16];
static size_t llen;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	exit(1);
}

static void start_daemon(const char *bin, const char *config)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	daemon_pid = fork();
	if (daemon_pid < 0)
		die("fork: %s", strerror(errno));
	if (daemon_pid == 0) {
		dup2(p[1], 2);
		execl(bin, bin, "--config", config, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	log_fd = p[0];
}

/* Next log line (NUL-terminated, without '\n') into out, or NULL after
 * timeout_ms (or at the end of the log once stopping). */
static const char *next_line(char *out, size_t size, int timeout_ms)
{
	double end = mono_ms_f() + timeout_ms;
	for (;;) {
		char *nl = memchr(lbuf, '\n', llen);
		if (nl) {
			size_t n = (size_t)(nl - lbuf);
			snprintf(out, size, "%.*s", (int)n, lbuf);
			memmove(lbuf, nl + 1, llen - n - 1);
			llen -= n + 1;
			return out;
		}
		int left = (int)(end - mono_ms_f());
		if (left <= 0)
			return NULL;
		struct pollfd pfd = { .fd = log_fd, .events = POLLIN };
		if (poll(&pfd, 1, left) <= 0)
			continue;
		if (llen == sizeof(lbuf))
			llen = 0; /* an absurd line: drop it */
		ssize_t r = read(log_fd, lbuf + llen, sizeof(lbuf) - llen);
		if (r <= 0 && stopping)
			return NULL;
		if (r <= 0)
			die("capvaultd exited");
		llen += (size_t)r;
	}
}

/* Waits for a line containing needle; returns it. */
static const char *wait_line(const char *needle, char *out, size_t size)
{
	while (next_line(out, size, WAIT_MS)) {
		if (strstr(out, needle))
			return out;
		if (strstr(out, "failed ") || strstr(out, "retrying "))
			die("capvaultd: %s", out);
	}
	die("timed out waiting for '%s'", needle);
	return NULL;
}

/* GET path over the unix socket; returns the HTTP status. */
static int api_get(const char *sock, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("%s: %s", sock, strerror(errno));
	char req[512], resp[256];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
			 path);
	if (write(fd, req, (size_t)n) != n)
		die("write: %s", strerror(errno));
	ssize_t r = read(fd, resp, sizeof(resp) - 1);
	close(fd);
	int status = 0;
	if (r > 0) {
		resp[r] = '\0';
		sscanf(resp, "HTTP/1.%*d %d", &status);
	}
	return status;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void print_stats(const char *what, double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("%-34s n=%zu p50=%.1f p90=%.1f p99=%.1f max=%.1f ms\n", what, n, pct(v, n, 50),
	       pct(v, n, 90), pct(v, n, 99), v[n - 1]);
}

static char **list_stage(const char *stage, size_t *n)
{
	struct dirent **ents = NULL;
	int k = scandir(stage, &ents, NULL, alphasort);
	if (k < 0)
		die("%s: %s", stage, strerror(errno));
	char **names = calloc((size_t)k + 1, sizeof(*names));
	*n = 0;
	for (int i = 0; i < k; i++) {
		if (ents[i]->d_name[0] != '.')
			names[(*n)++] = strdup(ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	return names;
}

static void move_in(const char *stage, const char *inbox, const char *name)
{
	char src[4096], dst[4096];
	snprintf(src, sizeof(src), "%s/%s", stage, name);
	snprintf(dst, sizeof(dst), "%s/%s", inbox, name);
	if (rename(src, dst) < 0)
		die("rename %s: %s", src, strerror(errno));
}

static void one_by_one(const char *sock, const char *stage, const char *inbox, int gap_ms)
{
	size_t n;
	char **names = list_stage(stage, &n);
	double *lat = calloc(n + 1, sizeof(*lat)), *conf = calloc(n + 1, sizeof(*conf));
	char line[8192], needle[4200], path[64];
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		snprintf(needle, sizeof(needle), "imported %s/%s: capture ", inbox, names[i]);
		double t0 = mono_ms_f();
		move_in(stage, inbox, names[i]);
		wait_line(needle, line, sizeof(line));
		lat[i] = mono_ms_f() - t0;
		unsigned long long id = strtoull(strstr(line, needle) + strlen(needle), NULL, 10);
		snprintf(path, sizeof(path), "/v1/captures/%llu", id);
		bad += api_get(sock, path) != 200;
		conf[i] = mono_ms_f() - t0;
		if (gap_ms)
			usleep((useconds_t)gap_ms * 1000);
	}
	print_stats("rename -> import logged", lat, n);
	print_stats("rename -> confirmed by GET (API)", conf, n);
	printf("captures not found by the API right after their log line: %zu\n", bad);
	if (bad)
		exit(1);
}

static void burst(const char *stage, const char *inbox)
{
	size_t n, got = 0;
	char **names = list_stage(stage, &n);
	char line[8192], needle[4200];
	snprintf(needle, sizeof(needle), "imported %s/", inbox);
	double t0 = mono_ms_f();
	for (size_t i = 0; i < n; i++)
		move_in(stage, inbox, names[i]);
	double t_moved = mono_ms_f();
	while (got < n)
		if (wait_line(needle, line, sizeof(line)))
			got++;
	double t = mono_ms_f() - t0;
	printf("burst of %zu files: renamed in %.0f ms, all imported in %.0f ms: %.0f files/s\n", n,
	       t_moved - t0, t, (double)n / (t / 1e3));
}

int main(int argc, char **argv)
{
	if (argc < 7)
		die("usage: watch_latency CAPVAULTD CONFIG SOCKET STAGE INBOX one|burst [GAP_MS]");
	char line[8192];
	start_daemon(argv[1], argv[2]);
	wait_line("started:", line, sizeof(line));
	if (!strcmp(argv[6], "one"))
		one_by_one(argv[3], argv[4], argv[5], argc > 7 ? atoi(argv[7]) : 0);
	else
		burst(argv[4], argv[5]);
	stopping = 1;
	kill(daemon_pid, SIGTERM);
	while (next_line(line, sizeof(line), WAIT_MS))
		;
	int st = 0;
	waitpid(daemon_pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
