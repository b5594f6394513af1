/* SPDX-License-Identifier: MIT */
/*
 * filelock.h -- the public interface of libfilelock.
 *
 * libfilelock gives programs inter-process locks that are correct on local
 * disks and on network filesystems (NFS, Lustre, HPC shared storage).  It
 * ports the lock kinds of Python's `filelock` package; the on-disk formats are
 * byte-compatible with it, so C and Python programs can share a lock path.
 *
 * Conventions:
 *  - Every fallible function returns 0 on success or a negative errno value.
 *    The library never sets errno as part of its contract.
 *  - Handles are opaque.  The only struct layouts in this header are
 *    struct fl_options and struct fl_holder; both carry their own size in the
 *    first field so that they can grow without breaking old callers.
 *  - A handle may be used by several threads at once: each thread has its own
 *    acquisition context unless FL_SHARED_CONTEXT is set.  Closing a handle
 *    while another thread is still inside a call on it is undefined.
 *
 * The reference manual is filelock(3).
 */
#ifndef FILELOCK_H
#define FILELOCK_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(FL_STATIC)
#define FL_EXPORT __attribute__((visibility("default")))
#else
#define FL_EXPORT
#endif

#define FL_VERSION_MAJOR 0
#define FL_VERSION_MINOR 1
#define FL_VERSION_PATCH 0
#define FL_VERSION_HEX   ((FL_VERSION_MAJOR << 16) | (FL_VERSION_MINOR << 8) | FL_VERSION_PATCH)

/* Returns the library's version as "MAJOR.MINOR.PATCH". */
FL_EXPORT const char *fl_version(void);

typedef struct fl_lock fl_lock;

/* Lock kinds.  The values are fixed forever. */
enum fl_kind {
	FL_FILE = 0,    /* flock(2); falls back to FL_SOFT on ENOSYS         */
	FL_UNIX = 1,    /* flock(2) only                                     */
	FL_SOFT = 2,    /* O_EXCL marker "pid\nhost\nstart\n" (protocol 1)   */
	FL_STRICT = 3,  /* hard-link claims, fail-closed, never aged out     */
	FL_LEASE = 4,   /* protocol-2 marker kept fresh by a heartbeat       */
	FL_RW = 5,      /* SQLite reader/writer lock on a 0-byte database    */
	FL_SOFT_RW = 6, /* NFS reader/writer: generation log (or legacy markers) */
	FL_ETCD = 7     /* etcd lease + transaction                          */
};

/* Lock modes.  FL_SHARED is a read lock on the reader/writer kinds and a
 * LOCK_SH flock on FL_FILE/FL_UNIX; the other kinds refuse it with -ENOTSUP. */
enum fl_mode {
	FL_EXCLUSIVE = 0,
	FL_SHARED = 1
};

/* Flags for fl_options.flags. */
#define FL_NONBLOCK       0x0001u /* never wait: one attempt, then -ETIMEDOUT           */
#define FL_SHARED_CONTEXT 0x0002u /* one context for all threads (Python thread_local=False) */
#define FL_SINGLETON      0x0004u /* one handle per (kind, canonical path) per process   */
#define FL_NO_SINGLETON   0x0008u /* opt out of the default singleton of rw/soft-rw      */
#define FL_NO_FALLBACK    0x0010u /* FL_FILE: fail with -ENOSYS instead of using soft    */
#define FL_NO_CREATE_DIRS 0x0020u /* never create missing parent directories: -ENOENT    */

/* Flags for fl_release() and fl_break(). */
#define FL_FORCE 0x0001u /* release: drop every level; break: break a live lock */

/* Reasons passed to on_compromise. */
enum fl_compromise {
	FL_COMPROMISE_MISSING = 1,       /* our marker vanished (evicted)              */
	FL_COMPROMISE_REPLACED = 2,      /* our marker was replaced by another holder  */
	FL_COMPROMISE_REFRESH_FAILED = 3, /* refreshes kept failing past the stale bound */
	FL_COMPROMISE_EVICTED = 4         /* soft-rw: a peer committed us out (Python's
	                                     "evicted"), or our holder record is gone */
};

