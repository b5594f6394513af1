/* SPDX-License-Identifier: MIT */
/*
 * backend-etcd.c -- the `etcd` kind: the same locks across machines that
 * share no filesystem, kept by an etcd v3 cluster (3.4 or later).
 *
 * Transport.  Requests go to etcd's JSON gateway through the client in
 * etcd-client.c (endpoints, fail-over, TLS, authentication: see there).
 *
 * Keys.  A lock at canonical path P lives under the key prefix
 * "<prefix>P/" (prefix: fl_options.etcd_prefix, else $FILELOCK_ETCD_PREFIX,
 * else "/filelock").  Each contender owns one key below it, named after
 * its lease in lower-case hex: "<prefix>P/<lease>" for writers (the layout of
 * etcd's own concurrency.Mutex, so a lock `etcdctl lock` holds keeps us out), "<prefix>P/r<lease>" for readers.  The value is the holder's
 * "pid\nhost\nstart\n" record, for inspection only.  Keys further down
 * ("<prefix>P/x/...": the lock of another path) are ignored.
 *
 * Protocol (etcd's Mutex and the ZooKeeper read/write recipe).  Acquire:
 * grant a lease of TTL stale_threshold; in one transaction put our key
 * attached to it if its create revision is 0 (absent) and read the whole
 * prefix.  Our key's create revision orders us among contenders.  A writer
 * holds the lock when no key under the prefix was created before ours; a
 * reader when no *writer* key was.  Otherwise we wait on the nearest earlier
 * key that blocks us (a writer: the nearest of any kind; a reader: the nearest
 * writer) with a watch from the revision we read at, so its deletion between
 * our read and the watch still wakes us, and each waiter watches a
 * different key (no thundering herd).  On wake we re-read the prefix.
 * Giving up (timeout, cancel, error) and releasing both revoke the lease,
 * which deletes the key atomically; a crashed holder's key goes when its
 * lease expires.
 *
 * Liveness.  The lease is kept alive by the process's one heartbeat thread
 * (heartbeat.c) every heartbeat_interval (default TTL/3, the period etcd's
 * own client uses), from the grant on, also while we wait in the queue.  A
 * keep-alive answered with TTL <= 0 means the lease is gone: on_compromise
 * runs with FL_COMPROMISE_MISSING and fl_is_valid() turns false.  When
 * keep-alives keep failing (cluster unreachable, no quorum, our network is
 * cut off) we report FL_COMPROMISE_REFRESH_FAILED as soon as the next beat
 * could no longer succeed before the lease may expire on the server: at the
 * latest (last good keep-alive sent) + TTL - (one interval + one request
 * budget).  The server's deadline is at least (that send) + TTL, so the
 * holder hears of the loss before anyone else can be granted the lock: a
 * holder that checks fl_is_valid() right before it writes never writes
 * after a successor took over, provided its own clock runs at a sane rate
 * and the write itself is shorter than the margin.  A process pause (SIGSTOP,
 * swap) can still outlast the margin; that is what the fencing token is for.
 *
 * Fencing.  fl_fencing_token() returns our key's create revision.  It only
 * grows: a later holder of the same lock always has a larger token, so a
 * storage service that remembers the largest token it saw can refuse writes
 * from a holder that lost its lease (Kleppmann's fencing).
 *
 * Clocks.  Only durations on our CLOCK_MONOTONIC are used; etcd measures
 * TTLs on the leader's clock.  Leader changes extend leases, never shorten
 * them.
 *
 * Fork and exec.  A fork child's handle is refused by the front end; drop
 * leaves the parent's lease alone and the child has no heartbeat.  Pooled
 * curl handles are not cleaned up in a child (that could shut down a TLS
 * session the parent still uses).  Descriptors are curl's, opened
 * close-on-exec; a lock held across exec is abandoned and expires after TTL.
 *
 * Downsides.  Every acquisition costs three round trips (grant, transaction,
 * revoke at release) to the cluster leader, each a raft commit with fsync;
 * reads of the prefix are linearizable.  A pause longer than the margin
 * above defeats any lease lock; only fencing closes that hole.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-client.h"
#include "fl-internal.h"

#define ETCD_DEFAULT_TTL      10.0
#define ETCD_KEYMAX           (4096 + 512) /* prefix + canonical path + "/r<lease>"   */

