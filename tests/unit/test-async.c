/* SPDX-License-Identifier: MIT */
/*
 * test-async.c -- fl_async / fl_acquire_async: many concurrent acquires on a
 * small pool, cancel before/during/after acquisition, the same codes as
 * fl_acquire, and the readiness descriptor under poll().
 *
 * "Waiting" is observed, never guessed: a cancel_check that reports through a
 * pipe tells us a request made a failed attempt and is in the wait loop.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "filelock.h"

static char tmpdir[256];

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static fl_lock *open_lock(const char *name, enum fl_kind kind, double poll_interval,
			  unsigned flags)
{
	struct fl_options o;
	char p[512];
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.flags = flags;
	o.poll_interval = poll_interval;
	path_of(p, sizeof(p), name);
	assert_int_equal(fl_open(&lk, p, kind, &o), 0);
	return lk;
}

/* Waits (poll, with a bound) until the executor's descriptor is readable. */
static void wait_readable(fl_async *ex)
{
	struct pollfd pfd = { .fd = fl_async_fd(ex), .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, 20000), 1);
	assert_true(pfd.revents & POLLIN);
}

/* Records one completion. */
struct done {
	int called;
	int result;
	char msg[512];
};

static void on_done(fl_lock *lk, int result, void *arg)
{
	struct done *d = arg;

	d->called++;
	d->result = result;
	snprintf(d->msg, sizeof(d->msg), "%s", fl_errmsg(lk));
}

/* Runs dispatch rounds until d has been called. */
static void run_until(fl_async *ex, struct done *d)
{
	while (!d->called) {
		wait_readable(ex);
		assert_true(fl_async_dispatch(ex) >= 0);
	}
	assert_int_equal(d->called, 1);
}

/* A cancel_check that never cancels but writes one byte to a pipe on its
 * first call: proof that the request failed an attempt and is waiting.
 * With `block`, that first call then also waits for probe_go(), which keeps
 * its pool thread busy inside the wait loop (the context stays busy). */
struct waiting_probe {
	int fd[2];
	int go[2];
	int told;
	int cancel; /* value to return */
	int block;
};

static int probe_check(void *arg)
{
	struct waiting_probe *w = arg;
	char c;

	if (!w->told) {
		w->told = 1;
		assert_int_equal(write(w->fd[1], "w", 1), 1);
		if (w->block)
			assert_int_equal(read(w->go[0], &c, 1), 1);
	}
	return w->cancel;
}

static void probe_go(struct waiting_probe *w)
{
	assert_int_equal(write(w->go[1], "g", 1), 1);
}

static void probe_wait(struct waiting_probe *w)
{
	char c;

	assert_int_equal(read(w->fd[0], &c, 1), 1);
}

static fl_lock *open_probed(const char *name, enum fl_kind kind, double poll_interval,
			    struct waiting_probe *w)
{
	struct fl_options o;
	char p[512];
	fl_lock *lk = NULL;

	assert_int_equal(pipe(w->fd), 0);
	assert_int_equal(pipe(w->go), 0);
	w->told = 0;
	fl_options_init(&o);
	o.flags = FL_SHARED_CONTEXT;
	o.poll_interval = poll_interval;
	o.cancel_check = probe_check;
	o.cancel_arg = w;
	path_of(p, sizeof(p), name);
	assert_int_equal(fl_open(&lk, p, kind, &o), 0);
	return lk;
}

static void probe_close(struct waiting_probe *w)
{
	close(w->fd[0]);
	close(w->fd[1]);
	close(w->go[0]);
	close(w->go[1]);
}

/* A child process that holds `name` until the parent closes its pipe. */
struct holder {
	pid_t pid;
	int to_child;
};

