/* SPDX-License-Identifier: MIT */
/*
 * backend-soft.c -- the `soft` kind: an O_EXCL marker file (Python's
 * SoftFileLock, "protocol 1").
 *
 * Protocol.  Holding the lock means having created the marker with
 * open(O_WRONLY|O_CREAT|O_EXCL|O_TRUNC|O_NOFOLLOW|O_CLOEXEC) and written the
 * record "<pid>\n<hostname>\n<start token>\n" into it (byte-identical to
 * Python's).  The descriptor stays open for the whole hold.  Release fstat's
 * the descriptor, closes it, and unlinks the path only while it still names
 * that inode, so a successor who replaced an expired marker is never removed.
 * O_EXCL create is atomic on local filesystems and on NFSv3+ (Linux >= 2.6).
 *
 * Stale markers.  On every EEXIST the contender reads the marker safely (no
 * symlink follow, no FIFO stall, at most 1025 bytes) and breaks it only on
 * proof: the holder is on *this* host and its pid is gone (kill(pid, 0) =
 * ESRCH) or was recycled (its start token differs); or the marker is empty
 * (or a protocol-2 record) and older than 2 s (a peer may be between create
 * and write).
 *
 * Never what is not a marker.  Users of flock(1) habitually lock the data
 * file itself; Python renames away anything unparsable after 2 s, which
 * deleted such a data file.  Here only a regular file of at most 1024 bytes
 * that parses as a record, or is empty, can be a marker; an unparsable one
 * is contention for 2 s (being written?) and then is not.  A directory,
 * symlink, FIFO, socket or bigger file never is: the acquire fails with
 * -EEXIST naming it and suggesting a separate lock path, and fl_break
 * refuses it even with FL_FORCE (fl__marker_foreign, marker.c).  No record
 * Python writes is refused, so this stays wire-compatible.
 * A marker from another host is never broken: pids mean nothing across
 * hosts, and PID namespaces make even same-numbered pids lie.  Breaking takes
 * the O_EXCL break claim "<marker>.break" (so that breaks by our processes
 * never interleave: two contenders that judged one dead marker stale at
 * once could otherwise rename the winner's fresh marker aside), then
 * re-reads, renames aside, re-verifies (mtime not advanced, same inode,
 * same bytes) and unlinks (fl__break_file, marker.c).  Python breaks
 * without the claim, so with Python contenders the old race remains.  The
 * strict kind's sentinel is never broken.  With `lifetime`, any marker older
 * than lifetime seconds is broken even if its holder lives: age-based expiry
 * can overlap a live holder, which is why lease exists.
 *
 * Crash.  A crashed holder leaves its marker; the next contender on the same
 * host recovers it on its first attempt.  Across hosts, only `lifetime` (or
 * an operator's fl_break --force) recovers it; use lease or soft-rw when
 * that matters.
 *
 * Fork.  The child never unlinks the parent's marker: the front end routes
 * its close through soft_drop, which only closes the descriptor.
 *
 * Waiting.  Between attempts a waiter sleeps on inotify for the marker's
 * removal (capped by the poll interval), so a hand-off on one host takes
 * microseconds instead of up to a poll interval; on NFS, removals by other
 * clients raise no event and the wait is polling with an adaptive step:
 * 1 ms after the marker was seen to change (a new holder, who may be
 * brief), doubling up to the poll interval while it does not
 * (fl__adapt_until, wait.c), so the median cross-host hand-off stays under
 * half the interval (bench/bench-cluster-handoff.sh measures it).
 *
 * Differences from Python, all wire-compatible: a contender that just broke a
 * stale marker retries at once instead of reporting contention; the
 * writability pre-check runs only after EEXIST (same errors, one lstat less
 * on the uncontended path); what cannot be a marker is never broken (above).
 *
 * Directories.  Missing parents are made by fl__mkdir_p, one component at a
 * time by descriptor (util.c); a root process refuses a lock directory that
 * another user controls (fl_open, lock.c), so the paths used here cannot be
 * redirected under it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fl-internal.h"

/* Judges the marker at path: 1 = stale (break it), 0 = not.  Fills *m;
 * *why is set (and 0 returned) when what is there cannot be a marker.  For
 * a break (brk), an unparsable file is never "young": force breaks only
 * markers. */
static int soft_is_stale(const char *path, const struct fl_options *opt, struct fl_marker *m,
			 struct fl_p1 *p1, int *parsed, const char **why, int brk)
{
	double age;
	pid_t pid;
	int is_lease, p2;
	double dur;

