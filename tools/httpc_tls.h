/*
 * httpc_tls.h - TLS under the CLI's HTTP client, as an ops table: httpc
 * calls it only for https, so a program that speaks plain HTTP over the
 * unix socket (the thin capvault front) links no OpenSSL, whose loading
 * costs more than the rest of that program's start.
 */
#ifndef CAPVAULT_HTTPC_TLS_H
#define CAPVAULT_HTTPC_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "errbuf.h"

struct httpc_tls;

struct httpc_tls_ops {
	/*
	 * A TLS session over the connected fd, the server's certificate
	 * verified for host (a name or an IP address), trusting cacert (a
	 * PEM file) or, when NULL, the system's store. *tls holds what is
	 * kept across reconnections (NULL the first time). Returns 0; -EPROTO
	 * (eb says why), -EINVAL for unloadable CA certificates, -ENOMEM.
	 */
	int (*start)(struct httpc_tls **tls, int fd, const char *host, const char *cacert,
		     struct errbuf *eb);
	/* Bytes read, 0 when the server closed the session, or -EIO. */
	ssize_t (*read)(struct httpc_tls *tls, void *buf, size_t len);
	/* Bytes written (at least 1), or -EPIPE. */
	ssize_t (*write)(struct httpc_tls *tls, const void *buf, size_t len);
	/* Ends the session (the socket is the caller's); keeps the rest. */
	void (*stop)(struct httpc_tls *tls);
	/* Frees everything; accepts NULL. */
	void (*free)(struct httpc_tls *tls);
};

/* OpenSSL's (httpc_tls.c, the only file that includes its headers). */
extern const struct httpc_tls_ops httpc_tls_openssl;

#endif
