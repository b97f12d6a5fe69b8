/*
 * fuzz_api.c - the HTTP request pieces capvault parses itself (api/parse.c:
 * Range headers, decimal ids and limits, comma lists, CloudShark date
 * ranges, Content-Disposition names, listing sort orders and their
 * cursors) and the JSON bodies it accepts
 * (jansson, as the handlers load them). The first byte picks the parser;
 * the rest is the text. Nothing may crash, leak or read out of bounds, and
 * a Range that parses must lie inside the object, and a cursor that
 * parses must print as one that reads back the same.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "SORT CURSOR": the cursor is read for that order. */
static void fuzz_sort(const char *text)
{
	struct api_sort sort;
	struct api_sort_pos pos;
	char spec[32];
	const char *space = strchr(text, ' ');
	size_t n = space ? (size_t)(space - text) : strlen(text);
	if (n >= sizeof(spec))
		return;
	memcpy(spec, text, n);
	spec[n] = '\0';
	if (api_parse_sort(spec, &sort) < 0 || !space ||
	    api_parse_sort_cursor(space + 1, &sort, &pos) < 0)
		return;
	char *again = api_sort_cursor(&sort, &pos);
	struct api_sort_pos back = { 0 };
	if (again && (api_parse_sort_cursor(again, &sort, &back) < 0 ||
		      api_sort_cmp(&sort, &pos, &back) != 0))
		abort();
	free(again);
	free(back.name);
	free(pos.name);
}

static void fuzz_text(uint8_t which, const char *text)
{
	uint64_t a, b;
	char **list = NULL;
	size_t n = 0;
	char buf[512];
	switch (which % 7) {
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
	case 6:
		fuzz_sort(text);
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