static struct holder hold_in_child(const char *name, enum fl_kind kind)
{
	int up[2], down[2];
	struct holder h;
	char c;

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	h.pid = fork();
	assert_true(h.pid >= 0);
	if (h.pid == 0) {
		struct fl_options o;
		char p[512];
		fl_lock *lk;

		close(up[0]);
		close(down[1]);
		alarm(30);
		fl_options_init(&o);
		path_of(p, sizeof(p), name);
		if (fl_open(&lk, p, kind, &o) != 0 || fl_acquire(lk, FL_EXCLUSIVE, 5) != 0)
			_exit(2);
		if (write(up[1], "h", 1) != 1)
			_exit(3);
		(void)!read(down[0], &c, 1); /* EOF when the parent lets go */
		fl_release(lk, 0);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	assert_int_equal(read(up[0], &c, 1), 1);
	close(up[0]);
	h.to_child = down[1];
	return h;
}

static void holder_stop(struct holder *h)
{
	int st;

	close(h->to_child);
	assert_int_equal(waitpid(h->pid, &st, 0), h->pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Exit code of a child's non-blocking acquire: 0 got it, 1 -ETIMEDOUT. */
static int try_in_child(const char *name, enum fl_kind kind)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct fl_options o;
		char p[512];
		fl_lock *lk;
		int r;

		alarm(30);
		fl_options_init(&o);
		path_of(p, sizeof(p), name);
		if (fl_open(&lk, p, kind, &o) != 0)
			_exit(2);
		r = fl_acquire(lk, FL_EXCLUSIVE, 0);
		if (r == 0)
			fl_release(lk, 0);
		_exit(r == 0 ? 0 : r == -ETIMEDOUT ? 1 : 3);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Non-blocking acquire from a fresh handle in this process: 0 or -ETIMEDOUT. */
static int try_here(const char *name, enum fl_kind kind)
{
	fl_lock *lk = open_lock(name, kind, 0, 0);
	int r = fl_acquire(lk, FL_EXCLUSIVE, 0);

	if (r == 0)
		assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	return r;
}

/* ---- setup ------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/fl-async-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

/* Every test runs under its own alarm: a deadlock fails instead of hanging. */
static int arm(void **state)
{
	(void)state;
	alarm(60);
	return 0;
}

static int disarm(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, arm, disarm)

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- API rules ------------------------------------------------------------ */

static void test_context_rule(void **state)
{
	fl_async *ex;
	fl_lock *tl = open_lock("ctx.lock", FL_SOFT, 0, 0);
	fl_async_req *req = (fl_async_req *)1;
	struct done d = { 0 };

	(void)state;
	assert_int_equal(fl_async_new(&ex, 2), 0);
	/* Thread-local context: refused at once, with a message that says why. */
	assert_int_equal(fl_acquire_async(ex, tl, FL_EXCLUSIVE, -1, on_done, &d, &req), -EINVAL);
	assert_null(req);
	assert_non_null(strstr(fl_errmsg(tl), "FL_SHARED_CONTEXT"));
	assert_int_equal(fl_acquire_async(NULL, tl, FL_EXCLUSIVE, -1, on_done, &d, NULL), -EINVAL);
	assert_int_equal(fl_acquire_async(ex, NULL, FL_EXCLUSIVE, -1, on_done, &d, NULL), -EINVAL);
	assert_int_equal(fl_acquire_async(ex, tl, FL_EXCLUSIVE, -1, NULL, &d, NULL), -EINVAL);
	assert_int_equal(fl_async_cancel(NULL), -EINVAL);
	assert_int_equal(fl_async_fd(NULL), -EINVAL);
	assert_int_equal(fl_async_dispatch(NULL), -EINVAL);
	{
		fl_async *too_big = (fl_async *)1;

		assert_int_equal(fl_async_new(&too_big, 65), -EINVAL);
		assert_null(too_big);
	}
	assert_int_equal(d.called, 0);
	assert_int_equal(fl_async_pending(ex), 0);
	fl_async_free(ex);
	fl_async_free(NULL);
	fl_close(tl);
}

/* ---- the readiness descriptor ------------------------------------------ */

static void test_poll_fd(void **state)
{
	fl_async *ex;
	fl_lock *lk = open_lock("poll.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	struct pollfd pfd;
	struct done d = { 0 };

	(void)state;
	assert_int_equal(fl_async_new(&ex, 1), 0);
	pfd.fd = fl_async_fd(ex);
	pfd.events = POLLIN;
	assert_true(pfd.fd >= 0);
	assert_int_equal(poll(&pfd, 1, 0), 0); /* nothing yet */
	assert_int_equal(fl_async_dispatch(ex), 0);

	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d, NULL), 0);
	assert_int_equal(fl_async_pending(ex), 1);
	assert_int_equal(poll(&pfd, 1, 20000), 1);
	assert_true(pfd.revents & POLLIN);
	/* Level-triggered: still readable until dispatched. */
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(d.called, 0);
	assert_int_equal(fl_async_dispatch(ex), 1);
	assert_int_equal(d.called, 1);
	assert_int_equal(d.result, 0);
	assert_int_equal(fl_async_pending(ex), 0);
	assert_int_equal(poll(&pfd, 1, 0), 0); /* drained */
	assert_true(fl_is_locked(lk));
	assert_int_equal(try_in_child("poll.lock", FL_UNIX), 1);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(try_in_child("poll.lock", FL_UNIX), 0);

	/* A shared context is reentrant, as in fl_acquire. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), 0);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d, NULL), 0);
	run_until(ex, &d);
	assert_int_equal(d.result, 0);
	assert_int_equal(fl_lock_counter(lk), 2);
	assert_int_equal(fl_release(lk, FL_FORCE), 0);

	fl_async_free(ex);
	fl_close(lk);
}

/* ---- 1,000 acquires on 100 paths, 4 pool threads ------------------------ */

#define NPATHS 100
#define PER_PATH 10

struct many {
	fl_lock *lk[NPATHS][PER_PATH];
	int inside[NPATHS];    /* a callback holds the path and has not released */
	int count[NPATHS];
	int failures;
	/* Completed and still held: released one dispatch round later, so that
	 * holds of different paths overlap and same-path grants would show. */
	struct {
		int path, slot, round;
	} held[NPATHS * PER_PATH];
	int nheld, round;
};

struct many_arg {
	struct many *m;
	int path, slot;
};

static void many_done(fl_lock *lk, int result, void *arg)
{
	struct many_arg *a = arg;
	struct many *m = a->m;

	if (result != 0 || m->inside[a->path]) {
		m->failures++;
		print_error("path %d slot %d: result %d inside %d: %s\n", a->path, a->slot,
			    result, m->inside[a->path], fl_errmsg(lk));
		return;
	}
	m->inside[a->path] = 1;
	m->count[a->path]++;
	m->held[m->nheld].path = a->path;
	m->held[m->nheld].slot = a->slot;
	m->held[m->nheld].round = m->round;
	m->nheld++;
}

static void run_many(enum fl_kind kind, const char *tag)
{
	static struct many m;
	static struct many_arg args[NPATHS][PER_PATH];
	fl_async *ex;
	int total = 0;
	double t0 = fl_test_now();

	memset(&m, 0, sizeof(m));
	assert_int_equal(fl_async_new(&ex, 4), 0);
	for (int p = 0; p < NPATHS; p++) {
		char name[64];

		snprintf(name, sizeof(name), "%s-%d.lock", tag, p);
		for (int s = 0; s < PER_PATH; s++)
			m.lk[p][s] = open_lock(name, kind, 0.001, FL_SHARED_CONTEXT);
	}
	/* Interleave paths so that the queue mixes contended and free work. */
	for (int s = 0; s < PER_PATH; s++) {
		for (int p = 0; p < NPATHS; p++) {
			args[p][s] = (struct many_arg){ &m, p, s };
			assert_int_equal(fl_acquire_async(ex, m.lk[p][s], FL_EXCLUSIVE, -1,
							  many_done, &args[p][s], NULL),
					 0);
		}
	}
	assert_int_equal(fl_async_pending(ex), NPATHS * PER_PATH);
	while (fl_async_pending(ex) > 0 || m.nheld > 0) {
		struct pollfd pfd = { .fd = fl_async_fd(ex), .events = POLLIN };
		int keep = 0, n;

		/* Release what earlier rounds obtained; keep this round's. */
		for (int i = 0; i < m.nheld; i++) {
			if (m.held[i].round < m.round) {
				int p = m.held[i].path;

				m.inside[p] = 0;
				assert_int_equal(fl_release(m.lk[p][m.held[i].slot], 0), 0);
			} else {
				m.held[keep++] = m.held[i];
			}
		}
		m.nheld = keep;
		m.round++;
		if (fl_async_pending(ex) == 0)
			continue;
		n = poll(&pfd, 1, m.nheld > 0 ? 0 : 20000);
		assert_true(n >= 0);
		if (n == 0 && m.nheld == 0)
			fail_msg("no completion for 20 s");
		n = fl_async_dispatch(ex);
		assert_true(n >= 0);
		total += n;
	}
	assert_int_equal(m.failures, 0);
	assert_int_equal(total, NPATHS * PER_PATH);
	for (int p = 0; p < NPATHS; p++) {
		assert_int_equal(m.count[p], PER_PATH);
		for (int s = 0; s < PER_PATH; s++) {
			assert_false(fl_is_locked(m.lk[p][s]));
			fl_close(m.lk[p][s]);
		}
	}
	fl_async_free(ex);
	print_message("[ INFO     ] %s: %d async acquires on %d paths, 4 threads: %.3f s\n", tag,
		      NPATHS * PER_PATH, NPATHS, fl_test_now() - t0);
}

static void test_many_soft(void **state)
{
	(void)state;
	run_many(FL_SOFT, "soft");
}

static void test_many_unix(void **state)
{
	(void)state;
	run_many(FL_UNIX, "unix");
}

/* Waiting requests share the pool: with one thread, twenty requests waiting
 * forever on held locks do not delay a request on a free lock, and each of
 * them completes as soon as its lock is released. */
#define NSTARVE 20

static void test_no_starvation(void **state)
{
	fl_lock *holder[NSTARVE], *waiter[NSTARVE], *free_lk;
	struct done d[NSTARVE], df = { 0 };
	fl_async *ex;

	(void)state;
	memset(d, 0, sizeof(d));
	assert_int_equal(fl_async_new(&ex, 1), 0);
	for (int i = 0; i < NSTARVE; i++) {
		char name[64];

		snprintf(name, sizeof(name), "starve-%d.lock", i);
		holder[i] = open_lock(name, FL_UNIX, 0, FL_SHARED_CONTEXT);
		waiter[i] = open_lock(name, FL_UNIX, 0.01, FL_SHARED_CONTEXT);
		assert_int_equal(fl_acquire(holder[i], FL_EXCLUSIVE, 0), 0);
		assert_int_equal(fl_acquire_async(ex, waiter[i], FL_EXCLUSIVE, -1, on_done, &d[i],
						  NULL),
				 0);
	}
	free_lk = open_lock("starve-free.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	assert_int_equal(fl_acquire_async(ex, free_lk, FL_EXCLUSIVE, -1, on_done, &df, NULL), 0);
	run_until(ex, &df);
	assert_int_equal(df.result, 0);
	assert_int_equal(fl_async_pending(ex), NSTARVE);
	assert_int_equal(fl_release(free_lk, 0), 0);
	/* Release in reverse order of submission: each waiter is still polled. */
	for (int i = NSTARVE - 1; i >= 0; i--) {
		assert_int_equal(d[i].called, 0);
		assert_int_equal(fl_release(holder[i], 0), 0);
		run_until(ex, &d[i]);
		assert_int_equal(d[i].result, 0);
		assert_true(fl_is_locked(waiter[i]));
		assert_int_equal(fl_release(waiter[i], 0), 0);
		assert_int_equal(fl_async_pending(ex), (unsigned)i);
	}
	fl_async_free(ex);
	for (int i = 0; i < NSTARVE; i++) {
		fl_close(holder[i]);
		fl_close(waiter[i]);
	}
	fl_close(free_lk);
}

/* ---- cancellation ---------------------------------------------------------- */

/* Before: a request still queued behind a busy pool never starts. */
static void test_cancel_queued(void **state)
{
	struct waiting_probe w = { .cancel = 0, .block = 1 };
	fl_lock *holder = open_lock("q.lock", FL_SOFT, 0, FL_SHARED_CONTEXT);
	fl_lock *a = open_probed("q.lock", FL_SOFT, 0.001, &w);
	fl_lock *b = open_lock("q2.lock", FL_SOFT, 0, FL_SHARED_CONTEXT);
	struct done da = { 0 }, db = { 0 };
	fl_async_req *ra, *rb;
	fl_async *ex;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 1), 0);
	assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
	/* The only pool thread is held inside a's cancel_check... */
	assert_int_equal(fl_acquire_async(ex, a, FL_EXCLUSIVE, -1, on_done, &da, &ra), 0);
	probe_wait(&w);
	/* ...so a request on the free q2.lock stays queued. */
	assert_int_equal(fl_acquire_async(ex, b, FL_EXCLUSIVE, -1, on_done, &db, &rb), 0);
	assert_int_equal(fl_async_cancel(rb), 0);
	assert_int_equal(fl_async_cancel(rb), -EALREADY);
	run_until(ex, &db);
	assert_int_equal(db.result, -ECANCELED);
	assert_non_null(strstr(db.msg, "cancelled"));
	assert_int_equal(try_here("q2.lock", FL_SOFT), 0);
	assert_false(fl_is_locked(b));

	/* During, on a lock held by another handle. */
	probe_go(&w);
	assert_int_equal(fl_async_cancel(ra), 0);
	run_until(ex, &da);
	assert_int_equal(da.result, -ECANCELED);
	assert_int_equal(fl_release(holder, 0), 0);
	assert_int_equal(try_here("q.lock", FL_SOFT), 0);
	assert_int_equal(try_in_child("q.lock", FL_SOFT), 0);
	assert_false(fl_is_locked(a));
	assert_int_equal(fl_async_pending(ex), 0);

	fl_async_free(ex);
	probe_close(&w);
	fl_close(holder);
	fl_close(a);
	fl_close(b);
}

/* During: waiting on a lock held by another process; the cancel is prompt
 * even with a long poll interval. */
static void cancel_during_process(enum fl_kind kind, const char *name)
{
	struct waiting_probe w = { .cancel = 0 };
	fl_lock *lk = open_probed(name, kind, 10.0, &w);
	struct done d = { 0 };
	struct holder h;
	fl_async_req *req;
	fl_async *ex;
	double t0;

	assert_int_equal(fl_async_new(&ex, 2), 0);
	h = hold_in_child(name, kind);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d, &req), 0);
	probe_wait(&w);
	t0 = fl_test_now();
	assert_int_equal(fl_async_cancel(req), 0);
	/* Without the cancel hook it would sleep out the 10 s poll interval. */
	assert_true(fl_test_now() - t0 < 2.0);
	run_until(ex, &d);
	assert_int_equal(d.result, -ECANCELED);
	assert_false(fl_is_locked(lk));
	holder_stop(&h);
	/* The cancelled waiter did not take the lock when the holder left. */
	assert_int_equal(try_in_child(name, kind), 0);
	assert_int_equal(try_here(name, kind), 0);
	fl_async_free(ex);
	probe_close(&w);
	fl_close(lk);
}

