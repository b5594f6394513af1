/* SPDX-License-Identifier: MIT */
/*
 * test-rw.c -- the `rw` kind (SQLite reader/writer lock) with real processes.
 *
 * Children are synchronised with pipes: a child reports each state change by
 * writing one byte, and waits for the parent by reading one.  Every test
 * arms alarm() so that a deadlock fails instead of hanging.  The binary also
 * runs as its own helper after exec ("test-rw try PATH MODE"), which proves
 * the lock works in an exec'd fork child, and "test-rw interop" runs the
 * tests against Python's ReadWriteLock (tests/interop/rw-py.sh).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "filelock.h"
#include "sys.h"
#include <pthread.h>

#define NREADERS 6
#define NWRITERS 4
#define NINCR 50

static char tdir[PATH_MAX - 64];
static char dbpath[PATH_MAX];

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Children still to be reaped; teardown kills them when a test failed. */
static pid_t kids[64];

/* fork() whose child dies with the test process (an alarm, a crash) and is
 * killed by teardown when an assertion failed before it was reaped. */
static pid_t xfork(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(98);
		return 0;
	}
	for (size_t i = 0; pid > 0 && i < sizeof(kids) / sizeof(kids[0]); i++) {
		if (kids[i] == 0) {
			kids[i] = pid;
			break;
		}
	}
	return pid;
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(tdir, sizeof(tdir), "%s/fl-rw-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(tdir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/lock.db", tdir);
	alarm(60);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
		kids[i] = 0;
	}
	return nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static fl_lock *open_rw(const char *path, unsigned flags)
{
	struct fl_options o;
	fl_lock *lk = NULL;

	fl_options_init(&o);
	o.flags = flags;
	int r = fl_open(&lk, path, FL_RW, &o);
	if (r != 0)
		fail_msg("fl_open(%s): %s", path, fl_errmsg(NULL));
	return lk;
}

/* Reads exactly one byte; returns it, or -1 at EOF/error. */
static int get1(int fd)
{
	unsigned char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? c : -1;
}

static void put1(int fd, char c)
{
	ssize_t n;

	do
		n = write(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		_exit(90);
}

/* Exit status of pid, or -1 when it did not exit normally. */
static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (kids[i] == pid)
			kids[i] = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A child that takes the lock in `mode`, reports 'L' on `up`, waits for a
 * byte (or EOF) on `down`, releases and exits 0. */
static pid_t spawn_holder(enum fl_mode mode, double timeout, const int upp[2], const int downp[2])
{
	pid_t pid = xfork();
	int up = upp[1], down = downp[0];

	if (pid != 0)
		return pid;
	close(upp[0]);
	close(downp[1]); /* so that the parent's close is our EOF */
	fl_lock *lk = open_rw(dbpath, 0);
	if (fl_acquire(lk, mode, timeout) != 0)
		_exit(10);
	put1(up, 'L');
	get1(down);
	if (fl_release(lk, 0) != 0)
		_exit(11);
	fl_close(lk);
	_exit(0);
}

static char self_exe[PATH_MAX];

/* One try from a fresh (exec'd) process: 0 acquired, 1 timed out, 2 other
 * error.  Exec, because a plain fork child of a process with an open
 * connection may not use SQLite on that database at all. */
static int try_in_child(enum fl_mode mode)
{
	pid_t pid = xfork();

	if (pid == 0) {
		execl(self_exe, self_exe, "try", dbpath, mode == FL_SHARED ? "shared" : "exclusive",
		      (char *)NULL);
		_exit(2);
	}
	return reap(pid);
}

/* ---- single process ----------------------------------------------------- */

static void test_basic(void **state)
{
	struct stat st;
	fl_lock *lk, *again;

	(void)state;
	lk = open_rw(dbpath, 0);
	again = open_rw(dbpath, 0);
	assert_ptr_equal(lk, again); /* singleton by default */
	fl_close(again);

	assert_int_equal(fl_release(lk, 0), -ENOLCK);
	assert_int_equal(fl_release(lk, FL_FORCE), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, -1), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_lock_counter(lk), 2);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EDEADLK);
	assert_non_null(strstr(fl_errmsg(lk), "upgrade"));
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_is_locked(lk), 0);

	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EDEADLK);
	assert_non_null(strstr(fl_errmsg(lk), "downgrade"));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, FL_FORCE), 0);
	assert_int_equal(fl_is_locked(lk), 0);

	/* The database stays empty and no journal appears. */
	assert_int_equal(stat(dbpath, &st), 0);
	assert_int_equal(st.st_size, 0);
	char j[PATH_MAX + 16];
	snprintf(j, sizeof(j), "%s-journal", dbpath);
	assert_int_equal(access(j, F_OK), -1);
	fl_close(lk);
}

