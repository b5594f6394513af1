/* SPDX-License-Identifier: MIT */
/*
 * fl-internal.h -- what the parts of lib/ share.  Never installed.
 *
 * The front end (lock.c) owns options, contexts, counters, registries and the
 * wait loop.  Each kind is a backend (backend-*.c) behind struct fl_backend:
 * the front end calls `attempt` for one try at the lock and `release` to give
 * it up, and never needs to know how the lock is represented on disk.
 *
 * Two context models, chosen by the backend's caps:
 *  - per-context (exclusive kinds, FL_FILE/FL_UNIX shared): each thread has
 *    its own struct fl_hold unless FL_SHARED_CONTEXT, so threads sharing one
 *    handle exclude each other like processes do (Python thread_local=True);
 *  - instance-wide (FL__CAP_RW: rw, soft-rw, etcd shared): one hold per
 *    handle; read levels are shared by all threads, write levels belong to
 *    the thread that took them; a mode change while held is -EDEADLK.
 */
#ifndef FL_INTERNAL_H
#define FL_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "filelock.h"
#include "sys.h"

#define FL_HIDDEN __attribute__((visibility("hidden")))

#define FL__ERRLEN 768

/* Backend capabilities. */
#define FL__CAP_SHARED    0x01u /* accepts FL_SHARED                               */
#define FL__CAP_RW        0x02u /* instance-wide context model (see above)         */
#define FL__CAP_SINGLETON 0x04u /* singleton unless FL_NO_SINGLETON                */

/* How an attempt may wait. */
#define FL__TRY   0 /* never block                                               */
#define FL__BLOCK 1 /* may block in the kernel: no deadline and no cancel_check   */

struct fl_lock;
struct fl_hold;

/*
 * A backend.  `version` comes first; new methods are only ever appended.
 * Every method is called with no front-end mutex held, by one thread at a
 * time per hold.
 */
struct fl_backend {
	int version;         /* 1                                                    */
	const char *name;    /* "unix", "soft", ...                                 */
	enum fl_kind kind;
	unsigned caps;       /* FL__CAP_*                                            */
	size_t hold_size;    /* bytes of backend data at the end of each hold       */
	double default_poll; /* seconds, used when opt.poll_interval == 0            */

	/* Validate and complete lk->opt (defaults); set lk->be_data if needed.
	 * Called once by fl_open.  May be NULL.  Errors via fl__errf. */
	int (*setup)(struct fl_lock *lk);
	/* One try.  0 = now held by h (set h->fd etc.), -EAGAIN = held elsewhere,
	 * anything else = error (with fl__err* called).  With FL__BLOCK the
	 * backend may wait in the kernel until it holds the lock. */
	int (*attempt)(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how);
	/* Optional: sleep until the lock may have become free or until `until`
	 * (CLOCK_MONOTONIC seconds), whichever is first.  NULL = plain sleep.
	 * h->deadline is the acquisition's own end; a backend that notices a
	 * release by itself may sleep up to it when !h->wait_checks (rw does).
	 * The front end calls `attempt` right after `wait` returns, with nothing
	 * in between, so a backend may take the lock inside `wait` and report it
	 * from that attempt (rw does: its writers wait inside SQLite). */
	void (*wait)(struct fl_lock *lk, struct fl_hold *h, double until);
	/* Give up the physical lock held by h.  On error the lock must still be
	 * held (so the caller may retry) unless the backend gave it up anyway, in
	 * which case it sets h->held = 0 before returning the error. */
	int (*release)(struct fl_lock *lk, struct fl_hold *h);
	/* Forget h without releasing anything on disk (fork child): close fds
	 * that still name what we opened.  May be NULL. */
	void (*drop)(struct fl_lock *lk, struct fl_hold *h);
	/* Free lk->be_data.  May be NULL. */
	void (*teardown)(struct fl_lock *lk);
	/* Holder inspection and breaking by path (public fl_inspect/fl_break). */
	int (*inspect)(const char *path, const struct fl_options *opt, struct fl_holder *out);
	int (*brk)(const char *path, const struct fl_options *opt, unsigned flags, const char *name);
	/* Optional: an acquire through h gave up (timeout, cancel, error) after
	 * one or more attempts.  Undo any partial claim attempt left behind
	 * across tries (soft-rw's pending writer marker).  May be NULL. */
	void (*abandon)(struct fl_lock *lk, struct fl_hold *h);
	/* Optional: the fencing token of the hold h (held).  0 or -errno. */
	int (*fencing_token)(struct fl_lock *lk, struct fl_hold *h, unsigned long long *out);
	/* Optional: take over a lock that this process holds on disk but has no
	 * hold for (the preload shim after fork or execve).  Sets h->fd etc. as
	 * attempt would; restarts a heartbeat if the kind has one.  dev/ino name
	 * the marker expected (0/0: whatever is there).  taker: the process that
	 * took the lock (the kernel's record of the shim's flock pin says it),
	 * 0 when unknown; kinds whose records name their holder's pid (strict,
	 * soft-rw) adopt only a record of the taker's or ours, on this host.
	 * -ESTALE = not ours. */
	int (*adopt)(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, dev_t dev, ino_t ino,
		     pid_t taker);
	/* Optional: the backend a handle switches to for good when `attempt`
	 * returns FL__FALLBACK (file -> soft where flock(2) is ENOSYS).  From
	 * then on every method of the handle's holds is the fallback's, and
	 * fl_kind_of() names its kind.  The fallback must need no per-handle
	 * data (its setup and teardown are never called). */
	const struct fl_backend *fallback;
};

