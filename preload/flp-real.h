/* SPDX-License-Identifier: MIT */
/*
 * flp-real.h -- small helpers of the files that hook calls (hooks.c, ofd.c,
 * dotlock.c): the real calls, with raw-syscall fallbacks before
 * resolution, and the checks every hook makes first.  Never installed.
 */
#ifndef FLP_REAL_H
#define FLP_REAL_H

#include <errno.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "fl-shim.h"
#include "flp.h"

#define FLP_HAVE(f) (FLP_LIKELY(flp_real.f != NULL) || flp_resolve() == 0)

static inline int real_close(int fd)
{
	if (FLP_HAVE(close) && flp_real.close)
		return flp_real.close(fd);
	return (int)syscall(SYS_close, fd);
}

static inline int real_flock(int fd, int op)
{
	if (FLP_HAVE(flock) && flp_real.flock)
		return flp_real.flock(fd, op);
	return (int)syscall(SYS_flock, fd, op);
}

static inline int real_fcntl(int fd, int cmd, void *arg)
{
	if (FLP_HAVE(fcntl64) && flp_real.fcntl64)
		return flp_real.fcntl64(fd, cmd, arg);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

static inline int real_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	if (FLP_HAVE(openat) && flp_real.openat)
		return flp_real.openat(dirfd, path, flags, mode);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

static inline int flp_sleep(double secs)
{
	struct timespec ts;

	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	return nanosleep(&ts, NULL) == 0 ? 0 : errno;
}

/*
 * A vfork child shares our memory but not our descriptors, and runs no fork
 * handlers, so the pid cached at start is still the parent's: every update
 * of the descriptor table (and of the locks) is skipped there, the real
 * call made (CPython's subprocess closes, dup2s and even fopens in one).
 */
static inline int flp_vfork_child(void)
{
	return FLP_UNLIKELY(getpid() != fl__pid());
}

static inline int flp_needs_init(void)
{
	if (FLP_LIKELY(atomic_load_explicit(&flp_ready, memory_order_acquire)))
		return 0;
	flp_init();
	return !atomic_load(&flp_ready);
}

static inline void flp_rl_closing(int fd)
{
	if (FLP_UNLIKELY(atomic_load_explicit(&flp_rl_posix_held, memory_order_relaxed) > 0))
		flp_rl_closing_slow(fd);
}

#endif /* FLP_REAL_H */
