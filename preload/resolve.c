/* SPDX-License-Identifier: MIT */
/*
 * resolve.c -- finding the real functions, init, and the recursion guard.
 *
 * Every pointer in flp_real is looked up once with dlsym(RTLD_NEXT), in the
 * constructor or -- when another library's constructor calls a hook before
 * ours ran -- by the first hook, under a once-guard.  A hook that finds its
 * pointer still NULL while the resolution itself is running on this thread
 * (dlsym may allocate, and an allocator may open files) falls back to the raw
 * system call, as libeatmydata and libfaketime do.  A lookup that returns our
 * own wrapper is treated as missing (proxychains-ng's circular-reference
 * check).  Required symbols that are missing end the process with one line
 * and exit status 127, like a missing library would.
 *
 * After resolution, lib/'s syscall table fl__sys is pointed at the real
 * functions, so the library's own opens, closes and flocks never re-enter
 * the hooks; the per-thread flp_depth bypass covers everything else the shim
 * does on behalf of the program.
 *
 * The policy file is read here, once, with the real functions.  A broken
 * file is reported in one line on stderr, and the shim then fails every lock
 * call (flock, fcntl/lockf locks) with ENOLCK instead of letting the program
 * run with its locks silently unprotected.  We deliberately do not exit:
 * with the shim in /etc/ld.so.preload an exit would make every program on
 * the host, including the editor needed to repair the file, unusable.
 */
#undef _FORTIFY_SOURCE
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "escape.h"
#include "fl-shim.h"
#include "sys.h"
#include "flp.h"

struct flp_real flp_real;
atomic_int flp_ready;
__thread int flp_depth __attribute__((tls_model("initial-exec")));
int flp_debug;
struct flp_policy flp_pol;
int flp_pol_broken;
char flp_pol_err[512];

/* The system policy, under the build's sysconfdir (preload/Makemodule.am). */
#ifndef FLP_SYSTEM_POLICY
#define FLP_SYSTEM_POLICY "/etc/filelock/preload.conf"
#endif
/* configure --with-missing-policy=fail: no system policy fails every lock. */
#ifndef FLP_MISSING_POLICY_FAIL
#define FLP_MISSING_POLICY_FAIL 0
#endif
#define FLP_CONFIG_MAX (1 << 20)

void flp_log(const char *fmt, ...)
{
	char msg[1024], buf[FL__ESCAPED_SIZE(sizeof(msg)) + 64];
	va_list ap;
	int n, e = errno;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages carry paths and marker fields other users wrote. */
	n = snprintf(buf, sizeof(buf), "filelock-preload[%d]: ", (int)getpid());
	if (n < 0)
		n = 0;
	fl__escape(buf + n, sizeof(buf) - 1 - (size_t)n, msg);
	n += (int)strlen(buf + n);
	buf[n++] = '\n';
	(void)!syscall(SYS_write, 2, buf, (size_t)n);
	errno = e;
}

static void *flp_sym(const char *name, void *self)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == self)
		p = NULL; /* our own wrapper: a circular reference */
	return p;
}

static void flp_need(void *p, const char *name)
{
	if (p == NULL) {
		flp_log("cannot find the real %s() in the C library; giving up", name);
		_exit(127);
	}
}


static pthread_once_t flp_resolve_once = PTHREAD_ONCE_INIT;
static __thread int flp_resolving __attribute__((tls_model("initial-exec")));

