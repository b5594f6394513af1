/* SPDX-License-Identifier: MIT */
/*
 * backend-softrw.c -- the `soft-rw` kind's legacy protocol: a reader/writer
 * lock made of marker files, for network filesystems (Python filelock
 * 3.32.3's SoftReadWriteLock, byte for byte).  Selected by
 * FL_SOFT_RW_LEGACY; the default protocol, Python filelock 4's generation
 * log, is backend-softrw-log.c.
 *
 * Layout, for a lock at P:
 *   P.state              a protocol-1 soft lock ("pid\nhost\nstart\n"), held
 *                        only while a process changes the state below
 *   P.write              the writer's marker
 *   P.readers/           directory (mode 0700), one marker per reader, named
 *                        "<uuid4 hex>.<pid>"
 * Every marker is "<32 hex token>\n<pid>\n<hostname>\n", created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600; reader markers are created, read and
 * removed relative to a descriptor of P.readers opened O_DIRECTORY|O_NOFOLLOW.
 * P itself is never created.
 *
 * Protocol.  A reader takes P.state, checks that no writer marker (a regular
 * file) exists, creates its marker, drops P.state.  A writer is two-phase and
 * writer-preferring: under P.state it creates P.write with its token (from
 * that moment no new reader enters, on any host), then, under P.state on each
 * try, re-checks that P.write still carries its token (refreshing its mtime),
 * breaks stale reader markers and succeeds once no reader marker is left.
 * A writer that gives up (timeout, cancel) removes P.write if it still holds
 * its token.  Release: a reader unlinks its own marker (its name is unique);
 * a writer, under P.state, unlinks P.write only while it carries its token,
 * so a successor who evicted us is never removed.
 *
 * Liveness.  Holders refresh the mtime of their marker every
 * heartbeat_interval from the process's one heartbeat thread
 * (heartbeat.c).  Each beat opens the marker with O_NOFOLLOW|O_NONBLOCK,
 * checks the token and futimens() that same descriptor.  A marker found gone
 * or carrying another token means we were evicted: on_compromise runs and
 * fl_is_valid() turns false (Python stops its heartbeat silently).
 *
 * Stale detection (where we differ from Python, wire-compatibly).  Python
 * evicts a marker when "wall clock now - mtime > stale_threshold", comparing
 * the evicting host's clock with a time stamped by the file server or by
 * another host: clock skew evicts live holders (or never evicts dead ones).
 * We never compare two clocks.  The process's ledger (ledger.c, shared by
 * every handle) keeps marker path -> (dev, ino, mtime, size, since when on
 * our CLOCK_MONOTONIC).  Any change resets the entry; a marker is stale
 * only once it has stayed unchanged for stale_threshold on our own clock,
 * or, the first time this process sees that inode, by the file server's
 * clock (a probe file's mtime against the marker's, both server stamps,
 * minus a granularity margin).  Routine observations use
 * lstat, which the client may answer from its attribute cache.  A cached
 * answer does not only delay: for attr_timeout it can still show the silent
 * state of a dead holder's marker that another host has since broken and
 * replaced with its own, live one.  So before evicting, the marker is opened
 * afresh and its attributes read with statx(AT_STATX_FORCE_SYNC) on that
 * descriptor (NFS revalidates on open anyway; a FUSE client answers a plain
 * fstat from its cache), and any change found there resets the clock.  A marker with an
 * mtime minutes in the future or the past is therefore handled like any
 * other: what counts is whether it moves, or how long ago the server
 * stamped it.  A process that starts up next to a marker abandoned long ago
 * evicts it at its first try, as Python would; one abandoned moments ago,
 * after stale_threshold plus about a second.
 *
 * Eviction is Python's: a malformed marker (not a regular file, unparsable)
 * is unlinked; otherwise it is renamed to "<name>.break.<pid>.<hex>", re-read,
 * and unlinked only if its token, inode and mtime did not change.  If they
 * did, what we renamed is a live holder's marker: it is linked back under
 * its name (no replace, as Python 4 does) and the break counts as not done.
 * Python 3.32.3 leaves it aside, so that the breaker and the live holder
 * both hold until the holder's next heartbeat reports the loss; we only
 * leave it aside when the name was taken again in between (link fails).  Leftover *.break.* files, which Python never removes,
 * are swept once unchanged for stale_threshold: in P.readers on every writer
 * scan, next to P at most once per stale_threshold per handle.
 *
 * P.state.  Python waits for P.state without any bound, and a P.state left
 * by a process that crashed on another host wedges every host forever.  Here
 * one attempt tries P.state once (the front end's loop applies the caller's
 * timeout; the wait between tries is short when only P.state was busy, as it
 * is normally held for microseconds), and a P.state marker is broken when
 * its same-host owner is provably dead (Python's rule), when it is malformed
 * and unchanged for 2 s, or when it has stayed unchanged for stale_threshold
 * (an orphan: no live process holds P.state that long).
 *
 * Clock and NFS assumptions.  O_EXCL create and rename are atomic on NFSv3+.
 * Our monotonic clock and the holders' heartbeat intervals must be roughly
 * right (rate, not absolute time): stale_threshold must exceed
 * heartbeat_interval plus the longest NFS stall a live holder may suffer
 * alone.  A stall of the server that our own reads also sit through (one
 * read of 0.5 s or more) is not counted as the holders' silence (ledger.c).
 * P.state is broken under the break claim "P.state.break" (marker.c).
 * All peers of one lock must use the same heartbeat_interval and
 * stale_threshold.
 *
 * Fork and exec.  A fork child's handle is invalid (the front end refuses
 * it); the child has no heartbeat, and drop leaves the parent's markers
 * alone.  Descriptors are O_CLOEXEC and only open during a call, so exec
 * leaves nothing behind; a lock held across exec is abandoned and expires
 * after stale_threshold, unless it is adopted.  Adoption (fl__adopt, for
 * the preload shim, whose fork children and new images share the taker's
 * open file description): for a writer, P.write when it names the taker
 * (fl__adopt_pid_ok) and this host and no reader marker is left (otherwise
 * it is a pending claim, not a held lock); for a reader, a marker
 * "<uuid>.<pid>" of the same.  Its token is checked by a refresh at once,
 * then it is beaten as if we had taken it; the taker, while it lives,
 * beats it too (a second futimens is harmless).
 *
 * Mixed deployments.  Python filelock 4 (and our default protocol) never
 * read these files, nor we theirs.  So that a mixed fleet cannot double-hold
 * silently, a reader whose marker is created and a writer whose readers have
 * drained look, before reporting the lock held, for a record in
 * P.rw/holders refreshed within stale_threshold (fl__srwl_live); finding
 * one, they withdraw and fail with EPROTO naming the other protocol.  The
 * other protocol does the same after its own commit, so two contenders
 * racing each other cannot both miss the other.
 *
 * Downsides.  Every transition costs a P.state round trip (create, write,
 * unlink), a writer's try reads every reader marker's attributes, and a
 * crashed holder blocks others for stale_threshold.
 *
 * Waiting.  Between tries a waiter sleeps on inotify until P.write or
 * P.state goes (next to P) or, for a pending writer, until a reader marker
 * leaves P.readers/; on one host a hand-off takes about a millisecond.
 * Other hosts' changes raise no event: there the sleep is an adaptive poll,
 * SRW_QUICK after a change of the lock was seen, doubling up to the poll
 * interval while nothing changes (see srw_wait).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fl-internal.h"

#define SRW_TOKEN_LEN 32
#define SRW_STATE_POLL 0.02       /* retry P.state this soon when only it was busy    */
#define SRW_NAME_MAX 64

/* ---- per-handle data: sidecar paths -------------------------------------- */

struct srw_handle {
	double last_sweep; /* CLOCK_MONOTONIC of the last sweep next to P; 0 never */
	char *state_path, *write_path, *readers_path;
	const char *base;  /* final component of P (points into the lock's path)  */
};

