/* SPDX-License-Identifier: MIT */
/*
 * fl-suid -- the victim of the security suite: installed set-user-ID root
 * in the suite's private directory and run by an unprivileged user, with
 * the shim loaded from /etc/ld.so.preload of a private mount namespace.
 *
 *   fl-suid PATH    takes flock(LOCK_EX|LOCK_NB) on PATH (created 0600),
 *                   reports on stdout
 *                     secure=S flock=R errno=NAME marker=M
 *                   (S: AT_SECURE, R: flock's return, M: 1 when PATH.lock
 *                   exists while the lock is held), then pid=PID, unlocks
 *                   and exits 0.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char marker[4200];
	struct stat st;
	int fd, r, e;

	if (argc != 2) {
		fprintf(stderr, "usage: fl-suid PATH\n");
		return 64;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fl-suid: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	errno = 0;
	r = flock(fd, LOCK_EX | LOCK_NB);
	e = errno;
	snprintf(marker, sizeof(marker), "%s.lock", argv[1]);
	printf("secure=%lu flock=%d errno=%s marker=%d\n", getauxval(AT_SECURE), r,
	       r == 0 ? "0" : strerrorname_np(e), stat(marker, &st) == 0);
	printf("pid=%d\n", (int)getpid());
	if (r == 0)
		flock(fd, LOCK_UN);
	close(fd);
	return 0;
}
