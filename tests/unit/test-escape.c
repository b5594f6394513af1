/* SPDX-License-Identifier: MIT */
/*
 * test-escape.c -- fl__escape(), the one escaping function for text meant
 * for a terminal: controls, C1 controls, DEL and malformed UTF-8 become
 * \xHH; printable ASCII and well-formed UTF-8 pass; escaping twice changes
 * nothing; a short buffer cuts at a character boundary.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"

static const char *esc(const char *s)
{
	static char out[256];

	return fl__escape(out, sizeof(out), s);
}

static void test_passes_text(void **state)
{
	(void)state;
	assert_string_equal(esc("node-1.example.org"), "node-1.example.org");
	assert_string_equal(esc("a\\b c~"), "a\\b c~");
	assert_string_equal(esc("h\xc3\xa9te \xe2\x82\xac \xf0\x9f\x94\x92"),
			    "h\xc3\xa9te \xe2\x82\xac \xf0\x9f\x94\x92");
	assert_string_equal(esc(""), "");
}

static void test_escapes_controls(void **state)
{
	(void)state;
	assert_string_equal(esc("a\033]0;pwned\007b"), "a\\x1b]0;pwned\\x07b");
	assert_string_equal(esc("line\nforged\tx\r"), "line\\x0aforged\\x09x\\x0d");
	assert_string_equal(esc("\x7f"), "\\x7f");
	/* C1 controls, raw (CSI 0x9b) and UTF-8 encoded (U+009B). */
	assert_string_equal(esc("\x9b" "31m"), "\\x9b31m");
	assert_string_equal(esc("\xc2\x9b" "31m"), "\\xc2\\x9b31m");
	/* Malformed UTF-8: truncated, overlong, surrogate, beyond U+10FFFF. */
	assert_string_equal(esc("\xc3"), "\\xc3");
	assert_string_equal(esc("\xc0\xaf"), "\\xc0\\xaf");
	assert_string_equal(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");
	assert_string_equal(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
	assert_string_equal(esc("\xe2\x82"), "\\xe2\\x82");
}

static void test_idempotent(void **state)
{
	char once[256], twice[256];

	(void)state;
	fl__escape(once, sizeof(once), "x\033[2J\xff\xc2\x85y\\x1b");
	fl__escape(twice, sizeof(twice), once);
	assert_string_equal(once, twice);
}

static void test_truncates_whole(void **state)
{
	char out[8];

	(void)state;
	/* "ab" + "\x1b" needs 2 + 4 bytes + NUL = 7: fits. */
	assert_string_equal(fl__escape(out, sizeof(out), "ab\033cd"), "ab\\x1bc");
	/* The escape for ESC never comes out half. */
	assert_string_equal(fl__escape(out, 6, "ab\033cd"), "ab");
	/* Nor a UTF-8 character. */
	assert_string_equal(fl__escape(out, 4, "a\xe2\x82\xac"), "a");
	assert_string_equal(fl__escape(out, 1, "abc"), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passes_text),
		cmocka_unit_test(test_escapes_controls),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_truncates_whole),
	};
	return cmocka_run_group_tests_name("escape", tests, NULL, NULL);
}
