/*
 * test_config.c - config/: value parsers, the embedded default, the
 * annotated example, and every case file in tests/config-cases/.
 *
 * Case files (OpenBSD regress style): good-*.yaml must load with no error;
 * bad-*.yaml must fail with exactly the lines of the sibling bad-*.expect,
 * in order, each "LINE:COL: message" (just "message" for an error with no
 * place). CONFIG_CASES and CONFIG_SOURCE (the config/ folder) come from the
 * environment meson sets.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "config.h"
#include "errbuf.h"

static const char *env_dir(const char *name)
{
	const char *v = getenv(name);

	if (!v) {
		fprintf(stderr, "%s is not set: run through meson test\n", name);
		exit(77);
	}
	return v;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;

	assert_non_null(f);
	FILE *mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(f);
	fclose(mem);
	return buf;
}

/* ---- value parsers ---- */

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t ns;
	} cases[] = {
		{ "0", 0, 0 },
		{ "30", 0, 30000000000ull },
		{ "500ms", 0, 500000000ull },
		{ "30s", 0, 30000000000ull },
		{ "5m", 0, 300000000000ull },
		{ "2h", 0, 7200000000000ull },
		{ "7d", 0, 604800000000000ull },
		{ "1w", 0, 604800000000000ull },
		{ "1.5h", 0, 5400000000000ull },
		{ "0.5ms", 0, 500000ull },
		{ "250us", 0, 250000ull },
		{ "7ns", 0, 7 },
		{ "10 s", 0, 10000000000ull },
		{ "18446744073709551615ns", 0, UINT64_MAX },
		{ "18446744073709551616ns", -ERANGE, 0 },
		{ "30000w", 0, 30000ull * 604800000000000ull },
		{ "31000w", -ERANGE, 0 },
		{ "1.5ns", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ "s", -EINVAL, 0 },
		{ "-5s", -EINVAL, 0 },
		{ "5x", -EINVAL, 0 },
		{ "5S", -EINVAL, 0 },
		{ "1.s", -EINVAL, 0 },
		{ ".5s", -EINVAL, 0 },
		{ "1h30m", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "1.0000000000000000001s", -EINVAL, 0 },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct errbuf why = { "" };
		uint64_t ns = 12345;
		int rc = config_parse_duration(cases[i].text, &ns, &why);
		if (rc != cases[i].rc)
			fail_msg("'%s': got %d, want %d (%s)", cases[i].text, rc, cases[i].rc,
				 why.msg);
		if (rc == 0)
			assert_int_equal(ns, cases[i].ns);
		else
			assert_true(why.msg[0] != '\0');
	}
}

static void test_sizes(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t bytes;
	} cases[] = {
		{ "4096", 0, 4096 },
		{ "0", 0, 0 },
		{ "10MB", 0, 10000000ull },
		{ "10mb", 0, 10000000ull },
		{ "500GiB", 0, 500ull << 30 },
		{ "1.5TiB", 0, 3ull << 39 },
		{ "1.1GB", 0, 1100000000ull },
		{ "2KiB", 0, 2048 },
		{ "3kB", 0, 3000 },
		{ "12B", 0, 12 },
		{ "1 MiB", 0, 1 << 20 },
		{ "15EiB", 0, 15ull << 60 },
		{ "16EiB", -ERANGE, 0 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "99999999999999999999999", -ERANGE, 0 },
		{ "1.5B", -EINVAL, 0 },
		{ "10G", -EINVAL, 0 },
		{ "10k", -EINVAL, 0 },
		{ "10 bytes", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "5%", -EINVAL, 0 },
		{ "GiB", -EINVAL, 0 },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct errbuf why = { "" };
		uint64_t bytes = 12345;
		int rc = config_parse_size(cases[i].text, &bytes, &why);
		if (rc != cases[i].rc)
			fail_msg("'%s': got %d, want %d (%s)", cases[i].text, rc, cases[i].rc,
				 why.msg);
		if (rc == 0)
			assert_int_equal(bytes, cases[i].bytes);
	}
}

