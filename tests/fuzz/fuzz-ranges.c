/* SPDX-License-Identifier: MIT */
/*
 * fuzz-ranges.c -- the shim's POSIX byte-range arithmetic (preload/ranges.c)
 * against a brute-force model: one lock type per byte of a small window.
 *
 * The input is a sequence of 4-byte operations (b0 b1 b2 b3):
 *
 *   b0 & 3 == 0, 1, 2: F_RDLCK, F_WRLCK, F_UNLCK through flp_range_from_flock
 *     and flp_rset_apply.  b0 bits 2-3 pick the whence (SEEK_SET twice,
 *     SEEK_CUR, SEEK_END; b3 is the position or size it counts from), bits
 *     4-5 the length (positive twice, 0 = to EOF, negative), bit 6 takes a
 *     snapshot afterwards, bit 7 makes it a whole-file (0, 0) request.  b1
 *     is the first byte, b2 the length's magnitude.
 *   b0 & 3 == 3: a query.  Bit 3 set: flp_range_from_flock on extreme
 *     values (picked by b1, b2, b3) against a 128-bit reference of the
 *     kernel's rules.  Otherwise flp_rset_conflict for a F_RDLCK (bit 2
 *     clear) or F_WRLCK probe on a range built like a lock's.
 *
 * Requests start inside a WIN-byte window and end inside it or at EOF, so
 * a table of WIN + 1 cells (the last standing for [WIN, EOF]) describes the
 * lock set exactly.  After every operation the set must be sorted, disjoint,
 * with no same-type neighbours touching and start <= end -- in fact equal to
 * the maximal runs of the table -- and flp_rset_unchanged_by,
 * flp_rset_shrinks and flp_rset_conflict must agree with the table.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WIN 64
#define OFF_MAX FLP_OFF_MAX

/* cells[c]: the type held on byte c (c == WIN: on every byte from WIN on);
 * F_UNLCK for none (F_RDLCK is 0 on Linux). */
typedef short cells_t[WIN + 1];

static void cells_apply(cells_t t, int64_t start, int64_t end, short type)
{
	int64_t last = end == OFF_MAX ? WIN : end;

	for (int64_t c = start; c <= last; c++)
		t[c] = type;
}

/* The set must be exactly the maximal runs of one type in the table. */
static void check_set(const struct flp_rset *s, const cells_t t)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct flp_range *r = &s->v[i];

		if (r->start < 0 || r->start > r->end || (r->type != F_RDLCK && r->type != F_WRLCK))
			abort();
		/* Operations start and end inside the window or end at EOF; only
		 * what is left of a to-EOF lock cut short may start at WIN. */
		if (r->start > WIN || (r->end >= WIN && r->end != OFF_MAX))
			abort();
		if (i > 0) {
			const struct flp_range *p = &s->v[i - 1];

			if (p->end == OFF_MAX || r->start <= p->end)
				abort(); /* unsorted or overlapping */
			if (r->type == p->type && r->start == p->end + 1)
				abort(); /* touching neighbours of one type, not merged */
		}
	}
	for (int c = 0; c <= WIN;) {
		int e = c;

		if (t[c] == F_UNLCK) {
			c++;
			continue;
		}
		while (e < WIN && t[e + 1] == t[c])
			e++;
		if (k >= s->n || s->v[k].start != c || s->v[k].type != t[c] ||
		    s->v[k].end != (e == WIN ? OFF_MAX : e))
			abort();
		k++;
		c = e + 1;
	}
	if (k != s->n)
		abort();
}

/* a's table only releases or downgrades b's. */
static int cells_shrinks(const cells_t a, const cells_t b)
{
	for (int c = 0; c <= WIN; c++)
		if (a[c] != F_UNLCK && a[c] != b[c] && !(a[c] == F_RDLCK && b[c] == F_WRLCK))
			return 0;
	return 1;
}

static void check_shrinks(const struct flp_rset *a, const cells_t ta, const struct flp_rset *b,
			  const cells_t tb)
{
	if (flp_rset_shrinks(a, b) != cells_shrinks(ta, tb))
		abort();
}

/* The range a lock or probe built from (b0, b1, b2, b3) must cover, worked
 * out by hand: [*s, *e], or -EINVAL when a negative length reaches below 0. */
static int want_range(int lensel, int64_t at, int b2, int64_t *s, int64_t *e)
{
	int64_t len;

	if (lensel == 2) {
		*s = at;
		*e = OFF_MAX;
		return 0;
	}
	if (lensel == 3) {
		len = 1 + b2 % (at + 1);
		if (at - len < 0)
			return -EINVAL;
		*s = at - len;
		*e = at - 1;
		return 0;
	}
	*s = at;
	*e = at + b2 % (WIN - at);
	return 0;
}

static int64_t flock_len(int lensel, int64_t at, int b2)
{
	if (lensel == 2)
		return 0;
	if (lensel == 3)
		return -(1 + b2 % (at + 1));
	return 1 + b2 % (WIN - at);
}

/* flp_range_from_flock on extreme values, against the kernel's rules
 * (fs/locks.c, flock_to_posix_lock) computed without overflow. */
