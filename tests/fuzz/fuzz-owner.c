/* SPDX-License-Identifier: MIT */
/*
 * fuzz-owner.c -- the shim's byte-range owner files (preload/rlock.c writes
 * them, preload/ranges.c parses them).  Any input either parses into a
 * well-formed range list (sorted, disjoint, same-type neighbours merged,
 * start <= end, starts >= 0, a positive pid, a NUL-free host) or is refused
 * with -EBADMSG; nothing crashes or reads past the input.  A file that
 * parses also parses again after its range lines are written back in the
 * canonical form, to the same list.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct flp_rset set = { 0 }, again = { 0 };
	char host[256], host2[256], *buf, *canon;
	pid_t pid, pid2;
	int ofd, ofd2, r;
	size_t cap, n;

	if (size > 8192)
		return 0;
	buf = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	memcpy(buf, data, size);
	r = flp_rl_parse(buf, size, host, sizeof(host), &pid, &ofd, &set);
	if (r != 0) {
		if (r != -EBADMSG && r != -ENOMEM)
			abort();
		goto out;
	}
	if (pid <= 0 || ofd < 0 || host[0] == '\0' || strlen(host) >= sizeof(host) ||
	    set.n > FLP_RL_MAX_RANGES)
		abort();
	for (size_t i = 0; i < set.n; i++) {
		const struct flp_range *x = &set.v[i];
		if (x->start < 0 || x->end < x->start ||
		    (x->type != F_RDLCK && x->type != F_WRLCK))
			abort();
		if (i > 0) {
			const struct flp_range *p = &set.v[i - 1];
			if (p->end >= x->start)
				abort(); /* overlapping or unsorted */
			if (p->type == x->type && p->end + 1 == x->start)
				abort(); /* touching same-type ranges must have merged */
		}
	}
	/* Canonical form: the header as rlock.c writes it, then the list. */
	cap = 256 + strlen(host) + set.n * 48;
	canon = malloc(cap);
	n = (size_t)snprintf(canon, cap, "filelock-ranges 1\nhost %s\npid %d\ntoken 1\n", host,
			     (int)pid);
	n += (size_t)(ofd ? snprintf(canon + n, cap - n, "owner ofd %d\n", ofd)
			  : snprintf(canon + n, cap - n, "owner posix\n"));
	for (size_t i = 0; i < set.n; i++)
		n += (size_t)snprintf(canon + n, cap - n, "%c %lld %lld\n",
				      set.v[i].type == F_WRLCK ? 'W' : 'R',
				      (long long)set.v[i].start, (long long)set.v[i].end);
	if (flp_rl_parse(canon, n, host2, sizeof(host2), &pid2, &ofd2, &again) != 0 ||
	    pid2 != pid || ofd2 != ofd || strcmp(host, host2) != 0 || again.n != set.n)
		abort();
	for (size_t i = 0; i < set.n; i++) /* field by field: padding is not data */
		if (again.v[i].start != set.v[i].start || again.v[i].end != set.v[i].end ||
		    again.v[i].type != set.v[i].type)
			abort();
	free(canon);
out:
	flp_rset_free(&set);
	flp_rset_free(&again);
	free(buf);
	return 0;
}