/* Per-hold state (h->priv), zeroed by the front end before each acquisition. */
struct etcd_hold {
	struct fl_hb hb;
	struct fl_lock *lk;
	int64_t lease;          /* 0 = none                                         */
	double ttl;             /* TTL the server granted                           */
	double last_ok;         /* CLOCK_MONOTONIC when the last good keep-alive was sent */
	int hb_on;
	int queued;             /* our key is in place                              */
	atomic_int held;
	atomic_int lost;        /* the lease is gone or at risk                     */
	int64_t my_rev;         /* our key's create revision (the fencing token)    */
	int64_t watch_rev;      /* revision at which the blocker was seen           */
	char key[ETCD_KEYMAX];
	char wait_key[ETCD_KEYMAX]; /* "" = nothing to watch                         */
};

/* ---- protocol steps --------------------------------------------------- */

/* "<prefix><path>/" into out. */
static int etcd_base(const struct etcd_conf *c, const char *path, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s/", c->prefix, path);

	return n < 0 || (size_t)n >= cap - 24 ? -ENAMETOOLONG : 0;
}

/* Reads every key under base.  *out is the range reply. */
static int etcd_range(struct etcd_conf *c, const struct fl_lock *lk, const char *base,
		      struct json_object **out)
{
	char k64[ETCD_KEYMAX * 4 / 3 + 8], e64[ETCD_KEYMAX * 4 / 3 + 8], end[ETCD_KEYMAX];
	char body[sizeof(k64) * 2 + 64];

	if (fl__etcd_prefix_end(base, end, sizeof(end)) != 0 || fl__etcd_b64_enc(base, strlen(base), k64, sizeof(k64)) ||
	    fl__etcd_b64_enc(end, strlen(end), e64, sizeof(e64)))
		return fl__errf(lk, -ENAMETOOLONG, "etcd: key too long: %s", base);
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", k64, e64);
	return fl__etcd_call(c, lk, "/v3/kv/range", body, c->op_budget, out);
}

/* One key of a range, if it is a direct child of base.  Returns 0 to skip. */
struct etcd_kv {
	char name[ETCD_KEYMAX];
	const char *child;  /* name + strlen(base)                          */
	int writer;
	int64_t create_rev;
	int64_t lease;
	const char *value64;
};

static int etcd_kv_parse(struct json_object *kv, const char *base, struct etcd_kv *out)
{
	struct json_object *k = fl__etcd_json_get(kv, "key"), *v = fl__etcd_json_get(kv, "value");
	size_t bl = strlen(base);

	if (k == NULL || fl__etcd_b64_dec(json_object_get_string(k), out->name, sizeof(out->name)) < 0)
		return 0;
	if (strncmp(out->name, base, bl) != 0 || strchr(out->name + bl, '/') != NULL)
		return 0;
	out->child = out->name + bl;
	out->writer = out->child[0] != 'r';
	out->create_rev = fl__etcd_json_i64(kv, "create_revision");
	out->lease = fl__etcd_json_i64(kv, "lease");
	out->value64 = v ? json_object_get_string(v) : "";
	return 1;
}

static int etcd_revoke(struct etcd_conf *c, const struct fl_lock *lk, int64_t lease)
{
	struct json_object *j = NULL;
	char body[64];
	int r;

	snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", lease);
	r = fl__etcd_call(c, lk, "/v3/lease/revoke", body, c->op_budget, &j);
	json_object_put(j);
	if (r == -ENOENT) /* expired already: the key is gone either way */
		r = 0;
	return r;
}

/* ---- heartbeat -------------------------------------------------------- */

