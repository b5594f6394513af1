/* SPDX-License-Identifier: MIT */
/*
 * policy.c -- the policy file: which paths the shim redirects, and how.
 *
 * Format (filelock.conf(5)): one rule per line, `#` starts a comment (at the
 * start of a line or of a field), blank lines are ignored.  A rule is
 *
 *     PATTERN  KIND  [OPTION=VALUE ...]
 *
 * PATTERN is an absolute shell glob: `*`, `?` and `[...]` never match `/`,
 * `**` matches any run of characters including `/` (and `**` followed by
 * `/` may match nothing, so `/a/` `**` `/b` also matches `/a/b`), a
 * backslash quotes the next character.  Paths are
 * matched after lexical normalisation (`//`, `.` and `..` removed); for
 * descriptors the shim uses the kernel's name, so symlinks are resolved.
 * The first rule that matches wins.
 *
 * The parser is strict on purpose: an unknown kind or option, a bad number,
 * a relative pattern or lock_dir, stale_threshold <= heartbeat_interval, an
 * option the library would refuse for the rule's kind (it would fail every
 * lock) -- each is one "FILE:LINE: problem" message, and the caller refuses
 * to run locks unprotected.  The table is immutable after parsing.
 * Durations are decimal seconds with an optional unit (ms, s, m, h), the
 * same syntax the filelock command takes.
 *
 * What is valid but cannot be meant -- a pattern no normalised path can
 * match, a rule an earlier rule hides, an option given twice or unused by
 * the kind -- is reported only to a checker (flp_policy_parse_warn, behind
 * filelock-preload --check); the shim's parse skips that work.
 *
 * Kind etcd takes three options of its own (endpoints, prefix, ttl) that no
 * other kind accepts, and refuses the file-system options that mean nothing
 * without files (lock_dir, lease_duration, stale_threshold: its TTL is ttl,
 * shared=: it has readers), so that a rule never silently ignores a setting.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flp.h"

static const char *const flp_kind_names[] = {
	[FLP_SOFT] = "soft",     [FLP_STRICT] = "strict", [FLP_LEASE] = "lease",
	[FLP_SOFT_RW] = "soft-rw", [FLP_NATIVE] = "native", [FLP_DENY] = "deny",
	[FLP_DOTLOCK] = "dotlock", [FLP_ETCD] = "etcd",
};

#define FLP_ETCD_DEFAULT_TTL 10.0 /* the library's default lease TTL */
/*
 * The options, and which of them each kind uses.  An option a kind refuses
 * (the library would fail every lock with it) is an error; one it does not
 * use is accepted, and reported to a checker (filelock-preload --check).
 */
enum flp_opt {
	FLP_O_TIMEOUT, FLP_O_POLL, FLP_O_HEARTBEAT, FLP_O_STALE, FLP_O_LEASE, FLP_O_ALSO_NATIVE,
	FLP_O_LOCK_DIR, FLP_O_SHARED, FLP_O_ENDPOINTS, FLP_O_PREFIX, FLP_O_TTL, FLP_O_PROTOCOL,
	FLP_O_CREATE_DIRS,
	FLP_O_N
};

static const char *const flp_opt_names[FLP_O_N] = {
	"timeout", "poll_interval", "heartbeat_interval", "stale_threshold", "lease_duration",
	"also_native", "lock_dir", "shared", "endpoints", "prefix", "ttl", "protocol",
	"create_dirs",
};

#define FLP_M(o) (1u << (o))
#define FLP_M_REDIRECT \
	(FLP_M(FLP_O_TIMEOUT) | FLP_M(FLP_O_POLL) | FLP_M(FLP_O_ALSO_NATIVE) |                  \
	 FLP_M(FLP_O_LOCK_DIR) | FLP_M(FLP_O_CREATE_DIRS))