/* What `attempt` returns when this kind cannot work on this filesystem and
 * the handle must switch to be->fallback (the attempt left nothing behind);
 * outside the errno range. */
#define FL__FALLBACK (-5001)

/*
 * One acquisition context.  Contexts are reused: before each first-level
 * acquisition the front end sets fd = -1, dev = ino = 0 and zeroes priv, so
 * a backend's attempt sees fresh state at the start of an acquisition and
 * may keep state in priv across the attempts of that one acquisition.
 * Mutex rules: the list links, `counter`, `mode`
 * and `writer` are guarded by lk->mu; the backend fields (fd, dev, ino, priv)
 * are touched only by the thread that is acquiring or releasing through this
 * hold, which the front end guarantees by the `busy` gate.
 */
struct fl_hold {
	struct fl_hold *next;
	uint64_t tid;           /* owning thread (per-context model); 0 = shared       */
	unsigned counter;       /* recursion depth                                     */
	enum fl_mode mode;      /* mode held when counter > 0                          */
	int held;               /* the backend holds the physical lock                 */
	int busy;               /* a thread is inside attempt/release on this hold      */
	uint64_t writer;        /* rw model: thread that owns the write levels         */
	int fd;                 /* backend descriptor, -1 if none                      */
	dev_t dev;              /* identity of what fd names                           */
	ino_t ino;
	atomic_int compromised; /* set by a heartbeat: enum fl_compromise, 0 = valid   */
	struct fl_lock *lk;     /* back pointer (for heartbeat callbacks)              */
	struct fl_hold *dl_next; /* self-deadlock registry chain (lock.c)             */
	uint64_t dl_tid;        /* thread registered as holding it; 0 = not registered */
	_Atomic int64_t valid_until_ns; /* CLOCK_MONOTONIC ns after which the lock may
	                               already be someone else's (set by heartbeat.c);
	                               0 = no bound                                   */
	double deadline;        /* the acquisition's end (CLOCK_MONOTONIC; INFINITY =
	                           none), set by the wait loop before each `wait`  */
	int wait_checks;        /* the wait loop must regain control every poll
	                           interval (a cancel_check or an asynchronous hook) */
	const struct fl_backend *be; /* the methods of this hold's acquisition: lk->be,
	                           or its fallback once the handle switched        */
	double adapt_step;      /* fl__adapt_until: the next poll step (0 = start), */
	double adapt_next;      /* when the current one ends (CLOCK_MONOTONIC),     */
	uint64_t adapt_tag;     /* and what the watched object looked like          */
	double fair_released;   /* fairness (lock.c, kept across acquisitions): when */
	double fair_waited;     /* this context last released, last had to wait, and */
	unsigned fair_streak;   /* how many acquisitions since did not wait; how     */
	unsigned fair_allow;    /* many it may make before a pause (0 = the start),  */
	int fair_paused;        /* and whether the acquisition in progress paused    */
	max_align_t priv[];     /* hold_size bytes of backend data (the larger of
	                           lk->be's and its fallback's)                    */
};

struct fl_lock {
	const struct fl_backend *be; /* the kind's backend (see also fell_back)         */
	enum fl_kind kind;           /* kind asked for at fl_open                      */
	char *path;                  /* canonical absolute path                        */
	char *dir;                   /* its parent directory                           */
	const char *name;            /* final component (points into path)             */
	struct fl_options opt;       /* validated, defaults filled in                  */
	pid_t pid;                   /* process that created the handle                */
	unsigned refs;               /* singleton references (guarded by registry mutex) */
	int singleton;               /* registered in the singleton registry           */
	pthread_mutex_t mu;          /* guards holds and the rw-model fields           */
	pthread_cond_t cv;           /* signalled when a hold stops being busy          */
	struct fl_hold *holds;       /* contexts with counter > 0 or busy              */
	void *be_data;               /* per-handle backend data                        */
	struct fl_lock *reg_next;    /* singleton registry chain                       */
	atomic_int fell_back;        /* switched to be->fallback for good              */
};

