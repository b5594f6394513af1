/* SPDX-License-Identifier: MIT */
/*
 * fl-holder -- takes a lock and holds it under the control of its stdin, so
 * that tests can synchronise with it through pipes instead of sleeps.
 *
 *   fl-holder [-t KIND] [-s] [-w TIMEOUT] [-o key=value]... PATH
 *
 * After fl_acquire it prints one line to stdout and flushes it:
 *   "ready <pid>"          the lock is held
 *   "error <errno> <msg>"  fl_acquire failed (exit 1 for ETIMEDOUT, 2 otherwise)
 * Then it reads commands, one per line, from stdin and answers each:
 *   "valid"    -> "valid 0|1"       (fl_is_valid)
 *   "counter"  -> "counter N"       (fl_lock_counter)
 *   "fence"    -> "fence N" | "fence -ERRNO" (fl_fencing_token)
 *   "acquire"  -> "ok" | "error ..."(one more level)
 *   "release"  -> "released <rc>"  and exit 0
 * EOF on stdin releases and exits 0.  When the lock is reported lost it
 * prints "compromised <reason>" at once.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filelock.h"
#include "helper-common.h"

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	/* one write(2) so lines from the heartbeat thread never interleave */
	if (write(STDOUT_FILENO, buf, (size_t)n) < 0)
		_exit(98);
}

static void on_compromise(fl_lock *lk, int reason, void *arg)
{
	(void)lk;
	(void)arg;
	say("compromised %d\n", reason);
}

int main(int argc, char **argv)
{
	struct fl_options o;
	enum fl_kind kind = FL_SOFT;
	enum fl_mode mode = FL_EXCLUSIVE;
	double timeout = FL_TIMEOUT_DEFAULT;
	char line[256];
	fl_lock *lk;
	int c, r;

	fl_options_init(&o);
	o.on_compromise = on_compromise;
	while ((c = getopt(argc, argv, "+t:sw:o:")) != -1) {
		switch (c) {
		case 't':
			if (fl_kind_parse(optarg, &kind) != 0) {
				fprintf(stderr, "unknown kind %s\n", optarg);
				return 64;
			}
			break;
		case 's':
			mode = FL_SHARED;
			break;
		case 'w':
			timeout = strtod(optarg, NULL);
			break;
		case 'o':
			if (fl_helper_opt(&o, optarg) != 0)
				return 64;
			break;
		default:
			return 64;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: fl-holder [-t KIND] [-s] [-w T] [-o k=v]... PATH\n");
		return 64;
	}
	r = fl_open(&lk, argv[optind], kind, &o);
	if (r != 0) {
		say("error %d %s\n", -r, fl_errmsg(NULL));
		return 2;
	}
	r = fl_acquire(lk, mode, timeout);
	if (r != 0) {
		say("error %d %s\n", -r, fl_errmsg(lk));
		fl_close(lk);
		return r == -ETIMEDOUT ? 1 : 2;
	}
	say("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (strncmp(line, "valid", 5) == 0) {
			say("valid %d\n", fl_is_valid(lk));
		} else if (strncmp(line, "counter", 7) == 0) {
			say("counter %u\n", fl_lock_counter(lk));
		} else if (strncmp(line, "fence", 5) == 0) {
			unsigned long long t = 0;
			r = fl_fencing_token(lk, &t);
			if (r == 0)
				say("fence %llu\n", t);
			else
				say("fence %d\n", r);
		} else if (strncmp(line, "acquire", 7) == 0) {
			r = fl_acquire(lk, mode, timeout);
			if (r == 0)
				say("ok\n");
			else
				say("error %d %s\n", -r, fl_errmsg(lk));
		} else if (strncmp(line, "release", 7) == 0) {
			r = fl_release(lk, FL_FORCE);
			say("released %d\n", r);
			fl_close(lk);
			return 0;
		}
	}
	fl_close(lk);
	return 0;
}
