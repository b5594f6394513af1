/* SPDX-License-Identifier: MIT */
/*
 * test-py-lease-strict.c -- the strict and lease kinds against Python's
 * filelock (StrictSoftFileLock, SoftFileLease) on the same paths: they
 * exclude each other, count N x M updates together, recover each other's
 * dead holders where the protocol allows it, and agree byte for byte on
 * claims and lease records.
 *
 * Skips (exit 77) when the Python peer is absent, unless FL_REQUIRE_ALL=1.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"

static char py[PATH_MAX], script[PATH_MAX];

/* Starts the Python peer with up to 6 arguments. */
static void py_start(struct fl_child *c, const char *a1, const char *a2, const char *a3,
		     const char *a4, const char *a5, const char *a6)
{
	const char *args[6] = { a1, a2, a3, a4, a5, a6 };
	char *argv[10] = { py, script, NULL };
	int n = 2;

	/* exec wants char *const[]: copy, as fl_holder_start does. */
	for (int i = 0; i < 6 && args[i] != NULL; i++)
		argv[n++] = strdup(args[i]);
	argv[n] = NULL;
	fl_child_start(c, argv);
	for (int i = 2; i < n; i++)
		free(argv[i]);
}

/* Runs a one-shot peer command and returns its first output line. */
static void py_run(char *out, size_t cap, const char *a1, const char *a2, const char *a3,
		   const char *a4, const char *a5)
{
	struct fl_child c;

	py_start(&c, a1, a2, a3, a4, a5, NULL);
	fl_child_line(&c, out, cap);
	assert_int_equal(fl_child_finish(&c), 0);
}

static void py_hold(struct fl_child *c, const char *kind, const char *path, const char *dur)
{
	char line[128];

	py_start(c, "hold", kind, path, dur, NULL, NULL);
	fl_child_line(c, line, sizeof(line));
	if (strncmp(line, "ready ", 6) != 0)
		fail_msg("python holder: %s", line);
}

static fl_lock *open_kind(const char *p, enum fl_kind k, double dur)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.poll_interval = 0.005;
	o.lease_duration = dur;
	assert_int_equal(fl_open(&lk, p, k, &o), 0);
	return lk;
}

static size_t read_file(const char *p, char *buf, size_t cap)
{
	int fd = open(p, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static int list_claims(const char *p, char names[][128], int cap)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s.filelock/claims", p);
	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n < cap)
			snprintf(names[n], 128, "%.127s", de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, (size_t)(n < cap ? n : cap), 128, (int (*)(const void *, const void *))strcmp);
	return n;
}

