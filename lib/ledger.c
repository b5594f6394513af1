/* SPDX-License-Identifier: MIT */
/*
 * ledger.c -- what this process has seen of other holders' liveness.
 *
 * Kinds that evict a silent holder (lease, soft-rw in both protocols, the
 * preload shim's byte-range owners, dotlocks with a heartbeat) decide
 * "silent" by watching the holder's marker: while its identity (dev, ino),
 * size and mtime stay the same, the holder has not refreshed it.
 * filelock-rw/1's holder records are refreshed by rewriting a nonce in
 * place (same size; the mtime may not move between two looks on a server
 * with coarse timestamps), so that protocol adds a hash of the bytes read
 * (fl_seen.tag): any change of bytes is a refresh too, as Python 4 judges.  Before this file each handle
 * (and each shim file) kept its own table, so a process that tried once per
 * handle or per descriptor (HDF5's flock(LOCK_NB) at every open, SQLite's
 * busy handler through the shim) started from zero every time, and a fresh
 * process had nothing at all.
 *
 * The ledger.  One table per process, keyed by the marker's absolute path
 * (a 64-bit hash of it), shared by every handle, descriptor and acquisition
 * and guarded by one mutex.  An entry holds the marker's identity and state
 * and the CLOCK_MONOTONIC time since which this process has seen that state
 * unchanged.  The table has LEDGER_SLOTS entries; when it is full the least
 * recently used one is dropped.  Dropping (or never having) an observation
 * only makes us wait longer: the next look starts a new one.  A hash
 * collision between two paths is harmless: an entry only counts when the
 * same (dev, ino, size, mtime) is seen again, which two different markers
 * never share.  A fork child starts with an empty ledger (another thread
 * of the parent may have been updating it), which again only delays.
 *
 * One try without client clocks.  A process that sees a marker for the
 * first time (no entry, or an entry for another inode) would have to watch
 * it for the whole bound before evicting, which a contender that tries once
 * (flock -n, HDF5, a job script retried in a fresh process) never does.  So
 * on a first sight we ask the file server how old the marker is:
 *  1. create a probe file next to the marker (O_CREAT|O_EXCL|O_NOFOLLOW,
 *     mode 0600, named ".filelock-probe.<pid>.<32 hex>.tmp": no lock kind
 *     and no shim rule uses that shape, a leading dot keeps it out of
 *     soft-rw's reader count, and the random part keeps concurrent probes
 *     apart), write one byte, read its mtime (statx AT_STATX_FORCE_SYNC):
 *     the server's "now"; close and unlink it right away;
 *  2. only then re-read the marker's attributes from the server
 *     (AT_STATX_FORCE_SYNC, not the attribute cache), so that a refresh
 *     made before our "now" is seen.
 * If the marker is still what the caller saw, it has been silent for at
 * least now - mtime - margin, with margin = 1 s + 2 x the timestamp
 * granularity (taken as 2 s when the probe's mtime has no sub-second part,
 * else 10 ms).  The observation is back-dated by that much, and from there
 * counts on our monotonic clock as usual.  Both timestamps come from the
 * same server clock, so no client clock is compared with anything.
 *
 * What it assumes: the file server sets mtimes (on create, write and a
 * futimens(NULL)/utimensat(NULL) touch: NFS SET_TO_SERVER_TIME; on a local
 * file system the kernel's clock), and its clock advances at the rate of
 * ours.  A holder that stamps explicit times from a clock running behind
 * the server's could look older than it is; our holders and Python's never
 * do.  Where clients stamp mtimes themselves (Lustre sends the client's
 * time), the probe and the marker carry two clients' clocks, and the margin
 * is then all that covers their skew: keep such clients' clocks within it
 * (NTP), or use bounds long enough that a first sight rarely matters.  Any
 * doubt means "alive": the probe cannot be created or read (a
 * read-only directory, EACCES, a quota), the marker changed or vanished in
 * between, its mtime lies in the server's future, or the age does not
 * exceed the margin; in all of these the observation simply starts now.
 * The probe is taken at most once per marker inode per process (a later
 * change of mtime proves the holder alive without asking), so a waiter
 * does not hit the server on every poll. *
 * Stalls are not silence.  While the file server (or our client of it)
 * stalls, no holder can refresh; when it thaws, our look may be answered
 * before the holder's queued refresh lands, and the whole stall would have
 * counted as the holder's silence (an NFS server frozen for 1.5 s made a
 * contender evict a live lease holder whose write, blocked in the stall,
 * then went through).  Every record read and every exclusive create of a
 * marker or record notes its duration (marker.c, fl__note_io: a contender
 * sits through a stall in its create as often as in a read); one of
 * FL__STALL (0.5 s) or more, or a probe that took that
 * long, marks a stall, and silence counts only from the end of the last
 * stall this process saw.  A stall slept through entirely (a poll interval
 * longer than the stall) is not seen; nor is one shorter than FL__STALL,
 * which matters only for bounds under about FL__STALL plus one heartbeat.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fl-internal.h"

#define LEDGER_SLOTS 256
#define LEDGER_MARGIN 1.0 /* seconds, plus twice the granularity */

