/* SPDX-License-Identifier: MIT */
/*
 * test-lease.c -- the lease kind: exact protocol-2 bytes (Python's float
 * repr), the N x M counter, expiry of a crashed holder after lease_duration
 * and not before, frozen holders (SIGSTOP) shorter and longer than the
 * lease, clock skew, settings mismatch, foreign records, heartbeat
 * compromise reports, options, inspection and breaking.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
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

static fl_lock *open_lease(const char *path, double duration)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.lease_duration = duration;
	o.poll_interval = 0.01;
	assert_int_equal(fl_open(&lk, path, FL_LEASE, &o), 0);
	return lk;
}

/* Sets a node's mtime `ago` seconds in the past (negative: the future). */
static void set_age(const char *p, double ago)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= (time_t)ago;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void holder_lease(struct fl_child *h, const char *p, const char *dur)
{
	char line[256], opt[64];

	snprintf(opt, sizeof(opt), "lease_duration=%s", dur);
	fl_holder_start(h, line, sizeof(line), "-t", "lease", "-o", opt, p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
}

static void test_lease_float_repr(void **state)
{
	const struct {
		double v;
		const char *s;
	} t[] = {
		{ 30.0, "30.0" },
		{ 0.6, "0.6" },
		{ 1.0, "1.0" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 123.456, "123.456" },
		{ 1e-5, "1e-05" },
		{ 2.5e-7, "2.5e-07" },
		{ 0.0001, "0.0001" },
		{ 1e15, "1000000000000000.0" },
		{ 1e16, "1e+16" },
		{ 1.5e300, "1.5e+300" },
		{ 86400.0, "86400.0" },
		{ 1.0 / 3, "0.3333333333333333" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		fl__py_float_repr(t[i].v, buf, sizeof(buf));
		assert_string_equal(buf, t[i].s);
	}
}

static void test_lease_record_bytes(void **state)
{
	const char *p = fl_test_path("bytes"), *p2 = fl_test_path("bytes30");
	char buf[1024], host[256], tok[96], want[1024];
	fl_lock *lk = open_lease(p, 0.6), *lk30 = open_lease(p2, 0);
	const char *t;

	gethostname(host, sizeof(host));
	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_test_read_file(p, buf, sizeof(buf));
	t = strstr(buf, "token=");
	assert_non_null(t);
	t += 6;
	for (int i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", t[i]));
	snprintf(want, sizeof(want),
		 "filelock/2\npid=%d\nhost=%s\nmode=lease\ntoken=%.32s\nduration=0.6\nstart=%s\n",
		 (int)getpid(), host, t, tok);
	assert_string_equal(buf, want);
	/* Default duration: Python writes repr(30.0). */
	assert_int_equal(fl_acquire(lk30, FL_EXCLUSIVE, 0), 0);
	fl_test_read_file(p2, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\nduration=30.0\n"));
	fl_close(lk);
	fl_close(lk30);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(access(p2, F_OK), -1);
}

static void test_lease_counter(void **state)
{
	const char *lock = fl_test_path("lock"), *ctr = fl_test_path("ctr");
	char buf[64];
	pid_t pids[4];
	FILE *f;

	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			execl(fl_test_helper("fl-counter"), "fl-counter", "-t", "lease", "-n", "100",
			      "-o", "poll_interval=0.001", "-o", "lease_duration=5", lock, ctr,
			      (char *)NULL);
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

/*
 * A SIGKILLed holder that is not reaped stays a zombie: its pid answers
 * kill(pid, 0) and its start token is unchanged, exactly like a holder on
 * another host.  Only the lease can free the path then.
 */
static void test_lease_killed_holder_expires_after_duration(void **state)
{
	const char *p = fl_test_path("killed");
	struct fl_child h;
	fl_lock *lk = open_lease(p, 0.6);
	double t0, took;
	int st;

	holder_lease(&h, p, "0.6");
	assert_int_equal(kill(h.pid, SIGKILL), 0);
	t0 = fl_test_now();
	/* Not before lease_duration of unchanged mtime. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	/* After it. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), 0);
	took = fl_test_now() - t0;
	assert_true(took >= 0.6);
	assert_true(took < 4.0); /* generous: shared CI machines stall */
	fl_close(lk);
	close(h.in);
	close(h.out);
	waitpid(h.pid, &st, 0);
}

static void test_lease_dead_holder_recovered_at_once(void **state)
{
	const char *p = fl_test_path("dead");
	struct fl_child h;
	fl_lock *lk = open_lease(p, 30);

	holder_lease(&h, p, "30");
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_child_kill(&h); /* killed and reaped: provably dead on this host */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

static void test_lease_frozen_shorter_keeps_it(void **state)
{
	const char *p = fl_test_path("frozen-short");
	struct fl_child h;
	char line[256];
	fl_lock *lk = open_lease(p, 1.5);

	holder_lease(&h, p, "1.5");
	assert_int_equal(kill(h.pid, SIGSTOP), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.6), -ETIMEDOUT);
	assert_int_equal(kill(h.pid, SIGCONT), 0);
	fl_child_say(&h, "valid");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "valid 1");
	/* Its heartbeat runs again: the contender still cannot get in. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	fl_child_say(&h, "release");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "released 0");
	assert_int_equal(fl_child_finish(&h), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

static void test_lease_frozen_longer_loses_it(void **state)
{
	const char *p = fl_test_path("frozen-long");
	struct fl_child h;
	char line[256];
	fl_lock *lk = open_lease(p, 0.6);
	double t0;

	holder_lease(&h, p, "0.6");
	assert_int_equal(kill(h.pid, SIGSTOP), 0);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), 0);
	assert_true(fl_test_now() - t0 >= 0.6);
	assert_int_equal(kill(h.pid, SIGCONT), 0);
	/* On resume its heartbeat finds our marker in place of its own. */
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "compromised 2"); /* FL_COMPROMISE_REPLACED */
	fl_child_say(&h, "valid");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "valid 0");
	/* Its release must not remove our marker. */
	fl_child_say(&h, "release");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "released 0");
	assert_int_equal(fl_child_finish(&h), 0);
	assert_int_equal(access(p, F_OK), 0);
	assert_true(fl_is_valid(lk));
	fl_close(lk);
}

static void test_lease_clock_skew_no_wrong_eviction(void **state)
{
	const char *p = fl_test_path("skew");
	struct fl_child h;
	char line[256];
	fl_lock *lk = open_lease(p, 30);
	int st;

	/* A live holder whose marker the server stamped: a fresh handle's one
	 * try asks the server for the marker's age and leaves it alone. */
	holder_lease(&h, p, "30");
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	/* A marker stamped 10 minutes in the server's future (a client that
	 * sets explicit times from a clock running ahead). */
	set_age(p, -600);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	fl_child_say(&h, "valid");
	fl_child_line(&h, line, sizeof(line));
	assert_string_equal(line, "valid 1");
	fl_child_say(&h, "release");
	fl_child_line(&h, line, sizeof(line));
	assert_int_equal(fl_child_finish(&h), 0);
	fl_close(lk);

	/* A crashed holder whose mtime is in the future still expires on our clock. */
	p = fl_test_path("skew-dead");
	lk = open_lease(p, 0.6);
	holder_lease(&h, p, "0.6");
	assert_int_equal(kill(h.pid, SIGKILL), 0);
	set_age(p, -600);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.3), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), 0);
	fl_close(lk);
	close(h.in);
	close(h.out);
	waitpid(h.pid, &st, 0);
}

