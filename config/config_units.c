/*
 * config_units.c - durations and sizes as people write them ("30s",
 * "1.5TiB") to and from the integers struct config holds.
 *
 * Exact integer arithmetic throughout: "1.1GB" is 1100000000 bytes, not
 * whatever a double rounds it to, and anything past 2^64-1 is -ERANGE
 * rather than a silent wrap.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "errbuf.h"

struct unit {
	const char *name;
	uint64_t mult;
};

#define NS_PER_S 1000000000ull

static const struct unit duration_units[] = {
	{ "w", 7 * 86400 * NS_PER_S }, { "d", 86400 * NS_PER_S }, { "h", 3600 * NS_PER_S },
	{ "m", 60 * NS_PER_S },        { "s", NS_PER_S },         { "ms", 1000000 },
	{ "us", 1000 },                { "ns", 1 },
};

#define KI 1024ull
#define KD 1000ull
static const struct unit size_units[] = {
	{ "EiB", KI * KI * KI * KI * KI * KI }, { "EB", KD * KD * KD * KD * KD * KD },
	{ "PiB", KI * KI * KI * KI * KI },      { "PB", KD * KD * KD * KD * KD },
	{ "TiB", KI * KI * KI * KI },           { "TB", KD * KD * KD * KD },
	{ "GiB", KI * KI * KI },                { "GB", KD * KD * KD },
	{ "MiB", KI * KI },                     { "MB", KD * KD },
	{ "KiB", KI },                          { "kB", KD },
	{ "B", 1 },
};

/* A number as written: integer digits, and up to 18 fraction digits kept
 * as frac / 10^frac_digits. */
struct decimal {
	uint64_t whole;
	uint64_t frac;
	uint64_t frac_scale;
};

/* Reads [0-9]+(.[0-9]+)? at *s and advances past it. */
static int read_decimal(const char **s, struct decimal *d)
{
	const char *p = *s;

	*d = (struct decimal){ .frac_scale = 1 };
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (__builtin_mul_overflow(d->whole, 10, &d->whole) ||
		    __builtin_add_overflow(d->whole, (uint64_t)(*p - '0'), &d->whole))
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (d->frac_scale == 1000000000000000000ull)
				return -EINVAL;
			d->frac = d->frac * 10 + (uint64_t)(*p - '0');
			d->frac_scale *= 10;
		}
	}
	*s = p;
	return 0;
}

/* whole * mult + frac * mult / scale, exactly; -EINVAL if not whole. */
static int scale_decimal(const struct decimal *d, uint64_t mult, uint64_t *out)
{
	unsigned __int128 f = (unsigned __int128)d->frac * mult;
	uint64_t value;

	if (f % d->frac_scale)
		return -EDOM; /* "1.5ns": finer than the field can hold */
	if (__builtin_mul_overflow(d->whole, mult, &value) ||
	    __builtin_add_overflow(value, (uint64_t)(f / d->frac_scale), &value))
		return -ERANGE;
	*out = value;
	return 0;
}

static const struct unit *find_unit(const struct unit *units, size_t n, const char *name,
				    bool ignore_case)
{
	for (size_t i = 0; i < n; i++) {
		if (ignore_case ? !strcasecmp(units[i].name, name) : !strcmp(units[i].name, name))
			return &units[i];
	}
	return NULL;
}

/* Shared by durations and sizes: number, optional blanks, optional unit. */
static int parse_quantity(const char *text, const struct unit *units, size_t n_units,
			  uint64_t bare_mult, bool ignore_case, uint64_t *out, const char **unit)
{
	const char *p = text;
	struct decimal d;

	while (*p == ' ')
		p++;
	int r = read_decimal(&p, &d);
	if (r < 0)
		return r;
	while (*p == ' ')
		p++;
	*unit = p;
	size_t len = strlen(p);
	while (len > 0 && p[len - 1] == ' ')
		len--;
	char name[8];
	if (len >= sizeof(name))
		return -EINVAL;
	memcpy(name, p, len);
	name[len] = '\0';
	const struct unit *u = len ? find_unit(units, n_units, name, ignore_case) : NULL;
	if (len && !u)
		return -EINVAL;
	return scale_decimal(&d, u ? u->mult : bare_mult, out);
}

int config_parse_duration(const char *text, uint64_t *ns, struct errbuf *why)
{
	const char *unit = text;
	int r = parse_quantity(text, duration_units, ARRAY_SIZE(duration_units), NS_PER_S,
			       false, ns, &unit);
	if (r == -EDOM)
		return errbuf_set(why, -EINVAL, "duration '%s' is not a whole number of nanoseconds",
				  text);
	if (r == -ERANGE)
		return errbuf_set(why, r, "duration '%s' does not fit in 64 bits of nanoseconds (584 years)",
				  text);
	if (r < 0)
		return errbuf_set(why, r,
				  "expected a duration (a number and ns, us, ms, s, m, h, d or w, "
				  "e.g. '30s'), got '%s'",
				  text);
	return 0;
}

/* Single letters mean 1000 to some tools and 1024 to others. */
static bool ambiguous_size_unit(const char *unit)
{
	return strlen(unit) == 1 && strchr("kKmMgGtTpPeE", unit[0]);
}

int config_parse_size(const char *text, uint64_t *bytes, struct errbuf *why)
{
	const char *unit = text;
	int r = parse_quantity(text, size_units, ARRAY_SIZE(size_units), 1, true, bytes,
			       &unit);
	if (r == -EDOM)
		return errbuf_set(why, -EINVAL, "size '%s' is not a whole number of bytes", text);
	if (r == -ERANGE)
		return errbuf_set(why, r, "size '%s' does not fit in 64 bits (16EiB)", text);
	if (r < 0 && ambiguous_size_unit(unit))
		return errbuf_set(why, r, "ambiguous unit in '%s': write %cB (powers of 1000) or "
					  "%ciB (powers of 1024)",
				  text, toupper((unsigned char)unit[0]), toupper((unsigned char)unit[0]));
	if (r < 0)
		return errbuf_set(why, r,
				  "expected a size (a number and B, kB, KiB, MB, MiB, GB, GiB, TB, "
				  "TiB...), got '%s'",
				  text);
	return 0;
}

static char *format_with(uint64_t v, const struct unit *units, size_t n, char *buf, size_t size)
{
	for (size_t i = 0; i < n; i++) {
		if (v != 0 && v % units[i].mult == 0) {
			snprintf(buf, size, "%" PRIu64 "%s", v / units[i].mult, units[i].name);
			return buf;
		}
	}
	snprintf(buf, size, "%" PRIu64 "%s", v, units[n - 1].name);
	return buf;
}

char *config_format_duration(uint64_t ns, char *buf, size_t size)
{
	return format_with(ns, duration_units, ARRAY_SIZE(duration_units), buf, size);
}

char *config_format_size(uint64_t bytes, char *buf, size_t size)
{
	/* Only the binary units: "1GiB", never "1073741824B" or a mixed "1GB". */
	static const struct unit binary[] = {
		{ "EiB", KI * KI * KI * KI * KI * KI }, { "PiB", KI * KI * KI * KI * KI },
		{ "TiB", KI * KI * KI * KI },           { "GiB", KI * KI * KI },
		{ "MiB", KI * KI },                     { "KiB", KI },
		{ "B", 1 },
	};
	return format_with(bytes, binary, ARRAY_SIZE(binary), buf, size);
}
