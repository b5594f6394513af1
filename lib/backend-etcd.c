/* SPDX-License-Identifier: MIT */
/*
 * backend-etcd.c -- the `etcd` kind: the same locks across machines that
 * share no filesystem, kept by an etcd v3 cluster (3.4 or later).
 *
 * Transport.  etcd has no C client; we speak to its JSON gateway (the
 * grpc-gateway every etcd member serves next to gRPC, under /v3/) over HTTP
 * with libcurl and parse replies with json-c.  Keys and values travel base64
 * encoded, 64-bit numbers as JSON strings.  Endpoints come from
 * fl_options.etcd_endpoints, else $FILELOCK_ETCD_ENDPOINTS (comma-separated),
 * else http://127.0.0.1:2379.  A request goes to the endpoint that answered
 * last and fails over in order to the others when a member refuses, times
 * out, or answers "Unavailable" (no leader, shutting down).  Curl handles are
 * pooled per lock handle so that connections are reused.  TLS (CA, client
 * certificate and key) and user/password authentication map onto curl's TLS
 * options and etcd's /v3/auth/authenticate token.  The password (given, or
 * the first line of etcd_password_file) is sent only over https or to a
 * loopback endpoint unless etcd_allow_insecure_auth says otherwise, and is
 * never part of a message.  Every FILELOCK_ETCD_* variable is read with
 * secure_getenv: a set-user-ID program ignores them.
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

#include "fl-internal.h"

#define ETCD_DEFAULT_TTL      10.0
#define ETCD_DEFAULT_PREFIX   "/filelock"
#define ETCD_DEFAULT_ENDPOINT "http://127.0.0.1:2379"
#define ETCD_POOL             4            /* idle curl handles kept per lock handle   */
#define ETCD_KEYMAX           (4096 + 512) /* prefix + canonical path + "/r<lease>"   */
#define ETCD_RESP_MAX         (64u << 20)  /* refuse replies larger than this         */
#define ETCD_GRPC_UNAVAILABLE 14
#define ETCD_GRPC_UNAUTH      16
#define ETCD_PASSWORD_MAX     4096         /* bytes read from a password file          */

/* Per-handle configuration and connection pool (lk->be_data). */
struct etcd_conf {
	char **ep;              /* endpoint base URLs, without trailing slash       */
	unsigned nep;
	atomic_uint cur;        /* the endpoint that answered last                  */
	char *prefix;
	char *cacert, *cert, *key, *user, *password;
	char *o_str[8];         /* the string options as given (for lk->opt)      */
	double ttl;             /* requested lease TTL, whole seconds               */
	double beat;            /* keep-alive interval                              */
	double budget;          /* time a keep-alive may take over all endpoints    */
	double op_budget;       /* the same for the requests of acquire and release */
	pthread_mutex_t mu;     /* guards pool and token                            */
	CURL *pool[ETCD_POOL];
	unsigned npool;
	char *token;            /* auth token, when user is set                     */
	pid_t pid;              /* process that created the pool                    */
};

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

/* ---- small helpers ---------------------------------------------------- */

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of len bytes into out (cap >= 4 * ceil(len / 3) + 1).  Returns 0 or -ENAMETOOLONG. */
static int b64_enc(const void *in, size_t len, char *out, size_t cap)
{
	const unsigned char *s = in;
	size_t o = 0;

	if (cap < (len + 2) / 3 * 4 + 1)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		out[o++] = b64_alpha[(v >> 18) & 63];
		out[o++] = b64_alpha[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alpha[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alpha[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

/* Decodes base64 into out (NUL-terminated).  Returns the length or -EBADMSG. */
static int b64_dec(const char *in, char *out, size_t cap)
{
	unsigned v = 0, bits = 0;
	size_t o = 0;

	for (; *in && *in != '='; in++) {
		const char *p = strchr(b64_alpha, *in);
		if (p == NULL)
			return -EBADMSG;
		v = (v << 6) | (unsigned)(p - b64_alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o + 1 >= cap)
				return -EBADMSG;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* Range end of a prefix: the prefix with its last byte incremented. */
static int prefix_end(const char *prefix, char *out, size_t cap)
{
	size_t n = strlen(prefix);

	if (n == 0 || n + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, prefix, n + 1);
	out[n - 1]++;
	return 0;
}

static int64_t json_i64(struct json_object *o, const char *field)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, field, &v))
		return 0;
	if (json_object_is_type(v, json_type_string))
		return strtoll(json_object_get_string(v), NULL, 10);
	return json_object_get_int64(v);
}

static struct json_object *json_get(struct json_object *o, const char *field)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, field, &v))
		return NULL;
	return v;
}

