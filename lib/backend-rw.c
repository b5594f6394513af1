/* SPDX-License-Identifier: MIT */
/*
 * backend-rw.c -- the `rw` kind: a reader/writer lock made of SQLite
 * transactions on an empty database (Python's ReadWriteLock).
 *
 * Protocol.  Every outermost acquisition opens a fresh connection to the
 * database at the lock path and runs the statements Python runs:
 * "PRAGMA journal_mode=MEMORY", then "BEGIN EXCLUSIVE TRANSACTION" for a
 * writer, or "BEGIN TRANSACTION; SELECT name FROM sqlite_master LIMIT 1" for
 * a reader (a deferred BEGIN takes no lock until a statement reads).  Release
 * is "ROLLBACK" and closing the connection.  Nothing is ever written: the
 * database stays 0 bytes and no journal file appears (the journal lives in
 * memory).  The locks are SQLite's unix-VFS POSIX byte-range locks: a reader
 * holds a read lock on the shared range [0x40000002, +510); a writer holds
 * write locks on RESERVED (0x40000001), PENDING (0x40000000) and the shared
 * range.  Because these are the very locks a Python ReadWriteLock takes
 * through its own SQLite, the two exclude each other and readers of both
 * overlap.  WAL is never used: it would let readers in beside a writer.
 *
 * Waiting.  SQLite reports contention as SQLITE_BUSY and retries through a
 * busy handler.  We install our own handler with a deadline instead of
 * busy_timeout, so that one attempt is bounded exactly: a front-end try
 * (FL__TRY) gives up at the first SQLITE_BUSY, a blocking acquire (FL__BLOCK,
 * no timeout and no cancel_check) waits inside SQLite until it holds the
 * lock, and the backend's `wait` hook, called by the front end between tries
 * with the end of the current poll interval, waits inside SQLite until then.
 * If the lock comes free during `wait` we keep it and the next `attempt`
 * reports success without touching SQLite again.
 *
 * Writer preference.  A writer that found readers holds PENDING while it
 * waits inside SQLite's busy handler, and PENDING turns away every new
 * reader; the writer gets in as soon as the readers present drain, however
 * many new readers keep arriving.  So a waiting writer must spend its time
 * inside SQLite: blocking acquires do so for the whole wait, timed ones for
 * all but one connection set-up: the front end hands the acquisition's
 * deadline down (h->deadline), and a timed wait with nothing else to check
 * (no cancel_check, not an asynchronous request) waits inside SQLite until
 * it, like a blocking one.  Only waits that must return to the front end
 * for a cancel check leave SQLite once per poll interval, dropping PENDING
 * for a fraction of a millisecond (measured before the deadline was handed
 * down: 7 to 11 of 5000 back-to-back reader tries got in beside a timed
 * writer, 0 beside a blocking one).  (The attempt that follows a `wait`
 * does not try again, which would double the window.)  A non-blocking
 * writer attempt takes one try only.
 *
 * Creation.  Missing parent directories are created (Python's ReadWriteLock
 * does not), by descriptor and not with FL_NO_CREATE_DIRS (fl__mkdir_p).
 * When the database file is missing we create it ourselves with
 * O_CREAT|O_EXCL (mode from the options, else 0600 as Python filelock 4
 * creates it; SQLite and 3.32.3 would use 0644), so that errors carry the
 * errno of our own call.  As in Python 4, a symbolic link or a non-regular
 * file at the path is refused (lstat first, then SQLITE_OPEN_NOFOLLOW so that
 * a link swapped in afterwards is refused by the open itself), and so is a
 * WAL-mode database (header bytes 18-19 = 2; read through SQLite's "PRAGMA
 * journal_mode" for a file of 100 bytes or more), which would let readers in
 * beside a writer and which our journal_mode=MEMORY would otherwise convert.
 * The descriptor is closed at once.  Closing any descriptor of a file drops
 * every POSIX lock the process holds on it, so this happens under rw_mu,
 * which also covers every sqlite3_open_v2 of ours: no connection of ours can
 * have opened, let alone locked, the new inode before we close.  We never
 * open an existing database file ourselves for the same reason.
 *
 * Crash.  POSIX locks die with their process: a SIGKILLed holder releases
 * at once.  Nothing on disk records a holder, so nothing is ever stale;
 * fl_inspect names holders from /proc/locks (same host only).
 *
 * Fork and exec.  SQLite's connections and its per-process table of locked
 * inodes must never be used in a fork child: the child owns none of the
 * parent's POSIX locks, yet SQLite would believe it does.  So the backend's
 * drop forgets the connection without closing it (sqlite3_close would roll
 * back and might close descriptors), inherited handles are refused by the
 * front end (-ECHILD), and every database that had an open connection at
 * fork time is poisoned in the child: acquiring it through any handle fails
 * with -ECHILD until the child execs or exits (Python does the same).  Every
 * descriptor SQLite opens is O_CLOEXEC, so after exec the lock works.  A fork
 * while another thread is inside SQLite may leave SQLite's own mutexes held
 * in the child; do not use any rw lock in such a child before exec.
 *
 * Clock and NFS.  No clock is read except to bound waits (monotonic).  POSIX
 * locks through SQLite are unreliable on NFS (and absent with `nolock`):
 * use soft-rw there.
 *
 * Downsides: about 20 system calls per acquisition (open, fstat, fcntl
 * locks, close); holders cannot be named across hosts; an application
 * closing its own descriptor of the database file would silently drop our
 * locks (POSIX semantics, as for any SQLite user).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <sqlite3.h>

#include "fl-internal.h"
#include "proclocks.h"

/* SQLite's unix-VFS lock bytes (os_unix.c), for fl_inspect. */
#define RW_PENDING_BYTE  0x40000000LL
#define RW_RESERVED_BYTE (RW_PENDING_BYTE + 1)
#define RW_SHARED_FIRST  (RW_PENDING_BYTE + 2)

