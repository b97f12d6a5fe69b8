/*
 * fuzz_api.c - the HTTP request pieces capvault parses itself (api/parse.c:
 * Range headers, decimal ids and limits, comma lists, CloudShark date
 * ranges, Content-Disposition names) and the JSON bodies it accepts
 * (jansson, as the handlers load them). The first byte picks the parser;
 * the rest is the text. Nothing may crash, leak or read out of bounds, and
 * a Range that parses must lie inside the object.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_text(uint8_t which, const char *text)
{
	uint64_t a, b;
	char **list = NULL;
	size_t n = 0;
	char buf[512];
	switch (which % 6) {
	case 0:
		if (api_parse_range(text, 1000000, &a, &b) == 0 && (a >= 1000000 || a + b > 1000000))
			abort();
		break;
	case 1:
		api_parse_u64(text, &a);
		break;
	case 2:
		if (api_split_list(text, &list, &n) == 0)
			api_strv_free(list, n);
		break;
	case 3:
		api_parse_cs_date_range(text, &a, &b);
		break;
	case 4:
		api_content_disposition(text, buf, sizeof(buf));
		break;
	default: {
		json_error_t err;
		json_t *doc = json_loads(text, 0, &err);
		json_decref(doc);
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	fuzz_text(data[0], text);
	free(text);
	return 0;
}
