/*
 * sandbox.c - the decoder's child process (sandbox.h): fork, confine,
 * exec; feed, read, bound, kill, reap. libseccomp is used here only.
 *
 * Everything the child needs (argv, environment, the compiled seccomp
 * program) is built before fork: between fork and exec the child of a
 * threaded daemon may only make system calls.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "monoclock.h"

#define MAX_ARGS 32
#define SPARES 4
#define OPEN_FILES 256
#define READ_CHUNK (64u * 1024)

enum netns_way { NETNS_NONE, NETNS_PLAIN, NETNS_USERNS };

/* A started child and our ends of its pipes. */
struct child {
	pid_t pid;
	int in, out, err;
	char *key; /* its arguments, joined: which calls it can serve */
};

struct sandbox {
	struct sandbox_cfg cfg;
	char *path;
	char home[64];
	char *env[5];
	struct sock_fprog seccomp; /* filter len 0: none */
	enum netns_way netns;
	char confinement[96];
	atomic_uint running;
	pthread_mutex_t mu; /* guards spares */
	struct child spares[SPARES];
};

/* --- the child, between fork and exec --- */

static void child_limit(int resource, rlim_t value)
{
	struct rlimit rl = { value, value };
	setrlimit(resource, &rl);
}

static void child_fail(const char *what)
{
	/* stderr is the pipe: the parent reads why */
	(void)!write(2, what, strlen(what));
	_exit(127);
}

/* A root daemon's child keeps uid 0 but none of root's powers (reading
 * any file, binding ports...), now or after exec: the bounding set goes
 * first, while CAP_SETPCAP allows it. */
static void child_drop_caps(void)
{
	for (int cap = 0; cap < 64; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	if (syscall(SYS_capset, &hdr, data) < 0)
		child_fail("sandbox: cannot drop capabilities\n");
}

/* Never returns. fds: the child's stdin, stdout, stderr. */
static void child_exec(const struct sandbox *sb, char *const *argv, const int fds[3])
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL); /* the daemon ignores SIGPIPE; exec keeps that */
	setpgid(0, 0);
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			_exit(127);
	if (syscall(SYS_close_range, 3u, ~0u, 0u) < 0)
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
	if (sb->netns == NETNS_PLAIN && unshare(CLONE_NEWNET) < 0)
		child_fail("sandbox: cannot make a network namespace\n");
	if (sb->netns == NETNS_USERNS && unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		child_fail("sandbox: cannot make a network namespace\n");
	child_limit(RLIMIT_AS, sb->cfg.memory);
	child_limit(RLIMIT_CPU, sb->cfg.cpu_s);
	child_limit(RLIMIT_FSIZE, 0); /* writes no file: output goes to the pipes */
	child_limit(RLIMIT_CORE, 0);
	child_limit(RLIMIT_NOFILE, OPEN_FILES);
	if (geteuid() == 0)
		child_drop_caps();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail("sandbox: no_new_privs refused\n");
	if (sb->seccomp.len && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sb->seccomp) < 0)
		child_fail("sandbox: seccomp filter refused\n");
	execve(sb->path, argv, sb->env);
	child_fail("sandbox: cannot execute the decoder\n");
}

/* --- setting up --- */

/* Refused with EPERM: nothing a decoder reading stdin needs. */
static const int denied[] = {
	SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
	SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
	SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(mount), SCMP_SYS(umount2),
	SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(swapon), SCMP_SYS(swapoff),
	SCMP_SYS(reboot), SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(keyctl),
	SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(unshare), SCMP_SYS(setns),
	SCMP_SYS(userfaultfd), SCMP_SYS(ioperm), SCMP_SYS(iopl), SCMP_SYS(open_by_handle_at),
	SCMP_SYS(name_to_handle_at), SCMP_SYS(acct), SCMP_SYS(settimeofday),
	SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime), SCMP_SYS(adjtimex), SCMP_SYS(mknod),
	SCMP_SYS(mknodat), SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(quotactl),
	SCMP_SYS(syslog), SCMP_SYS(uselib), SCMP_SYS(fanotify_init), SCMP_SYS(kill),
	SCMP_SYS(tkill), SCMP_SYS(tgkill), SCMP_SYS(rt_sigqueueinfo),
	SCMP_SYS(rt_tgsigqueueinfo), SCMP_SYS(pidfd_open), SCMP_SYS(pidfd_send_signal),
	SCMP_SYS(pidfd_getfd), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
	SCMP_SYS(io_uring_register), SCMP_SYS(setgroups), SCMP_SYS(capset), SCMP_SYS(personality),
	SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(fsopen), SCMP_SYS(fsmount),
	SCMP_SYS(fsconfig), SCMP_SYS(fspick),
};