static int etcd_beat(struct fl_hb *hb)
{
	struct etcd_hold *p = (struct etcd_hold *)hb;
	struct etcd_conf *c = p->lk->be_data;
	struct json_object *j = NULL;
	double t0 = fl__now_mono();
	char body[64];
	int r, reason = 0;

	snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", p->lease);
	r = fl__etcd_call(c, p->lk, "/v3/lease/keepalive", body, c->budget, &j);
	if (r == 0) {
		struct json_object *res = fl__etcd_json_get(j, "result");
		int64_t ttl = fl__etcd_json_i64(res ? res : j, "TTL");

		json_object_put(j);
		if (ttl > 0) {
			p->last_ok = t0;
			return 0;
		}
		reason = FL_COMPROMISE_MISSING; /* expired or revoked (fl_break) */
	} else if (fl__now_mono() - p->last_ok + hb->interval + c->budget >= p->ttl) {
		/* The next beat could come too late: the lease is at risk now. */
		reason = FL_COMPROMISE_REFRESH_FAILED;
	} else {
		return r; /* transient: the next beat may still save the lease */
	}
	atomic_store(&p->lost, 1);
	if (atomic_load(&p->held))
		return reason;
	/* Still queued: the next attempt re-queues with a new lease. */
	fl__hb_remove(hb);
	return 0;
}

/* ---- backend methods -------------------------------------------------- */

static int etcd_setup(struct fl_lock *lk)
{
	struct fl_options *o = &lk->opt;
	struct etcd_conf *c;
	int r = fl__opt_no_lifetime(lk, "their own rules");

	if (r != 0)
		return r;
	if (o->stale_threshold == 0)
		o->stale_threshold = o->lease_duration > 0 ? o->lease_duration : ETCD_DEFAULT_TTL;
	if (o->lease_duration > 0 && o->lease_duration != o->stale_threshold)
		return fl__errf(lk, -EINVAL,
				"etcd: lease_duration (%g) and stale_threshold (%g) both name the "
				"lease TTL; set one",
				o->lease_duration, o->stale_threshold);
	if (o->stale_threshold < 1)
		return fl__errf(lk, -EINVAL, "etcd: stale_threshold (the lease TTL) must be >= 1 s, "
					     "got %g", o->stale_threshold);
	if (o->heartbeat_interval == 0)
		o->heartbeat_interval = ceil(o->stale_threshold) / 3;
	if (!(o->heartbeat_interval > 0) || o->heartbeat_interval > ceil(o->stale_threshold) / 2)
		return fl__errf(lk, -EINVAL,
				"etcd: heartbeat_interval must be in (0, TTL/2], got %g with TTL %g",
				o->heartbeat_interval, ceil(o->stale_threshold));
	if (!(o->poll_interval > 0))
		return fl__errf(lk, -EINVAL, "poll_interval must be positive, got %g",
				o->poll_interval);
	r = fl__etcd_conf_new(o, lk, &c);
	if (r != 0)
		return r;
	if (lk->be_data)
		fl__etcd_conf_free(lk->be_data);
	lk->be_data = c;
	/* The caller's strings may be freed after fl_open: the handle's options
	 * (compared when a singleton is reopened) point at our copies.  Only on
	 * the real handle (refs is set), not on fl_open's scratch validation
	 * pass, whose options outlive its teardown. */
	if (lk->refs > 0) {
		o->etcd_endpoints = c->o_str[0];
		o->etcd_prefix = c->o_str[1];
		o->etcd_cacert = c->o_str[2];
		o->etcd_cert = c->o_str[3];
		o->etcd_key = c->o_str[4];
		o->etcd_user = c->o_str[5];
		o->etcd_password = c->o_str[6];
		o->etcd_password_file = c->o_str[7];
	}
	return 0;
}

static void etcd_teardown(struct fl_lock *lk)
{
	fl__etcd_conf_free(lk->be_data);
	lk->be_data = NULL;
}

