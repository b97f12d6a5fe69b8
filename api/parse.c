/*
 * parse.c - request parsers (see parse.h). Everything here takes
 * untrusted text and must never read past it or overflow.
 */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "textesc.h"

int api_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Parses digits at *p (advancing it); false when there are none. */
static bool take_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return true;
}

int api_parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
	uint64_t a = 0, b = 0;
	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 1;
	const char *p = h + 6;
	while (*p == ' ')
		p++;
	if (*p == '-') { /* suffix: the last b bytes */
		p++;
		if (!take_u64(&p, &b) || *p)
			return 1;
		if (b == 0 || size == 0)
			return -ERANGE;
		*len = b < size ? b : size;
		*start = size - *len;
		return 0;
	}
	if (!take_u64(&p, &a) || *p++ != '-')
		return 1;
	bool open_end = *p == '\0';
	if (!open_end && (!take_u64(&p, &b) || *p || b < a))
		return 1;
	if (a >= size)
		return -ERANGE;
	if (open_end || b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return 0;
}

void api_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int api_split_list(const char *s, char ***v, size_t *n)
{
	while (s && *s) {
		size_t len = strcspn(s, ",");
		const char *b = s, *e = s + len;
		s = *e ? e + 1 : e;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (b == e)
			continue;
		char **grown = realloc(*v, (*n + 1) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		*v = grown;
		if (!(grown[*n] = strndup(b, (size_t)(e - b))))
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

/* "M/D/YYYY" at *p into days since the epoch. */
static int take_date(const char **p, int64_t *days)
{
	uint64_t m, d, y;
	if (!take_u64(p, &m) || *(*p)++ != '/' || !take_u64(p, &d) || *(*p)++ != '/' ||
	    !take_u64(p, &y))
		return -EINVAL;
	if (m < 1 || m > 12 || d < 1 || d > 31 || y < 1970 || y > 9999)
		return -EINVAL;
	struct tm tm = { .tm_year = (int)y - 1900, .tm_mon = (int)m - 1, .tm_mday = (int)d };
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != (int)d) /* 2/30 normalises to March */
		return -EINVAL;
	*days = (int64_t)t / 86400;
	return 0;
}

int api_parse_cs_date_range(const char *s, uint64_t *from_ns, uint64_t *to_ns)
{
	int64_t a, b;
	const char *p = s;
	if (!s || take_date(&p, &a) < 0)
		return -EINVAL;
	b = a;
	if (*p == '-') {
		p++;
		if (take_date(&p, &b) < 0)
			return -EINVAL;
	}
	if (*p || b < a)
		return -EINVAL;
	*from_ns = (uint64_t)a * 86400u * 1000000000u;
	*to_ns = (uint64_t)(b + 1) * 86400u * 1000000000u;
	return 0;
}

#define QUOTED_MAX 200

char *api_content_disposition(const char *name, char *buf, size_t size)
{
	char quoted[QUOTED_MAX + 1];
	size_t q = 0;
	for (const unsigned char *c = (const unsigned char *)name; *c && q < QUOTED_MAX; c++) {
		bool plain = *c >= 0x20 && *c < 0x7f && !strchr("\"\\%", *c);
		quoted[q++] = plain ? (char)*c : '_';
	}
	quoted[q] = '\0';
	int n = snprintf(buf, size, "attachment; filename=\"%s\"; filename*=UTF-8''",
			 q ? quoted : "capture");
	if (n < 0 || (size_t)n >= size)
		return buf;
	char *esc = *name ? text_escape_dup(name, TEXT_ESC_CONTROLS) : NULL;
	const char *ext = esc ? esc : "capture";
	size_t e = (size_t)n;
	for (const unsigned char *c = (const unsigned char *)ext; *c; c++) {
		bool attr = isalnum(*c) || strchr("!#$&+-.^_`|~", *c);
		if (e + (attr ? 1 : 3) >= size)
			break;
		if (attr)
			buf[e++] = (char)*c;
		else
			e += (size_t)snprintf(buf + e, size - e, "%%%02X", *c);
	}
	buf[e] = '\0';
	free(esc);
	return buf;
}

static const char *const sort_names[] = {
	[API_SORT_ID] = "id",
	[API_SORT_IMPORTED] = "imported",
	[API_SORT_FIRST_PACKET] = "first_packet",
	[API_SORT_LAST_PACKET] = "last_packet",
	[API_SORT_NAME] = "name",
	[API_SORT_SIZE] = "size",
	[API_SORT_PACKETS] = "packets",
};
const char api_sort_keys_text[] = "id, imported, first_packet, last_packet, name, size, packets";

int api_parse_sort(const char *s, struct api_sort *out)
{
	bool desc = s && *s == '-';
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++) {
		if (!strcmp(s + desc, sort_names[i])) {
			out->key = (enum api_sort_key)i;
			out->desc = desc;
			return 0;
		}
	}
	return -EINVAL;
}

int api_sort_cmp(const struct api_sort *s, const struct api_sort_pos *a,
		 const struct api_sort_pos *b)
{
	int c = 0;
	if (s->key == API_SORT_NAME)
		c = strcmp(a->name, b->name);
	else if (a->num != b->num)
		c = a->num < b->num ? -1 : 1;
	if (!c && a->id != b->id)
		c = a->id < b->id ? -1 : 1;
	return s->desc ? -c : c;
}

char *api_sort_cursor(const struct api_sort *s, const struct api_sort_pos *p)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	fprintf(f, "%s%s:", s->desc ? "-" : "", sort_names[s->key]);
	if (s->key == API_SORT_NAME)
		for (const unsigned char *c = (const unsigned char *)p->name; *c; c++)
			fprintf(f, "%02x", *c);
	else
		fprintf(f, "%" PRIu64, p->num);
	fprintf(f, ":%" PRIu64, p->id);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes n lowercase hex digits at s into a malloc'd string without NULs. */
static int unhex_name(const char *s, size_t n, char **out)
{
	if (n % 2)
		return -EINVAL;
	char *name = malloc(n / 2 + 1);
	if (!name)
		return -ENOMEM;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(name);
			return -EINVAL;
		}
		name[i] = (char)(hi << 4 | lo);
	}
	name[n / 2] = '\0';
	*out = name;
	return 0;
}

