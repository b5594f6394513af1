/* SPDX-License-Identifier: MIT */
/*
 * test-softrw -- the soft-rw kind's legacy protocol (3.32.3) with real
 * processes: byte formats, readers overlap, writers exclude (N x M counter),
 * writer preference, stale eviction after stale_threshold and never before,
 * frozen holders, orphaned .state, clock skew, hostile nodes in place of markers, ten thousand held
 * read locks on one heartbeat thread, fork, inspection and breaking.
 *
 * Processes synchronise through pipes.  Where a test needs time to pass (a
 * holder frozen for a while, a marker left unrefreshed), the duration is the
 * scenario itself, never a way to wait for another process.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "fl-internal.h"

#define HB 0.2
#define STALE 0.6

static char tdir[256];
static char lpath[512];

static int setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof(tdir), "%s/fl-srw-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tdir) == NULL)
		return -1;
	snprintf(lpath, sizeof(lpath), "%s/sub/x.lock", tdir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void opts(struct fl_options *o, double hb, double stale)
{
	fl_options_init(o);
	o->heartbeat_interval = hb;
	o->stale_threshold = stale;
	o->poll_interval = 0.01;
	o->flags = FL_NO_SINGLETON;
	/* This suite covers the legacy protocol (test-softrw-log: filelock-rw/1). */
	o->soft_rw_protocol = FL_SOFT_RW_LEGACY;
}

static fl_lock *open_lock(double hb, double stale)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	opts(&o, hb, stale);
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), 0);
	return lk;
}

static char *sidecar(const char *suffix)
{
	static char buf[4][600];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s%s", lpath, suffix);
	return buf[i];
}

/* ---- child processes driven through pipes ------------------------------ */

struct kid {
	pid_t pid;
	int to;   /* we write commands here   */
	int from; /* the child reports here   */
};

typedef void (*kid_fn)(int in, int out, void *arg);

static void kid_start(struct kid *k, kid_fn fn, void *arg)
{
	int a[2], b[2];

	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		close(a[1]);
		close(b[0]);
		signal(SIGPIPE, SIG_DFL);
		fn(a[0], b[1], arg);
		_exit(0);
	}
	close(a[0]);
	close(b[1]);
	k->to = a[1];
	k->from = b[0];
}

static char kid_get(struct kid *k)
{
	char c = 0;

	assert_int_equal(read(k->from, &c, 1), 1);
	return c;
}

static void kid_put(struct kid *k, char c)
{
	assert_int_equal(write(k->to, &c, 1), 1);
}

