/* SPDX-License-Identifier: MIT */
/*
 * bench-lease-strict -- uncontended acquire+release of the lease and strict
 * kinds next to the raw system calls each protocol needs, in the same run.
 *
 *   bench-lease-strict [-n ITERS] [-r ROUNDS] [DIR]
 *
 * Each round times ITERS library cycles and ITERS raw cycles, alternating
 * which goes first; the table shows the median over ROUNDS of the ns per
 * cycle and the ratio library / raw.  DIR (default: a new directory under
 * $TMPDIR or /tmp) decides the filesystem measured.
 *
 * The raw sequences are the least a correct implementation of the same
 * on-disk protocol must do, without any of the checks:
 *  - lease: open(O_EXCL) + write(record) + close + unlink, like soft (the
 *    heartbeat registration is the library's extra);
 *  - strict: open(sentinel) + publish the intent claim (open(O_EXCL) a
 *    private name, write, link, unlink the private name, close) + link the
 *    held claim + one directory scan + unlink both claims + close.
 * The library's strict additionally opens the coordination directories,
 * reads the sentinel and scans the claims three times, reading each claim.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static char lease_record[512], claim_record[512];
static size_t lease_record_len, claim_record_len;

static void raw_lease(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);

	if (fd < 0 || write(fd, lease_record, lease_record_len) != (ssize_t)lease_record_len)
		die("raw lease");
	close(fd);
	if (unlink(path) != 0)
		die("raw lease unlink");
}

static void raw_strict(const char *path)
{
	static const char tok[] = "0123456789abcdef0123456789abcdef";
	char claims[4200], priv[4400], intent[4400], held[4400];
	struct dirent *de;
	int sfd, fd;
	DIR *d;

	snprintf(claims, sizeof(claims), "%s.filelock/claims", path);
	snprintf(priv, sizeof(priv), "%s/.intent-v1-%s.claim.private-v1-%s.tmp", claims, tok, tok);
	snprintf(intent, sizeof(intent), "%s/intent-v1-%s.claim", claims, tok);
	snprintf(held, sizeof(held), "%s/held-v1-%s.claim", claims, tok);
	sfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	fd = open(priv, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (sfd < 0 || fd < 0 ||
	    write(fd, claim_record, claim_record_len) != (ssize_t)claim_record_len ||
	    link(priv, intent) != 0 || unlink(priv) != 0)
		die("raw strict publish");
	close(fd);
	if (link(intent, held) != 0)
		die("raw strict link");
	d = opendir(claims);
	if (d == NULL)
		die("raw strict opendir");
	while ((de = readdir(d)) != NULL)
		;
	closedir(d);
	if (unlink(held) != 0 || unlink(intent) != 0)
		die("raw strict unlink");
	close(sfd);
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
		{ "lease", FL_LEASE, raw_lease, "open(O_EXCL)+write+close+unlink" },
		{ "strict", FL_STRICT, raw_strict,
		  "open+[open(O_EXCL)+write+link+unlink+close]+link+readdir+2 unlink+close" },
	};
	int iters = 5000, rounds = 11, c;
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
	if (rounds > 64)
		rounds = 64;
	if (optind < argc) {
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	} else {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/fl-bench.XXXXXX", t && *t ? t : "/tmp");
		if (mkdtemp(dir) == NULL)
			die("mkdtemp");
	}
	uname(&u);
	snprintf(lease_record, sizeof(lease_record),
		 "filelock/2\npid=%d\nhost=%s\nmode=lease\ntoken=%s\nduration=30.0\nstart=%s\n",
		 (int)getpid(), u.nodename, "0123456789abcdef0123456789abcdef",
		 "5275861286132656646858085743978676548440997850415613693321");
	lease_record_len = strlen(lease_record);
	snprintf(claim_record, sizeof(claim_record),
		 "filelock-strict-v1\n0123456789abcdef0123456789abcdef\n%d\n766d\n%s\n",
		 (int)getpid(), "5275861286132656646858085743978676548440997850415613693321");
	claim_record_len = strlen(claim_record);
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
		/* One cycle first: strict creates its sentinel and directories. */
		if (fl_acquire(lk, FL_EXCLUSIVE, 0) != 0 || fl_release(lk, 0) != 0) {
			fprintf(stderr, "%s\n", fl_errmsg(lk));
			return 1;
		}
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
		double ml = median(lib, rounds), mr = median(raw, rounds);
		printf("%-8s %12.0f %12.0f %6.2fx   %s\n", rows[i].name, ml, mr, ml / mr,
		       rows[i].raw_desc);
		if (rows[i].kind == FL_STRICT) {
			char sub[4300];
			snprintf(sub, sizeof(sub), "%s.filelock/claims", path);
			rmdir(sub);
			snprintf(sub, sizeof(sub), "%s.filelock", path);
			rmdir(sub);
		}
		unlink(path);
	}
	if (optind >= argc)
		rmdir(dir);
	return 0;
}
