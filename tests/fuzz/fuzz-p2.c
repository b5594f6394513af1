/* SPDX-License-Identifier: MIT */
/*
 * fuzz-p2.c -- protocol-2 (lease) records: the parser must never crash or
 * read past its input, and what it accepts must satisfy the protocol's
 * rules (pid in 1..2^31-1; a lease has a finite positive duration).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fl-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	double duration;
	int is_lease;
	pid_t pid;
	char *copy;

	if (size > 2 * FL__MARKER_MAX)
		return 0;
	copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	memcpy(copy, data, size);
	if (fl__p2_parse(copy, size, &pid, &is_lease, &duration) == 0) {
		if (pid < 1 || (is_lease && !(isfinite(duration) && duration > 0)))
			abort();
		if (is_lease) {
			char r[64];
			fl__py_float_repr(duration, r, sizeof(r));
			if (strtod(r, NULL) != duration)
				abort(); /* repr must round-trip */
		}
	}
	free(copy);
	return 0;
}