/* Forgets the lease (heartbeat first, then a best-effort revoke). */
static void etcd_unqueue(struct fl_lock *lk, struct etcd_hold *p)
{
	if (p->hb_on) {
		fl__hb_remove(&p->hb);
		p->hb_on = 0;
	}
	if (p->lease != 0)
		etcd_revoke(lk->be_data, lk, p->lease);
	p->lease = 0;
	p->queued = 0;
	p->wait_key[0] = '\0';
	atomic_store(&p->lost, 0);
	atomic_store(&p->held, 0);
}

/* etcd_unqueue, keeping the failure message the caller is about to report. */
static void etcd_quiet_unqueue(struct fl_lock *lk, struct etcd_hold *p)
{
	char saved[FL__ERRLEN];
	const char *tag = " [etcd]";
	size_t n;

	snprintf(saved, sizeof(saved), "%s", fl_errmsg(lk));
	etcd_unqueue(lk, p);
	n = strlen(saved);
	if (n >= strlen(tag) && strcmp(saved + n - strlen(tag), tag) == 0)
		saved[n - strlen(tag)] = '\0';
	if (saved[0])
		fl__errf(lk, -EIO, "%s", saved);
}

/* Grants a lease, starts its heartbeat, and queues our key in one
 * transaction that also reads the prefix.  *resp is the range reply. */
static int etcd_enqueue(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode,
			const char *base, struct json_object **resp, int64_t *rev)
{
	struct etcd_hold *p = (struct etcd_hold *)h->priv;
	struct etcd_conf *c = lk->be_data;
	char k64[ETCD_KEYMAX * 4 / 3 + 8], b64[ETCD_KEYMAX * 4 / 3 + 8], e64[sizeof(b64)];
	char end[ETCD_KEYMAX], rec[512], v64[700], small[64], *body;
	struct json_object *j = NULL, *rs, *rr;
	size_t bodycap;
	double t0 = fl__now_mono();
	int r, n;

	snprintf(small, sizeof(small), "{\"TTL\":\"%.0f\"}", c->ttl);
	r = fl__etcd_call(c, lk, "/v3/lease/grant", small, c->op_budget, &j);
	if (r != 0)
		return r;
	p->lease = fl__etcd_json_i64(j, "ID");
	p->ttl = (double)fl__etcd_json_i64(j, "TTL");
	json_object_put(j);
	if (p->lease == 0 || p->ttl <= 0)
		return fl__errf(lk, -EPROTO, "etcd: lease grant returned no lease for %s", lk->path);
	p->last_ok = t0;
	p->lk = lk;
	p->hb.interval = c->beat;
	p->hb.give_up = p->ttl; /* etcd_beat decides earlier; this is a backstop */
	p->hb.valid_for = p->ttl;
	p->hb.beat = etcd_beat;
	p->hb.h = h;
	r = fl__hb_add(&p->hb);
	if (r != 0) {
		etcd_revoke(c, lk, p->lease);
		p->lease = 0;
		return fl__errf(lk, r, "etcd: cannot start the heartbeat thread");
	}
	p->hb_on = 1;

	n = snprintf(p->key, sizeof(p->key), "%s%s%" PRIx64, base, mode == FL_SHARED ? "r" : "",
		     (uint64_t)p->lease);
	if (n < 0 || (size_t)n >= sizeof(p->key))
		return fl__errf(lk, -ENAMETOOLONG, "etcd: key too long for %s", lk->path);
	n = fl__p1_format(rec, sizeof(rec));
	if (n < 0)
		n = 0;
	if (fl__etcd_b64_enc(p->key, strlen(p->key), k64, sizeof(k64)) || fl__etcd_b64_enc(rec, (size_t)n, v64, sizeof(v64)) ||
	    fl__etcd_b64_enc(base, strlen(base), b64, sizeof(b64)) || fl__etcd_prefix_end(base, end, sizeof(end)) ||
	    fl__etcd_b64_enc(end, strlen(end), e64, sizeof(e64)))
		return fl__errf(lk, -ENAMETOOLONG, "etcd: key too long: %s", p->key);
	bodycap = strlen(k64) * 2 + strlen(v64) + strlen(b64) * 2 + strlen(e64) * 2 + 512;
	body = malloc(bodycap);
	if (body == NULL)
		return fl__errf(lk, -ENOMEM, "etcd: out of memory");
	snprintf(body, bodycap,
		 "{\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"create_revision\":\"0\"}],"
		 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%" PRId64
		 "\"}},{\"request_range\":{\"key\":\"%s\",\"range_end\":\"%s\"}}],"
		 "\"failure\":[{\"request_range\":{\"key\":\"%s\",\"range_end\":\"%s\"}}]}",
		 k64, k64, v64, p->lease, b64, e64, b64, e64);
	r = fl__etcd_call(c, lk, "/v3/kv/txn", body, c->op_budget, &j);
	free(body);
	if (r != 0)
		return r;
	*rev = fl__etcd_json_i64(fl__etcd_json_get(j, "header"), "revision");
	rs = fl__etcd_json_get(j, "responses");
	rr = NULL;
	if (rs && json_object_is_type(rs, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(rs); i++) {
			struct json_object *x = fl__etcd_json_get(json_object_array_get_idx(rs, i),
							 "response_range");
			if (x)
				rr = x;
		}
	}
	if (rr == NULL) {
		json_object_put(j);
		return fl__errf(lk, -EPROTO, "etcd: transaction reply without a range for %s",
				lk->path);
	}
	*resp = json_object_get(rr);
	json_object_put(j);
	p->queued = 1;
	return 0;
}

