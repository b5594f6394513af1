/* SPDX-License-Identifier: MIT */
/*
 * fl-bench -- uncontended acquire+release of each kind next to the raw
 * system-call sequence that kind needs, measured in the same run.
 *
 *   fl-bench [-n ITERS] [-r ROUNDS] [DIR]
 *
 * Each round times ITERS library cycles and ITERS raw cycles, alternating
 * which goes first; the table shows the median over ROUNDS of the ns per
 * cycle, and the ratio library / raw.  DIR (default: a new directory under
 * $TMPDIR or /tmp) decides the filesystem measured.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
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

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Raw cycle for flock kinds: open, flock(EX|NB), flock(UN), close. */
static void raw_flock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);

	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || flock(fd, LOCK_UN) != 0)
		die("raw flock");
	close(fd);
}

/* The same plus the fstat the flock kinds need to see an inode unlinked
 * between open and flock (st_nlink == 0) and a non-regular file. */
static void raw_flock_fstat(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
	struct stat st;

	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
	    flock(fd, LOCK_UN) != 0)
		die("raw flock");
	close(fd);
}

static char soft_record[512];
static size_t soft_record_len;

/* Raw cycle for soft: O_EXCL create, write the record, close, unlink. */
static void raw_soft(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);

	if (fd < 0 || write(fd, soft_record, soft_record_len) != (ssize_t)soft_record_len)
		die("raw soft");
	close(fd);
	if (unlink(path) != 0)
		die("raw soft unlink");
}

struct row {
	const char *name;
	enum fl_kind kind;
	void (*raw)(const char *path);
	const char *raw_desc;
};

int main(int argc, char **argv)
{
	static const struct row rows[] = {
		{ "unix", FL_UNIX, raw_flock, "open+flock+flock(UN)+close" },
		{ "unix", FL_UNIX, raw_flock_fstat, "open+flock+fstat+flock(UN)+close" },
		{ "file", FL_FILE, raw_flock, "open+flock+flock(UN)+close" },
		{ "soft", FL_SOFT, raw_soft, "open(O_EXCL)+write+close+unlink" },
	};
	int iters = 20000, rounds = 15, c;
	char dir[4096], path[4200];
	struct statfs sfs;
	struct utsname u;

	while ((c = getopt(argc, argv, "n:r:")) != -1) {
		if (c == 'n')
			iters = atoi(optarg);
		else if (c == 'r')
			rounds = atoi(optarg);
		else
			return 64;
	}
	if (optind < argc) {
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	} else {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/fl-bench.XXXXXX", t && *t ? t : "/tmp");
		if (mkdtemp(dir) == NULL)
			die("mkdtemp");
	}
	uname(&u);
	snprintf(soft_record, sizeof(soft_record), "%d\n%s\n%s\n", (int)getpid(), u.nodename,
		 "5275861286132656646858085743978676548440997850415613693321");
	soft_record_len = strlen(soft_record);
	statfs(dir, &sfs);
	printf("filelock %s; %d rounds x %d cycles; dir fs type 0x%lx; median ns per "
	       "acquire+release cycle\n\n",
	       fl_version(), rounds, iters, (unsigned long)sfs.f_type);
	printf("%-8s %12s %12s %7s   %s\n", "kind", "library", "raw", "ratio", "raw sequence");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		double lib[64], raw[64];
		fl_lock *lk;

		snprintf(path, sizeof(path), "%s/bench-%s.lock", dir, rows[i].name);
		if (fl_open(&lk, path, rows[i].kind, NULL) != 0) {
			fprintf(stderr, "%s\n", fl_errmsg(NULL));
			return 1;
		}
		if (rounds > 64)
			rounds = 64;
		for (int r = 0; r < rounds; r++) {
			for (int pass = 0; pass < 2; pass++) {
				int lib_first = (r + pass) % 2 == 0;
				double t0 = now_ns();
				if (lib_first) {
					for (int k = 0; k < iters; k++) {
						if (fl_acquire(lk, FL_EXCLUSIVE, 0) != 0 ||
						    fl_release(lk, 0) != 0) {
							fprintf(stderr, "%s\n", fl_errmsg(lk));
							return 1;
						}
					}
					lib[r] = (now_ns() - t0) / iters;
				} else {
					for (int k = 0; k < iters; k++)
						rows[i].raw(path);
					raw[r] = (now_ns() - t0) / iters;
				}
			}
		}
		fl_close(lk);
		unlink(path);
		double ml = median(lib, rounds), mr = median(raw, rounds);
		printf("%-8s %12.0f %12.0f %6.2fx   %s\n", rows[i].name, ml, mr, ml / mr,
		       rows[i].raw_desc);
	}
	if (optind >= argc)
		rmdir(dir);
	return 0;
}
