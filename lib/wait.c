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
 * Fork.  A child inherits the parent's instance (the same queue): the
 * cache remembers the process that created it, and a child makes its own.
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
#include <sys/stat.h>
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

	if (wd >= 0)
		fl__inotify_drain(ifd);
	return wd;
}

void fl__inotify_unwatch(int ifd, int wd)
{
	if (wd >= 0)
		inotify_rm_watch(ifd, wd);
}

int fl__inotify_poll_match(int ifd, double until,
			   int (*match)(void *arg, int wd, uint32_t mask, const char *name),
			   void *arg)
{
	for (;;) {
		char buf[4096] __attribute__((aligned(8)));
		double left = until - fl__now_mono();
		struct pollfd pfd = { .fd = ifd, .events = POLLIN };
		ssize_t n;

		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0)
			continue; /* timeout (the loop ends) or EINTR */
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
