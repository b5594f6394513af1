/* SPDX-License-Identifier: MIT */
/*
 * ranges.c -- POSIX byte-range arithmetic for the shim's fcntl/lockf
 * emulation.  Pure: no I/O, no global state, so the unit tests can hold it
 * against the kernel's own record locks on a local file.
 *
 * One owner's locks are a sorted list of disjoint ranges [start, end]
 * (end inclusive; FLP_OFF_MAX stands for "to end of file, however far it
 * grows").  fcntl(2) changes a process's locks like this: the new request
 * (read, write or unlock) replaces whatever of the owner's locks it
 * overlaps, which may split an older range in two; then ranges of the same
 * type that overlap or touch merge into one.  Two owners' locks conflict
 * when they overlap and at least one is a write lock.  Linux does exactly
 * this (fs/locks.c, posix_lock_inode), which is what makes the comparison
 * test possible.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flp.h"

int flp_range_from_flock(short whence, int64_t l_start, int64_t l_len, int64_t cur, int64_t size,
			 int64_t *start, int64_t *end)
{
	int64_t base, s, e;

	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = cur;
		break;
	case SEEK_END:
		base = size;
		break;
	default:
		return -EINVAL;
	}
	if (__builtin_add_overflow(base, l_start, &s))
		return -EOVERFLOW;
	if (s < 0)
		return -EINVAL;
	if (l_len > 0) {
		/* The last byte is s + len - 1; it must be representable. */
		if (__builtin_add_overflow(s, l_len - 1, &e))
			return -EOVERFLOW;
	} else if (l_len == 0) {
		e = FLP_OFF_MAX;
	} else {
		/* A negative length covers the |len| bytes before s. */
		e = s - 1;
		if (__builtin_add_overflow(s, l_len, &s) || s < 0)
			return -EINVAL;
	}
	*start = s;
	*end = e;
	return 0;
}

void flp_range_to_flock(int64_t start, int64_t end, int64_t *l_start, int64_t *l_len)
{
	*l_start = start;
	*l_len = end == FLP_OFF_MAX ? 0 : end - start + 1;
}

static int rs_overlaps(const struct flp_range *r, int64_t start, int64_t end)
{
	return r->start <= end && start <= r->end;
}

/* Do a (lower) and b (higher start) overlap or touch? */
static int rs_touch(const struct flp_range *a, const struct flp_range *b)
{
	return a->end == FLP_OFF_MAX || a->end + 1 >= b->start;
}

static int rs_reserve(struct flp_rset *s, size_t need)
{
	struct flp_range *v;
	size_t cap;

	if (need <= s->cap)
		return 0;
	cap = s->cap ? s->cap * 2 : 8;
	while (cap < need)
		cap *= 2;
	v = realloc(s->v, cap * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

int flp_rset_apply(struct flp_rset *s, int64_t start, int64_t end, short type)
{
	struct flp_range *out;
	size_t n = 0, i;
	int inserted = 0;

	if (start < 0 || end < start)
		return -EINVAL;
	if (type != F_RDLCK && type != F_WRLCK && type != F_UNLCK)
		return -EINVAL;
	/* At most one existing range splits in two, plus the new one. */
	out = malloc((s->n + 2) * sizeof(*out));
	if (out == NULL)
		return -ENOMEM;
	for (i = 0; i < s->n; i++) {
		const struct flp_range *r = &s->v[i];

		if (!rs_overlaps(r, start, end)) {
			if (!inserted && type != F_UNLCK && r->start > end) {
				out[n++] = (struct flp_range){ start, end, type };
				inserted = 1;
			}
			out[n++] = *r;
			continue;
		}
		if (r->start < start)
			out[n++] = (struct flp_range){ r->start, start - 1, r->type };
		if (!inserted && type != F_UNLCK) {
			out[n++] = (struct flp_range){ start, end, type };
			inserted = 1;
		}
		if (r->end > end)
			out[n++] = (struct flp_range){ end + 1, r->end, r->type };
	}
	if (!inserted && type != F_UNLCK)
		out[n++] = (struct flp_range){ start, end, type };
	/* Merge neighbours of one type that overlap or touch. */
	if (n > 1) {
		size_t w = 0;

		for (i = 1; i < n; i++) {
			if (out[i].type == out[w].type && rs_touch(&out[w], &out[i])) {
				if (out[i].end > out[w].end)
					out[w].end = out[i].end;
			} else {
				out[++w] = out[i];
			}
		}
		n = w + 1;
	}
	if (rs_reserve(s, n) != 0) {
		free(out);
		return -ENOMEM;
	}
	if (n)
		memcpy(s->v, out, n * sizeof(*out));
	s->n = n;
	free(out);
	return 0;
}

const struct flp_range *flp_rset_conflict(const struct flp_rset *s, int64_t start, int64_t end,
					  short type)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct flp_range *r = &s->v[i];

		if (r->start > end)
			break;
		if (rs_overlaps(r, start, end) && (type == F_WRLCK || r->type == F_WRLCK))
			return r;
	}
	return NULL;
}

int flp_rset_unchanged_by(const struct flp_rset *s, int64_t start, int64_t end, short type)
{
	if (type == F_UNLCK) {
		for (size_t i = 0; i < s->n; i++)
			if (rs_overlaps(&s->v[i], start, end))
				return 0;
		return 1;
	}
	/* Ranges are merged, so one range of the same type covers it or none does. */
	for (size_t i = 0; i < s->n; i++) {
		const struct flp_range *r = &s->v[i];
		if (r->start <= start && end <= r->end)
			return r->type == type;
	}
	return 0;
}

