/* SPDX-License-Identifier: MIT */
/*
 * test-core.c -- the front end shared by every kind: options, contexts,
 * counters, singletons, self-deadlock detection, timeouts, cancel checks,
 * fork safety and error reporting.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void test_core_options_defaults(void **state)
{
	struct fl_options o;

	memset(&o, 0xa5, sizeof(o));
	fl_options_init(&o);
	assert_int_equal(o.size, sizeof(o));
	assert_true(o.timeout < 0);
	assert_true(o.lifetime < 0);
	assert_int_equal(o.mode, -1);
	assert_int_equal(o.flags, 0);
	assert_true(o.poll_interval == 0);
	assert_null(o.cancel_check);
	assert_string_equal(fl_version(), PACKAGE_VERSION);
}

static void expect_einval(enum fl_kind kind, struct fl_options *o, const char *needle)
{
	fl_lock *lk = (fl_lock *)1;

	assert_int_equal(fl_open(&lk, fl_test_path("bad"), kind, o), -EINVAL);
	assert_null(lk);
	if (strstr(fl_errmsg(NULL), needle) == NULL)
		fail_msg("message '%s' lacks '%s'", fl_errmsg(NULL), needle);
}

static void test_core_options_invalid(void **state)
{
	struct fl_options o;

	fl_options_init(&o);
	o.poll_interval = -1;
	expect_einval(FL_SOFT, &o, "poll_interval");
	fl_options_init(&o);
	o.lifetime = 5;
	expect_einval(FL_UNIX, &o, "lifetime");
	fl_options_init(&o);
	o.mode = 010000;
	expect_einval(FL_UNIX, &o, "mode");
	fl_options_init(&o);
	o.flags = FL_SINGLETON | FL_NO_SINGLETON;
	expect_einval(FL_UNIX, &o, "FL_SINGLETON");
	fl_options_init(&o);
	o.flags = 0x80000000u;
	expect_einval(FL_UNIX, &o, "unknown flags");
	fl_options_init(&o);
	o.timeout = NAN;
	expect_einval(FL_UNIX, &o, "timeout");
	fl_options_init(&o);
	o.size = 3;
	expect_einval(FL_UNIX, &o, "fl_options_init");
}

static void test_core_open_errors(void **state)
{
	fl_lock *lk;

	assert_int_equal(fl_open(&lk, "", FL_SOFT, NULL), -ENOENT);
	assert_int_equal(fl_open(&lk, fl_test_dir, FL_SOFT, NULL) == 0, 1); /* a name, fine */
	fl_close(lk);
	assert_int_equal(fl_open(&lk, "/tmp/", FL_SOFT, NULL), -EISDIR);
	assert_int_equal(fl_open(&lk, "x", (enum fl_kind)99, NULL), -EINVAL);
	assert_int_equal(fl_open(NULL, "x", FL_SOFT, NULL), -EINVAL);
	assert_int_equal(fl_acquire(NULL, FL_EXCLUSIVE, 0), -EINVAL);
	assert_int_equal(fl_release(NULL, 0), -EINVAL);
	fl_close(NULL);
	assert_int_equal(fl_is_locked(NULL), 0);
}

static void test_core_kind_names(void **state)
{
	enum fl_kind k;

	for (int i = FL_FILE; i <= FL_ETCD; i++) {
		assert_non_null(fl_kind_name((enum fl_kind)i));
		assert_int_equal(fl_kind_parse(fl_kind_name((enum fl_kind)i), &k), 0);
		assert_int_equal((int)k, i);
	}
	assert_string_equal(fl_kind_name(FL_SOFT_RW), "soft-rw");
	assert_int_equal(fl_kind_parse("nope", &k), -EINVAL);
	assert_null(fl_kind_name((enum fl_kind)42));
	assert_string_equal(fl_strerror(-ETIMEDOUT), "Lock is held by someone else (timed out)");
	assert_non_null(strstr(fl_strerror(-ENOENT), "No such file"));
}

static void test_core_reentrant_counter(void **state)
{
	const char *p = fl_test_path("reent");
	fl_lock *lk = fl_test_open(p, FL_SOFT, NULL);

	assert_int_equal(fl_is_locked(lk), 0);
	for (unsigned i = 1; i <= 5; i++) {
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(fl_lock_counter(lk), i);
	}
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_lock_counter(lk), 4);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(fl_release(lk, FL_FORCE), 0);
	assert_int_equal(fl_lock_counter(lk), 0);
	assert_int_equal(fl_is_locked(lk), 0);
	assert_int_equal(access(p, F_OK), -1); /* soft marker removed on release */
	/* Releasing an unheld exclusive lock is a no-op, as in Python. */
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

