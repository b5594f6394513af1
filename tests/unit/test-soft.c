/* SPDX-License-Identifier: MIT */
/*
 * test-soft.c -- the soft kind: exact marker bytes, exclusion across
 * processes, stale detection (dead, recycled, other host, malformed,
 * lifetime), hostile nodes at the path, write faults and rollback,
 * identity-checked release, inspection and breaking.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"
#include "sys.h"

/* Sets a node's mtime `ago` seconds in the past (negative: future). */
static void age(const char *p, double ago)
{
	struct timespec ts[2];
	double t = fl_test_now(); /* any clock: only the difference to "now" matters */

	(void)t;
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= (time_t)ago;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* A pid that is certainly dead: a reaped child's. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(0);
	waitpid(pid, &st, 0);
	return pid;
}

static void test_soft_marker_bytes(void **state)
{
	const char *p = fl_test_path("bytes");
	char buf[512], want[512], host[256], tok[96];
	fl_lock *lk = fl_test_open(p, FL_SOFT, NULL);
	struct stat st;

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_test_read_file(p, buf, sizeof(buf));
	gethostname(host, sizeof(host));
	assert_int_equal(fl__start_token(getpid(), tok, sizeof(tok)), 0);
	snprintf(want, sizeof(want), "%d\n%s\n%s\n", (int)getpid(), host, tok);
	assert_string_equal(buf, want);
	assert_true(strlen(tok) > 20); /* (boot_id << 64) | starttime is ~58 digits */
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	fl_close(lk);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_soft_counter(void **state)
{
	const char *lock = fl_test_path("lock"), *ctr = fl_test_path("ctr");
	char buf[64];
	pid_t pids[6];
	FILE *f;

	for (int i = 0; i < 6; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			execl(fl_test_helper("fl-counter"), "fl-counter", "-t", "soft", "-n", "150",
			      "-o", "poll_interval=0.001", lock, ctr, (char *)NULL);
			_exit(127);
		}
	}
	for (int i = 0; i < 6; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	f = fopen(ctr, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(atol(buf), 900);
}

static void test_soft_killed_holder_recovered(void **state)
{
	const char *p = fl_test_path("killed");
	struct fl_options o;
	struct fl_child h;
	char line[256];
	fl_lock *lk;

	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_options_init(&o);
	o.poll_interval = 0.01;
	lk = fl_test_open(p, FL_SOFT, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_child_kill(&h);
	assert_int_equal(access(p, F_OK), 0); /* the crash left its marker */
	/* The next attempt proves the holder dead and takes over at once. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

static void test_soft_other_host_never_broken(void **state)
{
	const char *p = fl_test_path("otherhost");
	char rec[128], buf[256];
	fl_lock *lk;

	snprintf(rec, sizeof(rec), "%d\nanother-host.example\n12345\n", (int)dead_pid());
	fl_test_write_file(p, rec, strlen(rec));
	age(p, 3600);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.1), -ETIMEDOUT);
	fl_test_read_file(p, buf, sizeof(buf));
	assert_string_equal(buf, rec);
	{
		struct fl_holder who = { .size = sizeof(who) };
		assert_int_equal(fl_inspect(p, FL_SOFT, NULL, &who), 0);
		assert_int_equal(who.state, FL_HOLDER_HELD);
		assert_int_equal(who.same_host, 0);
		assert_int_equal(who.alive, -1);
		assert_string_equal(who.host, "another-host.example");
		assert_int_equal(fl_break(p, FL_SOFT, NULL, 0, NULL), -EBUSY);
		assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), 0);
		assert_int_equal(access(p, F_OK), -1);
	}
	fl_close(lk);
}

static void test_soft_recycled_pid(void **state)
{
	const char *p = fl_test_path("recycled");
	char rec[512], host[256], tok[96];
	fl_lock *lk = fl_test_open(p, FL_SOFT, NULL);

	gethostname(host, sizeof(host));
	/* Our parent is alive; a wrong start token proves the pid was recycled. */
	snprintf(rec, sizeof(rec), "%d\n%s\n999\n", (int)getppid(), host);
	fl_test_write_file(p, rec, strlen(rec));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	/* The right token: alive, never broken. */
	assert_int_equal(fl__start_token(getppid(), tok, sizeof(tok)), 0);
	snprintf(rec, sizeof(rec), "%d\n%s\n%s\n", (int)getppid(), host, tok);
	fl_test_write_file(p, rec, strlen(rec));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	/* No token: pid-only liveness, alive. */
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)getppid(), host);
	fl_test_write_file(p, rec, strlen(rec));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	/* No token, dead pid: broken. */
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead_pid(), host);
	fl_test_write_file(p, rec, strlen(rec));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

static void test_soft_malformed_after_2s(void **state)
{
	static const char *const bad[] = { "garbage", "1\n2\n3\n4\n", "0\nh\n", "-1\nh\n",
					   "2147483648\nh\n", "12x\nh\n", "5\nh\nnotanumber\n",
					   "\xff\xfe\n" };
	char buf[64];
	fl_lock *lk;

	/* Empty: a peer crashed between create and write; broken after 2 s. */
	{
		const char *p = fl_test_path("empty");
		fl_test_write_file(p, "", 0);
		lk = fl_test_open(p, FL_SOFT, NULL);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
		age(p, 3);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		fl_close(lk);
	}
	/* Unparsable: contention while young (being written?), then not a
	 * marker: refused, never broken (stricter than Python). */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = fl_test_path("malformed");
		fl_test_write_file(p, bad[i], strlen(bad[i]));
		lk = fl_test_open(p, FL_SOFT, NULL);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
		age(p, 3);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EEXIST);
		assert_non_null(strstr(fl_errmsg(lk), "not a soft lock marker"));
		assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -EEXIST);
		fl_test_read_file(p, buf, sizeof(buf));
		assert_string_equal(buf, bad[i]);
		fl_close(lk);
		unlink(p);
	}
	/* Oversized (1 MiB): refused at once, even young, even forced. */
	{
		const char *p = fl_test_path("huge");
		char *big = malloc(1 << 20);
		struct stat st;
		memset(big, '7', 1 << 20);
		fl_test_write_file(p, big, 1 << 20);
		free(big);
		lk = fl_test_open(p, FL_SOFT, NULL);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -EEXIST);
		assert_non_null(strstr(fl_errmsg(lk), "larger than any lock marker"));
		assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -EEXIST);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, 1 << 20);
		fl_close(lk);
	}
}

