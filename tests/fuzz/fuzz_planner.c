/*
 * fuzz_planner.c - the BPF planner under hostile input: any expression
 * gives a plan (ALL when it cannot narrow), an explanation, and a match
 * decision for a packet key, never a crash. The packet key is dissected
 * from the tail of the input, so pktkeys is fuzzed on the way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pktkeys.h"
#include "planner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* expression NUL packet-bytes */
	const uint8_t *nul = memchr(data, 0, size);
	size_t exprlen = nul ? (size_t)(nul - data) : size;
	char *expr = malloc(exprlen + 1);
	if (!expr)
		return 0;
	memcpy(expr, data, exprlen);
	expr[exprlen] = '\0';
	struct plan *plan = NULL;
	if (planner_parse(expr, &plan) == 0) {
		char buf[256];
		plan_explain(plan, buf, sizeof(buf));
		struct flow_key key;
		const uint8_t *pkt = nul ? nul + 1 : data + size;
		size_t pktlen = (size_t)(data + size - pkt);
		static const uint32_t linktypes[] = { 0, 1, 12, 101, 108, 113, 228, 229, 276 };
		uint32_t lt = linktypes[pktlen % (sizeof(linktypes) / sizeof(linktypes[0]))];
		pktkeys_extract(lt, pkt, pktlen, &key);
		plan_match_key(plan, &key);
		plan_free(plan);
	}
	free(expr);
	return 0;
}