static void test_lease_settings_mismatch(void **state)
{
	const char *p = fl_test_path("mismatch");
	struct fl_child h;
	fl_lock *lk = open_lease(p, 10);

	holder_lease(&h, p, "5");
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 1), -EINVAL);
	assert_non_null(strstr(fl_errmsg(lk), "lease settings mismatch"));
	assert_non_null(strstr(fl_errmsg(lk), "5.0s"));
	assert_non_null(strstr(fl_errmsg(lk), "10.0s"));
	/* Inspection judges by the holder's own duration and notes the mismatch. */
	{
		struct fl_holder who;
		memset(&who, 0, sizeof(who));
		who.size = sizeof(who);
		assert_int_equal(fl_inspect(p, FL_LEASE, NULL, &who), 0);
		assert_int_equal(who.state, FL_HOLDER_HELD);
		assert_int_equal(who.pid, h.pid);
		assert_non_null(strstr(who.detail, "lease settings mismatch"));
	}
	fl_child_kill(&h);
	fl_close(lk);
}

static void test_lease_foreign_records(void **state)
{
	char host[256], rec[512];
	const char *p;
	fl_lock *lk;
	pid_t dead;
	int st;

	gethostname(host, sizeof(host));
	/* The strict sentinel: never broken, however old. */
	p = fl_test_path("sentinel");
	fl_test_write_file(p, "1\nfilelock-strict-v1\0\n0\n", 24);
	set_age(p, 3600);
	lk = open_lease(p, 0.2);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -ETIMEDOUT);
	fl_close(lk);

	/* A protocol-2 owner of another mode: never broken by age. */
	p = fl_test_path("othermode");
	snprintf(rec, sizeof(rec), "filelock/2\npid=1\nhost=elsewhere\nmode=exclusive\n");
	fl_test_write_file(p, rec, strlen(rec));
	set_age(p, 3600);
	lk = open_lease(p, 0.2);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -ETIMEDOUT);
	fl_close(lk);

	/* A protocol-1 marker of a dead process on this host: broken at once. */
	dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, &st, 0);
	p = fl_test_path("p1dead");
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead, host);
	fl_test_write_file(p, rec, strlen(rec));
	lk = open_lease(p, 30);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);

	/* A protocol-1 marker from another host: never. */
	p = fl_test_path("p1other");
	fl_test_write_file(p, "1\nelsewhere\n", 12);
	set_age(p, 3600);
	lk = open_lease(p, 0.2);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -ETIMEDOUT);
	fl_close(lk);

	/* A lease of a dead process: broken at once. */
	p = fl_test_path("p2dead");
	snprintf(rec, sizeof(rec),
		 "filelock/2\npid=%d\nhost=%s\nmode=lease\ntoken=abc\nduration=30.0\n", (int)dead,
		 host);
	fl_test_write_file(p, rec, strlen(rec));
	lk = open_lease(p, 30);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

