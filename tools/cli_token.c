/*
 * cli_token.c - `capvault token add|ls|revoke|link`: API tokens in the
 * store, and the web viewer's login link for one.
 *
 * `token add` prints the secret once, on stdout alone, so scripts can
 * capture it; only its hash is kept. With capvaultd running, the commands
 * go through it (POST/GET /v1/tokens, DELETE /v1/tokens/NAME: admin, so
 * its socket or an admin token) and print the same as offline.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_remote.h"
#include "tokens.h"
#include "vault.h"

#define TOKEN_TAGS_MAX 32

struct token_cli {
	const char *store;
	const char *scopes;
	char *tagbuf;
	const char *tags[TOKEN_TAGS_MAX];
	size_t ntags;
	bool cloudshark, json;
	int first_arg;
};

static int split_tags(struct token_cli *c, const char *list)
{
	free(c->tagbuf);
	c->ntags = 0;
	if (!(c->tagbuf = strdup(list)))
		return -ENOMEM;
	for (char *save = NULL, *t = strtok_r(c->tagbuf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (c->ntags == TOKEN_TAGS_MAX)
			return -E2BIG;
		c->tags[c->ntags++] = t;
	}
	return 0;
}

static int parse_args(struct token_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' }, { "scopes", required_argument, NULL, 'S' },
		{ "tags", required_argument, NULL, 't' },  { "cloudshark", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },        { 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "s:S:t:cj", opts, NULL)) != -1) {
		switch (opt) {
		case 's': c->store = optarg; break;
		case 'S': c->scopes = optarg; break;
		case 't':
			if (split_tags(c, optarg) < 0)
				return -EINVAL;
			break;
		case 'c': c->cloudshark = true; break;
		case 'j': c->json = true; break;
		default: return -EINVAL;
		}
	}
	c->first_arg = optind;
	return 0;
}

/* Where the commands act: the daemon (r) or the store opened here (v). */
struct token_target {
	struct cli_remote *r;
	struct vault *v;
};

static int add_remote(struct token_cli *c, struct cli_remote *r, const char *name,
		      char secret[TOKEN_SECRET_MAX], struct errbuf *eb)
{
	json_t *scopes = json_array(), *tags = json_array(), *reply = NULL;
	_cleanup_free_ char *list = strdup(c->scopes);
	for (char *save = NULL, *s = list ? strtok_r(list, ",", &save) : NULL; s;
	     s = strtok_r(NULL, ",", &save))
		json_array_append_new(scopes, json_string(s));
	for (size_t i = 0; i < c->ntags; i++)
		json_array_append_new(tags, json_string(c->tags[i]));
	json_t *body = json_pack("{sssososb}", "name", name, "scopes", scopes, "tags", tags,
				 "cloudshark", c->cloudshark);
	int status = body && list ? cli_remote_json(r, "POST", "/v1/tokens", body, &reply) : -1;
	const char *s = json_string_value(json_object_get(reply, "secret"));
	int err = 0;
	if (status == 201 && s && strlen(s) < TOKEN_SECRET_MAX)
		snprintf(secret, TOKEN_SECRET_MAX, "%s", s);
	else
		err = errbuf_set(eb, -EIO, "%s", status < 0 ? "the daemon did not answer" :
						 cli_remote_message(reply, status));
	json_decref(body);
	json_decref(reply);
	return err;
}

static int token_add_cmd(struct token_cli *c, struct token_target *to, const char *name)
{
	struct errbuf eb = { { 0 } };
	char secret[TOKEN_SECRET_MAX];
	unsigned scopes = 0;
	if (!c->scopes) {
		fprintf(stderr, "capvault: token add: --scopes is required (read,upload,delete,admin)\n");
		return CLI_EXIT_USAGE;
	}
	if (token_scopes_parse(c->scopes, &scopes, &eb) < 0) {
		fprintf(stderr, "capvault: token add: %s\n", eb.msg);
		return CLI_EXIT_USAGE;
	}
	int err = to->r ? add_remote(c, to->r, name, secret, &eb) :
			  token_add(vault_db(to->v), name, scopes, c->tags, c->ntags, c->cloudshark,
				    secret, &eb);
	if (err < 0) {
		fprintf(stderr, "capvault: token add: %s\n", eb.msg);
		return CLI_EXIT_FAILED;
	}
	printf("%s\n", secret);
	explicit_bzero(secret, sizeof(secret));
	fprintf(stderr, "capvault: token '%s' created; the secret above is shown only once\n",
		name);
	return CLI_EXIT_OK;
}

