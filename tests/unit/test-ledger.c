/* SPDX-License-Identifier: MIT */
/*
 * test-ledger.c -- the process-wide observation ledger and the one-try
 * judgement by the file server's clock (ledger.c): a fresh handle evicts in
 * one try a lease or soft-rw marker the server last stamped longer ago than
 * the bound, and leaves a younger one alone; what one handle saw serves the
 * next; a live holder survives any number of fresh one-try contenders; no
 * probe file is left behind; the table stays bounded; a fork child starts
 * empty.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"

/* Sets p's mtime `ago` seconds in the past: what the server stamped when
 * its holder last refreshed it. */
static void set_age(const char *p, double ago)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= (time_t)ago;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* A lease record of a holder on another host (never provably dead here). */
static void lease_marker(const char *p, const char *dur)
{
	char rec[256];

	snprintf(rec, sizeof(rec),
		 "filelock/2\npid=4242\nhost=elsewhere.invalid\nmode=lease\ntoken=%032x\n"
		 "duration=%s\n",
		 7, dur);
	fl_test_write_str(p, rec);
}

static fl_lock *open_kind_proto(const char *path, enum fl_kind kind, double bound, int proto)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.poll_interval = 0.01;
	o.soft_rw_protocol = proto;
	if (kind == FL_LEASE) {
		o.lease_duration = bound;
	} else {
		o.stale_threshold = bound;
		o.heartbeat_interval = bound / 5;
	}
	assert_int_equal(fl_open(&lk, path, kind, &o), 0);
	return lk;
}

static fl_lock *open_kind(const char *path, enum fl_kind kind, double bound)
{
	return open_kind_proto(path, kind, bound, FL_SOFT_RW_DEFAULT);
}

/* No probe file is left in the directory of p. */
static void assert_no_probe(const char *p)
{
	char dir[4096], *slash;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s", p);
	slash = strrchr(dir, '/');
	assert_non_null(slash);
	*slash = '\0';
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		assert_null(strstr(de->d_name, "filelock-probe"));
	closedir(d);
}