/* Per-hold data. */
struct rw_hold {
	sqlite3 *db;       /* connection in the transaction that holds the lock   */
	enum fl_mode mode; /* mode of the acquisition in progress                  */
	int ready;         /* `wait` already took the lock for the next attempt    */
	int waited;        /* `wait` tried until its end: the next attempt need not */
};

/*
 * Databases with open connections of ours, by inode.  After fork the child
 * turns each one with a connection into a poisoned entry.
 */
struct rw_inode {
	dev_t dev;
	ino_t ino;
	unsigned conns;   /* connections open in this process                     */
	int poisoned;     /* had a connection when this process was forked        */
};

static pthread_mutex_t rw_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rw_inode *rw_inodes;
static size_t rw_ninodes, rw_cap;
static atomic_int rw_any_poison;
static pthread_once_t rw_once = PTHREAD_ONCE_INIT;

static void rw_child_reset(void)
{
	pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;

	rw_mu = init;
	for (size_t i = 0; i < rw_ninodes; i++) {
		if (rw_inodes[i].conns > 0) {
			rw_inodes[i].poisoned = 1;
			atomic_store(&rw_any_poison, 1);
		}
		rw_inodes[i].conns = 0;
	}
}

/* Around fork: no thread is between sqlite3_open_v2 and its registration
 * (or inside our create-and-close) when the child's copy is taken. */
static void rw_prefork(void)
{
	pthread_mutex_lock(&rw_mu);
}

static void rw_postfork_parent(void)
{
	pthread_mutex_unlock(&rw_mu);
}

static void rw_init(void)
{
	pthread_atfork(rw_prefork, rw_postfork_parent, NULL);
	fl__atfork_child(rw_child_reset);
}

