/*
 * httpc_tls.c - httpc's TLS with OpenSSL (see httpc_tls.h): TLS 1.2 or
 * later, the peer's certificate and name (or address) verified.
 */
#include "httpc_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct httpc_tls {
	SSL_CTX *ctx; /* kept across reconnections: loading the CAs is slow */
	SSL *ssl;     /* the session */
};

static int tls_error(struct errbuf *eb, const char *host, long verify)
{
	char buf[256] = "handshake failed";
	unsigned long e = ERR_get_error();
	if (verify != X509_V_OK)
		snprintf(buf, sizeof(buf), "certificate verification failed: %s",
			 X509_verify_cert_error_string(verify));
	else if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return errbuf_set(eb, -EPROTO, "%s: TLS: %s", host, buf);
}

static int context_new(SSL_CTX **out, const char *host, const char *cacert, struct errbuf *eb)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return tls_error(eb, host, X509_V_OK);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	int ok = cacert ? SSL_CTX_load_verify_locations(ctx, cacert, NULL) :
			  SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return errbuf_set(eb, -EINVAL, "%s: cannot load the CA certificates",
				  cacert ? cacert : "system store");
	}
	*out = ctx;
	return 0;
}

static int openssl_start(struct httpc_tls **tls, int fd, const char *host, const char *cacert,
			 struct errbuf *eb)
{
	if (!*tls && !(*tls = calloc(1, sizeof(**tls))))
		return -ENOMEM;
	struct httpc_tls *t = *tls;
	int err = t->ctx ? 0 : context_new(&t->ctx, host, cacert, eb);
	if (err)
		return err;
	if (!(t->ssl = SSL_new(t->ctx)) || SSL_set_fd(t->ssl, fd) != 1)
		return tls_error(eb, host, X509_V_OK);
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	if (is_ip)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
	else if (SSL_set_tlsext_host_name(t->ssl, host) != 1 || SSL_set1_host(t->ssl, host) != 1)
		return tls_error(eb, host, X509_V_OK);
	if (SSL_connect(t->ssl) != 1)
		return tls_error(eb, host, SSL_get_verify_result(t->ssl));
	return 0;
}

static ssize_t openssl_read(struct httpc_tls *t, void *buf, size_t len)
{
	int r = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0)
		return r;
	int e = SSL_get_error(t->ssl, r);
	ERR_clear_error();
	return e == SSL_ERROR_ZERO_RETURN ? 0 : -EIO;
}

static ssize_t openssl_write(struct httpc_tls *t, const void *buf, size_t len)
{
	int r = SSL_write(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
	return r > 0 ? r : -EPIPE;
}

static void openssl_stop(struct httpc_tls *t)
{
	SSL_free(t->ssl);
	t->ssl = NULL;
}

static void openssl_free(struct httpc_tls *t)
{
	if (t) {
		SSL_free(t->ssl);
		SSL_CTX_free(t->ctx);
		free(t);
	}
}

const struct httpc_tls_ops httpc_tls_openssl = {
	.start = openssl_start,
	.read = openssl_read,
	.write = openssl_write,
	.stop = openssl_stop,
	.free = openssl_free,
};