static void test_core_parents_created(void **state)
{
	char p[4096];
	fl_lock *lk;

	for (int k = FL_FILE; k <= FL_SOFT; k++) {
		snprintf(p, sizeof(p), "%s/k%d/a/b/c.lock", fl_test_dir, k);
		lk = fl_test_open(p, (enum fl_kind)k, NULL);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_string_equal(fl_path(lk), p);
		fl_close(lk);
	}
}

/* FL_NO_CREATE_DIRS: a missing parent (an unmounted network file system)
 * is an error naming it, not a silent local lock; nothing is created. */
static void test_core_no_create_dirs(void **state)
{
	struct fl_options o;
	struct stat st;
	char p[4200], d[4096];
	fl_lock *lk;

	fl_options_init(&o);
	o.flags = FL_NO_CREATE_DIRS;
	for (int k = FL_FILE; k <= FL_SOFT_RW; k++) {
		if (k == FL_RW && fl_open(&lk, "/nonexistent/x", FL_RW, NULL) == -ENOTSUP)
			continue;
		if (k == FL_RW)
			fl_close(lk);
		o.lease_duration = k == FL_LEASE ? 30 : 0;
		snprintf(d, sizeof(d), "%s/nocreate-k%d", fl_test_dir, k);
		snprintf(p, sizeof(p), "%s/a/c.lock", d);
		lk = fl_test_open(p, (enum fl_kind)k, &o);
		int r = fl_acquire(lk, FL_EXCLUSIVE, 0);
		if (r != -ENOENT)
			fail_msg("kind %d: %d %s", k, r, fl_errmsg(lk));
		if (strstr(fl_errmsg(lk), "creating missing lock directories is disabled") == NULL)
			fail_msg("kind %d: %s", k, fl_errmsg(lk));
		assert_int_equal(stat(d, &st), -1);
		fl_close(lk);
	}
}

/* Directories we create: 0777 & ~umask; the sticky bit of a sticky parent
 * is kept (the test directory is 01777, as /tmp). */
static void test_core_created_dir_modes(void **state)
{
	struct stat st;
	char p[4096];
	mode_t old = umask(022);
	fl_lock *lk;

	snprintf(p, sizeof(p), "%s/m/n/x.lock", fl_test_dir);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	snprintf(p, sizeof(p), "%s/m", fl_test_dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01755);
	snprintf(p, sizeof(p), "%s/m/n", fl_test_dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01755);
	umask(old);
}

/* A root process refuses a lock directory another user controls. */
static void test_core_root_refuses_foreign_dir(void **state)
{
	char d[4096], p[4200];
	fl_lock *lk;

	if (geteuid() != 0)
		skip();
	snprintf(d, sizeof(d), "%s/shared", fl_test_dir);
	assert_int_equal(mkdir(d, 0777), 0);
	assert_int_equal(chmod(d, 0777), 0); /* world-writable, no sticky bit */
	snprintf(p, sizeof(p), "%s/x.lock", d);
	assert_int_equal(fl_open(&lk, p, FL_SOFT, NULL), -ENOLCK);
	assert_non_null(strstr(fl_errmsg(NULL), "another user controls this directory"));
	assert_non_null(strstr(fl_errmsg(NULL), d));
	snprintf(p, sizeof(p), "%s/below/x.lock", d); /* and below it */
	assert_int_equal(fl_open(&lk, p, FL_UNIX, NULL), -ENOLCK);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -ENOLCK);
	assert_int_equal(chmod(d, 01777), 0); /* sticky: fine */
	lk = fl_test_open(p, FL_SOFT, NULL);
	fl_close(lk);
	assert_int_equal(chmod(d, 0755), 0);
	assert_int_equal(chown(d, 65534, 65534), 0); /* owned by another user */
	assert_int_equal(fl_open(&lk, p, FL_SOFT, NULL), -ENOLCK);
	assert_non_null(strstr(fl_errmsg(NULL), "owner uid 65534"));
}

