/*
 * s3cred.c - S3 credentials from the environment or an AWS
 * shared-credentials file (see s3cred.h). The format is the small INI
 * dialect the AWS CLI writes: "[name]" sections, "key = value" lines,
 * "#" and ";" comments. "[profile name]", the ~/.aws/config spelling, is
 * taken too.
 */
#include "s3cred.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

#define CRED_FILE_MAX (64u << 10) /* a few profiles take a few hundred bytes */

void s3cred_wipe(char *secret)
{
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
}

void s3cred_clear(struct s3cred *c)
{
	if (!c)
		return;
	char **secrets[] = { &c->access_key, &c->secret_key, &c->session_token };
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		s3cred_wipe(*secrets[i]);
		*secrets[i] = NULL;
	}
}

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Whether the section header text (between the brackets) names profile. */
static bool section_is(const char *name, const char *profile)
{
	if (!strncmp(name, "profile", 7) && isspace((unsigned char)name[7])) {
		name += 8;
		while (isspace((unsigned char)*name))
			name++;
	}
	return !strcmp(name, profile);
}

struct cred_parse {
	const char *file;
	const char *profile;
	bool in_profile, seen_profile;
	struct s3cred *c;
};

static int cred_line(struct cred_parse *p, char *line, unsigned lineno, struct errbuf *eb)
{
	char *s = trim(line);

	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		char *close = strchr(s, ']');
		if (!close || *trim(close + 1))
			return errbuf_set(eb, -EINVAL, "%s:%u: a section header is '[name]'",
					  p->file, lineno);
		*close = '\0';
		p->in_profile = section_is(trim(s + 1), p->profile);
		p->seen_profile |= p->in_profile;
		return 0;
	}
	char *eq = strchr(s, '=');
	if (!eq)
		return errbuf_set(eb, -EINVAL, "%s:%u: expected 'key = value'", p->file, lineno);
	*eq = '\0';
	const char *key = trim(s);
	char *value = trim(eq + 1);
	char **dst = NULL;
	if (!strcmp(key, "aws_access_key_id"))
		dst = &p->c->access_key;
	else if (!strcmp(key, "aws_secret_access_key"))
		dst = &p->c->secret_key;
	else if (!strcmp(key, "aws_session_token"))
		dst = &p->c->session_token;
	if (!p->in_profile || !dst)
		return 0;
	if (*dst)
		return errbuf_set(eb, -EINVAL, "%s:%u: '%s' set twice in profile '%s'", p->file,
				  lineno, key, p->profile);
	*dst = strdup(value);
	return *dst ? 0 : -ENOMEM;
}

/* Opened without blocking (a FIFO put in its place would hang the
 * opener, and the store's requests wait on that), a regular file only,
 * and at most CRED_FILE_MAX bytes: getline's lines are then bounded. */
static int open_private(const char *file, FILE **out, struct errbuf *eb)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;

	if (fd < 0)
		return errbuf_set(eb, -errno, "credentials file %s: %s", file, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errbuf_set(eb, -EINVAL, "credentials file %s: not a regular file", file);
	}
	if (st.st_size > CRED_FILE_MAX) {
		close(fd);
		return errbuf_set(eb, -EINVAL, "credentials file %s: larger than %u bytes", file,
				  CRED_FILE_MAX);
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		close(fd);
		return errbuf_set(eb, -EPERM,
				  "credentials file %s: others may read or write it (mode %04o); "
				  "chmod o-rw it",
				  file, (unsigned)(st.st_mode & 07777));
	}
	*out = fdopen(fd, "r");
	if (!*out) {
		close(fd);
		return -ENOMEM;
	}
	/* Unbuffered: no copy of the secret left in a freed stdio buffer (the
	 * lines read are wiped). The file is a few lines. */
	setvbuf(*out, NULL, _IONBF, 0);
	return 0;
}

static int load_file(struct s3cred *c, const char *file, const char *profile,
		     struct errbuf *eb)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	struct cred_parse p = { .file = file, .profile = profile, .c = c };
	unsigned lineno = 0;
	int r = open_private(file, &f, eb);

	while (r == 0 && getline(&line, &cap, f) >= 0) {
		r = cred_line(&p, line, ++lineno, eb);
		explicit_bzero(line, cap);
	}
	if (r == 0 && ferror(f))
		r = errbuf_set(eb, -EIO, "credentials file %s: read error", file);
	if (r == 0 && !p.seen_profile)
		r = errbuf_set(eb, -ENOENT, "credentials file %s: no profile '%s'", file, profile);
	/* An empty value ("aws_access_key_id =") is none: it would go out
	 * as an empty key and come back as the store's InvalidAccessKeyId. */
	if (r == 0 && (!c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key))
		r = errbuf_set(eb, -ENOENT,
			       "credentials file %s: profile '%s' lacks aws_access_key_id or "
			       "aws_secret_access_key (or one is empty)",
			       file, profile);
	return r;
}

int s3cred_load(struct s3cred *c, const char *file, const char *profile, struct errbuf *eb)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	int r;

	*c = (struct s3cred){ 0 };
	if (id && *id && secret && *secret) {
		const char *token = getenv("AWS_SESSION_TOKEN");
		c->access_key = strdup(id);
		c->secret_key = strdup(secret);
		c->session_token = token && *token ? strdup(token) : NULL;
		r = c->access_key && c->secret_key && (!token || !*token || c->session_token)
			    ? 0 : -ENOMEM;
	} else if ((id && *id) || (secret && *secret)) {
		r = errbuf_set(eb, -EINVAL,
			       "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set");
	} else if (file) {
		r = load_file(c, file, profile ? profile : "default", eb);
	} else {
		r = errbuf_set(eb, -EINVAL,
			       "no S3 credentials: set credentials_file, or AWS_ACCESS_KEY_ID "
			       "and AWS_SECRET_ACCESS_KEY");
	}
	/* A line break would end the header it goes in (a token is long and
	 * pasted): refused, never sent. */
	if (r == 0 && c->session_token && strpbrk(c->session_token, "\r\n"))
		r = errbuf_set(eb, -EINVAL, "the S3 session token has a line break in it");
	if (r < 0)
		s3cred_clear(c);
	return r;
}