/* Open descriptors, not counting the inotify instance the library keeps for
 * each thread that waited (closing one costs milliseconds). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char p[300], t[64];
		ssize_t k;

		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		k = readlink(p, t, sizeof(t) - 1);
		if (k > 0) {
			t[k] = 0;
			if (strcmp(t, "anon_inode:inotify") == 0)
				continue;
		}
		n++;
	}
	closedir(d);
	return n;
}

/* Two handles in one process exclude each other through SQLite. */
static void test_two_handles(void **state)
{
	fl_lock *a, *b;
	struct fl_holder who;

	(void)state;
	int fds = count_fds();
	a = open_rw(dbpath, FL_NO_SINGLETON);
	b = open_rw(dbpath, FL_NO_SINGLETON);
	assert_ptr_not_equal(a, b);
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_acquire(b, FL_SHARED, 0), -ETIMEDOUT);
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	memset(&who, 0, sizeof(who));
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(dbpath, FL_RW, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_HELD);
	assert_int_equal(who.mode, FL_EXCLUSIVE);
	assert_int_equal(who.pid, getpid());
	assert_int_equal(fl_release(a, 0), 0);
	assert_int_equal(fl_acquire(a, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire(b, FL_SHARED, 0), 0);
	assert_int_equal(fl_acquire(b, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(b, FL_FORCE), 0);
	assert_int_equal(fl_release(a, 0), 0);
	who.size = sizeof(who);
	assert_int_equal(fl_inspect(dbpath, FL_RW, NULL, &who), 0);
	assert_int_equal(who.state, FL_HOLDER_FREE);
	/* Failed tries, timed waits and releases leave no descriptor behind. */
	assert_int_equal(fl_acquire(a, FL_EXCLUSIVE, 0), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(fl_acquire(b, i & 1 ? FL_SHARED : FL_EXCLUSIVE, i == 0 ? 0.06 : 0),
				 -ETIMEDOUT);
	/* a's descriptor, and at most one of b's that SQLite keeps open (closing
	 * it would drop a's POSIX locks) and reuses. */
	assert_true(count_fds() <= fds + 2);
	fl_close(a);
	fl_close(b);
	assert_int_equal(count_fds(), fds);
}

/* Clear errors for paths that cannot be a lock database. */
static void test_errors(void **state)
{
	char p[PATH_MAX + 64], ro[PATH_MAX + 64];
	fl_lock *lk;
	int fd;

	(void)state;
	/* Missing parents are created. */
	snprintf(p, sizeof(p), "%s/a/b/c/lock.db", tdir);
	lk = open_rw(p, 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);

	/* A text file is not a database. */
	snprintf(p, sizeof(p), "%s/text.db", tdir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello, this is not a database at all, honestly\n", 48), 48);
	close(fd);
	lk = open_rw(p, 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EBADMSG);
	assert_non_null(strstr(fl_errmsg(lk), "not an SQLite database"));
	assert_non_null(strstr(fl_errmsg(lk), p));
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, -1), -EBADMSG);
	fl_close(lk);
	{
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, 48); /* left alone */
	}

	/* A directory at the path. */
	snprintf(p, sizeof(p), "%s/dir.db", tdir);
	assert_int_equal(mkdir(p, 0755), 0);
	lk = open_rw(p, 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -EISDIR);
	assert_non_null(strstr(fl_errmsg(lk), "directory"));
	fl_close(lk);

	/* A read-only directory.  Root ignores permissions, so it drops to
	 * nobody in a child first. */
	snprintf(p, sizeof(p), "%s/ro", tdir);
	assert_int_equal(mkdir(p, 0555), 0);
	assert_int_equal(chmod(tdir, 0755), 0);
	strcat(p, "/lock.db");
	snprintf(ro, sizeof(ro), "%s/rofile.db", tdir);
	fd = open(ro, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
	assert_true(fd >= 0);
	close(fd);
	pid_t pid = xfork();
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(20);
		if (fl_open(&lk, p, FL_RW, NULL) != 0)
			_exit(21);
		if (fl_acquire(lk, FL_SHARED, 0) != -EACCES)
			_exit(22);
		if (strstr(fl_errmsg(lk), "Permission denied") == NULL ||
		    strstr(fl_errmsg(lk), p) == NULL)
			_exit(23);
		/* A database this user may not write: readers work, a writer is
		 * refused (SQLite alone would hand it a mere read lock). */
		snprintf(p, sizeof(p), "%s/rofile.db", tdir);
		if (fl_open(&lk, p, FL_RW, NULL) != 0)
			_exit(24);
		if (fl_acquire(lk, FL_EXCLUSIVE, 0) != -EACCES)
			_exit(25);
		if (strstr(fl_errmsg(lk), "read-only") == NULL)
			_exit(26);
		if (fl_acquire(lk, FL_SHARED, 0) != 0)
			_exit(27);
		_exit(0);
	}
	assert_int_equal(reap(pid), 0);

	/* An explicit mode is applied to the database we create. */
	{
		struct fl_options o;
		struct stat st;

		fl_options_init(&o);
		o.mode = 0660;
		snprintf(p, sizeof(p), "%s/mode.db", tdir);
		assert_int_equal(fl_open(&lk, p, FL_RW, &o), 0);
		assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0660);
		fl_close(lk);
		/* Without one, 0600 (Python filelock 4), whatever the umask. */
		snprintf(p, sizeof(p), "%s/default-mode.db", tdir);
		assert_int_equal(fl_open(&lk, p, FL_RW, NULL), 0);
		assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		fl_close(lk);
	}
}

