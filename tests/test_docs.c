/*
 * test_docs.c - the man pages keep up with the code: every key of
 * config_keys() is in capvault.yaml(5), every subcommand of the capvault
 * table (tools/capvault.c) in capvault(1), every capvaultd long option
 * (tools/capvaultd.c) in capvaultd(8), and the unit names the io_uring
 * system calls its SystemCallFilter= must allow. The sources are read, not
 * the built pages, so this runs without scdoc. DOCS_SOURCE is the project
 * root.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"
#include "config.h"

static char *slurp(const char *rel)
{
	char path[PATH_MAX];
	const char *root = getenv("DOCS_SOURCE");
	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	_cleanup_fclose_ FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	char *buf = calloc(1, 1u << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1u << 20) - 1, f);
	buf[n] = '\0';
	return buf;
}

/* True when text has needle as *bold* (scdoc), e.g. "*import[].path*". */
static bool has_bold(const char *text, const char *needle)
{
	char want[256];
	snprintf(want, sizeof(want), "*%s*", needle);
	return strstr(text, want) != NULL;
}

static void test_config_keys_in_man5(void **state)
{
	_cleanup_free_ char *man = slurp("doc/capvault.yaml.5.scd");
	size_t n = 0, missing = 0;
	(void)state;
	for (const char *const *k = config_keys(); *k; k++, n++) {
		if (!has_bold(man, *k)) {
			print_error("config key %s is not documented in capvault.yaml.5.scd\n", *k);
			missing++;
		}
	}
	assert_true(n > 30);
	assert_int_equal(missing, 0);
}

/* Calls fn(name) for each `{ "name", ` entry between start and the
 * first "};" after it. Returns how many. */
static size_t each_entry(const char *src, const char *start, const char *entry_tail,
			 const char *man, const char *fmt, const char *what)
{
	const char *p = strstr(src, start), *end;
	size_t n = 0, missing = 0;
	if (!p)
		fail_msg("'%s' not found in the source", start);
	end = strstr(p, "};");
	assert_non_null(end);
	while ((p = strstr(p, "{ \"")) && p < end) {
		const char *name = p + 3, *q = strchr(name, '"');
		char word[64], want[80];
		assert_non_null(q);
		p = q;
		if (entry_tail && strncmp(q + 1, entry_tail, strlen(entry_tail)) != 0)
			continue;
		snprintf(word, sizeof(word), "%.*s", (int)(q - name), name);
		snprintf(want, sizeof(want), fmt, word);
		n++;
		if (!strstr(man, want)) {
			print_error("%s %s is not documented (looked for \"%s\")\n", what, word, want);
			missing++;
		}
	}
	assert_int_equal(missing, 0);
	return n;
}

static void test_cli_commands_in_man1(void **state)
{
	_cleanup_free_ char *src = slurp("tools/capvault.c");
	_cleanup_free_ char *man = slurp("doc/capvault.1.scd");
	(void)state;
	/* Each command starts a paragraph: "\n*name*". */
	size_t n = each_entry(src, "struct cli_command commands[]", NULL, man, "\n*%s*",
			      "capvault subcommand");
	assert_true(n >= 5);
}

static void test_daemon_options_in_man8(void **state)
{
	_cleanup_free_ char *src = slurp("tools/capvaultd.c");
	_cleanup_free_ char *man = slurp("doc/capvaultd.8.scd");
	(void)state;
	size_t n = each_entry(src, "struct option opts[]", NULL, man, "*--%s*",
			      "capvaultd option");
	assert_true(n >= 4);
}

/* The io_uring calls capvault makes through liburing must be allowed by
 * the unit's filter, and documented in capvaultd(8). */
static void test_unit_allows_io_uring(void **state)
{
	static const char *const calls[] = { "io_uring_setup", "io_uring_enter",
					      "io_uring_register" };
	_cleanup_free_ char *unit = slurp("systemd/capvault.service.in");
	_cleanup_free_ char *man = slurp("doc/capvaultd.8.scd");
	(void)state;
	const char *filter = strstr(unit, "\nSystemCallFilter=@system-service");
	assert_non_null(filter);
	const char *eol = strchr(filter + 1, '\n');
	assert_non_null(eol);
	for (size_t i = 0; i < ARRAY_SIZE(calls); i++) {
		const char *hit = strstr(filter, calls[i]);
		if (!hit || hit > eol)
			fail_msg("SystemCallFilter= does not allow %s", calls[i]);
		if (!strstr(man, calls[i]))
			fail_msg("capvaultd.8.scd does not document %s", calls[i]);
	}
	assert_non_null(strstr(unit, "\nCapabilityBoundingSet=\n"));
	assert_non_null(strstr(unit, "\nType=notify\n"));
	assert_non_null(strstr(unit, "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_keys_in_man5),
		cmocka_unit_test(test_cli_commands_in_man1),
		cmocka_unit_test(test_daemon_options_in_man8),
		cmocka_unit_test(test_unit_allows_io_uring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
