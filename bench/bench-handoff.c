/* SPDX-License-Identifier: MIT */
/*
 * bench-handoff -- how fast a contended lock changes hands, per kind, next
 * to the kernel's blocking flock(2) measured in the same run.
 *
 *   bench-handoff [-n HANDOFFS] [-c INCREMENTS] [-r ROUNDS] [-i IDLE_SECONDS] [-k KIND] [DIR]
 *
 * Kinds: unix, soft, lease, strict, soft-rw (the default protocol, the
 * generation log), soft-rw-v3 (Python filelock 3's marker tree), rw, and
 * the asynchronous acquire of unix and soft.
 *
 * Hand-off: a holder process takes the lock, a waiter process (blocked in
 * fl_acquire with a finite timeout, so no kind may wait in the kernel)
 * tries to take it; after a random 2-52 ms (a random phase of the default
 * poll interval) the holder releases.  The time
 * from just before the holder's release to just after the waiter's acquire
 * returned is one hand-off (CLOCK_MONOTONIC is one clock for both
 * processes).  Median and p99 over HANDOFFS (default 60) per kind; "kernel"
 * is a waiter blocked in flock(LOCK_EX) on the same filesystem.
 *
 * Contended: 4 processes each add 1 to a counter file INCREMENTS times
 * (default 200) under the lock, with a finite timeout; the counter must end
 * at the sum of the increments made (checked).  Throughput next to raw
 * blocking flock (open, flock, read/write, unlock, close).  Fairness: the
 * longest single wait, and the bypass: the most acquisitions by the other
 * processes while one process waited for one acquisition (3 would be FIFO;
 * a waiter that keeps losing shows as a large number; the limit is 3 x
 * INCREMENTS).  A kind stops early after 20 s.  Each kind runs ROUNDS
 * times (default 3), each round next to a round of raw flock, and the
 * table shows the medians: on a loaded machine one round says little.
 *
 * Cross-host (-x PID1,PID2, root): the hand-off only, with the holder in
 * the mount and UTS namespaces of process PID1 and the waiter in those of
 * PID2: two simulated hosts of tests/cluster, each with its own view of the
 * shared directory DIR (required), where no notification crosses from one
 * host to the other.  Marker kinds only; -p sets every kind's poll interval
 * (default 0.05 s), and the holder keeps the lock a random 2 ms to 2 ms +
 * POLL.  bench/bench-cluster-handoff.sh brings up the hosts around it.
 *
 * Idle (-i SECONDS, not part of `make bench`): one waiter per kind waits
 * SECONDS on a held lock; prints each waiter's CPU time (utime + stime from
 * /proc/PID/stat) over the wait as a percentage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void dief(const char *what, int r)
{
	fprintf(stderr, "bench-handoff: %s: %s\n", what, fl_strerror(r));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	i = (int)ceil(p * n) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i];
}

/* Cross-host mode: the waiter's host (its PID 1 as this machine sees it),
 * the poll interval given to every kind (0: the kind's default), and the
 * span of the holder's random hold. */
static pid_t xhost_waiter;
static double opt_poll;
static double hold_span = 0.05;

/* The UTS and mount namespaces of a simulated host, opened before any
 * setns: a host's /proc shows only its own processes. */
struct host_ns {
	int fd[2];
};

static struct host_ns xns_holder, xns_waiter;

static void open_host(struct host_ns *h, pid_t pid)
{
	static const char *const ns[] = { "uts", "mnt" };

	for (size_t i = 0; i < 2; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, ns[i]);
		if ((h->fd[i] = open(p, O_RDONLY | O_CLOEXEC)) < 0)
			die(p);
	}
}

static void enter_host(const struct host_ns *h)
{
	for (size_t i = 0; i < 2; i++)
		if (setns(h->fd[i], 0) != 0)
			die("setns");
	if (chdir("/") != 0)
		die("chdir");
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void wr(int fd, const void *buf, size_t n)
{
	if (write(fd, buf, n) != (ssize_t)n)
		die("write(pipe)");
}

static void rd(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			fprintf(stderr, "bench-handoff: peer process went away\n");
			exit(1);
		}
		got += (size_t)r;
	}
}

/* ---- one kind's lock, sync or async, or raw flock ---------------------- */

struct kind {
	const char *name;  /* column label */
	int kind;          /* enum fl_kind, or -1 = raw kernel flock */
	int async;
	int legacy;        /* soft-rw: Python filelock 3's protocol */
};

