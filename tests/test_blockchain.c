/*
 * test_blockchain.c - the chaining states of a tiered object's blocks
 * (index/objstore/blockdig.h): one pass gives the name's SHA-256 and a
 * state after each whole block, however the bytes are fed; each block
 * checks against the states around it (the last one against the name),
 * and a changed byte, a swapped state, a block from elsewhere or a wrong
 * length does not.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "blockdig.h"

#define B OBJCACHE_BLOCK

struct states {
	uint8_t *s;
	size_t n, emits;
};

static int keep(void *opaque, uint64_t first, const uint8_t *states, size_t n)
{
	struct states *st = opaque;

	assert_int_equal(first, st->n);
	memcpy(st->s + st->n * BLOCKDIG_STATE, states, n * BLOCKDIG_STATE);
	st->n += n;
	st->emits++;
	return 0;
}

static uint8_t *object(size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);

	assert_non_null(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	return buf;
}

/* Chains size bytes fed piece bytes at a time, per_emit states per emit. */
static void chain(const uint8_t *buf, size_t size, size_t piece, size_t per_emit,
		  struct states *st, uint8_t whole[32])
{
	struct blockchain *c = NULL;

	st->s = malloc((size / B + 1) * BLOCKDIG_STATE);
	assert_non_null(st->s);
	st->n = st->emits = 0;
	assert_int_equal(blockchain_new(&c, per_emit, keep, st), 0);
	for (size_t off = 0; off < size; off += piece)
		assert_int_equal(blockchain_update(c, buf + off, size - off < piece ? size - off : piece),
				 0);
	assert_int_equal(blockchain_finish(c, whole), 0);
	blockchain_free(c);
}

static int check(const struct states *st, const uint8_t name[32], uint64_t block, size_t size,
		 const uint8_t *buf, size_t len)
{
	const uint8_t *before = block ? st->s + (block - 1) * BLOCKDIG_STATE : NULL;
	const uint8_t *after = block < st->n ? st->s + block * BLOCKDIG_STATE : NULL;

	return blockchain_check(before, after, name, block, size, buf, len);
}

static void sound_and_tampered(size_t size, size_t piece, size_t per_emit)
{
	uint8_t *buf = object(size), name[32], whole[32];
	unsigned n = 0;
	struct states st;
	uint64_t blocks = (size + B - 1) / B;

	assert_true(EVP_Digest(buf, size, name, &n, EVP_sha256(), NULL));
	chain(buf, size, piece, per_emit, &st, whole);
	assert_memory_equal(whole, name, 32);
	assert_int_equal(st.n, size / B);
	assert_int_equal(st.emits, (st.n + per_emit - 1) / per_emit);
	for (uint64_t b = 0; b < blocks; b++) {
		size_t len = b + 1 == blocks ? size - b * B : B;
		assert_int_equal(check(&st, name, b, size, buf + b * B, len), 0);
		buf[b * B + len / 2] ^= 0x40;
		assert_int_equal(check(&st, name, b, size, buf + b * B, len), -EBADMSG);
		buf[b * B + len / 2] ^= 0x40;
		assert_int_equal(check(&st, name, b, size, buf + b * B, len - 1), -EBADMSG);
	}
	if (blocks > 2) {
		/* Block 1's bytes in block 0's place, and a state from elsewhere. */
		assert_int_equal(check(&st, name, 0, size, buf + B, B), -EBADMSG);
		memcpy(st.s, st.s + BLOCKDIG_STATE, BLOCKDIG_STATE);
		assert_int_equal(check(&st, name, 1, size, buf + B, B), -EBADMSG);
	}
	free(st.s);
	free(buf);
}

static void test_blocks_and_a_tail(void **state)
{
	(void)state;
	sound_and_tampered(5 * B + 777, 4096, 2);
	sound_and_tampered(5 * B + 777, 3 * B + 5, 1024);
}

static void test_whole_blocks(void **state)
{
	(void)state;
	/* The last block is whole: its state is kept, the name checks it. */
	sound_and_tampered(4 * B, B, 3);
	sound_and_tampered(B, 100, 1);
}

static void test_one_short_block(void **state)
{
	(void)state;
	sound_and_tampered(1000, 1000, 4);
	sound_and_tampered(1, 1, 1);
}

/* No emit: the name's hash alone. */
static void test_without_states(void **state)
{
	uint8_t *buf = object(3 * B + 1), name[32], whole[32];
	struct blockchain *c = NULL;
	unsigned n = 0;

	(void)state;
	assert_true(EVP_Digest(buf, 3 * B + 1, name, &n, EVP_sha256(), NULL));
	assert_int_equal(blockchain_new(&c, 8, NULL, NULL), 0);
	assert_int_equal(blockchain_update(c, buf, 3 * B + 1), 0);
	assert_int_equal(blockchain_finish(c, whole), 0);
	assert_memory_equal(whole, name, 32);
	blockchain_free(c);
	free(buf);
}

static int refuse(void *opaque, uint64_t first, const uint8_t *states, size_t n)
{
	(void)opaque, (void)first, (void)states, (void)n;
	return -ENOSPC;
}

/* An emit that fails stops the update that made it. */
static void test_emit_error(void **state)
{
	uint8_t *buf = object(2 * B);
	struct blockchain *c = NULL;

	(void)state;
	assert_int_equal(blockchain_new(&c, 1, refuse, NULL), 0);
	assert_int_equal(blockchain_update(c, buf, 2 * B), -ENOSPC);
	blockchain_free(c);
	assert_int_equal(blockchain_new(&c, 0, refuse, NULL), -EINVAL);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_and_a_tail),
		cmocka_unit_test(test_whole_blocks),
		cmocka_unit_test(test_one_short_block),
		cmocka_unit_test(test_without_states),
		cmocka_unit_test(test_emit_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