static void flp_resolve_all(void)
{
	struct flp_real r;

	flp_resolving = 1;
	memset(&r, 0, sizeof(r));
#define SYM(field, name) r.field = flp_sym(name, NULL)
	SYM(open, "open");
	SYM(open64, "open64");
	SYM(openat, "openat");
	SYM(openat64, "openat64");
	SYM(open_2, "__open_2");
	SYM(open64_2, "__open64_2");
	SYM(openat_2, "__openat_2");
	SYM(openat64_2, "__openat64_2");
	SYM(creat, "creat");
	SYM(creat64, "creat64");
	SYM(close, "close");
	SYM(close_range, "close_range");
	SYM(closefrom, "closefrom");
	SYM(fclose, "fclose");
	SYM(dup, "dup");
	SYM(dup2, "dup2");
	SYM(dup3, "dup3");
	SYM(fcntl, "fcntl");
	SYM(fcntl64, "fcntl64");
	SYM(flock, "flock");
	SYM(execve, "execve");
	SYM(execv, "execv");
	SYM(execvp, "execvp");
	SYM(execvpe, "execvpe");
	SYM(fexecve, "fexecve");
	SYM(posix_spawn, "posix_spawn");
	SYM(posix_spawnp, "posix_spawnp");
	SYM(lockf, "lockf");
	SYM(lockf64, "lockf64");
	SYM(read, "read");
	SYM(fopen, "fopen");
	SYM(fopen64, "fopen64");
	SYM(freopen, "freopen");
	SYM(freopen64, "freopen64");
	SYM(rename, "rename");
	SYM(renameat, "renameat");
	SYM(renameat2, "renameat2");
	SYM(unlink, "unlink");
	SYM(unlinkat, "unlinkat");
#undef SYM
	if ((void *)r.open == (void *)open)
		r.open = NULL;
	if ((void *)r.flock == (void *)flock)
		r.flock = NULL;
	flp_need((void *)r.open, "open");
	flp_need((void *)r.openat, "openat");
	flp_need((void *)r.close, "close");
	flp_need((void *)r.fclose, "fclose");
	flp_need((void *)r.dup, "dup");
	flp_need((void *)r.dup2, "dup2");
	flp_need((void *)r.fcntl, "fcntl");
	flp_need((void *)r.flock, "flock");
	flp_need((void *)r.lockf, "lockf");
	flp_need((void *)r.read, "read");
	flp_need((void *)r.fopen, "fopen");
	flp_need((void *)r.freopen, "freopen");
	/* Optional ones fall back to their closest relative. */
	if (!r.open64)
		r.open64 = r.open;
	if (!r.openat64)
		r.openat64 = r.openat;
	if (!r.fcntl64)
		r.fcntl64 = r.fcntl;
	if (!r.lockf64)
		r.lockf64 = r.lockf;
	if (!r.fopen64)
		r.fopen64 = r.fopen;
	if (!r.freopen64)
		r.freopen64 = r.freopen;
	flp_real = r;
	flp_resolving = 0;
}

int flp_resolve(void)
{
	if (flp_resolving)
		return -EAGAIN;
	pthread_once(&flp_resolve_once, flp_resolve_all);
	return 0;
}

/*
 * A policy read by root or by a secure-execution process (AT_SECURE:
 * set-user-ID, set-group-ID, file capabilities) decides what that process
 * creates and removes, so it must be a file only root could have written.
 * Returns the rule the file breaks, or NULL.
 */
static const char *flp_policy_untrusted(const struct stat *st, int strict)
{
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (!strict)
		return NULL;
	if (st->st_uid != 0)
		return "not owned by root";
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "writable by group or others";
	return NULL;
}

static void flp_policy_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void flp_policy_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(flp_pol_err, sizeof(flp_pol_err), fmt, ap);
	va_end(ap);
	flp_pol_broken = 1;
}

/* In a secure-execution process the parser's detail (which quotes the
 * file) is cut to "FILE:LINE": the real user may not be allowed to read
 * the file, and every byte printed reaches them. */
static void flp_policy_hide_detail(const char *file)
{
	size_t k = strlen(file);
	char *q;

	if (strncmp(flp_pol_err, file, k) != 0 || flp_pol_err[k] != ':')
		return;
	q = flp_pol_err + k + 1;
	q += strspn(q, "0123456789");
	if (*q == ':' && q > flp_pol_err + k + 1)
		snprintf(q, sizeof(flp_pol_err) - (size_t)(q - flp_pol_err),
			 ": invalid rule (the detail is not shown inside set-user-ID, "
			 "set-group-ID or file-capability programs; any other program shows it)");
}

