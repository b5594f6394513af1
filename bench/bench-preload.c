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
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

	if (argc == 5 && !strcmp(argv[1], "--worker"))
		return worker(argv[2], argv[3], atol(argv[4]));
	while ((c = getopt(argc, argv, "r:n:m:")) != -1) {
		if (c == 'r')
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