/* ---- configuration ---------------------------------------------------- */

static pthread_once_t etcd_once = PTHREAD_ONCE_INIT;

static void etcd_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* The option when set, else the environment variable (NULL when neither). */
static const char *etcd_opt_env(const char *opt, const char *var)
{
	return opt && *opt ? opt : secure_getenv(var);
}

static void etcd_conf_free(struct etcd_conf *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->nep; i++)
		free(c->ep[i]);
	free(c->ep);
	/* In a fork child the pooled connections are the parent's too. */
	if (c->pid == fl__pid())
		for (unsigned i = 0; i < c->npool; i++)
			curl_easy_cleanup(c->pool[i]);
	pthread_mutex_destroy(&c->mu);
	free(c->prefix);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	free(c->user);
	free(c->password);
	for (int i = 0; i < 8; i++)
		free(c->o_str[i]);
	free(c->token);
	free(c);
}

/* Splits a comma-separated endpoint list; "host:port" gets a scheme. */
static int etcd_parse_endpoints(struct etcd_conf *c, const char *list, const struct fl_lock *lk)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		char *url;

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '/'))
			n--;
		if (n > 0) {
			int has_scheme = memmem(p, n, "://", 3) != NULL;
			const char *scheme = has_scheme ? "" : c->cacert ? "https://" : "http://";
			char **nep = realloc(c->ep, (c->nep + 1) * sizeof(*nep));

			if (nep == NULL)
				return fl__errf(lk, -ENOMEM, "etcd: out of memory");
			c->ep = nep;
			url = malloc(strlen(scheme) + n + 1);
			if (url == NULL)
				return fl__errf(lk, -ENOMEM, "etcd: out of memory");
			sprintf(url, "%s%.*s", scheme, (int)n, p);
			c->ep[c->nep++] = url;
		}
		p = e ? e + 1 : p + strlen(p);
	}
	if (c->nep == 0)
		return fl__errf(lk, -EINVAL, "etcd: no endpoint in \"%s\"", list);
	return 0;
}

/*
 * The password for etcd_user from the first line of a file (the way
 * etcdctl and container secrets hand it over), so that it shows neither in
 * the environment nor on a command line.  The file must be a regular file
 * not readable by others.  Nothing read from it is ever printed.
 */
static int etcd_read_password(const char *file, const struct fl_lock *lk, char **out)
{
	char buf[ETCD_PASSWORD_MAX + 1];
	struct stat st;
	size_t got = 0;
	int fd, e;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		e = errno;
		if (fd >= 0)
			close(fd);
		return fl__errf(lk, -e, "etcd: password file %s: %s", file, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & S_IROTH)) {
		close(fd);
		return fl__errf(lk, -EACCES, "etcd: password file %s: %s", file,
				!S_ISREG(st.st_mode) ? "not a regular file"
						     : "readable by others (chmod o-r it)");
	}
	e = -fl__read_all(fd, buf, sizeof(buf) - 1, &got);
	close(fd);
	if (e != 0)
		return fl__errf(lk, -e, "etcd: password file %s: %s", file, strerror(e));
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0')
		return fl__errf(lk, -EINVAL, "etcd: password file %s: the first line is empty", file);
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *out ? 0 : fl__errf(lk, -ENOMEM, "etcd: out of memory");
}

/* Is the host of url (after "http://") a loopback address?  Only the
 * literal forms count: "127.evil.example" is a name, not 127/8. */
static int etcd_loopback(const char *host)
{
	size_t n = strcspn(host, ":/");

	if (host[0] == '[')
		return strncmp(host, "[::1]", 5) == 0 && (host[5] == '\0' || host[5] == ':' ||
							  host[5] == '/');
	if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	return n > 4 && strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == n;
}

/*
 * A password sent over plain http can be read by anyone on the path, and
 * the token etcd returns for it too.  Loopback stays on this host; any
 * other http endpoint needs the explicit opt-in.
 */
