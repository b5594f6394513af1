/* SPDX-License-Identifier: MIT */
/*
 * test-handoff.c -- a waiter wakes when the holder lets go, not at its next
 * poll.  Each waiter has poll_interval = 30 s; a holder in another process
 * releases once the waiter has made failed attempts (its cancel_check tells
 * us, through a pipe), and the waiter must hold well before any poll could
 * have found the lock free.  The bounds are generous (seconds against a 30 s
 * interval, or against an adaptive step of several seconds), so a loaded
 * machine does not make the test flaky; the speed itself is measured in
 * bench/bench-handoff.  soft-rw runs with both of its protocols.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "filelock.h"

/* soft-rw: 1 = Python filelock 3's protocol for the holder and the waiter. */
static int use_legacy;

/* A holder process: takes `path` with `kind`, says "h", releases when told
 * (a byte on `go`), then exits 0. */
struct holder {
	pid_t pid;
	int go;   /* write: release now */
	int said; /* read: "h" once held */
};

static void holder_start_mode(struct holder *hd, const char *path, enum fl_kind kind,
			      enum fl_mode mode)
{
	int a[2], b[2];
	char c;

	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	hd->pid = fork();
	assert_true(hd->pid >= 0);
	if (hd->pid == 0) {
		fl_lock *lk;
		struct fl_options o;

		close(a[1]);
		close(b[0]);
		fl_options_init(&o);
		o.flags = FL_NO_SINGLETON;
		if (use_legacy)
			o.soft_rw_protocol = FL_SOFT_RW_LEGACY;
		if (fl_open(&lk, path, kind, &o) != 0 || fl_acquire(lk, mode, 10) != 0)
			_exit(1);
		if (write(b[1], "h", 1) != 1 || read(a[0], &c, 1) != 1)
			_exit(2);
		_exit(fl_release(lk, 0) == 0 ? 0 : 3);
	}
	close(a[0]);
	close(b[1]);
	hd->go = a[1];
	hd->said = b[0];
	assert_int_equal(read(hd->said, &c, 1), 1);
	assert_int_equal(c, 'h');
}

static void holder_start(struct holder *hd, const char *path, enum fl_kind kind)
{
	holder_start_mode(hd, path, kind, FL_EXCLUSIVE);
}

