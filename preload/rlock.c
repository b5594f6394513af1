/* SPDX-License-Identifier: MIT */
/*
 * rlock.c -- POSIX byte-range locks (fcntl F_SETLK/F_SETLKW/F_GETLK, the
 * F_OFD_* commands, lockf) emulated on a shared directory, so that programs
 * that lock byte ranges -- sqlite3 above all -- are correct across NFS
 * clients whose kernel locks do not reach each other.
 *
 * On disk.  Each data file has a lock directory next to its flock marker:
 * "<marker>.ranges/" ("<data>.lock.ranges", or under lock_dir).  In it:
 *
 *   p.<pid>.<token>@<host>        one owner file per process that holds
 *                                 POSIX locks on the file
 *   o.<pid>.<token>.<n>@<host>    one per open file description holding
 *                                 OFD locks (n numbers them in the process)
 *   mutex                         a marker of the rule's library kind (soft;
 *                                 lease for lease and soft-rw; strict uses
 *                                 "strict-mutex") held for a grow, or a
 *                                 burst of calls (see Lingering)
 *
 * An owner file is text:
 *
 *   filelock-ranges 1
 *   host <host>
 *   pid <pid>
 *   token <process start token>
 *   owner posix | owner ofd <n>
 *   R <start> <end>               one line per range, sorted, end inclusive
 *   W <start> <end>               (9223372036854775807: to end of file)
 *
 * and is only ever replaced whole (written to ".tmp.<name>.<32 random hex>",
 * renamed over), so readers see one version or the next, never half of one
 * (while its process holds the mutex it may lag behind: see Lingering).
 * Both steps go through one O_PATH|O_DIRECTORY|O_NOFOLLOW descriptor of the
 * directory, and the temporary is created O_EXCL|O_NOFOLLOW|O_NONBLOCK
 * under a name drawn from getrandom for each write (rl_tmp_create).  The
 * name used to be ".tmp.<name>": a FIFO planted there once hung a
 * non-blocking F_SETLK of root's in open() while it held the mutex, and
 * later, with O_EXCL, made every write fail, so that another user could
 * make a lingering holder lose its locks at will.  Nobody can know a random
 * name before it exists; one that is taken anyway is left alone and another
 * drawn.  A crash between create and rename leaves a temporary: a grow's
 * scan removes those provably ours (our POSIX owner's, an evicted owner's,
 * a dead local POSIX owner's; a regular file of our user with one link),
 * and nothing else (rl_tmp_sweep).  A write that fails all the same (a
 * full disk, a quota) fails the call that writes with ENOLCK; a deferred
 * write loses the locks it carried (see Lingering).  Owner files are read
 * up to FLP_RL_MAX_BYTES and parsed in linear time, at most
 * FLP_RL_MAX_RANGES lines (a 40,000-range file planted by another user cost
 * every lock call 5.9 s when each line was merged into the list); beyond
 * either cap a file is malformed, and a grow that would write more is
 * ENOLCK.  As root, the shim refuses a lock directory another user controls
 * (the mutex's fl_open checks it; see filelock(3)).
 *
 * Protocol.  An owner changes only its own file, and only while it is the
 * one thread of its process working on that file (rf->mu).  A change that
 * only releases or downgrades (F_UNLCK, W->R) can never create a conflict,
 * so it is written at once, without the mutex: a contender that reads the
 * old version just sees the lock a moment longer.  A change that adds or
 * upgrades bytes ("grow") takes the mutex, reads every other owner file,
 * and writes ours only when no other owner holds a conflicting range; the
 * mutex makes check-then-write atomic against every other grow, on every
 * host, because its O_EXCL create (or link, for strict) is atomic at the
 * server.  A conflict ends F_SETLK with EAGAIN; F_SETLKW drops the mutex,
 * sleeps until an owner file in the directory is rewritten or removed
 * (the library's wait engine: inotify, and a poll backing off from 1 ms to
 * the rule's poll_interval for changes no event shows, another host's)
 * and tries again; a wait for the mutex wakes when it is given back.  An
 * owner file that becomes empty is unlinked.
 *
 * Lingering.  A grow does not give the mutex back while the process still
 * holds locks on the file: SQLite's transaction is a burst of about nine
 * calls (five grows) that ends with everything released, and each grow
 * used to take the mutex and scan anew.  While the mutex lingers:
 *
 *  - a grow of the POSIX owner reuses the scan taken under it when that
 *    shows no conflict (nobody else can grow; others can only shrink, so
 *    the scan can only overstate); a conflict in it is checked by a fresh
 *    scan;
 *  - the POSIX owner's changes, grows and releases, stay in memory: every
 *    process that judges by the files (a grow) needs the mutex first, and
 *    the holder writes its file once, before it gives the mutex back;
 *  - it is given back when the process's locks on the file are all gone
 *    (the end of the burst: usually nothing to write then), on a conflict
 *    (others are waiting: let them in), 20 ms (RL_LINGER) after the last
 *    grow by a reaper thread (a process sitting on a read lock must not
 *    keep the directory), and before exit and execve (the new image knows
 *    only what the files say; the exec family is wrapped for this);
 *  - F_GETLK and the busy-retry shortcut below judge by the files only
 *    while nobody holds the mutex (a stat of it); otherwise F_GETLK takes
 *    the mutex for its scan, and the retry takes the grow path.
 *
 * A contender waits for a lingering mutex as for any (F_SETLK too: the
 * mutex is not the lock), at most RL_LINGER past the holder's last grow.
 * OFD owners write their file at once (they are rare; a scan for one
 * reads the POSIX owner's locks from memory).  strict rules never linger:
 * their mutex is not broken when its holder dies, so a holder that
 * crashed while lingering would wedge the file.  A lingering holder that
 * finds its lease on the mutex expired (it was paused past it) does not
 * write what it took meanwhile: those locks are lost, as an evicted owner
 * file's (below).  So are they when the file cannot be written as the
 * mutex goes back (a full disk, a quota):
 * keeping the mutex until the write works would let that user wedge the
 * directory, and execve cannot wait.  The mutex goes back with the file
 * as it was; stderr says so; the grow that gave it back (on a conflict)
 * and every later grow fail with ENOLCK until the process releases all
 * its locks on the file.  A holder that dies while lingering takes its unwritten
 * changes with it, as the kernel forgets a dead process's locks; its mutex
 * is evicted as any (a dead pid here; the lease bound elsewhere).
 *
 * Who owns what.  POSIX locks belong to the process: every thread shares
 * them, a fork child has none, and closing ANY descriptor of the file drops
 * them all (the close hooks ask flp_rl_close_fd, cheaply: one atomic load
 * while the process holds no range lock).  They survive execve, as the
 * kernel's do: the owner file names the same pid and start token, and the
 * new image adopts it at start for each file it inherited a descriptor of
 * (flp_rl_inherited), so that a close or exit before its first lock call
 * releases them as the kernel would.  OFD locks
 * belong to the open file description (struct flp_ofd): shared by dup'ed
 * descriptors, released when this process closes the last of them.
 *
 * Liveness.  The grow path evicts (unlinks, if it is still the same inode)
 * an owner file whose owner is provably gone: on this host, a dead pid or a
 * recycled one (start token).  For lease and soft-rw rules a heartbeat
 * thread touches each owner file every heartbeat_interval, and an owner on
 * another host is evicted once its file has stayed unchanged (same inode,
 * size, mtime) for the rule's bound (lease_duration, or stale_threshold):
 * as watched on OUR monotonic clock, or, the first time this process sees
 * that file, as the file server's clock tells (a probe file's mtime against
 * the owner file's; ledger.c), so clock skew between hosts does not matter
 * and a process that tries once recovers as a waiter does.  What was seen
 * is kept in the process's ledger, shared by every descriptor.  soft
 * and strict rules never evict another host's owner (as their markers): an
 * operator removes it.  A holder that finds its own owner file gone
 * (evicted while it was paused) says so on stderr; its next grow fails with
 * ENOLCK rather than rebuild a lock someone else may now hold.
 *
 * What it costs.  A burst is: mutex (create, write, fstat; close and unlink
 * at the end, after a stat), one directory scan (open, getdents64 until it
 * returns nothing, close; read directly: opendir adds two fcntl calls), one
 * read per other owner, and our file written once if the burst ends with
 * locks held (through a descriptor of the directory: create, write, fstat,
 * close, rename) -- about 10 system calls
 * on the lock directory for an uncontended SQLite transaction in rollback
 * mode, counted by bench/bench-sqlite.sh with strace (about 100 before the
 * mutex lingered).  Outside a burst a release is write + rename, or one
 * unlink.  Requests that change nothing (a range already held at that
 * type; an unlock of bytes not held) touch nothing.  After a grow found a
 * conflict, the next try of that file first reads the owner files without
 * the mutex (when nobody holds it) and answers EAGAIN if the conflict is
 * still there, so busy loops (SQLite's busy handler) mostly read.  On
 * network file systems a grow also refreshes the file's cached attributes
 * and pages.  FILELOCK_PRELOAD_STATS=1 prints the counts at exit.
 *
 * Records.  A file's record (struct flp_rfile) lives while an open file
 * description of it in this process names it or it holds anything (locks,
 * an owner file, a lingering mutex); the last put frees it, so a process
 * that locks many files in turn stays the same size.  Records are found by
 * device, inode and path: a walk (the reaper, exit) may keep a record of a
 * file that is gone a moment longer, and a new file may have its inode
 * number.
 *
 * Limits (filelock-preload(8)): no deadlock detection (EDEADLK) across
 * processes; also_native applies to flock only; OFD locks shared with a
 * fork child are released when the process that took them closes its last
 * descriptor; 32-bit struct flock (F_SETLK without LFS on i386) is not
 * handled, the shim is built for LP64.
 */
#undef _FORTIFY_SOURCE
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "fl-shim.h"
#include "flp.h"
#include "sys.h"

#define RL_NAME_MAX 240
#define RL_TMP_PREFIX ".tmp."
#define RL_TMP_MAX (RL_NAME_MAX + 48)
#define RL_DIRBUF 32768

/* What getdents64 returns (the kernel's struct linux_dirent64). */
struct rl_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* One owner's locks on one file, as on disk. */
struct flp_rowner {
	struct flp_rset set;   /* what the owner file says (empty: no file)      */
	char name[RL_NAME_MAX];
	int ofd;               /* 0 for the process's POSIX owner, else n        */
	pid_t creator;         /* the process that named it                      */
	char token[128];       /* and its start token (the file names both)       */
	dev_t fdev;            /* the owner file we wrote last                   */
	ino_t fino;
	atomic_int lost;       /* our file vanished (evicted); the beat sets it  */
	int dirty;             /* set differs from the file (lingering holder)   */
	struct fl_shim_beat *beat; /* heartbeat (lease, soft-rw rules); NULL: none */
	struct flp_rfile *rf;
};

