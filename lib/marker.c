/* SPDX-License-Identifier: MIT */
/*
 * marker.c -- the marker primitives every marker kind shares: opening a
 * record with its parents made once (fl__open_mkdir), creating a marker,
 * safe bounded reads (fl__record_read, fl__marker_read), parsing protocol-1
 * records and the UTF-8 check, the judgement "never destroy what is not a
 * marker" (FL__MALFORMED_AGE), breaking by rename under the break claim,
 * the identity-checked unlink, and the wait for a marker's removal.
 *
 * Markers are written by other processes, other hosts and other programs
 * (Python's filelock), so everything here treats their bytes as untrusted:
 * reads never follow symlinks and never block on FIFOs, are capped at 1025
 * bytes, and a parse failure is "malformed", never a crash.  Every record
 * another host may rename over or remove (markers, claims, soft-rw records,
 * the shim's owner files) is read through fl__record_read, which answers
 * NFS's ESTALE (the file was replaced or removed under our open) by opening
 * the name again, three opens at most: the race, never "corrupt" or "gone".
 * Every such read, and every exclusive create of a marker, also notes how
 * long it took: one of FL__STALL seconds or more was a stall of the file
 * server or its client, which the ledger (ledger.c) does not count as a
 * holder's silence.  A stale marker is
 * broken under the break claim "<path>.break" (fl__break_file).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "escape.h"
#include "fl-internal.h"

const char fl__strict_sentinel[] = "1\nfilelock-strict-v1\0\n0\n";

static atomic_ulong estale_retries;

/* CLOCK_MONOTONIC (as bits of a double) at which the last stall ended. */
static _Atomic double stall_end;

void fl__note_io(double t0)
{
	double now = fl__now_mono();

	if (now - t0 >= FL__STALL) {
		double old = atomic_load(&stall_end);
		while (old < now && !atomic_compare_exchange_weak(&stall_end, &old, now))
			;
	}
}

double fl__stall_end(void)
{
	return atomic_load(&stall_end);
}

unsigned long fl__estale_retries(void)
{
	return atomic_load(&estale_retries);
}

/* One try of fl__record_read(). */
static int record_read_once(int dirfd, const char *name, char *buf, size_t cap, size_t *len,
			    struct stat *st, int *fdp)
{
	int fd, r = 0;

	*len = 0;
	fd = fl__sys.openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fl__sys.fstat(fd, st) != 0)
		r = -errno;
	else if (S_ISREG(st->st_mode))
		r = fl__read_all(fd, buf, cap, len);
	if (r != 0) {
		*len = 0;
		fl__sys.close(fd);
		return r;
	}
	if (fdp)
		*fdp = fd;
	else
		fl__sys.close(fd);
	return 0;
}

int fl__record_read(int dirfd, const char *name, char *buf, size_t cap, size_t *len,
		    struct stat *st, int *fdp)
{
	double t0 = fl__now_mono();
	int r, tries = 0;

	/* ESTALE: between our lookup of the name and the open, the fstat or a
	 * read, another NFS client replaced or removed the file, and the server
	 * forgot the handle.  Opening the name again finds what is there now. */
	while ((r = record_read_once(dirfd, name, buf, cap, len, st, fdp)) == -ESTALE &&
	       ++tries < FL__ESTALE_TRIES)
		atomic_fetch_add(&estale_retries, 1);
	fl__note_io(t0);
	return r;
}

int fl__marker_read(int dirfd, const char *path, struct fl_marker *m)
{
	double t0 = fl__now_mono();
	struct stat st;
	size_t got = 0;
	int r, e;

	memset(m, 0, offsetof(struct fl_marker, buf));
	m->buf[0] = '\0';
	r = fl__sys.fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW);
	e = errno;
	fl__note_io(t0);
	if (r != 0)
		return e == ENOENT ? 0 : -e;
	m->exists = 1;
	m->mtime = fl__mtime(&st);
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->st_mode = st.st_mode;
	if (!S_ISREG(st.st_mode)) {
		m->malformed = 1;
		return 0;
	}
	r = fl__record_read(dirfd, path, m->buf, FL__MARKER_MAX + 1, &got, &st, NULL);
	if (r == -ENOENT) {
		m->exists = 0;
		return 0;
	}
	if (r == -ELOOP) { /* a symlink swapped in after the lstat */
		m->malformed = 1;
		return 0;
	}
	if (r < 0)
		return r;
	m->mtime = fl__mtime(&st);
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->st_mode = st.st_mode;
	if (!S_ISREG(st.st_mode)) {
		m->malformed = 1;
		return 0;
	}
	m->regular = 1;
	m->len = got;
	m->buf[got] = '\0';
	if (got > FL__MARKER_MAX)
		m->malformed = 1;
	return 0;
}

