/* SPDX-License-Identifier: MIT */
/*
 * test-strict.c -- the strict kind: exact sentinel and claim bytes, the
 * N x M counter, a crashed holder wedging the path until an operator breaks
 * its named claim, fail-closed on malformed, unknown or symlinked state,
 * filesystems without hard links, private-record sweeping, fork, options.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"

/* Lists the entries of dir (without . and ..), sorted, into names. */
static int list_dir(const char *dir, char names[][128], int cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n < cap)
			snprintf(names[n], 128, "%.127s", de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, (size_t)(n < cap ? n : cap), 128, (int (*)(const void *, const void *))strcmp);
	return n;
}

static void claims_dir(const char *p, char *out, size_t cap)
{
	snprintf(out, cap, "%s.filelock/claims", p);
}

/* The claim record this process would write for token t. */
static void my_record(const char *t, char *out, size_t cap)
{
	char host[256], hex[520], tok[96];

	gethostname(host, sizeof(host));
	for (size_t i = 0; host[i]; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned char)host[i]);
	hex[2 * strlen(host)] = '\0';
	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	snprintf(out, cap, "filelock-strict-v1\n%s\n%d\n%s\n%s\n", t, (int)getpid(), hex, tok);
}

static void test_strict_exact_bytes(void **state)
{
	const char *p = fl_test_path("bytes");
	char cd[4200], names[8][128], buf[2048], want[2048], f[8800], tok[33];
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);
	struct stat st;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	/* The sentinel: exactly 24 bytes, with a NUL inside. */
	assert_int_equal(fl_test_read_file(p, buf, sizeof(buf)), 24);
	assert_memory_equal(buf, "1\nfilelock-strict-v1\0\n0\n", 24);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* Both claims of one owner, nothing else (no private leftovers). */
	claims_dir(p, cd, sizeof(cd));
	assert_int_equal(list_dir(cd, names, 8), 2);
	assert_int_equal(strncmp(names[0], "held-v1-", 8), 0);
	assert_int_equal(strncmp(names[1], "intent-v1-", 10), 0);
	memcpy(tok, names[0] + 8, 32);
	tok[32] = '\0';
	assert_string_equal(names[1] + 10, names[0] + 8);
	assert_string_equal(names[0] + 40, ".claim");
	my_record(tok, want, sizeof(want));
	for (int i = 0; i < 2; i++) {
		snprintf(f, sizeof(f), "%s/%s", cd, names[i]);
		fl_test_read_file(f, buf, sizeof(buf));
		assert_string_equal(buf, want);
	}
	/* Release: both claims go, the sentinel and directories stay. */
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(list_dir(cd, names, 8), 0);
	assert_int_equal(fl_test_read_file(p, buf, sizeof(buf)), 24);
	/* Reacquiring reuses the sentinel. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	assert_int_equal(list_dir(cd, names, 8), 0);
	assert_int_equal(access(p, F_OK), 0);
}

static void test_strict_counter(void **state)
{
	const char *lock = fl_test_path("lock"), *ctr = fl_test_path("ctr");
	char buf[64];
	pid_t pids[4];
	FILE *f;

	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			execl(fl_test_helper("fl-counter"), "fl-counter", "-t", "strict", "-n", "100",
			      "-o", "poll_interval=0.001", lock, ctr, (char *)NULL);
			_exit(127);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	f = fopen(ctr, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(atol(buf), 400);
}

static void test_strict_excludes_handles_and_threads(void **state)
{
	const char *p = fl_test_path("excl");
	fl_lock *a = fl_test_open(p, FL_STRICT, NULL), *b = fl_test_open(p, FL_STRICT, NULL);

	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_non_null(strstr(fl_errmsg(b), "held by pid"));
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0); /* reentrant */
	assert_int_equal(fl_lock_counter(a), 2);
	assert_int_equal(fl_release(a, 0), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_release(a, 0), 0);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), 0);
	assert_true(fl_is_valid(b));
	fl_close(a);
	fl_close(b);
}