static const unsigned flp_kind_uses[] = {
	[FLP_SOFT] = FLP_M_REDIRECT | FLP_M(FLP_O_SHARED),
	[FLP_STRICT] = FLP_M_REDIRECT | FLP_M(FLP_O_SHARED),
	[FLP_LEASE] = FLP_M_REDIRECT | FLP_M(FLP_O_SHARED) | FLP_M(FLP_O_HEARTBEAT) |
		      FLP_M(FLP_O_LEASE),
	[FLP_SOFT_RW] = FLP_M_REDIRECT | FLP_M(FLP_O_HEARTBEAT) | FLP_M(FLP_O_STALE) |
			FLP_M(FLP_O_PROTOCOL),
	[FLP_NATIVE] = 0,
	[FLP_DENY] = 0,
	[FLP_DOTLOCK] = FLP_M(FLP_O_STALE) | FLP_M(FLP_O_HEARTBEAT),
	[FLP_ETCD] = FLP_M(FLP_O_TIMEOUT) | FLP_M(FLP_O_POLL) | FLP_M(FLP_O_ALSO_NATIVE) |
		     FLP_M(FLP_O_HEARTBEAT) | FLP_M(FLP_O_ENDPOINTS) | FLP_M(FLP_O_PREFIX) |
		     FLP_M(FLP_O_TTL),
};

/* The library's defaults (backend-lease.c, backend-softrw.c). */
#define FLP_LEASE_DEFAULT_DURATION  30.0
#define FLP_SOFTRW_DEFAULT_HEARTBEAT 30.0

static double flp_lease(const struct flp_rule *r)
{
	return r->lease_duration > 0 ? r->lease_duration : FLP_LEASE_DEFAULT_DURATION;
}

/* The heartbeat period a rule's locks run with (0: none). */
static double flp_heartbeat(const struct flp_rule *r)
{
	if (!(flp_kind_uses[r->kind] & FLP_M(FLP_O_HEARTBEAT)))
		return 0;
	if (r->heartbeat_interval > 0)
		return r->heartbeat_interval;
	switch (r->kind) {
	case FLP_LEASE:
		return flp_lease(r) / 3;
	case FLP_SOFT_RW:
		return FLP_SOFTRW_DEFAULT_HEARTBEAT;
	case FLP_ETCD:
		return (r->stale_threshold > 0 ? ceil(r->stale_threshold) : FLP_ETCD_DEFAULT_TTL) / 3;
	default:
		return 0;
	}
}

const char *flp_kind_name(enum flp_kind k)
{
	return flp_kind_names[k];
}

int flp_lib_kind(enum flp_kind k)
{
	switch (k) {
	case FLP_SOFT:
		return FL_SOFT;
	case FLP_STRICT:
		return FL_STRICT;
	case FLP_LEASE:
		return FL_LEASE;
	case FLP_SOFT_RW:
		return FL_SOFT_RW;
	case FLP_ETCD:
		return FL_ETCD;
	default:
		return -1;
	}
}

int flp_rule_is_etcd(const struct flp_rule *r)
{
	return r != NULL && r->kind == FLP_ETCD;
}

/* ---- matching ---------------------------------------------------------- */

/* Matches one bracket expression at *pp against c; advances *pp past it.
 * Returns 1 match, 0 no match, -1 malformed (treated as a literal '['). */
static int flp_class(const char **pp, char c)
{
	const char *p = *pp + 1;
	int neg = 0, hit = 0;

	if (*p == '!' || *p == '^') {
		neg = 1;
		p++;
	}
	if (*p == ']') { /* a leading ']' is literal */
		hit |= c == ']';
		p++;
	}
	while (*p && *p != ']') {
		char lo = *p, hi = *p;
		if (lo == '\\' && p[1])
			lo = hi = *++p;
		if (p[1] == '-' && p[2] && p[2] != ']') {
			hi = p[2];
			if (hi == '\\' && p[3])
				hi = p[3], p++;
			p += 2;
		}
		if (c >= lo && c <= hi)
			hit = 1;
		p++;
	}
	if (*p != ']')
		return -1;
	*pp = p + 1;
	return c != '/' && (hit ^ neg);
}

/*
 * Matching walks the pattern once and keeps the set of path positions that
 * the pattern so far can end at (a bitset, on the stack: no allocation, so
 * it stays usable from hooks).  Work is O(pattern x path) whatever the
 * pattern; a backtracking matcher is exponential in the number of stars
 * (`/` `**` `/` `**` `/` ... against a deep path hangs every open()).
 */
#define FLP_GLOB_MAX 4096 /* longest path matched; longer ones never match */

#define BIT_SET(b, i) ((b)[(i) >> 3] |= (unsigned char)(1u << ((i) & 7)))
#define BIT_GET(b, i) (((b)[(i) >> 3] >> ((i) & 7)) & 1u)

