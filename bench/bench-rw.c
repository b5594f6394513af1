/* SPDX-License-Identifier: MIT */
/*
 * bench-rw.c -- uncontended acquire+release of the `rw` kind against the raw
 * SQLite statement sequence it needs, measured in the same run.
 *
 * Usage: bench-rw [DIR] [ITERATIONS]   (`make bench` runs it with the defaults)
 *
 * "raw" is what a program would do by hand to take the same SQLite locks:
 * open a connection, PRAGMA journal_mode=MEMORY, BEGIN EXCLUSIVE (write) or
 * BEGIN + a schema read (read), ROLLBACK, close.  The difference to "rw" is
 * the library's own cost (front end, stat, registry).  Runs are interleaved
 * in rounds so that drift of the machine hits all rows alike.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "filelock.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void raw_once(const char *path, int write)
{
	sqlite3 *db;

	const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK)
		abort();
	sqlite3_busy_timeout(db, 1000);
	if (sqlite3_exec(db, "PRAGMA journal_mode=MEMORY", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db,
			 write ? "BEGIN EXCLUSIVE TRANSACTION"
			       : "BEGIN TRANSACTION; SELECT name FROM sqlite_master LIMIT 1",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		abort();
	sqlite3_close(db);
}

static void rw_once(fl_lock *lk, int write)
{
	if (fl_acquire(lk, write ? FL_EXCLUSIVE : FL_SHARED, -1) != 0 || fl_release(lk, 0) != 0) {
		fprintf(stderr, "bench-rw: %s\n", fl_errmsg(lk));
		exit(1);
	}
}

#define ROWS 4
static const char *const names[ROWS] = { "rw read", "raw sqlite read", "rw write",
					 "raw sqlite write" };

int main(int argc, char **argv)
{
	char dir[PATH_MAX - 32], path[PATH_MAX];
	int iters = argc > 2 ? atoi(argv[2]) : 3000;
	double *t[ROWS];
	fl_lock *lk;

	if (iters < 10)
		iters = 10;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/bench-rw-XXXXXX",
		 argc > 1 ? argv[1] : tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/lock.db", dir);
	if (fl_open(&lk, path, FL_RW, NULL) != 0) {
		fprintf(stderr, "bench-rw: %s\n", fl_errmsg(NULL));
		return 1;
	}
	for (int r = 0; r < ROWS; r++)
		t[r] = calloc((size_t)iters, sizeof(double));
	/* Warm up (creates the database, faults in SQLite). */
	for (int i = 0; i < 100; i++) {
		rw_once(lk, i & 1);
		raw_once(path, i & 1);
	}
	/* Rounds of 100 per row, interleaved. */
	for (int base = 0; base < iters; base += 100) {
		int end = base + 100 < iters ? base + 100 : iters;
		for (int r = 0; r < ROWS; r++) {
			for (int i = base; i < end; i++) {
				double t0 = now();
				if (r & 1)
					raw_once(path, r >= 2);
				else
					rw_once(lk, r >= 2);
				t[r][i] = now() - t0;
			}
		}
	}
	printf("filelock %s, SQLite %s; %d cycles per row; microseconds per uncontended "
	       "acquire+release\n\n",
	       fl_version(), sqlite3_libversion(), iters);
	printf("%-18s %9s %9s %9s %9s %7s\n", "", "mean", "p50", "p90", "p99", "p50/raw");
	double p50[ROWS];
	for (int r = 0; r < ROWS; r++) {
		double sum = 0;
		for (int i = 0; i < iters; i++)
			sum += t[r][i];
		qsort(t[r], (size_t)iters, sizeof(double), cmp_d);
		p50[r] = t[r][iters / 2];
		printf("%-18s %9.1f %9.1f %9.1f %9.1f", names[r], sum / iters * 1e6, p50[r] * 1e6,
		       t[r][iters * 9 / 10] * 1e6, t[r][iters * 99 / 100] * 1e6);
		if (r & 1)
			printf(" %6.2fx\n", p50[r - 1] / p50[r]);
		else
			printf("\n");
		free(t[r]);
	}
	printf("\nraw = sqlite3_open_v2 + PRAGMA journal_mode=MEMORY + BEGIN EXCLUSIVE (write)\n"
	       "or BEGIN + SELECT name FROM sqlite_master LIMIT 1 (read) + ROLLBACK + close\n");
	fl_close(lk);
	unlink(path);
	rmdir(dir);
	return 0;
}
