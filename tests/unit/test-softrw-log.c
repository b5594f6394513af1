/* SPDX-License-Identifier: MIT */
/*
 * test-softrw-log -- the soft-rw kind's default protocol, filelock-rw/1:
 * record bytes, fencing tokens, writer preference, eviction after
 * max(stale_threshold, lease) and never before, the evicted holder's
 * compromise, compaction to 65 generations, sweeping of orphans (and never
 * of junk), malformed snapshots, hostile nodes at P.rw, a filesystem without
 * hard links, faults on the beats, the mixed-protocol refusal both ways,
 * inspection and breaking, the protocol option.
 *
 * Other processes are fl-holder helpers driven through pipes.  Where time
 * must pass (a record left unrefreshed), the duration is the scenario.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"

#define HB "0.2"
#define STALE "0.6"

static void opts(struct fl_options *o)
{
	fl_options_init(o);
	o->heartbeat_interval = 0.2;
	o->stale_threshold = 0.6;
	o->poll_interval = 0.01;
	o->flags = FL_NO_SINGLETON;
}

static fl_lock *open_at(const char *path)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	opts(&o);
	if (fl_open(&lk, path, FL_SOFT_RW, &o) != 0)
		fail_msg("fl_open(%s): %s", path, fl_errmsg(NULL));
	return lk;
}

/* Reads "<path>.rw/<rel>" into buf (NUL-terminated); returns its length or -1. */
static ssize_t slurp(const char *path, const char *rel, char *buf, size_t cap)
{
	char p[1024];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s.rw/%s", path, rel);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return n;
}

/* Number of entries of "<path>.rw/<rel>" whose names pass `want`. */
static int count(const char *path, const char *rel, int (*want)(const char *))
{
	char p[1024];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s.rw/%s", path, rel);
	d = opendir(p);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' || want != NULL)
			n += want == NULL || want(e->d_name);
	closedir(d);
	return n;
}

static int is_gen(const char *n)
{
	return strlen(n) == 20 && strspn(n, "0123456789") == 20;
}

static unsigned long long fence(struct fl_child *c)
{
	char line[128];

	fl_child_say(c, "fence");
	fl_child_line(c, line, sizeof(line));
	assert_int_equal(strncmp(line, "fence ", 6), 0);
	return strtoull(line + 6, NULL, 10);
}

/* ---- records ----------------------------------------------------------- */

static void test_records(void **state)
{
	const char *path = fl_test_path("rec.lock");
	fl_lock *lk = open_at(path);
	char buf[512], host[300], want[600], tok[33];
	unsigned long long g;
	struct stat st;

	(void)state;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_fencing_token(lk, &g), 0);
	assert_true(g == 1);
	assert_int_equal(slurp(path, "gen/00000000000000000001", buf, sizeof(buf)), 67);
	assert_int_equal(strncmp(buf, "filelock-rw/1\ngeneration=1\nwriter=", 34), 0);
	memcpy(tok, buf + 34, 32);
	tok[32] = '\0';
	assert_true(fl__srwl_is_token(tok, 32));
	/* The holder record: Python's field order, our host_name() and lease. */
	snprintf(want, sizeof(want), "holders/%s", tok);
	assert_int_equal(slurp(path, want, buf, sizeof(buf)) > 0, 1);
	assert_int_equal(fl__hostname(host, sizeof(host)), 0);
	snprintf(want, sizeof(want), "filelock-rw/1\ntoken=%s\npid=%d\nhost=%s\nlease=0.6\nnonce=", tok,
		 (int)getpid(), host);
	assert_int_equal(strncmp(buf, want, strlen(want)), 0);
	assert_int_equal(strlen(buf), strlen(want) + 33);
	assert_true(fl__srwl_holder_lease(buf, strlen(buf)) == 0.6);
	/* epoch and HEAD */
	assert_int_equal(slurp(path, "gen/epoch", buf, sizeof(buf)), 33);
	memcpy(want, buf, 33);
	assert_int_equal(slurp(path, "gen/HEAD", buf, sizeof(buf)), 100);
	assert_int_equal(memcmp(buf, want, 33), 0);
	/* 0700 directories, 0600 files */
	snprintf(want, sizeof(want), "%s.rw/gen", path);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(want, sizeof(want), "%s.rw/gen/00000000000000000001", path);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(slurp(path, "gen/00000000000000000002", buf, sizeof(buf)), 27);
	assert_string_equal(buf, "filelock-rw/1\ngeneration=2\n");
	assert_int_equal(count(path, "holders", NULL), 0);
	assert_int_equal(fl_fencing_token(lk, &g), -ENOLCK);
	fl_close(lk);
}

