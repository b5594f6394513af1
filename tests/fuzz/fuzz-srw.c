/* SPDX-License-Identifier: MIT */
/*
 * fuzz-srw.c -- soft-rw markers "<32 hex token>\n<pid>\n<host>\n": the parser
 * must never crash or read past its input, and whatever it accepts must obey
 * Python's grammar (lowercase hex token, pid in 1..2^31-1, a printable ASCII
 * host of 1..253 bytes) and parse again to the same fields once re-formatted.
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
	char token[33], host[256], token2[33], host2[256], again[400];
	pid_t pid, pid2;
	char *copy;

	if (size > 2 * FL__MARKER_MAX)
		return 0;
	copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	memcpy(copy, data, size);
	if (fl__srw_parse(copy, size, token, &pid, host) == 0) {
		size_t hl = strlen(host);
		int n;

		if (strlen(token) != 32 || strspn(token, "0123456789abcdef") != 32)
			abort();
		if (pid < 1 || hl < 1 || hl > 253)
			abort();
		for (size_t i = 0; i < hl; i++)
			if ((unsigned char)host[i] < 0x21 || (unsigned char)host[i] > 0x7e)
				abort();
		n = snprintf(again, sizeof(again), "%s\n%d\n%s\n", token, (int)pid, host);
		if (n < 0 || (size_t)n >= sizeof(again) ||
		    fl__srw_parse(again, (size_t)n, token2, &pid2, host2) != 0 ||
		    strcmp(token, token2) != 0 || pid != pid2 || strcmp(host, host2) != 0)
			abort();
	}
	free(copy);
	return 0;
}