/* Finds or adds the entry of (dev, ino).  Caller holds rw_mu. */
static struct rw_inode *rw_inode_get(dev_t dev, ino_t ino, int add)
{
	for (size_t i = 0; i < rw_ninodes; i++)
		if (rw_inodes[i].dev == dev && rw_inodes[i].ino == ino)
			return &rw_inodes[i];
	if (!add)
		return NULL;
	if (rw_ninodes == rw_cap) {
		size_t cap = rw_cap ? rw_cap * 2 : 8;
		struct rw_inode *n = realloc(rw_inodes, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		rw_inodes = n;
		rw_cap = cap;
	}
	memset(&rw_inodes[rw_ninodes], 0, sizeof(rw_inodes[0]));
	rw_inodes[rw_ninodes].dev = dev;
	rw_inodes[rw_ninodes].ino = ino;
	return &rw_inodes[rw_ninodes++];
}

/* Forgets one connection to (dev, ino); entries without connections and
 * without poison are removed so the table stays as small as the live set. */
static void rw_inode_put(dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&rw_mu);
	struct rw_inode *e = rw_inode_get(dev, ino, 0);
	if (e != NULL && e->conns > 0 && --e->conns == 0 && !e->poisoned)
		*e = rw_inodes[--rw_ninodes];
	pthread_mutex_unlock(&rw_mu);
}

/* ---- SQLite plumbing --------------------------------------------------- */

/* What the busy handler needs: the end of the wait and an inotify watch on
 * the database file, set up at the first busy call. */
struct rw_busy_arg {
	double until;     /* CLOCK_MONOTONIC; INFINITY = forever */
	const char *path;
	int ifd, wd;      /* -1 until watched */
	int tried;        /* the watch was tried (it may have failed) */
};

/*
 * Busy handler: SQLite calls it when a lock is taken; non-zero means "try
 * again".  It sleeps on a short back-off schedule (like SQLite's default
 * handler) but never past `until`, and wakes early when a descriptor of the
 * database is closed or the file written (inotify): a holder of ours closes
 * its connection on release, so the next try comes right after it.  The
 * schedule still bounds the sleep for a holder that ends its transaction
 * and keeps the connection open.
 */
static int rw_busy(void *arg, int count)
{
	static const double steps[] = { 0.001, 0.002, 0.005, 0.010, 0.015, 0.020, 0.025 };
	const uint32_t mask = IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_MODIFY | IN_DELETE_SELF |
			      IN_MOVE_SELF | IN_DONT_FOLLOW;
	struct rw_busy_arg *b = arg;
	double now = fl__now_mono();
	double step, t;

	if (now >= b->until || fl__wait_intr_fired())
		return 0;
	step = steps[count < 7 ? (count < 0 ? 0 : count) : 6];
	t = now + step < b->until ? now + step : b->until;
	if (!b->tried) {
		b->tried = 1;
		b->ifd = fl__inotify_get();
		if (b->ifd >= 0)
			b->wd = fl__inotify_watch(b->ifd, b->path, mask);
	}
	if (b->wd >= 0)
		fl__inotify_poll(b->ifd, b->wd, t, NULL);
	else
		fl__wait_sleep_until(t);
	return 1;
}

