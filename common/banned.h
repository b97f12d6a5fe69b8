/*
 * banned.h - functions we never call: unbounded copies, hidden static
 * state, or non-reentrant time conversion.
 *
 * Not included by any file: tools/lint-banned reads this list and fails
 * on any call to a name in it (the 'banned' test, so CI). Force-including
 * it broke builds with _FORTIFY_SOURCE, whose inline wrappers in
 * bits/stdio2.h its macros rewrote. Keep one "#define NAME(...)
 * BANNED(NAME)" line per function: the linter reads those.
 */
#ifndef CAPVAULT_BANNED_H
#define CAPVAULT_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef localtime
#define localtime(x) BANNED(localtime)
#undef gmtime
#define gmtime(x) BANNED(gmtime)
#undef gets
#define gets(x) BANNED(gets)

#endif