static void test_soft_strict_sentinel_never_broken(void **state)
{
	const char *p = fl_test_path("sentinel");
	fl_lock *lk;

	fl_test_write_file(p, fl__strict_sentinel, FL__STRICT_SENTINEL_LEN);
	age(p, 3600);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -EBUSY);
	fl_close(lk);
}

static void test_soft_hostile_nodes(void **state)
{
	const char *p, *target;
	fl_lock *lk;
	char buf[64];

	/* Symlink, FIFO, socket: never markers, refused at once and left
	 * alone (Python renames them away after 2 s); the target is never
	 * touched. */
	target = fl_test_path("target");
	fl_test_write_file(target, "precious", 8);
	p = fl_test_path("symlink");
	assert_int_equal(symlink(target, p), 0);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -EEXIST);
	age(p, 3);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -EEXIST);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -EEXIST);
	fl_close(lk);
	assert_int_equal(readlink(p, buf, sizeof(buf)) > 0, 1);
	fl_test_read_file(target, buf, sizeof(buf));
	assert_string_equal(buf, "precious");
	/* FIFO: never blocks the reader. */
	p = fl_test_path("fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EEXIST);
	age(p, 3);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EEXIST);
	fl_close(lk);
	assert_int_equal(access(p, F_OK), 0);
	/* Socket. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		p = fl_test_path("sock");
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
		if (strlen(p) < sizeof(sa.sun_path) && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			lk = fl_test_open(p, FL_SOFT, NULL);
			assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EEXIST);
			fl_close(lk);
			assert_int_equal(access(p, F_OK), 0);
		}
		close(s);
	}
	/* Directory: a clear error. */
	p = fl_test_path("dir");
	mkdir(p, 0755);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -EISDIR);
	assert_non_null(strstr(fl_errmsg(lk), "Is a directory [soft]"));
	fl_close(lk);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -EEXIST);
	assert_int_equal(rmdir(p), 0); /* still there, still a directory */
}