static void test_strict_mutual_exclusion_and_bytes(void **state)
{
	const char *p = fl_test_path("strict");
	char names[4][128], f[PATH_MAX + 200], buf[1024], want[1024], host[256], hex[520],
		tok[96], line[64];
	struct fl_child c;
	fl_lock *lk = open_kind(p, FL_STRICT, 0);

	py_hold(&c, "strict", p, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.1), -ETIMEDOUT);
	/* Python's sentinel and claims are the bytes we write. */
	assert_int_equal(read_file(p, buf, sizeof(buf)), 24);
	assert_memory_equal(buf, fl__strict_sentinel, 24);
	assert_int_equal(list_claims(p, names, 4), 2);
	assert_string_equal(names[0] + 8, names[1] + 10);
	gethostname(host, sizeof(host));
	for (size_t i = 0; host[i]; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned char)host[i]);
	assert_int_equal(fl__start_token(c.pid, tok, sizeof(tok)), 0);
	snprintf(want, sizeof(want), "filelock-strict-v1\n%.32s\n%d\n%s\n%s\n", names[0] + 8,
		 (int)c.pid, hex, tok);
	snprintf(f, sizeof(f), "%s.filelock/claims/%s", p, names[0]);
	read_file(f, buf, sizeof(buf));
	assert_string_equal(buf, want);
	fl_child_say(&c, "release");
	fl_child_line(&c, line, sizeof(line));
	assert_int_equal(fl_child_finish(&c), 0);

	/* Now we hold it; Python must wait. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	py_run(line, sizeof(line), "try", "strict", p, "0.2", NULL);
	assert_string_equal(line, "timeout");
	assert_int_equal(fl_release(lk, 0), 0);
	py_run(line, sizeof(line), "try", "strict", p, "0", NULL);
	assert_string_equal(line, "ok");
	fl_close(lk);
}

static void test_lease_mutual_exclusion_and_bytes(void **state)
{
	const char *p = fl_test_path("lease");
	char buf[1024], want[1024], host[256], tok[96], line[64];
	struct fl_child c;
	struct fl_holder who;
	struct fl_options o;
	fl_lock *lk = open_kind(p, FL_LEASE, 1.2);
	const char *t;

	py_hold(&c, "lease", p, "1.2");
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.1), -ETIMEDOUT);
	read_file(p, buf, sizeof(buf));
	gethostname(host, sizeof(host));
	assert_int_equal(fl__start_token(c.pid, tok, sizeof(tok)), 0);
	t = strstr(buf, "token=");
	assert_non_null(t);
	snprintf(want, sizeof(want),
		 "filelock/2\npid=%d\nhost=%s\nmode=lease\ntoken=%.32s\nduration=1.2\nstart=%s\n",
		 (int)c.pid, host, t + 6, tok);
	assert_string_equal(buf, want);
	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	fl_options_init(&o);
	o.lease_duration = 1.2;
	assert_int_equal(fl_inspect(p, FL_LEASE, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.pid, c.pid);
	/* Python's heartbeat keeps its lease alive past several durations. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 2.5), -ETIMEDOUT);
	fl_child_say(&c, "release");
	fl_child_line(&c, line, sizeof(line));
	assert_int_equal(fl_child_finish(&c), 0);

	/* Our heartbeat keeps Python out past several durations too. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	py_run(line, sizeof(line), "try", "lease", p, "2.5", "1.2");
	assert_string_equal(line, "timeout");
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	py_run(line, sizeof(line), "try", "lease", p, "0", "1.2");
	assert_string_equal(line, "ok");
	fl_close(lk);
}

/* 2 C workers and 2 Python workers, M increments each, on one counter. */
static void mixed_counter(const char *kind, const char *dur)
{
	const char *lock = fl_test_path("mixlock"), *ctr = fl_test_path("mixctr");
	char opt[64], buf[64];
	struct fl_child pyc[2];
	pid_t pids[2];
	FILE *f;

	snprintf(opt, sizeof(opt), "lease_duration=%s", dur ? dur : "0");
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			if (dur)
				execl(fl_test_helper("fl-counter"), "fl-counter", "-t", kind, "-n", "40",
				      "-o", "poll_interval=0.002", "-o", opt, lock, ctr, (char *)NULL);
			else
				execl(fl_test_helper("fl-counter"), "fl-counter", "-t", kind, "-n", "40",
				      "-o", "poll_interval=0.002", lock, ctr, (char *)NULL);
			_exit(127);
		}
		py_start(&pyc[i], "counter", kind, lock, ctr, "40", dur);
	}
	for (int i = 0; i < 2; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		st = fl_child_finish(&pyc[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	f = fopen(ctr, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(atol(buf), 160);
}

static void test_strict_mixed_counter(void **state)
{
	mixed_counter("strict", NULL);
}

static void test_lease_mixed_counter(void **state)
{
	mixed_counter("lease", "5.0");
}

static void test_strict_recovery_both_ways(void **state)
{
	const char *p = fl_test_path("strict-rec");
	char names[4][128], line[256];
	struct fl_child c;
	fl_lock *lk = open_kind(p, FL_STRICT, 0);

	/* A dead Python holder wedges us until we break its named claim. */
	py_hold(&c, "strict", p, NULL);
	fl_child_kill(&c);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.1), -ETIMEDOUT);
	assert_int_equal(list_claims(p, names, 4), 2);
	assert_int_equal(fl_break(p, FL_STRICT, NULL, FL_FORCE, names[0]), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);

	/* A dead C holder wedges Python until it force-breaks our claims. */
	fl_holder_start(&c, line, sizeof(line), "-t", "strict", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_child_kill(&c);
	py_run(line, sizeof(line), "try", "strict", p, "0.1", NULL);
	assert_string_equal(line, "timeout");
	py_run(line, sizeof(line), "breakall", p, NULL, NULL, NULL);
	assert_string_equal(line, "broken 2");
	py_run(line, sizeof(line), "try", "strict", p, "0", NULL);
	assert_string_equal(line, "ok");
	fl_close(lk);
}

static void test_lease_recovery_both_ways(void **state)
{
	const char *p = fl_test_path("lease-rec");
	char line[256];
	struct fl_child c;
	fl_lock *lk = open_kind(p, FL_LEASE, 0.6);
	double t0;
	int st;

	/* A dead (reaped) Python holder: proved dead, taken at once. */
	py_hold(&c, "lease", p, "0.6");
	fl_child_kill(&c);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);

	/* A crashed Python holder that cannot be proved dead (a zombie, as if on
	 * another host): its lease expires after lease_duration, not before. */
	py_hold(&c, "lease", p, "0.6");
	kill(c.pid, SIGKILL);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), 0);
	assert_true(fl_test_now() - t0 >= 0.6);
	assert_int_equal(fl_release(lk, 0), 0);
	close(c.in);
	close(c.out);
	waitpid(c.pid, &st, 0);

	/* A dead C holder: Python proves it dead and takes over. */
	fl_holder_start(&c, line, sizeof(line), "-t", "lease", "-o", "lease_duration=0.6", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_child_kill(&c);
	py_run(line, sizeof(line), "try", "lease", p, "0.5", "0.6");
	assert_string_equal(line, "ok");

	/* A crashed C holder (zombie): Python's age rule expires it. */
	fl_holder_start(&c, line, sizeof(line), "-t", "lease", "-o", "lease_duration=0.6", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	kill(c.pid, SIGKILL);
	py_run(line, sizeof(line), "try", "lease", p, "3", "0.6");
	assert_string_equal(line, "ok");
	close(c.in);
	close(c.out);
	waitpid(c.pid, &st, 0);
	fl_close(lk);
}

static void test_lease_settings_mismatch_both_ways(void **state)
{
	const char *p = fl_test_path("mismatch");
	char line[64];
	struct fl_child c;
	fl_lock *lk = open_kind(p, FL_LEASE, 10);

	py_hold(&c, "lease", p, "5");
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -EINVAL);
	assert_non_null(strstr(fl_errmsg(lk), "lease settings mismatch"));
	fl_child_kill(&c);
	/* Python compares durations before liveness, and so do we: even a dead
	 * holder's mismatched lease is not ours to judge.  Remove it by hand. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EINVAL);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	py_run(line, sizeof(line), "try", "lease", p, "0.5", "5");
	assert_string_equal(line, "mismatch");
	fl_close(lk);
}

int main(void)
{
	const char *peer = getenv("FL_PEER_DIR"), *top = getenv("FL_TOP_SRCDIR"),
		   *py3 = getenv("FL_PYTHON3"), *req = getenv("FL_REQUIRE_ALL");
	int must = req && strcmp(req, "1") == 0;
	char probe[PATH_MAX];

	snprintf(py, sizeof(py), "%s", py3 && py3[0] == '/' ? py3 : "/usr/bin/python3");
	snprintf(script, sizeof(script), "%s/tests/interop/py-peer.py", top ? top : "..");
	snprintf(probe, sizeof(probe), "%s/filelock/_strict.py", peer ? peer : "");
	if (peer == NULL || access(probe, R_OK) != 0 || access(py, X_OK) != 0) {
		fprintf(stderr, "%s: Python filelock peer not found (FL_PEER_DIR=%s, python %s)\n",
			must ? "FAIL (FL_REQUIRE_ALL=1)" : "SKIP", peer ? peer : "(unset)", py);
		return must ? 99 : 77;
	}
	setenv("PYTHONPATH", peer, 1);
	setenv("PYTHONDONTWRITEBYTECODE", "1", 1);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_strict_mutual_exclusion_and_bytes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_mutual_exclusion_and_bytes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_mixed_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_mixed_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_recovery_both_ways, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_recovery_both_ways, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_settings_mismatch_both_ways, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("py-lease-strict", tests, fl_test_group_setup,
					   fl_test_group_teardown);
}