/* fl_options.soft_rw_protocol: the on-disk protocol of FL_SOFT_RW. */
enum fl_soft_rw_protocol {
	FL_SOFT_RW_DEFAULT = 0, /* filelock-rw/1                                    */
	FL_SOFT_RW_RW1 = 1,     /* filelock-rw/1: Python filelock 4's generation log */
	FL_SOFT_RW_LEGACY = 2   /* Python filelock <= 3.32.3's .state/.write/.readers */
};

/*
 * Options.  Call fl_options_init() first; it fills the defaults documented
 * next to each field.  A zero in a duration field means "the kind's default".
 */
struct fl_options {
	size_t size;               /* sizeof(struct fl_options), set by init          */
	double timeout;            /* default for fl_acquire: -1 = forever, 0 = one try */
	double poll_interval;      /* 0 = the kind's default: 0.05 s (soft-rw: 0.25 s) */
	double lifetime;           /* soft only: markers older than this are broken; <0 = none */
	double lease_duration;     /* lease: 0 = 30 s                                  */
	double heartbeat_interval; /* 0 = soft-rw: 30 s; lease: lease_duration / 3    */
	double stale_threshold;    /* 0 = soft-rw: 3 * heartbeat_interval             */
	int mode;                  /* file mode for created files; -1 = umask decides   */
	unsigned flags;            /* FL_NONBLOCK, FL_SHARED_CONTEXT, FL_SINGLETON, ... */
	int (*cancel_check)(void *arg); /* polled after each failed attempt; non-zero = give up */
	void *cancel_arg;
	void (*on_compromise)(fl_lock *lk, int reason, void *arg); /* heartbeat kinds */
	void *compromise_arg;
	/* FL_ETCD (appended; older callers' smaller struct leaves them NULL).
	 * fl_open() copies the strings; NULL or "" = the default. */
	const char *etcd_endpoints; /* "http://h1:2379,https://h2:2379"; default:
	                               $FILELOCK_ETCD_ENDPOINTS, else http://127.0.0.1:2379 */
	const char *etcd_prefix;    /* key prefix; default $FILELOCK_ETCD_PREFIX, else "/filelock" */
	/* Each of these defaults to $FILELOCK_ETCD_CACERT, _CERT, _KEY, _USER, _PASSWORD. */
	const char *etcd_cacert;    /* TLS: CA bundle (PEM) that signs the members' certificates */
	const char *etcd_cert;      /* TLS: client certificate (PEM), for --client-cert-auth     */
	const char *etcd_key;       /* TLS: the client certificate's private key (PEM)           */
	const char *etcd_user;      /* etcd authentication (etcdctl user add); NULL = none       */
	const char *etcd_password;
	/* Appended later.  The password's first line is read from this file when
	 * etcd_password is unset; default $FILELOCK_ETCD_PASSWORD_FILE. */
	const char *etcd_password_file;
	/* A password goes over plain http only to a loopback endpoint unless this
	 * is non-zero (or $FILELOCK_ETCD_ALLOW_INSECURE_AUTH=1). */
	int etcd_allow_insecure_auth;
	/* FL_SOFT_RW (appended; older callers' smaller struct leaves it 0). */
	int soft_rw_protocol;       /* enum fl_soft_rw_protocol; 0 = filelock-rw/1       */
};

/* Fills *opt with the defaults: timeout -1, mode -1, lifetime -1, the rest 0. */
FL_EXPORT void fl_options_init(struct fl_options *opt);

/*
 * fl_open() -- create a handle for the lock at `path` of kind `kind`.
 *
 * No I/O on the lock itself happens here: the path is canonicalised (the
 * parent directory's realpath, or as much of it as exists, plus the final name
 * taken literally) and the options are validated.  `opt` may be NULL for the
 * defaults.  FL_RW and FL_SOFT_RW handles are singletons unless
 * FL_NO_SINGLETON is given; other kinds are singletons with FL_SINGLETON.
 * Opening a singleton again returns the same pointer and takes a reference;
 * every fl_open() needs its own fl_close().
 *
 * Returns: 0 and *out set; -EINVAL bad options (or a singleton reopened with
 * different options; fl_errmsg(NULL) names each field), -ENOTSUP kind not
 * built in, -ENAMETOOLONG, -ENOMEM, or the errno of getcwd()/realpath().
 */
FL_EXPORT int fl_open(fl_lock **out, const char *path, enum fl_kind kind,
		      const struct fl_options *opt);

