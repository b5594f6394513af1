/* SPDX-License-Identifier: MIT */
/*
 * backend-lease.c -- the `lease` kind: an O_EXCL marker holding a
 * protocol-2 record, kept fresh by the process-wide heartbeat (Python's
 * SoftFileLease), byte-compatible with it.
 *
 * Protocol.  Holding the lease means having created P with
 * open(O_WRONLY|O_CREAT|O_EXCL|O_TRUNC|O_NOFOLLOW|O_CLOEXEC) and written
 *
 *     filelock/2\npid=<pid>\nhost=<host>\nmode=lease\ntoken=<32 hex>\n
 *     duration=<lease_duration as Python's repr()>\nstart=<start token>\n
 *
 * (start= is left out when the platform has no start token).  The duration
 * is printed the way Python's repr(float) prints it, "30.0", "0.6", "1e-05",
 * so a Python peer reads back the exact value it compares with its own.
 * The descriptor stays open for the whole hold.
 *
 * Heartbeat.  Every heartbeat_interval (default lease_duration / 3) the
 * process's heartbeat thread lstat()s P: gone -> FL_COMPROMISE_MISSING,
 * another inode -> FL_COMPROMISE_REPLACED (someone took our expired lease);
 * otherwise futimens() on our descriptor (never on the path, so a swapped-in
 * file is never refreshed).  Errors are transient (ESTALE, EIO on NFS) until
 * lease_duration - heartbeat_interval has passed since the last successful
 * refresh, a margin before a peer may take the lease (Python's rule), then
 * FL_COMPROMISE_REFRESH_FAILED.  A compromise
 * runs on_compromise on the heartbeat thread and makes fl_is_valid() false;
 * the holder is not otherwise stopped: a lease trades mutual exclusion for
 * progress, and a frozen holder that wakes up after its lease expired may
 * overlap its successor until it notices.  Use strict when that matters.
 *
 * Contention.  On EEXIST the contender reads P safely and decides:
 *  - not a protocol-2 record: the soft kind's rules: the strict sentinel is
 *    never broken, a protocol-1 owner only when provably dead on this host,
 *    an empty marker only when it stayed unchanged for 2 s; what cannot be
 *    a marker (a directory, symlink, FIFO, a file over 1024 bytes, or one
 *    still unparsable after 2 s unchanged) is never broken: the acquire
 *    fails with -EEXIST naming it, and fl_break refuses it even forced
 *    (Python evicts any of these; a data file at the path was deleted);
 *  - a protocol-2 owner whose mode is not "lease": never broken;
 *  - a lease with another duration: -EINVAL, "lease settings mismatch"
 *    (every contender for a path must agree on lease_duration);
 *  - the owner provably dead or its pid recycled (this host): broken now;
 *  - otherwise the lease expires only when P (same inode, same mtime) is
 *    known to have stayed unchanged for lease_duration: watched on *our*
 *    monotonic clock, or, the first time this process sees that inode,
 *    told by the file server's clock (ledger.c: a probe file's mtime
 *    against P's, both stamped by the server, minus a granularity margin).
 *    Python compares its wall clock with the mtime, so a skewed client or
 *    server can make it evict a live holder or never evict a dead one; our
 *    rule never compares two clocks and stays wire-compatible (our holders
 *    heartbeat exactly like Python's).  Time in which our own reads of the
 *    server stalled (0.5 s or more) does not count: the holder could not
 *    refresh either (ledger.c).  What was seen is kept per process
 *    (ledger.c), shared by every handle, so a contender that tries once per
 *    handle or once per process (filelock -n in a retry loop) recovers a
 *    crashed holder's lease within lease_duration plus about a second.
 * Breaking (fl__break_file, marker.c): take the break claim "P.break"
 * (O_EXCL), read P again and go on only if it is still the marker judged
 * (inode, mtime, bytes), rename it aside, re-verify, unlink, drop the
 * claim.  Breaks of P by our processes never interleave (short of a
 * breaker that stops for over 5 s holding the claim), so a contender
 * that judged a dead holder's marker stale together with another never
 * renames the winner's fresh marker away (the SIGKILL storm showed 0-1
 * such overlaps per 8 s before the claim).  A busy claim is contention; a
 * claim left by a breaker that died is taken over once its pid is gone
 * (same host) or it stayed unchanged for 5 s.
 *
 * Mixed fleets.  Python (3.32.3 and 4) breaks without the claim: its rename
 * can still take a fresh marker of ours (or of another Python process) aside
 * after a break of ours, or of its own, replaced the stale one.  3.32.3
 * then leaves the live marker aside: its holder's next heartbeat reports it
 * missing or replaced (fl_is_valid() false) while the Python breaker
 * holds; Python 4 links it back.  So with Python contenders, two
 * holders at once stay possible in that race, as among Python processes
 * alone; among our processes, only a holder that itself outlived its
 * lease (frozen past lease_duration) can overlap its successor.
 *
 * Waiting.  Between attempts a waiter sleeps on inotify for the marker's
 * removal (a release on this host wakes it at once), else for an adaptive
 * step (holders on other NFS clients produce no event): 1 ms after the
 * marker was seen to change (a new holder, who may be brief), doubling up
 * to the poll interval while it does not (fl__adapt_until, wait.c), so the
 * median cross-host hand-off stays under half the interval.
 *
 * Fork.  The child never unlinks the parent's marker and never heartbeats
 * it: the front end routes it through lease_drop, which closes the
 * descriptor, and the heartbeat registry is empty in a child.
 * Adoption (fl__adopt, for the preload shim): a process that holds the
 * lease through an open file description it inherited (a new image after
 * execve; a fork child, which the shim has adopt it in fork's child handler)
 * opens the marker, checks it is the one expected and a lease record,
 * touches it and beats it from then on (while the taker lives, both do).  A holder pid that
 * is dead does not make such a lease stale while the shim sees the
 * description still open (fl__soft_pinned, as for soft); it then expires by
 * its mtime like any lease.
 *
 * Downsides.  Mixing lease and soft on one path does not exclude (each sees
 * the other's record as foreign).  A holder that stops refreshing for
 * longer than lease_duration (SIGSTOP, swap storm, NFS outage) loses the
 * lease while it may still be using what it protects.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl-internal.h"

#define LEASE_DEFAULT_DURATION 30.0

/* Per-hold data. */
struct lease_hold {
	struct fl_hb hb; /* first: the heartbeat hands us back this pointer */
	char token[33];
};

