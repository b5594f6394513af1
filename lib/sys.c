/* SPDX-License-Identifier: MIT */
/*
 * sys.c -- the syscall table (see sys.h).  Every file-system call of lib/
 * goes through it (fl__sys.X()); the only libc I/O named elsewhere is
 * async.c's wake-up descriptor (an eventfd or a pipe, no file) and the
 * inotify calls of wait.c.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "sys.h"

/*
 * open/openat/fcntl are variadic in libc; these wrappers give the table a
 * fixed, address-taking-safe signature while keeping the variadic prototype
 * that callers expect.  The mode/arg is only read when the flags say it exists.
 */
static int sys_open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return open(path, flags, mode);
}

static int sys_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return openat(dirfd, path, flags, mode);
}

static int sys_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	/* Every fcntl argument we use fits a pointer-sized slot (int or pointer). */
	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl(fd, cmd, arg);
}

#define FL_SYS_DEFAULTS                                                                         \
	{                                                                                       \
		.open = sys_open, .openat = sys_openat, .close = close, .read = read,           \
		.write = write, .pread = pread, .fstat = fstat, .lstat = lstat, .stat = stat,   \
		.fstatat = fstatat, .unlink = unlink, .unlinkat = unlinkat, .rename = rename,   \
		.renameat = renameat, .link = link, .linkat = linkat, .mkdir = mkdir,           \
		.mkdirat = mkdirat, .rmdir = rmdir, .flock = flock, .fcntl = sys_fcntl,         \
		.ftruncate = ftruncate, .fchmod = fchmod, .futimens = futimens,                 \
		.utimensat = utimensat, .kill = kill, .fdopendir = fdopendir,                   \
		.readdir = readdir, .closedir = closedir, .fsync = fsync                        \
	}

struct fl_sys fl__sys = FL_SYS_DEFAULTS;

void fl__sys_reset(void)
{
	static const struct fl_sys defaults = FL_SYS_DEFAULTS;

	fl__sys = defaults;
}