static void test_parse(void **state)
{
	static const char *const bad[] = {
		"", "filelock-rw/1\n", "filelock-rw/2\ngeneration=1\n", "filelock-rw/1\ngeneration=1",
		"filelock-rw/1\ngeneration=01\n", "filelock-rw/1\ngeneration=1\ngeneration=1\n",
		"filelock-rw/1\ngeneration=+1\n", "filelock-rw/1\ngeneration=123456789012345678901\n",
		"filelock-rw/1\ngeneration=1\nwriter=0123456789abcdef0123456789ABCDEF\n",
		"filelock-rw/1\ngeneration=1\nwriter=0123456789abcdef0123456789abcde\n",
		"filelock-rw/1\ngeneration=1\nreader=0123456789abcdef0123456789abcdef\n"
		"reader=0123456789abcdef0123456789abcdef\n",
		"filelock-rw/1\ngeneration=1\nwriter=0123456789abcdef0123456789abcdef\n"
		"writer=0123456789abcdef0123456789abcdef\n",
		"filelock-rw/1\ngeneration=1\nholder=x\n", "filelock-rw/1\ngeneration=1\nnoequals\n",
		"filelock-rw/1\ngeneration=1\n\n", "filelock-rw/1\r\ngeneration=1\n",
		"filelock-rw/1\ngeneration=\xd9\xa1\n",
	};
	struct fl_srwl_snap s;
	const char *good = "filelock-rw/1\nreader=ffffffffffffffffffffffffffffffff\ngeneration=0\n"
			   "reader=00000000000000000000000000000000\n";

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fl__srwl_parse(bad[i], strlen(bad[i]), &s) != -EBADMSG)
			fail_msg("accepted bad snapshot #%zu", i);
	assert_int_equal(fl__srwl_parse(good, strlen(good), &s), 0);
	assert_true(s.gen == 0 && s.writer[0] == '\0' && s.nr == 2);
	assert_string_equal(s.readers[0], "00000000000000000000000000000000");
	fl__srwl_snap_free(&s);
	/* Leases: only repr()'s own spelling of a finite positive float. */
	assert_true(fl__srwl_holder_lease("lease=90.0\n", 11) == 90.0);
	assert_true(fl__srwl_holder_lease("x=1\nlease=1e-05\n", 16) == 1e-05);
	assert_true(fl__srwl_holder_lease("lease=90\n", 9) == 0);
	assert_true(fl__srwl_holder_lease("lease= 9.0\n", 11) == 0);
	assert_true(fl__srwl_holder_lease("lease=inf\n", 10) == 0);
	assert_true(fl__srwl_holder_lease("lease=-1.0\n", 11) == 0);
	assert_true(fl__srwl_holder_lease("lease=1_0.0\n", 12) == 0);
	assert_true(fl__srwl_holder_lease("nolease\n", 8) == 0);
}

/* ---- holders ----------------------------------------------------------- */

/* Readers share, a writer waits for them and blocks new readers (writer
 * preference), and each grant's fencing token exceeds the one before. */