/* The backend new acquisitions of lk use: lk->be, or its fallback. */
static inline const struct fl_backend *fl__be_now(const struct fl_lock *lk)
{
	return atomic_load(&((struct fl_lock *)(uintptr_t)lk)->fell_back) ? lk->be->fallback
									    : lk->be;
}

/* ---- lock.c ---------------------------------------------------------- */

/* The backends, indexed by enum fl_kind; NULL where not built. */
extern const struct fl_backend *const fl__backends[];
extern const struct fl_backend fl__backend_unix, fl__backend_file, fl__backend_soft;
extern const struct fl_backend fl__backend_rw; /* only when built with SQLite */
extern const struct fl_backend fl__backend_softrw;     /* legacy (3.32.3) */
extern const struct fl_backend fl__backend_softrw_log; /* filelock-rw/1   */
extern const struct fl_backend fl__backend_strict, fl__backend_lease;
extern const struct fl_backend fl__backend_etcd; /* built when HAVE_ETCD */

/* For a kind's setup: 0 when opt.lifetime is unset (< 0), else -EINVAL
 * naming how the kind's locks expire instead (`expiry`).  Only the soft
 * kind takes a lifetime. */
int fl__opt_no_lifetime(const struct fl_lock *lk, const char *expiry);

/* Non-zero when lk has one context for all threads (FL_SHARED_CONTEXT or an
 * instance-wide rw kind). */
int fl__shared_ctx(const struct fl_lock *lk);

/*
 * How an asynchronous acquire (async.c) runs fl_acquire on a pool thread on
 * behalf of another thread.  With a hook, fl__acquire_as():
 *  - uses `owner` instead of the calling thread's id for the context, the
 *    write level of rw kinds and the deadlock registry;
 *  - skips the self-deadlock check (the owner is not blocked);
 *  - measures the timeout from `start` (CLOCK_MONOTONIC, when the request was
 *    made), not from the call;
 *  - never waits in the kernel, and checks `cancelled` after each failed
 *    attempt (after the user's cancel_check, whose meaning is unchanged);
 *  - between attempts calls `pause` instead of waiting itself.  pause
 *    returns 0 once it is time for the next attempt (it may sleep until
 *    `until` itself), 1 to yield (a cancel, or the pool thread has other
 *    work), or FL__PAUSE_WAIT with *t <= until: the wait loop then waits
 *    with the backend's wait method (the wake paths of fl_acquire) until
 *    *t and calls pause again, or attempts at once if the backend woke
 *    early;
 *  - never blocks at the context gate (the busy context may belong to a
 *    suspended request of the same pool).
 * Instead of blocking it returns FL__YIELDED and sets `until`, the time to
 * call again with the same hook.  If it yielded from the wait loop it also
 * sets `suspended`: the acquisition is paused, its context stays busy and
 * its backend state (kept across attempts, e.g. soft-rw's pending writer)
 * intact, and the next call resumes it with an attempt (a cancelled one
 * then stops with -ECANCELED, abandoning the attempt state, unless that
 * attempt obtained the lock).  A suspended acquisition must be resumed: its
 * context stays busy until then.
 */
#define FL__YIELDED (-5000) /* outside the errno range */
#define FL__PAUSE_WAIT 2
struct fl__acq_hook {
	uint64_t owner;
	double start;
	int (*cancelled)(void *arg);
	int (*pause)(void *arg, double until, double *t);
	void *arg;
	/* out, kept between calls: */
	double until;
	struct fl_hold *suspended;
};
/* The timeout an acquire uses: the handle's default for FL_TIMEOUT_DEFAULT
 * (NaN), 0 with FL_NONBLOCK. */
double fl__acquire_timeout(const struct fl_lock *lk, double timeout);
/* fl_acquire() with an optional hook (NULL = fl_acquire itself). */
int fl__acquire_as(struct fl_lock *lk, enum fl_mode mode, double timeout,
		   struct fl__acq_hook *hook);
/* fl_release() as if called by thread `tid` (fl__thread_uid()). */
int fl__release_as(struct fl_lock *lk, unsigned flags, uint64_t tid);
/* Makes lk hold the lock in `mode` without an attempt, through the backend's
 * adopt method (the preload shim re-adopting a marker after fork/execve).
 * Returns 0, -ENOTSUP (the kind cannot adopt), -ESTALE (the marker is not
 * the one expected), or another negative errno. */
int fl__adopt(struct fl_lock *lk, enum fl_mode mode, dev_t dev, ino_t ino, pid_t taker);
/* For adopt methods: may a record of this host naming `pid` be adopted?  It
 * names us (execve keeps the pid), or the taker, or, when the taker is not
 * known (0: the kernel names no pid once the taker is gone), a process that
 * is gone. */
