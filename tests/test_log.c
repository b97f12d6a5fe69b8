/*
 * test_log.c - common/textesc.c (the escaped form of names: lossless,
 * always UTF-8) and common/log.c (no line a name can forge; structured
 * fields on journald's native socket).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "textesc.h"

static char *esc(const char *s, unsigned flags)
{
	char *e = text_escape_dup(s, flags);
	assert_non_null(e);
	return e;
}

static void assert_round_trip(const char *s, unsigned flags)
{
	char *e = esc(s, flags), *back = NULL;
	assert_int_equal(text_unescape(e, true, &back), 0);
	assert_string_equal(back, s);
	free(back);
	free(e);
}

static void test_escape_examples(void **state)
{
	(void)state;
	char *e;
	e = esc("plain caf\xc3\xa9.pcap", 0);
	assert_string_equal(e, "plain caf\xc3\xa9.pcap");
	free(e);
	e = esc("bad\xff\xfe\\.pcap", 0);
	assert_string_equal(e, "bad\\xff\\xfe\\\\.pcap");
	free(e);
	e = esc("a\nb\x7f\xc2\x9b\"", 0); /* JSON carries controls itself */
	assert_string_equal(e, "a\nb\x7f\xc2\x9b\"");
	free(e);
	e = esc("a\nb\x7f\xc2\x9b\"", TEXT_ESC_CONTROLS | TEXT_ESC_QUOTE);
	assert_string_equal(e, "a\\x0ab\\x7f\\xc2\\x9b\\x22");
	free(e);
	/* Bidi overrides and isolates, marks, line separators: escaped for
	 * terminals, kept for JSON; other characters beside them kept. */
	e = esc("a\xe2\x80\xae" "cod.exe\xe2\x81\xa6" "x\xe2\x80\xa8" "y\xd8\x9c" "z\xe2\x80\x94",
		TEXT_ESC_CONTROLS);
	assert_string_equal(e, "a\\xe2\\x80\\xae" "cod.exe\\xe2\\x81\\xa6" "x\\xe2\\x80\\xa8" "y\\xd8\\x9c"
			       "z\xe2\x80\x94");
	free(e);
	e = esc("a\xe2\x80\xae" "b", 0);
	assert_string_equal(e, "a\xe2\x80\xae" "b");
	free(e);
	/* Overlong, surrogate and out-of-range forms are not UTF-8. */
	e = esc("\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", 0);
	assert_string_equal(e, "\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80");
	free(e);
	char shown[12];
	assert_string_equal(text_shown("a\n\"b\"cdefgh", shown, sizeof(shown)), "a\\x0a\\x22b");
	assert_true(text_is_plain("a b.pcap", TEXT_ESC_CONTROLS));
	assert_false(text_is_plain("a\\b", 0));
}

static void test_escape_round_trip(void **state)
{
	(void)state;
	char s[300];
	unsigned seed = 15;
	for (int i = 1; i < 256; i++)
		s[i - 1] = (char)i;
	s[255] = '\0';
	assert_round_trip(s, 0);
	assert_round_trip(s, TEXT_ESC_CONTROLS | TEXT_ESC_QUOTE);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)rand_r(&seed) % 40;
		for (size_t i = 0; i < n; i++)
			s[i] = (char)(1 + rand_r(&seed) % 255);
		s[n] = '\0';
		assert_round_trip(s, (unsigned)round % 4);
	}
}

static void test_unescape_strict(void **state)
{
	(void)state;
	char *out = NULL;
	assert_int_equal(text_unescape("a\\tb", true, &out), -EINVAL);
	assert_int_equal(text_unescape("a\\x00", true, &out), -EINVAL);
	assert_int_equal(text_unescape("a\\x4", true, &out), -EINVAL);
	assert_int_equal(text_unescape("a\\", true, &out), -EINVAL);
	assert_int_equal(text_unescape("C:\\temp\\x41", false, &out), 0);
	assert_string_equal(out, "C:\\tempA");
	free(out);
}

static void test_escape_cut(void **state)
{
	(void)state;
	char buf[8];
	/* Cut before an escape that would not fit whole. */
	assert_int_equal(text_escape("ab\xff\xff", 0, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "ab\\xff");
	assert_int_equal(text_escape("x", 0, NULL, 0), 1);
}

/* Runs fn with stderr sent to a file; returns what was written. */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/capvault-test-log.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	off_t len = lseek(fd, 0, SEEK_END);
	char *out = calloc(1, (size_t)len + 1);
	assert_int_equal(pread(fd, out, (size_t)len, 0), len);
	close(fd);
	return out;
}