static int etcd_check_auth_transport(const struct etcd_conf *c, const struct fl_options *o,
				     const struct fl_lock *lk)
{
	const char *env = secure_getenv("FILELOCK_ETCD_ALLOW_INSECURE_AUTH");

	if (o->etcd_allow_insecure_auth || (env != NULL && env[0] != '\0' && strcmp(env, "0") != 0))
		return 0;
	for (unsigned i = 0; i < c->nep; i++)
		if (strncasecmp(c->ep[i], "http://", 7) == 0 && !etcd_loopback(c->ep[i] + 7))
			return fl__errf(lk, -EINVAL,
					"etcd: refusing to send the password of user %s over plain "
					"http to %s (use an https:// endpoint, or allow it with "
					"etcd_allow_insecure_auth or FILELOCK_ETCD_ALLOW_INSECURE_AUTH=1)",
					c->user, c->ep[i]);
	return 0;
}

/* Builds the configuration from validated options.  Errors via fl__errf. */
static int etcd_conf_new(const struct fl_options *o, const struct fl_lock *lk,
			 struct etcd_conf **out)
{
	struct etcd_conf *c = calloc(1, sizeof(*c));
	const char *eps, *prefix, *pwfile;
	int r;

	*out = NULL;
	if (c == NULL)
		return fl__errf(lk, -ENOMEM, "etcd: out of memory");
	pthread_once(&etcd_once, etcd_global_init);
	pthread_mutex_init(&c->mu, NULL);
	c->pid = fl__pid();
	c->cacert = dup_or_null(etcd_opt_env(o->etcd_cacert, "FILELOCK_ETCD_CACERT"));
	c->cert = dup_or_null(etcd_opt_env(o->etcd_cert, "FILELOCK_ETCD_CERT"));
	c->key = dup_or_null(etcd_opt_env(o->etcd_key, "FILELOCK_ETCD_KEY"));
	c->user = dup_or_null(etcd_opt_env(o->etcd_user, "FILELOCK_ETCD_USER"));
	c->password = dup_or_null(etcd_opt_env(o->etcd_password, "FILELOCK_ETCD_PASSWORD"));
	{
		const char *given[8] = { o->etcd_endpoints, o->etcd_prefix, o->etcd_cacert,
					 o->etcd_cert,      o->etcd_key,    o->etcd_user,
					 o->etcd_password,  o->etcd_password_file };
		for (int i = 0; i < 8; i++)
			c->o_str[i] = given[i] ? strdup(given[i]) : NULL;
	}
	pwfile = etcd_opt_env(o->etcd_password_file, "FILELOCK_ETCD_PASSWORD_FILE");
	if (c->user && c->password == NULL && pwfile != NULL && *pwfile) {
		r = etcd_read_password(pwfile, lk, &c->password);
		if (r != 0) {
			etcd_conf_free(c);
			return r;
		}
	}
	if (c->user && c->password == NULL) {
		etcd_conf_free(c);
		return fl__errf(lk, -EINVAL,
				"etcd: etcd_user is set but no etcd_password or etcd_password_file");
	}
	eps = o->etcd_endpoints;
	if (eps == NULL || !*eps)
		eps = secure_getenv("FILELOCK_ETCD_ENDPOINTS");
	if (eps == NULL || !*eps)
		eps = ETCD_DEFAULT_ENDPOINT;
	prefix = o->etcd_prefix;
	if (prefix == NULL)
		prefix = secure_getenv("FILELOCK_ETCD_PREFIX");
	if (prefix == NULL)
		prefix = ETCD_DEFAULT_PREFIX;
	c->prefix = strdup(prefix);
	r = c->prefix == NULL ? fl__errf(lk, -ENOMEM, "etcd: out of memory") : 0;
	if (r == 0)
		r = etcd_parse_endpoints(c, eps, lk);
	if (r == 0 && c->user)
		r = etcd_check_auth_transport(c, o, lk);
	if (r != 0) {
		etcd_conf_free(c);
		return r;
	}
	c->ttl = ceil(o->stale_threshold);
	c->beat = o->heartbeat_interval;
	/* One request (over every endpoint) must fit well inside a beat. */
	c->budget = c->ttl / 6;
	if (c->budget < 0.3)
		c->budget = 0.3;
	if (c->budget > 5)
		c->budget = 5;
	/* Acquire and release may wait for a leader election to end. */
	c->op_budget = c->ttl / 2;
	if (c->op_budget < 1)
		c->op_budget = 1;
	if (c->op_budget > 10)
		c->op_budget = 10;
	*out = c;
	return 0;
}