static int kid_wait(struct kid *k)
{
	int st;

	assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
	close(k->to);
	close(k->from);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kid_kill(struct kid *k)
{
	kill(k->pid, SIGKILL);
	kid_wait(k);
}

static void say(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(97);
}

static char hear(int fd)
{
	char c;

	if (read(fd, &c, 1) != 1)
		_exit(0); /* the parent went away */
	return c;
}

/* A holder child: arg = "r" or "w" plus options.  Reports 'a' acquired
 * ('e' error), then serves: 'v' -> '1'/'0' validity, 'x' -> release and exit.
 * on_compromise reports 'c'. */
struct holder_arg {
	enum fl_mode mode;
	double hb, stale;
};

static int g_out = -1;

static void holder_comp(fl_lock *lk, int reason, void *arg)
{
	(void)lk;
	(void)arg;
	(void)reason;
	say(g_out, 'c');
}

static void holder_main(int in, int out, void *argp)
{
	struct holder_arg *a = argp;
	struct fl_options o;
	fl_lock *lk;

	g_out = out;
	opts(&o, a->hb, a->stale);
	o.on_compromise = holder_comp;
	if (fl_open(&lk, lpath, FL_SOFT_RW, &o) != 0 || fl_acquire(lk, a->mode, 10) != 0) {
		say(out, 'e');
		_exit(2);
	}
	say(out, 'a');
	for (;;) {
		char c = hear(in);
		if (c == 'v') {
			say(out, fl_is_valid(lk) ? '1' : '0');
		} else if (c == 'x') {
			int r = fl_release(lk, 0);
			fl_close(lk);
			say(out, r == 0 ? 'r' : 'R');
			_exit(0);
		}
	}
}

static void start_holder(struct kid *k, enum fl_mode mode, double hb, double stale)
{
	static struct holder_arg a;

	a.mode = mode;
	a.hb = hb;
	a.stale = stale;
	kid_start(k, holder_main, &a);
	assert_int_equal(kid_get(k), 'a');
}

static void stop_holder(struct kid *k)
{
	kid_put(k, 'x');
	assert_int_equal(kid_get(k), 'r');
	assert_int_equal(kid_wait(k), 0);
}

/* ---- tests ------------------------------------------------------------- */

static void test_options(void **state)
{
	struct fl_options o;
	fl_lock *lk;

	(void)state;
	fl_options_init(&o);
	o.heartbeat_interval = 5;
	o.stale_threshold = 5;
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "stale_threshold must exceed heartbeat_interval"));
	o.stale_threshold = 0; /* default 3 * heartbeat_interval */
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), 0);
	fl_close(lk);
	o.heartbeat_interval = 100;
	o.stale_threshold = 50;
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), -EINVAL);
	fl_options_init(&o);
	o.lease_duration = 3;
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "lease_duration"));
	o.lease_duration = 0;
	o.heartbeat_interval = -1;
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), -EINVAL);
	/* Defaults are valid; singletons by default. */
	fl_lock *a, *b;
	assert_int_equal(fl_open(&a, lpath, FL_SOFT_RW, NULL), 0);
	assert_int_equal(fl_open(&b, lpath, FL_SOFT_RW, NULL), 0);
	assert_ptr_equal(a, b);
	fl_close(b);
	fl_close(a);
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void check_record(const char *path)
{
	char buf[2048], want[512], host[256];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 33);
	buf[n] = '\0';
	assert_true(is_hex(buf, 32));
	assert_int_equal(buf[32], '\n');
	gethostname(host, sizeof(host));
	snprintf(want, sizeof(want), "\n%d\n%s\n", (int)getpid(), host);
	assert_string_equal(buf + 32, want);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600 & ~(mode_t)022 & 0777);
}

static void test_layout_and_bytes(void **state)
{
	fl_lock *lk = open_lock(30, 90);
	struct dirent *de;
	struct stat st;
	int seen = 0;
	DIR *d;

	(void)state;
	umask(022);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(lstat(sidecar(".readers"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(lstat(lpath, &st), -1);             /* P itself is never created */
	assert_int_equal(lstat(sidecar(".state"), &st), -1); /* only held in transitions  */
	assert_int_equal(lstat(sidecar(".write"), &st), -1);
	d = opendir(sidecar(".readers"));
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[1024], pid[32];
		if (de->d_name[0] == '.')
			continue;
		/* "<uuid4 hex>.<pid>" */
		snprintf(pid, sizeof(pid), ".%d", (int)getpid());
		assert_int_equal(strlen(de->d_name), 32 + strlen(pid));
		assert_true(is_hex(de->d_name, 32));
		assert_int_equal(de->d_name[12], '4');
		assert_string_equal(de->d_name + 32, pid);
		snprintf(p, sizeof(p), "%s/%s", sidecar(".readers"), de->d_name);
		check_record(p);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, 1);
	/* Reentrant read, no upgrade, release-unheld is -ENOLCK. */
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_lock_counter(lk), 2);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EDEADLK);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_release(lk, 0), -ENOLCK);
	assert_int_equal(fl_release(lk, FL_FORCE), 0);

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	check_record(sidecar(".write"));
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EDEADLK);
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(lstat(sidecar(".write"), &st), -1);
	assert_int_equal(lstat(sidecar(".state"), &st), -1);
	fl_close(lk);
}

/* ---- readers overlap ------------------------------------------------------ */

static void reader_barrier(int in, int out, void *arg)
{
	fl_lock *lk;
	struct fl_options o;

	(void)arg;
	opts(&o, HB, STALE);
	if (fl_open(&lk, lpath, FL_SOFT_RW, &o) != 0 || fl_acquire(lk, FL_SHARED, 10) != 0)
		_exit(2);
	say(out, 'i');     /* inside */
	if (hear(in) != 'g') /* stay inside until every reader is */
		_exit(3);
	if (fl_release(lk, 0) != 0)
		_exit(4);
	fl_close(lk);
	_exit(0);
}

