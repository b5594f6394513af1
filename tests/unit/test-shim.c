/* SPDX-License-Identifier: MIT */
/*
 * test-shim.c -- lib/fl-shim.h, the preload shim's interface to the
 * library, used as the shim uses it (this file includes no fl-internal.h):
 * the wait engine (tries, deadline, inotify wake, signals), heartbeats
 * behind a handle, stale-dotlock breaking, the poll interval accessor.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fl-shim.h"

/* ---- the wait engine ---------------------------------------------------- */

struct counter {
	int tries;
	int succeed_at; /* the try that gets it (0: never)   */
	int fail_with;  /* returned instead of -EAGAIN, if set */
};

static int count_try(void *arg)
{
	struct counter *c = arg;

	c->tries++;
	if (c->succeed_at && c->tries >= c->succeed_at)
		return 0;
	return c->fail_with ? c->fail_with : -EAGAIN;
}

static void test_shim_wait_tries(void **state)
{
	struct counter c = { 0, 3, 0 };
	struct fl_shim_wait w = { .attempt = count_try, .arg = &c, .first = 0.001,
				  .poll = 0.002 };

	(void)state;
	w.deadline = fl__now_mono() + 20;
	assert_int_equal(fl_shim_wait_for(&w), 0);
	assert_int_equal(c.tries, 3);
	/* An error of the attempt ends the wait with that error. */
	c = (struct counter){ 0, 0, -EIO };
	assert_int_equal(fl_shim_wait_for(&w), -EIO);
	assert_int_equal(c.tries, 1);
}

static void test_shim_wait_deadline(void **state)
{
	struct counter c = { 0, 0, 0 };
	struct fl_shim_wait w = { .attempt = count_try, .arg = &c, .first = 0.005,
				  .poll = 0.01 };
	double t0 = fl__now_mono();

	(void)state;
	w.deadline = t0 + 0.05;
	assert_int_equal(fl_shim_wait_for(&w), -ETIMEDOUT);
	assert_true(fl__now_mono() >= w.deadline);
	assert_true(c.tries >= 2); /* one more try at the deadline */
	/* A deadline already past: one try, then the timeout. */
	c.tries = 0;
	w.deadline = fl__now_mono() - 1;
	assert_int_equal(fl_shim_wait_for(&w), -ETIMEDOUT);
	assert_int_equal(c.tries, 1);
}

/* A released lock: the file `held` is gone.  The second try (the one the
 * engine makes right after setting its watch) tells the releasing child to
 * go, so the release comes after the watch is set and a try failed: the
 * case a poll-only wait would sleep through. */
struct release {
	const char *held;
	int go;    /* write end of the child's pipe, -1 once written */
	int tries;
};

static int release_try(void *arg)
{
	struct release *r = arg;
	struct stat st;

	r->tries++;
	if (lstat(r->held, &st) != 0)
		return 0;
	if (r->tries == 2 && r->go >= 0) {
		assert_int_equal(write(r->go, "g", 1), 1);
		close(r->go);
		r->go = -1;
	}
	return -EAGAIN;
}