static void test_core_canonical_path(void **state)
{
	char link[4096], rel[4096], real[4096];
	fl_lock *a, *b, *c;
	struct fl_options o;

	snprintf(real, sizeof(real), "%s/realdir", fl_test_dir);
	mkdir(real, 0755);
	snprintf(link, sizeof(link), "%s/linkdir", fl_test_dir);
	assert_int_equal(symlink(real, link), 0);
	fl_options_init(&o);
	o.flags = FL_SINGLETON;
	snprintf(real, sizeof(real), "%s/realdir/x.lock", fl_test_dir);
	snprintf(link, sizeof(link), "%s/linkdir/./x.lock", fl_test_dir);
	a = fl_test_open(real, FL_UNIX, &o);
	b = fl_test_open(link, FL_UNIX, &o);
	assert_ptr_equal(a, b); /* parent symlinks resolve: one key */
	assert_string_equal(fl_path(b), real);
	assert_int_equal(chdir(fl_test_dir), 0);
	snprintf(rel, sizeof(rel), "realdir/../realdir/x.lock");
	c = fl_test_open(rel, FL_UNIX, &o);
	assert_ptr_equal(a, c);
	fl_close(a);
	fl_close(b);
	fl_close(c);
	/* A missing parent is normalised lexically. */
	snprintf(rel, sizeof(rel), "nope/./deeper/../x.lock");
	c = fl_test_open(rel, FL_UNIX, NULL);
	snprintf(real, sizeof(real), "%s/nope/x.lock", fl_test_dir);
	assert_string_equal(fl_path(c), real);
	fl_close(c);
}

static void test_core_singleton(void **state)
{
	const char *p = fl_test_path("single");
	struct fl_options o, o2;
	fl_lock *a, *b, *c, *d;

	fl_options_init(&o);
	o.flags = FL_SINGLETON;
	o.timeout = 3;
	a = fl_test_open(p, FL_SOFT, &o);
	b = fl_test_open(p, FL_SOFT, &o);
	assert_ptr_equal(a, b);
	c = fl_test_open(p, FL_UNIX, &o); /* another kind: another object */
	assert_ptr_not_equal(a, c);
	o2 = o;
	o2.timeout = 7;
	o2.poll_interval = 0.5;
	assert_int_equal(fl_open(&d, p, FL_SOFT, &o2), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "Non-matching arguments: \n"));
	assert_non_null(strstr(fl_errmsg(NULL), "\ttimeout (existing lock has 3 but 7 was passed)"));
	assert_non_null(strstr(fl_errmsg(NULL), "\tpoll_interval (existing lock has 0.05 but 0.5"));
	/* Reentrant across the two "handles": they are one. */
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, -1), 0);
	assert_int_equal(fl_lock_counter(a), 2);
	fl_close(b); /* drops a reference only: still held */
	assert_int_equal(fl_lock_counter(a), 2);
	assert_int_equal(access(p, F_OK), 0);
	fl_close(a); /* the last reference force-releases */
	assert_int_equal(access(p, F_OK), -1);
	/* Without FL_SINGLETON, a new handle each time. */
	a = fl_test_open(p, FL_SOFT, NULL);
	b = fl_test_open(p, FL_SOFT, NULL);
	assert_ptr_not_equal(a, b);
	fl_close(a);
	fl_close(b);
	fl_close(c);
}

static void test_core_self_deadlock(void **state)
{
	fl_lock *a, *b;

	for (int k = FL_FILE; k <= FL_SOFT; k++) {
		const char *p = fl_test_path("dl");
		a = fl_test_open(p, (enum fl_kind)k, NULL);
		b = fl_test_open(p, (enum fl_kind)k, NULL);
		assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, -1), 0);
		assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, -1), -EDEADLK);
		assert_non_null(strstr(fl_errmsg(b), "FL_SINGLETON"));
		assert_non_null(strstr(fl_errmsg(b), p));
		/* A finite timeout is a normal timeout instead. */
		assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0.05), -ETIMEDOUT);
		assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), -ETIMEDOUT);
		assert_int_equal(fl_release(a, 0), 0);
		assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, -1), 0);
		fl_close(a);
		fl_close(b);
	}
}

static int cancel_after(void *arg)
{
	int *n = arg;
	return ++*n >= 3;
}

static void test_core_deadlock_with_cancel_check(void **state)
{
	const char *p = fl_test_path("dlc");
	struct fl_options o;
	fl_lock *a, *b;
	int calls = 0;

	fl_options_init(&o);
	o.cancel_check = cancel_after;
	o.cancel_arg = &calls;
	a = fl_test_open(p, FL_SOFT, NULL);
	b = fl_test_open(p, FL_SOFT, &o);
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, -1), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, -1), -EDEADLK);
	assert_int_equal(calls, 0);
	fl_close(a);
	fl_close(b);
}

