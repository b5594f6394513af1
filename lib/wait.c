/* SPDX-License-Identifier: MIT */
/*
 * wait.c -- the notification side of waiting: one inotify instance per
 * thread, kept for the thread's life.
 *
 * Why cached.  Closing an inotify instance waits for an SRCU grace period
 * in the kernel (fsnotify_destroy_group), several milliseconds on a busy
 * machine; a waiter that created and closed an instance around every sleep
 * paid that after each wake-up, before its next attempt, and that was most
 * of the 6-14 ms a soft, lease or strict hand-off took.  Removing a watch is
 * cheap (the mark is freed later by a kernel worker), so each wait adds a
 * watch, drains what earlier waits left queued, and removes the watch when
 * done; the instance itself is closed only when the thread exits.
 *
 * The shim runs this code inside other programs, which may close every
 * descriptor they do not know: the cache checks that its descriptor still
 * names the instance it made before each use.
 *
 * Signals.  The preload shim must end a wait when a signal handler runs
 * (as the kernel's blocking flock does without SA_RESTART).  It registers
 * a struct fl__wait_intr for the thread: every sleep of a wait then uses
 * ppoll with the shim's signal mask, asks the shim whether a handler that
 * ends waits ran, and the front end's wait loop returns -EINTR.
 *
 * Fork.  A child inherits the parent's instance (the same queue): the
 * cache remembers the process that created it, and a child makes its own.
 *
 * A watch that outlives its wait.  A unix waiter that won leaves its watch
 * in place (fl__inotify_linger) so that removing it is not on the hand-off
 * path; it goes at the holder's release, at the thread's next watch, or
 * with the instance: one per thread at most, and only ever removed through
 * the instance that made it (a fork child never touches the parent's).
 *
 * The adaptive step.  Releases on other NFS clients raise no event, so a
 * marker kind's wait is also bounded by fl__adapt_until: 1 ms after the
 * watched path was seen to change (a new holder, who may be brief),
 * doubling up to the poll interval while it does not.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fl-internal.h"

static pthread_key_t fl__ino_key;
static pthread_once_t fl__ino_once = PTHREAD_ONCE_INIT;
static int fl__ino_key_ok;

struct fl__ino {
	int fd;
	pid_t pid;
	dev_t dev; /* what fd named when we made it */
	ino_t ino;
};

static __thread struct fl__ino fl__ino_tls = { -1, 0, 0, 0 };

/* The watch a won wait left in place (fl__inotify_linger), or -1. */
static __thread int fl__linger_wd = -1;

static void fl__ino_destroy(void *p)
{
	struct fl__ino *c = p;

	if (c != NULL && c->fd >= 0 && c->pid == fl__pid())
		fl__sys.close(c->fd);
	if (c != NULL)
		c->fd = -1;
}

static void fl__ino_init(void)
{
	fl__ino_key_ok = pthread_key_create(&fl__ino_key, fl__ino_destroy) == 0;
}

/* c->fd still names the instance this process made (the program may have
 * closed it and reused the number). */
static int fl__ino_ours(const struct fl__ino *c)
{
	struct stat st;

	return c->fd >= 0 && c->pid == fl__pid() && fl__sys.fstat(c->fd, &st) == 0 &&
	       st.st_dev == c->dev && st.st_ino == c->ino;
}

int fl__inotify_get(void)
{
	struct fl__ino *c = &fl__ino_tls;

	pthread_once(&fl__ino_once, fl__ino_init);
	struct stat st;

	if (c->fd >= 0 && c->pid != fl__pid()) {
		fl__sys.close(c->fd); /* the parent's: closing our copy is cheap */
		c->fd = -1;
	}
	/* The program (the shim runs inside others) may have closed our
	 * descriptor and reused its number: then forget it, never close it. */
	if (c->fd >= 0 && (fl__sys.fstat(c->fd, &st) != 0 || st.st_dev != c->dev ||
			   st.st_ino != c->ino))
		c->fd = -1;
	if (c->fd < 0) {
		if (!fl__ino_key_ok)
			return -1; /* no destructor: do not leak one per thread */
		fl__linger_wd = -1; /* it lived in the instance we forgot */
		c->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (c->fd < 0)
			return -1;
		if (fl__sys.fstat(c->fd, &st) != 0) {
			fl__sys.close(c->fd);
			c->fd = -1;
			return -1;
		}
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		c->pid = fl__pid();
		pthread_setspecific(fl__ino_key, c);
	}
	return c->fd;
}