int fl__adopt_pid_ok(pid_t pid, pid_t taker);
/* Frees lk like fl_close but never releases anything on disk (the lock
 * stays held by another process that shares it). */
void fl__forget(struct fl_lock *lk);

/* Set by the preload shim only: consulted before the soft kind breaks a
 * marker whose same-host holder pid is gone.  Non-zero = the lock is still
 * held through a descriptor that outlived the process that took it. */
extern int (*fl__soft_pinned)(const char *marker_path);

/* Emits the "[kind]" tag of error messages. */
const char *fl__kind_tag(const struct fl_lock *lk);

/* ---- error.c --------------------------------------------------------- */

/* Records "op(path): strerror [kind]" as the calling thread's last failure
 * (attributed to lk, which may be NULL) and returns err (a negative errno). */
int fl__err(const struct fl_lock *lk, int err, const char *op, const char *path);
/* Records a printf-formatted message, with " [kind]" appended when lk != NULL. */
int fl__errf(const struct fl_lock *lk, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Makes a message recorded on another thread (already tagged) the calling
 * thread's last failure about lk. */
void fl__err_restore(const struct fl_lock *lk, int err, const char *msg);
/* Forgets the calling thread's last failure. */
void fl__err_clear(void);
/* strerror_r that always returns a usable string. */
const char *fl__strerror_r(int errnum, char *buf, size_t len);

/* ---- util.c ---------------------------------------------------------- */

double fl__now_mono(void);                  /* CLOCK_MONOTONIC, seconds        */
double fl__now_wall(void);                  /* CLOCK_REALTIME, seconds         */
void fl__sleep_until(double mono_deadline); /* restarts on EINTR               */
double fl__mtime(const struct stat *st);    /* st_mtim as seconds               */
/* Walks the absolute, canonical directory `dir` one component at a time
 * from "/", each opened O_PATH|O_DIRECTORY|O_NOFOLLOW relative to the last
 * (a component that is a symlink or a file now is -ENOTDIR: it changed
 * after the path was resolved).  With FL__DIR_CREATE, missing components
 * are made with mkdirat (0777 & ~umask; a sticky parent's sticky bit is
 * kept).  For a root process every directory on the way must pass the rule
 * of fl__dir_foreign (util.c), else -ENOLCK.  Errors are recorded against
 * lk (may be NULL) unless FL__DIR_QUIET and -ENOENT.  0 or -errno. */
#define FL__DIR_CREATE 0x1u
#define FL__DIR_QUIET  0x2u
int fl__dir_open(const struct fl_lock *lk, const char *dir, unsigned how);
/* mkdir -p of lk->dir through fl__dir_open (no creation with
 * FL_NO_CREATE_DIRS).  0 or -errno, already recorded with fl__errf. */
int fl__mkdir_p(const struct fl_lock *lk);
/* Canonical absolute path: realpath of the longest existing prefix of the
 * parent, then the rest lexically normalised, then the final name literally.
 * Returns a malloc'd string or NULL with *err set. */
char *fl__canonical(const char *path, int *err);
/* Writes all of buf; short writes are continued, EINTR retried.  A write that
 * returns 0 is -EIO.  Returns 0 or -errno. */
int fl__write_all(int fd, const void *buf, size_t len);
/* Reads until end of file or until cap bytes are in buf, EINTR retried; *len
 * is what was read (also on error).  Returns 0 or -errno. */
int fl__read_all(int fd, void *buf, size_t cap, size_t *len);
/* 32 lowercase hex characters of randomness (getrandom) into buf[33]. */
void fl__random_hex(char buf[33]);
/* A process-unique, never-reused id of the calling thread (never 0). */
uint64_t fl__thread_uid(void);
/* getpid(), cached and refreshed in fork children. */
pid_t fl__pid(void);
/* Incremented in every fork child (pthread_atfork). */
extern atomic_uint fl__fork_generation;
/* Registers a function to run in fork children (after our own reset). */
void fl__atfork_child(void (*fn)(void));
/* Parses a decimal long long with optional surrounding ASCII whitespace. */
int fl__parse_ll(const char *s, size_t len, long long *out);

/* ---- identity.c ------------------------------------------------------ */

/* The host field of our records, Python 4's host_name(): the node name with
 * bytes outside 0x21-0x7E and '?' escaped as "?xx", plus "?pidns-<hex>"
 * outside the initial PID namespace (see identity.c).  0 or -errno. */
#define FL__INITIAL_PIDNS 0xEFFFFFFCu
int fl__hostname(char *buf, size_t len);
/* Start token of `pid` in decimal: (boot_id << 64) | starttime on Linux.
 * Returns 0, -ENOENT (no such process / no /proc), or -errno. */
int fl__start_token(pid_t pid, char *buf, size_t len);
/* This process's start token (cached; recomputed after fork).  "" if none. */
const char *fl__self_token(void);
/* Same-host liveness: 1 alive, 0 dead (ESRCH), -errno on other errors. */
int fl__pid_alive(pid_t pid);
/* Compares two decimal tokens numerically (ignoring whitespace, leading zeros). */
int fl__token_equal(const char *a, const char *b);
/* 1 when the owner (pid, host, token; token may be "") is provably dead or
 * recycled on this host and in this PID namespace; 0 otherwise (other host
 * or namespace, alive, unknown, or alive in a sibling container). */
int fl__owner_is_stale(pid_t pid, const char *host, const char *token);

/* ---- marker.c -------------------------------------------------------- */

#define FL__MARKER_MAX 1024

/* What a safe read of a marker found. */
struct fl_marker {
	int exists;               /* something is at the path                     */
	int regular;              /* it is a regular file                         */
	int malformed;            /* too big, not regular, unreadable as a record */
	double mtime;             /* wall-clock mtime of the node                 */
	dev_t dev;
	ino_t ino;
	mode_t st_mode;
	size_t len;               /* bytes read (<= FL__MARKER_MAX)               */
	char buf[FL__MARKER_MAX + 2];
};

/* lstat + open(O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC) + fstat + read of at
 * most 1025 bytes, relative to dirfd (AT_FDCWD for absolute paths).  Never
 * follows a symlink, never blocks on a FIFO.  Returns 0 (m->exists tells
 * whether anything was there) or -errno for unexpected failures. */
int fl__marker_read(int dirfd, const char *path, struct fl_marker *m);

/* Seconds an unparsable marker may be young (a peer between create and write). */
#define FL__MALFORMED_AGE 2.0
/*
 * Never destroy what is not ours.  NULL when the node m can be a lock
 * marker: a regular file within FL__MARKER_MAX bytes that `parsed` (a
 * record of a known format), is empty (a peer crashed between create and
 * write), or is younger than FL__MALFORMED_AGE seconds (`age`, by the kind's
 * clock).  Otherwise why not ("a directory", ...): the kind then never
 * breaks it, and an acquire fails (fl__marker_refuse).  Stricter than
 * Python, which renames away anything unparsable after 2 s; no marker
 * Python writes is ever refused.
 */
const char *fl__marker_foreign(const struct fl_marker *m, int parsed, double age);
/* Records and returns -EEXIST: "path: exists and is <why>, not a <kind> lock
 * marker; ... lock a separate path such as path.lock" (brk: "not broken,
 * even with force"). */
int fl__marker_refuse(const struct fl_lock *lk, const char *path, const char *kind,
		      const char *why, int brk);

/* How many times a record is opened by name when NFS says ESTALE. */
#define FL__ESTALE_TRIES 3

/* Reads the record at (dirfd, name) that another host may rename over or
 * remove: open(O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC|O_NOCTTY) + fstat
 * (into *st) + read of at most cap bytes (none for a non-regular file:
 * *len = 0, the caller checks st).  ESTALE from any of the three is that
 * race seen through a stale NFS file handle: the name is opened again, up to
 * FL__ESTALE_TRIES opens in all.  With fdp the descriptor stays open in *fdp
 * on success.  Returns 0, or -errno (-ENOENT gone, -ELOOP a symlink, -ESTALE
 * still stale after the last try: transient). */
int fl__record_read(int dirfd, const char *name, char *buf, size_t cap, size_t *len,
		    struct stat *st, int *fdp);

/*
 * Stalls.  A contender that watches a marker for silence counts time on its
 * own clock; while the file server (or our client of it) stalls, the holder
 * cannot refresh, and when it thaws the contender's look may be answered
 * before the holder's queued refresh: a live holder that looked silent for
 * the whole stall.  Every record read and marker create notes its own
 * duration (the create is what a contender sits in first): one that took
 * FL__STALL seconds or more marks a stall, and the ledger counts silence
 * only from the end of the last stall this process saw (fl__ledger_silent).
 */
#define FL__STALL 0.5
/* Notes an I/O that started at t0 (CLOCK_MONOTONIC) and ends now. */
void fl__note_io(double t0);
/* CLOCK_MONOTONIC at which the last noted stall ended (0 = none). */
double fl__stall_end(void);

/* ESTALE replies fl__record_read() met and answered by opening again
 * (process-wide, for statistics). */
unsigned long fl__estale_retries(void);

/* The strict sentinel bytes "1\nfilelock-strict-v1\0\n0\n" (24 bytes). */
extern const char fl__strict_sentinel[];
#define FL__STRICT_SENTINEL_LEN 24

/* Protocol-1 record: "pid\nhost\n[start\n]". */
struct fl_p1 {
	pid_t pid;
	char host[256];
	char token[96];
};
/* Strict UTF-8 as Python's decoder accepts it (no overlongs, no surrogates). */
int fl__utf8_valid(const unsigned char *s, size_t n);
/* Formats our own protocol-1 record into buf; returns its length or -errno. */
int fl__p1_format(char *buf, size_t len);
/* Parses a protocol-1 record (Python's rules, §5.3).  0 or -EBADMSG. */
int fl__p1_parse(const char *buf, size_t len, struct fl_p1 *out);

/* Python's break_lock_file, under the O_EXCL break claim "<path>.break"
 * (busy: -EBUSY, another process is breaking it; see marker.c): rename to "<path>.break.<pid>.<hex>", re-verify
 * that it is still the marker judged (`before`, from fl__marker_read): mtime
 * not advanced, same inode and, when before was read, the same bytes (a
 * released marker's inode and a coarse-clock mtime come back at once for
 * the next holder's marker), then unlink.  Returns 0 broken, -EAGAIN the
 * marker changed (linked back under its name), or -errno from rename. */
int fl__break_file(const char *path, const struct fl_marker *before);

/* open(path, flags, perm) of a file in lk's directory, EINTR retried; when
 * it is ENOENT and flags has O_CREAT, lk's missing parents are made once
 * (fl__mkdir_p) and the open tried again.  Returns the descriptor, or
 * -errno: the open's (not recorded: what it means is the caller's call),
 * or with *recorded = 1 the failure to make the parents (recorded).  The
 * one "open, make the parents once, retry" of the kinds. */
int fl__open_mkdir(const struct fl_lock *lk, const char *path, int flags, mode_t perm,
		   int *recorded);

/* Creates lk's marker file: open(O_WRONLY|O_CREAT|O_EXCL|O_TRUNC|O_NOFOLLOW|
 * O_CLOEXEC) with the handle's mode, EINTR retried, missing parents created
 * once.  Returns 0 and *fd, -EEXIST (someone has it), -EACCES/-EISDIR when
 * what is there is a read-only file or a directory (it can never be ours),
 * or another negative errno recorded with fl__err.  Used by soft and lease. */
int fl__marker_create(const struct fl_lock *lk, int *fd);

/* Identity-checked unlink: removes path only when lstat shows (dev, ino).
 * Returns 0 removed, -ESTALE not ours (left alone), or -errno. */
int fl__unlink_if_same(int dirfd, const char *path, dev_t dev, ino_t ino);

/* Sleeps until `until` (CLOCK_MONOTONIC) or until inotify sees the entry
 * `name` of `dir` (any entry if NULL) removed or renamed away; returns at
 * once when busy(arg) (may be NULL) returns 0 once the watch is set.  The
 * shared wait of the marker kinds (soft, lease, strict, soft-rw). */
void fl__wait_removal(const char *dir, const char *name, int (*busy)(void *), void *arg,
		      double until);
/* A `busy` callback for fl__wait_removal: lstat(path) succeeds. */
int fl__path_exists(void *path);

/* ---- ledger.c ---------------------------------------------------------- */

/* A marker's state as an observer sees it; any change means "refreshed". */
struct fl_seen {
	dev_t dev;
	ino_t ino;
	double mtime;   /* as fl__mtime() computes it                             */
	long long size; /* -1 = not compared                                      */
	uint64_t tag;   /* a hash of the bytes read, 0 = not compared             */
};
void fl__seen_of(struct fl_seen *s, const struct stat *st);
/* A nonzero hash of n bytes, for fl_seen.tag. */
uint64_t fl__seen_tag(const void *bytes, size_t n);
/*
 * The process-wide observation ledger (see ledger.c).  Returns for how many
 * seconds the marker whose absolute path is `key` is known to have stayed in
 * state *s: by this process's own watch (any handle, any thread), or, the
 * first time this process sees that inode, by the file server's clock (a
 * probe file next to the marker).  dirfd/name locate the marker for that
 * probe (name relative to dirfd, or absolute with AT_FDCWD); name NULL = no
 * probe.  Never fails: any doubt counts from now.
 */
double fl__ledger_silent(const char *key, int dirfd, const char *name, const struct fl_seen *s);
/* Forgets what was seen at `key` (after breaking it). */
void fl__ledger_forget(const char *key);
/* Probes taken by this process (tests). */
unsigned fl__ledger_probes(void);

/* ---- backend-softrw.c -------------------------------------------------- */

/* The options rules both soft-rw protocols share (their setup's first
 * step): defaults heartbeat_interval 30 s and stale_threshold 3 x that;
 * stale_threshold > heartbeat_interval > 0, poll_interval > 0;
 * lease_duration and lifetime refused.  0 or -EINVAL. */
int fl__srw_opt_setup(struct fl_lock *lk);

/* Parses a soft-rw marker "token\npid\nhost\n*" by Python's rules (32
 * lowercase hex digits, pid 1..2^31-1 without leading zeros, host of 1..253
 * printable non-space ASCII, then only newlines).  0 or -EBADMSG. */
int fl__srw_parse(const char *buf, size_t len, char token[33], pid_t *pid, char host[256]);

/* A live holder of the legacy protocol at P (P.write, or a marker in
 * P.readers, refreshed within `stale` by the wall clock): 1 and its path in
 * what[], else 0.  Used by filelock-rw/1 to refuse a mixed deployment. */
int fl__srw_legacy_live(const char *path, double stale, char *what, size_t cap);

/* ---- backend-softrw-log.c ------------------------------------------------ */

/* A filelock-rw/1 snapshot; readers sorted, unique. */
struct fl_srwl_snap {
	unsigned long long gen;
	char writer[33];         /* "" when none */
	char (*readers)[33];
	size_t nr, cap;
};
/* Parses gen/<N> bytes by Python's parse_snapshot rules.  0, -EBADMSG, or
 * -ENOMEM; free with fl__srwl_snap_free. */
int fl__srwl_parse(const char *buf, size_t len, struct fl_srwl_snap *out);
void fl__srwl_snap_free(struct fl_srwl_snap *s);
/* 32 lowercase hex digits exactly. */
int fl__srwl_is_token(const char *s, size_t n);
/* The record's lease (Python's holder_lease), 0 when it has none. */
double fl__srwl_holder_lease(const char *buf, size_t len);
/* A participant of filelock-rw/1 at P (a record in P.rw/holders refreshed
 * within `stale`): 1 and its path in what[], else 0.  Used by the legacy
 * protocol to refuse a mixed deployment. */
int fl__srwl_live(const char *path, double stale, char *what, size_t cap);

/* ---- backend-strict.c ------------------------------------------------ */

/* A strict claim, as parsed from its file name and record. */
struct fl_claim {
	int held;        /* held-v1- (1) or intent-v1- (0)     */
	char token[33];
	pid_t pid;
	char host[256];
	char start[128]; /* "" when the owner had no start token */
};
/* Parses claim `name` with record buf[len], canonical-only.  Returns 0,
 * -ENOENT (not a v1 claim name) or -EBADMSG (malformed record). */
int fl__strict_claim_parse(const char *name, const char *buf, size_t len, struct fl_claim *out);

/* ---- backend-lease.c ------------------------------------------------- */

/* Python's repr() of a float ("30.0", "0.6", "1e-05"); returns the length. */
int fl__py_float_repr(double v, char *buf, size_t cap);
/* Parses a protocol-2 record (Python's parse_marker).  0 or -EBADMSG;
 * *duration is NaN when the record has none. */
int fl__p2_parse(const char *buf, size_t len, pid_t *pid, int *is_lease, double *duration);

/* ---- wait.c ----------------------------------------------------------- */

/* The calling thread's inotify instance (non-blocking, close-on-exec), kept
 * for the thread's life because closing one costs milliseconds; -1 if none. */
int fl__inotify_get(void);
/* Adds a watch (inotify_add_watch) and drops the events earlier waits left
 * queued.  Returns the watch descriptor or -1 (errno set). */
int fl__inotify_watch(int ifd, const char *path, uint32_t mask);
/* Reads and discards every queued event. */
void fl__inotify_drain(int ifd);
/* Removes a watch added by fl__inotify_watch (wd < 0: nothing). */
void fl__inotify_unwatch(int ifd, int wd);
/* Instead of removing it, leaves a watch of the calling thread's instance
 * in place until fl__inotify_unlinger, the thread's next fl__inotify_watch
 * or its exit (one per thread at most): a wait that won the lock leaves
 * the removal, a system call, off the hand-off path. */
void fl__inotify_linger(int ifd, int wd);
/* Removes the calling thread's lingering watch, if any. */
void fl__inotify_unlinger(void);
/* Sleeps until the instance has events queued (1) or `until` or a
 * registered wait's signal (0); reads nothing. */
int fl__inotify_ready(int ifd, double until);
/* Reads every queued event; returns the union of the masks of watch wd's
 * events (IN_IGNORED left out), with IN_Q_OVERFLOW when events were lost. */
uint32_t fl__inotify_take(int ifd, int wd);
/* Sleeps until `until` (CLOCK_MONOTONIC) or an event of watch `wd`: one on
 * the entry `name` of a watched directory, or when name is NULL any event of
 * the watch except on hidden entries (a leading '.': strict's private
 * records), or the watched object itself going away.  Returns 1 for an
 * event, 0 at `until`. */
int fl__inotify_poll(int ifd, int wd, double until, const char *name);
/* The same with several watches: returns 1 as soon as match() returns
 * non-zero for an event (watch, mask, entry name or ""), or when events were
 * lost; 0 at `until`. */
int fl__inotify_poll_match(int ifd, double until,
			   int (*match)(void *arg, int wd, uint32_t mask, const char *name),
			   void *arg);

/*
 * A wait that signal handlers may end (the preload shim's blocking flock).
 * While registered for the calling thread, every sleep of a wait (inotify
 * waits, fl__wait_sleep_until) runs ppoll with `mask`, and first asks
 * ended(arg, 0) whether a pending signal ends the wait, after an EINTR
 * ended(arg, 1) whether the handler that ran does; *depth (if not NULL) is
 * decremented while a handler may run.  Once it answers yes, `fired` is set,
 * sleeps return at once, and fl__wait_loop returns -EINTR.
 */
struct fl__wait_intr {
	const sigset_t *mask;
	int (*ended)(void *arg, int eintr);
	void *arg;
	int *depth;
	int fired;
};
/* Registers wi for the calling thread (NULL: ends it); clears wi->fired. */
void fl__wait_intr_set(struct fl__wait_intr *wi);
/* Non-zero once a registered wait was ended by a signal handler. */
int fl__wait_intr_fired(void);
/* fl__sleep_until, ended early by a registered wait's signals. */
void fl__wait_sleep_until(double until);
/*
 * The adaptive poll step of a wait, for changes no notification reports
 * (other NFS clients): returns min(until, the end of the current step).
 * The step is FL__ADAPT_QUICK after `path` (lstat: inode, size, times, or
 * its absence) was seen to change since the last call for this
 * acquisition, and doubles up to `poll` while it does not.  The state
 * lives in h (adapt_*, zeroed at the start of each acquisition).
 */
#define FL__ADAPT_QUICK 0.001
double fl__adapt_until(struct fl_hold *h, const char *path, double poll, double until);

/* ---- heartbeat.c ------------------------------------------------------- */

/*
 * One thread per process refreshes every registered marker (soft-rw, lease,
 * and later etcd leases).  A backend embeds a struct fl_hb in its hold data,
 * fills the fields marked "caller", and registers it once the lock is held.
 * The thread is started on the first registration and stops when none is
 * left; it runs with every signal blocked; in a fork child the registry is
 * empty (the parent's markers are not the child's to refresh).
 */
struct fl_hb {
	/* caller: */
	double interval;            /* seconds between beats                          */
	double give_up;             /* seconds of unbroken transient failure after
	                               which the lock counts as lost (REFRESH_FAILED)  */
	double valid_for;           /* seconds after the start of the last successful
	                               beat (or the registration) during which nobody
	                               can have evicted us: a peer evicts only after
	                               seeing the marker unchanged this long, and it
	                               cannot have seen our refresh before we made it.
	                               Past it fl_is_valid() is false even before the
	                               next beat runs (a paused process).  0 = none.   */
	/* Refreshes the marker.  Returns 0 on success, a negative errno for a
	 * transient failure (retried next interval: ESTALE, EIO, ...), or a
	 * positive enum fl_compromise reason when the lock is lost for good.
	 * Runs on the heartbeat thread with no front-end mutex held. */
	int (*beat)(struct fl_hb *hb);
	struct fl_hold *h;          /* the hold this marker belongs to                */
	/* owned by heartbeat.c: */
	struct fl_hb *next, *prev;
	double due;                 /* CLOCK_MONOTONIC of the next beat               */
	double failing_since;       /* first transient failure of the current run, 0 */
	int running;                /* a beat is in progress                          */
};

/* Registers hb (the lock is held); hb must have been zeroed before its
 * first registration (hold data is).  Returns 0, -EINVAL (no beat or a bad
 * interval), -EALREADY, or -errno from starting the thread. */
int fl__hb_add(struct fl_hb *hb);
/* Unregisters hb; returns only once no beat of hb is running, so the caller
 * may then release and free.  Safe on an hb that was never added or that
 * already stopped after a compromise. */
void fl__hb_remove(struct fl_hb *hb);
/* Reports a lost lock: sets h->compromised and runs the handle's
 * on_compromise callback (on the calling thread).  Used by heartbeat.c and by
 * backends that notice the loss themselves. */
void fl__compromise(struct fl_hold *h, int reason);

#endif /* FL_INTERNAL_H */