struct flp_rfile {
	struct flp_rfile *next;
	dev_t dev;
	ino_t ino;
	const struct flp_rule *rule;
	pthread_mutex_t mu;        /* one thread of this process at a time     */
	char path[4096];           /* data path                                */
	char dir[4096];            /* the lock directory                       */
	char parent[4096];         /* the data file's directory                */
	struct flp_rowner posix;   /* this process's POSIX locks               */
	int adopted;               /* looked for our owner file (execve)       */
	fl_lock *mtx;              /* the directory mutex                      */
	pid_t mtx_pid;
	double bound;              /* eviction bound for other hosts; 0 never  */
	int remote;                /* not a local file system: cache coherence */
	int contended;             /* the last grow found a conflict           */
	atomic_int held;           /* we keep the mutex between calls (linger) */
	double held_until;         /* ... until then (CLOCK_MONOTONIC)         */
	struct rl_peer *cache;     /* the other owners, scanned under it       */
	size_t ncache;
	int cache_ok, cache_self;
	int refs;                  /* OFDs naming it, and walks (rl_mu)        */
};

/* How long a process keeps the directory mutex after a grow while it still
 * holds locks on the file (see "Lingering" above). */
#define RL_LINGER 0.02

struct rl_peer;
static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER; /* rl_files, ofd numbering */
static struct flp_rfile *rl_files;
static unsigned rl_ofd_seq;
atomic_int flp_rl_posix_held;

/* FILELOCK_PRELOAD_STATS */
static atomic_ullong rl_calls, rl_ops, rl_mutex_waits;
#define RL_OP(n) atomic_fetch_add_explicit(&rl_ops, (n), memory_order_relaxed)

static char rl_host[256];
static pthread_once_t rl_host_once = PTHREAD_ONCE_INIT;

static void rl_host_init(void)
{
	if (fl__hostname(rl_host, sizeof(rl_host)) != 0)
		snprintf(rl_host, sizeof(rl_host), "unknown");
}

/* ---- owner files --------------------------------------------------------- */

/* A host name as it may appear in a file name. */
static void rl_name_host(char *out, size_t cap, const char *host)
{
	size_t i;

	for (i = 0; host[i] && i + 1 < cap && i < 64; i++) {
		char c = host[i];
		out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				 c == '-' || c == '.'
			     ? c
			     : '_';
	}
	out[i] = '\0';
}

static void rl_owner_name(struct flp_rowner *ow)
{
	char h[80];

	pthread_once(&rl_host_once, rl_host_init);
	rl_name_host(h, sizeof(h), rl_host);
	ow->creator = fl__pid();
	snprintf(ow->token, sizeof(ow->token), "%s", fl__self_token());
	if (ow->ofd)
		snprintf(ow->name, sizeof(ow->name), "o.%d.%s.%d@%s", (int)fl__pid(),
			 fl__self_token(), ow->ofd, h);
	else
		snprintf(ow->name, sizeof(ow->name), "p.%d.%s@%s", (int)fl__pid(),
			 fl__self_token(), h);
}

static int rl_is_owner_name(const char *n)
{
	return (n[0] == 'p' || n[0] == 'o') && n[1] == '.' && strchr(n, '@') != NULL;
}

/* A parsed owner file. */
struct rl_peer {
	char name[RL_NAME_MAX];
	char host[256];
	pid_t pid;
	int ofd;
	int malformed;
	struct flp_rset set;
};

static int rl_format(const struct flp_rowner *ow, char *buf, size_t cap)
{
	int n, k;

	pthread_once(&rl_host_once, rl_host_init);
	/* The creator, as in the file's name, even when a fork child that
	 * shares the open file description writes it: liveness is judged by
	 * the pid and token, which must agree with the name. */
	n = snprintf(buf, cap, "filelock-ranges 1\nhost %s\npid %d\ntoken %s\n", rl_host,
		     (int)ow->creator, ow->token);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	k = ow->ofd ? snprintf(buf + n, cap - (size_t)n, "owner ofd %d\n", ow->ofd)
		    : snprintf(buf + n, cap - (size_t)n, "owner posix\n");
	if (k < 0 || (size_t)(n += k) >= cap)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < ow->set.n; i++) {
		const struct flp_range *r = &ow->set.v[i];
		k = snprintf(buf + n, cap - (size_t)n, "%c %lld %lld\n",
			     r->type == F_WRLCK ? 'W' : 'R', (long long)r->start, (long long)r->end);
		if (k < 0 || (size_t)(n += k) >= cap)
			return -E2BIG;
	}
	return n;
}

/* Reads a whole owner file (never following symlinks, never blocking; an
 * owner file renamed over by its process on another NFS client is read
 * again by name: fl__record_read). */
static int rl_read(int dfd, const char *name, char **out, size_t *len, struct stat *st)
{
	size_t cap = 4096;
	char *buf = NULL;

	for (;;) {
		char *nb = realloc(buf, cap);
		int r;

		if (nb == NULL) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		RL_OP(1);
		r = fl__record_read(dfd, name, buf, cap, len, st, NULL);
		if (r == 0 && !S_ISREG(st->st_mode))
			r = -EBADMSG;
		if (r < 0) {
			free(buf);
			return r;
		}
		if (*len < cap)
			break;
		/* It filled the buffer: it may be longer; read it again whole,
		 * up to one byte over any owner file we write. */
		if (cap > FLP_RL_MAX_BYTES) {
			free(buf);
			return -EFBIG; /* malformed, not read on */
		}
		cap = cap * 2 > FLP_RL_MAX_BYTES ? FLP_RL_MAX_BYTES + 1 : cap * 2;
	}
	*out = buf;
	return 0;
}

/*
 * A new temporary for the owner file `owner`: ".tmp.<owner>.<32 random hex>",
 * created O_CREAT|O_EXCL|O_NOFOLLOW|O_NONBLOCK, so it is a new regular file
 * of ours whatever another user planted; its name is unknown to anyone
 * before it exists, and a name that is taken (a FIFO, a symlink, a file
 * someone guessed or copied from a listing) is left alone: we draw another.
 * The name goes to tmp.  A descriptor or -errno.
 */
