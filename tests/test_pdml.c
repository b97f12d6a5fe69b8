/*
 * test_pdml.c - PDML (tshark -T pdml) to the detail pane's label tree
 * (api/pdml.h): labels from showname (else show, else name), pos and
 * size, nesting, hidden fields and geninfo left out, only the first
 * packet, and text that is not PDML, holds no packet or nests too deep
 * refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pdml.h"

static const char doc[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<pdml version=\"0\">\n<packet>\n"
	"<proto name=\"geninfo\" showname=\"General information\" size=\"60\">"
	"<field name=\"num\" showname=\"Number\" show=\"1\"/></proto>\n"
	"<proto name=\"eth\" showname=\"Ethernet II, Src: a &amp; b\" size=\"14\" pos=\"0\">"
	"<field name=\"eth.dst\" showname=\"Destination: x\" size=\"6\" pos=\"0\" show=\"x\">"
	"<field name=\"eth.dst_resolved\" showname=\"hidden one\" hide=\"yes\" size=\"6\" pos=\"0\">"
	"<field name=\"inner\" showname=\"inside hidden\"/></field>"
	"<field name=\"eth.lg\" showname=\".... ..1. = LG bit\" size=\"3\" pos=\"0\"/></field>"
	"<field name=\"\" show=\"Text item only\" size=\"0\" pos=\"14\"/>"
	"<field name=\"eth.type\" size=\"2\" pos=\"12\"/></proto>\n"
	"</packet>\n<packet><proto name=\"second\" showname=\"Second packet\"/></packet></pdml>\n";

static void test_tree(void **state)
{
	(void)state;
	json_t *tree = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(pdml_tree(doc, strlen(doc), &tree, &eb), 0);
	char *text = json_dumps(tree, JSON_COMPACT);
	assert_string_equal(
		text,
		"[{\"label\":\"Ethernet II, Src: a & b\",\"pos\":0,\"size\":14,\"children\":["
		"{\"label\":\"Destination: x\",\"pos\":0,\"size\":6,\"children\":["
		"{\"label\":\".... ..1. = LG bit\",\"pos\":0,\"size\":3,\"children\":[]}]},"
		"{\"label\":\"Text item only\",\"pos\":14,\"size\":0,\"children\":[]},"
		"{\"label\":\"eth.type\",\"pos\":12,\"size\":2,\"children\":[]}]}]");
	free(text);
	json_decref(tree);
}

/* tshark numbers frames within what it was fed (the packet and the
 * earlier ones of its connection), not within the capture: the detail
 * tree says neither. */
static void test_frame_number_dropped(void **state)
{
	(void)state;
	static const char fed[] =
		"<pdml><packet><proto name=\"frame\" showname=\"Frame 3: 60 bytes on wire\" "
		"size=\"60\" pos=\"0\"><field name=\"frame.number\" showname=\"Frame Number: 3\" "
		"show=\"3\"/><field name=\"frame.len\" showname=\"Frame Length: 60 bytes\" "
		"show=\"60\"/></proto></packet></pdml>";
	json_t *tree = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(pdml_tree(fed, strlen(fed), &tree, &eb), 0);
	char *text = json_dumps(tree, JSON_COMPACT);
	assert_string_equal(text, "[{\"label\":\"Frame: 60 bytes on wire\",\"pos\":0,\"size\":60,"
				  "\"children\":[{\"label\":\"Frame Length: 60 bytes\",\"children\":[]}]}]");
	free(text);
	json_decref(tree);
}

static void test_refused(void **state)
{
	(void)state;
	json_t *tree = NULL;
	struct errbuf eb = { { 0 } };
	const char *bad = "<pdml><packet><proto name=\"x\"></packet>";
	assert_int_equal(pdml_tree(bad, strlen(bad), &tree, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "does not parse"));
	const char *empty = "<pdml></pdml>";
	assert_int_equal(pdml_tree(empty, strlen(empty), &tree, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "no packet"));
	assert_int_equal(pdml_tree("", 0, &tree, &eb), -EINVAL);
}

static void test_too_deep(void **state)
{
	(void)state;
	size_t size = 64 * 1024, at = 0;
	char *deep = malloc(size);
	assert_non_null(deep);
	at += (size_t)snprintf(deep + at, size - at, "<pdml><packet>");
	for (int i = 0; i < PDML_MAX_DEPTH + 5; i++)
		at += (size_t)snprintf(deep + at, size - at, "<field name=\"f%d\">", i);
	for (int i = 0; i < PDML_MAX_DEPTH + 5; i++)
		at += (size_t)snprintf(deep + at, size - at, "</field>");
	at += (size_t)snprintf(deep + at, size - at, "</packet></pdml>");
	json_t *tree = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(pdml_tree(deep, at, &tree, &eb), -E2BIG);
	free(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_frame_number_dropped),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_too_deep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
