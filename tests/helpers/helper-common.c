/* SPDX-License-Identifier: MIT */
/* helper-common.c -- see helper-common.h. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "helper-common.h"
#include "fl-internal.h"

/* FL_ESTALE_LOG=FILE: at exit, each helper appends the number of records the
 * library read again because NFS answered ESTALE (the cluster suites sum
 * them per scenario). */
static const char *estale_log;

static void estale_log_write(void)
{
	char line[32];
	int fd, n;

	fd = open(estale_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%lu\n", fl__estale_retries());
	if (n > 0 && write(fd, line, (size_t)n) != n) {
		/* best effort: a statistic */
	}
	close(fd);
}

__attribute__((constructor)) static void estale_log_init(void)
{
	estale_log = getenv("FL_ESTALE_LOG");
	if (estale_log && *estale_log)
		atexit(estale_log_write);
}

static int flag_bit(const char *name, unsigned *out)
{
	static const struct {
		const char *n;
		unsigned v;
	} t[] = { { "nonblock", FL_NONBLOCK },         { "shared_context", FL_SHARED_CONTEXT },
		  { "singleton", FL_SINGLETON },       { "no_singleton", FL_NO_SINGLETON },
		  { "no_fallback", FL_NO_FALLBACK } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(name, t[i].n) == 0) {
			*out = t[i].v;
			return 0;
		}
	}
	return -1;
}

int fl_helper_opt(struct fl_options *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[64], *end;
	double d;

	if (eq == NULL || (size_t)(eq - kv) >= sizeof(key)) {
		fprintf(stderr, "bad option '%s' (want key=value)\n", kv);
		return -1;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	eq++;
	if (strcmp(key, "flags") == 0) {
		char buf[256], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", eq);
		for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			unsigned bit;
			if (flag_bit(t, &bit) != 0) {
				fprintf(stderr, "unknown flag '%s'\n", t);
				return -1;
			}
			o->flags |= bit;
		}
		return 0;
	}
	if (strcmp(key, "protocol") == 0) {
		if (strcmp(eq, "legacy") == 0)
			o->soft_rw_protocol = FL_SOFT_RW_LEGACY;
		else if (strcmp(eq, "rw1") == 0)
			o->soft_rw_protocol = FL_SOFT_RW_RW1;
		else {
			fprintf(stderr, "bad protocol '%s' (legacy or rw1)\n", eq);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "mode") == 0) {
		long m = strtol(eq, &end, 8);
		if (*end) {
			fprintf(stderr, "bad mode '%s'\n", eq);
			return -1;
		}
		o->mode = (int)m;
		return 0;
	}
	d = strtod(eq, &end);
	if (*end || end == eq) {
		fprintf(stderr, "bad number '%s' for %s\n", eq, key);
		return -1;
	}
	if (strcmp(key, "timeout") == 0)
		o->timeout = d;
	else if (strcmp(key, "poll_interval") == 0)
		o->poll_interval = d;
	else if (strcmp(key, "lifetime") == 0)
		o->lifetime = d;
	else if (strcmp(key, "lease_duration") == 0)
		o->lease_duration = d;
	else if (strcmp(key, "heartbeat_interval") == 0)
		o->heartbeat_interval = d;
	else if (strcmp(key, "stale_threshold") == 0)
		o->stale_threshold = d;
	else {
		fprintf(stderr, "unknown option '%s'\n", key);
		return -1;
	}
	return 0;
}

long long fl_helper_mono_ns(void)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