static int rl_tmp_create(int dfd, const char *owner, char *tmp, size_t cap)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC |
			  O_NOCTTY;

	for (int tries = 0; tries < 8; tries++) {
		char hex[33];
		int fd;

		fl__random_hex(hex);
		if ((size_t)snprintf(tmp, cap, "%s%s.%s", RL_TMP_PREFIX, owner, hex) >= cap)
			return -ENAMETOOLONG;
		do
			fd = fl__sys.openat(dfd, tmp, flags, 0644);
		while (fd < 0 && errno == EINTR);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/*
 * The owner name a temporary belongs to, into out: ".tmp.<owner>.<32 hex>"
 * (or ".tmp.<owner>", as written before the names were random).  0, or -1
 * when `name` is not a temporary.
 */
static int rl_tmp_owner(const char *name, char *out, size_t cap)
{
	size_t pl = sizeof(RL_TMP_PREFIX) - 1, n = strlen(name);
	const char *o = name + pl, *dot;
	size_t ol;

	if (n <= pl || strncmp(name, RL_TMP_PREFIX, pl) != 0)
		return -1;
	ol = n - pl;
	dot = strrchr(o, '.');
	if (dot && strlen(dot + 1) == 32 && strspn(dot + 1, "0123456789abcdef") == 32 &&
	    strchr(dot, '@') == NULL)
		ol = (size_t)(dot - o);
	if (ol == 0 || ol >= cap)
		return -1;
	memcpy(out, o, ol);
	out[ol] = '\0';
	return rl_is_owner_name(out) ? 0 : -1;
}

/* Writes ow's owner file (or unlinks it when empty).  0 or -errno.  Every
 * step is relative to one descriptor of the lock directory, and the
 * temporary is a new regular file of a random name (rl_tmp_create): a FIFO
 * or symlink planted anywhere can neither block nor redirect the write. */
static int rl_write(struct flp_rfile *rf, struct flp_rowner *ow, const struct flp_rset *next)
{
	char tmp[RL_TMP_MAX];
	char stackbuf[4096], *buf = stackbuf;
	struct flp_rset saved = ow->set;
	struct stat st;
	int dfd, fd, n, e;

	RL_OP(1);
	dfd = fl__sys.open(rf->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return next->n == 0 && errno == ENOENT ? 0 : -errno;
	if (next->n == 0) {
		RL_OP(1);
		n = fl__sys.unlinkat(dfd, ow->name, 0) != 0 && errno != ENOENT ? -errno : 0;
		fl__sys.close(dfd);
		if (n == 0) {
			flp_rset_clear(&ow->set);
			ow->fdev = 0;
			ow->fino = 0;
		}
		return n;
	}
	/* Format from next (rl_format reads ow->set). */
	ow->set = *next;
	n = rl_format(ow, buf, sizeof(stackbuf));
	if (n == -E2BIG) {
		size_t cap = 96 + next->n * 48;
		buf = malloc(cap);
		n = buf ? rl_format(ow, buf, cap) : -ENOMEM;
	}
	ow->set = saved;
	if (n < 0)
		goto out;
	RL_OP(2); /* create + write */
	fd = rl_tmp_create(dfd, ow->name, tmp, sizeof(tmp));
	if (fd < 0) {
		flp_log("%s: cannot create a temporary file for our owner file %s: %s", rf->dir,
			ow->name, strerror(-fd));
		n = fd;
		goto out;
	}
	e = fl__write_all(fd, buf, (size_t)n);
	if (e == 0 && fl__sys.fstat(fd, &st) != 0)
		e = -errno;
	if (fl__sys.close(fd) != 0 && e == 0)
		e = -errno;
	RL_OP(1);
	if (e == 0 && fl__sys.renameat(dfd, tmp, dfd, ow->name) != 0)
		e = -errno;
	if (e != 0) {
		fl__sys.unlinkat(dfd, tmp, 0);
		n = e;
		goto out;
	}
	n = flp_rset_copy(&ow->set, next);
	ow->fdev = st.st_dev;
	ow->fino = st.st_ino;
out:
	fl__sys.close(dfd);
	if (buf != stackbuf)
		free(buf);
	return n < 0 ? n : 0;
}

/* ---- heartbeat ------------------------------------------------------------ */

static int rl_beat(void *arg)
{
	struct flp_rowner *ow = arg;
	char path[4096 + RL_NAME_MAX + 8];

	snprintf(path, sizeof(path), "%s/%s", ow->rf->dir, ow->name);
	RL_OP(1);
	if (fl__sys.utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == ENOENT) {
		flp_log("%s: the owner file of our byte-range locks on %s is gone (evicted by "
			"another host after a pause longer than the stale bound?); the locks are "
			"lost",
			path, ow->rf->path);
		ow->lost = 1;
		return FL_COMPROMISE_MISSING;
	}
	return -errno;
}

static void rl_hb_sync(struct flp_rfile *rf, struct flp_rowner *ow)
{
	const struct flp_rule *r = rf->rule;

	if (ow->fino && ow->beat == NULL && rf->bound > 0) {
		ow->rf = rf;
		ow->beat = fl_shim_beat_start(r->heartbeat_interval > 0 ? r->heartbeat_interval
									 : rf->bound / 3,
					      rf->bound, rl_beat, ow);
	} else if (ow->fino == 0 && ow->beat != NULL) {
		fl_shim_beat_stop(ow->beat);
		ow->beat = NULL;
	}
}

/* ---- files and the mutex ------------------------------------------------- */

static double rl_bound(const struct flp_rule *r)
{
	switch (r->kind) {
	case FLP_LEASE:
		return r->lease_duration > 0 ? r->lease_duration : 30.0;
	case FLP_SOFT_RW:
		if (r->stale_threshold > 0)
			return r->stale_threshold;
		return 3 * (r->heartbeat_interval > 0 ? r->heartbeat_interval : 30.0);
	default:
		return 0; /* soft, strict: never evict another host */
	}
}

/* The record of the file o names, created on first use.  NULL: ENOMEM or
 * ENAMETOOLONG, reported. */
/*
 * File systems whose page cache is the only copy of the data (one kernel):
 * there a lock needs no cache work.  Anything else -- NFS, Lustre, GPFS,
 * CIFS, FUSE, and whatever we do not know -- is treated as a network file
 * system whose client caches data and attributes.
 */
static int rl_is_remote(int fd)
{
	static const unsigned long local[] = {
		0xEF53,     /* ext2/3/4 */
		0x58465342, /* xfs */
		0x9123683E, /* btrfs */
		0x01021994, /* tmpfs */
		0x2FC12FC1, /* zfs */
		0xF2F52010, /* f2fs */
		0x794C7630, /* overlayfs */
		0x858458F6, /* ramfs */
		0x3153464A, /* jfs */
		0x52654973, /* reiserfs */
	};
	struct statfs sf;

	if (fstatfs(fd, &sf) != 0)
		return 1;
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if ((unsigned long)sf.f_type == local[i])
			return 0;
	return 1;
}

/*
 * The kernel's NFS client makes a lock a cache coherence point: taking one
 * writes back dirty pages and drops cached data, releasing one writes back
 * (fs/nfs/file.c, do_setlk and do_unlk).  Our locks never reach the kernel,
 * so we do the same from user space, on network file systems only: on a
 * grow, refresh the attributes from the server (statx FORCE_SYNC: the size
 * SQLite reads next must be current) and drop cached pages; on releasing
 * written bytes, write back what is dirty.
 */
static void rl_cache_acquire(const struct flp_rfile *rf, int fd)
{
	struct statx stx;

	if (!rf->remote)
		return;
	RL_OP(2);
	(void)statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	/* The directory too: an NFS client that sees its change attribute
	 * move stops trusting cached names in it, so a journal another host
	 * created or deleted is seen as it is now. */
	(void)statx(AT_FDCWD, rf->parent, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx);
}

static void rl_cache_release(const struct flp_rfile *rf, int fd)
{
	if (!rf->remote || fd < 0)
		return;
	RL_OP(1);
	(void)sync_file_range(fd, 0, 0,
			      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				  SYNC_FILE_RANGE_WAIT_AFTER);
}

static struct flp_rfile *rl_file(struct flp_ofd *o, int fd)
{
	struct flp_rfile *rf;

	if (o->rf)
		return o->rf;
	pthread_mutex_lock(&rl_mu);
	/* The path too: a record a walk still holds may be of a file that is
	 * gone, whose inode number a new file now has. */
	for (rf = rl_files; rf; rf = rf->next)
		if (rf->dev == o->dev && rf->ino == o->ino && strcmp(rf->path, o->path) == 0)
			break;
	if (rf == NULL) {
		rf = calloc(1, sizeof(*rf));
		if (rf == NULL ||
		    (size_t)snprintf(rf->dir, sizeof(rf->dir), "%s.ranges", o->marker) >=
			sizeof(rf->dir)) {
			free(rf);
			pthread_mutex_unlock(&rl_mu);
			flp_log("fcntl(%s): cannot set up the lock directory (%s); failing with "
				"ENOLCK",
				o->path, rf ? "name too long" : "out of memory");
			return NULL;
		}
		rf->dev = o->dev;
		rf->ino = o->ino;
		rf->rule = o->rule;
		rf->bound = rl_bound(o->rule);
		rf->remote = rl_is_remote(fd);
		snprintf(rf->path, sizeof(rf->path), "%s", o->path);
		snprintf(rf->parent, sizeof(rf->parent), "%s", o->path);
		if (strrchr(rf->parent, '/') == rf->parent)
			rf->parent[1] = '\0';
		else
			*strrchr(rf->parent, '/') = '\0';
		pthread_mutex_init(&rf->mu, NULL);
		rf->next = rl_files;
		rl_files = rf;
	}
	rf->refs++; /* o's, dropped at its last close */
	pthread_mutex_unlock(&rl_mu);
	o->rf = rf;
	return rf;
}

static void rl_cache_drop(struct flp_rfile *rf);

/*
 * A file's record goes once nothing names it (no open file description of
 * the file in this process, no walk in progress) and it holds nothing: no
 * lock, no owner file, no lingering mutex.  Otherwise it stays, and the
 * next put looks again.  A record whose own mutex is busy is left for the
 * next put rather than waited for (rf->mu comes before rl_mu elsewhere).
 */
static void rl_put(struct flp_rfile *rf)
{
	struct flp_rfile **pp;
	int gone = 0;

	pthread_mutex_lock(&rl_mu);
	if (--rf->refs == 0 && pthread_mutex_trylock(&rf->mu) == 0) {
		if (!atomic_load(&rf->held) && rf->posix.set.n == 0 && rf->posix.fino == 0 &&
		    rf->posix.beat == NULL && !rf->posix.dirty) {
			for (pp = &rl_files; *pp; pp = &(*pp)->next)
				if (*pp == rf) {
					*pp = rf->next;
					gone = 1;
					break;
				}
		}
		pthread_mutex_unlock(&rf->mu);
	}
	pthread_mutex_unlock(&rl_mu);
	if (!gone)
		return;
	rl_cache_drop(rf);
	if (rf->mtx)
		fl_close(rf->mtx); /* not held: frees (a fork parent's: never releases) */
	flp_rset_free(&rf->posix.set);
	pthread_mutex_destroy(&rf->mu);
	free(rf);
}

/* The records (only those lingering on their mutex, with `held`), each with
 * a reference the caller drops with rl_put.  NULL when none (or ENOMEM). */
static struct flp_rfile **rl_snapshot(int held, size_t *n)
{
	struct flp_rfile **v = NULL, *rf;
	size_t cap = 0;

	*n = 0;
	pthread_mutex_lock(&rl_mu);
	for (rf = rl_files; rf; rf = rf->next) {
		if (held && !atomic_load(&rf->held))
			continue;
		if (*n == cap) {
			struct flp_rfile **nv;
			cap = cap ? 2 * cap : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				break;
			v = nv;
		}
		rf->refs++;
		v[(*n)++] = rf;
	}
	pthread_mutex_unlock(&rl_mu);
	return v;
}

static void rl_snapshot_put(struct flp_rfile **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rl_put(v[i]);
	free(v);
}

/* The lock directory must be one (not a symlink to somewhere else, not a
 * file): 0, or -ENOTDIR reported. */
static int rl_dir_ok(struct flp_rfile *rf)
{
	struct stat st;

	if (fl__sys.lstat(rf->dir, &st) != 0 || S_ISDIR(st.st_mode))
		return 0;
	flp_log("fcntl(%s): %s is %s, not the lock directory; remove it; failing with ENOLCK",
		rf->path, rf->dir, S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
	return -ENOTDIR;
}

static int rl_mutex_open(struct flp_rfile *rf)
{
	const struct flp_rule *r = rf->rule;
	struct fl_options opt;
	char path[4096 + 16];
	enum fl_kind kind;
	int e;

	if (rf->mtx && rf->mtx_pid == fl__pid())
		return 0;
	if ((e = rl_dir_ok(rf)) != 0)
		return e;
	if (rf->mtx)
		fl_close(rf->mtx); /* a fork parent's: freed, not released */
	rf->mtx = NULL;
	fl_options_init(&opt);
	opt.flags = FL_SHARED_CONTEXT | FL_NO_SINGLETON | (r->no_create_dirs ? FL_NO_CREATE_DIRS : 0);
	switch (r->kind) {
	case FLP_SOFT:
		kind = FL_SOFT;
		break;
	case FLP_STRICT:
		kind = FL_STRICT;
		break;
	default:
		kind = FL_LEASE;
		opt.lease_duration = rf->bound;
		opt.heartbeat_interval = r->heartbeat_interval > 0 &&
						 r->heartbeat_interval < rf->bound
					     ? r->heartbeat_interval
					     : rf->bound / 3;
		break;
	}
	/* strict keeps a permanent sentinel where its lock lives: a separate
	 * name, so that a rule changed from strict to another kind does not
	 * find that sentinel in the way forever. */
	snprintf(path, sizeof(path), "%s/%s", rf->dir, kind == FL_STRICT ? "strict-mutex" : "mutex");
	e = fl_open(&rf->mtx, path, kind, &opt);
	if (e != 0) {
		flp_log("fcntl(%s): %s; failing with ENOLCK", rf->path, fl_errmsg(NULL));
		rf->mtx = NULL;
		return e;
	}
	rf->mtx_pid = fl__pid();
	return 0;
}

/*
 * Signals during F_SETLKW.  The kernel ends a blocking F_SETLKW with EINTR
 * when a handler without SA_RESTART runs, and restarts it after one with
 * SA_RESTART; a signal may come at any moment of the wait.  Ours is mostly
 * sleep but also file-system work (the mutex, the scan), during which a
 * handler that ran would go unnoticed: the alarm() timeout idiom
 * (alarm(5); fcntl(F_SETLKW)) would then wait on.  So while a thread waits,
 * its asynchronous signals are blocked except inside the sleep, which is a
 * ppoll() that unblocks them atomically.  Before it sleeps, a signal that
 * came during the work and whose handler lacks SA_RESTART ends the wait
 * with EINTR (the handler runs as the sleep starts); a handler that runs
 * during the sleep ends it unless every handler the thread can receive has
 * SA_RESTART (which of them ran is not known).
 */
static sigset_t rl_async_set;
static pthread_once_t rl_async_once = PTHREAD_ONCE_INIT;
static __thread const sigset_t *rl_wait_mask __attribute__((tls_model("initial-exec")));

static void rl_async_init(void)
{
	static const int sync_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT };

	sigfillset(&rl_async_set);
	for (size_t i = 0; i < sizeof(sync_sigs) / sizeof(sync_sigs[0]); i++)
		sigdelset(&rl_async_set, sync_sigs[i]);
}

/* Would a handler of sig end F_SETLKW with EINTR? */
static int rl_sig_interrupts(int sig)
{
	struct sigaction sa;

	if (sigaction(sig, NULL, &sa) != 0 || (sa.sa_flags & SA_RESTART))
		return 0;
	return (sa.sa_flags & SA_SIGINFO) ||
	       (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
}

/* Among the signals in `set` that `orig` lets through, one whose handler
 * ends a wait?  (set NULL: all the asynchronous ones.) */
static int rl_any_interrupts(const sigset_t *set, const sigset_t *orig)
{
	for (int sig = 1; sig < NSIG; sig++)
		if ((set ? sigismember(set, sig) == 1 : sigismember(&rl_async_set, sig) == 1) &&
		    sigismember(orig, sig) == 0 && rl_sig_interrupts(sig))
			return 1;
	return 0;
}

/* Starts (orig: where to keep the caller's mask) or ends (NULL) a wait. */
void flp_wait_signals(sigset_t *orig, const sigset_t *restore)
{
	if (orig) {
		pthread_once(&rl_async_once, rl_async_init);
		pthread_sigmask(SIG_BLOCK, &rl_async_set, orig);
		rl_wait_mask = orig;
	} else {
		rl_wait_mask = NULL;
		flp_depth--; /* a pending handler runs now; it may call hooks */
		pthread_sigmask(SIG_SETMASK, restore, NULL);
		flp_depth++;
	}
}

/* Sleeps secs; EINTR when a handler ran that ends a wait (see above). */
int flp_wait_sleep(double secs)
{
	const sigset_t *orig = rl_wait_mask;
	struct timespec ts;
	sigset_t pend;
	int r = 0;

	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	flp_depth--; /* a signal handler may call hooked functions */
	if (orig == NULL) {
		r = nanosleep(&ts, NULL) == 0 ? 0 : errno;
	} else if (sigpending(&pend) == 0 && rl_any_interrupts(&pend, orig)) {
		r = EINTR; /* its handler runs when the wait ends */
	} else if (ppoll(NULL, 0, &ts, orig) != 0 && errno == EINTR &&
		   rl_any_interrupts(NULL, orig)) {
		r = EINTR;
	}
	flp_depth++;
	return r;
}

/* The library's signal-aware wait (struct fl_shim_signals) asks this: does a
 * pending signal (eintr 0), or the handler that just ran (eintr 1), end the
 * wait?  The same rule as flp_wait_sleep. */
int flp_wait_ended(void *arg, int eintr)
{
	const sigset_t *orig = rl_wait_mask;
	sigset_t pend;

	(void)arg;
	if (orig == NULL)
		return 0;
	if (!eintr)
		return sigpending(&pend) == 0 && rl_any_interrupts(&pend, orig);
	return rl_any_interrupts(NULL, orig);
}

static int rl_never_ends(void *arg, int eintr)
{
	(void)arg;
	(void)eintr;
	return 0;
}

/* One try at the directory mutex, for the wait engine. */
static int rl_mutex_try(void *arg)
{
	struct flp_rfile *rf = arg;
	int r;

	RL_OP(2); /* create + write */
	r = fl_acquire(rf->mtx, FL_EXCLUSIVE, 0);
	if (r == -ETIMEDOUT) {
		atomic_fetch_add_explicit(&rl_mutex_waits, 1, memory_order_relaxed);
		return -EAGAIN;
	}
	if (r != 0)
		flp_log("fcntl(%s): %s; failing with ENOLCK", rf->path, fl_errmsg(rf->mtx));
	return r;
}

/*
 * Takes the directory mutex before `deadline` (CLOCK_MONOTONIC).  Returns
 * 0, -ETIMEDOUT, -EINTR (only when `intr`: a signal handler ran while we
 * waited), or another -errno (reported on stderr).  The engine wakes when
 * the mutex file is removed (its holder gave it back) and polls from
 * 0.5 ms up to 10 ms: the mutex is held for milliseconds, and strict's
 * mutex, a permanent sentinel, shows no removal.  Inside an F_SETLKW wait
 * this reads that wait's watch of the same directory.
 */
static int rl_mutex_lock(struct flp_rfile *rf, double deadline, int intr)
{
	struct fl_shim_signals sig = { rl_wait_mask, intr ? flp_wait_ended : rl_never_ends, NULL,
				       &flp_depth };
	struct fl_shim_wait w = {
		.attempt = rl_mutex_try,
		.arg = rf,
		.watch = rf->rule->kind == FLP_STRICT ? NULL : rf->dir,
		.mask = IN_DELETE | IN_MOVED_FROM,
		.name = "mutex",
		.deadline = deadline,
		.first = 0.0005,
		.sig = &sig,
	};
	int r;

	if ((r = rl_mutex_open(rf)) != 0)
		return r;
	w.poll = fl_shim_poll_interval(rf->mtx);
	if (w.poll > 0.01)
		w.poll = 0.01; /* held for milliseconds: poll it faster than a lock */
	return fl_shim_wait_for(&w);
}

static void rl_mutex_unlock(struct flp_rfile *rf)
{
	RL_OP(1);
	if (fl_release(rf->mtx, FL_FORCE) != 0)
		flp_log("fcntl(%s): releasing the mutex: %s", rf->path, fl_errmsg(rf->mtx));
}

/* ---- scanning other owners ------------------------------------------------ */

/*
 * Is this other owner gone?  On this host: its pid is dead or recycled.
 * Elsewhere: its file stayed the same for rf->bound by our clock.  A
 * malformed file (not ours: we never write one) is judged by the second
 * rule with at least 2 s, whatever the kind, and reported.
 */
static int rl_stale(struct flp_rfile *rf, int dfd, const struct rl_peer *p,
		    const struct stat *st)
{
	double bound = rf->bound;
	char key[sizeof(rf->dir) + RL_NAME_MAX + 1];

	if (!p->malformed && strcmp(p->host, rl_host) == 0) {
		char token[96];
		/* The token is in the name: p.<pid>.<token>@host / o.<pid>.<token>.<n>@host */
		const char *t = strchr(p->name + 2, '.'), *at = strchr(p->name, '@');
		size_t tl;
		if (t == NULL || at == NULL || at < t)
			return 0;
		t++;
		tl = (size_t)(at - t);
		if (p->ofd) {
			const char *dot = memchr(t, '.', tl);
			if (dot)
				tl = (size_t)(dot - t);
		}
		if (tl == 0 || tl >= sizeof(token))
			return 0;
		memcpy(token, t, tl);
		token[tl] = '\0';
		return fl__owner_is_stale(p->pid, p->host, token);
	}
	if (p->malformed && bound < 2)
		bound = 2;
	if (bound <= 0 || (size_t)snprintf(key, sizeof(key), "%s/%s", rf->dir, p->name) >=
				  sizeof(key))
		return 0;
	return fl_shim_silent_for(key, dfd, p->name, st) >= bound;
}

static void rl_peers_free(struct rl_peer *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		flp_rset_free(&v[i].set);
	free(v);
}

/* A few names (temporaries seen by a scan, owners it evicted). */
struct rl_names {
	char **v;
	size_t n, cap;
};

static void rl_names_add(struct rl_names *l, const char *name)
{
	char *d;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4;
		char **nv = realloc(l->v, nc * sizeof(*nv));
		if (nv == NULL)
			return; /* only a cleanup is missed */
		l->v = nv;
		l->cap = nc;
	}
	d = strdup(name);
	if (d)
		l->v[l->n++] = d;
}

static void rl_names_free(struct rl_names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Is `owner` (an owner file's name) a process of this host that is gone?
 * Judged by the name alone: p.<pid>.<token>@<host>, o.<pid>.<token>.<n>@<host>. */
static int rl_name_dead_here(const char *owner)
{
	char h[80], token[96];
	const char *t, *at, *dot;
	long pid;
	char *end;

	pthread_once(&rl_host_once, rl_host_init);
	rl_name_host(h, sizeof(h), rl_host);
	at = strchr(owner, '@');
	if (at == NULL || strcmp(at + 1, h) != 0)
		return 0;
	pid = strtol(owner + 2, &end, 10);
	if (end == owner + 2 || *end != '.' || pid <= 0 || pid > INT_MAX)
		return 0;
	t = end + 1;
	dot = owner[0] == 'o' ? memchr(t, '.', (size_t)(at - t)) : NULL;
	if ((size_t)((dot ? dot : at) - t) == 0 || (size_t)((dot ? dot : at) - t) >= sizeof(token))
		return 0;
	memcpy(token, t, (size_t)((dot ? dot : at) - t));
	token[(dot ? dot : at) - t] = '\0';
	return fl__owner_is_stale((pid_t)pid, rl_host, token);
}

/*
 * Removes the temporaries a scan found that are provably leftovers of ours:
 * a crash between a temporary's create and its rename leaves one.  Provably
 * ours means all of: the name of a temporary of our own POSIX owner (only we
 * write it, and the caller holds rf->mu, so none of ours is in flight), of
 * an owner this scan evicted, or of a POSIX owner of this host whose process
 * is gone (an OFD owner's file may be written by a fork child of its
 * creator); a regular file with one link; created by our user.  Anything else
 * -- another user's file, FIFO or symlink at any such name, a temporary of
 * a live owner -- is left alone.
 */
static void rl_tmp_sweep(struct flp_rfile *rf, int dfd, const struct rl_names *tmps,
			 const struct rl_names *gone)
{
	for (size_t i = 0; i < tmps->n; i++) {
		char owner[RL_NAME_MAX];
		struct stat st;
		int ours = 0;

		if (rl_tmp_owner(tmps->v[i], owner, sizeof(owner)) != 0)
			continue;
		if (rf->posix.name[0] && strcmp(owner, rf->posix.name) == 0)
			ours = 1;
		for (size_t j = 0; !ours && j < gone->n; j++)
			ours = strcmp(owner, gone->v[j]) == 0;
		if (!ours && owner[0] == 'p')
			ours = rl_name_dead_here(owner);
		if (!ours)
			continue;
		RL_OP(1);
		if (fl__sys.fstatat(dfd, tmps->v[i], &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid())
			continue;
		RL_OP(1);
		if (fl__unlink_if_same(dfd, tmps->v[i], st.st_dev, st.st_ino) == 0)
			FLP_TRACE("%s/%s: removed a leftover temporary file", rf->dir, tmps->v[i]);
	}
}

/* Removes the file of the gone owner p (still the inode st shows), names it
 * in `gone` (its temporaries: rl_tmp_sweep), and says so.  1 removed, 0
 * left (changed meanwhile). */
static int rl_evict(struct flp_rfile *rf, int dfd, const struct rl_peer *p, const struct stat *st,
		    struct rl_names *gone)
{
	int e = fl__unlink_if_same(dfd, p->name, st->st_dev, st->st_ino);

	RL_OP(1);
	if (e != 0 && e != -ENOENT)
		return 0;
	rl_names_add(gone, p->name); /* its temporaries: rl_tmp_sweep */
	flp_log("%s/%s: %s; removed it", rf->dir, p->name,
		p->malformed ? "not a valid owner file and unchanged too long"
		: strcmp(p->host, rl_host) == 0 ? "its process is gone"
						: "its heartbeat stopped (host down or frozen)");
	return 1;
}

/*
 * Reads the owner file `name` of dfd into *p.  Returns 0 when p is an owner
 * to count (a malformed file counts as a write lock on the whole file), 1
 * when there is none (released meanwhile; gone, and with `evict` removed),
 * or -errno.  Only with 0 does p hold memory (p->set).
 */
static int rl_peer_read(struct flp_rfile *rf, int dfd, const char *name, int evict,
			struct rl_peer *p, struct rl_names *gone)
{
	struct stat st;
	char *buf;
	size_t len;
	int e;

	e = rl_read(dfd, name, &buf, &len, &st);
	if (e == -ENOENT)
		return 1; /* released meanwhile */
	memset(p, 0, sizeof(*p));
	memcpy(p->name, name, strlen(name) + 1); /* < RL_NAME_MAX: checked */
	if (e == 0) {
		if (flp_rl_parse(buf, len, p->host, sizeof(p->host), &p->pid, &p->ofd, &p->set) != 0)
			p->malformed = 1;
		free(buf);
	} else if (e == -EBADMSG || e == -ELOOP || e == -EFBIG) {
		p->malformed = 1; /* a symlink, FIFO, directory or huge file */
		if (fl__sys.fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			memset(&st, 0, sizeof(st));
	} else {
		return e;
	}
	if (p->malformed) {
		flp_rset_clear(&p->set);
		if (flp_rset_apply(&p->set, 0, FLP_OFF_MAX, F_WRLCK) != 0) {
			flp_rset_free(&p->set);
			return -ENOMEM;
		}
	}
	if (rl_stale(rf, dfd, p, &st)) {
		/* F_GETLK: an owner that is gone holds nothing (the kernel
		 * forgets a dead process's locks at once); the next grow
		 * removes its file. */
		if (!evict || rl_evict(rf, dfd, p, &st, gone)) {
			flp_rset_free(&p->set);
			return 1;
		}
	}
	if (p->malformed && evict)
		FLP_TRACE("%s/%s: not a valid owner file; counted as a write lock on the "
			  "whole file until it is removed",
			  rf->dir, p->name);
	return 0;
}

/* Appends *p to v[n] (growing cap).  0 or -ENOMEM (p's memory freed). */
static int rl_peer_push(struct rl_peer **v, size_t *n, size_t *cap, struct rl_peer *p)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct rl_peer *nv = realloc(*v, nc * sizeof(**v));
		if (nv == NULL) {
			flp_rset_free(&p->set);
			return -ENOMEM;
		}
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = *p;
	return 0;
}

/*
 * Reads every owner file of rf except `self`.  Owners found gone are left
 * out; with `evict` (the caller holds the mutex) their files are removed.  A
 * malformed file counts as a write lock on the whole file.  0 or -errno.
 * Temporaries it finds that are provably ours are removed (rl_tmp_sweep).
 */
static int rl_scan(struct flp_rfile *rf, const char *self, int evict, struct rl_peer **out,
		   size_t *nout, int *self_seen)
{
	struct rl_peer *v = NULL, p;
	struct rl_names tmps = { 0 }, gone = { 0 };
	size_t n = 0, cap = 0;
	char *dbuf;
	int dfd, r = 0;

	*out = NULL;
	*nout = 0;
	RL_OP(1);
	dfd = fl__sys.open(rf->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* getdents64 itself: opendir would add two fcntl calls to every
	 * scan, a round trip each on some network file systems. */
	dbuf = malloc(RL_DIRBUF);
	if (dbuf == NULL) {
		fl__sys.close(dfd);
		return -ENOMEM;
	}
	while (r == 0) {
		long got = syscall(SYS_getdents64, dfd, dbuf, RL_DIRBUF);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			break;
		}
		if (got == 0)
			break;
		for (long off = 0; off < got && r == 0;) {
			const struct rl_dirent64 *de = (const struct rl_dirent64 *)(void *)(dbuf + off);

			off += de->d_reclen;
			if (strcmp(de->d_name, self) == 0) {
				*self_seen = 1;
				continue;
			}
			if (evict && de->d_name[0] == '.' &&
			    strncmp(de->d_name, RL_TMP_PREFIX, sizeof(RL_TMP_PREFIX) - 1) == 0) {
				rl_names_add(&tmps, de->d_name);
				continue;
			}
			if (!rl_is_owner_name(de->d_name) || strlen(de->d_name) >= RL_NAME_MAX)
				continue;
			r = rl_peer_read(rf, dfd, de->d_name, evict, &p, &gone);
			if (r == 0)
				r = rl_peer_push(&v, &n, &cap, &p);
			else if (r == 1)
				r = 0;
		}
	}
	free(dbuf);
	if (tmps.n)
		rl_tmp_sweep(rf, dfd, &tmps, &gone);
	rl_names_free(&tmps);
	rl_names_free(&gone);
	fl__sys.close(dfd);
	RL_OP(n);
	if (r != 0) {
		rl_peers_free(v, n);
		return r;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* Does changing [start, end] give up write-locked bytes of s? */
static int rl_drops_write(const struct flp_rset *s, int64_t start, int64_t end)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].type == F_WRLCK && s->v[i].start <= end && start <= s->v[i].end)
			return 1;
	return 0;
}

/* ---- the operations --------------------------------------------------------- */

/* execve keeps POSIX locks: our pid and token are the same, so is the file. */
static void rl_adopt(struct flp_rfile *rf)
{
	char path[4096 + RL_NAME_MAX + 8], host[256], *buf;
	struct stat st;
	size_t len;
	pid_t pid;
	int ofd;

	rf->adopted = 1;
	if (rf->posix.name[0] == '\0')
		rl_owner_name(&rf->posix);
	snprintf(path, sizeof(path), "%s/%s", rf->dir, rf->posix.name);
	if (rl_read(AT_FDCWD, path, &buf, &len, &st) != 0)
		return;
	if (flp_rl_parse(buf, len, host, sizeof(host), &pid, &ofd, &rf->posix.set) == 0 &&
	    pid == fl__pid() && ofd == 0 && rf->posix.set.n) {
		rf->posix.fdev = st.st_dev;
		rf->posix.fino = st.st_ino;
		atomic_fetch_add(&flp_rl_posix_held, 1);
		rl_hb_sync(rf, &rf->posix);
		FLP_TRACE("%s: adopted %zu byte range(s) this process held before execve",
			  rf->path, rf->posix.set.n);
	} else {
		flp_rset_clear(&rf->posix.set);
	}
	free(buf);
}

/* Sets ow's locks to next, with or without the mutex.  Caller holds rf->mu. */
static int rl_commit(struct flp_rfile *rf, struct flp_rowner *ow, const struct flp_rset *next)
{
	int had = ow->set.n != 0, r;

	/* A release of everything unlinks the owner file: stop its heartbeat
	 * first, or a beat between the unlink and the stop finds the file gone
	 * and marks the locks lost, and the next grow fails with ENOLCK. */
	if (next->n == 0 && ow->beat != NULL) {
		fl_shim_beat_stop(ow->beat);
		ow->beat = NULL;
	}
	/* After an eviction only releases reach here; they must not bring
	 * the owner file back. */
	if (ow->lost && next->n != 0)
		r = flp_rset_copy(&ow->set, next);
	else
		r = rl_write(rf, ow, next);
	if (r != 0) {
		rl_hb_sync(rf, ow); /* still held: beat again */
		flp_log("fcntl(%s): cannot write %s/%s: %s", rf->path, rf->dir, ow->name,
			strerror(-r));
		return r;
	}
	if (!ow->ofd && had != (ow->set.n != 0))
		atomic_fetch_add(&flp_rl_posix_held, ow->set.n ? 1 : -1);
	if (ow->set.n == 0)
		ow->lost = 0;
	rl_hb_sync(rf, ow);
	return 0;
}

/* Sets the POSIX owner's locks in memory only: we hold the mutex, and the
 * file is written when we give it back (rl_linger_end). */
static int rl_commit_lazy(struct flp_rowner *ow, const struct flp_rset *next)
{
	int had = ow->set.n != 0;

	if (flp_rset_copy(&ow->set, next) != 0)
		return -ENOMEM;
	ow->dirty = 1;
	if (had != (ow->set.n != 0))
		atomic_fetch_add(&flp_rl_posix_held, ow->set.n ? 1 : -1);
	if (ow->set.n == 0)
		ow->lost = 0;
	return 0;
}

static void rl_cache_drop(struct flp_rfile *rf)
{
	if (rf->cache)
		rl_peers_free(rf->cache, rf->ncache);
	rf->cache = NULL;
	rf->ncache = 0;
	rf->cache_ok = 0;
}

/*
 * Gives the lingering mutex back: writes the POSIX owner's file if it
 * changed, then releases the mutex.  A write that fails (a full disk, a
 * quota; no longer anything another user plants: rl_tmp_create) cannot be retried
 * until it works: the mutex would stay ours for as long as the obstacle
 * does, wedging every other process's grows, and not at all across
 * execve.  So the locks taken under the mutex are lost, as an evicted
 * owner's: said on stderr, the next grow fails with ENOLCK, and the mutex
 * goes back with the file as it was (what it records stays held until the
 * process releases everything).  Caller holds rf->mu.  0, or -ENOLCK when
 * locks were lost.
 */
static int rl_linger_end(struct flp_rfile *rf)
{
	struct flp_rowner *ow = &rf->posix;
	int r = 0;

	if (!atomic_load(&rf->held))
		return 0;
	rl_cache_drop(rf);
	if (rf->mtx_pid != fl__pid()) { /* a fork parent's */
		atomic_store(&rf->held, 0);
		return 0;
	}
	if (ow->dirty && ow->set.n && !fl_is_valid(rf->mtx)) {
		/* Held past its lease (this process was paused): another
		 * process may have taken the mutex and locks that conflict
		 * with what we took under it meanwhile.  Writing those now
		 * could overlap them. */
		flp_log("fcntl(%s): this process held the mutex %s past its lease (paused?); the "
			"byte-range locks taken since it was taken are lost",
			rf->path, fl_path(rf->mtx));
		ow->lost = 1;
		ow->dirty = 0;
	}
	if (ow->dirty) {
		struct flp_rset cur = { 0 };
		if (ow->set.n == 0 && ow->fino == 0)
			r = 0; /* nothing on disk, nothing held */
		else if (flp_rset_copy(&cur, &ow->set) != 0)
			r = -ENOMEM;
		else
			r = rl_commit(rf, ow, &cur);
		flp_rset_free(&cur);
		if (r != 0 && ow->set.n == 0) {
			r = 0; /* an unlink that failed: the file overstates, safely */
		} else if (r != 0) {
			flp_log("fcntl(%s): the owner file %s/%s could not be written before the "
				"mutex went back; the byte-range locks taken since it was taken are lost",
				rf->path, rf->dir, ow->name);
			ow->lost = 1;
			r = -ENOLCK;
		}
		ow->dirty = 0;
	}
	rl_mutex_unlock(rf);
	atomic_store(&rf->held, 0);
	return r;
}

/*
 * The reaper: one thread per process, running while some file's mutex
 * lingers, gives each back RL_LINGER after the grow that took it, so that a
 * process that sits on its locks (a long read) does not keep others from
 * the directory.  rl_files only grows, so it is walked without rl_mu.
 */
static pthread_mutex_t rl_reaper_mu = PTHREAD_MUTEX_INITIALIZER;
static int rl_reaper_on;

static void *rl_reaper(void *arg)
{
	(void)arg;
	flp_depth++; /* our own file-system calls are not the program's */
	for (;;) {
		struct flp_rfile **v;
		size_t n;
		int any = 0;
		double now;

		flp_wait_sleep(RL_LINGER / 2);
		v = rl_snapshot(1, &n);
		now = fl__now_mono();
		for (size_t i = 0; i < n; i++) {
			struct flp_rfile *rf = v[i];
			pthread_mutex_lock(&rf->mu);
			if (atomic_load(&rf->held) && now >= rf->held_until)
				(void)rl_linger_end(rf);
			any |= atomic_load(&rf->held);
			pthread_mutex_unlock(&rf->mu);
		}
		rl_snapshot_put(v, n);
		pthread_mutex_lock(&rl_reaper_mu);
		if (!any) {
			/* A grow that took a mutex since our walk finds us still
			 * on (rl_reaper_arm), so look once more before stopping. */
			v = rl_snapshot(1, &n);
			any = n > 0;
			rl_snapshot_put(v, n);
		}
		if (!any) {
			rl_reaper_on = 0;
			pthread_mutex_unlock(&rl_reaper_mu);
			return NULL;
		}
		pthread_mutex_unlock(&rl_reaper_mu);
	}
}

/* Starts the reaper if it is not running.  0, or -errno (then the caller
 * does not linger). */
static int rl_reaper_arm(void)
{
	pthread_attr_t a;
	pthread_t t;
	sigset_t all, old;
	int e = 0;

	pthread_mutex_lock(&rl_reaper_mu);
	if (!rl_reaper_on) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		e = pthread_create(&t, &a, rl_reaper, NULL);
		pthread_attr_destroy(&a);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (e == 0)
			rl_reaper_on = 1;
	}
	pthread_mutex_unlock(&rl_reaper_mu);
	return -e;
}

/* Replaces the entry of our own POSIX owner in v by what it holds in
 * memory (a lingering holder's file lags), for the other owners of this
 * process (OFD locks).  0 or -ENOMEM. */
static int rl_peers_self_posix(struct flp_rfile *rf, const struct flp_rowner *ow,
			       struct rl_peer **v, size_t *n)
{
	struct rl_peer *nv, *p;
	size_t i;

	if (ow == &rf->posix || !rf->posix.dirty || rf->posix.name[0] == '\0')
		return 0;
	for (i = 0; i < *n; i++)
		if (strcmp((*v)[i].name, rf->posix.name) == 0)
			break;
	if (i == *n) {
		nv = realloc(*v, (*n + 1) * sizeof(**v));
		if (nv == NULL)
			return -ENOMEM;
		*v = nv;
		p = &nv[(*n)++];
		memset(p, 0, sizeof(*p));
	} else {
		p = &(*v)[i];
		flp_rset_free(&p->set);
	}
	snprintf(p->name, sizeof(p->name), "%s", rf->posix.name);
	snprintf(p->host, sizeof(p->host), "%s", rl_host);
	p->pid = rf->posix.creator;
	p->ofd = 0;
	p->malformed = 0;
	memset(&p->set, 0, sizeof(p->set));
	return flp_rset_copy(&p->set, &rf->posix.set) != 0 ? -ENOMEM : 0;
}

static int rl_any_conflict(const struct rl_peer *v, size_t n, int64_t start, int64_t end,
			   short type)
{
	for (size_t i = 0; i < n; i++)
		if (flp_rset_conflict(&v[i].set, start, end, type))
			return 1;
	return 0;
}

/* Sets ow's locks to next (a release: never a conflict).  Lingering on the
 * mutex, the POSIX owner's change stays in memory, and the mutex goes back
 * once it holds nothing on the file. */
static int rl_set(struct flp_rfile *rf, struct flp_rowner *ow, const struct flp_rset *next)
{
	int r;

	if (!atomic_load(&rf->held) || rf->mtx_pid != fl__pid() || ow != &rf->posix)
		return rl_commit(rf, ow, next);
	r = rl_commit_lazy(ow, next);
	if (r == 0 && ow->set.n == 0)
		r = rl_linger_end(rf);
	return r;
}

/* Does someone hold the directory mutex (strict: always assumed)? */
static int rl_mutex_present(struct flp_rfile *rf)
{
	char path[4096 + 16];
	struct stat st;

	if (rf->rule->kind == FLP_STRICT)
		return 1;
	snprintf(path, sizeof(path), "%s/mutex", rf->dir);
	RL_OP(1);
	return fl__sys.lstat(path, &st) == 0;
}

/*
 * One try of a grow: mutex (unless we still hold it), scan (unless the one
 * taken under it shows no conflict: others can only shrink while we hold
 * it), commit.  The mutex then lingers: it is given back when our locks on
 * the file are all gone, on a conflict, or by the reaper.  Returns 0,
 * -EAGAIN (conflict), -ETIMEDOUT / -EINTR (the mutex), or another -errno.
 */
static int rl_grow(struct flp_rfile *rf, struct flp_rowner *ow, const struct flp_rset *next,
		   int64_t start, int64_t end, short type, double mutex_deadline, int intr)
{
	/* strict's mutex is never broken by another process (a holder that
	 * dies wedges the file until an operator breaks it): held for one
	 * grow only, never longer. */
	int lazy = ow == &rf->posix && rf->rule->kind != FLP_STRICT, r;

	if (atomic_load(&rf->held) && (rf->mtx_pid != fl__pid() || !fl_is_valid(rf->mtx)))
		rl_linger_end(rf);
	if (!atomic_load(&rf->held)) {
		r = rl_mutex_lock(rf, mutex_deadline, intr);
		if (r != 0)
			return r;
		rl_cache_drop(rf);
		atomic_store(&rf->held, 1);
		if (lazy && rl_reaper_arm() != 0)
			lazy = 0; /* nobody would give it back: do not linger */
	}
	rf->held_until = fl__now_mono() + RL_LINGER;
	if (!lazy || !rf->cache_ok || rl_any_conflict(rf->cache, rf->ncache, start, end, type)) {
		struct rl_peer *peers;
		size_t np;
		int self_seen = 0;

		rl_cache_drop(rf);
		r = rl_scan(rf, ow->name, 1, &peers, &np, &self_seen);
		if (r == 0)
			r = rl_peers_self_posix(rf, ow, &peers, &np);
		if (r != 0) {
			flp_log("fcntl(%s): cannot read the lock directory %s: %s", rf->path,
				rf->dir, strerror(-r));
			if (peers)
				rl_peers_free(peers, np);
			rl_linger_end(rf);
			return r;
		}
		rf->cache = peers;
		rf->ncache = np;
		rf->cache_self = self_seen;
		rf->cache_ok = lazy; /* another owner's scan left out another file */
	}
	/* Our file gone while we hold locks: someone judged us dead (we were
	 * paused past the bound).  Rebuilding it could overlap a successor. */
	if (ow->lost || (ow->fino && !rf->cache_self)) {
		ow->lost = 1;
		rl_linger_end(rf);
		flp_log("fcntl(%s): this process's byte-range locks were taken away (owner file "
			"%s/%s evicted); failing with ENOLCK",
			rf->path, rf->dir, ow->name);
		return -ENOLCK;
	}
	if (rl_any_conflict(rf->cache, rf->ncache, start, end, type)) {
		/* contended: let the others in (ENOLCK: our locks are lost) */
		return rl_linger_end(rf) != 0 ? -ENOLCK : -EAGAIN;
	}
	if (lazy) {
		r = rl_commit_lazy(ow, next);
	} else {
		r = rl_commit(rf, ow, next); /* the mutex's create made the directory */
		rf->cache_ok = 0;
	}
	if (r != 0 || !lazy || rf->posix.set.n == 0)
		rl_linger_end(rf);
	return r;
}

/* F_GETLK: the first conflicting lock of another owner.  Returns 1 (found,
 * *out filled when not NULL), 0, or -errno. */
static int rl_test(struct flp_rfile *rf, const struct flp_rowner *ow, int64_t start, int64_t end,
		   short type, struct flock *out)
{
	struct rl_peer *peers;
	size_t np;
	int r, found = 0, self_seen = 0;

	r = rl_scan(rf, ow->name, 0, &peers, &np, &self_seen);
	if (r == 0 && atomic_load(&rf->held))
		r = rl_peers_self_posix(rf, ow, &peers, &np);
	if (r != 0) {
		if (peers)
			rl_peers_free(peers, np);
		return r;
	}
	for (size_t i = 0; i < np && !found; i++) {
		const struct flp_range *c = flp_rset_conflict(&peers[i].set, start, end, type);
		int64_t ls, ll;

		if (c == NULL)
			continue;
		found = 1;
		if (out == NULL)
			break;
		flp_range_to_flock(c->start, c->end, &ls, &ll);
		out->l_type = c->type;
		out->l_whence = SEEK_SET;
		out->l_start = (off_t)ls;
		out->l_len = (off_t)ll;
		/* A holder on another host has no pid here; OFD locks have none. */
		out->l_pid = !peers[i].malformed && !peers[i].ofd &&
					     strcmp(peers[i].host, rl_host) == 0
				     ? peers[i].pid
				     : -1;
	}
	rl_peers_free(peers, np);
	return found;
}

static const char *rl_cmdname(int cmd)
{
	switch (cmd) {
	case F_SETLK:
		return "F_SETLK";
	case F_SETLKW:
		return "F_SETLKW";
	case F_GETLK:
		return "F_GETLK";
	case F_OFD_SETLK:
		return "F_OFD_SETLK";
	case F_OFD_SETLKW:
		return "F_OFD_SETLKW";
	case F_OFD_GETLK:
		return "F_OFD_GETLK";
	default:
		return "?";
	}
}

static const char *rl_typename(short t)
{
	return t == F_RDLCK ? "F_RDLCK" : t == F_WRLCK ? "F_WRLCK" : t == F_UNLCK ? "F_UNLCK" : "?";
}

/* One fcntl lock command on its way (rl_fcntl's steps share it). */
struct rl_req {
	struct flp_ofd *o;
	int fd, cmd, is_ofd, wait;
	struct flock *fl;
	int64_t start, end;         /* the range, inclusive               */
	struct flp_rfile *rf;
	struct flp_rowner *ow;      /* the owner whose locks change        */
	struct flp_rset next;       /* scratch: the owner's set after it   */
	double deadline;            /* F_SETLKW's (the rule's timeout)     */
};

/* The argument checks, in the kernel's order (fs/locks.c): F_GETLK looks
 * at the type first; F_SETLK at the range, then the type, the access mode
 * and, for OFD locks, l_pid.  An F_OFD_GETLK with l_pid set is refused
 * after the range.  0 or a positive errno. */
static int rl_check(struct rl_req *q)
{
	struct flock *fl = q->fl;
	int64_t cur = 0, size = 0;
	int r, acc;

	/* An O_PATH descriptor takes no lock command at all. */
	if (fcntl(q->fd, F_GETFL) & O_PATH)
		return EBADF;
	if (fl == NULL)
		return EFAULT;
	if ((q->cmd == F_GETLK || q->cmd == F_OFD_GETLK) && fl->l_type != F_RDLCK &&
	    fl->l_type != F_WRLCK)
		return EINVAL;
	if (fl->l_whence == SEEK_CUR)
		cur = lseek(q->fd, 0, SEEK_CUR);
	if (fl->l_whence == SEEK_END) {
		struct stat st;
		if (fstat(q->fd, &st) != 0)
			return errno;
		size = st.st_size;
	}
	r = flp_range_from_flock(fl->l_whence, fl->l_start, fl->l_len, cur, size, &q->start,
				 &q->end);
	if (r != 0)
		return -r;
	if (fl->l_type != F_RDLCK && fl->l_type != F_WRLCK && fl->l_type != F_UNLCK)
		return EINVAL;
	if (q->cmd != F_GETLK && q->cmd != F_OFD_GETLK && fl->l_type != F_UNLCK) {
		/* The kernel wants a readable descriptor for a read lock, a
		 * writable one for a write lock. */
		acc = fcntl(q->fd, F_GETFL) & O_ACCMODE;
		if ((fl->l_type == F_RDLCK && acc == O_WRONLY) ||
		    (fl->l_type == F_WRLCK && acc == O_RDONLY))
			return EBADF;
	}
	if (q->is_ofd && fl->l_pid != 0)
		return EINVAL;
	return 0;
}

/* The owner of the request: the open file description's (OFD locks, named
 * on first use) or the process's.  Caller holds rf->mu.  NULL: ENOMEM. */
static struct flp_rowner *rl_owner_of(struct rl_req *q)
{
	struct flp_rowner *ow;

	if (!q->is_ofd) {
		ow = &q->rf->posix;
		if (ow->name[0] == '\0')
			rl_owner_name(ow);
		return ow;
	}
	pthread_mutex_lock(&rl_mu);
	if (q->o->rown == NULL) {
		q->o->rown = calloc(1, sizeof(*q->o->rown));
		if (q->o->rown) {
			q->o->rown->ofd = (int)++rl_ofd_seq;
			rl_owner_name(q->o->rown);
		}
	}
	ow = q->o->rown;
	pthread_mutex_unlock(&rl_mu);
	return ow;
}

/* F_GETLK / F_OFD_GETLK.  Called with rf->mu held, which it drops. */
static int rl_getlk(struct rl_req *q)
{
	const struct flp_rule *rule = q->o->rule;
	struct flp_rfile *rf = q->rf;
	struct flock *fl = q->fl;
	int took = 0, r;

	/* Another process that holds the mutex may hold locks its file does
	 * not show yet: ask under the mutex. */
	if (!atomic_load(&rf->held) && rl_mutex_present(rf)) {
		double dl = fl__now_mono() + (rule->timeout >= 0 ? rule->timeout : 10.0);
		r = rl_mutex_lock(rf, dl, 0);
		took = r == 0;
	}
	r = rl_test(rf, q->ow, q->start, q->end, fl->l_type, fl);
	if (took)
		rl_mutex_unlock(rf);
	pthread_mutex_unlock(&rf->mu);
	if (r < 0) {
		flp_log("fcntl(%s, %s): cannot read %s: %s; failing with ENOLCK", q->o->path,
			rl_cmdname(q->cmd), rf->dir, strerror(-r));
		return ENOLCK;
	}
	if (r == 0)
		fl->l_type = F_UNLCK;
	FLP_TRACE("fcntl(%d, %s) on %s: %s", q->fd, rl_cmdname(q->cmd), q->o->path,
		  r ? "conflict" : "free");
	return 0;
}

/* A request that only gives up locks (never waits).  Called with rf->mu
 * held, which it drops.  0 or ENOLCK. */
static int rl_shrink(struct rl_req *q)
{
	struct flp_rfile *rf = q->rf;
	int r;

	if (rl_drops_write(&q->ow->set, q->start, q->end))
		rl_cache_release(rf, q->fd);
	r = rl_set(rf, q->ow, &q->next);
	pthread_mutex_unlock(&rf->mu);
	FLP_TRACE("fcntl(%d, %s, %s %lld..%lld) on %s: %s", q->fd, rl_cmdname(q->cmd),
		  rl_typename(q->fl->l_type), (long long)q->start, (long long)q->end, q->o->path,
		  r ? "failed" : "released");
	return r ? ENOLCK : 0;
}

/* One try at a request that takes or widens locks: 0, -EAGAIN (a
 * conflicting lock), -ETIMEDOUT / -EINTR (the mutex), or another -errno. */
static int rl_try(void *arg)
{
	struct rl_req *q = arg;
	const struct flp_rule *rule = q->o->rule;
	struct flp_rfile *rf = q->rf;
	struct flp_rowner *ow = q->ow;
	short type = q->fl->l_type;
	/* A non-blocking call still waits for the mutex (it is not the lock),
	 * but not forever: a mutex whose holder crashed on a host we never
	 * evict would hang it. */
	double mdl = q->wait ? q->deadline
			     : fl__now_mono() + (rule->timeout >= 0 ? rule->timeout : 10.0);
	int r;

	pthread_mutex_lock(&rf->mu);
	/* Another thread may have changed our locks meanwhile. */
	if (flp_rset_copy(&q->next, &ow->set) != 0 ||
	    flp_rset_apply(&q->next, q->start, q->end, type) != 0) {
		r = -ENOMEM;
	} else if (flp_rset_unchanged_by(&ow->set, q->start, q->end, type)) {
		r = 0;
	} else if (rf->contended && !atomic_load(&rf->held) && !rl_mutex_present(rf) &&
		   rl_test(rf, ow, q->start, q->end, type, NULL) > 0) {
		/* Busy a moment ago, and a conflicting lock is in a file we
		 * just read: it existed at that moment, so EAGAIN is the
		 * kernel's answer, without the mutex.  A retry loop (SQLite's
		 * busy handler, a waiter) then reads instead of creating and
		 * removing the mutex each time.  Owners that look gone are not
		 * counted here; the grow removes them.  Only while nobody
		 * holds the mutex: a holder's file may still show locks it has
		 * since given up. */
		r = -EAGAIN;
	} else {
		r = rl_grow(rf, ow, &q->next, q->start, q->end, type, mdl, q->wait);
		rf->contended = r == -EAGAIN;
	}
	pthread_mutex_unlock(&rf->mu);
	/* A waiter's mutex wait ends at its own deadline: the engine then
	 * reports the timeout. */
	if (r == -ETIMEDOUT && q->wait)
		r = -EAGAIN;
	return r;
}

/* Not the mutex: every try that takes and drops it would wake us again. */
static int rl_wakes(void *arg, const char *entry)
{
	(void)arg;
	return strcmp(entry, "mutex") != 0 && strcmp(entry, "strict-mutex") != 0;
}

/*
 * F_SETLKW: the library's wait engine tries until granted, woken when an
 * owner file in the lock directory is rewritten or removed (a holder that
 * gives up locks does that before it drops the mutex; our own hidden
 * temporaries and the mutex, which our tries take too, do not wake it),
 * polling from 1 ms up to the rule's poll interval for changes no event
 * shows (another host's).  Signals end it as they end the kernel's wait
 * (flp_wait_ended).
 */
static int rl_wait(struct rl_req *q)
{
	const struct flp_rule *rule = q->o->rule;
	struct fl_shim_signals sig = { rl_wait_mask, flp_wait_ended, NULL, &flp_depth };
	struct fl_shim_wait w = {
		.attempt = rl_try,
		.arg = q,
		.watch = q->rf->dir,
		.mask = IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM,
		.name = NULL,
		.wakes = rl_wakes,
		.deadline = q->deadline,
		.first = 0.001,
		.poll = rule->poll_interval > 0 ? rule->poll_interval : 0.05,
		.sig = &sig,
	};
	int r = fl_shim_wait_for(&w);

	if (r == -ETIMEDOUT) {
		flp_log("fcntl(%s, %s): timed out after %gs (policy line %d); failing with ENOLCK",
			q->o->path, rl_cmdname(q->cmd), rule->timeout, rule->line);
		r = -ENOLCK;
	}
	return r;
}

/* F_SETLK / F_SETLKW that takes or widens locks.  0 or a positive errno. */
static int rl_setlk(struct rl_req *q)
{
	int r;

	if (q->wait) {
		r = rl_wait(q);
	} else {
		r = rl_try(q);
		if (r == -ETIMEDOUT)
			flp_log("fcntl(%s, %s): the mutex %s stayed taken; failing with EAGAIN",
				q->o->path, rl_cmdname(q->cmd),
				q->rf->mtx ? fl_path(q->rf->mtx) : q->rf->dir);
		if (r == -ETIMEDOUT)
			r = -EAGAIN;
	}
	flp_rset_free(&q->next);
	if (r == 0)
		rl_cache_acquire(q->rf, q->fd);
	FLP_TRACE("fcntl(%d, %s, %s %lld..%lld) on %s: %s", q->fd, rl_cmdname(q->cmd),
		  rl_typename(q->fl->l_type), (long long)q->start, (long long)q->end, q->o->path,
		  r == 0 ? "acquired" : strerror(-r));
	/* Only what fcntl(2) itself can answer; any other failure of ours
	 * (ENOMEM, EIO, EEXIST for a node planted at our temporary, ...) is
	 * ENOLCK, with the reason on stderr. */
	if (r == 0 || r == -EAGAIN || r == -EINTR || r == -EINVAL || r == -EBADF ||
	    r == -EDEADLK || r == -EOVERFLOW || r == -ENOLCK)
		return -r;
	return ENOLCK;
}

static int rl_fcntl(struct flp_ofd *o, int fd, int cmd, struct flock *fl)
{
	struct rl_req q = { .o = o, .fd = fd, .cmd = cmd, .fl = fl };
	const struct flp_rule *rule = o->rule;
	struct flp_rfile *rf;
	int r;

	atomic_fetch_add_explicit(&rl_calls, 1, memory_order_relaxed);
	q.is_ofd = cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW || cmd == F_OFD_GETLK;
	q.wait = cmd == F_SETLKW || cmd == F_OFD_SETLKW;
	if ((r = rl_check(&q)) != 0)
		return r;
	pthread_once(&rl_host_once, rl_host_init);
	q.rf = rf = rl_file(o, fd);
	if (rf == NULL)
		return ENOLCK;

	pthread_mutex_lock(&rf->mu);
	if (!rf->adopted)
		rl_adopt(rf);
	q.ow = rl_owner_of(&q);
	if (q.ow == NULL) {
		pthread_mutex_unlock(&rf->mu);
		return ENOLCK;
	}
	if (cmd == F_GETLK || cmd == F_OFD_GETLK)
		return rl_getlk(&q);
	if (flp_rset_unchanged_by(&q.ow->set, q.start, q.end, fl->l_type)) {
		pthread_mutex_unlock(&rf->mu);
		return 0;
	}
	if (flp_rset_copy(&q.next, &q.ow->set) != 0 ||
	    flp_rset_apply(&q.next, q.start, q.end, fl->l_type) != 0 ||
	    q.next.n > FLP_RL_MAX_RANGES) {
		/* Past the cap our own file would read as malformed: the
		 * kernel's answer to too many record locks is ENOLCK too. */
		pthread_mutex_unlock(&rf->mu);
		flp_rset_free(&q.next);
		return ENOLCK;
	}
	if (flp_rset_shrinks(&q.next, &q.ow->set)) {
		r = rl_shrink(&q);
		flp_rset_free(&q.next);
		return r;
	}
	pthread_mutex_unlock(&rf->mu);
	q.deadline = q.wait && rule->timeout >= 0 ? fl__now_mono() + rule->timeout : INFINITY;
	return rl_setlk(&q);
}

int flp_rl_fcntl(struct flp_ofd *o, int fd, int cmd, struct flock *fl)
{
	sigset_t sigs;
	int r;

	/* A handler may have jumped out of an earlier wait (siglongjmp, the
	 * old timeout idiom), leaving the pointer to that wait's frame. */
	rl_wait_mask = NULL;
	if (cmd != F_SETLKW && cmd != F_OFD_SETLKW)
		return rl_fcntl(o, fd, cmd, fl);
	/* From here on a signal cannot slip by unnoticed before the wait
	 * starts sleeping: the window the alarm() idiom has is the kernel's,
	 * not that plus our file-system work (see flp_wait_signals). */
	flp_wait_signals(&sigs, NULL);
	r = rl_fcntl(o, fd, cmd, fl);
	flp_wait_signals(NULL, &sigs);
	return r;
}

/* ---- releasing: close, exit, fork ------------------------------------------ */

void flp_rl_inherited(struct flp_ofd *o, int fd)
{
	struct flp_rfile *rf = rl_file(o, fd);

	if (rf == NULL)
		return;
	pthread_mutex_lock(&rf->mu);
	if (!rf->adopted)
		rl_adopt(rf);
	pthread_mutex_unlock(&rf->mu);
}

static void rl_release_all(struct flp_rfile *rf, struct flp_rowner *ow, const char *why)
{
	struct flp_rset empty = { 0 };

	if (ow->set.n == 0)
		return;
	if (rl_set(rf, ow, &empty) == 0)
		FLP_TRACE("%s: byte-range locks released (%s)", rf->path, why);
}

void flp_rl_close_fd(dev_t dev, ino_t ino)
{
	struct flp_rfile **v, *rf;
	size_t n;

	/* Every record of the file (one per path it was locked through). */
	v = rl_snapshot(0, &n);
	for (size_t i = 0; i < n; i++) {
		rf = v[i];
		if (rf->dev != dev || rf->ino != ino)
			continue;
		pthread_mutex_lock(&rf->mu);
		rl_release_all(rf, &rf->posix, "a descriptor of the file was closed");
		pthread_mutex_unlock(&rf->mu);
	}
	rl_snapshot_put(v, n);
}

void flp_rl_ofd_last_close(struct flp_ofd *o)
{
	struct flp_rowner *ow = o->rown;
	struct flp_rfile *rf = o->rf;

	o->rf = NULL;
	if (ow == NULL) {
		if (rf)
			rl_put(rf);
		return;
	}
	o->rf = rf;
	/* A fork child's copy: the description, and its locks, live on in
	 * the process that took them (see the limits above). */
	if (o->rf && ow->set.n && ow->creator == fl__pid()) {
		pthread_mutex_lock(&o->rf->mu);
		rl_release_all(o->rf, ow, "last descriptor of the open file description");
		pthread_mutex_unlock(&o->rf->mu);
	}
	if (ow->beat != NULL && ow->creator == fl__pid())
		fl_shim_beat_stop(ow->beat);
	flp_rset_free(&ow->set);
	free(ow);
	o->rown = NULL;
	o->rf = NULL;
	if (rf)
		rl_put(rf);
}

void flp_rl_at_exit(void)
{
	struct flp_rfile **v;
	size_t n;

	v = rl_snapshot(0, &n);
	for (size_t i = 0; i < n; i++) {
		struct flp_rfile *rf = v[i];
		pthread_mutex_lock(&rf->mu);
		rl_release_all(rf, &rf->posix, "exit");
		rl_linger_end(rf);
		pthread_mutex_unlock(&rf->mu);
	}
	rl_snapshot_put(v, n);
	/* Exit closes every descriptor; a description only this process has
	 * goes, and its OFD locks with it. */
	pthread_mutex_lock(&flp_fd_mu);
	for (struct flp_ofd *o = flp_ofds; o; o = o->next) {
		struct flp_rowner *ow = o->rown;
		if (ow && o->rf && ow->set.n && ow->creator == fl__pid()) {
			pthread_mutex_lock(&o->rf->mu);
			rl_release_all(o->rf, ow, "exit");
			pthread_mutex_unlock(&o->rf->mu);
		}
	}
	pthread_mutex_unlock(&flp_fd_mu);
}

void flp_rl_atfork_child(void)
{
	pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;

	rl_mu = init;
	rl_reaper_mu = init;
	rl_reaper_on = 0; /* threads do not survive fork */
	/* OFD owners are shared with the parent, whose heartbeat keeps them. */
	for (struct flp_ofd *o = flp_ofds; o; o = o->next)
		if (o->rown)
			o->rown->beat = NULL; /* the parent's (not beating here) */
	atomic_store(&flp_rl_posix_held, 0);
	for (struct flp_rfile *rf = rl_files; rf; rf = rf->next) {
		rf->mu = init;
		/* POSIX locks are not inherited; the parent's owner file stays. */
		flp_rset_clear(&rf->posix.set);
		rf->posix.name[0] = '\0';
		rf->posix.beat = NULL;
		rf->posix.lost = 0;
		rf->posix.dirty = 0;
		rf->posix.fino = 0;
		rf->adopted = 1;
		/* A mutex the parent lingers on is the parent's. */
		atomic_store(&rf->held, 0);
		rl_cache_drop(rf);
	}
}

/* Before execve: the new image knows only what the files say. */
void flp_rl_before_exec(void)
{
	struct flp_rfile **v;
	size_t n;

	if (getpid() != fl__pid())
		return; /* a vfork child: the mutex and the locks are the parent's */
	v = rl_snapshot(1, &n);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&v[i]->mu);
		rl_linger_end(v[i]);
		pthread_mutex_unlock(&v[i]->mu);
	}
	rl_snapshot_put(v, n);
}

void flp_rl_stats(void)
{
	const char *s = secure_getenv("FILELOCK_PRELOAD_STATS");

	if (s == NULL || s[0] == '\0' || strcmp(s, "0") == 0)
		return;
	flp_log("stats: range_calls=%llu marker_ops=%llu mutex_waits=%llu estale_retries=%lu",
		(unsigned long long)atomic_load(&rl_calls), (unsigned long long)atomic_load(&rl_ops),
		(unsigned long long)atomic_load(&rl_mutex_waits), fl__estale_retries());
}
