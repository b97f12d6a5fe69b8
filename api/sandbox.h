/*
 * sandbox.h - runs a program that reads untrusted bytes (the packet
 * decoder, tshark) in a child process that cannot harm the daemon.
 *
 * The child gets its input on stdin and nothing else: every other file
 * descriptor closed, an environment of HOME (an empty, read-only folder,
 * so no user's preferences apply), PATH and LANG only, its own process
 * group, resource limits (address space, CPU seconds, open files, no
 * file writes, no core dumps), no capabilities (a root daemon's child
 * keeps uid 0 without root's powers), no new privileges, its own empty network
 * namespace when the kernel lets us make one, and a seccomp filter that
 * refuses what a decoder never needs (sockets other than AF_UNIX, fork,
 * ptrace, signals to other processes, mounts, modules, namespaces, BPF,
 * io_uring, ids other than the daemon's). It runs as the daemon's user.
 *
 * The parent writes the input, reads at most max_output bytes of stdout
 * and the tail of stderr, and kills the child's process group when the
 * wall-clock timeout passes or the output grows too large. Whatever the
 * child does (crash, hang, flood, die), the caller gets an outcome.
 *
 * A "warm" run keeps a spare child started with the same arguments for
 * the next call, which then skips the program's start-up (tshark spends
 * some 300 ms loading its dissectors before it reads a byte).
 */
#ifndef CAPVAULT_SANDBOX_H
#define CAPVAULT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct sandbox_cfg {
	const char *path;    /* the program (absolute, or found in PATH) */
	uint32_t timeout_ms; /* wall clock from the first input byte */
	uint64_t memory;     /* RLIMIT_AS, bytes */
	uint64_t max_output; /* stdout bytes kept; more kills the child */
	uint32_t cpu_s;      /* RLIMIT_CPU, seconds */
	uint32_t max_running; /* concurrent runs; more get -EBUSY */
};

enum sandbox_outcome {
	SANDBOX_OK,       /* exited 0 */
	SANDBOX_EXIT,     /* exited with status (nonzero) */
	SANDBOX_SIGNAL,   /* died of signal status (a crash, or killed from outside) */
	SANDBOX_TIMEOUT,  /* killed at the timeout */
	SANDBOX_OVERSIZE, /* killed: more output than max_output */
};

struct sandbox_result {
	enum sandbox_outcome outcome;
	int status;        /* exit status or signal number */
	char *out;         /* stdout, NUL-terminated (sandbox_result_clear frees) */
	size_t outlen;
	char err[1024];    /* the end of stderr, NUL-terminated */
	double elapsed_ms; /* from the first input byte to the child's end */
	bool warm;         /* a spare child ran it */
};

struct sandbox;

/* Checks the program's path, prepares the seccomp filter and the HOME
 * folder. Returns 0, -ENOENT (eb: no such program), or -errno (eb). */
int sandbox_new(struct sandbox **out, const struct sandbox_cfg *cfg, struct errbuf *eb);
/* Kills the spare children. Accepts NULL. */
struct sandbox *sandbox_free(struct sandbox *sb);

/*
 * Runs the program with args (NULL-terminated, without the program's
 * name) on input. Returns 0 with *res filled (any outcome); -EBUSY when
 * max_running runs are under way; other -errno (eb) when no child could
 * be started. With warm, a spare with these args is used when there is
 * one, and one is started for the next call.
 */
int sandbox_run(struct sandbox *sb, const char *const *args, bool warm, const void *input,
		size_t inlen, struct sandbox_result *res, struct errbuf *eb);
void sandbox_result_clear(struct sandbox_result *res);
/* Starts a spare child with args for a warm sandbox_run to come (it
 * replaces an older spare with the same args). */
void sandbox_prepare(struct sandbox *sb, const char *const *args);

/* What confines the children here, e.g. "rlimits, no_new_privs,
 * seccomp, netns": seccomp and netns are missing where the kernel
 * refused them. */
const char *sandbox_confinement(const struct sandbox *sb);

/* "killed by signal 9 (SIGKILL)", "timed out after 10000 ms"...: what
 * happened to a run, for an error reply. */
void sandbox_describe(const struct sandbox *sb, const struct sandbox_result *res, char *buf,
		      size_t len);

#endif
