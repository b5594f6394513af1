/* SPDX-License-Identifier: MIT */
/*
 * fl-shim.h -- everything the preload shim (preload/) may use of lib/
 * beyond the public filelock.h.  Never installed.
 *
 * The shim links the core into its own module; this header is the whole
 * contract between the two.  preload/ includes it instead of fl-internal.h
 * and uses no struct of lib/ but the few defined here for this interface,
 * so lib/ may change its handles, holds, options layout, markers and
 * ledger without touching the shim.  lib/shim.c includes both headers, so
 * a declaration here that drifts from lib/'s own fails to compile.
 *
 * Three more headers of lib/ are genuinely shared primitives and may be
 * included by preload/ too:
 *  - sys.h, the syscall table: the shim points its entries at the real libc
 *    functions (so the library's file I/O never re-enters the shim's hooks)
 *    and uses it for its own file I/O for the same reason;
 *  - proclocks.h, the parser of /proc/locks and fdinfo "lock:" lines: the
 *    shim asks the kernel who holds a file, as fl_inspect does;
 *  - escape.h: messages quoting bytes another user wrote.
 */
#ifndef FL_SHIM_H
#define FL_SHIM_H

#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "filelock.h"

/* ---- process and time ---------------------------------------------------- */

/* getpid(), cached and refreshed in fork children.  The shim asks it on
 * every hooked call that may touch a lock (whose process owns a handle,
 * whether we are a fork child), so it must cost nothing. */
pid_t fl__pid(void);
/* CLOCK_MONOTONIC in seconds: the shim's deadlines use the library's clock,
 * so a deadline handed to the library means the same instant. */
double fl__now_mono(void);
/* Registers fn to run in fork children after the library's own reset: the
 * shim's dotlock registry must be emptied in the same order as the
 * heartbeat registry it feeds. */
void fl__atfork_child(void (*fn)(void));

/* ---- identity (byte-range owner files name their host and process) ------- */

/* The host field of the library's records (escaped node name, PID namespace
 * tag): owner files must name hosts exactly as markers do.  0 or -errno. */
int fl__hostname(char *buf, size_t len);
/* This process's start token ("" if none): owner file names carry it so a
 * recycled pid is never mistaken for us. */
const char *fl__self_token(void);
/* 1 when (pid, host, token) is provably dead or recycled on this host and
 * PID namespace: the same rule markers are broken by, for owner files. */
int fl__owner_is_stale(pid_t pid, const char *host, const char *token);

/* ---- files other users may write (byte-range owner files) ----------------- */

/* Reads the record `name` in dirfd safely (no symlink, no FIFO block, ESTALE
 * re-opened): owner files live in shared directories.  See marker.c. */
int fl__record_read(int dirfd, const char *name, char *buf, size_t cap, size_t *len,
		    struct stat *st, int *fdp);
/* ESTALE replies answered by re-opening (the shim's statistics line). */
unsigned long fl__estale_retries(void);
/* 32 lowercase hex characters from getrandom into buf[33]: owner files are
 * written to a temporary of a random name and renamed (rlock.c). */
void fl__random_hex(char buf[33]);
/* Writes all of buf (short writes continued, EINTR retried).  0 or -errno. */
int fl__write_all(int fd, const void *buf, size_t len);
/* Removes path only when it is still (dev, ino): evicting a dead owner's
 * file never removes a newer one.  0, -ESTALE (not that file), -errno. */
int fl__unlink_if_same(int dirfd, const char *path, dev_t dev, ino_t ino);
/* For how many seconds the file `key` (absolute path; dirfd/name locate it
 * for a probe of the server's clock) is known to have stayed as *st shows
 * (inode, mtime): the library's process-wide observation ledger, so an
 * owner file on another host is evicted by the same rule as a marker. */
double fl_shim_silent_for(const char *key, int dirfd, const char *name, const struct stat *st);

/* ---- dotlocks (files other programs create with O_EXCL) ------------------- */

/* A dotlock rule's recovery after EEXIST: reads the file at the absolute
 * `path` (pid on the first line, optionally a host on the second, as
 * dotlockfile, procmail and Python's soft marker write), and breaks it the
 * way Python breaks a stale marker (rename, re-verify, unlink) when its
 * holder is provably gone, or when stale_threshold > 0 and it stayed
 * unchanged that long: by our watch or the file server's clock when
 * `refreshed` (its creator's shim keeps it fresh), else by our clock.
 * Returns 1 broken (the caller retries its create), 0 left alone. */
int fl_shim_dotlock_break_stale(const char *path, double stale_threshold, int refreshed);

/* ---- heartbeats (dotlocks and byte-range owner files) ---------------------- */