static void holder_finish(struct holder *hd)
{
	int st;

	close(hd->go);
	close(hd->said);
	assert_int_equal(waitpid(hd->pid, &st, 0), hd->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* cancel_check: on its `at`-th call (after that many failed attempts) tells
 * the holder to release and notes the time. */
struct trigger {
	struct holder *hd; /* release by telling this holder, or            */
	int unlock_fd;     /* by flock(LOCK_UN) without closing (hd == NULL) */
	int calls, at;
	double released;
	int cancel_at;     /* 0 = never cancel */
};

static int trigger_check(void *arg)
{
	struct trigger *t = arg;

	if (++t->calls == t->at) {
		t->released = fl_test_now();
		if (t->hd)
			assert_int_equal(write(t->hd->go, "r", 1), 1);
		else
			assert_int_equal(flock(t->unlock_fd, LOCK_UN), 0);
	}
	return t->calls == t->cancel_at;
}

static fl_lock *waiter_open(const char *path, enum fl_kind kind, struct trigger *t)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON | FL_SHARED_CONTEXT;
	o.poll_interval = 30;
	if (use_legacy)
		o.soft_rw_protocol = FL_SOFT_RW_LEGACY;
	o.cancel_check = trigger_check;
	o.cancel_arg = t;
	assert_int_equal(fl_open(&lk, path, kind, &o), 0);
	return lk;
}

/* One hand-off: release after `at` failed attempts; the waiter must hold
 * within `bound` seconds of the release. */
static void handoff_modes(enum fl_kind kind, enum fl_mode held, enum fl_mode wanted, int at,
			  double bound)
{
	const char *path = fl_test_path("handoff");
	struct holder hd;
	struct trigger t = { .hd = &hd, .at = at };
	fl_lock *lk;
	double got;

	holder_start_mode(&hd, path, kind, held);
	lk = waiter_open(path, kind, &t);
	assert_int_equal(fl_acquire(lk, wanted, 25), 0);
	got = fl_test_now();
	assert_true(t.calls >= at); /* a release may raise several events */
	assert_true(got - t.released < bound);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	holder_finish(&hd);
}

static void handoff(enum fl_kind kind, int at, double bound)
{
	handoff_modes(kind, FL_EXCLUSIVE, FL_EXCLUSIVE, at, bound);
}

/* soft-rw: a writer waits for a writer (P.write goes), a reader for a writer,
 * a pending writer for a reader (its marker leaves P.readers/). */
static void test_softrw_writer_after_writer(void **state)
{
	(void)state;
	handoff_modes(FL_SOFT_RW, FL_EXCLUSIVE, FL_EXCLUSIVE, 1, 5.0);
}

static void test_softrw_reader_after_writer(void **state)
{
	(void)state;
	handoff_modes(FL_SOFT_RW, FL_EXCLUSIVE, FL_SHARED, 1, 5.0);
}

static void test_softrw_writer_after_reader(void **state)
{
	(void)state;
	handoff_modes(FL_SOFT_RW, FL_SHARED, FL_EXCLUSIVE, 1, 5.0);
}

/* Skips the test when the library was built without `kind`. */
static void need_kind(enum fl_kind kind)
{
	fl_lock *lk = NULL;
	int r = fl_open(&lk, fl_test_path("probe"), kind, NULL);

	fl_close(lk);
	if (r == -ENOTSUP)
		skip();
	assert_int_equal(r, 0);
}

/* The same with Python filelock 3's protocol (P.write, P.readers/). */
static void test_softrw_legacy(void **state)
{
	(void)state;
	use_legacy = 1;
	handoff_modes(FL_SOFT_RW, FL_EXCLUSIVE, FL_EXCLUSIVE, 1, 5.0);
	handoff_modes(FL_SOFT_RW, FL_EXCLUSIVE, FL_SHARED, 1, 5.0);
	handoff_modes(FL_SOFT_RW, FL_SHARED, FL_EXCLUSIVE, 1, 5.0);
	use_legacy = 0;
}

/* rw: SQLite's busy handler wakes when the holder's connection closes. */
static void test_rw_writer_after_writer(void **state)
{
	(void)state;
	need_kind(FL_RW);
	handoff_modes(FL_RW, FL_EXCLUSIVE, FL_EXCLUSIVE, 1, 5.0);
}

static void test_rw_writer_after_reader(void **state)
{
	(void)state;
	need_kind(FL_RW);
	handoff_modes(FL_RW, FL_SHARED, FL_EXCLUSIVE, 1, 5.0);
}

/* unix with a finite timeout: a close of the lock file wakes the waiter.
 * Its adaptive step has grown to 2 s by the 12th failed attempt, so a wake
 * within 1 s came from the close, not the step. */
static void test_unix_timed_wakes_on_close(void **state)
{
	(void)state;
	handoff(FL_UNIX, 12, 1.0);
}

static void test_file_timed_wakes_on_close(void **state)
{
	(void)state;
	handoff(FL_FILE, 12, 1.0);
}

static void test_soft_wakes_on_removal(void **state)
{
	(void)state;
	handoff(FL_SOFT, 1, 5.0);
}

static void test_lease_wakes_on_removal(void **state)
{
	(void)state;
	handoff(FL_LEASE, 1, 5.0);
}

static void test_strict_wakes_on_removal(void **state)
{
	(void)state;
	handoff(FL_STRICT, 1, 5.0);
}

/* A holder that unlocks without closing raises no event: the adaptive step
 * still finds the lock free long before the 30 s poll interval. */
static void test_unix_unlock_without_close(void **state)
{
	const char *path = fl_test_path("noclose");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct trigger t = { .hd = NULL, .unlock_fd = fd, .at = 5 };
	fl_lock *lk;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0); /* another open file description */
	lk = waiter_open(path, FL_UNIX, &t);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 25), 0);
	assert_int_equal(t.calls, 5);
	assert_true(fl_test_now() - t.released < 5);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	close(fd);
}

static int count_fds(void)
{
	char p[64];
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (access(p, F_OK) == 0)
			n++;
	}
	return n;
}

/* Timeouts and cancels still end the wait, and leave no descriptor behind
 * (the waiter keeps one between tries). */
static void test_unix_timeout_and_cancel(void **state)
{
	const char *path = fl_test_path("timeout");
	struct holder hd;
	struct trigger t = { .hd = &hd, .at = -1 };
	fl_lock *lk;
	double t0;
	int before;

	(void)state;
	holder_start(&hd, path, FL_UNIX);
	lk = waiter_open(path, FL_UNIX, &t);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.05), -ETIMEDOUT); /* inotify cache */
	before = count_fds();
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	assert_true(fl_test_now() - t0 < 5);
	assert_int_equal(count_fds(), before);
	t.calls = 0;
	t.cancel_at = 4;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 25), -ECANCELED);
	assert_int_equal(t.calls, 4);
	assert_true(fl_test_now() - t0 < 5);
	assert_int_equal(count_fds(), before);
	fl_close(lk);
	assert_int_equal(write(hd.go, "r", 1), 1);
	holder_finish(&hd);
}

/*
 * Fairness: a process that had to wait, then keeps releasing and taking the
 * lock again in a tight loop, still lets a waiting process in (a bounded
 * bypass; the kernel's flock alone would let the loop keep it).  The loop
 * starts once the waiter has failed an attempt (its cancel_check says so)
 * and counts its acquisitions; the waiter records the count when it gets in.
 */
