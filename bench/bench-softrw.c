/* SPDX-License-Identifier: MIT */
/*
 * bench-softrw -- costs of the soft-rw kind, measured in one run:
 *
 *  1. uncontended read and write acquire+release next to the raw system
 *     calls the protocol needs (the same opens, writes, fsyncs, links,
 *     renames and unlinks, without the library's checks) and, for
 *     filelock-rw/1, next to Python filelock 4's SoftReadWriteLock on the
 *     same filesystem (when FL_PEER4_DIR names its source);
 *  2. a writer's try with R = 1, 10, 100, 1000 live readers present
 *     (legacy: claim P.write, scan the readers, withdraw; filelock-rw/1:
 *     read the head, judge each member's record, commit itself writer);
 *  3. writer hand-off: R readers release, how long until a waiting writer
 *     (poll_interval 1 ms) holds the lock.
 *
 *   bench-softrw [-p rw1|legacy] [-n ITERS] [-r ROUNDS] [DIR]
 *
 * Medians over ROUNDS.  DIR (default: a new directory under $TMPDIR or /tmp)
 * decides the filesystem measured.  -p picks the protocol (default: the
 * library's, filelock-rw/1).
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
static int protocol = FL_SOFT_RW_RW1;
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

/* filelock-rw/1 by hand, on its own log (raw.lock.rw): the calls of one
 * acquire (holder record, head read, nonce rewrite, commit) and one release
 * (head read, commit, holder unlink). */
static int raw_gen = -1, raw_holders = -1;
static unsigned long long raw_g;
static const char epoch[] = "0123456789abcdef0123456789abcdef\n";
static const char hrec[] = "filelock-rw/1\ntoken=0123456789abcdef0123456789abcdef\npid=12345\n"
			   "host=benchhost\nlease=90.0\nnonce=0123456789abcdef0123456789abcdef\n";

static void raw_slurp(int dfd, const char *name)
{
	char buf[512];
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || read(fd, buf, sizeof(buf)) < 0)
		die("raw read");
	close(fd);
}

static void raw_create(int dfd, const char *name, const char *data, size_t n, int durable)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, n) != (ssize_t)n || (durable && fsync(fd) != 0))
		die("raw create");
	close(fd);
}

static void raw_head(void)
{
	char name[32];

	raw_slurp(raw_gen, "epoch");
	raw_slurp(raw_gen, "HEAD");
	snprintf(name, sizeof(name), "%020llu", raw_g);
	raw_slurp(raw_gen, name);
	snprintf(name, sizeof(name), "%020llu", raw_g + 1);
	raw_slurp(raw_gen, name); /* the probe's miss */
}

static void raw_commit(const char *writer)
{
	char name[32], data[256], head[300];
	struct stat a, b;
	int n;

	raw_slurp(raw_gen, "epoch"); /* pre-check: epoch, predecessor */
	snprintf(name, sizeof(name), "%020llu", raw_g);
	raw_slurp(raw_gen, name);
	n = snprintf(data, sizeof(data), "filelock-rw/1\ngeneration=%llu\n%s%s%s", raw_g + 1,
		     writer ? "writer=" : "", writer ? writer : "", writer ? "\n" : "");
	raw_create(raw_gen, ".commit-0123456789abcdef0123456789abcdef", data, (size_t)n, 1);
	snprintf(name, sizeof(name), "%020llu", ++raw_g);
	if (linkat(raw_gen, ".commit-0123456789abcdef0123456789abcdef", raw_gen, name, 0) != 0 ||
	    fstatat(raw_gen, ".commit-0123456789abcdef0123456789abcdef", &a, AT_SYMLINK_NOFOLLOW) ||
	    fstatat(raw_gen, name, &b, AT_SYMLINK_NOFOLLOW) ||
	    unlinkat(raw_gen, ".commit-0123456789abcdef0123456789abcdef", 0) != 0)
		die("raw link");
	snprintf(name, sizeof(name), "%020llu", raw_g - 1);
	raw_slurp(raw_gen, name); /* post-check */
	raw_slurp(raw_gen, "HEAD");
	memcpy(head, epoch, sizeof(epoch) - 1);
	memcpy(head + sizeof(epoch) - 1, data, (size_t)n);
	raw_create(raw_gen, ".commit-fedcba9876543210fedcba9876543210", head,
		   sizeof(epoch) - 1 + (size_t)n, 0);
	if (renameat(raw_gen, ".commit-fedcba9876543210fedcba9876543210", raw_gen, "HEAD") != 0)
		die("raw HEAD");
	if (raw_g > 65) {
		snprintf(name, sizeof(name), "%020llu", raw_g - 65);
		unlinkat(raw_gen, name, 0);
	}
}

static void raw_log_cycle(int write_mode)
{
	const char *tok = "0123456789abcdef0123456789abcdef";
	int fd;

	raw_create(raw_holders, tok, hrec, sizeof(hrec) - 1, 0);
	raw_head();
	fd = openat(raw_holders, tok, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || write(fd, hrec, sizeof(hrec) - 1) < 0)
		die("raw nonce");
	close(fd);
	raw_commit(write_mode ? tok : NULL); /* a reader's line costs the same */
	raw_head();
	raw_commit(NULL);
	if (unlinkat(raw_holders, tok, 0) != 0)
		die("raw holder unlink");
}

