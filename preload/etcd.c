/* SPDX-License-Identifier: MIT */
/*
 * etcd.c -- policy rules of kind etcd: flock(2) on a matching file takes an
 * etcd lock (lib/backend-etcd.c) instead of a marker on a shared filesystem.
 *
 * Why the full library is loaded at run time.  The shim compiles its own
 * copy of the core without the kinds that need external libraries
 * (FL_NO_EXTERNAL_KINDS), because it is preloaded into every program a
 * policy covers and must not map libcurl, json-c, OpenSSL or SQLite into
 * them: their constructors, threads and symbols would then run in programs
 * that never asked for them.  So a policy without etcd rules costs exactly
 * what it cost before.  The first lock call on an etcd rule dlopen()s the
 * installed libfilelock (RTLD_LOCAL: its symbols stay out of the program's
 * namespace) and drives it through its public API only, through the
 * function pointers in `api`.  Which file: $FILELOCK_PRELOAD_LIBFILELOCK
 * (read with secure_getenv, so a setuid program under /etc/ld.so.preload
 * cannot be made to load a library of the caller's choice; the uninstalled
 * wrapper of the test suite sets it), else the absolute path configure
 * baked in, else the soname.  A library that cannot be loaded, or that was
 * built without etcd, fails every lock call on etcd rules with ENOLCK and
 * one line naming the reason; other rules keep working.
 *
 * The lock.  The lock name is the marker path the other kinds would use,
 * "<file>.lock", so `filelock -t etcd FILE.lock` (the CLI) and a program
 * under the shim that flock()s FILE exclude each other; the key is
 * "<prefix><that path>/<lease>" (see backend-etcd.c).  LOCK_SH takes a read
 * lock, LOCK_EX a write lock, LOCK_NB makes one attempt (EWOULDBLOCK),
 * conversions release and re-acquire (not atomic, as flock(2) says).  The
 * options map onto fl_options: endpoints -> etcd_endpoints, prefix ->
 * etcd_prefix, ttl -> stale_threshold (the lease TTL), heartbeat_interval,
 * poll_interval; TLS and authentication come from the library's
 * FILELOCK_ETCD_* variables.  As for the other kinds, the shim also holds a
 * kernel flock(LOCK_SH) on the program's descriptor while it holds the lock
 * (the pin): it tells the last close whether the open file description
 * lives on in another process.
 *
 * Waiting.  A blocking flock makes one attempt; if the lock is taken, it
 * becomes an asynchronous acquire (fl_acquire_async)
 * on a private one-thread executor while the calling thread sleeps in
 * ppoll() on the executor's descriptor.  So the wait is the library's own
 * (an etcd watch on the key ahead of us, our place in the queue kept), and
 * signals end it as they end the kernel's flock: a handler without
 * SA_RESTART makes it return EINTR (flock(1) -w depends on it; the request
 * is cancelled and nothing stays held), SA_RESTART ones let it go on, and
 * asynchronous signals stay blocked outside the sleep, so none is lost.  The rule's timeout ends a wait with ENOLCK.
 *
 * What cannot work, and what happens instead.  An etcd lease belongs to the
 * process that took it: its heartbeat thread keeps it alive, and neither a
 * fork child nor a new image after execve can take it over (the library has
 * no adopt for etcd).  Handing it on is possible in principle -- etcd keeps
 * a lease alive for whoever sends LeaseKeepAlive with its id and valid
 * credentials -- but not safely here: a fork child would have to build a
 * new client (connections, TLS, an auth token) inside fork's handler, and
 * a new image would have to find the lease id and our key's revision on
 * the server and prove they are its taker's, with nothing on this host
 * that another user could not imitate; a wrong guess keeps a dead
 * holder's lease alive forever.
 * The kernel, on the other hand, gives a flock to the open file description,
 * which fork and execve share.  The shim never lets the two views produce
 * two holders silently:
 *  - The last close in the process that took the lock releases it (revokes
 *    the lease), also when the open file description is still open in
 *    another process (a fork child; the shell of `exec 9>f; flock 9`, where
 *    flock(1) exits): one line on stderr says the lock was not handed on.
 *  - A process that did not take the lock (fork child, new image) and calls
 *    flock(LOCK_SH/LOCK_EX) on a descriptor whose open file description is
 *    already locked fails with ENOLCK and one line, instead of sharing a
 *    lease it does not own; once the owner has released, it takes its own.
 *  - Its LOCK_UN cannot revoke another process's lease: the kernel's share
 *    is dropped, the lock stays with its owner until that process unlocks,
 *    closes or exits, and one line says so.  Its last close never releases.
 *  - A lock taken before execve is not kept alive by the new image: the old
 *    image's heartbeat thread is gone, and the lease expires after ttl.  The
 *    new image reports it when it starts (flp_etcd_exec_check: the flock on
 *    an inherited descriptor was taken by our own pid), and gets ENOLCK if
 *    it re-locks that descriptor (above).
 * Use kinds lease or soft-rw (shared filesystem) where a lock must survive
 * fork or execve, or hold the lock in the process that does the work
 * (`flock FILE COMMAND` runs COMMAND while flock(1) holds it).
 *
 * Byte-range locks (fcntl, lockf) on etcd rules fail with ENOLCK: the range
 * emulation keeps its state in a directory next to the file, so it needs a
 * shared filesystem kind, and an etcd rule is for hosts that share none.
 */
