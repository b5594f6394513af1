/* SPDX-License-Identifier: MIT */
/*
 * fuzz-srwl.c -- filelock-rw/1 records, written by peers on other hosts and
 * by Python: generation snapshots (gen/<N>, and HEAD after its epoch line)
 * and holder records.  The first byte picks the record (even: snapshot, odd:
 * holder record), the rest is the record.  The parsers must never crash or
 * read past the input; an accepted snapshot has a generation of at most 20
 * digits, valid tokens, sorted unique readers, and its canonical encoding
 * parses back to the same snapshot; a holder record's lease is 0 or a finite
 * positive float that repr() spells as the record does.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void snapshot(const char *buf, size_t len)
{
	struct fl_srwl_snap s, t;
	char *again;
	size_t n, cap;

	if (fl__srwl_parse(buf, len, &s) != 0)
		return;
	if (len > (1u << 20) || (s.writer[0] && !fl__srwl_is_token(s.writer, strlen(s.writer))))
		abort();
	for (size_t i = 0; i < s.nr; i++)
		if (!fl__srwl_is_token(s.readers[i], strlen(s.readers[i])) ||
		    (i > 0 && strcmp(s.readers[i - 1], s.readers[i]) >= 0))
			abort();
	cap = 64 + 48 + s.nr * 40;
	again = malloc(cap);
	n = (size_t)snprintf(again, cap, "filelock-rw/1\ngeneration=%llu\n", s.gen);
	if (s.writer[0])
		n += (size_t)snprintf(again + n, cap - n, "writer=%s\n", s.writer);
	for (size_t i = 0; i < s.nr; i++)
		n += (size_t)snprintf(again + n, cap - n, "reader=%s\n", s.readers[i]);
	if (n > len + 20 || fl__srwl_parse(again, n, &t) != 0 || t.gen != s.gen ||
	    strcmp(t.writer, s.writer) != 0 || t.nr != s.nr ||
	    (s.nr && memcmp(t.readers, s.readers, s.nr * sizeof(s.readers[0])) != 0))
		abort();
	fl__srwl_snap_free(&t);
	fl__srwl_snap_free(&s);
	free(again);
}

static void holder(const char *buf, size_t len)
{
	double v = fl__srwl_holder_lease(buf, len);
	char r[48], needle[64];

	if (v == 0)
		return;
	if (!isfinite(v) || !(v > 0))
		abort();
	fl__py_float_repr(v, r, sizeof(r));
	snprintf(needle, sizeof(needle), "lease=%s", r);
	if (len < strlen(needle) || memmem(buf, len, needle, strlen(needle)) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	if (size < 1 || size > 8192)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any overread */
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		holder(copy, size - 1);
	else
		snapshot(copy, size - 1);
	free(copy);
	return 0;
}
