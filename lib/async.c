/* SPDX-License-Identifier: MIT */
/*
 * async.c -- asynchronous acquire for every kind (fl_async, fl_acquire_async).
 *
 * Design.  An acquire may wait for as long as its timeout, and most kinds
 * wait by polling a file system, so it cannot run on an event loop's thread.
 * An executor keeps a fixed pool of threads and runs the ordinary front end
 * (fl__acquire_as, the body of fl_acquire) on them, with a hook that names
 * the thread the request was made for, the time it was made, and how to
 * notice a cancel.  The finished request goes to a completion list and the
 * executor's notification descriptor (an eventfd; a pipe where there is
 * none) becomes readable.  The loop thread calls fl_async_dispatch(), which
 * runs callbacks on that thread, so callback code never races with the loop.
 * Nothing here knows how any kind locks: every kind gets the asynchronous
 * acquire as soon as its backend exists.
 *
 * Sharing the pool.  A waiting request does not keep its thread: between two
 * attempts the front end calls the hook's pause (asy_pause), which yields
 * whenever other requests want a thread (a new one is queued, or a parked
 * one is due): the front end suspends the acquisition (its context stays
 * busy and the backend's state across attempts intact, nothing is held) and
 * returns FL__YIELDED; the request is parked until its next attempt is due,
 * when a pool thread resumes it.  A request that finds its shared context
 * busy (another request of the same handle) is parked too, never blocked.  Otherwise the thread waits in place until the next attempt,
 * waking early for a cancel or for new work (within ASY_SLICE on kinds with
 * their own wait method).  So a few threads serve any number of waiting requests, each
 * polled at its poll_interval, and a request that waits forever on a lock
 * held elsewhere never starves the others.
 *
 * Contexts.  A lock taken by a pool thread belongs to whichever context that
 * thread acquires for.  With thread-local contexts that would be the pool
 * thread's own, which the caller can neither see nor release, so we require
 * a shared context (FL_SHARED_CONTEXT, or the instance-wide rw kinds), as
 * Python's asyncio locks require thread_local=False with run_in_executor.
 * The hook's `owner` is the submitting thread, so the write level of an rw
 * kind and the deadlock registry entry are that thread's, exactly as if it
 * had called fl_acquire() itself.
 *
 * Request states, all guarded by ex->mu:
 *
 *     QUEUED --a pool thread takes it--> RUNNING --acquire returns--> DONE
 *     RUNNING --yielded--> PARKED --due, a pool thread takes it--> RUNNING
 *     QUEUED, PARKED --cancel--> DONE(-ECANCELED)
 *     DONE --fl_async_dispatch--> DELIVERING (callback runs) --> freed
 *
 * Cancel.  A queued request holds nothing: a cancel completes it at once.  A
 * parked one is resumed on the canceller's thread, where the front end makes
 * one attempt (a backend's wait may already have obtained the lock), then
 * sees the cancel and abandons the suspended acquisition.  For
 * a running one the cancel sets req->cancelled (atomic, read by the hook
 * without ex->mu), wakes the pool (ex->work_cv, where an in-place sleep
 * waits), then waits until the request is DONE.  The front end stops after the attempt in progress, or
 * within ASY_SLICE on a kind with its own wait method (inotify).  If the acquire had succeeded, the cancel releases that one level
 * itself, before returning, so "cancel returned 0" means nothing is held for
 * the request.  The pool thread never releases: only the canceller knows
 * whether anyone still wants the lock.
 *
 * Readiness.  The first completion after a drain writes the eventfd once
 * (`signalled` avoids a write per completion); dispatch first drains the
 * descriptor and clears `signalled`, then pops completions, so a completion
 * that arrives after the drain signals again and none is left unseen.
 *
 * Downsides.  An asynchronous wait never blocks in the kernel, because a
 * kernel wait (blocking flock) could not be cancelled or shared; the
 * front end's wait loop waits with the backend's own wait method (inotify:
 * the same wake-ups as fl_acquire) in slices the pause hands out, and only while no other request wants the thread; a parked
 * request is tried again at its poll interval.  Executors do not
 * survive fork: in the child fl_acquire_async() and fl_async_dispatch()
 * return -ECHILD.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "fl-internal.h"

#define ASY_DEFAULT_THREADS 4u
#define ASY_MAX_THREADS 64u

enum asy_state { ASY_QUEUED, ASY_RUNNING, ASY_PARKED, ASY_DONE, ASY_DELIVERING };

struct fl_async_req {
	struct fl_async_req *next;
	struct fl_async *ex;
	fl_lock *lk;
	enum fl_mode mode;
	double timeout;      /* resolved: < 0 forever, 0 one try                */
	double start;        /* CLOCK_MONOTONIC of fl_acquire_async()            */
	double due;          /* PARKED: CLOCK_MONOTONIC of the next attempt      */
	uint64_t owner;      /* the submitting thread (fl__thread_uid)           */
	struct fl__acq_hook hook; /* kept across turns: a yielded acquisition    */
	fl_async_cb cb;
	void *arg;
	enum asy_state state;
	atomic_int cancelled;
	int result;
	char msg[FL__ERRLEN]; /* fl_errmsg() of a failure, for the callback      */
};