static int readonly_child(void *arg)
{
	const char *p = arg;
	fl_lock *lk;
	int r;

	if (fl_open(&lk, p, FL_SOFT, NULL) != 0)
		return 10;
	r = fl_acquire(lk, FL_EXCLUSIVE, -1);
	if (r != -EACCES)
		return 11;
	if (strstr(fl_errmsg(lk), p) == NULL)
		return 12;
	fl_close(lk);
	return 0;
}

static void test_soft_readonly(void **state)
{
	const char *p = fl_test_path("ro");
	char sub[4096];

	fl_test_write_file(p, "1\nx\n", 4);
	chmod(p, 0444);
	assert_int_equal(fl_test_as_nobody(readonly_child, (void *)(uintptr_t)p), 0);
	snprintf(sub, sizeof(sub), "%s/rodir", fl_test_dir);
	mkdir(sub, 0555);
	chmod(sub, 0555);
	strcat(sub, "/x.lock");
	assert_int_equal(fl_test_as_nobody(readonly_child, sub), 0);
}

static void test_soft_lifetime(void **state)
{
	const char *p = fl_test_path("lifetime");
	struct fl_options o;
	struct fl_child h;
	char line[256];
	fl_lock *lk;

	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl_options_init(&o);
	o.lifetime = 60;
	lk = fl_test_open(p, FL_SOFT, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	age(p, 120); /* a live holder past its lifetime is broken anyway */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	assert_int_equal(fl_child_finish(&h), 0);
}

static ssize_t (*real_write)(int, const void *, size_t);
static int write_mode;

static ssize_t fault_write(int fd, const void *buf, size_t n)
{
	switch (write_mode) {
	case 1:
		errno = ENOSPC;
		return -1;
	case 2:
		return real_write(fd, buf, n > 0 ? 1 : 0); /* one byte at a time */
	case 3:
		return 0; /* no progress */
	default:
		return real_write(fd, buf, n);
	}
}

static void test_soft_write_faults(void **state)
{
	const char *p = fl_test_path("faults");
	char buf[512], want[512];
	fl_lock *lk = fl_test_open(p, FL_SOFT, NULL);

	real_write = fl__sys.write;
	fl__sys.write = fault_write;
	write_mode = 1;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ENOSPC);
	assert_non_null(strstr(fl_errmsg(lk), "write("));
	assert_non_null(strstr(fl_errmsg(lk), "No space left on device [soft]"));
	assert_int_equal(access(p, F_OK), -1); /* no half-written marker left */
	assert_int_equal(fl_is_locked(lk), 0);
	write_mode = 3;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EIO);
	assert_int_equal(access(p, F_OK), -1);
	write_mode = 2;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_test_read_file(p, buf, sizeof(buf));
	assert_true(fl__p1_format(want, sizeof(want)) > 0);
	assert_string_equal(buf, want);
	fl_close(lk);
}

static void test_soft_release_spares_successor(void **state)
{
	const char *p = fl_test_path("successor");
	char buf[64];
	fl_lock *lk = fl_test_open(p, FL_SOFT, NULL);

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	/* Our marker was broken and a successor created its own. */
	assert_int_equal(unlink(p), 0);
	fl_test_write_file(p, "successor", 9);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_test_read_file(p, buf, sizeof(buf));
	assert_string_equal(buf, "successor");
	fl_close(lk);
}

