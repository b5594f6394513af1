/* SPDX-License-Identifier: MIT */
/*
 * sys.h -- the syscall table.
 *
 * All file-system I/O of the library goes through fl__sys (SQLite's aSyscall[]
 * idea).  Tests swap single entries to inject faults (EINTR, ENOSPC, EIO,
 * short writes, ESTALE, ...); the preload shim points the entries at the real
 * libc functions so that library I/O never re-enters its own hooks.
 *
 * The table is plain data.  Tests change it only while no other thread of the
 * process uses the library.
 */
#ifndef FL_SYS_H
#define FL_SYS_H

#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>

struct fl_sys {
	int (*open)(const char *path, int flags, ...);
	int (*openat)(int dirfd, const char *path, int flags, ...);
	int (*close)(int fd);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	int (*fstat)(int fd, struct stat *st);
	int (*lstat)(const char *path, struct stat *st);
	int (*stat)(const char *path, struct stat *st);
	int (*fstatat)(int dirfd, const char *path, struct stat *st, int flags);
	int (*unlink)(const char *path);
	int (*unlinkat)(int dirfd, const char *path, int flags);
	int (*rename)(const char *from, const char *to);
	int (*renameat)(int olddirfd, const char *from, int newdirfd, const char *to);
	int (*link)(const char *from, const char *to);
	int (*linkat)(int olddirfd, const char *from, int newdirfd, const char *to, int flags);
	int (*mkdir)(const char *path, mode_t mode);
	int (*mkdirat)(int dirfd, const char *path, mode_t mode);
	int (*rmdir)(const char *path);
	int (*flock)(int fd, int op);
	int (*fcntl)(int fd, int cmd, ...);
	int (*ftruncate)(int fd, off_t len);
	int (*fchmod)(int fd, mode_t mode);
	int (*futimens)(int fd, const struct timespec times[2]);
	int (*utimensat)(int dirfd, const char *path, const struct timespec times[2], int flags);
	int (*kill)(pid_t pid, int sig);
	DIR *(*fdopendir)(int fd);
	struct dirent *(*readdir)(DIR *d);
	int (*closedir)(DIR *d);
	int (*fsync)(int fd);
};

extern struct fl_sys fl__sys;

/* Restores every entry to the libc function (for tests). */
void fl__sys_reset(void);

#endif /* FL_SYS_H */