/* Pass as the timeout of fl_acquire() to use the handle's default. */
#if defined(__GNUC__)
#define FL_TIMEOUT_DEFAULT (__builtin_nan(""))
#else
#define FL_TIMEOUT_DEFAULT (0.0 / 0.0)
#endif

/*
 * fl_acquire() -- take the lock (or one more level of it).
 *
 * `timeout` in seconds: < 0 waits forever, 0 makes one attempt,
 * FL_TIMEOUT_DEFAULT uses the options' timeout.  FL_NONBLOCK in the options
 * overrides any timeout.  A context that already holds the lock in the same
 * mode only increments its counter.
 *
 * Returns: 0; -ETIMEDOUT the lock is held elsewhere and the time allowed ran
 * out; -ECANCELED cancel_check asked to stop; -EDEADLK a blocking-forever
 * acquire of a path that a different handle holds in this thread, an
 * upgrade/downgrade while held, or a write acquire on a shared handle whose
 * write level another thread holds; -ENOTSUP FL_SHARED on an exclusive-only
 * kind; -ECHILD the handle was inherited across fork(); -EINVAL bad mode;
 * -EISDIR/-EACCES/-ELOOP/... from the system call that failed (fl_errmsg()
 * names the call, the path and the kind).
 */
FL_EXPORT int fl_acquire(fl_lock *lk, enum fl_mode mode, double timeout);

/*
 * fl_release() -- drop one level, or every level with FL_FORCE.  The last
 * level releases the lock on disk.
 *
 * Returns: 0; also 0 when this context does not hold the lock, except on
 * FL_RW/FL_SOFT_RW where that is -ENOLCK unless FL_FORCE is given; 0 and
 * nothing done in a fork child; otherwise the errno of the failed call (the
 * lock is then still held and the release may be retried).
 */
FL_EXPORT int fl_release(fl_lock *lk, unsigned flags);

/* fl_close() -- NULL-safe.  Drops one reference; the last one force-releases
 * every context of the handle and frees it.  In a fork child it frees memory
 * and descriptors but never releases the parent's lock. */
FL_EXPORT void fl_close(fl_lock *lk);

/* Non-zero when the calling thread's context (or the shared context) holds it. */
FL_EXPORT int fl_is_locked(const fl_lock *lk);
/* The calling context's recursion depth. */
FL_EXPORT unsigned fl_lock_counter(const fl_lock *lk);
/* Held and not compromised (a heartbeat found the marker gone or replaced). */
FL_EXPORT int fl_is_valid(const fl_lock *lk);
/* The canonical absolute path the handle locks. */
FL_EXPORT const char *fl_path(const fl_lock *lk);
/* The kind the handle uses now (FL_FILE reports FL_SOFT after an ENOSYS fallback). */
FL_EXPORT enum fl_kind fl_kind_of(const fl_lock *lk);
/* "file", "unix", "soft", "strict", "lease", "rw", "soft-rw", "etcd"; NULL if unknown. */
FL_EXPORT const char *fl_kind_name(enum fl_kind kind);
/* Parses a kind name; returns 0 or -EINVAL. */
FL_EXPORT int fl_kind_parse(const char *name, enum fl_kind *out);

/* A message for a negative errno returned by this library (thread-safe). */
FL_EXPORT const char *fl_strerror(int err);
/*
 * The detail of the last failure on `lk` in the calling thread, e.g.
 * "open(/nfs/x.lock): Permission denied [soft]"; with lk == NULL the calling
 * thread's last failure of any call (fl_open has no handle yet).  The string
 * stays valid until the next library call in the same thread.
 */
FL_EXPORT const char *fl_errmsg(const fl_lock *lk);

/*
 * fl_fencing_token() -- a number that grows with every new holder of the
 * lock, for the calling context's current hold.  FL_ETCD: the create revision
 * of the holder's key.  FL_SOFT_RW (filelock-rw/1): the generation of the
 * commit that granted the hold (Python's `generation`).  Pass it with every
 * write to the protected resource; a resource that remembers the largest
 * token it has seen and refuses smaller ones cannot be written by a holder
 * whose lease expired while it was paused (see filelock(3), "etcd").
 *
 * Returns: 0 and *out set; -ENOLCK the calling context does not hold the
 * lock; -ENOTSUP the kind has no fencing tokens; -EINVAL bad arguments.
 */
