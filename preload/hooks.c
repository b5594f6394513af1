/* SPDX-License-Identifier: MIT */
/*
 * hooks.c -- the exported wrappers.  The only code of the shim with default
 * visibility; everything they need lives in resolve.c, policy.c, fdtable.c.
 *
 * What the shim does (filelock-preload(8) is the user's view):
 *
 *  flock(2) on a descriptor whose path matches a redirecting rule (soft,
 *  strict, lease, soft-rw) takes the library lock of that kind on a marker
 *  next to the file ("<path>.lock", or under lock_dir), with the kernel's
 *  semantics: LOCK_SH -> reader (exclusive-only kinds: exclusive, or the
 *  kernel's shared lock alone with shared=reader), LOCK_EX -> writer,
 *  LOCK_NB -> one try and EWOULDBLOCK, LOCK_UN, conversions by release and
 *  re-acquire (not atomic, as flock(2) says).  A blocking wait polls with
 *  nanosleep and returns EINTR as soon as a signal handler runs; the policy's
 *  timeout ends it with ENOLCK.  Rules of kind etcd go to etcd.c, which
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
 * taker's, fl__adopt_pid_ok).  The state thus travels in the kernel and on
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
 * Waiting is the library's own wait (fl_acquire with the rule's timeout:
 * inotify wake-ups, soft-rw's pending writer kept between tries), with our
 * signal rules: while it waits, the thread registers a struct
 * fl__wait_intr, so every sleep of the wait runs ppoll with the caller's
 * signal mask and ends, with EINTR, when a handler that ends waits ran.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fl-internal.h"
#include "flp.h"
#include "proclocks.h"

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* glibc's fortify entry points have no prototype without _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

/* ---- real calls, with raw-syscall fallbacks before resolution ---------- */

#define FLP_HAVE(f) (FLP_LIKELY(flp_real.f != NULL) || flp_resolve() == 0)

static int real_close(int fd)
{
	if (FLP_HAVE(close) && flp_real.close)
		return flp_real.close(fd);
	return (int)syscall(SYS_close, fd);
}

static int real_flock(int fd, int op)
{
	if (FLP_HAVE(flock) && flp_real.flock)
		return flp_real.flock(fd, op);
	return (int)syscall(SYS_flock, fd, op);
}

static int real_fcntl(int fd, int cmd, void *arg)
{
	if (FLP_HAVE(fcntl64) && flp_real.fcntl64)
		return flp_real.fcntl64(fd, cmd, arg);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

static int real_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	if (FLP_HAVE(openat) && flp_real.openat)
		return flp_real.openat(dirfd, path, flags, mode);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

static int flp_sleep(double secs)
{
	struct timespec ts;

	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	return nanosleep(&ts, NULL) == 0 ? 0 : errno;
}

/*
 * A vfork child shares our memory but not our descriptors, and runs no fork
 * handlers, so the pid cached at start is still the parent's: every update
 * of the descriptor table (and of the locks) is skipped there, the real
 * call made (CPython's subprocess closes, dup2s and even fopens in one).
 */
static inline int flp_vfork_child(void)
{
	return FLP_UNLIKELY(getpid() != fl__pid());
}

static int flp_needs_init(void)
{
	if (FLP_LIKELY(atomic_load_explicit(&flp_ready, memory_order_acquire)))
		return 0;
	flp_init();
	return !atomic_load(&flp_ready);
}

/* ---- classification ---------------------------------------------------- */

static ssize_t flp_fd_path(int fd, char *buf, size_t cap)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, cap - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= cap - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return n;
}

/*
 * FILELOCK_PRELOAD_DEBUG=2: why a lock call on fd goes to the kernel
 * unchanged (once per descriptor: it is classified once).  What one needs
 * when a lock is not redirected.
 */
static void flp_trace_passthrough(const char *call, int fd)
{
	const struct flp_rule *r;
	char path[4096];

	if (FLP_LIKELY(flp_debug < 2))
		return;
	if (flp_fd_path(fd, path, sizeof(path)) < 0)
		flp_log("%s(%d): no path for the descriptor; passed to the kernel", call, fd);
	else if (flp_pol.n == 0)
		flp_log("%s(%d): no rule matched %s (the policy has no rules); passed to the kernel",
			call, fd, path);
	else if ((r = flp_policy_match(&flp_pol, path)) == NULL)
		flp_log("%s(%d): no rule matched %s; passed to the kernel", call, fd, path);
	else
		flp_log("%s(%d): %s matches the rule of line %d, kind %s; passed to the kernel",
			call, fd, path, r->line, flp_kind_name(r->kind));
}