static void test_cancel_during_process_soft(void **state)
{
	(void)state;
	cancel_during_process(FL_SOFT, "dp-soft.lock");
}

static void test_cancel_during_process_unix(void **state)
{
	(void)state;
	cancel_during_process(FL_UNIX, "dp-unix.lock");
}

/* During: a second request on the same shared handle waits at the context
 * gate behind the first; cancelling it wakes it at once. */
static void test_cancel_at_gate(void **state)
{
	struct waiting_probe w = { .cancel = 0, .block = 1 };
	fl_lock *holder = open_lock("gate.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	fl_lock *lk = open_probed("gate.lock", FL_UNIX, 10.0, &w);
	fl_lock *free_lk = open_lock("gate-free.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	struct done d1 = { 0 }, d2 = { 0 }, d3 = { 0 };
	fl_async_req *r1, *r2;
	fl_async *ex;
	double t0;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 3), 0);
	assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d1, &r1), 0);
	probe_wait(&w);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d2, &r2), 0);
	/* r1's thread is held inside its cancel_check, so the shared context
	 * stays busy.  The queue is FIFO: once a later request completed, r2
	 * left the queue and runs, that is, waits at the context gate. */
	assert_int_equal(fl_acquire_async(ex, free_lk, FL_EXCLUSIVE, -1, on_done, &d3, NULL), 0);
	run_until(ex, &d3);
	assert_int_equal(d3.result, 0);
	assert_int_equal(fl_release(free_lk, 0), 0);
	t0 = fl_test_now();
	assert_int_equal(fl_async_cancel(r2), 0);
	assert_true(fl_test_now() - t0 < 2.0);
	run_until(ex, &d2);
	assert_int_equal(d2.result, -ECANCELED);
	assert_int_equal(d1.called, 0); /* r1 still waits */
	probe_go(&w);
	assert_int_equal(fl_async_cancel(r1), 0);
	assert_true(fl_test_now() - t0 < 2.0);
	run_until(ex, &d1);
	assert_int_equal(d1.result, -ECANCELED);
	assert_false(fl_is_locked(lk));
	assert_int_equal(fl_release(holder, 0), 0);
	assert_int_equal(try_in_child("gate.lock", FL_UNIX), 0);
	fl_async_free(ex);
	probe_close(&w);
	fl_close(holder);
	fl_close(lk);
	fl_close(free_lk);
}