static void log_hostile(void)
{
	log_info("imported %s", "evil\n<3>capvaultd: forged\\x");
	const struct log_field f[] = { { "NAME", "a\"b\nc" }, { "TOKEN", "ci" }, { "NONE", NULL } };
	log_fields(LOG_LEVEL_INFO, f, 3, "audit: %s", "delete");
}

static void test_no_forged_lines(void **state)
{
	(void)state;
	log_init("capvaultd", LOG_LEVEL_INFO, true);
	log_set_journal(NULL);
	char *out = capture_stderr(log_hostile);
	assert_string_equal(out, "<6>capvaultd: imported evil\\x0a<3>capvaultd: forged\\\\x\n"
				 "<6>capvaultd: audit: delete name=\"a\\x22b\\x0ac\" token=\"ci\"\n");
	free(out);
}

static void log_one_audit(void)
{
	const struct log_field f[] = { { "NAME", "two\nlines" }, { "TOKEN", "ci" } };
	log_fields(LOG_LEVEL_INFO, f, 2, "audit: %s", "delete");
}

/* The value of field key in a native-protocol datagram, into out. */
static bool journal_value(const char *d, size_t len, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key), i = 0;
	while (i < len) {
		const char *line = d + i, *nl = memchr(line, '\n', len - i);
		if (!nl)
			return false;
		const char *eq = memchr(line, '=', (size_t)(nl - line));
		if (eq) {
			if ((size_t)(eq - line) == klen && !memcmp(line, key, klen)) {
				snprintf(out, size, "%.*s", (int)(nl - eq - 1), eq + 1);
				return true;
			}
			i += (size_t)(nl - line) + 1;
			continue;
		}
		uint64_t vlen; /* binary form: KEY\n, le64 length, bytes, \n */
		memcpy(&vlen, nl + 1, 8);
		const char *v = nl + 9;
		if ((size_t)(nl - line) == klen && !memcmp(line, key, klen)) {
			snprintf(out, size, "%.*s", (int)vlen, v);
			return true;
		}
		i = (size_t)(v - d) + vlen + 1;
	}
	return false;
}

static void test_journal_native(void **state)
{
	(void)state;
	char dir[] = "/tmp/capvault-test-journal.XXXXXX", path[128], buf[8192], v[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/socket", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	log_init("capvaultd", LOG_LEVEL_INFO, true);
	log_set_journal(path);
	/* Sent to the journal, not as text on stderr (no entry twice). */
	char *out = capture_stderr(log_one_audit);
	assert_string_equal(out, "");
	free(out);
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	assert_true(n > 0);
	assert_true(journal_value(buf, (size_t)n, "MESSAGE", v, sizeof(v)));
	assert_string_equal(v, "capvaultd: audit: delete name=\"two\\x0alines\" token=\"ci\"");
	assert_true(journal_value(buf, (size_t)n, "PRIORITY", v, sizeof(v)));
	assert_string_equal(v, "6");
	assert_true(journal_value(buf, (size_t)n, "CAPVAULT_NAME", v, sizeof(v)));
	assert_string_equal(v, "two\nlines"); /* the exact bytes */
	assert_true(journal_value(buf, (size_t)n, "CAPVAULT_TOKEN", v, sizeof(v)));
	assert_string_equal(v, "ci");
	/* Plain lines stay on stderr; a journal that is gone loses nothing. */
	close(fd);
	unlink(path);
	out = capture_stderr(log_one_audit);
	assert_string_equal(out, "<6>capvaultd: audit: delete name=\"two\\x0alines\" token=\"ci\"\n");
	free(out);
	/* Journal-only (the CLI): nothing on stderr when the journal is gone. */
	log_set_journal_only(true);
	out = capture_stderr(log_one_audit);
	assert_string_equal(out, "");
	free(out);
	log_set_journal_only(false);
	log_set_journal(NULL);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_examples),
		cmocka_unit_test(test_escape_round_trip),
		cmocka_unit_test(test_unescape_strict),
		cmocka_unit_test(test_escape_cut),
		cmocka_unit_test(test_no_forged_lines),
		cmocka_unit_test(test_journal_native),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