static void test_core_cancel_check(void **state)
{
	const char *p = fl_test_path("cancel");
	struct fl_options o;
	struct fl_child h;
	char line[256];
	fl_lock *lk;
	int calls = 0;

	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_options_init(&o);
	o.cancel_check = cancel_after;
	o.cancel_arg = &calls;
	o.poll_interval = 0.01;
	lk = fl_test_open(p, FL_SOFT, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -ECANCELED);
	assert_int_equal(calls, 3);
	assert_int_equal(fl_is_locked(lk), 0);
	fl_close(lk);
	assert_int_equal(fl_child_finish(&h), 0);
	/* Never called when the lock is free. */
	calls = 0;
	lk = fl_test_open(p, FL_SOFT, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), 0);
	assert_int_equal(calls, 0);
	fl_close(lk);
}

static void test_core_timeouts(void **state)
{
	const char *p = fl_test_path("timeout");
	struct fl_options o;
	struct fl_child h;
	char line[256];
	fl_lock *lk;
	double t0, el;

	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_options_init(&o);
	o.poll_interval = 0.02;
	o.timeout = 0.2;
	lk = fl_test_open(p, FL_SOFT, &o);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, FL_TIMEOUT_DEFAULT), -ETIMEDOUT);
	el = fl_test_now() - t0;
	assert_true(el >= 0.2);
	assert_non_null(strstr(fl_errmsg(lk), "timed out after 0.2s"));
	/* The message names the holder. */
	{
		char want[300];
		snprintf(want, sizeof(want), "held by pid %s", line + 6);
		if (strstr(fl_errmsg(lk), want) == NULL)
			fail_msg("'%s' lacks '%s'", fl_errmsg(lk), want);
	}
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_non_null(strstr(fl_errmsg(lk), "non-blocking"));
	fl_close(lk);
	/* FL_NONBLOCK wins over any timeout. */
	o.flags = FL_NONBLOCK;
	lk = fl_test_open(p, FL_SOFT, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -ETIMEDOUT);
	fl_close(lk);
	/* A blocking-forever waiter gets it once the holder lets go. */
	o.flags = 0;
	lk = fl_test_open(p, FL_SOFT, &o);
	fl_child_say(&h, "release");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "released 0");
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), 0);
	fl_close(lk);
	assert_int_equal(fl_child_finish(&h), 0);
}

struct thr {
	fl_lock *lk;
	int rc;
	unsigned counter;
};

static void *thr_try(void *arg)
{
	struct thr *t = arg;

	t->rc = fl_acquire(t->lk, FL_EXCLUSIVE, 0);
	t->counter = fl_lock_counter(t->lk);
	if (t->rc == 0)
		fl_release(t->lk, FL_FORCE);
	return NULL;
}

static void test_core_thread_contexts(void **state)
{
	struct fl_options o;
	struct thr t;
	pthread_t th;

	for (int k = FL_FILE; k <= FL_SOFT; k++) {
		const char *p = fl_test_path("threads");
		/* Thread-local (default): another thread is excluded. */
		t.lk = fl_test_open(p, (enum fl_kind)k, NULL);
		assert_int_equal(fl_acquire(t.lk, FL_EXCLUSIVE, 0), 0);
		pthread_create(&th, NULL, thr_try, &t);
		pthread_join(th, NULL);
		assert_int_equal(t.rc, -ETIMEDOUT);
		assert_int_equal(t.counter, 0);
		assert_int_equal(fl_lock_counter(t.lk), 1);
		fl_close(t.lk);
		/* Shared context: another thread is reentrant. */
		fl_options_init(&o);
		o.flags = FL_SHARED_CONTEXT;
		t.lk = fl_test_open(p, (enum fl_kind)k, &o);
		assert_int_equal(fl_acquire(t.lk, FL_EXCLUSIVE, 0), 0);
		pthread_create(&th, NULL, thr_try, &t);
		pthread_join(th, NULL);
		assert_int_equal(t.rc, 0);
		assert_int_equal(t.counter, 2);
		/* thr_try force-released the shared context */
		assert_int_equal(fl_is_locked(t.lk), 0);
		fl_close(t.lk);
	}
}