/* A parsed protocol-2 record. */
struct lease_p2 {
	pid_t pid;
	char host[256];
	int is_lease; /* mode=lease; any other mode is a live owner we never expire */
	char mode[32];
	char token[64];
	int have_token;
	double duration;
	int have_duration;
	char start[96];
};

/*
 * Python's repr(float): the shortest digit string that reads back to the
 * same double, in positional notation with at least one fractional digit
 * ("30.0", "0.6") when the decimal exponent is in [-4, 16), otherwise in
 * scientific notation with a signed two-digit-minimum exponent ("1e-05").
 */
int fl__py_float_repr(double v, char *buf, size_t cap)
{
	char e[40], digits[24];
	int prec, exp10, nd = 0, n;
	const char *p;
	char *end;

	if (isnan(v))
		return snprintf(buf, cap, "nan");
	if (isinf(v))
		return snprintf(buf, cap, v < 0 ? "-inf" : "inf");
	for (prec = 0; prec < 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	/* e is "[-]d[.ddd]e[+-]XX". */
	p = e;
	if (*p == '-')
		p++;
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	digits[nd] = '\0';
	exp10 = (int)strtol(p + 1, &end, 10);
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	if (v == 0)
		exp10 = 0;
	if (exp10 < -4 || exp10 >= 16) {
		if (nd == 1)
			n = snprintf(buf, cap, "%s%ce%c%02d", v < 0 ? "-" : "", digits[0],
				     exp10 < 0 ? '-' : '+', abs(exp10));
		else
			n = snprintf(buf, cap, "%s%c.%se%c%02d", v < 0 ? "-" : "", digits[0],
				     digits + 1, exp10 < 0 ? '-' : '+', abs(exp10));
		return n;
	}
	{
		char out[64];
		size_t o = 0;
		int point = exp10 + 1; /* digits before the decimal point */

		if (v < 0 || (v == 0 && signbit(v)))
			out[o++] = '-';
		if (point <= 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int i = 0; i < -point; i++)
				out[o++] = '0';
			memcpy(out + o, digits, (size_t)nd);
			o += (size_t)nd;
		} else {
			for (int i = 0; i < point; i++)
				out[o++] = i < nd ? digits[i] : '0';
			out[o++] = '.';
			if (nd > point) {
				memcpy(out + o, digits + point, (size_t)(nd - point));
				o += (size_t)(nd - point);
			} else {
				out[o++] = '0';
			}
		}
		out[o] = '\0';
		return snprintf(buf, cap, "%s", out);
	}
}