/* ---- HTTP ------------------------------------------------------------- */

struct etcd_buf {
	char *p;
	size_t len, cap;
	int too_big;
};

static size_t etcd_collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct etcd_buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (cap > ETCD_RESP_MAX) {
			b->too_big = 1;
			return 0;
		}
		np = realloc(b->p, cap);
		if (np == NULL)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static CURL *etcd_handle_get(struct etcd_conf *c)
{
	CURL *e = NULL;

	pthread_mutex_lock(&c->mu);
	if (c->npool > 0)
		e = c->pool[--c->npool];
	pthread_mutex_unlock(&c->mu);
	if (e == NULL)
		e = curl_easy_init();
	return e;
}

static void etcd_handle_put(struct etcd_conf *c, CURL *e)
{
	pthread_mutex_lock(&c->mu);
	if (c->npool < ETCD_POOL) {
		c->pool[c->npool++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	if (e != NULL)
		curl_easy_cleanup(e);
}

/* Sets the options every request shares.  `ms` bounds the whole transfer. */
static void etcd_setup_handle(struct etcd_conf *c, CURL *e, const char *url, const char *body,
			      struct curl_slist *hdr, long ms, char *errbuf)
{
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms < 1 ? 1L : ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms < 1 ? 1L : ms < 1000 ? ms : 1000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	if (c->cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->cacert);
	if (c->cert)
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
	errbuf[0] = '\0';
}

#define ETCD_NOTE 200

/* Remembers what went wrong at endpoint i (the latest failure wins). */
static void etcd_note(char (*notes)[ETCD_NOTE], unsigned i, const char *what)
{
	if (notes != NULL)
		snprintf(notes[i], ETCD_NOTE, "%.*s", ETCD_NOTE - 1, what);
}

/* "<ep>: <what>; ..." for every endpoint, in order; with `all`, also those
 * never tried because the time budget ran out. */
static void etcd_notes_join(const struct etcd_conf *c, char (*notes)[ETCD_NOTE], int all,
			    char *msg, size_t cap)
{
	size_t n = 0;

	msg[0] = '\0';
	for (unsigned i = 0; i < c->nep && n + 4 < cap; i++) {
		int w;

		if (!all && !notes[i][0])
			continue;
		w = snprintf(msg + n, cap - n, "%s%s: %s", n ? "; " : "", c->ep[i],
			     notes[i][0] ? notes[i] : "not tried (time budget spent)");
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static int etcd_call(struct etcd_conf *c, const struct fl_lock *lk, const char *api,
		     const char *body, double budget, struct json_object **out);

/* Obtains an auth token for c->user.  Caller holds no lock. */
static int etcd_authenticate(struct etcd_conf *c, const struct fl_lock *lk)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *tok;
	char *copy;
	int r;

	if (req == NULL)
		return fl__errf(lk, -ENOMEM, "etcd: out of memory");
	json_object_object_add(req, "name", json_object_new_string(c->user));
	json_object_object_add(req, "password",
			       json_object_new_string(c->password ? c->password : ""));
	r = etcd_call(c, lk, "/v3/auth/authenticate", json_object_to_json_string(req), c->op_budget,
		      &resp);
	json_object_put(req);
	if (r != 0)
		return r;
	tok = json_get(resp, "token");
	if (tok == NULL) {
		json_object_put(resp);
		return fl__errf(lk, -EACCES, "etcd: authentication as %s returned no token", c->user);
	}
	copy = strdup(json_object_get_string(tok));
	json_object_put(resp);
	if (copy == NULL)
		return fl__errf(lk, -ENOMEM, "etcd: out of memory");
	pthread_mutex_lock(&c->mu);
	free(c->token);
	c->token = copy;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Maps a gateway error reply ({"error","code","message"}) to an errno. */
static int etcd_grpc_errno(int code)
{
	switch (code) {
	case 5: /* NotFound */
		return -ENOENT;
	case 7: /* PermissionDenied */
	case ETCD_GRPC_UNAUTH:
		return -EACCES;
	case 3: /* InvalidArgument */
	case 11: /* OutOfRange */
		return -EINVAL;
	case 8: /* ResourceExhausted */
		return -ENOSPC;
	case 4: /* DeadlineExceeded */
	case ETCD_GRPC_UNAVAILABLE:
		return -EHOSTDOWN;
	default:
		return -EIO;
	}
}

/*
 * Judges one HTTP reply (body: NUL-terminated, or NULL when empty).
 * Returns 0 with *out the parsed answer, or a negative errno with *out NULL
 * and `what` saying what came back: -EPROTO for a body that is not JSON or
 * a status other than 200, else the errno of a gateway error
 * ({"error"|"message", "code"}), with *gateway set and *code its gRPC code.
 * A pure function of its input: the etcd fuzz target drives it.
 */
static int etcd_reply(const char *body, long status, struct json_object **out, int *gateway,
		      int *code, char *what, size_t cap)
{
	struct json_object *j = body ? json_tokener_parse(body) : NULL, *err;
	int r;

	*out = NULL;
	*gateway = 0;
	*code = 0;
	if (j == NULL) {
		snprintf(what, cap, "HTTP %ld, not JSON: %.80s", status, body ? body : "(empty)");
		return -EPROTO;
	}
	/* Gateway errors: {"error": "...", "code": N, "message": "..."}. */
	err = json_get(j, "error");
	if (err == NULL && json_get(j, "code") != NULL && json_get(j, "header") == NULL &&
	    json_get(j, "result") == NULL)
		err = json_get(j, "message");
	if (err != NULL && !json_object_is_type(err, json_type_object)) {
		*gateway = 1;
		*code = (int)json_i64(j, "code");
		snprintf(what, cap, "%s", json_object_get_string(err));
		r = etcd_grpc_errno(*code);
		/* etcd reports these as InvalidArgument. */
		if (strstr(what, "authentication failed") || strstr(what, "user name is empty") ||
		    strstr(what, "permission denied"))
			r = -EACCES;
		json_object_put(j);
		return r;
	}
	if (status != 200) {
		snprintf(what, cap, "HTTP status %ld", status);
		json_object_put(j);
		return -EPROTO;
	}
	*out = j;
	return 0;
}

/*
 * POSTs body to api on the cluster and parses the JSON reply into *out.
 * Fails over between endpoints; the whole call takes at most `budget`
 * seconds.  Returns 0, or a negative errno with a message naming every
 * endpoint tried and what went wrong there.
 */
static int etcd_call(struct etcd_conf *c, const struct fl_lock *lk, const char *api,
		     const char *body, double budget, struct json_object **out)
{
	double deadline = fl__now_mono() + budget;
	unsigned start = atomic_load(&c->cur) % c->nep;
	int all_refused = 1, last = -EHOSTUNREACH, reauth = 0, final = 0;
	char msg[FL__ERRLEN - 128];
	char (*notes)[ETCD_NOTE] = calloc(c->nep, ETCD_NOTE);
	CURL *e;

	*out = NULL;
	e = etcd_handle_get(c);
	if (e == NULL || notes == NULL) {
		if (e)
			etcd_handle_put(c, e);
		free(notes);
		return fl__errf(lk, -ENOMEM, "etcd: out of memory");
	}
	if (c->user && strcmp(api, "/v3/auth/authenticate") != 0) {
		int have;

		pthread_mutex_lock(&c->mu);
		have = c->token != NULL;
		pthread_mutex_unlock(&c->mu);
		if (!have) {
			int r = etcd_authenticate(c, lk);
			if (r != 0) {
				etcd_handle_put(c, e);
				free(notes);
				return r;
			}
		}
	}
	/* Rounds over every endpoint until one answers or the budget is spent:
	 * a member without a leader answers once an election is over. */
	for (unsigned k = 0;; k++) {
		unsigned i = (start + k) % c->nep;
		char url[1024], errbuf[CURL_ERROR_SIZE], auth[1024];
		struct curl_slist *hdr = NULL;
		struct etcd_buf b = { 0 };
		struct json_object *j;
		double left = deadline - fl__now_mono();
		char what[ETCD_NOTE];
		int gateway, code, r;
		long status = 0;
		CURLcode cc;

		if (k > 0 && k % c->nep == 0) {
			/* A full round failed: pause briefly, then go round again. */
			double pause = fl__now_mono() + 0.05;
			if (pause >= deadline)
				break;
			fl__sleep_until(pause);
			left = deadline - fl__now_mono();
			all_refused = 1;
		}
		if (left <= 0)
			break;
		snprintf(url, sizeof(url), "%s%s", c->ep[i], api);
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		pthread_mutex_lock(&c->mu);
		if (c->token && strcmp(api, "/v3/auth/authenticate") != 0) {
			snprintf(auth, sizeof(auth), "Authorization: %s", c->token);
			hdr = curl_slist_append(hdr, auth);
		}
		pthread_mutex_unlock(&c->mu);
		/* One try gets at most a third of the budget: a member that lost its
		 * leader drops proposals and answers only at its own request timeout
		 * (seconds), while a retry after the election succeeds at once. */
		if (left > budget / 3 && budget / 3 >= 0.3)
			left = budget / 3;
		etcd_setup_handle(c, e, url, body, hdr, (long)(left * 1000), errbuf);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, etcd_collect);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
		cc = curl_easy_perform(e);
		curl_slist_free_all(hdr);
		if (cc != CURLE_OK) {
			if (cc != CURLE_COULDNT_CONNECT)
				all_refused = 0;
			last = cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED
			       : cc == CURLE_OPERATION_TIMEDOUT ? -EHOSTUNREACH
			       : b.too_big ? -EFBIG : -EIO;
			etcd_note(notes, i, errbuf[0] ? errbuf : curl_easy_strerror(cc));
			free(b.p);
			continue;
		}
		all_refused = 0;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		r = etcd_reply(b.p, status, &j, &gateway, &code, what, sizeof(what));
		free(b.p);
		if (r != 0 && gateway && (code == ETCD_GRPC_UNAUTH || strstr(what, "invalid auth token")) &&
		    c->user && !reauth && strcmp(api, "/v3/auth/authenticate") != 0) {
			reauth = 1;
			etcd_handle_put(c, e);
			r = etcd_authenticate(c, lk);
			if (r != 0) {
				free(notes);
				return r;
			}
			e = etcd_handle_get(c);
			if (e == NULL) {
				free(notes);
				return fl__errf(lk, -ENOMEM, "etcd: out of memory");
			}
			k--; /* the same endpoint again, now with a token */
			continue;
		}
		if (r != 0) {
			etcd_note(notes, i, what);
			last = r;
			if (!gateway || code == ETCD_GRPC_UNAVAILABLE || code == 4)
				continue; /* another member may answer (or have a leader) */
			final = 1;
			break;
		}
		atomic_store(&c->cur, i);
		etcd_handle_put(c, e);
		free(notes);
		*out = j;
		return 0;
	}
	etcd_handle_put(c, e);
	if (all_refused)
		last = -ECONNREFUSED;
	etcd_notes_join(c, notes, !final, msg, sizeof(msg));
	free(notes);
	return fl__errf(lk, last, "etcd %s failed (%s)", api, msg);
}

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

	if (prefix_end(base, end, sizeof(end)) != 0 || b64_enc(base, strlen(base), k64, sizeof(k64)) ||
	    b64_enc(end, strlen(end), e64, sizeof(e64)))
		return fl__errf(lk, -ENAMETOOLONG, "etcd: key too long: %s", base);
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", k64, e64);
	return etcd_call(c, lk, "/v3/kv/range", body, c->op_budget, out);
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
	struct json_object *k = json_get(kv, "key"), *v = json_get(kv, "value");
	size_t bl = strlen(base);

	if (k == NULL || b64_dec(json_object_get_string(k), out->name, sizeof(out->name)) < 0)
		return 0;
	if (strncmp(out->name, base, bl) != 0 || strchr(out->name + bl, '/') != NULL)
		return 0;
	out->child = out->name + bl;
	out->writer = out->child[0] != 'r';
	out->create_rev = json_i64(kv, "create_revision");
	out->lease = json_i64(kv, "lease");
	out->value64 = v ? json_object_get_string(v) : "";
	return 1;
}

static int etcd_revoke(struct etcd_conf *c, const struct fl_lock *lk, int64_t lease)
{
	struct json_object *j = NULL;
	char body[64];
	int r;

	snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", lease);
	r = etcd_call(c, lk, "/v3/lease/revoke", body, c->op_budget, &j);
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
	r = etcd_call(c, p->lk, "/v3/lease/keepalive", body, c->budget, &j);
	if (r == 0) {
		struct json_object *res = json_get(j, "result");
		int64_t ttl = json_i64(res ? res : j, "TTL");

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
	r = etcd_conf_new(o, lk, &c);
	if (r != 0)
		return r;
	if (lk->be_data)
		etcd_conf_free(lk->be_data);
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
	etcd_conf_free(lk->be_data);
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
	r = etcd_call(c, lk, "/v3/lease/grant", small, c->op_budget, &j);
	if (r != 0)
		return r;
	p->lease = json_i64(j, "ID");
	p->ttl = (double)json_i64(j, "TTL");
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
	if (b64_enc(p->key, strlen(p->key), k64, sizeof(k64)) || b64_enc(rec, (size_t)n, v64, sizeof(v64)) ||
	    b64_enc(base, strlen(base), b64, sizeof(b64)) || prefix_end(base, end, sizeof(end)) ||
	    b64_enc(end, strlen(end), e64, sizeof(e64)))
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
	r = etcd_call(c, lk, "/v3/kv/txn", body, c->op_budget, &j);
	free(body);
	if (r != 0)
		return r;
	*rev = json_i64(json_get(j, "header"), "revision");
	rs = json_get(j, "responses");
	rr = NULL;
	if (rs && json_object_is_type(rs, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(rs); i++) {
			struct json_object *x = json_get(json_object_array_get_idx(rs, i),
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
	struct json_object *kvs = json_get(range, "kvs");
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
			rev = json_i64(json_get(range, "header"), "revision");
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
			struct json_object *res = json_get(j, "result"), *ev;
			if (res == NULL || json_get(j, "error") != NULL) {
				w->woke = 1;
			} else {
				if (json_get(res, "created"))
					w->created = 1;
				if (json_get(res, "canceled") || json_i64(res, "compact_revision") > 0)
					w->woke = 1;
				ev = json_get(res, "events");
				if (ev && json_object_is_type(ev, json_type_array)) {
					for (size_t i = 0; i < json_object_array_length(ev); i++) {
						struct json_object *t = json_get(
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
	    b64_enc(p->wait_key, strlen(p->wait_key), k64, sizeof(k64)) != 0) {
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
		e = etcd_handle_get(c);
		w.tok = json_tokener_new();
		if (e == NULL || w.tok == NULL) {
			if (e)
				etcd_handle_put(c, e);
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
		etcd_setup_handle(c, e, url, body, hdr, (long)(left * 1000) + 1, errbuf);
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

	r = etcd_conf_new(opt, NULL, &c);
	if (r != 0)
		return r;
	if (etcd_base(c, path, base, sizeof(base)) != 0) {
		etcd_conf_free(c);
		return fl__errf(NULL, -ENAMETOOLONG, "etcd: key too long for %s", path);
	}
	r = etcd_range(c, NULL, base, &range);
	if (r != 0) {
		etcd_conf_free(c);
		return r;
	}
	kvs = json_get(range, "kvs");
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
		if (val64 && b64_dec(val64, rec, sizeof(rec)) > 0 &&
		    fl__p1_parse(rec, strlen(rec), &p1) == 0) {
			out->pid = p1.pid;
			snprintf(out->host, sizeof(out->host), "%s", p1.host);
			snprintf(out->start, sizeof(out->start), "%s", p1.token);
			if (fl__hostname(myhost, sizeof(myhost)) == 0)
				out->same_host = strcmp(myhost, p1.host) == 0;
		}
		/* The lease's remaining time tells how long ago it was refreshed. */
		snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", first_lease);
		if (first_lease && etcd_call(c, NULL, "/v3/lease/timetolive", body, c->op_budget,
					     &tj) == 0) {
			int64_t left = json_i64(tj, "TTL"), granted = json_i64(tj, "grantedTTL");
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
	etcd_conf_free(c);
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
	r = etcd_conf_new(opt, NULL, &c);
	if (r != 0)
		return r;
	if (etcd_base(c, path, base, sizeof(base)) != 0) {
		etcd_conf_free(c);
		return fl__errf(NULL, -ENAMETOOLONG, "etcd: key too long for %s", path);
	}
	r = etcd_range(c, NULL, base, &range);
	if (r != 0) {
		etcd_conf_free(c);
		return r;
	}
	kvs = json_get(range, "kvs");
	n = kvs && json_object_is_type(kvs, json_type_array) ? json_object_array_length(kvs) : 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!etcd_kv_parse(json_object_array_get_idx(kvs, i), base, &kv))
			continue;
		found = 1;
		if (flags & FL_FORCE)
			r = etcd_revoke(c, NULL, kv.lease);
	}
	json_object_put(range);
	etcd_conf_free(c);
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
