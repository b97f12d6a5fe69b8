/*
 * s3xml.c - the S3 answers' XML through expat (see s3xml.h). expat parses
 * a bounded buffer here, not a stream: the callers cap what they keep of
 * an answer, so a hostile store cannot grow memory.
 *
 * Why expat and not libxml2: a few element texts are all we read (Key,
 * Size, IsTruncated, NextContinuationToken, UploadId, Code), which a SAX
 * parser gives without building a tree; expat is small, long and widely
 * maintained (it is in every distribution's base), and resolves no
 * external entities or DTDs from the network, which a store's answer has
 * no business asking for.
 */
#include "s3xml.h"

#include <errno.h>
#include <expat.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define S3XML_TEXT_MAX 4096
#define S3XML_DEPTH_MAX 16

struct walk {
	XML_Parser p;
	s3xml_fn fn;
	void *opaque;
	unsigned depth;
	int result;
	bool cut;           /* the open element's text is longer than the buffer */
	size_t text_len;
	char text[S3XML_TEXT_MAX + 1];
};

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
	struct walk *w = data;

	(void)name;
	(void)attrs;
	if (++w->depth > S3XML_DEPTH_MAX) {
		w->result = -EIO;
		XML_StopParser(w->p, XML_FALSE);
	}
	w->text_len = 0;
	w->text[0] = '\0';
	w->cut = false;
}

static void XMLCALL on_text(void *data, const XML_Char *s, int len)
{
	struct walk *w = data;
	size_t room = S3XML_TEXT_MAX - w->text_len;
	size_t n = (size_t)len < room ? (size_t)len : room;

	w->cut |= n < (size_t)len;
	memcpy(w->text + w->text_len, s, n);
	w->text_len += n;
	w->text[w->text_len] = '\0';
}

static void XMLCALL on_end(void *data, const XML_Char *name)
{
	struct walk *w = data;

	/* A text cut short (a key, a continuation token) would be taken
	 * for another one: the answer is refused instead. */
	if (w->result == 0 && w->cut)
		w->result = -EIO;
	if (w->result == 0)
		w->result = w->fn(w->opaque, w->depth, name, w->text);
	if (w->result != 0)
		XML_StopParser(w->p, XML_FALSE);
	w->depth--;
	/* The text of a closed child is not its parent's. */
	w->text_len = 0;
	w->text[0] = '\0';
	w->cut = false;
}

int s3xml_parse(const char *xml, size_t len, s3xml_fn fn, void *opaque)
{
	struct walk w = { .fn = fn, .opaque = opaque };

	if (len > INT32_MAX)
		return -EIO;
	w.p = XML_ParserCreate(NULL);
	if (!w.p)
		return -ENOMEM;
	XML_SetUserData(w.p, &w);
	XML_SetElementHandler(w.p, on_start, on_end);
	XML_SetCharacterDataHandler(w.p, on_text);
	enum XML_Status st = XML_Parse(w.p, xml, (int)len, XML_TRUE);
	if (st == XML_STATUS_ERROR && w.result == 0)
		w.result = -EIO;
	XML_ParserFree(w.p);
	return w.result;
}

struct find {
	unsigned depth;
	const char *name;
	char *out;
	size_t size;
};

static int find_one(void *opaque, unsigned depth, const char *name, const char *text)
{
	struct find *f = opaque;

	if (depth != f->depth || strcmp(name, f->name))
		return 0;
	size_t n = strlen(text);

	if (n >= f->size)
		return -ENOENT;
	memcpy(f->out, text, n + 1);
	return 1;
}

int s3xml_find(const char *xml, size_t len, unsigned depth, const char *name, char *out,
	       size_t size)
{
	struct find f = { depth, name, out, size };
	int r = s3xml_parse(xml, len, find_one, &f);

	if (r == 1)
		return 0;
	return r < 0 ? r : -ENOENT;
}