/* ---- per-hold data ------------------------------------------------------ */

struct srw_hold {
	struct fl_hb hb;
	int phase;      /* 1: P.write is claimed and readers are draining        */
	int is_reader;  /* what the held (or pending) marker is                   */
	int state_busy; /* the last try failed only because P.state was held     */
	double step;    /* srw_wait's adaptive poll step (0 = start quick)       */
	uint64_t sig;   /* what srw_wait saw of the lock last time               */
	char token[SRW_TOKEN_LEN + 1];
	char name[SRW_NAME_MAX]; /* reader marker name                           */
};

static struct srw_hold *srw_hold_of(struct fl_hold *h)
{
	return (struct srw_hold *)(void *)h->priv;
}

static struct srw_handle *srw_handle_of(const struct fl_lock *lk)
{
	return lk->be_data;
}

/* ---- small helpers ------------------------------------------------------- */

/* Seconds the node st at (dirfd, name), whose absolute path is `key`, is
 * known to have stayed unchanged (ledger.c: our watch, or the server's clock
 * the first time we see it). */
static double srw_observe(const char *key, int dirfd, const char *name, const struct stat *st)
{
	struct fl_seen seen;

	fl__seen_of(&seen, st);
	return fl__ledger_silent(key, dirfd, name, &seen);
}

/* A marker record: token, pid, host. */
struct srw_rec {
	char token[SRW_TOKEN_LEN + 1];
	pid_t pid;
	char host[256];
};

/* Python's marker grammar: 32 [0-9a-f] \n [1-9][0-9]{0,9} (<= 2^31-1) \n
 * [\x21-\x7e]{1,253} \n* end, at most 1024 bytes.  0 or -EBADMSG. */
static int srw_parse(const char *buf, size_t len, struct srw_rec *out)
{
	size_t i = 0, j;
	long long pid = 0;

	if (len == 0 || len > FL__MARKER_MAX || len < SRW_TOKEN_LEN + 1)
		return -EBADMSG;
	for (; i < SRW_TOKEN_LEN; i++)
		if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
			return -EBADMSG;
	if (buf[i++] != '\n')
		return -EBADMSG;
	memcpy(out->token, buf, SRW_TOKEN_LEN);
	out->token[SRW_TOKEN_LEN] = '\0';
	if (i >= len || buf[i] < '1' || buf[i] > '9')
		return -EBADMSG;
	for (j = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++, j++) {
		if (j >= 10)
			return -EBADMSG;
		pid = pid * 10 + (buf[i] - '0');
	}
	if (pid > 2147483647LL || i >= len || buf[i++] != '\n')
		return -EBADMSG;
	out->pid = (pid_t)pid;
	for (j = 0; i < len && buf[i] >= 0x21 && buf[i] <= 0x7e; i++, j++) {
		if (j >= 253)
			return -EBADMSG;
		out->host[j] = buf[i];
	}
	if (j == 0)
		return -EBADMSG;
	out->host[j] = '\0';
	for (; i < len; i++)
		if (buf[i] != '\n')
			return -EBADMSG;
	return 0;
}

int fl__srw_parse(const char *buf, size_t len, char token[33], pid_t *pid, char host[256])
{
	struct srw_rec r;
	int e = srw_parse(buf, len, &r);

	if (e == 0) {
		memcpy(token, r.token, sizeof(r.token));
		*pid = r.pid;
		memcpy(host, r.host, sizeof(r.host));
	}
	return e;
}