#undef _FORTIFY_SOURCE
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fl-shim.h"
#include "flp.h"
#include "proclocks.h"

#define FLP_SONAME "libfilelock.so.0"
#ifndef FLP_LIBFILELOCK
#define FLP_LIBFILELOCK FLP_SONAME
#endif

/* The full library's public API. */
static struct {
	void (*options_init)(struct fl_options *opt);
	int (*open)(fl_lock **out, const char *path, enum fl_kind kind,
		    const struct fl_options *opt);
	int (*acquire)(fl_lock *lk, enum fl_mode mode, double timeout);
	int (*release)(fl_lock *lk, unsigned flags);
	void (*close)(fl_lock *lk);
	int (*is_locked)(const fl_lock *lk);
	int (*is_valid)(const fl_lock *lk);
	const char *(*errmsg)(const fl_lock *lk);
	int (*async_new)(fl_async **out, unsigned nthreads);
	int (*async_fd)(const fl_async *ex);
	int (*async_dispatch)(fl_async *ex);
	void (*async_free)(fl_async *ex);
	int (*acquire_async)(fl_async *ex, fl_lock *lk, enum fl_mode mode, double timeout,
			     fl_async_cb cb, void *arg, fl_async_req **req);
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static int api_ok;
static char api_err[600];

static void flp_etcd_load(void)
{
	const char *path = secure_getenv("FILELOCK_PRELOAD_LIBFILELOCK");
	void *h;

	if (path == NULL || path[0] == '\0')
		path = FLP_LIBFILELOCK;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL && strcmp(path, FLP_LIBFILELOCK) == 0 && strcmp(path, FLP_SONAME) != 0) {
		/* The installed tree moved: let the dynamic linker search. */
		path = FLP_SONAME;
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	}
	if (h == NULL) {
		const char *why = dlerror();
		snprintf(api_err, sizeof(api_err), "cannot load %s: %s", path, why ? why : "?");
		return;
	}
#define SYM(field, name)                                                                 \
	do {                                                                             \
		*(void **)&api.field = dlsym(h, name);                                   \
		if (api.field == NULL) {                                                 \
			snprintf(api_err, sizeof(api_err), "%s has no %s (not libfilelock?)", \
				 path, name);                                            \
			return;                                                          \
		}                                                                        \
	} while (0)
	SYM(options_init, "fl_options_init");
	SYM(open, "fl_open");
	SYM(acquire, "fl_acquire");
	SYM(release, "fl_release");
	SYM(close, "fl_close");
	SYM(is_locked, "fl_is_locked");
	SYM(is_valid, "fl_is_valid");
	SYM(errmsg, "fl_errmsg");
	SYM(async_new, "fl_async_new");
	SYM(async_fd, "fl_async_fd");
	SYM(async_dispatch, "fl_async_dispatch");
	SYM(async_free, "fl_async_free");
	SYM(acquire_async, "fl_acquire_async");
#undef SYM
	FLP_TRACE("kind etcd: loaded %s", path);
	api_ok = 1;
}