/* An existing SQLite database works as the lock and is left unchanged; a
 * symbolic link (to it, or dangling) is refused, as Python filelock 4 does,
 * and so is a WAL-mode database, untouched. */
static void test_existing_db_and_symlink(void **state)
{
	char link[PATH_MAX + 16], dangling[PATH_MAX + 16], wal[PATH_MAX + 16];
	sqlite3 *db;
	struct stat before, after;
	fl_lock *lk;

	(void)state;
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (42)", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_int_equal(stat(dbpath, &before), 0);
	assert_true(before.st_size > 0);

	lk = open_rw(dbpath, 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(try_in_child(FL_SHARED), 1);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(try_in_child(FL_SHARED), 0);
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 1);
	fl_close(lk);
	assert_int_equal(stat(dbpath, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);

	snprintf(link, sizeof(link), "%s/link.db", tdir);
	assert_int_equal(symlink(dbpath, link), 0);
	lk = open_rw(link, 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ELOOP);
	assert_non_null(strstr(fl_errmsg(lk), "symbolic link"));
	fl_close(lk);

	snprintf(dangling, sizeof(dangling), "%s/dangling.db", tdir);
	assert_int_equal(symlink("nowhere/x.db", dangling), 0);
	lk = open_rw(dangling, 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ELOOP);
	assert_non_null(strstr(fl_errmsg(lk), "symbolic link"));
	fl_close(lk);

	snprintf(wal, sizeof(wal), "%s/wal.db", tdir);
	assert_int_equal(sqlite3_open(wal, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x)", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_int_equal(stat(wal, &before), 0);
	lk = open_rw(wal, 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -EINVAL);
	assert_non_null(strstr(fl_errmsg(lk), "WAL-mode"));
	fl_close(lk);
	assert_int_equal(stat(wal, &after), 0);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	{
		unsigned char hdr[20];
		int fd = open(wal, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0 && read(fd, hdr, 20) == 20);
		close(fd);
		assert_int_equal(hdr[18], 2); /* still WAL */
	}
}

/* Fault injection through the syscall table: errors name call and path. */
static int fail_errno;

static int open_fails(const char *path, int flags, ...)
{
	(void)path;
	(void)flags;
	errno = fail_errno;
	return -1;
}

static int stat_fails(const char *path, struct stat *st)
{
	(void)path;
	(void)st;
	errno = fail_errno;
	return -1;
}

static void test_faults(void **state)
{
	fl_lock *lk;

	(void)state;
	lk = open_rw(dbpath, 0);
	/* Creating the missing database fails: ENOSPC from our own open. */
	fail_errno = ENOSPC;
	fl__sys.open = open_fails;
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ENOSPC);
	fl__sys_reset();
	assert_non_null(strstr(fl_errmsg(lk), "open("));
	assert_non_null(strstr(fl_errmsg(lk), dbpath));
	assert_non_null(strstr(fl_errmsg(lk), "[rw]"));
	/* stat of the database fails with EIO. */
	fail_errno = EIO;
	fl__sys.lstat = stat_fails;
	assert_int_equal(fl_acquire(lk, FL_SHARED, -1), -EIO);
	fl__sys_reset();
	assert_non_null(strstr(fl_errmsg(lk), "stat("));
	assert_int_equal(fl_is_locked(lk), 0);
	/* And then it works. */
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
}

static int cancel_after(void *arg)
{
	int *n = arg;

	return --*n <= 0;
}

/* cancel_check is honoured while the lock is held elsewhere. */
static void test_cancel(void **state)
{
	struct fl_options o;
	fl_lock *a, *b;
	int n = 3;

	(void)state;
	a = open_rw(dbpath, FL_NO_SINGLETON);
	assert_int_equal(fl_acquire(a, FL_SHARED, 0), 0);
	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON;
	o.cancel_check = cancel_after;
	o.cancel_arg = &n;
	assert_int_equal(fl_open(&b, dbpath, FL_RW, &o), 0);
	/* Waiting forever on a path another handle of this thread holds. */
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, -1), -EDEADLK);
	assert_non_null(strstr(fl_errmsg(b), "FL_SINGLETON"));
	assert_int_equal(fl_acquire(b, FL_EXCLUSIVE, 30), -ECANCELED);
	assert_int_equal(n, 0);
	assert_int_equal(fl_acquire(b, FL_SHARED, 30), 0); /* readers overlap */
	assert_int_equal(fl_release(b, 0), 0);
	assert_int_equal(fl_release(a, 0), 0);
	fl_close(a);
	fl_close(b);
}