/* A singly linked FIFO. */
struct asy_list {
	struct fl_async_req *head, *tail;
};

struct fl_async {
	pthread_mutex_t mu;
	pthread_cond_t work_cv;  /* idle pool threads and in-place sleeps wait here */
	pthread_cond_t done_cv;  /* cancellers wait for RUNNING -> DONE           */
	struct asy_list queue;   /* QUEUED                                         */
	struct asy_list parked;  /* PARKED, in order of `due`                     */
	struct asy_list running; /* RUNNING                                        */
	struct asy_list done;    /* DONE, waiting for dispatch                     */
	unsigned pending;        /* requests whose callback has not run            */
	int stopping;            /* fl_async_free() began                          */
	int signalled;           /* the descriptor has been written, not drained   */
	int rfd, wfd;            /* eventfd twice, or a pipe's two ends            */
	pid_t pid;
	unsigned nthreads;
	pthread_t threads[];
};

/* ---- lists ------------------------------------------------------------ */

static void asy_push(struct asy_list *l, struct fl_async_req *r)
{
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static struct fl_async_req *asy_pop(struct asy_list *l)
{
	struct fl_async_req *r = l->head;

	if (r) {
		l->head = r->next;
		if (l->head == NULL)
			l->tail = NULL;
		r->next = NULL;
	}
	return r;
}

static int asy_remove(struct asy_list *l, struct fl_async_req *r)
{
	struct fl_async_req *prev = NULL;

	for (struct fl_async_req *p = l->head; p; prev = p, p = p->next) {
		if (p != r)
			continue;
		if (prev)
			prev->next = p->next;
		else
			l->head = p->next;
		if (l->tail == p)
			l->tail = prev;
		p->next = NULL;
		return 1;
	}
	return 0;
}

/* Inserts r into ex->parked in order of due (usually at the tail: every
 * request of one kind parks for the same poll_interval).  Returns 1 when r
 * became the head. */
static int asy_park(struct fl_async *ex, struct fl_async_req *r)
{
	struct asy_list *l = &ex->parked;
	struct fl_async_req **pp;

	r->state = ASY_PARKED;
	if (l->tail == NULL || l->tail->due <= r->due) {
		asy_push(l, r);
		return l->head == r;
	}
	for (pp = &l->head; *pp && (*pp)->due <= r->due; pp = &(*pp)->next)
		;
	r->next = *pp;
	*pp = r;
	return l->head == r;
}

/* Work waits for a pool thread: a queued request, or a parked one that is
 * due.  Caller holds ex->mu. */
static int asy_work_ready(const struct fl_async *ex, double now)
{
	return ex->queue.head != NULL || (ex->parked.head != NULL && ex->parked.head->due <= now);
}

/* pthread_cond_timedwait on CLOCK_MONOTONIC seconds (INFINITY = forever). */
static void asy_wait(pthread_cond_t *cv, pthread_mutex_t *mu, double until)
{
	struct timespec ts;

	if (isinf(until)) {
		pthread_cond_wait(cv, mu);
		return;
	}
	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- notification descriptor -------------------------------------------- */

/* Caller holds ex->mu.  The descriptors are not file-system I/O and are
 * never hooked by the shim, so plain read/write is right here. */
static void asy_signal(struct fl_async *ex)
{
	uint64_t one = 1;
	ssize_t n;

	if (ex->signalled)
		return;
	ex->signalled = 1;
	do
		n = write(ex->wfd, &one, ex->rfd == ex->wfd ? sizeof(one) : 1);
	while (n < 0 && errno == EINTR);
	/* EAGAIN: a full pipe is readable already. */
}

static void asy_drain(struct fl_async *ex)
{
	char buf[64];
	ssize_t n;

	do
		n = read(ex->rfd, buf, ex->rfd == ex->wfd ? sizeof(uint64_t) : sizeof(buf));
	while (n > 0 ? ex->rfd != ex->wfd : (n < 0 && errno == EINTR));
}

/* Moves r to DONE.  Caller holds ex->mu. */
static void asy_complete(struct fl_async *ex, struct fl_async_req *r)
{
	if (r->state == ASY_RUNNING)
		asy_remove(&ex->running, r);
	r->state = ASY_DONE;
	asy_signal(ex);
	asy_push(&ex->done, r);
	pthread_cond_broadcast(&ex->done_cv);
}

/* ---- the hook ------------------------------------------------------------ */

static int asy_cancelled(void *arg)
{
	struct fl_async_req *r = arg;

	return atomic_load(&r->cancelled);
}

/* Gives the thread back when r is cancelled or other work wants it.
 * Caller holds ex->mu. */
static int asy_yield_locked(struct fl_async *ex, struct fl_async_req *r, double now)
{
	return atomic_load(&r->cancelled) || asy_work_ready(ex, now);
}

/*
 * The hook's pause between two attempts of r: returns 1 to yield (cancelled,
 * or other work wants this thread), 0 once it is time for the next attempt.
 * A kind without a wait method sleeps on ex->work_cv, which a cancel, new
 * work and a new earliest parked request all signal.  A kind with one (an
 * inotify wait) cannot be woken from outside, so the front end's wait loop
 * waits with it (the same wake paths as fl_acquire) in slices of ASY_SLICE
 * (FL__PAUSE_WAIT), calling here in between; a slice that ends early means
 * the lock may have become free, and the wait loop tries at once.
 */
#define ASY_SLICE 0.05

static int asy_pause(void *arg, double until, double *slice)
{
	struct fl_async_req *r = arg;
	struct fl_async *ex = r->ex;
	struct fl_lock *lk = r->lk;
	int y = 0;

	pthread_mutex_lock(&ex->mu);
	for (;;) {
		double now = fl__now_mono(), t = until;

		if (now >= until)
			break;
		if ((y = asy_yield_locked(ex, r, now)) != 0)
			break;
		if (fl__be_now(lk)->wait) {
			*slice = t > now + ASY_SLICE ? now + ASY_SLICE : t;
			y = FL__PAUSE_WAIT;
			break;
		}
		if (ex->parked.head && ex->parked.head->due < t)
			t = ex->parked.head->due;
		asy_wait(&ex->work_cv, &ex->mu, t);
	}
	pthread_mutex_unlock(&ex->mu);
	return y;
}

/* ---- pool threads -------------------------------------------------------- */

/* One turn of r (on a pool thread, or on a canceller's); returns the
 * acquire's result or FL__YIELDED (then r->hook.until is the next turn). */
static int asy_run(struct fl_async_req *r)
{
	int res;

	/* Cancelled before it began: nothing to undo.  A suspended acquisition
	 * is resumed even when cancelled, so that the front end abandons it. */
	if (atomic_load(&r->cancelled) && r->hook.suspended == NULL)
		res = fl__errf(r->lk, -ECANCELED, "%s: asynchronous acquire cancelled",
			       fl_path(r->lk));
	else
		res = fl__acquire_as(r->lk, r->mode, r->timeout, &r->hook);
	if (res == FL__YIELDED)
		return res;
	r->result = res;
	if (res != 0)
		snprintf(r->msg, sizeof(r->msg), "%s", fl_errmsg(r->lk));
	return res;
}

static void asy_set_cancelled(struct fl_async_req *r)
{
	r->result = -ECANCELED;
	snprintf(r->msg, sizeof(r->msg), "%s: asynchronous acquire cancelled [%s]", r->lk->path,
		 fl__kind_tag(r->lk));
}

static void *asy_worker(void *arg)
{
	struct fl_async *ex = arg;
	struct fl_async_req *r;

	pthread_mutex_lock(&ex->mu);
	for (;;) {
		double now = fl__now_mono();

		if (ex->queue.head != NULL) {
			r = asy_pop(&ex->queue);
		} else if (ex->parked.head != NULL && ex->parked.head->due <= now) {
			r = asy_pop(&ex->parked);
		} else if (ex->stopping && ex->parked.head == NULL) {
			break;
		} else {
			asy_wait(&ex->work_cv, &ex->mu,
				 ex->parked.head ? ex->parked.head->due : INFINITY);
			continue;
		}
		r->state = ASY_RUNNING;
		asy_push(&ex->running, r);
		pthread_mutex_unlock(&ex->mu);
		int res = asy_run(r);
		pthread_mutex_lock(&ex->mu);
		/* Checked under ex->mu, where cancels set the flag: a canceller
		 * waiting for this RUNNING request never sees it parked. */
		while (res == FL__YIELDED && atomic_load(&r->cancelled)) {
			pthread_mutex_unlock(&ex->mu);
			res = asy_run(r); /* resumed to be abandoned (or obtained) */
			pthread_mutex_lock(&ex->mu);
		}
		if (res != FL__YIELDED) {
			asy_complete(ex, r);
		} else {
			asy_remove(&ex->running, r);
			r->due = r->hook.until;
			/* A new earliest due time: idle threads recompute theirs. */
			if (asy_park(ex, r))
				pthread_cond_broadcast(&ex->work_cv);
		}
	}
	pthread_mutex_unlock(&ex->mu);
	return NULL;
}

/* ---- public entry points ------------------------------------------------- */

static int asy_open_fds(struct fl_async *ex)
{
#ifdef EFD_CLOEXEC
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd >= 0) {
		ex->rfd = ex->wfd = fd;
		return 0;
	}
	if (errno != ENOSYS && errno != EINVAL)
		return -errno;
#endif
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		return -errno;
	ex->rfd = p[0];
	ex->wfd = p[1];
	return 0;
}

static void asy_close_fds(struct fl_async *ex)
{
	if (ex->wfd != ex->rfd && ex->wfd >= 0)
		close(ex->wfd);
	if (ex->rfd >= 0)
		close(ex->rfd);
}

/* Stops and joins the first n threads.  Nothing may be queued. */
static void asy_stop(struct fl_async *ex, unsigned n)
{
	pthread_mutex_lock(&ex->mu);
	ex->stopping = 1;
	pthread_cond_broadcast(&ex->work_cv);
	pthread_mutex_unlock(&ex->mu);
	for (unsigned i = 0; i < n; i++)
		pthread_join(ex->threads[i], NULL);
}

static void asy_destroy(struct fl_async *ex)
{
	asy_close_fds(ex);
	pthread_mutex_destroy(&ex->mu);
	pthread_cond_destroy(&ex->work_cv);
	pthread_cond_destroy(&ex->done_cv);
	free(ex);
}

FL_EXPORT int fl_async_new(fl_async **out, unsigned nthreads)
{
	struct fl_async *ex;
	sigset_t all, old;
	int r = 0;
	unsigned i;

	fl__err_clear();
	if (out == NULL)
		return fl__errf(NULL, -EINVAL, "fl_async_new: out is NULL");
	*out = NULL;
	if (nthreads == 0)
		nthreads = ASY_DEFAULT_THREADS;
	if (nthreads > ASY_MAX_THREADS)
		return fl__errf(NULL, -EINVAL, "fl_async_new: %u threads asked, at most %u",
				nthreads, ASY_MAX_THREADS);
	ex = calloc(1, sizeof(*ex) + nthreads * sizeof(ex->threads[0]));
	if (ex == NULL)
		return fl__errf(NULL, -ENOMEM, "fl_async_new: out of memory");
	ex->rfd = ex->wfd = -1;
	ex->pid = fl__pid();
	ex->nthreads = nthreads;
	pthread_mutex_init(&ex->mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ex->work_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&ex->done_cv, NULL);
	r = asy_open_fds(ex);
	if (r != 0) {
		fl__err(NULL, r, "eventfd", NULL);
		asy_destroy(ex);
		return r;
	}
	/* Pool threads inherit this mask: signals go to the caller's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		int e = pthread_create(&ex->threads[i], NULL, asy_worker, ex);
		if (e != 0) {
			r = fl__errf(NULL, -e, "fl_async_new: pthread_create: %s", strerror(e));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		asy_stop(ex, i);
		asy_destroy(ex);
		return r;
	}
	*out = ex;
	return 0;
}

FL_EXPORT int fl_async_fd(const fl_async *ex)
{
	return ex ? ex->rfd : -EINVAL;
}

FL_EXPORT unsigned fl_async_pending(const fl_async *ex)
{
	struct fl_async *m = (struct fl_async *)(uintptr_t)ex;
	unsigned n;

	if (ex == NULL)
		return 0;
	pthread_mutex_lock(&m->mu);
	n = m->pending;
	pthread_mutex_unlock(&m->mu);
	return n;
}

FL_EXPORT int fl_acquire_async(fl_async *ex, fl_lock *lk, enum fl_mode mode, double timeout,
			       fl_async_cb cb, void *arg, fl_async_req **req)
{
	struct fl_async_req *r;

	fl__err_clear();
	if (req)
		*req = NULL;
	if (ex == NULL || lk == NULL || cb == NULL)
		return fl__errf(lk, -EINVAL, "fl_acquire_async: %s is NULL",
				ex == NULL ? "executor" : lk == NULL ? "lock" : "callback");
	if (ex->pid != fl__pid())
		return fl__errf(lk, -ECHILD,
				"fl_acquire_async: executor was inherited across fork; "
				"create a new one in the child");
	if (lk->pid != fl__pid())
		return fl__errf(lk, -ECHILD,
				"%s: handle was inherited across fork; open a new one in the child",
				lk->path);
	if (!fl__shared_ctx(lk))
		return fl__errf(lk, -EINVAL,
				"%s: asynchronous acquire is not supported with thread-local "
				"contexts (the lock would be held by a pool thread); open "
				"the handle with FL_SHARED_CONTEXT",
				lk->path);
	timeout = fl__acquire_timeout(lk, timeout);
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return fl__errf(lk, -ENOMEM, "fl_acquire_async: out of memory");
	r->ex = ex;
	r->lk = lk;
	r->mode = mode;
	r->timeout = timeout;
	r->start = fl__now_mono();
	r->owner = fl__thread_uid();
	r->hook.owner = r->owner;
	r->hook.start = r->start;
	r->hook.cancelled = asy_cancelled;
	r->hook.pause = asy_pause;
	r->hook.arg = r;
	r->cb = cb;
	r->arg = arg;
	r->state = ASY_QUEUED;
	atomic_init(&r->cancelled, 0);
	pthread_mutex_lock(&ex->mu);
	if (ex->stopping) {
		pthread_mutex_unlock(&ex->mu);
		free(r);
		return fl__errf(lk, -ESHUTDOWN, "fl_acquire_async: the executor is being freed");
	}
	ex->pending++;
	asy_push(&ex->queue, r);
	/* Idle threads take it; threads sleeping between attempts yield. */
	pthread_cond_broadcast(&ex->work_cv);
	/* Published: from here the request may complete at any time. */
	if (req)
		*req = r;
	pthread_mutex_unlock(&ex->mu);
	return 0;
}

/* Cancels r; see the essay.  Caller holds ex->mu; it is held again on return. */
static int asy_cancel_locked(struct fl_async *ex, struct fl_async_req *r)
{
	if (r->state == ASY_DELIVERING || atomic_load(&r->cancelled))
		return -EALREADY;
	atomic_store(&r->cancelled, 1);
	for (;;) {
		switch (r->state) {
		case ASY_QUEUED:
			/* Holds nothing: complete it now. */
			asy_remove(&ex->queue, r);
			asy_set_cancelled(r);
			asy_complete(ex, r);
			return 0;
		case ASY_PARKED:
			asy_remove(&ex->parked, r);
			if (r->hook.suspended == NULL) {
				asy_set_cancelled(r);
				asy_complete(ex, r);
				return 0;
			}
			/* A suspended acquisition: resume it here so that the
			 * front end abandons it (or obtains it: released below). */
			r->state = ASY_RUNNING;
			asy_push(&ex->running, r);
			pthread_mutex_unlock(&ex->mu);
			asy_run(r);
			pthread_mutex_lock(&ex->mu);
			asy_complete(ex, r);
			continue;
		case ASY_RUNNING:
			pthread_cond_broadcast(&ex->work_cv); /* ends an in-place sleep */
			pthread_cond_wait(&ex->done_cv, &ex->mu);
			continue;
		case ASY_DONE:
			break;
		case ASY_DELIVERING:
			return -EALREADY; /* not reached: the caller serialises */
		}
		break;
	}
	/* DONE.  Dispatch cannot deliver it meanwhile: the caller serialises
	 * fl_async_cancel with fl_async_dispatch. */
	if (r->result == 0) {
		int e;

		pthread_mutex_unlock(&ex->mu);
		e = fl__release_as(r->lk, 0, r->owner);
		pthread_mutex_lock(&ex->mu);
		if (e != 0)
			return e; /* still held: the callback reports 0 */
	}
	asy_set_cancelled(r);
	return 0;
}

FL_EXPORT int fl_async_cancel(fl_async_req *req)
{
	struct fl_async *ex;
	int r;

	fl__err_clear();
	if (req == NULL)
		return fl__errf(NULL, -EINVAL, "fl_async_cancel: request is NULL");
	ex = req->ex;
	pthread_mutex_lock(&ex->mu);
	r = asy_cancel_locked(ex, req);
	pthread_mutex_unlock(&ex->mu);
	/* A failed release left its own message (call, path, kind). */
	return r;
}

/* Runs r's callback on the calling thread and frees r. */
static void asy_deliver(struct fl_async *ex, struct fl_async_req *r)
{
	if (r->result != 0)
		fl__err_restore(r->lk, r->result, r->msg);
	else
		fl__err_clear();
	r->cb(r->lk, r->result, r->arg);
	pthread_mutex_lock(&ex->mu);
	ex->pending--;
	pthread_mutex_unlock(&ex->mu);
	free(r);
}

FL_EXPORT int fl_async_dispatch(fl_async *ex)
{
	struct fl_async_req *r;
	int n = 0, budget;

	if (ex == NULL)
		return -EINVAL;
	if (ex->pid != fl__pid())
		return -ECHILD;
	pthread_mutex_lock(&ex->mu);
	/* Drain first: a completion after this signals again (see the essay). */
	if (ex->signalled) {
		asy_drain(ex);
		ex->signalled = 0;
	}
	/* Only what is ready now, so that callbacks that start new requests
	 * which complete at once cannot keep us here forever. */
	budget = 0;
	for (r = ex->done.head; r; r = r->next)
		budget++;
	while (n < budget && (r = asy_pop(&ex->done)) != NULL) {
		r->state = ASY_DELIVERING;
		pthread_mutex_unlock(&ex->mu);
		asy_deliver(ex, r);
		n++;
		pthread_mutex_lock(&ex->mu);
	}
	if (ex->done.head != NULL)
		asy_signal(ex); /* left for the next round */
	pthread_mutex_unlock(&ex->mu);
	return n;
}

FL_EXPORT void fl_async_free(fl_async *ex)
{
	struct fl_async_req *r;

	if (ex == NULL)
		return;
	if (ex->pid != fl__pid()) {
		/* Fork child: the pool and the requests' waits exist only in the
		 * parent; free what is ours without touching locks. */
		while ((r = asy_pop(&ex->queue)) != NULL || (r = asy_pop(&ex->parked)) != NULL ||
		       (r = asy_pop(&ex->running)) != NULL || (r = asy_pop(&ex->done)) != NULL)
			free(r);
		asy_close_fds(ex);
		free(ex);
		return;
	}
	pthread_mutex_lock(&ex->mu);
	ex->stopping = 1;
	pthread_cond_broadcast(&ex->work_cv);
	/* Cancel what is queued or parked, then what runs (each cancel waits
	 * for its request to finish; a running one may park meanwhile), then
	 * what is done and not yet delivered.  Nothing new can be queued. */
	for (;;) {
		if ((r = ex->queue.head) != NULL || (r = ex->parked.head) != NULL)
			asy_cancel_locked(ex, r);
		else if ((r = ex->running.head) == NULL)
			break;
		else if (atomic_load(&r->cancelled))
			pthread_cond_wait(&ex->done_cv, &ex->mu);
		else
			asy_cancel_locked(ex, r);
	}
	for (;;) {
		struct fl_async_req *todo = NULL;

		for (r = ex->done.head; r; r = r->next)
			if (!atomic_load(&r->cancelled))
				todo = r;
		if (todo == NULL)
			break;
		asy_cancel_locked(ex, todo);
	}
	pthread_mutex_unlock(&ex->mu);
	for (unsigned i = 0; i < ex->nthreads; i++)
		pthread_join(ex->threads[i], NULL);
	while (fl_async_dispatch(ex) > 0)
		;
	asy_destroy(ex);
}