static void test_soft_inspect_and_break(void **state)
{
	const char *p = fl_test_path("inspect");
	struct fl_holder who;
	struct fl_child h;
	char line[256], host[256], rec[512];

	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(p, FL_SOFT, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_FREE);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, 0, NULL), -ENOENT);
	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_int_equal(fl_inspect(p, FL_SOFT, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.pid, atoi(line + 6));
	gethostname(host, sizeof(host));
	assert_string_equal(who.host, host);
	assert_int_equal(who.alive, 1);
	assert_true(who.age >= 0 && who.age < 60);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, 0, NULL), -EBUSY);
	assert_non_null(strstr(fl_errmsg(NULL), "not provably stale"));
	fl_child_kill(&h);
	assert_int_equal(fl_inspect(p, FL_SOFT, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_STALE);
	assert_int_equal(who.alive, 0);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, 0, NULL), 0);
	assert_int_equal(access(p, F_OK), -1);
	/* A live holder broken by force. */
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)getppid(), host);
	fl_test_write_file(p, rec, strlen(rec));
	assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), 0);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_soft_break_leaves_no_break_files(void **state)
{
	char sub[4096], rec[512], host[256];
	fl_lock *lk;
	int n = 0;

	snprintf(sub, sizeof(sub), "%s/brk", fl_test_dir);
	mkdir(sub, 0755);
	strcat(sub, "/x.lock");
	gethostname(host, sizeof(host));
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead_pid(), host);
	fl_test_write_file(sub, rec, strlen(rec));
	lk = fl_test_open(sub, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	{
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/brk", fl_test_dir);
		DIR *d = opendir(dir);
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				n++;
		closedir(d);
	}
	assert_int_equal(n, 0);
}

/* Breaks of one path take turns through the claim "<path>.break": while a
 * live process holds it, a dead holder's marker is left alone (contention,
 * and fl_break says who is in the way); a claim left by a breaker that died
 * is taken over, and nothing is left behind. */
static void test_soft_break_claim(void **state)
{
	char dir[4096], p[4200], claim[4300], rec[512], host[256], got[512];
	fl_lock *lk;
	DIR *d;
	struct dirent *e;
	int n = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/claim", fl_test_dir);
	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/x.lock", dir);
	snprintf(claim, sizeof(claim), "%s.break", p);
	gethostname(host, sizeof(host));
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead_pid(), host);
	fl_test_write_file(p, rec, strlen(rec));
	/* A live breaker: this very process. */
	snprintf(got, sizeof(got), "%d\n%s\n%s\n", (int)getpid(), host, fl__self_token());
	fl_test_write_file(claim, got, strlen(got));
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_break(p, FL_SOFT, NULL, FL_FORCE, NULL), -EBUSY);
	assert_non_null(strstr(fl_errmsg(NULL), "another process is breaking it"));
	fl_test_read_file(p, got, sizeof(got));
	assert_string_equal(got, rec);
	/* A breaker that died holding it. */
	snprintf(got, sizeof(got), "%d\n%s\n", (int)dead_pid(), host);
	fl_test_write_file(claim, got, strlen(got));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(access(claim, F_OK), -1);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	assert_int_equal(n, 1); /* our marker alone */
	assert_int_equal(fl_release(lk, 0), 0);
	/* Data at the claim's name is no claim: neither honoured (the dead
	 * holder's marker is broken) nor touched. */
	fl_test_write_file(p, rec, strlen(rec));
	fl_test_write_file(claim, "precious data\n", 14);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_test_read_file(claim, got, sizeof(got));
	assert_string_equal(got, "precious data\n");
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

