/*
 * test_import_journal.c - the resume journal's line format (escaping,
 * round trips, every malformed shape refused), loading a journal whose
 * last line was torn by a crash, and appending after it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "import_journal.h"

static const uint8_t sha[32] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 0xff };

static void roundtrip(const char *key, uint64_t size, uint64_t id)
{
	char line[1024];
	int len = journal_format_line(line, sizeof(line), key, size, sha, id);
	assert_true(len > 0);
	assert_int_equal(line[len - 1], '\n');
	assert_null(memchr(line, '\n', (size_t)len - 1));
	struct journal_entry e;
	assert_int_equal(journal_parse_line(line, (size_t)len - 1, &e), 0);
	assert_string_equal(e.key, key);
	assert_int_equal(e.size, size);
	assert_int_equal(e.capture_id, id);
	assert_memory_equal(e.sha256, sha, 32);
	free(e.key);
}

static void test_roundtrip(void **state)
{
	(void)state;
	roundtrip("/data/a.pcap", 1234, 1);
	roundtrip("-!./x/y.pcap", 0, UINT64_MAX);
	roundtrip("tab\there%and\nnewline\r!member", UINT64_MAX, 42);
	roundtrip("%25 is not unescaped twice", 5, 6);
}

static void test_format(void **state)
{
	(void)state;
	char line[256];
	int len = journal_format_line(line, sizeof(line), "a\tb%", 10, sha, 7);
	assert_true(len > 0);
	assert_memory_equal(line, "a%09b%25\t10\tdeadbeef01020304", 27);
	assert_string_equal(line + len - 5, "ff\t7\n");
	assert_int_equal(journal_format_line(line, 40, "k", 1, sha, 1), -ENAMETOOLONG);
}

static void test_parse_bad(void **state)
{
	(void)state;
	const char *bad[] = {
		"",                                  /* blank: comment-like, 1 */
		"# comment",                         /* 1 */
		"nokey",
		"\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k\t1\t" "0000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k\t1\t" "000000000000000000000000000000000000000000000000000000000000000g\t1",
		"k\tx\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t",
		"k\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t99999999999999999999",
		"k\t-1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k%zz\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k%41\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k%2\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"a\tb\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff\t1",
		"k\t1\t" "00000000000000000000000000000000000000000000000000000000000000ff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct journal_entry e = { 0 };
		int r = journal_parse_line(bad[i], strlen(bad[i]), &e);
		if (i < 2)
			assert_int_equal(r, 1);
		else if (r != -EINVAL)
			fail_msg("line %zu parsed: '%s'", i, bad[i]);
	}
	struct journal_entry e;
	const char *good = "k\t18446744073709551615\t"
			   "00000000000000000000000000000000000000000000000000000000000000ff\t0";
	assert_int_equal(journal_parse_line(good, strlen(good), &e), 0);
	assert_int_equal(e.size, UINT64_MAX);
	free(e.key);
}

/* A run killed in the middle of a line: that line is ignored, the next
 * append starts on a line of its own, and both runs' lines load. */
static void test_torn_and_append(void **state)
{
	(void)state;
	char path[] = "/tmp/capvault-journal.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char line[256];
	int len = journal_format_line(line, sizeof(line), "done.pcap", 100, sha, 1);
	assert_int_equal(write(fd, "# capvault import journal\n", 26), 26);
	assert_int_equal(write(fd, line, (size_t)len), len);
	len = journal_format_line(line, sizeof(line), "torn.pcap", 200, sha, 2);
	assert_int_equal(write(fd, line, (size_t)len - 10), len - 10);
	close(fd);

	struct journal *j = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(journal_open(&j, path, false, &eb), 0);
	assert_int_equal(journal_count(j), 1);
	assert_true(journal_done(j, "done.pcap", 100));
	assert_false(journal_done(j, "done.pcap", 101));
	assert_false(journal_done(j, "torn.pcap", 200));
	assert_false(journal_done(j, "other", 100));
	assert_int_equal(journal_append(j, "torn.pcap", 200, sha, 2, &eb), 0);
	assert_int_equal(journal_append(j, "new\tone", 300, sha, 3, &eb), 0);
	journal_free(j);

	assert_int_equal(journal_open(&j, path, true, &eb), 0);
	assert_int_equal(journal_count(j), 3);
	assert_true(journal_done(j, "done.pcap", 100));
	assert_true(journal_done(j, "torn.pcap", 200));
	assert_true(journal_done(j, "new\tone", 300));
	journal_free(j);
	unlink(path);

	/* A missing journal is empty; read-only does not create it. */
	assert_int_equal(journal_open(&j, path, true, &eb), 0);
	assert_int_equal(journal_count(j), 0);
	journal_free(j);
	assert_int_equal(access(path, F_OK), -1);
}

