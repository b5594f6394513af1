/* SPDX-License-Identifier: MIT */
/*
 * lock.c -- the public API front end, shared by every kind.
 *
 * It is divided into: kind table; options (kind-independent validation and
 * defaults, singleton comparison; each kind's own rules are its setup's);
 * the singleton registry; the per-thread self-deadlock registry; contexts
 * (struct fl_hold); the wait loop, with the switch to a kind's fallback
 * (FL__FALLBACK); the public entry points, an acquisition in named steps.
 * It learns about kinds only through their struct fl_backend.
 *
 * State machine of one context, stated once here:
 *
 *     UNHELD --acquire(m)--> HELD(m, 1) --acquire(m)--> HELD(m, n+1)
 *     HELD(m, n>1) --release--> HELD(m, n-1)
 *     HELD(m, 1) --release / release(FL_FORCE) at any n--> UNHELD
 *     HELD(m) --acquire(m' != m)--> -EDEADLK (no upgrade or downgrade)
 *
 * Physical work (the backend's attempt/release) happens only on the
 * UNHELD<->HELD edges, outside lk->mu; `busy` marks a hold whose edge is in
 * progress so that another thread sharing the context waits for it.
 *
 * Mutex rules: fl__reg_mu guards the singleton registry and every
 * lk->refs; fl__dl_mu guards the deadlock registry; lk->mu guards lk->holds
 * and each hold's counter/mode/busy/writer.  No two of them are ever held at
 * once.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl-internal.h"

/* ---- kinds ------------------------------------------------------------ */

const struct fl_backend *const fl__backends[] = {
	[FL_FILE] = &fl__backend_file,
	[FL_UNIX] = &fl__backend_unix,
	[FL_SOFT] = &fl__backend_soft,
	[FL_STRICT] = &fl__backend_strict,
	[FL_LEASE] = &fl__backend_lease,
/* FL_NO_EXTERNAL_KINDS: the preload shim's build, which must not pull
 * SQLite or libcurl into every program it is preloaded into. */
#if defined(HAVE_SQLITE3) && !defined(FL_NO_EXTERNAL_KINDS)
	[FL_RW] = &fl__backend_rw,
#else
	[FL_RW] = NULL,
#endif
	[FL_SOFT_RW] = &fl__backend_softrw_log, /* the legacy one by option: fl__backend() */
#if defined(HAVE_ETCD) && !defined(FL_NO_EXTERNAL_KINDS)
	[FL_ETCD] = &fl__backend_etcd,
#else
	[FL_ETCD] = NULL,
#endif
};
#define FL__NKINDS ((int)(sizeof(fl__backends) / sizeof(fl__backends[0])))

static const char *const fl__kind_names[] = {
	[FL_FILE] = "file", [FL_UNIX] = "unix",  [FL_SOFT] = "soft",       [FL_STRICT] = "strict",
	[FL_LEASE] = "lease", [FL_RW] = "rw", [FL_SOFT_RW] = "soft-rw", [FL_ETCD] = "etcd",
};

FL_EXPORT const char *fl_version(void)
{
	return PACKAGE_VERSION;
}

FL_EXPORT const char *fl_kind_name(enum fl_kind kind)
{
	if ((int)kind < 0 || (int)kind >= FL__NKINDS)
		return NULL;
	return fl__kind_names[kind];
}

FL_EXPORT int fl_kind_parse(const char *name, enum fl_kind *out)
{
	if (name == NULL || out == NULL)
		return -EINVAL;
	for (int k = 0; k < FL__NKINDS; k++) {
		if (strcmp(name, fl__kind_names[k]) == 0) {
			*out = (enum fl_kind)k;
			return 0;
		}
	}
	return -EINVAL;
}

const char *fl__kind_tag(const struct fl_lock *lk)
{
	return fl__kind_names[fl_kind_of(lk)];
}

/* The backend of `kind`; soft-rw's depends on the protocol option (read
 * through the caller's size, so an older caller's struct gets the default). */
static const struct fl_backend *fl__backend(enum fl_kind kind, const struct fl_options *opt)
{
	if ((int)kind < 0 || (int)kind >= FL__NKINDS)
		return NULL;
	if (kind == FL_SOFT_RW && opt != NULL &&
	    opt->size >= offsetof(struct fl_options, soft_rw_protocol) + sizeof(int) &&
	    opt->soft_rw_protocol == FL_SOFT_RW_LEGACY)
		return &fl__backend_softrw;
	return fl__backends[kind];
}

/* ---- options ---------------------------------------------------------- */

FL_EXPORT void fl_options_init(struct fl_options *opt)
{
	if (opt == NULL)
		return;
	memset(opt, 0, sizeof(*opt));
	opt->size = sizeof(*opt);
	opt->timeout = -1;
	opt->lifetime = -1;
	opt->mode = -1;
}

/* Copies a caller's options, tolerating an older (smaller) struct. */
static int fl__opt_copy(struct fl_options *dst, const struct fl_options *src)
{
	fl_options_init(dst);
	if (src == NULL)
		return 0;
	if (src->size < offsetof(struct fl_options, timeout) || src->size > sizeof(*dst))
		return fl__errf(NULL, -EINVAL,
				"fl_options.size is %zu; call fl_options_init() first (expected %zu)",
				src->size, sizeof(*dst));
	memcpy(dst, src, src->size);
	dst->size = sizeof(*dst);
	return 0;
}

#define FL__KNOWN_FLAGS \
	(FL_NONBLOCK | FL_SHARED_CONTEXT | FL_SINGLETON | FL_NO_SINGLETON | FL_NO_FALLBACK |     \
	 FL_NO_CREATE_DIRS)

/*
 * The rules every kind shares: each value is in its type's range and the
 * defaults every kind uses are filled in.  What a value means to a kind,
 * and whether the kind takes it at all (lifetime, lease_duration, ...), is
 * the business of that kind's setup.
 */
