/* SPDX-License-Identifier: MIT */
/*
 * shim.c -- the entry points of fl-shim.h that are not plain library
 * functions: accessors, so that the preload shim depends on no struct of
 * lib/, and the wait engine for the locks the shim keeps itself (a kernel
 * flock it polls, byte-range owner files).
 *
 * Compiled into the shim only.  Including fl-internal.h and fl-shim.h
 * together makes the compiler check that both declare the same functions.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

#include "fl-internal.h"
/* Declared twice on purpose: a mismatch is an error, the repeat is not. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wredundant-decls"
#include "fl-shim.h"
#pragma GCC diagnostic pop

/* ---- accessors ------------------------------------------------------------ */

double fl_shim_poll_interval(const fl_lock *lk)
{
	if (lk == NULL)
		return 0.05;
	return lk->opt.poll_interval > 0 ? lk->opt.poll_interval : lk->be->default_poll;
}

double fl_shim_silent_for(const char *key, int dirfd, const char *name, const struct stat *st)
{
	struct fl_seen seen;

	fl__seen_of(&seen, st);
	return fl__ledger_silent(key, dirfd, name, &seen);
}

/* 1 when the dotlock m (read from path) was left by a holder that is gone,
 * or stayed unchanged stale_threshold seconds. */
static int fl__dotlock_stale(const char *path, const struct fl_marker *m, double stale_threshold,
			     int refreshed)
{
	struct fl_p1 p1;
	long long pid;
	size_t n = 0;

	if (!m->malformed && m->regular) {
		if (fl__p1_parse(m->buf, m->len, &p1) == 0) {
			if (fl__owner_is_stale(p1.pid, p1.host, p1.token))
				return 1;
		} else {
			while (n < m->len && m->buf[n] != '\n')
				n++;
			if (n > 0 && fl__parse_ll(m->buf, n, &pid) == 0 && pid > 0 &&
			    pid <= INT_MAX && fl__pid_alive((pid_t)pid) == 0)
				return 1;
		}
	}
	if (stale_threshold <= 0)
		return 0;
	if (refreshed) {
		/* Refreshed by its creator's shim: silent for the threshold by
		 * our watch or the server's clock, not by ours. */
		struct fl_seen seen = { m->dev, m->ino, m->mtime, -1, 0 };
		return fl__ledger_silent(path, AT_FDCWD, path, &seen) >= stale_threshold;
	}
	return fl__now_wall() - m->mtime >= stale_threshold;
}

int fl_shim_dotlock_break_stale(const char *path, double stale_threshold, int refreshed)
{
	struct fl_marker m;

	if (fl__marker_read(AT_FDCWD, path, &m) != 0 || !m.exists)
		return 0;
	return fl__dotlock_stale(path, &m, stale_threshold, refreshed) &&
	       fl__break_file(path, &m) == 0;
}

/* ---- heartbeats ------------------------------------------------------------ */

struct fl_shim_beat {
	struct fl_hb hb; /* first: the heartbeat hands us back this pointer */
	int (*beat)(void *arg);
	void *arg;
};

static int fl__shim_beat(struct fl_hb *hb)
{
	struct fl_shim_beat *b = (struct fl_shim_beat *)(void *)hb;

	return b->beat(b->arg);
}

struct fl_shim_beat *fl_shim_beat_start(double interval, double give_up, int (*beat)(void *arg),
					void *arg)
{
	struct fl_shim_beat *b = calloc(1, sizeof(*b));
	int r;

	if (b == NULL)
		return NULL;
	b->hb.interval = interval;
	b->hb.give_up = give_up;
	b->hb.beat = fl__shim_beat;
	b->beat = beat;
	b->arg = arg;
	r = fl__hb_add(&b->hb);
	if (r != 0) {
		free(b);
		errno = -r;
		return NULL;
	}
	return b;
}

void fl_shim_beat_stop(struct fl_shim_beat *b)
{
	if (b == NULL)
		return;
	fl__hb_remove(&b->hb);
	free(b);
}

/* ---- waits ------------------------------------------------------------------ */

static void fl__intr_of(struct fl__wait_intr *wi, const struct fl_shim_signals *sig)
{
	wi->mask = sig->mask;
	wi->ended = sig->ended;
	wi->arg = sig->arg;
	wi->depth = sig->depth;
	wi->fired = 0;
}

int fl_shim_acquire(fl_lock *lk, enum fl_mode mode, double timeout,
		    const struct fl_shim_signals *sig)
{
	struct fl__wait_intr wi;
	int r;

	if (sig == NULL)
		return fl_acquire(lk, mode, timeout);
	fl__intr_of(&wi, sig);
	fl__wait_intr_set(&wi);
	r = fl_acquire(lk, mode, timeout);
	fl__wait_intr_set(NULL);
	return r;
}