/* Python str.strip() / splitlines() on ASCII. */
static int lease_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int lease_linebreak(unsigned char c)
{
	return c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e);
}

static void lease_trim(const char **s, size_t *n)
{
	while (*n > 0 && lease_space((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && lease_space((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* Python int() on a decimal string, kept as normalised text (may be huge). */
static int lease_parse_bigint(const char *s, size_t n, char *out, size_t cap)
{
	size_t i = 0;

	lease_trim(&s, &n);
	if (n > 0 && s[0] == '+') {
		s++;
		n--;
	}
	if (n == 0 || n >= cap)
		return -EBADMSG;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Python float() on a string: decimal, inf or nan; hex floats refused. */
static int lease_parse_float(const char *s, size_t n, double *out)
{
	char tmp[64], *end;

	lease_trim(&s, &n);
	if (n == 0 || n >= sizeof(tmp) || memchr(s, 'x', n) || memchr(s, 'X', n))
		return -EBADMSG;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtod(tmp, &end);
	return *end == '\0' ? 0 : -EBADMSG;
}

/* Python's parse_marker() + _build_record().  0 or -EBADMSG. */
static int lease_p2_parse(const char *buf, size_t len, struct lease_p2 *r)
{
	const char *s = buf, *e = buf + len;
	int first = 1, have_mode = 0, have_pid = 0, have_host = 0, have_start = 0;
	const char *pid_s = NULL, *dur_s = NULL;
	size_t pid_n = 0, dur_n = 0;

	memset(r, 0, sizeof(*r));
	if (!fl__utf8_valid((const unsigned char *)buf, len))
		return -EBADMSG; /* Python cannot decode it either: malformed */
	while (s < e && lease_space((unsigned char)*s))
		s++;
	while (e > s && lease_space((unsigned char)e[-1]))
		e--;
	if (s == e)
		return -EBADMSG;
	while (s < e || first) {
		const char *p = s, *eq;
		size_t n;

		while (p < e && !lease_linebreak((unsigned char)*p))
			p++;
		n = (size_t)(p - s);
		if (first) {
			if (n != 10 || memcmp(s, "filelock/2", 10) != 0)
				return -EBADMSG;
			first = 0;
		} else {
			eq = memchr(s, '=', n);
			if (eq == NULL)
				return -EBADMSG;
			size_t kn = (size_t)(eq - s), vn = n - kn - 1;
			const char *v = eq + 1;
#define KEY(k) (kn == sizeof(k) - 1 && memcmp(s, k, kn) == 0)
			if (KEY("mode")) {
				if (vn >= sizeof(r->mode))
					vn = sizeof(r->mode) - 1;
				memcpy(r->mode, v, vn);
				r->mode[vn] = '\0';
				have_mode = 1;
			} else if (KEY("host")) {
				if (vn >= sizeof(r->host))
					return -EBADMSG;
				memcpy(r->host, v, vn);
				r->host[vn] = '\0';
				have_host = vn > 0;
			} else if (KEY("pid")) {
				pid_s = v;
				pid_n = vn;
				have_pid = 1;
			} else if (KEY("duration")) {
				dur_s = v;
				dur_n = vn;
			} else if (KEY("start")) {
				if (lease_parse_bigint(v, vn, r->start, sizeof(r->start)) != 0)
					return -EBADMSG;
				have_start = 1;
			} else if (KEY("token")) {
				if (vn >= sizeof(r->token))
					return -EBADMSG;
				memcpy(r->token, v, vn);
				r->token[vn] = '\0';
				r->have_token = 1;
			}
#undef KEY
		}
		if (p >= e)
			break;
		if (*p == '\r' && p + 1 < e && p[1] == '\n')
			p++;
		s = p + 1;
	}
	(void)have_start;
	if (!have_mode || !have_host || !have_pid)
		return -EBADMSG;
	r->is_lease = strcmp(r->mode, "lease") == 0;
	{
		long long pid;
		if (fl__parse_ll(pid_s, pid_n, &pid) != 0 || pid < 1 || pid > 2147483647LL)
			return -EBADMSG;
		r->pid = (pid_t)pid;
	}
	if (dur_s != NULL) {
		if (lease_parse_float(dur_s, dur_n, &r->duration) != 0)
			return -EBADMSG;
		r->have_duration = 1;
	}
	if (r->is_lease &&
	    (!r->have_token || !r->have_duration || !isfinite(r->duration) || r->duration <= 0))
		return -EBADMSG;
	return 0;
}

/* The protocol-2 parser for fuzzing and tests.  0 or -EBADMSG. */
int fl__p2_parse(const char *buf, size_t len, pid_t *pid, int *is_lease, double *duration)
{
	struct lease_p2 r;
	int e = lease_p2_parse(buf, len, &r);

	if (e == 0) {
		*pid = r.pid;
		*is_lease = r.is_lease;
		*duration = r.have_duration ? r.duration : NAN;
	}
	return e;
}

/* Formats our record.  Returns its length or -errno. */
static int lease_format(const struct fl_lock *lk, const char *token, char *buf, size_t cap)
{
	char host[256], dur[40];
	const char *start = fl__self_token();
	int n, r = fl__hostname(host, sizeof(host));

	if (r != 0)
		return r;
	fl__py_float_repr(lk->opt.lease_duration, dur, sizeof(dur));
	n = snprintf(buf, cap,
		     "filelock/2\npid=%d\nhost=%s\nmode=lease\ntoken=%s\nduration=%s\n%s%s%s",
		     (int)fl__pid(), host, token, dur, start[0] ? "start=" : "", start,
		     start[0] ? "\n" : "");
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

static int lease_is_sentinel(const struct fl_marker *m)
{
	return m->regular && m->len == FL__STRICT_SENTINEL_LEN &&
	       memcmp(m->buf, fl__strict_sentinel, FL__STRICT_SENTINEL_LEN) == 0;
}

/* How long the marker m is known to have stayed unchanged (ledger.c).  Its
 * bytes count too: a released marker's inode is handed to the next holder's
 * at once on most filesystems, and an mtime stamped from the kernel's coarse
 * clock can repeat within one tick, so identity and mtime alone took a new
 * holder's marker for the old one, silent since we first saw it. */
static double lease_unchanged_for(struct fl_lock *lk, const struct fl_marker *m)
{
	struct fl_seen seen = { m->dev, m->ino, m->mtime, (long long)m->len,
				fl__seen_tag(m->buf, m->len) };

	return fl__ledger_silent(lk->path, AT_FDCWD, lk->path, &seen);
}

#define LEASE_WAIT  0 /* contention: leave it */
#define LEASE_BREAK 1 /* stale: break it      */
#define LEASE_GONE  2 /* nothing there now: retry */

/* Decides what to do about the marker in the way.  LEASE_* or -errno. */
static int lease_judge(struct fl_lock *lk, struct fl_marker *m)
{
	struct lease_p2 p2;
	struct fl_p1 p1;

	if (fl__marker_read(AT_FDCWD, lk->path, m) != 0)
		return LEASE_WAIT; /* unreadable: contention, as Python suppresses it */
	if (!m->exists)
		return LEASE_GONE;
	if (lease_is_sentinel(m))
		return LEASE_WAIT;
	if (!m->malformed && lease_p2_parse(m->buf, m->len, &p2) == 0) {
		if (!p2.is_lease)
			return LEASE_WAIT;
		if (p2.duration != lk->opt.lease_duration) {
			char theirs[40], ours[40];
			fl__py_float_repr(p2.duration, theirs, sizeof(theirs));
			fl__py_float_repr(lk->opt.lease_duration, ours, sizeof(ours));
			return fl__errf(lk, -EINVAL,
					"lease settings mismatch: %s holds a lease of %ss but this "
					"contender configured %ss; every contender for a path must "
					"agree on lease_duration",
					lk->path, theirs, ours);
		}
		/* The preload shim's locks belong to open file descriptions,
		 * which can outlive the process that took them (fork, then the
		 * taker exits); whoever keeps the description adopts the lease
		 * and beats it, so it also expires by the rule below. */
		if (fl__owner_is_stale(p2.pid, p2.host, p2.start) &&
		    !(fl__soft_pinned && fl__soft_pinned(lk->path)))
			return LEASE_BREAK;
		return lease_unchanged_for(lk, m) >= lk->opt.lease_duration ? LEASE_BREAK
									    : LEASE_WAIT;
	}
	if (m->malformed || fl__p1_parse(m->buf, m->len, &p1) != 0) {
		double unchanged = lease_unchanged_for(lk, m);
		const char *why = fl__marker_foreign(m, 0, unchanged);

		if (why)
			return fl__marker_refuse(lk, lk->path, "lease", why, 0);
		return unchanged >= FL__MALFORMED_AGE ? LEASE_BREAK : LEASE_WAIT;
	}
	return fl__owner_is_stale(p1.pid, p1.host, p1.token) ? LEASE_BREAK : LEASE_WAIT;
}

/* One heartbeat: runs on the heartbeat thread. */
static int lease_beat(struct fl_hb *hb)
{
	struct fl_hold *h = hb->h;
	struct stat st;

	if (fl__sys.lstat(h->lk->path, &st) != 0)
		return errno == ENOENT ? FL_COMPROMISE_MISSING : -errno;
	if (st.st_dev != h->dev || st.st_ino != h->ino)
		return FL_COMPROMISE_REPLACED;
	if (fl__sys.futimens(h->fd, NULL) != 0)
		return -errno;
	return 0;
}

/* The heartbeat of a lease held through h: refresh every heartbeat_interval,
 * valid for lease_duration.  Python gives up once lease_duration -
 * heartbeat_interval passed since the last success; the heartbeat counts
 * from the first failure, which comes one interval after that success.  A
 * quarter interval of slack keeps a beat that runs a hair early from
 * postponing the report by a whole interval. */
static void lease_hb_init(const struct fl_lock *lk, struct fl_hold *h, struct lease_hold *lh)
{
	lh->hb.interval = lk->opt.heartbeat_interval;
	lh->hb.valid_for = lk->opt.lease_duration;
	lh->hb.give_up = lk->opt.lease_duration - 2.25 * lk->opt.heartbeat_interval;
	if (lh->hb.give_up < 0)
		lh->hb.give_up = 0;
	lh->hb.beat = lease_beat;
	lh->hb.h = h;
}

static int lease_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	struct lease_hold *lh = (struct lease_hold *)h->priv;
	char rec[1024];
	struct stat st;
	int fd, n, r, broke = 0, gone = 0;

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
			r = lease_judge(lk, &m);
			if (r < 0)
				return r;
			if (r == LEASE_WAIT)
				return -EAGAIN;
			if (r == LEASE_GONE) {
				if (++gone > 3)
					return -EAGAIN;
				continue;
			}
			if (fl__break_file(lk->path, &m) != 0)
				return -EAGAIN;
			fl__ledger_forget(lk->path);
			broke = 1; /* one immediate retry after a successful break */
		}
	}
	memset(lh, 0, sizeof(*lh));
	fl__random_hex(lh->token);
	n = lease_format(lk, lh->token, rec, sizeof(rec));
	r = n < 0 ? n : fl__write_all(fd, rec, (size_t)n);
	if (r == 0 && fl__sys.fstat(fd, &st) != 0)
		r = -errno;
	if (r == 0) {
		h->fd = fd;
		h->dev = st.st_dev;
		h->ino = st.st_ino;
		lease_hb_init(lk, h, lh);
		r = fl__hb_add(&lh->hb);
		if (r != 0) {
			h->fd = -1;
			fl__errf(lk, r, "%s: cannot start the heartbeat thread", lk->path);
		}
	} else {
		fl__err(lk, r, "write", lk->path);
	}
	if (r != 0) {
		/* Roll back: never leave a half-written marker, never remove a successor's. */
		int have = fl__sys.fstat(fd, &st) == 0;
		fl__sys.close(fd);
		if (have)
			fl__unlink_if_same(AT_FDCWD, lk->path, st.st_dev, st.st_ino);
		return r;
	}
	return 0;
}

/* Takes over a lease this process holds through a description it inherited
 * (the shim after execve): the marker must be the one expected (dev/ino, or
 * any regular file with a lease record when 0/0); the heartbeat restarts on
 * a descriptor of ours.  -ESTALE: not there, or not that one. */
static int lease_adopt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, dev_t dev,
		       ino_t ino, pid_t taker)
{
	struct lease_hold *lh = (struct lease_hold *)h->priv;
	struct lease_p2 p2;
	struct fl_marker m;
	struct stat st;
	int fd, r;

	(void)mode;
	(void)taker; /* the record at the path is the one lease there is */
	fd = fl__sys.open(lk->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? -ESTALE : fl__err(lk, -errno, "open", lk->path);
	if (fl__sys.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    ((dev != 0 || ino != 0) && (st.st_dev != dev || st.st_ino != ino)) ||
	    fl__marker_read(AT_FDCWD, lk->path, &m) != 0 || !m.exists || m.malformed ||
	    m.ino != st.st_ino || lease_p2_parse(m.buf, m.len, &p2) != 0 || !p2.is_lease) {
		fl__sys.close(fd);
		return -ESTALE;
	}
	memset(lh, 0, sizeof(*lh));
	{
		size_t tl = strnlen(p2.token, sizeof(lh->token) - 1);
		memcpy(lh->token, p2.token, tl);
		lh->token[tl] = '\0';
	}
	h->fd = fd;
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	lease_hb_init(lk, h, lh);
	/* Fresh at once: the image before us may have stopped beating a while
	 * ago (a same-host contender judges by the mtime too). */
	(void)fl__sys.futimens(fd, NULL);
	r = fl__hb_add(&lh->hb);
	if (r != 0) {
		fl__sys.close(fd);
		h->fd = -1;
		return fl__errf(lk, r, "%s: cannot start the heartbeat thread", lk->path);
	}
	return 0;
}

static void lease_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	until = fl__adapt_until(h, lk->path, lk->opt.poll_interval, until);
	fl__wait_removal(lk->dir, lk->name, fl__path_exists, lk->path, until);
}

static int lease_release(struct fl_lock *lk, struct fl_hold *h)
{
	struct lease_hold *lh = (struct lease_hold *)h->priv;
	int r = 0;

	fl__hb_remove(&lh->hb); /* returns once no beat of ours runs */
	r = fl__unlink_if_same(AT_FDCWD, lk->path, h->dev, h->ino);
	if (r != 0 && r != -ENOENT && r != -ESTALE) {
		/* The marker stays: keep holding (and beating) rather than report a
		 * release that others would only see once the lease expires. */
		r = fl__err(lk, r, "unlink", lk->path);
		(void)fl__hb_add(&lh->hb);
		return r;
	}
	r = 0;
	if (fl__sys.close(h->fd) != 0 && errno != EINTR)
		r = fl__err(lk, -errno, "close", lk->path);
	h->fd = -1;
	h->held = 0; /* the marker and the descriptor are gone */
	lh->token[0] = '\0';
	return r;
}

static void lease_drop(struct fl_lock *lk, struct fl_hold *h)
{
	struct lease_hold *lh = (struct lease_hold *)h->priv;

	/* Abandoned in the process that beats it (the shim forgets a lease
	 * that another process keeps through a shared description): the
	 * heartbeat must stop before the hold is freed.  A fork child's
	 * registry is empty. */
	if (lk->pid == fl__pid())
		fl__hb_remove(&lh->hb);
	if (h->fd >= 0)
		fl__sys.close(h->fd); /* inherited copy; the marker stays the parent's */
	h->fd = -1;
}

/* Validates and completes the options (idempotent: fl_open runs it twice). */
static int lease_setup(struct fl_lock *lk)
{
	struct fl_options *o = &lk->opt;
	char a[40];
	int r = fl__opt_no_lifetime(lk, "lease_duration");

	if (r != 0)
		return r;
	if (o->stale_threshold != 0)
		return fl__errf(NULL, -EINVAL,
				"stale_threshold is not used by lease: lease_duration sets when a "
				"lease expires [lease]");
	if (o->lease_duration == 0)
		o->lease_duration = LEASE_DEFAULT_DURATION;
	if (!(o->lease_duration > 0)) {
		fl__py_float_repr(o->lease_duration, a, sizeof(a));
		return fl__errf(NULL, -EINVAL, "lease_duration must be positive, got %s [lease]",
				a);
	}
	if (o->heartbeat_interval == 0)
		o->heartbeat_interval = o->lease_duration / 3;
	if (!(o->heartbeat_interval > 0 && o->heartbeat_interval < o->lease_duration)) {
		fl__py_float_repr(o->heartbeat_interval, a, sizeof(a));
		return fl__errf(
		    NULL, -EINVAL,
		    "heartbeat_interval must be positive and below lease_duration, got %s "
		    "[lease]",
		    a);
	}
	return 0;
}

/* One-shot judgement for inspect/break (no observation history: wall clock). */
static int lease_look(const char *path, const struct fl_options *opt, struct fl_holder *out,
		      struct fl_marker *m)
{
	struct lease_p2 p2;
	struct fl_p1 p1;
	char me[256] = "", theirs[40], ours[96];
	double age;
	int dead;

	if (fl__marker_read(AT_FDCWD, path, m) != 0 || !m->exists) {
		out->state = FL_HOLDER_FREE;
		return 0;
	}
	age = fl__now_wall() - m->mtime;
	out->mode = FL_EXCLUSIVE;
	out->writers = 1;
	if (lease_is_sentinel(m)) {
		out->state = FL_HOLDER_UNKNOWN;
		snprintf(out->detail, sizeof(out->detail),
			 "strict sentinel: the strict kind owns this path");
		return 0;
	}
	if (!m->malformed && lease_p2_parse(m->buf, m->len, &p2) == 0) {
		out->pid = p2.pid;
		snprintf(out->host, sizeof(out->host), "%s", p2.host);
		snprintf(out->start, sizeof(out->start), "%s", p2.start);
		dead = fl__owner_is_stale(p2.pid, p2.host, p2.start);
	} else if (!m->malformed && fl__p1_parse(m->buf, m->len, &p1) == 0) {
		out->pid = p1.pid;
		snprintf(out->host, sizeof(out->host), "%s", p1.host);
		snprintf(out->start, sizeof(out->start), "%s", p1.token);
		out->age = age;
		dead = fl__owner_is_stale(p1.pid, p1.host, p1.token);
		p2.is_lease = 0;
		snprintf(p2.mode, sizeof(p2.mode), "soft");
	} else {
		/* For a look, an unparsable file is never "young": a break,
		 * even forced, only ever removes a marker. */
		const char *why = fl__marker_foreign(m, 0, FL__MALFORMED_AGE);

		out->age = age;
		out->state = FL_HOLDER_MALFORMED;
		if (why) {
			snprintf(out->detail, sizeof(out->detail),
				 "not a lock marker (%s): never broken; lock a separate path", why);
			return -EEXIST;
		}
		if (age >= FL__MALFORMED_AGE)
			out->state = FL_HOLDER_STALE;
		snprintf(out->detail, sizeof(out->detail), "malformed marker (empty), %s",
			 age >= FL__MALFORMED_AGE ? "old enough to be broken"
						  : "younger than 2 s, left alone");
		return 0;
	}
	fl__hostname(me, sizeof(me));
	out->same_host = strcmp(me, out->host) == 0;
	if (out->same_host) {
		int a = fl__pid_alive(out->pid);
		out->alive = a < 0 ? -1 : (a && !dead);
	}
	if (dead) {
		out->state = FL_HOLDER_STALE;
		snprintf(out->detail, sizeof(out->detail), "%s",
			 out->alive == 0 ? "holder process is gone"
					 : "holder pid was recycled (start token differs)");
		return 0;
	}
	if (!p2.is_lease) {
		out->state = FL_HOLDER_HELD;
		snprintf(out->detail, sizeof(out->detail),
			 "%s owner (mode %s): never expired by a lease contender",
			 strcmp(p2.mode, "soft") == 0 ? "protocol-1" : "protocol-2", p2.mode);
		return 0;
	}
	/* The heartbeat moves the mtime, so the creation time is unknown. */
	out->heartbeat_age = age;
	fl__py_float_repr(p2.duration, theirs, sizeof(theirs));
	/* Judged by the holder's own duration: an inspector only looks.  A
	 * contender configured otherwise would get "lease settings mismatch". */
	if (p2.duration != opt->lease_duration)
		snprintf(ours, sizeof(ours), "; lease settings mismatch: we are configured for %gs",
			 opt->lease_duration);
	else
		ours[0] = '\0';
	if (age >= p2.duration) {
		out->state = FL_HOLDER_STALE;
		snprintf(out->detail, sizeof(out->detail),
			 "lease expired: last heartbeat %.1fs ago (lease %ss, by the wall clock)%s",
			 age, theirs, ours);
	} else {
		out->state = FL_HOLDER_HELD;
		snprintf(out->detail, sizeof(out->detail),
			 "lease alive: last heartbeat %.1fs ago (lease %ss)%s", age < 0 ? 0.0 : age,
			 theirs, ours);
	}
	return 0;
}

static int lease_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct fl_marker m;

	lease_look(path, opt, out, &m);
	return 0;
}

static int lease_break(const char *path, const struct fl_options *opt, unsigned flags,
		       const char *name)
{
	struct fl_holder who;
	struct fl_marker m;
	int r;

	if (name != NULL)
		return fl__errf(NULL, -EINVAL,
				"%s: a claim name is only meaningful for strict [lease]", path);
	memset(&who, 0, sizeof(who));
	who.age = who.heartbeat_age = -1;
	who.alive = -1;
	if (lease_look(path, opt, &who, &m) == -EEXIST)
		return fl__marker_refuse(NULL, path, "lease",
					 fl__marker_foreign(&m, 0, FL__MALFORMED_AGE), 1);
	if (who.state == FL_HOLDER_FREE)
		return fl__errf(NULL, -ENOENT, "%s: no marker to break [lease]", path);
	if (lease_is_sentinel(&m))
		return fl__errf(
		    NULL, -EBUSY,
		    "%s: this is a strict sentinel; break strict claims with kind strict", path);
	if (who.state != FL_HOLDER_STALE && !(flags & FL_FORCE))
		return fl__errf(NULL, -EBUSY, "%s: not provably stale (%s); use force [lease]",
				path, who.detail);
	r = fl__break_file(path, &m);
	if (r == -EBUSY)
		return fl__errf(NULL, -EBUSY,
				"%s: another process is breaking it (%s.break exists) [lease]", path,
				path);
	if (r == -EAGAIN)
		return fl__errf(NULL, -EBUSY, "%s: the marker changed while breaking it [lease]",
				path);
	if (r != 0)
		return fl__err(NULL, r, "rename", path);
	return 0;
}

const struct fl_backend fl__backend_lease = {
	.version = 1,
	.name = "lease",
	.kind = FL_LEASE,
	.caps = 0,
	.hold_size = sizeof(struct lease_hold),
	.default_poll = 0.05,
	.setup = lease_setup,
	.attempt = lease_attempt,
	.wait = lease_wait,
	.release = lease_release,
	.drop = lease_drop,
	.inspect = lease_inspect,
	.brk = lease_break,
	.adopt = lease_adopt,
};