/* After: the lock was obtained and the completion is ready but not yet
 * dispatched; cancel releases it before returning. */
static void cancel_after(enum fl_kind kind, const char *name)
{
	fl_lock *lk = open_lock(name, kind, 0, FL_SHARED_CONTEXT);
	struct done d = { 0 };
	fl_async_req *req;
	fl_async *ex;

	assert_int_equal(fl_async_new(&ex, 2), 0);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d, &req), 0);
	wait_readable(ex);
	assert_true(fl_is_locked(lk)); /* obtained, not yet reported */
	assert_int_equal(try_in_child(name, kind), 1);
	assert_int_equal(fl_async_cancel(req), 0);
	assert_false(fl_is_locked(lk));
	assert_int_equal(try_in_child(name, kind), 0);
	assert_int_equal(try_here(name, kind), 0);
	assert_int_equal(fl_async_dispatch(ex), 1);
	assert_int_equal(d.called, 1);
	assert_int_equal(d.result, -ECANCELED);
	fl_async_free(ex);
	fl_close(lk);
}

static void test_cancel_after_soft(void **state)
{
	(void)state;
	cancel_after(FL_SOFT, "after-soft.lock");
}

static void test_cancel_after_unix(void **state)
{
	(void)state;
	cancel_after(FL_UNIX, "after-unix.lock");
}

