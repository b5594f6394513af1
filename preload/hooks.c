/* SPDX-License-Identifier: MIT */
/*
 * hooks.c -- the exported wrappers.  The only code of the shim with default
 * visibility: each decides in a few instructions whether a call is the
 * shim's business and hands it on: flock locks of an open file description
 * to ofd.c, byte-range locks to rlock.c, dotlock rules' creates to
 * dotlock.c, etcd rules to etcd.c; resolve.c, policy.c and fdtable.c hold
 * what they all need.  The rest of this comment is the shim's design as a
 * whole.
 *
 * What the shim does (filelock-preload(8) is the user's view):
 *
 *  flock(2) on a descriptor whose path matches a redirecting rule (soft,
 *  strict, lease, soft-rw) takes the library lock of that kind on a marker
 *  next to the file ("<path>.lock", or under lock_dir), with the kernel's
 *  semantics: LOCK_SH -> reader (exclusive-only kinds: exclusive, or the
 *  kernel's shared lock alone with shared=reader), LOCK_EX -> writer,
 *  LOCK_NB -> one try and EWOULDBLOCK, LOCK_UN, conversions by release and
 *  re-acquire (not atomic, as flock(2) says).  A blocking wait is the
 *  library's (see "Waiting" below) and returns EINTR as soon as a signal
 *  handler without SA_RESTART runs; the policy's timeout ends it with ENOLCK.  Rules of kind etcd go to etcd.c, which
 *  loads the full library on first use (and explains what fork and execve
 *  cannot do with an etcd lease).
 *
 *  The lock belongs to the open file description (OFD).  Descriptors of one
 *  process that share it (dup, dup2, dup3, F_DUPFD) share one struct
 *  flp_ofd; the first classification of a descriptor compares it with the
 *  known ones through kcmp(2), so dups made before the first lock call are
 *  recognised too.
 *
 * Whose pid the marker records, and how liveness is judged.  The marker
 * records the process that took the lock (it is a plain soft marker,
 * byte-compatible with Python's).  An OFD can outlive that process: after
 * fork (the daemon pattern: lock, fork, parent exits) and when the lock was
 * taken on an inherited descriptor (`exec 9>f; flock 9`: flock(1) exits, the
 * shell keeps fd 9).  So while it holds a redirected lock the shim also
 * holds a kernel flock(LOCK_SH) on the program's own descriptor, the "pin".
 * The kernel keeps the pin exactly as long as the OFD exists anywhere.  A
 * same-host contender whose library finds the marker's pid dead asks the
 * shim's veto (fl__soft_pinned): if the data file is kernel-locked, the
 * holder is alive and the marker is not broken.  When the holder really is
 * gone (crash, kill -9), the kernel drops the pin and the next contender
 * recovers the marker at once.  Other hosts never judge a soft marker by
 * pid (see backend-soft.c); use lease or soft-rw when a crashed host must be
 * recovered from elsewhere.
 *
 * Release on the last close.  When the last descriptor of this process that
 * names a locked OFD is closed (close, close_range, closefrom, fclose, dup2
 * onto it), the shim closes it for real and then probes the data file with
 * a non-blocking exclusive kernel flock from a fresh descriptor: if that
 * fails, the OFD (and its pin) still lives in another process, which now
 * owns the lock, and this process only forgets it; otherwise this was the
 * last descriptor anywhere and the marker is released.  Two processes that
 * close concurrently cannot both see the other's pin (each closes before it
 * probes), so one of them releases.  At exit(), the destructor flushes stdio
 * and closes the descriptors of locked OFDs the same way, so `flock -c`,
 * scripts that never unlock, and daemons' parents do the right thing.
 * After _exit or a crash the marker stays until a same-host contender sees
 * the dead pid and the missing pin.
 *
 * fork and execve.  A fork child inherits the table; its library handles
 * belong to the parent (the library refuses them), so the child re-adopts
 * the lock (fl__adopt) when it must release: the marker of the inode we
 * took (soft, lease), or the records the taker published (strict, soft-rw:
 * the OFD's `taker`, on this host).  A new image after execve starts with an
 * empty table: a descriptor it inherited is classified on first use, and if
 * the kernel reports (in /proc/self/fdinfo) that this very OFD holds a flock
 * (our pin) and the marker exists (soft-rw: always looked for), the lock is
 * re-adopted; the pid that fdinfo line names is the taker (0 once it is
 * gone: then a record of a dead process of this host is taken as the
 * taker's, as fl__adopt says).  The state thus travels in the kernel and on
 * disk, not in the environment, so it survives programs that rebuild their
 * environment (shells, env -i).  The soft and strict kinds have no
 * heartbeat to restart.  lease and soft-rw locks are adopted at once
 * (flp_keep_alive, a heartbeat of their own) by a new image that inherits
 * them and, in fork's child handler, by a fork child (flp_adopt_forked): the
 * kernel keeps the flock for as long as any process keeps the description,
 * and so the markers must stay fresh whichever process outlives the others;
 * while several live, each refreshes them.  A lease whose taker is dead is
 * not stale while a description of the file is still open on this host
 * (the pin, as for soft).  A soft-rw lock inherited through execve has no
 * known mode: the taker's writer record is looked for first, then a
 * reader's.  The exec family is wrapped only to write the byte-range
 * state a lingering mutex keeps in memory first (rlock.c); posix_spawn and
 * posix_spawnp only to mark descriptors maybe-shared, as fork's handler
 * does (their file actions run in the child, whose image starts afresh).
 * A vfork child (which runs no fork handlers, so the cached pid is still
 * the parent's) updates no table and no lock: flp_vfork_child().
 *
 * Waiting is the library's own wait (fl_shim_acquire: fl_acquire with the
 * rule's timeout, inotify wake-ups, soft-rw's pending writer kept between
 * tries), with our signal rules (struct fl_shim_signals): every sleep of the
 * wait runs ppoll with the caller's signal mask and ends, with EINTR, when
 * a handler that ends waits ran.  The kernel lock an also_native or
 * shared=reader rule takes too is waited for by the library's wait engine
 * (fl_shim_wait_for), woken when a descriptor of the file is closed.
 *
 * fcntl/lockf byte-range locks on matching paths are emulated by rlock.c
 * (POSIX semantics, owner files in a lock directory); the hooks here only
 * route them, refuse those on a SQLite "-shm" file (WAL cannot work across
 * hosts) with EIO, and tell rlock.c about every close, because closing any
 * descriptor of a file drops the process's POSIX locks on it.  deny rules
 * fail every lock call with ENOLCK; native and dotlock rules pass lock
 * calls through.
 *
 * dotlock rules: open(O_CREAT|O_EXCL) that fails with EEXIST on a matching
 * path reads the existing file; if its holder (a pid, or Python's
 * "pid\nhost\n[start]" record) is on this host and gone, or the file is older
 * than stale_threshold (when set), it is broken (rename aside, re-verify,
 * unlink) and the open is retried once.  With heartbeat_interval, a
 * successful exclusive create registers the new file with dotlock.c, which
 * refreshes it while it stays ours; "older" then means silent for
 * stale_threshold by the ledger (lib/ledger.c), not by our wall clock; and
 * rename/renameat/renameat2/unlink/unlinkat tell dotlock.c first (they
 * pass straight through while nothing is being refreshed).
 *
 * Cost on descriptors that do not match: one atomic load from the fd table
 * per call (plus one store on close), no lock, no allocation.  The first
 * lock call on a descriptor classifies it (readlink of /proc/self/fd/N).
 *
 * Limits (documented in filelock-preload(8)): posix_spawn file actions and
 * raw syscall(2) bypass the shim; a signal handler that closes a locked
 * descriptor while another thread works on the same OFD may block; thread
 * cancellation during a blocking flock leaves the OFD's mutex held.
 */