static void test_strict_crashed_holder_needs_manual_break(void **state)
{
	const char *p = fl_test_path("crash");
	char line[256], cd[4200], names[8][128];
	struct fl_holder who;
	struct fl_child h;
	fl_lock *lk;
	pid_t hp;

	fl_holder_start(&h, line, sizeof(line), "-t", "strict", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	hp = h.pid;
	lk = fl_test_open(p, FL_STRICT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	/* A live holder's claim is not broken without force. */
	claims_dir(p, cd, sizeof(cd));
	assert_int_equal(list_dir(cd, names, 8), 2);
	assert_int_equal(fl_break(p, FL_STRICT, NULL, 0, names[0]), -EBUSY);
	fl_child_kill(&h);

	/* The crash leaves both claims: nobody gets in, however long they try. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.2), -ETIMEDOUT);
	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(p, FL_STRICT, NULL, &who), 0);
	assert_int_equal(who.pid, hp);
	assert_int_equal(who.state, FL_HOLDER_STALE); /* reported, never acted on */
	assert_int_equal(who.alive, 0);
	assert_non_null(strstr(who.detail, names[0]));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);

	/* Without a name fl_break refuses and says how to proceed. */
	assert_int_equal(fl_break(p, FL_STRICT, NULL, 0, NULL), -EBUSY);
	assert_non_null(strstr(fl_errmsg(NULL), "FL_FORCE"));
	assert_int_equal(fl_break(p, FL_STRICT, NULL, FL_FORCE, NULL), -EINVAL);
	assert_int_equal(fl_break(p, FL_STRICT, NULL, FL_FORCE, "../x"), -EINVAL);
	assert_int_equal(fl_break(p, FL_STRICT, NULL, FL_FORCE, "held-v1-nope.claim"), -ENOENT);
	/* The named claim (and its sibling of the same owner) goes. */
	assert_int_equal(fl_break(p, FL_STRICT, NULL, FL_FORCE, names[0]), 0);
	assert_int_equal(list_dir(cd, names, 8), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	assert_int_equal(fl_break(p, FL_STRICT, NULL, 0, NULL), -ENOENT);
}

static void test_strict_break_dead_owner_without_force(void **state)
{
	const char *p = fl_test_path("deadbrk");
	char line[256], cd[4200], names[8][128];
	struct fl_child h;
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);

	fl_holder_start(&h, line, sizeof(line), "-t", "strict", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_child_kill(&h);
	claims_dir(p, cd, sizeof(cd));
	assert_int_equal(list_dir(cd, names, 8), 2);
	/* Provably dead on this host: a named break needs no force. */
	assert_int_equal(fl_break(p, FL_STRICT, NULL, 0, names[1]), 0);
	assert_int_equal(list_dir(cd, names, 8), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

/* Expects acquire to fail closed with -EPROTO and `why` in the message. */
static void expect_proto(const char *p, const char *why)
{
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EPROTO);
	if (strstr(fl_errmsg(lk), why) == NULL)
		fail_msg("message '%s' lacks '%s'", fl_errmsg(lk), why);
	assert_non_null(strstr(fl_errmsg(lk), "Invalid strict soft-lock state at"));
	fl_close(lk);
}

static void test_strict_malformed_claims_fail_closed(void **state)
{
	static const char tok[] = "0123456789abcdef0123456789abcdef";
	char good[512], host[256], hex[520];
	const struct {
		const char *name;
		const char *rec; /* NULL: the good record */
		const char *why;
	} cases[] = {
		{ "held-v1-0123456789abcdef0123456789abcdef.claim", "garbage\n", "malformed claim record" },
		{ "held-v1-0123456789abcdef0123456789abcdef.claim", "", "malformed claim record" },
		{ "foo.claim", NULL, "unknown claim name or protocol version" },
		{ "held-v2-0123456789abcdef0123456789abcdef.claim", NULL, "unknown claim name" },
		{ "held-v1-0123456789ABCDEF0123456789abcdef.claim", NULL, "unknown claim name" },
		{ "README", NULL, "unknown claim name" },
	};
	int n;

	gethostname(host, sizeof(host));
	for (size_t i = 0; host[i]; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned char)host[i]);
	hex[2 * strlen(host)] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *p = fl_test_path("malformed");
		char cd[4200], f[4400];
		fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);

		/* Create the layout, then plant the bad claim. */
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		fl_close(lk);
		claims_dir(p, cd, sizeof(cd));
		snprintf(f, sizeof(f), "%s/%s", cd, cases[i].name);
		n = snprintf(good, sizeof(good), "filelock-strict-v1\n%s\n1\n%s\n\n", tok, hex);
		fl_test_write_file(f, cases[i].rec ? cases[i].rec : good,
			   cases[i].rec ? strlen(cases[i].rec) : (size_t)n);
		expect_proto(p, cases[i].why);
		/* The bad state is left for a human: nothing was removed. */
		assert_int_equal(access(f, F_OK), 0);
	}
}

