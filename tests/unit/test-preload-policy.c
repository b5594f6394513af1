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
			   "/nfs/proj/db/*.sqlite soft-rw lock_dir=/nfs/proj/.locks/ protocol=legacy create_dirs=no\n"
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
	assert_int_equal(r->soft_rw_protocol, FL_SOFT_RW_LEGACY);
	assert_int_equal(flp_policy_match(&p, "/nfs/proj/a/b.h5")->soft_rw_protocol, 0);
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
	expect_error("/a/* soft timeout=soon\n", "timeout: expected a duration");
	expect_error("/a/* soft timeout=-3\n", "timeout: expected a duration");
	expect_error("/a/* soft poll_interval=0\n", "poll_interval must be > 0");
	expect_error("/a/* soft stale_threshold=nan\n", "stale_threshold: expected a duration");
	expect_error("/a/* soft stale_threshold=1e999\n", "stale_threshold: expected a duration");
	expect_error("/a/* soft also_native=maybe\n", "also_native: expected yes or no");
	expect_error("/a/* soft shared=both\n", "shared: expected exclusive or reader");
	expect_error("/a/* soft lock_dir=locks\n", "lock_dir must be an absolute path");
	expect_error("/a/* soft-rw shared=reader\n", "shared=reader is for exclusive-only");
	expect_error("/a/* soft-rw heartbeat_interval=10 stale_threshold=10\n",
		     "preload.conf:1: stale_threshold (10) must be greater than heartbeat_interval");
	/* The kind's defaults count: soft-rw beats every 30 s, a lease every
	 * lease_duration / 3 and never as often as it expires. */
	expect_error("/a/* soft-rw stale_threshold=20\n",
		     "stale_threshold (20) must be greater than heartbeat_interval (30, the default)");
	expect_error("/a/* lease heartbeat_interval=30\n",
		     "heartbeat_interval (30) must be below lease_duration (30, the default)");
	/* Options the library refuses for the kind fail here, not at every lock. */
	expect_error("/a/* lease stale_threshold=60\n",
		     "preload.conf:1: stale_threshold is not used by kind lease");
	expect_error("/a/* strict heartbeat_interval=1\n",
		     "preload.conf:1: heartbeat_interval is not used by kind strict");
	expect_error("/a/* soft-rw lease_duration=9\n",
		     "preload.conf:1: lease_duration is not used by kind soft-rw");
	expect_error("/a/* soft timeout=5x\n", "timeout: expected a duration");
	expect_error("/a/* soft timeout=+5\n", "timeout: expected a duration");
	expect_error("/a/* soft timeout=s\n", "timeout: expected a duration");
	expect_error("/a/*.lock dotlock heartbeat_interval=1\n",
		     "preload.conf:1: heartbeat_interval on a dotlock rule needs stale_threshold");
	expect_error("/a/*.lock dotlock heartbeat_interval=2 stale_threshold=2\n",
		     "stale_threshold (2) must be greater than heartbeat_interval");
	{
		static const char nul[] = "/a/* soft\n/b/\0* soft\n";
		struct flp_policy p;
		char err[256];
		assert_int_equal(flp_policy_parse(&p, nul, sizeof(nul) - 1, "f", err, sizeof(err)),
				 -EINVAL);
		assert_string_equal(err, "f:2: NUL byte in the policy file");
	}
}

