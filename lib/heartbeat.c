/* SPDX-License-Identifier: MIT */
/*
 * heartbeat.c -- the one heartbeat thread of a process.
 *
 * Kinds whose markers expire unless refreshed (soft-rw, lease) register a
 * struct fl_hb per held marker.  One thread serves all of them, however many
 * there are: Python starts a thread per lock, which at ten thousand held
 * locks means ten thousand threads; we keep one.
 *
 * Schedule.  Registered beats sit on one circular doubly-linked list ordered
 * by due time (CLOCK_MONOTONIC).  The thread sleeps on a condition variable
 * bound to CLOCK_MONOTONIC until the head is due, runs it, and moves it to
 * its next due time.  Insertion walks from the tail, because a new or
 * re-armed beat is almost always due last (every marker of a kind shares one
 * interval), so add, remove and each beat cost O(1) in the common case; only
 * mixed intervals make an insertion walk over the beats due later.
 *
 * A beat runs with no mutex held: it does file I/O that may take long on a
 * sick NFS server.  While it runs the entry stays on the list with `running`
 * set, so fl__hb_remove can wait for it: once remove returns, the thread will
 * never touch that entry again and the caller may free it.  A remove called
 * from the heartbeat thread itself (an on_compromise callback that releases
 * the lock) does not wait for itself.
 *
 * Failures.  A negative return of beat is transient (ESTALE, EIO: NFS
 * hiccups); it is retried at the next interval.  Once the failures have run
 * unbroken for `give_up` seconds the lock counts as lost
 * (FL_COMPROMISE_REFRESH_FAILED): by then peers may have evicted the marker.
 * A positive return is a loss the backend proved (marker gone or replaced).
 * Either way the entry leaves the list and fl__compromise runs on this thread.
 *
 * Lifetime.  The thread starts on the first registration.  When the list
 * empties it lingers for HB_LINGER seconds (so that a loop of short holds
 * does not create a thread per hold) and then exits; it is detached, so
 * nothing joins it.  It runs with every signal blocked: signal handlers of
 * the program belong to the program's threads.
 *
 * Fork.  Only the forking thread survives in the child, and the parent's
 * markers are the parent's to refresh, so the child starts with an empty
 * registry and no thread.  A prepare handler takes the registry mutex so that
 * the child inherits a consistent list, which it then unhooks entry by entry
 * (their owners in the child only ever drop them).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "fl-internal.h"

#define HB_LINGER 1.0 /* seconds the idle thread waits for new work before exiting */

static pthread_once_t hb_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t hb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hb_wake; /* the thread waits here (CLOCK_MONOTONIC)   */
static pthread_cond_t hb_done; /* removers wait here for a running beat    */
static struct fl_hb hb_list;   /* sentinel of the circular due-ordered list */
static unsigned hb_count;      /* entries on the list                        */
static int hb_thread_on;       /* the thread exists (or is being created)    */
static pthread_t hb_thread;
static struct fl_hb *hb_current; /* the entry whose beat or compromise runs */
static atomic_int hb_inited;

static void hb_cond_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hb_wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&hb_done, NULL);
}

static void hb_prepare(void)
{
	pthread_mutex_lock(&hb_mu);
}

static void hb_parent(void)
{
	pthread_mutex_unlock(&hb_mu);
}

/* In a fork child: forget every registration; the list was consistent
 * because the prepare handler held the mutex across fork(). */
static void hb_child(void)
{
	struct fl_hb *p = hb_list.next;

	while (p != NULL && p != &hb_list) {
		struct fl_hb *n = p->next;
		p->next = p->prev = NULL;
		p->running = 0;
		p = n;
	}
	if (hb_current != NULL)
		hb_current->running = 0;
	hb_current = NULL;
	hb_list.next = hb_list.prev = &hb_list;
	hb_count = 0;
	hb_thread_on = 0;
	hb_cond_init();
	/* The prepare handler ran in the forking thread, our only thread now. */
	pthread_mutex_unlock(&hb_mu);
}

static void hb_init(void)
{
	hb_list.next = hb_list.prev = &hb_list;
	hb_cond_init();
	pthread_atfork(hb_prepare, hb_parent, NULL);
	fl__atfork_child(hb_child);
	atomic_store(&hb_inited, 1);
}

static int hb_listed(const struct fl_hb *hb)
{
	return hb->next != NULL;
}

static void hb_unlink(struct fl_hb *hb)
{
	hb->prev->next = hb->next;
	hb->next->prev = hb->prev;
	hb->next = hb->prev = NULL;
	hb_count--;
}

/* Inserts hb by due time, walking from the tail (see the essay).  Entries
 * with equal due times keep their registration order. */
static void hb_insert(struct fl_hb *hb)
{
	struct fl_hb *p = hb_list.prev;

	while (p != &hb_list && p->due > hb->due)
		p = p->prev;
	hb->prev = p;
	hb->next = p->next;
	p->next->prev = hb;
	p->next = hb;
	hb_count++;
}

static void hb_timedwait(pthread_cond_t *cv, double until)
{
	struct timespec ts;

	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec < 0)
		ts.tv_nsec = 0;
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	pthread_cond_timedwait(cv, &hb_mu, &ts);
}