static void check_arith(uint8_t b1, uint8_t b2, uint8_t b3)
{
	static const int64_t vals[] = {
		0, 1, -1, 2, -2, 63, -64, 1000, -1000, INT64_C(1) << 30, -(INT64_C(1) << 30),
		INT64_C(1) << 62, -(INT64_C(1) << 62), INT64_MAX, INT64_MAX - 1, INT64_MIN,
		INT64_MIN + 1, INT64_MAX / 2, -(INT64_MAX / 2), INT64_MAX - 1000,
	};
	static const int64_t bases[] = {
		0, 1, 1000, INT64_C(1) << 30, INT64_MAX / 2, INT64_MAX - 1000, INT64_MAX - 1,
		INT64_MAX,
	};
	const size_t nv = sizeof(vals) / sizeof(vals[0]);
	int64_t l_start = vals[b1 % nv], l_len = vals[b2 % nv], base = bases[b3 % 8];
	short whence = (short)((b3 >> 3) % 5); /* 3 and 4: SEEK_DATA, SEEK_HOLE */
	int64_t s = -1, e = -1, ls, ll, s2, e2;
	__int128 ws, we;
	int want, got;

	got = flp_range_from_flock(whence, l_start, l_len, base, base, &s, &e);
	if (whence > SEEK_END) {
		want = -EINVAL;
	} else {
		ws = (__int128)(whence == SEEK_SET ? 0 : base) + l_start;
		want = 0;
		if (ws > INT64_MAX) {
			want = -EOVERFLOW;
		} else if (ws < 0) {
			want = -EINVAL;
		} else if (l_len > 0) {
			we = ws + l_len - 1;
			if (we > INT64_MAX)
				want = -EOVERFLOW;
		} else if (l_len == 0) {
			we = OFF_MAX;
		} else {
			we = ws - 1;
			ws += l_len;
			if (ws < 0)
				want = -EINVAL;
		}
	}
	if (got != want)
		abort();
	if (got != 0)
		return;
	if (s != (int64_t)ws || e != (int64_t)we || s < 0 || s > e)
		abort();
	/* What F_GETLK would report reads back as the same range. */
	flp_range_to_flock(s, e, &ls, &ll);
	if (flp_range_from_flock(SEEK_SET, ls, ll, 0, 0, &s2, &e2) != 0 || s2 != s || e2 != e)
		abort();
}

static void check_conflict(const struct flp_rset *set, const cells_t t, int64_t s, int64_t e,
			   short type)
{
	const struct flp_range *r = flp_rset_conflict(set, s, e, type);
	int64_t last = e == OFF_MAX ? WIN : e;

	for (int64_t c = s; c <= last; c++) {
		if (t[c] == F_UNLCK || (type == F_RDLCK && t[c] == F_RDLCK))
			continue;
		/* The lowest conflicting byte must lie in the range reported. */
		if (r == NULL || r < set->v || r >= set->v + set->n || r->type != t[c] ||
		    r->start > c || r->end < c)
			abort();
		return;
	}
	if (r != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct flp_rset set = { 0 }, before = { 0 }, snap = { 0 };
	cells_t t, tb, ts, none;

	if (size > 4096)
		return 0;
	for (int c = 0; c <= WIN; c++)
		t[c] = ts[c] = none[c] = F_UNLCK;
	for (size_t i = 0; i + 4 <= size; i += 4) {
		uint8_t b0 = data[i], b1 = data[i + 1], b2 = data[i + 2], b3 = data[i + 3];
		int lensel = (b0 >> 4) & 3;
		int64_t at = b1 % WIN, s = 0, e = 0, gs = -1, ge = -1;
		int want, got;

		if ((b0 & 3) == 3) {
			if (b0 & 8)
				check_arith(b1, b2, b3);
			else if (want_range(lensel, at, b2, &s, &e) == 0)
				check_conflict(&set, t, s, e, (b0 & 4) ? F_WRLCK : F_RDLCK);
			continue;
		}

		static const short types[] = { F_RDLCK, F_WRLCK, F_UNLCK };
		static const short whences[] = { SEEK_SET, SEEK_SET, SEEK_CUR, SEEK_END };
		short type = types[b0 & 3], whence = whences[(b0 >> 2) & 3];
		int64_t base = whence == SEEK_SET ? 0 : b3, l_start = at - base, l_len;

		l_len = flock_len(lensel, at, b2);
		want = want_range(lensel, at, b2, &s, &e);
		if (b0 & 0x80) {
			whence = SEEK_SET;
			l_start = l_len = 0;
			want = 0;
			s = 0;
			e = OFF_MAX;
		}
		got = flp_range_from_flock(whence, l_start, l_len, base, base, &gs, &ge);
		if (got != want || (got == 0 && (gs != s || ge != e)))
			abort();
		if (got != 0)
			continue;

		if (flp_rset_copy(&before, &set) != 0)
			abort();
		memcpy(tb, t, sizeof(t));
		if (flp_rset_apply(&set, s, e, type) != 0)
			abort();
		cells_apply(t, s, e, type);
		check_set(&set, t);
		if (flp_rset_unchanged_by(&before, s, e, type) != (memcmp(t, tb, sizeof(t)) == 0))
			abort();
		check_shrinks(&set, t, &before, tb);
		check_shrinks(&before, tb, &set, t);
		check_shrinks(&set, t, &snap, ts);
		check_shrinks(&snap, ts, &set, t);
		if (b0 & 0x40) {
			if (flp_rset_copy(&snap, &set) != 0)
				abort();
			memcpy(ts, t, sizeof(t));
		}
	}
	flp_rset_clear(&before);
	check_shrinks(&before, none, &set, t);
	check_shrinks(&set, t, &before, none);
	flp_rset_free(&set);
	flp_rset_free(&before);
	flp_rset_free(&snap);
	return 0;
}