#undef _FORTIFY_SOURCE
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fl-shim.h"
#include "flp-real.h"
#include "flp.h"
#include "sys.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* glibc's fortify entry points have no prototype without _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* ---- closing ----------------------------------------------------------- */

int flp_close_slow(int fd)
{
	struct flp_ofd *o;
	int r;

	/* A vfork child (CPython's subprocess closes descriptors in one) shares
	 * our memory but not our descriptors: its closes must leave the
	 * parent's table and locks alone.  fork's handlers never ran there, so
	 * the cached pid is still the parent's. */
	if (FLP_UNLIKELY(getpid() != fl__pid()))
		return real_close(fd);
	o = flp_closing(fd);
	r = real_close(fd);
	flp_closed(o);
	return r;
}

FLP_EXPORT int close(int fd)
{
	uintptr_t v;

	if (FLP_UNLIKELY(flp_depth > 0))
		return real_close(fd);
	v = flp_fd_get(fd);
	if (FLP_LIKELY(v == FLP_FD_FRESH || v == FLP_FD_NOMATCH)) {
		if (v != FLP_FD_FRESH && !flp_vfork_child())
			flp_fd_set(fd, FLP_FD_FRESH, 0);
		flp_rl_closing(fd);
		return real_close(fd);
	}
	return flp_close_slow(fd);
}