static void test_lease_malformed_after_2s(void **state)
{
	const char *p = fl_test_path("garbage");
	fl_lock *lk = open_lease(p, 30);
	double t0 = fl_test_now();

	char buf[64];

	/* Unparsable: contention for 2 s on our clock (the wall-clock age is
	 * irrelevant), then refused as not a marker and left alone. */
	fl_test_write_file(p, "not a marker\n", 13);
	set_age(p, -3600); /* in the server's future: only our own watch can age it */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.5), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), -EEXIST);
	assert_true(fl_test_now() - t0 >= 2.0);
	assert_non_null(strstr(fl_errmsg(lk), "not a lease lock marker"));
	fl_test_read_file(p, buf, sizeof(buf));
	assert_string_equal(buf, "not a marker\n");
	assert_int_equal(fl_break(p, FL_LEASE, NULL, FL_FORCE, NULL), -EEXIST);
	/* Empty: a crash between create and write; broken after 2 s. */
	fl_test_write_file(p, "", 0);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 5), 0);
	assert_true(fl_test_now() - t0 >= 2.0);
	fl_close(lk);
}

/* Python's parse_marker() rules, observed through fl_inspect. */
static void test_lease_record_parsing(void **state)
{
	const struct {
		const char *rec;
		int state;
	} t[] = {
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=30.0\n", FL_HOLDER_HELD },
		{ "filelock/2\r\npid=1\r\nhost=elsewhere\r\nmode=lease\r\ntoken=x\r\nduration=30\r\n", FL_HOLDER_HELD },
		{ "  \nfilelock/2\npid= 1 \nhost=elsewhere\nmode=lease\ntoken=\nduration=3e1\nnew=key\n\n", FL_HOLDER_HELD },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=exclusive\n", FL_HOLDER_HELD },
		{ "filelock/2\npid=1\nhost=h\xc3\xa9\nmode=lease\ntoken=x\nduration=30.0\nstart=12\n", FL_HOLDER_HELD },
		{ "filelock/2\npid=1\nhost=elsewhere\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=\nmode=lease\ntoken=x\nduration=30.0\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=0\nhost=elsewhere\nmode=lease\ntoken=x\nduration=30.0\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=x\nhost=elsewhere\nmode=lease\ntoken=x\nduration=30.0\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\nduration=30.0\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=nan\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=inf\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=-1\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=0x1p3\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=30.0\nstart=1a\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=elsewhere\nnoequals\nmode=lease\n", FL_HOLDER_MALFORMED },
		{ "filelock/3\npid=1\nhost=elsewhere\nmode=lease\ntoken=x\nduration=30.0\n", FL_HOLDER_MALFORMED },
		{ "filelock/2\npid=1\nhost=\xff\nmode=lease\ntoken=x\nduration=30.0\n", FL_HOLDER_MALFORMED },
	};
	struct fl_options o;

	fl_options_init(&o);
	o.lease_duration = 30;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *p = fl_test_path("parse");
		struct fl_holder who;

		fl_test_write_file(p, t[i].rec, strlen(t[i].rec));
		memset(&who, 0, sizeof(who));
		who.size = sizeof(who);
		assert_int_equal(fl_inspect(p, FL_LEASE, &o, &who), 0);
		if (who.state != t[i].state)
			fail_msg("record %zu: state %d, want %d (%s)", i, who.state, t[i].state,
				 who.detail);
		if (t[i].state == FL_HOLDER_HELD)
			assert_int_equal(who.pid, 1);
	}
}

