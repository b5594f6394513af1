/* SPDX-License-Identifier: MIT */
/*
 * test-unix.c -- the flock kinds (unix, file): exclusion across processes,
 * file handling (mode, truncation, never unlinked), hostile paths, injected
 * faults (EINTR, unlinked inode, ENOSYS fallback), inspection.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"

/* N processes x M increments of one counter file end with exactly N*M. */
static void run_counter(const char *kind, int nproc, int iters)
{
	const char *lock = fl_test_path("ctr-lock");
	const char *ctr = fl_test_path("ctr");
	char n[16], buf[64];
	pid_t pids[16];
	FILE *f;

	snprintf(n, sizeof(n), "%d", iters);
	for (int i = 0; i < nproc; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			execl(fl_test_helper("fl-counter"), "fl-counter", "-t", kind, "-n", n, "-o",
			      "poll_interval=0.001", lock, ctr, (char *)NULL);
			_exit(127);
		}
	}
	for (int i = 0; i < nproc; i++) {
		int st;
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	f = fopen(ctr, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(atol(buf), (long)nproc * iters);
}

static void test_unix_counter(void **state)
{
	run_counter("unix", 6, 300);
}

static void test_file_counter(void **state)
{
	run_counter("file", 6, 300);
}

static void test_unix_file_kept_and_content(void **state)
{
	const char *p = fl_test_path("kept");
	struct fl_child h;
	char line[256], buf[32];
	fl_lock *lk;
	int fd;

	fl_holder_start(&h, line, sizeof(line), "-t", "unix", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	/* The holder's data in the lock file survives a loser's attempt. */
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
	chmod(p, 0640);
	lk = fl_test_open(p, FL_UNIX, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fd = open(p, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	{
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0640);
	}
	assert_int_equal(fl_child_finish(&h), 0);
	/* The winner truncates stale content; the file is kept on release. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	{
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, 0);
	}
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(access(p, F_OK), 0);
	fl_close(lk);
	assert_int_equal(access(p, F_OK), 0);
}

static void test_unix_mode(void **state)
{
	const char *p = fl_test_path("mode");
	struct fl_options o;
	struct stat st;
	fl_lock *lk;

	umask(077);
	fl_options_init(&o);
	o.mode = 0640;
	lk = fl_test_open(p, FL_UNIX, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640); /* exact, umask ignored */
	fl_close(lk);
	umask(022);
	p = fl_test_path("mode");
	lk = fl_test_open(p, FL_UNIX, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644); /* umask decides */
	fl_close(lk);
}

static void test_unix_hostile_paths(void **state)
{
	const char *p;
	fl_lock *lk;

	/* A directory. */
	p = fl_test_path("dir");
	mkdir(p, 0755);
	lk = fl_test_open(p, FL_UNIX, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EISDIR);
	assert_non_null(strstr(fl_errmsg(lk), "open("));
	assert_non_null(strstr(fl_errmsg(lk), "Is a directory [unix]"));
	fl_close(lk);
	/* A symlink is never followed. */
	p = fl_test_path("link");
	assert_int_equal(symlink("/etc/passwd", p), 0);
	lk = fl_test_open(p, FL_FILE, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ELOOP);
	assert_non_null(strstr(fl_errmsg(lk), "[file]"));
	fl_close(lk);
	/* A FIFO neither hangs nor is locked. */
	p = fl_test_path("fifo");
	assert_int_equal(mkfifo(p, 0644), 0);
	lk = fl_test_open(p, FL_UNIX, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -EINVAL);
	assert_non_null(strstr(fl_errmsg(lk), "a FIFO"));
	assert_int_equal(fl_acquire(lk, FL_SHARED, -1), -EINVAL);
	fl_close(lk);
}

static int readonly_child(void *arg)
{
	const char *p = arg;
	fl_lock *lk;
	int r;

	if (fl_open(&lk, p, FL_UNIX, NULL) != 0)
		return 10;
	r = fl_acquire(lk, FL_EXCLUSIVE, 0);
	if (r != -EACCES || strstr(fl_errmsg(lk), "Permission denied") == NULL)
		return 11;
	fl_close(lk);
	return 0;
}

static void test_unix_readonly(void **state)
{
	const char *p = fl_test_path("ro");
	char sub[4096];
	int fd;

	/* A read-only file of another user. */
	fd = open(p, O_CREAT | O_WRONLY, 0444);
	close(fd);
	chmod(p, 0444);
	assert_int_equal(fl_test_as_nobody(readonly_child, (void *)(uintptr_t)p), 0);
	/* A read-only directory. */
	snprintf(sub, sizeof(sub), "%s/rodir", fl_test_dir);
	mkdir(sub, 0555);
	chmod(sub, 0555);
	strcat(sub, "/x.lock");
	assert_int_equal(fl_test_as_nobody(readonly_child, sub), 0);
}

static int eintr_left;
static int (*real_flock)(int, int);

static int flock_eintr(int fd, int op)
{
	if (eintr_left > 0) {
		eintr_left--;
		errno = EINTR;
		return -1;
	}
	return real_flock(fd, op);
}

static void test_unix_eintr_retried(void **state)
{
	const char *p = fl_test_path("eintr");
	fl_lock *lk = fl_test_open(p, FL_UNIX, NULL);

	real_flock = fl__sys.flock;
	fl__sys.flock = flock_eintr;
	eintr_left = 3;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(eintr_left, 0);
	eintr_left = 2;
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(eintr_left, 0);
	fl_close(lk);
}

static const char *unlink_path;
static int unlink_once;

static int flock_after_unlink(int fd, int op)
{
	if (unlink_once) {
		/* Someone unlinks the inode between our open and our flock. */
		unlink_once = 0;
		unlink(unlink_path);
	}
	return real_flock(fd, op);
}

static void test_unix_unlinked_inode_retried(void **state)
{
	const char *p = fl_test_path("unlinked");
	struct stat st, fst;
	fl_lock *lk = fl_test_open(p, FL_UNIX, NULL);
	struct fl_holder who = { .size = sizeof(who) };

	real_flock = fl__sys.flock;
	fl__sys.flock = flock_after_unlink;
	unlink_path = p;
	unlink_once = 1;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 1), 0);
	/* We hold a lock on the inode the path names now, not on a dead one:
	 * another process cannot lock the path. */
	assert_int_equal(stat(p, &st), 0);
	{
		struct fl_child h;
		char line[256];
		fl__sys_reset();
		fl_holder_start(&h, line, sizeof(line), "-t", "unix", "-w", "0", p, NULL);
		assert_true(strncmp(line, "error 110", 9) == 0);
		fl_child_finish(&h);
	}
	(void)who;
	(void)fst;
	fl_close(lk);
}

static int flock_enosys(int fd, int op)
{
	(void)fd;
	(void)op;
	errno = ENOSYS;
	return -1;
}

static void test_file_enosys_fallback(void **state)
{
	const char *p = fl_test_path("enosys");
	struct fl_options o;
	char buf[512], want[512];
	fl_lock *lk;
	int fd, n;

	fl__sys.flock = flock_enosys;
	/* unix reports ENOSYS. */
	lk = fl_test_open(p, FL_UNIX, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ENOSYS);
	assert_non_null(strstr(fl_errmsg(lk), "flock("));
	fl_close(lk);
	/* file with FL_NO_FALLBACK refuses. */
	fl_options_init(&o);
	o.flags = FL_NO_FALLBACK;
	lk = fl_test_open(p, FL_FILE, &o);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ENOSYS);
	assert_non_null(strstr(fl_errmsg(lk), "FL_NO_FALLBACK"));
	fl_close(lk);
	/* file falls back to soft: the marker is a protocol-1 record. */
	unlink(p);
	lk = fl_test_open(p, FL_FILE, NULL);
	assert_int_equal(fl_kind_of(lk), FL_FILE);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_kind_of(lk), FL_SOFT);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_true(fl__p1_format(want, sizeof(want)) > 0);
	assert_string_equal(buf, want);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(access(p, F_OK), -1);
	fl_close(lk);
}

