/*
 * pdml.c - PDML to a label tree (pdml.h), with expat's streaming parser:
 * one pass, a stack of the open items' children arrays, nothing kept of
 * the document itself.
 */
#include "pdml.h"

#include <errno.h>
#include <expat.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pdml {
	XML_Parser parser;
	json_t *root;                      /* the first packet's protocols */
	json_t *stack[PDML_MAX_DEPTH + 1]; /* children arrays of the open items */
	size_t depth;                      /* 0: outside the first packet */
	size_t skip;                       /* > 0: inside a left-out item, that deep */
	bool done, in_packet;
	int err;
};

static const char *attr(const XML_Char **atts, const char *name)
{
	for (size_t i = 0; atts[i]; i += 2)
		if (strcmp(atts[i], name) == 0)
			return atts[i + 1];
	return NULL;
}

static void stop(struct pdml *p, int err)
{
	p->err = err;
	XML_StopParser(p->parser, XML_FALSE);
}

static void add_int(json_t *node, const char *key, const char *text)
{
	char *end;
	long long v = text ? strtoll(text, &end, 10) : 0;
	if (text && *text && !*end && v >= 0)
		json_object_set_new(node, key, json_integer(v));
}

/* An item of the tree: a <proto> or a <field>. */
static void open_item(struct pdml *p, const XML_Char **atts)
{
	const char *name = attr(atts, "name"), *hide = attr(atts, "hide");
	/* frame.number counts within what tshark was fed (the packet and the
	 * earlier ones of its connection), not within the capture: misleading. */
	if ((hide && strcmp(hide, "yes") == 0) ||
	    (name && (strcmp(name, "geninfo") == 0 || strcmp(name, "pkt_comment") == 0 ||
		      strcmp(name, "frame.number") == 0))) {
		p->skip = 1;
		return;
	}
	if (p->depth > PDML_MAX_DEPTH)
		return stop(p, -E2BIG);
	const char *label = attr(atts, "showname");
	if (!label || !*label)
		label = attr(atts, "show");
	if (!label || !*label)
		label = name ? name : "";
	/* "Frame 3: 858 bytes on wire..." -> "Frame: 858 bytes...", for the same reason. */
	const char *colon = name && strcmp(name, "frame") == 0 ? strstr(label, ": ") : NULL;
	char frame_label[512];
	if (colon && strncmp(label, "Frame ", 6) == 0) {
		snprintf(frame_label, sizeof(frame_label), "Frame%s", colon);
		label = frame_label;
	}
	json_t *children = json_array();
	json_t *node = json_pack("{ss}", "label", label);
	if (!children || !node || json_array_append_new(p->stack[p->depth - 1], node) < 0) {
		json_decref(children);
		return stop(p, -ENOMEM);
	}
	add_int(node, "pos", attr(atts, "pos"));
	add_int(node, "size", attr(atts, "size"));
	json_object_set_new(node, "children", children);
	p->stack[p->depth++] = children;
}

static void on_start(void *opaque, const XML_Char *el, const XML_Char **atts)
{
	struct pdml *p = opaque;
	bool item = strcmp(el, "proto") == 0 || strcmp(el, "field") == 0;
	if (p->skip) {
		p->skip += item;
	} else if (!p->in_packet && !p->done && strcmp(el, "packet") == 0) {
		p->in_packet = true;
		p->stack[0] = p->root;
		p->depth = 1;
	} else if (p->in_packet && item) {
		open_item(p, atts);
	}
}

static void on_end(void *opaque, const XML_Char *el)
{
	struct pdml *p = opaque;
	bool item = strcmp(el, "proto") == 0 || strcmp(el, "field") == 0;
	if (p->skip) {
		p->skip -= item;
	} else if (p->in_packet && item && p->depth > 1) {
		p->depth--;
	} else if (p->in_packet && strcmp(el, "packet") == 0) {
		p->in_packet = false;
		p->done = true;
		XML_StopParser(p->parser, XML_FALSE); /* the rest is not ours */
	}
}

int pdml_tree(const char *xml, size_t len, json_t **tree, struct errbuf *eb)
{
	struct pdml p = { .parser = XML_ParserCreate("UTF-8"), .root = json_array() };
	if (!p.parser || !p.root) {
		if (p.parser)
			XML_ParserFree(p.parser);
		json_decref(p.root);
		return -ENOMEM;
	}
	XML_SetUserData(p.parser, &p);
	XML_SetElementHandler(p.parser, on_start, on_end);
	int err = 0;
	if (len > (size_t)INT32_MAX)
		err = errbuf_set(eb, -E2BIG, "the decoder's PDML is too large");
	else if (XML_Parse(p.parser, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR && !p.err &&
		 !p.done)
		err = errbuf_set(eb, -EINVAL, "the decoder's PDML does not parse: line %lu: %s",
				 (unsigned long)XML_GetCurrentLineNumber(p.parser),
				 XML_ErrorString(XML_GetErrorCode(p.parser)));
	if (!err && p.err)
		err = p.err == -E2BIG ?
			      errbuf_set(eb, p.err, "the decode tree is nested deeper than %d",
					 PDML_MAX_DEPTH) :
			      p.err;
	if (!err && !p.done)
		err = errbuf_set(eb, -EINVAL, "the decoder's PDML holds no packet");
	XML_ParserFree(p.parser);
	if (err) {
		json_decref(p.root);
		return err;
	}
	*tree = p.root;
	return 0;
}
