/*
 * test_sdnotify.c - systemd's notification protocol (tools/sdnotify.c)
 * against a fake NOTIFY_SOCKET: a unix datagram socket this test binds,
 * as a path and as an abstract name, reading back what was sent.
 *
 * With $CAPVAULTD set it also runs the daemon under the fake socket and
 * proves the service contract: READY=1 comes only once the daemon has
 * logged "started:" (store open, folders watched) and its API answers on
 * the unix socket, WATCHDOG=1 pings and a
 * STATUS= line follow, SIGHUP gives RELOADING=1 then READY=1, SIGTERM
 * gives STOPPING=1 and exit code 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "monoclock.h"
#include "sdnotify.h"

/* Generous: the daemon may run under ASan on a loaded machine. */
#define DEADLINE_MS 30000

struct fake {
	int fd;
	char dir[64];
	char name[128]; /* the NOTIFY_SOCKET value */
};

/* Binds the fake systemd socket: a path in a fresh folder, or an
 * abstract name unique to this process. */
static void fake_bind(struct fake *f, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;

	snprintf(f->dir, sizeof(f->dir), "/tmp/capvault-sdnotify.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (abstract)
		snprintf(f->name, sizeof(f->name), "@capvault-test-%d-%llu", (int)getpid(),
			 (unsigned long long)mono_ms());
	else
		snprintf(f->name, sizeof(f->name), "%s/notify", f->dir);
	size_t n = strlen(f->name);
	memcpy(sa.sun_path, f->name, n);
	if (abstract) {
		sa.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		len = (socklen_t)sizeof(sa);
	}
	f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, len), 0);
}

static void fake_close(struct fake *f)
{
	char path[256];
	close(f->fd);
	snprintf(path, sizeof(path), "%s/notify", f->dir);
	unlink(path);
	rmdir(f->dir);
}

