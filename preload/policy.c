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
 * a relative pattern or lock_dir, stale_threshold <= heartbeat_interval --
 * each is one "FILE:LINE: problem" message, and the caller refuses to run
 * locks unprotected.  The table is immutable after parsing.
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

static int flp_parse_num(const char *v, double *out, int allow_forever)
{
	char *end;
	double d;

	if (allow_forever && (strcmp(v, "forever") == 0 || strcmp(v, "-1") == 0)) {
		*out = -1;
		return 0;
	}
	if (*v == '\0')
		return -EINVAL;
	d = strtod(v, &end);
	if (*end == 's' && end[1] == '\0')
		end++;
	if (*end != '\0' || !isfinite(d) || d < 0)
		return -EINVAL;
	*out = d;
	return 0;
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

static int flp_parse_option(struct flp_rule *r, char *opt, const char *file, int ln, char *err,
			    size_t errlen)
{
	char *eq = strchr(opt, '=');
	const char *k = opt, *v;
	double *num = NULL;

	if (eq == NULL || eq == opt)
		return flp_perr(err, errlen, file, ln, "expected OPTION=VALUE, got '%s'", opt);
	*eq = '\0';
	v = eq + 1;
	if (!strcmp(k, "endpoints") || !strcmp(k, "prefix") || !strcmp(k, "ttl")) {
		char **str = !strcmp(k, "endpoints") ? &r->etcd_endpoints
			     : !strcmp(k, "prefix") ? &r->etcd_prefix : NULL;

		if (r->kind != FLP_ETCD)
			return flp_perr(err, errlen, file, ln, "%s is an option of kind etcd, not %s",
					k, flp_kind_names[r->kind]);
		if (str == NULL) {
			if (flp_parse_num(v, &r->stale_threshold, 0) != 0 || r->stale_threshold < 1)
				return flp_perr(err, errlen, file, ln,
						"ttl: expected seconds >= 1, got '%s'", v);
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
					"timeout: expected seconds >= 0 or 'forever', got '%s'", v);
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
			return flp_perr(err, errlen, file, ln, "%s: expected seconds >= 0, got '%s'",
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
			"etcd: "
			"endpoints, prefix, ttl)",
			k);
}

static void flp_rule_free(struct flp_rule *r)
{
	free(r->pattern);
	free(r->lock_dir);
	free(r->etcd_endpoints);
	free(r->etcd_prefix);
}

int flp_policy_parse(struct flp_policy *p, const char *text, size_t len, const char *file,
		     char *err, size_t errlen)
{
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
			r = flp_parse_option(&rule, opt, file, ln, err, errlen);
		if (r == 0 && rule.heartbeat_interval > 0 && rule.stale_threshold > 0 &&
		    rule.stale_threshold <= rule.heartbeat_interval)
			r = flp_perr(err, errlen, file, ln,
				     "stale_threshold (%g) must be greater than heartbeat_interval (%g)",
				     rule.stale_threshold, rule.heartbeat_interval);
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
		p->rules[p->n++] = rule;
	}
	if (r == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory", file);
	if (r != 0)
		flp_policy_free(p);
	return r;
}

void flp_policy_free(struct flp_policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		flp_rule_free(&p->rules[i]);
	free(p->rules);
	p->rules = NULL;
	p->n = 0;
}