/* Maps a failed SQLite call to a negative errno and records the message. */
static int rw_sqlite_err(struct fl_lock *lk, sqlite3 *db, int rc, const char *what)
{
	int sys = db ? sqlite3_system_errno(db) : 0;
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	char ebuf[128];

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EAGAIN;
	case SQLITE_NOTADB:
		return fl__errf(lk, -EBADMSG,
				"%s(%s): not an SQLite database (sqlite3: %s); the rw kind "
				"needs an empty file or an SQLite database",
				what, lk->path, msg);
	case SQLITE_READONLY:
		return fl__errf(lk, -EACCES,
				"%s(%s): the database is read-only for this process (sqlite3: %s); "
				"readers work, a writer needs write permission",
				what, lk->path, msg);
	case SQLITE_NOMEM:
		return fl__errf(lk, -ENOMEM, "%s(%s): out of memory (sqlite3)", what, lk->path);
	case SQLITE_FULL:
		return fl__errf(lk, -ENOSPC, "%s(%s): %s (sqlite3)", what, lk->path, msg);
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		if (sys > 0)
			return fl__errf(lk, -sys, "%s(%s): %s (sqlite3: %s)", what, lk->path,
					fl__strerror_r(sys, ebuf, sizeof(ebuf)), msg);
		return fl__errf(lk, (rc & 0xff) == SQLITE_IOERR ? -EIO : -EACCES,
				"%s(%s): sqlite3: %s", what, lk->path, msg);
	default:
		return fl__errf(lk, -EIO, "%s(%s): sqlite3 error %d: %s", what, lk->path, rc, msg);
	}
}

/*
 * Creates the missing database file (see "Creation" above) and its parent
 * directories.  Returns 0 (created, or someone else did), or an error.
 */
static int rw_create(struct fl_lock *lk)
{
	mode_t perm = lk->opt.mode == -1 ? 0600 : (mode_t)lk->opt.mode;
	int fd, recorded;
	struct stat st;

	pthread_mutex_lock(&rw_mu);
	fd = fl__open_mkdir(lk, lk->path,
			    O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, perm,
			    &recorded);
	if (fd >= 0) {
		if (lk->opt.mode != -1 && fl__sys.fstat(fd, &st) == 0 &&
		    (st.st_mode & 07777) != perm)
			fl__sys.fchmod(fd, perm);
		fl__sys.close(fd);
	}
	pthread_mutex_unlock(&rw_mu);
	if (fd >= 0 || fd == -EEXIST || recorded)
		return fd >= 0 || fd == -EEXIST ? 0 : fd;
	return fl__err(lk, fd, "open", lk->path);
}

/* sqlite3_exec callback: copies the first column of the first row. */
static int rw_first_column(void *arg, int n, char **vals, char **names)
{
	char *out = arg;

	(void)names;
	if (n > 0 && vals[0] != NULL && out[0] == '\0')
		snprintf(out, 16, "%s", vals[0]);
	return 0;
}

/* Closes a connection of ours and forgets its inode. */
static void rw_disconnect(sqlite3 *db, dev_t dev, ino_t ino)
{
	sqlite3_close(db);
	rw_inode_put(dev, ino);
}

/*
 * Opens a fresh connection to lk->path: creates what is missing, refuses
 * directories and databases poisoned by fork.  Sets *dev and *ino to the
 * database's identity.
 */
