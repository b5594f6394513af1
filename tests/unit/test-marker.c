/* SPDX-License-Identifier: MIT */
/*
 * test-marker.c -- the parsers and helpers of untrusted marker bytes:
 * protocol-1 records, start tokens, safe reads, breaking, canonical paths.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"

static int parse(const char *s, struct fl_p1 *p)
{
	return fl__p1_parse(s, strlen(s), p);
}

static void test_marker_p1_valid(void **state)
{
	struct fl_p1 p;

	assert_int_equal(parse("123\nhost\n456\n", &p), 0);
	assert_int_equal(p.pid, 123);
	assert_string_equal(p.host, "host");
	assert_string_equal(p.token, "456");
	assert_int_equal(parse("7\nh\n", &p), 0); /* no token */
	assert_string_equal(p.token, "");
	assert_int_equal(parse("\n 42\nnode-1.example\n99\n\n", &p), 0); /* the whole is stripped */
	assert_int_equal(p.pid, 42);
	assert_string_equal(p.token, "99");
	assert_int_equal(parse("1\r\nh\r\n", &p), 0); /* \r\n is one break */
	assert_int_equal(parse("2147483647\nh\n", &p), 0);
	assert_int_equal(parse("007\nh\n", &p), 0);
	assert_int_equal(p.pid, 7);
	assert_int_equal(parse("5\nh\xc3\xa9te\n", &p), 0); /* UTF-8 host */
	assert_int_equal(parse("5\nhost with spaces\n", &p), 0);
	assert_string_equal(p.host, "host with spaces");
	/* The strict sentinel parses as pid 1 on a foreign host, as designed. */
	assert_int_equal(fl__p1_parse(fl__strict_sentinel, FL__STRICT_SENTINEL_LEN, &p), 0);
	assert_int_equal(p.pid, 1);
}

static void test_marker_p1_malformed(void **state)
{
	static const char *const bad[] = {
		"",           " \n\t",          "123",         "1\n2\n3\n4\n", "0\nh\n",
		"-1\nh\n",    "2147483648\nh\n", "99999999999999999999\nh\n", "12x\nh\n",
		"1 2\nh\n",   "5\nh\nabc\n",     "5\nh\n1.5\n", "\xff\nh\n",   "5\nh\xc0\xaf\n",
		"5\nh\xed\xa0\x80\n", /* a surrogate */
		/* Python 4: a trailing newline, ASCII digits only. */
		"123\nhost\n456", "5\nh", "+5\nh\n", "42 \nh\n", "5\nh\n 99\n", "5\nh\n+9\n",
		"\xd9\xa1\nh\n",
	};
	struct fl_p1 p;
	char big[FL__MARKER_MAX + 8];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &p) != -EBADMSG)
			fail_msg("accepted bad record #%zu", i);
	memset(big, '1', sizeof(big));
	big[1] = '\n';
	assert_int_equal(fl__p1_parse(big, sizeof(big), &p), -EBADMSG);
	/* A 300-byte host name does not fit the record's host field. */
	{
		char rec[400];
		memset(rec, 'h', sizeof(rec));
		memcpy(rec, "5\n", 2);
		rec[sizeof(rec) - 1] = '\n';
		assert_int_equal(fl__p1_parse(rec, sizeof(rec), &p), -EBADMSG);
	}
}

static void test_marker_p1_format(void **state)
{
	char buf[512], want[512], host[256], tok[96];

	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	gethostname(host, sizeof(host));
	snprintf(want, sizeof(want), "%d\n%s\n%s\n", (int)getpid(), host, tok);
	assert_int_equal(fl__p1_format(buf, sizeof(buf)), (int)strlen(want));
	assert_string_equal(buf, want);
	assert_true(fl__p1_format(buf, 4) < 0);
}

/* The token is (boot_id << 64) | starttime in decimal: check it against an
 * independent computation of the same number with Python's integers. */
static void test_marker_start_token(void **state)
{
	const char *py = getenv("FL_PYTHON3");
	char tok[96], cmd[512], out[128];
	FILE *f;

	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	assert_true(strspn(tok, "0123456789") == strlen(tok));
	assert_true(fl__token_equal(tok, tok));
	assert_int_equal(fl__start_token(1 << 30, tok + 0, sizeof(tok)) == 0, 0); /* no such pid */
	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	if (py == NULL || access(py, X_OK) != 0)
		skip();
	snprintf(cmd, sizeof(cmd),
		 "%s -c 'b=int(open(\"/proc/sys/kernel/random/boot_id\").read().strip()"
		 ".replace(\"-\",\"\"),16);s=open(\"/proc/%d/stat\").read();"
		 "print((b<<64)|int(s[s.rindex(\")\")+2:].split()[19]))'",
		 py, (int)getpid());
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(out, sizeof(out), f));
	pclose(f);
	out[strcspn(out, "\n")] = '\0';
	assert_string_equal(tok, out);
}

static void test_marker_token_equal(void **state)
{
	assert_true(fl__token_equal("123", "123"));
	assert_true(fl__token_equal(" 00123\n", "123"));
	assert_true(fl__token_equal("+123", "123"));
	assert_false(fl__token_equal("123", "1234"));
	assert_false(fl__token_equal("", ""));
	assert_false(fl__token_equal("abc", "abc"));
}

