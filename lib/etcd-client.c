/* SPDX-License-Identifier: MIT */
/*
 * etcd-client.c -- the HTTP/JSON client of the etcd kind: configuration,
 * a pool of connections, requests with fail-over, and the reading of
 * replies.  The lock protocol on top of it is backend-etcd.c.
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
 * Budgets.  A request gets a time budget from its caller and spends at
 * most a third of it on one endpoint while a longer wait is possible (a
 * member that lost its leader answers only at its own request timeout); a
 * full round of failures pauses 50 ms and goes round again until the
 * budget is spent.  A gateway error that is not "unavailable" or
 * "deadline exceeded" is final.  An expired auth token is renewed once.
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

/* ---- small helpers ---------------------------------------------------- */

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64 of len bytes into out (cap >= 4 * ceil(len / 3) + 1).  Returns 0 or -ENAMETOOLONG. */
int fl__etcd_b64_enc(const void *in, size_t len, char *out, size_t cap)
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
int fl__etcd_b64_dec(const char *in, char *out, size_t cap)
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
int fl__etcd_prefix_end(const char *prefix, char *out, size_t cap)
{
	size_t n = strlen(prefix);

	if (n == 0 || n + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, prefix, n + 1);
	out[n - 1]++;
	return 0;
}

int64_t fl__etcd_json_i64(struct json_object *o, const char *field)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, field, &v))
		return 0;
	if (json_object_is_type(v, json_type_string))
		return strtoll(json_object_get_string(v), NULL, 10);
	return json_object_get_int64(v);
}

struct json_object *fl__etcd_json_get(struct json_object *o, const char *field)
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

