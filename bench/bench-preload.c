/* SPDX-License-Identifier: MIT */
/*
 * bench-preload -- what the preload shim costs.
 *
 *   bench-preload [-r ROUNDS] [-n ITERS] [-m MATCH_ITERS] [PATH/TO/libfilelock-preload.so]
 *
 * (default: the shim of the build tree it was built in; `make bench` runs it)
 *
 * Runs, in one invocation and alternating round by round so that a busy
 * machine disturbs both sides alike, child processes that measure:
 *   open+close   open(O_RDONLY) + close of a path no rule matches
 *   flock        flock(LOCK_EX) + flock(LOCK_UN) on such a descriptor
 * once without and once with the shim preloaded (the policy has a few rules,
 * none of them for these paths), and
 *   match        flock(LOCK_EX) + flock(LOCK_UN) on a path a soft rule
 *                matches (through the shim), against
 *   library      fl_acquire + fl_release of the same soft kind, directly.
 * Each figure is the best round's mean CPU ns (user + system) per operation
 * pair; the ratio
 * column is throughput with the shim / without it (target >= 0.97).
 * Not part of make check: numbers, not pass/fail.
 *
 *   bench-preload -H [-r ROUNDS] [-n HANDOFFS] [SHIM.so [BASELINE.so]]
 *
 * Hand-off latency of a shimmed lock: a holder process locks, a waiter
 * process (a fork of it, so under the same shim) blocks in flock(LOCK_EX)
 * or fcntl(F_SETLKW); after a random 2-52 ms the holder unlocks.  One
 * hand-off is the time from just before the holder's unlock to just after
 * the waiter's call returned (CLOCK_MONOTONIC, one clock for both).  Per
 * rule kind (soft, lease, strict, soft-rw), F_SETLKW under a soft rule,
 * and an also_native rule whose waiter waits for the kernel lock of a
 * holder without the shim (which unlocks by closing); "kernel" rows are
 * the same calls without the shim, in the same run.  With BASELINE.so
 * (another build's shim) its rows are measured too, round by round
 * alternating with SHIM.so, so a before/after compares like with like.
 * Median and p99 over ROUNDS (default 3) x HANDOFFS (default 40).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "filelock.h"

static double now_ns(void)
{
	struct timespec ts;

	/* CPU time of this process: a machine shared with other work slows the
	 * wall clock of both sides unevenly, but not the work each side does. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int worker(const char *what, const char *dir, long n)
{
	char path[4096];
	double t0, t1;
	int fd;

	if (!strcmp(what, "openclose")) {
		snprintf(path, sizeof(path), "%s/plain/data", dir);
		t0 = now_ns();
		for (long i = 0; i < n; i++) {
			fd = open(path, O_RDONLY);
			if (fd < 0)
				return 1;
			close(fd);
		}
		t1 = now_ns();
	} else if (!strcmp(what, "flock") || !strcmp(what, "match")) {
		snprintf(path, sizeof(path), "%s/%s/data", dir, !strcmp(what, "flock") ? "plain" : "match");
		fd = open(path, O_RDONLY);
		if (fd < 0 || flock(fd, LOCK_EX) != 0 || flock(fd, LOCK_UN) != 0)
			return 1; /* first call classifies the descriptor: not timed */
		t0 = now_ns();
		for (long i = 0; i < n; i++) {
			if (flock(fd, LOCK_EX) != 0 || flock(fd, LOCK_UN) != 0)
				return 1;
		}
		t1 = now_ns();
		close(fd);
	} else if (!strcmp(what, "library")) {
		struct fl_options o;
		fl_lock *lk;

		snprintf(path, sizeof(path), "%s/match/lib.lock", dir);
		fl_options_init(&o);
		o.flags = FL_SHARED_CONTEXT | FL_NO_SINGLETON;
		if (fl_open(&lk, path, FL_SOFT, &o) != 0)
			return 1;
		t0 = now_ns();
		for (long i = 0; i < n; i++) {
			if (fl_acquire(lk, FL_EXCLUSIVE, 0) != 0 || fl_release(lk, 0) != 0)
				return 1;
		}
		t1 = now_ns();
		fl_close(lk);
	} else {
		return 2;
	}
	printf("%.1f\n", (t1 - t0) / (double)n);
	return 0;
}

