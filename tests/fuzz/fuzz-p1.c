/* SPDX-License-Identifier: MIT */
/*
 * fuzz-p1.c -- protocol-1 (soft) records and the stale-marker path: the
 * parser must never crash, never read past the input, and agree with a
 * re-parse of what it accepted.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fl_p1 p;
	char *copy;

	if (size > 2 * FL__MARKER_MAX)
		return 0;
	copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	memcpy(copy, data, size);
	if (fl__p1_parse(copy, size, &p) == 0) {
		if (p.pid < 1 || strlen(p.host) >= sizeof(p.host) ||
		    strspn(p.token, "0123456789") != strlen(p.token))
			abort();
		/* A parsed record, formatted again, parses to the same fields. */
		char again[600];
		size_t n = (size_t)snprintf(again, sizeof(again), "%d\n%s\n%s%s", (int)p.pid,
					     p.host, p.token, p.token[0] ? "\n" : "");
		struct fl_p1 q;
		if (n < sizeof(again) && strchr(p.host, '\n') == NULL && strchr(p.host, '\r') == NULL &&
		    p.host[0] != ' ' && fl__p1_parse(again, n, &q) == 0 &&
		    (q.pid != p.pid || strcmp(q.token, p.token) != 0))
			abort();
	}
	{
		long long v;
		(void)fl__parse_ll(copy, size, &v);
		(void)fl__token_equal("123", "0123");
	}
	free(copy);
	return 0;
}