void fl__etcd_conf_free(struct etcd_conf *c)
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

	fd = fl__sys.open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fl__sys.fstat(fd, &st) != 0) {
		e = errno;
		if (fd >= 0)
			fl__sys.close(fd);
		return fl__errf(lk, -e, "etcd: password file %s: %s", file, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & S_IROTH)) {
		fl__sys.close(fd);
		return fl__errf(lk, -EACCES, "etcd: password file %s: %s", file,
				!S_ISREG(st.st_mode) ? "not a regular file"
						     : "readable by others (chmod o-r it)");
	}
	e = -fl__read_all(fd, buf, sizeof(buf) - 1, &got);
	fl__sys.close(fd);
	if (e != 0) {
		explicit_bzero(buf, sizeof(buf));
		return fl__errf(lk, -e, "etcd: password file %s: %s", file, strerror(e));
	}
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
int fl__etcd_conf_new(const struct fl_options *o, const struct fl_lock *lk,
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
			fl__etcd_conf_free(c);
			return r;
		}
	}
	if (c->user && c->password == NULL) {
		fl__etcd_conf_free(c);
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
		fl__etcd_conf_free(c);
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

CURL *fl__etcd_handle_get(struct etcd_conf *c)
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

void fl__etcd_handle_put(struct etcd_conf *c, CURL *e)
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
void fl__etcd_setup_handle(struct etcd_conf *c, CURL *e, const char *url, const char *body,
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
	r = fl__etcd_call(c, lk, "/v3/auth/authenticate", json_object_to_json_string(req), c->op_budget,
		      &resp);
	json_object_put(req);
	if (r != 0)
		return r;
	tok = fl__etcd_json_get(resp, "token");
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
int fl__etcd_reply(const char *body, long status, struct json_object **out, int *gateway,
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
	err = fl__etcd_json_get(j, "error");
	if (err == NULL && fl__etcd_json_get(j, "code") != NULL && fl__etcd_json_get(j, "header") == NULL &&
	    fl__etcd_json_get(j, "result") == NULL)
		err = fl__etcd_json_get(j, "message");
	if (err != NULL && !json_object_is_type(err, json_type_object)) {
		*gateway = 1;
		*code = (int)fl__etcd_json_i64(j, "code");
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

/* One fl__etcd_call across its tries. */
struct etcd_try {
	struct etcd_conf *c;
	const struct fl_lock *lk;
	const char *api, *body;
	double budget, deadline;
	CURL *e;                   /* a pooled handle, NULL once given back */
	char (*notes)[ETCD_NOTE]; /* what went wrong where, per endpoint    */
	int all_refused;           /* every endpoint of this round refused  */
	int last;                  /* the errno of the latest failure       */
	int reauth;                /* the token was renewed once already    */
	int final;                 /* a gateway error no other member changes */
};

/* What one try at an endpoint asks its caller to do next. */
enum { ETCD_TRY_NEXT = 1, ETCD_TRY_SAME, ETCD_TRY_STOP };

static int etcd_is_auth(const char *api)
{
	return strcmp(api, "/v3/auth/authenticate") == 0;
}

/* Gives back what the call holds. */
static void etcd_call_end(struct etcd_try *t)
{
	if (t->e)
		fl__etcd_handle_put(t->c, t->e);
	t->e = NULL;
	free(t->notes);
	t->notes = NULL;
}

/* A handle, the notes, and a token when the cluster wants a user. */
static int etcd_call_begin(struct etcd_try *t)
{
	int have;

	t->e = fl__etcd_handle_get(t->c);
	t->notes = calloc(t->c->nep, ETCD_NOTE);
	if (t->e == NULL || t->notes == NULL) {
		etcd_call_end(t);
		return fl__errf(t->lk, -ENOMEM, "etcd: out of memory");
	}
	if (t->c->user == NULL || etcd_is_auth(t->api))
		return 0;
	pthread_mutex_lock(&t->c->mu);
	have = t->c->token != NULL;
	pthread_mutex_unlock(&t->c->mu);
	return have ? 0 : etcd_authenticate(t->c, t->lk);
}

/* The headers of one request: JSON, and the token when there is one. */
static struct curl_slist *etcd_headers(struct etcd_conf *c, const char *api)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	char auth[1024];

	pthread_mutex_lock(&c->mu);
	if (c->token && !etcd_is_auth(api)) {
		snprintf(auth, sizeof(auth), "Authorization: %s", c->token);
		hdr = curl_slist_append(hdr, auth);
	}
	pthread_mutex_unlock(&c->mu);
	return hdr;
}

/* The token was refused: renew it once, then the same endpoint again. */
static int etcd_reauthenticate(struct etcd_try *t)
{
	int r;

	t->reauth = 1;
	fl__etcd_handle_put(t->c, t->e);
	t->e = NULL;
	r = etcd_authenticate(t->c, t->lk);
	if (r != 0)
		return r;
	t->e = fl__etcd_handle_get(t->c);
	if (t->e == NULL)
		return fl__errf(t->lk, -ENOMEM, "etcd: out of memory");
	return ETCD_TRY_SAME;
}

/*
 * One POST to endpoint i, taking at most `left` seconds.  Returns 0 with
 * the answer in *out, ETCD_TRY_NEXT (another member may answer: noted),
 * ETCD_TRY_SAME (re-authenticated), ETCD_TRY_STOP (a final gateway error:
 * noted), or a negative errno already recorded.
 */
static int etcd_try_endpoint(struct etcd_try *t, unsigned i, double left,
			     struct json_object **out)
{
	char url[1024], errbuf[CURL_ERROR_SIZE], what[ETCD_NOTE];
	struct curl_slist *hdr = etcd_headers(t->c, t->api);
	struct etcd_buf b = { 0 };
	int gateway, code, r;
	long status = 0;
	CURLcode cc;

	snprintf(url, sizeof(url), "%s%s", t->c->ep[i], t->api);
	/* One try gets at most a third of the budget: a member that lost its
	 * leader drops proposals and answers only at its own request timeout
	 * (seconds), while a retry after the election succeeds at once. */
	if (left > t->budget / 3 && t->budget / 3 >= 0.3)
		left = t->budget / 3;
	fl__etcd_setup_handle(t->c, t->e, url, t->body, hdr, (long)(left * 1000), errbuf);
	curl_easy_setopt(t->e, CURLOPT_WRITEFUNCTION, etcd_collect);
	curl_easy_setopt(t->e, CURLOPT_WRITEDATA, &b);
	cc = curl_easy_perform(t->e);
	curl_slist_free_all(hdr);
	if (cc != CURLE_OK) {
		if (cc != CURLE_COULDNT_CONNECT)
			t->all_refused = 0;
		t->last = cc == CURLE_COULDNT_CONNECT	 ? -ECONNREFUSED
			  : cc == CURLE_OPERATION_TIMEDOUT ? -EHOSTUNREACH
			  : b.too_big			   ? -EFBIG
							   : -EIO;
		etcd_note(t->notes, i, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		free(b.p);
		return ETCD_TRY_NEXT;
	}
	t->all_refused = 0;
	curl_easy_getinfo(t->e, CURLINFO_RESPONSE_CODE, &status);
	r = fl__etcd_reply(b.p, status, out, &gateway, &code, what, sizeof(what));
	free(b.p);
	if (r == 0)
		return 0;
	if (gateway && (code == ETCD_GRPC_UNAUTH || strstr(what, "invalid auth token")) &&
	    t->c->user && !t->reauth && !etcd_is_auth(t->api))
		return etcd_reauthenticate(t);
	etcd_note(t->notes, i, what);
	t->last = r;
	if (!gateway || code == ETCD_GRPC_UNAVAILABLE || code == 4)
		return ETCD_TRY_NEXT; /* another member may answer (or have a leader) */
	t->final = 1;
	return ETCD_TRY_STOP;
}

int fl__etcd_call(struct etcd_conf *c, const struct fl_lock *lk, const char *api,
		  const char *body, double budget, struct json_object **out)
{
	struct etcd_try t = { .c = c, .lk = lk, .api = api, .body = body, .budget = budget,
			      .deadline = fl__now_mono() + budget, .all_refused = 1,
			      .last = -EHOSTUNREACH };
	unsigned start = atomic_load(&c->cur) % c->nep;
	char msg[FL__ERRLEN - 128];
	int r;

	*out = NULL;
	r = etcd_call_begin(&t);
	if (r != 0) {
		etcd_call_end(&t);
		return r;
	}
	/* Rounds over every endpoint until one answers or the budget is spent:
	 * a member without a leader answers once an election is over. */
	for (unsigned k = 0;; k++) {
		unsigned i = (start + k) % c->nep;

		if (k > 0 && k % c->nep == 0) {
			/* A full round failed: pause briefly, then go round again. */
			double pause = fl__now_mono() + 0.05;
			if (pause >= t.deadline)
				break;
			fl__sleep_until(pause);
			t.all_refused = 1;
		}
		if (t.deadline - fl__now_mono() <= 0)
			break;
		r = etcd_try_endpoint(&t, i, t.deadline - fl__now_mono(), out);
		if (r == ETCD_TRY_NEXT)
			continue;
		if (r == ETCD_TRY_SAME) {
			k--; /* the same endpoint again, now with a token */
			continue;
		}
		if (r == ETCD_TRY_STOP)
			break;
		if (r == 0)
			atomic_store(&c->cur, i);
		etcd_call_end(&t);
		return r;
	}
	if (t.all_refused)
		t.last = -ECONNREFUSED;
	etcd_notes_join(c, t.notes, !t.final, msg, sizeof(msg));
	etcd_call_end(&t);
	return fl__errf(lk, t.last, "etcd %s failed (%s)", api, msg);
}