/* The type b holds at byte x: F_UNLCK, F_RDLCK or F_WRLCK. */
static short rs_type_at(const struct flp_rset *b, int64_t x)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].start > x)
			break;
		if (x <= b->v[i].end)
			return b->v[i].type;
	}
	return F_UNLCK;
}

int flp_rset_shrinks(const struct flp_rset *a, const struct flp_rset *b)
{
	/* Every range of a must lie in b with b's type at least as strong.
	 * Check at every boundary inside a's ranges where b may change type. */
	for (size_t i = 0; i < a->n; i++) {
		const struct flp_range *r = &a->v[i];
		int64_t x = r->start;

		for (;;) {
			short t = rs_type_at(b, x);
			int64_t next = FLP_OFF_MAX;

			if (t == F_UNLCK || (r->type == F_WRLCK && t != F_WRLCK))
				return 0;
			for (size_t j = 0; j < b->n; j++) {
				if (b->v[j].start <= x && x <= b->v[j].end) {
					next = b->v[j].end;
					break;
				}
			}
			if (next >= r->end)
				break;
			x = next + 1;
		}
	}
	return 1;
}

int flp_rset_copy(struct flp_rset *dst, const struct flp_rset *src)
{
	if (rs_reserve(dst, src->n) != 0)
		return -ENOMEM;
	if (src->n)
		memcpy(dst->v, src->v, src->n * sizeof(*src->v));
	dst->n = src->n;
	return 0;
}

void flp_rset_clear(struct flp_rset *s)
{
	s->n = 0;
}

void flp_rset_free(struct flp_rset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* ---- owner files (rlock.c writes them; parsing is pure, so it lives here
 * where the fuzzer can reach it without the shim) ---- */

static int rl_parse_i64(const char **pp, const char *end, int64_t *out)
{
	const char *p = *pp;
	int64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
			return -1;
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

/* Reads one "key value\n" line with the given key; value copied to out. */
static int rl_line(const char **pp, const char *end, const char *key, char *out, size_t cap)
{
	const char *p = *pp, *nl;
	size_t kl = strlen(key), vl;

	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL || (size_t)(nl - p) <= kl || memcmp(p, key, kl) != 0 || p[kl] != ' ')
		return -1;
	vl = (size_t)(nl - p) - kl - 1;
	if (vl == 0 || vl >= cap || memchr(p + kl + 1, '\0', vl))
		return -1;
	memcpy(out, p + kl + 1, vl);
	out[vl] = '\0';
	*pp = nl + 1;
	return 0;
}

int flp_rl_parse(const char *buf, size_t len, char *host, size_t hostcap, pid_t *pid, int *ofd,
		 struct flp_rset *set)
{
	const char *p = buf, *end = buf + len;
	char v[128];
	int64_t x, s, e;
	struct flp_range last = { -1, -1, F_UNLCK };
	int have_last = 0; /* F_RDLCK is 0: the type cannot tell */
	size_t lines = 0;

	flp_rset_clear(set);
	if (len > FLP_RL_MAX_BYTES)
		return -EBADMSG;
	if (rl_line(&p, end, "filelock-ranges", v, sizeof(v)) != 0 || strcmp(v, "1") != 0)
		return -EBADMSG;
	if (rl_line(&p, end, "host", host, hostcap) != 0)
		return -EBADMSG;
	if (rl_line(&p, end, "pid", v, sizeof(v)) != 0)
		return -EBADMSG;
	{
		const char *q = v;
		if (rl_parse_i64(&q, q + strlen(v), &x) != 0 || *q || x <= 0 || x > INT_MAX)
			return -EBADMSG;
		*pid = (pid_t)x;
	}
	if (rl_line(&p, end, "token", v, sizeof(v)) != 0)
		return -EBADMSG;
	if (rl_line(&p, end, "owner", v, sizeof(v)) != 0)
		return -EBADMSG;
	if (strcmp(v, "posix") == 0) {
		*ofd = 0;
	} else if (strncmp(v, "ofd ", 4) == 0) {
		const char *q = v + 4;
		if (rl_parse_i64(&q, v + strlen(v), &x) != 0 || *q || x <= 0 || x > INT_MAX)
			return -EBADMSG;
		*ofd = (int)x;
	} else {
		return -EBADMSG;
	}
	while (p < end) {
		short type;

		if (end - p < 2 || (p[0] != 'R' && p[0] != 'W') || p[1] != ' ')
			return -EBADMSG;
		type = p[0] == 'R' ? F_RDLCK : F_WRLCK;
		p += 2;
		if (rl_parse_i64(&p, end, &s) != 0 || p >= end || *p++ != ' ' ||
		    rl_parse_i64(&p, end, &e) != 0 || p >= end || *p++ != '\n')
			return -EBADMSG;
		/* Sorted and disjoint, as we write them. */
		if (e < s || (have_last && s <= last.end))
			return -EBADMSG;
		if (++lines > FLP_RL_MAX_RANGES)
			return -EBADMSG;
		/* In order: append, or extend the last range (a touching one of
		 * the same type; s > last.end, so last.end < FLP_OFF_MAX), in
		 * constant time per line. */
		if (have_last && last.type == type && last.end + 1 == s) {
			set->v[set->n - 1].end = e;
		} else {
			if (rs_reserve(set, set->n + 1) != 0)
				return -ENOMEM;
			set->v[set->n++] = (struct flp_range){ s, e, type };
		}
		last = (struct flp_range){ s, e, type };
		have_last = 1;
	}
	return 0;
}
