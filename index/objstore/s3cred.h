/*
 * s3cred.h - the access and secret key of an S3 store: from the
 * environment or from an AWS shared-credentials file.
 *
 * Precedence, as the AWS tools have it: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY when both are set (one alone is an error), with
 * AWS_SESSION_TOKEN when set, else the file's [profile] section
 * ("default" when profile is NULL) and its aws_session_token if any: the
 * token of temporary credentials (STS, an instance or task role). A file
 * that others (not owner or group) may read or write is refused, as ssh
 * refuses such a private key: the secret would already be out.
 * Messages name the file, the profile and the line, never a key.
 */
#ifndef CAPVAULT_S3CRED_H
#define CAPVAULT_S3CRED_H

#include "errbuf.h"

struct s3cred {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL: long-term keys */
};

/*
 * Fills c (both keys set on success). file may be NULL when the
 * environment holds the keys. Returns 0, -ENOENT (no such file, or no
 * such profile or key in it), -EPERM (a file others may read), -EINVAL
 * (a malformed line, only one of the two variables set, no credentials
 * anywhere), -ENOMEM, or another negative errno of reading the file.
 */
int s3cred_load(struct s3cred *c, const char *file, const char *profile, struct errbuf *eb);

/* Wipes and frees the keys and the token; c may be NULL. */
void s3cred_clear(struct s3cred *c);

/* Wipes and frees one secret string; accepts NULL. */
void s3cred_wipe(char *secret);

#endif
