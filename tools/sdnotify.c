/*
 * sdnotify.c - see sdnotify.h. One SOCK_DGRAM socket, opened once, each
 * message one sendto(2) to the address taken from NOTIFY_SOCKET.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "monoclock.h"

#define SDNOTIFY_MAX_MSG 4096

struct sdnotify {
	int fd;                    /* -1: not under systemd */
	struct sockaddr_un addr;
	socklen_t addr_len;
	uint64_t watchdog_ms;      /* ping interval, 0: off */
	uint64_t last_ping_ms;
};

/* Fills n->addr from "/path" or "@abstract". */
static int parse_address(struct sdnotify *n, const char *name)
{
	size_t len = strlen(name);

	if (name[0] != '/' && name[0] != '@')
		return strchr(name, ':') ? -EAFNOSUPPORT : -EINVAL;
	if (len < 2 || len > sizeof(n->addr.sun_path) - (name[0] == '/'))
		return -EINVAL;
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, name, len);
	if (name[0] == '@') {
		/* An abstract name is exactly len bytes, starting with NUL. */
		n->addr.sun_path[0] = '\0';
		n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	return 0;
}

/* WATCHDOG_USEC applies to us only if WATCHDOG_PID is unset or ours. */
static uint64_t watchdog_from_env(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		errno = 0;
		unsigned long long p = strtoull(pid, &end, 10);
		if (errno || *end || p != (unsigned long long)getpid())
			return 0;
	}
	errno = 0;
	unsigned long long us = strtoull(usec, &end, 10);
	if (errno || *end || us == 0)
		return 0;
	uint64_t ms = us / 2000u;
	return ms ? ms : 1;
}

int sdnotify_new(struct sdnotify **out)
{
	struct sdnotify *n = calloc(1, sizeof(*n));
	const char *name = getenv("NOTIFY_SOCKET");
	int err = 0;

	if (!n)
		return -ENOMEM;
	n->fd = -1;
	if (name && *name) {
		err = parse_address(n, name);
		if (!err) {
			n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (n->fd < 0)
				err = -errno;
		}
		if (!err)
			n->watchdog_ms = watchdog_from_env();
	}
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (err) {
		sdnotify_free(n);
		return err;
	}
	*out = n;
	return 0;
}

struct sdnotify *sdnotify_free(struct sdnotify *n)
{
	if (n) {
		if (n->fd >= 0)
			close(n->fd);
		free(n);
	}
	return NULL;
}

bool sdnotify_enabled(const struct sdnotify *n)
{
	return n && n->fd >= 0;
}

int sdnotify_send(struct sdnotify *n, const char *state)
{
	if (!sdnotify_enabled(n))
		return 0;
	ssize_t sent;
	do
		sent = sendto(n->fd, state, strlen(state), MSG_NOSIGNAL,
			      (const struct sockaddr *)&n->addr, n->addr_len);
	while (sent < 0 && errno == EINTR);
	return sent < 0 ? -errno : 0;
}

int sdnotify_sendf(struct sdnotify *n, const char *fmt, ...)
{
	char msg[SDNOTIFY_MAX_MSG];
	va_list ap;

	if (!sdnotify_enabled(n))
		return 0;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -EMSGSIZE;
	return sdnotify_send(n, msg);
}

int sdnotify_reloading(struct sdnotify *n)
{
	return sdnotify_sendf(n, "RELOADING=1\nMONOTONIC_USEC=%llu",
			      (unsigned long long)mono_us());
}

uint64_t sdnotify_watchdog_interval_ms(const struct sdnotify *n)
{
	return sdnotify_enabled(n) ? n->watchdog_ms : 0;
}

int sdnotify_watchdog_tick(struct sdnotify *n, uint64_t now_ms)
{
	if (!sdnotify_watchdog_interval_ms(n))
		return 0;
	if (n->last_ping_ms && now_ms - n->last_ping_ms < n->watchdog_ms)
		return 0;
	int err = sdnotify_send(n, "WATCHDOG=1");
	if (err)
		return err;
	n->last_ping_ms = now_ms ? now_ms : 1;
	return 1;
}