static void test_one_try_evicts_by_server_age(void **state)
{
	const char *p = fl_test_path("dead");
	unsigned probes = fl__ledger_probes();
	fl_lock *lk;

	(void)state;
	lease_marker(p, "1.0");
	set_age(p, 5); /* its holder went silent 5 s ago, by the server's clock */
	lk = open_kind(p, FL_LEASE, 1.0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_true(fl__ledger_probes() > probes);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	assert_no_probe(p);
}

static void test_one_try_keeps_young_marker(void **state)
{
	const char *p = fl_test_path("young");
	fl_lock *lk;

	(void)state;
	/* Silent for 1 s of a 1 s bound: within the granularity margin. */
	lease_marker(p, "1.0");
	set_age(p, 1);
	lk = open_kind(p, FL_LEASE, 1.0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_close(lk);
	/* In the server's future: alive. */
	p = fl_test_path("future");
	lease_marker(p, "1.0");
	set_age(p, -300);
	lk = open_kind(p, FL_LEASE, 1.0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_close(lk);
	assert_no_probe(p);
}

static void test_observation_outlives_handle(void **state)
{
	const char *p = fl_test_path("shared");
	unsigned probes;
	fl_lock *lk;

	(void)state;
	lease_marker(p, "1.5");
	lk = open_kind(p, FL_LEASE, 1.5);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_close(lk);
	probes = fl__ledger_probes();
	/* The server alone would say 1.6 s - margin: too young.  What the first
	 * handle saw says 1.6 s unchanged: a second handle's one try evicts. */
	usleep(1600 * 1000);
	lk = open_kind(p, FL_LEASE, 1.5);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl__ledger_probes(), probes);
	fl_close(lk);
}

static void test_softrw_legacy_one_try(void **state)
{
	const char *p = fl_test_path("srw");
	char w[4200], rd[4200], r[4300];
	fl_lock *lk;

	(void)state;
	snprintf(w, sizeof(w), "%s.write", p);
	snprintf(rd, sizeof(rd), "%s.readers", p);
	snprintf(r, sizeof(r), "%s/%032x.4242", rd, 9);
	/* A crashed writer on another host: a reader gets in at one try. */
	fl_test_write_str(w, "0123456789abcdef0123456789abcdef\n4242\nelsewhere.invalid\n");
	set_age(w, 10);
	lk = open_kind_proto(p, FL_SOFT_RW, 2.0, FL_SOFT_RW_LEGACY);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	/* A crashed reader: a writer gets in at one try. */
	assert_true(mkdir(rd, 0700) == 0 || errno == EEXIST);
	fl_test_write_str(r, "fedcba9876543210fedcba9876543210\n4242\nelsewhere.invalid\n");
	set_age(r, 10);
	lk = open_kind_proto(p, FL_SOFT_RW, 2.0, FL_SOFT_RW_LEGACY);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(access(r, F_OK), -1);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	assert_no_probe(p);
	assert_no_probe(r);
}

/* filelock-rw/1: a writer whose process died (its record no longer
 * refreshed for 10 s by the server's clock) is evicted by one try of a
 * fresh handle; the server's clock was asked, and the probe is gone. */
static void test_softrw_one_try(void **state)
{
	const char *p = fl_test_path("srwl");
	char holders[4300], rec[4600], line[256];
	struct fl_child h;
	struct dirent *de;
	unsigned probes;
	int aged = 0;
	fl_lock *lk;
	DIR *dir;

	(void)state;
	fl_holder_start(&h, line, sizeof(line), "-t", "soft-rw", "-o", "heartbeat_interval=0.4",
			"-o", "stale_threshold=2", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_child_kill(&h);
	snprintf(holders, sizeof(holders), "%s.rw/holders", p);
	dir = opendir(holders);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(rec, sizeof(rec), "%s/%s", holders, de->d_name);
		set_age(rec, 10);
		aged++;
	}
	closedir(dir);
	assert_int_equal(aged, 1);
	probes = fl__ledger_probes();
	lk = open_kind(p, FL_SOFT_RW, 2.0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_true(fl__ledger_probes() > probes);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	assert_no_probe(rec);
}

static void test_live_holder_survives_fresh_tries(void **state)
{
	const char *p = fl_test_path("live");
	struct fl_child h;
	char line[256];
	double t0;
	int tries = 0;

	(void)state;
	fl_holder_start(&h, line, sizeof(line), "-t", "soft-rw", "-o", "heartbeat_interval=0.1",
			"-o", "stale_threshold=0.5", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	/* Three bounds' worth of one-try contenders, each a fresh handle. */
	t0 = fl_test_now();
	while (fl_test_now() - t0 < 1.5) {
		fl_lock *lk = open_kind(p, FL_SOFT_RW, 0.5);
		assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ETIMEDOUT);
		fl_close(lk);
		tries++;
		usleep(20 * 1000);
	}
	assert_true(tries > 10);
	fl_child_say(&h, "valid");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "valid 1");
	fl_child_say(&h, "release");
	fl_child_line(&h, line, sizeof(line));
	assert_int_equal(fl_child_finish(&h), 0);
	assert_no_probe(p);
}

static void test_ledger_bounded_and_fork(void **state)
{
	struct fl_seen s = { 1, 1, 1.0, 1, 0 };
	char key[64];
	pid_t pid;
	int st;

	(void)state;
	assert_true(fl__ledger_silent("/ledger/first", AT_FDCWD, NULL, &s) < 0.5);
	usleep(50 * 1000);
	assert_true(fl__ledger_silent("/ledger/first", AT_FDCWD, NULL, &s) >= 0.05);
	/* A fork child starts with nothing. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fl__ledger_silent("/ledger/first", AT_FDCWD, NULL, &s) < 0.01 ? 0 : 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Many more paths than slots: the oldest is dropped (counts anew). */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "/ledger/k%d", i);
		(void)fl__ledger_silent(key, AT_FDCWD, NULL, &s);
	}
	assert_true(fl__ledger_silent("/ledger/first", AT_FDCWD, NULL, &s) < 0.01);
	/* Any change of state counts anew. */
	usleep(20 * 1000);
	s.mtime = 2.0;
	assert_true(fl__ledger_silent("/ledger/first", AT_FDCWD, NULL, &s) < 0.01);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_try_evicts_by_server_age, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_one_try_keeps_young_marker, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_observation_outlives_handle, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_softrw_legacy_one_try, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_softrw_one_try, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_live_holder_survives_fresh_tries, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_ledger_bounded_and_fork, fl_test_setup, fl_test_teardown),
	};

	return cmocka_run_group_tests(tests, fl_test_group_setup, fl_test_group_teardown);
}