/* Constant-time comparison of two tokens (Python: hmac.compare_digest). */
static int srw_token_eq(const char *a, const char *b)
{
	unsigned char d = 0;

	for (size_t i = 0; i < SRW_TOKEN_LEN; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* Formats our record; fails when the hostname cannot be read by peers. */
static int srw_format(char *buf, size_t cap, const char *token)
{
	char host[256];
	int r = fl__hostname(host, sizeof(host)), n;
	size_t hl;

	if (r != 0)
		return r;
	hl = strlen(host);
	if (hl == 0 || hl > 253)
		return -EINVAL;
	for (size_t i = 0; i < hl; i++)
		if ((unsigned char)host[i] < 0x21 || (unsigned char)host[i] > 0x7e)
			return -EINVAL; /* Python refuses non-ASCII names; peers could not parse it */
	n = snprintf(buf, cap, "%s\n%d\n%s\n", token, (int)fl__pid(), host);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

/* Reads and parses the marker at (dirfd, name).  Returns 1 parsed, 0 absent
 * or malformed (m tells which), -errno on an unexpected read error. */
static int srw_read(int dirfd, const char *name, struct fl_marker *m, struct srw_rec *rec)
{
	int r = fl__marker_read(dirfd, name, m);

	if (r < 0)
		return r;
	if (!m->exists || m->malformed || !m->regular)
		return 0;
	return srw_parse(m->buf, m->len, rec) == 0;
}

/* fstatat without following symlinks. */
static int srw_lstat(int dirfd, const char *name, struct stat *st)
{
	return fl__sys.fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

/* A fresh look at the node: open (which makes NFS revalidate) + statx
 * AT_STATX_FORCE_SYNC on the descriptor.  The forced sync matters where open
 * does not revalidate: a FUSE client answers fstat from its attribute cache
 * for attr_timeout after the open, so a marker another host has replaced in
 * the meantime would still show the old, silent state.  For nodes that
 * cannot be opened safely (symlinks, FIFOs, sockets) the lstat answer is the
 * best there is.  0, -ENOENT, or -errno. */
static int srw_fresh_stat(int dirfd, const char *name, struct stat *st)
{
	struct statx sx;
	size_t got;
	int r, fd = -1;

	r = srw_lstat(dirfd, name, st);
	if (r != 0 || !S_ISREG(st->st_mode))
		return r;
	r = fl__record_read(dirfd, name, NULL, 0, &got, st, &fd);
	if (r == -ELOOP)
		return srw_lstat(dirfd, name, st);
	if (r != 0)
		return r;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &sx) != 0)
		r = -errno;
	fl__sys.close(fd);
	if (r != 0)
		return r;
	if ((sx.stx_mask & (STATX_TYPE | STATX_INO | STATX_SIZE | STATX_MTIME)) ==
	    (STATX_TYPE | STATX_INO | STATX_SIZE | STATX_MTIME)) {
		st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
		st->st_ino = sx.stx_ino;
		st->st_mode = sx.stx_mode;
		st->st_size = (off_t)sx.stx_size;
		st->st_mtim.tv_sec = sx.stx_mtime.tv_sec;
		st->st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
	}
	return 0;
}

/*
 * Item 2 of the design: 1 when the node at (dirfd, name) has not changed for
 * `threshold` seconds of our own clock, confirmed by a fresh read; 0 when it
 * has (*st is then its latest attributes); -errno when lstat fails (-ENOENT:
 * nothing there).
 */
static int srw_is_stale(int dirfd, const char *name, const char *key, double threshold,
			struct stat *st)
{
	int r = srw_lstat(dirfd, name, st);

	if (r != 0)
		return r;
	if (srw_observe(key, dirfd, name, st) < threshold)
		return 0;
	/* A candidate: confirm with the server, not the attribute cache. */
	if (srw_fresh_stat(dirfd, name, st) != 0)
		return 0;
	return srw_observe(key, dirfd, name, st) >= threshold;
}

/* Unlinks a node of any type at (dirfd, name); directories only when empty. */
static int srw_unlink_any(int dirfd, const char *name)
{
	if (fl__sys.unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno == EISDIR || errno == EPERM) {
		if (fl__sys.unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
	}
	return -errno;
}

/*
 * Python's _break_stale_marker from the point the marker was judged stale:
 * malformed -> unlink; else rename aside to "<name>.break.<pid>.<hex>",
 * re-read, unlink only when token, inode and mtime are unchanged.  Returns 1
 * when the marker is gone from `name`, 0 when it was left (vanished or raced).
 */
static int srw_break(int dirfd, const char *name)
{
	struct fl_marker before, after;
	struct srw_rec rb, ra;
	char brk[SRW_NAME_MAX + 4096], hex[33];
	int pb, pa;

	pb = srw_read(dirfd, name, &before, &rb);
	if (pb < 0 || !before.exists)
		return 0;
	if (pb == 0)
		return srw_unlink_any(dirfd, name) == 0;
	fl__random_hex(hex);
	if ((size_t)snprintf(brk, sizeof(brk), "%s.break.%d.%s", name, (int)fl__pid(), hex) >=
	    sizeof(brk))
		return 0;
	if (fl__sys.renameat(dirfd, name, dirfd, brk) != 0)
		return 0;
	pa = srw_read(dirfd, brk, &after, &ra);
	if (pa < 0 || !after.exists)
		return 0;
	if (pa == 0) {
		srw_unlink_any(dirfd, brk);
		return 1;
	}
	if (!srw_token_eq(rb.token, ra.token) || after.ino != before.ino ||
	    after.mtime > before.mtime) {
		/* What we renamed is not what we judged: a live holder's marker
		 * (or our view of it was cached).  Put it back under its name, no
		 * replace, as Python 4 does; 3.32.3 left it aside, which let
		 * the breaker and that live holder both hold.  Back in place:
		 * the marker is still there (0).  Someone took the name since:
		 * it stays aside, and the name is theirs (1, as before). */
		if (fl__sys.linkat(dirfd, brk, dirfd, name, 0) == 0) {
			fl__sys.unlinkat(dirfd, brk, 0);
			return 0;
		}
		return 1;
	}
	fl__sys.unlinkat(dirfd, brk, 0);
	return 1;
}

/* ---- P.state ---------------------------------------------------------- */

/* One try at P.state.  0 held (*fdp, *st identify it), -EAGAIN busy, or
 * another negative errno (recorded). */
static int srw_state_take(struct fl_lock *lk, int *fdp, struct stat *id)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	struct srw_handle *s = srw_handle_of(lk);
	mode_t perm = lk->opt.mode == -1 ? 0666 : (mode_t)lk->opt.mode;
	char rec[512];
	int fd, n, r, recorded, tries = 0;

	for (;;) {
		fd = fl__open_mkdir(lk, s->state_path, flags, perm, &recorded);
		if (fd >= 0)
			break;
		if (recorded)
			return fd;
		int e = -fd;
		if (++tries > 3)
			return -EAGAIN;
		if (e == ENOENT)
			continue; /* its parent went again after fl__open_mkdir made it */
		if (e != EEXIST)
			return fl__err(lk, -e, "open", s->state_path);
		{
			struct fl_marker m;
			struct fl_p1 p1;
			struct stat st;
			double same;
			int parsed, brk = 0;

			if (fl__marker_read(AT_FDCWD, s->state_path, &m) != 0)
				return -EAGAIN;
			if (!m.exists)
				continue;
			parsed = m.regular && !m.malformed && fl__p1_parse(m.buf, m.len, &p1) == 0;
			if (parsed && fl__owner_is_stale(p1.pid, p1.host, p1.token))
				brk = 1;
			if (!brk && srw_lstat(AT_FDCWD, s->state_path, &st) == 0) {
				double lim = lk->opt.stale_threshold;

				if (!parsed && lim > FL__MALFORMED_AGE)
					lim = FL__MALFORMED_AGE;
				same = srw_observe(s->state_path, AT_FDCWD, s->state_path, &st);
				if (same >= lim)
					brk = srw_is_stale(AT_FDCWD, s->state_path, s->state_path, lim,
							   &st) > 0;
			}
			if (!brk)
				return -EAGAIN;
			if (!m.regular)
				srw_unlink_any(AT_FDCWD, s->state_path);
			else if (fl__break_file(s->state_path, &m) != 0)
				return -EAGAIN;
		}
	}
	if (lk->opt.mode != -1)
		fl__sys.fchmod(fd, (mode_t)lk->opt.mode);
	n = fl__p1_format(rec, sizeof(rec));
	r = n < 0 ? n : fl__write_all(fd, rec, (size_t)n);
	if (r == 0 && fl__sys.fstat(fd, id) != 0)
		r = -errno;
	if (r != 0) {
		struct stat st;
		int have = fl__sys.fstat(fd, &st) == 0;
		fl__sys.close(fd);
		if (have)
			fl__unlink_if_same(AT_FDCWD, s->state_path, st.st_dev, st.st_ino);
		return fl__err(lk, r, "write", s->state_path);
	}
	*fdp = fd;
	return 0;
}

static void srw_state_drop(struct fl_lock *lk, int fd, const struct stat *id)
{
	/* A transient failure (ESTALE, EIO) is retried: a P.state left behind
	 * names this live process and stalls every peer, us included, until it
	 * counts as orphaned after stale_threshold. */
	for (int i = 0; i < 3; i++) {
		int r = fl__unlink_if_same(AT_FDCWD, srw_handle_of(lk)->state_path, id->st_dev,
					   id->st_ino);
		if (r == 0 || r == -ENOENT || r == -ESTALE)
			break;
	}
	fl__sys.close(fd);
}

/*
 * Takes P.state for a release path.  P.state is held for microseconds and an
 * orphan is broken after stale_threshold, so this normally returns at once;
 * a node that cannot be broken (a non-empty directory) makes it give up with
 * -ETIMEDOUT after twice stale_threshold rather than hang a release.
 */
static int srw_state_take_wait(struct fl_lock *lk, int *fdp, struct stat *id)
{
	double end = fl__now_mono() + 2 * lk->opt.stale_threshold + 1;

	for (;;) {
		int r = srw_state_take(lk, fdp, id);
		if (r != -EAGAIN)
			return r;
		if (fl__now_mono() >= end)
			return -ETIMEDOUT;
		/* Woken when P.state goes: a release must not lose every race for
		 * it to waiters that are woken the same way. */
		fl__wait_removal(lk->dir, strrchr(srw_handle_of(lk)->state_path, '/') + 1,
				 fl__path_exists, srw_handle_of(lk)->state_path,
				 fl__now_mono() + SRW_STATE_POLL);
	}
}

/* ---- markers ---------------------------------------------------------- */

/* Creates the marker (dirfd, name) holding our record.  0, -EEXIST, -errno. */
static int srw_create(struct fl_lock *lk, int dirfd, const char *name, const char *token)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	mode_t perm = lk->opt.mode == -1 ? 0600 : (mode_t)lk->opt.mode;
	char rec[512];
	struct stat st;
	int fd, n, r;

	n = srw_format(rec, sizeof(rec), token);
	if (n < 0)
		return fl__errf(lk, n, "%s: cannot write a marker: the host name is not printable "
				       "ASCII of 1..253 characters", lk->path);
	do
		fd = fl__sys.openat(dirfd, name, flags, perm);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	if (fl__sys.fstat(fd, &st) != 0) {
		r = -errno;
		fl__sys.close(fd);
		fl__sys.unlinkat(dirfd, name, 0);
		return r;
	}
	if (lk->opt.mode != -1)
		fl__sys.fchmod(fd, (mode_t)lk->opt.mode);
	r = fl__write_all(fd, rec, (size_t)n);
	fl__sys.close(fd);
	if (r != 0)
		fl__unlink_if_same(dirfd, name, st.st_dev, st.st_ino);
	return r;
}

/* Opens P.readers (creating it, mode 0700), refusing symlinks and
 * non-directories.  Returns the descriptor or -errno (recorded). */
static int srw_readers_open(struct fl_lock *lk)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	struct srw_handle *s = srw_handle_of(lk);
	int fd, made = 0;

	for (;;) {
		fd = fl__sys.open(s->readers_path, flags);
		if (fd >= 0)
			return fd;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == ENOENT && made < 2) {
			made++;
			if (fl__sys.mkdir(s->readers_path, 0700) == 0 || errno == EEXIST)
				continue;
			if (errno == ENOENT) {
				int r = fl__mkdir_p(lk);
				if (r != 0)
					return r; /* recorded */
				continue;
			}
			return fl__err(lk, -errno, "mkdir", s->readers_path);
		}
		if (e == ELOOP || e == ENOTDIR)
			return fl__errf(lk, -ENOTDIR,
					"%s exists but is not a directory or is a symlink; refusing "
					"to use it",
					s->readers_path);
		return fl__err(lk, -e, "open", s->readers_path);
	}
}

