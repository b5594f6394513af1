/* SPDX-License-Identifier: MIT */
/*
 * ofd.c -- the flock(2) lock of an open file description under a
 * redirecting rule: classifying a descriptor (its path, the rule, the OFD it
 * shares with other descriptors), taking and releasing the library lock on
 * the marker plus the kernel's pin or lock, the last close, and what fork,
 * execve and exit do to those locks.  The design is explained at the top of
 * hooks.c, whose wrappers call in here.
 */
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
#include "proclocks.h"
#include "sys.h"

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

/* ---- classification ---------------------------------------------------- */

ssize_t flp_fd_path(int fd, char *buf, size_t cap)
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
void flp_trace_passthrough(const char *call, int fd)
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
struct flp_ofd *flp_lookup(int fd, int *err)
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
int flp_unlock(struct flp_ofd *o, int fd)
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

struct flp_kernel_try {
	int fd, what;
};

static int flp_kernel_try(void *arg)
{
	const struct flp_kernel_try *t = arg;

	if (real_flock(t->fd, t->what | LOCK_NB) == 0)
		return 0;
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/*
 * Waits for the kernel's lock through the library's wait engine: woken when
 * a descriptor of the file is closed (flock holders release by closing:
 * flock(1), Python, us), polling from 1 ms up to the rule's poll interval
 * for a holder that unlocks without closing.  Signals end it as they end
 * the kernel's blocking flock.  0 or a positive errno (ENOLCK at the
 * deadline).
 */
static int flp_kernel_wait(struct flp_ofd *o, int fd, int what, double deadline)
{
	const struct flp_rule *r = o->rule;
	struct flp_kernel_try t = { fd, what };
	sigset_t sigs;
	struct fl_shim_signals sig = { &sigs, flp_wait_ended, NULL, &flp_depth };
	struct fl_shim_wait w = {
		.attempt = flp_kernel_try,
		.arg = &t,
		.watch = o->path,
		.mask = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_DONT_FOLLOW,
		.deadline = deadline,
		.first = 0.001,
		.poll = r->poll_interval > 0 ? r->poll_interval : 0.05,
		.sig = &sig,
	};
	int e;

	flp_wait_signals(&sigs, NULL);
	e = fl_shim_wait_for(&w);
	flp_wait_signals(NULL, &sigs);
	if (e == 0)
		o->pinned = 1;
	return e == -ETIMEDOUT ? ENOLCK : -e;
}

/* The kernel part: the pin, or the real lock with also_native. */
int flp_kernel_lock(struct flp_ofd *o, int fd, int what, int nb, double deadline)
{
	const struct flp_rule *r = o->rule;

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
	return flp_kernel_wait(o, fd, what, deadline);
}

/* LOCK_SH / LOCK_EX.  Caller holds o->mu.  Returns 0 or a positive errno. */
int flp_lock(struct flp_ofd *o, int fd, int op)
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
		struct fl_shim_signals sig = { &sigs, flp_wait_ended, NULL, &flp_depth };

		flp_wait_signals(&sigs, NULL);
		r = fl_shim_acquire(o->lk, mode, rule->timeout >= 0 ? rule->timeout : 1e9, &sig);
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
void flp_rl_closing_slow(int fd)
{
	struct stat st;

	if (getpid() != fl__pid())
		return; /* a vfork child: the locks in our memory are the parent's */
	flp_depth++;
	if (fstat(fd, &st) == 0)
		flp_rl_close_fd(st.st_dev, st.st_ino);
	flp_depth--;
}

/* ---- the last close ---------------------------------------------------- */

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
struct flp_ofd *flp_closing(int fd)
{
	struct flp_ofd *o;

	flp_rl_closing(fd);
	flp_depth++;
	o = flp_close_prepare(fd);
	flp_depth--;
	return o;
}

/* After the real close: finishes what flp_closing returned; keeps errno. */
void flp_closed(struct flp_ofd *o)
{
	int e = errno;

	if (o == NULL)
		return;
	flp_depth++;
	flp_last_close(o);
	flp_depth--;
	errno = e;
}

/* ---- fork, execve, exit ------------------------------------------------- */

/*
 * Before fork: descriptors opened here become "maybe shared" (UNKNOWN), so
 * that if a child takes a shim lock on one, this process re-adopts it when
 * it closes its copy (the `exec 9>f; flock 9` idiom, with bash as parent).
 */
void flp_atfork_prepare(void)
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
void flp_before_exec(void)
{
	int e = errno;

	if (flp_depth == 0 && atomic_load_explicit(&flp_ready, memory_order_acquire)) {
		flp_depth++;
		flp_rl_before_exec();
		flp_depth--;
	}
	errno = e;
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
	for (struct flp_ofd *o = flp_ofds; o; o = o->next) {
		if (!o->req || !o->refs ||
		    (o->rule->kind != FLP_LEASE && o->rule->kind != FLP_SOFT_RW))
			continue;
		/* A description another thread of the parent was working on at
		 * the fork (a blocking flock, a LOCK_UN) has its mutex locked
		 * for good here: skip it rather than hang this child; it is
		 * adopted when this child releases it. */
		if (pthread_mutex_trylock(&o->mu) != 0) {
			FLP_TRACE("%s: busy in another thread at fork; not adopted in the child",
				  o->path);
			continue;
		}
		pthread_mutex_unlock(&o->mu); /* the child has one thread */
		flp_keep_alive(o);
	}
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
 * The descriptors of this process (at most cap, from /proc/self/fd) that
 * may hold a lock taken elsewhere (UNKNOWN: inherited, or shared with a
 * child), and with `locked` also those whose OFD we locked.  Returns how
 * many were put in fds.
 */
static int flp_open_fds(int *fds, int cap, int locked)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) != NULL && n < cap) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		uintptr_t v;

		if (*end != '\0' || end == de->d_name || fd == dirfd(d))
			continue;
		v = flp_fd_get((int)fd);
		if (v == FLP_FD_UNKNOWN ||
		    (locked && FLP_FD_IS_OFD(v) && ((struct flp_ofd *)v)->req))
			fds[n++] = (int)fd;
	}
	if (d)
		closedir(d);
	return n;
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
	int fds[256], n;

	if (flp_pol.n == 0 || flp_pol_broken)
		return;
	flp_depth++;
	n = flp_open_fds(fds, (int)(sizeof(fds) / sizeof(fds[0])), 0);
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
	int fds[1024], n, flushed = 0;

	flp_depth++;
	flp_rl_at_exit();
	flp_rl_stats();
	flp_depth--;
	if (flp_pol.n == 0 || flp_pol_broken)
		return;
	flp_depth++;
	n = flp_open_fds(fds, (int)(sizeof(fds) / sizeof(fds[0])), 1);
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