/* The descriptors in [first, last] that may need work, closed one by one. */
static void flp_close_each(unsigned first, unsigned last)
{
	int limit = flp_fd_limit();

	if (flp_vfork_child())
		return; /* the table is the parent's */
	for (unsigned fd = first; fd <= last && fd < (unsigned)limit; fd++) {
		uintptr_t v = flp_fd_get((int)fd);
		if (v == FLP_FD_FRESH || v == FLP_FD_NOMATCH) {
			flp_rl_closing((int)fd);
			continue;
		}
		if (v == FLP_FD_UNKNOWN && real_fcntl((int)fd, F_GETFD, NULL) < 0) {
			flp_fd_set((int)fd, FLP_FD_FRESH, 0); /* not open */
			continue;
		}
		if (v == FLP_FD_UNKNOWN || FLP_FD_IS_OFD(v))
			flp_close_slow((int)fd);
	}
	for (unsigned fd = first; fd <= last && fd < (unsigned)limit; fd++)
		if (flp_fd_get((int)fd) == FLP_FD_NOMATCH)
			flp_fd_set((int)fd, FLP_FD_FRESH, 0);
}

FLP_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int e = errno;

	if (flp_depth == 0 && !(flags & CLOSE_RANGE_CLOEXEC) && first <= last) {
		flp_close_each(first, last);
		errno = e;
	}
	if (FLP_HAVE(close_range) && flp_real.close_range)
		return flp_real.close_range(first, last, flags);
	return (int)syscall(SYS_close_range, first, last, flags);
}

FLP_EXPORT void closefrom(int lowfd)
{
	int e = errno;

	if (flp_depth == 0 && lowfd >= 0) {
		flp_close_each((unsigned)lowfd, ~0U);
		errno = e;
	}
	if (FLP_HAVE(closefrom) && flp_real.closefrom)
		flp_real.closefrom(lowfd);
	else
		(void)syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0);
}

FLP_EXPORT int fclose(FILE *fp)
{
	struct flp_ofd *o = NULL;
	int r, fd;

	if (flp_real.fclose == NULL)
		flp_resolve();
	if (flp_depth > 0 || fp == NULL || flp_vfork_child())
		return flp_real.fclose(fp);
	fd = fileno(fp);
	if (fd >= 0)
		o = flp_closing(fd);
	r = flp_real.fclose(fp);
	flp_closed(o);
	return r;
}

/* ---- duplicating ------------------------------------------------------- */

static void flp_dup_entry(int oldfd, int newfd)
{
	uintptr_t v = flp_fd_get(oldfd);

	if (FLP_FD_IS_OFD(v)) {
		pthread_mutex_lock(&flp_fd_mu);
		if (flp_fd_get(oldfd) == v && flp_fd_set(newfd, v, 1) == 0)
			((struct flp_ofd *)v)->refs++;
		pthread_mutex_unlock(&flp_fd_mu);
		return;
	}
	if (flp_fd_get(newfd) != v || v == FLP_FD_UNKNOWN)
		flp_fd_set(newfd, v == FLP_FD_UNKNOWN ? FLP_FD_UNKNOWN : v, newfd >= 1024);
}

FLP_EXPORT int dup(int fd)
{
	int r;

	if (FLP_HAVE(dup) && flp_real.dup)
		r = flp_real.dup(fd);
	else
		r = (int)syscall(SYS_dup, fd);
	if (r >= 0 && flp_depth == 0 && !flp_vfork_child())
		flp_dup_entry(fd, r);
	return r;
}

