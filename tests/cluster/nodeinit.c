/* SPDX-License-Identifier: MIT */
/*
 * nodeinit -- PID 1 of one simulated host of the cluster harness.
 *
 *   nodeinit HOSTNAME
 *
 * cluster.sh starts it as the first process of a fresh PID + UTS + mount
 * (+ net) namespace.  It names the host, tells its starter it is ready by
 * writing "ready\n" to stdout (then closes stdout, so the starter's read ends
 * and nothing keeps the pipe open), and from then on only reaps: every
 * process of the host whose parent dies is re-parented to PID 1, and a PID 1
 * that never waits would leave them as zombies, which a later kill(pid, 0)
 * reports as alive.  SIGTERM, SIGINT and SIGHUP end it; the kernel then
 * SIGKILLs every other process of the namespace (FUSE daemon included),
 * which is exactly a host crash.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	sigset_t set;
	int sig;

	if (argc != 2) {
		fprintf(stderr, "usage: nodeinit HOSTNAME\n");
		return 64;
	}
	if (sethostname(argv[1], strlen(argv[1])) != 0) {
		perror("sethostname");
		return 1;
	}
	/*
	 * Block the signals we act on and take them synchronously: PID 1 of a
	 * namespace ignores every signal it has no handler for, and a
	 * sigtimedwait() loop needs no async-signal-safety reasoning.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (write(STDOUT_FILENO, "ready\n", 6) != 6)
		return 1;
	close(STDOUT_FILENO);
	for (;;) {
		sig = sigwaitinfo(&set, NULL);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("sigwaitinfo");
			return 1;
		}
		if (sig != SIGCHLD)
			return 0;
		/* One SIGCHLD may stand for many exits: reap all of them. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
