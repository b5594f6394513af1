/* SPDX-License-Identifier: MIT */
/*
 * backend-softrw-log.c -- the `soft-rw` kind's default protocol,
 * `filelock-rw/1`: a reader/writer lock kept as a log of immutable
 * generations, byte for byte Python filelock 4's SoftReadWriteLock.
 *
 * Layout, for a lock at P (P itself is never created):
 *   P.rw/                      directory 0700 (umask applies)
 *   P.rw/gen/<N:020d>          snapshot of generation N, immutable
 *   P.rw/gen/epoch             "<TOK>\n": names this incarnation of the log
 *   P.rw/gen/HEAD              epoch bytes + a copy of the newest snapshot
 *   P.rw/gen/.commit-<TOK>     a commit (or HEAD update) being written
 *   P.rw/holders/<TOK>         one liveness record per participant
 * A snapshot is "filelock-rw/1\ngeneration=N\n[writer=TOK\n](reader=TOK\n)*"
 * with readers sorted; a holder record is "filelock-rw/1\ntoken=TOK\npid=P\n
 * host=H\nlease=<repr(stale_threshold)>\nnonce=TOK\n".  TOK is 32 lowercase
 * hex digits.  Every file is created O_EXCL|O_NOFOLLOW, mode 0600; snapshots
 * and the epoch are fsync'd before they get their public name.
 *
 * State and transitions.  The lock's whole state is the newest snapshot.
 * Every transition is one atomic publication: a participant reads the newest
 * generation N, derives the successor it wants, writes it to a temporary file
 * and hard-links that to gen/<N+1>.  A hard link never replaces, so exactly
 * one participant wins each generation; who won is decided by file identity
 * (the temporary and gen/<N+1> are the same inode), not by link's return
 * code, which an NFS retransmit can turn into EEXIST for a link that landed.
 * No step leaves anything half done: a crash leaves at most a temporary file
 * (swept later) or a holder record (ages out); nobody has to repair anything
 * before proceeding.  There is no mutex file (the legacy protocol's P.state,
 * whose orphan wedged every host).
 *
 * Reading the head.  A participant remembers the epoch it read and the newest
 * snapshot it saw.  Candidates are the last 64 generation names listed (older
 * ones are unlinked while listing), the remembered generation and HEAD's
 * generation (when HEAD carries the current epoch).  From the newest readable
 * candidate it probes N+1, N+2, ... by name until one (after HEAD) or 64
 * consecutive names are missing: NFS revalidates a file opened by name but
 * may serve a directory listing from cache, and HEAD is what a stale client
 * cannot miss.  A malformed snapshot is an error (-EBADMSG), never skipped.
 *
 * Commit.  Refused as lost when the epoch changed or gen/<N> is gone (a
 * compaction freed the slot under a stalled committer); after the link the
 * predecessor is checked again and a record that lost that race is removed.
 * HEAD is then renamed forward (never backward, never fsync'd: a torn HEAD is
 * ignored) and generations older than the newest 65 are unlinked, oldest
 * first, so the survivors stay contiguous.  A filesystem without hard links
 * (EXDEV, ENOSYS, EOPNOTSUPP: Python's list) is refused with -ENOTSUP: the
 * protocol cannot be run there.
 *
 * Acquire.  Each acquisition is a fresh participant token.  Its holder record
 * is created first, so it exists before the token appears in any snapshot.
 * Each try re-reads the head, rewrites the holder
 * record with a new nonce (a patient waiter never looks dead), sweeps, and
 * computes the members whose records are stale.  Not yet a member: a live
 * writer blocks both modes (only an eviction is committed then); otherwise a
 * writer names itself writer, a reader adds itself.  A reader is granted at
 * the generation that adds it; a writer first commits itself as writer while
 * readers are still listed (from then on no new reader enters: writer
 * preference) and is granted at the commit that finds no readers left.  Stale
 * members are evicted in the same commit that admits the contender.  Up to
 * four lost commits are retried within one try.  The grant's generation is
 * fl_fencing_token(): generations strictly increase within an epoch.
 *
 * Liveness.  Never a client clock compared across hosts.  What this process
 * has seen of a record lives in the process-wide ledger (ledger.c), keyed by
 * the record's path and shared by every handle, acquisition and thread: the
 * record's identity, size, mtime and a hash of its bytes (or its absence),
 * and since when on our CLOCK_MONOTONIC that has stayed the same.  A record
 * is stale once it has stayed the same for max(our stale_threshold, the
 * record's lease): an evictor waits at least the holder's own threshold.  A
 * refresh rewrites the nonce in place, which changes the bytes (and the
 * mtime, stamped by the file server), so any refresh we see restarts the
 * count.  srwl_observe is the one function that feeds the ledger.
 *
 * One try.  The first time this process sees a member's holder record (a
 * fresh process, `filelock -n`, the shim's LOCK_NB), the ledger asks the
 * file server how old it is: a probe file created in holders/ (a dot name,
 * never a token, so no participant of either language reads it) gives the
 * server's "now", which is compared with the record's mtime re-read past the
 * attribute cache, minus a granularity margin (ledger.c).  The record's
 * mtime is the server's stamp of its last in-place rewrite (Python 4 and we
 * both rewrite it with write(2), never with explicit times), so a holder
 * whose record is older than the bound has been silent that long; the same
 * max(stale_threshold, lease) rule applies to that age.  Any doubt (probe
 * refused, record changed in between, age within the margin) counts the
 * first sight as zero, as before.  Time in which our own reads of the
 * server stalled (0.5 s or more) is not counted as silence (ledger.c): the
 * holders could not refresh either.  Absent records and the sweep's orphans
 * and temporaries are never probed: nobody waits for them.  Sweeps (at most
 * every stale_threshold/2) collect, by the same rule, holder records that no
 * snapshot names (a participant that crashed before its first commit) and
 * leftover temporaries; names that are not tokens are never touched.
 *
 * Reading records.  Every record (snapshot, HEAD, epoch, holder) is read by
 * name through fl__record_read: a name another host renamed over or removed
 * answers ESTALE on NFS, and the name is opened again (a few times); ESTALE
 * that persists is a transient error that decides nothing, never "absent".
 *
 * Heartbeat and release.  The process's heartbeat thread rewrites the nonce
 * every heartbeat_interval and checks that the newest snapshot still names
 * us; a missing record or a snapshot without us is FL_COMPROMISE_EVICTED.
 * Failures to read the log decide nothing; failures to refresh the record for
 * stale_threshold - heartbeat_interval are FL_COMPROMISE_REFRESH_FAILED.
 * Release commits a successor without our token and then unlinks the holder
 * record; the log itself (gen/, epoch, HEAD) stays.  Where we differ from
 * Python, wire-compatibly: a release whose commit fails (EIO, ENOSPC) keeps
 * the hold, record and heartbeat included, so that the caller may retry
 * (fl_release's contract; Python removes the record and lets the member age
 * out); an acquire that gives up removes its record as Python does.
 *
 * Inspection and breaking (fl_inspect, fl_break: one look, no ledger) judge
 * a member by its record: gone, older than stale_threshold by the wall
 * clock, or naming a dead process of this host and PID namespace.  A break
 * is a commit without the members judged gone (all with FL_FORCE), so the
 * log stays the only truth.
 *
 * Mixed protocols.  Python 4 and this protocol never read the legacy
 * P.state/P.write/P.readers files, and the legacy protocol never reads P.rw.
 * So that a mixed deployment cannot double-hold silently, both of our
 * protocols check for the other after publishing their own claim and before
 * reporting the lock held: this one refuses (-EPROTO, naming the other
 * protocol and the fix) when a legacy marker refreshed within stale_threshold
 * is there, the legacy one when P.rw/holders has a record refreshed within
 * stale_threshold.  Publish-then-check on both sides means two contenders
 * racing each other cannot both miss the other.  Python processes of the two
 * generations on one path do exclude nothing: that hazard is upstream's.
 *
 * Clock and NFS assumptions.  O_EXCL create, link and rename are atomic on
 * NFSv3+; a no-replace link is the compare-and-swap.  Our monotonic clock and
 * the holders' heartbeat intervals must be roughly right (rate, not absolute
 * time).  The one-try judgement also assumes the file server stamps the
 * records' mtimes (ledger.c says when that fails and how it fails safe).
 *
 * Fork and exec.  A fork child's handle is invalid (the front end refuses
 * it); descriptors are O_CLOEXEC and open only during a call.  A lock held
 * across exec is abandoned and evicted after the threshold, unless it is
 * adopted.  Adoption (fl__adopt, for the preload shim, whose fork children
 * and new images share the taker's open file description): the member of
 * the newest snapshot -- the writer only when no reader is listed (a
 * pending writer holds nothing), else a reader -- whose holder record names
 * the taker (fl__adopt_pid_ok) and this host.  The record is refreshed at
 * once and beaten, still naming the taker's pid (srwl_hold.pid), so that
 * every process sharing the description finds it so (fork children one
 * after another, an image after execve); while the taker lives it
 * refreshes it too, each rewrite a full record, so readers see one or the
 * other.  A record so kept names a pid that may be gone: fl_inspect and
 * fl_break (one look, without the shim's knowledge of the description)
 * then judge it dead.  The grant's generation is not known to an adopter: its
 * fencing token is the generation it adopted at (not lower than the grant).
 *
 * Downsides.  Every transition writes, fsyncs and links a file; waiting is
 * polling; a crashed holder blocks others for max(stale_threshold, lease)
 * (plus the probe's margin for a contender that tries only once).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "fl-internal.h"

#define SRWL_PROTO "filelock-rw/1"
#define SRWL_TOK 32
#define SRWL_DIGITS 20
#define SRWL_MAX_RECORD (1u << 20)
#define SRWL_RETAINED 64
#define SRWL_TMP ".commit-"

/* ---- records -------------------------------------------------------------- */