static void test_preference_and_fencing(void **state)
{
	const char *path = fl_test_path("pref.lock");
	struct fl_child r1, r2, w;
	char line[256];
	unsigned long long f1, f2, fw;
	fl_lock *r3 = open_at(path);

	(void)state;
	fl_holder_start(&r1, line, sizeof(line), "-t", "soft-rw", "-s", "-o", "heartbeat_interval=" HB,
			"-o", "stale_threshold=" STALE, "-o", "poll_interval=0.01", path, NULL);
	assert_int_equal(strncmp(line, "ready", 5), 0);
	fl_holder_start(&r2, line, sizeof(line), "-t", "soft-rw", "-s", "-o", "heartbeat_interval=" HB,
			"-o", "stale_threshold=" STALE, "-o", "poll_interval=0.01", path, NULL);
	assert_int_equal(strncmp(line, "ready", 5), 0);
	f1 = fence(&r1);
	f2 = fence(&r2);
	assert_true(f1 < f2);
	/* The writer waits, entered: its own commit names it writer. */
	{
		char *argv[] = { strdup(fl_test_helper("fl-holder")), strdup("-t"), strdup("soft-rw"),
				 strdup("-o"), strdup("heartbeat_interval=" HB), strdup("-o"),
				 strdup("stale_threshold=" STALE), strdup("-o"),
				 strdup("poll_interval=0.01"), strdup(path), NULL };
		fl_child_start(&w, argv);
		for (int i = 0; argv[i]; i++)
			free(argv[i]);
	}
	for (;;) { /* until the newest snapshot names a writer */
		struct fl_holder h = { .size = sizeof(h) };
		struct fl_options o;
		opts(&o);
		assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
		if (h.writers == 1)
			break;
		usleep(10000);
	}
	/* No new reader enters past a waiting writer. */
	assert_int_equal(fl_acquire(r3, FL_SHARED, 0.3), -ETIMEDOUT);
	fl_child_say(&r1, "release");
	fl_child_line(&r1, line, sizeof(line));
	fl_child_say(&r2, "release");
	fl_child_line(&r2, line, sizeof(line));
	fl_child_line(&w, line, sizeof(line));
	assert_int_equal(strncmp(line, "ready", 5), 0);
	fw = fence(&w);
	assert_true(fw > f2);
	assert_int_equal(fl_acquire(r3, FL_SHARED, 0), -ETIMEDOUT);
	fl_child_say(&w, "release");
	fl_child_line(&w, line, sizeof(line));
	assert_int_equal(fl_acquire(r3, FL_SHARED, 0), 0);
	assert_int_equal(fl_fencing_token(r3, &f1), 0);
	assert_true(f1 > fw);
	assert_int_equal(fl_release(r3, 0), 0);
	fl_child_finish(&r1);
	fl_child_finish(&r2);
	fl_child_finish(&w);
	fl_close(r3);
}

/* A SIGKILLed writer is evicted once its record stayed unchanged for
 * max(our stale_threshold, its lease); a SIGSTOPped one that resumes
 * learns it was evicted. */
static void test_eviction(void **state)
{
	const char *path = fl_test_path("evict.lock");
	struct fl_child w;
	char line[256];
	fl_lock *lk = open_at(path);
	double t0, t;

	(void)state;
	/* The holder's lease (1.5 s) exceeds our threshold (0.6 s). */
	fl_holder_start(&w, line, sizeof(line), "-t", "soft-rw", "-o", "heartbeat_interval=0.3", "-o",
			"stale_threshold=1.5", path, NULL);
	assert_int_equal(strncmp(line, "ready", 5), 0);
	fl_child_kill(&w);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	t = fl_test_now() - t0;
	if (t < 1.5 || t > 3.5)
		fail_msg("evicted a dead writer with lease 1.5 after %.2fs", t);
	assert_int_equal(count(path, "holders", NULL), 1); /* ours only */
	assert_int_equal(fl_release(lk, 0), 0);

	/* Frozen past the threshold, then resumed: compromised, evicted. */
	fl_holder_start(&w, line, sizeof(line), "-t", "soft-rw", "-o", "heartbeat_interval=" HB, "-o",
			"stale_threshold=" STALE, path, NULL);
	assert_int_equal(strncmp(line, "ready", 5), 0);
	assert_int_equal(kill(w.pid, SIGSTOP), 0);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	assert_true(fl_test_now() - t0 >= 0.6);
	assert_int_equal(kill(w.pid, SIGCONT), 0);
	fl_child_line(&w, line, sizeof(line));
	assert_string_equal(line, "compromised 4"); /* FL_COMPROMISE_EVICTED */
	fl_child_say(&w, "valid");
	fl_child_line(&w, line, sizeof(line));
	assert_string_equal(line, "valid 0");
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	fl_child_finish(&w);
	fl_close(lk);
}