/* ---- threads ------------------------------------------------------------ */

struct thr {
	fl_lock *lk;
	int r1, r2, r3;
	const char *cpath;
	int bad;
};

/* Another thread of the same handle: shares read levels, may not re-enter
 * or release the write levels. */
static void *thr_other(void *arg)
{
	struct thr *t = arg;

	t->r1 = fl_acquire(t->lk, FL_EXCLUSIVE, 0);
	t->r2 = fl_acquire(t->lk, FL_SHARED, 0);
	t->r3 = fl_release(t->lk, 0);
	return NULL;
}

static void *thr_reader(void *arg)
{
	struct thr *t = arg;

	t->r1 = fl_acquire(t->lk, FL_SHARED, 0);
	t->r2 = (int)fl_lock_counter(t->lk);
	t->r3 = fl_release(t->lk, 0);
	return NULL;
}

static void test_threads_context(void **state)
{
	struct thr t = { 0 };
	pthread_t th;

	(void)state;
	t.lk = open_rw(dbpath, 0);
	assert_int_equal(fl_acquire(t.lk, FL_EXCLUSIVE, 0), 0);
	pthread_create(&th, NULL, thr_other, &t);
	pthread_join(th, NULL);
	assert_int_equal(t.r1, -EDEADLK); /* the write level is this thread's */
	assert_int_equal(t.r2, -EDEADLK); /* downgrade */
	assert_int_equal(t.r3, -EPERM);
	assert_int_equal(fl_release(t.lk, 0), 0);

	assert_int_equal(fl_acquire(t.lk, FL_SHARED, 0), 0);
	pthread_create(&th, NULL, thr_reader, &t);
	pthread_join(th, NULL);
	assert_int_equal(t.r1, 0);
	assert_int_equal(t.r2, 2); /* read levels are shared by the threads */
	assert_int_equal(t.r3, 0);
	assert_int_equal(fl_lock_counter(t.lk), 1);
	assert_int_equal(fl_release(t.lk, 0), 0);
	fl_close(t.lk);
}

/* Threads with their own handles exclude each other like processes. */
static void *thr_incr(void *arg)
{
	struct thr *t = arg;
	fl_lock *lk = open_rw(dbpath, FL_NO_SINGLETON);

	for (int k = 0; k < NINCR; k++) {
		char buf[32];
		if (fl_acquire(lk, FL_EXCLUSIVE, (k & 1) ? -1 : 30) != 0) {
			t->bad = 1;
			break;
		}
		int fd = open(t->cpath, O_RDWR | O_CLOEXEC);
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		sched_yield();
		int len = snprintf(buf, sizeof(buf), "%ld\n", strtol(buf, NULL, 10) + 1);
		if (pwrite(fd, buf, (size_t)len, 0) != len)
			t->bad = 1;
		close(fd);
		if (fl_release(lk, 0) != 0)
			t->bad = 1;
	}
	fl_close(lk);
	return NULL;
}

static void test_threads_counter(void **state)
{
	char cpath[PATH_MAX + 16];
	struct thr t[NWRITERS];
	pthread_t th[NWRITERS];
	char buf[32] = "";
	int fd;

	(void)state;
	snprintf(cpath, sizeof(cpath), "%s/counter", tdir);
	fd = open(cpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_int_equal(write(fd, "0\n", 2), 2);
	for (int i = 0; i < NWRITERS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].cpath = cpath;
		pthread_create(&th[i], NULL, thr_incr, &t[i]);
	}
	for (int i = 0; i < NWRITERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad, 0);
	}
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	close(fd);
	assert_int_equal(strtol(buf, NULL, 10), NWRITERS * NINCR);
}

/* ---- processes ---------------------------------------------------------- */

/* All readers are inside at once: none releases before all are in. */
static void test_readers_overlap(void **state)
{
	int up[2], down[2];
	pid_t pids[NREADERS];

	(void)state;
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	for (int i = 0; i < NREADERS; i++) {
		pids[i] = spawn_holder(FL_SHARED, 30, up, down);
		assert_true(pids[i] > 0);
	}
	close(up[1]);
	for (int i = 0; i < NREADERS; i++)
		assert_int_equal(get1(up[0]), 'L');
	/* Every reader holds now; a writer cannot get in, another reader can. */
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 1);
	assert_int_equal(try_in_child(FL_SHARED), 0);
	close(down[1]);
	for (int i = 0; i < NREADERS; i++)
		assert_int_equal(reap(pids[i]), 0);
	close(up[0]);
	close(down[0]);
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 0);
}