FL_EXPORT int fl_fencing_token(const fl_lock *lk, unsigned long long *out);

/*
 * Holder inspection, by path, without taking the lock.
 */
enum fl_holder_state {
	FL_HOLDER_FREE = 0,      /* nobody holds it                                   */
	FL_HOLDER_HELD = 1,      /* a holder is recorded and not provably dead        */
	FL_HOLDER_STALE = 2,     /* a holder is recorded and provably dead or expired */
	FL_HOLDER_MALFORMED = 3, /* something unparsable is in the way               */
	FL_HOLDER_UNKNOWN = 4    /* held, but the holder cannot be named (flock)      */
};

struct fl_holder {
	size_t size;             /* set by the caller: sizeof(struct fl_holder)        */
	int state;               /* enum fl_holder_state                               */
	int mode;                /* FL_EXCLUSIVE or FL_SHARED (readers present)        */
	pid_t pid;               /* holder pid (writer for rw kinds); 0 if unknown     */
	char host[256];          /* holder host name; "" if unknown                    */
	char start[96];          /* holder process start token, decimal; "" if none    */
	double age;              /* seconds since the marker was written (wall clock); <0 unknown */
	double heartbeat_age;    /* seconds since the last heartbeat; <0 if the kind has none */
	unsigned readers;        /* rw kinds: number of readers                        */
	unsigned writers;        /* rw kinds: 1 if a writer holds or waits             */
	int same_host;           /* the holder runs on this host                       */
	int alive;               /* 1 alive, 0 dead, -1 unknown (other host)           */
	char detail[256];        /* one line for humans, e.g. why it is stale          */
};

/*
 * fl_inspect() -- who holds the lock at `path` of kind `kind`.  `opt` (may be
 * NULL) supplies the thresholds used to call a holder stale.
 *
 * Returns: 0 and *out filled; -EINVAL bad arguments; -ENOTSUP kind cannot be
 * inspected; or the errno of the failed call.
 */
FL_EXPORT int fl_inspect(const char *path, enum fl_kind kind, const struct fl_options *opt,
			 struct fl_holder *out);

/*
 * fl_break() -- remove a holder's marker.  Without FL_FORCE only a provably
 * stale holder is removed (-EBUSY otherwise); with FL_FORCE a live one too.
 * `name` selects one strict claim (basename) and is NULL otherwise.
 *
 * Breaks of one path take turns through the claim file "<path>.break".
 *
 * Returns: 0 removed; -ENOENT nothing to break; -EBUSY holder alive, or
 * another process is breaking it right now (even with FL_FORCE); -ENOTSUP the kind has nothing to break (flock: the kernel owns it); or the
 * errno of the failed call.
 */
FL_EXPORT int fl_break(const char *path, enum fl_kind kind, const struct fl_options *opt,
		       unsigned flags, const char *name);

/*
 * Asynchronous acquire.
 *
 * An executor (fl_async) owns a small pool of threads that run the blocking
 * part of acquires, and a file descriptor that becomes readable when a
 * completion is ready.  fl_acquire_async() returns at once; the acquire runs
 * on a pool thread; its callback runs later on the thread that calls
 * fl_async_dispatch(), normally the event loop's thread after poll() (epoll,
 * libuv, libevent, GLib...) reported fl_async_fd() readable.  Release stays
 * synchronous: call fl_release() as usual once the callback reported 0.
 *
 * Thread-context rule: the lock is taken by a pool thread, so a handle with
 * thread-local contexts (the default) would leave it held by that thread.
 * fl_acquire_async() therefore needs FL_SHARED_CONTEXT or a reader/writer
 * kind (FL_RW, FL_SOFT_RW: instance-wide contexts) and refuses other handles
 * with -EINVAL (Python refuses thread_local=True with run_in_executor).  The
 * request is made on behalf of the calling thread: on reader/writer kinds a
 * write level belongs to it, so that thread releases it.
 *
 * Threading: fl_acquire_async() may be called from any thread, also from a
 * callback.  fl_async_dispatch() and fl_async_cancel() must not run
 * concurrently with each other (call both from the loop's thread).  Handles
 * must stay open until the callbacks of all their requests have run.
 */
typedef struct fl_async fl_async;
typedef struct fl_async_req fl_async_req;

