/*
 * cli_cert.c - `capvault cert selfsigned`: a P-256 key and a self-signed
 * certificate for the API's TLS (api.tls.cert / api.tls.key), for people
 * who have no certificate. Clients trust it with --cacert (capvault) or
 * --cacert (curl).
 *
 * The key is written with mode 0600 from the start (never briefly
 * readable); neither file is overwritten unless --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define DAYS_MAX 36500

struct cert_args {
	const char *out, *cn;
	long days;
	bool force;
};

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EINVAL;
}

static int set_names(X509 *x, const char *cn)
{
	X509_NAME *name = X509_get_subject_name(x);
	char san[600];
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_set_issuer_name(x, name))
		return -EINVAL;
	/* The name given, and loopback, so a local test verifies too. */
	snprintf(san, sizeof(san), "%s%s%sDNS:localhost,IP:127.0.0.1,IP:::1",
		 strcmp(cn, "localhost") ? "DNS:" : "", strcmp(cn, "localhost") ? cn : "",
		 strcmp(cn, "localhost") ? "," : "");
	if (add_ext(x, NID_subject_alt_name, san) || add_ext(x, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") ||
	    add_ext(x, NID_subject_key_identifier, "hash"))
		return -EINVAL;
	return 0;
}

static X509 *make_cert(EVP_PKEY *key, const struct cert_args *a)
{
	X509 *x = X509_new();
	unsigned char serial[16] = { 0 };
	BIGNUM *bn = NULL;
	bool ok = x && RAND_bytes(serial, sizeof(serial)) == 1;
	serial[0] &= 0x7f; /* positive */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), a->days * 86400L) && X509_set_pubkey(x, key) &&
	     set_names(x, a->cn) == 0 && X509_sign(x, key, EVP_sha256()) > 0;
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Opens path for writing with mode, refusing to replace a file unless force. */
static FILE *create(const char *path, mode_t mode, bool force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
	if (fd < 0) {
		fprintf(stderr, "capvault: %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (--force replaces it)" : "");
		return NULL;
	}
	if (fchmod(fd, mode) < 0) {
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

static int write_pem(const char *path, mode_t mode, bool force, EVP_PKEY *key, X509 *x)
{
	FILE *f = create(path, mode, force);
	if (!f)
		return -1;
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) :
		       PEM_write_X509(f, x);
	if (fclose(f) != 0 || !ok) {
		fprintf(stderr, "capvault: %s: cannot write\n", path);
		unlink(path);
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct cert_args *a)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },  { "days", required_argument, NULL, 'd' },
		{ "cn", required_argument, NULL, 'n' },   { "force", no_argument, NULL, 'f' },
		{ 0 },
	};
	char *end;
	int c;
	while ((c = getopt_long(argc, argv, "o:d:n:f", opts, NULL)) != -1) {
		switch (c) {
		case 'o': a->out = optarg; break;
		case 'n': a->cn = optarg; break;
		case 'f': a->force = true; break;
		case 'd':
			a->days = strtol(optarg, &end, 10);
			if (*end || a->days < 1 || a->days > DAYS_MAX)
				return -EINVAL;
			break;
		default: return -EINVAL;
		}
	}
	return optind == argc && *a->cn && strlen(a->cn) < 256 ? 0 : -EINVAL;
}

int cli_cert(int argc, char **argv, const char *usage)
{
	struct cert_args a = { .out = ".", .cn = "localhost", .days = 365 };
	if (argc < 2 || strcmp(argv[1], "selfsigned") != 0 ||
	    parse_args(argc - 1, argv + 1, &a) < 0) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	/* The folder itself is made (0700: it will hold the key), as
	 * `install -d` would; a missing parent is more likely a typo. */
	if (mkdir(a.out, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "capvault: cert: cannot make the folder %s: %s\n", a.out,
			strerror(errno));
		return CLI_EXIT_FAILED;
	}
	char key_path[PATH_MAX], cert_path[PATH_MAX];
	snprintf(key_path, sizeof(key_path), "%s/key.pem", a.out);
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", a.out);
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = key ? make_cert(key, &a) : NULL;
	int rc = CLI_EXIT_FAILED;
	if (!x) {
		char buf[256] = "unknown error";
		ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
		fprintf(stderr, "capvault: making the certificate: %s\n", buf);
	} else if (write_pem(key_path, 0600, a.force, key, NULL) == 0) {
		if (write_pem(cert_path, 0644, a.force, NULL, x) == 0) {
			printf("key:         %s (mode 0600)\ncertificate: %s (CN=%s, %ld days)\n"
			       "api:\n  tls:\n    cert: %s\n    key: %s\n",
			       key_path, cert_path, a.cn, a.days, cert_path, key_path);
			rc = CLI_EXIT_OK;
		} else {
			unlink(key_path);
		}
	}
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