/* Cancels racing with every stage of a request (queued, waiting, granted,
 * done): whatever the stage, cancel returns 0, the callback reports
 * -ECANCELED and nothing stays held. */
static void test_cancel_storm(void **state)
{
	fl_lock *holder = open_lock("storm.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	fl_lock *lk[4];
	fl_async *ex;

	(void)state;
	for (int i = 0; i < 4; i++)
		lk[i] = open_lock("storm.lock", FL_UNIX, 0.001, FL_SHARED_CONTEXT);
	assert_int_equal(fl_async_new(&ex, 2), 0);
	for (int it = 0; it < 300; it++) {
		struct done d[4] = { { 0 } };
		fl_async_req *req[4];
		int n = 1 + it % 4, held = it % 3 == 0;

		if (held)
			assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(fl_acquire_async(ex, lk[i], FL_EXCLUSIVE, -1, on_done,
							  &d[i], &req[i]),
					 0);
		if (held && it % 2)
			assert_int_equal(fl_release(holder, 0), 0);
		for (int i = n - 1; i >= 0; i--)
			assert_int_equal(fl_async_cancel(req[i]), 0);
		if (held && !(it % 2))
			assert_int_equal(fl_release(holder, 0), 0);
		for (int i = 0; i < n; i++) {
			run_until(ex, &d[i]);
			assert_int_equal(d[i].result, -ECANCELED);
			assert_false(fl_is_locked(lk[i]));
		}
		assert_int_equal(fl_async_pending(ex), 0);
		assert_int_equal(try_here("storm.lock", FL_UNIX), 0);
	}
	fl_async_free(ex);
	for (int i = 0; i < 4; i++)
		fl_close(lk[i]);
	fl_close(holder);
}

/* Cancel from inside the request's own callback is too late. */
static int self_cancel_rc;
static fl_async_req *self_req;

static void self_cancel(fl_lock *lk, int result, void *arg)
{
	(void)lk;
	(void)arg;
	assert_int_equal(result, 0);
	self_cancel_rc = fl_async_cancel(self_req);
}

static void test_cancel_in_callback(void **state)
{
	fl_lock *lk = open_lock("selfc.lock", FL_SOFT, 0, FL_SHARED_CONTEXT);
	fl_async *ex;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 1), 0);
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, self_cancel, NULL, &self_req),
			 0);
	wait_readable(ex);
	assert_int_equal(fl_async_dispatch(ex), 1);
	assert_int_equal(self_cancel_rc, -EALREADY);
	assert_true(fl_is_locked(lk)); /* the callback owns it now */
	assert_int_equal(fl_release(lk, 0), 0);
	fl_async_free(ex);
	fl_close(lk);
}

/* fl_async_free cancels what is left: a waiter and an undelivered grant. */
static void test_free_cancels(void **state)
{
	struct waiting_probe w = { .cancel = 0 };
	fl_lock *holder = open_lock("free1.lock", FL_SOFT, 0, FL_SHARED_CONTEXT);
	fl_lock *a = open_probed("free1.lock", FL_SOFT, 10.0, &w);
	fl_lock *b = open_lock("free2.lock", FL_SOFT, 0, FL_SHARED_CONTEXT);
	struct done da = { 0 }, db = { 0 };
	fl_async *ex;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 2), 0);
	assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire_async(ex, a, FL_EXCLUSIVE, -1, on_done, &da, NULL), 0);
	probe_wait(&w);
	assert_int_equal(fl_acquire_async(ex, b, FL_EXCLUSIVE, -1, on_done, &db, NULL), 0);
	while (!fl_is_locked(b))
		wait_readable(ex); /* b's grant is ready (a's is not) */
	fl_async_free(ex);
	assert_int_equal(da.called, 1);
	assert_int_equal(da.result, -ECANCELED);
	assert_int_equal(db.called, 1);
	assert_int_equal(db.result, -ECANCELED);
	assert_false(fl_is_locked(b));
	assert_int_equal(try_here("free2.lock", FL_SOFT), 0);
	assert_int_equal(fl_release(holder, 0), 0);
	assert_int_equal(try_here("free1.lock", FL_SOFT), 0);
	probe_close(&w);
	fl_close(holder);
	fl_close(a);
	fl_close(b);
}

/* ---- the same codes as fl_acquire ---------------------------------------- */

static int always_cancel(void *arg)
{
	(void)arg;
	return 1;
}

static int async_code(fl_async *ex, fl_lock *lk, enum fl_mode mode, double timeout,
		      char *msg, size_t len)
{
	struct done d = { 0 };

	assert_int_equal(fl_acquire_async(ex, lk, mode, timeout, on_done, &d, NULL), 0);
	run_until(ex, &d);
	if (msg)
		snprintf(msg, len, "%s", d.msg);
	if (d.result == 0)
		assert_int_equal(fl_release(lk, 0), 0);
	return d.result;
}