/* Identity calls may only "change" to the ids the daemon has: tshark
 * drops set-id privileges at start by setting what it has (and aborts
 * when refused); a root daemon's child must not become anyone else. */
static int seccomp_ids(scmp_filter_ctx ctx)
{
	const struct {
		int nr;
		unsigned nargs;
		bool gid;
	} calls[] = {
		{ SCMP_SYS(setuid), 1, false },   { SCMP_SYS(setgid), 1, true },
		{ SCMP_SYS(setreuid), 2, false }, { SCMP_SYS(setregid), 2, true },
		{ SCMP_SYS(setresuid), 3, false }, { SCMP_SYS(setresgid), 3, true },
		{ SCMP_SYS(setfsuid), 1, false }, { SCMP_SYS(setfsgid), 1, true },
	};
	uid_t uid = getuid();
	gid_t gid = getgid();
	int err = 0;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]) && !err; i++)
		for (unsigned a = 0; a < calls[i].nargs && !err && calls[i].nr >= 0; a++)
			err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), calls[i].nr, 1,
					       SCMP_CMP(a, SCMP_CMP_NE,
							calls[i].gid ? (scmp_datum_t)gid :
								       (scmp_datum_t)uid));
	return err;
}

static int seccomp_rules(scmp_filter_ctx ctx)
{
	int err = seccomp_ids(ctx);
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]) && !err; i++)
		if (denied[i] >= 0) /* a call this architecture lacks is negative */
			err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
	/* threads yes (CLONE_THREAD), new processes no; clone3's flags are
	 * behind a pointer, so it is "not there": glibc then uses clone */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
				       SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	return err;
}

/* Compiles the filter to a BPF program that the child installs with
 * one prctl. Returns 0 or -errno. */
static int seccomp_compile(struct sock_fprog *prog)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	int err = seccomp_rules(ctx);
	int fd = err ? -1 : memfd_create("capvault-seccomp", MFD_CLOEXEC);
	if (!err && fd < 0)
		err = -errno;
	if (!err)
		err = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	off_t size = err ? 0 : lseek(fd, 0, SEEK_END);
	if (!err && (size <= 0 || size % (off_t)sizeof(struct sock_filter)))
		err = -EINVAL;
	struct sock_filter *f = err ? NULL : malloc((size_t)size);
	if (!err && !f)
		err = -ENOMEM;
	if (!err && pread(fd, f, (size_t)size, 0) != size)
		err = -EIO;
	if (fd >= 0)
		close(fd);
	if (err) {
		free(f);
		return err;
	}
	prog->filter = f;
	prog->len = (unsigned short)((size_t)size / sizeof(*f));
	return 0;
}

/* Which way to an empty network namespace this kernel allows us: asked
 * once, of a throwaway child. */
static enum netns_way probe_netns(void)
{
	static const int flags[] = { CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET };
	for (size_t i = 0; i < 2; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(unshare(flags[i]) < 0);
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			return NETNS_NONE;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			return i == 0 ? NETNS_PLAIN : NETNS_USERNS;
	}
	return NETNS_NONE;
}

/* The program as execve wants it: an absolute path, found in PATH. */
static int resolve_path(const char *prog, char **out, struct errbuf *eb)
{
	if (strchr(prog, '/')) {
		if (access(prog, X_OK) < 0)
			return errbuf_set(eb, -errno, "decoder %s: %s", prog, strerror(errno));
		return (*out = strdup(prog)) ? 0 : -ENOMEM;
	}
	const char *dirs[] = { "/usr/local/bin", "/usr/bin", "/bin" };
	for (size_t i = 0; i < 3; i++) {
		char buf[PATH_MAX];
		snprintf(buf, sizeof(buf), "%s/%s", dirs[i], prog);
		if (access(buf, X_OK) == 0)
			return (*out = strdup(buf)) ? 0 : -ENOMEM;
	}
	return errbuf_set(eb, -ENOENT, "decoder %s: not found in /usr/local/bin, /usr/bin, /bin",
			  prog);
}

