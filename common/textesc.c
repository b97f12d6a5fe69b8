/*
 * textesc.c - the escaped form of untrusted byte strings (see textesc.h).
 * UTF-8 is checked as jansson checks it (no overlong forms, no
 * surrogates, nothing above U+10FFFF), so whatever this keeps, a JSON
 * encoder takes.
 */
#include "textesc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hexdigit.h"

/* Length (1-4) of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (need > n)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

/* Whether the valid character c (k bytes) is written as \xHH bytes. */
static bool escaped_char(const unsigned char *c, size_t k, unsigned flags)
{
	if (k == 1 && *c == '"')
		return flags & TEXT_ESC_QUOTE;
	if (!(flags & TEXT_ESC_CONTROLS))
		return false;
	if (k == 1)
		return *c < 0x20 || *c == 0x7f;
	if (k == 2) /* U+0080-U+009F; U+061C, the Arabic letter mark */
		return (c[0] == 0xc2 && c[1] < 0xa0) || (c[0] == 0xd8 && c[1] == 0x9c);
	if (k != 3 || c[0] != 0xe2)
		return false;
	/* U+200E-U+200F, U+2028-U+202E (line and paragraph separators, bidi
	 * embeddings and overrides), U+2066-U+2069 (bidi isolates): a
	 * terminal would show the text around them reordered, or break the line. */
	if (c[1] == 0x80)
		return c[2] == 0x8e || c[2] == 0x8f || (c[2] >= 0xa8 && c[2] <= 0xae);
	return c[1] == 0x81 && c[2] >= 0xa6 && c[2] <= 0xa9;
}

/* Appends n bytes of p at *used when they fit whole; counts them always. */
static void put(char *buf, size_t size, size_t *used, bool *full, const char *p, size_t n)
{
	if (!*full && size && *used + n < size)
		memcpy(buf + *used, p, n);
	else
		*full = true;
	*used += n;
}

size_t text_escape_mem(const char *s, size_t len, unsigned flags, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t used = 0, kept = 0, i = 0;
	bool full = false;

	while (i < len) {
		size_t k = utf8_len(p + i, len - i);
		if (p[i] == '\\') {
			put(buf, size, &used, &full, "\\\\", 2);
			k = 1;
		} else if (k && !escaped_char(p + i, k, flags)) {
			put(buf, size, &used, &full, s + i, k);
		} else {
			k = k ? k : 1;
			for (size_t j = 0; j < k; j++) {
				char e[4] = { '\\', 'x', hex[p[i + j] >> 4], hex[p[i + j] & 15] };
				put(buf, size, &used, &full, e, 4);
			}
		}
		if (!full)
			kept = used;
		i += k;
	}
	if (size)
		buf[kept] = '\0';
	return used;
}

size_t text_escape(const char *s, unsigned flags, char *buf, size_t size)
{
	return text_escape_mem(s, strlen(s), flags, buf, size);
}

char *text_escape_dup(const char *s, unsigned flags)
{
	size_t n = text_escape(s, flags, NULL, 0);
	char *out = malloc(n + 1);

	if (out)
		text_escape(s, flags, out, n + 1);
	return out;
}

const char *text_shown(const char *s, char *buf, size_t size)
{
	text_escape(s, TEXT_ESC_CONTROLS | TEXT_ESC_QUOTE, buf, size);
	return buf;
}

bool text_is_plain(const char *s, unsigned flags)
{
	return text_escape(s, flags, NULL, 0) == strlen(s);
}

int text_unescape(const char *s, bool strict, char **out)
{
	size_t n = strlen(s), o = 0;
	char *r = malloc(n + 1);

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] != '\\') {
			r[o++] = s[i];
		} else if (s[i + 1] == '\\') {
			r[o++] = '\\';
			i++;
		} else if (s[i + 1] == 'x' && (hi = hex_digit_value(s[i + 2])) >= 0 &&
			   (lo = hex_digit_value(s[i + 3])) >= 0 && (hi || lo)) {
			r[o++] = (char)(hi << 4 | lo);
			i += 3;
		} else if (strict) {
			free(r);
			return -EINVAL;
		} else {
			r[o++] = '\\';
		}
	}
	r[o] = '\0';
	*out = r;
	return 0;
}