struct fl_shim_beat;
/* Starts refreshing something every `interval` seconds on the library's one
 * heartbeat thread: beat(arg) returns 0, a negative errno (transient: retried
 * next interval; after give_up seconds of them the beat stops) or a positive
 * enum fl_compromise (lost for good: the beat stops).  NULL with errno set
 * when it cannot start.  Not inherited by fork children. */
struct fl_shim_beat *fl_shim_beat_start(double interval, double give_up, int (*beat)(void *arg),
					void *arg);
/* Stops and frees b (NULL: nothing); returns once no beat of b runs. */
void fl_shim_beat_stop(struct fl_shim_beat *b);

/* ---- handles the shim opened with fl_open ------------------------------- */

/* Makes lk hold the lock in `mode` without an attempt: a marker this process
 * holds on disk but has no hold for (after fork or execve).  dev/ino name the
 * marker expected (0/0: whatever is there); taker is the process that took
 * the lock (the pid the kernel's record of our flock pin names; 0 when it is
 * gone): kinds whose records name their holder (strict, soft-rw) adopt only
 * the taker's, ours, or, taker unknown, a dead process's, on this host.  0,
 * -ENOTSUP, -ESTALE (not the one expected), or -errno. */
int fl__adopt(fl_lock *lk, enum fl_mode mode, dev_t dev, ino_t ino, pid_t taker);
/* Frees lk like fl_close but releases nothing: the lock stays with another
 * process that shares the open file description. */
void fl__forget(fl_lock *lk);
/* The handle's poll interval in seconds (its option, or the kind's default):
 * the shim's own waits on lk poll no slower. */
double fl_shim_poll_interval(const fl_lock *lk);
/* Set once by the shim: consulted before the soft kind breaks a marker whose
 * same-host holder pid is gone.  Non-zero = still held through a descriptor
 * that outlived the process that took it. */
extern int (*fl__soft_pinned)(const char *marker_path);

/* ---- waits that end like a blocking system call -------------------------- */

/*
 * How a waiting hooked call sees signals, as the kernel's blocking flock and
 * fcntl(F_SETLKW) do: every sleep runs ppoll with `mask`; before sleeping
 * the wait asks ended(arg, 0) whether a pending signal ends it, after an
 * EINTR ended(arg, 1) whether the handler that ran does (no SA_RESTART);
 * *depth (if not NULL: the shim's bypass depth) is decremented while a
 * handler may run, so the handler's own calls are hooked.
 */
struct fl_shim_signals {
	const sigset_t *mask;
	int (*ended)(void *arg, int eintr);
	void *arg;
	int *depth;
};

/* fl_acquire(lk, mode, timeout) whose sleeps end as `sig` says: -EINTR then
 * (the library's wait loop, with the kind's wake paths and soft-rw's pending
 * writer kept between tries).  sig NULL: fl_acquire itself. */
int fl_shim_acquire(fl_lock *lk, enum fl_mode mode, double timeout,
		    const struct fl_shim_signals *sig);

/*
 * The library's wait engine for a lock that is not an fl_lock (a kernel
 * flock the shim polls, byte-range owner files): tries w->attempt until it
 * returns anything but -EAGAIN, sleeping between tries until the next try
 * is due or an inotify event of w->watch says the holder may have let go.
 * The pause starts at `first` and doubles up to `poll` (a hand-off right
 * after a change is quick, a long wait costs nothing).  The watch is set
 * after the first failed try (a free lock costs none) and followed by
 * another try before any sleep, so a release between a try and the sleep
 * wakes it.
 * An attempt may wait itself: a nested wait on the same path, for events
 * the outer watch reports, reads the outer watch (the thread has one
 * inotify instance, with one watch per inode); a nested watch of another
 * path works but may cost the outer wait events, which it then sees at
 * its next poll.
 */
struct fl_shim_wait {
	int (*attempt)(void *arg); /* 0 got it, -EAGAIN busy, else an error  */
	void *arg;
	const char *watch;         /* path to watch (NULL: poll only)        */
	uint32_t mask;             /* its inotify events                     */
	const char *name;          /* of a watched directory: only this entry
	                              (NULL: any but hidden ones)             */
	/* Optional, with name NULL: whether an event on the entry `entry` of a
	 * watched directory may be a release (skip what the waiter's own tries
	 * make, or they would wake it at once). */
	int (*wakes)(void *arg, const char *entry);
	double deadline;           /* CLOCK_MONOTONIC; INFINITY = none        */
	double first, poll;        /* seconds: first pause, largest pause     */
	const struct fl_shim_signals *sig; /* NULL: signals do not end it   */
};
/* 0 or attempt's error; -ETIMEDOUT at the deadline (after one last try);
 * -EINTR when sig says a handler ended the wait. */
int fl_shim_wait_for(const struct fl_shim_wait *w);

#endif /* FL_SHIM_H */