static int make_env(struct sandbox *sb)
{
	snprintf(sb->home, sizeof(sb->home), "/tmp/capvault-decoder.XXXXXX");
	if (!mkdtemp(sb->home)) {
		sb->home[0] = '\0';
		return -errno;
	}
	chmod(sb->home, 0500); /* nothing to write there */
	char buf[128];
	snprintf(buf, sizeof(buf), "HOME=%s", sb->home);
	sb->env[0] = strdup(buf);
	sb->env[1] = strdup("PATH=/usr/local/bin:/usr/bin:/bin");
	sb->env[2] = strdup("LANG=C.UTF-8");
	sb->env[3] = NULL;
	return sb->env[0] && sb->env[1] && sb->env[2] ? 0 : -ENOMEM;
}

int sandbox_new(struct sandbox **out, const struct sandbox_cfg *cfg, struct errbuf *eb)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	sb->cfg = *cfg;
	pthread_mutex_init(&sb->mu, NULL);
	for (size_t i = 0; i < SPARES; i++)
		sb->spares[i].pid = -1;
	int err = resolve_path(cfg->path, &sb->path, eb);
	if (!err && (err = make_env(sb)) < 0)
		errbuf_set(eb, err, "decoder: cannot make its home folder: %s", strerror(-err));
	if (err) {
		sandbox_free(sb);
		return err;
	}
	if (seccomp_compile(&sb->seccomp) < 0)
		log_warnx("decoder: cannot build the seccomp filter; its children run without one");
	sb->netns = probe_netns();
	if (sb->netns == NETNS_NONE)
		log_info("decoder: no network namespace can be made here (systemd's "
			 "RestrictNamespaces?); seccomp alone keeps its children off the network");
	snprintf(sb->confinement, sizeof(sb->confinement), "rlimits, no_new_privs%s%s",
		 sb->seccomp.len ? ", seccomp" : "",
		 sb->netns == NETNS_PLAIN ? ", netns" : sb->netns == NETNS_USERNS ? ", userns+netns" : "");
	*out = sb;
	return 0;
}

static void child_close(struct child *c)
{
	if (c->in >= 0)
		close(c->in);
	if (c->out >= 0)
		close(c->out);
	if (c->err >= 0)
		close(c->err);
	c->in = c->out = c->err = -1;
	free(c->key);
	c->key = NULL;
}

static void child_kill(struct child *c)
{
	if (c->pid > 0) {
		kill(-c->pid, SIGKILL);
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	c->pid = -1;
	child_close(c);
}

struct sandbox *sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return NULL;
	for (size_t i = 0; i < SPARES; i++)
		if (sb->spares[i].pid > 0)
			child_kill(&sb->spares[i]);
	pthread_mutex_destroy(&sb->mu);
	if (sb->home[0] && rmdir(sb->home) < 0)
		log_warn("decoder: cannot remove %s", sb->home);
	for (size_t i = 0; sb->env[i]; i++)
		free(sb->env[i]);
	free(sb->seccomp.filter);
	free(sb->path);
	free(sb);
	return NULL;
}

const char *sandbox_confinement(const struct sandbox *sb)
{
	return sb->confinement;
}

/* --- starting a child --- */

static char *join_args(const char *const *args)
{
	size_t len = 1;
	for (size_t i = 0; args[i]; i++)
		len += strlen(args[i]) + 1;
	char *key = malloc(len);
	size_t at = 0;
	if (!key)
		return NULL;
	key[0] = '\0';
	for (size_t i = 0; args[i]; i++)
		at += (size_t)snprintf(key + at, len - at, "%s\x1f", args[i]);
	return key;
}