struct fl__shim_match {
	const struct fl_shim_wait *w;
	int wd;
};

static int fl__shim_match(void *arg, int wd, uint32_t mask, const char *name)
{
	const struct fl__shim_match *m = arg;
	const struct fl_shim_wait *w = m->w;

	if (wd != m->wd)
		return 0;
	if (mask & (IN_DELETE_SELF | IN_MOVE_SELF))
		return 1;
	if (w->name != NULL)
		return strcmp(name, w->name) == 0;
	if (name[0] == '.')
		return 0; /* hidden names are private scratch files */
	return w->wakes == NULL || name[0] == '\0' || w->wakes(w->arg, name);
}

/*
 * One sleep of fl_shim_wait_for, until `until` or an event of the watch.
 * The signal hooks are registered only while sleeping: an attempt may wait
 * itself (the byte-range directory mutex) with its own.  Returns 1 when an
 * event woke it, 0 otherwise, -EINTR when a handler ended the wait.
 */
static int fl__shim_sleep(const struct fl_shim_wait *w, int ifd, int wd, double until)
{
	struct fl__wait_intr wi;
	int woke = 0, fired;

	if (w->sig) {
		fl__intr_of(&wi, w->sig);
		fl__wait_intr_set(&wi);
	}
	if (wd >= 0) {
		struct fl__shim_match m = { w, wd };
		woke = fl__inotify_poll_match(ifd, until, fl__shim_match, &m);
	} else {
		fl__wait_sleep_until(until);
	}
	fired = fl__wait_intr_fired();
	if (w->sig)
		fl__wait_intr_set(NULL);
	return fired ? -EINTR : woke;
}

/*
 * The watch of the wait this thread is in, if any.  An attempt may wait
 * itself (the byte-range directory mutex, in the directory the F_SETLKW
 * waiter watches).  One inotify instance has one watch per inode: a nested
 * wait adding and removing its own would remove the outer one.  So a
 * nested wait on the same path, for events the outer watch reports, reads
 * the outer watch; the events it consumes came before its attempt's work,
 * which therefore already saw what they report.
 */
static __thread struct fl__shim_active {
	const char *path;
	uint32_t mask;
	int ifd, wd;
} fl__shim_active = { NULL, 0, -1, -1 };

/* Sets up w's watch (reusing the thread's active one when it can). */
static void fl__shim_watch(const struct fl_shim_wait *w, uint32_t mask, int *ifd, int *wd,
			   int *own)
{
	const struct fl__shim_active *a = &fl__shim_active;

	if (a->path != NULL && a->wd >= 0 && strcmp(a->path, w->watch) == 0 &&
	    (a->mask & mask) == mask) {
		*ifd = a->ifd;
		*wd = a->wd;
		return;
	}
	if ((*ifd = fl__inotify_get()) < 0)
		return;
	*wd = fl__inotify_watch(*ifd, w->watch, mask);
	if (*wd < 0)
		return;
	*own = 1;
	fl__shim_active.path = w->watch;
	fl__shim_active.mask = mask;
	fl__shim_active.ifd = *ifd;
	fl__shim_active.wd = *wd;
}

int fl_shim_wait_for(const struct fl_shim_wait *w)
{
	struct fl__shim_active saved = fl__shim_active;
	double first = w->first > 0 ? w->first : 0.0005;
	double pause = first, cap = w->poll > first ? w->poll : first;
	int ifd = -1, wd = -1, own = 0, watched = w->watch == NULL, r;

	for (;;) {
		double now, until;

		r = w->attempt(w->arg);
		if (r != -EAGAIN)
			break;
		/* Watched after the first failed try (a lock that is free
		 * costs no watch), and tried again before any sleep: a release
		 * between a try and the sleep is then an event already queued
		 * when the sleep starts. */
		if (!watched) {
			watched = 1;
			fl__shim_watch(w, w->mask | IN_DELETE_SELF | IN_MOVE_SELF, &ifd, &wd,
				       &own);
			continue;
		}
		now = fl__now_mono();
		if (now >= w->deadline) {
			r = -ETIMEDOUT;
			break;
		}
		until = now + pause < w->deadline ? now + pause : w->deadline;
		r = fl__shim_sleep(w, ifd, wd, until);
		if (r < 0)
			break;
		/* Quick again right after a change; backing off while nothing
		 * happens (a holder on another host, or one that unlocks
		 * without the event we watch). */
		pause = r ? first : (pause * 2 < cap ? pause * 2 : cap);
	}
	if (own)
		fl__inotify_unwatch(ifd, wd);
	fl__shim_active = saved;
	return r;
}