static int rw_connect(struct fl_lock *lk, sqlite3 **out, dev_t *dev, ino_t *ino)
{
	const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
			  SQLITE_OPEN_PRIVATECACHE
#ifdef SQLITE_OPEN_NOFOLLOW
			  | SQLITE_OPEN_NOFOLLOW
#endif
		;
	struct rw_inode *e;
	struct stat st;
	sqlite3 *db = NULL;
	int r, rc, created = 0;

	pthread_once(&rw_once, rw_init);
	for (;;) {
		if (fl__sys.lstat(lk->path, &st) == 0)
			break;
		r = errno;
		if (r != ENOENT || created)
			return fl__err(lk, -r, "lstat", lk->path);
		r = rw_create(lk);
		if (r != 0)
			return r;
		created = 1;
	}
	if (S_ISDIR(st.st_mode))
		return fl__errf(lk, -EISDIR, "%s is a directory, not an SQLite database", lk->path);
	if (S_ISLNK(st.st_mode))
		return fl__errf(lk, -ELOOP,
				"%s is a symbolic link; refusing it (as Python filelock 4 does): "
				"lock the database's own path",
				lk->path);
	if (!S_ISREG(st.st_mode))
		return fl__errf(lk, -EINVAL, "%s is not a regular file, not an SQLite database",
				lk->path);
	if (atomic_load(&rw_any_poison)) {
		pthread_mutex_lock(&rw_mu);
		e = rw_inode_get(st.st_dev, st.st_ino, 0);
		r = e != NULL && e->poisoned;
		pthread_mutex_unlock(&rw_mu);
		if (r)
			return fl__errf(lk, -ECHILD,
					"SQLite database %s was active across fork(); exec or exit "
					"before using it in the child",
					lk->path);
	}

	pthread_mutex_lock(&rw_mu);
	rc = sqlite3_open_v2(lk->path, &db, flags, NULL);
	e = rc == SQLITE_OK ? rw_inode_get(st.st_dev, st.st_ino, 1) : NULL;
	if (e != NULL)
		e->conns++;
	pthread_mutex_unlock(&rw_mu);
	if (rc != SQLITE_OK) {
		r = rw_sqlite_err(lk, db, rc, "sqlite3_open");
		sqlite3_close(db);
		return r == -EAGAIN ? fl__errf(lk, -EIO, "sqlite3_open(%s): busy", lk->path) : r;
	}
	if (e == NULL) {
		sqlite3_close(db);
		return fl__errf(lk, -ENOMEM, "%s: out of memory", lk->path);
	}
	sqlite3_extended_result_codes(db, 1);
	if (st.st_size >= 100) {
		char jm[16] = "";
		rc = sqlite3_exec(db, "PRAGMA journal_mode", rw_first_column, jm, NULL);
		if (rc == SQLITE_OK && strcmp(jm, "wal") == 0) {
			rw_disconnect(db, st.st_dev, st.st_ino);
			return fl__errf(lk, -EINVAL,
					"%s is a WAL-mode database; refusing it (readers would "
					"enter beside a writer; Python filelock 4 refuses it too)",
					lk->path);
		}
	}
	*out = db;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

/*
 * One acquisition on a fresh connection, waiting inside SQLite until `until`
 * (CLOCK_MONOTONIC; 0 = no waiting, INFINITY = forever).  On success the
 * connection is kept in rh->db.  Returns 0, -EAGAIN or an error.
 */
static int rw_begin(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, double until)
{
	struct rw_hold *rh = (struct rw_hold *)h->priv;
	const char *sql = mode == FL_EXCLUSIVE
				  ? "BEGIN EXCLUSIVE TRANSACTION"
				  : "BEGIN TRANSACTION; SELECT name FROM sqlite_master LIMIT 1";
	struct rw_busy_arg busy = { until, lk->path, -1, -1, 0 };
	sqlite3 *db = NULL;
	dev_t dev = 0;
	ino_t ino = 0;
	int r, rc;

	r = rw_connect(lk, &db, &dev, &ino);
	if (r != 0)
		return r;
	/* SQLite opens a file it may not write read-only, and there BEGIN
	 * EXCLUSIVE "succeeds" with a mere read lock: a writer that excludes
	 * no reader.  Refuse instead (Python's ReadWriteLock does not). */
	if (mode == FL_EXCLUSIVE && sqlite3_db_readonly(db, "main") == 1) {
		rw_disconnect(db, dev, ino);
		return fl__errf(lk, -EACCES,
				"%s: the database is read-only for this process; a write lock "
				"needs write permission on it (read locks work)",
				lk->path);
	}
	sqlite3_busy_handler(db, rw_busy, &busy);
	rc = sqlite3_exec(db, "PRAGMA journal_mode=MEMORY", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	else
		sql = "PRAGMA journal_mode=MEMORY";
	sqlite3_busy_handler(db, NULL, NULL); /* `busy` lives on this stack frame */
	if (busy.wd >= 0)
		fl__inotify_unwatch(busy.ifd, busy.wd);
	if (rc != SQLITE_OK) {
		r = rw_sqlite_err(lk, db, rc,
				  sql[0] == 'P' ? "PRAGMA journal_mode"
				  : mode == FL_EXCLUSIVE ? "BEGIN EXCLUSIVE"
							 : "BEGIN");
		rw_disconnect(db, dev, ino);
		return r;
	}
	rh->db = db;
	h->dev = dev;
	h->ino = ino;
	return 0;
}

/* ---- the backend ------------------------------------------------------- */

static int rw_setup(struct fl_lock *lk)
{
	int r = fl__opt_no_lifetime(lk, "their own rules");

	if (r != 0)
		return r;
	if (sqlite3_libversion_number() < 3022000)
		return fl__errf(NULL, -ENOTSUP, "the rw kind needs SQLite >= 3.22, found %s",
				sqlite3_libversion());
	return 0;
}

static int rw_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	struct rw_hold *rh = (struct rw_hold *)h->priv;

	if (rh->ready && rh->mode == mode) {
		rh->ready = 0;
		return 0;
	}
	if (rh->ready) { /* cannot happen: one acquisition has one mode */
		rh->ready = 0;
		rw_disconnect(rh->db, h->dev, h->ino);
		rh->db = NULL;
	}
	/* A try right after `wait` tried until this very moment would only
	 * widen the window in which a writer holds no PENDING lock. */
	if (rh->waited) {
		rh->waited = 0;
		return -EAGAIN;
	}
	rh->mode = mode;
	return rw_begin(lk, h, mode, how == FL__BLOCK ? INFINITY : 0);
}

/* Between tries: wait inside SQLite (holding PENDING if we are a writer). */
static void rw_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	struct rw_hold *rh = (struct rw_hold *)h->priv;
	int r;

	if (rh->ready)
		return;
	/* Nothing but the deadline ends this wait (no cancel_check, not an
	 * asynchronous request): wait inside SQLite until then, so a writer
	 * keeps PENDING for the whole wait, as a blocking one does. */
	if (!h->wait_checks && h->deadline > until)
		until = h->deadline;
	r = rw_begin(lk, h, rh->mode, until);
	if (r == 0) {
		rh->ready = 1;
		return;
	}
	/* Busy until `until`: the next attempt just reports it.  Busy earlier
	 * (SQLite gave up without asking us): do not spin.  A real error: the
	 * next attempt runs and reports it. */
	if (r == -EAGAIN) {
		if (fl__now_mono() < until)
			fl__wait_sleep_until(until);
		rh->waited = 1;
	}
}