static void raw_log_setup(const char *dir)
{
	char p[4200];
	int r;

	snprintf(p, sizeof(p), "%s/raw.lock.rw", dir);
	if (mkdir(p, 0700) != 0)
		die("raw mkdir");
	r = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r < 0 || mkdirat(r, "gen", 0700) != 0 || mkdirat(r, "holders", 0700) != 0)
		die("raw mkdir");
	raw_gen = openat(r, "gen", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	raw_holders = openat(r, "holders", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(r);
	raw_create(raw_gen, "epoch", epoch, sizeof(epoch) - 1, 1);
	raw_commit(NULL);
}

/* Python filelock 4's acquire+release, ns per cycle for read and write, on
 * the same directory; 0 when the peer is not available. */
static void peer_cycles(const char *dir, int iters, double out[2])
{
	const char *peer = getenv("FL_PEER4_DIR");
	char cmd[8192], line[256];
	FILE *f;

	out[0] = out[1] = 0;
	if (peer == NULL || *peer == '\0')
		return;
	snprintf(cmd, sizeof(cmd),
		 "PYTHONDONTWRITEBYTECODE=1 PYTHONPATH='%s' %s -c '\n"
		 "import sys, time\n"
		 "from filelock import SoftReadWriteLock\n"
		 "lk = SoftReadWriteLock(sys.argv[1], is_singleton=False, heartbeat_interval=30, "
		 "stale_threshold=90, poll_interval=0.001)\n"
		 "for mode in (\"read\", \"write\"):\n"
		 "    acq = lk.acquire_read if mode == \"read\" else lk.acquire_write\n"
		 "    acq(timeout=0); lk.release()\n"
		 "    t0 = time.monotonic_ns()\n"
		 "    for _ in range(int(sys.argv[2])):\n"
		 "        acq(timeout=0); lk.release()\n"
		 "    print(mode, (time.monotonic_ns() - t0) / int(sys.argv[2]))\n"
		 "' '%s/py.lock' %d",
		 peer, getenv("FL_PYTHON3") ? getenv("FL_PYTHON3") : "/usr/bin/python3", dir, iters);
	f = popen(cmd, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		double v;
		if (sscanf(line, "read %lf", &v) == 1)
			out[0] = v;
		else if (sscanf(line, "write %lf", &v) == 1)
			out[1] = v;
	}
	pclose(f);
}

/* The waiting writer's claim is visible to readers. */
static int writer_claimed(void)
{
	struct fl_holder h = { .size = sizeof(h) };
	struct fl_options o;

	if (protocol == FL_SOFT_RW_LEGACY)
		return access(wpath, F_OK) == 0;
	fl_options_init(&o);
	return fl_inspect(path, FL_SOFT_RW, &o, &h) == 0 && h.writers == 1;
}

static fl_lock *open_lock(double poll)
{
	struct fl_options o;
	fl_lock *lk;

	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON;
	o.poll_interval = poll;
	o.soft_rw_protocol = protocol;
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

	while ((c = getopt(argc, argv, "p:n:r:")) != -1) {
		if (c == 'p')
			protocol = strcmp(optarg, "legacy") == 0 ? FL_SOFT_RW_LEGACY : FL_SOFT_RW_RW1;
		else if (c == 'n')
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
	if (protocol != FL_SOFT_RW_LEGACY)
		raw_log_setup(dir);

	printf("soft-rw (%s) on %s, %d iterations x %d rounds (median ns per cycle)\n",
	       protocol == FL_SOFT_RW_LEGACY ? "legacy" : "filelock-rw/1", dir, iters, rounds);
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
					for (int i = 0; i < iters; i++) {
						if (protocol != FL_SOFT_RW_LEGACY)
							raw_log_cycle(m);
						else if (m)
							raw_write_cycle();
						else
							raw_read_cycle();
					}
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
	if (protocol != FL_SOFT_RW_LEGACY) {
		double py[2], lc2[2][64];
		int pr = rounds < 5 ? rounds : 5;

		/* The peer's cycles cost ~100x ours: fewer of them. */
		for (int m = 0; m < 2; m++)
			for (int r = 0; r < pr; r++) {
				double t0 = now_ns();
				for (int i = 0; i < iters / 10 + 1; i++)
					lib_cycle(lk, m ? FL_EXCLUSIVE : FL_SHARED);
				lc2[m][r] = (now_ns() - t0) / (iters / 10 + 1);
			}
		peer_cycles(dir, iters / 10 + 1, py);
		if (py[0] > 0) {
			printf("\n%-28s %12s %12s %8s\n", "operation", "library", "Python 4", "ratio");
			for (int m = 0; m < 2; m++) {
				lib = median(lc2[m], pr);
				printf("%-28s %12.0f %12.0f %8.3f\n",
				       m ? "write acq+rel (wall)" : "read acq+rel (wall)", lib, py[m],
				       lib / py[m]);
			}
		} else {
			printf("\n(Python 4 peer: set FL_PEER4_DIR to compare)\n");
		}
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
			/* Let the writer claim (P.write, or its commit) and wait. */
			while (!writer_claimed())
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