int fl__srwl_is_token(const char *s, size_t n)
{
	if (n != SRWL_TOK)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int srwl_tokcmp(const void *a, const void *b)
{
	return memcmp(a, b, SRWL_TOK + 1);
}

void fl__srwl_snap_free(struct fl_srwl_snap *s)
{
	free(s->readers);
	s->readers = NULL;
	s->nr = s->cap = 0;
}

static int srwl_add_reader(struct fl_srwl_snap *s, const char *tok)
{
	if (s->nr == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 8;
		char(*t)[SRWL_TOK + 1] = realloc(s->readers, nc * sizeof(*t));
		if (t == NULL)
			return -ENOMEM;
		s->readers = t;
		s->cap = nc;
	}
	memcpy(s->readers[s->nr], tok, SRWL_TOK);
	s->readers[s->nr++][SRWL_TOK] = '\0';
	return 0;
}

static int srwl_has_reader(const struct fl_srwl_snap *s, const char *tok)
{
	return s->nr && bsearch(tok, s->readers, s->nr, sizeof(s->readers[0]), srwl_tokcmp);
}

static int srwl_is_member(const struct fl_srwl_snap *s, const char *tok)
{
	return strcmp(s->writer, tok) == 0 || srwl_has_reader(s, tok);
}

int fl__srwl_parse(const char *buf, size_t len, struct fl_srwl_snap *out)
{
	size_t i, pl = sizeof(SRWL_PROTO) - 1;
	int have_gen = 0, r;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len > SRWL_MAX_RECORD || buf[len - 1] != '\n')
		return -EBADMSG;
	if (len < pl + 1 || memcmp(buf, SRWL_PROTO "\n", pl + 1) != 0)
		return -EBADMSG;
	for (i = pl + 1; i < len;) {
		const char *line = buf + i, *nl = memchr(line, '\n', len - i), *eq;
		size_t ll = (size_t)(nl - line), kl, vl;

		i += ll + 1;
		for (size_t k = 0; k < ll; k++)
			if ((unsigned char)line[k] > 0x7f)
				goto bad; /* not ASCII */
		eq = memchr(line, '=', ll);
		if (eq == NULL)
			goto bad;
		kl = (size_t)(eq - line);
		vl = ll - kl - 1;
		if (kl == 10 && memcmp(line, "generation", 10) == 0 && !have_gen && vl >= 1 &&
		    vl <= SRWL_DIGITS && !(vl > 1 && eq[1] == '0')) {
			unsigned long long g = 0;
			for (size_t k = 1; k <= vl; k++) {
				if (eq[k] < '0' || eq[k] > '9' || g > (~0ULL - (unsigned)(eq[k] - '0')) / 10)
					goto bad;
				g = g * 10 + (unsigned)(eq[k] - '0');
			}
			out->gen = g;
			have_gen = 1;
		} else if (kl == 6 && memcmp(line, "writer", 6) == 0 && out->writer[0] == '\0' &&
			   fl__srwl_is_token(eq + 1, vl)) {
			memcpy(out->writer, eq + 1, SRWL_TOK);
			out->writer[SRWL_TOK] = '\0';
		} else if (kl == 6 && memcmp(line, "reader", 6) == 0 && fl__srwl_is_token(eq + 1, vl)) {
			r = srwl_add_reader(out, eq + 1);
			if (r != 0) {
				fl__srwl_snap_free(out);
				return r;
			}
		} else {
			goto bad;
		}
	}
	if (!have_gen)
		goto bad;
	if (out->nr > 1)
		qsort(out->readers, out->nr, sizeof(out->readers[0]), srwl_tokcmp);
	for (i = 1; i < out->nr; i++)
		if (memcmp(out->readers[i - 1], out->readers[i], SRWL_TOK) == 0)
			goto bad; /* a reader listed twice */
	return 0;
bad:
	fl__srwl_snap_free(out);
	return -EBADMSG;
}

/* Python's Snapshot.encode(): malloc'd bytes in *out. */
static int srwl_encode(const struct fl_srwl_snap *s, char **out, size_t *len)
{
	size_t cap = 64 + SRWL_DIGITS + 48 + s->nr * (SRWL_TOK + 8), n;
	char *b = malloc(cap);

	if (b == NULL)
		return -ENOMEM;
	n = (size_t)snprintf(b, cap, SRWL_PROTO "\ngeneration=%llu\n", s->gen);
	if (s->writer[0])
		n += (size_t)snprintf(b + n, cap - n, "writer=%s\n", s->writer);
	for (size_t i = 0; i < s->nr; i++)
		n += (size_t)snprintf(b + n, cap - n, "reader=%s\n", s->readers[i]);
	*out = b;
	*len = n;
	return 0;
}

/* Our holder record (Python's encode_holder), naming pid (0: us); its
 * length or -errno. */
static int srwl_holder_format(char *buf, size_t cap, const char *token, const char *nonce,
			      double lease, pid_t pid)
{
	char host[512], ls[40];
	int r = fl__hostname(host, sizeof(host)), n;

	if (r != 0)
		return r;
	fl__py_float_repr(lease, ls, sizeof(ls));
	n = snprintf(buf, cap, SRWL_PROTO "\ntoken=%s\npid=%d\nhost=%s\nlease=%s\nnonce=%s\n", token,
		     (int)(pid > 0 ? pid : fl__pid()), host, ls, nonce);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

/* Python's holder_lease(): the first "lease=" line, a finite float > 0
 * spelled exactly as repr() spells it; 0 when there is none. */
double fl__srwl_holder_lease(const char *buf, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)buf[k] > 0x7f)
			return 0; /* Python decodes the whole record as ASCII first */
	for (size_t i = 0; i < len;) {
		const char *line = buf + i, *nl = memchr(line, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - line) : len - i;
		char text[48], back[48];
		double v;
		char *end;

		i += ll + 1;
		if (ll < 6 || memcmp(line, "lease=", 6) != 0)
			continue;
		if (ll - 6 >= sizeof(text))
			return 0;
		memcpy(text, line + 6, ll - 6);
		text[ll - 6] = '\0';
		v = strtod(text, &end);
		if (end == text || *end || !isfinite(v) || !(v > 0))
			return 0;
		fl__py_float_repr(v, back, sizeof(back));
		return strcmp(back, text) == 0 ? v : 0;
	}
	return 0;
}

/* ---- per-handle data ----------------------------------------------------- */

struct srwl_handle {
	pthread_mutex_t mu; /* one protocol step at a time (acquirer, heartbeat)  */
	char *root;         /* P.rw                                                */
	int prepared;
	int have_epoch;     /* epoch below is meaningful ("none" otherwise)        */
	char *epoch;        /* bytes of gen/epoch as last read                     */
	size_t epoch_len;
	struct fl_srwl_snap latest; /* remembered newest snapshot; gen 0 = none   */
	double next_sweep;
};

struct srwl_hold {
	struct fl_hb hb;
	char token[SRWL_TOK + 1]; /* "" until the first attempt publishes it    */
	pid_t pid;                /* the pid our record names (0: ours; adopted:
				     the taker's, whoever beats it)         */
	int entered;
	unsigned long long generation; /* grant generation                       */
	unsigned long long waited_gen; /* newest generation srwl_wait last saw   */
	double step;                   /* srwl_wait's adaptive step (0 = quick)  */
};

static struct srwl_hold *srwl_hold_of(struct fl_hold *h)
{
	return (struct srwl_hold *)(void *)h->priv;
}

/* One protocol step's open directories. */
struct srwl_dirs {
	int gen, holders;
};

/* ---- liveness (the one place it is observed) ----------------------------- */

/* The ledger key of P.rw/<sub>/<name>: its path. */
static void srwl_key(const struct srwl_handle *s, const char *sub, const char *name, char *key,
		     size_t cap)
{
	snprintf(key, cap, "%s/%s/%s", s->root, sub, name); /* cut: a harmless collision */
}

