/* SPDX-License-Identifier: MIT */
/*
 * dotlock.c -- dotlock rules: breaking a stale dotlock when an exclusive
 * create finds one (the open hooks call flp_open_dotlock), and heartbeats
 * for the dotlocks this process created.
 *
 * A dotlock (git's index.lock, procmail's, any O_CREAT|O_EXCL lock file) is
 * held for as long as its creator needs it: seconds or hours for a git
 * operation.  A `dotlock` rule with stale_threshold alone breaks a lock
 * file older than that, so a long live operation loses its lock; without
 * stale_threshold, a crashed host's lock file stays forever.  With
 * heartbeat_interval, the shim of the creating process keeps the file's
 * mtime fresh, so its age says how long its creator has been silent and
 * stale_threshold can be short:
 *  - flp_dotlock_created() (below) calls flp_dl_created() after an
 *    exclusive create succeeded on a path whose rule has a heartbeat; we
 *    remember the absolute path and the file's identity (dev, ino) and
 *    register a beat with the process's heartbeat thread
 *    (fl_shim_beat_start: lib/heartbeat.c's one thread);
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
 * Contenders (flp_dotlock_recover below, through the library's
 * fl_shim_dotlock_break_stale) judge such a rule's files by the ledger
 * (lib/ledger.c): unchanged for stale_threshold by their own watch
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
#include "flp-real.h"
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

/* ---- the open side: recovering and registering dotlocks ---------------- */

/* The absolute normalised path that (dirfd, path) names, lexically. */
static int flp_abs_path(int dirfd, const char *path, char *out, size_t cap)
{
	char base[4096], joined[8192];

	if (path[0] == '/')
		return flp_normalize(path, out, cap);
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return -errno;
	} else if (flp_fd_path(dirfd, base, sizeof(base)) < 0) {
		return -EBADF;
	}
	if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", base, path) >= sizeof(joined))
		return -ENAMETOOLONG;
	return flp_normalize(joined, out, cap);
}

/* After EEXIST from an exclusive create: 1 when a stale dotlock was broken
 * (the caller retries once), 0 otherwise.  errno is preserved. */
int flp_dotlock_recover(int dirfd, const char *path)
{
	char abs[4096];
	const struct flp_rule *rule;
	int e = errno, broke = 0;

	if (flp_needs_init() || flp_pol.n == 0)
		return 0;
	flp_depth++;
	if (flp_abs_path(dirfd, path, abs, sizeof(abs)) == 0 &&
	    (rule = flp_policy_match(&flp_pol, abs)) != NULL && rule->kind == FLP_DOTLOCK &&
	    fl_shim_dotlock_break_stale(abs, rule->stale_threshold,
					rule->heartbeat_interval > 0)) {
		FLP_TRACE("open(%s, O_EXCL): recovered a stale dotlock (policy line %d)", abs,
			  rule->line);
		broke = 1;
	}
	flp_depth--;
	errno = e;
	return broke;
}

/* After an exclusive create made fd: under a dotlock rule with a heartbeat,
 * keep the new file fresh for as long as it is ours (dotlock.c). */
void flp_dotlock_created(int dirfd, const char *path, int fd)
{
	static atomic_int any = -1; /* a dotlock rule has a heartbeat (the policy is immutable) */
	char abs[4096];
	const struct flp_rule *rule;
	struct stat st;
	int e = errno, v;

	if (flp_needs_init() || flp_pol.n == 0)
		return;
	v = atomic_load_explicit(&any, memory_order_relaxed);
	if (v < 0) {
		v = 0;
		for (size_t i = 0; i < flp_pol.n; i++)
			if (flp_pol.rules[i].kind == FLP_DOTLOCK &&
			    flp_pol.rules[i].heartbeat_interval > 0)
				v = 1;
		atomic_store_explicit(&any, v, memory_order_relaxed);
	}
	if (!v)
		return;
	flp_depth++;
	if (flp_abs_path(dirfd, path, abs, sizeof(abs)) == 0 &&
	    (rule = flp_policy_match(&flp_pol, abs)) != NULL && rule->kind == FLP_DOTLOCK &&
	    rule->heartbeat_interval > 0 && fl__sys.fstat(fd, &st) == 0)
		flp_dl_created(abs, st.st_dev, st.st_ino, rule->heartbeat_interval);
	flp_depth--;
	errno = e;
}

int flp_open_dotlock(int dirfd, const char *path, int flags, mode_t mode, int fd)
{
	if (fd < 0 && errno == EEXIST && flp_dotlock_recover(dirfd, path))
		fd = real_openat(dirfd, path, flags, mode);
	if (fd >= 0)
		flp_dotlock_created(dirfd, path, fd);
	return fd;
}