/*
 * Judges the queue in a range reply: 0 we hold it; -EAGAIN wait for
 * p->wait_key; -ESTALE our key is gone (lease lost while queued).
 */
static int etcd_judge(struct etcd_hold *p, enum fl_mode mode, const char *base,
		      struct json_object *range, int64_t rev)
{
	struct json_object *kvs = fl__etcd_json_get(range, "kvs");
	static __thread struct etcd_kv kv;
	int64_t best = 0;
	size_t n;

	p->my_rev = 0;
	n = kvs && json_object_is_type(kvs, json_type_array) ? json_object_array_length(kvs) : 0;
	for (size_t i = 0; i < n; i++)
		if (etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv) &&
		    strcmp(kv.name, p->key) == 0)
			p->my_rev = kv.create_rev;
	if (p->my_rev == 0)
		return -ESTALE;
	p->wait_key[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv))
			continue;
		if (kv.create_rev >= p->my_rev || kv.create_rev <= best)
			continue;
		if (mode == FL_SHARED && !kv.writer)
			continue; /* readers never wait for readers */
		best = kv.create_rev;
		snprintf(p->wait_key, sizeof(p->wait_key), "%s", kv.name);
	}
	p->watch_rev = rev;
	return best == 0 ? 0 : -EAGAIN;
}

static int etcd_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	struct etcd_hold *p = (struct etcd_hold *)h->priv;
	struct etcd_conf *c = lk->be_data;
	char base[ETCD_KEYMAX];
	int r = 0;

	(void)how;
	if (etcd_base(c, lk->path, base, sizeof(base)) != 0)
		return fl__errf(lk, -ENAMETOOLONG, "etcd: key too long for %s", lk->path);
	/* Two rounds: a lease lost while queued is replaced once per attempt. */
	for (int round = 0; round < 2; round++) {
		struct json_object *range = NULL;
		int64_t rev = 0;

		if (p->queued && atomic_load(&p->lost))
			etcd_unqueue(lk, p);
		if (!p->queued) {
			r = etcd_enqueue(lk, h, mode, base, &range, &rev);
			if (r != 0) {
				etcd_quiet_unqueue(lk, p);
				return r;
			}
		} else {
			r = etcd_range(c, lk, base, &range);
			if (r != 0)
				return r;
			rev = fl__etcd_json_i64(fl__etcd_json_get(range, "header"), "revision");
		}
		r = etcd_judge(p, mode, base, range, rev);
		json_object_put(range);
		if (r == -ESTALE) {
			etcd_unqueue(lk, p);
			continue;
		}
		if (r != 0)
			return r;
		/* Pairs with etcd_beat: one of us sees the other's store. */
		atomic_store(&p->held, 1);
		if (atomic_load(&p->lost)) {
			etcd_unqueue(lk, p);
			continue;
		}
		return 0;
	}
	return -EAGAIN;
}