/* Opens our marker and checks it is ours: 0 (fd open in *fdp), a positive
 * fl_compromise reason, or -errno for a transient failure. */
static int srw_open_ours(int dirfd, const char *name, const char *token, int *fdp)
{
	char buf[FL__MARKER_MAX + 2];
	struct srw_rec rec;
	struct stat st;
	size_t got = 0;
	int fd = -1, r;

	r = fl__record_read(dirfd, name, buf, FL__MARKER_MAX + 1, &got, &st, &fd);
	if (r == -ENOENT)
		return FL_COMPROMISE_MISSING;
	if (r == -ELOOP)
		return FL_COMPROMISE_REPLACED;
	if (r < 0)
		return r;
	if (!S_ISREG(st.st_mode)) {
		fl__sys.close(fd);
		return FL_COMPROMISE_REPLACED;
	}
	if (srw_parse(buf, got, &rec) != 0 || !srw_token_eq(rec.token, token)) {
		fl__sys.close(fd);
		return FL_COMPROMISE_REPLACED;
	}
	*fdp = fd;
	return 0;
}

/* Refreshes our marker's mtime through the verified descriptor.  0, a
 * positive fl_compromise reason, or -errno (transient). */
static int srw_touch(int dirfd, const char *name, const char *token)
{
	int fd, r = srw_open_ours(dirfd, name, token, &fd);

	if (r != 0)
		return r;
	r = fl__sys.futimens(fd, NULL) == 0 ? 0 : -errno;
	fl__sys.close(fd);
	return r;
}

/* ---- the heartbeat ------------------------------------------------------ */

static int srw_beat(struct fl_hb *hb)
{
	struct srw_hold *sh = (struct srw_hold *)(void *)hb;
	struct srw_handle *s = srw_handle_of(hb->h->lk);
	int dfd, r;

	if (!sh->is_reader)
		return srw_touch(AT_FDCWD, s->write_path, sh->token);
	dfd = fl__sys.open(s->readers_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return FL_COMPROMISE_MISSING;
		if (errno == ELOOP || errno == ENOTDIR)
			return FL_COMPROMISE_REPLACED;
		return -errno;
	}
	r = srw_touch(dfd, sh->name, sh->token);
	fl__sys.close(dfd);
	return r;
}

static int srw_hb_start(struct fl_lock *lk, struct fl_hold *h)
{
	struct srw_hold *sh = srw_hold_of(h);

	memset(&sh->hb, 0, sizeof(sh->hb));
	sh->hb.interval = lk->opt.heartbeat_interval;
	sh->hb.give_up = lk->opt.stale_threshold;
	sh->hb.valid_for = lk->opt.stale_threshold;
	sh->hb.beat = srw_beat;
	sh->hb.h = h;
	return fl__hb_add(&sh->hb);
}

/* ---- writer helpers ----------------------------------------------------- */

/* Python's _claim_writer_marker (caller holds P.state).  1 claimed, 0 a live
 * P.write is in the way, -errno (recorded). */
static int srw_claim_write(struct fl_lock *lk, const char *token)
{
	struct srw_handle *s = srw_handle_of(lk);
	struct stat st;
	int r;

	r = srw_is_stale(AT_FDCWD, s->write_path, s->write_path, lk->opt.stale_threshold, &st);
	if (r > 0 && srw_break(AT_FDCWD, s->write_path))
		r = -ENOENT;
	if (r == 0 && S_ISREG(st.st_mode))
		return 0;
	r = srw_create(lk, AT_FDCWD, s->write_path, token);
	if (r == -EEXIST)
		return 0;
	if (r != 0)
		return fl__err(lk, r, "create", s->write_path);
	return 1;
}

/* Removes P.write only while it carries `token` (caller holds P.state). */
/* Returns 0 when no marker of ours is left (removed, gone, or another's),
 * or -errno (recorded) when it could not be read or removed: then it is
 * still ours and still there. */
static int srw_unlink_write_if_ours(struct fl_lock *lk, const char *token)
{
	struct srw_handle *s = srw_handle_of(lk);
	struct fl_marker m;
	struct srw_rec rec;
	int r = srw_read(AT_FDCWD, s->write_path, &m, &rec);

	if (r < 0)
		return fl__err(lk, r, "read", s->write_path);
	if (r == 1 && srw_token_eq(rec.token, token)) {
		r = fl__unlink_if_same(AT_FDCWD, s->write_path, m.dev, m.ino);
		if (r != 0 && r != -ENOENT && r != -ESTALE)
			return fl__err(lk, r, "unlink", s->write_path);
	}
	return 0;
}

static int srw_housekeeping(const char *name)
{
	return name[0] == '.' || strstr(name, ".break") != NULL;
}

/*
 * Breaks stale reader markers, sweeps old *.break.* leftovers and counts the
 * readers left.  Returns the count or -errno.  Caller holds P.state.
 */
static char **srw_list(int dfd, size_t *np);
static int srw_refuse_mixed(struct fl_lock *lk);
static void srw_free_list(char **names, size_t n);

static long srw_scan_readers(struct fl_lock *lk, int dfd)
{
	struct srw_handle *s = srw_handle_of(lk);
	double stale = lk->opt.stale_threshold;
	char **names, key[PATH_MAX + 16 + 256];
	long count = 0;
	size_t n;
	int r;

	errno = 0;
	names = srw_list(dfd, &n);
	if (names == NULL && errno != 0)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		const char *nm = names[i];
		struct stat st;

		snprintf(key, sizeof(key), "%s/%s", s->readers_path, nm);
		if (srw_housekeeping(nm)) {
			if (strstr(nm, ".break") != NULL &&
			    srw_is_stale(dfd, nm, key, stale, &st) > 0)
				srw_unlink_any(dfd, nm);
			continue;
		}
		r = srw_is_stale(dfd, nm, key, stale, &st);
		if (r < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			/* Not a reader marker, and only removable when empty. */
			if (r > 0)
				fl__sys.unlinkat(dfd, nm, AT_REMOVEDIR);
			continue;
		}
		if (r > 0 && srw_break(dfd, nm))
			continue;
		count++;
	}
	srw_free_list(names, n);
	return count;
}

/* Sweeps "<P>.write.break.*" and "<P>.state.break.*" next to P once they
 * have stayed unchanged for stale_threshold; at most once per threshold. */