int api_parse_sort_cursor(const char *text, const struct api_sort *s, struct api_sort_pos *p)
{
	const char *name = sort_names[s->key];
	size_t nlen = strlen(name);
	const char *value = text + s->desc;
	if ((s->desc && *text != '-') || strncmp(value, name, nlen) != 0 || value[nlen] != ':')
		return -EINVAL;
	value += nlen + 1;
	const char *sep = strchr(value, ':');
	if (!sep || api_parse_u64(sep + 1, &p->id) < 0)
		return -EINVAL;
	p->name = NULL;
	p->num = 0;
	if (s->key == API_SORT_NAME)
		return unhex_name(value, (size_t)(sep - value), &p->name);
	char digits[24];
	size_t dlen = (size_t)(sep - value);
	if (dlen >= sizeof(digits))
		return -EINVAL;
	memcpy(digits, value, dlen);
	digits[dlen] = '\0';
	return api_parse_u64(digits, &p->num);
}

void api_cs_normalize(char **seg, size_t nseg)
{
	if (nseg > 2)
		for (char *p = seg[2]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	if (nseg > 3) {
		size_t len = strlen(seg[3]);
		if (len > 5 && !strcasecmp(seg[3] + len - 5, ".json"))
			seg[3][len - 5] = '\0';
	}
}

char *api_cs_decimal(double v, char *buf, size_t size)
{
	snprintf(buf, size, "%.2f", isfinite(v) ? v : 0.0);
	return buf;
}

char *api_cs_time(int64_t ns, char *buf, size_t size)
{
	/* Floor division: a time before 1970 keeps its whole second below. */
	time_t s = (time_t)(ns / 1000000000 - (ns % 1000000000 < 0));
	struct tm tm;
	if (!gmtime_r(&s, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%S+00:00", &tm))
		snprintf(buf, size, "1970-01-01T00:00:00+00:00");
	return buf;
}

char *api_decompressed_name(const char *name, const char *compression)
{
	static const char *const gz[] = { ".gz", ".gzip", NULL }, *const zst[] = { ".zst", NULL };
	const char *const *ext = !strcmp(compression, "gzip") ? gz :
				 !strcmp(compression, "zstd") ? zst : NULL;
	size_t len = name ? strlen(name) : 0;
	for (size_t i = 0; ext && ext[i]; i++) {
		size_t el = strlen(ext[i]);
		if (len > el && !strcasecmp(name + len - el, ext[i]))
			return strndup(name, len - el);
	}
	return NULL;
}

int api_mp_end_init(struct api_mp_end *m, const char *content_type)
{
	const char *b = content_type ? strcasestr(content_type, "boundary=") : NULL;
	size_t len;
	memset(m, 0, sizeof(*m));
	if (!b)
		return -EINVAL;
	b += 9;
	if (*b == '"')
		len = strcspn(++b, "\"");
	else
		len = strcspn(b, "; \t");
	if (len == 0 || len > API_BOUNDARY_MAX)
		return -EINVAL;
	m->dlen = (size_t)snprintf(m->delim, sizeof(m->delim), "\r\n--%.*s--", (int)len, b);
	for (size_t i = 1, k = 0; i < m->dlen; i++) {
		while (k > 0 && m->delim[i] != m->delim[k])
			k = m->fail[k - 1];
		if (m->delim[i] == m->delim[k])
			k++;
		m->fail[i] = (uint8_t)k;
	}
	return 0;
}

size_t api_mp_end_feed(struct api_mp_end *m, const char *buf, size_t len)
{
	if (m->done)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (m->matched == 0) {
			/* Most bytes: skip to the next CR. */
			const char *cr = memchr(buf + i, '\r', len - i);
			if (!cr)
				return len;
			i = (size_t)(cr - buf);
		}
		while (m->matched > 0 && buf[i] != m->delim[m->matched])
			m->matched = m->fail[m->matched - 1];
		if (buf[i] == m->delim[m->matched] && ++m->matched == m->dlen) {
			m->done = true;
			return i + 1;
		}
	}
	return len;
}