/* Loads the library once; 0, or ENOLCK after one line naming the reason. */
static int flp_etcd_ready(const struct flp_ofd *o)
{
	pthread_once(&api_once, flp_etcd_load);
	if (api_ok)
		return 0;
	flp_log("flock(%s): kind etcd (policy line %d) needs the full library: %s; failing "
		"with ENOLCK",
		o->path, o->rule->line, api_err);
	return ENOLCK;
}

/* A handle for the OFD's lock.  0 or ENOLCK (one line printed). */
static int flp_etcd_open(struct flp_ofd *o)
{
	const struct flp_rule *r = o->rule;
	struct fl_options opt;
	int e;

	memset(&opt, 0, sizeof(opt));
	api.options_init(&opt);
	if (opt.size < offsetof(struct fl_options, etcd_prefix) + sizeof(opt.etcd_prefix)) {
		flp_log("flock(%s): the libfilelock loaded for kind etcd is older than this shim; "
			"failing with ENOLCK",
			o->path);
		return ENOLCK;
	}
	opt.poll_interval = r->poll_interval;
	opt.heartbeat_interval = r->heartbeat_interval;
	opt.stale_threshold = r->stale_threshold;
	opt.etcd_endpoints = r->etcd_endpoints;
	opt.etcd_prefix = r->etcd_prefix;
	opt.flags = FL_SHARED_CONTEXT | FL_NO_SINGLETON;
	e = api.open(&o->lk, o->marker, FL_ETCD, &opt);
	if (e != 0) {
		o->lk = NULL;
		flp_log("flock(%s): %s (policy line %d); failing with ENOLCK", o->path,
			api.errmsg(NULL), r->line);
		return ENOLCK;
	}
	o->lk_pid = getpid();
	return 0;
}

/* ---- waiting ----------------------------------------------------------- */

struct flp_etcd_wait {
	int done;
	int result;
	char msg[512];
};

static void flp_etcd_done(fl_lock *lk, int result, void *arg)
{
	struct flp_etcd_wait *w = arg;

	w->done = 1;
	w->result = result;
	if (result != 0)
		snprintf(w->msg, sizeof(w->msg), "%s", api.errmsg(lk));
}

/*
 * Would a handler that ran (or is pending in `only`) end a flock wait, as
 * the kernel decides: a handler without SA_RESTART does, SA_RESTART
 * restarts.  Signals the caller blocks (`orig`) never run during the wait.
 * The same rule as the byte-range waits (rlock.c).
 */
static int flp_etcd_interrupts(const sigset_t *orig, const sigset_t *only)
{
	static const int sync_sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT };

	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		int sync = 0;

		for (size_t i = 0; i < sizeof(sync_sigs) / sizeof(sync_sigs[0]); i++)
			sync |= sig == sync_sigs[i];
		if (sync || (only && sigismember(only, sig) != 1) || sigismember(orig, sig) == 1)
			continue;
		if (sigaction(sig, NULL, &sa) != 0 || (sa.sa_flags & SA_RESTART))
			continue;
		if ((sa.sa_flags & SA_SIGINFO) ||
		    (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN))
			return 1;
	}
	return 0;
}

/*
 * A blocking acquire: the library waits on a pool thread, we sleep in
 * ppoll() on its descriptor.  Asynchronous signals stay blocked outside
 * that sleep (flp_wait_signals), so none is lost between two sleeps.
 * Returns the acquire's result, or -EINTR when a handler without SA_RESTART
 * ran (the request is then cancelled and nothing is held).
 */
