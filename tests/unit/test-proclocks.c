/* SPDX-License-Identifier: MIT */
/*
 * test-proclocks.c -- the kernel lock-table parser: /proc/locks lines of
 * each type (waiters flagged, EOF as INT64_MAX, OFD pid -1) and the walk
 * over an fdinfo text's "lock:" lines.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proclocks.h"

static void test_proc_locks_lines(void **state)
{
	struct fl__proc_lock pl;

	(void)state;
	assert_int_equal(fl__proc_lock_parse("1: POSIX  ADVISORY  WRITE 3141 00:2a:1234 "
					     "1073741824 1073742334\n2: junk",
					     &pl),
			 1);
	assert_string_equal(pl.type, "POSIX");
	assert_string_equal(pl.mode, "WRITE");
	assert_int_equal(pl.pid, 3141);
	assert_int_equal(pl.maj, 0);
	assert_int_equal(pl.min, 0x2a);
	assert_int_equal(pl.ino, 1234);
	assert_int_equal(pl.start, 1073741824);
	assert_int_equal(pl.end, 1073742334);
	assert_int_equal(pl.waiter, 0);
	assert_int_equal(fl__proc_lock_parse("12: -> FLOCK  ADVISORY  READ 7 fd:01:99 0 EOF", &pl), 1);
	assert_int_equal(pl.waiter, 1);
	assert_string_equal(pl.type, "FLOCK");
	assert_string_equal(pl.mode, "READ");
	assert_int_equal(pl.maj, 0xfd);
	assert_true(pl.end == INT64_MAX);
	assert_int_equal(fl__proc_lock_parse("3: OFDLCK ADVISORY  WRITE -1 00:05:9 0 EOF", &pl), 1);
	assert_int_equal(pl.pid, -1);
	/* Not lock lines. */
	assert_int_equal(fl__proc_lock_parse("", &pl), 0);
	assert_int_equal(fl__proc_lock_parse("FLOCK ADVISORY WRITE 1 1:1:1 0 EOF", &pl), 0);
	assert_int_equal(fl__proc_lock_parse("1: FLOCK ADVISORY\nWRITE 1 1:1:1 0 EOF", &pl), 0);
}

static void test_fdinfo_walk(void **state)
{
	const char *text = "pos:\t0\nflags:\t02100002\nlock:\t1: FLOCK  ADVISORY  WRITE 1234 "
			   "08:01:5678 0 EOF\nino:\t5678\nlock:\t2: POSIX  ADVISORY  READ 1234 "
			   "08:01:5678 0 99";
	const char *p = text;
	struct fl__proc_lock pl;

	(void)state;
	assert_int_equal(fl__fdinfo_next_lock(&p, &pl), 1);
	assert_string_equal(pl.type, "FLOCK");
	assert_int_equal(pl.pid, 1234);
	assert_int_equal(fl__fdinfo_next_lock(&p, &pl), 1);
	assert_string_equal(pl.type, "POSIX");
	assert_int_equal(pl.end, 99);
	assert_int_equal(fl__fdinfo_next_lock(&p, &pl), 0);
	assert_ptr_equal(p, text + strlen(text));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_locks_lines),
		cmocka_unit_test(test_fdinfo_walk),
	};
	return cmocka_run_group_tests_name("proclocks", tests, NULL, NULL);
}