static const struct kind kinds[] = {
	{ "unix", FL_UNIX, 0, 0 },         { "soft", FL_SOFT, 0, 0 },
	{ "lease", FL_LEASE, 0, 0 },       { "strict", FL_STRICT, 0, 0 },
	{ "soft-rw", FL_SOFT_RW, 0, 0 },   { "soft-rw-v3", FL_SOFT_RW, 0, 1 },
	{ "rw", FL_RW, 0, 0 },             { "async unix", FL_UNIX, 1, 0 },
	{ "async soft", FL_SOFT, 1, 0 },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

struct locker {
	const struct kind *k;
	char path[4200];
	fl_lock *lk;
	fl_async *ex;
	int fd; /* raw flock */
};

static void locker_open(struct locker *l, const struct kind *k, const char *dir)
{
	struct fl_options o;
	int r;

	memset(l, 0, sizeof(*l));
	l->k = k;
	l->fd = -1;
	snprintf(l->path, sizeof(l->path), "%s/%s.lock", dir, k->kind < 0 ? "kernel" : k->name);
	for (char *p = strrchr(l->path, '/'); *p; p++)
		if (*p == ' ')
			*p = '-';
	if (k->kind < 0)
		return;
	fl_options_init(&o);
	/* No singleton: a fork child must open its own handle. */
	o.flags = FL_SHARED_CONTEXT | FL_NO_SINGLETON;
	if (opt_poll > 0)
		o.poll_interval = opt_poll;
	if (k->legacy)
		o.soft_rw_protocol = FL_SOFT_RW_LEGACY;
	r = fl_open(&l->lk, l->path, (enum fl_kind)k->kind, &o);
	if (r)
		dief(fl_errmsg(NULL), r);
	if (k->async && (r = fl_async_new(&l->ex, 1)) != 0)
		dief("fl_async_new", r);
}

static void async_cb(fl_lock *lk, int result, void *arg)
{
	(void)lk;
	*(int *)arg = result;
}

/* Takes the lock (timeout: seconds, <0 forever).  Dies on failure. */
static void locker_take(struct locker *l, double timeout)
{
	int r;

	if (l->k->kind < 0) {
		l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		if (l->fd < 0)
			die(l->path);
		while (flock(l->fd, LOCK_EX) != 0)
			if (errno != EINTR)
				die("flock");
		return;
	}
	if (!l->ex) {
		if ((r = fl_acquire(l->lk, FL_EXCLUSIVE, timeout)) != 0)
			dief(fl_errmsg(l->lk), r);
		return;
	}
	int res = 1;
	if ((r = fl_acquire_async(l->ex, l->lk, FL_EXCLUSIVE, timeout, async_cb, &res, NULL)) != 0)
		dief("fl_acquire_async", r);
	while (res == 1) {
		struct pollfd p = { .fd = fl_async_fd(l->ex), .events = POLLIN };
		if (poll(&p, 1, -1) > 0)
			fl_async_dispatch(l->ex);
	}
	if (res != 0)
		dief(fl_errmsg(l->lk), res);
}

static void locker_drop(struct locker *l)
{
	int r;

	if (l->k->kind < 0) {
		close(l->fd); /* drops the flock */
		l->fd = -1;
		return;
	}
	if ((r = fl_release(l->lk, 0)) != 0)
		dief(fl_errmsg(l->lk), r);
}

static void locker_close(struct locker *l)
{
	if (l->ex)
		fl_async_free(l->ex);
	fl_close(l->lk);
}

/* ---- hand-off ------------------------------------------------------------ */

static void handoff(const struct kind *k, const char *dir, int n, double *med, double *p99)
{
	int go[2], back[2];
	double *v = calloc((size_t)n, sizeof(*v));
	struct locker l;
	pid_t pid;

	if (v == NULL || pipe(go) || pipe(back))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(go[1]);
		close(back[0]);
		if (xhost_waiter > 0)
			enter_host(&xns_waiter);
		locker_open(&l, k, dir);
		for (;;) {
			char c;
			double t1;

			if (read(go[0], &c, 1) != 1)
				_exit(0);
			wr(back[1], "r", 1);
			locker_take(&l, 60);
			t1 = now_s();
			locker_drop(&l);
			wr(back[1], &t1, sizeof(t1));
		}
	}
	close(go[0]);
	close(back[1]);
	locker_open(&l, k, dir);
	srand(42);
	for (int i = 0; i < n; i++) {
		double t0, t1;
		char c;

		locker_take(&l, -1);
		wr(go[1], "g", 1);
		rd(back[0], &c, 1);
		/* Let the waiter settle into its wait, at a random phase. */
		sleep_s(0.002 + hold_span * rand() / (double)RAND_MAX);
		t0 = now_s();
		locker_drop(&l);
		rd(back[0], &t1, sizeof(t1));
		v[i] = (t1 - t0) * 1e3;
	}
	close(go[1]);
	waitpid(pid, NULL, 0);
	close(back[0]);
	locker_close(&l);
	*med = pct(v, n, 0.5);
	*p99 = pct(v, n, 0.99);
	free(v);
}