struct ledger_entry {
	uint64_t key;       /* hash of the marker's path; 0 = free slot            */
	struct fl_seen s;   /* the state seen                                      */
	double since;       /* CLOCK_MONOTONIC since which s has been seen          */
	double used;        /* CLOCK_MONOTONIC of the last look (LRU)               */
};

static pthread_mutex_t ledger_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ledger_entry ledger[LEDGER_SLOTS];
static pthread_once_t ledger_once = PTHREAD_ONCE_INIT;
static atomic_uint ledger_probes; /* for tests: probes taken */

static void ledger_child(void)
{
	pthread_mutex_init(&ledger_mu, NULL);
	memset(ledger, 0, sizeof(ledger));
}

static void ledger_init(void)
{
	fl__atfork_child(ledger_child);
}

static uint64_t ledger_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h ? h : 1;
}

void fl__seen_of(struct fl_seen *s, const struct stat *st)
{
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = (long long)st->st_size;
	s->mtime = fl__mtime(st);
	s->tag = 0;
}

uint64_t fl__seen_tag(const void *bytes, size_t n)
{
	const unsigned char *b = bytes;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h ? h : 1;
}

static int ledger_same(const struct fl_seen *a, const struct fl_seen *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime == b->mtime &&
	       a->tag == b->tag;
}

/* As fl__mtime() computes it, so that equal stamps compare equal. */
static double ts_sec(const struct statx_timestamp *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

/* The path of a probe next to `name` (relative to dirfd, or absolute with
 * AT_FDCWD) into buf.  0 or -ENAMETOOLONG. */
static int probe_name(const char *name, char *buf, size_t cap)
{
	const char *slash = strrchr(name, '/');
	size_t dl = slash ? (size_t)(slash - name) + 1 : 0;
	char hex[33];

	fl__random_hex(hex);
	if (dl >= cap)
		return -ENAMETOOLONG;
	memcpy(buf, name, dl);
	if ((size_t)snprintf(buf + dl, cap - dl, ".filelock-probe.%d.%s.tmp", (int)fl__pid(),
			     hex) >= cap - dl)
		return -ENAMETOOLONG;
	return 0;
}

/* The server-clock age of the marker at (dirfd, name), which must still be
 * in state *s, minus the granularity margin, into *age.  0, or -errno when
 * the server cannot tell (-ESTALE: the marker changed). */
static int server_age(int dirfd, const char *name, const struct fl_seen *s, double *age)
{
	char probe[4200];
	struct statx px, mx;
	double gran, now;
	int fd, r;

	r = probe_name(name, probe, sizeof(probe));
	if (r != 0)
		return r;
	fd = fl__sys.openat(dirfd, probe,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	atomic_fetch_add_explicit(&ledger_probes, 1, memory_order_relaxed);
	r = fl__write_all(fd, "\n", 1);
	if (r == 0 && statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_MTIME | STATX_INO,
			    &px) != 0)
		r = -errno;
	if (r == 0 && (px.stx_mask & (STATX_MTIME | STATX_INO)) != (STATX_MTIME | STATX_INO))
		r = -ENOTSUP;
	fl__sys.close(fd);
	if (r == 0) /* only the file we created, whatever happened to the name */
		fl__unlink_if_same(dirfd, probe, makedev(px.stx_dev_major, px.stx_dev_minor),
				   px.stx_ino);
	else
		fl__sys.unlinkat(dirfd, probe, 0); /* its random name is ours alone */
	if (r != 0)
		return r;
	/* Only now the marker: a refresh made before the probe's stamp shows. */
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS,
		  &mx) != 0)
		return -errno;
	if ((mx.stx_mask & (STATX_INO | STATX_SIZE | STATX_MTIME)) !=
		    (STATX_INO | STATX_SIZE | STATX_MTIME) ||
	    makedev(mx.stx_dev_major, mx.stx_dev_minor) != s->dev || mx.stx_ino != s->ino ||
	    (s->size >= 0 && (long long)mx.stx_size != s->size) ||
	    ts_sec(&mx.stx_mtime) != s->mtime)
		return -ESTALE; /* it changed (or our view was cached): alive */
	gran = px.stx_mtime.tv_nsec == 0 ? 2.0 : 0.01;
	now = ts_sec(&px.stx_mtime);
	*age = now - ts_sec(&mx.stx_mtime) - (LEDGER_MARGIN + 2 * gran);
	return 0;
}