static int flp_glob(const char *p, const char *s)
{
	unsigned char cur[FLP_GLOB_MAX / 8 + 1], nxt[FLP_GLOB_MAX / 8 + 1];
	size_t n = strlen(s), i;
	int any;

	if (n >= FLP_GLOB_MAX)
		return 0;
	memset(cur, 0, sizeof(cur));
	BIT_SET(cur, 0);
	while (*p) {
		memset(nxt, 0, sizeof(nxt));
		any = 0;
		if (p[0] == '*' && p[1] == '*') {
			/* Two stars: any run, including '/'.  Followed by a '/',
			 * they may also match nothing at all. */
			const char *q = p;
			while (*q == '*')
				q++;
			for (i = 0; i <= n && !any; i++)
				any = BIT_GET(cur, i);
			for (i = i - 1; any && i <= n; i++)
				BIT_SET(nxt, i); /* every position from the first reachable */
			if (*q == '/') {
				unsigned char after[FLP_GLOB_MAX / 8 + 1];
				memcpy(after, cur, sizeof(after)); /* `**` `/` matching nothing */
				for (i = 0; i < n; i++)
					if (BIT_GET(nxt, i) && s[i] == '/')
						BIT_SET(after, i + 1);
				memcpy(cur, after, sizeof(cur));
				p = q + 1;
			} else {
				memcpy(cur, nxt, sizeof(cur));
				p = q;
			}
			continue;
		}
		if (*p == '*') { /* any run without '/' */
			for (i = 0; i <= n; i++)
				if (BIT_GET(cur, i) || (i > 0 && BIT_GET(nxt, i - 1) && s[i - 1] != '/'))
					BIT_SET(nxt, i);
			memcpy(cur, nxt, sizeof(cur));
			p++;
			continue;
		}
		/* One character of the path. */
		const char *q = p;
		if (*p == '[') {
			const char *t = p;
			if (flp_class(&t, 'a') < 0)
				q = p + 1; /* malformed: a literal '[' */
			else
				q = t;
		} else if (*p == '\\' && p[1]) {
			q = p + 2;
		} else {
			q = p + 1;
		}
		for (i = 0; i < n; i++) {
			int m;
			if (!BIT_GET(cur, i))
				continue;
			if (*p == '?') {
				m = s[i] != '/';
			} else if (*p == '[' && q != p + 1) {
				const char *t = p;
				m = flp_class(&t, s[i]) > 0;
			} else if (*p == '\\' && p[1]) {
				m = s[i] == p[1];
			} else {
				m = s[i] == *p;
			}
			if (m)
				BIT_SET(nxt, i + 1);
		}
		memcpy(cur, nxt, sizeof(cur));
		p = q;
	}
	return BIT_GET(cur, n);
}

int flp_glob_match(const char *pat, const char *path)
{
	return flp_glob(pat, path);
}

const struct flp_rule *flp_policy_match(const struct flp_policy *p, const char *path)
{
	for (size_t i = 0; i < p->n; i++)
		if (flp_glob(p->rules[i].pattern, path))
			return &p->rules[i];
	return NULL;
}

int flp_normalize(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	const char *s = in;

	if (in[0] != '/' || cap < 2)
		return -EINVAL;
	out[o++] = '/';
	while (*s) {
		while (*s == '/')
			s++;
		if (*s == '\0')
			break;
		const char *e = s;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - s);
		if (n == 1 && s[0] == '.') {
			/* nothing */
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (o > 1) {
				o--; /* drop the '/' that ends the output */
				while (o > 1 && out[o - 1] != '/')
					o--;
			}
		} else {
			if (o + n + 1 >= cap)
				return -ENAMETOOLONG;
			memcpy(out + o, s, n);
			o += n;
			out[o++] = '/';
		}
		s = e;
	}
	if (o > 1)
		o--; /* no trailing '/' */
	out[o] = '\0';
	return 0;
}