static int rw_release(struct fl_lock *lk, struct fl_hold *h)
{
	struct rw_hold *rh = (struct rw_hold *)h->priv;
	int rc;

	if (rh->db == NULL)
		return 0;
	rc = sqlite3_exec(rh->db, "ROLLBACK", NULL, NULL, NULL);
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(rh->db))
		return rw_sqlite_err(lk, rh->db, rc, "ROLLBACK"); /* still held */
	/* Closing without an open transaction releases every lock anyway. */
	rw_disconnect(rh->db, h->dev, h->ino);
	rh->db = NULL;
	return 0;
}

/* Fork child: never touch the parent's connection; it is leaked on purpose. */
static void rw_drop(struct fl_lock *lk, struct fl_hold *h)
{
	struct rw_hold *rh = (struct rw_hold *)h->priv;

	(void)lk;
	rh->db = NULL;
	rh->ready = 0;
}

/* Parses one /proc/locks line; returns 1 for a held POSIX lock of (dev, ino). */
static int rw_lock_line(const char *line, dev_t dev, ino_t ino, int *write, pid_t *pid,
			long long *start, long long *end)
{
	struct fl__proc_lock pl;

	/* A blocked waiter holds nothing. */
	if (!fl__proc_lock_parse(line, &pl) || pl.waiter ||
	    (strcmp(pl.type, "POSIX") != 0 && strcmp(pl.type, "OFDLCK") != 0) ||
	    makedev(pl.maj, pl.min) != dev || (ino_t)pl.ino != ino)
		return 0;
	*start = pl.start;
	*end = pl.end;
	*write = strcmp(pl.mode, "WRITE") == 0;
	*pid = (pid_t)pl.pid;
	return 1;
}