static void test_ambiguous_size_message(void **state)
{
	struct errbuf why = { "" };
	uint64_t v;

	(void)state;
	assert_int_equal(config_parse_size("10G", &v, &why), -EINVAL);
	assert_string_equal(why.msg, "ambiguous unit in '10G': write GB (powers of 1000) or "
				     "GiB (powers of 1024)");
}

static void test_format(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(config_format_duration(90000000000ull, buf, sizeof(buf)), "90s");
	assert_string_equal(config_format_duration(604800000000000ull, buf, sizeof(buf)), "1w");
	assert_string_equal(config_format_duration(1500000, buf, sizeof(buf)), "1500us");
	assert_string_equal(config_format_duration(0, buf, sizeof(buf)), "0ns");
	assert_string_equal(config_format_size(1536, buf, sizeof(buf)), "1536B");
	assert_string_equal(config_format_size(1ull << 30, buf, sizeof(buf)), "1GiB");
	assert_string_equal(config_format_size(3ull << 39, buf, sizeof(buf)), "1536GiB");
}

/* ---- the embedded default ---- */

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/test_config.XXXXXX";
	char *dir = mkdtemp(tmpl);

	assert_non_null(dir);
	return strdup(dir);
}

static void rm_rf(const char *dir)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_default_text_is_default_yaml(void **state)
{
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof(path), "%s/default.yaml", env_dir("CONFIG_SOURCE"));
	_cleanup_free_ char *text = slurp(path);
	assert_string_equal(config_default_text(), text);
}

static void test_default_loads(void **state)
{
	_cleanup_free_ char *dir = make_tmpdir();
	char old[PATH_MAX];
	struct config *cfg = NULL;
	struct config_errors *errs = NULL;

	(void)state;
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(mkdir("autoimport", 0700), 0);
	assert_int_equal(config_errors_new(&errs), 0);
	assert_int_equal(config_load_default(&cfg, 0, errs), 0);
	assert_int_equal(config_errors_count(errs), 0);
	assert_string_equal(cfg->store, "./capvault-data");
	assert_int_equal(cfg->n_imports, 1);
	assert_string_equal(cfg->imports[0].path, "./autoimport");
	assert_string_equal(cfg->imports[0].failed_folder, "./autoimport/.failed");
	assert_true(cfg->imports[0].recursive);
	assert_int_equal(cfg->imports[0].watch, CONFIG_WATCH_AUTO);
	assert_int_equal(cfg->imports[0].after_import, CONFIG_AFTER_DELETE);
	assert_int_equal(cfg->imports[0].poll_interval_ns, 10000000000ull);
	assert_int_equal(cfg->imports[0].settle_time_ns, 2000000000ull);
	assert_int_equal(cfg->imports[0].ignore.n, 3);
	assert_string_equal(cfg->imports[0].ignore.v[2], "*.part");
	assert_int_equal(cfg->api.n_listen, 1);
	assert_string_equal(cfg->api.listen[0].host, "127.0.0.1");
	assert_int_equal(cfg->api.listen[0].port, 8080);
	assert_string_equal(cfg->api.unix_socket, "./capvault-data/capvault.sock");
	assert_null(cfg->api.tls_cert);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_true(cfg->jobs >= 1 && cfg->jobs <= 256);
	assert_string_equal(cfg->retention.protect_tag, "keep");
	assert_int_equal(cfg->retention.interval_ns, 3600000000000ull);
	assert_int_equal(cfg->retention.n_policies, 0);
	cfg = config_free(cfg);
	assert_int_equal(rmdir("autoimport"), 0);

	/* Without its import folder the default fails, unless told not to look. */
	assert_int_equal(config_load_default(&cfg, 0, errs), -EINVAL);
	assert_null(cfg);
	assert_int_equal(config_errors_count(errs), 1);
	assert_string_equal(config_errors_get(errs, 0)->text,
			    "<default>:14:11: import folder './autoimport' does not exist");
	assert_int_equal(config_load_default(&cfg, CONFIG_NO_PATH_CHECKS, NULL), 0);
	config_free(cfg);
	config_errors_free(errs);
	assert_int_equal(chdir(old), 0);
	rm_rf(dir);
}

