/* SPDX-License-Identifier: MIT */
/*
 * backend-unix.c -- the `unix` kind (flock(2)) and the `file` kind (flock,
 * falling back to `soft` where the filesystem has no flock).
 *
 * Protocol.  The lock file is opened O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC
 * (O_RDONLY for shared locks) and locked with flock(2).  The file is never
 * truncated or chmod'ed by a loser, only by the winner, and never unlinked:
 * unlinking on release lets a waiter lock the dead inode while a newcomer
 * creates and locks a fresh one, two holders at once (Python filelock #574).
 * After flock succeeds the winner checks st_nlink: 0 means someone unlinked
 * the inode between our open and our flock, so the lock is worthless and we
 * try again.
 *
 * Crash.  The kernel drops the lock when the last descriptor of the open
 * file description closes, so a crashed holder never wedges anyone.
 *
 * Fork and exec.  The descriptor is O_CLOEXEC.  A fork child shares the open
 * file description: it must never flock(LOCK_UN) it (that would release the
 * parent's lock), so the child only closes its copy.
 *
 * NFS.  On Linux NFS, flock is emulated with fcntl byte-range locks: an
 * exclusive lock needs a descriptor open for writing, and closing *any*
 * descriptor of the file drops the process's lock.  With `local_lock` or a
 * broken lock manager, flock does not exclude across hosts at all; use
 * soft, lease, strict or soft-rw there.
 *
 * Waiting.  Without a timeout or cancel_check the waiter blocks in flock.
 * Otherwise it keeps its descriptor between tries (closing it would wake
 * every other waiter) and sleeps on inotify until a descriptor of the lock
 * file is closed: we, Python and flock(1) all release by closing, so the
 * next try comes right after the release.  A holder that unlocks without
 * closing raises no event; an adaptive step (1 ms after a close was seen,
 * doubling up to the poll interval) finds it.  We chose this over a
 * blocking flock interrupted by a signal, which a library cannot do
 * safely: it would need a signal number and handler of its own in the
 * caller's process, and a cancel_check would still need a thread to run.
 * The path from the holder's close to our flock is two system calls long:
 * the waiter tries flock as soon as its inotify descriptor is readable,
 * before reading the event, and a waiter that won leaves its watch in
 * place, removed after its own release (one such watch per thread).  That
 * puts a hand-off at about twice the kernel's (bench-handoff: the holder's
 * LOCK_UN before its close, our fstat after the flock, and the event's
 * delivery are the difference), and contended throughput close to raw
 * flock's.  Fairness, which the kernel does not give (a releasing process
 * that loops takes the lock again before a woken waiter runs), comes from
 * the front end's bounded bypass (lock.c).
 *
 * ENOSYS (Lustre `noflock`, some FUSE and CIFS mounts).  `unix` reports it;
 * `file` falls back to the soft protocol for the rest of the handle's life.
 * Unlike Python's fallback, we remove the empty file we created only when it
 * is still empty and still ours: a non-empty file is a peer's live marker.
 *
 * Downsides: no holder identity on disk (fl_inspect reads /proc/locks, so
 * it names local holders only); shared->exclusive conversion is not atomic
 * in flock, so the front end refuses mode changes while held.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fl-internal.h"
#include "proclocks.h"

/* Per-hold data of the unix and file kinds (zeroed by the front end at the
 * start of each acquisition). */
struct file_hold {
	int wfd1;      /* a waiter's descriptor kept between tries, plus 1    */
	int ready;     /* unix_wait already locked wfd1 for the next attempt  */
	int shared;    /* the mode the waiter asked for                       */
	double step;   /* the next adaptive poll step, seconds                */
	double next;   /* when the current step ends (CLOCK_MONOTONIC); 0 = none */
};

static int unix_open(struct fl_lock *lk, enum fl_mode mode, int *out)
{
	int acc = mode == FL_SHARED ? O_RDONLY : O_RDWR;
	/* O_NONBLOCK: a FIFO planted at the path must not stall the open. */
	int flags = acc | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	mode_t perm = lk->opt.mode == -1 ? 0666 : (mode_t)lk->opt.mode;
	int fd, recorded;
	struct stat st;

	for (;;) {
		fd = fl__open_mkdir(lk, lk->path, flags, perm, &recorded);
		if (fd >= 0)
			break;
		if (recorded)
			return fd;
		int e = -fd;
		if (e == ENOENT && fl__sys.stat(lk->dir, &st) == 0)
			return -EAGAIN; /* FUSE/NFS split LOOKUP+CREATE race: contention */
		if (e == EACCES && (flags & O_CREAT) && fl__sys.stat(lk->path, &st) == 0) {
			/* Someone else's file in a sticky directory (Python #317). */
			flags &= ~O_CREAT;
			continue;
		}
		if (e == ENOENT && !(flags & O_CREAT))
			return -EAGAIN;
		return fl__err(lk, -e, "open", lk->path);
	}
	*out = fd;
	return 0;
}