/* Symlinks, FIFOs and directories at the path never hang or follow. */
static void test_lease_hostile_nodes(void **state)
{
	const char *target = fl_test_path("target");
	const char *sym = fl_test_path("sym"), *fifo = fl_test_path("fifo"), *dir = fl_test_path("dir");
	char buf[64];
	fl_lock *lk;

	fl_test_write_file(target, "precious\n", 9);
	assert_int_equal(symlink(target, sym), 0);
	lk = open_lease(sym, 30);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EEXIST); /* never a marker */
	fl_close(lk);
	fl_test_read_file(target, buf, sizeof(buf));
	assert_string_equal(buf, "precious\n");

	assert_int_equal(mkfifo(fifo, 0644), 0);
	lk = open_lease(fifo, 30);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EEXIST); /* no open of the FIFO */
	fl_close(lk);

	assert_int_equal(mkdir(dir, 0755), 0);
	lk = open_lease(dir, 30);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EISDIR);
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
 * later.  We learn that the waiter has made its attempt (and so is waiting)
 * from inotify: it reads our marker to judge it.
 */
static void test_lease_release_wakes_waiter(void **state)
{
	const char *p = fl_test_path("wake");
	fl_lock *lk = open_lease(p, 30);
	struct fl_child w;
	char line[256];
	double t0;
	int ifd;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	ifd = inotify_init1(IN_CLOEXEC);
	assert_true(ifd >= 0);
	assert_true(inotify_add_watch(ifd, p, IN_CLOSE_NOWRITE) >= 0);
	start_waiter(&w, p, (const char *[]){ "-t", "lease", "-o", "poll_interval=20", "-o", "lease_duration=30", NULL });
	assert_true(read(ifd, line, sizeof(line)) > 0); /* it judged our marker */
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

static int cb_pipe[2];

static void on_comp(fl_lock *lk, int reason, void *arg)
{
	char c = (char)reason;

	(void)lk;
	(void)arg;
	if (write(cb_pipe[1], &c, 1) != 1)
		abort();
}

static fl_lock *open_with_cb(const char *p, double dur)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.lease_duration = dur;
	o.on_compromise = on_comp;
	assert_int_equal(fl_open(&lk, p, FL_LEASE, &o), 0);
	return lk;
}