/* Watch stream state. */
struct etcd_watch {
	struct json_tokener *tok;
	int woke;     /* a DELETE (or a cancel) arrived */
	int created;
};

static size_t etcd_watch_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct etcd_watch *w = arg;
	size_t n = size * nmemb, off = 0;

	while (off < n) {
		struct json_object *j = json_tokener_parse_ex(w->tok, data + off, (int)(n - off));
		enum json_tokener_error e = json_tokener_get_error(w->tok);
		size_t used = json_tokener_get_parse_end(w->tok);

		if (j == NULL) {
			if (e == json_tokener_continue)
				return n;
			return 0; /* garbage: stop watching, the caller re-reads */
		}
		off += used ? used : n - off;
		json_tokener_reset(w->tok);
		{
			struct json_object *res = fl__etcd_json_get(j, "result"), *ev;
			if (res == NULL || fl__etcd_json_get(j, "error") != NULL) {
				w->woke = 1;
			} else {
				if (fl__etcd_json_get(res, "created"))
					w->created = 1;
				if (fl__etcd_json_get(res, "canceled") || fl__etcd_json_i64(res, "compact_revision") > 0)
					w->woke = 1;
				ev = fl__etcd_json_get(res, "events");
				if (ev && json_object_is_type(ev, json_type_array)) {
					for (size_t i = 0; i < json_object_array_length(ev); i++) {
						struct json_object *t = fl__etcd_json_get(
							json_object_array_get_idx(ev, i), "type");
						if (t && strcmp(json_object_get_string(t), "DELETE") == 0)
							w->woke = 1;
					}
				}
			}
		}
		json_object_put(j);
		if (w->woke)
			return 0; /* abort the transfer: we are done */
		while (off < n && (data[off] == '\n' || data[off] == '\r' || data[off] == ' '))
			off++;
	}
	return n;
}

/* Sleeps until the key we wait for is deleted, or until `until`. */
static void etcd_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	struct etcd_hold *p = (struct etcd_hold *)h->priv;
	struct etcd_conf *c = lk->be_data;
	char k64[ETCD_KEYMAX * 4 / 3 + 8], body[sizeof(k64) + 128];

	if (!p->queued || p->wait_key[0] == '\0' ||
	    fl__etcd_b64_enc(p->wait_key, strlen(p->wait_key), k64, sizeof(k64)) != 0) {
		fl__sleep_until(until);
		return;
	}
	snprintf(body, sizeof(body),
		 "{\"create_request\":{\"key\":\"%s\",\"start_revision\":\"%" PRId64 "\"}}", k64,
		 p->watch_rev + 1);
	for (unsigned k = 0; k < c->nep && !atomic_load(&p->lost); k++) {
		unsigned i = (atomic_load(&c->cur) + k) % c->nep;
		struct etcd_watch w = { 0 };
		char url[1024], errbuf[CURL_ERROR_SIZE], auth[1024];
		struct curl_slist *hdr = NULL;
		double left = until - fl__now_mono();
		CURL *e;
		CURLcode cc;

		if (left <= 0)
			return;
		e = fl__etcd_handle_get(c);
		w.tok = json_tokener_new();
		if (e == NULL || w.tok == NULL) {
			if (e)
				fl__etcd_handle_put(c, e);
			if (w.tok)
				json_tokener_free(w.tok);
			break;
		}
		snprintf(url, sizeof(url), "%s/v3/watch", c->ep[i]);
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		pthread_mutex_lock(&c->mu);
		if (c->token) {
			snprintf(auth, sizeof(auth), "Authorization: %s", c->token);
			hdr = curl_slist_append(hdr, auth);
		}
		pthread_mutex_unlock(&c->mu);
		fl__etcd_setup_handle(c, e, url, body, hdr, (long)(left * 1000) + 1, errbuf);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, etcd_watch_data);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &w);
		cc = curl_easy_perform(e);
		curl_slist_free_all(hdr);
		json_tokener_free(w.tok);
		/* An aborted stream leaves the connection unusable: start afresh. */
		curl_easy_cleanup(e);
		if (w.woke || cc == CURLE_OPERATION_TIMEDOUT)
			return; /* deleted, or time is up */
		if (cc == CURLE_OK && w.created)
			return; /* the server ended the stream: re-read */
		/* This member failed us: try the next one. */
	}
	fl__sleep_until(until);
}

