/* SPDX-License-Identifier: MIT */
/*
 * proclocks.c -- one parser for the kernel's lock tables, shared by the
 * unix and rw kinds' inspection, the CLI's directory status and the shim's
 * fdinfo and /proc/locks checks (fuzzed by tests/fuzz/fuzz-proclocks.c).
 * The lines are the kernel's, but a parser that never overreads and takes
 * linear time costs nothing and survives a kernel that prints more fields.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proclocks.h"

int fl__proc_lock_parse(const char *line, struct fl__proc_lock *out)
{
	char endbuf[32], buf[256];
	const char *p = line;
	size_t n;
	int k;

	memset(out, 0, sizeof(*out));
	/* sscanf would read past a newline: parse a bounded copy of one line. */
	n = strcspn(line, "\n");
	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, line, n);
	buf[n] = '\0';
	p = buf;
	p += strspn(p, " \t");
	if (*p < '0' || *p > '9')
		return 0;
	p += strspn(p, "0123456789");
	if (*p++ != ':')
		return 0;
	p += strspn(p, " \t");
	if (p[0] == '-' && p[1] == '>') {
		out->waiter = 1;
		p += 2;
	}
	k = sscanf(p, "%15s %*15s %15s %d %x:%x:%llu %lld %31s", out->type, out->mode, &out->pid,
		   &out->maj, &out->min, &out->ino, &out->start, endbuf);
	if (k < 6)
		return 0;
	if (k < 8) {
		out->start = 0;
		out->end = INT64_MAX;
	} else {
		out->end = strcmp(endbuf, "EOF") == 0 ? INT64_MAX : strtoll(endbuf, NULL, 10);
	}
	return 1;
}

int fl__fdinfo_next_lock(const char **pos, struct fl__proc_lock *out)
{
	const char *p = *pos;

	while (*p != '\0') {
		const char *line = p;
		size_t n = strcspn(p, "\n");

		p += n + (p[n] == '\n');
		if (strncmp(line, "lock:", 5) == 0 && fl__proc_lock_parse(line + 5, out)) {
			*pos = p;
			return 1;
		}
	}
	*pos = p;
	return 0;
}
