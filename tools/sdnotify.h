/*
 * sdnotify.h - systemd's service notification protocol (sd_notify(3)),
 * written against the documented wire format so capvaultd needs no
 * libsystemd: each message is one datagram of newline-separated
 * VARIABLE=value assignments sent to the unix socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').
 *
 * Not under systemd (no NOTIFY_SOCKET) every call succeeds and sends
 * nothing, so callers need no "if (systemd)" branches. Only the thread
 * that owns the struct sends.
 */
#ifndef CAPVAULT_SDNOTIFY_H
#define CAPVAULT_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

struct sdnotify;

/*
 * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from
 * the environment (children must not notify in our name). Returns 0 and
 * *out, -EINVAL when NOTIFY_SOCKET is neither "/path" nor "@name" or is too
 * long, -EAFNOSUPPORT for other schemes (vsock:), -ENOMEM, or the
 * socket(2) error.
 */
int sdnotify_new(struct sdnotify **out);
/* Accepts NULL, returns NULL. */
struct sdnotify *sdnotify_free(struct sdnotify *n);

/* True when NOTIFY_SOCKET was set. */
bool sdnotify_enabled(const struct sdnotify *n);

/* Sends state (e.g. "READY=1\nSTATUS=..."). Returns 0 when sent or when
 * not enabled, else a negative errno from sendto(2). */
int sdnotify_send(struct sdnotify *n, const char *state);
/* Like sdnotify_send with a printf format. -EMSGSIZE when over 4 KiB. */
int sdnotify_sendf(struct sdnotify *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sends RELOADING=1 with MONOTONIC_USEC= (systemd shows the unit as
 * reloading until the next READY=1). Returns as sdnotify_send. */
int sdnotify_reloading(struct sdnotify *n);

/* How often to send WATCHDOG=1: half of WATCHDOG_USEC, in ms (at least 1);
 * 0 when the watchdog is off or WATCHDOG_PID names another process. */
uint64_t sdnotify_watchdog_interval_ms(const struct sdnotify *n);

/* Call from the main loop with a monotonic time: sends WATCHDOG=1 when an
 * interval has passed since the last ping. Returns 1 when it sent, 0 when
 * not due (or no watchdog), or a negative errno. */
int sdnotify_watchdog_tick(struct sdnotify *n, uint64_t now_ms);

#endif