/* Durations: seconds, or with a unit (ms, s, m, h), as the CLI takes them. */
static void test_durations(void **state)
{
	static const struct {
		const char *in;
		double want;
	} ok[] = { { "30", 30 }, { "2.5s", 2.5 }, { "500ms", 0.5 }, { "1m", 60 }, { "2h", 7200 },
		   { "0", 0 },   { "1e-3", 0.001 } };
	static const char *const bad[] = { "", "s", "ms", "-1", "+1", " 1", "1 s", "1x", "1sec",
					   "nan", "inf", "1e999", "1mm" };
	double v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(flp_parse_duration(ok[i].in, &v), 0);
		assert_true(v == ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (flp_parse_duration(bad[i], &v) != -EINVAL)
			fail_msg("'%s' was accepted as %g", bad[i], v);
}

struct warnings {
	char text[4096];
	int n;
};

static void collect(void *arg, const char *msg)
{
	struct warnings *w = arg;
	size_t l = strlen(w->text);

	snprintf(w->text + l, sizeof(w->text) - l, "%s\n", msg);
	w->n++;
}

/* What a checker is told and the shim accepts silently. */
static void test_parse_warnings(void **state)
{
	static const char text[] = "/nfs/jobs/*.lock soft timeout=5 timeout=6\n"
				   "/nfs/cache/ soft\n"
				   "/nfs/a/../b soft\n"
				   "/nfs//c soft\n"
				   "/nfs/jobs/x.lock lease\n"
				   "/nfs/jobs/*.lock strict\n"
				   "/nfs/s/* soft heartbeat_interval=3 lease_duration=9\n"
				   "/tmp/** native timeout=3\n"
				   "/ok/** soft-rw heartbeat_interval=5 stale_threshold=20\n";
	struct flp_policy p;
	struct warnings w;
	char err[256];

	(void)state;
	memset(&w, 0, sizeof(w));
	assert_int_equal(flp_policy_parse_warn(&p, text, strlen(text), "site.conf", err,
					       sizeof(err), collect, &w),
			 0);
	assert_int_equal(p.n, 9);
	static const char *const want[] = {
		"site.conf:1: warning: timeout given twice; the last value, '6', wins\n",
		"site.conf:2: warning: pattern '/nfs/cache/' can never match: paths are matched "
		"without a trailing '/'",
		"site.conf:3: warning: pattern '/nfs/a/../b' can never match",
		"site.conf:4: warning: pattern '/nfs//c' can never match",
		"site.conf:5: warning: rule never applies: the rule of line 1",
		"site.conf:6: warning: rule never applies: the rule of line 1",
		"site.conf:7: warning: heartbeat_interval has no effect on kind soft\n",
		"site.conf:7: warning: lease_duration has no effect on kind soft\n",
		"site.conf:8: warning: timeout has no effect on kind native\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(w.text, want[i]) == NULL)
			fail_msg("'%s' not among the warnings:\n%s", want[i], w.text);
	assert_true(p.rules[0].timeout == 6);
	assert_null(strstr(w.text, "site.conf:9:"));
	assert_int_equal(w.n, 9);
	flp_policy_free(&p);

	/* The shim's parse accepts the same file without a word. */
	assert_int_equal(parse(&p, text, err, sizeof(err)), 0);
	assert_int_equal(p.n, 9);
	flp_policy_free(&p);
}

/* Each rule as --check prints it, the kind's defaults filled in. */
static void test_describe(void **state)
{
	static const char text[] = "/a/*.lock soft timeout=30s poll_interval=100ms\n"
				   "/db/* lease\n"
				   "/rw/** soft-rw heartbeat_interval=5 lock_dir=/var/locks\n"
				   "/tmp/** native\n";
	struct flp_policy p;
	char err[256], d[1024];

	(void)state;
	assert_int_equal(parse(&p, text, err, sizeof(err)), 0);
	flp_rule_describe(&p.rules[0], d, sizeof(d));
	assert_string_equal(d, "/a/*.lock soft: marker PATH.lock, timeout 30s, poll_interval 0.1s");
	flp_rule_describe(&p.rules[1], d, sizeof(d));
	assert_string_equal(d, "/db/* lease: marker PATH.lock, lease_duration 30s (default), "
			       "heartbeat_interval 10s (default), timeout forever");
	flp_rule_describe(&p.rules[2], d, sizeof(d));
	assert_string_equal(d, "/rw/** soft-rw: marker /var/locks/PATH.lock, stale_threshold 15s "
			       "(default), heartbeat_interval 5s, timeout forever");
	flp_rule_describe(&p.rules[3], d, sizeof(d));
	assert_string_equal(d, "/tmp/** native: lock calls pass through to the kernel");
	flp_policy_free(&p);
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
	expect_error("/a/* lease protocol=legacy\n", "protocol is an option of kind soft-rw, not lease");
	expect_error("/a/* soft-rw protocol=v2\n", "protocol: expected rw1 or legacy, got 'v2'");
	expect_error("/a/* native ttl=5\n", "preload.conf:1: ttl is an option of kind etcd");
	/* Other kinds' options that mean nothing for etcd. */
	expect_error("/a/* etcd lock_dir=/l\n", "preload.conf:1: lock_dir has no meaning for kind etcd");
	expect_error("/a/* etcd stale_threshold=9\n", "stale_threshold has no meaning for kind etcd");
	expect_error("/a/* etcd lease_duration=9\n", "lease_duration has no meaning for kind etcd");
	expect_error("/a/* etcd shared=reader\n", "shared has no meaning for kind etcd");
	/* Bad values. */
	expect_error("/a/* etcd ttl=0.5\n", "preload.conf:1: ttl: expected a duration >= 1s");
	expect_error("/a/* etcd ttl=soon\n", "ttl: expected a duration >= 1s");
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
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_parse_warnings),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_marker_paths),
	};
	return cmocka_run_group_tests_name("preload-policy", tests, NULL, NULL);
}
