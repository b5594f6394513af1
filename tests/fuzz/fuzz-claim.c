/* SPDX-License-Identifier: MIT */
/*
 * fuzz-claim.c -- strict claim records: the parser must never crash or read
 * past its input, and, being canonical-only, must accept exactly the bytes
 * it would write itself for the fields it parsed.
 *
 * Input: the first byte picks the claim name (intent or held, with the
 * token taken from the record when it has one), the rest is the record.
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
	char name[80], tok[33] = "0123456789abcdef0123456789abcdef";
	struct fl_claim c;
	char *rec;
	size_t n;

	if (size < 1 || size > 2048)
		return 0;
	n = size - 1;
	rec = malloc(n ? n : 1); /* exact size: ASan sees any overread */
	memcpy(rec, data + 1, n);
	/* Use the record's second line as the token when it looks like one, so
	 * that mutations reach the field checks past the name match. */
	{
		const char *nl = memchr(rec, '\n', n);
		if (nl && (size_t)(nl - rec) + 34 <= n && nl[33] == '\n')
			memcpy(tok, nl + 1, 32);
	}
	for (int i = 0; i < 32; i++)
		if (!((tok[i] >= '0' && tok[i] <= '9') || (tok[i] >= 'a' && tok[i] <= 'f')))
			tok[i] = 'a';
	snprintf(name, sizeof(name), "%s-v1-%s.claim", data[0] & 1 ? "held" : "intent", tok);
	if (fl__strict_claim_parse(name, rec, n, &c) == 0) {
		char again[2200], hex[520];
		size_t hl = strlen(c.host), m;

		if (c.pid < 1 || c.held != (data[0] & 1) || strcmp(c.token, tok) != 0)
			abort();
		for (size_t i = 0; i < hl; i++)
			sprintf(hex + 2 * i, "%02x", (unsigned char)c.host[i]);
		hex[2 * hl] = '\0';
		m = (size_t)snprintf(again, sizeof(again), "filelock-strict-v1\n%s\n%d\n%s\n%s\n",
				     c.token, (int)c.pid, hex, c.start);
		if (m != n || memcmp(again, rec, n) != 0)
			abort(); /* accepted something non-canonical */
	}
	(void)fl__strict_claim_parse("held-v1-0.claim", rec, n, &c);
	free(rec);
	return 0;
}