static void test_readers_overlap(void **state)
{
	enum { N = 5 };
	struct kid k[N];

	(void)state;
	alarm(20);
	for (int i = 0; i < N; i++)
		kid_start(&k[i], reader_barrier, NULL);
	/* All N are inside at once: otherwise some 'i' never comes (alarm). */
	for (int i = 0; i < N; i++)
		assert_int_equal(kid_get(&k[i]), 'i');
	{
		struct fl_holder h = { .size = sizeof(h) };
		struct fl_options o;
		opts(&o, HB, STALE);
		assert_int_equal(fl_inspect(lpath, FL_SOFT_RW, &o, &h), 0);
		assert_int_equal(h.readers, N);
		assert_int_equal(h.writers, 0);
		assert_int_equal(h.state, FL_HOLDER_HELD);
	}
	for (int i = 0; i < N; i++)
		kid_put(&k[i], 'g');
	for (int i = 0; i < N; i++)
		assert_int_equal(kid_wait(&k[i]), 0);
	alarm(0);
}

/* ---- writers exclude: N x M counter ------------------------------------- */

static void writer_counter(int in, int out, void *arg)
{
	int m = *(int *)arg;
	char cpath[600], flag[600];
	fl_lock *lk;
	struct fl_options o;

	(void)in;
	(void)out;
	opts(&o, HB, STALE);
	o.poll_interval = 0.002;
	snprintf(cpath, sizeof(cpath), "%s/counter", tdir);
	snprintf(flag, sizeof(flag), "%s/inside", tdir);
	if (fl_open(&lk, lpath, FL_SOFT_RW, &o) != 0)
		_exit(2);
	for (int i = 0; i < m; i++) {
		char buf[32] = "";
		int fd, f;
		long v;

		if (fl_acquire(lk, FL_EXCLUSIVE, 20) != 0)
			_exit(2);
		f = open(flag, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (f < 0)
			_exit(5); /* someone else is inside */
		close(f);
		fd = open(cpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || pread(fd, buf, sizeof(buf) - 1, 0) < 0)
			_exit(4);
		v = strtol(buf, NULL, 10);
		snprintf(buf, sizeof(buf), "%ld\n", v + 1);
		if (pwrite(fd, buf, strlen(buf), 0) != (ssize_t)strlen(buf))
			_exit(4);
		close(fd);
		unlink(flag);
		if (fl_release(lk, 0) != 0)
			_exit(6);
	}
	fl_close(lk);
	_exit(0);
}

static void test_writers_counter(void **state)
{
	enum { N = 4 };
	int m = 40;
	struct kid k[N];
	char cpath[600], buf[32] = "";
	int fd;

	(void)state;
	alarm(60);
	for (int i = 0; i < N; i++)
		kid_start(&k[i], writer_counter, &m);
	for (int i = 0; i < N; i++)
		assert_int_equal(kid_wait(&k[i]), 0);
	snprintf(cpath, sizeof(cpath), "%s/counter", tdir);
	fd = open(cpath, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_int_equal(strtol(buf, NULL, 10), N * m);
	unlink(cpath);
	alarm(0);
}

/* ---- a waiting writer blocks new readers ---------------------------------- */

static int cancel_note(void *arg)
{
	int *fd = arg;

	if (*fd >= 0) {
		say(*fd, 'w'); /* first failed try: the writer claim is in place */
		*fd = -1;
	}
	return 0;
}

static void waiting_writer(int in, int out, void *arg)
{
	static int note;
	struct fl_options o;
	fl_lock *lk;

	(void)arg;
	note = out;
	opts(&o, HB, STALE);
	o.cancel_check = cancel_note;
	o.cancel_arg = &note;
	if (fl_open(&lk, lpath, FL_SOFT_RW, &o) != 0 || fl_acquire(lk, FL_EXCLUSIVE, 20) != 0)
		_exit(2);
	say(out, 'a');
	hear(in);
	fl_release(lk, 0);
	fl_close(lk);
	_exit(0);
}

static void test_waiting_writer_blocks_readers(void **state)
{
	struct kid r1, w;
	fl_lock *lk = open_lock(HB, STALE);

	(void)state;
	alarm(20);
	start_holder(&r1, FL_SHARED, HB, STALE);
	kid_start(&w, waiting_writer, NULL);
	assert_int_equal(kid_get(&w), 'w');
	/* A new reader, on a lock that only readers hold, must wait. */
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0.3), -ETIMEDOUT);
	stop_holder(&r1);
	assert_int_equal(kid_get(&w), 'a');
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ETIMEDOUT);
	kid_put(&w, 'x');
	assert_int_equal(kid_wait(&w), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 5), 0);
	fl_close(lk);
	alarm(0);
}

