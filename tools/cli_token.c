/*
 * cli_token.c - `capvault token add|ls|revoke`: API tokens in the store.
 *
 * `token add` prints the secret once, on stdout alone, so scripts can
 * capture it; only its hash is kept.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "cli.h"
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

static int token_add_cmd(struct token_cli *c, struct vault *v, const char *name)
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
	if (token_add(vault_db(v), name, scopes, c->tags, c->ntags, c->cloudshark, secret, &eb) < 0) {
		fprintf(stderr, "capvault: token add: %s\n", eb.msg);
		return CLI_EXIT_FAILED;
	}
	printf("%s\n", secret);
	fprintf(stderr, "capvault: token '%s' created; the secret above is shown only once\n",
		name);
	return CLI_EXIT_OK;
}

static int ls_one(void *opaque, const struct token_info *t)
{
	json_t *array = opaque;
	char scopes[64], created[32];
	time_t secs = (time_t)(t->created_ns / 1000000000u);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || !strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(created, sizeof(created), "%" PRIu64, t->created_ns);
	token_scopes_format(t->scopes, scopes, sizeof(scopes));
	json_t *tags = json_array();
	for (size_t i = 0; i < t->ntags; i++)
		json_array_append_new(tags, json_string(t->tags[i]));
	if (array)
		return json_array_append_new(array, json_pack("{sssssssosb}", "name", t->name, "scopes",
							      scopes, "created", created, "tags",
							      tags, "cloudshark", t->cloudshark));
	char *text = json_dumps(tags, JSON_COMPACT);
	printf("%-24s %-26s %-20s %-10s %s\n", t->name, scopes, created,
	       t->cloudshark ? "cloudshark" : "-", text ? text : "[]");
	free(text);
	json_decref(tags);
	return 0;
}

static int token_ls_cmd(struct token_cli *c, struct vault *v)
{
	json_t *array = c->json ? json_array() : NULL;
	if (!array)
		printf("%-24s %-26s %-20s %-10s %s\n", "NAME", "SCOPES", "CREATED", "KIND", "TAGS");
	int err = token_foreach(vault_db(v), ls_one, array);
	if (array) {
		json_dumpf(array, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(array);
	}
	if (err < 0) {
		fprintf(stderr, "capvault: token ls: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	return CLI_EXIT_OK;
}

static int token_revoke_cmd(struct vault *v, const char *name)
{
	struct errbuf eb = { { 0 } };
	if (token_revoke(vault_db(v), name, &eb) < 0) {
		fprintf(stderr, "capvault: token revoke: %s\n", eb.msg);
		return CLI_EXIT_FAILED;
	}
	return CLI_EXIT_OK;
}

static int dispatch(struct token_cli *c, struct vault *v, const char *sub, int nargs,
		    char **args)
{
	if (!strcmp(sub, "add") && nargs == 1)
		return token_add_cmd(c, v, args[0]);
	if (!strcmp(sub, "ls") && nargs == 0)
		return token_ls_cmd(c, v);
	if (!strcmp(sub, "revoke") && nargs == 1)
		return token_revoke_cmd(v, args[0]);
	return -1;
}

int cli_token(int argc, char **argv, const char *usage)
{
	struct token_cli c = { 0 };
	struct vault *v = NULL;
	struct errbuf eb = { { 0 } };
	if (argc < 2 || parse_args(&c, argc - 1, argv + 1) < 0) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		free(c.tagbuf);
		return CLI_EXIT_USAGE;
	}
	if (vault_open(&v, cli_store_path(c.store), &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		free(c.tagbuf);
		return CLI_EXIT_FAILED;
	}
	int rc = dispatch(&c, v, argv[1], argc - 1 - c.first_arg, argv + 1 + c.first_arg);
	if (rc < 0) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		rc = CLI_EXIT_USAGE;
	}
	vault_close(v);
	free(c.tagbuf);
	return rc;
}