/* ---- the annotated example ---- */

/* Replaces every from with to; returns a new string. */
static char *replace_all(const char *text, const char *from, const char *to)
{
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);

	assert_non_null(mem);
	for (const char *p = text, *hit; *p; p = hit + strlen(from)) {
		hit = strstr(p, from);
		if (!hit) {
			fputs(p, mem);
			break;
		}
		fwrite(p, 1, (size_t)(hit - p), mem);
		fputs(to, mem);
	}
	fclose(mem);
	return out;
}

/* The example names real system paths; point them at a temporary tree
 * that has the folders it expects, and it must load without an error. */
static void test_example_loads(void **state)
{
	char path[PATH_MAX], sub[PATH_MAX + 64];
	_cleanup_free_ char *dir = make_tmpdir();
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/capvault.yaml", env_dir("CONFIG_SOURCE"));
	_cleanup_free_ char *text = slurp(path);
	snprintf(sub, sizeof(sub), "%s/srv", dir);
	_cleanup_free_ char *t1 = replace_all(text, "/srv/captures", sub);
	snprintf(sub, sizeof(sub), "%s/var", dir);
	_cleanup_free_ char *t2 = replace_all(t1, "/var/lib/capvault", sub);
	static const char *const folders[] = { "srv", "srv/inbox", "srv/probes" };
	for (size_t i = 0; i < ARRAY_SIZE(folders); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, folders[i]);
		assert_int_equal(mkdir(sub, 0700), 0);
	}
	assert_int_equal(config_errors_new(&errs), 0);
	int rc = config_load_buffer(&cfg, t2, strlen(t2), "capvault.yaml", dir, 0, errs);
	for (size_t i = 0; i < config_errors_count(errs); i++)
		print_error("%s\n", config_errors_get(errs, i)->text);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->n_imports, 2);
	assert_int_equal(cfg->imports[1].after_import, CONFIG_AFTER_MOVE);
	assert_int_equal(cfg->retention.min_free_percent, 5);
	assert_int_equal(cfg->retention.n_policies, 3);
	assert_true(cfg->retention.policies[2].allow_empty);
	config_free(cfg);
	config_errors_free(errs);
	rm_rf(dir);
}

/* Every key the schema knows is documented in the example, set or
 * commented out (like a man page test). */
static void test_every_key_documented(void **state)
{
	char path[PATH_MAX];
	size_t n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/capvault.yaml", env_dir("CONFIG_SOURCE"));
	_cleanup_free_ char *text = slurp(path);
	for (const char *const *k = config_keys(); *k; k++, n++) {
		const char *last = strrchr(*k, '.');
		char needle[128];
		snprintf(needle, sizeof(needle), "%s:", last ? last + 1 : *k);
		if (!strstr(text, needle))
			fail_msg("key %s is not documented in capvault.yaml", *k);
	}
	assert_true(n > 30);
	assert_string_equal(config_keys()[0], "store");
}

/* ---- case files ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .yaml case files of dir, sorted so failures repeat in one order. */
static size_t list_cases(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
			continue;
		names = reallocarray(names, n + 1, sizeof(*names));
		assert_non_null(names);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	return n;
}

/* "LINE:COL: message" lines, as the .expect files hold them. */
static char *errors_as_text(const struct config_errors *errs)
{
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);

	assert_non_null(mem);
	for (size_t i = 0; i < config_errors_count(errs); i++) {
		const struct config_error *e = config_errors_get(errs, i);
		if (e->line)
			fprintf(mem, "%u:%u: %s\n", e->line, e->col, e->message);
		else
			fprintf(mem, "%s\n", e->message);
	}
	fclose(mem);
	return out;
}

