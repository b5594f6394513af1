/* SPDX-License-Identifier: MIT */
/*
 * fuzz-policy.c -- the shim's policy file parser (filelock.conf(5)).  Any
 * bytes either parse into rules that satisfy the parser's own promises
 * (absolute patterns, a known kind, absolute lock_dir, stale_threshold above
 * heartbeat_interval) or fail with one "FILE:LINE: problem" message; never a
 * crash, an overread or a leak.  Accepted rules are then exercised through
 * the matcher and the marker-path functions with paths taken from the rules.
 * The checker's warnings (filelock-preload --check) come as "FILE:LINE:
 * warning: ..." lines and never change what is accepted; every accepted rule
 * can be described.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void warning(void *arg, const char *msg)
{
	(void)arg;
	if (strncmp(msg, "fuzz.conf:", 10) != 0 || strstr(msg, ": warning: ") == NULL ||
	    strlen(msg) >= 1024)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct flp_policy p = {0};
	char err[256], path[512], marker[1024], back[1024];
	char *copy;
	int r;

	if (size > 8192)
		return 0;
	copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	memcpy(copy, data, size);
	err[0] = '\0';
	r = flp_policy_parse_warn(&p, copy, size, "fuzz.conf", err, sizeof(err), warning, NULL);
	{
		/* The shim's parse, without warnings, decides the same way. */
		struct flp_policy q = {0};
		char qerr[256];
		int rq = flp_policy_parse(&q, copy, size, "fuzz.conf", qerr, sizeof(qerr));

		if (rq != r || q.n != p.n || (r != 0 && strcmp(err, qerr) != 0))
			abort();
		flp_policy_free(&q);
	}
	if (r != 0) {
		if ((r != -EINVAL && r != -ENOMEM) || strncmp(err, "fuzz.conf:", 10) != 0 ||
		    strlen(err) >= sizeof(err))
			abort();
		free(copy);
		return 0;
	}
	for (size_t i = 0; i < p.n; i++) {
		const struct flp_rule *ru = &p.rules[i];

		if (ru->pattern == NULL || ru->pattern[0] != '/' || ru->line < 1)
			abort();
		/* lock_dir=/ is kept as "" so that "" + data path is absolute. */
		if (ru->lock_dir != NULL && ru->lock_dir[0] != '/' && ru->lock_dir[0] != '\0')
			abort();
		if (ru->stale_threshold > 0 && ru->heartbeat_interval > 0 &&
		    ru->stale_threshold <= ru->heartbeat_interval)
			abort();
		/* etcd: its options only on etcd rules, no file-system options,
		 * a TTL of at least 1 s and a keep-alive within half of it. */
		if (ru->kind != FLP_ETCD && (ru->etcd_endpoints || ru->etcd_prefix))
			abort();
		if (ru->kind == FLP_ETCD &&
		    (ru->lock_dir || ru->lease_duration > 0 || ru->shared_reader ||
		     (ru->stale_threshold > 0 && ru->stale_threshold < 1) ||
		     (ru->etcd_prefix && ru->etcd_prefix[0] != '/') ||
		     ru->heartbeat_interval > (ru->stale_threshold > 0 ? ceil(ru->stale_threshold)
								     : 10.0) / 2))
			abort();
		(void)flp_kind_name(ru->kind);
		flp_rule_describe(ru, back, sizeof(back));
		if (strlen(ru->pattern) < sizeof(back) &&
		    strncmp(back, ru->pattern, strlen(ru->pattern)) != 0)
			abort();
		/* The pattern read as a literal path: matched through the table,
		 * its marker path must map back to a path the table redirects. */
		if (strlen(ru->pattern) < 200 && flp_normalize(ru->pattern, path, sizeof(path)) == 0) {
			const struct flp_rule *m = flp_policy_match(&p, path);
			if (m != NULL && flp_marker_path(m, path, marker, sizeof(marker)) == 0)
				(void)flp_data_path(&p, marker, back, sizeof(back));
		}
	}
	flp_policy_free(&p);
	free(copy);
	return 0;
}