/* The entry for k, or (create) a free or the least recently used slot. */
static struct ledger_entry *ledger_slot(uint64_t k, int create)
{
	struct ledger_entry *v = &ledger[0];

	for (int i = 0; i < LEDGER_SLOTS; i++) {
		if (ledger[i].key == k)
			return &ledger[i];
		if (v->key != 0 && (ledger[i].key == 0 || ledger[i].used < v->used))
			v = &ledger[i];
	}
	if (!create)
		return NULL;
	memset(v, 0, sizeof(*v));
	return v;
}

double fl__ledger_silent(const char *key, int dirfd, const char *name, const struct fl_seen *s)
{
	uint64_t k = ledger_hash(key);
	struct ledger_entry *e;
	double now = fl__now_mono(), age, since = now, stalled = fl__stall_end();
	int known_inode = 0;

	pthread_once(&ledger_once, ledger_init);
	pthread_mutex_lock(&ledger_mu);
	e = ledger_slot(k, 0);
	if (e != NULL) {
		e->used = now;
		if (ledger_same(&e->s, s)) {
			age = now - (e->since > stalled ? e->since : stalled);
			pthread_mutex_unlock(&ledger_mu);
			return age;
		}
		known_inode = e->s.dev == s->dev && e->s.ino == s->ino;
	}
	pthread_mutex_unlock(&ledger_mu);

	/* A new state.  Its holder changed it while we watched (same inode): it
	 * is alive, count from now.  A marker we never saw: ask the server. */
	if (!known_inode && name != NULL && server_age(dirfd, name, s, &age) == 0 && age > 0) {
		since = now - age;
		/* A probe that stalled measured the stall too. */
		fl__note_io(now);
	}

	pthread_mutex_lock(&ledger_mu);
	e = ledger_slot(k, 1);
	if (e->key == k && ledger_same(&e->s, s) && e->since < since) {
		since = e->since; /* another thread recorded it meanwhile: keep the older */
	} else {
		e->key = k;
		e->s = *s;
		e->since = since;
	}
	e->used = now;
	pthread_mutex_unlock(&ledger_mu);
	stalled = fl__stall_end();
	return now - (since > stalled ? since : stalled);
}

void fl__ledger_forget(const char *key)
{
	uint64_t k = ledger_hash(key);

	pthread_once(&ledger_once, ledger_init);
	pthread_mutex_lock(&ledger_mu);
	for (int i = 0; i < LEDGER_SLOTS; i++)
		if (ledger[i].key == k)
			memset(&ledger[i], 0, sizeof(ledger[i]));
	pthread_mutex_unlock(&ledger_mu);
}

unsigned fl__ledger_probes(void)
{
	return atomic_load_explicit(&ledger_probes, memory_order_relaxed);
}