/* dup2/dup3 close fd2 first: that may be the last descriptor of a lock. */
static int flp_dup23(int fd, int fd2, int flags, int three)
{
	struct flp_ofd *o;
	int r, e;

	if (flp_depth > 0 || fd == fd2 || flp_vfork_child()) {
		if (three)
			return flp_real.dup3 ? flp_real.dup3(fd, fd2, flags)
					     : (int)syscall(SYS_dup3, fd, fd2, flags);
		return flp_real.dup2 ? flp_real.dup2(fd, fd2) : (int)syscall(SYS_dup2, fd, fd2);
	}
	if (real_fcntl(fd, F_GETFD, NULL) < 0)
		return -1; /* EBADF, before touching fd2's state */
	o = flp_closing(fd2); /* harmless when fd2 is not open */
	if (three)
		r = flp_real.dup3 ? flp_real.dup3(fd, fd2, flags)
				  : (int)syscall(SYS_dup3, fd, fd2, flags);
	else
		r = flp_real.dup2 ? flp_real.dup2(fd, fd2) : (int)syscall(SYS_dup2, fd, fd2);
	e = errno;
	if (r >= 0)
		flp_dup_entry(fd, fd2);
	flp_closed(o);
	errno = e;
	return r;
}

FLP_EXPORT int dup2(int fd, int fd2)
{
	if (flp_real.dup2 == NULL)
		flp_resolve();
	return flp_dup23(fd, fd2, 0, 0);
}

FLP_EXPORT int dup3(int fd, int fd2, int flags)
{
	if (flp_real.dup3 == NULL)
		flp_resolve();
	return flp_dup23(fd, fd2, flags, 1);
}

/* ---- flock ------------------------------------------------------------- */

static int flp_flock_slow(int fd, int op)
{
	struct flp_ofd *o;
	int e = errno, err, r;

	if (flp_needs_init())
		return real_flock(fd, op);
	if (flp_pol_broken) {
		flp_log("flock(%d): %s; failing with ENOLCK", fd, flp_pol_err);
		errno = ENOLCK;
		return -1;
	}
	flp_depth++;
	o = flp_lookup(fd, &err);
	if (o == NULL) {
		if (!err)
			flp_trace_passthrough("flock", fd);
		flp_depth--;
		if (err) {
			errno = ENOLCK;
			return -1;
		}
		return real_flock(fd, op);
	}
	if (o->rule->kind == FLP_DENY) {
		flp_log("flock(%s) denied by policy line %d (kind deny); failing with ENOLCK",
			o->path, o->rule->line);
		flp_depth--;
		errno = ENOLCK;
		return -1;
	}
	if (o->wal) {
		flp_depth--;
		return real_flock(fd, op);
	}
	pthread_mutex_lock(&o->mu);
	switch (op & ~LOCK_NB) {
	case LOCK_UN:
		r = flp_unlock(o, fd);
		FLP_TRACE("flock(%d, LOCK_UN) on %s: released", fd, o->path);
		break;
	case LOCK_SH:
	case LOCK_EX:
		r = flp_lock(o, fd, op);
		break;
	default:
		r = EINVAL;
		break;
	}
	pthread_mutex_unlock(&o->mu);
	flp_depth--;
	errno = r ? r : e;
	return r ? -1 : 0;
}

FLP_EXPORT int flock(int fd, int op)
{
	if (FLP_LIKELY(flp_depth == 0) && flp_fd_get(fd) != FLP_FD_NOMATCH)
		return flp_flock_slow(fd, op);
	return real_flock(fd, op);
}

/* ---- fcntl and lockf --------------------------------------------------- */

static int flp_is_lock_cmd(int cmd)
{
	switch (cmd) {
	case F_GETLK:
	case F_SETLK:
	case F_SETLKW:
#if defined(F_OFD_GETLK)
	case F_OFD_GETLK:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
#endif
		return 1;
	default:
		return 0;
	}
}

static const char *flp_lock_cmd_name(int cmd)
{
	switch (cmd) {
	case F_GETLK:
		return "F_GETLK";
	case F_SETLK:
		return "F_SETLK";
	case F_SETLKW:
		return "F_SETLKW";
	case F_OFD_GETLK:
		return "F_OFD_GETLK";
	case F_OFD_SETLK:
		return "F_OFD_SETLK";
	default:
		return "F_OFD_SETLKW";
	}
}

/*
 * A byte-range lock call on fd.  Returns -1 to pass it to the kernel, else
 * 0 or a positive errno for the caller to return.
 */