/*
 * A file handle that fell back to soft is a soft handle: it waits on soft's
 * wake-up (inotify on the marker's directory), not by polling, and it can
 * adopt a marker.  The waiter's poll interval is 60 s and its timeout 10 s,
 * so only the wake-up can hand it the lock in time.  The holder is told to
 * release at the waiter's first look at the marker's path, which comes
 * after its first try failed to create the marker (the create's check of
 * what is there): from then on only a wake-up, or a look from the wait
 * once it watches, can notice the release before the timeout.
 */
static const char *fb_path;
static pthread_t fb_waiter;
static int fb_lstats, fb_armed = -1, fb_pipe[2];

static int fb_lstat(const char *path, struct stat *st)
{
	if (pthread_equal(pthread_self(), fb_waiter) && strcmp(path, fb_path) == 0 &&
	    ++fb_lstats == fb_armed)
		assert_int_equal(write(fb_pipe[1], "x", 1), 1);
	return lstat(path, st);
}

static void *fb_releaser(void *arg)
{
	struct fl_child *h = arg;
	char c;

	if (read(fb_pipe[0], &c, 1) == 1)
		fl_child_say(h, "release");
	return NULL;
}

static void test_file_fallback_is_soft(void **state)
{
	const char *p = fl_test_path("fbwait");
	struct fl_options o;
	struct fl_child h;
	pthread_t rel;
	char line[256];
	fl_lock *lk, *lk2;
	double t0, took;

	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl__sys.flock = flock_enosys;
	fl_options_init(&o);
	o.poll_interval = 60;
	lk = fl_test_open(p, FL_FILE, &o);
	/* The first try falls back. */
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_kind_of(lk), FL_SOFT);
	fb_path = fl_path(lk);
	fb_waiter = pthread_self();
	fb_lstats = 0;
	fb_armed = 1;
	fl__sys.lstat = fb_lstat;
	assert_int_equal(pipe(fb_pipe), 0);
	assert_int_equal(pthread_create(&rel, NULL, fb_releaser, &h), 0);
	t0 = fl_test_now();
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 10), 0);
	took = fl_test_now() - t0;
	assert_int_equal(pthread_join(rel, NULL), 0);
	close(fb_pipe[0]);
	close(fb_pipe[1]);
	fl__sys.lstat = lstat;
	fb_armed = -1;
	fl_child_line(&h, line, sizeof(line));
	assert_true(strncmp(line, "released 0", 10) == 0);
	assert_int_equal(fl_child_finish(&h), 0);
	assert_true(took < 5.0); /* woken, not polled: the poll interval is 60 s */

	/* Adopt: a second fallen-back handle takes over the held marker. */
	assert_int_equal(fl_open(&lk2, p, FL_FILE, NULL), 0);
	assert_int_equal(fl_acquire(lk2, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_kind_of(lk2), FL_SOFT);
	fl__forget(lk); /* the marker stays, held by no handle */
	assert_int_equal(fl__adopt(lk2, FL_EXCLUSIVE, 0, 0, 0), 0);
	assert_true(fl_is_locked(lk2));
	assert_int_equal(fl_release(lk2, 0), 0);
	assert_int_equal(access(p, F_OK), -1);
	fl_close(lk2);
	fl__sys_reset();
}

