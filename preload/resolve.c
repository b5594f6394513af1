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
#include <sys/file.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fl-internal.h"
#include "flp.h"

struct flp_real flp_real;
atomic_int flp_ready;
__thread int flp_depth __attribute__((tls_model("initial-exec")));
int flp_debug;
struct flp_policy flp_pol;
int flp_pol_broken;
char flp_pol_err[512];

#define FLP_DEFAULT_CONFIG "/etc/filelock/preload.conf"
#define FLP_CONFIG_MAX     (1 << 20)

void flp_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n, e = errno;

	n = snprintf(buf, sizeof(buf), "filelock-preload[%d]: ", (int)getpid());
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
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

static void flp_load_policy(void)
{
	const char *file = getenv("FILELOCK_PRELOAD_CONFIG");
	int explicit = file != NULL && file[0] != '\0';
	char *buf;
	size_t got = 0;
	int fd;

	if (!explicit)
		file = FLP_DEFAULT_CONFIG;
	fd = flp_real.open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && !explicit) {
			FLP_TRACE("no %s: no rules, every call passes through", file);
			return;
		}
		snprintf(flp_pol_err, sizeof(flp_pol_err), "%s: cannot open: %s", file,
			 strerror(errno));
		flp_pol_broken = 1;
		return;
	}
	buf = malloc(FLP_CONFIG_MAX + 1);
	if (buf == NULL) {
		flp_real.close(fd);
		snprintf(flp_pol_err, sizeof(flp_pol_err), "%s: out of memory", file);
		flp_pol_broken = 1;
		return;
	}
	for (;;) {
		ssize_t n = flp_real.read(fd, buf + got, FLP_CONFIG_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(flp_pol_err, sizeof(flp_pol_err), "%s: cannot read: %s", file,
				 strerror(errno));
			flp_pol_broken = 1;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > FLP_CONFIG_MAX) {
			snprintf(flp_pol_err, sizeof(flp_pol_err), "%s: larger than %d bytes", file,
				 FLP_CONFIG_MAX);
			flp_pol_broken = 1;
			break;
		}
	}
	flp_real.close(fd);
	if (!flp_pol_broken &&
	    flp_policy_parse(&flp_pol, buf, got, file, flp_pol_err, sizeof(flp_pol_err)) != 0)
		flp_pol_broken = 1;
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

static pthread_once_t flp_init_once = PTHREAD_ONCE_INIT;

static void flp_init_all(void)
{
	const char *dbg = getenv("FILELOCK_PRELOAD_DEBUG");

	flp_depth++;
	flp_debug = dbg != NULL && dbg[0] != '\0' && strcmp(dbg, "0") != 0;
	if (flp_resolve() != 0) {
		flp_depth--;
		return;
	}
	flp_point_sys();
	flp_load_policy();
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