/* Returns whether the case behaved; prints why not. */
static bool run_case(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	bool good = !strncmp(name, "good-", 5), ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(config_errors_new(&errs), 0);
	int rc = config_load(&cfg, path, errs);
	_cleanup_free_ char *got = errors_as_text(errs);
	if (good) {
		ok = rc == 0 && cfg && !got[0];
		if (!ok)
			print_error("%s: want no error, got %d:\n%s", name, rc, got);
	} else {
		snprintf(path + strlen(path) - 5, 8, ".expect");
		_cleanup_free_ char *want = slurp(path);
		ok = rc == -EINVAL && !cfg && !strcmp(got, want);
		if (!ok)
			print_error("%s: got %d:\n%s--- want -EINVAL:\n%s", name, rc, got, want);
	}
	config_free(cfg);
	config_errors_free(errs);
	return ok;
}

static void test_cases(void **state)
{
	const char *dir = env_dir("CONFIG_CASES");
	char **names = NULL;
	size_t n = list_cases(dir, &names), failed = 0, bad = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		if (!run_case(dir, names[i]))
			failed++;
		bad += !strncmp(names[i], "bad-", 4);
		free(names[i]);
	}
	free(names);
	assert_true(n >= 20 && bad >= 15);
	if (failed)
		fail_msg("%zu of %zu config cases failed", failed, n);
}

/* ---- the rest of the API ---- */

static void test_relative_to_file(void **state)
{
	char path[PATH_MAX], want[PATH_MAX + 32];
	const char *dir = env_dir("CONFIG_CASES");
	_cleanup_free_ char *abs = realpath(dir, NULL);
	struct config *cfg = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/good-full.yaml", dir);
	assert_int_equal(config_load(&cfg, path, NULL), 0);
	snprintf(want, sizeof(want), "%s/folders/vault", abs);
	assert_string_equal(cfg->store, want);
	snprintf(want, sizeof(want), "%s/folders/probes", abs);
	assert_string_equal(cfg->imports[1].path, want);
	snprintf(want, sizeof(want), "%s/folders/probes/.failed", abs);
	assert_string_equal(cfg->imports[1].failed_folder, want);
	snprintf(want, sizeof(want), "%s/folders/done", abs);
	assert_string_equal(cfg->imports[1].move_to, want);
	assert_int_equal(cfg->imports[1].tags.n, 1);
	assert_int_equal(cfg->api.n_listen, 4);
	assert_string_equal(cfg->api.listen[1].host, "::1");
	assert_int_equal(cfg->api.listen[1].port, 8443);
	assert_int_equal(cfg->api.max_upload_size, 3ull << 39);
	assert_int_equal(cfg->api.header_timeout_ns, 30000000000ull);
	assert_int_equal(cfg->api.max_connections_per_ip, 0);
	assert_int_equal(cfg->api.body_timeout_ns, 120000000000ull);
	assert_int_equal(cfg->api.body_min_rate, 0);
	assert_int_equal(cfg->retention.min_free_bytes, 10ull << 30);
	assert_int_equal(cfg->retention.min_free_percent, 0);
	assert_true(cfg->retention.policies[0].has_max_age);
	assert_true(cfg->retention.policies[0].has_max_count);
	assert_int_equal(cfg->retention.policies[0].age_by, CONFIG_AGE_BY_LAST_PACKET);
	assert_false(cfg->retention.policies[1].has_max_age);
	assert_int_equal(cfg->jobs, 4);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	config_free(cfg);
}

/* object_store.read_timeout: its own key (reads fail fast while uploads
 * keep request_timeout), 10s when absent; and the section's other defaults. */