/* ---- hand-off (-H) --------------------------------------------------------- */

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ho_setlk(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

	return fcntl(fd, cmd, &fl);
}

static ssize_t ho_read(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/*
 * The worker of one row: N hand-offs of `how` ("flock", "fcntl", or "raw":
 * the holder locks with the flock system call itself, bypassing any shim,
 * and unlocks by closing) on `path`; prints each hand-off in seconds.
 */
static int ho_worker(const char *how, const char *path, long n)
{
	int raw = !strcmp(how, "raw"), byte = !strcmp(how, "fcntl");

	srand((unsigned)getpid());
	for (long i = 0; i < n; i++) {
		int ready[2], done[2], fd, st;
		double t0, t1;
		char c;
		pid_t pid;

		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return 1;
		if (raw ? syscall(SYS_flock, fd, LOCK_EX) != 0
			: byte ? ho_setlk(fd, F_SETLKW, F_WRLCK) != 0 : flock(fd, LOCK_EX) != 0)
			return 1;
		if (pipe(ready) != 0 || pipe(done) != 0)
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			int wfd;

			/* The holder's descriptor, inherited: its open file
			 * description must end with the holder's close, and the
			 * shim need not know (the system call itself). */
			syscall(SYS_close, fd);
			wfd = open(path, O_RDWR | O_CLOEXEC);

			if (wfd < 0)
				_exit(1);
			if (write(ready[1], "r", 1) != 1)
				_exit(1);
			if (byte ? ho_setlk(wfd, F_SETLKW, F_WRLCK) != 0 : flock(wfd, LOCK_EX) != 0)
				_exit(1);
			t1 = mono_s();
			if (write(done[1], &t1, sizeof(t1)) != sizeof(t1))
				_exit(1);
			close(wfd);
			_exit(0);
		}
		close(ready[1]);
		close(done[1]);
		if (ho_read(ready[0], &c, 1) != 1)
			return 1;
		/* The waiter is in its blocking call by now: a random phase of
		 * the poll interval. */
		usleep((useconds_t)(2000 + rand() % 50000));
		t0 = mono_s();
		if (raw ? syscall(SYS_close, fd) != 0
			: byte ? ho_setlk(fd, F_SETLK, F_UNLCK) != 0 : flock(fd, LOCK_UN) != 0)
			return 1;
		if (ho_read(done[0], &t1, sizeof(t1)) != sizeof(t1))
			return 1;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
		if (!raw)
			close(fd);
		close(ready[0]);
		close(done[0]);
		printf("%.9f\n", t1 - t0);
	}
	return 0;
}

/* Runs "self --handoff HOW PATH N" (with the shim `so`, or none) and appends
 * its hand-offs to v[*nv]. */
