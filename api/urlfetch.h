/*
 * urlfetch.h - fetching an upload from a URL (CloudShark's url=), the
 * only file that includes <curl/curl.h> in api/.
 *
 * A URL is fetched only when it falls under one of the allowed prefixes
 * (same scheme, host and port, and a path that starts with the prefix's
 * path), over http or https, without a proxy and without following
 * redirects. The address actually connected to is checked as the socket
 * is opened (so a name that resolves elsewhere the second time, DNS
 * rebinding, gains nothing): loopback, link-local, private (RFC 1918,
 * unique local), CGNAT, multicast and unspecified addresses are refused
 * unless the matching prefix names that very address as its host.
 */
#ifndef CAPVAULT_URLFETCH_H
#define CAPVAULT_URLFETCH_H

#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct urlfetch_opts {
	const char *const *allow; /* URL prefixes */
	size_t nallow;
	uint64_t max_bytes;       /* more is -EFBIG */
	unsigned connect_timeout_s;
	/* Slower than min_rate bytes/s for slow_time_s: -ETIMEDOUT. */
	uint64_t min_rate;
	unsigned slow_time_s;
};

/*
 * Writes the body of url to fd. Returns 0; -EPERM when the URL is not
 * allowed or the address is refused; -EFBIG; -EINVAL for a URL that does
 * not parse; -EIO when the transfer failed or the server answered
 * anything but 200 (eb says what, never with the body).
 */
int urlfetch_to_fd(const char *url, const struct urlfetch_opts *o, int fd, struct errbuf *eb);

/* The last path segment of url ("x.pcap"), or NULL; caller frees. */
char *urlfetch_file_name(const char *url);

/* Whether url is under one of the prefixes (see above); for tests. */
int urlfetch_allowed(const char *url, const char *const *allow, size_t nallow,
		     const char **matched);

#endif