/* Receives one message into buf; returns its length, or -1 on timeout. */
static ssize_t fake_recv(struct fake *f, char *buf, size_t size, int timeout_ms)
{
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	if (poll(&p, 1, timeout_ms) <= 0)
		return -1;
	ssize_t n = recv(f->fd, buf, size - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	return n;
}

static void expect_msg(struct fake *f, const char *want)
{
	char buf[4096];
	assert_true(fake_recv(f, buf, sizeof(buf), 2000) >= 0);
	assert_string_equal(buf, want);
}

static void clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void test_not_under_systemd(void **state)
{
	struct sdnotify *n = NULL;
	(void)state;
	clear_env();
	assert_int_equal(sdnotify_new(&n), 0);
	assert_false(sdnotify_enabled(n));
	assert_int_equal(sdnotify_send(n, "READY=1"), 0);
	assert_int_equal(sdnotify_sendf(n, "STATUS=%d", 1), 0);
	assert_int_equal(sdnotify_watchdog_interval_ms(n), 0);
	assert_int_equal(sdnotify_watchdog_tick(n, 1000), 0);
	sdnotify_free(n);
	/* NULL (a failed sdnotify_new) is as quiet. */
	assert_int_equal(sdnotify_send(NULL, "READY=1"), 0);
	assert_null(sdnotify_free(NULL));
}

static void send_and_check(bool abstract)
{
	struct fake f;
	struct sdnotify *n = NULL;

	clear_env();
	fake_bind(&f, abstract);
	setenv("NOTIFY_SOCKET", f.name, 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_true(sdnotify_enabled(n));
	/* The variables are gone so children do not notify in our name. */
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(sdnotify_send(n, "READY=1"), 0);
	expect_msg(&f, "READY=1");
	assert_int_equal(sdnotify_sendf(n, "STATUS=%u captures, %s", 3u, "queue 0"), 0);
	expect_msg(&f, "STATUS=3 captures, queue 0");
	assert_int_equal(sdnotify_send(n, "STOPPING=1"), 0);
	expect_msg(&f, "STOPPING=1");
	sdnotify_free(n);
	fake_close(&f);
}

static void test_path_socket(void **state)
{
	(void)state;
	send_and_check(false);
}

static void test_abstract_socket(void **state)
{
	(void)state;
	send_and_check(true);
}

static void test_reloading(void **state)
{
	struct fake f;
	struct sdnotify *n = NULL;
	char buf[256];
	(void)state;
	clear_env();
	fake_bind(&f, false);
	setenv("NOTIFY_SOCKET", f.name, 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_int_equal(sdnotify_reloading(n), 0);
	assert_true(fake_recv(&f, buf, sizeof(buf), 2000) > 0);
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_true(strtoull(buf + 27, NULL, 10) > 0);
	/* Too long for one message: refused, nothing sent. */
	char *big = malloc(5000);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	assert_int_equal(sdnotify_sendf(n, "STATUS=%s", big), -EMSGSIZE);
	assert_int_equal(fake_recv(&f, buf, sizeof(buf), 100), -1);
	free(big);
	sdnotify_free(n);
	fake_close(&f);
}

static void test_bad_addresses(void **state)
{
	struct sdnotify *n = NULL;
	char longname[200];
	(void)state;
	clear_env();
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(sdnotify_new(&n), -EINVAL);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	assert_int_equal(sdnotify_new(&n), -EAFNOSUPPORT);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_int_equal(sdnotify_new(&n), -EINVAL);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(sdnotify_new(&n), -EINVAL);
	/* A socket nobody listens on: the send fails with the errno. */
	setenv("NOTIFY_SOCKET", "/nonexistent/capvault/notify", 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_int_equal(sdnotify_send(n, "READY=1"), -ENOENT);
	sdnotify_free(n);
}

static void test_watchdog(void **state)
{
	struct fake f;
	struct sdnotify *n = NULL;
	char pid[32], buf[64];
	(void)state;
	clear_env();
	fake_bind(&f, true);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());

	/* WATCHDOG_PID of another process: not ours to ping. */
	setenv("NOTIFY_SOCKET", f.name, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_int_equal(sdnotify_watchdog_interval_ms(n), 0);
	assert_int_equal(sdnotify_watchdog_tick(n, 5000), 0);
	n = sdnotify_free(n);

	setenv("NOTIFY_SOCKET", f.name, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_null(getenv("WATCHDOG_USEC"));
	assert_int_equal(sdnotify_watchdog_interval_ms(n), 500);
	assert_int_equal(sdnotify_watchdog_tick(n, 10000), 1); /* the first at once */
	expect_msg(&f, "WATCHDOG=1");
	assert_int_equal(sdnotify_watchdog_tick(n, 10200), 0);
	assert_int_equal(sdnotify_watchdog_tick(n, 10499), 0);
	assert_int_equal(sdnotify_watchdog_tick(n, 10500), 1);
	expect_msg(&f, "WATCHDOG=1");
	assert_int_equal(fake_recv(&f, buf, sizeof(buf), 50), -1);
	n = sdnotify_free(n);

	/* No WATCHDOG_PID is fine; garbage is "off". */
	setenv("NOTIFY_SOCKET", f.name, 1);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_int_equal(sdnotify_watchdog_interval_ms(n), 15000);
	n = sdnotify_free(n);
	setenv("NOTIFY_SOCKET", f.name, 1);
	setenv("WATCHDOG_USEC", "12abc", 1);
	assert_int_equal(sdnotify_new(&n), 0);
	assert_int_equal(sdnotify_watchdog_interval_ms(n), 0);
	n = sdnotify_free(n);
	fake_close(&f);
}

/* ---- capvaultd under a fake systemd ---- */

static bool file_has(const char *path, const char *needle)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* GET /v1/health on the daemon's unix socket: true on a 200. */
static bool api_answers(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "GET /v1/health HTTP/1.0\r\nHost: localhost\r\n\r\n";
	char buf[512];
	size_t got = 0;
	ssize_t n;
	size_t len = strlen(sock);
	if (len >= sizeof(sa.sun_path))
		fail_msg("socket path too long: %s", sock);
	memcpy(sa.sun_path, sock, len + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		close(fd);
		return false;
	}
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return !strncmp(buf, "HTTP/1.", 7) && strstr(buf, " 200 ") != NULL;
}

/* Waits for a message starting with prefix, skipping WATCHDOG/STATUS
 * chatter; stores it in buf. Fails the test on timeout. */
static void wait_msg(struct fake *f, const char *prefix, char *buf, size_t size)
{
	uint64_t end = mono_ms() + DEADLINE_MS;
	while (mono_ms() < end) {
		if (fake_recv(f, buf, size, (int)(end - mono_ms())) < 0)
			break;
		if (!strncmp(buf, prefix, strlen(prefix)))
			return;
	}
	fail_msg("no '%s' from capvaultd within %d ms", prefix, DEADLINE_MS);
}

static pid_t spawn_daemon(const char *daemon, const char *dir, const struct fake *f)
{
	char conf[128], log[128];
	snprintf(conf, sizeof(conf), "%s/d.yaml", dir);
	snprintf(log, sizeof(log), "%s/d.log", dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char me[32];
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		snprintf(me, sizeof(me), "%d", (int)getpid());
		setenv("NOTIFY_SOCKET", f->name, 1);
		setenv("WATCHDOG_USEC", "400000", 1);
		setenv("WATCHDOG_PID", me, 1);
		execl(daemon, daemon, "--config", conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void test_daemon_contract(void **state)
{
	const char *daemon = getenv("CAPVAULTD");
	struct fake f;
	char dir[64], path[128], log[128], buf[4096];
	int status;
	(void)state;
	if (!daemon || !*daemon)
		skip();
	clear_env();
	fake_bind(&f, false);
	snprintf(dir, sizeof(dir), "%s", f.dir);
	snprintf(path, sizeof(path), "%s/in", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/d.yaml", dir);
	FILE *cf = fopen(path, "w");
	assert_non_null(cf);
	fprintf(cf, "store: %s/store\njobs: 1\nimport:\n  - path: %s/in\napi:\n  listen: []\n",
		dir, dir);
	fclose(cf);
	snprintf(log, sizeof(log), "%s/d.log", dir);

	pid_t pid = spawn_daemon(daemon, dir, &f);
	wait_msg(&f, "READY=1", buf, sizeof(buf));
	/* The daemon logs "started:" before it says READY=1. */
	if (!file_has(log, "started:"))
		fail_msg("READY=1 arrived before capvaultd logged 'started:'");
	/* ...and once it is ready, the API answers at once. */
	snprintf(path, sizeof(path), "%s/store/capvault.sock", dir);
	if (!api_answers(path))
		fail_msg("READY=1 arrived but GET /v1/health on %s did not answer 200", path);
	wait_msg(&f, "WATCHDOG=1", buf, sizeof(buf));
	wait_msg(&f, "WATCHDOG=1", buf, sizeof(buf));

	assert_int_equal(kill(pid, SIGHUP), 0);
	wait_msg(&f, "RELOADING=1\nMONOTONIC_USEC=", buf, sizeof(buf));
	wait_msg(&f, "READY=1", buf, sizeof(buf));
	assert_true(file_has(log, "configuration reloaded"));

	assert_int_equal(kill(pid, SIGTERM), 0);
	wait_msg(&f, "STOPPING=1", buf, sizeof(buf));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	close(f.fd);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_under_systemd),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_reloading),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_watchdog),
		cmocka_unit_test(test_daemon_contract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