/* ---- contended counter -------------------------------------------------- */

#define NPROC 4

struct shared {
	double done_at[NPROC];     /* when each process made its last increment   */
	int count[NPROC];          /* increments made                            */
	int at_first_done[NPROC];  /* increments made when the first one finished */
	double max_wait[NPROC];    /* seconds                                    */
	int max_bypass[NPROC];     /* most acquisitions by others during one wait */
	long taken;                /* acquisitions so far (changed under the lock) */
	int first_done;
};

static void bump(const char *file)
{
	int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	char buf[32] = "";
	long v;
	ssize_t n;

	if (fd < 0)
		die(file);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	v = n > 0 ? strtol(buf, NULL, 10) : 0;
	n = snprintf(buf, sizeof(buf), "%ld\n", v + 1);
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		die("pwrite");
	close(fd);
}

static long counter_value(const char *file)
{
	FILE *f = fopen(file, "r");
	long v = -1;

	if (f == NULL || fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static void contend(const struct kind *k, const char *dir, int n, double *rate, double *maxwait,
		    int *fewest, int *bypass)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char file[4300];
	int start[2];
	pid_t pids[NPROC];
	double t0, t1;
	long total = 0;

	if (sh == MAP_FAILED || pipe(start))
		die("mmap");
	snprintf(file, sizeof(file), "%s/counter-%d-%d-%d", dir, k->kind, k->async, k->legacy);
	unlink(file);
	for (int p = 0; p < NPROC; p++) {
		if ((pids[p] = fork()) < 0)
			die("fork");
		if (pids[p] == 0) {
			struct locker l;
			char c;
			double stop;

			close(start[1]);
			locker_open(&l, k, dir);
			if (read(start[0], &c, 1) != 0)
				_exit(2);
			stop = now_s() + 20;
			for (int i = 0; i < n && now_s() < stop; i++) {
				double a = now_s(), w;
				long g0 = __atomic_load_n(&sh->taken, __ATOMIC_RELAXED), by;

				locker_take(&l, 60);
				w = now_s() - a;
				by = sh->taken - g0;
				sh->taken++;
				if (w > sh->max_wait[p])
					sh->max_wait[p] = w;
				if (by > sh->max_bypass[p])
					sh->max_bypass[p] = (int)by;
				bump(file);
				sh->count[p]++;
				locker_drop(&l);
			}
			/* The first to finish takes a census of the others. */
			if (__sync_bool_compare_and_swap(&sh->first_done, 0, 1))
				for (int q = 0; q < NPROC; q++)
					sh->at_first_done[q] = __atomic_load_n(&sh->count[q],
									       __ATOMIC_RELAXED);
			locker_close(&l);
			_exit(0);
		}
	}
	close(start[0]);
	sleep_s(0.2); /* let every process open its handle */
	t0 = now_s();
	close(start[1]); /* EOF: go */
	for (int p = 0; p < NPROC; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "bench-handoff: %s: a counting process failed\n", k->name);
			exit(1);
		}
	}
	t1 = now_s();
	*maxwait = 0;
	*fewest = n;
	*bypass = 0;
	for (int p = 0; p < NPROC; p++) {
		total += sh->count[p];
		if (sh->max_bypass[p] > *bypass)
			*bypass = sh->max_bypass[p];
		if (sh->max_wait[p] > *maxwait)
			*maxwait = sh->max_wait[p];
		if (sh->at_first_done[p] < *fewest)
			*fewest = sh->at_first_done[p];
	}
	if (counter_value(file) != total) {
		fprintf(stderr, "bench-handoff: %s: counter is %ld, expected %ld: LOST UPDATES\n",
			k->name, counter_value(file), total);
		exit(1);
	}
	*rate = (double)total / (t1 - t0);
	*maxwait *= 1e3;
	munmap(sh, sizeof(*sh));
}

/* ---- idle CPU ------------------------------------------------------------ */