static int flp_range_lock(int fd, int cmd, struct flock *fl, const char *call)
{
	struct flp_ofd *o;
	int err, r;

	if (flp_needs_init())
		return -1;
	if (flp_pol_broken) {
		flp_log("%s on fd %d: %s; failing with ENOLCK", call, fd, flp_pol_err);
		return ENOLCK;
	}
	flp_depth++;
	o = flp_lookup(fd, &err);
	if (o == NULL) {
		if (!err)
			flp_trace_passthrough(call, fd);
		flp_depth--;
		return err ? ENOLCK : -1;
	}
	if (o->rule->kind == FLP_DENY) {
		flp_log("%s on %s denied by policy line %d (kind deny); failing with ENOLCK", call,
			o->path, o->rule->line);
		r = ENOLCK;
	} else if (o->wal) {
		flp_log("%s(%s) on %s: SQLite's WAL mode cannot work across hosts (the -shm "
			"file is shared memory, which no lock makes coherent over NFS); use "
			"PRAGMA journal_mode=DELETE (policy line %d); failing with EIO",
			call, flp_lock_cmd_name(cmd), o->path, o->rule->line);
		r = EIO;
	} else if (flp_rule_is_etcd(o->rule)) {
		flp_etcd_refuse_range(o->rule, call, o->path);
		r = ENOLCK;
	} else {
		r = flp_rl_fcntl(o, fd, cmd, fl);
	}
	flp_depth--;
	return r;
}

static int flp_fcntl(int (*fn)(int, int, ...), int fd, int cmd, void *arg)
{
	int r;

	if (FLP_UNLIKELY(flp_depth > 0) || !fn)
		return fn ? fn(fd, cmd, arg) : (int)syscall(SYS_fcntl, fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		r = fn(fd, cmd, arg);
		if (r >= 0)
			flp_dup_entry(fd, r);
		return r;
	}
	if (flp_is_lock_cmd(cmd) && flp_fd_get(fd) != FLP_FD_NOMATCH) {
		int e = errno;

		r = flp_range_lock(fd, cmd, arg, "fcntl");
		if (r >= 0) {
			errno = r ? r : e;
			return r ? -1 : 0;
		}
	}
	return fn(fd, cmd, arg);
}

FLP_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (flp_real.fcntl == NULL)
		flp_resolve();
	return flp_fcntl(flp_real.fcntl, fd, cmd, arg);
}

FLP_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (flp_real.fcntl64 == NULL)
		flp_resolve();
	return flp_fcntl(flp_real.fcntl64, fd, cmd, arg);
}

/*
 * lockf(3) as glibc builds it on fcntl (which it calls internally, past our
 * fcntl hook): a write lock from the current offset, len bytes (0: to EOF,
 * negative: before the offset); F_TEST asks F_GETLK for a read lock.
 */
static int flp_lockf(int (*fn)(int, int, off_t), int fd, int cmd, off_t len)
{
	struct flock fl;
	int e = errno, r, fcmd;

	if (FLP_UNLIKELY(flp_depth > 0) || flp_fd_get(fd) == FLP_FD_NOMATCH)
		return fn(fd, cmd, len);
	memset(&fl, 0, sizeof(fl));
	fl.l_whence = SEEK_CUR;
	fl.l_start = 0;
	fl.l_len = len;
	switch (cmd) {
	case F_TEST:
		fl.l_type = F_RDLCK;
		fcmd = F_GETLK;
		break;
	case F_ULOCK:
		fl.l_type = F_UNLCK;
		fcmd = F_SETLK;
		break;
	case F_TLOCK:
		fl.l_type = F_WRLCK;
		fcmd = F_SETLK;
		break;
	case F_LOCK:
		fl.l_type = F_WRLCK;
		fcmd = F_SETLKW;
		break;
	default:
		return fn(fd, cmd, len); /* EINVAL from glibc */
	}
	r = flp_range_lock(fd, fcmd, &fl, "lockf");
	if (r < 0)
		return fn(fd, cmd, len);
	if (r == 0 && cmd == F_TEST && fl.l_type != F_UNLCK)
		r = EACCES;
	errno = r ? r : e;
	return r ? -1 : 0;
}

FLP_EXPORT int lockf(int fd, int cmd, off_t len)
{
	if (flp_real.lockf == NULL)
		flp_resolve();
	return flp_lockf(flp_real.lockf, fd, cmd, len);
}