static int spawn(struct sandbox *sb, const char *const *args, struct child *c)
{
	char *argv[MAX_ARGS + 2];
	size_t n = 0;
	argv[n++] = sb->path;
	for (size_t i = 0; args[i]; i++) {
		if (n > MAX_ARGS)
			return -E2BIG;
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	*c = (struct child){ .pid = -1, .in = -1, .out = -1, .err = -1, .key = join_args(args) };
	int err = c->key ? 0 : -ENOMEM;
	if (!err && (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
		     pipe2(errp, O_CLOEXEC) < 0))
		err = -errno;
	pid_t pid = err ? -1 : fork();
	if (pid == 0)
		child_exec(sb, argv, (const int[3]){ in[0], outp[1], errp[1] });
	if (!err && pid < 0)
		err = -errno;
	close(in[0]), close(outp[1]), close(errp[1]);
	if (err) {
		close(in[1]), close(outp[0]), close(errp[0]);
		free(c->key);
		c->key = NULL;
		return err;
	}
	c->pid = pid;
	c->in = in[1];
	c->out = outp[0];
	c->err = errp[0];
	fcntl(c->in, F_SETFL, O_NONBLOCK);
	fcntl(c->out, F_SETFL, O_NONBLOCK);
	fcntl(c->err, F_SETFL, O_NONBLOCK);
	return 0;
}

/* A spare started with these args and still alive, taken out of the
 * table; false when there is none. */
static bool take_spare(struct sandbox *sb, const char *key, struct child *c)
{
	bool found = false;
	pthread_mutex_lock(&sb->mu);
	for (size_t i = 0; i < SPARES && !found; i++) {
		struct child *s = &sb->spares[i];
		if (s->pid <= 0 || strcmp(s->key, key) != 0)
			continue;
		*c = *s;
		s->pid = -1;
		s->key = NULL;
		s->in = s->out = s->err = -1;
		found = true;
	}
	pthread_mutex_unlock(&sb->mu);
	if (found && waitpid(c->pid, NULL, WNOHANG) != 0) {
		c->pid = -1; /* died waiting (reaped now): start another */
		child_close(c);
		found = false;
	}
	return found;
}

void sandbox_prepare(struct sandbox *sb, const char *const *args)
{
	struct child c;
	if (spawn(sb, args, &c) < 0 || !c.key)
		return;
	pthread_mutex_lock(&sb->mu);
	struct child *slot = NULL;
	for (size_t i = 0; i < SPARES && !slot; i++)
		if (sb->spares[i].pid <= 0 || !strcmp(sb->spares[i].key, c.key))
			slot = &sb->spares[i];
	struct child old = slot ? *slot : c;
	if (slot)
		*slot = c;
	pthread_mutex_unlock(&sb->mu);
	if (old.pid > 0)
		child_kill(&old); /* a spare too many */
}

/* --- running one --- */

struct io {
	const char *in;
	size_t inlen, written;
	char *out;
	size_t outlen, outcap;
	char err[1024];
	size_t errlen;
	uint64_t max_output;
	bool oversize;
};

/* Keeps the last bytes of stderr. */
static void keep_err(struct io *io, const char *buf, size_t n)
{
	size_t cap = sizeof(io->err) - 1;
	if (n >= cap) {
		memcpy(io->err, buf + n - cap, cap);
		io->errlen = cap;
		return;
	}
	if (io->errlen + n > cap) {
		size_t drop = io->errlen + n - cap;
		memmove(io->err, io->err + drop, io->errlen - drop);
		io->errlen -= drop;
	}
	memcpy(io->err + io->errlen, buf, n);
	io->errlen += n;
}

/* Reads what fd has. Returns 1 at its end, 0, or -errno. */
static int drain(int fd, struct io *io, bool is_out)
{
	for (;;) {
		if (is_out && io->outcap - io->outlen < READ_CHUNK + 1) {
			size_t cap = io->outcap ? io->outcap * 2 : 4 * READ_CHUNK;
			char *grown = realloc(io->out, cap);
			if (!grown)
				return -ENOMEM;
			io->out = grown;
			io->outcap = cap;
		}
		char tmp[READ_CHUNK];
		char *dst = is_out ? io->out + io->outlen : tmp;
		ssize_t n = read(fd, dst, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return 1;
		if (!is_out) {
			keep_err(io, tmp, (size_t)n);
			continue;
		}
		io->outlen += (size_t)n;
		if (io->outlen > io->max_output) {
			io->oversize = true;
			return 1;
		}
	}
}

/* Feeds stdin and drains stdout and stderr until both end, the deadline
 * passes (returns -ETIMEDOUT) or the output is too large. */
static int pump(struct child *c, struct io *io, double deadline)
{
	if (io->inlen == 0) {
		close(c->in);
		c->in = -1;
	}
	while (c->out >= 0 || c->err >= 0) {
		struct pollfd p[3] = { { c->out, POLLIN, 0 }, { c->err, POLLIN, 0 },
				       { c->in, POLLOUT, 0 } };
		double left = deadline - mono_ms_f();
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(p, 3, (int)left + 1) < 0 && errno != EINTR)
			return -errno;
		if (p[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
			ssize_t n = write(c->in, io->in + io->written, io->inlen - io->written);
			if (n > 0)
				io->written += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) || io->written == io->inlen) {
				close(c->in); /* done, or the child stopped reading */
				c->in = -1;
			}
		}
		for (int k = 0; k < 2; k++) {
			int *fd = k == 0 ? &c->out : &c->err;
			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int r = drain(*fd, io, k == 0);
			if (r < 0)
				return r;
			if (io->oversize)
				return 0;
			if (r == 1) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	return 0;
}

/* Waits for the child to end (killed first unless it ended by itself). */
static void reap(struct child *c, bool kill_first, struct sandbox_result *res)
{
	if (kill_first) {
		kill(-c->pid, SIGKILL);
		kill(c->pid, SIGKILL);
	}
	int st = 0;
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	c->pid = -1;
	if (res->outcome != SANDBOX_OK)
		return; /* timeout or oversize: we killed it */
	if (WIFSIGNALED(st)) {
		res->outcome = SANDBOX_SIGNAL;
		res->status = WTERMSIG(st);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		res->outcome = SANDBOX_EXIT;
		res->status = WEXITSTATUS(st);
	}
}

static int run_child(struct sandbox *sb, struct child *c, const void *input, size_t inlen,
		     struct sandbox_result *res)
{
	struct io io = { .in = input, .inlen = inlen, .max_output = sb->cfg.max_output };
	double t0 = mono_ms_f();
	int err = pump(c, &io, t0 + sb->cfg.timeout_ms);
	if (err == -ETIMEDOUT)
		res->outcome = SANDBOX_TIMEOUT;
	else if (io.oversize)
		res->outcome = SANDBOX_OVERSIZE;
	reap(c, err != 0 || io.oversize, res);
	child_close(c);
	res->elapsed_ms = mono_ms_f() - t0;
	memcpy(res->err, io.err, io.errlen);
	res->err[io.errlen] = '\0';
	if (err && err != -ETIMEDOUT) {
		free(io.out);
		return err;
	}
	if (io.out)
		io.out[io.outlen < io.max_output ? io.outlen : io.max_output] = '\0';
	res->out = io.out ? io.out : strdup("");
	res->outlen = io.out ? (io.outlen < io.max_output ? io.outlen : io.max_output) : 0;
	return res->out ? 0 : -ENOMEM;
}

int sandbox_run(struct sandbox *sb, const char *const *args, bool warm, const void *input,
		size_t inlen, struct sandbox_result *res, struct errbuf *eb)
{
	*res = (struct sandbox_result){ .outcome = SANDBOX_OK };
	if (atomic_fetch_add(&sb->running, 1) >= sb->cfg.max_running) {
		atomic_fetch_sub(&sb->running, 1);
		return errbuf_set(eb, -EBUSY, "%u decoders are running already",
				  sb->cfg.max_running);
	}
	struct child c;
	char *key = warm ? join_args(args) : NULL;
	int err = warm && !key ? -ENOMEM : 0;
	if (!err && warm && take_spare(sb, key, &c))
		res->warm = true;
	else if (!err && (err = spawn(sb, args, &c)) < 0)
		errbuf_set(eb, err, "decoder %s: cannot start it: %s", sb->path, strerror(-err));
	free(key);
	if (warm)
		sandbox_prepare(sb, args); /* it loads while this one decodes */
	if (!err && (err = run_child(sb, &c, input, inlen, res)) < 0)
		errbuf_set(eb, err, "decoder %s: %s", sb->path, strerror(-err));
	atomic_fetch_sub(&sb->running, 1);
	return err;
}

void sandbox_result_clear(struct sandbox_result *res)
{
	free(res->out);
	res->out = NULL;
	res->outlen = 0;
}

void sandbox_describe(const struct sandbox *sb, const struct sandbox_result *res, char *buf,
		      size_t len)
{
	switch (res->outcome) {
	case SANDBOX_OK: snprintf(buf, len, "finished"); break;
	case SANDBOX_EXIT: snprintf(buf, len, "exited with status %d", res->status); break;
	case SANDBOX_SIGNAL:
		snprintf(buf, len, "was killed by signal %d (SIG%s)%s", res->status,
			 sigabbrev_np(res->status) ? sigabbrev_np(res->status) : "?",
			 res->status == SIGXCPU ? ": CPU time limit" : "");
		break;
	case SANDBOX_TIMEOUT:
		snprintf(buf, len, "timed out after %u ms (killed)", sb->cfg.timeout_ms);
		break;
	case SANDBOX_OVERSIZE:
		snprintf(buf, len, "wrote more than %llu bytes (killed)",
			 (unsigned long long)sb->cfg.max_output);
		break;
	}
}