static void test_file_enosys_never_unlinks_peer_marker(void **state)
{
	const char *p = fl_test_path("peer");
	struct fl_child h;
	char line[256];
	fl_lock *lk;

	/* A peer that fell back earlier holds a soft marker (non-empty). */
	fl_holder_start(&h, line, sizeof(line), "-t", "soft", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	fl__sys.flock = flock_enosys;
	lk = fl_test_open(p, FL_FILE, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(access(p, F_OK), 0); /* the peer's marker survived */
	fl_close(lk);
	fl__sys_reset();
	assert_int_equal(fl_child_finish(&h), 0);
}

static void test_unix_inspect_and_break(void **state)
{
	const char *p = fl_test_path("inspect");
	struct fl_holder who;
	struct fl_child h;
	char line[256];

	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(p, FL_UNIX, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_FREE);
	fl_holder_start(&h, line, sizeof(line), "-t", "unix", p, NULL);
	assert_int_equal(fl_inspect(p, FL_UNIX, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.pid, atoi(line + 6));
	assert_int_equal(who.mode, FL_EXCLUSIVE);
	assert_int_equal(who.same_host, 1);
	assert_true(who.start[0] != '\0');
	assert_int_equal(fl_break(p, FL_UNIX, NULL, FL_FORCE, NULL), -ENOTSUP);
	assert_int_equal(fl_child_finish(&h), 0);
	/* Shared holders are counted. */
	{
		struct fl_child h2;
		fl_holder_start(&h, line, sizeof(line), "-t", "unix", "-s", p, NULL);
		fl_holder_start(&h2, line, sizeof(line), "-t", "unix", "-s", p, NULL);
		assert_int_equal(fl_inspect(p, FL_UNIX, NULL, &who), 0);
		assert_int_equal(who.mode, FL_SHARED);
		assert_int_equal(who.readers, 2);
		assert_int_equal(fl_child_finish(&h), 0);
		assert_int_equal(fl_child_finish(&h2), 0);
	}
}

static void test_unix_shared_vs_exclusive(void **state)
{
	const char *p = fl_test_path("shx");
	struct fl_child h;
	char line[256];
	fl_lock *lk = fl_test_open(p, FL_UNIX, NULL);

	fl_holder_start(&h, line, sizeof(line), "-t", "unix", "-s", p, NULL);
	assert_true(strncmp(line, "ready", 5) == 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0); /* readers share */
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(fl_child_finish(&h), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

static void test_unix_killed_holder_releases(void **state)
{
	const char *p = fl_test_path("killed");
	struct fl_child h;
	char line[256];
	fl_lock *lk = fl_test_open(p, FL_UNIX, NULL);

	fl_holder_start(&h, line, sizeof(line), "-t", "unix", p, NULL);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	fl_child_kill(&h);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unix_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_file_counter, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_file_kept_and_content, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_mode, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_hostile_paths, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_readonly, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_eintr_retried, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_unlinked_inode_retried, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_file_enosys_fallback, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_file_enosys_never_unlinks_peer_marker, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_file_fallback_is_soft, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_inspect_and_break, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_shared_vs_exclusive, fl_test_setup, fl_test_teardown),
		cmocka_unit_test_setup_teardown(test_unix_killed_holder_releases, fl_test_setup, fl_test_teardown),
	};
	return cmocka_run_group_tests_name("unix", tests, fl_test_group_setup, fl_test_group_teardown);
}
