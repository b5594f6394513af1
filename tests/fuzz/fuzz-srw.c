/* SPDX-License-Identifier: MIT */
/*
 * fuzz-srw.c -- soft-rw markers ("token\npid\nhost\n"), written by peers on
 * other hosts and by Python: the parser must never crash or read past the
 * input, accept only what Python's grammar accepts, and give the same
 * fields for the canonical re-encoding of what it accepted.
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
	char token[33], host[256], token2[33], host2[256], again[600];
	pid_t pid, pid2;
	char *copy;
	size_t n;

	if (size > 2 * FL__MARKER_MAX)
		return 0;
	copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	memcpy(copy, data, size);
	if (fl__srw_parse(copy, size, token, &pid, host) == 0) {
		if (size > FL__MARKER_MAX || strlen(token) != 32 ||
		    strspn(token, "0123456789abcdef") != 32 || pid < 1 || strlen(host) == 0 ||
		    strlen(host) > 253)
			abort();
		for (const char *h = host; *h; h++)
			if (*h < 0x21 || *h > 0x7e)
				abort();
		n = (size_t)snprintf(again, sizeof(again), "%s\n%d\n%s\n", token, (int)pid, host);
		if (fl__srw_parse(again, n, token2, &pid2, host2) != 0 ||
		    strcmp(token, token2) != 0 || pid != pid2 || strcmp(host, host2) != 0)
			abort();
	}
	free(copy);
	return 0;
}