const char *fl__marker_foreign(const struct fl_marker *m, int parsed, double age)
{
	if (!m->exists)
		return NULL;
	if (S_ISDIR(m->st_mode))
		return "a directory";
	if (S_ISLNK(m->st_mode))
		return "a symbolic link";
	if (!m->regular)
		return "not a regular file";
	if (m->len > FL__MARKER_MAX)
		return "larger than any lock marker (a data file?)";
	if (parsed || m->len == 0 || age < FL__MALFORMED_AGE)
		return NULL; /* a marker, or one being written */
	return "not a lock record (a data file?)";
}

int fl__marker_refuse(const struct fl_lock *lk, const char *path, const char *kind,
		      const char *why, int brk)
{
	if (brk)
		return fl__errf(lk, -EEXIST,
				"%s: %s, not a %s lock marker: not broken, even with force", path,
				why, kind);
	return fl__errf(lk, -EEXIST,
			"%s: exists and is %s, not a %s lock marker; it is left alone: lock a "
			"separate path such as %s.lock",
			path, why, kind, path);
}

int fl__p1_format(char *buf, size_t len)
{
	char host[256];
	const char *tok = fl__self_token();
	int r = fl__hostname(host, sizeof(host));
	int n;

	if (r != 0)
		return r;
	if (tok[0])
		n = snprintf(buf, len, "%d\n%s\n%s\n", (int)fl__pid(), host, tok);
	else
		n = snprintf(buf, len, "%d\n%s\n", (int)fl__pid(), host);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

/* Python str.strip()/splitlines() on ASCII: these count as whitespace / breaks. */
static int fl__py_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int fl__py_linebreak(unsigned char c)
{
	return c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e);
}

/* Strict UTF-8 validation (Python's decoder rejects overlongs and surrogates). */
int fl__utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0, k; i < n; i += k)
		if ((k = fl__utf8_len(s + i, n - i, NULL)) == 0)
			return 0;
	return 1;
}

int fl__p1_parse(const char *buf, size_t len, struct fl_p1 *out)
{
	const char *s = buf, *e = buf + len;
	const char *line[4];
	size_t llen[4];
	int nl = 0;
	long long pid;

	/* Python 4: every writer ends the record with "\n"; one cut before it
	 * was torn by a crash or read mid-write. */
	if (len == 0 || len > FL__MARKER_MAX || buf[len - 1] != '\n' ||
	    !fl__utf8_valid((const unsigned char *)buf, len))
		return -EBADMSG;
	while (s < e && fl__py_space((unsigned char)*s))
		s++;
	while (e > s && fl__py_space((unsigned char)e[-1]))
		e--;
	if (s == e)
		return -EBADMSG;
	while (s <= e) {
		const char *p = s;
		while (p < e && !fl__py_linebreak((unsigned char)*p))
			p++;
		if (nl == 3)
			return -EBADMSG;
		line[nl] = s;
		llen[nl] = (size_t)(p - s);
		nl++;
		if (p >= e)
			break;
		/* \r\n is one break */
		if (*p == '\r' && p + 1 < e && p[1] == '\n')
			p++;
		s = p + 1;
	}
	if (nl != 2 && nl != 3)
		return -EBADMSG;
	/* Python 4's parse_decimal: ASCII digits only (no sign, no spaces). */
	if (llen[0] == 0 || llen[0] > 18 || strspn(line[0], "0123456789") < llen[0] ||
	    fl__parse_ll(line[0], llen[0], &pid) != 0 || pid < 1 || pid > 2147483647LL)
		return -EBADMSG;
	if (llen[1] >= sizeof(out->host))
		return -EBADMSG;
	out->pid = (pid_t)pid;
	memcpy(out->host, line[1], llen[1]);
	out->host[llen[1]] = '\0';
	out->token[0] = '\0';
	if (nl == 3) {
		size_t b = llen[2];
		const char *t = line[2];
		if (b == 0 || b >= sizeof(out->token))
			return -EBADMSG;
		for (size_t i = 0; i < b; i++)
			if (t[i] < '0' || t[i] > '9')
				return -EBADMSG;
		memcpy(out->token, t, b);
		out->token[b] = '\0';
	}
	return 0;
}

/* now is still the node judged as before (see fl__break_file). */
static int marker_unchanged(const struct fl_marker *before, const struct fl_marker *now)
{
	return now->exists && now->ino == before->ino && !(now->mtime > before->mtime) &&
	       now->len == before->len && memcmp(now->buf, before->buf, now->len) == 0;
}