/* One flock attempt.  Returns 0, -EAGAIN, -ENOSYS (fd closed, *ident set)
 * or another error (fd closed). */
static int unix_attempt_fd(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how,
			   int fd, int locked)
{
	int op = (mode == FL_SHARED ? LOCK_SH : LOCK_EX) | (how == FL__TRY ? LOCK_NB : 0);
	struct file_hold *fh = (struct file_hold *)h->priv;
	struct stat st;

	while (!locked && fl__sys.flock(fd, op) != 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EWOULDBLOCK || e == EACCES) { /* EAGAIN == EWOULDBLOCK on Linux */
			/* Keep the descriptor for unix_wait and the next try: a
			 * close here would wake every other waiter's watch. */
			fh->wfd1 = fd + 1;
			fh->shared = mode == FL_SHARED;
			return -EAGAIN;
		}
		if (e == ENOSYS || e == EOPNOTSUPP) {
			if (fl__sys.fstat(fd, &st) == 0) {
				h->dev = st.st_dev;
				h->ino = st.st_ino;
			} else {
				h->dev = 0;
				h->ino = 0;
			}
			fl__sys.close(fd);
			fl__err(lk, -ENOSYS, "flock", lk->path);
			return -ENOSYS;
		}
		fl__sys.close(fd);
		return fl__err(lk, -e, "flock", lk->path);
	}
	if (fl__sys.fstat(fd, &st) != 0) {
		int e = errno;
		fl__sys.close(fd);
		return fl__err(lk, -e, "fstat", lk->path);
	}
	if (!S_ISREG(st.st_mode)) {
		fl__sys.flock(fd, LOCK_UN);
		fl__sys.close(fd);
		return fl__errf(lk, -EINVAL, "%s: not a regular file (%s)", lk->path,
				S_ISFIFO(st.st_mode)  ? "a FIFO"
				: S_ISSOCK(st.st_mode) ? "a socket"
				: S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
									      : "not a file");
	}
	if (st.st_nlink == 0) {
		/* The inode was unlinked between open and flock: worthless. */
		fl__sys.flock(fd, LOCK_UN);
		fl__sys.close(fd);
		return -EAGAIN;
	}
	if (mode == FL_EXCLUSIVE && st.st_size > 0 && fl__sys.ftruncate(fd, 0) != 0) {
		int e = errno;
		fl__sys.flock(fd, LOCK_UN);
		fl__sys.close(fd);
		return fl__err(lk, -e, "ftruncate", lk->path);
	}
	if (lk->opt.mode != -1 && (st.st_mode & 07777) != (mode_t)lk->opt.mode &&
	    fl__sys.fchmod(fd, (mode_t)lk->opt.mode) != 0 && errno != EPERM) {
		int e = errno;
		fl__sys.flock(fd, LOCK_UN);
		fl__sys.close(fd);
		return fl__err(lk, -e, "fchmod", lk->path);
	}
	h->fd = fd;
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	return 0;
}

/* The descriptor of the previous try of this acquisition (kept only when
 * the mode is the same), or a fresh one. */
static int unix_open_try(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int *fd,
			 int *locked)
{
	struct file_hold *fh = (struct file_hold *)h->priv;

	*locked = 0;
	if (fh->wfd1 > 0) {
		*fd = fh->wfd1 - 1;
		*locked = fh->ready;
		fh->wfd1 = 0;
		fh->ready = 0;
		if (fh->shared == (mode == FL_SHARED))
			return 0;
		fl__sys.close(*fd);
		*locked = 0;
	}
	return unix_open(lk, mode, fd);
}

static int unix_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	int fd, r, locked;

	r = unix_open_try(lk, h, mode, &fd, &locked);
	if (r != 0)
		return r;
	r = unix_attempt_fd(lk, h, mode, how, fd, locked);
	if (r == -ENOSYS)
		return fl__errf(lk, -ENOSYS,
				"flock(%s): Function not implemented (the filesystem has no flock; "
				"use kind file or soft)",
				lk->path);
	return r;
}

static int unix_release(struct fl_lock *lk, struct fl_hold *h)
{
	while (fl__sys.flock(h->fd, LOCK_UN) != 0) {
		if (errno == EINTR)
			continue;
		return fl__err(lk, -errno, "flock(LOCK_UN)", lk->path);
	}
	/* close errors are ignored: the lock is already released (EIO on FUSE). */
	fl__sys.close(h->fd);
	h->fd = -1;
	fl__inotify_unlinger(); /* a watch the winning wait left (unix_wait) */
	return 0;
}