/* Prints one token (as token_info_json gives it), or appends it to the
 * --json array with its scopes as one "read,upload" string. */
static void print_token(json_t *t, json_t *array)
{
	char scopes[64] = "";
	size_t used = 0, i;
	json_t *s, *tags = json_object_get(t, "tags");
	const char *name = json_string_value(json_object_get(t, "name"));
	const char *created = json_string_value(json_object_get(t, "created"));
	bool cloudshark = json_is_true(json_object_get(t, "cloudshark"));
	json_array_foreach(json_object_get(t, "scopes"), i, s)
		if (json_string_value(s) && used < sizeof(scopes))
			used += (size_t)snprintf(scopes + used, sizeof(scopes) - used, "%s%s",
						 used ? "," : "", json_string_value(s));
	if (!name || !created || !json_is_array(tags))
		return;
	if (array) {
		json_array_append_new(array, json_pack("{sssssssOsb}", "name", name, "scopes", scopes,
						       "created", created, "tags", tags,
						       "cloudshark", cloudshark));
		return;
	}
	char *text = json_dumps(tags, JSON_COMPACT);
	printf("%-24s %-26s %-20s %-10s %s\n", name, scopes, created,
	       cloudshark ? "cloudshark" : "-", text ? text : "[]");
	free(text);
}

static int collect_one(void *opaque, const struct token_info *t)
{
	json_t *o = token_info_json(t);
	return o && json_array_append_new(opaque, o) == 0 ? 0 : -ENOMEM;
}

/* The tokens, from the daemon or the store; NULL after printing why. */
static json_t *list_tokens(struct token_target *to)
{
	json_t *tokens = NULL, *reply = NULL;
	if (to->r) {
		int status = cli_remote_json(to->r, "GET", "/v1/tokens", NULL, &reply);
		if (status == 200 && json_is_array(json_object_get(reply, "tokens")))
			tokens = json_incref(json_object_get(reply, "tokens"));
		else if (status > 0)
			fprintf(stderr, "capvault: token ls: %s\n", cli_remote_message(reply, status));
		json_decref(reply);
		return tokens;
	}
	tokens = json_array();
	int err = tokens ? token_foreach(vault_db(to->v), collect_one, tokens) : -ENOMEM;
	if (err < 0) {
		fprintf(stderr, "capvault: token ls: %s\n", strerror(-err));
		json_decref(tokens);
		tokens = NULL;
	}
	return tokens;
}