static int flp_etcd_wait(struct flp_ofd *o, enum fl_mode mode, double timeout, char *msg,
			 size_t cap)
{
	struct flp_etcd_wait w;
	struct pollfd pfd;
	sigset_t orig, pend;
	fl_async *ex = NULL;
	int r, intr = 0;

	memset(&w, 0, sizeof(w));
	r = api.async_new(&ex, 1);
	if (r != 0) {
		snprintf(msg, cap, "cannot start a waiter: %s", strerror(-r));
		return r;
	}
	r = api.acquire_async(ex, o->lk, mode, timeout, flp_etcd_done, &w, NULL);
	if (r != 0) {
		snprintf(msg, cap, "%s", api.errmsg(o->lk));
		api.async_free(ex);
		return r;
	}
	pfd.fd = api.async_fd(ex);
	pfd.events = POLLIN;
	flp_wait_signals(&orig, NULL);
	while (!w.done) {
		int n, e;

		if (sigpending(&pend) == 0 && flp_etcd_interrupts(&orig, &pend)) {
			intr = 1; /* its handler runs when the wait ends */
			break;
		}
		flp_depth--; /* a signal handler may call hooked functions */
		n = ppoll(&pfd, 1, NULL, &orig);
		e = errno;
		flp_depth++;
		if (n < 0 && e == EINTR && flp_etcd_interrupts(&orig, NULL)) {
			intr = 1;
			break;
		}
		if (n > 0)
			api.async_dispatch(ex);
	}
	/* Frees the request: a lock it obtained meanwhile is released. */
	api.async_free(ex);
	flp_wait_signals(NULL, &orig);
	if (intr)
		return -EINTR;
	if (w.result != 0)
		snprintf(msg, cap, "%s", w.msg);
	return w.result;
}

/* ---- the hooks' entry points ------------------------------------------ */

void flp_etcd_refuse_range(const struct flp_rule *r, const char *call, const char *path)
{
	flp_log("%s on %s: byte-range locks need a shared-filesystem kind (soft, strict, lease, "
		"soft-rw); etcd rules (policy line %d) lock whole files with flock only; failing "
		"with ENOLCK",
		call, path, r->line);
}

static const char *flp_etcd_opname(int op)
{
	switch (op) {
	case LOCK_SH:
		return "LOCK_SH";
	case LOCK_SH | LOCK_NB:
		return "LOCK_SH|LOCK_NB";
	case LOCK_EX:
		return "LOCK_EX";
	default:
		return "LOCK_EX|LOCK_NB";
	}
}

