/*
 * query_time.c - the time a query's --after/--before (and the API's
 * after/before/from/to) give, parsed into ns (see query.h). On its own so
 * that the thin capvault front, which links no RocksDB, can check the
 * times it passes to the daemon as the offline engine does.
 */
#include "query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Digits after a decimal point as nanoseconds; advances *p. */
static uint64_t parse_fraction(const char **p)
{
	uint64_t ns = 0, scale = 100000000;
	if (**p != '.')
		return 0;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++) {
		ns += (uint64_t)(**p - '0') * scale;
		scale /= 10;
	}
	return ns;
}

static int parse_epoch(const char *text, uint64_t *ns)
{
	char *end;
	errno = 0;
	unsigned long long secs = strtoull(text, &end, 10);
	if (end == text || errno || secs > UINT64_MAX / 1000000000u - 1)
		return -EINVAL;
	const char *p = end;
	uint64_t frac = parse_fraction(&p);
	if (*p != '\0')
		return -EINVAL;
	*ns = (uint64_t)secs * 1000000000u + frac;
	return 0;
}

int query_parse_time(const char *text, uint64_t *ns)
{
	struct tm tm = { 0 };
	int consumed = 0;
	if (!strchr(text, '-') || text[0] == '-')
		return parse_epoch(text, ns);
	if (sscanf(text, "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed == 0)
		return -EINVAL;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
		return -EINVAL;
	const char *p = text + consumed;
	uint64_t frac = parse_fraction(&p);
	long offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59)
			return -EINVAL;
		offset = (*p == '+' ? 1 : -1) * (long)(hh * 3600 + mm * 60);
		p += 1 + n;
	} else {
		return -EINVAL; /* a zone is required: local time would be a guess */
	}
	if (*p != '\0')
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t secs = timegm(&tm) - offset;
	if (secs < 0)
		return -EINVAL;
	*ns = (uint64_t)secs * 1000000000u + frac;
	return 0;
}
