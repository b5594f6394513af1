/* SPDX-License-Identifier: MIT */
/*
 * bench-softrw -- costs of the soft-rw kind, measured in one run:
 *
 *  1. uncontended read and write acquire+release next to the raw system
 *     calls the protocol needs (the same opens, writes, unlinks and
 *     directory read, without the library's checks);
 *  2. a writer's try (claim P.write, scan the readers, withdraw) with
 *     R = 1, 10, 100, 1000 live readers present;
 *  3. writer hand-off: R readers release, how long until a waiting writer
 *     (poll_interval 1 ms) holds the lock.
 *
 *   bench-softrw [-n ITERS] [-r ROUNDS] [DIR]
 *
 * Medians over ROUNDS.  DIR (default: a new directory under $TMPDIR or /tmp)
 * decides the filesystem measured.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "filelock.h"

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time of this thread (user + system): unlike wall time it does not
 * count the time other processes keep us off the CPU. */
static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static char path[4096], state[4200], wpath[4200], rdir[4200];
static const char rec[] = "0123456789abcdef0123456789abcdef\n12345\nbenchhost\n";
static const char srec[] = "12345\nbenchhost\n123456789\n";

/* The state transition every operation wraps itself in. */
static int raw_state_take(void)
{
	int fd = open(state, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
	struct stat st;

	if (fd < 0 || write(fd, srec, sizeof(srec) - 1) < 0 || fstat(fd, &st) != 0)
		die("raw state");
	return fd;
}

static void raw_state_drop(int fd)
{
	struct stat st;

	close(fd);
	if (lstat(state, &st) != 0 || unlink(state) != 0)
		die("raw state drop");
}

static void raw_read_cycle(void)
{
	static unsigned seq;
	char name[64];
	int d = open(rdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), s, fd;
	struct stat st;

	if (d < 0)
		die("raw readers dir");
	s = raw_state_take();
	lstat(wpath, &st);
	snprintf(name, sizeof(name), "0123456789abcdef0123456789a%05u.1", seq++ % 100000);
	fd = openat(d, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, rec, sizeof(rec) - 1) < 0)
		die("raw reader marker");
	close(fd);
	raw_state_drop(s);
	if (unlinkat(d, name, 0) != 0)
		die("raw reader unlink");
	close(d);
}