/*
 * Records in the process-wide ledger (ledger.c) what `key` reads now: the
 * record's identity, size, mtime and a hash of its bytes (st != NULL), or
 * its absence; returns for how long it has read the same.  Any handle's
 * earlier look counts.  With probe, a record this process sees for the
 * first time is aged by the file server's clock (a probe file next to it in
 * dfd); without, or when absent, a first sighting counts as zero.
 */
static double srwl_observe(int dfd, const char *key, const char *name, int probe, const char *bytes,
			   size_t len, const struct stat *st)
{
	struct fl_seen seen;

	memset(&seen, 0, sizeof(seen));
	if (st == NULL) {
		seen.size = -2; /* absent: no inode, never equal to a present state */
		return fl__ledger_silent(key, dfd, NULL, &seen);
	}
	fl__seen_of(&seen, st);
	seen.tag = fl__seen_tag(bytes, len);
	return fl__ledger_silent(key, dfd, probe ? name : NULL, &seen);
}

static void srwl_forget(const struct srwl_handle *s, const char *sub, const char *name)
{
	char key[PATH_MAX + 64];

	srwl_key(s, sub, name, key, sizeof(key));
	fl__ledger_forget(key);
}

/* ---- files --------------------------------------------------------------- */

/* openat restarted on EINTR (as SA_RESTART would). */
static int srwl_openat(int dfd, const char *name, int flags, mode_t mode)
{
	double t0 = fl__now_mono();
	int fd, e;

	do
		fd = fl__sys.openat(dfd, name, flags, mode);
	while (fd < 0 && errno == EINTR);
	e = errno;
	fl__note_io(t0); /* a stall here is no holder's silence either */
	errno = e;
	return fd;
}

/*
 * Reads (dfd, name) through fl__record_read (a name another host renamed
 * over or removed is opened again on ESTALE): 1 and a malloc'd *buf (len 0
 * for a non-regular file) with its attributes in *st, 0 when absent
 * (ENOENT), or -errno (-ESTALE: still stale after the last open, transient).
 * At most 1 MiB + 1 byte.
 */
static int srwl_read_st(int dfd, const char *name, char **buf, size_t *len, struct stat *st)
{
	size_t cap = 4096;

	*buf = NULL;
	*len = 0;
	for (;;) {
		char *b = malloc(cap);
		size_t n = 0;
		int r;

		if (b == NULL)
			return -ENOMEM;
		r = fl__record_read(dfd, name, b, cap, &n, st, NULL);
		if (r < 0) {
			free(b);
			return r == -ENOENT ? 0 : r;
		}
		if (n == cap && cap < SRWL_MAX_RECORD + 1) {
			/* Maybe longer: read it again, whole, with room to spare. */
			free(b);
			cap = cap * 2 > SRWL_MAX_RECORD + 1 ? SRWL_MAX_RECORD + 1 : cap * 2;
			continue;
		}
		*buf = b;
		*len = n;
		return 1;
	}
}

static int srwl_read(int dfd, const char *name, char **buf, size_t *len)
{
	struct stat st;

	return srwl_read_st(dfd, name, buf, len, &st);
}

/* Creates (dfd, name) exclusively with data, fsync'd when durable.  0,
 * -EEXIST, -ENOENT (the directory is gone) or -errno; never leaves a partial
 * file behind (the name is unique to the call). */
static int srwl_create(int dfd, const char *name, const char *data, size_t len, int durable)
{
	int fd = srwl_openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
			     0600);
	int r;

	if (fd < 0)
		return -errno;
	r = fl__write_all(fd, data, len);
	if (r == 0 && durable && fl__sys.fsync(fd) != 0)
		r = -errno;
	fl__sys.close(fd);
	if (r != 0)
		fl__sys.unlinkat(dfd, name, 0);
	return r;
}

/* Unlink tolerating what Python tolerates (gone, or refused). */
static int srwl_unlink(int dfd, const char *name)
{
	if (fl__sys.unlinkat(dfd, name, 0) == 0 || errno == ENOENT || errno == ESTALE ||
	    errno == EACCES || errno == EPERM)
		return 0;
	return -errno;
}

static void srwl_gen_name(char out[SRWL_DIGITS + 1], unsigned long long g)
{
	snprintf(out, SRWL_DIGITS + 1, "%020llu", g);
}

/* Opens (dfd, name) as a directory, creating it (0700) first when asked;
 * a symlink or a non-directory is -ENOTDIR.  A descriptor or -errno. */
static int srwl_dir(int dfd, const char *name, int create)
{
	int fd;

	if (create && fl__sys.mkdirat(dfd, name, 0700) != 0 && errno != EEXIST)
		return -errno;
	fd = srwl_openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ELOOP ? -ENOTDIR : -errno;
	return fd;
}

static void srwl_close_dirs(struct srwl_dirs *d)
{
	if (d->gen >= 0)
		fl__sys.close(d->gen);
	if (d->holders >= 0)
		fl__sys.close(d->holders);
	d->gen = d->holders = -1;
}

static int srwl_dir_err(struct fl_lock *lk, int r, const char *root, const char *sub)
{
	if (r == -ENOTDIR)
		return fl__errf(lk, r, "%s%s exists but is not a directory or is a symlink; "
				       "refusing to use it", root, sub);
	return fl__errf(lk, r, "open(%s%s): %s", root, sub, fl_strerror(r));
}

/*
 * Python's prepare() when `create`: the parents, P.rw, P.rw/gen and
 * P.rw/holders (0700), refusing a symlink or a non-directory at any of the
 * three.  Opens the two inner directories for this step.
 */
static int srwl_open_dirs(struct fl_lock *lk, struct srwl_dirs *d, int create)
{
	struct srwl_handle *s = lk->be_data;
	int rfd, r;

	d->gen = d->holders = -1;
	if (create && !s->prepared) {
		r = fl__mkdir_p(lk);
		if (r != 0)
			return r; /* recorded */
	}
	rfd = srwl_dir(AT_FDCWD, s->root, create);
	if (rfd < 0)
		return srwl_dir_err(lk, rfd, s->root, "");
	d->gen = srwl_dir(rfd, "gen", create);
	if (d->gen >= 0)
		d->holders = srwl_dir(rfd, "holders", create);
	fl__sys.close(rfd);
	if (d->gen < 0 || d->holders < 0) {
		r = d->gen < 0 ? srwl_dir_err(lk, d->gen, s->root, "/gen")
			       : srwl_dir_err(lk, d->holders, s->root, "/holders");
		d->gen = d->gen < 0 ? -1 : d->gen;
		d->holders = -1;
		srwl_close_dirs(d);
		return r;
	}
	s->prepared = 1;
	return 0;
}

static const char *srwl_root(const struct fl_lock *lk)
{
	return ((const struct srwl_handle *)lk->be_data)->root;
}

/* Records "op(P.rw/sub/name): reason [soft-rw]" (name may be NULL). */
static int srwl_err(struct fl_lock *lk, int r, const char *op, const char *sub, const char *name)
{
	struct srwl_handle *s = lk->be_data;
	char p[4400];

	snprintf(p, sizeof(p), "%s/%s%s%s", s->root, sub, name ? "/" : "", name ? name : "");
	return fl__err(lk, r, op, p);
}

/* ---- the generation log ---------------------------------------------------- */

/* Reads gen/<g>: 1 and *out, 0 absent, -EBADMSG malformed (message set), -errno. */
static int srwl_read_gen(struct fl_lock *lk, int gfd, unsigned long long g, struct fl_srwl_snap *out)
{
	char name[SRWL_DIGITS + 1], *buf;
	size_t len;
	int r;

	srwl_gen_name(name, g);
	r = srwl_read(gfd, name, &buf, &len);
	if (r <= 0)
		return r < 0 ? srwl_err(lk, r, "read", "gen", name) : 0;
	r = fl__srwl_parse(buf, len, out);
	free(buf);
	if (r == -ENOMEM)
		return fl__errf(lk, r, "out of memory");
	if (r != 0 || out->gen != g) {
		fl__srwl_snap_free(out);
		return fl__errf(lk, -EBADMSG, "read(%s/gen/%s): malformed generation record", srwl_root(lk),
				name);
	}
	return 1;
}

/* Whether the remembered epoch is a valid "TOK\n". */
static int srwl_epoch_valid(const struct srwl_handle *s)
{
	return s->have_epoch && s->epoch_len == SRWL_TOK + 1 && s->epoch[SRWL_TOK] == '\n' &&
	       fl__srwl_is_token(s->epoch, SRWL_TOK);
}