/* A writer that times out withdraws its claim at once. */
static void test_timeout_withdraws_claim(void **state)
{
	struct kid r1;
	fl_lock *w = open_lock(HB, STALE), *r = open_lock(HB, STALE);
	struct stat st;

	(void)state;
	alarm(20);
	start_holder(&r1, FL_SHARED, HB, STALE);
	assert_int_equal(fl_acquire(w, FL_EXCLUSIVE, 0.1), -ETIMEDOUT);
	assert_int_equal(lstat(sidecar(".write"), &st), -1);
	assert_int_equal(fl_acquire(r, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire(w, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(lstat(sidecar(".write"), &st), -1);
	assert_non_null(strstr(fl_errmsg(w), "x.lock"));
	fl_close(r);
	stop_holder(&r1);
	assert_int_equal(fl_acquire(w, FL_EXCLUSIVE, 0), 0);
	fl_close(w);
	alarm(0);
}

/* ---- stale eviction ------------------------------------------------------- */

static void evict_case(enum fl_mode held)
{
	struct kid k;
	fl_lock *lk = open_lock(HB, STALE);
	double t0, dt;

	start_holder(&k, held, HB, STALE);
	/* Alive and heartbeating: never evicted, however long we wait. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 4 * STALE), -ETIMEDOUT);
	t0 = fl__now_mono();
	kid_kill(&k);
	/* A new handle: what this process saw through the first one counts
	 * (the ledger is per process), so the silence counts from the last
	 * refresh we saw, at most one heartbeat before the kill. */
	fl_close(lk);
	lk = open_lock(HB, STALE);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	dt = fl__now_mono() - t0;
	/* Not before stale_threshold after its last refresh, and promptly. */
	assert_true(dt >= STALE - HB);
	assert_true(dt < STALE + 2.0);
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

static void test_killed_writer_evicted(void **state)
{
	(void)state;
	alarm(30);
	evict_case(FL_EXCLUSIVE);
	alarm(0);
}

static void test_killed_reader_evicted(void **state)
{
	(void)state;
	alarm(30);
	evict_case(FL_SHARED);
	alarm(0);
}

static void test_stopped_short_keeps_lock(void **state)
{
	struct kid k;
	fl_lock *lk = open_lock(HB, 1.2);

	(void)state;
	alarm(30);
	start_holder(&k, FL_EXCLUSIVE, HB, 1.2);
	/* The contender watches the marker before, during and after the freeze. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	kill(k.pid, SIGSTOP);
	/* Frozen for 0.5 s (< stale_threshold - heartbeat_interval). */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -ETIMEDOUT);
	kill(k.pid, SIGCONT);
	kid_put(&k, 'v');
	assert_int_equal(kid_get(&k), '1'); /* not 'c': no compromise */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -ETIMEDOUT);
	stop_holder(&k);
	fl_close(lk);
	alarm(0);
}

static void stopped_long(enum fl_mode held)
{
	struct kid k;
	fl_lock *lk = open_lock(HB, STALE);
	struct stat st;

	start_holder(&k, held, HB, STALE);
	kill(k.pid, SIGSTOP);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0); /* evicted the frozen one */
	kill(k.pid, SIGCONT);
	assert_int_equal(kid_get(&k), 'c'); /* its on_compromise ran */
	kid_put(&k, 'v');
	assert_int_equal(kid_get(&k), '0'); /* and fl_is_valid() is false */
	/* Its release must not remove our marker. */
	stop_holder(&k);
	assert_int_equal(lstat(sidecar(".write"), &st), 0);
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

static void test_stopped_long_writer_compromised(void **state)
{
	(void)state;
	alarm(30);
	stopped_long(FL_EXCLUSIVE);
	alarm(0);
}

static void test_stopped_long_reader_compromised(void **state)
{
	(void)state;
	alarm(30);
	stopped_long(FL_SHARED);
	alarm(0);
}

/* ---- .state ----------------------------------------------------------- */

static void test_orphaned_state(void **state)
{
	fl_lock *lk = open_lock(HB, STALE);
	char host[256], rec[512];
	double t0, dt;
	struct stat st;
	pid_t dead;
	int s;

	(void)state;
	alarm(20);
	/* Left by a process that crashed on another host: broken after stale. */
	mkdir(tdir, 0700);
	snprintf(rec, sizeof(rec), "%s/sub", tdir);
	mkdir(rec, 0777);
	fl_test_write_str(sidecar(".state"), "4242\nanother-host.example\n");
	t0 = fl__now_mono();
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0.2), -ETIMEDOUT); /* Python would wait forever */
	assert_int_equal(fl_acquire(lk, FL_SHARED, 10), 0);
	dt = fl__now_mono() - t0;
	assert_true(dt >= STALE);
	assert_true(dt < STALE + 2.0);
	assert_int_equal(lstat(sidecar(".state"), &st), -1);
	assert_int_equal(fl_release(lk, 0), 0);

	/* Left by a dead process of this host: broken at once (Python's rule). */
	dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, &s, 0);
	gethostname(host, sizeof(host));
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead, host);
	fl_test_write_str(sidecar(".state"), rec);
	t0 = fl__now_mono();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	assert_true(fl__now_mono() - t0 < STALE);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	alarm(0);
}