static void test_strict_noncanonical_records(void **state)
{
	static const char tok[] = "00112233445566778899aabbccddeeff";
	char host[256], hex[520], uhex[520], rec[1200];
	const char *fmt[] = {
		"filelock-strict-v1\n%s\n0%d\n%s\n\n",        /* leading zero pid */
		"filelock-strict-v1\n%s\n+%d\n%s\n\n",        /* signed pid */
		"filelock-strict-v1\n%s\n%d\n%s\n\nextra",    /* trailing data */
		"filelock-strict-v1\n%s\n%d\n%s\n",           /* four fields */
		"filelock-strict-v1\n%s\n%d\n%s\n007\n",      /* leading zero start */
		"filelock-strict-v2\n%s\n%d\n%s\n\n",         /* magic */
		"filelock-strict-v1\n%s\n%d\n%s \n\n",        /* space in host hex */
	};
	size_t hl;

	gethostname(host, sizeof(host));
	hl = strlen(host);
	for (size_t i = 0; i < hl; i++) {
		sprintf(hex + 2 * i, "%02x", (unsigned char)host[i]);
		sprintf(uhex + 2 * i, "%02X", (unsigned char)host[i]);
	}
	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]) + 3; i++) {
		const char *p = fl_test_path("noncanon");
		char cd[4200], f[4400];
		fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);
		int n;

		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		fl_close(lk);
		claims_dir(p, cd, sizeof(cd));
		snprintf(f, sizeof(f), "%s/intent-v1-%s.claim", cd, tok);
		if (i < sizeof(fmt) / sizeof(fmt[0])) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			n = snprintf(rec, sizeof(rec), fmt[i], tok, 4242, hex);
#pragma GCC diagnostic pop
		}
		else if (i == sizeof(fmt) / sizeof(fmt[0]))
			n = snprintf(rec, sizeof(rec), "filelock-strict-v1\n%s\n4242\n%s\n\n", tok,
				     uhex); /* uppercase host hex */
		else if (i == sizeof(fmt) / sizeof(fmt[0]) + 1)
			n = snprintf(rec, sizeof(rec),
				     "filelock-strict-v1\nffffffffffffffffffffffffffffffff\n4242\n%s\n\n",
				     hex); /* token differs from the name's */
		else
			n = snprintf(rec, sizeof(rec), "filelock-strict-v1\n%s\n4242\n2009\n\n",
				     tok); /* host " \t": whitespace */
		fl_test_write_file(f, rec, (size_t)n);
		/* Uppercase hex only differs when the host has letters a-f. */
		if (i == sizeof(fmt) / sizeof(fmt[0]) && strcmp(hex, uhex) == 0)
			continue;
		expect_proto(p, "malformed claim record");
	}
}