/* A writer excludes readers and writers. */
static void test_writer_excludes(void **state)
{
	int up[2], down[2];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	pid = spawn_holder(FL_EXCLUSIVE, 30, up, down);
	assert_int_equal(get1(up[0]), 'L');
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 1);
	assert_int_equal(try_in_child(FL_SHARED), 1);
	/* And in this process. */
	fl_lock *lk = open_rw(dbpath, 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), -ETIMEDOUT);
	assert_non_null(strstr(fl_errmsg(lk), "held by pid"));
	put1(down[1], 'x');
	assert_int_equal(reap(pid), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	fl_close(lk);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/* N writers x M increments of a shared counter = N*M. */
static void test_counter(void **state)
{
	char cpath[PATH_MAX + 16];
	pid_t pids[NWRITERS];
	long v = 0;
	FILE *f;

	(void)state;
	snprintf(cpath, sizeof(cpath), "%s/counter", tdir);
	f = fopen(cpath, "we");
	assert_non_null(f);
	fputs("0\n", f);
	fclose(f);
	for (int i = 0; i < NWRITERS; i++) {
		pids[i] = xfork();
		assert_true(pids[i] >= 0);
		if (pids[i] > 0)
			continue;
		fl_lock *lk = open_rw(dbpath, 0);
		for (int k = 0; k < NINCR; k++) {
			char buf[32];
			/* Alternate blocking and timed waits: both paths must exclude. */
			if (fl_acquire(lk, FL_EXCLUSIVE, (k & 1) ? -1 : 30) != 0)
				_exit(10);
			int fd = open(cpath, O_RDWR | O_CLOEXEC);
			ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
			if (n <= 0)
				_exit(11);
			buf[n] = '\0';
			/* Widen the race window a lost update would need. */
			sched_yield();
			int len = snprintf(buf, sizeof(buf), "%ld\n", strtol(buf, NULL, 10) + 1);
			if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len)
				_exit(12);
			close(fd);
			if (fl_release(lk, 0) != 0)
				_exit(13);
		}
		fl_close(lk);
		_exit(0);
	}
	for (int i = 0; i < NWRITERS; i++)
		assert_int_equal(reap(pids[i]), 0);
	f = fopen(cpath, "re");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &v), 1);
	fclose(f);
	assert_int_equal(v, NWRITERS * NINCR);
}

/*
 * Blocks until some process holds a write lock on SQLite's PENDING byte of
 * the database: a writer is waiting (or holding).  Observes with F_GETLK,
 * which takes no lock.
 */
static void wait_for_pending(pid_t writer)
{
	int fd = open(dbpath, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	for (;;) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0x40000000,
				    .l_len = 1 };
		assert_int_equal(fcntl(fd, F_GETLK, &fl), 0);
		if (fl.l_type == F_WRLCK && fl.l_pid == writer)
			break;
		/* Polling a condition (not sleeping to synchronise): the writer
		 * gives no other sign that it is inside SQLite's busy handler. */
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	close(fd);
}

/*
 * Writer preference: reader R1 holds; writer W starts waiting; a new reader
 * R2 must now be refused although only readers hold the lock, and when R1
 * leaves, W gets in before R2.
 */