static void srw_sweep_dir(struct fl_lock *lk)
{
	struct srw_handle *s = srw_handle_of(lk);
	double now = fl__now_mono();
	char pw[512], ps[512], key[PATH_MAX + 256 + 2];
	size_t bl = strlen(s->base);
	struct dirent *de;
	DIR *d;
	int fd;

	if (s->last_sweep != 0 && now - s->last_sweep < lk->opt.stale_threshold)
		return;
	s->last_sweep = now;
	if (bl + 16 >= sizeof(pw))
		return;
	snprintf(pw, sizeof(pw), "%s.write.break.", s->base);
	snprintf(ps, sizeof(ps), "%s.state.break.", s->base);
	fd = fl__sys.open(lk->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fl__sys.fdopendir(fd);
	if (d == NULL) {
		fl__sys.close(fd);
		return;
	}
	while ((de = fl__sys.readdir(d)) != NULL) {
		struct stat st;

		if (strncmp(de->d_name, pw, bl + 13) != 0 && strncmp(de->d_name, ps, bl + 13) != 0)
			continue;
		snprintf(key, sizeof(key), "%s/%s", lk->dir, de->d_name);
		if (srw_is_stale(dirfd(d), de->d_name, key, lk->opt.stale_threshold, &st) > 0)
			fl__sys.unlinkat(dirfd(d), de->d_name, 0);
	}
	fl__sys.closedir(d);
}

/* ---- backend methods ----------------------------------------------------- */

int fl__srw_opt_setup(struct fl_lock *lk)
{
	struct fl_options *o = &lk->opt;
	int r = fl__opt_no_lifetime(lk, "their own rules");

	if (r != 0)
		return r;
	if (o->lease_duration != 0)
		return fl__errf(lk, -EINVAL,
				"lease_duration is only used by the lease kind; soft-rw holders "
				"expire after stale_threshold");
	if (o->heartbeat_interval == 0)
		o->heartbeat_interval = 30.0;
	if (o->stale_threshold == 0)
		o->stale_threshold = 3 * o->heartbeat_interval;
	if (!(o->heartbeat_interval > 0))
		return fl__errf(lk, -EINVAL, "heartbeat_interval must be positive, got %g",
				o->heartbeat_interval);
	if (o->stale_threshold <= o->heartbeat_interval)
		return fl__errf(lk, -EINVAL,
				"stale_threshold must exceed heartbeat_interval (%g <= %g)",
				o->stale_threshold, o->heartbeat_interval);
	if (!(o->poll_interval > 0))
		return fl__errf(lk, -EINVAL, "poll_interval must be positive, got %g",
				o->poll_interval);
	return 0;
}

static int srw_setup(struct fl_lock *lk)
{
	struct srw_handle *s;
	size_t pl;
	int r = fl__srw_opt_setup(lk);

	if (r != 0)
		return r;
	if (lk->be_data != NULL || lk->path == NULL)
		return 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return fl__errf(lk, -ENOMEM, "out of memory");
	pl = strlen(lk->path);
	s->state_path = malloc(pl + 8);
	s->write_path = malloc(pl + 8);
	s->readers_path = malloc(pl + 10);
	if (!s->state_path || !s->write_path || !s->readers_path) {
		free(s->state_path);
		free(s->write_path);
		free(s->readers_path);
		free(s);
		return fl__errf(lk, -ENOMEM, "out of memory");
	}
	snprintf(s->state_path, pl + 8, "%s.state", lk->path);
	snprintf(s->write_path, pl + 8, "%s.write", lk->path);
	snprintf(s->readers_path, pl + 10, "%s.readers", lk->path);
	s->base = strrchr(lk->path, '/') ? strrchr(lk->path, '/') + 1 : lk->path;
	lk->be_data = s;
	return 0;
}

static void srw_teardown(struct fl_lock *lk)
{
	struct srw_handle *s = srw_handle_of(lk);

	if (s == NULL)
		return;
	free(s->state_path);
	free(s->write_path);
	free(s->readers_path);
	free(s);
	lk->be_data = NULL;
}

/* A uuid4 in hex, as Python's uuid.uuid4().hex spells it. */
static void srw_uuid4_hex(char out[33])
{
	static const char v[] = "89ab";

	fl__random_hex(out);
	out[12] = '4';
	out[16] = v[(out[17] - '0') & 3];
}

static int srw_attempt_read(struct fl_lock *lk, struct fl_hold *h)
{
	struct srw_handle *s = srw_handle_of(lk);
	struct srw_hold *sh = srw_hold_of(h);
	struct stat id, st;
	int dfd, sfd, r;

	dfd = srw_readers_open(lk);
	if (dfd < 0)
		return dfd;
	r = srw_state_take(lk, &sfd, &id);
	if (r != 0) {
		fl__sys.close(dfd);
		sh->state_busy = r == -EAGAIN;
		return r;
	}
	sh->state_busy = 0;
	r = srw_is_stale(AT_FDCWD, s->write_path, s->write_path, lk->opt.stale_threshold, &st);
	if (r > 0 && srw_break(AT_FDCWD, s->write_path))
		r = -ENOENT;
	else if (r > 0)
		r = srw_lstat(AT_FDCWD, s->write_path, &st);
	/* Only a regular file at P.write keeps readers out (Python's rule). */
	if (r == 0 && S_ISREG(st.st_mode)) {
		srw_state_drop(lk, sfd, &id);
		fl__sys.close(dfd);
		return -EAGAIN;
	}
	{
		char u[33];
		srw_uuid4_hex(u);
		snprintf(sh->name, sizeof(sh->name), "%s.%d", u, (int)fl__pid());
	}
	fl__random_hex(sh->token);
	r = srw_create(lk, dfd, sh->name, sh->token);
	srw_state_drop(lk, sfd, &id);
	if (r != 0) {
		fl__sys.close(dfd);
		if (r == -EEXIST) /* a uuid collision: astronomically unlikely, just retry */
			return -EAGAIN;
		return fl__err(lk, r, "create", s->readers_path);
	}
	sh->is_reader = 1;
	r = srw_refuse_mixed(lk);
	if (r != 0) {
		fl__sys.unlinkat(dfd, sh->name, 0);
		fl__sys.close(dfd);
		return r;
	}
	r = srw_hb_start(lk, h);
	if (r != 0) {
		fl__sys.unlinkat(dfd, sh->name, 0);
		fl__sys.close(dfd);
		return fl__errf(lk, r, "%s: cannot start the heartbeat thread: %s", lk->path,
				fl_strerror(r));
	}
	fl__sys.close(dfd);
	return 0;
}

static int srw_attempt_write(struct fl_lock *lk, struct fl_hold *h)
{
	struct srw_hold *sh = srw_hold_of(h);
	struct stat id;
	long readers;
	int dfd, sfd, r;

	dfd = srw_readers_open(lk);
	if (dfd < 0)
		return dfd;
	r = srw_state_take(lk, &sfd, &id);
	if (r != 0) {
		fl__sys.close(dfd);
		sh->state_busy = r == -EAGAIN;
		return r;
	}
	sh->state_busy = 0;
	sh->is_reader = 0;
	if (sh->phase == 1) {
		/* A peer may have evicted our pending claim while we waited. */
		r = srw_touch(AT_FDCWD, srw_handle_of(lk)->write_path, sh->token);
		if (r > 0) {
			sh->phase = 0; /* gone or replaced: claim again */
		} else if (r < 0) {
			/* Transient (ESTALE, EIO): keep the claim, try again later. */
			srw_state_drop(lk, sfd, &id);
			fl__sys.close(dfd);
			return -EAGAIN;
		}
	}
	if (sh->phase == 0) {
		fl__random_hex(sh->token);
		r = srw_claim_write(lk, sh->token);
		if (r <= 0) {
			srw_state_drop(lk, sfd, &id);
			fl__sys.close(dfd);
			return r < 0 ? r : -EAGAIN;
		}
		sh->phase = 1;
		srw_sweep_dir(lk);
	}
	readers = srw_scan_readers(lk, dfd);
	srw_state_drop(lk, sfd, &id);
	fl__sys.close(dfd);
	if (readers < 0)
		return -EAGAIN; /* a transient scan failure: retry, keeping the claim */
	if (readers > 0)
		return -EAGAIN;
	r = srw_refuse_mixed(lk);
	if (r == 0)
		r = srw_hb_start(lk, h);
	if (r != 0) {
		int got = srw_state_take_wait(lk, &sfd, &id) == 0;
		srw_unlink_write_if_ours(lk, sh->token);
		if (got)
			srw_state_drop(lk, sfd, &id);
		sh->phase = 0;
		if (r == -EPROTO)
			return r;
		return fl__errf(lk, r, "%s: cannot start the heartbeat thread: %s", lk->path,
				fl_strerror(r));
	}
	sh->phase = 0;
	return 0;
}

static int srw_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	(void)how; /* one try: the front end's loop owns the deadline */
	return mode == FL_SHARED ? srw_attempt_read(lk, h) : srw_attempt_write(lk, h);
}

/* ---- waiting ------------------------------------------------------------ */