static void test_object_store_timeouts(void **state)
{
	char path[PATH_MAX];
	const char *dir = env_dir("CONFIG_CASES");
	struct config *cfg = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/good-object-store.yaml", dir);
	assert_int_equal(config_load(&cfg, path, NULL), 0);
	assert_int_equal(cfg->object_store.request_timeout_ns, 60000000000ull);
	assert_int_equal(cfg->object_store.read_timeout_ns, 2000000000ull);
	config_free(cfg);
	snprintf(path, sizeof(path), "%s/good-object-store-defaults.yaml", dir);
	assert_int_equal(config_load(&cfg, path, NULL), 0);
	assert_int_equal(cfg->object_store.request_timeout_ns, 30000000000ull);
	assert_int_equal(cfg->object_store.read_timeout_ns, 10000000000ull);
	/* The rest of the defaults the schema takes from objstore.h. */
	assert_int_equal(cfg->object_store.connect_timeout_ns, 10000000000ull);
	assert_int_equal(cfg->object_store.max_inflight, 16);
	assert_int_equal(cfg->object_store.part_size, 32ull << 20);
	assert_string_equal(cfg->object_store.region, "us-east-1");
	config_free(cfg);
	/* prefix: "" as README and capvault.yaml show it: the bucket's root. */
	snprintf(path, sizeof(path), "%s/good-object-store-root-prefix.yaml", dir);
	assert_int_equal(config_load(&cfg, path, NULL), 0);
	assert_string_equal(cfg->object_store.prefix, "");
	config_free(cfg);
}

static void test_error_text(void **state)
{
	static const char text[] = "store: /srv/vault\nimport:\n  - path: /srv/in\n    recursiv: true\n";
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;

	(void)state;
	assert_int_equal(config_errors_new(&errs), 0);
	assert_int_equal(config_load_buffer(&cfg, text, strlen(text), "capvault.yaml", NULL,
					    CONFIG_NO_PATH_CHECKS, errs),
			 -EINVAL);
	assert_int_equal(config_errors_count(errs), 1);
	const struct config_error *e = config_errors_get(errs, 0);
	assert_string_equal(e->text,
			    "capvault.yaml:4:5: unknown key 'recursiv' (did you mean 'recursive'?)");
	assert_string_equal(e->file, "capvault.yaml");
	assert_int_equal(e->line, 4);
	assert_int_equal(e->col, 5);
	assert_null(config_errors_get(errs, 1));
	config_errors_free(errs);
}

static void test_unreadable_file(void **state)
{
	struct config_errors *errs = NULL;
	struct config *cfg = (struct config *)1;

	(void)state;
	assert_int_equal(config_errors_new(&errs), 0);
	assert_int_equal(config_load(&cfg, "/nonexistent/capvault.yaml", errs), -ENOENT);
	assert_null(cfg);
	assert_string_equal(config_errors_get(errs, 0)->text,
			    "/nonexistent/capvault.yaml: cannot read: No such file or directory");
	config_errors_free(errs);
}

/* A file of nothing but mistakes stops listing them at a bound. */
static void test_error_cap(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;

	(void)state;
	fputs("store: /tmp\n", mem);
	for (int i = 0; i < 500; i++)
		fprintf(mem, "bogus%d: 1\n", i);
	fclose(mem);
	assert_int_equal(config_errors_new(&errs), 0);
	assert_int_equal(config_load_buffer(&cfg, text, len, "x", NULL, 0, errs), -EINVAL);
	assert_int_equal(config_errors_count(errs), 101);
	assert_string_equal(config_errors_get(errs, 100)->message,
			    "too many errors, stopped listing them");
	config_errors_free(errs);
	free(text);
}

/* Not NUL-terminated, with garbage after len: only len bytes are read. */
static void test_buffer_length(void **state)
{
	static const char text[] = "store: /tmp\nGARBAGE: [";
	struct config *cfg = NULL;

	(void)state;
	assert_int_equal(config_load_buffer(&cfg, text, 12, "x", NULL, CONFIG_NO_PATH_CHECKS,
					    NULL),
			 0);
	assert_string_equal(cfg->store, "/tmp");
	config_free(cfg);
	assert_null(config_free(NULL));
	assert_null(config_errors_free(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_ambiguous_size_message),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_default_text_is_default_yaml),
		cmocka_unit_test(test_default_loads),
		cmocka_unit_test(test_example_loads),
		cmocka_unit_test(test_every_key_documented),
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_relative_to_file),
		cmocka_unit_test(test_object_store_timeouts),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_buffer_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
