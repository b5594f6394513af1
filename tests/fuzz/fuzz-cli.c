/* SPDX-License-Identifier: MIT */
/*
 * fuzz-cli.c -- the filelock command's option parsing (parse_args for the
 * flock(1) form, parse_sub for status and break), reached by including the
 * command's source.  The input is split at NUL and newline bytes into an
 * argument vector; parsing either fills struct cli consistently or ends in
 * exit() (usage, --help, --version), which returns here by longjmp.  The
 * parsers do no I/O besides messages (sent to /dev/null), so nothing is
 * opened, locked or run.
 */
#include "config.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static jmp_buf fuzz_exit_jmp;
static void fuzz_exit(int code) __attribute__((noreturn));
static void fuzz_exit(int code)
{
	longjmp(fuzz_exit_jmp, code + 1);
}

/* `make fuzz` builds without the CLI's per-target flags. */
#ifndef FL_DEFAULT_POLICY
#define FL_DEFAULT_POLICY "/etc/filelock/preload.conf"
#endif

int filelock_main(int argc, char **argv);
#define main filelock_main
#define exit(code) fuzz_exit(code)
#include "../../cli/filelock.c"
#undef exit
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ARGS 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet = -1;
	static char arg0[] = "filelock", *reset_argv[] = { arg0, NULL };
	char *buf, *argv[FUZZ_ARGS + 2];
	int argc = 0, saved[2];
	volatile int code;
	struct sub_args a;
	struct cli c;

	if (size > 2048)
		return 0;
	if (quiet < 0)
		quiet = open("/dev/null", O_WRONLY | O_CLOEXEC);
	buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = arg0;
	for (char *p = buf; argc < FUZZ_ARGS && p <= buf + size;) {
		size_t n = strcspn(p, "\n");
		p[n] = '\0';
		argv[argc++] = p;
		p += n + 1;
	}
	argv[argc] = NULL;

	fflush(stdout);
	fflush(stderr);
	saved[0] = dup(1);
	saved[1] = dup(2);
	dup2(quiet, 1);
	dup2(quiet, 2);
	/* A fresh getopt for every input: a parse that ended inside a cluster
	 * of short options ("-nX") left getopt pointing into the last input,
	 * and parse_sub's optind = 2 alone would not reset that. */
	optind = 0;
	(void)getopt(1, reset_argv, "");
	optind = 0;
	code = setjmp(fuzz_exit_jmp);
	if (code == 0) {
		if (argc >= 2 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "break") == 0)) {
			parse_sub(argc, argv, &c, &a);
			if (c.path == NULL || (a.is_status && (a.force || a.claim)) ||
			    (!a.is_status && a.json))
				abort();
		} else if (argc >= 2) {
			parse_args(argc, argv, &c);
			/* The FD form or a path and a command, never both. */
			if ((c.fd >= 0) == (c.path != NULL) || (c.path && (c.cmd == NULL || !c.cmd[0])))
				abort();
			if (c.unlock && c.fd < 0)
				abort();
			if (c.timeout == 0 && !c.nonblock)
				abort();
		}
	} else if (code - 1 != EX_OK && code - 1 != EX_USAGE) {
		abort(); /* parsing only ever ends in success or a usage error */
	}
	fflush(stdout);
	fflush(stderr);
	dup2(saved[0], 1);
	dup2(saved[1], 2);
	close(saved[0]);
	close(saved[1]);
	free(buf);
	return 0;
}
