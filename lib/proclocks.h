/* SPDX-License-Identifier: MIT */
/*
 * proclocks.h -- reading the kernel's lock tables: /proc/locks and the
 * "lock:" lines of /proc/PID/fdinfo/FD.
 */
#ifndef FL_PROCLOCKS_H
#define FL_PROCLOCKS_H

/*
 * One lock as the kernel prints it:
 *   "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
 *   "2: POSIX  ADVISORY  READ 99 00:2a:17 1073741824 1073742334"
 *   "2: -> POSIX  ADVISORY  WRITE 98 00:2a:17 0 EOF"   (a blocked waiter)
 */
struct fl__proc_lock {
	char type[16];          /* FLOCK, POSIX, OFDLCK, LEASE, ...           */
	char mode[16];          /* READ, WRITE (leases: others)               */
	int waiter;             /* "->": waiting for the lock, not holding it */
	int pid;                /* -1 for OFD locks                           */
	unsigned maj, min;      /* device, as major:minor in hex              */
	unsigned long long ino;
	long long start, end;   /* byte range; end is INT64_MAX for EOF       */
};

/* Parses one line (a NUL ends it, as does a newline).  Returns 1, or 0
 * when the line is not a lock of this form. */
int fl__proc_lock_parse(const char *line, struct fl__proc_lock *out);

/* The next "lock:" line of an fdinfo text, from *pos on: returns 1 with
 * *out filled and *pos moved past it, 0 when there is none. */
int fl__fdinfo_next_lock(const char **pos, struct fl__proc_lock *out);

#endif
