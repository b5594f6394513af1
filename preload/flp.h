/* SPDX-License-Identifier: MIT */
/*
 * flp.h -- what the parts of the preload shim share.  Never installed.
 *
 * resolve.c  finds the real libc functions (struct flp_real), holds the
 *            per-thread bypass depth and the debug switch;
 * policy.c   parses the policy file into an immutable rule table and matches
 *            absolute, normalised paths against it;
 * fdtable.c  maps descriptors to the open file description (OFD) state the
 *            shim keeps for locked files;
 * hooks.c    the exported wrappers, the only code with default visibility;
 * ofd.c      the flock lock of an OFD: classification, the marker and the
 *            kernel's pin, the last close, fork, execve and exit;
 * rlock.c    byte-range locks (fcntl, lockf) emulated with owner files, and
 *            the signal rules of every blocking wait;
 * ranges.c   byte-range arithmetic (pure);
 * dotlock.c  dotlock rules: stale dotlocks broken on create, heartbeats for
 *            the dotlocks this process created;
 * etcd.c     rules of kind etcd, through the full library loaded at run time.
 * flp-real.h holds the real calls hooks.c, ofd.c and dotlock.c make.  What
 * the shim uses of lib/ is declared in lib/fl-shim.h.
 */
#ifndef FLP_H
#define FLP_H

#include <pthread.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "filelock.h"

#define FLP_HIDDEN __attribute__((visibility("hidden")))
#define FLP_EXPORT __attribute__((visibility("default")))
#define FLP_LIKELY(x)   __builtin_expect(!!(x), 1)
#define FLP_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- resolve.c -------------------------------------------------------- */