/* Each line answers for one source of a run: an archive with a member
 * name used twice, killed after the first was journaled, has its second
 * member (same name, same size, other bytes) imported on the re-run, not
 * skipped. A source that changed (lines of other sizes) is still found. */
static void test_one_line_one_source(void **state)
{
	(void)state;
	char path[] = "/tmp/capvault-journal.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct journal *j = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(journal_open(&j, path, false, &eb), 0);
	assert_int_equal(journal_append(j, "a.tar!x.pcap", 100, sha, 1, &eb), 0);
	assert_int_equal(journal_append(j, "changed.pcap", 10, sha, 2, &eb), 0);
	assert_int_equal(journal_append(j, "changed.pcap", 20, sha, 3, &eb), 0);
	assert_int_equal(journal_append(j, "b.tar!y.pcap", 7, sha, 4, &eb), 0);
	assert_int_equal(journal_append(j, "b.tar!y.pcap", 7, sha, 5, &eb), 0);
	journal_free(j);

	assert_int_equal(journal_open(&j, path, true, &eb), 0);
	assert_true(journal_done(j, "a.tar!x.pcap", 100));
	assert_false(journal_done(j, "a.tar!x.pcap", 100)); /* the second x.pcap */
	assert_true(journal_done(j, "changed.pcap", 20));
	assert_true(journal_done(j, "b.tar!y.pcap", 7));
	assert_true(journal_done(j, "b.tar!y.pcap", 7));
	assert_false(journal_done(j, "b.tar!y.pcap", 7));
	journal_free(j);
	unlink(path);
}

/* A file without newlines (the report used /dev/full) is refused after
 * one line's bound, with the line named, not read into memory whole. */
static void test_line_bound(void **state)
{
	(void)state;
	char path[] = "/tmp/capvault-journal.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char line[256];
	int len = journal_format_line(line, sizeof(line), "done.pcap", 100, sha, 1);
	assert_int_equal(write(fd, line, (size_t)len), len);
	char *zeros = calloc(1, 1u << 20);
	assert_non_null(zeros);
	assert_int_equal(write(fd, zeros, 1u << 20), 1 << 20);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);
	free(zeros);

	struct journal *j = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(journal_open(&j, path, true, &eb), -E2BIG);
	assert_null(j);
	assert_non_null(strstr(eb.msg, "line 2 is over 8192 bytes"));
	assert_non_null(strstr(eb.msg, path));

	/* the longest line journal_append writes still loads */
	char key[JOURNAL_LINE_MAX];
	memset(key, 'k', sizeof(key));
	key[JOURNAL_LINE_MAX - 1 - 1 - 20 - 1 - 64 - 1 - 20 - 2] = '\0';
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(journal_open(&j, path, false, &eb), 0);
	assert_int_equal(journal_append(j, key, 1, sha, 1, &eb), 0);
	journal_free(j);
	assert_int_equal(journal_open(&j, path, true, &eb), 0);
	assert_true(journal_done(j, key, 1));
	journal_free(j);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_torn_and_append),
		cmocka_unit_test(test_one_line_one_source),
		cmocka_unit_test(test_line_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
