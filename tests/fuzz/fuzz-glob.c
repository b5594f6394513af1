/* SPDX-License-Identifier: MIT */
/*
 * fuzz-glob.c -- the shim's path normaliser and glob matcher.  The input is
 * "PATTERN\0PATH": normalisation is idempotent, never grows the path and
 * never leaves `.`/`..`/`//` components; matching never crashes, never
 * reads past either string and terminates quickly (libFuzzer's -timeout
 * catches exponential backtracking); `*` and `?` never match a '/'.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pat, *path, norm[512], norm2[512];
	const uint8_t *nul;
	size_t pl;

	if (size > 1024)
		return 0;
	nul = memchr(data, '\0', size);
	pl = nul ? (size_t)(nul - data) : size;
	pat = malloc(pl + 1); /* exact sizes: ASan sees any overread */
	memcpy(pat, data, pl);
	pat[pl] = '\0';
	if (nul) {
		size_t rl = strnlen((const char *)nul + 1, size - pl - 1);
		path = malloc(rl + 1);
		memcpy(path, nul + 1, rl);
		path[rl] = '\0';
	} else {
		path = strdup(pat);
	}

	if (flp_normalize(path, norm, sizeof(norm)) == 0) {
		if (norm[0] != '/' || strlen(norm) > strlen(path) || strstr(norm, "//") ||
		    strstr(norm, "/./") || strstr(norm, "/../") ||
		    (strlen(norm) > 1 && norm[strlen(norm) - 1] == '/'))
			abort();
		if (flp_normalize(norm, norm2, sizeof(norm2)) != 0 || strcmp(norm, norm2) != 0)
			abort(); /* idempotent */
		(void)flp_glob_match(pat, norm);
	} else if (path[0] == '/' && strlen(path) < sizeof(norm) - 1) {
		abort(); /* an absolute path that fits must normalise */
	}
	(void)flp_glob_match(pat, path);
	/* A pattern made only of '*' and '?' (no '/') never matches a path with
	 * a '/' in it. */
	if (pl > 0 && strspn(pat, "*?") == pl && strchr(pat, '/') == NULL && strstr(pat, "**") == NULL &&
	    strchr(path, '/') != NULL && flp_glob_match(pat, path))
		abort();
	free(pat);
	free(path);
	return 0;
}
