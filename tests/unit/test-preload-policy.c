/* SPDX-License-Identifier: MIT */
/*
 * test-preload-policy.c -- the shim's policy parser and path matcher:
 * globs with `**`, first match wins, lexical normalisation, marker paths and
 * their inverse, and one precise "FILE:LINE: problem" per malformed input.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "flp.h"

static int parse(struct flp_policy *p, const char *text, char *err, size_t errlen)
{
	return flp_policy_parse(p, text, strlen(text), "preload.conf", err, errlen);
}

/* Found by fuzz-glob: a backtracking matcher took exponential time on many
 * `**` against a deep path (every open() of the shim would hang).  Bounded
 * by the alarm: the linear matcher answers at once. */
static void test_glob_many_double_stars(void **state)
{
	char pat[400] = "", path[2100] = "";

	(void)state;
	alarm(10);
	for (int i = 0; i < 40; i++)
		strcat(pat, "/**");
	strcat(pat, "/x");
	for (int i = 0; i < 1000; i++)
		strcat(path, "/a");
	assert_false(flp_glob_match(pat, path));
	strcat(path, "/x");
	assert_true(flp_glob_match(pat, path));
	assert_false(flp_glob_match("/*a*a*a*a*a*a*a*a*a*a*a*a*b", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	alarm(0);
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(flp_glob_match("/nfs/*.lock", "/nfs/a.lock"));
	assert_false(flp_glob_match("/nfs/*.lock", "/nfs/d/a.lock"));
	assert_true(flp_glob_match("/nfs/**/*.h5", "/nfs/a/b/c.h5"));
	assert_true(flp_glob_match("/nfs/**/*.h5", "/nfs/c.h5"));
	assert_false(flp_glob_match("/nfs/**/*.h5", "/nfsx/c.h5"));
	assert_true(flp_glob_match("/nfs/**", "/nfs/a/b"));
	assert_true(flp_glob_match("/home/*/.cache/**", "/home/u/.cache/x/y"));
	assert_false(flp_glob_match("/home/*/.cache/**", "/home/u/v/.cache/x"));
	assert_true(flp_glob_match("/a/?.lock", "/a/x.lock"));
	assert_false(flp_glob_match("/a/?.lock", "/a/xy.lock"));
	assert_false(flp_glob_match("/a?b", "/a/b"));
	assert_true(flp_glob_match("/a/[abc].x", "/a/b.x"));
	assert_false(flp_glob_match("/a/[!abc].x", "/a/b.x"));
	assert_true(flp_glob_match("/a/[a-c]*", "/a/cat"));
	assert_true(flp_glob_match("/a/\\*", "/a/*"));
	assert_false(flp_glob_match("/a/\\*", "/a/b"));
	assert_true(flp_glob_match("/a/[", "/a/[")); /* unterminated class: literal */
	assert_true(flp_glob_match("/a/**/b/**/c", "/a/x/b/y/z/c"));
	assert_false(flp_glob_match("/a/*", "/a"));
	assert_true(flp_glob_match("/x\\ y/*", "/x y/z"));
}

static void test_normalize(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(flp_normalize("/a//b/./c/", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b/c");
	assert_int_equal(flp_normalize("/a/b/../../../c", out, sizeof(out)), 0);
	assert_string_equal(out, "/c");
	assert_int_equal(flp_normalize("/", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(flp_normalize("/..", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(flp_normalize("/a/..b/.c", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/..b/.c");
	assert_int_equal(flp_normalize("rel/x", out, sizeof(out)), -EINVAL);
	assert_int_equal(flp_normalize("/aaaaaaaaaa/bbbbbbbbbb", out, 8), -ENAMETOOLONG);
}

static void test_parse_good(void **state)
{
	struct flp_policy p;
	char err[256];
	const char *text = "# the design's example\n"
			   "\n"
			   "/nfs/proj/**/*.h5   soft-rw  stale_threshold=90 heartbeat_interval=30\n"
			   "/nfs/proj/jobs/*.lock\tsoft also_native=yes   # trailing comment\n"
			   "/nfs/proj/db/*.sqlite soft-rw lock_dir=/nfs/proj/.locks/ create_dirs=no\n"
			   "   /home/*/.cache/**  native\n"
			   "/x/* strict timeout=2.5 poll_interval=0.1s shared=reader\n"
			   "/y/* lease lease_duration=30 timeout=forever\n"
			   "/z/* deny\n"
			   "/w/*.lck dotlock stale_threshold=60\n"
			   "/x/never soft\n";
	const struct flp_rule *r;

	(void)state;
	assert_int_equal(parse(&p, text, err, sizeof(err)), 0);
	assert_int_equal(p.n, 9);
	r = flp_policy_match(&p, "/nfs/proj/a/b.h5");
	assert_non_null(r);
	assert_int_equal(r->kind, FLP_SOFT_RW);
	assert_int_equal(r->line, 3);
	assert_true(r->stale_threshold == 90 && r->heartbeat_interval == 30);
	assert_true(r->timeout < 0);
	r = flp_policy_match(&p, "/nfs/proj/jobs/j.lock");
	assert_int_equal(r->kind, FLP_SOFT);
	assert_true(r->also_native);
	r = flp_policy_match(&p, "/nfs/proj/db/x.sqlite");
	assert_string_equal(r->lock_dir, "/nfs/proj/.locks");
	assert_true(r->no_create_dirs);
	assert_false(flp_policy_match(&p, "/nfs/proj/jobs/j.lock")->no_create_dirs);
	assert_int_equal(flp_policy_match(&p, "/home/u/.cache/f")->kind, FLP_NATIVE);
	r = flp_policy_match(&p, "/x/never"); /* first match wins: the strict rule */
	assert_int_equal(r->kind, FLP_STRICT);
	assert_true(r->timeout == 2.5 && r->poll_interval == 0.1 && r->shared_reader);
	r = flp_policy_match(&p, "/y/q");
	assert_true(r->lease_duration == 30 && r->timeout < 0);
	assert_int_equal(flp_policy_match(&p, "/z/q")->kind, FLP_DENY);
	assert_int_equal(flp_policy_match(&p, "/w/a.lck")->kind, FLP_DOTLOCK);
	assert_null(flp_policy_match(&p, "/elsewhere"));
	flp_policy_free(&p);

	assert_int_equal(parse(&p, "", err, sizeof(err)), 0);
	assert_int_equal(p.n, 0);
	flp_policy_free(&p);
	assert_int_equal(parse(&p, "# only\n  # comments\n\n", err, sizeof(err)), 0);
	assert_int_equal(p.n, 0);
	flp_policy_free(&p);
	/* No final newline, CRLF line ends. */
	assert_int_equal(parse(&p, "/a/* soft\r\n/b/* native", err, sizeof(err)), 0);
	assert_int_equal(p.n, 2);
	flp_policy_free(&p);
}

static void expect_error(const char *text, const char *needle)
{
	struct flp_policy p;
	char err[256];

	assert_int_equal(parse(&p, text, err, sizeof(err)), -EINVAL);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	assert_int_equal(p.n, 0);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	expect_error("/a/* soft\nrelative/* soft\n", "preload.conf:2: pattern must be an absolute");
	expect_error("/a/*\n", "preload.conf:1: missing kind");
	expect_error("/a/* sfot\n", "preload.conf:1: unknown kind 'sfot'");
	expect_error("/a/* soft timeout\n", "expected OPTION=VALUE, got 'timeout'");
	expect_error("/a/* soft =1\n", "expected OPTION=VALUE");
	expect_error("/a/* soft color=red\n", "unknown option 'color'");
	expect_error("/a/* soft timeout=soon\n", "timeout: expected seconds");
	expect_error("/a/* soft timeout=-3\n", "timeout: expected seconds");
	expect_error("/a/* soft poll_interval=0\n", "poll_interval must be > 0");
	expect_error("/a/* soft stale_threshold=nan\n", "stale_threshold: expected seconds");
	expect_error("/a/* soft stale_threshold=1e999\n", "stale_threshold: expected seconds");
	expect_error("/a/* soft also_native=maybe\n", "also_native: expected yes or no");
	expect_error("/a/* soft shared=both\n", "shared: expected exclusive or reader");
	expect_error("/a/* soft lock_dir=locks\n", "lock_dir must be an absolute path");
	expect_error("/a/* soft-rw shared=reader\n", "shared=reader is for exclusive-only");
	expect_error("/a/* lease heartbeat_interval=10 stale_threshold=10\n",
		     "preload.conf:1: stale_threshold (10) must be greater than heartbeat_interval");
	{
		static const char nul[] = "/a/* soft\n/b/\0* soft\n";
		struct flp_policy p;
		char err[256];
		assert_int_equal(flp_policy_parse(&p, nul, sizeof(nul) - 1, "f", err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "f:2: NUL byte in the policy file");
	}
}

/* Kind etcd: its own options, the library kind, and FILE:LINE errors for
 * options that belong to the other side. */
static void test_parse_etcd(void **state)
{
	struct flp_policy p;
	char err[256];
	const struct flp_rule *r;

	(void)state;
	assert_int_equal(parse(&p,
			       "/e/*.db etcd endpoints=http://10.0.0.1:2379,10.0.0.2:2379 "
			       "prefix=/locks/prod ttl=15 heartbeat_interval=5 timeout=30 "
			       "poll_interval=0.5 also_native=yes\n"
			       "/e/** etcd\n",
			       err, sizeof(err)),
			 0);
	assert_int_equal(p.n, 2);
	r = flp_policy_match(&p, "/e/x.db");
	assert_non_null(r);
	assert_int_equal(r->kind, FLP_ETCD);
	assert_true(flp_rule_is_etcd(r));
	assert_int_equal(flp_lib_kind(r->kind), FL_ETCD);
	assert_string_equal(flp_kind_name(r->kind), "etcd");
	assert_string_equal(r->etcd_endpoints, "http://10.0.0.1:2379,10.0.0.2:2379");
	assert_string_equal(r->etcd_prefix, "/locks/prod");
	assert_true(r->stale_threshold == 15 && r->heartbeat_interval == 5);
	assert_true(r->timeout == 30 && r->poll_interval == 0.5 && r->also_native);
	r = flp_policy_match(&p, "/e/sub/y");
	assert_non_null(r);
	assert_null(r->etcd_endpoints); /* the environment, then the library's default */
	assert_null(r->etcd_prefix);
	assert_true(r->stale_threshold == 0);
	flp_policy_free(&p);

	/* etcd's options on other kinds. */
	expect_error("/a/* soft\n/b/* lease endpoints=http://h:2379\n",
		     "preload.conf:2: endpoints is an option of kind etcd, not lease");
	expect_error("/a/* soft-rw prefix=/x\n", "preload.conf:1: prefix is an option of kind etcd");
	expect_error("/a/* native ttl=5\n", "preload.conf:1: ttl is an option of kind etcd");
	/* Other kinds' options that mean nothing for etcd. */
	expect_error("/a/* etcd lock_dir=/l\n", "preload.conf:1: lock_dir has no meaning for kind etcd");
	expect_error("/a/* etcd stale_threshold=9\n", "stale_threshold has no meaning for kind etcd");
	expect_error("/a/* etcd lease_duration=9\n", "lease_duration has no meaning for kind etcd");
	expect_error("/a/* etcd shared=reader\n", "shared has no meaning for kind etcd");
	/* Bad values. */
	expect_error("/a/* etcd ttl=0.5\n", "preload.conf:1: ttl: expected seconds >= 1");
	expect_error("/a/* etcd ttl=soon\n", "ttl: expected seconds >= 1");
	expect_error("/a/* etcd endpoints=\n", "endpoints: empty value");
	expect_error("/a/* etcd endpoints=,,\n", "endpoints: empty value");
	expect_error("/a/* etcd prefix=locks\n", "prefix: expected a key prefix starting with '/'");
	expect_error("/a/* etcd ttl=6 heartbeat_interval=4\n",
		     "preload.conf:1: heartbeat_interval (4) must be at most half of ttl (6)");
	expect_error("/a/* etcd heartbeat_interval=6\n",
		     "heartbeat_interval (6) must be at most half of ttl (10)");
	expect_error("/a/* etdc\n", "unknown kind 'etdc' (known: soft, strict, lease, soft-rw, "
				    "native, deny, dotlock, etcd)");
}

static void test_marker_paths(void **state)
{
	struct flp_policy p;
	char err[256], out[256];

	(void)state;
	assert_int_equal(parse(&p,
			       "/d/*.db soft lock_dir=/locks\n"
			       "/d/** soft\n"
			       "/n/** native\n",
			       err, sizeof(err)),
			 0);
	assert_int_equal(flp_marker_path(&p.rules[0], "/d/x.db", out, sizeof(out)), 0);
	assert_string_equal(out, "/locks/d/x.db.lock");
	assert_int_equal(flp_marker_path(&p.rules[1], "/d/j", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/j.lock");
	assert_int_equal(flp_marker_path(&p.rules[1], "/d/j", out, 5), -ENAMETOOLONG);

	assert_int_equal(flp_data_path(&p, "/locks/d/x.db.lock", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/x.db");
	assert_int_equal(flp_data_path(&p, "/d/j.lock", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/j");
	/* Not a marker this policy makes. */
	assert_int_equal(flp_data_path(&p, "/n/j.lock", out, sizeof(out)), -ENOENT);
	assert_int_equal(flp_data_path(&p, "/d/j", out, sizeof(out)), -ENOENT);
	assert_int_equal(flp_data_path(&p, "/other/x.lock", out, sizeof(out)), -ENOENT);
	flp_policy_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_glob_many_double_stars),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_etcd),
		cmocka_unit_test(test_marker_paths),
	};
	return cmocka_run_group_tests_name("preload-policy", tests, NULL, NULL);
}