/* Fork child: close our copy only if it still names the file we locked. */
static void unix_drop(struct fl_lock *lk, struct fl_hold *h)
{
	struct stat st;

	(void)lk;
	if (h->fd >= 0 && fl__sys.fstat(h->fd, &st) == 0 && st.st_dev == h->dev &&
	    st.st_ino == h->ino)
		fl__sys.close(h->fd);
	h->fd = -1;
}

/*
 * Looks up flock holders of (dev, ino) in /proc/locks.  Sets *pid to one
 * holder and returns the number of holders found, 0 when none, or -errno.
 */
static int unix_proc_locks(dev_t dev, ino_t ino, pid_t *pid, int *shared)
{
	char line[512];
	FILE *f = fopen("/proc/locks", "re");
	int found = 0;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct fl__proc_lock pl;

		/* A blocked waiter is not a holder. */
		if (!fl__proc_lock_parse(line, &pl) || pl.waiter || strcmp(pl.type, "FLOCK") != 0 ||
		    makedev(pl.maj, pl.min) != dev || (ino_t)pl.ino != ino)
			continue;
		if (found++ == 0) {
			*pid = (pid_t)pl.pid;
			*shared = strcmp(pl.mode, "READ") == 0;
		}
	}
	fclose(f);
	return found;
}

static int unix_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct stat st;
	pid_t pid = 0;
	int shared = 0, n;

	(void)opt;
	if (fl__sys.lstat(path, &st) != 0) {
		if (errno == ENOENT) {
			out->state = FL_HOLDER_FREE;
			snprintf(out->detail, sizeof(out->detail), "no lock file");
			return 0;
		}
		return fl__err(NULL, -errno, "lstat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		out->state = FL_HOLDER_MALFORMED;
		snprintf(out->detail, sizeof(out->detail), "not a regular file");
		return 0;
	}
	n = unix_proc_locks(st.st_dev, st.st_ino, &pid, &shared);
	if (n < 0) {
		/* No /proc/locks: probe without blocking anyone for long. */
		int fd = fl__sys.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return fl__err(NULL, -errno, "open", path);
		if (fl__sys.flock(fd, LOCK_EX | LOCK_NB) == 0) {
			fl__sys.flock(fd, LOCK_UN);
			n = 0;
		} else {
			n = 1;
			pid = 0;
		}
		fl__sys.close(fd);
	}
	if (n == 0) {
		out->state = FL_HOLDER_FREE;
		return 0;
	}
	out->state = pid > 0 ? FL_HOLDER_HELD : FL_HOLDER_UNKNOWN;
	out->mode = shared ? FL_SHARED : FL_EXCLUSIVE;
	out->pid = pid;
	out->same_host = 1;
	out->alive = 1;
	if (shared)
		out->readers = (unsigned)n;
	else
		out->writers = 1;
	fl__hostname(out->host, sizeof(out->host));
	snprintf(out->detail, sizeof(out->detail), "%s flock held by %d process%s on this host",
		 shared ? "shared" : "exclusive", n, n == 1 ? "" : "es");
	if (pid > 0)
		fl__start_token(pid, out->start, sizeof(out->start));
	return 0;
}

/*
 * Between tries: sleep until a descriptor of the lock file is closed
 * (inotify IN_CLOSE_*: Python, flock(1) and we all release by closing) or
 * until the adaptive poll step ends, whichever is first.  The step starts
 * at 1 ms and doubles up to the poll interval, and starts over after every
 * close seen, so a holder that unlocks without closing is still seen
 * quickly while the lock keeps changing hands, and an idle wait costs one
 * try per poll interval.  The watch is set before one more try on the kept
 * descriptor, so a release between the failed attempt and the watch is not
 * missed; if that try gets the lock, the next attempt reports it.
 *
 * The hand-off path is kept short: when the instance becomes readable the
 * waiter tries flock at once, before reading the event (it is nearly always
 * the holder's close), and a waiter that won leaves its watch in place
 * (fl__inotify_linger) to be removed at release.  Events read after a failed
 * try may postdate it, so any close read is followed by one more try.
 */