static void test_strict_symlinks_fail_closed(void **state)
{
	const char *p1 = fl_test_path("symcoord"), *p2 = fl_test_path("symclaims"),
		   *p3 = fl_test_path("symclaim"), *p4 = fl_test_path("fileclaims");
	char a[4200], b[4400], target[4200];
	fl_lock *lk;

	/* P.filelock is a symlink to a real directory. */
	snprintf(target, sizeof(target), "%s/realdir-%d", fl_test_dir, 1);
	assert_int_equal(mkdir(target, 0777), 0);
	snprintf(a, sizeof(a), "%s.filelock", p1);
	assert_int_equal(symlink(target, a), 0);
	expect_proto(p1, "is not a real directory");

	/* P.filelock/claims is a symlink. */
	snprintf(a, sizeof(a), "%s.filelock", p2);
	assert_int_equal(mkdir(a, 0777), 0);
	snprintf(b, sizeof(b), "%s/claims", a);
	assert_int_equal(symlink(target, b), 0);
	expect_proto(p2, "is not a real directory");

	/* A claim that is a symlink to a good record. */
	lk = fl_test_open(p3, FL_STRICT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	snprintf(a, sizeof(a), "%s.filelock/claims/held-v1-0123456789abcdef0123456789abcdef.claim",
		 p3);
	assert_int_equal(symlink("/etc/hostname", a), 0);
	expect_proto(p3, "not a regular file");
	/* fl_inspect reports it instead of failing. */
	{
		struct fl_holder who;
		memset(&who, 0, sizeof(who));
		who.size = sizeof(who);
		assert_int_equal(fl_inspect(p3, FL_STRICT, NULL, &who), 0);
		assert_int_equal(who.state, FL_HOLDER_MALFORMED);
		assert_non_null(strstr(who.detail, "not a regular file"));
	}

	/* claims is a regular file. */
	snprintf(a, sizeof(a), "%s.filelock", p4);
	assert_int_equal(mkdir(a, 0777), 0);
	snprintf(b, sizeof(b), "%s/claims", a);
	fl_test_write_file(b, "x", 1);
	expect_proto(p4, "is not a real directory");
}

static void test_strict_foreign_sentinel_is_contention(void **state)
{
	const char *p = fl_test_path("foreign");
	char cd[4200], names[4][128];
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);

	/* A soft marker whose owner may be alive (another host's) at the path:
	 * a holder, waited for, never touched. */
	fl_test_write_file(p, "1\nother\n", 8);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.6), -ETIMEDOUT);
	claims_dir(p, cd, sizeof(cd));
	assert_int_equal(list_dir(cd, names, 4), 0);
	/* Python 4: one whose owner this host proves has exited is refused at
	 * once, and unparsable content once unchanged for 2 s; left in place. */
	{
		char rec[512], host[256];
		pid_t dead = fork();
		double t0;
		int n;

		if (dead == 0)
			_exit(0);
		assert_true(dead > 0);
		waitpid(dead, NULL, 0);
		assert_int_equal(fl__hostname(host, sizeof(host)), 0);
		n = snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead, host);
		unlink(p);
		fl_test_write_file(p, rec, (size_t)n);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), -EPROTO);
		assert_non_null(strstr(fl_errmsg(lk), "has exited"));
		unlink(p);
		fl_test_write_file(p, "garbage", 7);
		t0 = fl_test_now();
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), -EPROTO);
		assert_true(fl_test_now() - t0 >= 2.0);
		assert_non_null(strstr(fl_errmsg(lk), "unparsable content"));
		assert_int_equal(fl_test_read_file(p, rec, sizeof(rec)), 7);
	}
	unlink(p);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

/* A symlink, FIFO or directory at the sentinel path is contention, never
 * followed, never opened for reading. */