/*
 * The break claim "<path>.break".  Renaming by name is not conditional: a
 * breaker that judged a dead holder's marker M1 stale and renames "path"
 * renames whatever is there by then.  When two contenders judged M1 stale
 * at once, the faster one broke it and took the lock with M2; the slower
 * one then renamed M2, the live holder's marker, aside, and while it put it
 * back a third process created M3: two holders.  So a breaker first creates
 * the claim with O_EXCL, and only then looks at the marker again and
 * renames it: breaks of one path never interleave, and the marker a breaker
 * saw unchanged under its claim can only have been replaced since by
 * someone who removes markers without the claim (the marker's own holder,
 * Python's breakers).  A busy claim is contention (-EBUSY).  The claim
 * holds our protocol-1 record; one left by a breaker that died (same host:
 * its pid is gone) or that has stayed unchanged for FL__BREAK_CLAIM_AGE
 * (any host, judged by the ledger: our monotonic clock, or the file
 * server's on a first sight) is removed and taken.  The one interleaving
 * left: a breaker that stops (SIGSTOP, swap) for over 5 s between its
 * re-read and its rename while another takes the claim over.  Claims live
 * for a few calls, so this is far rarer than the race the claim closes.
 * What is there but is not a regular file holding such a record (a FIFO, a
 * symlink, somebody's data) is not a claim of ours: it is neither honoured
 * nor removed, and the break goes on without one (as it does when a stale
 * claim sits in a sticky directory we may not clean).  An empty file is a
 * claim not written yet: honoured, and removed only after the silence.
 */
#define FL__BREAK_CLAIM_AGE 5.0

/* Takes the break claim for path into *fdp and *id.  0 taken, 1 cannot be taken
 * here (a stale claim we may not remove: break without it, as before), or
 * -EBUSY (another breaker holds it), -EAGAIN or another -errno. */
static int break_claim_take(const char *claim, int *fdp, struct stat *id)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	char rec[512];
	int tries = 0;

	for (;;) {
		struct fl_marker c;
		struct fl_p1 p1;
		int fd = fl__sys.open(claim, flags, 0644), n, stale, is_rec;

		if (fd >= 0) {
			n = fl__p1_format(rec, sizeof(rec));
			if (n < 0 || fl__write_all(fd, rec, (size_t)n) != 0 ||
			    fl__sys.fstat(fd, id) != 0) {
				struct stat st;
				if (fl__sys.fstat(fd, &st) == 0)
					fl__unlink_if_same(AT_FDCWD, claim, st.st_dev, st.st_ino);
				fl__sys.close(fd);
				return -EAGAIN;
			}
			*fdp = fd;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EEXIST)
			return -errno;
		if (++tries > 3 || fl__marker_read(AT_FDCWD, claim, &c) != 0)
			return -EBUSY;
		if (!c.exists)
			continue;
		if (!c.regular)
			return 1; /* not a claim of ours: nothing to honour or remove */
		is_rec = !c.malformed && fl__p1_parse(c.buf, c.len, &p1) == 0;
		if (!is_rec && c.len > 0)
			return 1; /* data, not a claim: never honoured nor removed */
		/* An empty file is a claim whose breaker has not written it yet
		 * (or died before it did): it is removed only after the silence. */
		stale = is_rec && fl__owner_is_stale(p1.pid, p1.host, p1.token);
		if (!stale) {
			struct fl_seen seen = { c.dev, c.ino, c.mtime, (long long)c.len,
						fl__seen_tag(c.buf, c.len) };
			stale = fl__ledger_silent(claim, AT_FDCWD, claim, &seen) >=
				FL__BREAK_CLAIM_AGE;
		}
		if (!stale)
			return -EBUSY;
		fl__ledger_forget(claim);
		n = fl__unlink_if_same(AT_FDCWD, claim, c.dev, c.ino);
		if (n == -EPERM || n == -EACCES)
			return 1; /* a sticky directory: another user's leftover */
	}
}

static void break_claim_drop(const char *claim, int fd, const struct stat *id)
{
	fl__unlink_if_same(AT_FDCWD, claim, id->st_dev, id->st_ino);
	fl__sys.close(fd);
}

/* The break itself, under the claim. */
static int break_file_claimed(const char *path, const struct fl_marker *before)
{
	char brk[4096 + 64], hex[33];
	struct fl_marker now;
	struct stat st;

	/* Judging may have taken a while (a /proc scan, a probe) and happened
	 * before the claim: look again now, so that what is renamed is what
	 * was judged unless someone outside the claim replaced it since. */
	if (before->regular) {
		int r = fl__marker_read(AT_FDCWD, path, &now);
		if (r != 0)
			return r;
		if (!now.exists)
			return -ENOENT;
		if (!marker_unchanged(before, &now))
			return -EAGAIN;
	}

	fl__random_hex(hex);
	if ((size_t)snprintf(brk, sizeof(brk), "%s.break.%d.%s", path, (int)fl__pid(), hex) >=
	    sizeof(brk))
		return -ENAMETOOLONG;
	if (fl__sys.rename(path, brk) != 0)
		return -errno;
	if (fl__sys.lstat(brk, &st) != 0)
		return 0;
	if (fl__mtime(&st) > before->mtime || st.st_ino != before->ino ||
	    (before->regular && S_ISREG(st.st_mode) &&
	     (fl__marker_read(AT_FDCWD, brk, &now) != 0 || !marker_unchanged(before, &now)))) {
		/* A live marker (its holder released and a fresh one took the
		 * path, or a Python peer broke the stale one first, both
		 * outside the claim): put it back without replacing anything,
		 * or its holder would go on holding while the path is free for
		 * a third process.  Python 3.32.3 leaves it aside; the window
		 * left is the few calls between our rename and this link. */
		if (fl__sys.link(brk, path) == 0)
			fl__sys.unlink(brk);
		return -EAGAIN;
	}
	if (fl__sys.unlink(brk) != 0)
		return -errno;
	return 0;
}