FLP_EXPORT int lockf64(int fd, int cmd, off_t len)
{
	if (flp_real.lockf64 == NULL)
		flp_resolve();
	return flp_lockf(flp_real.lockf64, fd, cmd, len);
}

/* ---- open family ------------------------------------------------------- */

typedef int (*flp_open_fn)(int dirfd, const char *path, int flags, mode_t mode);

static inline void flp_opened(int fd)
{
	if (fd >= 0 && flp_fd_get(fd) != FLP_FD_FRESH && !flp_vfork_child())
		flp_fd_set(fd, FLP_FD_FRESH, fd >= 1024);
}

static inline mode_t flp_mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

#define FLP_EXCL(flags) (((flags) & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))

static int flp_openat_common(int (*fn)(int, const char *, int, ...), int dirfd, const char *path,
			     int flags, mode_t mode)
{
	int fd;

	if (fn == NULL)
		fd = (int)syscall(SYS_openat, dirfd, path, flags, mode);
	else
		fd = fn(dirfd, path, flags, mode);
	if (FLP_UNLIKELY(flp_depth > 0))
		return fd;
	if (FLP_UNLIKELY(FLP_EXCL(flags)))
		fd = flp_open_dotlock(dirfd, path, flags, mode, fd);
	flp_opened(fd);
	return fd;
}

static int flp_open_common(int (*fn)(const char *, int, ...), const char *path, int flags,
			   mode_t mode)
{
	int fd;

	if (fn == NULL)
		fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	else
		fd = fn(path, flags, mode);
	if (FLP_UNLIKELY(flp_depth > 0))
		return fd;
	if (FLP_UNLIKELY(FLP_EXCL(flags)))
		fd = flp_open_dotlock(AT_FDCWD, path, flags, mode, fd);
	flp_opened(fd);
	return fd;
}

FLP_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = flp_mode_arg(flags, ap);
	va_end(ap);
	if (FLP_UNLIKELY(flp_real.open == NULL) && flp_resolve() != 0)
		return flp_open_common(NULL, path, flags, mode);
	return flp_open_common(flp_real.open, path, flags, mode);
}

FLP_EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = flp_mode_arg(flags, ap);
	va_end(ap);
	if (FLP_UNLIKELY(flp_real.open64 == NULL) && flp_resolve() != 0)
		return flp_open_common(NULL, path, flags, mode);
	return flp_open_common(flp_real.open64, path, flags, mode);
}

FLP_EXPORT int __open_2(const char *path, int flags)
{
	if (FLP_UNLIKELY(flp_real.open == NULL) && flp_resolve() != 0)
		return flp_open_common(NULL, path, flags, 0);
	return flp_open_common(flp_real.open, path, flags, 0);
}

FLP_EXPORT int __open64_2(const char *path, int flags)
{
	if (FLP_UNLIKELY(flp_real.open64 == NULL) && flp_resolve() != 0)
		return flp_open_common(NULL, path, flags, 0);
	return flp_open_common(flp_real.open64, path, flags, 0);
}

FLP_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = flp_mode_arg(flags, ap);
	va_end(ap);
	if (FLP_UNLIKELY(flp_real.openat == NULL) && flp_resolve() != 0)
		return flp_openat_common(NULL, dirfd, path, flags, mode);
	return flp_openat_common(flp_real.openat, dirfd, path, flags, mode);
}

FLP_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = flp_mode_arg(flags, ap);
	va_end(ap);
	if (FLP_UNLIKELY(flp_real.openat64 == NULL) && flp_resolve() != 0)
		return flp_openat_common(NULL, dirfd, path, flags, mode);
	return flp_openat_common(flp_real.openat64, dirfd, path, flags, mode);
}

FLP_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	if (FLP_UNLIKELY(flp_real.openat == NULL) && flp_resolve() != 0)
		return flp_openat_common(NULL, dirfd, path, flags, 0);
	return flp_openat_common(flp_real.openat, dirfd, path, flags, 0);
}

FLP_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	if (FLP_UNLIKELY(flp_real.openat64 == NULL) && flp_resolve() != 0)
		return flp_openat_common(NULL, dirfd, path, flags, 0);
	return flp_openat_common(flp_real.openat64, dirfd, path, flags, 0);
}