#define SRW_QUICK 0.005 /* the first adaptive step after a change was seen */

static uint64_t srw_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* A digest of what can let a waiter in: P.write's identity and mtime, the
 * reader directory's mtime and link count, whether P.state exists.  Only
 * compared with the previous digest (a changed lock may change again soon). */
static uint64_t srw_signature(const struct srw_handle *s)
{
	struct stat st;
	uint64_t h = 1;

	if (fl__sys.lstat(s->write_path, &st) == 0)
		h = srw_mix(srw_mix(srw_mix(h, st.st_ino), (uint64_t)st.st_mtim.tv_sec),
			    (uint64_t)st.st_mtim.tv_nsec);
	h = srw_mix(h, 2);
	if (fl__sys.lstat(s->readers_path, &st) == 0)
		h = srw_mix(srw_mix(srw_mix(srw_mix(h, st.st_ino), (uint64_t)st.st_nlink),
				    (uint64_t)st.st_mtim.tv_sec),
			    (uint64_t)st.st_mtim.tv_nsec);
	h = srw_mix(h, 3);
	if (fl__sys.lstat(s->state_path, &st) == 0)
		h = srw_mix(h, st.st_ino);
	return h;
}

/* Is what this hold waits for still in the way?  A pending writer waits
 * for the reader markers to go, anyone else for P.write, and everyone for
 * a busy P.state. */
static int srw_still_busy(const struct srw_handle *s, const struct srw_hold *sh)
{
	struct stat st;

	if (sh->state_busy && fl__sys.lstat(s->state_path, &st) == 0)
		return 1;
	if (sh->phase == 1) {
		int fd = fl__sys.open(s->readers_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *e;
		int busy = 0;

		if (d == NULL) {
			if (fd >= 0)
				fl__sys.close(fd);
			return 0;
		}
		while (!busy && (e = readdir(d)) != NULL)
			busy = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
		closedir(d);
		return busy;
	}
	return fl__sys.lstat(s->write_path, &st) == 0;
}

struct srw_watch {
	int dir_wd, readers_wd;
	const char *write_name, *state_name; /* state_name NULL: not waited for */
};

static int srw_match(void *arg, int wd, uint32_t mask, const char *name)
{
	const struct srw_watch *w = arg;

	if (wd == w->readers_wd)
		return 1; /* a reader left */
	if (wd != w->dir_wd)
		return 0;
	if (mask & (IN_DELETE_SELF | IN_MOVE_SELF))
		return 1;
	return strcmp(name, w->write_name) == 0 ||
	       (w->state_name != NULL && strcmp(name, w->state_name) == 0);
}

/*
 * Between tries.  On one host a waiter sleeps on inotify until the change
 * that can let it in: P.write removed or renamed away (next to P), P.state
 * too when only it was busy, or a reader marker leaving (P.readers/, which a pending writer waits
 * on).  Other hosts' changes raise no event, so the sleep is also bounded
 * by an adaptive step: SRW_QUICK after a change of the lock was seen (a lock
 * that moves may move again soon), doubling up to the poll interval while
 * nothing changes.
 */
static void srw_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	const uint32_t mask = IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
	struct srw_handle *s = srw_handle_of(lk);
	struct srw_hold *sh = srw_hold_of(h);
	double now = fl__now_mono();
	uint64_t sig = srw_signature(s);
	char wname[NAME_MAX + 1], sname[NAME_MAX + 1];
	/* P.state comes and goes with every peer's try: wake for it only when
	 * it was all that stood in the way, or the waiters wake each other. */
	struct srw_watch w = { -1, -1, wname, sh->state_busy ? sname : NULL };
	int ifd;

	if (sh->state_busy && until > now + SRW_STATE_POLL)
		until = now + SRW_STATE_POLL;
	/* A pending writer refreshes its claim on each try: try often enough. */
	if (sh->phase == 1 && until > now + lk->opt.heartbeat_interval / 2)
		until = now + lk->opt.heartbeat_interval / 2;
	if (sig != sh->sig || sh->step <= 0)
		sh->step = SRW_QUICK;
	else if ((sh->step *= 2) > lk->opt.poll_interval)
		sh->step = lk->opt.poll_interval;
	sh->sig = sig;
	if (until > now + sh->step)
		until = now + sh->step;

	snprintf(wname, sizeof(wname), "%s", strrchr(s->write_path, '/') + 1);
	snprintf(sname, sizeof(sname), "%s", strrchr(s->state_path, '/') + 1);
	ifd = fl__inotify_get();
	if (ifd < 0 || (w.dir_wd = fl__inotify_watch(ifd, lk->dir, mask)) < 0) {
		fl__wait_sleep_until(until);
		return;
	}
	if (sh->phase == 1)
		w.readers_wd = inotify_add_watch(ifd, s->readers_path,
						 IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (srw_still_busy(s, sh))
		fl__inotify_poll_match(ifd, until, srw_match, &w);
	fl__inotify_unwatch(ifd, w.readers_wd);
	fl__inotify_unwatch(ifd, w.dir_wd);
}

static void srw_abandon(struct fl_lock *lk, struct fl_hold *h)
{
	struct srw_hold *sh = srw_hold_of(h);
	struct stat id;
	int sfd;

	sh->state_busy = 0;
	if (sh->phase != 1)
		return;
	sh->phase = 0;
	if (srw_state_take_wait(lk, &sfd, &id) != 0) {
		/* Without P.state the token check races a concurrent breaker, but
		 * a stranded claim would block every reader for stale_threshold. */
		srw_unlink_write_if_ours(lk, sh->token);
		return;
	}
	srw_unlink_write_if_ours(lk, sh->token);
	srw_state_drop(lk, sfd, &id);
}

static int srw_release(struct fl_lock *lk, struct fl_hold *h)
{
	struct srw_handle *s = srw_handle_of(lk);
	struct srw_hold *sh = srw_hold_of(h);
	struct stat id;
	int r, fd;

	fl__hb_remove(&sh->hb);
	if (sh->is_reader) {
		fd = fl__sys.open(s->readers_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
				return 0; /* our marker went with it */
			r = fl__err(lk, -errno, "open", s->readers_path);
			goto keep;
		}
		if (fl__sys.unlinkat(fd, sh->name, 0) != 0 && errno != ENOENT) {
			r = fl__err(lk, -errno, "unlink", sh->name);
			fl__sys.close(fd);
			goto keep;
		}
		fl__sys.close(fd);
		return 0;
	}
	r = srw_state_take_wait(lk, &fd, &id);
	if (r == -ETIMEDOUT) {
		r = srw_unlink_write_if_ours(lk, sh->token); /* as in srw_abandon */
		if (r != 0)
			goto keep;
		return 0;
	}
	if (r != 0)
		goto keep;
	r = srw_unlink_write_if_ours(lk, sh->token);
	srw_state_drop(lk, fd, &id);
	if (r != 0)
		goto keep; /* the writer marker is still ours and still there */
	return 0;
keep:
	/* Still held: keep it fresh so the caller may retry the release. */
	if (atomic_load(&h->compromised) == 0)
		srw_hb_start(lk, h);
	return r;
}

/* Is rec a marker of the taker's (or ours: execve keeps the pid) on this host? */
static int srw_adoptable(const struct srw_rec *rec, pid_t taker, const char *me)
{
	return fl__adopt_pid_ok(rec->pid, taker) && strcmp(rec->host, me) == 0;
}

/*
 * Takes over the marker a process that shares our open file description
 * holds (the preload shim after fork or execve): for FL_EXCLUSIVE, P.write
 * when it is the taker's (fl__adopt_pid_ok) on this host and no reader is
 * left (else it is a pending writer's claim, not a held lock); for
 * FL_SHARED, a reader marker "<uuid>.<pid>" of the same.  Then beats it, as
 * the taker did.  -ESTALE: none is ours (gone, evicted, someone else's).
 */
static int srw_adopt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, dev_t dev,
		     ino_t ino, pid_t taker)
{
	struct srw_handle *s = srw_handle_of(lk);
	struct srw_hold *sh = srw_hold_of(h);
	struct srw_rec rec;
	struct fl_marker m;
	char me[256];
	int r, found = 0;

	(void)dev;
	(void)ino;
	if (fl__hostname(me, sizeof(me)) != 0)
		return -ESTALE;
	memset(sh, 0, sizeof(*sh));
	if (mode == FL_EXCLUSIVE) {
		r = srw_read(AT_FDCWD, s->write_path, &m, &rec);
		if (r < 0 && r != -ENOENT)
			return fl__err(lk, r, "read", s->write_path);
		found = r == 1 && srw_adoptable(&rec, taker, me);
		if (found) {
			/* Readers left: P.write is a pending writer's claim. */
			struct srw_rec rr;
			char **names;
			size_t n = 0;
			int dfd = fl__sys.open(s->readers_path,
					       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			names = dfd >= 0 ? srw_list(dfd, &n) : NULL;
			for (size_t i = 0; names && i < n && found; i++)
				if (strlen(names[i]) > 33 && strchr(names[i], '.') == names[i] + 32 &&
				    strchr(names[i] + 33, '.') == NULL &&
				    srw_read(dfd, names[i], &m, &rr) == 1)
					found = 0;
			srw_free_list(names, n);
			if (dfd >= 0)
				fl__sys.close(dfd);
		}
	} else {
		char **names;
		size_t n = 0;
		int dfd = fl__sys.open(s->readers_path,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (dfd < 0)
			return errno == ENOENT ? -ESTALE : fl__err(lk, -errno, "open", s->readers_path);
		names = srw_list(dfd, &n);
		for (size_t i = 0; names && i < n && !found; i++) {
			const char *dot = strrchr(names[i], '.');
			if (dot == NULL || strlen(names[i]) >= sizeof(sh->name) ||
			    srw_read(dfd, names[i], &m, &rec) != 1 || !srw_adoptable(&rec, taker, me) ||
			    atol(dot + 1) != (long)rec.pid)
				continue;
			snprintf(sh->name, sizeof(sh->name), "%s", names[i]);
			found = 1;
		}
		srw_free_list(names, n);
		fl__sys.close(dfd);
		sh->is_reader = 1;
	}
	if (!found)
		return -ESTALE;
	memcpy(sh->token, rec.token, sizeof(sh->token));
	sh->hb.h = h;
	r = srw_beat(&sh->hb);
	if (r != 0) /* fresh at once; a marker that changed under us is not ours */
		return r > 0 ? -ESTALE : fl__err(lk, r, "refresh", lk->path);
	r = srw_hb_start(lk, h);
	if (r != 0)
		return fl__errf(lk, r, "%s: cannot start the heartbeat thread: %s", lk->path,
				fl_strerror(r));
	return 0;
}

static void srw_drop(struct fl_lock *lk, struct fl_hold *h)
{
	/* Fork child: no descriptor is kept, the registry is already empty, and
	 * the markers are the parent's. */
	(void)lk;
	(void)h;
}

/* ---- inspection and breaking by path (no handle, one look) ------------- */

struct srw_paths {
	char state[4200], write[4200], readers[4200];
};

static int srw_paths(const char *path, struct srw_paths *p)
{
	if ((size_t)snprintf(p->state, sizeof(p->state), "%s.state", path) >= sizeof(p->state) ||
	    (size_t)snprintf(p->write, sizeof(p->write), "%s.write", path) >= sizeof(p->write) ||
	    (size_t)snprintf(p->readers, sizeof(p->readers), "%s.readers", path) >=
		    sizeof(p->readers))
		return -ENAMETOOLONG;
	return 0;
}

/*
 * A single look cannot apply the observation rule, so inspection and
 * fl_break judge by what one look can prove: the holder runs on this host
 * and its pid is gone, or the marker's age by the wall clock exceeds
 * stale_threshold (Python's rule; an operator's call, see filelock(3)).
 */
static int srw_judge(const struct fl_marker *m, int parsed, const struct srw_rec *rec,
		     double stale, int *alive, int *same_host)
{
	char me[256] = "";
	double age = fl__now_wall() - m->mtime;

	*alive = -1;
	*same_host = 0;
	if (parsed) {
		fl__hostname(me, sizeof(me));
		*same_host = strcmp(me, rec->host) == 0;
		if (*same_host) {
			int a = fl__pid_alive(rec->pid);
			*alive = a < 0 ? -1 : a;
			if (a == 0)
				return 1;
		}
	}
	return age > stale;
}

/* Lists the entries of P.readers (an open descriptor) into a malloc'd array.
 * All or nothing: on any failure NULL with errno set (a partial list could
 * hide a reader from a writer). */
static char **srw_list(int dfd, size_t *np)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd = fl__sys.openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;
	DIR *d;

	*np = 0;
	if (fd < 0)
		return NULL;
	d = fl__sys.fdopendir(fd);
	if (d == NULL) {
		e = errno;
		fl__sys.close(fd);
		errno = e;
		return NULL;
	}
	for (;;) {
		errno = 0;
		de = fl__sys.readdir(d);
		if (de == NULL) {
			e = errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **t = realloc(names, nc * sizeof(*t));
			if (t == NULL) {
				e = ENOMEM;
				break;
			}
			names = t;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			e = ENOMEM;
			break;
		}
		n++;
	}
	fl__sys.closedir(d);
	if (e != 0) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
		errno = e;
		return NULL;
	}
	*np = n;
	errno = 0;
	return names;
}

