/* SPDX-License-Identifier: MIT */
/*
 * bench-onetry -- the cost of a one-try acquire that finds the lock held,
 * for the kinds that judge a holder's silence (lease, soft-rw), next to the
 * raw look such a try needs, in the same run.
 *
 *   bench-onetry [-n ITERS] [-r ROUNDS] [DIR]
 *
 * A child process holds each lock (heartbeat 1 s, bound 60 s) while the
 * parent times ITERS tries of:
 *  - "same handle": fl_acquire(lk, FL_EXCLUSIVE, 0) on one open handle;
 *  - "new handle":  fl_open + fl_acquire(..., 0) + fl_close each time (a
 *    process that tries once per descriptor, as the preload shim does);
 *  - raw: open + fstat + read + close of the marker (lease) or lstat of the
 *    writer marker (soft-rw), the least a try must look at.
 * Shown: the median over ROUNDS of ns per try and the ratio to raw.  DIR
 * (default: a new directory under $TMPDIR or /tmp) decides the filesystem.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "filelock.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void opts(struct fl_options *o, enum fl_kind kind)
{
	fl_options_init(o);
	o->heartbeat_interval = 1;
	if (kind == FL_LEASE)
		o->lease_duration = 60;
	else
		o->stale_threshold = 60;
}

static fl_lock *open_or_die(const char *path, enum fl_kind kind)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	opts(&o, kind);
	if (fl_open(&lk, path, kind, &o) != 0) {
		fprintf(stderr, "fl_open(%s): %s\n", path, fl_errmsg(NULL));
		exit(1);
	}
	return lk;
}

/* A child that holds path until it is killed; returns its pid. */
static pid_t hold(const char *path, enum fl_kind kind)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p) != 0)
		exit(1);
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		fl_lock *lk = open_or_die(path, kind);
		if (fl_acquire(lk, FL_EXCLUSIVE, 5) != 0)
			_exit(1);
		(void)!write(p[1], "x", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "holder of %s failed\n", path);
		exit(1);
	}
	close(p[0]);
	return pid;
}

static void raw_look(const char *marker, enum fl_kind kind)
{
	struct stat st;
	char buf[1024];
	int fd;

	if (kind == FL_SOFT_RW) {
		(void)lstat(marker, &st);
		return;
	}
	fd = open(marker, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		(void)fstat(fd, &st);
		(void)!read(fd, buf, sizeof(buf));
		close(fd);
	}
}

int main(int argc, char **argv)
{
	int iters = 2000, rounds = 7, c;
	char dir[4096], path[4200], marker[4300];
	const enum fl_kind kinds[] = { FL_LEASE, FL_SOFT_RW };
	const char *names[] = { "lease", "soft-rw" };

	while ((c = getopt(argc, argv, "n:r:")) != -1) {
		if (c == 'n')
			iters = atoi(optarg);
		else if (c == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (optind < argc) {
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	} else {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/bench-onetry.XXXXXX", t && *t ? t : "/tmp");
		if (mkdtemp(dir) == NULL)
			return 1;
	}
	printf("filelock %s; %d rounds x %d tries; median ns per try that finds the lock held\n\n",
	       fl_version(), rounds, iters);
	printf("%-8s %12s %12s %10s %8s %8s\n", "kind", "same handle", "new handle", "raw look",
	       "ratio", "ratio");
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		double *same = calloc((size_t)rounds, sizeof(double));
		double *fresh = calloc((size_t)rounds, sizeof(double));
		double *raw = calloc((size_t)rounds, sizeof(double));
		fl_lock *lk;
		pid_t pid;
		double t;

		snprintf(path, sizeof(path), "%s/%s.lock", dir, names[k]);
		snprintf(marker, sizeof(marker), kinds[k] == FL_SOFT_RW ? "%s.write" : "%s", path);
		pid = hold(path, kinds[k]);
		lk = open_or_die(path, kinds[k]);
		for (int r = 0; r < rounds; r++) {
			t = now_ns();
			for (int i = 0; i < iters; i++)
				if (fl_acquire(lk, FL_EXCLUSIVE, 0) == 0)
					return fprintf(stderr, "%s: got a held lock\n", names[k]), 1;
			same[r] = (now_ns() - t) / iters;
			t = now_ns();
			for (int i = 0; i < iters; i++) {
				fl_lock *l2 = open_or_die(path, kinds[k]);
				if (fl_acquire(l2, FL_EXCLUSIVE, 0) == 0)
					return fprintf(stderr, "%s: got a held lock\n", names[k]), 1;
				fl_close(l2);
			}
			fresh[r] = (now_ns() - t) / iters;
			t = now_ns();
			for (int i = 0; i < iters; i++)
				raw_look(marker, kinds[k]);
			raw[r] = (now_ns() - t) / iters;
		}
		fl_close(lk);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		{
			double s = median(same, rounds), f = median(fresh, rounds),
			       w = median(raw, rounds);
			printf("%-8s %12.0f %12.0f %10.0f %7.2fx %7.2fx\n", names[k], s, f, w, s / w,
			       f / w);
		}
		free(same);
		free(fresh);
		free(raw);
		{
			/* The holder was killed: clear what it left. */
			struct fl_options o;
			opts(&o, kinds[k]);
			(void)fl_break(path, kinds[k], &o, FL_FORCE, NULL);
		}
	}
	return 0;
}