/* HEAD's generation when HEAD carries the current epoch and parses; else 0. */
static unsigned long long srwl_head_gen(struct srwl_handle *s, int gfd)
{
	struct fl_srwl_snap hs;
	unsigned long long g = 0;
	char *buf;
	size_t len;

	if (!srwl_epoch_valid(s) || srwl_read(gfd, "HEAD", &buf, &len) != 1)
		return 0;
	if (len > s->epoch_len && memcmp(buf, s->epoch, s->epoch_len) == 0 &&
	    fl__srwl_parse(buf + s->epoch_len, len - s->epoch_len, &hs) == 0) {
		g = hs.gen;
		fl__srwl_snap_free(&hs);
	}
	free(buf);
	return g;
}

/* Python's _head_record() is not None: HEAD exists with the current epoch. */
static int srwl_head_present(struct srwl_handle *s, int gfd)
{
	char *buf;
	size_t len;
	int r;

	if (!srwl_epoch_valid(s) || srwl_read(gfd, "HEAD", &buf, &len) != 1)
		return 0;
	r = len >= s->epoch_len && memcmp(buf, s->epoch, s->epoch_len) == 0;
	free(buf);
	return r;
}

/* Reads gen/epoch into *buf, creating it when missing.  1 present, 0 none. */
static int srwl_incarnation(int gfd, char **buf, size_t *len)
{
	int r = srwl_read(gfd, "epoch", buf, len);

	if (r != 0)
		return r;
	{
		char e[SRWL_TOK + 2];
		fl__random_hex(e);
		e[SRWL_TOK] = '\n';
		r = srwl_create(gfd, "epoch", e, SRWL_TOK + 1, 1);
	}
	if (r != 0 && r != -EEXIST)
		return r == -ENOENT ? 0 : r;
	return srwl_read(gfd, "epoch", buf, len);
}

static int srwl_ullcmp(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

/* The newest 64 generation names of gen/ (older ones are unlinked). */
static int srwl_list(int gfd, unsigned long long **out, size_t *np)
{
	unsigned long long *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd = fl__sys.openat(gfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;
	DIR *d;

	*out = NULL;
	*np = 0;
	if (fd < 0)
		return -errno;
	d = fl__sys.fdopendir(fd);
	if (d == NULL) {
		e = errno;
		fl__sys.close(fd);
		return -e;
	}
	for (;;) {
		unsigned long long g = 0;
		size_t k;

		errno = 0;
		de = fl__sys.readdir(d);
		if (de == NULL) {
			e = errno;
			break;
		}
		for (k = 0; k < SRWL_DIGITS && de->d_name[k] >= '0' && de->d_name[k] <= '9'; k++) {
			if (g > (~0ULL - (unsigned)(de->d_name[k] - '0')) / 10)
				break;
			g = g * 10 + (unsigned)(de->d_name[k] - '0');
		}
		if (k != SRWL_DIGITS || de->d_name[k] != '\0')
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 128;
			unsigned long long *t = realloc(v, nc * sizeof(*t));
			if (t == NULL) {
				e = ENOMEM;
				break;
			}
			v = t;
			cap = nc;
		}
		v[n++] = g;
	}
	fl__sys.closedir(d);
	if (e != 0) {
		free(v);
		return -e;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), srwl_ullcmp);
	if (n > SRWL_RETAINED) {
		for (size_t i = 0; i < n - SRWL_RETAINED; i++) {
			char name[SRWL_DIGITS + 1];
			srwl_gen_name(name, v[i]);
			srwl_unlink(gfd, name);
		}
		memmove(v, v + (n - SRWL_RETAINED), SRWL_RETAINED * sizeof(*v));
		n = SRWL_RETAINED;
	}
	*out = v;
	*np = n;
	return 0;
}

/* From *cur (owned), reads g+1, g+2, ... until `patience` consecutive names
 * are missing; *cur ends as the last snapshot found. */
static int srwl_probe(struct fl_lock *lk, int gfd, struct fl_srwl_snap *cur, int patience)
{
	unsigned long long g = cur->gen;
	int gap = 0;

	while (gap < patience) {
		struct fl_srwl_snap n;
		int r = srwl_read_gen(lk, gfd, ++g, &n);
		if (r < 0)
			return r;
		if (r == 0) {
			gap++;
			continue;
		}
		fl__srwl_snap_free(cur);
		*cur = n;
		gap = 0;
	}
	return 0;
}

/* One pass of Python's latest(): 1 found (*out), 0 nothing readable, -errno. */
static int srwl_find(struct fl_lock *lk, int gfd, struct fl_srwl_snap *out)
{
	struct srwl_handle *s = lk->be_data;
	unsigned long long *named, head, newest = 0;
	size_t n;
	char *ep;
	size_t el;
	int r, have;

	have = srwl_incarnation(gfd, &ep, &el);
	if (have < 0)
		return srwl_err(lk, have, "read", "gen", "epoch");
	if (have != s->have_epoch || (have && (el != s->epoch_len || memcmp(ep, s->epoch, el) != 0))) {
		free(s->epoch);
		s->epoch = ep;
		s->epoch_len = have ? el : 0;
		s->have_epoch = have;
		fl__srwl_snap_free(&s->latest);
		memset(&s->latest, 0, sizeof(s->latest));
	} else {
		free(ep);
	}
	r = srwl_list(gfd, &named, &n);
	if (r != 0)
		return srwl_err(lk, r, "readdir", "gen", NULL);
	{
		unsigned long long *t = realloc(named, (n + 2) * sizeof(*t));
		if (t == NULL) {
			free(named);
			return fl__errf(lk, -ENOMEM, "out of memory");
		}
		named = t;
	}
	if (s->latest.gen)
		named[n++] = s->latest.gen;
	head = srwl_head_gen(s, gfd);
	if (head)
		named[n++] = head;
	qsort(named, n, sizeof(*named), srwl_ullcmp);
	for (size_t i = n; i-- > 0;) {
		if (i + 1 < n && named[i] == named[i + 1])
			continue;
		r = srwl_read_gen(lk, gfd, named[i], out);
		if (r < 0)
			goto done;
		if (r == 1) {
			r = srwl_probe(lk, gfd, out, named[i] == head ? 1 : SRWL_RETAINED);
			if (r < 0)
				fl__srwl_snap_free(out);
			else
				r = 1;
			goto done;
		}
	}
	newest = n ? named[n - 1] : 0;
	memset(out, 0, sizeof(*out));
	out->gen = newest;
	r = srwl_probe(lk, gfd, out, SRWL_RETAINED);
	if (r == 0)
		r = out->gen > newest || n == 0;
	if (r == 0)
		fl__srwl_snap_free(out);
done:
	free(named);
	return r;
}

static int srwl_snap_copy(struct fl_srwl_snap *dst, const struct fl_srwl_snap *src)
{
	*dst = *src;
	dst->readers = NULL;
	dst->cap = 0;
	if (src->nr) {
		dst->readers = malloc(src->nr * sizeof(src->readers[0]));
		if (dst->readers == NULL)
			return -ENOMEM;
		memcpy(dst->readers, src->readers, src->nr * sizeof(src->readers[0]));
		dst->cap = src->nr;
	}
	return 0;
}

/* Python's latest(): the newest snapshot, remembered in s->latest too. */
static int srwl_latest(struct fl_lock *lk, int gfd, struct fl_srwl_snap *out)
{
	struct srwl_handle *s = lk->be_data;
	int r = srwl_find(lk, gfd, out);

	if (r == 0)
		r = srwl_find(lk, gfd, out);
	if (r < 0)
		return r;
	if (r == 0)
		return fl__errf(lk, -EPROTO, "read(%s/gen): the generation log names no readable snapshot",
				s->root);
	fl__srwl_snap_free(&s->latest);
	if (srwl_snap_copy(&s->latest, out) != 0)
		memset(&s->latest, 0, sizeof(s->latest));
	return 0;
}

/* Python's _extends_the_log(g). */
static int srwl_extends(struct fl_lock *lk, int gfd, unsigned long long g)
{
	struct srwl_handle *s = lk->be_data;
	char name[SRWL_DIGITS + 1], *buf;
	size_t len;
	int r;

	if (g <= 1)
		return !srwl_head_present(s, gfd);
	srwl_gen_name(name, g - 1);
	r = srwl_read(gfd, name, &buf, &len);
	free(buf);
	return r == 1;
}

/* Whether the epoch still reads as the remembered one. */
static int srwl_epoch_same(struct srwl_handle *s, int gfd)
{
	char *buf;
	size_t len;
	int r = srwl_read(gfd, "epoch", &buf, &len), same;

	if (r < 0)
		return 0;
	same = r == s->have_epoch && (!r || (len == s->epoch_len && !memcmp(buf, s->epoch, len)));
	free(buf);
	return same;
}

/* Writes data to a fresh gen/.commit-<TOK> and places it at target by link
 * (no replace, won when the identities match) or by rename.  1 placed,
 * 0 lost, -errno. */