static double cpu_ticks(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
				&st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void idle(const char *dir, double secs)
{
	pid_t pids[NKINDS], holder;
	double c0[NKINDS];
	int ready[2], hold[2], done[2];
	char c;

	/* The holder is a process of its own: rw poisons a database in a fork
	 * child of a process that had a connection open. */
	if (pipe(ready) || pipe(hold) || pipe(done))
		die("pipe");
	if ((holder = fork()) < 0)
		die("fork");
	if (holder == 0) {
		struct locker h[NKINDS];

		close(hold[0]);
		close(done[1]);
		for (size_t i = 0; i < NKINDS; i++) {
			locker_open(&h[i], &kinds[i], dir);
			locker_take(&h[i], -1);
		}
		wr(hold[1], "h", 1);
		if (read(done[0], &c, 1) < 0) /* EOF: release by exiting */
			_exit(1);
		_exit(0);
	}
	close(hold[1]);
	close(done[0]);
	rd(hold[0], &c, 1);
	for (size_t i = 0; i < NKINDS; i++) {
		if ((pids[i] = fork()) < 0)
			die("fork");
		if (pids[i] == 0) {
			struct locker l;
			int r;

			close(ready[0]);
			locker_open(&l, &kinds[i], dir);
			wr(ready[1], "r", 1);
			/* Waits out the holder; the acquire must time out. */
			if (!l.ex) {
				r = fl_acquire(l.lk, FL_EXCLUSIVE, secs + 1);
			} else {
				int res = 1;
				r = fl_acquire_async(l.ex, l.lk, FL_EXCLUSIVE, secs + 1, async_cb, &res,
						     NULL);
				while (r == 0 && res == 1) {
					struct pollfd p = { .fd = fl_async_fd(l.ex), .events = POLLIN };
					if (poll(&p, 1, -1) > 0)
						fl_async_dispatch(l.ex);
				}
				if (r == 0)
					r = res;
			}
			if (r != -ETIMEDOUT)
				fprintf(stderr, "bench-handoff: idle %s waiter: %s\n", kinds[i].name,
					fl_strerror(r));
			_exit(r == -ETIMEDOUT ? 0 : 3);
		}
	}
	close(ready[1]);
	for (size_t i = 0; i < NKINDS; i++)
		rd(ready[0], &c, 1);
	sleep_s(0.5);
	for (size_t i = 0; i < NKINDS; i++)
		c0[i] = cpu_ticks(pids[i]);
	sleep_s(secs - 0.5);
	printf("idle waiters, CPU over %.1f s of waiting (utime+stime):\n", secs - 0.5);
	for (size_t i = 0; i < NKINDS; i++) {
		double c1 = cpu_ticks(pids[i]);
		printf("  %-11s %7.3f s  %6.3f%%\n", kinds[i].name, c1 - c0[i],
		       100 * (c1 - c0[i]) / (secs - 0.5));
	}
	for (size_t i = 0; i < NKINDS; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "bench-handoff: idle %s waiter: unexpected result\n",
				kinds[i].name);
	}
	close(done[1]);
	waitpid(holder, NULL, 0);
	close(hold[0]);
	close(ready[0]);
}