static int say_waiting(void *arg)
{
	int *fd = arg;

	if (*fd >= 0) {
		if (write(*fd, "w", 1) != 1)
			_exit(4);
		close(*fd);
		*fd = -1;
	}
	return 0;
}

static void fair_bypass(enum fl_kind kind)
{
	const char *path = fl_test_path("fair");
	long *sh = mmap(NULL, 2 * sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			-1, 0);
	struct holder hd;
	struct trigger t = { .hd = &hd, .at = 1 };
	int p[2], st;
	fl_lock *lk;
	pid_t b;
	char c;

	assert_true(sh != MAP_FAILED);
	sh[0] = 0;  /* the loop's acquisitions */
	sh[1] = -1; /* sh[0] when the waiter got in */
	holder_start(&hd, path, kind);
	lk = waiter_open(path, kind, &t);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 25), 0); /* waited for hd */
	holder_finish(&hd);
	assert_int_equal(pipe(p), 0);
	b = fork();
	assert_true(b >= 0);
	if (b == 0) {
		fl_lock *w;
		struct fl_options o;

		close(p[0]);
		fl_options_init(&o);
		o.flags = FL_NO_SINGLETON;
		o.cancel_check = say_waiting;
		o.cancel_arg = &p[1];
		if (fl_open(&w, path, kind, &o) != 0)
			_exit(1);
		if (fl_acquire(w, FL_EXCLUSIVE, 20) != 0)
			_exit(2);
		sh[1] = __atomic_load_n(&sh[0], __ATOMIC_SEQ_CST);
		_exit(fl_release(w, 0) == 0 ? 0 : 3);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	for (int i = 0; i < 20000 && __atomic_load_n(&sh[1], __ATOMIC_SEQ_CST) < 0; i++) {
		assert_int_equal(fl_release(lk, 0), 0);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 20), 0);
		__atomic_add_fetch(&sh[0], 1, __ATOMIC_SEQ_CST);
	}
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(waitpid(b, &st, 0), b);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	print_message("fairness %s: the waiter got in after %ld acquisitions of the loop\n",
		      kind == FL_UNIX ? "unix" : "soft", sh[1]);
	assert_true(sh[1] >= 0 && sh[1] < 2000); /* 16 and a pause, unless the machine is loaded */
	fl_close(lk);
	munmap(sh, 2 * sizeof(long));
}

static void test_unix_fair(void **state)
{
	(void)state;
	fair_bypass(FL_UNIX);
}

static void test_soft_fair(void **state)
{
	(void)state;
	fair_bypass(FL_SOFT);
}

/* The asynchronous acquire uses the same wake paths. */
static void async_cb(fl_lock *lk, int result, void *arg)
{
	(void)lk;
	*(int *)arg = result;
}

static void async_handoff(enum fl_kind kind, int at, double bound)
{
	const char *path = fl_test_path("async");
	struct holder hd;
	struct trigger t = { .hd = &hd, .at = at };
	fl_async *ex;
	fl_lock *lk;
	int res = 1;
	double got = 0;

	holder_start(&hd, path, kind);
	lk = waiter_open(path, kind, &t);
	assert_int_equal(fl_async_new(&ex, 1), 0);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, 25, async_cb, &res, NULL), 0);
	while (res == 1) {
		struct pollfd p = { .fd = fl_async_fd(ex), .events = POLLIN };
		if (poll(&p, 1, 30000) > 0)
			fl_async_dispatch(ex);
	}
	got = fl_test_now();
	assert_int_equal(res, 0);
	assert_true(t.calls >= at); /* a release may raise several events */
	assert_true(got - t.released < bound);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_async_free(ex);
	fl_close(lk);
	holder_finish(&hd);
}

static void test_async_unix_wakes_on_close(void **state)
{
	(void)state;
	async_handoff(FL_UNIX, 12, 1.0);
}

static void test_async_soft_wakes_on_removal(void **state)
{
	(void)state;
	async_handoff(FL_SOFT, 1, 5.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unix_timed_wakes_on_close, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_file_timed_wakes_on_close, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_wakes_on_removal, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_wakes_on_removal, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_wakes_on_removal, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_softrw_writer_after_writer, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_softrw_reader_after_writer, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_softrw_writer_after_reader, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_softrw_legacy, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_rw_writer_after_writer, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_rw_writer_after_reader, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_unlock_without_close, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_fair, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_fair, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_timeout_and_cancel, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_async_unix_wakes_on_close, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_async_soft_wakes_on_removal, fl_test_setup, fl_test_teardown),
	};

	return cmocka_run_group_tests(tests, fl_test_group_setup, fl_test_group_teardown);
}
