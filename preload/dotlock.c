/* SPDX-License-Identifier: MIT */
/*
 * dotlock.c -- heartbeats for the dotlocks this process created.
 *
 * A dotlock (git's index.lock, procmail's, any O_CREAT|O_EXCL lock file) is
 * held for as long as its creator needs it: seconds or hours for a git
 * operation.  A `dotlock` rule with stale_threshold alone breaks a lock
 * file older than that, so a long live operation loses its lock; without
 * stale_threshold, a crashed host's lock file stays forever.  With
 * heartbeat_interval, the shim of the creating process keeps the file's
 * mtime fresh, so its age says how long its creator has been silent and
 * stale_threshold can be short:
 *  - hooks.c calls flp_dl_created() after an exclusive create succeeded on
 *    a path whose rule has a heartbeat; we remember the absolute path and
 *    the file's identity (dev, ino) and register a beat with the process's
 *    heartbeat thread (fl_shim_beat_start: lib/heartbeat.c's one thread);
 *  - each beat, under dl_mu, looks the name up in a descriptor of the
 *    directory (opened O_DIRECTORY|O_NOFOLLOW when the file was created, so
 *    nobody can redirect the touch by swapping a directory on the path)
 *    and, only while it is still the file we created, touches it
 *    (utimensat(NULL): the file server stamps its own time).  Gone or
 *    another inode: the beat stops for good;
 *  - before this process renames or unlinks a path (git renames index.lock
 *    onto index when it commits, and unlinks it when it aborts), hooks.c
 *    calls flp_dl_leaving(): an entry for that file is dropped under dl_mu
 *    first, so no beat can touch the file once it has moved (git's index
 *    must keep the mtime git gave it);
 *  - the beats end with the process (exit, crash, or exec, which replaces
 *    the image; the lock file then ages).  A fork child beats nothing: the
 *    file is its parent's.
 * Contenders (hooks.c through fl_shim_dotlock_break_stale) judge such a rule's files by the
 * ledger (lib/ledger.c): unchanged for stale_threshold by their own watch
 * or, at first sight, by the file server's clock, never by their wall
 * clock.  Transient errors (ESTALE, EIO) are retried at the next beat for
 * as long as the file is there.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fl-shim.h"
#include "flp.h"
#include "sys.h"

struct flp_dl {
	struct fl_shim_beat *beat; /* NULL: none (could not start)           */
	struct flp_dl *next;
	dev_t dev;
	ino_t ino;
	int dfd;         /* its directory                                     */
	int dead;        /* left, renamed or unlinked: never touch it again   */
	const char *name; /* final component (points into path)              */
	char path[];
};

static pthread_mutex_t dl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct flp_dl *dl_list;
atomic_int flp_dl_count;
static pthread_once_t dl_once = PTHREAD_ONCE_INIT;

static void dl_child(void)
{
	/* The parent's entries (and its heartbeat registry) are not ours; their
	 * directory descriptors stay open here (close-on-exec). */
	pthread_mutex_init(&dl_mu, NULL);
	dl_list = NULL;
	atomic_store(&flp_dl_count, 0);
}

static void dl_init(void)
{
	fl__atfork_child(dl_child);
}

static int dl_beat(void *arg)
{
	struct flp_dl *d = arg;
	struct stat st;
	int r = 0;

	pthread_mutex_lock(&dl_mu);
	if (d->dead)
		r = FL_COMPROMISE_MISSING;
	else if (fl__sys.fstatat(d->dfd, d->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		r = errno == ENOENT || errno == EBADF ? FL_COMPROMISE_MISSING : -errno;
	else if (st.st_dev != d->dev || st.st_ino != d->ino)
		r = FL_COMPROMISE_REPLACED;
	else if (fl__sys.utimensat(d->dfd, d->name, NULL, AT_SYMLINK_NOFOLLOW) != 0)
		r = errno == ENOENT ? FL_COMPROMISE_MISSING : -errno;
	if (r > 0)
		d->dead = 1;
	pthread_mutex_unlock(&dl_mu);
	return r;
}

/* Unlinks and frees the entries that are dead.  Called without dl_mu. */
static void dl_reap(void)
{
	struct flp_dl *gone = NULL, **pp, *d;

	pthread_mutex_lock(&dl_mu);
	for (pp = &dl_list; (d = *pp) != NULL;) {
		if (d->dead) {
			*pp = d->next;
			d->next = gone;
			gone = d;
			atomic_fetch_sub(&flp_dl_count, 1);
		} else {
			pp = &d->next;
		}
	}
	pthread_mutex_unlock(&dl_mu);
	while ((d = gone) != NULL) {
		gone = d->next;
		fl_shim_beat_stop(d->beat); /* returns once no beat of d runs */
		fl__sys.close(d->dfd);
		free(d);
	}
}

void flp_dl_created(const char *abs, dev_t dev, ino_t ino, double interval)
{
	size_t n = strlen(abs);
	const char *slash = strrchr(abs, '/');
	struct flp_dl *d;
	struct stat st;

	pthread_once(&dl_once, dl_init);
	dl_reap();
	if (slash == NULL)
		return; /* abs is absolute: cannot happen */
	d = calloc(1, sizeof(*d) + n + 1);
	if (d == NULL) {
		flp_log("%s: out of memory: this dotlock gets no heartbeat", abs);
		return;
	}
	memcpy(d->path, abs, n + 1);
	d->name = d->path + (slash - abs) + 1;
	d->path[slash - abs] = '\0';
	d->dfd = fl__sys.open(slash == abs ? "/" : d->path,
			      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	d->path[slash - abs] = '/';
	if (d->dfd < 0 || fl__sys.fstatat(d->dfd, d->name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    st.st_dev != dev || st.st_ino != ino) {
		/* Not where we created it (moved already, or a directory swapped). */
		if (d->dfd >= 0)
			fl__sys.close(d->dfd);
		free(d);
		return;
	}
	d->dev = dev;
	d->ino = ino;
	pthread_mutex_lock(&dl_mu);
	d->next = dl_list;
	dl_list = d;
	atomic_fetch_add(&flp_dl_count, 1);
	/* Started under dl_mu, so the entry has its handle before a reap can
	 * see it dead; the beat itself runs later on the heartbeat thread.
	 * Transient errors: keep trying while the file is ours. */
	d->beat = fl_shim_beat_start(interval, 1e9, dl_beat, d);
	if (d->beat == NULL)
		d->dead = 1;
	pthread_mutex_unlock(&dl_mu);
	if (d->beat == NULL) {
		flp_log("%s: cannot start the heartbeat thread: this dotlock gets no heartbeat",
			abs);
		return;
	}
	FLP_TRACE("%s: created under a dotlock rule; refreshing it every %g s", abs, interval);
}

void flp_dl_leaving(int dirfd, const char *path)
{
	struct stat st;
	struct flp_dl *d;
	int e = errno;

	pthread_mutex_lock(&dl_mu);
	if (fl__sys.fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		for (d = dl_list; d != NULL; d = d->next) {
			if (d->dev == st.st_dev && d->ino == st.st_ino)
				d->dead = 1;
		}
	}
	pthread_mutex_unlock(&dl_mu);
	dl_reap(); /* also those whose beat found them gone or replaced */
	errno = e;
}