static void same_codes(enum fl_kind kind, const char *name)
{
	fl_lock *holder = open_lock(name, kind, 0, FL_SHARED_CONTEXT);
	fl_lock *lk = open_lock(name, kind, 0.005, FL_SHARED_CONTEXT);
	fl_lock *nb = open_lock(name, kind, 0, FL_SHARED_CONTEXT | FL_NONBLOCK);
	struct fl_options o;
	fl_lock *cc;
	char p[512], msg[512];
	fl_async *ex;
	int sync;

	assert_int_equal(fl_async_new(&ex, 2), 0);
	fl_options_init(&o);
	o.flags = FL_SHARED_CONTEXT;
	o.poll_interval = 0.005;
	o.cancel_check = always_cancel;
	path_of(p, sizeof(p), name);
	assert_int_equal(fl_open(&cc, p, kind, &o), 0);

	assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
	/* Timeouts: finite, zero, FL_NONBLOCK, the handle's default. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.05), -ETIMEDOUT);
	assert_int_equal(async_code(ex, lk, FL_EXCLUSIVE, 0.05, msg, sizeof(msg)), -ETIMEDOUT);
	assert_non_null(strstr(msg, "timed out after 0.05s"));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(async_code(ex, lk, FL_EXCLUSIVE, 0, NULL, 0), -ETIMEDOUT);
	assert_int_equal(fl_acquire(nb, FL_EXCLUSIVE, -1), -ETIMEDOUT);
	assert_int_equal(async_code(ex, nb, FL_EXCLUSIVE, -1, NULL, 0), -ETIMEDOUT);
	/* cancel_check. */
	assert_int_equal(fl_acquire(cc, FL_EXCLUSIVE, 10), -ECANCELED);
	assert_int_equal(async_code(ex, cc, FL_EXCLUSIVE, 10, msg, sizeof(msg)), -ECANCELED);
	assert_non_null(strstr(msg, "cancel_check"));
	/* Waiting forever on a path this thread holds through another handle:
	 * fl_acquire reports the self-deadlock; the asynchronous acquire does
	 * not block this thread, so it waits (and here cancel_check stops it). */
	assert_int_equal(fl_acquire(cc, FL_EXCLUSIVE, -1), -EDEADLK);
	assert_int_equal(async_code(ex, cc, FL_EXCLUSIVE, -1, NULL, 0), -ECANCELED);
	assert_int_equal(fl_release(holder, 0), 0);

	/* Free lock, default timeout. */
	assert_int_equal(async_code(ex, lk, FL_EXCLUSIVE, FL_TIMEOUT_DEFAULT, NULL, 0), 0);
	/* Mode rules come back through the callback with fl_acquire's codes. */
	sync = fl_acquire(lk, FL_SHARED, 0);
	if (sync == 0)
		assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(async_code(ex, lk, FL_SHARED, 0, NULL, 0), sync);
	assert_int_equal(fl_acquire(lk, (enum fl_mode)7, 0), -EINVAL);
	assert_int_equal(async_code(ex, lk, (enum fl_mode)7, 0, NULL, 0), -EINVAL);
	if (sync == 0) {
		/* Held exclusive: a shared request is a mode change. */
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EDEADLK);
		{
			struct done d = { 0 };

			assert_int_equal(fl_acquire_async(ex, lk, FL_SHARED, 0, on_done, &d, NULL),
					 0);
			run_until(ex, &d);
			assert_int_equal(d.result, -EDEADLK);
		}
		assert_int_equal(fl_release(lk, 0), 0);
	} else {
		assert_int_equal(sync, -ENOTSUP);
	}
	fl_async_free(ex);
	fl_close(holder);
	fl_close(lk);
	fl_close(nb);
	fl_close(cc);
}

static void test_codes_soft(void **state)
{
	(void)state;
	same_codes(FL_SOFT, "codes-soft.lock");
}

static void test_codes_unix(void **state)
{
	(void)state;
	same_codes(FL_UNIX, "codes-unix.lock");
}

/* soft-rw keeps a pending writer's claim (P.write) across its attempts.  An
 * asynchronous writer that yields its thread between attempts keeps it: new
 * readers still wait (writer preference); a cancel withdraws it. */
static fl_lock *open_srw(const char *name, struct waiting_probe *w)
{
	struct fl_options o;
	char p[512];
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON; /* rw kinds: instance-wide, no flag needed */
	o.heartbeat_interval = 0.2;
	o.stale_threshold = 0.6;
	o.poll_interval = 0.01;
	if (w) {
		assert_int_equal(pipe(w->fd), 0);
		assert_int_equal(pipe(w->go), 0);
		w->told = 0;
		o.cancel_check = probe_check;
		o.cancel_arg = w;
	}
	path_of(p, sizeof(p), name);
	assert_int_equal(fl_open(&lk, p, FL_SOFT_RW, &o), 0);
	return lk;
}

/* Whether a writer holds or claims the soft-rw lock at path (1) or not (0). */
static unsigned srw_writers(const char *path)
{
	struct fl_holder h = { .size = sizeof(h) };
	struct fl_options o;

	fl_options_init(&o);
	o.heartbeat_interval = 0.2;
	o.stale_threshold = 0.6;
	o.poll_interval = 0.01;
	assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
	return h.writers;
}

