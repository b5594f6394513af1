/* SPDX-License-Identifier: MIT */
/*
 * test-etcd.c -- the etcd kind through the public API, against the cluster
 * named by $FILELOCK_ETCD_ENDPOINTS (tests/etcd/api.sh starts one).  Each
 * run uses its own key prefix.  Without endpoints the binary skips (77).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static char prefix[64];

static void nap(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static void opts(struct fl_options *o, double ttl)
{
	fl_options_init(o);
	o->stale_threshold = ttl;
	o->etcd_prefix = prefix;
}

static fl_lock *open_etcd(const char *path, double ttl)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	opts(&o, ttl);
	assert_int_equal(fl_open(&lk, path, FL_ETCD, &o), 0);
	return lk;
}

static void test_options(void **state)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	(void)state;
	opts(&o, 0.5);
	assert_int_equal(fl_open(&lk, "/x", FL_ETCD, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "stale_threshold"));
	opts(&o, 3);
	o.heartbeat_interval = 2;
	assert_int_equal(fl_open(&lk, "/x", FL_ETCD, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "heartbeat_interval"));
	opts(&o, 3);
	o.lease_duration = 5;
	assert_int_equal(fl_open(&lk, "/x", FL_ETCD, &o), -EINVAL);
	opts(&o, 3);
	o.etcd_endpoints = " , ";
	assert_int_equal(fl_open(&lk, "/x", FL_ETCD, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "no endpoint"));
	/* Other kinds have no fencing token. */
	assert_int_equal(fl_open(&lk, fl_test_path("soft"), FL_SOFT, NULL), 0);
	{
		unsigned long long t;
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(fl_fencing_token(lk, &t), -ENOTSUP);
	}
	fl_close(lk);
}

/* Singletons compare the etcd strings by value; fl_open copies them. */
static void test_singleton_strings(void **state)
{
	const char *p = fl_test_path("single");
	struct fl_options o;
	fl_lock *a = NULL, *b = NULL;
	char *ep;

	(void)state;
	opts(&o, 3);
	o.flags = FL_SINGLETON;
	ep = strdup(getenv("FILELOCK_ETCD_ENDPOINTS"));
	o.etcd_endpoints = ep;
	assert_int_equal(fl_open(&a, p, FL_ETCD, &o), 0);
	free(ep);
	ep = strdup(getenv("FILELOCK_ETCD_ENDPOINTS"));
	o.etcd_endpoints = ep;
	assert_int_equal(fl_open(&b, p, FL_ETCD, &o), 0);
	assert_ptr_equal(a, b);
	o.etcd_prefix = "/another";
	assert_int_equal(fl_open(&b, p, FL_ETCD, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "etcd_prefix"));
	free(ep);
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 5), 0);
	fl_close(a);
	assert_true(fl_is_locked(a));
	fl_close(a);
}

/* Nothing listens on port 1 of loopback: a clear, fast error. */
static void test_unreachable(void **state)
{
	struct fl_options o;
	fl_lock *lk = NULL;
	double t0;

	(void)state;
	opts(&o, 3);
	o.etcd_endpoints = "127.0.0.1:1,http://127.0.0.1:2/";
	assert_int_equal(fl_open(&lk, fl_test_path("unreach"), FL_ETCD, &o), 0);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), -ECONNREFUSED);
	assert_true(fl_test_now() - t0 < 3);
	assert_non_null(strstr(fl_errmsg(lk), "http://127.0.0.1:1:"));
	assert_non_null(strstr(fl_errmsg(lk), "http://127.0.0.1:2:"));
	assert_non_null(strstr(fl_errmsg(lk), "[etcd]"));
	assert_false(fl_is_locked(lk));
	fl_close(lk);
}

/* Tokens grow with every new holder; none when not held. */
static void test_fencing(void **state)
{
	const char *p = fl_test_path("fence");
	fl_lock *a = open_etcd(p, 3), *b = open_etcd(p, 3);
	unsigned long long t1, t2, t3;

	(void)state;
	assert_int_equal(fl_fencing_token(a, &t1), -ENOLCK);
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_fencing_token(a, &t1), 0);
	assert_true(t1 > 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_release(a, 0), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_fencing_token(b, &t2), 0);
	assert_true(t2 > t1);
	assert_int_equal(fl_release(b, 0), 0);
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_fencing_token(a, &t3), 0);
	assert_true(t3 > t2);
	assert_int_equal(fl_release(a, 0), 0);
	assert_int_equal(fl_fencing_token(a, &t3), -ENOLCK);
	fl_close(a);
	fl_close(b);
}

struct waiter {
	fl_lock *lk;
	enum fl_mode mode;
	double timeout;
	int rc, rel_rc;
	double done;
	int go[2];      /* a byte here tells the thread to release */
	int acked[2];   /* the thread writes a byte once it acquired (or failed) */
};

/* Acquires, reports, and releases when told: write levels belong to the
 * thread that took them. */
static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	char c = 0;

	w->rc = fl_acquire(w->lk, w->mode, w->timeout);
	w->done = fl_test_now();
	if (write(w->acked[1], &c, 1) != 1)
		abort();
	if (read(w->go[0], &c, 1) != 1)
		abort();
	w->rel_rc = w->rc == 0 ? fl_release(w->lk, 0) : 0;
	return NULL;
}

/* Spins (bounded) until fl_inspect shows `writers` writer keys queued. */
static void await_writer(const char *p)
{
	struct fl_options o;

	opts(&o, 3);
	for (int i = 0; i < 500; i++) {
		struct fl_holder who = { .size = sizeof(who) };
		assert_int_equal(fl_inspect(p, FL_ETCD, &o, &who), 0);
		if (who.writers)
			return;
		nap(0.01);
	}
	fail_msg("the writer never queued");
}

