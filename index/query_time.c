/*
 * query_time.c - the times a query's --after/--before (and the API's
 * after/before/from/to/imported_after) give, parsed into signed ns (see
 * query.h), and times printed as RFC 3339. On its own so that the thin
 * capvault front, which links no RocksDB, can check the times it passes
 * to the daemon as the offline engine does.
 *
 * The one parser of user times: strict, so that a date that does not
 * exist (2024-02-31, 24:00) is refused rather than normalised into
 * another day, and bounded to the packet times capfile.h can hold.
 */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000

/* The bounds a window may have: every packet time but INT64_MIN, which
 * also stands for the times before it (capfile.h), so that a saturated
 * time compares with every accepted bound as its true time would. */
#define BOUND_MIN ((__int128)INT64_MIN + 1)
#define BOUND_MAX ((__int128)INT64_MAX)

static const char FORMS[] = "RFC 3339 (2024-05-01T14:00:00Z, 2024-05-01T16:00:00.25+02:00), "
			    "a date (2024-05-01, midnight UTC), epoch seconds (1714572000.25, "
			    "-86400), a time ago (15m, -1h, 2d) or now[+-]DURATION (now-1h)";

/* n decimal digits at *p (exactly n) into *out; advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* ".d+" as ns (digits past the ninth are dropped); advances *p. Returns
 * false for a point without digits. */
static bool fraction(const char **p, int64_t *ns)
{
	int64_t scale = NS_PER_S / 10;
	*ns = 0;
	if (**p != '.')
		return true;
	if ((*p)[1] < '0' || (*p)[1] > '9')
		return false;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++) {
		*ns += (**p - '0') * scale;
		scale /= 10;
	}
	return true;
}

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static const char *const MONTHS[12] = { "January", "February", "March",     "April",
					"May",     "June",     "July",      "August",
					"September", "October", "November", "December" };