static void test_softrw_writer_keeps_claim(void **state)
{
	struct waiting_probe w1 = { .cancel = 0 }, w2 = { .cancel = 0 };
	fl_lock *r1 = open_srw("srw.lock", NULL), *r2 = open_srw("srw.lock", NULL);
	fl_lock *wr = open_srw("srw.lock", &w1), *wr2 = open_srw("srw.lock", &w2);
	fl_lock *holder = open_lock("srw-other.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	fl_lock *other = open_lock("srw-other.lock", FL_UNIX, 0.01, FL_SHARED_CONTEXT);
	struct done dw = { 0 }, dw2 = { 0 }, dx = { 0 };
	fl_async_req *rw2, *rx;
	char path[600];
	fl_async *ex;

	(void)state;
	path_of(path, sizeof(path), "srw.lock");
	/* One pool thread shared by the writer and a request that waits
	 * forever elsewhere: the writer is suspended and resumed many times. */
	assert_int_equal(fl_async_new(&ex, 1), 0);
	assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire_async(ex, other, FL_EXCLUSIVE, -1, on_done, &dx, &rx), 0);
	assert_int_equal(fl_acquire(r1, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire_async(ex, wr, FL_EXCLUSIVE, -1, on_done, &dw, NULL), 0);
	probe_wait(&w1); /* a failed attempt: the claim is in place */
	assert_int_equal(srw_writers(path), 1);
	/* A new reader waits, also for longer than many writer turns. */
	assert_int_equal(fl_acquire(r2, FL_SHARED, 0), -ETIMEDOUT);
	assert_int_equal(fl_acquire(r2, FL_SHARED, 0.3), -ETIMEDOUT);
	assert_int_equal(srw_writers(path), 1);
	assert_int_equal(dw.called, 0);
	assert_int_equal(fl_release(r1, 0), 0);
	run_until(ex, &dw);
	assert_int_equal(dw.result, 0);
	assert_true(fl_is_locked(wr));
	assert_int_equal(fl_release(wr, 0), 0);

	/* Cancel a suspended writer: its claim goes, readers get in. */
	assert_int_equal(fl_acquire(r1, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire_async(ex, wr2, FL_EXCLUSIVE, -1, on_done, &dw2, &rw2), 0);
	probe_wait(&w2);
	assert_int_equal(fl_acquire(r2, FL_SHARED, 0), -ETIMEDOUT);
	assert_int_equal(fl_async_cancel(rw2), 0);
	assert_int_equal(srw_writers(path), 0);
	assert_int_equal(fl_acquire(r2, FL_SHARED, 0), 0);
	run_until(ex, &dw2);
	assert_int_equal(dw2.result, -ECANCELED);
	assert_false(fl_is_locked(wr2));
	assert_int_equal(fl_release(r2, 0), 0);
	assert_int_equal(fl_release(r1, 0), 0);

	assert_int_equal(fl_async_cancel(rx), 0);
	run_until(ex, &dx);
	assert_int_equal(dx.result, -ECANCELED);
	assert_int_equal(fl_release(holder, 0), 0);
	fl_async_free(ex);
	probe_close(&w1);
	probe_close(&w2);
	fl_close(r1);
	fl_close(r2);
	fl_close(wr);
	fl_close(wr2);
	fl_close(holder);
	fl_close(other);
}

/* rw (SQLite): waits inside SQLite in slices, is suspended between turns
 * (one pool thread, shared with a request that waits forever elsewhere),
 * and its write level belongs to the thread that made the request. */
static fl_lock *open_rw(const char *name, struct waiting_probe *w)
{
	struct fl_options o;
	char p[512];
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON;
	o.poll_interval = 0.01;
	if (w) {
		assert_int_equal(pipe(w->fd), 0);
		assert_int_equal(pipe(w->go), 0);
		w->told = 0;
		o.cancel_check = probe_check;
		o.cancel_arg = w;
	}
	path_of(p, sizeof(p), name);
	assert_int_equal(fl_open(&lk, p, FL_RW, &o), 0);
	return lk;
}

static void test_rw(void **state)
{
	struct waiting_probe w1 = { .cancel = 0 }, w2 = { .cancel = 0 };
	fl_lock *a = open_rw("rw.lock", NULL), *d = open_rw("rw.lock", NULL);
	fl_lock *b = open_rw("rw.lock", &w1), *b2 = open_rw("rw.lock", &w2);
	fl_lock *c1 = open_rw("rw.lock", NULL), *c2 = open_rw("rw.lock", NULL);
	fl_lock *holder = open_lock("rw-other.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	fl_lock *other = open_lock("rw-other.lock", FL_UNIX, 0.01, FL_SHARED_CONTEXT);
	struct done db = { 0 }, db2 = { 0 }, dc1 = { 0 }, dc2 = { 0 }, dx = { 0 }, dd = { 0 };
	fl_async_req *rb2, *rx, *rd;
	fl_async *ex;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 1), 0);
	assert_int_equal(fl_acquire(holder, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire_async(ex, other, FL_EXCLUSIVE, -1, on_done, &dx, &rx), 0);

	/* A waiting writer gets the lock when the holder leaves. */
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire_async(ex, b, FL_EXCLUSIVE, -1, on_done, &db, NULL), 0);
	probe_wait(&w1);
	assert_int_equal(fl_release(a, 0), 0);
	run_until(ex, &db);
	assert_int_equal(db.result, 0);
	assert_true(fl_is_locked(b));
	assert_int_equal(fl_acquire(d, FL_SHARED, 0), -ETIMEDOUT);
	assert_int_equal(fl_release(b, 0), 0); /* by the requesting thread */

	/* Cancel during the wait: nothing held afterwards. */
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire_async(ex, b2, FL_EXCLUSIVE, -1, on_done, &db2, &rb2), 0);
	probe_wait(&w2);
	assert_int_equal(fl_async_cancel(rb2), 0);
	assert_int_equal(fl_release(a, 0), 0);
	run_until(ex, &db2);
	assert_int_equal(db2.result, -ECANCELED);
	assert_false(fl_is_locked(b2));
	assert_int_equal(fl_acquire(d, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(d, 0), 0);

	/* Readers overlap. */
	assert_int_equal(fl_acquire_async(ex, c1, FL_SHARED, -1, on_done, &dc1, NULL), 0);
	assert_int_equal(fl_acquire_async(ex, c2, FL_SHARED, -1, on_done, &dc2, NULL), 0);
	run_until(ex, &dc1);
	run_until(ex, &dc2);
	assert_int_equal(dc1.result, 0);
	assert_int_equal(dc2.result, 0);
	assert_int_equal(fl_release(c1, 0), 0);
	assert_int_equal(fl_release(c2, 0), 0);

	/* Cancel after: obtained but not delivered. */
	assert_int_equal(fl_acquire_async(ex, d, FL_EXCLUSIVE, -1, on_done, &dd, &rd), 0);
	while (!fl_is_locked(d))
		wait_readable(ex);
	assert_int_equal(fl_async_cancel(rd), 0);
	assert_false(fl_is_locked(d));
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(a, 0), 0);
	run_until(ex, &dd);
	assert_int_equal(dd.result, -ECANCELED);

	assert_int_equal(fl_async_cancel(rx), 0);
	run_until(ex, &dx);
	assert_int_equal(fl_release(holder, 0), 0);
	fl_async_free(ex);
	probe_close(&w1);
	probe_close(&w2);
	fl_close(a);
	fl_close(b);
	fl_close(b2);
	fl_close(c1);
	fl_close(c2);
	fl_close(d);
	fl_close(holder);
	fl_close(other);
}