FLP_EXPORT int creat(const char *path, mode_t mode)
{
	int fd;

	if (FLP_UNLIKELY(flp_real.creat == NULL) && flp_resolve() != 0)
		fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
	else
		fd = flp_real.creat(path, mode);
	if (flp_depth == 0)
		flp_opened(fd);
	return fd;
}

FLP_EXPORT int creat64(const char *path, mode_t mode)
{
	int fd;

	if (FLP_UNLIKELY(flp_real.creat64 == NULL) && flp_resolve() != 0)
		fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
	else
		fd = flp_real.creat64 ? flp_real.creat64(path, mode)
				      : flp_real.open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (flp_depth == 0)
		flp_opened(fd);
	return fd;
}

/* stdio opens: "x" in the mode is O_EXCL, so dotlock rules apply too. */
static FILE *flp_fopen(FILE *(*fn)(const char *, const char *), const char *path,
		       const char *mode)
{
	FILE *fp = fn(path, mode);

	if (FLP_UNLIKELY(flp_depth > 0))
		return fp;
	if (fp == NULL && errno == EEXIST && strchr(mode, 'x') &&
	    flp_dotlock_recover(AT_FDCWD, path))
		fp = fn(path, mode);
	if (fp && strchr(mode, 'x'))
		flp_dotlock_created(AT_FDCWD, path, fileno(fp));
	if (fp)
		flp_opened(fileno(fp));
	return fp;
}

FLP_EXPORT FILE *fopen(const char *path, const char *mode)
{
	if (flp_real.fopen == NULL)
		flp_resolve();
	return flp_fopen(flp_real.fopen, path, mode);
}

FLP_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	if (flp_real.fopen64 == NULL)
		flp_resolve();
	return flp_fopen(flp_real.fopen64, path, mode);
}

/* freopen closes the stream's descriptor first: maybe a lock's last one. */
static FILE *flp_freopen(FILE *(*fn)(const char *, const char *, FILE *), const char *path,
			 const char *mode, FILE *stream)
{
	struct flp_ofd *o = NULL;
	FILE *fp;
	int e, fd = stream ? fileno(stream) : -1, vf = flp_vfork_child();

	if (flp_depth == 0 && fd >= 0 && path != NULL && !vf) /* NULL: same file, same fd */
		o = flp_closing(fd);
	fp = fn(path, mode, stream);
	e = errno;
	flp_closed(o);
	if (fp && flp_depth == 0 && !vf)
		flp_opened(fileno(fp));
	errno = e;
	return fp;
}

FLP_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	if (flp_real.freopen == NULL)
		flp_resolve();
	return flp_freopen(flp_real.freopen, path, mode, stream);
}

FLP_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	if (flp_real.freopen64 == NULL)
		flp_resolve();
	return flp_freopen(flp_real.freopen64, path, mode, stream);
}

/* ---- process lifetime -------------------------------------------------- */

FLP_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	flp_before_exec();
	if (FLP_HAVE(execve) && flp_real.execve)
		return flp_real.execve(path, argv, envp);
	return (int)syscall(SYS_execve, path, argv, envp);
}

FLP_EXPORT int execv(const char *path, char *const argv[])
{
	flp_before_exec();
	if (FLP_HAVE(execv) && flp_real.execv)
		return flp_real.execv(path, argv);
	return (int)syscall(SYS_execve, path, argv, environ);
}

FLP_EXPORT int execvp(const char *file, char *const argv[])
{
	flp_before_exec();
	if (FLP_HAVE(execvp) && flp_real.execvp)
		return flp_real.execvp(file, argv);
	errno = ENOSYS;
	return -1;
}

FLP_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	flp_before_exec();
	if (FLP_HAVE(execvpe) && flp_real.execvpe)
		return flp_real.execvpe(file, argv, envp);
	errno = ENOSYS;
	return -1;
}

FLP_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	flp_before_exec();
	if (FLP_HAVE(fexecve) && flp_real.fexecve)
		return flp_real.fexecve(fd, argv, envp);
	errno = ENOSYS;
	return -1;
}

/*
 * posix_spawn and posix_spawnp start a child without fork's handlers (glibc
 * clones and runs the file actions with internal calls): the child's image
 * finds what it inherited at its start like any new image, but this
 * process's descriptors must become "maybe shared" as at fork, so that a
 * lock the child takes on one of them (a dup2 action onto the flock(1) it
 * runs) is released when this process closes its copy.
 */