void fl__inotify_drain(int ifd)
{
	char buf[4096] __attribute__((aligned(8)));

	while (fl__sys.read(ifd, buf, sizeof(buf)) > 0)
		;
}

int fl__inotify_watch(int ifd, const char *path, uint32_t mask)
{
	int wd = inotify_add_watch(ifd, path, mask);

	if (fl__linger_wd >= 0 && ifd == fl__ino_tls.fd) {
		/* Adding a watch on the same inode gave its descriptor back:
		 * this wait owns it now.  Otherwise one lingering watch at most. */
		if (fl__linger_wd != wd)
			inotify_rm_watch(ifd, fl__linger_wd);
		fl__linger_wd = -1;
	}
	if (wd >= 0)
		fl__inotify_drain(ifd);
	return wd;
}

void fl__inotify_linger(int ifd, int wd)
{
	if (wd < 0 || ifd != fl__ino_tls.fd) {
		fl__inotify_unwatch(ifd, wd);
		return;
	}
	if (fl__linger_wd >= 0 && fl__linger_wd != wd)
		inotify_rm_watch(ifd, fl__linger_wd);
	fl__linger_wd = wd;
}

void fl__inotify_unlinger(void)
{
	int wd = fl__linger_wd;

	if (wd < 0)
		return;
	fl__linger_wd = -1;
	if (fl__ino_ours(&fl__ino_tls))
		inotify_rm_watch(fl__ino_tls.fd, wd);
}

void fl__inotify_unwatch(int ifd, int wd)
{
	if (wd >= 0)
		inotify_rm_watch(ifd, wd);
}

/* ---- waits a signal handler may end (the preload shim) ------------------ */

static __thread struct fl__wait_intr *fl__intr;

void fl__wait_intr_set(struct fl__wait_intr *wi)
{
	if (wi != NULL)
		wi->fired = 0;
	fl__intr = wi;
}

/* 1 when the thread's wait was ended by a signal handler (now or before). */
static int fl__intr_check(int eintr)
{
	struct fl__wait_intr *wi = fl__intr;

	if (wi == NULL)
		return 0;
	if (!wi->fired && wi->ended(wi->arg, eintr))
		wi->fired = 1;
	return wi->fired;
}

int fl__wait_intr_fired(void)
{
	return fl__intr != NULL && fl__intr->fired;
}

/* poll(2) of at most one descriptor until `until`, with the signal mask of
 * a registered signal-aware wait.  Returns poll's result; 0 also when a
 * handler ended the wait (fl__intr_check then says so). */
static int fl__wait_poll(struct pollfd *pfd, int nfds, double until)
{
	struct fl__wait_intr *wi = fl__intr;
	double left = until - fl__now_mono();
	struct timespec ts;
	int r;

	if (left <= 0)
		return 0;
	if (wi == NULL)
		return poll(pfd, (nfds_t)nfds, (int)(left * 1000) + 1);
	if (fl__intr_check(0))
		return 0;
	ts.tv_sec = (time_t)left;
	ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
	if (wi->depth)
		(*wi->depth)--; /* a handler may call hooked functions */
	r = ppoll(pfd, (nfds_t)nfds, &ts, wi->mask);
	if (wi->depth)
		(*wi->depth)++;
	if (r < 0 && errno == EINTR && fl__intr_check(1))
		return 0;
	return r;
}

void fl__wait_sleep_until(double until)
{
	if (fl__intr == NULL) {
		fl__sleep_until(until);
		return;
	}
	while (fl__now_mono() < until && !fl__intr_check(0))
		fl__wait_poll(NULL, 0, until);
}