	*parsed = 0;
	*why = NULL;
	if (fl__marker_read(AT_FDCWD, path, m) != 0 || !m->exists)
		return 0;
	age = fl__now_wall() - m->mtime;
	if (m->regular && m->len == FL__STRICT_SENTINEL_LEN &&
	    memcmp(m->buf, fl__strict_sentinel, FL__STRICT_SENTINEL_LEN) == 0)
		return 0; /* the strict kind owns this path */
	*parsed = !m->malformed && fl__p1_parse(m->buf, m->len, p1) == 0;
	/* A protocol-2 (lease) record is a marker too, malformed for us. */
	p2 = !*parsed && !m->malformed && fl__p2_parse(m->buf, m->len, &pid, &is_lease, &dur) == 0;
	*why = fl__marker_foreign(m, *parsed || p2, brk ? FL__MALFORMED_AGE : age);
	if (*why)
		return 0;
	if (opt && opt->lifetime >= 0 && age >= opt->lifetime)
		return 1;
	if (!*parsed)
		return age >= FL__MALFORMED_AGE;
	if (!fl__owner_is_stale(p1->pid, p1->host, p1->token))
		return 0;
	/* The preload shim's locks belong to open file descriptions, which can
	 * outlive the process that took them (fork, then the taker exits). */
	if (fl__soft_pinned && fl__soft_pinned(path))
		return 0;
	return 1;
}

int (*fl__soft_pinned)(const char *marker_path);

static int soft_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	char rec[512];
	int fd, n, r, broke = 0;

	(void)mode;
	(void)how;
	for (;;) {
		r = fl__marker_create(lk, &fd);
		if (r == 0)
			break;
		if (r != -EEXIST)
			return r;
		if (broke)
			return -EAGAIN;
		{
			struct fl_marker m;
			struct fl_p1 p1;
			const char *why;
			int parsed;
			if (!soft_is_stale(lk->path, &lk->opt, &m, &p1, &parsed, &why, 0))
				return why ? fl__marker_refuse(lk, lk->path, "soft", why, 0)
					   : -EAGAIN;
			if (fl__break_file(lk->path, &m) != 0)
				return -EAGAIN;
			broke = 1; /* one immediate retry after a successful break */
		}
	}
	n = fl__p1_format(rec, sizeof(rec));
	r = n < 0 ? n : fl__write_all(fd, rec, (size_t)n);
	if (r != 0) {
		/* Roll back: never leave a half-written marker, never remove a successor's. */
		struct stat st;
		int have = fl__sys.fstat(fd, &st) == 0;
		fl__sys.close(fd);
		if (have)
			fl__unlink_if_same(AT_FDCWD, lk->path, st.st_dev, st.st_ino);
		return fl__err(lk, r, "write", lk->path);
	}
	h->fd = fd;
	h->dev = 0;
	h->ino = 0;
	return 0;
}

/* Sleeps until the marker goes (inotify) or until `until` or the end of the
 * adaptive step (another host's removal raises no event); see
 * fl__wait_removal and fl__adapt_until. */
static void soft_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	until = fl__adapt_until(h, lk->path, lk->opt.poll_interval, until);
	fl__wait_removal(lk->dir, lk->name, fl__path_exists, lk->path, until);
}

static int soft_release(struct fl_lock *lk, struct fl_hold *h)
{
	struct stat st;
	int r;

	/* Without our marker's identity, or when the unlink itself fails, the
	 * marker stays and names this live process: reporting success would
	 * leave a lock nobody can take until we exit.  Keep holding and say
	 * so; the caller may retry (fl_close gives up the descriptor). */
	if (fl__sys.fstat(h->fd, &st) != 0)
		return fl__err(lk, -errno, "fstat", lk->path);
	r = fl__unlink_if_same(AT_FDCWD, lk->path, st.st_dev, st.st_ino);
	if (r != 0 && r != -ENOENT && r != -ESTALE)
		return fl__err(lk, r, "unlink", lk->path);
	r = 0;
	if (fl__sys.close(h->fd) != 0 && errno != EINTR)
		r = fl__err(lk, -errno, "close", lk->path);
	h->fd = -1;
	h->held = 0; /* the marker is gone (or not ours); the descriptor too */
	return r;
}

static void soft_drop(struct fl_lock *lk, struct fl_hold *h)
{
	(void)lk;
	if (h->fd >= 0)
		fl__sys.close(h->fd); /* inherited copy; the marker stays the parent's */
	h->fd = -1;
}

/* The marker must still be the one this process (or the image before its
 * execve, or its fork parent) created: same inode when the caller knows it. */
