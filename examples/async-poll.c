/* SPDX-License-Identifier: MIT */
/*
 * async-poll.c -- take several locks at once from a plain poll() loop.
 *
 *     async-poll [-k KIND] [-w SECONDS] PATH...
 *
 * Starts an asynchronous acquire of every PATH, then runs an ordinary poll()
 * loop over the executor's descriptor and standard input.  Each completion
 * prints "locked PATH" or "failed PATH: reason"; a line on standard input
 * prints how many acquires are still waiting (the loop is never blocked by a
 * lock).  Once every acquire has completed, the locks are released and the
 * program exits: 0 if all were taken, 1 otherwise.
 *
 * Build: cc async-poll.c $(pkg-config --cflags --libs filelock)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <filelock.h>

struct job {
	fl_lock *lk;
	int result; /* 1 = not completed yet */
};

/* Runs on the loop's thread, inside fl_async_dispatch(). */
static void on_acquired(fl_lock *lk, int result, void *arg)
{
	struct job *j = arg;

	j->result = result;
	if (result == 0)
		printf("locked %s\n", fl_path(lk));
	else
		printf("failed %s: %s\n", fl_path(lk), fl_errmsg(lk));
	fflush(stdout);
}

static int usage(void)
{
	fprintf(stderr, "usage: async-poll [-k KIND] [-w SECONDS] PATH...\n");
	return 2;
}

int main(int argc, char **argv)
{
	enum fl_kind kind = FL_FILE;
	double timeout = -1;
	struct fl_options opt;
	struct job *jobs;
	fl_async *ex;
	int c, n, r, failed = 0, stdin_open = 1;

	while ((c = getopt(argc, argv, "k:w:")) != -1) {
		if (c == 'k' && fl_kind_parse(optarg, &kind) == 0)
			continue;
		if (c == 'w') {
			timeout = strtod(optarg, NULL);
			continue;
		}
		return usage();
	}
	n = argc - optind;
	if (n <= 0)
		return usage();

	/* A pool thread takes the lock, so the handle needs a shared context. */
	fl_options_init(&opt);
	opt.flags = FL_SHARED_CONTEXT;
	r = fl_async_new(&ex, 2);
	if (r < 0) {
		fprintf(stderr, "fl_async_new: %s\n", fl_strerror(r));
		return 1;
	}
	jobs = calloc((size_t)n, sizeof(*jobs));
	if (jobs == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		jobs[i].result = 1;
		r = fl_open(&jobs[i].lk, argv[optind + i], kind, &opt);
		if (r == 0)
			r = fl_acquire_async(ex, jobs[i].lk, FL_EXCLUSIVE, timeout, on_acquired,
					     &jobs[i], NULL);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[optind + i],
				fl_errmsg(jobs[i].lk)[0] ? fl_errmsg(jobs[i].lk) : fl_strerror(r));
			jobs[i].result = r;
		}
	}

	while (fl_async_pending(ex) > 0) {
		struct pollfd pfd[2] = {
			{ .fd = fl_async_fd(ex), .events = POLLIN },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
		};

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			break;
		}
		if (pfd[0].revents & POLLIN)
			fl_async_dispatch(ex);
		if (pfd[1].revents & (POLLIN | POLLHUP)) {
			char line[256];

			if (fgets(line, sizeof(line), stdin) == NULL)
				stdin_open = 0;
			else
				printf("waiting for %u lock(s)\n", fl_async_pending(ex));
			fflush(stdout);
		}
	}

	/* Release stays synchronous. */
	for (int i = 0; i < n; i++) {
		if (jobs[i].result == 0)
			fl_release(jobs[i].lk, 0);
		else
			failed = 1;
		fl_close(jobs[i].lk);
	}
	fl_async_free(ex); /* cancels anything left if the loop broke early */
	free(jobs);
	return failed;
}