int flp_etcd_lock(struct flp_ofd *o, int fd, int op)
{
	const struct flp_rule *rule = o->rule;
	int nb = (op & LOCK_NB) != 0, what = op & ~LOCK_NB, r, excl = 0;
	enum fl_mode mode = what == LOCK_SH ? FL_SHARED : FL_EXCLUSIVE;
	pid_t me = getpid();
	double deadline;
	char msg[512] = "";

	if (flp_etcd_ready(o) != 0)
		return ENOLCK;
	if (fl__pid() != me) {
		/* A child made without fork's handlers (CPython's subprocess, raw
		 * clone): the library's per-process state, its heartbeat thread
		 * among it, is the parent's, so a lease would not be kept alive. */
		flp_log("flock(%s): kind etcd cannot lock in a child process that skipped "
			"fork's handlers (policy line %d); failing with ENOLCK",
			o->path, rule->line);
		return ENOLCK;
	}
	if (o->req && o->lk && o->lk_pid == me) {
		if (o->mode == mode && api.is_locked(o->lk) && api.is_valid(o->lk)) {
			if (rule->also_native && o->req != what) {
				r = flp_kernel_lock(o, fd, what, nb, INFINITY);
				if (r)
					return r;
			}
			o->req = what;
			return 0;
		}
		if (o->mode == mode)
			flp_log("flock(%s): the etcd lease of this lock was lost; taking it again",
				o->path);
		/* A conversion: release, then acquire (not atomic, as in the kernel). */
		flp_real.flock(fd, LOCK_UN);
		o->pinned = 0;
		flp_etcd_release(o);
	} else if (o->req) {
		/* Taken by the process we were forked from.  Its handle is left
		 * alone (leaked): in a child that skipped fork's handlers the
		 * library would take fl_close() for the owner's and revoke. */
		if (o->lk_pid != me)
			o->lk = NULL;
	}
	if (flp_ofd_has_flock(fd, &excl, NULL)) {
		flp_log("flock(%s, %s): this open file description is already locked by another "
			"process (a fork parent, or the program before execve); an etcd lock belongs "
			"to the process that took it and cannot be shared (policy line %d); failing "
			"with ENOLCK",
			o->path, flp_etcd_opname(op), rule->line);
		return ENOLCK;
	}
	if (o->lk == NULL && flp_etcd_open(o) != 0)
		return ENOLCK;
	deadline = rule->timeout >= 0 ? fl__now_mono() + rule->timeout : INFINITY;
	/* One try first: an uncontended lock then costs what the library's
	 * does, without a waiter thread. */
	r = api.acquire(o->lk, mode, 0);
	if (r != 0)
		snprintf(msg, sizeof(msg), "%s", api.errmsg(o->lk));
	if (r == -ETIMEDOUT && !nb && rule->timeout != 0)
		r = flp_etcd_wait(o, mode, rule->timeout, msg, sizeof(msg));
	if (r == -ETIMEDOUT && nb)
		return EWOULDBLOCK;
	if (r == -EINTR) {
		FLP_TRACE("flock(%d, %s) on %s: interrupted by a signal", fd, flp_etcd_opname(op),
			  o->path);
		return EINTR;
	}
	if (r == -ETIMEDOUT) {
		flp_log("flock(%s): timed out after %gs (policy line %d); failing with ENOLCK",
			o->path, rule->timeout, rule->line);
		return ENOLCK;
	}
	if (r != 0) {
		flp_log("flock(%s): %s; failing with ENOLCK", o->path, msg);
		return ENOLCK;
	}
	o->mode = mode;
	o->req = what;
	r = flp_kernel_lock(o, fd, what, nb, deadline);
	if (r) {
		flp_etcd_release(o);
		return r;
	}
	FLP_TRACE("flock(%d, %s) on %s -> etcd %s: acquired", fd, flp_etcd_opname(op), o->path,
		  o->marker);
	return 0;
}

void flp_etcd_release(struct flp_ofd *o)
{
	int r;

	if (o->lk && o->lk_pid == getpid()) {
		if (api.is_locked(o->lk)) {
			r = api.release(o->lk, FL_FORCE);
			if (r != 0)
				flp_log("release of the etcd lock on %s: %s", o->path,
					api.errmsg(o->lk));
			else
				FLP_TRACE("released the etcd lock on %s", o->path);
		}
	} else if (o->req) {
		flp_log("flock(%s, LOCK_UN): the etcd lock was taken by pid %d, and an etcd lease "
			"belongs to one process: it stays held until pid %d unlocks, closes the "
			"file or exits",
			o->path, (int)o->lk_pid, (int)o->lk_pid);
		o->lk = NULL; /* the owner's handle: never touched here (see above) */
	}
	o->req = 0;
}

/*
 * 1 when a flock that this process took on (dev, ino) is still in place.
 * Called after our last descriptor of the OFD was closed: then the OFD (and
 * our pin with it) lives on in another process.  /proc/locks names the pid
 * that took each lock, so other processes' pins on the same file (readers,
 * holders of other open file descriptions) do not count.  It only decides
 * whether the release is reported: where /proc/locks prints other device
 * or inode numbers than stat (overlayfs), the release goes unreported.
 */