/* Does this OFD hold a flock?  /proc/self/fdinfo lists the locks it owns. */
int flp_ofd_has_flock(int fd, int *exclusive, pid_t *pid)
{
	char path[64], buf[4096];
	struct fl__proc_lock pl;
	ssize_t n, got = 0;
	const char *p;
	int pfd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	pfd = real_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (pfd < 0)
		return 0;
	while ((size_t)got < sizeof(buf) - 1 &&
	       (n = flp_real.read(pfd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	real_close(pfd);
	buf[got] = '\0';
	for (p = buf; fl__fdinfo_next_lock(&p, &pl);) {
		if (strcmp(pl.type, "FLOCK") == 0) {
			*exclusive = strcmp(pl.mode, "WRITE") == 0;
			if (pid) /* the taker; 0 once it is gone */
				*pid = pl.pid > 0 ? (pid_t)pl.pid : 0;
			return 1;
		}
	}
	return 0;
}

/* Finds an existing OFD record naming the same OFD as fd.  flp_fd_mu held. */
static struct flp_ofd *flp_same_ofd(int fd, dev_t dev, ino_t ino)
{
	int limit = flp_fd_limit();
	pid_t me = getpid();

	for (struct flp_ofd *o = flp_ofds; o; o = o->next) {
		if (o->dev != dev || o->ino != ino || o->refs == 0)
			continue;
		for (int g = 0; g < limit; g++) {
			if (flp_fd_get(g) != (uintptr_t)o)
				continue;
			if (syscall(SYS_kcmp, me, me, KCMP_FILE, fd, g) == 0)
				return o;
			break; /* all of o's descriptors name one OFD: one compare suffices */
		}
	}
	return NULL;
}

/* "...-shm": SQLite's WAL index, which its users mmap(MAP_SHARED). */
static int flp_is_shm(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && strcmp(path + n - 4, "-shm") == 0;
}

/*
 * The WAL index of a database that a redirecting rule covers ("db-shm" when
 * a rule matches "db") is managed too, but only so that its byte-range
 * locks can be refused: WAL keeps its index in shared memory, which no lock
 * makes coherent across hosts.
 */
static const struct flp_rule *flp_wal_rule(const char *path)
{
	char db[4096];
	const struct flp_rule *r;
	size_t n = strlen(path);

	if (!flp_is_shm(path) || n - 4 >= sizeof(db))
		return NULL;
	memcpy(db, path, n - 4);
	db[n - 4] = '\0';
	r = flp_policy_match(&flp_pol, db);
	return r && flp_lib_kind(r->kind) >= 0 ? r : NULL;
}

/*
 * The OFD record of fd, classifying fd first if needed.  Returns NULL when
 * the shim does not manage fd (no rule, or a pass-through rule); *err is set
 * (a positive errno) when classification failed for a descriptor that
 * should be managed.
 */
static struct flp_ofd *flp_lookup(int fd, int *err)
{
	uintptr_t v = flp_fd_get(fd);
	char path[4096];
	const struct flp_rule *rule;
	struct flp_ofd *o;
	struct stat st;
	int excl = 0, inherited;

	*err = 0;
	if (FLP_FD_IS_OFD(v))
		return (struct flp_ofd *)v;
	if (v == FLP_FD_NOMATCH)
		return NULL;
	inherited = v == FLP_FD_UNKNOWN;
	if (flp_pol.n == 0 || flp_fd_path(fd, path, sizeof(path)) < 0 || path[0] != '/' ||
	    ((rule = flp_policy_match(&flp_pol, path)) == NULL &&
	     (rule = flp_wal_rule(path)) == NULL) ||
	    rule->kind == FLP_NATIVE || rule->kind == FLP_DOTLOCK) {
		flp_fd_set(fd, FLP_FD_NOMATCH, 1);
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		*err = errno;
		return NULL;
	}
	pthread_mutex_lock(&flp_fd_mu);
	v = flp_fd_get(fd);
	if (FLP_FD_IS_OFD(v)) { /* another thread was faster */
		pthread_mutex_unlock(&flp_fd_mu);
		return (struct flp_ofd *)v;
	}
	o = flp_same_ofd(fd, st.st_dev, st.st_ino);
	if (o == NULL) {
		o = flp_ofd_new();
		if (o == NULL) {
			pthread_mutex_unlock(&flp_fd_mu);
			*err = ENOMEM;
			return NULL;
		}
		o->rule = rule;
		o->dev = st.st_dev;
		o->ino = st.st_ino;
		o->wal = flp_is_shm(path);
		snprintf(o->path, sizeof(o->path), "%s", path);
		if (flp_marker_path(rule, path, o->marker, sizeof(o->marker)) != 0) {
			flp_ofd_free(o);
			pthread_mutex_unlock(&flp_fd_mu);
			*err = ENAMETOOLONG;
			return NULL;
		}
		/* etcd: a lease cannot be re-adopted (see etcd.c). */
		if (inherited && flp_lib_kind(rule->kind) >= 0 && rule->kind != FLP_ETCD &&
		    flp_ofd_has_flock(fd, &excl, &o->taker)) {
			struct stat ms;
			/* soft-rw's files are beside the marker path, never at it;
			 * its adopt method finds them (flp_keep_alive). */
			if (rule->kind == FLP_SOFT_RW || lstat(o->marker, &ms) == 0) {
				/* Taken before execve (or by the image that passed us fd). */
				o->req = rule->also_native && !excl ? LOCK_SH : LOCK_EX;
				o->pinned = 1;
				FLP_TRACE("fd %d: %s is locked by this open file description; "
					  "re-adopting %s",
					  fd, path, o->marker);
			}
		}
	}
	if (flp_fd_set(fd, (uintptr_t)o, 1) != 0) {
		if (o->refs == 0)
			flp_ofd_free(o);
		pthread_mutex_unlock(&flp_fd_mu);
		*err = ENOLCK;
		return NULL;
	}
	o->refs++;
	pthread_mutex_unlock(&flp_fd_mu);
	return o;
}

/* ---- the lock itself --------------------------------------------------- */

/*
 * 1 when some open file description on this host holds a flock on path.
 * Another process's probe holds its exclusive lock for microseconds; a
 * holder's pin stays.  So a conflict is only believed when it persists over
 * a few short retries.
 */
static int flp_probe(const char *path)
{
	int fd = real_openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
	int busy = 0;

	if (fd < 0)
		return 0;
	for (int i = 0; i < 4; i++) {
		if (real_flock(fd, LOCK_EX | LOCK_NB) == 0) {
			busy = 0;
			break;
		}
		busy = errno == EWOULDBLOCK;
		if (!busy)
			break;
		flp_sleep(0.001 * (i + 1));
	}
	real_close(fd);
	return busy;
}

int flp_soft_pinned(const char *marker)
{
	char data[4096];

	if (flp_data_path(&flp_pol, marker, data, sizeof(data)) != 0)
		return 0;
	if (flp_probe(data)) {
		FLP_TRACE("%s: holder pid is gone but %s is still held open: not stale", marker,
			  data);
		return 1;
	}
	return 0;
}

static int flp_lib_open(struct flp_ofd *o, fl_lock **out)
{
	const struct flp_rule *r = o->rule;
	struct fl_options opt;
	int e;

	fl_options_init(&opt);
	opt.poll_interval = r->poll_interval;
	opt.heartbeat_interval = r->heartbeat_interval;
	opt.stale_threshold = r->stale_threshold;
	opt.lease_duration = r->lease_duration;
	opt.soft_rw_protocol = r->soft_rw_protocol;
	opt.flags = FL_SHARED_CONTEXT | FL_NO_SINGLETON | (r->no_create_dirs ? FL_NO_CREATE_DIRS : 0);
	e = fl_open(out, o->marker, (enum fl_kind)flp_lib_kind(r->kind), &opt);
	if (e != 0)
		flp_log("flock(%s): %s; failing with ENOLCK", o->path, fl_errmsg(NULL));
	return e;
}

/* Drops a library handle that belongs to another process (fork parent). */
static void flp_forget_foreign(struct flp_ofd *o)
{
	if (o->lk && o->lk_pid != fl__pid()) {
		fl_close(o->lk); /* in a fork child this frees without releasing */
		o->lk = NULL;
	}
}

/*
 * Makes o->lk (this process's) hold what o's description holds on disk,
 * through the kind's adopt method: the marker of the inode we took (mdev/
 * mino) or, for kinds whose records name their holder, the record of the
 * taker (o->taker) on this host.  A soft-rw lock inherited through execve
 * has no known mode: its writer, else a reader, is looked for.  Caller
 * holds o->mu.  0 or a negative errno (-ESTALE: nothing there is ours).
 */
static int flp_adopt(struct flp_ofd *o)
{
	int r;

	if (o->lk == NULL) {
		if (flp_lib_open(o, &o->lk) != 0) {
			o->lk = NULL;
			return -ENOLCK;
		}
		o->lk_pid = fl__pid();
	}
	if (o->rule->kind == FLP_LEASE)
		o->mode = FL_EXCLUSIVE;
	r = fl__adopt(o->lk, o->mode, o->mdev, o->mino, o->taker);
	if (r == -ESTALE && !o->mode_known && o->rule->kind == FLP_SOFT_RW) {
		o->mode = o->mode == FL_EXCLUSIVE ? FL_SHARED : FL_EXCLUSIVE;
		r = fl__adopt(o->lk, o->mode, o->mdev, o->mino, o->taker);
	}
	if (r == 0)
		o->mode_known = 1;
	return r;
}

/*
 * A lock whose kind has a heartbeat (lease, soft-rw), held through a
 * description this process did not take it through: inherited by this
 * image (taken before execve), or shared with the fork parent that took it
 * (flp_adopt_forked).  Adopt it now, so that its heartbeat goes on here
 * whatever the taker does next (exit, close): the kernel keeps the lock for
 * as long as any process keeps the description, so must we.  soft and
 * strict have no heartbeat: they are adopted when released.
 */
static void flp_keep_alive(struct flp_ofd *o)
{
	int r;

	pthread_mutex_lock(&o->mu);
	flp_forget_foreign(o);
	if (o->req && (o->rule->kind == FLP_LEASE || o->rule->kind == FLP_SOFT_RW) &&
	    (o->lk == NULL || !fl_is_locked(o->lk))) {
		r = flp_adopt(o);
		if (r == 0) {
			FLP_TRACE("%s: adopted the %s lock %s; its heartbeat goes on in this "
				  "process",
				  o->path, flp_kind_name(o->rule->kind), o->marker);
		} else if (r != -ENOLCK) {
			flp_log("%s: cannot adopt the %s lock %s held through a description this "
				"process inherited (%s); it expires within the rule's bound",
				o->path, flp_kind_name(o->rule->kind), o->marker, fl_strerror(r));
		}
	}
	pthread_mutex_unlock(&o->mu);
}

/* Releases the marker of a locked OFD.  Caller holds o->mu. */
static void flp_release_marker(struct flp_ofd *o)
{
	int r;

	if (o->rule->kind == FLP_ETCD) {
		flp_etcd_release(o);
		return;
	}
	flp_forget_foreign(o);
	if (o->lk == NULL || !fl_is_locked(o->lk)) {
		/* Held through a fork parent or the image before execve: adopt. */
		r = flp_adopt(o);
		if (r == -ENOLCK)
			goto out;
		if (r != 0) {
			FLP_TRACE("%s: marker %s is no longer ours (%s); nothing to release", o->path,
				  o->marker, fl_strerror(r));
			goto out;
		}
	}
	r = fl_release(o->lk, FL_FORCE);
	if (r != 0)
		flp_log("release of %s: %s", o->marker, fl_errmsg(o->lk));
	else
		FLP_TRACE("released %s (%s)", o->marker, o->path);
out:
	o->req = 0;
	o->mdev = 0;
	o->mino = 0;
}

/* LOCK_UN: the shim's lock and the kernel's.  Caller holds o->mu. */
static int flp_unlock(struct flp_ofd *o, int fd)
{
	/* The pin goes first: once the marker is gone a successor may take it
	 * and close at once, and its last-close probe must not see our pin. */
	int r = real_flock(fd, LOCK_UN) == 0 ? 0 : errno;

	if (o->req && flp_lib_kind(o->rule->kind) >= 0)
		flp_release_marker(o);
	o->req = 0;
	o->pinned = 0;
	return r;
}

/* Is the marker we think we hold still ours?  Only asked when re-locking. */
static int flp_still_ours(struct flp_ofd *o)
{
	struct stat st;

	if (o->lk && o->lk_pid == fl__pid() && fl_is_locked(o->lk) && fl_is_valid(o->lk) &&
	    o->mdev == 0 && o->mino == 0)
		return 1;
	if (lstat(o->marker, &st) != 0)
		return 0;
	return (o->mdev == 0 && o->mino == 0) || (st.st_dev == o->mdev && st.st_ino == o->mino);
}

static const char *flp_opname(int op)
{
	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		return op & LOCK_NB ? "LOCK_SH|LOCK_NB" : "LOCK_SH";
	case LOCK_EX:
		return op & LOCK_NB ? "LOCK_EX|LOCK_NB" : "LOCK_EX";
	case LOCK_UN:
		return "LOCK_UN";
	default:
		return "?";
	}
}

/* The kernel part: the pin, or the real lock with also_native. */
int flp_kernel_lock(struct flp_ofd *o, int fd, int what, int nb, double deadline)
{
	const struct flp_rule *r = o->rule;
	double poll = r->poll_interval > 0 ? r->poll_interval : 0.05;

	/* shared=reader: readers hold only the kernel's shared lock, so writers
	 * must take the kernel's exclusive lock too. */
	if (!r->also_native && !(r->shared_reader && what == LOCK_EX)) {
		/* Another process's probe may hold the file for microseconds. */
		for (int i = 0; i < 4 && !(o->pinned = real_flock(fd, LOCK_SH | LOCK_NB) == 0); i++)
			if (errno != EWOULDBLOCK || flp_sleep(0.001 * (i + 1)) != 0)
				break;
		if (!o->pinned)
			FLP_TRACE("%s: could not pin the open file description (%s); same-host "
				  "stale detection falls back to the pid",
				  o->path, strerror(errno));
		return 0;
	}
	if (real_flock(fd, what | LOCK_NB) == 0) {
		o->pinned = 1;
		return 0;
	}
	if (errno != EWOULDBLOCK)
		return errno;
	if (nb)
		return EWOULDBLOCK;
	{
		sigset_t sigs;
		int e;

		flp_wait_signals(&sigs, NULL);
		for (;;) {
			if (fl__now_mono() >= deadline) {
				e = ENOLCK;
				break;
			}
			if (flp_wait_sleep(poll) == EINTR) {
				e = EINTR;
				break;
			}
			if (real_flock(fd, what | LOCK_NB) == 0) {
				o->pinned = 1;
				e = 0;
				break;
			}
			if (errno != EWOULDBLOCK) {
				e = errno;
				break;
			}
		}
		flp_wait_signals(NULL, &sigs);
		return e;
	}
}

/* LOCK_SH / LOCK_EX.  Caller holds o->mu.  Returns 0 or a positive errno. */
static int flp_lock(struct flp_ofd *o, int fd, int op)
{
	const struct flp_rule *rule = o->rule;
	int nb = (op & LOCK_NB) != 0, what = op & ~LOCK_NB, r;
	int rw = rule->kind == FLP_SOFT_RW;
	enum fl_mode mode = (what == LOCK_SH && rw) ? FL_SHARED : FL_EXCLUSIVE;
	double deadline;
	sigset_t sigs;

	if (rule->kind == FLP_ETCD)
		return flp_etcd_lock(o, fd, op);
	if (what == LOCK_SH && !rw && rule->shared_reader) {
		/* Readers of an exclusive-only kind: the kernel's shared lock only. */
		if (o->req)
			flp_unlock(o, fd);
		FLP_TRACE("flock(%d, %s) on %s: shared=reader, kernel lock only", fd,
			  flp_opname(op), o->path);
		return real_flock(fd, op) == 0 ? 0 : errno;
	}
	if (o->req) {
		if (o->mode == mode && flp_still_ours(o)) {
			if ((rule->also_native || rule->shared_reader) && o->req != what) {
				r = flp_kernel_lock(o, fd, what, nb, INFINITY);
				if (r)
					return r;
			}
			o->req = what;
			return 0;
		}
		flp_unlock(o, fd); /* conversion: not atomic, as in the kernel */
	}
	flp_forget_foreign(o);
	if (o->lk == NULL) {
		if (flp_lib_open(o, &o->lk) != 0) {
			o->lk = NULL;
			return ENOLCK;
		}
		o->lk_pid = fl__pid();
	}
	deadline = rule->timeout >= 0 ? fl__now_mono() + rule->timeout : INFINITY;
	/* Signals as the kernel's blocking flock sees them: a handler without
	 * SA_RESTART ends the wait, none is missed between two tries, nor
	 * before the first (see flp_wait_signals).  The library's own wait
	 * (one acquisition: inotify wake-ups, soft-rw's pending writer kept
	 * between tries) sleeps with our signal mask through wi.  No timeout
	 * is a very long one: never a kernel wait, never the library's
	 * self-deadlock refusal (the kernel's flock would just block). */
	if (nb) {
		r = fl_acquire(o->lk, mode, 0);
	} else {
		struct fl__wait_intr wi = { &sigs, flp_wait_ended, NULL, &flp_depth, 0 };

		flp_wait_signals(&sigs, NULL);
		fl__wait_intr_set(&wi);
		r = fl_acquire(o->lk, mode, rule->timeout >= 0 ? rule->timeout : 1e9);
		fl__wait_intr_set(NULL);
		flp_wait_signals(NULL, &sigs);
		if (r == -EINTR)
			FLP_TRACE("flock(%d, %s) on %s: interrupted by a signal", fd,
				  flp_opname(op), o->path);
		if (r == -ETIMEDOUT) {
			flp_log("flock(%s): timed out after %gs (policy line %d); failing "
				"with ENOLCK",
				o->path, rule->timeout, rule->line);
			r = -ENOLCK;
		}
	}
	if (r == -EINTR || r == -ENOLCK)
		return -r;
	if (r == -ETIMEDOUT)
		return EWOULDBLOCK; /* LOCK_NB */
	if (r != 0) {
		flp_log("flock(%s): %s; failing with ENOLCK", o->path, fl_errmsg(o->lk));
		return ENOLCK;
	}
	{
		struct stat st;
		if (lstat(o->marker, &st) == 0) {
			o->mdev = st.st_dev;
			o->mino = st.st_ino;
		}
	}
	o->mode = mode;
	o->mode_known = 1;
	o->taker = fl__pid();
	o->req = what;
	r = flp_kernel_lock(o, fd, what, nb, deadline);
	if (r) {
		flp_release_marker(o);
		return r;
	}
	FLP_TRACE("flock(%d, %s) on %s -> %s %s: acquired", fd, flp_opname(op), o->path,
		  flp_kind_name(rule->kind), o->marker);
	return 0;
}

/* While this process holds byte-range locks, any close may release some. */
static void flp_rl_closing_slow(int fd)
{
	struct stat st;

	if (getpid() != fl__pid())
		return; /* a vfork child: the locks in our memory are the parent's */
	flp_depth++;
	if (fstat(fd, &st) == 0)
		flp_rl_close_fd(st.st_dev, st.st_ino);
	flp_depth--;
}

static inline void flp_rl_closing(int fd)
{
	if (FLP_UNLIKELY(atomic_load_explicit(&flp_rl_posix_held, memory_order_relaxed) > 0))
		flp_rl_closing_slow(fd);
}

/* ---- closing ----------------------------------------------------------- */

/* After the last descriptor of this process was closed for real. */
static void flp_last_close(struct flp_ofd *o)
{
	flp_rl_ofd_last_close(o);
	pthread_mutex_lock(&o->mu);
	if (o->rule->kind == FLP_ETCD) {
		flp_etcd_last_close(o);
	} else if (o->req && flp_lib_kind(o->rule->kind) >= 0) {
		if (o->pinned && flp_probe(o->path)) {
			FLP_TRACE("%s: still open in another process, which keeps the lock", o->path);
			if (o->lk && o->lk_pid == fl__pid())
				fl__forget(o->lk);
			else if (o->lk)
				fl_close(o->lk);
			o->lk = NULL;
		} else {
			flp_release_marker(o);
		}
	}
	if (o->lk)
		fl_close(o->lk);
	o->lk = NULL;
	pthread_mutex_unlock(&o->mu);
	pthread_mutex_lock(&flp_fd_mu);
	flp_ofd_free(o);
	pthread_mutex_unlock(&flp_fd_mu);
}

/*
 * Before fd is closed (by close, fclose, dup2 onto it, close_range): forget
 * it.  Returns the OFD whose last descriptor this was (finish it with
 * flp_last_close after the real close), or NULL.
 */
static struct flp_ofd *flp_close_prepare(int fd)
{
	uintptr_t v = flp_fd_get(fd);
	struct flp_ofd *o = NULL;
	int err, last = 0;

	if (v == FLP_FD_UNKNOWN && flp_pol.n != 0 && !flp_needs_init())
		o = flp_lookup(fd, &err);
	else if (FLP_FD_IS_OFD(v))
		o = (struct flp_ofd *)v;
	if (o == NULL) {
		flp_fd_set(fd, FLP_FD_FRESH, 0);
		return NULL;
	}
	pthread_mutex_lock(&flp_fd_mu);
	if (flp_fd_get(fd) == (uintptr_t)o) {
		flp_fd_set(fd, FLP_FD_FRESH, 0);
		last = --o->refs == 0;
	}
	pthread_mutex_unlock(&flp_fd_mu);
	return last ? o : NULL;
}

/*
 * Before fd is closed, by any call: the process's byte-range locks on its
 * file go (POSIX), and fd leaves the table.  Returns the OFD whose last
 * descriptor fd was, for flp_closed() after the real close, or NULL.
 */
static struct flp_ofd *flp_closing(int fd)
{
	struct flp_ofd *o;

	flp_rl_closing(fd);
	flp_depth++;
	o = flp_close_prepare(fd);
	flp_depth--;
	return o;
}

/* After the real close: finishes what flp_closing returned; keeps errno. */
static void flp_closed(struct flp_ofd *o)
{
	int e = errno;

	if (o == NULL)
		return;
	flp_depth++;
	flp_last_close(o);
	flp_depth--;
	errno = e;
}

static int flp_close_slow(int fd)
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

/* The absolute normalised path that (dirfd, path) names, lexically. */
static int flp_abs_path(int dirfd, const char *path, char *out, size_t cap)
{
	char base[4096], joined[8192];

	if (path[0] == '/')
		return flp_normalize(path, out, cap);
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return -errno;
	} else if (flp_fd_path(dirfd, base, sizeof(base)) < 0) {
		return -EBADF;
	}
	if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", base, path) >= sizeof(joined))
		return -ENAMETOOLONG;
	return flp_normalize(joined, out, cap);
}

/* A pid on the first line, optionally a host on the second (dotlockfile,
 * procmail, Python's soft marker).  1 = holder provably gone. */
static int flp_dotlock_stale(const struct flp_rule *rule, const char *path, struct fl_marker *m)
{
	struct fl_p1 p1;
	long long pid;
	size_t n = 0;

	if (fl__marker_read(AT_FDCWD, path, m) != 0 || !m->exists)
		return 0;
	if (!m->malformed && m->regular) {
		if (fl__p1_parse(m->buf, m->len, &p1) == 0) {
			if (fl__owner_is_stale(p1.pid, p1.host, p1.token))
				return 1;
		} else {
			while (n < m->len && m->buf[n] != '\n')
				n++;
			if (n > 0 && fl__parse_ll(m->buf, n, &pid) == 0 && pid > 0 &&
			    pid <= INT_MAX && fl__pid_alive((pid_t)pid) == 0)
				return 1;
		}
	}
	if (rule->stale_threshold <= 0)
		return 0;
	if (rule->heartbeat_interval > 0) {
		/* Refreshed by its creator's shim (dotlock.c): silent for the
		 * threshold by our watch or the server's clock, not by ours. */
		struct fl_seen seen = { m->dev, m->ino, m->mtime, -1, 0 };
		return fl__ledger_silent(path, AT_FDCWD, path, &seen) >= rule->stale_threshold;
	}
	return fl__now_wall() - m->mtime >= rule->stale_threshold;
}

typedef int (*flp_open_fn)(int dirfd, const char *path, int flags, mode_t mode);

/* After EEXIST from an exclusive create: 1 when a stale dotlock was broken
 * (the caller retries once), 0 otherwise.  errno is preserved. */
static int flp_dotlock_recover(int dirfd, const char *path)
{
	char abs[4096];
	const struct flp_rule *rule;
	struct fl_marker m;
	int e = errno, broke = 0;

	if (flp_needs_init() || flp_pol.n == 0)
		return 0;
	flp_depth++;
	if (flp_abs_path(dirfd, path, abs, sizeof(abs)) == 0 &&
	    (rule = flp_policy_match(&flp_pol, abs)) != NULL && rule->kind == FLP_DOTLOCK &&
	    flp_dotlock_stale(rule, abs, &m) && fl__break_file(abs, &m) == 0) {
		FLP_TRACE("open(%s, O_EXCL): recovered a stale dotlock (policy line %d)", abs,
			  rule->line);
		broke = 1;
	}
	flp_depth--;
	errno = e;
	return broke;
}

/* After an exclusive create made fd: under a dotlock rule with a heartbeat,
 * keep the new file fresh for as long as it is ours (dotlock.c). */
static void flp_dotlock_created(int dirfd, const char *path, int fd)
{
	static atomic_int any = -1; /* a dotlock rule has a heartbeat (the policy is immutable) */
	char abs[4096];
	const struct flp_rule *rule;
	struct stat st;
	int e = errno, v;

	if (flp_needs_init() || flp_pol.n == 0)
		return;
	v = atomic_load_explicit(&any, memory_order_relaxed);
	if (v < 0) {
		v = 0;
		for (size_t i = 0; i < flp_pol.n; i++)
			if (flp_pol.rules[i].kind == FLP_DOTLOCK &&
			    flp_pol.rules[i].heartbeat_interval > 0)
				v = 1;
		atomic_store_explicit(&any, v, memory_order_relaxed);
	}
	if (!v)
		return;
	flp_depth++;
	if (flp_abs_path(dirfd, path, abs, sizeof(abs)) == 0 &&
	    (rule = flp_policy_match(&flp_pol, abs)) != NULL && rule->kind == FLP_DOTLOCK &&
	    rule->heartbeat_interval > 0 && fl__sys.fstat(fd, &st) == 0)
		flp_dl_created(abs, st.st_dev, st.st_ino, rule->heartbeat_interval);
	flp_depth--;
	errno = e;
}

static int flp_open_dotlock(int dirfd, const char *path, int flags, mode_t mode, int fd)
{
	if (fd < 0 && errno == EEXIST && flp_dotlock_recover(dirfd, path))
		fd = real_openat(dirfd, path, flags, mode);
	if (fd >= 0)
		flp_dotlock_created(dirfd, path, fd);
	return fd;
}

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

/*
 * Before fork: descriptors opened here become "maybe shared" (UNKNOWN), so
 * that if a child takes a shim lock on one, this process re-adopts it when
 * it closes its copy (the `exec 9>f; flock 9` idiom, with bash as parent).
 */
static void flp_atfork_prepare(void)
{
	int limit = flp_fd_limit();

	for (int fd = 0; fd < limit; fd++)
		if (flp_fd_get(fd) == FLP_FD_FRESH)
			flp_fd_set(fd, FLP_FD_UNKNOWN, 0);
}

/*
 * execve.  POSIX byte-range locks survive it, and the new image learns
 * them from the owner files; a process that lingers on a lock directory's
 * mutex keeps its latest changes in memory, so they are written (and the
 * mutex given back) first.  execl* build the vector and go the same way.
 */
static void flp_before_exec(void)
{
	int e = errno;

	if (flp_depth == 0 && atomic_load_explicit(&flp_ready, memory_order_acquire)) {
		flp_depth++;
		flp_rl_before_exec();
		flp_depth--;
	}
	errno = e;
}

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

/*
 * A fork child shares its parent's open file descriptions, and with them
 * the kernel's flocks: a lock whose kind has a heartbeat must be kept alive
 * here too, or it expires once the parent stops beating it (exits, closes
 * its copy) while this child still holds it (the daemon pattern).  Both
 * beat it while both live; the release by either ends it for both, as
 * LOCK_UN on a shared description does.  Runs in fork's child handler,
 * after the library's (registered first), once the table is usable.
 */
static void flp_adopt_forked(void)
{
	if (flp_pol.n == 0 || flp_pol_broken)
		return;
	flp_depth++;
	for (struct flp_ofd *o = flp_ofds; o; o = o->next)
		if (o->req && o->refs && (o->rule->kind == FLP_LEASE || o->rule->kind == FLP_SOFT_RW))
			flp_keep_alive(o);
	flp_depth--;
}

void flp_atfork_child(void)
{
	flp_fd_child_reset();
	flp_rl_atfork_child();
	flp_adopt_forked();
}

void flp_atfork_register(void)
{
	pthread_atfork(flp_atfork_prepare, NULL, flp_atfork_child);
}

/*
 * At start.  POSIX byte-range locks survive execve, and the kernel releases
 * them when the new image closes ANY descriptor of the file, or exits, even
 * if it never made a lock call.  After execve such locks can only be on a
 * file the image inherited a descriptor of (the lock was taken through one,
 * and any close releases), so the inherited descriptors that match a rule
 * are classified now and their files' locks adopted: the close hooks and
 * the exit handler then know them.  One directory scan and one readlink per
 * inherited descriptor, only with a policy.
 */
void flp_adopt_inherited(void)
{
	int fds[256], n = 0;
	DIR *d;
	struct dirent *de;

	if (flp_pol.n == 0 || flp_pol_broken)
		return;
	flp_depth++;
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d)) != NULL && n < (int)(sizeof(fds) / sizeof(fds[0]))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end == '\0' && end != de->d_name && fd != dirfd(d) &&
		    flp_fd_get((int)fd) == FLP_FD_UNKNOWN)
			fds[n++] = (int)fd;
	}
	if (d)
		closedir(d);
	for (int i = 0; i < n; i++) {
		struct flp_ofd *o;
		int err;

		o = flp_lookup(fds[i], &err);
		if (o && o->req)
			flp_keep_alive(o);
		if (o && flp_lib_kind(o->rule->kind) >= 0 && !o->wal && !flp_rule_is_etcd(o->rule))
			flp_rl_inherited(o, fds[i]);
	}
	flp_depth--;
}