static void flp_load_policy(void)
{
	/* secure_getenv: in a secure-execution process only the system policy. */
	const char *file = secure_getenv("FILELOCK_PRELOAD_CONFIG");
	int explicit = file != NULL && file[0] != '\0';
	int secure = getauxval(AT_SECURE) != 0;
	int strict = secure || geteuid() == 0;
	const char *why;
	struct stat st;
	size_t got = 0, cap;
	char *buf;
	int fd;

	if (!explicit)
		file = FLP_SYSTEM_POLICY;
	/* O_NONBLOCK: a FIFO put there must not hang the program. */
	fd = flp_real.open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
					 (strict ? O_NOFOLLOW : 0));
	if (fd < 0) {
		if (errno == ENOENT && !explicit && !FLP_MISSING_POLICY_FAIL) {
			FLP_TRACE("no %s: no rules, every call passes through", file);
			return;
		}
		if (errno == ENOENT && !explicit)
			flp_policy_fail("%s: no such file (this build fails every lock without its "
					"system policy: --with-missing-policy=fail)",
					file);
		else if (errno == ELOOP && strict)
			flp_policy_fail("%s: refused: a symbolic link (a policy read by root or a "
					"set-user-ID program is opened without following links)",
					file);
		else
			flp_policy_fail("%s: cannot open: %s", file, strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0) {
		flp_policy_fail("%s: cannot stat: %s", file, strerror(errno));
		flp_real.close(fd);
		return;
	}
	why = flp_policy_untrusted(&st, strict);
	if (why != NULL) {
		flp_policy_fail("%s: refused: %s (a policy read by %s must be a regular file "
				"owned by root and not writable by group or others)",
				file, why, secure ? "a set-user-ID or set-group-ID program" : "root");
		flp_real.close(fd);
		return;
	}
	if (st.st_size > FLP_CONFIG_MAX) {
		flp_policy_fail("%s: larger than %d bytes", file, FLP_CONFIG_MAX);
		flp_real.close(fd);
		return;
	}
	/* One byte more than the size: a file that grows while read is caught. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		flp_real.close(fd);
		flp_policy_fail("%s: out of memory", file);
		return;
	}
	while (got < cap) {
		ssize_t n = flp_real.read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			flp_policy_fail("%s: cannot read: %s", file, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	flp_real.close(fd);
	if (!flp_pol_broken && got == cap)
		flp_policy_fail("%s: changed while being read", file);
	if (!flp_pol_broken &&
	    flp_policy_parse(&flp_pol, buf, got, file, flp_pol_err, sizeof(flp_pol_err)) != 0) {
		flp_pol_broken = 1;
		if (secure)
			flp_policy_hide_detail(file);
	}
	free(buf);
	if (!flp_pol_broken)
		FLP_TRACE("%s: %zu rule(s)", file, flp_pol.n);
}

/* lib/'s syscall table: the real variadic functions have the same types. */
static void flp_point_sys(void)
{
	fl__sys.open = flp_real.open;
	fl__sys.openat = flp_real.openat;
	fl__sys.close = flp_real.close;
	fl__sys.flock = flp_real.flock;
	fl__sys.fcntl = flp_real.fcntl64;
	if (flp_real.unlink)
		fl__sys.unlink = flp_real.unlink;
	if (flp_real.unlinkat)
		fl__sys.unlinkat = flp_real.unlinkat;
	if (flp_real.rename)
		fl__sys.rename = flp_real.rename;
	if (flp_real.renameat)
		fl__sys.renameat = flp_real.renameat;
}

/*
 * FILELOCK_PRELOAD_DEBUG: unset, empty or 0: quiet; 2: also every lock call
 * that goes to the kernel unchanged ("no rule matched PATH"); anything else:
 * 1, what the shim does.  The start-up lines (which policy, how many rules)
 * come once per process tree: the first process marks the environment its
 * children inherit with the policy file it announced.
 */
#define FLP_BANNER_ENV "FILELOCK_PRELOAD_DEBUG_BANNER"

static int flp_debug_init(void)
{
	const char *dbg = secure_getenv("FILELOCK_PRELOAD_DEBUG");
	const char *cfg = secure_getenv("FILELOCK_PRELOAD_CONFIG");
	const char *seen = secure_getenv(FLP_BANNER_ENV);

	flp_debug = dbg == NULL || dbg[0] == '\0' || strcmp(dbg, "0") == 0 ? 0
		    : strcmp(dbg, "2") == 0				    ? 2
									    : 1;
	if (cfg == NULL || cfg[0] == '\0')
		cfg = FLP_SYSTEM_POLICY;
	if (!flp_debug || (seen != NULL && strcmp(seen, cfg) == 0))
		return 0;
	setenv(FLP_BANNER_ENV, cfg, 1);
	return 1;
}

static pthread_once_t flp_init_once = PTHREAD_ONCE_INIT;

static void flp_init_all(void)
{
	int banner, level;

	flp_depth++;
	banner = flp_debug_init();
	level = flp_debug;
	if (flp_resolve() != 0) {
		flp_depth--;
		return;
	}
	flp_point_sys();
	if (!banner) /* the start-up lines of flp_load_policy, once per tree */
		flp_debug = 0;
	flp_load_policy();
	flp_debug = level;
	if (flp_pol_broken)
		flp_log("%s; every lock call will fail with ENOLCK", flp_pol_err);
	else
		flp_etcd_exec_check();
	fl__soft_pinned = flp_soft_pinned;
	/* Cache our pid now: the hooks tell a vfork child (which runs no fork
	 * handlers) by a pid different from the cached one, and a cache first
	 * filled in such a child would hold the child's pid in our memory. */
	(void)fl__pid();
	flp_atfork_register();
	flp_adopt_inherited();
	atomic_store(&flp_ready, 1);
	flp_depth--;
}

void flp_init(void)
{
	if (flp_resolving)
		return;
	pthread_once(&flp_init_once, flp_init_all);
}

__attribute__((constructor(101))) static void flp_constructor(void)
{
	flp_init();
}

__attribute__((destructor)) static void flp_destructor(void)
{
	if (atomic_load(&flp_ready))
		flp_at_exit();
}