/* Readers share; a writer waits for them; a reader that comes after a
 * queued writer waits too (no writer starvation). */
static void test_readers_writers(void **state)
{
	const char *p = fl_test_path("rw");
	fl_lock *r1 = open_etcd(p, 3), *r2 = open_etcd(p, 3), *w = open_etcd(p, 3);
	fl_lock *r3 = open_etcd(p, 3);
	struct waiter ww = { .lk = w, .mode = FL_EXCLUSIVE, .timeout = 10 };
	struct fl_holder who = { .size = sizeof(who) };
	struct fl_options o;
	pthread_t t;
	double rel;

	(void)state;
	assert_int_equal(pipe(ww.go), 0);
	assert_int_equal(pipe(ww.acked), 0);
	opts(&o, 3);
	assert_int_equal(fl_acquire(r1, FL_SHARED, 5), 0);
	assert_int_equal(fl_acquire(r2, FL_SHARED, 0), 0);
	assert_int_equal(fl_inspect(p, FL_ETCD, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.mode, FL_SHARED);
	assert_int_equal(who.readers, 2);
	assert_int_equal(who.pid, getpid());
	assert_int_equal(fl_acquire(w, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &ww), 0);
	await_writer(p);
	/* A reader arriving after the queued writer must wait for it. */
	assert_int_equal(fl_acquire(r3, FL_SHARED, 0.5), -ETIMEDOUT);
	assert_int_equal(fl_release(r1, 0), 0);
	assert_int_equal(fl_acquire(r1, FL_SHARED, 0), -ETIMEDOUT);
	rel = fl_test_now();
	assert_int_equal(fl_release(r2, 0), 0);
	{
		char c;
		assert_int_equal(read(ww.acked[0], &c, 1), 1);
	}
	assert_int_equal(ww.rc, 0);
	/* Woken by the watch, not by the 1 s poll interval. */
	assert_true(ww.done - rel < 0.9);
	assert_int_equal(fl_acquire(r3, FL_SHARED, 0), -ETIMEDOUT);
	assert_int_equal(write(ww.go[1], "g", 1), 1);
	pthread_join(t, NULL);
	assert_int_equal(ww.rel_rc, 0);
	for (int i = 0; i < 2; i++) {
		close(ww.go[i]);
		close(ww.acked[i]);
	}
	assert_int_equal(fl_acquire(r3, FL_SHARED, 5), 0);
	assert_int_equal(fl_release(r3, 0), 0);
	fl_close(r1);
	fl_close(r2);
	fl_close(r3);
	fl_close(w);
}

static atomic_int compromised;

static void on_compromise(fl_lock *lk, int reason, void *arg)
{
	(void)lk;
	(void)arg;
	atomic_store(&compromised, reason);
}

/* fl_break: -EBUSY on a live holder; FL_FORCE revokes its lease, and the
 * holder learns it at its next keep-alive. */
static void test_break(void **state)
{
	const char *p = fl_test_path("brk");
	struct fl_options o;
	fl_lock *lk = NULL;
	struct fl_holder who = { .size = sizeof(who) };

	(void)state;
	opts(&o, 3);
	assert_int_equal(fl_break(p, FL_ETCD, &o, 0, NULL), -ENOENT);
	o.on_compromise = on_compromise;
	assert_int_equal(fl_open(&lk, p, FL_ETCD, &o), 0);
	o.on_compromise = NULL;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_inspect(p, FL_ETCD, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.mode, FL_EXCLUSIVE);
	assert_true(who.same_host);
	assert_non_null(strstr(who.detail, "fencing token"));
	assert_int_equal(fl_break(p, FL_ETCD, &o, 0, NULL), -EBUSY);
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_break(p, FL_ETCD, &o, FL_FORCE, NULL), 0);
	for (int i = 0; i < 500 && atomic_load(&compromised) == 0; i++)
		nap(0.01);
	assert_int_equal(atomic_load(&compromised), FL_COMPROMISE_MISSING);
	assert_false(fl_is_valid(lk));
	assert_true(fl_is_locked(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_inspect(p, FL_ETCD, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_FREE);
	fl_close(lk);
}

/* A lock held for several TTLs stays ours: keep-alives work. */
static void test_keepalive(void **state)
{
	const char *p = fl_test_path("ka");
	fl_lock *a = open_etcd(p, 1), *b = open_etcd(p, 1);

	(void)state;
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 3.5), -ETIMEDOUT);
	assert_true(fl_is_valid(a));
	fl_close(a);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), 0);
	fl_close(b);
}

/* Locks of a path and of a path below it do not see each other's keys. */
static void test_nested_names(void **state)
{
	char sub[4200];
	const char *p = fl_test_path("nest");
	fl_lock *a, *b;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/inner", p);
	a = open_etcd(p, 3);
	b = open_etcd(sub, 3);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	fl_close(a);
	fl_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_options, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_singleton_strings, fl_test_setup,
						fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_fencing, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_readers_writers, fl_test_setup,
						fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_break, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_keepalive, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_nested_names, fl_test_setup, fl_test_teardown),
	};

	if (getenv("FILELOCK_ETCD_ENDPOINTS") == NULL) {
		fprintf(stderr, "SKIP: FILELOCK_ETCD_ENDPOINTS is not set (run tests/etcd/api.sh)\n");
		return 77;
	}
	snprintf(prefix, sizeof(prefix), "/fltest-unit-%d", (int)getpid());
	return cmocka_run_group_tests_name("etcd", tests, fl_test_group_setup,
					   fl_test_group_teardown);
}
