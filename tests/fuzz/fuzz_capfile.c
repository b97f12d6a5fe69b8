/*
 * fuzz_capfile.c - the capture reader and the gzip/zstd path under
 * hostile input: the bytes go through decomp and capfile in chunks whose
 * sizes come from the input itself, and the input is also decoded as a
 * single record with the last context blob seen, as queries do. Nothing
 * may crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capfile.h"
#include "decomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_state {
	struct capfile *cf;
	uint8_t blob[4096 * 24 + 64];
	size_t bloblen;
	struct errbuf eb;
};

static int on_context(void *opaque, uint64_t offset, const void *blob, size_t len)
{
	struct fuzz_state *st = opaque;
	(void)offset;
	if (len <= sizeof(st->blob)) {
		memcpy(st->blob, blob, len);
		st->bloblen = len;
	}
	return 0;
}

/* Touches every byte of the packet, so ASan checks the reader's bounds. */
static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	(void)opaque;
	if (pkt->caplen > CAPFILE_MAX_RECORD)
		abort();
	volatile uint8_t sum = 0;
	for (uint32_t i = 0; i < pkt->caplen; i++)
		sum += pkt->data[i];
	(void)sum;
	return 0;
}

static int on_output(void *opaque, const void *buf, size_t len)
{
	struct fuzz_state *st = opaque;
	return capfile_feed(st->cf, buf, len, &st->eb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state st = { 0 };
	struct decomp *d = NULL;
	if (size < 1 || capfile_new(&st.cf, on_packet, on_context, &st) < 0)
		return 0;
	if (decomp_new(&d, on_output, &st) < 0) {
		capfile_free(st.cf);
		return 0;
	}
	size_t chunk = (size_t)data[0] * 7 + 1, off = 1;
	int err = 0;
	while (off < size && err == 0) {
		size_t n = size - off < chunk ? size - off : chunk;
		err = decomp_feed(d, data + off, n, &st.eb);
		off += n;
	}
	if (err == 0 && decomp_finish(d, &st.eb) == 0)
		capfile_finish(st.cf, &st.eb);
	/* Random access: decode the input's own bytes as records with the
	 * last context seen. */
	if (st.bloblen > 0 && size > 1 + CAPFILE_RECORD_HEADER) {
		uint32_t rlen;
		struct capfile_packet pkt;
		if (capfile_record_length(st.blob, st.bloblen, data + 1, size - 1, &rlen) == 0 &&
		    rlen <= size - 1)
			capfile_decode_record(st.blob, st.bloblen, data + 1, rlen, 0, &pkt);
	}
	decomp_free(d);
	capfile_free(st.cf);
	return 0;
}
