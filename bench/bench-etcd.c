/* SPDX-License-Identifier: MIT */
/*
 * bench-etcd -- the etcd kind next to soft-rw and soft on a local directory,
 * in the same run:
 *   1. uncontended acquire+release latency (median and 99th percentile);
 *   2. contended hand-offs per second: P processes loop acquire/release on
 *      one lock for S seconds; a hand-off is an acquisition by a different
 *      process than the previous holder (counted in shared memory, updated
 *      under the lock, which also checks that holders never overlap).
 *
 *   bench-etcd [-n ITERS] [-p PROCS] [-s SECONDS] [DIR]
 *
 * Needs $FILELOCK_ETCD_ENDPOINTS (`make bench-etcd` starts a throw-away
 * 3-member cluster on loopback around it).  File kinds wait with a 1 ms poll
 * interval; etcd waits on a watch.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "filelock.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void opts(struct fl_options *o, enum fl_kind kind, char *prefix)
{
	fl_options_init(o);
	o->flags = FL_NO_SINGLETON;
	if (kind == FL_ETCD) {
		o->etcd_prefix = prefix;
		o->stale_threshold = 10;
	} else {
		o->poll_interval = 0.001;
	}
}

/* Uncontended: ITERS acquire+release cycles, one handle. */
static int latency(enum fl_kind kind, const char *path, int iters, char *prefix, double *med,
		   double *p99)
{
	struct fl_options o;
	fl_lock *lk;
	double *v = malloc(sizeof(*v) * (size_t)iters);
	int r;

	opts(&o, kind, prefix);
	if (v == NULL || (r = fl_open(&lk, path, kind, &o)) != 0) {
		fprintf(stderr, "%s: %s\n", fl_kind_name(kind), fl_errmsg(NULL));
		free(v);
		return -1;
	}
	for (int i = 0; i < iters; i++) {
		double t0 = now_s();
		if ((r = fl_acquire(lk, FL_EXCLUSIVE, 10)) != 0 || (r = fl_release(lk, 0)) != 0) {
			fprintf(stderr, "%s: %s\n", fl_kind_name(kind), fl_errmsg(lk));
			fl_close(lk);
			free(v);
			return -1;
		}
		v[i] = now_s() - t0;
	}
	fl_close(lk);
	qsort(v, (size_t)iters, sizeof(*v), cmp_double);
	*med = v[iters / 2];
	*p99 = v[iters * 99 / 100];
	free(v);
	return 0;
}

struct shared {
	atomic_int go;
	long acquisitions, handoffs, overlaps;
	int inside;
	pid_t last;
};

static int contend_child(enum fl_kind kind, const char *path, char *prefix, struct shared *sh,
			 double secs)
{
	struct fl_options o;
	fl_lock *lk;
	double end;

	opts(&o, kind, prefix);
	if (fl_open(&lk, path, kind, &o) != 0)
		return 2;
	while (!atomic_load(&sh->go))
		usleep(100);
	end = now_s() + secs;
	while (now_s() < end) {
		if (fl_acquire(lk, FL_EXCLUSIVE, 30) != 0) {
			fprintf(stderr, "%s: %s\n", fl_kind_name(kind), fl_errmsg(lk));
			return 2;
		}
		if (sh->inside++)
			sh->overlaps++;
		sh->acquisitions++;
		if (sh->last != getpid())
			sh->handoffs++;
		sh->last = getpid();
		sh->inside--;
		if (fl_release(lk, 0) != 0)
			return 2;
	}
	fl_close(lk);
	return 0;
}

static int contended(enum fl_kind kind, const char *path, int procs, double secs, char *prefix,
		     double *acq_s, double *hand_s, long *overlaps)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid[64];
	int ok = 1;
	double t0;

	if (sh == MAP_FAILED)
		return -1;
	memset(sh, 0, sizeof(*sh));
	for (int i = 0; i < procs; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			_exit(contend_child(kind, path, prefix, sh, secs));
	}
	t0 = now_s();
	atomic_store(&sh->go, 1);
	for (int i = 0; i < procs; i++) {
		int st;
		waitpid(pid[i], &st, 0);
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	t0 = now_s() - t0;
	*acq_s = (double)sh->acquisitions / t0;
	*hand_s = (double)sh->handoffs / t0;
	*overlaps = sh->overlaps;
	munmap(sh, sizeof(*sh));
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const enum fl_kind kinds[] = { FL_ETCD, FL_SOFT_RW, FL_SOFT };
	int iters = 200, procs = 2, c;
	double secs = 3;
	char dir[4096], prefix[64];
	const char *base = NULL;

	while ((c = getopt(argc, argv, "n:p:s:")) != -1) {
		switch (c) {
		case 'n':
			iters = atoi(optarg);
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 's':
			secs = atof(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench-etcd [-n ITERS] [-p PROCS] [-s SECONDS] [DIR]\n");
			return 64;
		}
	}
	if (optind < argc)
		base = argv[optind];
	if (iters < 1 || procs < 1 || procs > 64 || !(secs > 0))
		return 64;
	if (getenv("FILELOCK_ETCD_ENDPOINTS") == NULL) {
		fprintf(stderr, "bench-etcd: set FILELOCK_ETCD_ENDPOINTS (or run `make bench-etcd`)\n");
		return 77;
	}
	snprintf(dir, sizeof(dir), "%s/bench-etcd.XXXXXX",
		 base ? base : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		return 1;
	}
	snprintf(prefix, sizeof(prefix), "/flbench-%d", (int)getpid());
	printf("endpoints %s; local kinds in %s\n", getenv("FILELOCK_ETCD_ENDPOINTS"), dir);
	printf("%-8s %14s %14s %14s %14s %9s\n", "kind", "acq+rel med", "acq+rel p99",
	       "acq/s contend", "handoffs/s", "overlaps");
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char path[4200];
		double med, p99, acq, hand;
		long over;

		snprintf(path, sizeof(path), "%s/%s.lock", dir, fl_kind_name(kinds[k]));
		if (latency(kinds[k], path, iters, prefix, &med, &p99) != 0)
			return 1;
		if (contended(kinds[k], path, procs, secs, prefix, &acq, &hand, &over) != 0)
			return 1;
		printf("%-8s %11.1f us %11.1f us %14.0f %14.0f %9ld\n", fl_kind_name(kinds[k]),
		       med * 1e6, p99 * 1e6, acq, hand, over);
		fflush(stdout);
	}
	{
		char cmd[4300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-etcd: could not remove %s\n", dir);
	}
	return 0;
}
