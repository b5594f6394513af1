/* SPDX-License-Identifier: MIT */
/*
 * flp-probe -- scenarios that exercise the preload shim's flock semantics
 * from inside one program.  Run it with the shim preloaded; each scenario
 * checks itself and exits 0 on success, 1 with a message on failure.
 *
 *   flp-probe try PATH            exit 0 free (taken and dropped), 3 busy
 *   flp-probe trywr PATH          the same for an fcntl write lock
 *   flp-probe counter PATH FILE M M increments of FILE under flock(PATH)
 *   flp-probe SCENARIO PATH [OTHER]  see the table in main()
 *
 * Whether the lock is held is always asked of another process ("try"),
 * which contends through the shim like any other program would.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *self;
static int failures;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "flp-probe: %s:%d: check failed: %s (errno %s)\n", \
				__func__, __LINE__, #cond, strerror(errno));          \
			failures++;                                                   \
		}                                                                     \
	} while (0)

/* Runs "flp-probe try PATH" in a child: 0 free, 3 busy. */
static int try_other(const char *path)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		execl(self, self, "try", path, (char *)NULL);
		_exit(99);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* With FLP_MARKER=1 the shim's marker must exist exactly while held. */
static int marker_exists(const char *path)
{
	char m[4200];

	if (getenv("FLP_MARKER") == NULL)
		return -1;
	snprintf(m, sizeof(m), "%s.lock", path);
	return access(m, F_OK) == 0;
}

#define FREE(p) CHECK(try_other(p) == 0 && marker_exists(p) != 1)
#define BUSY(p) CHECK(try_other(p) == 3 && marker_exists(p) != 0)