/* "Z", "z", "+hh:mm" or "-hh:mm" into seconds east of UTC; advances *p. */
static int zone(const char *text, const char **p, int *east, struct errbuf *eb)
{
	int hh, mm;
	char sign = **p;
	if (sign == 'Z' || sign == 'z') {
		(*p)++;
		*east = 0;
		return 0;
	}
	if (sign != '+' && sign != '-')
		return errbuf_set(eb, -EINVAL, "'%s': a time zone is required (Z or +hh:mm): "
				  "local time would be a guess", text);
	(*p)++;
	if (!digits(p, 2, &hh) || *(*p)++ != ':' || !digits(p, 2, &mm))
		return errbuf_set(eb, -EINVAL, "'%s': bad time zone offset (expected +hh:mm)", text);
	if (hh > 23 || mm > 59)
		return errbuf_set(eb, -EINVAL, "'%s': time zone offset %c%02d:%02d out of range",
				  text, sign, hh, mm);
	*east = (sign == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
	return 0;
}

/* Checks the calendar fields; a leap second (:60) counts as the next
 * second, as POSIX time does. */
static int check_fields(const char *text, int y, int mo, int d, int h, int mi, int s,
			struct errbuf *eb)
{
	if (mo < 1 || mo > 12)
		return errbuf_set(eb, -EINVAL, "'%s': month %02d does not exist (01-12)", text, mo);
	if (d < 1 || d > month_days(y, mo))
		return errbuf_set(eb, -EINVAL, "'%s': day %02d does not exist in %s %04d (%d days)",
				  text, d, MONTHS[mo - 1], y, month_days(y, mo));
	if (h > 23)
		return errbuf_set(eb, -EINVAL, "'%s': hour %02d out of range (00-23)", text, h);
	if (mi > 59)
		return errbuf_set(eb, -EINVAL, "'%s': minute %02d out of range (00-59)", text, mi);
	if (s > 60)
		return errbuf_set(eb, -EINVAL, "'%s': second %02d out of range (00-60)", text, s);
	return 0;
}

static int parse_date(const char *text, __int128 *ns, struct errbuf *eb)
{
	const char *p = text;
	int y, mo, d, h, mi, s, east = 0;
	int64_t frac = 0;
	bool ok = digits(&p, 4, &y) && *p++ == '-' && digits(&p, 2, &mo) && *p++ == '-' &&
		  digits(&p, 2, &d);
	/* A bare date is its midnight, UTC. */
	bool bare = ok && *p == '\0';
	h = mi = s = 0;
	if (ok && !bare)
		ok = (*p == 'T' || *p == 't' || *p == ' ') && (p++, digits(&p, 2, &h)) &&
		     *p++ == ':' && digits(&p, 2, &mi) && *p++ == ':' && digits(&p, 2, &s) &&
		     fraction(&p, &frac);
	if (!ok)
		return errbuf_set(eb, -EINVAL, "'%s': not a time: expected %s", text, FORMS);
	int err = check_fields(text, y, mo, d, h, mi, s, eb);
	if (!err && !bare)
		err = zone(text, &p, &east, eb);
	if (err)
		return err;
	if (*p != '\0')
		return errbuf_set(eb, -EINVAL, "'%s': unexpected '%s' after the time", text, p);
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - east;
	*ns = (__int128)secs * NS_PER_S + frac;
	return 0;
}

static int parse_epoch(const char *text, __int128 *ns, struct errbuf *eb)
{
	const char *p = text + (text[0] == '-');
	__int128 secs = 0;
	int64_t frac = 0;
	if (*p < '0' || *p > '9')
		return errbuf_set(eb, -EINVAL, "'%s': not a time: expected %s", text, FORMS);
	for (; *p >= '0' && *p <= '9'; p++)
		if ((secs = secs * 10 + (*p - '0')) > BOUND_MAX)
			return errbuf_set(eb, -ERANGE, "'%s': too large", text);
	if (!fraction(&p, &frac) || *p != '\0')
		return errbuf_set(eb, -EINVAL, "'%s': not a time: expected %s", text, FORMS);
	*ns = (secs * NS_PER_S + frac) * (text[0] == '-' ? -1 : 1);
	return 0;
}

/* A duration as people write one: a number (a fraction allowed) and one
 * of s, m, h, d, w. Returns false when text is not one (epoch seconds
 * have no unit). */
static bool parse_duration(const char *text, __int128 *ns)
{
	static const struct { char unit; int64_t secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	const char *p = text;
	__int128 whole = 0;
	int64_t frac = 0;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((whole = whole * 10 + (*p - '0')) > BOUND_MAX)
			return false;
	if (!fraction(&p, &frac) || !p[0] || p[1])
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (*p == units[i].unit) {
			*ns = (whole * NS_PER_S + frac) * units[i].secs;
			return true;
		}
	}
	return false;
}

static __int128 now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (__int128)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* "now", "now-1h", "now+30m"; "15m" and "-1h" (both: that long ago).
 * 1 when text is one of these (*ns set), 0 when not, -EINVAL when it
 * starts like one but is not. */
static int parse_relative(const char *text, __int128 *ns, struct errbuf *eb)
{
	__int128 d = 0;
	if (!strncmp(text, "now", 3)) {
		const char *rest = text + 3;
		if (!*rest)
			return *ns = now_ns(), 1;
		if ((*rest != '-' && *rest != '+') || !parse_duration(rest + 1, &d))
			return errbuf_set(eb, -EINVAL, "'%s': not a time: expected now, now-DURATION "
					  "or now+DURATION (DURATION: 15m, 1.5h, 2d, 1w)", text);
		*ns = now_ns() + (*rest == '-' ? -d : d);
		return 1;
	}
	if (!parse_duration(text + (text[0] == '-'), &d))
		return 0;
	*ns = now_ns() - d;
	return 1;
}

int query_parse_time(const char *text, int64_t *ns, struct errbuf *eb)
{
	__int128 t = 0;
	int err = parse_relative(text, &t, eb);
	/* A date has its dash after four digits; epoch seconds have none
	 * but a leading minus. */
	if (err == 1)
		err = 0;
	else if (err == 0)
		err = strlen(text) > 4 && text[4] == '-' ? parse_date(text, &t, eb)
							 : parse_epoch(text, &t, eb);
	if (err == -ERANGE || (!err && (t < BOUND_MIN || t > BOUND_MAX))) {
		char lo[QUERY_TIME_LEN], hi[QUERY_TIME_LEN];
		query_format_time((int64_t)BOUND_MIN, lo, sizeof(lo));
		query_format_time((int64_t)BOUND_MAX, hi, sizeof(hi));
		return errbuf_set(eb, -ERANGE, "'%s': outside the times a packet can have here "
				  "(%s to %s)", text, lo, hi);
	}
	if (!err)
		*ns = (int64_t)t;
	return err;
}

/* Hinnant's civil_from_days: the date of a day number from 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

void query_format_time(int64_t ns, char *buf, size_t len)
{
	/* Floor division: -1 ns is 1969-12-31T23:59:59.999999999Z. */
	int64_t secs = ns / NS_PER_S, sub = ns % NS_PER_S;
	if (sub < 0)
		secs--, sub += NS_PER_S;
	int64_t days = secs / 86400, rem = secs % 86400;
	if (rem < 0)
		days--, rem += 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%09" PRId64 "Z", y, m, d,
		 (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), sub);
}