static int etcd_release(struct fl_lock *lk, struct fl_hold *h)
{
	struct etcd_hold *p = (struct etcd_hold *)h->priv;
	int64_t lease = p->lease;
	int r = 0;

	if (p->hb_on) {
		fl__hb_remove(&p->hb);
		p->hb_on = 0;
	}
	if (lease != 0)
		r = etcd_revoke(lk->be_data, lk, lease);
	p->lease = 0;
	p->queued = 0;
	atomic_store(&p->held, 0);
	/* Without the heartbeat the lease expires within TTL anyway: the lock is
	 * given up even when the revoke did not get through. */
	h->held = 0;
	if (r != 0)
		return fl__errf(lk, r, "%s: revoking lease %" PRIx64 " failed (it expires within "
				       "%gs): %s", lk->path, (uint64_t)lease, p->ttl, fl_errmsg(lk));
	return 0;
}

static void etcd_abandon(struct fl_lock *lk, struct fl_hold *h)
{
	etcd_quiet_unqueue(lk, (struct etcd_hold *)h->priv);
}

static void etcd_drop(struct fl_lock *lk, struct fl_hold *h)
{
	struct etcd_hold *p = (struct etcd_hold *)h->priv;

	(void)lk;
	/* Fork child: the lease and its heartbeat are the parent's. */
	p->hb_on = 0;
	p->lease = 0;
	p->queued = 0;
}

static int etcd_token(struct fl_lock *lk, struct fl_hold *h, unsigned long long *out)
{
	struct etcd_hold *p = (struct etcd_hold *)h->priv;

	(void)lk;
	if (!atomic_load(&p->held) || p->my_rev <= 0)
		return -ENOLCK;
	*out = (unsigned long long)p->my_rev;
	return 0;
}

/* ---- inspection and breaking ------------------------------------------ */