/* ---- clock skew ----------------------------------------------------------- */

/* A holder on a host whose clock is `skew` seconds off: it keeps stamping
 * its marker with its own (skewed, advancing) time. */
static void skewed_toucher(int in, int out, void *arg)
{
	double skew = *(double *)arg;

	(void)in;
	say(out, 's');
	for (;;) {
		struct timespec ts[2];
		double t = fl__now_wall() + skew;
		ts[0].tv_sec = ts[1].tv_sec = (time_t)t;
		ts[0].tv_nsec = ts[1].tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
		utimensat(AT_FDCWD, sidecar(".write"), ts, AT_SYMLINK_NOFOLLOW);
		fl__sleep_until(fl__now_mono() + HB);
	}
}

static void test_clock_skew(void **state)
{
	fl_lock *lk = open_lock(HB, STALE), *other = open_lock(HB, STALE);
	struct timespec ts[2];
	double skew, t0, dt;
	struct kid k;

	(void)state;
	alarm(30);
	/* A live writer that stamps its marker with explicit times from a clock
	 * 10 minutes slow: its marker looks 600 s old, yet once we watch it, it
	 * moves, so it is never evicted.  (Seen for the first time, such a
	 * marker would be judged by the server's clock; holders that touch with
	 * the server's time, ours and Python's, never look old: ledger.c.) */
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ETIMEDOUT); /* first sight: fresh */
	skew = -600;
	kid_start(&k, skewed_toucher, &skew);
	assert_int_equal(kid_get(&k), 's');
	assert_int_equal(fl_acquire(lk, FL_SHARED, 4 * STALE), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 4 * STALE), -ETIMEDOUT);
	kid_kill(&k);
	assert_true(fl_is_valid(other));
	assert_int_equal(fl_release(other, 0), 0);

	/* The same with a clock 10 minutes fast. */
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 0), 0);
	skew = 600;
	kid_start(&k, skewed_toucher, &skew);
	assert_int_equal(kid_get(&k), 's');
	assert_int_equal(fl_acquire(lk, FL_SHARED, 4 * STALE), -ETIMEDOUT);
	kid_kill(&k);
	assert_int_equal(fl_release(other, 0), 0);

	/* A dead writer whose marker carries a future mtime (Python would never
	 * evict it): evicted after stale_threshold of no change. */
	fl_test_write_str(sidecar(".write"), "0123456789abcdef0123456789abcdef\n99999\nelsewhere\n");
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) + 600;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, sidecar(".write"), ts, 0), 0);
	t0 = fl__now_mono();
	assert_int_equal(fl_acquire(lk, FL_SHARED, 10), 0);
	dt = fl__now_mono() - t0;
	assert_true(dt >= STALE && dt < STALE + 2.0);
	assert_int_equal(fl_release(lk, 0), 0);

	/* A dead writer whose marker is an hour old by the server's clock:
	 * evicted at the first sight of its inode, at the latest after
	 * stale_threshold of our own watch (when its inode number was reused
	 * from a marker this process saw before). */
	fl_test_write_str(sidecar(".write"), "0123456789abcdef0123456789abcdef\n99999\nelsewhere\n");
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 3600;
	assert_int_equal(utimensat(AT_FDCWD, sidecar(".write"), ts, 0), 0);
	t0 = fl__now_mono();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	dt = fl__now_mono() - t0;
	assert_true(dt < STALE + 2.0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	fl_close(other);
	alarm(0);
}

