/* SPDX-License-Identifier: MIT */
/*
 * cl-tool -- small probes the cluster tests run on the simulated hosts.
 *
 *   cl-tool mono                       print CLOCK_MONOTONIC in ns (the kernel's,
 *                                      shared by every host, never faked)
 *   cl-tool probe KIND PATH            exit 0 if fl_open accepts KIND, 3 if the
 *                                      kind is not built in (-ENOTSUP), 2 else
 *   cl-tool break KIND PATH [NAME] [force]
 *                                      fl_break(); prints "break <rc>"; exit 0 on 0
 *   cl-tool excl DIR N                 after one byte on stdin: try to create
 *                                      DIR/excl.0 .. N-1 with O_CREAT|O_EXCL; print
 *                                      each name won
 *   cl-tool link DIR N                 the same race with link(private, DIR/link.i);
 *                                      a win is confirmed by inode identity
 *   cl-tool renamer DIR N              N times: write DIR/.tmp.<pid>, rename it over
 *                                      DIR/target
 *   cl-tool reader DIR N               N times: open + read DIR/target; print
 *                                      "enoent E torn T"
 *   cl-tool hold flock|fcntl PATH      take the kernel lock, print "locked", wait
 *                                      for EOF on stdin
 *   cl-tool try flock|fcntl PATH       one non-blocking try: exit 0 got it, 1 busy
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filelock.h"
#include "../helpers/helper-common.h"

#define RECORD "0123456789abcdef0123456789abcdef\n"

static int usage(void)
{
	fprintf(stderr, "usage: see the header of cl-tool.c\n");
	return 64;
}

static int parse_kind(const char *name, enum fl_kind *k)
{
	if (fl_kind_parse(name, k) != 0) {
		fprintf(stderr, "cl-tool: unknown kind %s\n", name);
		return -1;
	}
	return 0;
}

/* Blocks until the test releases every racer at once. */
static void wait_go(void)
{
	char c;

	if (read(STDIN_FILENO, &c, 1) != 1) {
		fprintf(stderr, "cl-tool: no start byte\n");
		exit(2);
	}
}

static int race(const char *how, const char *dir, long n)
{
	char path[4096], priv[4096];
	struct stat a, b;
	long i;

	wait_go();
	for (i = 0; i < n; i++) {
		if (strcmp(how, "excl") == 0) {
			snprintf(path, sizeof(path), "%s/excl.%ld", dir, i);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd >= 0) {
				close(fd);
				printf("%s\n", path);
			} else if (errno != EEXIST) {
				perror(path);
				return 2;
			}
			continue;
		}
		snprintf(path, sizeof(path), "%s/link.%ld", dir, i);
		snprintf(priv, sizeof(priv), "%s/.priv.%d.%ld", dir, (int)getpid(), i);
		int fd = open(priv, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			perror(priv);
			return 2;
		}
		close(fd);
		if (link(priv, path) == 0) {
			/* The nlink check lies under FUSE attribute caching; inode
			 * identity does not. */
			if (lstat(priv, &a) != 0 || lstat(path, &b) != 0 || a.st_ino != b.st_ino) {
				fprintf(stderr, "cl-tool: link won but %s is not ours\n", path);
				return 2;
			}
			printf("%s\n", path);
		} else if (errno != EEXIST) {
			perror(path);
			return 2;
		}
		unlink(priv);
	}
	return 0;
}

static int renamer(const char *dir, long n)
{
	char tmp[4096], target[4096];

	snprintf(tmp, sizeof(tmp), "%s/.tmp.%d", dir, (int)getpid());
	snprintf(target, sizeof(target), "%s/target", dir);
	wait_go();
	for (long i = 0; i < n; i++) {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, RECORD, strlen(RECORD)) != (ssize_t)strlen(RECORD)) {
			perror(tmp);
			return 2;
		}
		close(fd);
		if (rename(tmp, target) != 0) {
			perror(target);
			return 2;
		}
	}
	return 0;
}

static int reader(const char *dir, long n)
{
	char target[4096], buf[128];
	long enoent = 0, torn = 0;

	snprintf(target, sizeof(target), "%s/target", dir);
	wait_go();
	for (long i = 0; i < n; i++) {
		int fd = open(target, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno != ENOENT) {
				perror(target);
				return 2;
			}
			enoent++;
			continue;
		}
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k != (ssize_t)strlen(RECORD) || memcmp(buf, RECORD, (size_t)k) != 0)
			torn++;
		close(fd);
	}
	printf("enoent %ld torn %ld\n", enoent, torn);
	return 0;
}

static int kernel_lock(const char *how, const char *path, int wait)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644), r;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char c;

	if (fd < 0) {
		perror(path);
		return 2;
	}
	if (strcmp(how, "flock") == 0)
		r = flock(fd, LOCK_EX | LOCK_NB);
	else if (strcmp(how, "fcntl") == 0)
		r = fcntl(fd, F_SETLK, &fl);
	else
		return usage();
	if (r != 0)
		return errno == EWOULDBLOCK || errno == EACCES ? 1 : 2;
	if (!wait)
		return 0;
	printf("locked\n");
	fflush(stdout);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	enum fl_kind kind;
	fl_lock *lk;
	int r;

	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "mono") == 0) {
		printf("%lld\n", fl_helper_mono_ns());
		return 0;
	}
	if (strcmp(argv[1], "probe") == 0 && argc == 4) {
		if (parse_kind(argv[2], &kind) != 0)
			return 64;
		r = fl_open(&lk, argv[3], kind, NULL);
		if (r == -ENOTSUP)
			return 3;
		if (r != 0) {
			fprintf(stderr, "cl-tool: %s\n", fl_errmsg(NULL));
			return 2;
		}
		fl_close(lk);
		return 0;
	}
	if (strcmp(argv[1], "break") == 0 && argc >= 4 && argc <= 6) {
		const char *name = argc >= 5 && strcmp(argv[4], "force") != 0 ? argv[4] : NULL;
		unsigned flags = strcmp(argv[argc - 1], "force") == 0 ? FL_FORCE : 0;
		if (parse_kind(argv[2], &kind) != 0)
			return 64;
		r = fl_break(argv[3], kind, NULL, flags, name);
		printf("break %d\n", r);
		if (r != 0)
			fprintf(stderr, "cl-tool: %s\n", fl_errmsg(NULL));
		return r == 0 ? 0 : 1;
	}
	if ((strcmp(argv[1], "excl") == 0 || strcmp(argv[1], "link") == 0) && argc == 4)
		return race(argv[1], argv[2], strtol(argv[3], NULL, 10));
	if (strcmp(argv[1], "renamer") == 0 && argc == 4)
		return renamer(argv[2], strtol(argv[3], NULL, 10));
	if (strcmp(argv[1], "reader") == 0 && argc == 4)
		return reader(argv[2], strtol(argv[3], NULL, 10));
	if (strcmp(argv[1], "hold") == 0 && argc == 4)
		return kernel_lock(argv[2], argv[3], 1);
	if (strcmp(argv[1], "try") == 0 && argc == 4)
		return kernel_lock(argv[2], argv[3], 0);
	return usage();
}