static void test_lease_marker_removed_reports_missing(void **state)
{
	const char *p = fl_test_path("missing");
	fl_lock *lk;
	char c;

	assert_int_equal(pipe(cb_pipe), 0);
	lk = open_with_cb(p, 0.6);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_true(fl_is_valid(lk));
	assert_int_equal(unlink(p), 0);
	assert_int_equal(read(cb_pipe[0], &c, 1), 1);
	assert_int_equal(c, FL_COMPROMISE_MISSING);
	assert_false(fl_is_valid(lk));
	assert_true(fl_is_locked(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	/* A fresh acquisition is valid again. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_true(fl_is_valid(lk));
	fl_close(lk);
	close(cb_pipe[0]);
	close(cb_pipe[1]);
}

static atomic_int futimens_fail;

/* Installed before the lock is taken (the table must not change while the
 * heartbeat thread may read it); fails once futimens_fail is set. */
static int futimens_eio(int fd, const struct timespec t[2])
{
	if (!atomic_load(&futimens_fail))
		return futimens(fd, t);
	errno = EIO;
	return -1;
}

static void test_lease_refresh_failed(void **state)
{
	const char *p = fl_test_path("refresh");
	fl_lock *lk;
	double t0;
	char c;

	assert_int_equal(pipe(cb_pipe), 0);
	lk = open_with_cb(p, 0.6);
	fl__sys.futimens = futimens_eio;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	atomic_store(&futimens_fail, 1);
	t0 = fl_test_now();
	assert_int_equal(read(cb_pipe[0], &c, 1), 1);
	/* Transient errors are retried until lease_duration - heartbeat_interval
	 * passed since the last success: the second failed beat reports it. */
	assert_true(fl_test_now() - t0 >= 0.2 - 0.01);
	/* Well before a third lease duration, even on a loaded machine. */
	if (fl_test_now() - t0 >= 1.8)
		fail_msg("reported after %.3fs", fl_test_now() - t0);
	assert_int_equal(c, FL_COMPROMISE_REFRESH_FAILED);
	assert_false(fl_is_valid(lk));
	fl_close(lk);
	fl__sys_reset();
	atomic_store(&futimens_fail, 0);
	assert_int_equal(access(p, F_OK), -1);
	close(cb_pipe[0]);
	close(cb_pipe[1]);
}

static void test_lease_heartbeat_keeps_it(void **state)
{
	const char *p = fl_test_path("beat");
	fl_lock *lk = open_lease(p, 1.2), *other = open_lease(p, 1.2);
	struct stat a, b;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(stat(p, &a), 0);
	/* Two lease durations of trying: the heartbeat keeps the lease alive. */
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 2.5), -ETIMEDOUT);
	assert_int_equal(stat(p, &b), 0);
	assert_true(b.st_mtim.tv_sec > a.st_mtim.tv_sec ||
		    (b.st_mtim.tv_sec == a.st_mtim.tv_sec && b.st_mtim.tv_nsec > a.st_mtim.tv_nsec));
	assert_true(fl_is_valid(lk));
	fl_close(lk);
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 0), 0);
	fl_close(other);
}

