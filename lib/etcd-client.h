/* SPDX-License-Identifier: MIT */
/*
 * etcd-client.h -- the HTTP/JSON client of the etcd kind (etcd-client.c),
 * used by the lock protocol in backend-etcd.c.  Never installed.
 */
#ifndef FL_ETCD_CLIENT_H
#define FL_ETCD_CLIENT_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fl-internal.h"

#define ETCD_DEFAULT_PREFIX   "/filelock"
#define ETCD_DEFAULT_ENDPOINT "http://127.0.0.1:2379"
#define ETCD_POOL             4            /* idle curl handles kept per lock handle   */
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


/* Builds the configuration from validated options (endpoints, prefix, TLS,
 * credentials from the options, else FILELOCK_ETCD_* read with
 * secure_getenv; the request budgets from the TTL).  Errors via fl__errf. */
int fl__etcd_conf_new(const struct fl_options *o, const struct fl_lock *lk,
		      struct etcd_conf **out);
void fl__etcd_conf_free(struct etcd_conf *c);

/* A pooled curl handle of c (a new one when the pool is empty; NULL when
 * out of memory), and giving it back. */
CURL *fl__etcd_handle_get(struct etcd_conf *c);
void fl__etcd_handle_put(struct etcd_conf *c, CURL *e);
/* Sets the options every request shares (URL, POST body, headers, TLS,
 * timeouts).  `ms` bounds the whole transfer. */
void fl__etcd_setup_handle(struct etcd_conf *c, CURL *e, const char *url, const char *body,
			   struct curl_slist *hdr, long ms, char *errbuf);

/* Bytes kept of what went wrong at one endpoint. */
#define ETCD_NOTE 200

/*
 * Judges one HTTP reply (body: NUL-terminated, or NULL when empty).
 * Returns 0 with *out the parsed answer, or a negative errno with *out NULL
 * and `what` saying what came back: -EPROTO for a body that is not JSON or
 * a status other than 200, else the errno of a gateway error
 * ({"error"|"message", "code"}), with *gateway set and *code its gRPC code.
 * A pure function of its input: the etcd fuzz target drives it.
 */
int fl__etcd_reply(const char *body, long status, struct json_object **out, int *gateway,
		   int *code, char *what, size_t cap);
/*
 * POSTs body to api on the cluster and parses the JSON reply into *out.
 * Fails over between endpoints; the whole call takes at most `budget`
 * seconds.  Returns 0, or a negative errno with a message naming every
 * endpoint tried and what went wrong there.
 */
int fl__etcd_call(struct etcd_conf *c, const struct fl_lock *lk, const char *api,
		  const char *body, double budget, struct json_object **out);

/* base64 of len bytes into out (cap >= 4 * ceil(len / 3) + 1).  Returns 0
 * or -ENAMETOOLONG. */
int fl__etcd_b64_enc(const void *in, size_t len, char *out, size_t cap);
/* Decodes base64 into out (NUL-terminated).  Returns the length or -EBADMSG. */
int fl__etcd_b64_dec(const char *in, char *out, size_t cap);
/* Range end of a key prefix: the prefix with its last byte incremented. */
int fl__etcd_prefix_end(const char *prefix, char *out, size_t cap);
/* A JSON member as int64 (etcd sends 64-bit numbers as strings); 0 if none. */
int64_t fl__etcd_json_i64(struct json_object *o, const char *field);
/* A JSON member, or NULL. */
struct json_object *fl__etcd_json_get(struct json_object *o, const char *field);

#endif