static int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);

	if (fd < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

static int cmd_try(const char *path)
{
	int fd = open(path, O_RDONLY | O_CREAT, 0644);

	if (fd < 0)
		return 4;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? 3 : 4;
	flock(fd, LOCK_UN);
	close(fd);
	return 0;
}

static int cmd_counter(const char *path, const char *file, int m)
{
	for (int i = 0; i < m; i++) {
		char buf[32] = "";
		long v;
		int fd = open_rw(path), c;

		if (flock(fd, LOCK_EX) != 0) {
			perror("flock");
			return 1;
		}
		c = open_rw(file);
		if (read(c, buf, sizeof(buf) - 1) < 0)
			return 1;
		v = strtol(buf, NULL, 10) + 1;
		snprintf(buf, sizeof(buf), "%ld\n", v);
		if (pwrite(c, buf, strlen(buf), 0) < 0)
			return 1;
		close(c);
		if (i % 2)
			flock(fd, LOCK_UN); /* half the time unlock, half just close */
		close(fd);
	}
	return 0;
}

static void sc_dup(const char *p)
{
	int fd = open_rw(p), d;

	CHECK(flock(fd, LOCK_EX) == 0);
	d = dup(fd);
	close(fd);
	BUSY(p);
	close(d);
	FREE(p);
	/* A dup made before the first lock call is recognised too (kcmp). */
	fd = open_rw(p);
	d = dup(fd);
	CHECK(flock(fd, LOCK_EX) == 0);
	CHECK(flock(d, LOCK_UN) == 0);
	FREE(p);
	close(fd);
	close(d);
}

static void sc_dup2(const char *p)
{
	int fd = open_rw(p), other = open("/dev/null", O_RDONLY);

	CHECK(flock(fd, LOCK_EX) == 0);
	CHECK(dup2(fd, other) == other);
	close(fd);
	BUSY(p);
	/* dup2 onto the last descriptor of the lock closes it: released. */
	fd = open("/dev/null", O_RDONLY);
	CHECK(dup3(fd, other, O_CLOEXEC) == other);
	FREE(p);
	close(fd);
	close(other);
	fd = open_rw(p);
	CHECK(flock(fd, LOCK_EX) == 0);
	other = fcntl(fd, F_DUPFD_CLOEXEC, 100);
	CHECK(other >= 100);
	close(fd);
	BUSY(p);
	close(other);
	FREE(p);
}

static void sc_closers(const char *p)
{
	int fd = open_rw(p);
	FILE *fp;

	CHECK(flock(fd, LOCK_EX) == 0);
	CHECK(close_range((unsigned)fd, (unsigned)fd, 0) == 0);
	FREE(p);
	fd = open_rw(p);
	CHECK(flock(fd, LOCK_EX) == 0);
	BUSY(p);
	closefrom(fd);
	FREE(p);
	fp = fopen(p, "r+");
	CHECK(fp != NULL);
	CHECK(flock(fileno(fp), LOCK_EX) == 0);
	BUSY(p);
	CHECK(fclose(fp) == 0);
	FREE(p);
}

static void sc_nb(const char *p)
{
	int a = open_rw(p), b = open_rw(p);

	CHECK(flock(a, LOCK_EX) == 0);
	CHECK(flock(a, LOCK_EX | LOCK_NB) == 0); /* already held: a no-op */
	errno = 0;
	CHECK(flock(b, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
	errno = 0;
	CHECK(flock(b, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK);
	/* Conversion: soft is exclusive-only, LOCK_SH stays exclusive. */
	CHECK(flock(a, LOCK_SH) == 0);
	BUSY(p);
	CHECK(flock(a, LOCK_UN) == 0);
	FREE(p);
	CHECK(flock(b, LOCK_SH | LOCK_NB) == 0);
	BUSY(p);
	close(a);
	BUSY(p);
	close(b);
	FREE(p);
	errno = 0;
	CHECK(flock(-1, LOCK_EX) == -1 && errno == EBADF);
}

static void sc_fork(const char *p)
{
	int fd = open_rw(p), st;
	pid_t pid;

	CHECK(flock(fd, LOCK_EX) == 0);
	pid = fork();
	if (pid == 0) {
		close(fd); /* the parent still has it: nothing released */
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	BUSY(p);
	pid = fork();
	if (pid == 0)
		exit(0); /* exit() in a child that shares the lock: still nothing */
	CHECK(waitpid(pid, &st, 0) == pid);
	BUSY(p);
	close(fd);
	FREE(p);
}

/* Lock a pidfile, fork, parent exits: the child keeps the lock. */
static void sc_daemon(const char *p, int use_exit)
{
	int go[2], ready[2], st;
	pid_t parent, child = 0;
	char c;

	CHECK(pipe(go) == 0 && pipe(ready) == 0);
	parent = fork();
	if (parent == 0) {
		int fd = open_rw(p);
		if (flock(fd, LOCK_EX) != 0)
			_exit(2);
		child = fork();
		if (child == 0) {
			close(go[1]);
			if (write(ready[1], "r", 1) != 1)
				_exit(2);
			if (read(go[0], &c, 1) < 0) /* wait for the test to say go */
				_exit(2);
			close(fd);
			exit(0);
		}
		if (use_exit)
			exit(0);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	CHECK(read(ready[0], &c, 1) == 1);
	CHECK(waitpid(parent, &st, 0) == parent && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	BUSY(p); /* the taker is gone, the daemon child holds it */
	close(go[1]);
	CHECK(read(ready[0], &c, 1) == 0); /* the daemon closed its end: exited */
	close(ready[0]);
	while (try_other(p) == 3) {
		/* The daemon's exit is asynchronous to its pipe closing; wait it out
		 * through the lock itself, bounded by the test's alarm. */
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	FREE(p);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void sc_eintr(const char *p)
{
	int a = open_rw(p), b = open_rw(p);
	struct sigaction sa;
	/* Repeating: under load the first signal may come before the wait starts. */
	struct itimerval it = { { 0, 200000 }, { 0, 200000 } }, off = { { 0, 0 }, { 0, 0 } };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART, like flock(1) -w */
	sigaction(SIGALRM, &sa, NULL);
	CHECK(flock(a, LOCK_EX) == 0);
	setitimer(ITIMER_REAL, &it, NULL);
	errno = 0;
	CHECK(flock(b, LOCK_EX) == -1 && errno == EINTR);
	setitimer(ITIMER_REAL, &off, NULL);
	close(a);
	CHECK(flock(b, LOCK_EX) == 0);
	close(b);
	FREE(p);
}

/* "flp-probe trywr PATH": exit 0 when a write lock on the whole file is
 * free (taken and dropped), 3 when another process holds a range of it. */
static int cmd_trywr(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return 4;
	if (fcntl(fd, F_SETLK, &fl) != 0)
		return errno == EAGAIN || errno == EACCES ? 3 : 4;
	close(fd);
	return 0;
}

static int trywr_other(const char *path)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		execl(self, self, "trywr", path, (char *)NULL);
		_exit(99);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* fcntl and lockf byte-range locks on a matching path are emulated (their
 * semantics are ranges.sh's); other fcntl commands, and files no rule
 * matches, go to the kernel. */
static void sc_fcntl(const char *p, const char *other)
{
	int fd = open_rw(p), o = open_rw(other);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	CHECK(fcntl(fd, F_SETLK, &fl) == 0);
	CHECK(trywr_other(p) == 3);
	fl.l_type = F_WRLCK;
	CHECK(fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK); /* our own */
	fl.l_type = F_UNLCK;
	CHECK(fcntl(fd, F_SETLK, &fl) == 0);
	CHECK(trywr_other(p) == 0);
	CHECK(lockf(fd, F_TLOCK, 0) == 0);
	CHECK(trywr_other(p) == 3);
	CHECK(lockf(fd, F_ULOCK, 0) == 0);
	CHECK(trywr_other(p) == 0);
	CHECK(fcntl(fd, F_GETFD) >= 0); /* other commands pass through */
	fl.l_type = F_WRLCK;
	CHECK(fcntl(o, F_SETLK, &fl) == 0); /* no rule: the kernel's lock */
	CHECK(lockf(o, F_TLOCK, 0) == 0);
	CHECK(fcntl(fd, F_SETLK, &fl) == 0);
	close(fd); /* releases */
	CHECK(trywr_other(p) == 0);
	close(o);
}

/* The lock survives execve; the new image re-adopts and releases it. */
static void sc_exec(const char *p)
{
	int fd = open_rw(p);
	char num[16];

	CHECK(flock(fd, LOCK_EX) == 0);
	snprintf(num, sizeof(num), "%d", fd);
	fflush(NULL);
	execl(self, self, "exec-child", p, num, (char *)NULL);
	perror("execl");
	exit(1);
}

static void sc_exec_child(const char *p, int fd)
{
	BUSY(p);
	CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0); /* ours already: no self-deadlock */
	BUSY(p);
	CHECK(flock(fd, LOCK_UN) == 0);
	FREE(p);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "", *p = argc > 2 ? argv[2] : NULL;

	self = argv[0];
	alarm(60);
	if (p == NULL) {
		fprintf(stderr, "usage: flp-probe SCENARIO PATH [ARGS]\n");
		return 2;
	}
	if (!strcmp(cmd, "try"))
		return cmd_try(p);
	if (!strcmp(cmd, "trywr"))
		return cmd_trywr(p);
	if (!strcmp(cmd, "counter") && argc == 5)
		return cmd_counter(p, argv[3], atoi(argv[4]));
	if (!strcmp(cmd, "dup"))
		sc_dup(p);
	else if (!strcmp(cmd, "dup2"))
		sc_dup2(p);
	else if (!strcmp(cmd, "closers"))
		sc_closers(p);
	else if (!strcmp(cmd, "nb"))
		sc_nb(p);
	else if (!strcmp(cmd, "fork"))
		sc_fork(p);
	else if (!strcmp(cmd, "daemon"))
		sc_daemon(p, 1);
	else if (!strcmp(cmd, "daemon-_exit"))
		sc_daemon(p, 0);
	else if (!strcmp(cmd, "eintr"))
		sc_eintr(p);
	else if (!strcmp(cmd, "fcntl") && argc == 4)
		sc_fcntl(p, argv[3]);
	else if (!strcmp(cmd, "exec"))
		sc_exec(p);
	else if (!strcmp(cmd, "exec-child") && argc == 4)
		sc_exec_child(p, atoi(argv[3]));
	else {
		fprintf(stderr, "flp-probe: unknown scenario %s\n", cmd);
		return 2;
	}
	return failures ? 1 : 0;
}