static void test_strict_hostile_sentinel(void **state)
{
	const char *target = fl_test_path("target");
	const char *sym = fl_test_path("sym"), *fifo = fl_test_path("fifo"), *dir = fl_test_path("dir");
	char buf[64];
	fl_lock *lk;

	fl_test_write_file(target, "1\nfilelock-strict-v1\0\n0\n", 24);
	assert_int_equal(symlink(target, sym), 0);
	lk = fl_test_open(sym, FL_STRICT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_close(lk);
	assert_int_equal(fl_test_read_file(target, buf, sizeof(buf)), 24);

	assert_int_equal(mkfifo(fifo, 0644), 0);
	lk = fl_test_open(fifo, FL_STRICT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_close(lk);

	assert_int_equal(mkdir(dir, 0755), 0);
	lk = fl_test_open(dir, FL_STRICT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	/* A waiting acquire refuses it after 0.5 s (Python 4), untouched. */
	{
		struct stat st;
		double t0 = fl_test_now();
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), -EPROTO);
		assert_true(fl_test_now() - t0 >= 0.5);
		assert_non_null(strstr(fl_errmsg(lk), "not a regular file"));
		assert_int_equal(stat(dir, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
	fl_close(lk);
}

/* Starts fl-holder without waiting for its first line (it will block). */
static void start_waiter(struct fl_child *w, const char *path, const char *const *args)
{
	char *argv[16];
	int n = 0;

	argv[n++] = strdup(fl_test_helper("fl-holder"));
	while (*args != NULL && n < 14)
		argv[n++] = strdup(*args++);
	argv[n++] = strdup(path);
	argv[n] = NULL;
	fl_child_start(w, argv);
	for (int i = 0; i < n; i++)
		free(argv[i]);
}

/*
 * A waiter on this host wakes when the holder releases, not a poll interval
 * later.  We learn that the waiter has scanned the claims (and so is
 * waiting) from inotify on the claims directory.
 */
static void test_strict_release_wakes_waiter(void **state)
{
	const char *p = fl_test_path("wake");
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);
	char line[256], cd[4200];
	struct fl_child w;
	double t0;
	int ifd;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	claims_dir(p, cd, sizeof(cd));
	ifd = inotify_init1(IN_CLOEXEC);
	assert_true(ifd >= 0);
	assert_true(inotify_add_watch(ifd, cd, IN_CLOSE_NOWRITE) >= 0);
	start_waiter(&w, p, (const char *[]){ "-t", "strict", "-o", "poll_interval=20", NULL });
	assert_true(read(ifd, line, sizeof(line)) > 0); /* it scanned the claims */
	close(ifd);
	t0 = fl_test_now();
	assert_int_equal(fl_release(lk, 0), 0);
	fl_child_line(&w, line, sizeof(line));
	assert_true(strncmp(line, "ready", 5) == 0);
	assert_true(fl_test_now() - t0 < 5.0); /* not the 20 s poll interval */
	fl_child_say(&w, "release");
	fl_child_line(&w, line, sizeof(line));
	assert_int_equal(fl_child_finish(&w), 0);
	fl_close(lk);
}

static int linkat_eperm(int a, const char *b, int c, const char *d, int e)
{
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	(void)e;
	errno = EPERM;
	return -1;
}

static void test_strict_no_hard_links(void **state)
{
	const char *p = fl_test_path("nolink");
	char names[8][128];
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);

	fl__sys.linkat = linkat_eperm;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ENOSYS);
	assert_non_null(strstr(fl_errmsg(lk), "hard-link publication"));
	fl__sys_reset();
	/* No private records were left behind in the lock's directory. */
	{
		int n = list_dir(fl_test_dir, names, 8);
		for (int i = 0; i < n && i < 8; i++)
			assert_null(strstr(names[i], "private-v1"));
	}
	fl_close(lk);
}

static void test_strict_private_records_swept(void **state)
{
	const char *p = fl_test_path("sweep");
	char cd[4200], f[4400], names[8][128];
	struct timespec ts[2];
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	claims_dir(p, cd, sizeof(cd));
	/* A crashed publisher's private record, 10 s old: swept by the next scan. */
	snprintf(f, sizeof(f),
		 "%s/.intent-v1-0123456789abcdef0123456789abcdef.claim.private-v1-"
		 "00000000000000000000000000000000.tmp",
		 cd);
	fl_test_write_file(f, "x", 1);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 10;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, f, ts, 0), 0);
	/* A fresh one stays (its publisher may still be writing it). */
	snprintf(f, sizeof(f),
		 "%s/.intent-v1-0123456789abcdef0123456789abcdef.claim.private-v1-"
		 "11111111111111111111111111111111.tmp",
		 cd);
	fl_test_write_file(f, "x", 1);
	/* Unrelated dot files are none of our business. */
	snprintf(f, sizeof(f), "%s/.nfs0000", cd);
	fl_test_write_file(f, "x", 1);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	assert_int_equal(list_dir(cd, names, 8), 2);
	assert_string_equal(names[0], ".intent-v1-0123456789abcdef0123456789abcdef.claim.private-v1-"
				      "11111111111111111111111111111111.tmp");
	assert_string_equal(names[1], ".nfs0000");
	/* A private record that is not a regular file fails closed. */
	snprintf(f, sizeof(f),
		 "%s/.held-v1-0123456789abcdef0123456789abcdef.claim.private-v1-"
		 "22222222222222222222222222222222.tmp",
		 cd);
	assert_int_equal(mkdir(f, 0700), 0);
	expect_proto(p, "is not a regular private record");
}