int flp_marker_path(const struct flp_rule *r, const char *data, char *out, size_t cap)
{
	int n;

	if (r->lock_dir)
		n = snprintf(out, cap, "%s%s.lock", r->lock_dir, data);
	else
		n = snprintf(out, cap, "%s.lock", data);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int flp_data_path(const struct flp_policy *p, const char *marker, char *out, size_t cap)
{
	size_t ml = strlen(marker);
	char again[4096];

	if (ml < 6 || strcmp(marker + ml - 5, ".lock") != 0)
		return -ENOENT;
	/* Candidates: each lock_dir prefix, then the marker's own directory. */
	for (size_t i = 0; i <= p->n; i++) {
		const char *dir = i < p->n ? p->rules[i].lock_dir : "";
		size_t dl;
		const struct flp_rule *r;

		if (dir == NULL)
			continue;
		dl = strlen(dir);
		if (strncmp(marker, dir, dl) != 0 || marker[dl] != '/')
			continue;
		if (ml - dl - 5 >= cap)
			return -ENAMETOOLONG;
		memcpy(out, marker + dl, ml - dl - 5);
		out[ml - dl - 5] = '\0';
		r = flp_policy_match(p, out);
		if (r && flp_lib_kind(r->kind) >= 0 &&
		    flp_marker_path(r, out, again, sizeof(again)) == 0 && strcmp(again, marker) == 0)
			return 0;
	}
	return -ENOENT;
}

/* ---- parsing ----------------------------------------------------------- */

static int flp_perr(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int flp_perr(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "%s:%d: ", file, line);

	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int flp_parse_duration(const char *v, double *out)
{
	static const struct {
		const char *suffix;
		double scale;
	} units[] = { { "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "m", 60 }, { "h", 3600 } };
	char *end;
	double d;

	if (*v == '\0' || *v == ' ' || *v == '\t' || *v == '+' || *v == '-')
		return -EINVAL;
	d = strtod(v, &end);
	if (end == v)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		d *= units[i].scale;
		if (!isfinite(d))
			return -EINVAL;
		*out = d;
		return 0;
	}
	return -EINVAL;
}

static int flp_parse_num(const char *v, double *out, int allow_forever)
{
	if (allow_forever && (strcmp(v, "forever") == 0 || strcmp(v, "-1") == 0)) {
		*out = -1;
		return 0;
	}
	return flp_parse_duration(v, out);
}

static int flp_parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/* Splits the next whitespace-separated field of line[*i..n); NUL-terminates
 * it in place.  A field that starts with '#' ends the line. */
static char *flp_field(char *line, size_t n, size_t *i)
{
	char *f;

	while (*i < n && (line[*i] == ' ' || line[*i] == '\t' || line[*i] == '\r'))
		(*i)++;
	if (*i >= n || line[*i] == '#')
		return NULL;
	f = line + *i;
	while (*i < n && line[*i] != ' ' && line[*i] != '\t' && line[*i] != '\r') {
		if (line[*i] == '\\' && *i + 1 < n)
			(*i)++;
		(*i)++;
	}
	if (*i < n)
		line[(*i)++] = '\0';
	return f;
}

/* Options the library refuses for a kind, and why. */
static const char *flp_kind_refuses(enum flp_kind k, int o)
{
	if (k == FLP_STRICT && (o == FLP_O_HEARTBEAT || o == FLP_O_STALE || o == FLP_O_LEASE))
		return "a strict claim is never broken by age, only by filelock break";
	if (k == FLP_LEASE && o == FLP_O_STALE)
		return "a lease expires after lease_duration";
	if (k == FLP_SOFT_RW && o == FLP_O_LEASE)
		return "soft-rw markers expire after stale_threshold";
	return NULL;
}

struct flp_lint {
	flp_warn_fn fn;
	void *arg;
};

static void flp_pwarn(const struct flp_lint *l, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void flp_pwarn(const struct flp_lint *l, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (l == NULL || l->fn == NULL)
		return;
	n = snprintf(msg, sizeof(msg), "%s:%d: warning: ", file, line);
	if (n >= 0 && (size_t)n < sizeof(msg)) {
		va_start(ap, fmt);
		vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	l->fn(l->arg, msg);
}

static int flp_parse_option(struct flp_rule *r, char *opt, const char *file, int ln, char *err,
			    size_t errlen, unsigned *seen, const struct flp_lint *lint)
{
	char *eq = strchr(opt, '=');
	const char *k = opt, *v;
	double *num = NULL;

	if (eq == NULL || eq == opt)
		return flp_perr(err, errlen, file, ln, "expected OPTION=VALUE, got '%s'", opt);
	*eq = '\0';
	v = eq + 1;
	for (int o = 0; o < FLP_O_N; o++) {
		const char *why;

		if (strcmp(k, flp_opt_names[o]) != 0)
			continue;
		if (*seen & FLP_M(o))
			flp_pwarn(lint, file, ln, "%s given twice; the last value, '%s', wins", k, v);
		*seen |= FLP_M(o);
		if ((why = flp_kind_refuses(r->kind, o)) != NULL)
			return flp_perr(err, errlen, file, ln, "%s is not used by kind %s (%s)", k,
					flp_kind_names[r->kind], why);
	}
	if (!strcmp(k, "endpoints") || !strcmp(k, "prefix") || !strcmp(k, "ttl")) {
		char **str = !strcmp(k, "endpoints") ? &r->etcd_endpoints
			     : !strcmp(k, "prefix") ? &r->etcd_prefix : NULL;

		if (r->kind != FLP_ETCD)
			return flp_perr(err, errlen, file, ln, "%s is an option of kind etcd, not %s",
					k, flp_kind_names[r->kind]);
		if (str == NULL) {
			if (flp_parse_num(v, &r->stale_threshold, 0) != 0 || r->stale_threshold < 1)
				return flp_perr(err, errlen, file, ln,
						"ttl: expected a duration >= 1s, got '%s'", v);
			return 0;
		}
		if (v[strspn(v, ",")] == '\0')
			return flp_perr(err, errlen, file, ln, "%s: empty value", k);
		if (str == &r->etcd_prefix && v[0] != '/')
			return flp_perr(err, errlen, file, ln,
					"prefix: expected a key prefix starting with '/', got '%s'", v);
		free(*str);
		*str = strdup(v);
		return *str ? 0 : -ENOMEM;
	}
	if (r->kind == FLP_ETCD &&
	    (!strcmp(k, "stale_threshold") || !strcmp(k, "lease_duration") ||
	     !strcmp(k, "lock_dir") || !strcmp(k, "shared")))
		return flp_perr(err, errlen, file, ln, "%s has no meaning for kind etcd%s", k,
				!strcmp(k, "lock_dir") ? " (it creates no files; see prefix)"
				: !strcmp(k, "shared") ? " (LOCK_SH takes an etcd read lock)"
						       : " (the lease TTL is ttl)");
	if (!strcmp(k, "timeout")) {
		if (flp_parse_num(v, &r->timeout, 1) != 0)
			return flp_perr(err, errlen, file, ln,
					"timeout: expected a duration (30, 2.5s, 500ms, "
					"1m, 1h) or 'forever', got '%s'", v);
		return 0;
	}
	if (!strcmp(k, "poll_interval"))
		num = &r->poll_interval;
	else if (!strcmp(k, "heartbeat_interval"))
		num = &r->heartbeat_interval;
	else if (!strcmp(k, "stale_threshold"))
		num = &r->stale_threshold;
	else if (!strcmp(k, "lease_duration"))
		num = &r->lease_duration;
	if (num) {
		if (flp_parse_num(v, num, 0) != 0)
			return flp_perr(err, errlen, file, ln,
					"%s: expected a duration (30, 2.5s, 500ms, 1m, 1h), got '%s'",
					k, v);
		if (num == &r->poll_interval && *num == 0)
			return flp_perr(err, errlen, file, ln, "poll_interval must be > 0");
		return 0;
	}
	if (!strcmp(k, "also_native")) {
		if (flp_parse_bool(v, &r->also_native) != 0)
			return flp_perr(err, errlen, file, ln, "also_native: expected yes or no, got '%s'",
					v);
		return 0;
	}
	if (!strcmp(k, "create_dirs")) {
		int yes;
		if (flp_parse_bool(v, &yes) != 0)
			return flp_perr(err, errlen, file, ln, "create_dirs: expected yes or no, got '%s'",
					v);
		r->no_create_dirs = !yes;
		return 0;
	}
	if (!strcmp(k, "shared")) {
		if (!strcmp(v, "exclusive"))
			r->shared_reader = 0;
		else if (!strcmp(v, "reader"))
			r->shared_reader = 1;
		else
			return flp_perr(err, errlen, file, ln,
					"shared: expected exclusive or reader, got '%s'", v);
		return 0;
	}
	if (!strcmp(k, "protocol")) {
		if (r->kind != FLP_SOFT_RW)
			return flp_perr(err, errlen, file, ln, "protocol is an option of kind soft-rw, not %s",
					flp_kind_names[r->kind]);
		if (!strcmp(v, "rw1") || !strcmp(v, "filelock-rw/1"))
			r->soft_rw_protocol = FL_SOFT_RW_RW1;
		else if (!strcmp(v, "legacy"))
			r->soft_rw_protocol = FL_SOFT_RW_LEGACY;
		else
			return flp_perr(err, errlen, file, ln,
					"protocol: expected rw1 or legacy, got '%s'", v);
		return 0;
	}
	if (!strcmp(k, "lock_dir")) {
		char norm[4096];
		if (v[0] != '/' || flp_normalize(v, norm, sizeof(norm)) != 0)
			return flp_perr(err, errlen, file, ln,
					"lock_dir must be an absolute path, got '%s'", v);
		free(r->lock_dir);
		r->lock_dir = strcmp(norm, "/") == 0 ? strdup("") : strdup(norm);
		if (r->lock_dir == NULL)
			return -ENOMEM;
		return 0;
	}
	return flp_perr(err, errlen, file, ln,
			"unknown option '%s' (known: timeout, poll_interval, heartbeat_interval, "
			"stale_threshold, lease_duration, also_native, lock_dir, create_dirs, shared; "
			"soft-rw: protocol; etcd: endpoints, prefix, ttl)",
			k);
}

static void flp_rule_free(struct flp_rule *r)
{
	free(r->pattern);
	free(r->lock_dir);
	free(r->etcd_endpoints);
	free(r->etcd_prefix);
}

/* Why no normalised path can ever match pat, or NULL. */
static const char *flp_pattern_dead(const char *pat)
{
	size_t n = strlen(pat);
	const char *c = pat + 1;

	if (n >= FLP_GLOB_MAX)
		return "it is longer than the longest path matched";
	if (n > 1 && pat[n - 1] == '/')
		return "paths are matched without a trailing '/' (DIR/** covers the files under "
		       "DIR)";
	for (;;) {
		const char *e = strchr(c, '/');
		size_t l = e ? (size_t)(e - c) : strlen(c);

		if (l == 0 && e)
			return "paths are matched with '//' made '/'";
		if ((l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
			return "paths are matched with '.' and '..' resolved";
		if (e == NULL)
			return NULL;
		c = e + 1;
	}
}

/* Warnings about a parsed rule: a pattern no path can match, options its
 * kind does not use. */
static void flp_lint_rule(const struct flp_policy *p, const struct flp_rule *r, unsigned seen,
			  const char *file, const struct flp_lint *lint)
{
	const char *why = flp_pattern_dead(r->pattern);
	unsigned unused = seen & ~flp_kind_uses[r->kind];

	if (lint->fn == NULL)
		return; /* the shim: no checker listens, spare the work */
	if (why)
		flp_pwarn(lint, file, r->line, "pattern '%s' can never match: %s", r->pattern, why);
	for (size_t i = 0; why == NULL && i < p->n; i++) {
		const struct flp_rule *e = &p->rules[i];
		size_t lit = strcspn(e->pattern, "*?[\\"); /* e's literal head: a cheap filter */

		if (strncmp(e->pattern, r->pattern, lit) != 0)
			continue;
		if (strcmp(e->pattern, r->pattern) == 0 ||
		    (strpbrk(r->pattern, "*?[\\") == NULL && flp_glob(e->pattern, r->pattern))) {
			flp_pwarn(lint, file, r->line,
				  "rule never applies: the rule of line %d ('%s') matches every "
				  "path it matches, and the first match wins",
				  e->line, e->pattern);
			break;
		}
	}
	for (int o = 0; o < FLP_O_N; o++)
		if (unused & FLP_M(o))
			flp_pwarn(lint, file, r->line, "%s has no effect on kind %s", flp_opt_names[o],
				  flp_kind_names[r->kind]);
}

int flp_policy_parse(struct flp_policy *p, const char *text, size_t len, const char *file,
		     char *err, size_t errlen)
{
	return flp_policy_parse_warn(p, text, len, file, err, errlen, NULL, NULL);
}

int flp_policy_parse_warn(struct flp_policy *p, const char *text, size_t len, const char *file,
			  char *err, size_t errlen, flp_warn_fn warn, void *warn_arg)
{
	const struct flp_lint lint = { warn, warn_arg };
	size_t pos = 0, cap = 0;
	int ln = 0, r = 0;

	p->rules = NULL;
	p->n = 0;
	if (errlen)
		err[0] = '\0';
	while (pos < len && r == 0) {
		size_t e = pos, i = 0, ll;
		char *line, *pat, *kind, *opt;
		struct flp_rule rule;
		unsigned seen = 0;
		double hb;

		while (e < len && text[e] != '\n')
			e++;
		ln++;
		if (memchr(text + pos, '\0', e - pos) != NULL) {
			r = flp_perr(err, errlen, file, ln, "NUL byte in the policy file");
			break;
		}
		line = strndup(text + pos, e - pos);
		pos = e + 1;
		if (line == NULL) {
			r = -ENOMEM;
			break;
		}
		ll = strlen(line);
		pat = flp_field(line, ll, &i);
		if (pat == NULL) {
			free(line);
			continue;
		}
		memset(&rule, 0, sizeof(rule));
		rule.line = ln;
		rule.timeout = -1;
		kind = flp_field(line, ll, &i);
		if (pat[0] != '/') {
			r = flp_perr(err, errlen, file, ln, "pattern must be an absolute path, got '%s'",
				     pat);
		} else if (kind == NULL) {
			r = flp_perr(err, errlen, file, ln, "missing kind after pattern '%s'", pat);
		} else {
			int k;
			for (k = 0; k <= FLP_ETCD; k++)
				if (!strcmp(kind, flp_kind_names[k]))
					break;
			if (k > FLP_ETCD)
				r = flp_perr(err, errlen, file, ln,
					     "unknown kind '%s' (known: soft, strict, lease, soft-rw, "
					     "native, deny, dotlock, etcd)",
					     kind);
			rule.kind = (enum flp_kind)k;
		}
		while (r == 0 && (opt = flp_field(line, ll, &i)))
			r = flp_parse_option(&rule, opt, file, ln, err, errlen, &seen, &lint);
		hb = r != 0 ? 0 : rule.heartbeat_interval > 0 ? rule.heartbeat_interval
							       : flp_heartbeat(&rule);
		if (r == 0 && rule.stale_threshold > 0 && hb > 0 && rule.stale_threshold <= hb)
			r = flp_perr(err, errlen, file, ln,
				     "stale_threshold (%g) must be greater than heartbeat_interval (%g%s)",
				     rule.stale_threshold, hb,
				     rule.heartbeat_interval > 0 ? "" : ", the default");
		if (r == 0 && rule.kind == FLP_LEASE && rule.heartbeat_interval > 0 &&
		    rule.heartbeat_interval >= flp_lease(&rule))
			r = flp_perr(err, errlen, file, ln,
				     "heartbeat_interval (%g) must be below lease_duration (%g%s)",
				     rule.heartbeat_interval, flp_lease(&rule),
				     rule.lease_duration > 0 ? "" : ", the default");
		if (r == 0 && rule.kind == FLP_DOTLOCK && rule.heartbeat_interval > 0 &&
		    rule.stale_threshold == 0)
			r = flp_perr(err, errlen, file, ln,
				     "heartbeat_interval on a dotlock rule needs stale_threshold (the "
				     "silence after which a lock file is broken)");
		if (r == 0 && rule.kind == FLP_ETCD && rule.heartbeat_interval > 0) {
			/* The library's rule: a keep-alive at least twice per TTL. */
			double ttl = rule.stale_threshold > 0 ? ceil(rule.stale_threshold)
							      : FLP_ETCD_DEFAULT_TTL;
			if (rule.heartbeat_interval > ttl / 2)
				r = flp_perr(err, errlen, file, ln,
					     "heartbeat_interval (%g) must be at most half of ttl (%g)",
					     rule.heartbeat_interval, ttl);
		}
		if (r == 0 && rule.shared_reader && rule.kind == FLP_SOFT_RW)
			r = flp_perr(err, errlen, file, ln,
				     "shared=reader is for exclusive-only kinds; soft-rw has readers");
		if (r == 0 && (rule.pattern = strdup(pat)) == NULL)
			r = -ENOMEM;
		free(line);
		if (r == 0 && p->n == cap) {
			struct flp_rule *nr;
			cap = cap ? cap * 2 : 8;
			nr = realloc(p->rules, cap * sizeof(*nr));
			if (nr == NULL)
				r = -ENOMEM;
			else
				p->rules = nr;
		}
		if (r != 0) {
			flp_rule_free(&rule);
			break;
		}
		flp_lint_rule(p, &rule, seen, file, &lint);
		p->rules[p->n++] = rule;
	}
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", file);
	if (r != 0)
		flp_policy_free(p);
	return r;
}

/* ---- describing a rule (filelock-preload --check) ------------------------ */

struct flp_buf {
	char *s;
	size_t len, n;
};

static void flp_add(struct flp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flp_add(struct flp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (b->n >= b->len)
		return;
	va_start(ap, fmt);
	k = vsnprintf(b->s + b->n, b->len - b->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		b->n += (size_t)k;
}

static void flp_add_secs(struct flp_buf *b, const char *name, double v, int dflt)
{
	flp_add(b, ", %s %gs%s", name, v, dflt ? " (default)" : "");
}

void flp_rule_describe(const struct flp_rule *r, char *out, size_t len)
{
	struct flp_buf b = { out, len, 0 };

	out[0] = '\0';
	flp_add(&b, "%s %s", r->pattern, flp_kind_names[r->kind]);
	switch (r->kind) {
	case FLP_NATIVE:
		flp_add(&b, ": lock calls pass through to the kernel");
		return;
	case FLP_DENY:
		flp_add(&b, ": every lock call fails with ENOLCK");
		return;
	case FLP_DOTLOCK:
		flp_add(&b, ": the program's own O_EXCL lock files; lock calls pass through; a "
			    "lock file is broken when its holder is gone");
		if (r->stale_threshold > 0 && r->heartbeat_interval > 0)
			flp_add(&b, " or silent for %gs (its creator refreshes it every %gs)",
				r->stale_threshold, r->heartbeat_interval);
		else if (r->stale_threshold > 0)
			flp_add(&b, " or older than %gs", r->stale_threshold);
		return;
	case FLP_ETCD:
		flp_add(&b, ": etcd at %s, key prefix %s", r->etcd_endpoints ? r->etcd_endpoints
				: "$FILELOCK_ETCD_ENDPOINTS", r->etcd_prefix ? r->etcd_prefix
				: "$FILELOCK_ETCD_PREFIX");
		flp_add_secs(&b, "ttl", r->stale_threshold > 0 ? ceil(r->stale_threshold)
							     : FLP_ETCD_DEFAULT_TTL,
			     r->stale_threshold == 0);
		break;
	default:
		if (r->lock_dir)
			flp_add(&b, ": marker %s/PATH.lock", r->lock_dir);
		else
			flp_add(&b, ": marker PATH.lock");
		if (r->kind == FLP_LEASE)
			flp_add_secs(&b, "lease_duration", flp_lease(r), r->lease_duration == 0);
		if (r->kind == FLP_SOFT_RW)
			flp_add_secs(&b, "stale_threshold",
				     r->stale_threshold > 0 ? r->stale_threshold
							    : 3 * flp_heartbeat(r),
				     r->stale_threshold == 0);
		break;
	}
	if (flp_heartbeat(r) > 0)
		flp_add_secs(&b, "heartbeat_interval", flp_heartbeat(r), r->heartbeat_interval == 0);
	if (r->timeout < 0)
		flp_add(&b, ", timeout forever");
	else
		flp_add_secs(&b, "timeout", r->timeout, 0);
	if (r->poll_interval > 0)
		flp_add_secs(&b, "poll_interval", r->poll_interval, 0);
	if (r->also_native)
		flp_add(&b, ", also the kernel's flock");
	if (r->no_create_dirs)
		flp_add(&b, ", missing lock directories not created");
	if (r->shared_reader)
		flp_add(&b, ", LOCK_SH takes the kernel's shared lock only");
	if (r->kind == FLP_SOFT_RW && r->soft_rw_protocol == FL_SOFT_RW_LEGACY)
		flp_add(&b, ", the legacy soft-rw protocol (Python filelock 3.32.3)");
}

void flp_policy_free(struct flp_policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		flp_rule_free(&p->rules[i]);
	free(p->rules);
	p->rules = NULL;
	p->n = 0;
}