int fl__break_file(const char *path, const struct fl_marker *before)
{
	char claim[4096 + 8];
	struct stat id;
	int fd = -1, r;

	if ((size_t)snprintf(claim, sizeof(claim), "%s.break", path) >= sizeof(claim))
		return -ENAMETOOLONG;
	r = break_claim_take(claim, &fd, &id);
	if (r < 0)
		return r;
	r = break_file_claimed(path, before);
	if (fd >= 0)
		break_claim_drop(claim, fd, &id);
	return r;
}

int fl__unlink_if_same(int dirfd, const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	/* An NFS ESTALE from the lookup is an I/O failure, not the "not ours"
	 * answer (-ESTALE) that lets a caller forget the marker. */
	if (fl__sys.fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ESTALE ? -EIO : -errno;
	if (st.st_dev != dev || st.st_ino != ino)
		return -ESTALE;
	if (fl__sys.unlinkat(dirfd, path, 0) != 0)
		return -errno;
	return 0;
}

/*
 * Sleeps until `until` (CLOCK_MONOTONIC) or until inotify reports that an
 * entry of `dir` was removed or renamed away: the entry `name`, or any
 * entry not starting with '.' when name is NULL.  `busy(arg)`, when given,
 * runs once the watch is in place; if it returns 0 the wait ends at once
 * (what we wait for may have gone between the caller's attempt and the
 * watch).  Removals by other NFS clients produce no event: then this is a
 * plain sleep, as polling would be.  Used by the soft, lease, strict and
 * soft-rw kinds.  The thread's cached inotify instance is used (wait.c).
 */
void fl__wait_removal(const char *dir, const char *name, int (*busy)(void *), void *arg,
		      double until)
{
	const uint32_t mask = IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF;
	int ifd = fl__inotify_get(), wd = -1;

	if (ifd < 0 || (wd = fl__inotify_watch(ifd, dir, mask)) < 0) {
		fl__wait_sleep_until(until);
		return;
	}
	if (busy == NULL || busy(arg))
		fl__inotify_poll(ifd, wd, until, name);
	fl__inotify_unwatch(ifd, wd);
}

int fl__path_exists(void *path)
{
	struct stat st;

	return fl__sys.lstat(path, &st) == 0;
}

int fl__open_mkdir(const struct fl_lock *lk, const char *path, int flags, mode_t perm,
		   int *recorded)
{
	int tried_mkdir = 0;

	*recorded = 0;
	for (;;) {
		double t0 = fl__now_mono();
		int fd = fl__sys.open(path, flags, perm);
		int e = errno;

		fl__note_io(t0); /* a contender's create sits through a stall too */
		if (fd >= 0)
			return fd;
		if (e == EINTR)
			continue;
		if (e == ENOENT && (flags & O_CREAT) && !tried_mkdir) {
			int r = fl__mkdir_p(lk);
			tried_mkdir = 1;
			if (r != 0) {
				*recorded = 1;
				return r;
			}
			continue;
		}
		return -e;
	}
}

int fl__marker_create(const struct fl_lock *lk, int *out)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	mode_t perm = lk->opt.mode == -1 ? 0666 : (mode_t)lk->opt.mode;
	struct stat st;
	int recorded, fd = fl__open_mkdir(lk, lk->path, flags, perm, &recorded);

	if (fd >= 0) {
		*out = fd;
		return 0;
	}
	if (recorded)
		return fd;
	if (fd != -EEXIST)
		return fl__err(lk, fd, "open", lk->path);
	/* Python's writability check, done only now that the path is taken:
	 * a read-only file or a directory can never become our marker. */
	if (fl__sys.lstat(lk->path, &st) != 0)
		return -EEXIST;
	if (!(st.st_mode & S_IWUSR))
		return fl__errf(lk, -EACCES, "%s: Permission denied (the lock file is read-only)",
				lk->path);
	if (S_ISDIR(st.st_mode))
		return fl__errf(lk, -EISDIR, "%s: Is a directory", lk->path);
	return -EEXIST;
}