static void raw_write_cycle(void)
{
	int d = open(rdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), s, fd;
	struct stat st;
	DIR *dir;
	char buf[128];

	if (d < 0)
		die("raw readers dir");
	s = raw_state_take();
	lstat(wpath, &st);
	fd = open(wpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, rec, sizeof(rec) - 1) < 0)
		die("raw writer marker");
	close(fd);
	dir = fdopendir(openat(d, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	while (dir && readdir(dir) != NULL)
		;
	if (dir)
		closedir(dir);
	raw_state_drop(s);
	close(d);
	/* release */
	s = raw_state_take();
	fd = open(wpath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
		die("raw writer read");
	close(fd);
	unlink(wpath);
	raw_state_drop(s);
}

static fl_lock *open_lock(double poll)
{
	struct fl_options o;
	fl_lock *lk;

	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON;
	o.poll_interval = poll;
	if (fl_open(&lk, path, FL_SOFT_RW, &o) != 0) {
		fprintf(stderr, "fl_open: %s\n", fl_errmsg(NULL));
		exit(1);
	}
	return lk;
}

static void lib_cycle(fl_lock *lk, enum fl_mode m)
{
	if (fl_acquire(lk, m, 0) != 0 || fl_release(lk, 0) != 0) {
		fprintf(stderr, "cycle: %s\n", fl_errmsg(lk));
		exit(1);
	}
}

struct waiter {
	fl_lock *lk;
	double got;
};

static void *writer_main(void *arg)
{
	struct waiter *w = arg;

	if (fl_acquire(w->lk, FL_EXCLUSIVE, 60) != 0) {
		fprintf(stderr, "writer: %s\n", fl_errmsg(w->lk));
		exit(1);
	}
	w->got = now_ns();
	fl_release(w->lk, 0); /* write levels belong to this thread */
	return NULL;
}

int main(int argc, char **argv)
{
	int iters = 2000, rounds = 5, c;
	const char *only = getenv("FL_BENCH_ONLY"); /* "lib" or "raw": one side only */
	char tmpl[4096];
	const char *dir;
	double *v, lib, raw;
	fl_lock *lk;

	while ((c = getopt(argc, argv, "n:r:")) != -1) {
		if (c == 'n')
			iters = atoi(optarg);
		else if (c == 'r')
			rounds = atoi(optarg);
		else
			return 64;
	}
	if (optind < argc) {
		dir = argv[optind];
	} else {
		snprintf(tmpl, sizeof(tmpl), "%s/fl-bench-srw-XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if ((dir = mkdtemp(tmpl)) == NULL)
			die("mkdtemp");
	}
	snprintf(path, sizeof(path), "%s/bench.lock", dir);
	snprintf(state, sizeof(state), "%s.state", path);
	snprintf(wpath, sizeof(wpath), "%s.write", path);
	snprintf(rdir, sizeof(rdir), "%s.readers", path);
	v = calloc((size_t)rounds, sizeof(*v));
	lk = open_lock(0.001);
	lib_cycle(lk, FL_SHARED); /* creates the layout */

	printf("soft-rw on %s, %d iterations x %d rounds (median ns per cycle)\n", dir, iters,
	       rounds);
	printf("%-28s %12s %12s %8s\n", "operation", "library", "raw calls", "ratio");
	for (int m = 0; m < 2; m++) {
		double rv[64], lc[64], rc[64];
		for (int r = 0; r < rounds && r < 64; r++) {
			/* Alternate which goes first, so drift hurts both alike. */
			for (int k = 0; k < 2; k++) {
				double t0 = now_ns(), c0 = cpu_ns();
				if (only && ((only[0] == 'l') != ((k + r) % 2 == 0)))
					continue;
				if ((k + r) % 2 == 0) {
					for (int i = 0; i < iters; i++)
						lib_cycle(lk, m ? FL_EXCLUSIVE : FL_SHARED);
					v[r] = (now_ns() - t0) / iters;
					lc[r] = (cpu_ns() - c0) / iters;
				} else {
					for (int i = 0; i < iters; i++)
						m ? raw_write_cycle() : raw_read_cycle();
					rv[r] = (now_ns() - t0) / iters;
					rc[r] = (cpu_ns() - c0) / iters;
				}
			}
		}
		lib = median(v, rounds);
		raw = median(rv, rounds);
		printf("%-28s %12.0f %12.0f %8.2f\n",
		       m ? "write acq+rel (wall)" : "read acq+rel (wall)", lib, raw, lib / raw);
		lib = median(lc, rounds);
		raw = median(rc, rounds);
		printf("%-28s %12.0f %12.0f %8.2f\n", m ? "write acq+rel (cpu)" : "read acq+rel (cpu)",
		       lib, raw, lib / raw);
	}

	printf("\n%-10s %18s %18s %22s\n", "readers", "writer try (us)", "  (cpu us)",
	       "writer hand-off (us)");
	for (int n = 1; n <= 1000; n *= 10) {
		fl_lock **rd = calloc((size_t)n, sizeof(*rd));
		double tries[64], tcpu[64], hand[64];
		int tr = rounds < 64 ? rounds : 64;

		for (int i = 0; i < n; i++) {
			rd[i] = open_lock(0.001);
			if (fl_acquire(rd[i], FL_SHARED, 0) != 0)
				die("reader");
		}
		for (int r = 0; r < tr; r++) {
			double t0 = now_ns(), c0 = cpu_ns();
			if (fl_acquire(lk, FL_EXCLUSIVE, 0) != -ETIMEDOUT)
				die("writer try should fail");
			tries[r] = (now_ns() - t0) / 1e3;
			tcpu[r] = (cpu_ns() - c0) / 1e3;
		}
		for (int r = 0; r < tr; r++) {
			struct waiter w = { lk, 0 };
			pthread_t t;
			double rel;

			/* Reacquire the readers each round (not timed). */
			if (r > 0)
				for (int i = 0; i < n; i++)
					if (fl_acquire(rd[i], FL_SHARED, 10) != 0) {
						fprintf(stderr, "reader: %s\n", fl_errmsg(rd[i]));
						exit(1);
					}
			pthread_create(&t, NULL, writer_main, &w);
			/* Let the writer claim P.write and start waiting. */
			while (access(wpath, F_OK) != 0)
				usleep(200);
			for (int i = 0; i < n; i++)
				fl_release(rd[i], 0);
			rel = now_ns();
			pthread_join(t, NULL);
			hand[r] = (w.got - rel) / 1e3;
		}
		printf("%-10d %18.0f %18.0f %22.0f\n", n, median(tries, tr), median(tcpu, tr),
		       median(hand, tr));
		for (int i = 0; i < n; i++)
			fl_close(rd[i]);
		free(rd);
	}
	fl_close(lk);
	free(v);
	if (optind >= argc) {
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