static void test_lease_options(void **state)
{
	const char *p = fl_test_path("opts");
	struct fl_options o;
	fl_lock *lk = NULL, *lk2 = NULL;

	fl_options_init(&o);
	o.lease_duration = -1;
	assert_int_equal(fl_open(&lk, p, FL_LEASE, &o), -EINVAL);
	fl_options_init(&o);
	o.lease_duration = 1;
	o.heartbeat_interval = 1;
	assert_int_equal(fl_open(&lk, p, FL_LEASE, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL),
			       "heartbeat_interval must be positive and below lease_duration, got 1.0"));
	fl_options_init(&o);
	o.stale_threshold = 3;
	assert_int_equal(fl_open(&lk, p, FL_LEASE, &o), -EINVAL);
	assert_non_null(strstr(fl_errmsg(NULL), "stale_threshold"));
	fl_options_init(&o);
	o.lifetime = 3;
	assert_int_equal(fl_open(&lk, p, FL_LEASE, &o), -EINVAL);
	/* Defaults filled in once; reopening a singleton compares the completed values. */
	fl_options_init(&o);
	o.flags = FL_SINGLETON;
	assert_int_equal(fl_open(&lk, p, FL_LEASE, &o), 0);
	assert_int_equal(fl_open(&lk2, p, FL_LEASE, &o), 0);
	assert_ptr_equal(lk, lk2);
	o.lease_duration = 30;
	o.heartbeat_interval = 10;
	assert_int_equal(fl_open(&lk2, p, FL_LEASE, &o), 0);
	fl_close(lk2);
	o.lease_duration = 60;
	o.heartbeat_interval = 0;
	assert_int_equal(fl_open(&lk2, p, FL_LEASE, &o), -EINVAL);
	assert_null(lk2);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ENOTSUP);
	fl_close(lk); /* the two successful opens of the singleton */
	fl_close(lk);
}

static void test_lease_inspect_and_break(void **state)
{
	const char *p = fl_test_path("inspect");
	struct fl_options o;
	struct fl_holder who;
	struct fl_child h;
	char line[256], host[256];

	holder_lease(&h, p, "30");
	fl_options_init(&o);
	o.lease_duration = 30;
	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(p, FL_LEASE, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.pid, h.pid);
	gethostname(host, sizeof(host));
	assert_string_equal(who.host, host);
	assert_true(strlen(who.start) > 20);
	assert_true(who.heartbeat_age >= 0 && who.heartbeat_age < 5);
	assert_int_equal(who.alive, 1);
	assert_true(who.same_host);
	assert_int_equal(fl_break(p, FL_LEASE, &o, 0, NULL), -EBUSY);
	assert_int_equal(fl_break(p, FL_LEASE, &o, FL_FORCE, NULL), 0);
	assert_int_equal(access(p, F_OK), -1);
	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(p, FL_LEASE, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_FREE);
	assert_int_equal(fl_break(p, FL_LEASE, &o, 0, NULL), -ENOENT);
	fl_child_kill(&h);
	/* A dead holder's lease is stale and breaks without force. */
	holder_lease(&h, p, "30");
	fl_child_kill(&h);
	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(p, FL_LEASE, &o, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_STALE);
	assert_int_equal(fl_break(p, FL_LEASE, &o, 0, NULL), 0);
	(void)line;
}

static void test_lease_fork_child_keeps_parent_marker(void **state)
{
	const char *p = fl_test_path("fork");
	fl_lock *lk = open_lease(p, 1.2), *other = open_lease(p, 1.2);
	pid_t pid;
	int st;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	pid = fork();
	if (pid == 0) {
		int ok = fl_acquire(lk, FL_EXCLUSIVE, 0) == -ECHILD;
		fl_close(lk);
		fl_close(other);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(access(p, F_OK), 0);
	/* The parent's heartbeat still runs. */
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 1.5), -ETIMEDOUT);
	assert_true(fl_is_valid(lk));
	fl_close(lk);
	fl_close(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lease_float_repr, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_record_bytes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_killed_holder_expires_after_duration, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_dead_holder_recovered_at_once, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_frozen_shorter_keeps_it, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_frozen_longer_loses_it, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_clock_skew_no_wrong_eviction, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_settings_mismatch, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_foreign_records, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_malformed_after_2s, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_record_parsing, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_hostile_nodes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_release_wakes_waiter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_marker_removed_reports_missing, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_refresh_failed, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_heartbeat_keeps_it, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_options, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_inspect_and_break, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_lease_fork_child_keeps_parent_marker, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("lease", tests, fl_test_group_setup, fl_test_group_teardown);
}