/* ---- hostile nodes -------------------------------------------------------- */

static void test_hostile_nodes(void **state)
{
	fl_lock *lk = open_lock(HB, STALE);
	char p[700];
	struct stat st;
	double t0;

	(void)state;
	alarm(30);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0); /* creates the layout */
	assert_int_equal(fl_release(lk, 0), 0);
	/* A FIFO at .write: readers ignore non-regular nodes (Python's rule);
	 * nothing ever opens it for a blocking read. */
	assert_int_equal(mkfifo(sidecar(".write"), 0600), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	/* Garbage in readers/: a FIFO, a symlink to a FIFO, an unparsable file, a
	 * directory, a housekeeping name. */
	snprintf(p, sizeof(p), "%s/fifo.1", sidecar(".readers"));
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/link.2", sidecar(".readers"));
	assert_int_equal(symlink(sidecar(".write"), p), 0);
	snprintf(p, sizeof(p), "%s/junk.3", sidecar(".readers"));
	fl_test_write_str(p, "\x01\x02 not a marker");
	snprintf(p, sizeof(p), "%s/dir.4", sidecar(".readers"));
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/.hidden", sidecar(".readers"));
	fl_test_write_str(p, "x");
	/* The writer breaks the FIFO at .write and every garbage reader entry
	 * once unchanged for stale_threshold; it never hangs. */
	t0 = fl__now_mono();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	assert_true(fl__now_mono() - t0 >= STALE);
	check_record(sidecar(".write"));
	snprintf(p, sizeof(p), "%s/fifo.1", sidecar(".readers"));
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/junk.3", sidecar(".readers"));
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/.hidden", sidecar(".readers"));
	assert_int_equal(lstat(p, &st), 0); /* not ours to judge */
	assert_int_equal(fl_release(lk, 0), 0);
	/* A symlink in place of readers/ is refused with a clear message. */
	{
		char cmd[800];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sidecar(".readers"));
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(symlink(tdir, sidecar(".readers")), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ENOTDIR);
	assert_non_null(strstr(fl_errmsg(lk), "refusing"));
	unlink(sidecar(".readers"));
	/* A symlink at .state never makes us write through it. */
	assert_int_equal(symlink("/nonexistent-target", sidecar(".state")), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 10), 0);
	assert_int_equal(lstat("/nonexistent-target", &st), -1);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	alarm(0);
}

/* ---- compromise noticed by the heartbeat ---------------------------------- */

static int comp_fd = -1;

static void comp_cb(fl_lock *lk, int reason, void *arg)
{
	char c = (char)('0' + reason);

	(void)lk;
	(void)arg;
	if (write(comp_fd, &c, 1) != 1)
		abort();
}

static void test_heartbeat_reports_loss(void **state)
{
	struct fl_options o;
	fl_lock *lk;
	int fds[2];
	char c;
	DIR *d;
	struct dirent *de;

	(void)state;
	alarm(20);
	assert_int_equal(pipe(fds), 0);
	comp_fd = fds[1];
	opts(&o, 0.05, 0.5);
	o.on_compromise = comp_cb;
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	d = opendir(sidecar(".readers"));
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[1024];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", sidecar(".readers"), de->d_name);
		assert_int_equal(unlink(p), 0);
	}
	closedir(d);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, '0' + FL_COMPROMISE_MISSING);
	assert_false(fl_is_valid(lk));
	assert_true(fl_is_locked(lk));
	assert_int_equal(fl_release(lk, 0), 0);

	/* A writer whose marker is replaced by someone else's. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_true(fl_is_valid(lk));
	unlink(sidecar(".write"));
	fl_test_write_str(sidecar(".write"), "ffffffffffffffffffffffffffffffff\n1\nother\n");
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, '0' + FL_COMPROMISE_REPLACED);
	assert_false(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	/* The successor's marker is left alone. */
	{
		struct stat st;
		assert_int_equal(lstat(sidecar(".write"), &st), 0);
		unlink(sidecar(".write"));
	}
	fl_close(lk);
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