struct flp_real {
	int (*open)(const char *path, int flags, ...);
	int (*open64)(const char *path, int flags, ...);
	int (*openat)(int dirfd, const char *path, int flags, ...);
	int (*openat64)(int dirfd, const char *path, int flags, ...);
	int (*open_2)(const char *path, int flags);
	int (*open64_2)(const char *path, int flags);
	int (*openat_2)(int dirfd, const char *path, int flags);
	int (*openat64_2)(int dirfd, const char *path, int flags);
	int (*creat)(const char *path, mode_t mode);
	int (*creat64)(const char *path, mode_t mode);
	int (*close)(int fd);
	int (*close_range)(unsigned first, unsigned last, int flags);
	void (*closefrom)(int lowfd);
	int (*fclose)(FILE *fp);
	int (*dup)(int fd);
	int (*dup2)(int fd, int fd2);
	int (*dup3)(int fd, int fd2, int flags);
	int (*fcntl)(int fd, int cmd, ...);
	int (*fcntl64)(int fd, int cmd, ...);
	int (*flock)(int fd, int op);
	int (*execve)(const char *path, char *const argv[], char *const envp[]);
	int (*execv)(const char *path, char *const argv[]);
	int (*execvp)(const char *file, char *const argv[]);
	int (*execvpe)(const char *file, char *const argv[], char *const envp[]);
	int (*fexecve)(int fd, char *const argv[], char *const envp[]);
	int (*posix_spawn)(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
	int (*posix_spawnp)(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
	int (*lockf)(int fd, int cmd, off_t len);
	int (*lockf64)(int fd, int cmd, off_t len);
	ssize_t (*read)(int fd, void *buf, size_t n);
	FILE *(*fopen)(const char *path, const char *mode);
	FILE *(*fopen64)(const char *path, const char *mode);
	FILE *(*freopen)(const char *path, const char *mode, FILE *stream);
	FILE *(*freopen64)(const char *path, const char *mode, FILE *stream);
	/* Optional (NULL: the system call): only watched for dotlock heartbeats. */
	int (*rename)(const char *from, const char *to);
	int (*renameat)(int fromfd, const char *from, int tofd, const char *to);
	int (*renameat2)(int fromfd, const char *from, int tofd, const char *to, unsigned flags);
	int (*unlink)(const char *path);
	int (*unlinkat)(int dirfd, const char *path, int flags);
};

extern struct flp_real flp_real FLP_HIDDEN;

/* Resolves every pointer once (constructor, or the first hook that runs
 * before it).  Returns 0, or -EAGAIN when called re-entrantly during the
 * resolution itself (the caller then uses a raw system call). */
int flp_resolve(void) FLP_HIDDEN;
/* Non-zero once flp_init() finished. */
extern atomic_int flp_ready FLP_HIDDEN;
/* The constructor's work: resolve, fill lib/'s syscall table, load policy. */
void flp_init(void) FLP_HIDDEN;

/* Per-thread bypass depth: while > 0 every hook passes straight through. */
extern __thread int flp_depth FLP_HIDDEN __attribute__((tls_model("initial-exec")));
#define FLP_BYPASS_BEGIN() (flp_depth++)
#define FLP_BYPASS_END()   (flp_depth--)

/* FILELOCK_PRELOAD_DEBUG: 0 quiet, 1 what the shim does, 2 also what it leaves alone */
extern int flp_debug FLP_HIDDEN;
/* One line to stderr, "filelock-preload[pid]: ...\n", written with one
 * write(2); never allocates. */
void flp_log(const char *fmt, ...) FLP_HIDDEN __attribute__((format(printf, 1, 2)));
#define FLP_TRACE(...)                       \
	do {                                 \
		if (FLP_UNLIKELY(flp_debug)) \
			flp_log(__VA_ARGS__); \
	} while (0)

/* ---- policy.c --------------------------------------------------------- */

enum flp_kind {
	FLP_SOFT,
	FLP_STRICT,
	FLP_LEASE,
	FLP_SOFT_RW,
	FLP_NATIVE,
	FLP_DENY,
	FLP_DOTLOCK,
	FLP_ETCD, /* etcd.c: the full library, loaded on first use */
};

struct flp_rule {
	char *pattern;             /* absolute glob, `**` crosses directories      */
	int line;                  /* line number in the policy file               */
	enum flp_kind kind;
	double timeout;            /* blocking calls: < 0 forever (default)         */
	double poll_interval;      /* 0 = the kind's default                        */
	double heartbeat_interval; /* 0 = the kind's default                        */
	double stale_threshold;    /* 0 = the kind's default (dotlock: no age rule) */
	double lease_duration;     /* 0 = the kind's default                        */
	int also_native;           /* also take the kernel flock                    */
	int shared_reader;         /* shared=reader (exclusive-only kinds)          */
	char *lock_dir;            /* markers go under this directory, or NULL      */
	int soft_rw_protocol;      /* soft-rw: protocol= (enum fl_soft_rw_protocol) */
	int no_create_dirs;        /* create_dirs=no: FL_NO_CREATE_DIRS              */
	/* etcd rules only (stale_threshold holds the lease TTL, option ttl). */
	char *etcd_endpoints;      /* endpoints=, or NULL: $FILELOCK_ETCD_ENDPOINTS */
	char *etcd_prefix;         /* prefix=, or NULL: $FILELOCK_ETCD_PREFIX       */
};

struct flp_policy {
	struct flp_rule *rules;
	size_t n;
};

/* Parses `text` (len bytes, need not be NUL-terminated).  On error returns
 * -EINVAL (or -ENOMEM) and writes "FILE:LINE: problem" into err. */
int flp_policy_parse(struct flp_policy *p, const char *text, size_t len, const char *file,
		     char *err, size_t errlen) FLP_HIDDEN;
/* The same, reporting what a checker wants to know but the shim accepts:
 * options given twice or not used by the rule's kind, patterns that can
 * never match.  warn gets one "FILE:LINE: warning: ..." line per call. */
typedef void (*flp_warn_fn)(void *arg, const char *msg);
int flp_policy_parse_warn(struct flp_policy *p, const char *text, size_t len, const char *file,
			  char *err, size_t errlen, flp_warn_fn warn, void *warn_arg) FLP_HIDDEN;
void flp_policy_free(struct flp_policy *p) FLP_HIDDEN;
/* One line saying what a rule does, with the kind's defaults filled in. */
void flp_rule_describe(const struct flp_rule *r, char *out, size_t len) FLP_HIDDEN;
/* A duration: a decimal number of seconds, optionally followed by ms, s, m
 * or h ("30", "2.5s", "500ms", "1m").  0 or -EINVAL. */
int flp_parse_duration(const char *v, double *out) FLP_HIDDEN;
/* The first rule whose pattern matches the absolute normalised path, or NULL. */
const struct flp_rule *flp_policy_match(const struct flp_policy *p, const char *path) FLP_HIDDEN;
/* Shell glob with `**`: 1 match, 0 no match. */
int flp_glob_match(const char *pat, const char *path) FLP_HIDDEN;
/* Lexical normalisation of an absolute path: `//`, `.`, `..`.  Returns 0 or
 * -ENAMETOOLONG / -EINVAL (not absolute). */
int flp_normalize(const char *in, char *out, size_t cap) FLP_HIDDEN;
/* The marker path that stands for a lock on `data`: data + ".lock", or, with
 * lock_dir, lock_dir + data + ".lock".  0 or -ENAMETOOLONG. */
int flp_marker_path(const struct flp_rule *r, const char *data, char *out, size_t cap) FLP_HIDDEN;
/* The inverse: the data path a marker stands for under policy p, or -ENOENT. */
int flp_data_path(const struct flp_policy *p, const char *marker, char *out, size_t cap) FLP_HIDDEN;
/* "soft", "strict", ... */
const char *flp_kind_name(enum flp_kind k) FLP_HIDDEN;
/* Library kind for a redirecting rule; -1 for native/deny/dotlock.  FLP_ETCD
 * gives FL_ETCD, which only the full library (etcd.c) implements. */
int flp_lib_kind(enum flp_kind k) FLP_HIDDEN;

/* The process's policy (resolve.c loads it at init). */
extern struct flp_policy flp_pol FLP_HIDDEN;
/* Non-zero when the policy file is broken: every lock call fails with ENOLCK. */
extern int flp_pol_broken FLP_HIDDEN;
extern char flp_pol_err[512] FLP_HIDDEN;

/* ---- ranges.c ---------------------------------------------------------- */

/*
 * POSIX byte-range arithmetic, pure (no I/O, no locks): one owner's locks as
 * a sorted list of disjoint ranges, changed the way the kernel changes a
 * process's record locks (a new lock replaces what it overlaps, splitting
 * older ranges; overlapping or adjacent ranges of one type merge), and the
 * conflict test F_SETLK and F_GETLK ask of another owner's list.
 */
#define FLP_OFF_MAX INT64_MAX /* "to end of file" (l_len == 0) */

struct flp_range {
	int64_t start; /* first byte                                    */
	int64_t end;   /* last byte, inclusive; FLP_OFF_MAX: to EOF     */
	short type;    /* F_RDLCK or F_WRLCK                            */
};

struct flp_rset {
	struct flp_range *v; /* sorted by start, disjoint; same-type neighbours merged */
	size_t n, cap;
};

/* struct flock's (whence, start, len) -> [start, end], as fcntl(2) reads it:
 * whence SEEK_SET/SEEK_CUR/SEEK_END relative to 0, cur or size; len 0 = to
 * EOF; a negative len covers [start+len, start-1].  Returns 0, -EINVAL (bad
 * whence, negative start) or -EOVERFLOW. */
int flp_range_from_flock(short whence, int64_t l_start, int64_t l_len, int64_t cur, int64_t size,
			 int64_t *start, int64_t *end) FLP_HIDDEN;
/* [start, end] -> (l_start, l_len) with whence SEEK_SET, as F_GETLK reports it. */
void flp_range_to_flock(int64_t start, int64_t end, int64_t *l_start, int64_t *l_len) FLP_HIDDEN;
/* Applies one F_RDLCK / F_WRLCK / F_UNLCK to s.  0, -EINVAL (bad type or
 * range) or -ENOMEM (s unchanged). */
int flp_rset_apply(struct flp_rset *s, int64_t start, int64_t end, short type) FLP_HIDDEN;
/* The lowest range of s that conflicts with a lock of `type` on [start, end]
 * (overlaps, and one of the two is a write lock), or NULL. */
const struct flp_range *flp_rset_conflict(const struct flp_rset *s, int64_t start, int64_t end,
					  short type) FLP_HIDDEN;
/* 1 when applying (start, end, type) would leave s as it is. */
int flp_rset_unchanged_by(const struct flp_rset *s, int64_t start, int64_t end,
			  short type) FLP_HIDDEN;
/* 1 when a is a subset of b's locks with each byte's type no stronger, i.e.
 * going from b to a only releases or downgrades. */
int flp_rset_shrinks(const struct flp_rset *a, const struct flp_rset *b) FLP_HIDDEN;
int flp_rset_copy(struct flp_rset *dst, const struct flp_rset *src) FLP_HIDDEN;
void flp_rset_clear(struct flp_rset *s) FLP_HIDDEN; /* n = 0, keeps memory */
void flp_rset_free(struct flp_rset *s) FLP_HIDDEN;
/* rlock.c's owner file text (see there): host, pid, ofd number (0 for a
 * process's POSIX owner) and ranges.  Linear in len.  A file over
 * FLP_RL_MAX_BYTES or with more than FLP_RL_MAX_RANGES range lines is
 * malformed, like any other parse failure.  0, -EBADMSG or -ENOMEM. */
#define FLP_RL_MAX_RANGES 65536          /* range lines per owner file      */
#define FLP_RL_MAX_BYTES  (4u << 20)     /* bytes per owner file (~2.8 MiB
					    is the longest FLP_RL_MAX_RANGES
					    lines can be)                   */
int flp_rl_parse(const char *buf, size_t len, char *host, size_t hostcap, pid_t *pid, int *ofd,
		 struct flp_rset *set) FLP_HIDDEN;

/* ---- fdtable.c -------------------------------------------------------- */

/* What the table knows about a descriptor.  Pointers (>= 16) are struct flp_ofd *. */
#define FLP_FD_UNKNOWN ((uintptr_t)0) /* existed when this image started: maybe inherited */
#define FLP_FD_NOMATCH ((uintptr_t)1) /* classified: no rule, or a pass-through rule       */
#define FLP_FD_FRESH   ((uintptr_t)2) /* opened in this image, not classified yet          */
#define FLP_FD_IS_OFD(v) ((v) >= 16)

/* The state of one open file description on a matching path, shared by all
 * descriptors of this process that refer to it (dup, dup2, F_DUPFD). */
struct flp_ofd {
	struct flp_ofd *next;      /* all OFDs of the process (flp_fd_mu)            */
	unsigned refs;             /* descriptors of this process (flp_fd_mu)          */
	pthread_mutex_t mu;        /* serialises lock operations on this OFD           */
	const struct flp_rule *rule;
	char path[4096];           /* data path (kernel's name for the descriptor)     */
	char marker[4096];         /* marker path                                      */
	dev_t dev;                 /* data file identity                               */
	ino_t ino;
	int req;                   /* 0, LOCK_SH or LOCK_EX: what the program holds    */
	enum fl_mode mode;         /* the library lock's mode while req != 0           */
	int pinned;                /* we hold a kernel flock on the OFD                */
	fl_lock *lk;               /* library handle; valid only in lk_pid             */
	pid_t lk_pid;
	pid_t taker;               /* took the lock (0: unknown, gone); for adoption   */
	int mode_known;            /* mode is what was taken (not after execve)        */
	dev_t mdev;                /* marker identity (0/0 unknown: re-adopted)        */
	ino_t mino;
	int wal;                   /* a SQLite "-shm" file: byte ranges refused        */
	struct flp_rfile *rf;      /* byte-range state of the file (rlock.c)           */
	struct flp_rowner *rown;   /* this OFD's own byte-range locks (F_OFD_*)        */
};

extern pthread_mutex_t flp_fd_mu FLP_HIDDEN;
extern struct flp_ofd *flp_ofds FLP_HIDDEN;

/* Lock-free read of fd's entry (FLP_FD_UNKNOWN for out-of-range fds). */
uintptr_t flp_fd_get(int fd) FLP_HIDDEN;
/* Stores v.  With `alloc` == 0 never allocates: an fd whose chunk does not
 * exist yet stays UNKNOWN.  Returns 0 or -ENOMEM / -EBADF (fd out of range). */
int flp_fd_set(int fd, uintptr_t v, int alloc) FLP_HIDDEN;
/* Upper bound (exclusive) of descriptors with a chunk. */
int flp_fd_limit(void) FLP_HIDDEN;
/* A new OFD record (refs 0) linked into flp_ofds.  Caller holds flp_fd_mu. */
struct flp_ofd *flp_ofd_new(void) FLP_HIDDEN;
/* Unlinks and frees.  Caller holds flp_fd_mu. */
void flp_ofd_free(struct flp_ofd *o) FLP_HIDDEN;
/* In a fork child: every mutex re-initialised. */
void flp_fd_child_reset(void) FLP_HIDDEN;

/* ---- rlock.c ---------------------------------------------------------- */

struct flock;
struct flp_rfile;
struct flp_rowner;
/* Files on which this process holds POSIX byte-range locks: while 0, a
 * close needs no fstat. */
extern atomic_int flp_rl_posix_held FLP_HIDDEN;
/* An emulated F_SETLK/F_SETLKW/F_GETLK/F_OFD_* on o (descriptor fd).
 * Returns 0 or a positive errno, as fcntl would set it. */
int flp_rl_fcntl(struct flp_ofd *o, int fd, int cmd, struct flock *fl) FLP_HIDDEN;
/* A descriptor of file (dev, ino) is being closed: POSIX locks go. */
void flp_rl_close_fd(dev_t dev, ino_t ino) FLP_HIDDEN;
/* o's last descriptor in this process was closed: its OFD locks go. */
void flp_rl_ofd_last_close(struct flp_ofd *o) FLP_HIDDEN;
/* o (descriptor fd) was inherited through execve: take over the POSIX
 * locks the image before held on its file. */
void flp_rl_inherited(struct flp_ofd *o, int fd) FLP_HIDDEN;
void flp_rl_atfork_child(void) FLP_HIDDEN;
void flp_rl_at_exit(void) FLP_HIDDEN;
/* Before execve: every lingering mutex given back, every owner file written. */
void flp_rl_before_exec(void) FLP_HIDDEN;
/* A blocking wait's signals (see rlock.c): flp_wait_signals(&saved, NULL)
 * starts a wait (asynchronous signals blocked outside its sleeps),
 * flp_wait_signals(NULL, &saved) ends it; flp_wait_sleep sleeps and returns
 * EINTR when a handler ran that should end the wait (no SA_RESTART), else
 * 0.  Both adjust flp_depth around the moments a handler may run. */
void flp_wait_signals(sigset_t *orig, const sigset_t *restore) FLP_HIDDEN;
int flp_wait_sleep(double secs) FLP_HIDDEN;
/* For the library's signal-aware waits (struct fl_shim_signals): whether a
 * pending signal (eintr 0) or the handler that just ran (eintr 1) ends the
 * wait, by flp_wait_sleep's rule. */
int flp_wait_ended(void *arg, int eintr) FLP_HIDDEN;
/* FILELOCK_PRELOAD_STATS=1: one line of counts on stderr. */
void flp_rl_stats(void) FLP_HIDDEN;

/* ---- ofd.c ------------------------------------------------------------ */

/* lib/'s fl__soft_pinned veto (see hooks.c). */
int flp_soft_pinned(const char *marker) FLP_HIDDEN;
void flp_atfork_child(void) FLP_HIDDEN;
void flp_atfork_register(void) FLP_HIDDEN;
void flp_at_exit(void) FLP_HIDDEN;
/* At start: adopt the byte-range locks held before execve (see ofd.c). */
void flp_adopt_inherited(void) FLP_HIDDEN;
/* Shared with etcd.c.  Does the OFD behind fd hold a flock (fdinfo)? */
int flp_ofd_has_flock(int fd, int *exclusive, pid_t *pid) FLP_HIDDEN;
/* The kernel part of a lock: the pin, or the real flock with also_native.
 * Caller holds o->mu and has raised flp_depth.  0 or a positive errno. */
int flp_kernel_lock(struct flp_ofd *o, int fd, int what, int nb, double deadline) FLP_HIDDEN;
/* The path of descriptor fd (readlink of /proc/self/fd/N); its length or -1. */
ssize_t flp_fd_path(int fd, char *buf, size_t cap) FLP_HIDDEN;
/* FILELOCK_PRELOAD_DEBUG=2: why `call` on fd was left alone. */
void flp_trace_passthrough(const char *call, int fd) FLP_HIDDEN;
/* The OFD state of fd when a rule matches its path (classifying it on first
 * use), else NULL with *err 0 (not ours) or non-zero (fail the call). */
struct flp_ofd *flp_lookup(int fd, int *err) FLP_HIDDEN;
/* LOCK_UN / LOCK_SH / LOCK_EX on o.  Caller holds o->mu.  0 or a positive
 * errno. */
int flp_unlock(struct flp_ofd *o, int fd) FLP_HIDDEN;
int flp_lock(struct flp_ofd *o, int fd, int op) FLP_HIDDEN;
/* A close while this process holds byte-range locks (flp-real.h). */
void flp_rl_closing_slow(int fd) FLP_HIDDEN;
/* Before fd is closed: forget it.  Returns the OFD whose last descriptor
 * this was, for flp_closed() after the real close, or NULL. */
struct flp_ofd *flp_closing(int fd) FLP_HIDDEN;
void flp_closed(struct flp_ofd *o) FLP_HIDDEN;
/* Before fork (pthread_atfork, posix_spawn): descriptors become maybe-shared. */
void flp_atfork_prepare(void) FLP_HIDDEN;
/* Before execve: byte-range state kept in memory is written. */
void flp_before_exec(void) FLP_HIDDEN;

/* ---- hooks.c ---------------------------------------------------------- */

/* close(fd) through the shim, from the exit handler. */
int flp_close_slow(int fd) FLP_HIDDEN;

/* ---- dotlock.c --------------------------------------------------------- */

/* This process created `abs` (dev, ino) with O_EXCL under a dotlock rule with
 * a heartbeat: refresh its mtime every `interval` while it is still there. */
void flp_dl_created(const char *abs, dev_t dev, ino_t ino, double interval) FLP_HIDDEN;
/* This process is about to rename or unlink (dirfd, path): if that is one of
 * the files above, stop refreshing it first.  errno is preserved. */
void flp_dl_leaving(int dirfd, const char *path) FLP_HIDDEN;
/* After an open with O_CREAT|O_EXCL on a path (fd its result): recovers a
 * stale dotlock and retries once, or registers the new one for heartbeats.
 * Returns the descriptor. */
int flp_open_dotlock(int dirfd, const char *path, int flags, mode_t mode, int fd) FLP_HIDDEN;
/* Its two halves, for fopen: after EEXIST, 1 when a stale dotlock was
 * broken (retry once; errno preserved); after a create, the heartbeat. */
int flp_dotlock_recover(int dirfd, const char *path) FLP_HIDDEN;
void flp_dotlock_created(int dirfd, const char *path, int fd) FLP_HIDDEN;
/* How many dotlocks are being refreshed (the hooks skip the work at 0). */
extern atomic_int flp_dl_count FLP_HIDDEN;

/* ---- etcd.c ------------------------------------------------------------ */

/*
 * Rules of kind etcd.  The shim's own copy of the core is built without the
 * kinds that need external libraries, so that a preloaded program never maps
 * libcurl or json-c.  The first lock call on an etcd rule dlopen()s the full
 * library and drives it through its public API.  All of these run with
 * o->mu held and flp_depth raised.
 */
/* 1 for a rule of kind etcd (policy.c; byte-range calls on it fail). */
int flp_rule_is_etcd(const struct flp_rule *r) FLP_HIDDEN;
/* The one line a refused fcntl/lockf lock call on an etcd rule logs. */
void flp_etcd_refuse_range(const struct flp_rule *r, const char *call, const char *path) FLP_HIDDEN;
/* LOCK_SH / LOCK_EX (with LOCK_NB).  0 or a positive errno. */
int flp_etcd_lock(struct flp_ofd *o, int fd, int op) FLP_HIDDEN;
/* LOCK_UN after the kernel's unlock: revokes our lease, or reports that a
 * lock taken by another process (fork parent) stays with it. */
void flp_etcd_release(struct flp_ofd *o) FLP_HIDDEN;
/* The last descriptor of this process closed (for real): release what this
 * process holds (reporting it if the OFD lives on elsewhere) and drop the
 * handle.  Leaves o->lk NULL. */
void flp_etcd_last_close(struct flp_ofd *o) FLP_HIDDEN;
/* At start-up (resolve.c): reports etcd locks this process took before
 * execve, whose lease nobody keeps alive any more. */
void flp_etcd_exec_check(void) FLP_HIDDEN;

#endif /* FLP_H */