int main(int argc, char **argv)
{
	static const struct kind kernel = { "kernel", -1, 0, 0 };
	const char *only = NULL;
	int n = 60, inc = 200, rounds = 3, opt;
	pid_t xholder = 0;
	double idle_secs = 0;
	char tmpl[4096], dir[4096];

	while ((opt = getopt(argc, argv, "n:c:r:i:k:x:p:")) != -1) {
		switch (opt) {
		case 'x':
			if (sscanf(optarg, "%d,%d", &xholder, &xhost_waiter) != 2 || xholder <= 0 ||
			    xhost_waiter <= 0) {
				fprintf(stderr, "bench-handoff: -x wants PID1,PID2\n");
				return 2;
			}
			break;
		case 'p':
			opt_poll = atof(optarg);
			if (opt_poll <= 0)
				return 2;
			hold_span = opt_poll;
			break;
		case 'r': rounds = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'c': inc = atoi(optarg); break;
		case 'i': idle_secs = atof(optarg); break;
		case 'k': only = optarg; break;
		default:
			fprintf(stderr, "usage: bench-handoff [-n HANDOFFS] [-c INCREMENTS] "
					"[-r ROUNDS] [-i IDLE_SECONDS] [-k KIND] [-x PID1,PID2] "
					"[-p POLL] [DIR]\n");
			return 2;
		}
	}
	if (n < 1 || inc < 1 || rounds < 1 || rounds > 16)
		return 2;
	if (xholder > 0) {
		if (optind >= argc) {
			fprintf(stderr, "bench-handoff: -x needs the shared directory\n");
			return 2;
		}
		open_host(&xns_holder, xholder);
		open_host(&xns_waiter, xhost_waiter);
		enter_host(&xns_holder); /* before any thread: setns wants one */
	}
	if (optind < argc) {
		snprintf(tmpl, sizeof(tmpl), "%s/bench-handoff.XXXXXX", argv[optind]);
	} else {
		const char *t = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/bench-handoff.XXXXXX", t && *t ? t : "/tmp");
	}
	if (mkdtemp(tmpl) == NULL)
		die("mkdtemp");
	snprintf(dir, sizeof(dir), "%s", tmpl);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (xholder > 0) {
		double med, p99, poll = opt_poll > 0 ? opt_poll : 0.05;

		printf("cross-host hand-off (holder on one host releases -> waiter on another "
		       "holds), %d per kind, poll interval %g ms, hold 2-%g ms\n", n, poll * 1e3,
		       2 + hold_span * 1e3);
		printf("  %-11s %9s %9s %12s\n", "kind", "median", "p99", "x poll/2");
		for (size_t i = 0; i < NKINDS; i++) {
			if (kinds[i].async || kinds[i].kind == FL_UNIX || kinds[i].kind == FL_RW)
				continue; /* kernel locks do not cross these hosts */
			if (only && strcmp(only, kinds[i].name) != 0)
				continue;
			handoff(&kinds[i], dir, n, &med, &p99);
			printf("  %-11s %7.3fms %7.3fms %11.2fx\n", kinds[i].name, med, p99,
			       med / (poll * 1e3 / 2));
		}
	} else if (idle_secs > 0) {
		idle(dir, idle_secs);
	} else {
		double kmed, kp99, med, p99, rate = 0, krate = 0, mw = 0, kmw = 0;
		int few, kfew;

		printf("hand-off (holder releases -> waiter in another process holds), %d per kind, "
		       "waiter timeout 60 s\n", n);
		printf("  %-11s %9s %9s %9s\n", "kind", "median", "p99", "x kernel");
		handoff(&kernel, dir, n, &kmed, &kp99);
		printf("  %-11s %7.3fms %7.3fms\n", "kernel", kmed, kp99);
		for (size_t i = 0; i < NKINDS; i++) {
			if (only && strcmp(only, kinds[i].name) != 0)
				continue;
			handoff(&kinds[i], dir, n, &med, &p99);
			printf("  %-11s %7.3fms %7.3fms %8.1fx\n", kinds[i].name, med, p99,
			       med / kmed);
		}
		printf("\ncontended counter, %d processes x %d increments (20 s cap per kind); "
		       "median of %d rounds, each next to its own flock round\n", NPROC, inc, rounds);
		printf("  %-11s %8s %8s %7s %9s %7s %9s %7s\n", "kind", "incr/s", "flock/s",
		       "x flock", "max wait", "bypass", "flock max", "bypass");
		for (size_t i = 0; i < NKINDS; i++) {
			double rates[16], krates[16], ratios[16], maxw = 0, kmaxw = 0;
			int by = 0, kby = 0, b, kb;

			if (only && strcmp(only, kinds[i].name) != 0)
				continue;
			for (int r = 0; r < rounds; r++) {
				/* Alternate which goes first: the machine's load drifts. */
				if (r % 2 == 0)
					contend(&kernel, dir, inc, &krate, &kmw, &kfew, &kb);
				contend(&kinds[i], dir, inc, &rate, &mw, &few, &b);
				if (r % 2 == 1)
					contend(&kernel, dir, inc, &krate, &kmw, &kfew, &kb);
				rates[r] = rate;
				krates[r] = krate;
				ratios[r] = rate / krate;
				if (mw > maxw)
					maxw = mw;
				if (b > by)
					by = b;
				if (kmw > kmaxw)
					kmaxw = kmw;
				if (kb > kby)
					kby = kb;
			}
			printf("  %-11s %8.0f %8.0f %6.0f%% %7.1fms %7d %7.1fms %7d\n", kinds[i].name,
			       pct(rates, rounds, 0.5), pct(krates, rounds, 0.5),
			       100 * pct(ratios, rounds, 0.5), maxw, by, kmaxw, kby);
		}
	}
	{
		char cmd[4200 + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-handoff: could not remove %s\n", dir);
	}
	return 0;
}