static int srwl_publish(struct fl_lock *lk, int gfd, const char *target, const char *data,
			size_t len, int by_link)
{
	char tmp[sizeof(SRWL_TMP) + SRWL_TOK];
	struct stat a, b;
	int r, e = 0;

	memcpy(tmp, SRWL_TMP, sizeof(SRWL_TMP) - 1);
	fl__random_hex(tmp + sizeof(SRWL_TMP) - 1);
	r = srwl_create(gfd, tmp, data, len, by_link);
	if (r == -ENOENT)
		return 0; /* gen/ is gone: nothing to publish into; re-read */
	if (r != 0)
		return srwl_err(lk, r, "create", "gen", tmp);
	if (!by_link) {
		r = fl__sys.renameat(gfd, tmp, gfd, target) == 0 ? 1 : -errno;
		if (r < 0)
			srwl_unlink(gfd, tmp);
		return r;
	}
	if (fl__sys.linkat(gfd, tmp, gfd, target, 0) != 0 && errno != EEXIST)
		e = errno;
	/* Identity decides, whatever link reported. */
	r = fl__sys.fstatat(gfd, tmp, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fl__sys.fstatat(gfd, target, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino;
	srwl_unlink(gfd, tmp);
	if (r)
		return 1;
	if (e == EXDEV || e == ENOSYS || e == ENOTSUP || e == EOPNOTSUPP)
		return fl__errf(lk, -ENOTSUP,
				"link(%s/gen/%s): filesystem does not support atomic no-replace "
				"hard-link publication (%s)",
				srwl_root(lk), target, fl_strerror(-e));
	if (e != 0)
		return srwl_err(lk, -e, "link", "gen", target);
	return 0;
}

/* Python's GenerationLog.commit(): 1 won, 0 lost, -errno. */
static int srwl_commit(struct fl_lock *lk, int gfd, const struct fl_srwl_snap *succ)
{
	struct srwl_handle *s = lk->be_data;
	char name[SRWL_DIGITS + 1], *data;
	size_t len;
	int r;

	if (!srwl_epoch_same(s, gfd) || !srwl_extends(lk, gfd, succ->gen))
		return 0;
	r = srwl_encode(succ, &data, &len);
	if (r != 0)
		return fl__errf(lk, r, "out of memory");
	srwl_gen_name(name, succ->gen);
	r = srwl_publish(lk, gfd, name, data, len, 1);
	if (r <= 0)
		goto out;
	if (!srwl_extends(lk, gfd, succ->gen)) {
		srwl_unlink(gfd, name);
		r = 0;
		goto out;
	}
	fl__srwl_snap_free(&s->latest);
	if (srwl_snap_copy(&s->latest, succ) != 0)
		memset(&s->latest, 0, sizeof(s->latest));
	/* HEAD only moves forward; a failed update costs readers a probe. */
	if (srwl_epoch_valid(s) && srwl_epoch_same(s, gfd) && srwl_head_gen(s, gfd) < succ->gen) {
		char *hd = malloc(s->epoch_len + len);
		if (hd != NULL) {
			memcpy(hd, s->epoch, s->epoch_len);
			memcpy(hd + s->epoch_len, data, len);
			srwl_publish(lk, gfd, "HEAD", hd, s->epoch_len + len, 0);
			free(hd);
		}
	}
	if (succ->gen > SRWL_RETAINED + 1) {
		unsigned long long expired = succ->gen - SRWL_RETAINED - 1, oldest = expired;
		char *b;
		size_t bl;

		while (oldest > 1) {
			srwl_gen_name(name, oldest - 1);
			if (srwl_read(gfd, name, &b, &bl) != 1)
				break;
			free(b);
			oldest--;
		}
		for (; oldest <= expired; oldest++) {
			srwl_gen_name(name, oldest);
			srwl_unlink(gfd, name);
		}
	}
	r = 1;
out:
	free(data);
	return r;
}

/* ---- the participant ----------------------------------------------------- */

static int srwl_record(struct fl_lock *lk, const char *token, pid_t pid, char *buf, size_t cap)
{
	char nonce[SRWL_TOK + 1];

	fl__random_hex(nonce);
	return srwl_holder_format(buf, cap, token, nonce, lk->opt.stale_threshold, pid);
}

/* Rewrites our holder record from offset 0 with a fresh nonce.  0, -ENOENT
 * (it is gone), -errno. */
static int srwl_refresh(struct fl_lock *lk, int hfd, const char *token, pid_t pid)
{
	char rec[1024];
	int n = srwl_record(lk, token, pid, rec, sizeof(rec)), fd, r;

	if (n < 0)
		return n;
	fd = srwl_openat(hfd, token, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0)
		return errno == ESTALE ? -ENOENT : -errno;
	r = fl__write_all(fd, rec, (size_t)n);
	fl__sys.close(fd);
	return r;
}

static int srwl_create_holder(struct fl_lock *lk, int hfd, const char *token)
{
	char rec[1024];
	int n = srwl_record(lk, token, 0, rec, sizeof(rec));

	return n < 0 ? n : srwl_create(hfd, token, rec, (size_t)n, 0);
}

/* Unchanged for max(stale_threshold, the record's lease)?  (dfd, name) is
 * P.rw/<sub>/<name>; probe: may ask the server's clock on a first sight. */
static int srwl_unchanged(struct fl_lock *lk, int dfd, const char *sub, const char *name, int probe)
{
	struct srwl_handle *s = lk->be_data;
	double lim = lk->opt.stale_threshold, age, lease;
	char key[PATH_MAX + 64], *buf;
	struct stat st;
	size_t len;
	int r = srwl_read_st(dfd, name, &buf, &len, &st);

	if (r < 0)
		return 0; /* unreadable now (ESTALE after its retries too): decides nothing */
	srwl_key(s, sub, name, key, sizeof(key));
	age = srwl_observe(dfd, key, name, probe, buf, len, r ? &st : NULL);
	lease = r ? fl__srwl_holder_lease(buf, len) : 0;
	free(buf);
	return age >= (lease > lim ? lease : lim);
}

/* Collects orphan holder records and leftover temporaries (Python's sweep). */
static void srwl_sweep(struct fl_lock *lk, struct srwl_dirs *d, const struct fl_srwl_snap *latest,
		       const char *own)
{
	struct srwl_handle *s = lk->be_data;
	double now = fl__now_mono();
	int fds[2] = { d->holders, d->gen };
	const char *subs[2] = { "holders", "gen" };

	if (now < s->next_sweep)
		return;
	s->next_sweep = now + lk->opt.stale_threshold / 2;
	for (int k = 0; k < 2; k++) {
		int fd = fl__sys.openat(fds[k], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct dirent *de;
		DIR *dir;

		if (fd < 0)
			continue;
		dir = fl__sys.fdopendir(fd);
		if (dir == NULL) {
			fl__sys.close(fd);
			continue;
		}
		while ((de = fl__sys.readdir(dir)) != NULL) {
			const char *n = de->d_name;
			if (k == 0 && (!fl__srwl_is_token(n, strlen(n)) || strcmp(n, own) == 0 ||
				       srwl_is_member(latest, n)))
				continue;
			if (k == 1 && strncmp(n, SRWL_TMP, sizeof(SRWL_TMP) - 1) != 0)
				continue;
			/* Nobody waits for these: no probe, a first sight counts as zero. */
			if (srwl_unchanged(lk, fds[k], subs[k], n, 0)) {
				srwl_unlink(fds[k], n);
				srwl_forget(s, subs[k], n);
			}
		}
		fl__sys.closedir(dir);
	}
}

/* Commits {succ.gen = latest.gen + 1, writer, readers}; on a win unlinks
 * the evicted members' records.  1 won, 0 lost, -errno. */
static int srwl_commit_evicting(struct fl_lock *lk, struct srwl_dirs *d,
				const struct fl_srwl_snap *succ, const struct fl_srwl_snap *latest,
				const char *own)
{
	struct srwl_handle *s = lk->be_data;
	int r = srwl_commit(lk, d->gen, succ);

	if (r != 1)
		return r;
	/* Evicted: named by latest, named no more, and not us. */
	if (latest->writer[0] && strcmp(latest->writer, own) != 0 && !srwl_is_member(succ, latest->writer)) {
		srwl_unlink(d->holders, latest->writer);
		srwl_forget(s, "holders", latest->writer);
	}
	for (size_t i = 0; i < latest->nr; i++)
		if (strcmp(latest->readers[i], own) != 0 && !srwl_is_member(succ, latest->readers[i])) {
			srwl_unlink(d->holders, latest->readers[i]);
			srwl_forget(s, "holders", latest->readers[i]);
		}
	return 1;
}

/* Python's advance(): 0 granted, -EAGAIN not yet, -errno. */
static int srwl_advance(struct fl_lock *lk, struct srwl_hold *sh, struct srwl_dirs *d, int reader)
{
	for (int tries = 0; tries < 4; tries++) {
		struct fl_srwl_snap latest, succ;
		int stale_any = 0, granted, r;

		r = srwl_latest(lk, d->gen, &latest);
		if (r != 0)
			return r;
		/* Keep the claim fresh; the snapshot says whether we are in. */
		sh->entered = srwl_is_member(&latest, sh->token);
		r = srwl_refresh(lk, d->holders, sh->token, sh->pid);
		if (r == -ENOENT) {
			r = srwl_create_holder(lk, d->holders, sh->token);
			if (r == -EEXIST)
				r = 0;
		}
		if (r != 0) {
			fl__srwl_snap_free(&latest);
			/* ENOENT: holders/ went with the whole log; the next try
			 * creates it again. */
			return r == -ENOENT ? -EAGAIN : srwl_err(lk, r, "write", "holders", sh->token);
		}
		srwl_sweep(lk, d, &latest, sh->token);
		/* The successor: latest minus the stale members. */
		memset(&succ, 0, sizeof(succ));
		succ.gen = latest.gen + 1;
		if (latest.writer[0] && strcmp(latest.writer, sh->token) != 0 &&
		    srwl_unchanged(lk, d->holders, "holders", latest.writer, 1))
			stale_any = 1;
		else
			memcpy(succ.writer, latest.writer, sizeof(succ.writer));
		for (size_t i = 0; i < latest.nr; i++) {
			if (strcmp(latest.readers[i], sh->token) != 0 &&
			    srwl_unchanged(lk, d->holders, "holders", latest.readers[i], 1)) {
				stale_any = 1;
				continue;
			}
			if (srwl_add_reader(&succ, latest.readers[i]) != 0) {
				r = fl__errf(lk, -ENOMEM, "out of memory");
				goto out;
			}
		}
		if (!sh->entered) {
			if (succ.writer[0]) {
				r = stale_any ? srwl_commit_evicting(lk, d, &succ, &latest, sh->token) : 0;
				r = r < 0 ? r : -EAGAIN;
				goto out;
			}
			if (!reader) {
				memcpy(succ.writer, sh->token, sizeof(succ.writer));
			} else {
				if (srwl_add_reader(&succ, sh->token) != 0) {
					r = fl__errf(lk, -ENOMEM, "out of memory");
					goto out;
				}
				qsort(succ.readers, succ.nr, sizeof(succ.readers[0]), srwl_tokcmp);
			}
		}
		granted = reader || succ.nr == 0;
		if (sh->entered && !stale_any && !granted) {
			r = -EAGAIN;
			goto out;
		}
		r = srwl_commit_evicting(lk, d, &succ, &latest, sh->token);
		if (r == 1) {
			sh->entered = 1;
			if (granted)
				sh->generation = succ.gen;
			r = granted ? 0 : -EAGAIN;
		} else if (r == 0) {
			r = 1; /* lost: re-read and try again */
		}
out:
		fl__srwl_snap_free(&latest);
		fl__srwl_snap_free(&succ);
		if (r != 1)
			return r;
	}
	return -EAGAIN;
}

/* Commits a successor without our token until the newest snapshot no
 * longer names us.  0 or -errno. */
static int srwl_commit_out(struct fl_lock *lk, struct srwl_dirs *d, const char *token)
{
	for (;;) {
		struct fl_srwl_snap latest, succ;
		int r = srwl_latest(lk, d->gen, &latest);

		if (r != 0)
			return r;
		if (!srwl_is_member(&latest, token)) {
			fl__srwl_snap_free(&latest);
			return 0;
		}
		r = srwl_snap_copy(&succ, &latest);
		if (r == 0) {
			succ.gen = latest.gen + 1;
			if (strcmp(succ.writer, token) == 0)
				succ.writer[0] = '\0';
			for (size_t i = 0; i < succ.nr; i++)
				if (strcmp(succ.readers[i], token) == 0) {
					memmove(succ.readers[i], succ.readers[i + 1],
						(succ.nr - i - 1) * sizeof(succ.readers[0]));
					succ.nr--;
					break;
				}
			r = srwl_commit(lk, d->gen, &succ);
			fl__srwl_snap_free(&succ);
		} else {
			r = fl__errf(lk, r, "out of memory");
		}
		fl__srwl_snap_free(&latest);
		if (r != 0)
			return r > 0 ? 0 : r;
	}
}

/*
 * Python's leave(): commit ourselves out, then remove the holder record.
 * With `keep` (a release, which the caller may retry) a failure to commit
 * leaves the hold as it was, record included; otherwise (an acquire that
 * gave up) the record goes whatever happened, and a snapshot still naming us
 * ages out as a dead member's does.
 */
static int srwl_leave(struct fl_lock *lk, struct srwl_hold *sh, int keep)
{
	struct srwl_handle *s = lk->be_data;
	struct srwl_dirs d;
	int r;

	if (sh->token[0] == '\0')
		return 0;
	pthread_mutex_lock(&s->mu);
	r = srwl_open_dirs(lk, &d, 0);
	if (r == 0) {
		r = srwl_commit_out(lk, &d, sh->token);
		/* Out of the log, the record is only a leftover that peers sweep
		 * after the threshold: a transient failure (EIO, ESTALE) to
		 * remove it is retried, but is no reason to report the lock
		 * still held. */
		for (int i = 0; (r == 0 || !keep) && i < 3; i++)
			if (srwl_unlink(d.holders, sh->token) == 0)
				break;
		srwl_close_dirs(&d);
	} else if (r == -ENOENT) {
		r = 0; /* the whole log was removed: nothing names us */
	}
	pthread_mutex_unlock(&s->mu);
	if (r != 0 && keep)
		return r;
	sh->token[0] = '\0';
	sh->pid = 0;
	sh->entered = 0;
	sh->generation = 0;
	return r;
}

/* ---- heartbeat ------------------------------------------------------------ */

static int srwl_beat(struct fl_hb *hb)
{
	struct fl_hold *h = hb->h;
	struct fl_lock *lk = h->lk;
	struct srwl_handle *s = lk->be_data;
	struct srwl_hold *sh = srwl_hold_of(h);
	struct fl_srwl_snap latest;
	struct srwl_dirs d;
	int r;

	pthread_mutex_lock(&s->mu);
	r = srwl_open_dirs(lk, &d, 0);
	if (r != 0) {
		pthread_mutex_unlock(&s->mu);
		return r == -ENOENT ? FL_COMPROMISE_EVICTED : r;
	}
	r = srwl_refresh(lk, d.holders, sh->token, sh->pid);
	if (r == -ENOENT)
		r = FL_COMPROMISE_EVICTED;
	if (r == 0 && srwl_latest(lk, d.gen, &latest) == 0) {
		srwl_sweep(lk, &d, &latest, sh->token);
		if (!srwl_is_member(&latest, sh->token))
			r = FL_COMPROMISE_EVICTED;
		fl__srwl_snap_free(&latest);
	}
	srwl_close_dirs(&d);
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* ---- backend methods -------------------------------------------------------- */

static int srwl_setup(struct fl_lock *lk)
{
	struct srwl_handle *s;
	int r = fl__srw_opt_setup(lk);

	if (r != 0)
		return r;
	/* A waiter must look more often than a holder may stay silent. */
	if (lk->opt.poll_interval >= lk->opt.stale_threshold)
		return fl__errf(lk, -EINVAL,
				"poll_interval must be less than stale_threshold, got %g",
				lk->opt.poll_interval);
	if (lk->be_data != NULL || lk->path == NULL)
		return 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL || asprintf(&s->root, "%s.rw", lk->path) < 0) {
		free(s);
		return fl__errf(lk, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&s->mu, NULL);
	lk->be_data = s;
	return 0;
}

static void srwl_teardown(struct fl_lock *lk)
{
	struct srwl_handle *s = lk->be_data;

	if (s == NULL)
		return;
	free(s->epoch);
	fl__srwl_snap_free(&s->latest);
	free(s->root);
	pthread_mutex_destroy(&s->mu);
	free(s);
	lk->be_data = NULL;
}

static int srwl_hb_start(struct fl_lock *lk, struct fl_hold *h)
{
	struct srwl_hold *sh = srwl_hold_of(h);

	memset(&sh->hb, 0, sizeof(sh->hb));
	sh->hb.interval = lk->opt.heartbeat_interval;
	sh->hb.give_up = lk->opt.stale_threshold - lk->opt.heartbeat_interval;
	sh->hb.valid_for = lk->opt.stale_threshold;
	sh->hb.beat = srwl_beat;
	sh->hb.h = h;
	return fl__hb_add(&sh->hb);
}

static int srwl_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	struct srwl_handle *s = lk->be_data;
	struct srwl_hold *sh = srwl_hold_of(h);
	struct srwl_dirs d;
	char other[512];
	int r;

	(void)how; /* one try: the front end's loop owns the deadline */
	pthread_mutex_lock(&s->mu);
	r = srwl_open_dirs(lk, &d, 1);
	if (r == 0 && sh->token[0] == '\0') {
		fl__random_hex(sh->token);
		r = srwl_create_holder(lk, d.holders, sh->token);
		if (r != 0) {
			r = srwl_err(lk, r, "create", "holders", sh->token);
			sh->token[0] = '\0';
		}
	}
	if (r == 0)
		r = srwl_advance(lk, sh, &d, mode == FL_SHARED);
	srwl_close_dirs(&d);
	pthread_mutex_unlock(&s->mu);
	if (r != 0)
		return r;
	/* Granted: a live legacy holder on the same path would not see us. */
	if (fl__srw_legacy_live(lk->path, lk->opt.stale_threshold, other, sizeof(other))) {
		srwl_leave(lk, sh, 0);
		return fl__errf(lk, -EPROTO,
				"%s: %s belongs to a live holder of the legacy soft-rw protocol "
				"(filelock 3.32.3 and earlier), which does not see this protocol "
				"(filelock-rw/1); use one protocol on this path: select the legacy "
				"one here (protocol option, filelock --soft-rw-protocol=legacy) "
				"until every peer is upgraded, or stop the legacy peers",
				lk->path, other);
	}
	r = srwl_hb_start(lk, h);
	if (r != 0) {
		srwl_leave(lk, sh, 0);
		return fl__errf(lk, r, "%s: cannot start the heartbeat thread: %s", lk->path,
				fl_strerror(r));
	}
	return 0;
}

static void srwl_abandon(struct fl_lock *lk, struct fl_hold *h)
{
	srwl_leave(lk, srwl_hold_of(h), 0);
}

static int srwl_release(struct fl_lock *lk, struct fl_hold *h)
{
	int r;

	fl__hb_remove(&srwl_hold_of(h)->hb);
	r = srwl_leave(lk, srwl_hold_of(h), 1);
	/* Still held: keep it fresh so that the caller may retry. */
	if (r != 0 && atomic_load(&h->compromised) == 0)
		srwl_hb_start(lk, h);
	return r;
}

static int srwl_judge(int hfd, const char *tok, double stale, pid_t *pid, char host[256],
		      double *age, int *alive);

/*
 * Takes over the membership a process that shares our open file description
 * holds (the preload shim after fork or execve): the member of the newest
 * snapshot, as writer for FL_EXCLUSIVE (granted: no reader listed) or reader
 * for FL_SHARED, whose holder record names the taker (fl__adopt_pid_ok) on
 * this host.  Its record is refreshed at once and beaten from then on,
 * still naming the taker, so that every process sharing the description
 * finds it so (fork children one after another, an image after execve).
 * -ESTALE: no such member (evicted, released, someone else's).
 */
static int srwl_adopt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, dev_t dev,
		      ino_t ino, pid_t taker)
{
	struct srwl_handle *s = lk->be_data;
	struct srwl_hold *sh = srwl_hold_of(h);
	struct fl_srwl_snap latest;
	struct srwl_dirs d;
	char me[256];
	int r, found = 0;

	(void)dev;
	(void)ino;
	if (fl__hostname(me, sizeof(me)) != 0)
		return -ESTALE;
	memset(sh, 0, sizeof(*sh));
	pthread_mutex_lock(&s->mu);
	r = srwl_open_dirs(lk, &d, 0);
	if (r != 0) {
		pthread_mutex_unlock(&s->mu);
		return r == -ENOENT ? -ESTALE : r;
	}
	r = srwl_latest(lk, d.gen, &latest);
	if (r == 0) {
		size_t n = mode == FL_EXCLUSIVE ? (latest.writer[0] != '\0' && latest.nr == 0)
						: latest.nr;
		for (size_t i = 0; i < n && !found; i++) {
			const char *tok = mode == FL_EXCLUSIVE ? latest.writer : latest.readers[i];
			char host[256];
			double age;
			pid_t pid;
			int alive;

			(void)srwl_judge(d.holders, tok, lk->opt.stale_threshold, &pid, host, &age,
					 &alive);
			if (fl__adopt_pid_ok(pid, taker) && strcmp(host, me) == 0) {
				memcpy(sh->token, tok, sizeof(sh->token));
				sh->pid = pid;
				found = 1;
			}
		}
		if (found) {
			sh->entered = 1;
			sh->generation = latest.gen;
			r = srwl_refresh(lk, d.holders, sh->token, sh->pid);
			if (r == -ENOENT)
				found = 0;
		}
		fl__srwl_snap_free(&latest);
	}
	srwl_close_dirs(&d);
	pthread_mutex_unlock(&s->mu);
	if (r != 0 && r != -ENOENT)
		return r;
	if (!found) {
		sh->token[0] = '\0';
		return -ESTALE;
	}
	r = srwl_hb_start(lk, h);
	if (r != 0)
		return fl__errf(lk, r, "%s: cannot start the heartbeat thread: %s", lk->path,
				fl_strerror(r));
	return 0;
}

static int srwl_fencing_token(struct fl_lock *lk, struct fl_hold *h, unsigned long long *out)
{
	(void)lk;
	*out = srwl_hold_of(h)->generation;
	return 0;
}

/* ---- inspection and breaking by path ------------------------------------------ */

/*
 * Reads the log of `path` without writing anything: 1 and *out when a
 * snapshot is found, 0 when there is no log, -errno.
 */
static int srwl_peek(const char *path, struct fl_lock *t, struct srwl_handle *s,
		     struct srwl_dirs *d, struct fl_srwl_snap *out)
{
	int r;

	memset(t, 0, sizeof(*t));
	memset(s, 0, sizeof(*s));
	t->path = (char *)(uintptr_t)path;
	t->be_data = s;
	t->be = &fl__backend_softrw_log;
	t->kind = FL_SOFT_RW;
	d->gen = d->holders = -1;
	if (asprintf(&s->root, "%s.rw", path) < 0)
		return -ENOMEM;
	r = srwl_open_dirs(t, d, 0);
	if (r == -ENOENT)
		return 0;
	if (r != 0)
		return r;
	/* The epoch is read, never created: a missing one reads as none. */
	s->prepared = 1;
	{
		char *b;
		size_t l;
		int e = srwl_read(d->gen, "epoch", &b, &l);
		if (e > 0) {
			s->epoch = b;
			s->epoch_len = l;
			s->have_epoch = 1;
		}
	}
	memset(out, 0, sizeof(*out));
	{
		unsigned long long head = srwl_head_gen(s, d->gen), *named;
		size_t n;
		r = srwl_list(d->gen, &named, &n);
		if (r != 0)
			return r;
		out->gen = n ? named[n - 1] : 0;
		if (head > out->gen)
			out->gen = head;
		free(named);
		if (out->gen) {
			r = srwl_read_gen(t, d->gen, out->gen, out);
			if (r <= 0)
				return r < 0 ? r : 0;
		}
		r = srwl_probe(t, d->gen, out, SRWL_RETAINED);
	}
	return r < 0 ? r : 1;
}

static void srwl_peek_free(struct srwl_handle *s, struct srwl_dirs *d)
{
	free(s->root);
	free(s->epoch);
	fl__srwl_snap_free(&s->latest);
	if (d->gen >= 0 || d->holders >= 0)
		srwl_close_dirs(d);
}

/* One look at a member's record: 1 provably gone (record missing, or its
 * same-host pid dead), 0 otherwise; fills pid/host/age. */
static int srwl_judge(int hfd, const char *tok, double stale, pid_t *pid, char host[256],
		      double *age, int *alive)
{
	struct stat st;
	char *buf;
	size_t len;
	int r = srwl_read(hfd, tok, &buf, &len), dead = 0;

	*pid = 0;
	host[0] = '\0';
	*age = -1;
	*alive = -1;
	if (r == 0)
		return 1;
	if (r < 0)
		return 0;
	for (size_t i = 0; i < len;) {
		char *line = buf + i, *nl = memchr(line, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - line) : len - i;
		long long v;
		i += ll + 1;
		if (ll > 4 && memcmp(line, "pid=", 4) == 0 && fl__parse_ll(line + 4, ll - 4, &v) == 0 &&
		    v > 0 && v < (1LL << 31))
			*pid = (pid_t)v;
		else if (ll > 5 && ll - 5 < 256 && memcmp(line, "host=", 5) == 0) {
			memcpy(host, line + 5, ll - 5);
			host[ll - 5] = '\0';
		}
	}
	free(buf);
	if (fl__sys.fstatat(hfd, tok, &st, AT_SYMLINK_NOFOLLOW) == 0)
		*age = fl__now_wall() - fl__mtime(&st);
	if (*pid > 0 && host[0]) {
		char me[512];
		if (fl__hostname(me, sizeof(me)) == 0 && strcmp(me, host) == 0) {
			int a = fl__pid_alive(*pid);
			*alive = a < 0 ? -1 : a;
			dead = a == 0;
		}
	}
	return dead || *age > stale;
}

static int srwl_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct fl_lock t;
	struct srwl_handle s;
	struct srwl_dirs d = { -1, -1 };
	struct fl_srwl_snap snap;
	double stale = opt->stale_threshold;
	int r = srwl_peek(path, &t, &s, &d, &snap), live = 0, dead = 0, a;
	pid_t pid;
	char host[256], me[512];
	double age;

	if (fl__hostname(me, sizeof(me)) != 0)
		me[0] = '\0';
	if (r <= 0) {
		srwl_peek_free(&s, &d);
		if (r < 0)
			return r;
		out->state = FL_HOLDER_FREE;
		return 0;
	}
	out->readers = (unsigned)snap.nr;
	out->writers = snap.writer[0] != 0;
	out->mode = snap.writer[0] ? FL_EXCLUSIVE : FL_SHARED;
	for (size_t i = 0; i <= snap.nr; i++) {
		const char *tok = i < snap.nr ? snap.readers[i] : snap.writer;
		if (tok[0] == '\0')
			continue;
		if (srwl_judge(d.holders, tok, stale, &pid, host, &age, &a)) {
			dead++;
		} else {
			live++;
		}
		if (i == snap.nr || out->pid == 0) {
			out->pid = pid;
			snprintf(out->host, sizeof(out->host), "%s", host);
			out->age = age;
			out->heartbeat_age = age;
			out->alive = a;
			out->same_host = strcmp(me, host) == 0;
		}
	}
	if (live + dead == 0)
		out->state = FL_HOLDER_FREE;
	else
		out->state = live ? FL_HOLDER_HELD : FL_HOLDER_STALE;
	snprintf(out->detail, sizeof(out->detail),
		 "generation %llu: %s%u reader(s), %d member(s) not refreshed or gone",
		 snap.gen, snap.writer[0] ? "a writer, " : "", (unsigned)snap.nr, dead);
	fl__srwl_snap_free(&snap);
	srwl_peek_free(&s, &d);
	return 0;
}

/* Commits a successor without the provably gone members (all with FL_FORCE,
 * or the one token `name`). */
static int srwl_brk(const char *path, const struct fl_options *opt, unsigned flags, const char *name)
{
	struct fl_lock t;
	struct srwl_handle s;
	struct srwl_dirs d = { -1, -1 };
	struct fl_srwl_snap snap, succ;
	int force = (flags & FL_FORCE) != 0, broke = 0, live = 0, r, a;
	pid_t pid;
	char host[256];
	double age;

	if (name != NULL && !fl__srwl_is_token(name, strlen(name)))
		return fl__errf(NULL, -EINVAL, "%s: '%s' is not a holder token", path, name);
	r = srwl_peek(path, &t, &s, &d, &snap);
	if (r <= 0) {
		srwl_peek_free(&s, &d);
		if (r < 0)
			return r;
		return fl__errf(NULL, -ENOENT, "%s: no holder to break", path);
	}
	t.opt = *opt;
	memset(&succ, 0, sizeof(succ));
	succ.gen = snap.gen + 1;
	for (size_t i = 0; i <= snap.nr; i++) {
		const char *tok = i < snap.nr ? snap.readers[i] : snap.writer;
		int drop;
		if (tok[0] == '\0')
			continue;
		drop = (name == NULL || strcmp(name, tok) == 0) &&
		       (force || srwl_judge(d.holders, tok, opt->stale_threshold, &pid, host, &age, &a));
		if (drop)
			broke++;
		else if (i == snap.nr)
			memcpy(succ.writer, tok, sizeof(succ.writer));
		else if (srwl_add_reader(&succ, tok) != 0)
			r = -ENOMEM;
		if (!drop)
			live++;
	}
	if (broke && r >= 0) {
		r = srwl_commit_evicting(&t, &d, &succ, &snap, "");
		if (r == 0)
			r = fl__errf(NULL, -EAGAIN, "%s: the log moved on while breaking; retry", path);
	}
	fl__srwl_snap_free(&snap);
	fl__srwl_snap_free(&succ);
	srwl_peek_free(&s, &d);
	if (r < 0)
		return r;
	if (broke)
		return 0;
	if (live)
		return fl__errf(NULL, -EBUSY,
				"%s: %d live holder(s), none stale (stale_threshold %gs); use force",
				path, live, opt->stale_threshold);
	return fl__errf(NULL, -ENOENT, "%s: no holder to break", path);
}

/* For the legacy protocol: a record in P.rw/holders refreshed within `stale`
 * (wall clock; a look, not an observation), i.e. a participant of this
 * protocol is there.  Names it in what[]. */
int fl__srwl_live(const char *path, double stale, char *what, size_t cap)
{
	char dir[4200];
	struct dirent *de;
	int fd, found = 0;
	DIR *d;

	if ((size_t)snprintf(dir, sizeof(dir), "%s.rw/holders", path) >= sizeof(dir))
		return 0;
	fd = fl__sys.open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	d = fl__sys.fdopendir(fd);
	if (d == NULL) {
		fl__sys.close(fd);
		return 0;
	}
	while (!found && (de = fl__sys.readdir(d)) != NULL) {
		struct stat st;
		if (!fl__srwl_is_token(de->d_name, strlen(de->d_name)) ||
		    fl__sys.fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (fl__now_wall() - fl__mtime(&st) <= stale) {
			found = 1;
			snprintf(what, cap, "%s.rw/holders/%s", path, de->d_name);
		}
	}
	fl__sys.closedir(d);
	return found;
}

/* ---- waiting ---------------------------------------------------------------- */

#define SRWL_QUICK 0.005 /* the first adaptive step after a new generation */

/* A new generation (gen/<digits>) or HEAD renamed forward. */
static int srwl_wait_match(void *arg, int wd, uint32_t mask, const char *name)
{
	(void)arg;
	(void)wd;
	if (mask & (IN_DELETE_SELF | IN_MOVE_SELF))
		return 1;
	return (name[0] >= '0' && name[0] <= '9') || strcmp(name, "HEAD") == 0;
}

/*
 * Between tries.  Every transition is a new generation, so on one host a
 * waiter sleeps on inotify until a name appears in gen/ (a link of a
 * snapshot, or HEAD renamed forward), then tries again.  Other hosts'
 * commits raise no event: the sleep is also bounded by an adaptive step,
 * SRWL_QUICK after the log was seen to move, doubling up to the poll
 * interval while it does not.
 */
static void srwl_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	const uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
			      IN_DONT_FOLLOW;
	struct srwl_handle *s = lk->be_data;
	struct srwl_hold *sh = srwl_hold_of(h);
	double now = fl__now_mono();
	unsigned long long seen;
	char gen[4200], next[SRWL_DIGITS + 1];
	struct stat st;
	int ifd, wd;

	pthread_mutex_lock(&s->mu);
	seen = s->latest.gen;
	pthread_mutex_unlock(&s->mu);
	if (seen != sh->waited_gen || sh->step <= 0)
		sh->step = SRWL_QUICK;
	else if ((sh->step *= 2) > lk->opt.poll_interval)
		sh->step = lk->opt.poll_interval;
	sh->waited_gen = seen;
	if (until > now + sh->step)
		until = now + sh->step;
	if ((size_t)snprintf(gen, sizeof(gen), "%s/gen", s->root) >= sizeof(gen) ||
	    (ifd = fl__inotify_get()) < 0 || (wd = fl__inotify_watch(ifd, gen, mask)) < 0) {
		fl__wait_sleep_until(until);
		return;
	}
	/* A commit between the failed try and the watch: try at once. */
	srwl_gen_name(next, seen + 1);
	if ((size_t)snprintf(gen, sizeof(gen), "%s/gen/%s", s->root, next) < sizeof(gen) &&
	    fl__sys.lstat(gen, &st) != 0)
		fl__inotify_poll_match(ifd, until, srwl_wait_match, NULL);
	fl__inotify_unwatch(ifd, wd);
}

const struct fl_backend fl__backend_softrw_log = {
	.version = 1,
	.name = "soft-rw",
	.kind = FL_SOFT_RW,
	.caps = FL__CAP_SHARED | FL__CAP_RW | FL__CAP_SINGLETON,
	.hold_size = sizeof(struct srwl_hold),
	.default_poll = 0.25,
	.setup = srwl_setup,
	.attempt = srwl_attempt,
	.wait = srwl_wait,
	.release = srwl_release,
	.teardown = srwl_teardown,
	.inspect = srwl_inspect,
	.brk = srwl_brk,
	.abandon = srwl_abandon,
	.fencing_token = srwl_fencing_token,
	.adopt = srwl_adopt,
};