/* The lock of hb is safe until `since` + valid_for (see struct fl_hb). */
static void hb_extend(struct fl_hb *hb, double since)
{
	if (hb->h != NULL && hb->valid_for > 0)
		atomic_store(&hb->h->valid_until_ns, (int64_t)((since + hb->valid_for) * 1e9));
}

/* When the thread will wake up by itself (guarded by hb_mu); a new beat due
 * earlier than this needs a signal, any other does not. */
static double hb_sleep_until;

static void *hb_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hb_mu);
	for (;;) {
		struct fl_hb *hb;
		double now = fl__now_mono();
		int r;

		if (hb_list.next == &hb_list) {
			double until = now + HB_LINGER;

			hb_sleep_until = until;
			while (hb_list.next == &hb_list && fl__now_mono() < until)
				hb_timedwait(&hb_wake, until);
			if (hb_list.next == &hb_list)
				break;
			continue;
		}
		hb = hb_list.next;
		if (hb->due > now) {
			hb_sleep_until = hb->due;
			hb_timedwait(&hb_wake, hb->due);
			continue;
		}
		hb_sleep_until = 0; /* busy: it looks at the list again before sleeping */
		hb->running = 1;
		hb_current = hb;
		pthread_mutex_unlock(&hb_mu);

		r = hb->beat(hb);

		pthread_mutex_lock(&hb_mu);
		if (r == 0)
			hb_extend(hb, now); /* `now` is from before the refresh: conservative */
		now = fl__now_mono();
		if (r == 0) {
			hb->failing_since = 0;
		} else if (r < 0) {
			if (hb->failing_since == 0)
				hb->failing_since = now > 0 ? now : 1e-9;
			if (now - hb->failing_since >= hb->give_up)
				r = FL_COMPROMISE_REFRESH_FAILED;
		}
		if (r > 0 && hb_listed(hb)) {
			/* Lost for good: stop beating it, then tell its owner.  The
			 * entry stays `running` until the callback returned, so a
			 * concurrent fl__hb_remove waits and the hold outlives us. */
			hb_unlink(hb);
			pthread_mutex_unlock(&hb_mu);
			fl__compromise(hb->h, r);
			pthread_mutex_lock(&hb_mu);
		} else if (hb_listed(hb)) {
			double next = hb->due + hb->interval;

			if (next <= now) /* we fell behind (a stopped process): no burst */
				next = now + hb->interval;
			hb_unlink(hb);
			hb->due = next;
			hb_insert(hb);
		}
		hb->running = 0;
		hb_current = NULL;
		pthread_cond_broadcast(&hb_done);
	}
	hb_thread_on = 0;
	pthread_mutex_unlock(&hb_mu);
	return NULL;
}

/* Starts the detached thread with every signal blocked.  Caller holds hb_mu. */
static int hb_start(void)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int r;

	r = pthread_attr_init(&attr);
	if (r != 0)
		return -r;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Beats need little stack; ten thousand locks still use one thread. */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&hb_thread, &attr, hb_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return -r;
#ifdef __GLIBC__
	/* Safe: the thread cannot exit before we drop hb_mu. */
	pthread_setname_np(hb_thread, "fl-heartbeat");
#endif
	hb_thread_on = 1;
	return 0;
}

int fl__hb_add(struct fl_hb *hb)
{
	int r = 0;

	if (hb == NULL || hb->beat == NULL || !(hb->interval > 0) || !isfinite(hb->interval))
		return -EINVAL;
	pthread_once(&hb_once, hb_init);
	pthread_mutex_lock(&hb_mu);
	if (hb_listed(hb)) {
		pthread_mutex_unlock(&hb_mu);
		return -EALREADY;
	}
	hb->due = fl__now_mono() + hb->interval;
	hb_extend(hb, hb->due - hb->interval);
	hb->failing_since = 0;
	hb->running = 0;
	hb_insert(hb);
	if (!hb_thread_on) {
		r = hb_start();
		if (r != 0)
			hb_unlink(hb);
	} else if (hb->due < hb_sleep_until) {
		pthread_cond_signal(&hb_wake); /* it sleeps until later than we are due */
	}
	pthread_mutex_unlock(&hb_mu);
	return r;
}

void fl__hb_remove(struct fl_hb *hb)
{
	if (hb == NULL || !atomic_load(&hb_inited))
		return;
	pthread_mutex_lock(&hb_mu);
	if (hb_listed(hb))
		hb_unlink(hb);
	/* A removal from inside the beat's own callback must not wait for itself. */
	if (!(hb_thread_on && pthread_equal(pthread_self(), hb_thread))) {
		while (hb->running)
			pthread_cond_wait(&hb_done, &hb_mu);
	}
	pthread_mutex_unlock(&hb_mu);
}

void fl__compromise(struct fl_hold *h, int reason)
{
	int expected = 0;
	struct fl_lock *lk;

	if (h == NULL || reason <= 0)
		return;
	/* Report a loss once, however many paths notice it. */
	if (!atomic_compare_exchange_strong(&h->compromised, &expected, reason))
		return;
	lk = h->lk;
	if (lk != NULL && lk->opt.on_compromise != NULL)
		lk->opt.on_compromise(lk, reason, lk->opt.compromise_arg);
}