static int fl__opt_validate(const struct fl_backend *be, const char *path, struct fl_options *o)
{
	const char *kind = fl__kind_names[be->kind];

	if (isnan(o->timeout))
		return fl__errf(NULL, -EINVAL, "timeout must be a number, not NaN [%s]", kind);
	if (!isfinite(o->poll_interval) || o->poll_interval < 0)
		return fl__errf(NULL, -EINVAL, "poll_interval must be finite and >= 0, got %g [%s]",
				o->poll_interval, kind);
	if (o->poll_interval == 0)
		o->poll_interval = be->default_poll;
	if (isnan(o->lifetime) || isinf(o->lifetime))
		return fl__errf(NULL, -EINVAL, "lifetime must be finite, got %g [%s]", o->lifetime,
				kind);
	if (o->mode != -1 && (o->mode < 0 || o->mode > 07777))
		return fl__errf(NULL, -EINVAL, "mode must be -1 or 0..07777, got %#o [%s]",
				(unsigned)o->mode, kind);
	if (o->flags & ~FL__KNOWN_FLAGS)
		return fl__errf(NULL, -EINVAL, "unknown flags %#x [%s]", o->flags & ~FL__KNOWN_FLAGS,
				kind);
	if ((o->flags & FL_SINGLETON) && (o->flags & FL_NO_SINGLETON))
		return fl__errf(NULL, -EINVAL, "FL_SINGLETON and FL_NO_SINGLETON exclude each other [%s]",
				kind);
	if (!isfinite(o->lease_duration) || o->lease_duration < 0 ||
	    !isfinite(o->heartbeat_interval) || o->heartbeat_interval < 0 ||
	    !isfinite(o->stale_threshold) || o->stale_threshold < 0)
		return fl__errf(NULL, -EINVAL,
				"lease_duration, heartbeat_interval and stale_threshold must be finite "
				"and >= 0 (0 = default) [%s]",
				kind);
	if (o->soft_rw_protocol < 0 || o->soft_rw_protocol > FL_SOFT_RW_LEGACY)
		return fl__errf(NULL, -EINVAL,
				"soft_rw_protocol must be 0 (default), 1 (filelock-rw/1) or 2 "
				"(legacy), got %d [%s]",
				o->soft_rw_protocol, kind);
	if (o->soft_rw_protocol == FL_SOFT_RW_DEFAULT)
		o->soft_rw_protocol = FL_SOFT_RW_RW1;
	(void)path;
	return 0;
}

int fl__opt_no_lifetime(const struct fl_lock *lk, const char *expiry)
{
	const char *kind = fl__kind_names[lk->be->kind];

	if (lk->opt.lifetime < 0)
		return 0;
	return fl__errf(NULL, -EINVAL,
			"lifetime is only supported by the soft kind (%s locks expire by %s) [%s]",
			kind, expiry, kind);
}

/*
 * Copies, validates and completes (through the backend's setup, run on a
 * scratch handle) the options of a kind.  Setup must be idempotent: fl_open
 * runs it again on the real handle.
 */
static int fl__opt_resolve(const struct fl_backend *be, const char *path,
			   const struct fl_options *in, struct fl_options *out)
{
	int r = fl__opt_copy(out, in);

	if (r == 0)
		r = fl__opt_validate(be, path, out);
	if (r == 0 && be->setup) {
		struct fl_lock t;

		memset(&t, 0, sizeof(t));
		t.be = be;
		t.kind = be->kind;
		t.opt = *out;
		t.path = (char *)(uintptr_t)path;
		r = be->setup(&t);
		if (r == 0)
			*out = t.opt;
		if (be->teardown)
			be->teardown(&t);
	}
	return r;
}

/* Appends one "\t<name> (existing lock has <old> but <new> was passed)" line. */
static void fl__mismatch(char *buf, size_t cap, int *n, const char *name, const char *old,
			 const char *new)
{
	size_t len = strlen(buf);

	(*n)++;
	snprintf(buf + len, cap - len, "\n\t%s (existing lock has %s but %s was passed)", name, old,
		 new);
}