static void srw_free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void srw_fill_holder(struct fl_holder *out, const struct fl_marker *m, int parsed,
			    const struct srw_rec *rec, int alive, int same_host)
{
	out->age = fl__now_wall() - m->mtime;
	out->heartbeat_age = out->age; /* holders refresh the mtime on each beat */
	out->pid = parsed ? rec->pid : 0;
	snprintf(out->host, sizeof(out->host), "%s", parsed ? rec->host : "");
	out->alive = alive;
	out->same_host = same_host;
}

static int srw_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct srw_paths p;
	struct fl_marker wm, rm, sm;
	struct srw_rec wrec, rrec, first;
	int pw, alive = -1, same = 0, wstale = 0, have_first = 0, dfd, r;
	unsigned readers = 0, stale_readers = 0;
	double stale = opt->stale_threshold;

	r = srw_paths(path, &p);
	if (r != 0)
		return fl__errf(NULL, r, "%s: path too long", path);
	pw = srw_read(AT_FDCWD, p.write, &wm, &wrec);
	if (pw < 0)
		return fl__err(NULL, pw, "open", p.write);
	dfd = fl__sys.open(p.readers, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0) {
		size_t n;
		char **names = srw_list(dfd, &n);

		for (size_t i = 0; i < n; i++) {
			int pr, a, sh;
			if (srw_housekeeping(names[i]))
				continue;
			pr = srw_read(dfd, names[i], &rm, &rrec);
			if (pr < 0 || !rm.exists || S_ISDIR(rm.st_mode))
				continue;
			readers++;
			if (srw_judge(&rm, pr == 1, &rrec, stale, &a, &sh))
				stale_readers++;
			else if (!have_first && pr == 1) {
				/* Report a live reader as the holder when there is no writer. */
				have_first = 1;
				first = rrec;
				srw_fill_holder(out, &rm, 1, &first, a, sh);
			}
		}
		srw_free_list(names, n);
		fl__sys.close(dfd);
	}
	out->readers = readers;
	out->writers = wm.exists ? 1 : 0;
	out->mode = wm.exists ? FL_EXCLUSIVE : FL_SHARED;
	if (wm.exists && pw == 1 && wrec.pid == fl__pid() && have_first && readers > stale_readers) {
		char me[256] = "";
		fl__hostname(me, sizeof(me));
		if (strcmp(me, wrec.host) == 0) {
			/* Our own pending claim: the readers are who is in the way. */
			out->state = FL_HOLDER_HELD;
			out->mode = FL_SHARED;
			snprintf(out->detail, sizeof(out->detail),
				 "%u reader(s); this process's writer is waiting for them",
				 readers - stale_readers);
			return 0;
		}
	}
	if (wm.exists) {
		wstale = srw_judge(&wm, pw == 1, &wrec, stale, &alive, &same);
		srw_fill_holder(out, &wm, pw == 1, &wrec, alive, same);
		if (pw != 1) {
			out->state = wstale ? FL_HOLDER_STALE : FL_HOLDER_MALFORMED;
			snprintf(out->detail, sizeof(out->detail),
				 "malformed writer marker (%s)%s",
				 wm.regular ? "unparsable record" : "not a regular file",
				 wstale ? ", older than stale_threshold" : "");
		} else if (wstale) {
			out->state = FL_HOLDER_STALE;
			snprintf(out->detail, sizeof(out->detail),
				 alive == 0 ? "writer process is gone"
					    : "writer marker not refreshed for %.1fs (stale_threshold %gs)",
				 out->age, stale);
		} else {
			out->state = FL_HOLDER_HELD;
			if (readers > stale_readers)
				snprintf(out->detail, sizeof(out->detail),
					 "writer waiting for %u reader(s) to leave", readers - stale_readers);
			else
				snprintf(out->detail, sizeof(out->detail), "writer holds the lock");
		}
	} else if (readers > 0) {
		out->state = readers == stale_readers ? FL_HOLDER_STALE : FL_HOLDER_HELD;
		snprintf(out->detail, sizeof(out->detail), "%u reader(s), %u of them stale", readers,
			 stale_readers);
		if (!have_first)
			out->state = readers == stale_readers ? FL_HOLDER_STALE : FL_HOLDER_MALFORMED;
	} else {
		out->state = FL_HOLDER_FREE;
	}
	if (fl__marker_read(AT_FDCWD, p.state, &sm) == 0 && sm.exists) {
		size_t l = strlen(out->detail);
		snprintf(out->detail + l, sizeof(out->detail) - l, "%s%s.state present, %.1fs old",
			 l ? "; " : "", strrchr(path, '/') ? strrchr(path, '/') + 1 : path,
			 fl__now_wall() - sm.mtime);
	}
	return 0;
}