#define NTHREADS 8
#define NITER 200
static long shared_counter;

static void *thr_increment(void *arg)
{
	fl_lock *lk = arg;

	for (int i = 0; i < NITER; i++) {
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), 0);
		long v = shared_counter;
		sched_yield();
		shared_counter = v + 1;
		assert_int_equal(fl_release(lk, 0), 0);
	}
	return NULL;
}

static void test_core_threads_exclude(void **state)
{
	struct fl_options o;
	pthread_t th[NTHREADS];
	fl_lock *lk;

	fl_options_init(&o);
	o.poll_interval = 0.001;
	for (int k = FL_UNIX; k <= FL_SOFT; k++) {
		const char *p = fl_test_path("thrash");
		shared_counter = 0;
		lk = fl_test_open(p, (enum fl_kind)k, &o);
		for (int i = 0; i < NTHREADS; i++)
			pthread_create(&th[i], NULL, thr_increment, lk);
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(th[i], NULL);
		assert_int_equal(shared_counter, NTHREADS * NITER);
		fl_close(lk);
	}
}

static void test_core_mode_rules(void **state)
{
	const char *p = fl_test_path("modes");
	fl_lock *lk = fl_test_open(p, FL_SOFT, NULL);

	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ENOTSUP);
	assert_non_null(strstr(fl_errmsg(lk), "shared mode is not supported"));
	assert_int_equal(fl_acquire(lk, (enum fl_mode)7, 0), -EINVAL);
	fl_close(lk);
	lk = fl_test_open(p, FL_UNIX, NULL);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EDEADLK);
	assert_non_null(strstr(fl_errmsg(lk), "upgrade"));
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_lock_counter(lk), 2);
	assert_int_equal(fl_release(lk, FL_FORCE), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EDEADLK);
	assert_non_null(strstr(fl_errmsg(lk), "downgrade"));
	fl_close(lk);
}

static void test_core_fork_child(void **state)
{
	for (int k = FL_FILE; k <= FL_SOFT; k++) {
		const char *p = fl_test_path("fork");
		fl_lock *lk = fl_test_open(p, (enum fl_kind)k, NULL);
		struct fl_child h;
		char line[256];
		int st, fds[2];
		pid_t pid;

		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int ok = fl_acquire(lk, FL_EXCLUSIVE, 0) == -ECHILD &&
				 strstr(fl_errmsg(lk), "inherited across fork") != NULL &&
				 fl_is_locked(lk) == 0 && fl_release(lk, FL_FORCE) == 0;
			fl_close(lk); /* must not release or unlink the parent's lock */
			_exit(ok ? 0 : 1);
		}
		close(fds[0]);
		close(fds[1]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		/* The parent still holds it: another process cannot get it. */
		fl_holder_start(&h, line, sizeof(line), "-t", fl_kind_name((enum fl_kind)k), "-w",
				"0", p, NULL);
		assert_true(strncmp(line, "error 110", 9) == 0);
		assert_true(WEXITSTATUS(fl_child_finish(&h)) == 1);
		assert_int_equal(fl_is_locked(lk), 1);
		fl_close(lk);
		/* And now it is free. */
		fl_holder_start(&h, line, sizeof(line), "-t", fl_kind_name((enum fl_kind)k), "-w",
				"0", p, NULL);
		assert_true(strncmp(line, "ready", 5) == 0);
		assert_int_equal(fl_child_finish(&h), 0);
	}
}

static void test_core_errmsg_per_thread(void **state)
{
	fl_lock *lk;

	assert_int_equal(fl_open(&lk, "", FL_SOFT, NULL), -ENOENT);
	assert_non_null(strstr(fl_errmsg(NULL), "canonicalize()"));
	lk = fl_test_open(fl_test_path("msg"), FL_SOFT, NULL);
	assert_string_equal(fl_errmsg(lk), ""); /* no failure on this handle yet */
	fl_close(lk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_core_options_defaults, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_options_invalid, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_open_errors, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_kind_names, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_reentrant_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_parents_created, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_no_create_dirs, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_created_dir_modes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_root_refuses_foreign_dir, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_canonical_path, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_singleton, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_self_deadlock, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_deadlock_with_cancel_check, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_cancel_check, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_timeouts, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_thread_contexts, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_threads_exclude, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_mode_rules, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_fork_child, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_core_errmsg_per_thread, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("core", tests, fl_test_group_setup, fl_test_group_teardown);
}