FLP_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (flp_depth == 0 && !flp_vfork_child())
		flp_atfork_prepare();
	if (FLP_HAVE(posix_spawn) && flp_real.posix_spawn)
		return flp_real.posix_spawn(pid, path, fa, attr, argv, envp);
	return ENOSYS;
}

FLP_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (flp_depth == 0 && !flp_vfork_child())
		flp_atfork_prepare();
	if (FLP_HAVE(posix_spawnp) && flp_real.posix_spawnp)
		return flp_real.posix_spawnp(pid, file, fa, attr, argv, envp);
	return ENOSYS;
}

/*
 * execl, execlp, execle: the argument vector is built here (on the stack up
 * to 255 arguments, as exec is often called in a fork child where malloc is
 * not safe; beyond that from the heap) and the v form is called.  which: 0
 * execv, 1 execvp, 2 execve (the environment follows the NULL).
 */
static int flp_execl(int which, const char *path, const char *arg, va_list ap)
{
	char *stackv[256], **argv = stackv, *const *envp = NULL;
	size_t n = 1, cap = sizeof(stackv) / sizeof(stackv[0]);
	int r;

	argv[0] = (char *)(uintptr_t)arg;
	for (;;) {
		char *a = va_arg(ap, char *);
		if (n == cap) {
			char **nv = malloc(2 * cap * sizeof(*nv));
			if (nv == NULL) {
				if (argv != stackv)
					free(argv);
				errno = E2BIG;
				return -1;
			}
			memcpy(nv, argv, n * sizeof(*nv));
			if (argv != stackv)
				free(argv);
			argv = nv;
			cap *= 2;
		}
		argv[n++] = a;
		if (a == NULL)
			break;
	}
	if (which == 2)
		envp = va_arg(ap, char *const *);
	r = which == 0 ? execv(path, argv) : which == 1 ? execvp(path, argv) : execve(path, argv, envp);
	if (argv != stackv)
		free(argv);
	return r;
}

FLP_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int r;

	va_start(ap, arg);
	r = flp_execl(0, path, arg, ap);
	va_end(ap);
	return r;
}

FLP_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int r;

	va_start(ap, arg);
	r = flp_execl(1, file, arg, ap);
	va_end(ap);
	return r;
}

FLP_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int r;

	va_start(ap, arg);
	r = flp_execl(2, path, arg, ap);
	va_end(ap);
	return r;
}

/* ---- rename and unlink: a heartbeated dotlock stops before it moves ---- */

static inline void flp_leaving(int dirfd, const char *path)
{
	if (FLP_UNLIKELY(atomic_load_explicit(&flp_dl_count, memory_order_relaxed) > 0) &&
	    flp_depth == 0)
		flp_dl_leaving(dirfd, path);
}

FLP_EXPORT int rename(const char *from, const char *to)
{
	flp_leaving(AT_FDCWD, from);
	if (flp_real.rename == NULL)
		flp_resolve();
	if (flp_real.rename == NULL)
		return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0);
	return flp_real.rename(from, to);
}

FLP_EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	flp_leaving(fromfd, from);
	if (flp_real.renameat == NULL)
		flp_resolve();
	if (flp_real.renameat == NULL)
		return (int)syscall(SYS_renameat2, fromfd, from, tofd, to, 0);
	return flp_real.renameat(fromfd, from, tofd, to);
}

FLP_EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
	flp_leaving(fromfd, from);
	if (flp_real.renameat2 == NULL)
		flp_resolve();
	if (flp_real.renameat2 == NULL)
		return (int)syscall(SYS_renameat2, fromfd, from, tofd, to, flags);
	return flp_real.renameat2(fromfd, from, tofd, to, flags);
}

FLP_EXPORT int unlink(const char *path)
{
	flp_leaving(AT_FDCWD, path);
	if (flp_real.unlink == NULL)
		flp_resolve();
	if (flp_real.unlink == NULL)
		return (int)syscall(SYS_unlinkat, AT_FDCWD, path, 0);
	return flp_real.unlink(path);
}

FLP_EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	flp_leaving(dirfd, path);
	if (flp_real.unlinkat == NULL)
		flp_resolve();
	if (flp_real.unlinkat == NULL)
		return (int)syscall(SYS_unlinkat, dirfd, path, flags);
	return flp_real.unlinkat(dirfd, path, flags);
}