/* A live writer that waits much longer than the threshold is never evicted
 * (it refreshes on every poll), nor is a live holder. */
static void test_patient_waiter(void **state)
{
	const char *path = fl_test_path("patient.lock");
	fl_lock *a = open_at(path), *b = open_at(path), *c = open_at(path);

	(void)state;
	assert_int_equal(fl_acquire(a, FL_SHARED, 0), 0);
	/* b waits as writer for 3 thresholds; c (a reader) must stay out all
	 * along and a must stay valid. */
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 1.8), -ETIMEDOUT);
	assert_true(fl_is_valid(a));
	assert_int_equal(fl_release(a, 0), 0);
	assert_int_equal(fl_acquire(c, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(c, 0), 0);
	fl_close(a);
	fl_close(b);
	fl_close(c);
}

/* ---- the log ------------------------------------------------------------- */

static void test_compaction_and_sweep(void **state)
{
	const char *path = fl_test_path("compact.lock");
	fl_lock *lk = open_at(path);
	char p[1024], junk[1024];
	int fd;

	(void)state;
	for (int i = 0; i < 40; i++) {
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(fl_release(lk, 0), 0);
	}
	assert_int_equal(count(path, "gen", is_gen), 65);
	assert_int_equal(access(strcat(strcpy(p, path), ".rw/gen/00000000000000000080"), F_OK), 0);
	assert_int_equal(access(strcat(strcpy(p, path), ".rw/gen/00000000000000000015"), F_OK), -1);
	/* Orphans: a holder record no snapshot names, a temporary; junk. */
	snprintf(p, sizeof(p), "%s.rw/holders/dddddddddddddddddddddddddddddddd", path);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0 && write(fd, "x\n", 2) == 2);
	close(fd);
	snprintf(p, sizeof(p), "%s.rw/gen/.commit-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", path);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(junk, sizeof(junk), "%s.rw/holders/not-a-token", path);
	fd = open(junk, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	/* Seen on every try for longer than the threshold: swept. */
	{
		fl_lock *w = open_at(path), *hold = open_at(path);
		assert_int_equal(fl_acquire(hold, FL_SHARED, 0), 0);
		assert_int_equal(fl_acquire(w, FL_EXCLUSIVE, 1.5), -ETIMEDOUT);
		assert_int_equal(fl_release(hold, 0), 0);
		fl_close(w);
		fl_close(hold);
	}
	assert_int_equal(access(p, F_OK), -1);
	snprintf(p, sizeof(p), "%s.rw/holders/dddddddddddddddddddddddddddddddd", path);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(access(junk, F_OK), 0);
	fl_close(lk);
}

static void test_malformed_and_hostile(void **state)
{
	const char *path = fl_test_path("bad.lock"), *path2 = fl_test_path("sym.lock");
	fl_lock *lk = open_at(path), *l2;
	char p[1024], target[1024];
	int fd;

	(void)state;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	snprintf(p, sizeof(p), "%s.rw/gen/00000000000000000003", path);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0 && write(fd, "garbage\n", 8) == 8);
	close(fd);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EBADMSG);
	assert_non_null(strstr(fl_errmsg(lk), "00000000000000000003): malformed generation record"));
	assert_int_equal(unlink(p), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);

	/* A symlink at P.rw is refused, nothing created through it. */
	snprintf(target, sizeof(target), "%s.target", path2);
	assert_int_equal(mkdir(target, 0700), 0);
	snprintf(p, sizeof(p), "%s.rw", path2);
	assert_int_equal(symlink(target, p), 0);
	l2 = open_at(path2);
	assert_int_equal(fl_acquire(l2, FL_EXCLUSIVE, 0), -ENOTDIR);
	assert_non_null(strstr(fl_errmsg(l2), "not a directory or is a symlink"));
	assert_int_equal(rmdir(target), 0); /* still empty */
	fl_close(l2);
}