/*
 * exit(): release what this process is the last holder of.  Candidates are
 * the OFDs we locked and the descriptors that may hold a lock taken by a
 * child or by the image before execve (UNKNOWN).  stdio is flushed first,
 * because exit() flushes it only after the destructors ran.
 */
void flp_at_exit(void)
{
	int fds[1024], n = 0, flushed = 0;
	DIR *d;
	struct dirent *de;

	flp_depth++;
	flp_rl_at_exit();
	flp_rl_stats();
	flp_depth--;
	if (flp_pol.n == 0 || flp_pol_broken)
		return;
	flp_depth++;
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d)) != NULL && n < (int)(sizeof(fds) / sizeof(fds[0]))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		if (*end != '\0' || end == de->d_name || fd == dirfd(d))
			continue;
		uintptr_t v = flp_fd_get((int)fd);
		if (v == FLP_FD_UNKNOWN || (FLP_FD_IS_OFD(v) && ((struct flp_ofd *)v)->req))
			fds[n++] = (int)fd;
	}
	if (d)
		closedir(d);
	for (int i = 0; i < n; i++) {
		uintptr_t v = flp_fd_get(fds[i]);
		struct flp_ofd *o = NULL;
		int err;

		if (v == FLP_FD_UNKNOWN) {
			o = flp_lookup(fds[i], &err);
			if (o == NULL || !o->req)
				continue;
		}
		if (!flushed) {
			fflush(NULL);
			flushed = 1;
		}
		flp_depth--;
		flp_close_slow(fds[i]);
		flp_depth++;
	}
	flp_depth--;
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