/* A breaker stopped between its last look at the stale marker and its
 * rename (the window of the old race): it holds the claim, so a second
 * contender that judges the same dead marker stale leaves it alone instead
 * of breaking it, taking the lock, and having its fresh marker renamed away
 * by the first.  Processes hand over through pipes. */
static int (*real_rename)(const char *, const char *);
static int stop_w = -1, go_r = -1;

static int stopping_rename(const char *from, const char *to)
{
	char c = 'r';

	if (stop_w >= 0) {
		assert_int_equal(write(stop_w, &c, 1), 1);
		assert_int_equal(read(go_r, &c, 1), 1);
		stop_w = -1;
	}
	return real_rename(from, to);
}

static void test_soft_breaks_take_turns(void **state)
{
	char p[4200], rec[512], host[256], got[512], c;
	int stop[2], go[2], st;
	fl_lock *lk;
	pid_t a;

	(void)state;
	snprintf(p, sizeof(p), "%s/turns.lock", fl_test_dir);
	gethostname(host, sizeof(host));
	snprintf(rec, sizeof(rec), "%d\n%s\n", (int)dead_pid(), host);
	fl_test_write_file(p, rec, strlen(rec));
	assert_int_equal(pipe(stop), 0);
	assert_int_equal(pipe(go), 0);
	a = fork();
	assert_true(a >= 0);
	if (a == 0) {
		fl_lock *la = NULL;
		int r;

		alarm(20); /* gone even if the parent fails before letting it go */
		real_rename = fl__sys.rename;
		fl__sys.rename = stopping_rename;
		stop_w = stop[1];
		go_r = go[0];
		if (fl_open(&la, p, FL_SOFT, NULL) != 0)
			_exit(2);
		r = fl_acquire(la, FL_EXCLUSIVE, 0);
		if (r == 0)
			r = fl_release(la, 0);
		_exit(r == 0 ? 0 : 1);
	}
	/* A is inside its rename of the dead marker, claim in hand. */
	assert_int_equal(read(stop[0], &c, 1), 1);
	lk = fl_test_open(p, FL_SOFT, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_test_read_file(p, got, sizeof(got));
	assert_string_equal(got, rec); /* still the dead marker */
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(waitpid(a, &st, 0), a);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* A broke it, held and released: the path is free and clean. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	close(stop[0]);
	close(stop[1]);
	close(go[0]);
	close(go[1]);
}

/* A waiter wakes when the marker goes, not at its next poll: with a 60 s
 * poll interval the acquire would otherwise outlast the test's alarm. */
static void test_soft_wakes_on_release(void **state)
{
	const char *p = fl_test_path("wake");
	struct fl_options o;
	struct fl_child h;
	char line[256];
	fl_lock *lk;
	pid_t pid;
	int st, fds[2];

	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		fl_options_init(&o);
		o.poll_interval = 60;
		if (fl_open(&lk, p, FL_SOFT, &o) != 0 || fl_acquire(lk, FL_EXCLUSIVE, 0) != -ETIMEDOUT)
			_exit(1);
		if (write(fds[1], "w", 1) != 1) /* about to wait */
			_exit(2);
		alarm(20);
		_exit(fl_acquire(lk, FL_EXCLUSIVE, 120) == 0 ? 0 : 3);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], line, 1), 1);
	close(fds[0]);
	fl_child_say(&h, "release");
	fl_child_line(&h, line, sizeof(line));
	assert_int_equal(fl_child_finish(&h), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_soft_marker_bytes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_killed_holder_recovered, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_other_host_never_broken, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_recycled_pid, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_malformed_after_2s, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_strict_sentinel_never_broken, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_hostile_nodes, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_readonly, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_lifetime, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_write_faults, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_release_spares_successor, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_inspect_and_break, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_break_leaves_no_break_files, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_wakes_on_release, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_break_claim, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_soft_breaks_take_turns, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("soft", tests, fl_test_group_setup, fl_test_group_teardown);
}