/*
 * Completion callback: `result` is what fl_acquire() would have returned
 * (0 = lk is now held one more level by its shared context), or -ECANCELED
 * after fl_async_cancel().  fl_errmsg(lk) gives the detail of a failure.
 * Runs inside fl_async_dispatch() (or fl_async_free()); the request is freed
 * when it returns.
 */
typedef void (*fl_async_cb)(fl_lock *lk, int result, void *arg);

/*
 * fl_async_new() -- create an executor with `nthreads` pool threads (0 = 4,
 * at most 64).  Pool threads block every signal.  Requests start in order;
 * between two attempts a waiting request gives its thread to any other that
 * is ready, so a few threads serve any number of waiting requests (each is
 * tried every poll_interval) and none starves behind a long wait.
 *
 * Returns: 0 and *out set; -EINVAL; -ENOMEM; or the errno of eventfd()/
 * pthread_create().
 */
FL_EXPORT int fl_async_new(fl_async **out, unsigned nthreads);

/*
 * fl_async_fd() -- a descriptor (non-blocking, close-on-exec, owned by the
 * executor: never read or close it) that polls readable (POLLIN) while
 * completions wait for fl_async_dispatch().  Level-triggered: it stays
 * readable until fl_async_dispatch() ran; it may rarely be readable with
 * nothing to run.  Returns -EINVAL for NULL.
 */
FL_EXPORT int fl_async_fd(const fl_async *ex);

/*
 * fl_async_dispatch() -- run the callbacks of the completions that are ready,
 * on the calling thread, and return.  Never blocks.
 *
 * Returns: the number of callbacks run (>= 0); -EINVAL; -ECHILD in a fork
 * child.
 */
FL_EXPORT int fl_async_dispatch(fl_async *ex);

/* The number of requests whose callback has not run yet (0 for NULL). */
FL_EXPORT unsigned fl_async_pending(const fl_async *ex);

/*
 * fl_async_free() -- NULL-safe.  Cancels every request whose callback has not
 * run (releasing what they obtained, as fl_async_cancel() does), runs those
 * callbacks with -ECANCELED on the calling thread, stops the pool and frees
 * the executor.  Not from a callback.  In a fork child it only frees memory
 * and the descriptor (the pool does not exist there).
 */
FL_EXPORT void fl_async_free(fl_async *ex);

/*
 * fl_acquire_async() -- start fl_acquire(lk, mode, timeout) on the pool and
 * return at once.  `timeout` has fl_acquire()'s meaning (FL_TIMEOUT_DEFAULT,
 * FL_NONBLOCK) but counts from this call.  `cb` runs exactly once, with the
 * codes of fl_acquire() (-ETIMEDOUT, -ECANCELED from cancel_check or
 * fl_async_cancel(), -EDEADLK for a mode change, -ENOTSUP, ...).  Unlike
 * fl_acquire(), no self-deadlock check is made: the calling thread is not
 * blocked, so a path it holds through another handle may be released while
 * the request waits.  `req` may be NULL; otherwise *req identifies the
 * request for fl_async_cancel() until its callback has run.
 *
 * Returns: 0 (the callback will run); -EINVAL NULL argument, or lk has
 * thread-local contexts (fl_errmsg(lk) says so); -ECHILD executor or handle
 * inherited across fork; -ESHUTDOWN the executor is being freed; -ENOMEM.
 */
FL_EXPORT int fl_acquire_async(fl_async *ex, fl_lock *lk, enum fl_mode mode, double timeout,
			       fl_async_cb cb, void *arg, fl_async_req **req);

/*
 * fl_async_cancel() -- cancel a request whose callback has not run yet.  When
 * it returns 0, nothing is held on behalf of the request and its callback
 * will report -ECANCELED: a queued request never starts; a waiting one stops
 * (it may block the caller for the one attempt in progress, or up to 50 ms
 * on kinds that wait with their own method, such as soft's inotify wait);
 * one that already obtained the lock releases that level at once.
 *
 * Returns: 0; -EALREADY already cancelled, or called from the request's own
 * callback; -EINVAL NULL; or the errno of the fl_release() that failed, in
 * which case the lock stays held and the callback reports 0 (release it
 * yourself).
 */
FL_EXPORT int fl_async_cancel(fl_async_req *req);

#ifdef __cplusplus
}
#endif

#endif /* FILELOCK_H */