static int soft_adopt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, dev_t dev,
		      ino_t ino, pid_t taker)
{
	struct stat st;
	int fd;

	(void)mode;
	(void)taker;
	fd = fl__sys.open(lk->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? -ESTALE : fl__err(lk, -errno, "open", lk->path);
	if (fl__sys.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    ((dev != 0 || ino != 0) && (st.st_dev != dev || st.st_ino != ino))) {
		fl__sys.close(fd);
		return -ESTALE;
	}
	h->fd = fd;
	h->dev = 0;
	h->ino = 0;
	return 0;
}

static int soft_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct fl_marker m;
	struct fl_p1 p1;
	char me[256] = "";
	const char *why;
	int parsed, stale;

	stale = soft_is_stale(path, opt, &m, &p1, &parsed, &why, 0);
	if (!m.exists) {
		out->state = FL_HOLDER_FREE;
		return 0;
	}
	out->age = fl__now_wall() - m.mtime;
	out->heartbeat_age = -1;
	out->mode = FL_EXCLUSIVE;
	out->writers = 1;
	if (m.regular && m.len == FL__STRICT_SENTINEL_LEN &&
	    memcmp(m.buf, fl__strict_sentinel, FL__STRICT_SENTINEL_LEN) == 0) {
		out->state = FL_HOLDER_UNKNOWN;
		snprintf(out->detail, sizeof(out->detail),
			 "strict sentinel: the strict kind owns this path");
		return 0;
	}
	if (why) {
		out->state = FL_HOLDER_MALFORMED;
		snprintf(out->detail, sizeof(out->detail),
			 "not a lock marker (%s): never broken; lock a separate path", why);
		return 0;
	}
	if (!parsed) {
		out->state = FL_HOLDER_MALFORMED;
		snprintf(out->detail, sizeof(out->detail), "malformed marker (%s), %s",
			 m.len == 0 ? "empty" : "not a protocol-1 record",
			 stale ? "old enough to be broken" : "younger than 2 s, left alone");
		if (stale)
			out->state = FL_HOLDER_STALE;
		return 0;
	}
	out->pid = p1.pid;
	snprintf(out->host, sizeof(out->host), "%s", p1.host);
	snprintf(out->start, sizeof(out->start), "%s", p1.token);
	fl__hostname(me, sizeof(me));
	out->same_host = strcmp(me, p1.host) == 0;
	if (out->same_host) {
		int a = fl__pid_alive(p1.pid);
		out->alive = a < 0 ? -1 : (a && !stale);
	} else {
		out->alive = -1;
	}
	out->state = stale ? FL_HOLDER_STALE : FL_HOLDER_HELD;
	if (stale)
		snprintf(out->detail, sizeof(out->detail), "%s",
			 opt && opt->lifetime >= 0 && out->age >= opt->lifetime
				 ? "older than lifetime"
			 : out->alive == 0 ? "holder process is gone"
					   : "holder pid was recycled (start token differs)");
	else if (!out->same_host)
		snprintf(out->detail, sizeof(out->detail),
			 "holder on another host: never judged stale from here");
	else
		snprintf(out->detail, sizeof(out->detail), "holder process is alive");
	return 0;
}

static int soft_break(const char *path, const struct fl_options *opt, unsigned flags,
		      const char *name)
{
	struct fl_marker m;
	struct fl_p1 p1;
	const char *why;
	int parsed, stale, r;

	(void)name;
	stale = soft_is_stale(path, opt, &m, &p1, &parsed, &why, 1);
	if (!m.exists)
		return fl__errf(NULL, -ENOENT, "%s: no marker to break", path);
	if (why)
		return fl__marker_refuse(NULL, path, "soft", why, 1);
	if (m.regular && m.len == FL__STRICT_SENTINEL_LEN &&
	    memcmp(m.buf, fl__strict_sentinel, FL__STRICT_SENTINEL_LEN) == 0)
		return fl__errf(NULL, -EBUSY,
				"%s: this is a strict sentinel; break strict claims with kind strict",
				path);
	if (!stale && !(flags & FL_FORCE)) {
		if (parsed)
			return fl__errf(NULL, -EBUSY,
					"%s: held by pid %d on %s, not provably stale (use force)", path,
					(int)p1.pid, p1.host);
		return fl__errf(NULL, -EBUSY,
				"%s: malformed marker younger than 2 s, not provably stale (use force)",
				path);
	}
	r = fl__break_file(path, &m);
	if (r == -EBUSY)
		return fl__errf(NULL, -EBUSY,
				"%s: another process is breaking it (%s.break exists)", path,
				path);
	if (r == -EAGAIN)
		return fl__errf(NULL, -EBUSY, "%s: the marker changed while breaking it", path);
	if (r != 0)
		return fl__err(NULL, r, "rename", path);
	return 0;
}

const struct fl_backend fl__backend_soft = {
	.version = 1,
	.name = "soft",
	.kind = FL_SOFT,
	.caps = 0,
	.hold_size = 0,
	.default_poll = 0.05,
	.attempt = soft_attempt,
	.wait = soft_wait,
	.release = soft_release,
	.drop = soft_drop,
	.inspect = soft_inspect,
	.brk = soft_break,
	.adopt = soft_adopt,
};