int fl__inotify_ready(int ifd, double until)
{
	struct pollfd pfd = { .fd = ifd, .events = POLLIN };

	while (fl__now_mono() < until && !fl__wait_intr_fired()) {
		int r = fl__wait_poll(&pfd, 1, until);

		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
	return 0;
}

uint32_t fl__inotify_take(int ifd, int wd)
{
	uint32_t seen = 0;
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n;

	while ((n = fl__sys.read(ifd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			struct inotify_event ev;

			memcpy(&ev, buf + off, sizeof(ev));
			off += (ssize_t)(sizeof(ev) + ev.len);
			if (ev.mask & IN_Q_OVERFLOW)
				seen |= IN_Q_OVERFLOW; /* events were lost */
			else if (ev.wd == wd && !(ev.mask & IN_IGNORED))
				seen |= ev.mask;
		}
	}
	return seen;
}

int fl__inotify_poll_match(int ifd, double until,
			   int (*match)(void *arg, int wd, uint32_t mask, const char *name),
			   void *arg)
{
	for (;;) {
		char buf[4096] __attribute__((aligned(8)));
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		ssize_t n;

		if (until - fl__now_mono() <= 0 || fl__wait_intr_fired())
			return 0;
		if (fl__wait_poll(&pfd, 1, until) <= 0)
			continue; /* timeout or a handler (the loop ends), or EINTR */
		n = fl__sys.read(ifd, buf, sizeof(buf));
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			struct inotify_event ev;
			char name[NAME_MAX + 1] = "";

			memcpy(&ev, buf + off, sizeof(ev));
			if (ev.len > 0 && off + (ssize_t)(sizeof(ev) + ev.len) <= n)
				snprintf(name, sizeof(name), "%.*s", (int)ev.len, buf + off + sizeof(ev));
			off += (ssize_t)(sizeof(ev) + ev.len);
			if (ev.mask & IN_Q_OVERFLOW)
				return 1; /* events were lost: look again */
			if (ev.mask & IN_IGNORED)
				continue;
			if (match(arg, ev.wd, ev.mask, name))
				return 1;
		}
	}
}

struct fl__one_watch {
	int wd;
	const char *name;
};

static int fl__one_match(void *arg, int wd, uint32_t mask, const char *name)
{
	const struct fl__one_watch *w = arg;

	if (wd != w->wd)
		return 0;
	if (mask & (IN_DELETE_SELF | IN_MOVE_SELF))
		return 1;
	if (w->name == NULL)
		return name[0] != '.'; /* hidden names are private scratch files */
	return strcmp(name, w->name) == 0;
}

int fl__inotify_poll(int ifd, int wd, double until, const char *name)
{
	struct fl__one_watch w = { wd, name };

	return fl__inotify_poll_match(ifd, until, fl__one_match, &w);
}

/* ---- the adaptive poll step -------------------------------------------- */

static uint64_t fl__adapt_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

double fl__adapt_until(struct fl_hold *h, const char *path, double poll, double until)
{
	double now = fl__now_mono(), t;
	uint64_t tag = 1;
	struct stat st;

	if (fl__sys.lstat(path, &st) == 0) {
		tag = fl__adapt_mix(tag, (uint64_t)st.st_ino);
		tag = fl__adapt_mix(tag, (uint64_t)st.st_size);
		tag = fl__adapt_mix(tag, (uint64_t)st.st_mtim.tv_sec * 1000000000ULL +
						 (uint64_t)st.st_mtim.tv_nsec);
		tag = fl__adapt_mix(tag, (uint64_t)st.st_ctim.tv_sec * 1000000000ULL +
						 (uint64_t)st.st_ctim.tv_nsec);
	}
	if (tag != h->adapt_tag || h->adapt_step <= 0) {
		/* Something moved (or the first wait): the lock may move again soon. */
		h->adapt_tag = tag;
		h->adapt_step = FL__ADAPT_QUICK;
		h->adapt_next = 0;
	}
	if (h->adapt_next <= now) {
		h->adapt_next = now + h->adapt_step;
		h->adapt_step = h->adapt_step * 2 < poll ? h->adapt_step * 2 : poll;
	}
	t = h->adapt_next;
	return t < until ? t : until;
}
