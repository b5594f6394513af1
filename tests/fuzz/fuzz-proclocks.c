/* SPDX-License-Identifier: MIT */
/*
 * fuzz-proclocks.c -- the kernel lock-table parser (lib/proclocks.c) that
 * the unix and rw kinds, the CLI and the shim read /proc/locks and
 * /proc/self/fdinfo with.  Any bytes: every line parses or is skipped, the
 * fdinfo walk ends and only moves forward, parsed fields are terminated
 * strings; never a crash or an overread (the input is copied to an exact
 * NUL-terminated buffer).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proclocks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct fl__proc_lock *pl)
{
	if (memchr(pl->type, '\0', sizeof(pl->type)) == NULL ||
	    memchr(pl->mode, '\0', sizeof(pl->mode)) == NULL || (pl->waiter != 0 && pl->waiter != 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fl__proc_lock pl;
	char *text = malloc(size + 1);
	const char *p, *line;
	size_t steps = 0;

	memcpy(text, data, size);
	text[size] = '\0';
	/* /proc/locks: line by line, as fgets would hand them over. */
	for (line = text; *line;) {
		const char *eol = strchr(line, '\n');
		if (fl__proc_lock_parse(line, &pl))
			check(&pl);
		line = eol ? eol + 1 : line + strlen(line);
	}
	/* fdinfo: the walk over "lock:" lines. */
	for (p = text; fl__fdinfo_next_lock(&p, &pl);) {
		check(&pl);
		if (p < text || p > text + size || ++steps > size)
			abort();
	}
	free(text);
	return 0;
}