static int rw_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	pid_t writer = 0, pending = 0, reader = 0, pid, *rd = NULL;
	size_t nrd = 0, cap = 0;
	unsigned readers = 0;
	long long start, end;
	char line[512];
	struct stat st;
	int fd, w;
	FILE *f;

	(void)opt;
	if (fl__sys.stat(path, &st) != 0) {
		if (errno == ENOENT) {
			out->state = FL_HOLDER_FREE;
			snprintf(out->detail, sizeof(out->detail), "no database file");
			return 0;
		}
		return fl__err(NULL, -errno, "stat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		out->state = FL_HOLDER_MALFORMED;
		snprintf(out->detail, sizeof(out->detail), "not a regular file");
		return 0;
	}
	fd = fl__sys.open("/proc/locks", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
		int e = errno;
		if (fd >= 0)
			fl__sys.close(fd);
		return fl__err(NULL, -e, "open", "/proc/locks");
	}
	while (fgets(line, sizeof(line), f)) {
		if (!rw_lock_line(line, st.st_dev, st.st_ino, &w, &pid, &start, &end))
			continue;
		/* Same-process locks of one type merge, so test coverage. */
		if (w && start <= RW_SHARED_FIRST && end >= RW_SHARED_FIRST) {
			writer = pid;
		} else if (w && start <= RW_PENDING_BYTE && end >= RW_PENDING_BYTE) {
			pending = pid;
		} else if (!w && start <= RW_SHARED_FIRST && end >= RW_SHARED_FIRST) {
			if (nrd == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				pid_t *n = realloc(rd, ncap * sizeof(*n));
				if (n == NULL)
					continue; /* undercount rather than fail */
				rd = n;
				cap = ncap;
			}
			rd[nrd++] = pid;
		}
	}
	fclose(f);
	/* A writer on its way to EXCLUSIVE holds a read lock on the shared
	 * range besides PENDING: it is not a reader. */
	for (size_t i = 0; i < nrd; i++) {
		if (rd[i] == pending)
			continue;
		if (readers++ == 0)
			reader = rd[i];
	}
	free(rd);
	if (writer == 0 && readers == 0) {
		out->state = FL_HOLDER_FREE;
		if (pending != 0) {
			out->writers = 1;
			snprintf(out->detail, sizeof(out->detail),
				 "free; writer pid %d is entering", (int)pending);
		}
		return 0;
	}
	out->state = FL_HOLDER_HELD;
	out->mode = writer ? FL_EXCLUSIVE : FL_SHARED;
	out->pid = writer ? writer : reader;
	out->readers = readers;
	out->writers = (writer || pending) ? 1 : 0;
	out->same_host = 1;
	out->alive = 1;
	fl__hostname(out->host, sizeof(out->host));
	fl__start_token(out->pid, out->start, sizeof(out->start));
	if (writer)
		snprintf(out->detail, sizeof(out->detail), "write lock held by pid %d",
			 (int)writer);
	else
		snprintf(out->detail, sizeof(out->detail), "read lock held by %u process%s%s",
			 readers, readers == 1 ? "" : "es",
			 pending ? "; a writer is waiting" : "");
	return 0;
}

const struct fl_backend fl__backend_rw = {
	.version = 1,
	.name = "rw",
	.kind = FL_RW,
	.caps = FL__CAP_SHARED | FL__CAP_RW | FL__CAP_SINGLETON,
	.hold_size = sizeof(struct rw_hold),
	.default_poll = 0.05,
	.setup = rw_setup,
	.attempt = rw_attempt,
	.wait = rw_wait,
	.release = rw_release,
	.drop = rw_drop,
	.inspect = rw_inspect,
};
