/*
 * banned.h - functions we never call: unbounded copies, hidden static
 * state, or non-reentrant time conversion. Included last by every .c file
 * through the build's -include flag.
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