/* Forks a child that unlinks `path` once a byte arrives on the returned fd. */
static int releaser(const char *path, pid_t *pid)
{
	int p[2];
	char c;

	assert_int_equal(pipe(p), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1 || unlink(path) != 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	return p[1];
}

static int reject_all(void *arg, const char *entry)
{
	(void)arg;
	(void)entry;
	return 0;
}

static void test_shim_wait_wakes(void **state)
{
	const char *dir = fl_test_path("wake");
	char held[4096];
	struct release r = { held, -1, 0 };
	struct fl_shim_wait w = { .attempt = release_try, .arg = &r, .watch = dir,
				  .mask = IN_DELETE, .first = 30, .poll = 30 };
	pid_t pid;
	int st;
	double t0;

	(void)state;
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(held, sizeof(held), "%s/held", dir);
	close(open(held, O_CREAT | O_WRONLY, 0644));
	/* The unlink wakes the wait long before its first poll (30 s) and its
	 * deadline (20 s): only the inotify event can end it with 0. */
	r.go = releaser(held, &pid);
	w.deadline = fl__now_mono() + 20;
	assert_int_equal(fl_shim_wait_for(&w), 0);
	assert_true(fl__now_mono() < w.deadline); /* woken, not the last try */
	assert_int_equal(r.tries, 3);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* Events the caller says are not releases do not wake it: the wait
	 * lasts to its deadline, and the try there finds the file gone. */
	close(open(held, O_CREAT | O_WRONLY, 0644));
	r = (struct release){ held, -1, 0 };
	r.go = releaser(held, &pid);
	w.wakes = reject_all;
	t0 = fl__now_mono();
	w.deadline = t0 + 0.3;
	assert_int_equal(fl_shim_wait_for(&w), 0);
	assert_true(fl__now_mono() - t0 >= 0.29);
	assert_int_equal(r.tries, 3);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A wait inside an attempt (the byte-range mutex inside F_SETLKW) on the
 * directory the outer wait watches: the inner one must wake by the event
 * and leave the outer watch in place. */
struct nest {
	char dir[2048], held[4096], m[4096];
	struct release inner;
	int outer_tries, inner_result, go_held;
};

static int nest_try(void *arg)
{
	struct nest *n = arg;
	struct stat st;

	n->outer_tries++;
	if (n->outer_tries == 2) { /* the outer watch is set by now */
		struct fl_shim_wait in = { .attempt = release_try, .arg = &n->inner,
					   .watch = n->dir, .mask = IN_DELETE, .name = "m",
					   .first = 30, .poll = 30 };
		pid_t pid;
		int stt;

		close(open(n->m, O_CREAT | O_WRONLY, 0644));
		n->inner = (struct release){ n->m, -1, 0 };
		n->inner.go = releaser(n->m, &pid);
		in.deadline = fl__now_mono() + 10;
		n->inner_result = fl_shim_wait_for(&in);
		assert_true(fl__now_mono() < in.deadline);
		assert_int_equal(waitpid(pid, &stt, 0), pid);
		/* Now the outer lock goes, after its watch met the inner wait. */
		assert_int_equal(write(n->go_held, "g", 1), 1);
		close(n->go_held);
		return -EAGAIN;
	}
	return lstat(n->held, &st) != 0 ? 0 : -EAGAIN;
}

static void test_shim_wait_nested(void **state)
{
	struct nest n;
	struct fl_shim_wait w = { .attempt = nest_try, .arg = &n, .mask = IN_DELETE,
				  .first = 30, .poll = 30 };
	pid_t pid;
	int st;

	(void)state;
	memset(&n, 0, sizeof(n));
	snprintf(n.dir, sizeof(n.dir), "%s", fl_test_path("nest"));
	assert_int_equal(mkdir(n.dir, 0755), 0);
	snprintf(n.held, sizeof(n.held), "%s/held", n.dir);
	snprintf(n.m, sizeof(n.m), "%s/m", n.dir);
	close(open(n.held, O_CREAT | O_WRONLY, 0644));
	n.go_held = releaser(n.held, &pid);
	w.watch = n.dir;
	w.deadline = fl__now_mono() + 10;
	assert_int_equal(fl_shim_wait_for(&w), 0);
	assert_true(fl__now_mono() < w.deadline); /* woken, not the last try */
	assert_int_equal(n.inner_result, 0);
	assert_int_equal(n.inner.tries, 3);
	assert_int_equal(n.outer_tries, 3);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- signals ---------------------------------------------------------------- */

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled = 1;
}

static int ends_on_eintr(void *arg, int eintr)
{
	(void)arg;
	return eintr;
}

struct signaller {
	int go;
	pid_t child;
};

/* The first try lets the child send SIGUSR1; the lock is never free. */
static int signal_try(void *arg)
{
	struct signaller *s = arg;

	if (s->go >= 0) {
		assert_int_equal(write(s->go, "g", 1), 1);
		close(s->go);
		s->go = -1;
	}
	return -EAGAIN;
}

static void test_shim_wait_signal(void **state)
{
	struct sigaction sa, old;
	sigset_t usr1, orig;
	int depth = 1, p[2], st;
	char c;
	struct signaller s;
	struct fl_shim_signals sig = { &orig, ends_on_eintr, NULL, &depth };
	struct fl_shim_wait w = { .attempt = signal_try, .arg = &s, .first = 30, .poll = 30,
				  .sig = &sig };
	pid_t parent = getpid();

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	/* As the shim does: the signal is blocked except inside the sleep. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &orig), 0);
	assert_int_equal(pipe(p), 0);
	s.child = fork();
	assert_true(s.child >= 0);
	if (s.child == 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1 || kill(parent, SIGUSR1) != 0)
			_exit(1);
		_exit(0);
	}
	close(p[0]);
	s.go = p[1];
	handled = 0;
	w.deadline = fl__now_mono() + 20;
	assert_int_equal(fl_shim_wait_for(&w), -EINTR);
	assert_int_equal(handled, 1);
	assert_int_equal(depth, 1); /* lowered only while the handler could run */
	assert_int_equal(waitpid(s.child, &st, 0), s.child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	sigaction(SIGUSR1, &old, NULL);
}

/* ---- heartbeats ------------------------------------------------------------ */

struct beats {
	atomic_int n;
	int tell;   /* write end: one byte per beat until closed */
	int result; /* what each beat returns */
};

static int beat(void *arg)
{
	struct beats *b = arg;

	atomic_fetch_add(&b->n, 1);
	if (b->tell >= 0 && write(b->tell, "b", 1) != 1)
		return -EIO;
	return b->result;
}

static void test_shim_beat(void **state)
{
	struct beats b = { 0, -1, 0 };
	struct fl_shim_beat *h;
	int p[2], n;
	char c;

	(void)state;
	assert_int_equal(pipe(p), 0);
	b.tell = p[1];
	h = fl_shim_beat_start(0.01, 1.0, beat, &b);
	assert_non_null(h);
	assert_int_equal(read(p[0], &c, 1), 1); /* it beats */
	assert_int_equal(read(p[0], &c, 1), 1); /* and again */
	fl_shim_beat_stop(h); /* returns once no beat runs */
	n = atomic_load(&b.n);
	assert_true(n >= 2);
	close(p[1]);
	close(p[0]);

	/* A beat that reports the thing lost stops itself; stop still works. */
	assert_int_equal(pipe(p), 0);
	b = (struct beats){ 0, p[1], FL_COMPROMISE_MISSING };
	h = fl_shim_beat_start(0.01, 1.0, beat, &b);
	assert_non_null(h);
	assert_int_equal(read(p[0], &c, 1), 1);
	fl_shim_beat_stop(h);
	assert_int_equal(atomic_load(&b.n), 1);
	close(p[1]);
	close(p[0]);
	fl_shim_beat_stop(NULL);
	/* A bad interval: NULL with errno. */
	errno = 0;
	assert_null(fl_shim_beat_start(0, 1.0, beat, &b));
	assert_int_equal(errno, EINVAL);
}

/* ---- dotlocks, handles -------------------------------------------------------- */

static void write_str(const char *path, const char *s)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

static void test_shim_dotlock(void **state)
{
	const char *path = fl_test_path("index.lock");
	char mine[32];
	struct stat st;

	(void)state;
	/* A pid on the first line that no process has: broken. */
	write_str(path, "999999999\n");
	assert_int_equal(fl_shim_dotlock_break_stale(path, 0, 0), 1);
	assert_int_equal(lstat(path, &st), -1);
	/* Our own pid: alive, left alone, with or without a threshold it has
	 * not reached. */
	snprintf(mine, sizeof(mine), "%d\n", (int)getpid());
	write_str(path, mine);
	assert_int_equal(fl_shim_dotlock_break_stale(path, 0, 0), 0);
	assert_int_equal(fl_shim_dotlock_break_stale(path, 3600, 0), 0);
	assert_int_equal(lstat(path, &st), 0);
	/* No pid (git writes nothing): only age breaks it. */
	write_str(path, "");
	assert_int_equal(fl_shim_dotlock_break_stale(path, 0, 0), 0);
	assert_int_equal(lstat(path, &st), 0);
	/* Nothing there: nothing to break. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(fl_shim_dotlock_break_stale(path, 1, 0), 0);
}

static void test_shim_poll_interval(void **state)
{
	struct fl_options o;
	fl_lock *lk;

	(void)state;
	assert_true(fabs(fl_shim_poll_interval(NULL) - 0.05) < 1e-9);
	fl_options_init(&o);
	assert_int_equal(fl_open(&lk, fl_test_path("p"), FL_SOFT, &o), 0);
	assert_true(fabs(fl_shim_poll_interval(lk) - 0.05) < 1e-9);
	fl_close(lk);
	o.poll_interval = 0.2;
	assert_int_equal(fl_open(&lk, fl_test_path("q"), FL_SOFT, &o), 0);
	assert_true(fabs(fl_shim_poll_interval(lk) - 0.2) < 1e-9);
	fl_close(lk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shim_wait_tries, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_wait_deadline, fl_test_setup,
						fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_wait_wakes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_wait_nested, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_wait_signal, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_beat, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_dotlock, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_shim_poll_interval, fl_test_setup,
						fl_test_teardown),
	};
	return cmocka_run_group_tests_name("shim", tests, fl_test_group_setup, fl_test_group_teardown);
}