static void ho_run(const char *self, const char *so, const char *conf, const char *how,
		   const char *path, long n, double *v, long *nv)
{
	int p[2], st;
	char num[32], line[64];
	FILE *f;
	pid_t pid;

	snprintf(num, sizeof(num), "%ld", n);
	if (pipe(p) != 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		setenv("FILELOCK_PRELOAD_CONFIG", conf, 1);
		if (so)
			setenv("LD_PRELOAD", so, 1);
		else
			unsetenv("LD_PRELOAD");
		execl(self, self, "--handoff", how, path, num, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	while (f && fgets(line, sizeof(line), f) != NULL)
		v[(*nv)++] = strtod(line, NULL);
	if (f)
		fclose(f);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench-preload: hand-off worker %s %s (%s) failed\n", how, path,
			so ? so : "no shim");
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void ho_print(const char *row, const char *side, double *v, long n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%-32s %-9s %10.3f ms %10.3f ms %6ld\n", row, side, 1e3 * v[n / 2],
	       1e3 * v[(long)ceil(0.99 * (double)n) - 1], n);
}

static int handoff_main(const char *self, const char *so, const char *base, long rounds, long n)
{
	static const struct {
		const char *row, *sub, *how;
		int shim; /* 0: the kernel row, without any shim */
	} rows[] = {
		{ "kernel flock", "plain", "flock", 0 },
		{ "kernel fcntl F_SETLKW", "plain", "fcntl", 0 },
		{ "shim flock, soft rule", "soft", "flock", 1 },
		{ "shim flock, lease rule", "lease", "flock", 1 },
		{ "shim flock, strict rule", "strict", "flock", 1 },
		{ "shim flock, soft-rw rule", "softrw", "flock", 1 },
		{ "shim F_SETLKW, soft rule", "soft", "fcntl", 1 },
		{ "shim flock, also_native kernel", "native", "raw", 1 },
	};
	enum { NROWS = sizeof(rows) / sizeof(rows[0]) };
	char dir[] = "/tmp/bench-preload-XXXXXX", conf[4200], path[4200];
	double *v[NROWS][2];
	long nv[NROWS][2] = { { 0 } };
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(conf, sizeof(conf), "%s/preload.conf", dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return 1;
	fprintf(f, "%s/soft/* soft\n%s/lease/* lease\n%s/strict/* strict\n"
		"%s/softrw/* soft-rw\n%s/native/* soft also_native=yes\n",
		dir, dir, dir, dir, dir);
	fclose(f);
	for (size_t i = 0; i < NROWS; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, rows[i].sub);
		mkdir(path, 0755);
		for (int s = 0; s < 2; s++)
			if ((v[i][s] = calloc((size_t)(rounds * n), sizeof(double))) == NULL)
				return 1;
	}
	for (long r = 0; r < rounds; r++) {
		for (size_t i = 0; i < NROWS; i++) {
			snprintf(path, sizeof(path), "%s/%s/data", dir, rows[i].sub);
			if (!rows[i].shim) {
				ho_run(self, NULL, conf, rows[i].how, path, n, v[i][0], &nv[i][0]);
				continue;
			}
			ho_run(self, so, conf, rows[i].how, path, n, v[i][0], &nv[i][0]);
			if (base)
				ho_run(self, base, conf, rows[i].how, path, n, v[i][1], &nv[i][1]);
		}
	}
	printf("%-32s %-9s %13s %13s %6s\n", "hand-off", "shim", "median", "p99", "n");
	for (size_t i = 0; i < NROWS; i++) {
		ho_print(rows[i].row, rows[i].shim ? "this" : "none", v[i][0], nv[i][0]);
		if (rows[i].shim && base)
			ho_print("", "baseline", v[i][1], nv[i][1]);
	}
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	return system(path) == 0 ? 0 : 1;
}

/* Runs "self --worker WHAT DIR N" with or without the shim; returns ns/op. */
static double run(const char *self, const char *so, const char *conf, const char *what,
		  const char *dir, long n)
{
	int p[2], st;
	char num[32], buf[64] = "";
	pid_t pid;
	ssize_t got;

	snprintf(num, sizeof(num), "%ld", n);
	if (pipe(p) != 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		setenv("FILELOCK_PRELOAD_CONFIG", conf, 1);
		if (so)
			setenv("LD_PRELOAD", so, 1);
		else
			unsetenv("LD_PRELOAD");
		execl(self, self, "--worker", what, dir, num, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	got = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	waitpid(pid, &st, 0);
	if (got <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench-preload: worker %s %s failed\n", what, so ? "(shim)" : "");
		exit(1);
	}
	return strtod(buf, NULL);
}

static double best(double a, double b)
{
	return a == 0 || b < a ? b : a;
}

int main(int argc, char **argv)
{
	long rounds = 7, n = 200000, m = 2000;
	char dir[] = "/tmp/bench-preload-XXXXXX", conf[4200], path[4200];
	double plain_oc = 0, shim_oc = 0, plain_fl = 0, shim_fl = 0, match = 0, lib = 0;
	const char *so;
	FILE *f;
	int c;

	int handoff = 0;

	if (argc == 5 && !strcmp(argv[1], "--worker"))
		return worker(argv[2], argv[3], atol(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "--handoff"))
		return ho_worker(argv[2], argv[3], atol(argv[4]));
	while ((c = getopt(argc, argv, "Hr:n:m:")) != -1) {
		if (c == 'H')
			handoff = 1;
		else if (c == 'r')
			rounds = atol(optarg);
		else if (c == 'n')
			n = atol(optarg);
		else if (c == 'm')
			m = atol(optarg);
		else
			return 2;
	}
#ifdef FLP_BUILD_SO
	so = optind == argc ? FLP_BUILD_SO : argv[optind];
#else
	so = optind == argc ? "" : argv[optind];
#endif
	if (handoff) {
		const char *base = optind + 1 < argc ? argv[optind + 1] : NULL;

		if (optind + 2 < argc || access(so, R_OK) != 0 || so[0] != '/' ||
		    (base && (access(base, R_OK) != 0 || base[0] != '/'))) {
			fprintf(stderr, "usage: bench-preload -H [-r ROUNDS] [-n HANDOFFS] "
					"[/abs/SHIM.so [/abs/BASELINE.so]]\n");
			return 2;
		}
		return handoff_main(argv[0], so, base, rounds == 7 ? 3 : rounds,
				    n == 200000 ? 40 : n);
	}
	if (optind < argc - 1 || access(so, R_OK) != 0) {
		fprintf(stderr, "usage: bench-preload [-r ROUNDS] [-n ITERS] [-m MATCH_ITERS] SHIM.so\n");
		return 2;
	}
	if (so[0] != '/') {
		fprintf(stderr, "bench-preload: give the shim's absolute path\n");
		return 2;
	}
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(conf, sizeof(conf), "%s/preload.conf", dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return 1;
	fprintf(f, "/nonexistent/**/*.h5 soft\n%s/match/* soft\n/nfs/** deny\n", dir);
	fclose(f);
	snprintf(path, sizeof(path), "%s/plain", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/match", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/plain/data", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	snprintf(path, sizeof(path), "%s/match/data", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));

	for (long r = 0; r < rounds; r++) {
		plain_oc = best(plain_oc, run(argv[0], NULL, conf, "openclose", dir, n));
		shim_oc = best(shim_oc, run(argv[0], so, conf, "openclose", dir, n));
		plain_fl = best(plain_fl, run(argv[0], NULL, conf, "flock", dir, n));
		shim_fl = best(shim_fl, run(argv[0], so, conf, "flock", dir, n));
		match = best(match, run(argv[0], so, conf, "match", dir, m));
		lib = best(lib, run(argv[0], NULL, conf, "library", dir, m));
	}
	printf("%-34s %12s %12s %8s\n", "operation (best of rounds)", "without", "with shim",
	       "ratio");
	printf("%-34s %9.0f ns %9.0f ns %8.3f\n", "open+close, no rule matches", plain_oc, shim_oc,
	       plain_oc / shim_oc);
	printf("%-34s %9.0f ns %9.0f ns %8.3f\n", "flock EX+UN, no rule matches", plain_fl, shim_fl,
	       plain_fl / shim_fl);
	printf("%-34s %12s %12s %8s\n", "", "library", "shim", "");
	printf("%-34s %9.0f ns %9.0f ns %8.3f\n", "soft lock+unlock, matching path", lib, match,
	       lib / match);
	printf("(%ld rounds; %ld and %ld iterations per worker; ratio = throughput with/without)\n",
	       rounds, n, m);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	return system(path) == 0 ? 0 : 1;
}