#define FL__CMP_D(field)                                                              \
	do {                                                                          \
		if (!(a->field == b->field || (isnan(a->field) && isnan(b->field)))) { \
			char o_[32], n_[32];                                          \
			snprintf(o_, sizeof(o_), "%g", a->field);                     \
			snprintf(n_, sizeof(n_), "%g", b->field);                     \
			fl__mismatch(msg, cap, &n, #field, o_, n_);                   \
		}                                                                     \
	} while (0)

#define FL__CMP_P(field)                                                         \
	do {                                                                     \
		if (a->field != b->field)                                        \
			fl__mismatch(msg, cap, &n, #field, "another pointer", "a different one"); \
	} while (0)

#define FL__CMP_S(field)                                                                  \
	do {                                                                              \
		const char *o_ = a->field && *a->field ? a->field : "";                   \
		const char *n_ = b->field && *b->field ? b->field : "";                   \
		if (strcmp(o_, n_) != 0)                                                  \
			fl__mismatch(msg, cap, &n, #field, "another string", "a different one"); \
	} while (0)

/* Compares the options a singleton was opened with against a reopen's. */
static int fl__opt_compare(const struct fl_options *a, const struct fl_options *b, char *msg,
			   size_t cap)
{
	int n = 0;

	snprintf(msg, cap, "Singleton lock instances cannot be initialized with differing arguments\n"
			   "Non-matching arguments: ");
	FL__CMP_D(timeout);
	FL__CMP_D(poll_interval);
	FL__CMP_D(lifetime);
	FL__CMP_D(lease_duration);
	FL__CMP_D(heartbeat_interval);
	FL__CMP_D(stale_threshold);
	if (a->soft_rw_protocol != b->soft_rw_protocol)
		fl__mismatch(msg, cap, &n, "soft_rw_protocol",
			     a->soft_rw_protocol == FL_SOFT_RW_LEGACY ? "legacy" : "rw1",
			     b->soft_rw_protocol == FL_SOFT_RW_LEGACY ? "legacy" : "rw1");
	if (a->mode != b->mode) {
		char o_[32], n_[32];
		snprintf(o_, sizeof(o_), "%d", a->mode);
		snprintf(n_, sizeof(n_), "%d", b->mode);
		fl__mismatch(msg, cap, &n, "mode", o_, n_);
	}
	if ((a->flags & ~(FL_SINGLETON | FL_NO_SINGLETON)) !=
	    (b->flags & ~(FL_SINGLETON | FL_NO_SINGLETON))) {
		char o_[32], n_[32];
		snprintf(o_, sizeof(o_), "%#x", a->flags);
		snprintf(n_, sizeof(n_), "%#x", b->flags);
		fl__mismatch(msg, cap, &n, "flags", o_, n_);
	}
	FL__CMP_S(etcd_endpoints);
	FL__CMP_S(etcd_prefix);
	FL__CMP_S(etcd_cacert);
	FL__CMP_S(etcd_cert);
	FL__CMP_S(etcd_key);
	FL__CMP_S(etcd_user);
	FL__CMP_S(etcd_password);
	FL__CMP_S(etcd_password_file);
	if (!a->etcd_allow_insecure_auth != !b->etcd_allow_insecure_auth)
		fl__mismatch(msg, cap, &n, "etcd_allow_insecure_auth",
			     a->etcd_allow_insecure_auth ? "1" : "0",
			     b->etcd_allow_insecure_auth ? "1" : "0");
	FL__CMP_P(cancel_check);
	FL__CMP_P(cancel_arg);
	FL__CMP_P(on_compromise);
	FL__CMP_P(compromise_arg);
	return n;
}

/* ---- singleton registry ---------------------------------------------- */

static pthread_mutex_t fl__reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fl_lock *fl__reg_head;

static struct fl_lock *fl__reg_find(enum fl_kind kind, const char *path)
{
	for (struct fl_lock *l = fl__reg_head; l; l = l->reg_next)
		if (l->kind == kind && strcmp(l->path, path) == 0)
			return l;
	return NULL;
}

static void fl__reg_remove(struct fl_lock *lk)
{
	for (struct fl_lock **pp = &fl__reg_head; *pp; pp = &(*pp)->reg_next) {
		if (*pp == lk) {
			*pp = lk->reg_next;
			return;
		}
	}
}

/* ---- self-deadlock registry ------------------------------------------ */

/*
 * Which thread holds which canonical path through which handle.  The
 * entries are the holds themselves (no allocation on the acquire path), in a
 * small hash table because one process may hold thousands of locks.
 */
#define FL__DL_BUCKETS 1024
static pthread_mutex_t fl__dl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fl_hold *fl__dl[FL__DL_BUCKETS];

static unsigned fl__hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % FL__DL_BUCKETS;
}

/* Returns a handle other than lk through which thread tid holds lk's path. */
static const struct fl_lock *fl__dl_conflict(const struct fl_lock *lk, uint64_t tid)
{
	const struct fl_lock *other = NULL;
	unsigned b = fl__hash(lk->path);

	pthread_mutex_lock(&fl__dl_mu);
	for (struct fl_hold *e = fl__dl[b]; e; e = e->dl_next) {
		if (e->dl_tid == tid && e->lk != lk && strcmp(e->lk->path, lk->path) == 0) {
			other = e->lk;
			break;
		}
	}
	pthread_mutex_unlock(&fl__dl_mu);
	return other;
}

static void fl__dl_add(struct fl_hold *h, uint64_t tid)
{
	unsigned b = fl__hash(h->lk->path);

	pthread_mutex_lock(&fl__dl_mu);
	h->dl_tid = tid;
	h->dl_next = fl__dl[b];
	fl__dl[b] = h;
	pthread_mutex_unlock(&fl__dl_mu);
}

static void fl__dl_remove(struct fl_hold *h)
{
	unsigned b = fl__hash(h->lk->path);

	pthread_mutex_lock(&fl__dl_mu);
	if (h->dl_tid != 0) {
		for (struct fl_hold **pp = &fl__dl[b]; *pp; pp = &(*pp)->dl_next) {
			if (*pp == h) {
				*pp = h->dl_next;
				break;
			}
		}
		h->dl_tid = 0;
	}
	pthread_mutex_unlock(&fl__dl_mu);
}

/* In a fork child: the parent's registries describe the parent's threads. */
static void fl__lock_child_reset(void)
{
	pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;

	fl__reg_mu = init;
	fl__dl_mu = init;
	fl__reg_head = NULL; /* handles stay allocated; their owners fl_close them */
	memset(fl__dl, 0, sizeof(fl__dl)); /* the parent's holds are not the child's */
}

static pthread_once_t fl__lock_once = PTHREAD_ONCE_INIT;

static void fl__lock_init(void)
{
	fl__atfork_child(fl__lock_child_reset);
}

/* ---- contexts -------------------------------------------------------- */

static int fl__is_rw(const struct fl_lock *lk)
{
	return (lk->be->caps & FL__CAP_RW) != 0;
}

int fl__shared_ctx(const struct fl_lock *lk)
{
	return fl__is_rw(lk) || (lk->opt.flags & FL_SHARED_CONTEXT);
}

/* Finds the calling thread's hold.  Caller holds lk->mu. */
static struct fl_hold *fl__hold_find(const struct fl_lock *lk, uint64_t tid)
{
	uint64_t key = fl__shared_ctx(lk) ? 0 : tid;

	for (struct fl_hold *h = lk->holds; h; h = h->next)
		if (h->tid == key)
			return h;
	return NULL;
}

/* Bytes of backend data in each hold of lk: room for its fallback's too. */
static size_t fl__hold_size(const struct fl_lock *lk)
{
	size_t n = lk->be->hold_size;

	if (lk->be->fallback && lk->be->fallback->hold_size > n)
		n = lk->be->fallback->hold_size;
	return n;
}

/* Fresh backend state for the next acquisition (or adoption) through h,
 * with the methods of the backend the handle uses now. */
static void fl__hold_fresh(struct fl_lock *lk, struct fl_hold *h)
{
	h->be = fl__be_now(lk);
	h->fd = -1;
	h->dev = 0;
	h->ino = 0;
	atomic_store(&h->valid_until_ns, 0);
	h->adapt_step = h->adapt_next = 0;
	h->adapt_tag = 0;
	memset(h->priv, 0, fl__hold_size(lk));
}

static struct fl_hold *fl__hold_new(struct fl_lock *lk, uint64_t tid)
{
	struct fl_hold *h = calloc(1, sizeof(*h) + fl__hold_size(lk));

	if (h == NULL)
		return NULL;
	h->tid = fl__shared_ctx(lk) ? 0 : tid;
	h->fd = -1;
	h->be = fl__be_now(lk);
	h->lk = lk;
	h->next = lk->holds;
	lk->holds = h;
	return h;
}

/* ---- the wait loop ---------------------------------------------------- */

static int fl__timed_out(struct fl_lock *lk, double timeout)
{
	struct fl_holder who;
	char extra[600] = "";

	if (lk->be->inspect) {
		memset(&who, 0, sizeof(who));
		who.size = sizeof(who);
		if (lk->be->inspect(lk->path, &lk->opt, &who) == 0 && who.state != FL_HOLDER_FREE) {
			if (who.pid > 0)
				snprintf(extra, sizeof(extra), "; held by pid %d on %s", (int)who.pid,
					 who.host[0] ? who.host : "?");
			else if (who.detail[0])
				snprintf(extra, sizeof(extra), "; %s", who.detail);
		}
	}
	if (timeout == 0)
		return fl__errf(lk, -ETIMEDOUT, "%s is locked (non-blocking attempt)%s", lk->path,
				extra);
	return fl__errf(lk, -ETIMEDOUT, "%s: timed out after %gs%s", lk->path, timeout, extra);
}

/* The request behind `hook` was cancelled (fl_async_cancel). */
static int fl__hook_cancelled(const struct fl__acq_hook *hook)
{
	return hook != NULL && hook->cancelled(hook->arg);
}

/*
 * The kind cannot work here (its attempt returned FL__FALLBACK): the handle
 * switches to the kind's fallback for good and h continues with it.
 */
static int fl__fall_back(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode)
{
	const struct fl_backend *to = lk->be->fallback;

	if (to == NULL || h->be != lk->be)
		return fl__errf(lk, -EIO, "%s: the %s kind asked for a fallback it does not have",
				lk->path, h->be->name);
	atomic_store(&lk->fell_back, 1);
	if (mode == FL_SHARED && !(to->caps & FL__CAP_SHARED))
		return fl__errf(lk, -ENOTSUP, "%s: shared mode is not available after the %s fallback",
				lk->path, to->name);
	fl__hold_fresh(lk, h);
	return 0;
}

/*
 * Fairness: a bounded bypass.  A waiter is woken when the holder lets go,
 * but the holder's process, looping, takes the lock again microseconds
 * later, long before a woken process runs: left alone it can keep the lock
 * for as long as it loops (the kernel's own flock behaves so).  So a context
 * that had to wait within the last FL__FAIR_RECENT seconds, and has since
 * taken the lock FL__FAIR_STREAK times in a row without waiting, pauses for
 * FL__FAIR_PAUSE after its release before its next try: a woken waiter
 * takes the lock then, and this context waits its turn like the others.
 * A pause that let nobody in (the next try won at once: the waiters were
 * not ready, e.g. on a loaded machine) doubles the streak allowed before
 * the next one, up to FL__FAIR_MAX, so pauses cost little throughput when
 * they do not help; one that let a waiter in starts over at the minimum.
 * Without contention nothing waits, and nothing pauses.  Non-blocking tries
 * and asynchronous acquires never pause.
 */
#define FL__FAIR_STREAK 16
#define FL__FAIR_MAX 1024
#define FL__FAIR_RECENT 1.0
#define FL__FAIR_PAUSE 0.001

static void fl__fair_pause(struct fl_hold *h, double deadline)
{
	double now = fl__now_mono(), until = h->fair_released + FL__FAIR_PAUSE;

	if (h->fair_allow < FL__FAIR_STREAK)
		h->fair_allow = FL__FAIR_STREAK;
	if (h->fair_streak < h->fair_allow || now - h->fair_waited > FL__FAIR_RECENT ||
	    now >= until)
		return;
	h->fair_streak = 0;
	h->fair_paused = 1;
	fl__wait_sleep_until(until < deadline ? until : deadline);
}

static void fl__fair_note(struct fl_hold *h, int waited)
{
	if (h->fair_paused) {
		h->fair_paused = 0;
		if (waited)
			h->fair_allow = FL__FAIR_STREAK;
		else if (h->fair_allow < FL__FAIR_MAX)
			h->fair_allow *= 2;
	}
	if (waited) {
		h->fair_waited = fl__now_mono();
		h->fair_streak = 0;
	} else {
		h->fair_streak++;
	}
}

static int fl__wait_loop(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, double timeout,
			 struct fl__acq_hook *hook)
{
	const struct fl_options *o = &lk->opt;
	double start = hook ? hook->start : fl__now_mono();
	double deadline = timeout < 0 ? INFINITY : start + timeout;
	/* A kernel wait cannot be interrupted by a cancel, so a hooked
	 * (asynchronous) acquire always polls. */
	int how = (timeout < 0 && o->cancel_check == NULL && hook == NULL) ? FL__BLOCK : FL__TRY;
	int waited = 0;

	if (timeout != 0 && hook == NULL)
		fl__fair_pause(h, deadline);
	for (;;) {
		int r = h->be->attempt(lk, h, mode, how);
		if (r == FL__FALLBACK) {
			r = fl__fall_back(lk, h, mode);
			if (r == 0)
				continue; /* the first try of the fallback, at once */
		}
		if (r == 0) {
			fl__fair_note(h, waited);
			return 0;
		}
		if (r != -EAGAIN)
			return r;
		waited = 1;
		if (timeout == 0)
			return fl__timed_out(lk, timeout);
		if (o->cancel_check && o->cancel_check(o->cancel_arg))
			return fl__errf(lk, -ECANCELED, "%s: cancel_check asked to stop waiting",
					lk->path);
		if (fl__hook_cancelled(hook))
			return fl__errf(lk, -ECANCELED, "%s: asynchronous acquire cancelled",
					lk->path);
		double now = fl__now_mono();
		if (now >= deadline)
			return fl__timed_out(lk, timeout);
		double until = now + o->poll_interval;
		if (until > deadline)
			until = deadline;
		h->deadline = deadline;
		h->wait_checks = o->cancel_check != NULL || hook != NULL;
		if (hook) {
			double t;
			int p;

			/* The asynchronous acquire waits on the same wake paths, in
			 * slices its pause hands out. */
			while ((p = hook->pause(hook->arg, until, &t)) == FL__PAUSE_WAIT) {
				if (h->be->wait)
					h->be->wait(lk, h, t);
				else
					fl__wait_sleep_until(t);
				if (fl__now_mono() < t)
					break; /* woken by the backend: try now */
			}
			if (p == 1) {
				hook->until = until; /* cancelled, or the thread has other work */
				return FL__YIELDED;
			}
		} else if (h->be->wait) {
			h->be->wait(lk, h, until);
		} else {
			fl__wait_sleep_until(until);
		}
		if (fl__wait_intr_fired())
			return fl__errf(lk, -EINTR, "%s: interrupted by a signal", lk->path);
	}
}

/* ---- public entry points --------------------------------------------- */

/*
 * A root process locks only where no other user can redirect it:
 *  - the path as given may pass through symlinks only where their
 *    directory is root's (the admin's /home -> /data/home): a symlink in a
 *    directory another user controls is refused, even when it points into
 *    root's own tree (the kernel's protected_symlinks covers only sticky
 *    world-writable directories);
 *  - every existing directory from "/" to the lock's canonical parent must
 *    pass the rule of fl__dir_open (util.c); missing ones are checked as
 *    they are created.  Once the chain is root's, re-resolving paths later
 *    is safe.
 * Other processes skip this: what they could be redirected to they can
 * write anyway, and a marker kind never destroys what is not a marker.
 */
static int fl__root_dir_check(const struct fl_backend *be, const char *path, const char *canon)
{
	char dir[PATH_MAX], pre[PATH_MAX];
	const char *slash = strrchr(canon, '/');
	size_t n = 0;
	int r;

	if (be->kind == FL_ETCD || geteuid() != 0)
		return 0;
	if (path[0] != '/') {
		if (getcwd(pre, sizeof(pre)) == NULL)
			return fl__err(NULL, -errno, "getcwd", path);
		n = strlen(pre);
	}
	/* Each prefix of the given path that names a symlink. */
	for (const char *s = path; *s;) {
		const char *e = strchrnul(s + (*s == '/'), '/');
		struct stat lst, dst;
		size_t parent = n;

		if (n + (size_t)(e - s) + 1 >= sizeof(pre))
			return fl__err(NULL, -ENAMETOOLONG, "open", path);
		if (*s != '/' && n > 0 && pre[n - 1] != '/')
			pre[n++] = '/';
		memcpy(pre + n, s, (size_t)(e - s));
		n += (size_t)(e - s);
		pre[n] = '\0';
		s = e;
		if (fl__sys.lstat(pre, &lst) != 0)
			break; /* the rest does not exist yet */
		if (!S_ISLNK(lst.st_mode) || lst.st_uid == 0)
			continue;
		/* Another user's symlink: refused where non-root users can add
		 * entries (not root's, or group/other-writable, sticky or not). */
		{
			char c = pre[parent];

			pre[parent] = '\0';
			r = fl__sys.stat(parent ? pre : "/", &dst);
			if (r == 0 && (dst.st_uid != 0 || (dst.st_mode & (S_IWGRP | S_IWOTH))))
				return fl__errf(NULL, -ENOLCK,
						"%s: passes through a symbolic link owned by uid %d in "
						"%s, a directory other users can change: a root "
						"process does not follow it; lock a path under a "
						"directory only root can change",
						path, (int)lst.st_uid, parent ? pre : "/");
			pre[parent] = c;
		}
	}
	snprintf(dir, sizeof(dir), "%.*s", slash == canon ? 1 : (int)(slash - canon), canon);
	r = fl__dir_open(NULL, dir, FL__DIR_QUIET);
	return r == -ENOENT ? 0 : r;
}

/* A new handle of be on the canonical path canon (taken over), with the
 * resolved options o, set up by the backend.  NULL with *err on failure
 * (canon freed).  Caller holds fl__reg_mu. */
static struct fl_lock *fl__lock_new(const struct fl_backend *be, enum fl_kind kind, char *canon,
				    const struct fl_options *o, int singleton, int *err)
{
	struct fl_lock *lk = calloc(1, sizeof(*lk));
	pthread_condattr_t ca;
	int r;

	if (lk == NULL) {
		free(canon);
		*err = fl__errf(NULL, -ENOMEM, "fl_open: out of memory");
		return NULL;
	}
	lk->be = be;
	lk->kind = kind;
	lk->path = canon;
	lk->name = strrchr(canon, '/') + 1;
	lk->dir = strndup(canon, (size_t)(lk->name - canon > 1 ? lk->name - canon - 1 : 1));
	lk->opt = *o;
	lk->pid = fl__pid();
	lk->refs = 1;
	lk->singleton = singleton;
	pthread_mutex_init(&lk->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lk->cv, &ca);
	pthread_condattr_destroy(&ca);
	r = lk->dir == NULL ? -ENOMEM : 0;
	if (r == 0 && be->setup)
		r = be->setup(lk);
	if (r == 0)
		return lk;
	if (be->teardown)
		be->teardown(lk);
	pthread_mutex_destroy(&lk->mu);
	pthread_cond_destroy(&lk->cv);
	free(lk->dir);
	free(lk->path);
	free(lk);
	*err = r;
	return NULL;
}

FL_EXPORT int fl_open(fl_lock **out, const char *path, enum fl_kind kind,
		      const struct fl_options *opt)
{
	const struct fl_backend *be;
	struct fl_options o;
	struct fl_lock *lk;
	char *canon;
	int r, singleton;

	pthread_once(&fl__lock_once, fl__lock_init);
	fl__err_clear();
	if (out == NULL)
		return fl__errf(NULL, -EINVAL, "fl_open: out is NULL");
	*out = NULL;
	if (path == NULL)
		return fl__errf(NULL, -EINVAL, "fl_open: path is NULL");
	be = fl__backend(kind, opt);
	if (be == NULL) {
		if ((int)kind >= 0 && (int)kind < FL__NKINDS)
			return fl__errf(NULL, -ENOTSUP, "lock kind %s is not built into this library",
					fl__kind_names[kind]);
		return fl__errf(NULL, -EINVAL, "unknown lock kind %d", (int)kind);
	}
	r = fl__opt_resolve(be, path, opt, &o);
	if (r)
		return r;
	canon = fl__canonical(path, &r);
	if (canon == NULL)
		return fl__err(NULL, r, "canonicalize", path);
	r = fl__root_dir_check(be, path, canon);
	if (r != 0) {
		free(canon);
		return r;
	}
	singleton = (o.flags & FL_SINGLETON) ||
		    ((be->caps & FL__CAP_SINGLETON) && !(o.flags & FL_NO_SINGLETON));

	pthread_mutex_lock(&fl__reg_mu);
	if (singleton) {
		struct fl_lock *old = fl__reg_find(kind, canon);
		if (old != NULL) {
			char msg[FL__ERRLEN];

			if (fl__opt_compare(&old->opt, &o, msg, sizeof(msg)) > 0) {
				pthread_mutex_unlock(&fl__reg_mu);
				free(canon);
				return fl__errf(NULL, -EINVAL, "%s", msg);
			}
			old->refs++;
			pthread_mutex_unlock(&fl__reg_mu);
			free(canon);
			*out = old;
			return 0;
		}
	}
	lk = fl__lock_new(be, kind, canon, &o, singleton, &r);
	if (lk == NULL) {
		pthread_mutex_unlock(&fl__reg_mu);
		return r;
	}
	if (singleton) {
		lk->reg_next = fl__reg_head;
		fl__reg_head = lk;
	}
	pthread_mutex_unlock(&fl__reg_mu);
	*out = lk;
	return 0;
}

/* Waits on lk->cv until `until` (monotonic seconds; INFINITY = forever).
 * Caller holds lk->mu.  Returns 0 or ETIMEDOUT. */
static int fl__cv_wait(struct fl_lock *lk, double until)
{
	struct timespec ts;

	if (isinf(until))
		return pthread_cond_wait(&lk->cv, &lk->mu);
	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	return pthread_cond_timedwait(&lk->cv, &lk->mu, &ts);
}

/*
 * An acquisition, in named steps:
 *  1. fl__acquire_check: the handle, the mode and the effective timeout;
 *  2. fl__gate_enter: the context of the calling thread (or the shared
 *     one), waiting while another thread sharing it is mid-transition;
 *     a held context just counts one more level;
 *  3. fl__self_deadlock: a blocking acquire of a path this thread holds
 *     through another handle would never return;
 *  4. fl__acquire_physical: the wait loop, then fl__gate_leave records the
 *     result.  A yielded asynchronous acquisition (FL__YIELDED) is resumed
 *     here, at step 4, by its next call.
 */
static int fl__acquire_check(fl_lock *lk, enum fl_mode mode, double *timeout)
{
	if (lk == NULL)
		return fl__errf(NULL, -EINVAL, "fl_acquire: lock is NULL");
	if (lk->pid != fl__pid())
		return fl__errf(lk, -ECHILD,
				"%s: handle was inherited across fork; open a new one in the child",
				lk->path);
	if (mode != FL_EXCLUSIVE && mode != FL_SHARED)
		return fl__errf(lk, -EINVAL, "%s: unknown mode %d", lk->path, (int)mode);
	if (mode == FL_SHARED && !(fl__be_now(lk)->caps & FL__CAP_SHARED)) {
		if (atomic_load(&lk->fell_back))
			return fl__errf(lk, -ENOTSUP,
					"%s: shared mode is not available after the %s fallback",
					lk->path, lk->be->fallback->name);
		return fl__errf(lk, -ENOTSUP, "%s: shared mode is not supported by this kind",
				lk->path);
	}
	*timeout = fl__acquire_timeout(lk, *timeout);
	return 0;
}

/* Returned by fl__gate_enter when it counted one more level of a held lock. */
#define FL__RECURSED 1

/* A context of lk is busy: an asynchronous acquire never blocks its pool
 * thread here (the context may be busy with a suspended request that needs
 * a thread to finish), it yields until the next poll.  Called with lk->mu
 * held; returns with it released. */
static int fl__gate_yield(struct fl_lock *lk, double timeout, double gate_deadline,
			  struct fl__acq_hook *hook)
{
	double now = fl__now_mono();

	pthread_mutex_unlock(&lk->mu);
	if (fl__hook_cancelled(hook))
		return fl__errf(lk, -ECANCELED, "%s: asynchronous acquire cancelled", lk->path);
	if (now >= gate_deadline)
		return fl__timed_out(lk, timeout);
	hook->until = now + lk->opt.poll_interval;
	if (hook->until > gate_deadline)
		hook->until = gate_deadline;
	return FL__YIELDED;
}

/* A held context takes one more level, in the mode it is held in. */
static int fl__gate_recurse(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, uint64_t tid)
{
	if (h->mode != mode)
		return fl__errf(lk, -EDEADLK, "%s: cannot %s a held lock (held %s, asked %s)",
				lk->path, mode == FL_EXCLUSIVE ? "upgrade" : "downgrade",
				h->mode == FL_EXCLUSIVE ? "exclusive" : "shared",
				mode == FL_EXCLUSIVE ? "exclusive" : "shared");
	if (fl__is_rw(lk) && mode == FL_EXCLUSIVE && h->writer != tid)
		return fl__errf(lk, -EDEADLK,
				"%s: the write lock of this handle is held by another thread",
				lk->path);
	h->counter++;
	return FL__RECURSED;
}

/*
 * Step 2.  Returns 0 with *hp busy and fresh (the caller acquires it
 * physically), FL__RECURSED (one more level counted, nothing to do),
 * FL__YIELDED, or a negative errno.
 */
static int fl__gate_enter(struct fl_lock *lk, enum fl_mode mode, uint64_t tid, double timeout,
			  struct fl__acq_hook *hook, struct fl_hold **hp)
{
	double gate_deadline =
	    timeout < 0 ? INFINITY : (hook ? hook->start : fl__now_mono()) + timeout;
	struct fl_hold *h;
	int r;

	pthread_mutex_lock(&lk->mu);
	while ((h = fl__hold_find(lk, tid)) != NULL && h->busy) {
		if (hook)
			return fl__gate_yield(lk, timeout, gate_deadline, hook);
		/* Another thread sharing this context is mid-transition. */
		if (fl__cv_wait(lk, gate_deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&lk->mu);
			return fl__timed_out(lk, timeout);
		}
	}
	if (h != NULL && h->counter > 0) {
		r = fl__gate_recurse(lk, h, mode, tid);
		pthread_mutex_unlock(&lk->mu);
		return r;
	}
	if (h == NULL && (h = fl__hold_new(lk, tid)) == NULL) {
		pthread_mutex_unlock(&lk->mu);
		return fl__errf(lk, -ENOMEM, "%s: out of memory", lk->path);
	}
	h->busy = 1;
	/* A reused context starts each acquisition with fresh backend state. */
	fl__hold_fresh(lk, h);
	pthread_mutex_unlock(&lk->mu);
	*hp = h;
	return 0;
}

/* Ends the busy edge of h (acquire or adopt) with result r: on success h
 * holds the lock at level 1 for tid.  Returns r. */
static int fl__gate_leave(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, uint64_t tid,
			  int r)
{
	pthread_mutex_lock(&lk->mu);
	h->busy = 0;
	if (r == 0) {
		h->counter = 1;
		h->mode = mode;
		h->writer = tid;
		h->held = 1;
		atomic_store(&h->compromised, 0);
	}
	/* An idle hold stays on the list: the context is reused next time. */
	pthread_cond_broadcast(&lk->cv);
	pthread_mutex_unlock(&lk->mu);
	if (r == 0)
		fl__dl_add(h, tid);
	return r;
}

/* Step 3.  An asynchronous acquire blocks no thread of the owner, which may
 * release the other handle later: no self-deadlock is possible. */
static int fl__self_deadlock(struct fl_lock *lk, uint64_t tid, double timeout,
			     const struct fl__acq_hook *hook)
{
	if (timeout >= 0 || hook != NULL || fl__dl_conflict(lk, tid) == NULL)
		return 0;
	return fl__errf(lk, -EDEADLK,
			"Deadlock: lock '%s' is already held by a different handle in this "
			"thread. Use FL_SINGLETON to enable reentrant locking across handles",
			lk->path);
}

/* Step 4: h is busy.  A yielded acquisition keeps h busy and its backend
 * state for the resume; any other failure undoes the partial claim. */
static int fl__acquire_physical(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode,
				uint64_t tid, double timeout, struct fl__acq_hook *hook)
{
	int r = fl__wait_loop(lk, h, mode, timeout, hook);

	if (r == FL__YIELDED) {
		hook->suspended = h; /* stays busy until resumed */
		return r;
	}
	if (r != 0 && h->be->abandon)
		h->be->abandon(lk, h);
	return fl__gate_leave(lk, h, mode, tid, r);
}

int fl__acquire_as(fl_lock *lk, enum fl_mode mode, double timeout, struct fl__acq_hook *hook)
{
	uint64_t tid = hook ? hook->owner : fl__thread_uid();
	struct fl_hold *h = NULL;
	int r;

	fl__err_clear();
	r = fl__acquire_check(lk, mode, &timeout);
	if (r != 0)
		return r;
	if (hook && hook->suspended) {
		/* Resume a yielded acquisition: h is still busy and its backend
		 * state (kept across attempts) intact.  Even when cancelled it
		 * makes the loop's first attempt: a backend's wait may already
		 * have obtained the lock (rw), which only an attempt reports. */
		h = hook->suspended;
		hook->suspended = NULL;
		return fl__acquire_physical(lk, h, mode, tid, timeout, hook);
	}
	r = fl__gate_enter(lk, mode, tid, timeout, hook, &h);
	if (r != 0)
		return r == FL__RECURSED ? 0 : r;
	r = fl__self_deadlock(lk, tid, timeout, hook);
	if (r != 0)
		return fl__gate_leave(lk, h, mode, tid, r);
	return fl__acquire_physical(lk, h, mode, tid, timeout, hook);
}

double fl__acquire_timeout(const struct fl_lock *lk, double timeout)
{
	if (isnan(timeout))
		timeout = lk->opt.timeout;
	if (lk->opt.flags & FL_NONBLOCK)
		timeout = 0;
	return timeout;
}

FL_EXPORT int fl_acquire(fl_lock *lk, enum fl_mode mode, double timeout)
{
	return fl__acquire_as(lk, mode, timeout, NULL);
}

/* The physical release of h.  Caller does not hold lk->mu; h->busy is set. */
static int fl__release_hold(struct fl_lock *lk, struct fl_hold *h)
{
	return h->be->release(lk, h);
}

int fl__release_as(fl_lock *lk, unsigned flags, uint64_t tid)
{
	struct fl_hold *h;
	int r, gone;

	fl__err_clear();
	if (lk == NULL)
		return fl__errf(NULL, -EINVAL, "fl_release: lock is NULL");
	if (lk->pid != fl__pid())
		return 0; /* never release a parent's lock from a fork child */
	pthread_mutex_lock(&lk->mu);
	for (;;) {
		h = fl__hold_find(lk, tid);
		if (h == NULL || !h->busy || h->counter > 0)
			break;
		pthread_cond_wait(&lk->cv, &lk->mu);
	}
	if (h == NULL || h->counter == 0) {
		pthread_mutex_unlock(&lk->mu);
		if (fl__is_rw(lk) && !(flags & FL_FORCE))
			return fl__errf(lk, -ENOLCK, "%s: release of a lock this handle does not hold",
					lk->path);
		return 0;
	}
	if (fl__is_rw(lk) && h->mode == FL_EXCLUSIVE && h->writer != tid) {
		pthread_mutex_unlock(&lk->mu);
		return fl__errf(lk, -EPERM,
				"%s: the write lock is held by another thread; only it may release it",
				lk->path);
	}
	if (!(flags & FL_FORCE) && h->counter > 1) {
		h->counter--;
		pthread_mutex_unlock(&lk->mu);
		return 0;
	}
	/* Wait out a concurrent release on a shared context. */
	while (h->busy)
		pthread_cond_wait(&lk->cv, &lk->mu);
	if (h->counter == 0) {
		pthread_mutex_unlock(&lk->mu);
		return 0;
	}
	h->busy = 1;
	pthread_mutex_unlock(&lk->mu);

	r = fl__release_hold(lk, h);

	pthread_mutex_lock(&lk->mu);
	h->busy = 0;
	if (r == 0) {
		h->held = 0;
		h->fair_released = fl__now_mono();
	}
	gone = !h->held;
	if (gone)
		h->counter = 0;
	pthread_cond_broadcast(&lk->cv);
	pthread_mutex_unlock(&lk->mu);
	if (gone)
		fl__dl_remove(h);
	return r;
}

FL_EXPORT int fl_release(fl_lock *lk, unsigned flags)
{
	return fl__release_as(lk, flags, fl__thread_uid());
}

static void fl__close(fl_lock *lk, int release);

FL_EXPORT void fl_close(fl_lock *lk)
{
	fl__close(lk, 1);
}

void fl__forget(fl_lock *lk)
{
	fl__close(lk, 0);
}

static void fl__close(fl_lock *lk, int release)
{
	int mine;

	if (lk == NULL)
		return;
	pthread_once(&fl__lock_once, fl__lock_init);
	mine = lk->pid == fl__pid() && release;
	pthread_mutex_lock(&fl__reg_mu);
	if (lk->refs > 1) {
		lk->refs--;
		pthread_mutex_unlock(&fl__reg_mu);
		return;
	}
	if (lk->singleton && lk->pid == fl__pid())
		fl__reg_remove(lk);
	pthread_mutex_unlock(&fl__reg_mu);

	/* Force-release every context.  No thread may still be inside a call. */
	while (lk->holds) {
		struct fl_hold *h = lk->holds;
		lk->holds = h->next;
		if (h->held) {
			if (mine) {
				if (h->be->release(lk, h) != 0 && h->be->drop)
					h->be->drop(lk, h);
				fl__dl_remove(h);
			} else {
				if (h->be->drop)
					h->be->drop(lk, h);
				if (lk->pid == fl__pid())
					fl__dl_remove(h); /* abandoned, not released */
			}
		}
		free(h);
	}
	if (lk->be->teardown)
		lk->be->teardown(lk);
	pthread_mutex_destroy(&lk->mu);
	pthread_cond_destroy(&lk->cv);
	free(lk->dir);
	free(lk->path);
	free(lk);
}

int fl__adopt_pid_ok(pid_t pid, pid_t taker)
{
	if (pid <= 0)
		return 0;
	if (pid == fl__pid())
		return 1;
	return taker > 0 ? pid == taker : fl__pid_alive(pid) == 0;
}

int fl__adopt(fl_lock *lk, enum fl_mode mode, dev_t dev, ino_t ino, pid_t taker)
{
	struct fl_hold *h;
	uint64_t tid = fl__thread_uid();
	int r;

	if (lk == NULL || lk->pid != fl__pid())
		return -EINVAL;
	if (fl__be_now(lk)->adopt == NULL)
		return fl__errf(lk, -ENOTSUP, "%s: this kind cannot adopt a held lock", lk->path);
	pthread_mutex_lock(&lk->mu);
	h = fl__hold_find(lk, tid);
	if (h != NULL && (h->busy || h->counter > 0 || h->held)) {
		pthread_mutex_unlock(&lk->mu);
		return fl__errf(lk, -EBUSY, "%s: the handle's context is in use", lk->path);
	}
	if (h == NULL && (h = fl__hold_new(lk, tid)) == NULL) {
		pthread_mutex_unlock(&lk->mu);
		return -ENOMEM;
	}
	h->busy = 1;
	fl__hold_fresh(lk, h);
	pthread_mutex_unlock(&lk->mu);
	r = h->be->adopt ? h->be->adopt(lk, h, mode, dev, ino, taker) : -ENOTSUP;
	/* A failed adoption leaves an idle hold, reused next time (as acquire). */
	return fl__gate_leave(lk, h, mode, tid, r);
}

/* The hold of the calling thread, for the const query functions. */
static const struct fl_hold *fl__hold_query(const fl_lock *lk, unsigned *counter, int *valid)
{
	struct fl_lock *m = (struct fl_lock *)(uintptr_t)lk;
	const struct fl_hold *h;

	*counter = 0;
	*valid = 0;
	if (lk->pid != fl__pid())
		return NULL;
	pthread_mutex_lock(&m->mu);
	h = fl__hold_find(lk, fl__thread_uid());
	if (h) {
		*counter = h->counter;
		struct fl_hold *mh = (struct fl_hold *)(uintptr_t)h;
		int64_t until = atomic_load(&mh->valid_until_ns);

		*valid = h->counter > 0 && atomic_load(&mh->compromised) == 0 &&
			 (until == 0 || (int64_t)(fl__now_mono() * 1e9) < until);
	}
	pthread_mutex_unlock(&m->mu);
	return h;
}

FL_EXPORT int fl_is_locked(const fl_lock *lk)
{
	unsigned c;
	int v;

	if (lk == NULL)
		return 0;
	fl__hold_query(lk, &c, &v);
	return c > 0;
}

FL_EXPORT unsigned fl_lock_counter(const fl_lock *lk)
{
	unsigned c;
	int v;

	if (lk == NULL)
		return 0;
	fl__hold_query(lk, &c, &v);
	return c;
}

FL_EXPORT int fl_is_valid(const fl_lock *lk)
{
	unsigned c;
	int v;

	if (lk == NULL)
		return 0;
	fl__hold_query(lk, &c, &v);
	return v;
}

FL_EXPORT enum fl_kind fl_kind_of(const fl_lock *lk)
{
	return fl__be_now(lk)->kind;
}

FL_EXPORT const char *fl_path(const fl_lock *lk)
{
	return lk ? lk->path : NULL;
}

FL_EXPORT int fl_fencing_token(const fl_lock *lk, unsigned long long *out)
{
	struct fl_lock *m = (struct fl_lock *)(uintptr_t)lk;
	struct fl_hold *h;
	int r;

	fl__err_clear();
	if (lk == NULL || out == NULL)
		return fl__errf(NULL, -EINVAL, "fl_fencing_token: bad arguments");
	if (fl__be_now(lk)->fencing_token == NULL)
		return fl__errf(lk, -ENOTSUP, "%s: this kind has no fencing tokens", lk->path);
	if (lk->pid != fl__pid())
		return fl__errf(lk, -ENOLCK, "%s: handle was inherited across fork", lk->path);
	pthread_mutex_lock(&m->mu);
	h = fl__hold_find(lk, fl__thread_uid());
	r = h && h->counter > 0 && h->be->fencing_token ? h->be->fencing_token(m, h, out) : -ENOLCK;
	pthread_mutex_unlock(&m->mu);
	if (r != 0)
		return fl__errf(lk, r, "%s: no fencing token (the lock is not held here)", lk->path);
	return 0;
}

FL_EXPORT int fl_inspect(const char *path, enum fl_kind kind, const struct fl_options *opt,
			 struct fl_holder *out)
{
	const struct fl_backend *be = fl__backend(kind, opt);
	struct fl_options o;
	struct fl_holder tmp;
	char *canon;
	int r;

	fl__err_clear();
	if (path == NULL || out == NULL || out->size < offsetof(struct fl_holder, detail))
		return fl__errf(NULL, -EINVAL, "fl_inspect: bad arguments (set out->size)");
	if (be == NULL)
		return fl__errf(NULL, -ENOTSUP, "fl_inspect: kind %d is not built in", (int)kind);
	if (be->inspect == NULL)
		return fl__errf(NULL, -ENOTSUP, "fl_inspect: kind %s cannot be inspected",
				fl__kind_names[kind]);
	r = fl__opt_resolve(be, path, opt, &o);
	if (r)
		return r;
	canon = fl__canonical(path, &r);
	if (canon == NULL)
		return fl__err(NULL, r, "canonicalize", path);
	memset(&tmp, 0, sizeof(tmp));
	tmp.size = sizeof(tmp);
	tmp.age = -1;
	tmp.heartbeat_age = -1;
	tmp.alive = -1;
	r = be->inspect(canon, &o, &tmp);
	free(canon);
	if (r == 0) {
		size_t n = out->size < sizeof(tmp) ? out->size : sizeof(tmp);
		tmp.size = out->size;
		memcpy(out, &tmp, n);
	}
	return r;
}

FL_EXPORT int fl_break(const char *path, enum fl_kind kind, const struct fl_options *opt,
		       unsigned flags, const char *name)
{
	const struct fl_backend *be = fl__backend(kind, opt);
	struct fl_options o;
	char *canon;
	int r;

	fl__err_clear();
	if (path == NULL || (flags & ~FL_FORCE))
		return fl__errf(NULL, -EINVAL, "fl_break: bad arguments");
	if (be == NULL)
		return fl__errf(NULL, -ENOTSUP, "fl_break: kind %d is not built in", (int)kind);
	if (be->brk == NULL)
		return fl__errf(NULL, -ENOTSUP,
				"fl_break: %s locks cannot be broken (the kernel releases them when "
				"the holder exits)",
				fl__kind_names[kind]);
	r = fl__opt_resolve(be, path, opt, &o);
	if (r)
		return r;
	canon = fl__canonical(path, &r);
	if (canon == NULL)
		return fl__err(NULL, r, "canonicalize", path);
	r = fl__root_dir_check(be, path, canon);
	if (r == 0)
		r = be->brk(canon, &o, flags, name);
	free(canon);
	return r;
}