static void unix_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	const uint32_t mask = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_DELETE_SELF | IN_MOVE_SELF |
			      IN_DONT_FOLLOW;
	struct file_hold *fh = (struct file_hold *)h->priv;
	int ifd, wd = -1, fd = fh->wfd1 - 1;
	int op = (fh->shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
	double t, now = fl__now_mono();

	/* The step is absolute, so that a caller waiting in slices (async.c)
	 * still tries again when it ends. */
	if (fh->next <= now) {
		double step = fh->step > 0 ? fh->step : 0.001;

		fh->next = now + step;
		fh->step = step * 2 < lk->opt.poll_interval ? step * 2 : lk->opt.poll_interval;
	}
	t = fh->next < until ? fh->next : until;
	if (fd < 0 || (ifd = fl__inotify_get()) < 0 ||
	    (wd = fl__inotify_watch(ifd, lk->path, mask)) < 0) {
		fl__wait_sleep_until(t);
		return;
	}
	for (;;) {
		uint32_t seen;

		if (fl__sys.flock(fd, op) == 0) {
			fh->ready = 1;
			fl__inotify_linger(ifd, wd);
			return;
		}
		if (!fl__inotify_ready(ifd, t))
			break; /* the step ended, or a signal handler ended the wait */
		if (fl__sys.flock(fd, op) == 0) {
			fh->ready = 1;
			fl__inotify_linger(ifd, wd);
			return;
		}
		seen = fl__inotify_take(ifd, wd);
		if (seen & (IN_DELETE_SELF | IN_MOVE_SELF | IN_Q_OVERFLOW))
			break; /* the next attempt opens the file again */
		if (seen & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) {
			/* The lock may move again soon: the step starts over. */
			now = fl__now_mono();
			fh->step = 0.002 < lk->opt.poll_interval ? 0.002 : lk->opt.poll_interval;
			fh->next = now + 0.001;
			t = fh->next < until ? fh->next : until;
		}
	}
	fl__inotify_unwatch(ifd, wd);
}

/* An acquisition gave up: close the descriptor kept between its tries. */
static void unix_abandon(struct fl_lock *lk, struct fl_hold *h)
{
	struct file_hold *fh = (struct file_hold *)h->priv;

	(void)lk;
	if (fh->wfd1 > 0)
		fl__sys.close(fh->wfd1 - 1); /* drops the lock too if `ready` */
	fh->wfd1 = 0;
	fh->ready = 0;
	fl__inotify_unlinger();
}

static int unix_setup(struct fl_lock *lk)
{
	return fl__opt_no_lifetime(lk, "their own rules");
}

const struct fl_backend fl__backend_unix = {
	.version = 1,
	.name = "unix",
	.kind = FL_UNIX,
	.caps = FL__CAP_SHARED,
	.hold_size = sizeof(struct file_hold),
	.default_poll = 0.05,
	.setup = unix_setup,
	.attempt = unix_attempt,
	.wait = unix_wait,
	.abandon = unix_abandon,
	.release = unix_release,
	.drop = unix_drop,
	.inspect = unix_inspect,
};

/* ---- file: unix with the soft fallback --------------------------------- */

/*
 * The front end switches a handle to soft (fl__backend_file.fallback) for
 * good when an attempt returns FL__FALLBACK; from then on its holds use
 * soft's methods, wait and adopt included.  A hold still waiting on flock
 * when another thread's try fell back gives up its descriptor and follows.
 */
static int file_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	struct stat st;
	int fd, r, locked;

	if (atomic_load(&lk->fell_back)) {
		unix_abandon(lk, h); /* another thread's try fell back since ours */
		return FL__FALLBACK;
	}
	r = unix_open_try(lk, h, mode, &fd, &locked);
	if (r != 0)
		return r;
	r = unix_attempt_fd(lk, h, mode, how, fd, locked);
	if (r != -ENOSYS)
		return r;
	if (lk->opt.flags & FL_NO_FALLBACK)
		return fl__errf(lk, -ENOSYS,
				"flock(%s): Function not implemented (FL_NO_FALLBACK refuses "
				"the soft fallback)",
				lk->path);
	/* Remove the empty file we created, never a peer's non-empty marker. */
	if (fl__sys.lstat(lk->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino &&
	    S_ISREG(st.st_mode) && st.st_size == 0)
		fl__sys.unlink(lk->path);
	unix_abandon(lk, h);
	return FL__FALLBACK;
}

static int file_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct stat st;

	/* A non-empty regular file is a soft marker of a fallen-back peer. */
	if (fl__sys.lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		return fl__backend_soft.inspect(path, opt, out);
	return unix_inspect(path, opt, out);
}

static int file_break(const char *path, const struct fl_options *opt, unsigned flags,
		      const char *name)
{
	struct stat st;

	if (fl__sys.lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		return fl__backend_soft.brk(path, opt, flags, name);
	return fl__errf(NULL, -ENOTSUP,
			"%s: flock locks cannot be broken (the kernel releases them when the "
			"holder exits)",
			path);
}

const struct fl_backend fl__backend_file = {
	.version = 1,
	.name = "file",
	.kind = FL_FILE,
	.caps = FL__CAP_SHARED,
	.hold_size = sizeof(struct file_hold),
	.default_poll = 0.05,
	.setup = unix_setup,
	.attempt = file_attempt,
	.wait = unix_wait,
	.abandon = unix_abandon,
	.release = unix_release,
	.drop = unix_drop,
	.inspect = file_inspect,
	.brk = file_break,
	.fallback = &fl__backend_soft,
};