static void starvation(double wtimeout)
{
	int r1up[2], r1down[2], order[2], wgo[2];
	pid_t r1, w, r2;

	assert_int_equal(pipe2(r1up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(r1down, O_CLOEXEC), 0);
	assert_int_equal(pipe2(order, O_CLOEXEC), 0);
	assert_int_equal(pipe2(wgo, O_CLOEXEC), 0);
	r1 = spawn_holder(FL_SHARED, 30, r1up, r1down);
	assert_int_equal(get1(r1up[0]), 'L');

	w = xfork();
	if (w == 0) {
		fl_lock *lk = open_rw(dbpath, 0);
		if (fl_acquire(lk, FL_EXCLUSIVE, wtimeout) != 0)
			_exit(10);
		put1(order[1], 'W');
		fl_release(lk, 0);
		_exit(0);
	}
	wait_for_pending(w);
	/* A timed writer without cancel_check waits inside SQLite until its
	 * deadline, as a blocking one does: it never drops PENDING. */
	{
		struct fl_holder who;
		fl_lock *probe = open_rw(dbpath, FL_NO_SINGLETON);
		int in = 0;

		memset(&who, 0, sizeof(who));
		who.size = sizeof(who);
		assert_int_equal(fl_inspect(dbpath, FL_RW, NULL, &who), 0);
		assert_int_equal(who.state, FL_HOLDER_HELD);
		assert_int_equal(who.mode, FL_SHARED);
		assert_int_equal(who.pid, r1);
		assert_int_equal(who.readers, 1);
		assert_int_equal(who.writers, 1);
		assert_non_null(strstr(who.detail, "writer is waiting"));
		/* Only readers hold, yet a new reader is turned away. */
		assert_int_equal(try_in_child(FL_SHARED), 1);
		for (int i = 0; i < 2000; i++)
			if (fl_acquire(probe, FL_SHARED, 0) == 0) {
				in++;
				assert_int_equal(fl_release(probe, 0), 0);
			}
		assert_int_equal(in, 0);
		fl_close(probe);
	}
	r2 = xfork();
	if (r2 == 0) {
		fl_lock *lk = open_rw(dbpath, 0);
		put1(wgo[1], 's');
		if (fl_acquire(lk, FL_SHARED, 30) != 0)
			_exit(10);
		put1(order[1], 'R');
		fl_release(lk, 0);
		_exit(0);
	}
	assert_int_equal(get1(wgo[0]), 's');
	put1(r1down[1], 'x');
	assert_int_equal(reap(r1), 0);
	assert_int_equal(get1(order[0]), 'W');
	assert_int_equal(get1(order[0]), 'R');
	assert_int_equal(reap(w), 0);
	assert_int_equal(reap(r2), 0);
	int fds[] = { r1up[0], r1up[1], r1down[0], r1down[1], order[0], order[1], wgo[0], wgo[1] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close(fds[i]);
}

static void test_writer_not_starved_blocking(void **state)
{
	(void)state;
	starvation(-1);
}

static void test_writer_not_starved_timed(void **state)
{
	(void)state;
	starvation(30);
}

/* A holder killed with SIGKILL releases. */
static void test_sigkill(void **state)
{
	int up[2], down[2];
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	pid = spawn_holder(FL_EXCLUSIVE, 30, up, down);
	assert_int_equal(get1(up[0]), 'L');
	assert_int_equal(try_in_child(FL_SHARED), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(reap(pid), -1);
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/* Timeouts and non-blocking return -ETIMEDOUT within timeout + one poll. */
static void test_timeouts(void **state)
{
	int up[2], down[2];
	struct fl_options o;
	fl_lock *lk, *nb;
	double t0, dt;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	pid = spawn_holder(FL_EXCLUSIVE, 30, up, down);
	assert_int_equal(get1(up[0]), 'L');

	/* The bound is timeout + one poll interval (0.05 s); sanitizer builds
	 * run several times slower and get scheduling slack on top. */
	const char *san = getenv("FL_SANITIZERS");
	const double slack = san != NULL && *san != '\0' ? 0.1 : 0;
	lk = open_rw(dbpath, 0);
	const double tos[] = { 0, 0.2, 0.35 };
	for (size_t i = 0; i < 3; i++) {
		for (int m = 0; m < 2; m++) {
			t0 = now_mono();
			assert_int_equal(fl_acquire(lk, m ? FL_SHARED : FL_EXCLUSIVE, tos[i]),
					 -ETIMEDOUT);
			dt = now_mono() - t0;
			assert_true(dt >= tos[i]);
			if (dt > tos[i] + 0.05 + slack)
				fail_msg("timeout %g took %g s", tos[i], dt);
		}
	}
	fl_options_init(&o);
	o.flags = FL_NONBLOCK | FL_NO_SINGLETON;
	o.timeout = 5;
	assert_int_equal(fl_open(&nb, dbpath, FL_RW, &o), 0);
	t0 = now_mono();
	assert_int_equal(fl_acquire(nb, FL_EXCLUSIVE, FL_TIMEOUT_DEFAULT), -ETIMEDOUT);
	assert_true(now_mono() - t0 <= 0.05 + slack);
	assert_non_null(strstr(fl_errmsg(nb), "non-blocking"));
	fl_close(nb);

	/* The default timeout of the handle is honoured. */
	fl_options_init(&o);
	o.flags = FL_NO_SINGLETON;
	o.timeout = 0.1;
	assert_int_equal(fl_open(&nb, dbpath, FL_RW, &o), 0);
	t0 = now_mono();
	assert_int_equal(fl_acquire(nb, FL_SHARED, FL_TIMEOUT_DEFAULT), -ETIMEDOUT);
	dt = now_mono() - t0;
	assert_true(dt >= 0.1 && dt <= 0.15 + slack);
	fl_close(nb);

	put1(down[1], 'x');
	assert_int_equal(reap(pid), 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	fl_close(lk);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
}

/* Fork: the inherited handle refuses; the database is poisoned in the child
 * until exec; after exec the lock works; the parent keeps its lock. */
static void test_fork(void **state)
{
	fl_lock *lk = open_rw(dbpath, 0);
	pid_t pid;

	(void)state;
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	pid = xfork();
	if (pid == 0) {
		fl_lock *mine;
		struct fl_options o;

		if (fl_acquire(lk, FL_SHARED, 0) != -ECHILD)
			_exit(10);
		if (fl_release(lk, 0) != 0)
			_exit(11);
		fl_close(lk); /* must not release the parent's read lock */
		fl_options_init(&o);
		if (fl_open(&mine, dbpath, FL_RW, &o) != 0)
			_exit(12);
		if (fl_acquire(mine, FL_SHARED, 0) != -ECHILD)
			_exit(13);
		if (strstr(fl_errmsg(mine), "fork") == NULL)
			_exit(14);
		fl_close(mine);
		/* After exec: a read lock overlaps the parent's, a write lock does not. */
		pid_t g = xfork();
		if (g == 0) {
			execl(self_exe, self_exe, "try", dbpath, "shared", (char *)NULL);
			_exit(15);
		}
		if (reap(g) != 0)
			_exit(16);
		execl(self_exe, self_exe, "try", dbpath, "exclusive", (char *)NULL);
		_exit(17);
	}
	/* The exec'd child's write try timed out: exit code 1. */
	assert_int_equal(reap(pid), 1);
	/* The parent still holds its read lock. */
	assert_int_equal(fl_lock_counter(lk), 1);
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 1);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(try_in_child(FL_EXCLUSIVE), 0);
	fl_close(lk);
}

/* ---- interop with the Python peer --------------------------------------- */

/*
 * The Python side.  "try-read"/"try-write": one non-blocking try, exit 0
 * acquired, 1 Timeout.  "serve": one byte per command on stdin, one byte of
 * answer on stdout, so that a test pays Python's start-up once:
 * r/w = try read/write without blocking (y acquired and released, n Timeout),
 * R/W = acquire read/write waiting up to 30 s and hold (L), u = release (U).
 */
static const char *py_script =
	"import sys\n"
	"from filelock import ReadWriteLock, Timeout\n"
	"path, op = sys.argv[1], sys.argv[2]\n"
	"def try_(lk, write):\n"
	"    try:\n"
	"        (lk.acquire_write if write else lk.acquire_read)(blocking=False)\n"
	"    except Timeout:\n"
	"        return False\n"
	"    lk.release()\n"
	"    return True\n"
	"if op != 'serve':\n"
	"    lk = ReadWriteLock(path, is_singleton=False)\n"
	"    sys.exit(0 if try_(lk, op == 'try-write') else 1)\n"
	"holder = ReadWriteLock(path, is_singleton=False)\n"
	"trier = ReadWriteLock(path, is_singleton=False)\n"
	"while True:\n"
	"    c = sys.stdin.read(1)\n"
	"    if not c:\n"
	"        sys.exit(0)\n"
	"    if c in 'rw':\n"
	"        a = 'y' if try_(trier, c == 'w') else 'n'\n"
	"    elif c in 'RW':\n"
	"        (holder.acquire_write if c == 'W' else holder.acquire_read)(timeout=30)\n"
	"        a = 'L'\n"
	"    elif c == 'u':\n"
	"        holder.release()\n"
	"        a = 'U'\n"
	"    else:\n"
	"        sys.exit(3)\n"
	"    sys.stdout.write(a)\n"
	"    sys.stdout.flush()\n";

static const char *python3;

/* Skips (or fails under FL_REQUIRE_ALL=1) when the peer is missing. */
static int py_available(void)
{
	const char *peer = getenv("FL_PEER_DIR");
	char probe[PATH_MAX + 64];
	const char *req = getenv("FL_REQUIRE_ALL");

	python3 = getenv("FL_PYTHON3");
	if (python3 == NULL || *python3 == '\0')
		python3 = "/usr/bin/python3";
	snprintf(probe, sizeof(probe), "%s/filelock/_read_write.py", peer ? peer : "");
	if (peer != NULL && access(probe, R_OK) == 0 && access(python3, X_OK) == 0)
		return 1;
	if (req != NULL && strcmp(req, "1") == 0)
		fail_msg("Python peer missing (FL_PEER_DIR=%s, python3=%s) and FL_REQUIRE_ALL=1",
			 peer ? peer : "(unset)", python3);
	fprintf(stderr, "skip: Python peer not found (FL_PEER_DIR=%s)\n", peer ? peer : "(unset)");
	return 0;
}

/* Runs the Python peer with `op`; *in and *out are its stdin and stdout. */
static pid_t py_spawn(const char *op, int *in, int *out)
{
	int pin[2], pout[2];
	pid_t pid;

	assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
	pid = xfork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		setenv("PYTHONPATH", getenv("FL_PEER_DIR"), 1);
		setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
		execl(python3, python3, "-c", py_script, dbpath, op, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	*in = pin[1];
	*out = pout[0];
	return pid;
}

static int py_try(const char *op)
{
	int in, out;
	pid_t pid = py_spawn(op, &in, &out);

	close(in);
	close(out);
	return reap(pid);
}

/* One command to a "serve" peer; returns its answer byte. */
static int py_cmd(int in, int out, char c)
{
	put1(in, c);
	return get1(out);
}

static void test_py_reader_c_writer(void **state)
{
	int in, out;
	fl_lock *lk;
	pid_t pid;

	(void)state;
	if (!py_available())
		skip();
	pid = py_spawn("serve", &in, &out);
	assert_int_equal(py_cmd(in, out, 'R'), 'L');
	lk = open_rw(dbpath, 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0.1), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0); /* readers of both overlap */
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(py_cmd(in, out, 'u'), 'U');
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);

	assert_int_equal(py_cmd(in, out, 'W'), 'L');
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0.1), -ETIMEDOUT);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_int_equal(py_cmd(in, out, 'u'), 'U');
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(fl_release(lk, 0), 0);
	close(in);
	assert_int_equal(reap(pid), 0);
	close(out);
	fl_close(lk);
}

static void test_c_writer_py_reader(void **state)
{
	int in, out;
	fl_lock *lk;
	pid_t pid;

	(void)state;
	if (!py_available())
		skip();
	pid = py_spawn("serve", &in, &out);
	lk = open_rw(dbpath, 0);
	assert_int_equal(fl_acquire(lk, FL_EXCLUSIVE, 0), 0);
	assert_int_equal(py_cmd(in, out, 'r'), 'n');
	assert_int_equal(py_cmd(in, out, 'w'), 'n');
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	assert_int_equal(py_cmd(in, out, 'r'), 'y'); /* readers of both overlap */
	assert_int_equal(py_cmd(in, out, 'w'), 'n');
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(py_cmd(in, out, 'w'), 'y');
	close(in);
	assert_int_equal(reap(pid), 0);
	close(out);
	fl_close(lk);
}

/* Writer preference across implementations: a waiting writer of either
 * turns away new readers of the other. */
static void test_py_writer_preference(void **state)
{
	int in, out, wdone[2];
	fl_lock *lk;
	pid_t pid, w;

	(void)state;
	if (!py_available())
		skip();
	/* C reader holds, Python writer waits: a new C reader is refused. */
	lk = open_rw(dbpath, 0);
	assert_int_equal(fl_acquire(lk, FL_SHARED, 0), 0);
	pid = py_spawn("serve", &in, &out);
	put1(in, 'W');
	wait_for_pending(pid);
	assert_int_equal(try_in_child(FL_SHARED), 1);
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(get1(out), 'L');
	assert_int_equal(py_cmd(in, out, 'u'), 'U');
	fl_close(lk);

	/* Python reader holds, C writer waits: a new Python reader (another
	 * process: SQLite lets a process that reads add readers) is refused. */
	assert_int_equal(py_cmd(in, out, 'R'), 'L');
	assert_int_equal(pipe2(wdone, O_CLOEXEC), 0);
	w = xfork();
	if (w == 0) {
		fl_lock *l = open_rw(dbpath, 0);
		if (fl_acquire(l, FL_EXCLUSIVE, -1) != 0)
			_exit(10);
		put1(wdone[1], 'W');
		fl_release(l, 0);
		_exit(0);
	}
	wait_for_pending(w);
	assert_int_equal(py_try("try-read"), 1);
	assert_int_equal(py_cmd(in, out, 'u'), 'U');
	assert_int_equal(get1(wdone[0]), 'W');
	assert_int_equal(reap(w), 0);
	close(in);
	assert_int_equal(reap(pid), 0);
	close(out);
	close(wdone[0]);
	close(wdone[1]);
}

/* "test-rw try PATH shared|exclusive": one try; exit 0 acquired, 1 timed
 * out, 2 error. */
static int helper_main(int argc, char **argv)
{
	fl_lock *lk;

	if (argc != 4 || fl_open(&lk, argv[2], FL_RW, NULL) != 0)
		return 2;
	int r = fl_acquire(lk, strcmp(argv[3], "shared") == 0 ? FL_SHARED : FL_EXCLUSIVE, 0);
	if (r != 0 && r != -ETIMEDOUT)
		fprintf(stderr, "try: %s\n", fl_errmsg(lk));
	fl_close(lk);
	return r == 0 ? 0 : r == -ETIMEDOUT ? 1 : 2;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "try") == 0)
		return helper_main(argc, argv);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0)
		return 99;
	self_exe[n] = '\0';

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_db_and_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_counter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_excludes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_not_starved_blocking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_not_starved_timed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
	};
	const struct CMUnitTest interop[] = {
		cmocka_unit_test_setup_teardown(test_py_reader_c_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_c_writer_py_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_py_writer_preference, setup, teardown),
	};

	/* "interop" runs the Python peer tests (tests/interop/rw-py.sh, which
	 * skips when the peer is absent); the default run is the rest. */
	if (argc > 1 && strcmp(argv[1], "interop") == 0)
		return cmocka_run_group_tests_name("rw-interop", interop, NULL, NULL);
	return cmocka_run_group_tests_name("rw", tests, NULL, NULL);
}