/* Every file-system kind built in (etcd needs a server): a free lock is
 * granted, a held one times out with -ETIMEDOUT, and a cancel while waiting
 * leaves it free for others. */
static void test_every_kind(void **state)
{
	fl_async *ex;
	int tested = 0;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 2), 0);
	for (int k = FL_FILE; k <= FL_SOFT_RW; k++) {
		struct waiting_probe w = { .cancel = 0 };
		struct fl_options o;
		struct done d1 = { 0 }, d2 = { 0 }, d3 = { 0 };
		fl_lock *a, *b;
		fl_async_req *req;
		char p[512];
		int r;

		fl_options_init(&o);
		o.flags = FL_SHARED_CONTEXT | FL_NO_SINGLETON;
		o.poll_interval = 0.01;
		snprintf(p, sizeof(p), "%s/every-%s.lock", tmpdir, fl_kind_name((enum fl_kind)k));
		r = fl_open(&a, p, (enum fl_kind)k, &o);
		if (r == -ENOTSUP)
			continue; /* not built in (rw without SQLite) */
		assert_int_equal(r, 0);
		assert_int_equal(pipe(w.fd), 0);
		assert_int_equal(pipe(w.go), 0);
		o.cancel_check = probe_check;
		o.cancel_arg = &w;
		assert_int_equal(fl_open(&b, p, (enum fl_kind)k, &o), 0);

		assert_int_equal(fl_acquire_async(ex, a, FL_EXCLUSIVE, -1, on_done, &d1, NULL), 0);
		run_until(ex, &d1);
		if (d1.result != 0)
			fail_msg("%s: %d %s", fl_kind_name((enum fl_kind)k), d1.result, d1.msg);
		assert_int_equal(fl_acquire_async(ex, b, FL_EXCLUSIVE, 0.05, on_done, &d2, NULL), 0);
		run_until(ex, &d2);
		assert_int_equal(d2.result, -ETIMEDOUT);
		w.told = 0;
		assert_int_equal(fl_acquire_async(ex, b, FL_EXCLUSIVE, -1, on_done, &d3, &req), 0);
		probe_wait(&w);
		assert_int_equal(fl_async_cancel(req), 0);
		run_until(ex, &d3);
		assert_int_equal(d3.result, -ECANCELED);
		assert_int_equal(fl_release(a, 0), 0);
		assert_false(fl_is_locked(b));
		assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(fl_release(a, 0), 0);
		fl_close(a);
		fl_close(b);
		probe_close(&w);
		tested++;
	}
	assert_true(tested >= 3);
	print_message("[ INFO     ] %d kinds tested\n", tested);
	fl_async_free(ex);
}

/* Executors do not survive fork: the child gets -ECHILD and may free it. */
static void test_fork_child(void **state)
{
	fl_lock *lk = open_lock("fork.lock", FL_SOFT, 0, FL_SHARED_CONTEXT);
	struct done d = { 0 };
	fl_async *ex;
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(fl_async_new(&ex, 2), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = 0;

		alarm(30);
		bad |= fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d, NULL) != -ECHILD;
		bad |= fl_async_dispatch(ex) != -ECHILD;
		fl_async_free(ex);
		_exit(bad);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The parent's executor still works. */
	assert_int_equal(fl_acquire_async(ex, lk, FL_EXCLUSIVE, -1, on_done, &d, NULL), 0);
	run_until(ex, &d);
	assert_int_equal(d.result, 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_async_free(ex);
	fl_close(lk);
}

/* A callback may start the next request (chained acquires). */
struct chain {
	fl_async *ex;
	fl_lock *lk;
	int left, ok;
};

static void chain_done(fl_lock *lk, int result, void *arg)
{
	struct chain *c = arg;

	if (result == 0 && fl_release(lk, 0) == 0)
		c->ok++;
	if (--c->left > 0)
		assert_int_equal(fl_acquire_async(c->ex, c->lk, FL_EXCLUSIVE, -1, chain_done, c,
						  NULL),
				 0);
}

static void test_chain(void **state)
{
	struct chain c = { .left = 50 };

	(void)state;
	assert_int_equal(fl_async_new(&c.ex, 2), 0);
	c.lk = open_lock("chain.lock", FL_UNIX, 0, FL_SHARED_CONTEXT);
	assert_int_equal(fl_acquire_async(c.ex, c.lk, FL_EXCLUSIVE, -1, chain_done, &c, NULL), 0);
	while (fl_async_pending(c.ex) > 0) {
		wait_readable(c.ex);
		assert_true(fl_async_dispatch(c.ex) >= 0);
	}
	assert_int_equal(c.ok, 50);
	fl_async_free(c.ex);
	fl_close(c.lk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_context_rule),
		T(test_poll_fd),
		T(test_many_soft),
		T(test_many_unix),
		T(test_no_starvation),
		T(test_cancel_queued),
		T(test_cancel_during_process_soft),
		T(test_cancel_during_process_unix),
		T(test_cancel_at_gate),
		T(test_cancel_after_soft),
		T(test_cancel_after_unix),
		T(test_cancel_storm),
		T(test_cancel_in_callback),
		T(test_free_cancels),
		T(test_codes_soft),
		T(test_codes_unix),
		T(test_softrw_writer_keeps_claim),
		T(test_rw),
		T(test_every_kind),
		T(test_fork_child),
		T(test_chain),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("async", tests, setup, teardown);
}