/* Breaks one marker at (dirfd, name) when judged stale (or forced).
 * Adds to *broke or *live. */
static void srw_brk_one(int dirfd, const char *name, double stale, int force, int *broke,
			int *live)
{
	struct fl_marker m;
	struct srw_rec rec;
	int pr = srw_read(dirfd, name, &m, &rec), a, sh;

	if (pr < 0 || !m.exists)
		return;
	if (force || srw_judge(&m, pr == 1, &rec, stale, &a, &sh)) {
		if (srw_break(dirfd, name))
			(*broke)++;
	} else {
		(*live)++;
	}
}

static int srw_brk(const char *path, const struct fl_options *opt, unsigned flags,
		   const char *name)
{
	struct srw_paths p;
	double stale = opt->stale_threshold;
	int force = (flags & FL_FORCE) != 0, broke = 0, live = 0, dfd, r;

	r = srw_paths(path, &p);
	if (r != 0)
		return fl__errf(NULL, r, "%s: path too long", path);
	if (name != NULL && (strchr(name, '/') || srw_housekeeping(name)))
		return fl__errf(NULL, -EINVAL, "%s: '%s' is not a reader marker name", path, name);
	if (name == NULL)
		srw_brk_one(AT_FDCWD, p.write, stale, force, &broke, &live);
	dfd = fl__sys.open(p.readers, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0) {
		size_t n;
		char **names = srw_list(dfd, &n);

		for (size_t i = 0; i < n; i++) {
			struct stat st;
			if (name != NULL && strcmp(name, names[i]) != 0)
				continue;
			if (srw_housekeeping(names[i])) {
				/* Leftovers of earlier breaks. */
				if (strstr(names[i], ".break") && srw_lstat(dfd, names[i], &st) == 0 &&
				    (force || fl__now_wall() - fl__mtime(&st) > stale))
					fl__sys.unlinkat(dfd, names[i], 0);
				continue;
			}
			srw_brk_one(dfd, names[i], stale, force, &broke, &live);
		}
		srw_free_list(names, n);
		fl__sys.close(dfd);
	}
	if (name == NULL) {
		struct fl_marker m;
		struct fl_p1 p1;

		if (fl__marker_read(AT_FDCWD, p.state, &m) == 0 && m.exists) {
			int parsed = m.regular && !m.malformed && fl__p1_parse(m.buf, m.len, &p1) == 0;
			if (force || (parsed && fl__owner_is_stale(p1.pid, p1.host, p1.token)) ||
			    fl__now_wall() - m.mtime > stale) {
				if ((m.regular ? fl__break_file(p.state, &m)
					       : srw_unlink_any(AT_FDCWD, p.state)) == 0)
					broke++;
			} else {
				live++;
			}
		}
	}
	if (broke > 0)
		return 0;
	if (live > 0)
		return fl__errf(NULL, -EBUSY,
				"%s: %d live marker(s), none stale (stale_threshold %gs); use force",
				path, live, stale);
	return fl__errf(NULL, -ENOENT, "%s: no marker to break", path);
}

/* ---- mixed deployments ------------------------------------------------------ */

/* A marker at (dfd, name) whose mtime is within `stale` of the wall clock
 * (in the future counts too). */
static int srw_fresh(int dfd, const char *name, double stale)
{
	struct stat st;

	return srw_lstat(dfd, name, &st) == 0 && S_ISREG(st.st_mode) &&
	       fl__now_wall() - fl__mtime(&st) <= stale;
}

int fl__srw_legacy_live(const char *path, double stale, char *what, size_t cap)
{
	struct srw_paths p;
	int found = 0, dfd;

	if (srw_paths(path, &p) != 0)
		return 0;
	if (srw_fresh(AT_FDCWD, p.write, stale)) {
		snprintf(what, cap, "%s", p.write);
		return 1;
	}
	dfd = fl__sys.open(p.readers, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0) {
		size_t n;
		char **names = srw_list(dfd, &n);

		for (size_t i = 0; i < n && !found; i++) {
			if (!srw_housekeeping(names[i]) && srw_fresh(dfd, names[i], stale)) {
				snprintf(what, cap, "%s/%s", p.readers, names[i]);
				found = 1;
			}
		}
		srw_free_list(names, n);
		fl__sys.close(dfd);
	}
	return found;
}

/* Our claim is published: refuse when a filelock-rw/1 participant is on the
 * same path (it does not see us, nor we it).  0 or the error. */
static int srw_refuse_mixed(struct fl_lock *lk)
{
	char other[4300];

	if (!fl__srwl_live(lk->path, lk->opt.stale_threshold, other, sizeof(other)))
		return 0;
	return fl__errf(lk, -EPROTO,
			"%s: %s belongs to a live participant of the filelock-rw/1 soft-rw "
			"protocol (Python filelock 4 or this library's default), which does not "
			"see this legacy protocol; use one protocol on this path: drop the "
			"legacy setting (protocol option, filelock --soft-rw-protocol=rw1) once "
			"no peer older than filelock 4 remains, or stop the other participants",
			lk->path, other);
}

const struct fl_backend fl__backend_softrw = {
	.version = 1,
	.name = "soft-rw",
	.kind = FL_SOFT_RW,
	.caps = FL__CAP_SHARED | FL__CAP_RW | FL__CAP_SINGLETON,
	.hold_size = sizeof(struct srw_hold),
	.default_poll = 0.25,
	.setup = srw_setup,
	.attempt = srw_attempt,
	.wait = srw_wait,
	.release = srw_release,
	.drop = srw_drop,
	.teardown = srw_teardown,
	.inspect = srw_inspect,
	.brk = srw_brk,
	.abandon = srw_abandon,
	.adopt = srw_adopt,
};