static void test_marker_owner_is_stale(void **state)
{
	char host[256], tok[96];

	gethostname(host, sizeof(host));
	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	assert_int_equal(fl__owner_is_stale(getpid(), host, tok), 0);  /* alive, same token */
	assert_int_equal(fl__owner_is_stale(getpid(), host, "1"), 1);  /* recycled */
	assert_int_equal(fl__owner_is_stale(getpid(), host, ""), 0);   /* alive, no token */
	assert_int_equal(fl__owner_is_stale(getpid(), "elsewhere", "1"), 0); /* other host */
	assert_int_equal(fl__owner_is_stale(1 << 30, host, ""), 1);    /* no such pid */
	assert_int_equal(fl__owner_is_stale(1 << 30, "elsewhere", ""), 0);
}

static void test_marker_read_safely(void **state)
{
	const char *p = fl_test_path("m");
	struct fl_marker m;
	int fd;

	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0);
	assert_int_equal(m.exists, 0);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "1\nh\n", 4), 4);
	close(fd);
	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0);
	assert_true(m.exists && m.regular && !m.malformed);
	assert_int_equal(m.len, 4);
	assert_string_equal(m.buf, "1\nh\n");
	p = fl_test_path("fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0); /* never blocks */
	assert_true(m.exists && !m.regular && m.malformed);
	p = fl_test_path("link");
	assert_int_equal(symlink("/etc/hostname", p), 0);
	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0); /* never follows */
	assert_true(m.exists && !m.regular && m.malformed);
	assert_int_equal(m.len, 0);
}

static void test_marker_break_file(void **state)
{
	const char *p = fl_test_path("brk");
	struct fl_marker m;
	struct stat st;
	int fd = open(p, O_CREAT | O_WRONLY, 0644);

	close(fd);
	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0);
	assert_int_equal(fl__break_file(p, &m), 0);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(fl__break_file(p, &m), -ENOENT);
	/* A marker newer than judged (a peer's fresh one) is not deleted: it is
	 * put back, the same inode, so its holder still holds. */
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	close(fd);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0);
	m.mtime -= 10;
	assert_int_equal(fl__break_file(p, &m), -EAGAIN);
	{
		struct stat again;
		assert_int_equal(stat(p, &again), 0);
		assert_int_equal(again.st_ino, st.st_ino);
		assert_int_equal(again.st_nlink, 1); /* the name aside is gone */
	}
	/* The same inode and mtime with other bytes: the next holder's marker
	 * (inode numbers come back at once; mtimes from the coarse clock repeat
	 * within a tick).  Not the one judged: put back. */
	assert_int_equal(unlink(p), 0);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "111\n", 4), 4);
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	assert_int_equal(fl__marker_read(AT_FDCWD, p, &m), 0);
	fd = open(p, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "222\n", 4), 4);
	{
		struct timespec ts[2] = { st.st_atim, st.st_mtim };
		assert_int_equal(futimens(fd, ts), 0);
	}
	close(fd);
	assert_int_equal(fl__break_file(p, &m), -EAGAIN);
	assert_int_equal(access(p, F_OK), 0);
}

static void test_marker_unlink_if_same(void **state)
{
	const char *p = fl_test_path("same");
	struct stat st;
	int fd = open(p, O_CREAT | O_WRONLY, 0644);

	close(fd);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(fl__unlink_if_same(AT_FDCWD, p, st.st_dev, st.st_ino + 1), -ESTALE);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(fl__unlink_if_same(AT_FDCWD, p, st.st_dev, st.st_ino), 0);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_marker_canonical(void **state)
{
	int err;
	char *c;

	c = fl__canonical("/a/b/../c/./d.lock", &err);
	assert_string_equal(c, "/a/c/d.lock");
	free(c);
	c = fl__canonical("/../../x", &err);
	assert_string_equal(c, "/x");
	free(c);
	c = fl__canonical("//a//b.lock", &err);
	assert_string_equal(c, "/a/b.lock");
	free(c);
	assert_null(fl__canonical("/a/b/", &err));
	assert_int_equal(err, -EISDIR);
	assert_null(fl__canonical("/a/..", &err));
	assert_int_equal(err, -EISDIR);
	assert_null(fl__canonical("", &err));
	assert_int_equal(err, -ENOENT);
	{
		char longp[5000];
		memset(longp, 'a', sizeof(longp));
		longp[0] = '/';
		longp[sizeof(longp) - 1] = '\0';
		assert_null(fl__canonical(longp, &err));
		assert_int_equal(err, -ENAMETOOLONG);
	}
}

static void test_marker_parse_ll(void **state)
{
	long long v;

	assert_int_equal(fl__parse_ll(" 12 ", 4, &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(fl__parse_ll("-3", 2, &v), 0);
	assert_int_equal(v, -3);
	assert_int_equal(fl__parse_ll("", 0, &v), -EINVAL);
	assert_int_equal(fl__parse_ll("1a", 2, &v), -EINVAL);
	assert_int_equal(fl__parse_ll("99999999999999999999", 20, &v), -ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_marker_p1_valid, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_p1_malformed, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_p1_format, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_start_token, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_token_equal, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_owner_is_stale, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_read_safely, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_break_file, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_unlink_if_same, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_canonical, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_marker_parse_ll, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("marker", tests, fl_test_group_setup, fl_test_group_teardown);
}