static int etcd_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct json_object *range = NULL, *kvs;
	static __thread struct etcd_kv kv;
	struct etcd_conf *c;
	char base[ETCD_KEYMAX], owner[ETCD_KEYMAX] = "", myhost[256] = "";
	int64_t first = 0, first_lease = 0, first_w = 0;
	const char *val64 = NULL;
	int r, owner_writer = 0;
	size_t n;

	r = fl__etcd_conf_new(opt, NULL, &c);
	if (r != 0)
		return r;
	if (etcd_base(c, path, base, sizeof(base)) != 0) {
		fl__etcd_conf_free(c);
		return fl__errf(NULL, -ENAMETOOLONG, "etcd: key too long for %s", path);
	}
	r = etcd_range(c, NULL, base, &range);
	if (r != 0) {
		fl__etcd_conf_free(c);
		return r;
	}
	kvs = fl__etcd_json_get(range, "kvs");
	n = kvs && json_object_is_type(kvs, json_type_array) ? json_object_array_length(kvs) : 0;
	out->state = FL_HOLDER_FREE;
	for (size_t i = 0; i < n; i++) {
		if (!etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv))
			continue;
		if (kv.writer) {
			out->writers = 1;
			if (first_w == 0 || kv.create_rev < first_w)
				first_w = kv.create_rev;
		}
		if (first == 0 || kv.create_rev < first) {
			first = kv.create_rev;
			first_lease = kv.lease;
			owner_writer = kv.writer;
			val64 = kv.value64;
			snprintf(owner, sizeof(owner), "%s", kv.name);
		}
	}
	/* Readers that hold: those created before the first writer. */
	for (size_t i = 0; i < n; i++)
		if (etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv) && !kv.writer &&
		    (first_w == 0 || kv.create_rev < first_w))
			out->readers++;
	if (first != 0) {
		char rec[1024];
		struct fl_p1 p1;
		struct json_object *tj = NULL;
		char body[64];

		out->state = FL_HOLDER_HELD;
		out->mode = owner_writer ? FL_EXCLUSIVE : FL_SHARED;
		if (val64 && fl__etcd_b64_dec(val64, rec, sizeof(rec)) > 0 &&
		    fl__p1_parse(rec, strlen(rec), &p1) == 0) {
			out->pid = p1.pid;
			snprintf(out->host, sizeof(out->host), "%s", p1.host);
			snprintf(out->start, sizeof(out->start), "%s", p1.token);
			if (fl__hostname(myhost, sizeof(myhost)) == 0)
				out->same_host = strcmp(myhost, p1.host) == 0;
		}
		/* The lease's remaining time tells how long ago it was refreshed. */
		snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", first_lease);
		if (first_lease && fl__etcd_call(c, NULL, "/v3/lease/timetolive", body, c->op_budget,
					     &tj) == 0) {
			int64_t left = fl__etcd_json_i64(tj, "TTL"), granted = fl__etcd_json_i64(tj, "grantedTTL");
			if (left > 0 && granted >= left)
				out->heartbeat_age = (double)(granted - left);
		}
		json_object_put(tj);
		out->alive = -1;
		snprintf(out->detail, sizeof(out->detail),
			 "etcd key %.120s, lease %" PRIx64 ", fencing token %" PRId64
			 " (expires with its lease)", owner, (uint64_t)first_lease, first);
	}
	json_object_put(range);
	fl__etcd_conf_free(c);
	return 0;
}

static int etcd_brk(const char *path, const struct fl_options *opt, unsigned flags,
		    const char *name)
{
	struct json_object *range = NULL, *kvs;
	static __thread struct etcd_kv kv;
	struct etcd_conf *c;
	char base[ETCD_KEYMAX];
	int r, found = 0;
	size_t n;

	(void)name;
	r = fl__etcd_conf_new(opt, NULL, &c);
	if (r != 0)
		return r;
	if (etcd_base(c, path, base, sizeof(base)) != 0) {
		fl__etcd_conf_free(c);
		return fl__errf(NULL, -ENAMETOOLONG, "etcd: key too long for %s", path);
	}
	r = etcd_range(c, NULL, base, &range);
	if (r != 0) {
		fl__etcd_conf_free(c);
		return r;
	}
	kvs = fl__etcd_json_get(range, "kvs");
	n = kvs && json_object_is_type(kvs, json_type_array) ? json_object_array_length(kvs) : 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv))
			continue;
		found = 1;
		if (flags & FL_FORCE)
			r = etcd_revoke(c, NULL, kv.lease);
	}
	json_object_put(range);
	fl__etcd_conf_free(c);
	if (r != 0)
		return r;
	if (!found)
		return fl__errf(NULL, -ENOENT, "%s: no etcd lock to break [etcd]", path);
	if (!(flags & FL_FORCE))
		return fl__errf(NULL, -EBUSY,
				"%s: held; etcd expires a dead holder's lease by itself (use "
				"FL_FORCE to revoke live holders) [etcd]",
				path);
	return 0;
}

const struct fl_backend fl__backend_etcd = {
	.version = 1,
	.name = "etcd",
	.kind = FL_ETCD,
	.caps = FL__CAP_SHARED | FL__CAP_RW,
	.hold_size = sizeof(struct etcd_hold),
	.default_poll = 1.0,
	.setup = etcd_setup,
	.attempt = etcd_attempt,
	.wait = etcd_wait,
	.release = etcd_release,
	.drop = etcd_drop,
	.teardown = etcd_teardown,
	.inspect = etcd_inspect,
	.brk = etcd_brk,
	.abandon = etcd_abandon,
	.fencing_token = etcd_token,
};