static int xdev_link(int a, const char *b, int c, const char *d, int e)
{
	(void)a, (void)b, (void)c, (void)d, (void)e;
	errno = EXDEV;
	return -1;
}

static void test_no_hard_links(void **state)
{
	const char *path = fl_test_path("nolink.lock");
	fl_lock *lk = open_at(path);

	(void)state;
	fl__sys.linkat = xdev_link;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ENOTSUP);
	fl__sys_reset();
	assert_non_null(strstr(fl_errmsg(lk), "does not support atomic no-replace hard-link"));
	assert_int_equal(count(path, "holders", NULL), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

/* ---- the heartbeat --------------------------------------------------------- */

static struct fl_sys real;
static atomic_int beat_fail;

static int failing_openat(int dfd, const char *p, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (atomic_load(&beat_fail) && (flags & O_ACCMODE) == O_WRONLY && !(flags & O_CREAT)) {
		errno = EIO;
		return -1;
	}
	return real.openat(dfd, p, flags, mode);
}

static atomic_int lost_reason;

static void on_lost(fl_lock *lk, int reason, void *arg)
{
	(void)lk;
	(void)arg;
	atomic_store(&lost_reason, reason);
}

static void test_beats(void **state)
{
	const char *path = fl_test_path("beat.lock");
	struct fl_options o;
	fl_lock *lk;
	char p[1024], line[256];

	(void)state;
	/* The table changes only while no heartbeat thread runs (sys.h). */
	real = fl__sys;
	fl__sys.openat = failing_openat;
	opts(&o);
	o.stale_threshold = 2.0; /* failures may last 1.8 s: room on a slow machine */
	o.on_compromise = on_lost;
	assert_int_equal(fl_open(&lk, path, FL_SOFT_RW, &o), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	/* Refreshes failing for less than stale - heartbeat: still valid. */
	atomic_store(&beat_fail, 1);
	usleep(500000);
	atomic_store(&beat_fail, 0);
	assert_int_equal(atomic_load(&lost_reason), 0);
	assert_true(fl_is_valid(lk));
	/* The record removed (a peer swept or evicted us): evicted. */
	{
		struct fl_holder h = { .size = sizeof(h) };
		DIR *d;
		struct dirent *e;
		snprintf(p, sizeof(p), "%s.rw/holders", path);
		d = opendir(p);
		assert_non_null(d);
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				snprintf(line, sizeof(line), "%s", e->d_name);
		closedir(d);
		snprintf(p, sizeof(p), "%s.rw/holders/%s", path, line);
		assert_int_equal(unlink(p), 0);
		for (int i = 0; i < 300 && atomic_load(&lost_reason) == 0; i++)
			usleep(10000);
		assert_int_equal(atomic_load(&lost_reason), FL_COMPROMISE_EVICTED);
		assert_false(fl_is_valid(lk));
		(void)h;
	}
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	fl__sys_reset();
}

/* ---- mixed deployments, inspection, options ------------------------------------- */

static void test_mixed_refusal(void **state)
{
	const char *path = fl_test_path("mixed.lock");
	struct fl_options o;
	fl_lock *legacy, *rw1 = open_at(path);

	(void)state;
	opts(&o);
	o.soft_rw_protocol = FL_SOFT_RW_LEGACY;
	assert_int_equal(fl_open(&legacy, path, FL_SOFT_RW, &o), 0);
	assert_int_equal(fl_acquire(legacy, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire(rw1, FL_SHARED, 0), -EPROTO);
	assert_non_null(strstr(fl_errmsg(rw1), "legacy soft-rw protocol"));
	assert_int_equal(count(path, "holders", NULL), 0); /* it left again */
	assert_int_equal(fl_release(legacy, 0), 0);
	assert_int_equal(fl_acquire(rw1, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire(legacy, FL_EXCLUSIVE, 0), -EPROTO);
	assert_non_null(strstr(fl_errmsg(legacy), "filelock-rw/1"));
	{
		char p[1024];
		snprintf(p, sizeof(p), "%s.write", path);
		assert_int_equal(access(p, F_OK), -1);
	}
	assert_int_equal(fl_release(rw1, 0), 0);
	assert_int_equal(fl_acquire(legacy, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(legacy, 0), 0);
	fl_close(legacy);
	fl_close(rw1);
}

static void test_inspect_break(void **state)
{
	const char *path = fl_test_path("insp.lock");
	struct fl_holder h = { .size = sizeof(h) };
	struct fl_options o;
	struct fl_child w;
	char line[256];
	fl_lock *lk = open_at(path);

	(void)state;
	opts(&o);
	assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_FREE);
	assert_int_equal(fl_break(path, FL_SOFT_RW, &o, 0, NULL), -ENOENT);
	fl_holder_start(&w, line, sizeof(line), "-t", "soft-rw", "-o", "heartbeat_interval=" HB, "-o",
			"stale_threshold=" STALE, path, NULL);
	assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_HELD);
	assert_int_equal(h.writers, 1);
	assert_int_equal(h.pid, w.pid);
	assert_int_equal(h.same_host, 1);
	assert_int_equal(fl_break(path, FL_SOFT_RW, &o, 0, NULL), -EBUSY);
	fl_child_kill(&w);
	/* Same host, pid gone: provably dead at once. */
	assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_STALE);
	assert_int_equal(fl_break(path, FL_SOFT_RW, &o, 0, NULL), 0);
	assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_FREE);
	assert_int_equal(count(path, "holders", NULL), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_break(path, FL_SOFT_RW, &o, FL_FORCE, NULL), 0);
	assert_int_equal(fl_inspect(path, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_FREE);
	fl_close(lk);
}

/* fl__adopt: a dead taker's writer and reader memberships (common.c). */
static void test_adopt(void **state)
{
	struct fl_options o;

	(void)state;
	opts(&o);
	fl_test_adopt(fl_test_path("adopt-w.lock"), FL_SOFT_RW, &o, FL_EXCLUSIVE, 0.6);
	fl_test_adopt(fl_test_path("adopt-r.lock"), FL_SOFT_RW, &o, FL_SHARED, 0.6);
}

static void test_options(void **state)
{
	const char *path = fl_test_path("opt.lock");
	struct fl_options o;
	fl_lock *a, *b;

	(void)state;
	opts(&o);
	o.poll_interval = 0.6;
	assert_int_equal(fl_open(&a, path, FL_SOFT_RW, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "poll_interval"));
	opts(&o);
	o.soft_rw_protocol = 7;
	assert_int_equal(fl_open(&a, path, FL_SOFT_RW, &o), -EINVAL);
	/* Singletons: the protocol is part of the identity of the options;
	 * the default and rw1 are the same. */
	fl_options_init(&o);
	assert_int_equal(fl_open(&a, path, FL_SOFT_RW, &o), 0);
	o.soft_rw_protocol = FL_SOFT_RW_RW1;
	assert_int_equal(fl_open(&b, path, FL_SOFT_RW, &o), 0);
	assert_ptr_equal(a, b);
	fl_close(b);
	o.soft_rw_protocol = FL_SOFT_RW_LEGACY;
	assert_int_equal(fl_open(&b, path, FL_SOFT_RW, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "soft_rw_protocol"));
	fl_close(a);
	/* An older caller's struct (without the field) gets the default. */
	fl_options_init(&o);
	o.size = offsetof(struct fl_options, soft_rw_protocol);
	o.flags = FL_NO_SINGLETON;
	assert_int_equal(fl_open(&a, path, FL_SOFT_RW, &o), 0);
	assert_int_equal(fl_acquire(a, FL_SHARED, 0), 0);
	assert_int_equal(count(path, "holders", NULL), 1);
	assert_int_equal(fl_release(a, 0), 0);
	fl_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_records, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_parse, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_preference_and_fencing, fl_test_setup,
						fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_eviction, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_patient_waiter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_compaction_and_sweep, fl_test_setup,
						fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_and_hostile, fl_test_setup,
						fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_no_hard_links, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_beats, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_mixed_refusal, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_inspect_break, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_adopt, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_options, fl_test_setup, fl_test_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("softrw-log", tests, fl_test_group_setup,
					   fl_test_group_teardown);
}
