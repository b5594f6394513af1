/* SPDX-License-Identifier: MIT */
/*
 * fl-counter -- the lost-update torture worker.
 *
 *   fl-counter [-t KIND] [-n M] [-W US] [-L LOGPREFIX] [-F FENCES] [-o key=value]... LOCK COUNTER
 *
 * M times: take LOCK exclusively, read the decimal number in COUNTER, spend
 * US microseconds "working" (widens the race window an unprotected run
 * loses updates in), check that the lock is still valid, write number + 1,
 * release.  With -L each iteration appends "enter <ns>\nexit <ns>\n" to
 * LOGPREFIX.<host>.<pid> (kernel CLOCK_MONOTONIC, shared by all simulated
 * hosts and untouched by libfaketime) so a checker can prove no two holders
 * overlapped.  With -F each iteration appends "<fencing token> c\n" to FENCES
 * while it holds the lock (so the file lists the holders' tokens in order).
 *
 * Exit: 0 done; 2 lock error; 3 the lock was lost before a write (the update
 * was skipped, as a careful program would); 4 counter file error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filelock.h"
#include "helper-common.h"

static int read_counter(int fd, long long *v)
{
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	*v = n == 0 ? 0 : strtoll(buf, NULL, 10);
	return 0;
}

static int write_counter(int fd, long long v)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "%lld\n", v);

	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct fl_options o;
	enum fl_kind kind = FL_SOFT;
	const char *logprefix = NULL, *fence = NULL;
	long iters = 100, work_us = 0;
	FILE *log = NULL;
	fl_lock *lk;
	int c, r;

	fl_options_init(&o);
	while ((c = getopt(argc, argv, "+t:n:W:L:F:o:")) != -1) {
		switch (c) {
		case 't':
			if (fl_kind_parse(optarg, &kind) != 0) {
				fprintf(stderr, "unknown kind %s\n", optarg);
				return 64;
			}
			break;
		case 'n':
			iters = strtol(optarg, NULL, 10);
			break;
		case 'W':
			work_us = strtol(optarg, NULL, 10);
			break;
		case 'L':
			logprefix = optarg;
			break;
		case 'F':
			fence = optarg;
			break;
		case 'o':
			if (fl_helper_opt(&o, optarg) != 0)
				return 64;
			break;
		default:
			return 64;
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "usage: fl-counter [-t KIND] [-n M] [-W US] [-L PREFIX] [-F FENCES] [-o k=v]... "
				"LOCK COUNTER\n");
		return 64;
	}
	if (logprefix) {
		char host[256], path[4096];
		gethostname(host, sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(path, sizeof(path), "%s.%s.%d", logprefix, host, (int)getpid());
		log = fopen(path, "we");
		if (log == NULL) {
			perror(path);
			return 4;
		}
	}
	r = fl_open(&lk, argv[optind], kind, &o);
	if (r != 0) {
		fprintf(stderr, "fl-counter: %s\n", fl_errmsg(NULL));
		return 2;
	}
	for (long i = 0; i < iters; i++) {
		long long v;
		int fd;

		r = fl_acquire(lk, FL_EXCLUSIVE, FL_TIMEOUT_DEFAULT);
		if (r != 0) {
			fprintf(stderr, "fl-counter: %s\n", fl_errmsg(lk));
			return 2;
		}
		if (log)
			fprintf(log, "enter %lld\n", fl_helper_mono_ns());
		if (fence != NULL) {
			unsigned long long t;
			FILE *f = fopen(fence, "ae");
			if (fl_fencing_token(lk, &t) != 0 || f == NULL) {
				fprintf(stderr, "fl-counter: no fencing token: %s\n", fl_errmsg(lk));
				return 4;
			}
			fprintf(f, "%llu c\n", t);
			fclose(f);
		}
		fd = open(argv[optind + 1], O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0 || read_counter(fd, &v) != 0) {
			perror(argv[optind + 1]);
			return 4;
		}
		if (work_us > 0) {
			struct timespec ts = { work_us / 1000000, (work_us % 1000000) * 1000 };
			nanosleep(&ts, NULL);
		}
		if (!fl_is_valid(lk)) {
			fprintf(stderr, "fl-counter: lock lost before the write; update skipped\n");
			close(fd);
			return 3;
		}
		if (write_counter(fd, v + 1) != 0) {
			perror(argv[optind + 1]);
			return 4;
		}
		close(fd);
		if (log) {
			fprintf(log, "exit %lld\n", fl_helper_mono_ns());
			fflush(log);
		}
		r = fl_release(lk, 0);
		if (r != 0) {
			fprintf(stderr, "fl-counter: %s\n", fl_errmsg(lk));
			return 2;
		}
	}
	fl_close(lk);
	if (log)
		fclose(log);
	return 0;
}