static int token_ls_cmd(struct token_cli *c, struct token_target *to)
{
	json_t *tokens = list_tokens(to), *t;
	json_t *array = c->json ? json_array() : NULL;
	size_t i;
	if (!tokens) {
		json_decref(array);
		return CLI_EXIT_FAILED;
	}
	if (!array)
		printf("%-24s %-26s %-20s %-10s %s\n", "NAME", "SCOPES", "CREATED", "KIND", "TAGS");
	json_array_foreach(tokens, i, t)
		print_token(t, array);
	if (array) {
		json_dumpf(array, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(array);
	}
	json_decref(tokens);
	return CLI_EXIT_OK;
}

static int revoke_remote(struct cli_remote *r, const char *name, struct errbuf *eb)
{
	_cleanup_free_ char *target = NULL;
	size_t len = 0;
	json_t *reply = NULL;
	FILE *f = open_memstream(&target, &len);
	if (!f)
		return errbuf_set(eb, -ENOMEM, "out of memory");
	fputs("/v1/tokens/", f);
	httpc_put_segment(f, name);
	if (fclose(f) != 0)
		return errbuf_set(eb, -ENOMEM, "out of memory");
	int status = cli_remote_json(r, "DELETE", target, NULL, &reply);
	int err = status == 200 ? 0 :
				  errbuf_set(eb, -EIO, "%s", status < 0 ? "the daemon did not answer" :
								  cli_remote_message(reply, status));
	json_decref(reply);
	return err;
}

static int token_revoke_cmd(struct token_target *to, const char *name)
{
	struct errbuf eb = { { 0 } };
	int err = to->r ? revoke_remote(to->r, name, &eb) : token_revoke(vault_db(to->v), name, &eb);
	if (err < 0) {
		fprintf(stderr, "capvault: token revoke: %s\n", eb.msg);
		return CLI_EXIT_FAILED;
	}
	return CLI_EXIT_OK;
}

/* The viewer's default address: api.listen's default. */
#define LINK_DEFAULT_BASE "http://127.0.0.1:8080"

/* A secret as token add prints it: 32 or 64 lowercase hex digits. */
static bool secret_shaped(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");
	return !s[n] && (n == 32 || n == 64);
}

/*
 * `token link SECRET` (or - to read it from standard input, out of the
 * process list and the shell's history): the viewer's login link,
 * BASE/?token=SECRET, BASE being --url or $CAPVAULT_URL, else
 * api.listen's default. Opening it logs in and drops the token from the
 * address bar; the token is checked then, not here (the daemon may be
 * elsewhere).
 */
static int token_link_cmd(const char *arg)
{
	char line[TOKEN_SECRET_MAX + 2] = "";
	const char *secret = arg;
	if (!strcmp(arg, "-")) {
		if (!fgets(line, sizeof(line), stdin))
			line[0] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		secret = line;
	}
	if (!secret_shaped(secret)) {
		fprintf(stderr, "capvault: token link: not a token secret (32 or 64 hex digits, "
				"as `capvault token add` prints it)\n");
		return CLI_EXIT_USAGE;
	}
	const char *base = cli_remote_url() ? cli_remote_url() : LINK_DEFAULT_BASE;
	size_t blen = strlen(base);
	while (blen && base[blen - 1] == '/')
		blen--;
	printf("%.*s/?token=%s\n", (int)blen, base, secret);
	explicit_bzero(line, sizeof(line));
	return CLI_EXIT_OK;
}

static int dispatch(struct token_cli *c, struct token_target *to, const char *sub, int nargs,
		    char **args)
{
	if (!strcmp(sub, "add") && nargs == 1)
		return token_add_cmd(c, to, args[0]);
	if (!strcmp(sub, "ls") && nargs == 0)
		return token_ls_cmd(c, to);
	if (!strcmp(sub, "revoke") && nargs == 1)
		return token_revoke_cmd(to, args[0]);
	return -1;
}

static bool known_subcommand(const char *sub, int nargs)
{
	return (!strcmp(sub, "add") && nargs == 1) || (!strcmp(sub, "ls") && nargs == 0) ||
	       (!strcmp(sub, "revoke") && nargs == 1) || (!strcmp(sub, "link") && nargs == 1);
}

/* The daemon when one runs (1), else the store opened here (0); -1 printed. */
static int open_target(struct token_cli *c, struct token_target *to)
{
	struct errbuf eb = { { 0 } };
	int via = cli_remote_open(&to->r, c->store);
	if (via != 0)
		return via;
	if (vault_open(&to->v, cli_store_path(c->store), &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		return -1;
	}
	return 0;
}

int cli_token(int argc, char **argv, const char *usage)
{
	struct token_cli c = { 0 };
	struct token_target to = { 0 };
	if (argc < 2 || parse_args(&c, argc - 1, argv + 1) < 0 ||
	    !known_subcommand(argv[1], argc - 1 - c.first_arg)) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		free(c.tagbuf);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "link")) {
		free(c.tagbuf);
		return token_link_cmd(argv[1 + c.first_arg]);
	}
	int rc = open_target(&c, &to) < 0 ?
			 CLI_EXIT_FAILED :
			 dispatch(&c, &to, argv[1], argc - 1 - c.first_arg, argv + 1 + c.first_arg);
	cli_remote_free(to.r);
	vault_close(to.v);
	free(c.tagbuf);
	return rc;
}