static int flp_etcd_pin_survives(dev_t dev, ino_t ino)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0, cap = 0;
	int fd, found = 0;
	pid_t me = getpid();
	ssize_t n;

	fd = flp_real.open("/proc/locks", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = cap < (64u << 20) ? realloc(buf, cap ? cap * 2 : 16384) : NULL;
			if (nb == NULL)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 16384;
		}
		n = flp_real.read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	flp_real.close(fd);
	if (buf == NULL)
		return 0;
	buf[len] = '\0';
	/* "1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF"; waiters have "->". */
	for (line = strtok_r(buf, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		struct fl__proc_lock pl;

		if (fl__proc_lock_parse(line, &pl) && !pl.waiter && strcmp(pl.type, "FLOCK") == 0 &&
		    pl.pid == (int)me && pl.maj == major(dev) && pl.min == minor(dev) &&
		    pl.ino == (unsigned long long)ino)
			found = 1;
	}
	free(buf);
	return found;
}

void flp_etcd_last_close(struct flp_ofd *o)
{
	if (o->req && o->lk && o->lk_pid == getpid()) {
		int elsewhere = o->pinned && flp_etcd_pin_survives(o->dev, o->ino);

		flp_etcd_release(o);
		if (elsewhere)
			flp_log("%s: etcd lock released at the last close in this process although "
				"the file stays open in another process (a fork child, or a shell "
				"that keeps the descriptor): an etcd lease belongs to the process "
				"that took it and is not handed on (policy line %d)",
				o->path, o->rule->line);
	} else if (o->lk && o->lk_pid != getpid()) {
		if (o->req)
			FLP_TRACE("%s: the etcd lock belongs to pid %d, which keeps it", o->path,
				  (int)o->lk_pid);
		o->lk = NULL; /* the owner's handle: never touched in another process */
	}
	if (o->lk)
		api.close(o->lk);
	o->lk = NULL;
	o->req = 0;
}

/*
 * At start-up: a descriptor inherited across execve whose open file
 * description carries a flock that this very process took (the pid in
 * /proc/self/fdinfo is ours: the image before execve, as with flock -F)
 * on a path of an etcd rule held an etcd lock whose lease nobody keeps
 * alive any more.  It expires within ttl while the program may think it
 * holds the lock: say so, once, instead of letting it happen silently.
 */
void flp_etcd_exec_check(void)
{
	char path[4096], info[64], buf[4096];
	const struct flp_rule *r;
	struct dirent *de;
	DIR *d;
	int any = 0;

	for (size_t i = 0; i < flp_pol.n && !any; i++)
		any = flp_pol.rules[i].kind == FLP_ETCD;
	if (!any || (d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct fl__proc_lock pl;
		const char *p;
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		ssize_t n, got = 0;
		int ifd;

		if (*end != '\0' || end == de->d_name || fd == dirfd(d))
			continue;
		snprintf(info, sizeof(info), "/proc/self/fd/%ld", fd);
		n = readlink(info, path, sizeof(path) - 1);
		if (n <= 0 || path[0] != '/')
			continue;
		path[n] = '\0';
		r = flp_policy_match(&flp_pol, path);
		if (r == NULL || r->kind != FLP_ETCD)
			continue;
		snprintf(info, sizeof(info), "/proc/self/fdinfo/%ld", fd);
		ifd = flp_real.open(info, O_RDONLY | O_CLOEXEC);
		if (ifd < 0)
			continue;
		while ((size_t)got < sizeof(buf) - 1 &&
		       (n = flp_real.read(ifd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
			got += n;
		flp_real.close(ifd);
		buf[got] = '\0';
		/* "lock:\t1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF" */
		for (p = buf; fl__fdinfo_next_lock(&p, &pl);) {
			if (strcmp(pl.type, "FLOCK") == 0 && pl.pid == (int)getpid()) {
				flp_log("fd %ld (%s) arrived locked across execve under an etcd rule "
					"(policy line %d): the etcd lease belonged to the image before "
					"execve and is no longer kept alive; it expires within its ttl "
					"and the lock is then lost",
					fd, path, r->line);
				break;
			}
		}
	}
	closedir(d);
}