/* ---- transient refresh failures (fault injection through fl__sys) ------ */

static atomic_int fail_touch;

static int flaky_futimens(int fd, const struct timespec t[2])
{
	if (atomic_load(&fail_touch)) {
		errno = ESTALE;
		return -1;
	}
	return futimens(fd, t);
}

static void test_transient_refresh_errors(void **state)
{
	struct fl_options o;
	fl_lock *lk;
	int fds[2];
	char c;
	double t0;

	(void)state;
	alarm(20);
	assert_int_equal(pipe(fds), 0);
	comp_fd = fds[1];
	fl__sys.futimens = flaky_futimens; /* before any beat: ordered by the registry mutex */
	opts(&o, 0.05, 0.5);
	o.on_compromise = comp_cb;
	assert_int_equal(fl_open(&lk, lpath, FL_SOFT_RW, &o), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	/* A blip shorter than stale_threshold is retried and forgotten. */
	atomic_store(&fail_touch, 1);
	fl__sleep_until(fl__now_mono() + 0.2);
	atomic_store(&fail_touch, 0);
	fl__sleep_until(fl__now_mono() + 0.6);
	assert_true(fl_is_valid(lk));
	/* Failures that last stale_threshold: the lock counts as lost. */
	t0 = fl__now_mono();
	atomic_store(&fail_touch, 1);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, '0' + FL_COMPROMISE_REFRESH_FAILED);
	assert_true(fl__now_mono() - t0 >= 0.5 - 0.05);
	assert_false(fl_is_valid(lk));
	atomic_store(&fail_touch, 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	fl__sys_reset();
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

/* ---- scale: 10,000 held read locks, one heartbeat thread ----------------- */

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[300], comm[32] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		/* Count our heartbeat threads only: sanitizers add their own. */
		snprintf(p, sizeof(p), "/proc/self/task/%.200s/comm", de->d_name);
		f = fopen(p, "re");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL && strncmp(comm, "fl-heartbeat", 12) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void test_ten_thousand_readers(void **state)
{
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	enum { N = 1000 }; /* sanitizers slow every call tenfold */
#else
	enum { N = 10000 };
#endif
	fl_lock **lk = calloc(N, sizeof(*lk));
	struct dirent *de;
	double t_done, end;
	int stale_left, n;
	DIR *d;

	(void)state;
	alarm(90);
	assert_non_null(lk);
	for (int i = 0; i < N; i++) {
		lk[i] = open_lock(1.0, 30.0);
		assert_int_equal(fl_acquire(lk[i], FL_SHARED, 0), 0);
	}
	t_done = fl__now_wall();
	assert_int_equal(count_threads(), 1); /* one heartbeat thread for all */
	/* Every marker gets refreshed after the last acquire. */
	end = fl__now_mono() + 20;
	do {
		fl__sleep_until(fl__now_mono() + 0.5);
		stale_left = 0;
		n = 0;
		d = opendir(sidecar(".readers"));
		assert_non_null(d);
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			if (de->d_name[0] == '.')
				continue;
			n++;
			assert_int_equal(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
			if (fl__mtime(&st) < t_done)
				stale_left++;
		}
		closedir(d);
	} while (stale_left > 0 && fl__now_mono() < end);
	assert_int_equal(n, N);
	assert_int_equal(stale_left, 0);
	assert_int_equal(count_threads(), 1);
	for (int i = 0; i < N; i++)
		assert_true(fl_is_valid(lk[i]));
	for (int i = 0; i < N; i++) {
		assert_int_equal(fl_release(lk[i], 0), 0);
		fl_close(lk[i]);
	}
	free(lk);
	alarm(0);
}

/* ---- fork ------------------------------------------------------------------ */

static void test_fork_invalidates(void **state)
{
	fl_lock *lk = open_lock(HB, STALE);
	pid_t pid;
	int st;

	(void)state;
	alarm(20);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (fl_acquire(lk, FL_SHARED, 0) != -ECHILD)
			_exit(1);
		if (fl_release(lk, 0) != 0)
			_exit(2);
		if (fl_is_locked(lk))
			_exit(3);
		fl_close(lk); /* must leave the parent's marker alone */
		if (count_threads() != 0)
			_exit(4); /* no heartbeat thread in the child */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	check_record(sidecar(".write"));
	/* The parent still holds it: a peer cannot get in. */
	{
		fl_lock *peer = open_lock(HB, STALE);
		assert_int_equal(fl_acquire(peer, FL_SHARED, 2 * STALE), -ETIMEDOUT);
		fl_close(peer);
	}
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	alarm(0);
}

/* ---- inspect and break -------------------------------------------------- */

static void test_inspect_and_break(void **state)
{
	struct fl_holder h = { .size = sizeof(h) };
	struct fl_options o;
	struct kid k;
	struct stat st;

	(void)state;
	alarm(20);
	opts(&o, HB, STALE);
	assert_int_equal(fl_inspect(lpath, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_FREE);
	assert_int_equal(fl_break(lpath, FL_SOFT_RW, &o, 0, NULL), -ENOENT);
	start_holder(&k, FL_EXCLUSIVE, HB, STALE);
	assert_int_equal(fl_inspect(lpath, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_HELD);
	assert_int_equal(h.pid, k.pid);
	assert_int_equal(h.writers, 1);
	assert_int_equal(h.mode, FL_EXCLUSIVE);
	assert_int_equal(h.alive, 1);
	assert_true(h.same_host);
	assert_true(h.age >= 0 && h.age < 5);
	assert_int_equal(fl_break(lpath, FL_SOFT_RW, &o, 0, NULL), -EBUSY);
	kid_kill(&k);
	/* Same host, pid gone: provably stale. */
	assert_int_equal(fl_inspect(lpath, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_STALE);
	assert_int_equal(h.alive, 0);
	assert_int_equal(fl_break(lpath, FL_SOFT_RW, &o, 0, NULL), 0);
	assert_int_equal(lstat(sidecar(".write"), &st), -1);
	/* Force breaks a live one. */
	start_holder(&k, FL_SHARED, HB, STALE);
	assert_int_equal(fl_inspect(lpath, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.readers, 1);
	assert_int_equal(h.mode, FL_SHARED);
	assert_int_equal(fl_break(lpath, FL_SOFT_RW, &o, 0, NULL), -EBUSY);
	assert_int_equal(fl_break(lpath, FL_SOFT_RW, &o, FL_FORCE, NULL), 0);
	assert_int_equal(kid_get(&k), 'c'); /* the holder learns it */
	assert_int_equal(fl_inspect(lpath, FL_SOFT_RW, &o, &h), 0);
	assert_int_equal(h.state, FL_HOLDER_FREE);
	stop_holder(&k);
	alarm(0);
}

/* Under TSan, fork children of this multi-threaded test start threads:
 * re-run ourselves with the option that allows it. */
static void tsan_reexec(char **argv)
{
#if defined(__SANITIZE_THREAD__)
	const char *o = getenv("TSAN_OPTIONS");

	if (o == NULL || strstr(o, "die_after_fork=0") == NULL) {
		char buf[2048];
		snprintf(buf, sizeof(buf), "%s%sdie_after_fork=0", o ? o : "", o ? " " : "");
		setenv("TSAN_OPTIONS", buf, 1);
		execv("/proc/self/exe", argv);
	}
#else
	(void)argv;
#endif
}

/* fl__adopt: a dead taker's P.write and reader marker (common.c). */
static void test_adopt(void **state)
{
	char w[600], r[600];
	struct fl_options o;

	(void)state;
	opts(&o, 0.2, 0.6);
	snprintf(w, sizeof(w), "%s.w", lpath);
	snprintf(r, sizeof(r), "%s.r", lpath);
	fl_test_adopt(w, FL_SOFT_RW, &o, FL_EXCLUSIVE, 0.6);
	fl_test_adopt(r, FL_SOFT_RW, &o, FL_SHARED, 0.6);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_and_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writers_counter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_writer_blocks_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_withdraws_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_writer_evicted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_reader_evicted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_short_keeps_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_long_writer_compromised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stopped_long_reader_compromised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphaned_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_skew, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_reports_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transient_refresh_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_invalidates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inspect_and_break, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ten_thousand_readers, setup, teardown),
	};

	if (getenv("FL_TEST_FILTER"))
		cmocka_set_test_filter(getenv("FL_TEST_FILTER"));
	(void)argc;
	tsan_reexec(argv);
	return cmocka_run_group_tests_name("softrw", tests, NULL, NULL);
}
