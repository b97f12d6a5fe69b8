/*
 * test_tarsource.c - the tar stream reader: captures told from other
 * members by their first bytes (through gzip and zstd), members read
 * back byte for byte through a pipe in tape-sized blocks, folders and
 * links passed over, a cut archive reported.
 *
 * The test writes its ustar archives by hand (header, checksum, padding)
 * so that only tarsource.c includes <archive.h>.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "capwriter.h"
#include "tarsource.h"

static const uint8_t pcap_le[24] = { 0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0,
				     0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0 };
static const uint8_t pcapng[12] = { 0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a };

static void test_sniff(void **state)
{
	(void)state;
	uint8_t gz[256];
	assert_int_equal(tarsource_sniff(pcap_le, 24, false), 1);
	assert_int_equal(tarsource_sniff(pcapng, 12, false), 1);
	assert_int_equal(tarsource_sniff("<html>", 6, false), 0);
	assert_int_equal(tarsource_sniff(pcap_le, 3, false), -EAGAIN);
	assert_int_equal(tarsource_sniff("ab", 2, true), 0);
	size_t n = cw_gzip(pcap_le, sizeof(pcap_le), gz, sizeof(gz));
	assert_true(n > 0);
	assert_int_equal(tarsource_sniff(gz, n, true), 1);
	assert_int_equal(tarsource_sniff(gz, 8, false), -EAGAIN);
	n = cw_gzip("just some text", 14, gz, sizeof(gz));
	assert_true(n > 0);
	assert_int_equal(tarsource_sniff(gz, n, true), 0);
	/* zstd frame of "\xd4\xc3\xb2\xa1" stored raw (zstd -19 of 4 bytes). */
	static const uint8_t zst[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x04, 0x21, 0x00,
				       0x00, 0xd4, 0xc3, 0xb2, 0xa1 };
	assert_int_equal(tarsource_sniff(zst, sizeof(zst), true), 1);
	/* Corrupt gzip is a capture that will fail, not a skip. */
	assert_int_equal(tarsource_sniff("\x1f\x8b\x08\x00\xff\xff\xff\xff\xff\xff\xff\xff", 12, true), 1);
}

/* Appends one ustar header (and data, padded) to f. */
static void tar_add(FILE *f, const char *name, char type, const void *data, size_t len)
{
	uint8_t h[512] = { 0 };
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", len);
	snprintf((char *)h + 136, 12, "%011o", 0);
	memset(h + 148, ' ', 8);
	h[156] = (uint8_t)type;
	memcpy(h + 257, "ustar\0" "00", 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	assert_int_equal(fwrite(h, 1, 512, f), 512);
	if (len) {
		assert_int_equal(fwrite(data, 1, len, f), len);
		static const uint8_t pad[512];
		assert_int_equal(fwrite(pad, 1, (512 - len % 512) % 512, f), (512 - len % 512) % 512);
	}
}

/* Reads every member's bytes back through head + data. */
static size_t read_member(struct tarsource *ts, uint8_t *out, size_t cap, int *verdict)
{
	const void *buf;
	size_t len, n = 0;
	struct errbuf eb = { { 0 } };
	*verdict = tarsource_head(ts, &buf, &len, &eb);
	assert_true(*verdict >= 0);
	do {
		assert_true(n + len <= cap);
		memcpy(out + n, buf, len);
		n += len;
	} while (tarsource_data(ts, &buf, &len, &eb) == 1);
	return n;
}

static void test_stream(void **state)
{
	(void)state;
	size_t big = 300000;
	uint8_t *cap = malloc(big), *back = malloc(big);
	assert_non_null(cap);
	memcpy(cap, pcap_le, sizeof(pcap_le));
	for (size_t i = sizeof(pcap_le); i < big; i++)
		cap[i] = (uint8_t)(i * 7);
	char path[] = "/tmp/capvault-tar.XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	tar_add(f, "dir/", '5', NULL, 0);
	tar_add(f, "dir/a.pcap", '0', cap, big);
	tar_add(f, "dir/link.pcap", '2', NULL, 0);
	tar_add(f, "notes.txt", '0', "hello world\n", 12);
	tar_add(f, "tiny", '0', "ab", 2);
	static const uint8_t end[1024];
	fwrite(end, 1, sizeof(end), f);
	fclose(f);

	/* Through a pipe, in 512-byte reads as from a tape drive. */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		FILE *in = fopen(path, "r");
		char b[4096];
		size_t n;
		while ((n = fread(b, 1, sizeof(b), in)) > 0)
			if (write(pfd[1], b, n) != (ssize_t)n)
				_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	int saved = dup(STDIN_FILENO);
	dup2(pfd[0], STDIN_FILENO);
	close(pfd[0]);
	struct tarsource *ts = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(tarsource_open(&ts, "-", 512, &eb), 0);
	struct tar_member m;
	int verdict;
	assert_int_equal(tarsource_next(ts, &m, &eb), 1);
	assert_string_equal(m.name, "dir/a.pcap");
	assert_null(m.not_file);
	assert_int_equal(m.size, big);
	assert_int_equal(read_member(ts, back, big, &verdict), big);
	assert_int_equal(verdict, 1);
	assert_memory_equal(back, cap, big);
	assert_int_equal(tarsource_next(ts, &m, &eb), 1); /* no data: named for what it is */
	assert_string_equal(m.name, "dir/link.pcap");
	assert_string_equal(m.not_file, "a symbolic link");
	assert_int_equal(tarsource_next(ts, &m, &eb), 1);
	assert_string_equal(m.name, "notes.txt");
	assert_null(m.not_file);
	assert_int_equal(read_member(ts, back, big, &verdict), 12);
	assert_int_equal(verdict, 0);
	assert_int_equal(tarsource_next(ts, &m, &eb), 1);
	assert_string_equal(m.name, "tiny");
	assert_int_equal(read_member(ts, back, big, &verdict), 2);
	assert_int_equal(verdict, 0);
	assert_int_equal(tarsource_next(ts, &m, &eb), 0);
	assert_true(tarsource_bytes_read(ts) > big);
	tarsource_free(ts);
	dup2(saved, STDIN_FILENO);
	close(saved);
	waitpid(pid, NULL, 0);
	assert_int_equal(tarsource_probe(path), 1);

	/* Cut inside the capture: the member's data fails, then the archive. */
	assert_int_equal(truncate(path, 512 * 3 + 100000), 0);
	assert_int_equal(tarsource_open(&ts, path, 0, &eb), 0);
	assert_int_equal(tarsource_next(ts, &m, &eb), 1);
	const void *buf;
	size_t len;
	assert_int_equal(tarsource_head(ts, &buf, &len, &eb), 1);
	int r;
	while ((r = tarsource_data(ts, &buf, &len, &eb)) == 1)
		;
	assert_true(r < 0);
	assert_true(tarsource_data_broken(ts));
	assert_true(tarsource_next(ts, &m, &eb) < 0);
	tarsource_free(ts);

	/* Not a tar. */
	f = fopen(path, "w");
	fwrite(cap, 1, 4096, f);
	fclose(f);
	assert_int_equal(tarsource_probe(path), 0);
	unlink(path);
	free(cap);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
