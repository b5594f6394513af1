/* SPDX-License-Identifier: MIT */
/* common.c -- see common.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "fl-internal.h"
#include "sys.h"

char fl_test_dir[PATH_MAX];
static char *fl_test_paths[4096];
static int fl_test_npaths;

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	chmod(p, 0700);
	remove(p);
	return 0;
}

int fl_test_group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(fl_test_dir, sizeof(fl_test_dir), "%s/fl-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fl_test_dir) == NULL)
		return -1;
	/* Tests that drop privileges create files here too; sticky, like /tmp,
	 * or a root process would refuse it (another user could swap its
	 * entries). */
	chmod(fl_test_dir, 01777);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int fl_test_group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < fl_test_npaths; i++)
		free(fl_test_paths[i]);
	fl_test_npaths = 0;
	nftw(fl_test_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int fl_test_setup(void **state)
{
	(void)state;
	fl__sys_reset();
	umask(022);
	alarm(30);
	return 0;
}

int fl_test_teardown(void **state)
{
	(void)state;
	alarm(0);
	fl__sys_reset();
	return 0;
}

const char *fl_test_path(const char *name)
{
	static int n;
	char buf[PATH_MAX + 64];

	snprintf(buf, sizeof(buf), "%s/%s-%d", fl_test_dir, name, ++n);
	assert_true(fl_test_npaths < 4096);
	fl_test_paths[fl_test_npaths] = strdup(buf);
	return fl_test_paths[fl_test_npaths++];
}

void fl_child_start(struct fl_child *c, char *const argv[])
{
	int in[2], out[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
}

void fl_child_line(struct fl_child *c, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		char ch;
		ssize_t r = read(c->out, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r == 1 || n > 0);
		if (r != 1 || ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
}

void fl_child_say(struct fl_child *c, const char *line)
{
	size_t n = strlen(line);
	assert_int_equal(write(c->in, line, n), (ssize_t)n);
	assert_int_equal(write(c->in, "\n", 1), 1);
}

int fl_child_finish(struct fl_child *c)
{
	int st = 0;

	close(c->in);
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	close(c->out);
	return st;
}

void fl_child_kill(struct fl_child *c)
{
	int st;

	kill(c->pid, SIGKILL);
	while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
		;
	close(c->in);
	close(c->out);
}

const char *fl_test_helper(const char *name)
{
	static char buf[PATH_MAX];
	const char *top = getenv("FL_TOP_BUILDDIR");

	snprintf(buf, sizeof(buf), "%s/tests/helpers/%s", top ? top : ".", name);
	return buf;
}

void fl_holder_start(struct fl_child *c, char *buf, size_t len, ...)
{
	char *argv[32];
	int n = 0;
	va_list ap;
	char *a;

	argv[n++] = strdup(fl_test_helper("fl-holder"));
	va_start(ap, len);
	while ((a = va_arg(ap, char *)) != NULL && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	fl_child_start(c, argv);
	free(argv[0]);
	fl_child_line(c, buf, len);
}

int fl_test_as_nobody(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
				       setresuid(65534, 65534, 65534) != 0))
			_exit(98);
		_exit(fn(arg));
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

double fl_test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

fl_lock *fl_test_open(const char *path, enum fl_kind kind, const struct fl_options *o)
{
	fl_lock *lk = NULL;
	int r = fl_open(&lk, path, kind, o);

	if (r != 0)
		fprintf(stderr, "fl_open(%s): %s\n", path, fl_errmsg(NULL));
	assert_int_equal(r, 0);
	assert_non_null(lk);
	return lk;
}

void fl_test_write_file(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

void fl_test_write_str(const char *path, const char *s)
{
	fl_test_write_file(path, s, strlen(s));
}

size_t fl_test_read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

/* A fresh process (fl-holder: no threads inherited from this one) that
 * holds path in mode; killed (SIGKILL: its records stay) by the caller. */
static pid_t adopt_taker(struct fl_child *c, const char *path, enum fl_kind kind,
			 const struct fl_options *o, enum fl_mode mode)
{
	char hb[64], st[64], pi[64], line[256];
	const char *proto = o->soft_rw_protocol == FL_SOFT_RW_LEGACY ? "protocol=legacy"
								     : "protocol=rw1";

	snprintf(hb, sizeof(hb), "heartbeat_interval=%g", o->heartbeat_interval);
	snprintf(st, sizeof(st), "stale_threshold=%g", o->stale_threshold);
	snprintf(pi, sizeof(pi), "poll_interval=%g", o->poll_interval > 0 ? o->poll_interval : 0.01);
	if (kind == FL_SOFT_RW)
		fl_holder_start(c, line, sizeof(line), "-t", fl_kind_name(kind), "-w", "10", "-o", hb,
				"-o", st, "-o", pi, "-o", proto, mode == FL_SHARED ? "-s" : path,
				mode == FL_SHARED ? path : NULL, NULL);
	else
		fl_holder_start(c, line, sizeof(line), "-t", fl_kind_name(kind), "-w", "10", "-o", pi,
				path, NULL);
	if (strncmp(line, "ready ", 6) != 0)
		fail_msg("fl-holder: %s", line);
	return (pid_t)atoi(line + 6);
}

void fl_test_adopt(const char *path, enum fl_kind kind, const struct fl_options *o,
		   enum fl_mode mode, double bound)
{
	enum fl_mode wrong = mode == FL_SHARED ? FL_EXCLUSIVE : FL_SHARED;
	fl_lock *lk = NULL, *other = NULL;
	struct fl_child c;
	pid_t t;

	t = adopt_taker(&c, path, kind, o, mode);
	assert_int_equal(fl_open(&lk, path, kind, o), 0);
	assert_int_equal(fl_open(&other, path, kind, o), 0);
	/* A live process's lock: not ours, whoever we think took it. */
	assert_int_equal(fl__adopt(lk, mode, 0, 0, 0), -ESTALE);
	assert_int_equal(fl__adopt(lk, mode, 0, 0, 1), -ESTALE);
	assert_false(fl_is_locked(lk));
	fl_child_kill(&c);
	/* Its taker gone: not in the wrong mode, nor for another taker. */
	if (kind == FL_SOFT_RW)
		assert_int_equal(fl__adopt(lk, wrong, 0, 0, t), -ESTALE);
	assert_int_equal(fl__adopt(lk, mode, 0, 0, 1), -ESTALE);
	/* The taker's: ours now, kept fresh, released by us. */
	assert_int_equal(fl__adopt(lk, mode, 0, 0, t), 0);
	assert_true(fl_is_locked(lk));
	if (bound > 0)
		usleep((useconds_t)(bound * 2.5 * 1e6));
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 0), -ETIMEDOUT);
	assert_true(fl_is_valid(lk));
	assert_int_equal(fl_release(lk, 0), 0);
	assert_int_equal(fl_acquire(other, FL_EXCLUSIVE, 5), 0);
	assert_int_equal(fl_release(other, 0), 0);
	fl_close(other);
	fl_close(lk);
}