static void test_strict_fork_child_keeps_parent_claims(void **state)
{
	const char *p = fl_test_path("fork");
	char cd[4200], names[8][128];
	fl_lock *lk = fl_test_open(p, FL_STRICT, NULL);
	pid_t pid;
	int st;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	pid = fork();
	if (pid == 0) {
		int ok = fl_acquire(lk, FL_EXCLUSIVE, 0) == -ECHILD && fl_release(lk, FL_FORCE) == 0;
		fl_close(lk);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	claims_dir(p, cd, sizeof(cd));
	assert_int_equal(list_dir(cd, names, 8), 2);
	assert_true(fl_is_valid(lk));
	fl_close(lk);
	assert_int_equal(list_dir(cd, names, 8), 0);
}

static void test_strict_options(void **state)
{
	const char *p = fl_test_path("opts");
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.lease_duration = 5;
	assert_int_equal(fl_open(&lk, p, FL_STRICT, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "lease_duration"));
	fl_options_init(&o);
	o.lifetime = 5;
	assert_int_equal(fl_open(&lk, p, FL_STRICT, &o), -EINVAL);
	fl_options_init(&o);
	o.flags = FL_SINGLETON;
	lk = fl_test_open(p, FL_STRICT, &o);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ENOTSUP);
	fl_close(lk);
	/* Releasing an unheld strict lock is a no-op, as in Python. */
	lk = fl_test_open(p, FL_STRICT, NULL);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

static void test_strict_missing_parents_created(void **state)
{
	char p[4200];
	fl_lock *lk;

	snprintf(p, sizeof(p), "%s/a/b/c.lock", fl_test_dir);
	lk = fl_test_open(p, FL_STRICT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	assert_int_equal(access(p, F_OK), 0);
}

/* fl__adopt: a dead taker's held claim (common.c). */
static void test_strict_adopt(void **state)
{
	struct fl_options o;

	(void)state;
	fl_options_init(&o);
	o.poll_interval = 0.01;
	o.flags = FL_NO_SINGLETON;
	fl_test_adopt(fl_test_path("adopt.lock"), FL_STRICT, &o, FL_EXCLUSIVE, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_strict_exact_bytes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_excludes_handles_and_threads, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_crashed_holder_needs_manual_break, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_break_dead_owner_without_force, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_malformed_claims_fail_closed, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_noncanonical_records, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_symlinks_fail_closed, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_foreign_sentinel_is_contention, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_hostile_sentinel, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_release_wakes_waiter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_no_hard_links, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_private_records_swept, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_fork_child_keeps_parent_claims, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_options, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_adopt, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_strict_missing_parents_created, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("strict", tests, fl_test_group_setup, fl_test_group_teardown);
}
