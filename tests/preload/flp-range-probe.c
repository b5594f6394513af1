/* SPDX-License-Identifier: MIT */
/*
 * flp-range-probe -- POSIX byte-range lock scenarios (fcntl F_SETLK,
 * F_SETLKW, F_GETLK, F_OFD_*, lockf) that check themselves.  ranges.sh runs
 * each scenario on a local file without the shim, where the kernel answers,
 * and with the shim and a rule matching the file, where the emulation
 * answers: both runs must pass every check and print the same transcript.
 *
 *   flp-range-probe SCENARIO PATH OTHER   one scenario (the table in main)
 *   flp-range-probe list|limits x y       the scenarios the shim must pass,
 *                                         and those it is known to fail
 *   flp-range-probe serve PATH OTHER [FDS] a helper process (below)
 *   flp-range-probe do PATH OTHER CMD...  each CMD in this process, answers
 *                                         on stdout, one line each
 *
 * Locks are observed from other processes, which is the only place a
 * POSIX lock can be seen.  A helper ("server") is this program exec'd with
 * "serve" (or, to test fork, a fork child running the same loop): it reads
 * one command per line on stdin and answers one line on stdout.  The
 * scenario runs the same command language on itself, so every step, local
 * or remote, is one line of the transcript:
 *
 *   NAME: COMMAND -> ANSWER
 *
 * with pids replaced by the names of the processes ("main", "A", "B", ...)
 * so that two runs can be compared.  Descriptors are named by slots (the
 * order they were opened in), not by numbers, for the same reason.
 *
 * Commands (K, J: slots; T: R, W, U or a number; S, L: l_start, l_len):
 *   open rw|r|w|path  open PATH (path: O_PATH)   -> "slot K"
 *   openl | openh     open PATH.sym, PATH.hard   -> "slot K"
 *   openo             open OTHER read-write      -> "slot K"
 *   fopen             fopen(PATH, "r+")          -> "slot K"
 *   dup K             dup                        -> "slot J"
 *   dup2 K J          dup2(fd K, fd J)           -> "0"
 *   fdup K            fcntl F_DUPFD_CLOEXEC      -> "slot J"
 *   freopen K         freopen(OTHER, "r") on slot K's FILE -> "0"
 *   many K T S STEP COUNT LEN   COUNT F_SETLKs    -> "0" or the first error
 *   close K | fclose K | crange K (close_range)  -> "0"
 *   s|w|g K T S L [set|cur|end|bad] [pid1]       F_SETLK, F_SETLKW, F_GETLK
 *   os|ow|og ...      the same with F_OFD_*
 *   lockf K TLOCK|ULOCK|TEST|LOCK LEN
 *   seek K OFF        lseek(SEEK_SET)            -> "0"
 *   sig               SIGUSR1 handler, no SA_RESTART
 *   alarm K T S L MS  F_SETLKW after arming a one-shot MS ms SIGALRM timer
 *                     (handler without SA_RESTART); re-arms alarm(60)
 *   jump K T S L MS   the same, the handler siglongjmps out -> "jumped"
 *   sigr              SIGUSR1 handler with SA_RESTART, which writes
 *                     "signal" on stdout each time it runs (servers only)
 *   pid               -> "pid N"
 *   fsize N           RLIMIT_FSIZE N bytes (-1: none), SIGXFSZ ignored:
 *                     writes fail with EFBIG, as on a full disk
 *   exec              execve this program, keeping the descriptors; the
 *                     new image answers "pid N"
 *   cloexec K         set FD_CLOEXEC (the slot is forgotten)
 *   t COMMAND         COMMAND in a new thread of this process (joined)
 *   exit | _exit      no answer
 * A set answers "0", "busy" (EAGAIN or EACCES: POSIX allows both) or the
 * errno's name; a get answers "U" or "TYPE START LEN PID".  A waiting
 * command (w, ow, lockf LOCK) first answers "waiting" after an F_GETLK
 * that sees the conflict (or "free" when there is none), then its result.
 *
 * Every process arms alarm(); processes are synchronised through the
 * command pipes only, never by sleeping.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSLOT 32

static const char *self, *path, *other;
static int failures;

/* ---- the command language ------------------------------------------------ */

static int slot_fd[NSLOT];
static FILE *slot_fp[NSLOT];

static void slots_init(void)
{
	for (int i = 0; i < NSLOT; i++) {
		slot_fd[i] = -1;
		slot_fp[i] = NULL;
	}
}

static int slot_new(int fd, FILE *fp)
{
	for (int i = 0; i < NSLOT; i++) {
		if (slot_fd[i] < 0) {
			slot_fd[i] = fd;
			slot_fp[i] = fp;
			return i;
		}
	}
	fprintf(stderr, "flp-range-probe: out of slots\n");
	exit(2);
}

static int slot_get(const char *s)
{
	int k = atoi(s);

	if (!strcmp(s, "x"))
		return 999; /* a descriptor that is not open */
	if (k < 0 || k >= NSLOT || slot_fd[k] < 0) {
		fprintf(stderr, "flp-range-probe[%d]: bad slot %s\n", (int)getpid(), s);
		exit(2);
	}
	return slot_fd[k];
}

static void slot_forget(const char *s)
{
	int k = atoi(s);

	slot_fd[k] = -1;
	slot_fp[k] = NULL;
}

static const char *errname(int e)
{
	static char buf[32];

	switch (e) {
	case 0:
		return "0";
	case EAGAIN:
	case EACCES:
		return "busy";
	case EINVAL:
		return "EINVAL";
	case EBADF:
		return "EBADF";
	case EINTR:
		return "EINTR";
	case ENOLCK:
		return "ENOLCK";
	case EDEADLK:
		return "EDEADLK";
	case EOVERFLOW:
		return "EOVERFLOW";
	case EIO:
		return "EIO";
	default:
		snprintf(buf, sizeof(buf), "errno %d", e);
		return buf;
	}
}

static short parse_type(const char *t)
{
	if (!strcmp(t, "R"))
		return F_RDLCK;
	if (!strcmp(t, "W"))
		return F_WRLCK;
	if (!strcmp(t, "U"))
		return F_UNLCK;
	return (short)atoi(t);
}

static void on_usr1(int sig)
{
	(void)sig;
}

static sigjmp_buf jmp_env;

static void on_alarm_jump(int sig)
{
	(void)sig;
	siglongjmp(jmp_env, 1);
}

/* The SA_RESTART handler says it ran, on the answer pipe. */
static void on_usr1_say(int sig)
{
	int e = errno;

	(void)sig;
	if (write(1, "signal\n", 7) != 7)
		_exit(3);
	errno = e;
}

static void say(int out, const char *s)
{
	size_t n = strlen(s);
	char buf[512];

	snprintf(buf, sizeof(buf), "%s\n", s);
	if (write(out, buf, n + 1) != (ssize_t)(n + 1))
		_exit(3);
}

static void exec_self(void);
static int run_cmd(char *line, char *ans, size_t cap, int out);

struct thread_cmd {
	char *line, *ans;
	size_t cap;
};

static void *thread_main(void *arg)
{
	struct thread_cmd *t = arg;

	run_cmd(t->line, t->ans, t->cap, -1);
	return NULL;
}

/*
 * Runs one command line; the answer goes to ans.  `out` (or -1) receives
 * the "waiting" line of a waiting command before it blocks.  Returns 0, or
 * 1 for exit commands (handled by the caller).
 */
static int run_cmd(char *line, char *ans, size_t cap, int out)
{
	char *av[12];
	int ac = 0, fd, r;

	for (char *t = strtok(line, " \n"); t && ac < 12; t = strtok(NULL, " \n"))
		av[ac++] = t;
	ans[0] = '\0';
	if (ac == 0) {
		snprintf(ans, cap, "empty command");
		return 0;
	}
	errno = 0;
	if (!strcmp(av[0], "t") && ac >= 2) {
		/* The rest of the line, in a thread of this process. */
		char rest[512] = "";
		struct thread_cmd t = { rest, ans, cap };
		pthread_t th;
		for (int i = 1; i < ac; i++)
			snprintf(rest + strlen(rest), sizeof(rest) - strlen(rest), "%s%s",
				 i > 1 ? " " : "", av[i]);
		if (pthread_create(&th, NULL, thread_main, &t) != 0 || pthread_join(th, NULL) != 0)
			snprintf(ans, cap, "pthread failed");
	} else if (!strcmp(av[0], "open") && ac == 2) {
		int fl = !strcmp(av[1], "r")	  ? O_RDONLY
			 : !strcmp(av[1], "w")	  ? O_WRONLY
			 : !strcmp(av[1], "path") ? O_PATH
						  : O_RDWR;
		fd = open(path, fl);
		if (fd < 0)
			snprintf(ans, cap, "open: %s", strerror(errno));
		else
			snprintf(ans, cap, "slot %d", slot_new(fd, NULL));
	} else if ((!strcmp(av[0], "openl") || !strcmp(av[0], "openh")) && ac == 1) {
		/* Through a symbolic link, or a hard link, made by the scenario. */
		char p2[4200];
		snprintf(p2, sizeof(p2), "%s.%s", path, av[0][4] == 'l' ? "sym" : "hard");
		fd = open(p2, O_RDWR);
		if (fd < 0)
			snprintf(ans, cap, "open: %s", strerror(errno));
		else
			snprintf(ans, cap, "slot %d", slot_new(fd, NULL));
	} else if (!strcmp(av[0], "openo")) {
		fd = open(other, O_RDWR | O_CREAT, 0644);
		if (fd < 0)
			snprintf(ans, cap, "open: %s", strerror(errno));
		else
			snprintf(ans, cap, "slot %d", slot_new(fd, NULL));
	} else if (!strcmp(av[0], "fopen")) {
		FILE *fp = fopen(path, "r+");
		if (fp == NULL)
			snprintf(ans, cap, "fopen: %s", strerror(errno));
		else
			snprintf(ans, cap, "slot %d", slot_new(fileno(fp), fp));
	} else if (!strcmp(av[0], "dup") && ac == 2) {
		fd = dup(slot_get(av[1]));
		if (fd < 0)
			snprintf(ans, cap, "dup: %s", strerror(errno));
		else
			snprintf(ans, cap, "slot %d", slot_new(fd, NULL));
	} else if (!strcmp(av[0], "fdup") && ac == 2) {
		fd = fcntl(slot_get(av[1]), F_DUPFD_CLOEXEC, 20);
		if (fd < 0)
			snprintf(ans, cap, "F_DUPFD_CLOEXEC: %s", strerror(errno));
		else
			snprintf(ans, cap, "slot %d", slot_new(fd, NULL));
	} else if (!strcmp(av[0], "freopen") && ac == 2) {
		/* The FILE moves to OTHER; its old descriptor is closed. */
		FILE *fp = slot_fp[atoi(av[1])];
		fp = fp ? freopen(other, "r", fp) : NULL;
		if (fp == NULL) {
			snprintf(ans, cap, "freopen failed");
		} else {
			slot_fd[atoi(av[1])] = fileno(fp);
			snprintf(ans, cap, "0");
		}
	} else if (!strcmp(av[0], "many") && ac == 7) {
		/* COUNT F_SETLKs of T, LEN bytes each, every STEP bytes from S. */
		struct flock fl = { .l_type = parse_type(av[2]), .l_whence = SEEK_SET };
		long long st = atoll(av[3]), step = atoll(av[4]);
		int count = atoi(av[5]);
		fd = slot_get(av[1]);
		fl.l_len = (off_t)atoll(av[6]);
		r = 0;
		for (int i = 0; i < count && r == 0; i++) {
			fl.l_start = (off_t)(st + step * i);
			r = fcntl(fd, F_SETLK, &fl) == 0 ? 0 : errno;
		}
		snprintf(ans, cap, "%s", errname(r));
	} else if (!strcmp(av[0], "dup2") && ac == 3) {
		r = dup2(slot_get(av[1]), slot_get(av[2]));
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "close") && ac == 2) {
		r = close(slot_get(av[1]));
		slot_forget(av[1]);
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "fclose") && ac == 2) {
		FILE *fp = slot_fp[atoi(av[1])];
		r = fp ? fclose(fp) : -1;
		slot_forget(av[1]);
		snprintf(ans, cap, "%s", fp ? errname(r < 0 ? errno : 0) : "not a FILE");
	} else if (!strcmp(av[0], "crange") && ac == 2) {
		fd = slot_get(av[1]);
		r = close_range((unsigned)fd, (unsigned)fd, 0);
		slot_forget(av[1]);
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "seek") && ac == 3) {
		r = lseek(slot_get(av[1]), atoll(av[2]), SEEK_SET) < 0 ? errno : 0;
		snprintf(ans, cap, "%s", errname(r));
	} else if ((!strcmp(av[0], "s") || !strcmp(av[0], "w") || !strcmp(av[0], "g") ||
		    !strcmp(av[0], "os") || !strcmp(av[0], "ow") || !strcmp(av[0], "og")) &&
		   ac >= 5) {
		int ofd = av[0][0] == 'o', op = av[0][ofd];
		int cmd = op == 's' ? (ofd ? F_OFD_SETLK : F_SETLK)
			  : op == 'w' ? (ofd ? F_OFD_SETLKW : F_SETLKW)
				      : (ofd ? F_OFD_GETLK : F_GETLK);
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fd = slot_get(av[1]);
		fl.l_type = parse_type(av[2]);
		fl.l_start = (off_t)atoll(av[3]);
		fl.l_len = (off_t)atoll(av[4]);
		fl.l_whence = SEEK_SET;
		for (int i = 5; i < ac; i++) {
			if (!strcmp(av[i], "cur"))
				fl.l_whence = SEEK_CUR;
			else if (!strcmp(av[i], "end"))
				fl.l_whence = SEEK_END;
			else if (!strcmp(av[i], "bad"))
				fl.l_whence = 7;
			else if (!strcmp(av[i], "pid1"))
				fl.l_pid = 1;
		}
		if (op == 'w') {
			struct flock t = fl;
			t.l_pid = 0;
			if (fcntl(fd, ofd ? F_OFD_GETLK : F_GETLK, &t) != 0)
				snprintf(ans, cap, "getlk before waiting: %s", errname(errno));
			else if (out >= 0)
				say(out, t.l_type == F_UNLCK ? "free" : "waiting");
			if (ans[0])
				return 0;
		}
		r = fcntl(fd, cmd, &fl);
		if (r != 0)
			snprintf(ans, cap, "%s", errname(errno));
		else if (op != 'g')
			snprintf(ans, cap, "0");
		else if (fl.l_type == F_UNLCK)
			snprintf(ans, cap, "U");
		else
			snprintf(ans, cap, "%s %lld %lld %d%s",
				 fl.l_type == F_RDLCK	? "R"
				 : fl.l_type == F_WRLCK ? "W"
							: "?",
				 (long long)fl.l_start, (long long)fl.l_len, (int)fl.l_pid,
				 fl.l_whence == SEEK_SET ? "" : " whence!=SEEK_SET");
	} else if (!strcmp(av[0], "lockf") && ac == 4) {
		int c = !strcmp(av[2], "TLOCK")	  ? F_TLOCK
			: !strcmp(av[2], "ULOCK") ? F_ULOCK
			: !strcmp(av[2], "TEST")  ? F_TEST
						  : F_LOCK;
		fd = slot_get(av[1]);
		if (c == F_LOCK && out >= 0) {
			/* lockf locks for writing from the current offset. */
			struct flock t = { .l_type = F_WRLCK, .l_whence = SEEK_CUR };
			t.l_len = (off_t)atoll(av[3]);
			if (fcntl(fd, F_GETLK, &t) != 0) {
				snprintf(ans, cap, "getlk before waiting: %s", errname(errno));
				return 0;
			}
			say(out, t.l_type == F_UNLCK ? "free" : "waiting");
		}
		r = lockf(fd, c, (off_t)atoll(av[3]));
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "cloexec") && ac == 2) {
		r = fcntl(slot_get(av[1]), F_SETFD, FD_CLOEXEC);
		slot_forget(av[1]); /* gone after the next exec */
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "alarm") && ac == 6) {
		/* The classic timeout: a one-shot timer, then F_SETLKW. */
		struct itimerval it = { { 0, 0 }, { 0, 1000 * atoi(av[5]) } };
		struct flock fl = { .l_type = parse_type(av[2]), .l_whence = SEEK_SET };
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1; /* no SA_RESTART */
		sigaction(SIGALRM, &sa, NULL);
		fl.l_start = (off_t)atoll(av[3]);
		fl.l_len = (off_t)atoll(av[4]);
		fd = slot_get(av[1]);
		setitimer(ITIMER_REAL, &it, NULL);
		r = fcntl(fd, F_SETLKW, &fl);
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
		alarm(60);
	} else if (!strcmp(av[0], "jump") && ac == 6) {
		/* The older timeout: the handler siglongjmps out of F_SETLKW. */
		static struct itimerval it;
		static struct flock fl;
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		memset(&fl, 0, sizeof(fl));
		sa.sa_handler = on_alarm_jump;
		sigaction(SIGALRM, &sa, NULL);
		fl.l_type = parse_type(av[2]);
		fl.l_start = (off_t)atoll(av[3]);
		fl.l_len = (off_t)atoll(av[4]);
		it.it_value.tv_usec = 1000 * atoi(av[5]);
		fd = slot_get(av[1]);
		if (sigsetjmp(jmp_env, 1) == 0) {
			setitimer(ITIMER_REAL, &it, NULL);
			r = fcntl(fd, F_SETLKW, &fl);
			snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
		} else {
			snprintf(ans, cap, "jumped");
		}
		alarm(60);
	} else if (!strcmp(av[0], "sigr")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1_say;
		sa.sa_flags = SA_RESTART;
		r = sigaction(SIGUSR1, &sa, NULL);
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "sig")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1; /* no SA_RESTART */
		r = sigaction(SIGUSR1, &sa, NULL);
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "pid")) {
		snprintf(ans, cap, "pid %d", (int)getpid());
	} else if (!strcmp(av[0], "fsize") && ac == 2) {
		/* A file size limit (-1: none): the next write of a new file
		 * fails with EFBIG, as on a full disk, without killing us. */
		struct rlimit rl;
		signal(SIGXFSZ, SIG_IGN);
		r = getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = atoll(av[1]) < 0 ? rl.rlim_max : (rlim_t)atoll(av[1]);
		if (r == 0)
			r = setrlimit(RLIMIT_FSIZE, &rl);
		snprintf(ans, cap, "%s", errname(r < 0 ? errno : 0));
	} else if (!strcmp(av[0], "exec")) {
		exec_self();
		snprintf(ans, cap, "exec: %s", strerror(errno));
	} else if (!strcmp(av[0], "exit") || !strcmp(av[0], "_exit")) {
		return 1;
	} else {
		snprintf(ans, cap, "unknown command %s", av[0]);
	}
	return 0;
}

/* Reads one line from fd, byte by byte (so that nothing is buffered past
 * it: a server may exec, a scenario may poll).  0 at EOF. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			buf[n] = '\0';
			return n > 0;
		}
		if (c == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = c;
	}
	buf[n] = '\0';
	return 1;
}

/* The server loop: commands on in, answers on out. */
static int serve(int in, int out)
{
	char line[512], ans[512];

	snprintf(ans, sizeof(ans), "pid %d", (int)getpid());
	say(out, ans);
	while (read_line(in, line, sizeof(line))) {
		int quick = !strcmp(line, "_exit");
		if (run_cmd(line, ans, sizeof(ans), out)) {
			if (quick)
				_exit(0);
			exit(0);
		}
		say(out, ans);
	}
	return 0;
}

/* "exec": the same program, serving on the same pipes, with the same slots. */
static void exec_self(void)
{
	char fds[NSLOT * 12] = "", *p = fds;

	for (int i = 0; i < NSLOT; i++)
		p += snprintf(p, sizeof(fds) - (size_t)(p - fds), "%s%d", i ? "," : "", slot_fd[i]);
	fflush(NULL);
	execl(self, self, "serve", path, other, fds, (char *)NULL);
}

static void slots_from(const char *s)
{
	for (int i = 0; i < NSLOT && *s; i++) {
		char *end;
		slot_fd[i] = (int)strtol(s, &end, 10);
		s = *end == ',' ? end + 1 : end;
	}
}

/* ---- the scenarios' side ------------------------------------------------- */

struct proc {
	const char *name;
	pid_t pid;
	int in, out; /* command pipe, answer pipe; -1 for main itself */
};

static struct proc *procs[16];
static struct proc me = { "main", 0, -1, -1 };

static void reg(struct proc *p)
{
	for (int i = 0; i < 16; i++) {
		if (procs[i] == NULL || procs[i] == p) {
			procs[i] = p;
			return;
		}
	}
}

static void unreg(struct proc *p)
{
	for (int i = 0; i < 16; i++)
		if (procs[i] == p)
			procs[i] = NULL;
}

static const char *pid_name(pid_t pid)
{
	for (int i = 0; i < 16; i++)
		if (procs[i] && procs[i]->pid == pid)
			return procs[i]->name;
	return NULL;
}

/* An answer with pids replaced by process names. */
static void symbolise(char *ans, size_t cap)
{
	const char *n;
	char *num;
	pid_t pid;

	if (!strncmp(ans, "pid ", 4))
		num = ans + 4;
	else if ((ans[0] == 'R' || ans[0] == 'W') && ans[1] == ' ' && !strstr(ans, "whence") &&
		 (num = strrchr(ans, ' ')) != NULL)
		num++;
	else
		return;
	pid = (pid_t)atoi(num);
	if (pid <= 0)
		return;
	n = pid_name(pid);
	snprintf(num, cap - (size_t)(num - ans), "%s", n ? n : "pid?");
}

static char last[512];

static void note(const struct proc *p, const char *cmd, const char *ans)
{
	printf("%s: %s -> %s\n", p->name, cmd, ans);
	fflush(stdout);
}

static void bad(int line, const struct proc *p, const char *cmd, const char *want,
		const char *got)
{
	fprintf(stderr, "flp-range-probe: line %d: %s: %s: expected \"%s\", got \"%s\"\n", line,
		p->name, cmd, want, got);
	failures++;
}

/* Sends a command without waiting for its answer. */
static void send_cmd(struct proc *p, const char *cmd)
{
	char buf[512];
	size_t n;

	snprintf(buf, sizeof(buf), "%s\n", cmd);
	n = strlen(buf);
	if (write(p->in, buf, n) != (ssize_t)n) {
		fprintf(stderr, "flp-range-probe: %s is gone (%s)\n", p->name, cmd);
		exit(1);
	}
}

static const char *recv_ans(struct proc *p, const char *cmd)
{
	if (!read_line(p->out, last, sizeof(last))) {
		fprintf(stderr, "flp-range-probe: %s died during \"%s\"\n", p->name, cmd);
		exit(1);
	}
	symbolise(last, sizeof(last));
	return last;
}

/* Runs cmd in p (main itself when p->in < 0); returns the answer. */
static const char *q_quiet(struct proc *p, const char *cmd)
{
	char line[512];

	if (p->in < 0) {
		snprintf(line, sizeof(line), "%s", cmd);
		run_cmd(line, last, sizeof(last), -1);
		symbolise(last, sizeof(last));
	} else {
		send_cmd(p, cmd);
		recv_ans(p, cmd);
	}
	return last;
}

/* The same, logged. */
static const char *q(struct proc *p, const char *cmd)
{
	q_quiet(p, cmd);
	note(p, cmd, last);
	return last;
}

#define EXPECT(p, cmd, want)                                   \
	do {                                                   \
		const char *got_ = q((p), (cmd));              \
		if (strcmp(got_, (want)) != 0)                 \
			bad(__LINE__, (p), (cmd), (want), got_); \
	} while (0)

/* Sends a waiting command and checks its first answer. */
#define WAIT_START(p, cmd)                                              \
	do {                                                            \
		send_cmd((p), (cmd));                                   \
		const char *got_ = recv_ans((p), (cmd));                \
		note((p), (cmd), got_);                                 \
		if (strcmp(got_, "waiting") != 0)                       \
			bad(__LINE__, (p), (cmd), "waiting", got_);     \
	} while (0)

#define WAIT_END(p, cmd, want)                                          \
	do {                                                            \
		const char *got_ = recv_ans((p), (cmd));                \
		note((p), "(result)", got_);                            \
		if (strcmp(got_, (want)) != 0)                          \
			bad(__LINE__, (p), (cmd), (want), got_);        \
	} while (0)

/* Has p answered (within ms)?  Only ever used to check that a waiter is
 * still waiting; nothing is synchronised by it. */
static int answered(struct proc *p, int ms)
{
	struct pollfd pf = { .fd = p->out, .events = POLLIN };

	return poll(&pf, 1, ms) > 0;
}

#define STILL_WAITING(p)                                                               \
	do {                                                                           \
		if (answered((p), 50)) {                                               \
			fprintf(stderr, "flp-range-probe: line %d: %s answered while it "  \
					"should still wait\n",                             \
				__LINE__, (p)->name);                                      \
			failures++;                                                    \
		}                                                                      \
	} while (0)

static void child_pipes(int to[2], int from[2])
{
	if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) {
		perror("pipe2");
		exit(2);
	}
}

static void proc_started(struct proc *p, const char *name, int to[2], int from[2])
{
	char want[32];

	close(to[0]);
	close(from[1]);
	p->name = name;
	p->in = to[1];
	p->out = from[0];
	if (!read_line(p->out, last, sizeof(last))) {
		fprintf(stderr, "flp-range-probe: %s did not start\n", name);
		exit(1);
	}
	snprintf(want, sizeof(want), "pid %d", (int)p->pid);
	if (strcmp(last, want) != 0) {
		fprintf(stderr, "flp-range-probe: %s: \"%s\", expected \"%s\"\n", name, last, want);
		exit(1);
	}
	reg(p);
}

/* A server: this program exec'd. */
static void start(struct proc *p, const char *name)
{
	int to[2], from[2];

	child_pipes(to, from);
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		perror("fork");
		exit(2);
	}
	if (p->pid == 0) {
		if (dup2(to[0], 0) != 0 || dup2(from[1], 1) != 1)
			_exit(98);
		execl(self, self, "serve", path, other, (char *)NULL);
		_exit(99);
	}
	proc_started(p, name, to, from);
}

/* A server that is a fork child of this process, with its descriptors. */
static void start_forked(struct proc *p, const char *name)
{
	int to[2], from[2];

	child_pipes(to, from);
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0) {
		perror("fork");
		exit(2);
	}
	if (p->pid == 0) {
		close(to[1]);
		close(from[0]);
		for (int i = 0; i < 16; i++)
			if (procs[i] && procs[i]->in >= 0) {
				close(procs[i]->in);
				close(procs[i]->out);
			}
		serve(to[0], from[1]);
		exit(0);
	}
	proc_started(p, name, to, from);
}

static void reap(struct proc *p, int want_sig)
{
	int st;

	close(p->in);
	close(p->out);
	if (waitpid(p->pid, &st, 0) != p->pid) {
		perror("waitpid");
		failures++;
	} else if (want_sig ? !(WIFSIGNALED(st) && WTERMSIG(st) == want_sig)
			    : !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		fprintf(stderr, "flp-range-probe: %s ended with status 0x%x\n", p->name, st);
		failures++;
	}
	unreg(p);
	p->in = p->out = -1;
}

/* The process exits (exit(), or _exit() with quick); reaped. */
static void stop(struct proc *p, int quick)
{
	note(p, quick ? "_exit" : "exit", "");
	send_cmd(p, quick ? "_exit" : "exit");
	reap(p, 0);
}

static void killed(struct proc *p)
{
	note(p, "SIGKILL", "");
	kill(p->pid, SIGKILL);
	reap(p, SIGKILL);
}

/* ---- scenarios ----------------------------------------------------------- */

/* Read locks share between processes, write locks exclude, disjoint ranges
 * do not conflict. */
static void sc_share(void)
{
	struct proc a, b;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&a, "s 0 R 0 10", "0");
	EXPECT(&b, "s 0 R 0 10", "0");
	EXPECT(&me, "s 0 W 0 10", "busy");
	EXPECT(&me, "s 0 W 5 1", "busy");
	EXPECT(&me, "s 0 W 9 100", "busy");
	EXPECT(&me, "s 0 R 0 100", "0");
	EXPECT(&me, "s 0 W 10 90", "0"); /* converts our own read, disjoint from theirs */
	EXPECT(&b, "s 0 U 0 0", "0");
	EXPECT(&me, "s 0 U 0 0", "0");
	EXPECT(&b, "g 0 W 0 0", "R 0 10 A");
	EXPECT(&b, "s 0 W 0 10", "busy");
	EXPECT(&b, "s 0 W 10 10", "0");
	EXPECT(&a, "s 0 R 10 1", "busy");
	EXPECT(&a, "s 0 W 0 10", "0"); /* upgrade: only A reads there */
	EXPECT(&a, "g 0 R 0 0", "W 10 10 B");
	EXPECT(&b, "g 0 R 0 0", "W 0 10 A");
	EXPECT(&me, "g 0 R 0 10", "W 0 10 A");
	EXPECT(&me, "g 0 R 10 0", "W 10 10 B");
	EXPECT(&me, "g 0 R 20 0", "U");
	stop(&a, 0);
	stop(&b, 0);
	EXPECT(&me, "g 0 W 0 0", "U");
}

/* Conflicts start and end at exact bytes; adjacent ranges do not conflict;
 * negative lengths, SEEK_END, huge offsets, EOVERFLOW. */
static void sc_bounds(void)
{
	struct proc a, b;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 10 10", "0");
	EXPECT(&b, "s 0 W 0 10", "0");
	EXPECT(&b, "s 0 W 20 10", "0");
	EXPECT(&b, "s 0 W 9 2", "busy");
	EXPECT(&b, "s 0 W 19 1", "busy");
	EXPECT(&b, "s 0 W 10 1", "busy");
	EXPECT(&b, "s 0 R 15 100", "busy");
	EXPECT(&b, "s 0 R 0 0", "busy");
	EXPECT(&me, "g 0 R 9 1", "W 0 10 B");
	EXPECT(&me, "g 0 R 10 10", "W 10 10 A");
	EXPECT(&me, "g 0 R 19 1", "W 10 10 A");
	EXPECT(&me, "g 0 R 20 0", "W 20 10 B");
	EXPECT(&me, "g 0 R 30 0", "U");
	EXPECT(&b, "s 0 U 0 0", "0");
	EXPECT(&b, "s 0 W 20 -10", "busy"); /* bytes 10..19 */
	EXPECT(&b, "s 0 W 10 -10", "0");    /* bytes 0..9 */
	EXPECT(&me, "g 0 R 0 10", "W 0 10 B");
	EXPECT(&b, "s 0 W -90 10 end", "busy"); /* the file has 100 bytes: 10..19 */
	EXPECT(&b, "s 0 W -80 0 end", "0");     /* 20..EOF */
	EXPECT(&me, "g 0 R 50 1", "W 20 0 B");
	EXPECT(&b, "s 0 U 0 0", "0");
	EXPECT(&b, "seek 0 40", "0");
	EXPECT(&b, "s 0 W -5 10 cur", "0"); /* 35..44 */
	EXPECT(&me, "seek 0 30", "0");
	EXPECT(&me, "g 0 R 0 0 cur", "W 35 10 B");
	EXPECT(&me, "g 0 R 15 -1 cur", "W 35 10 B"); /* byte 44 */
	EXPECT(&me, "g 0 R 15 0 cur", "U");
	EXPECT(&b, "s 0 U 0 0", "0");
	EXPECT(&b, "s 0 W 9223372036854775800 7", "0");
	EXPECT(&me, "g 0 R 1000 0", "W 9223372036854775800 7 B");
	EXPECT(&b, "s 0 W 9223372036854775800 100", "EOVERFLOW");
	EXPECT(&me, "s 0 W 9223372036854775806 1", "busy");
	EXPECT(&me, "s 0 W 9223372036854775807 0", "0");
	EXPECT(&b, "g 0 R 9223372036854775000 0", "W 9223372036854775807 0 main");
	stop(&a, 0);
	stop(&b, 0);
}

/* Ranges of one owner merge; a second process sees the result. */
static void sc_merge(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "s 0 W 10 10", "0");
	EXPECT(&b, "g 0 R 0 0", "W 0 20 main");
	EXPECT(&me, "s 0 W 30 10", "0");
	EXPECT(&b, "g 0 R 20 0", "W 30 10 main");
	EXPECT(&me, "s 0 W 15 20", "0");
	EXPECT(&b, "g 0 R 0 0", "W 0 40 main");
	EXPECT(&me, "s 0 R 40 10", "0"); /* adjacent, other type: not merged */
	EXPECT(&b, "g 0 W 35 0", "W 0 40 main");
	EXPECT(&b, "g 0 W 40 0", "R 40 10 main");
	EXPECT(&b, "g 0 R 40 0", "U");
	EXPECT(&me, "s 0 R 50 10", "0");
	EXPECT(&b, "g 0 W 45 0", "R 40 20 main");
	EXPECT(&me, "s 0 R 100 0", "0");
	EXPECT(&me, "s 0 R 60 40", "0");
	EXPECT(&b, "g 0 W 45 0", "R 40 0 main");
	stop(&b, 0);
}

/* Unlocking the middle splits a range. */
static void sc_split(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "s 0 W 0 100", "0");
	EXPECT(&me, "s 0 U 40 20", "0");
	EXPECT(&b, "g 0 R 0 0", "W 0 40 main");
	EXPECT(&b, "g 0 R 40 20", "U");
	EXPECT(&b, "g 0 R 50 0", "W 60 40 main");
	EXPECT(&b, "s 0 W 40 20", "0");
	EXPECT(&b, "s 0 U 0 0", "0");
	EXPECT(&me, "s 0 U 0 0", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&me, "s 0 W 10 0", "0");
	EXPECT(&me, "s 0 U 20 10", "0");
	EXPECT(&b, "g 0 R 0 0", "W 10 10 main");
	EXPECT(&b, "g 0 R 20 0", "W 30 0 main");
	EXPECT(&me, "s 0 U 5 30", "0");
	EXPECT(&b, "g 0 R 0 0", "W 35 0 main");
	stop(&b, 0);
}

/* Changing the type of part of a range converts it in place; a failed
 * upgrade changes nothing. */
static void sc_convert(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "s 0 W 0 100", "0");
	EXPECT(&me, "s 0 R 20 10", "0");
	EXPECT(&b, "g 0 R 0 0", "W 0 20 main");
	EXPECT(&b, "g 0 W 20 10", "R 20 10 main");
	EXPECT(&b, "g 0 R 20 10", "U");
	EXPECT(&b, "g 0 R 25 0", "W 30 70 main");
	EXPECT(&b, "s 0 R 20 10", "0");
	EXPECT(&me, "s 0 W 20 10", "busy");
	EXPECT(&me, "s 0 W 0 100", "busy");
	EXPECT(&b, "g 0 R 0 0", "W 0 20 main");
	EXPECT(&b, "g 0 R 20 0", "W 30 70 main");
	EXPECT(&b, "s 0 U 0 0", "0");
	EXPECT(&me, "s 0 W 20 10", "0");
	EXPECT(&b, "g 0 R 0 0", "W 0 100 main");
	EXPECT(&me, "s 0 R 0 0", "0");
	EXPECT(&b, "g 0 W 0 0", "R 0 0 main");
	EXPECT(&b, "s 0 R 50 10", "0");
	EXPECT(&b, "s 0 W 50 10", "busy");
	stop(&b, 0);
}

/* F_GETLK on free ranges, no conflict with oneself, EINVAL, EBADF. */
static void sc_getlk(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "open r", "slot 1");
	EXPECT(&me, "open w", "slot 2");
	EXPECT(&me, "g 0 W 0 0", "U");
	EXPECT(&me, "g 0 R 0 0", "U");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "g 0 W 0 0", "U");
	EXPECT(&me, "open rw", "slot 3");
	EXPECT(&me, "s 3 W 0 10", "0"); /* another descriptor, the same owner */
	EXPECT(&me, "s 3 R 5 1", "0");
	EXPECT(&b, "g 0 W 0 0", "W 0 5 main");
	EXPECT(&b, "g 0 W 5 1", "R 5 1 main");
	EXPECT(&b, "g 0 R 5 0", "W 6 4 main");
	EXPECT(&b, "g 0 R 0 0", "W 0 5 main");
	EXPECT(&b, "s 0 R 5 1", "0");
	EXPECT(&me, "g 0 W 0 0", "R 5 1 B");
	/* EINVAL */
	EXPECT(&me, "s 0 42 0 10", "EINVAL");
	EXPECT(&me, "g 0 U 0 10", "EINVAL");
	EXPECT(&me, "g 0 42 0 10", "EINVAL");
	EXPECT(&me, "s 0 W -1 10", "EINVAL");
	EXPECT(&me, "s 0 W 0 10 bad", "EINVAL");
	EXPECT(&me, "s 0 W 5 -10", "EINVAL");
	/* EBADF: the access mode must allow the lock's type */
	EXPECT(&me, "s 1 W 50 10", "EBADF");
	EXPECT(&me, "s 2 R 50 10", "EBADF");
	EXPECT(&me, "s x W 50 10", "EBADF");
	EXPECT(&me, "s 1 R 50 10", "0");
	EXPECT(&me, "s 2 W 60 10", "0");
	EXPECT(&b, "g 0 R 40 0", "W 60 10 main");
	EXPECT(&b, "g 0 W 40 0", "R 50 10 main");
	EXPECT(&me, "g 2 R 0 0", "U");
	EXPECT(&me, "open path", "slot 4");
	EXPECT(&me, "s 4 R 0 1", "EBADF");
	EXPECT(&me, "s 4 U 0 0", "EBADF");
	EXPECT(&me, "g 4 R 0 1", "EBADF");
	EXPECT(&me, "os 4 R 0 1", "EBADF");
	EXPECT(&me, "og 4 W 0 1", "EBADF");
	EXPECT(&me, "lockf 4 TEST 0", "EBADF");
	EXPECT(&b, "g 0 W 40 0", "R 50 10 main");
	EXPECT(&me, "s 1 U 0 0", "0"); /* unlocking needs no access */
	EXPECT(&b, "g 0 W 0 0", "U");
	stop(&b, 0);
}

/* Closing ANY descriptor of the file releases all the process's locks on
 * it; closing a descriptor of another file does not. */
static void sc_close(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	/* Another open of the path. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "s 0 R 20 10", "0");
	EXPECT(&me, "open r", "slot 1");
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&me, "close 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	/* One opened before the lock was taken. */
	EXPECT(&me, "open rw", "slot 1");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "close 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	/* A dup; the lock taken through the dup, released by the original. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "dup 0", "slot 1");
	EXPECT(&me, "close 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&me, "dup 0", "slot 1");
	EXPECT(&me, "s 1 W 0 10", "0");
	EXPECT(&me, "close 0", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&me, "close 1", "0");
	EXPECT(&me, "open rw", "slot 0");
	/* fclose of a FILE on the file. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "fopen", "slot 1");
	EXPECT(&me, "fclose 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	/* close_range. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "open rw", "slot 1");
	EXPECT(&me, "crange 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	/* dup2 onto a descriptor of the file closes it. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "open rw", "slot 1");
	EXPECT(&me, "openo", "slot 2");
	EXPECT(&me, "dup2 2 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&me, "close 1", "0");
	EXPECT(&me, "close 2", "0");
	/* F_DUPFD_CLOEXEC. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "fdup 0", "slot 1");
	EXPECT(&me, "close 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	/* dup2 of one descriptor of the file onto another. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "open rw", "slot 1");
	EXPECT(&me, "dup2 1 0", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&me, "close 1", "0");
	/* freopen moves a FILE of the file elsewhere: its descriptor closes. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "fopen", "slot 1");
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&me, "freopen 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&me, "fclose 1", "0");
	/* Descriptors of another file: close, close_range, dup2 onto one. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "openo", "slot 1");
	EXPECT(&me, "close 1", "0");
	EXPECT(&me, "openo", "slot 1");
	EXPECT(&me, "crange 1", "0");
	EXPECT(&me, "openo", "slot 1");
	EXPECT(&me, "dup2 0 1", "0"); /* closes the other file's descriptor */
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&me, "close 1", "0"); /* now a dup of the file's */
	EXPECT(&b, "g 0 W 0 0", "U");
	/* The remaining descriptor locks again. */
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&b, "s 0 W 0 10", "busy");
	stop(&b, 0);
}

/* A fork child inherits no POSIX lock; its own locks and exit leave the
 * parent's alone. */
static void sc_fork(void)
{
	struct proc b, k;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "s 0 R 50 10", "0");
	start(&k, "C"); /* a child that execs inherits nothing either */
	EXPECT(&k, "open rw", "slot 0");
	EXPECT(&k, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&k, "s 0 W 5 1", "busy");
	stop(&k, 0);
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	start_forked(&k, "K");
	EXPECT(&k, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&k, "s 0 W 0 10", "busy");
	EXPECT(&k, "s 0 W 5 1", "busy");
	EXPECT(&k, "s 0 R 50 10", "0");
	EXPECT(&k, "s 0 W 20 10", "0");
	EXPECT(&me, "g 0 R 10 0", "W 20 10 K");
	EXPECT(&me, "g 0 W 50 0", "R 50 10 K");
	EXPECT(&k, "s 0 U 0 0", "0");
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&b, "g 0 W 10 0", "R 50 10 main");
	EXPECT(&k, "s 0 W 20 10", "0");
	EXPECT(&k, "close 0", "0");
	EXPECT(&me, "g 0 R 10 0", "U");
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&k, "open rw", "slot 0");
	EXPECT(&k, "s 0 W 20 10", "0");
	stop(&k, 0);
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	EXPECT(&b, "g 0 W 10 0", "R 50 10 main");
	EXPECT(&b, "s 0 W 20 10", "0");
	/* A child that ends with _exit, holding nothing. */
	start_forked(&k, "K2");
	EXPECT(&k, "s 0 W 0 1", "busy");
	stop(&k, 1);
	EXPECT(&b, "g 0 W 0 0", "W 0 10 main");
	stop(&b, 0);
}

/* Exit, _exit and SIGKILL release; the next process gets the lock. */
static void sc_exit(void)
{
	struct proc a, b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	start(&a, "A");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "s 0 R 20 10", "0");
	EXPECT(&b, "s 0 W 0 10", "busy");
	stop(&a, 0);
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 W 0 10", "0");
	EXPECT(&b, "s 0 U 0 0", "0");
	start(&a, "A2");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 40 10", "0");
	stop(&a, 1);
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 W 40 10", "0");
	EXPECT(&b, "s 0 U 0 0", "0");
	stop(&b, 0);
}

static void sc_kill(void)
{
	struct proc a, b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	start(&a, "A");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "os 0 W 50 10", "0");
	EXPECT(&b, "s 0 R 5 1", "busy");
	killed(&a);
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 W 0 100", "0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "g 0 R 0 0", "W 0 100 B");
	EXPECT(&b, "s 0 U 0 0", "0");
	/* Twice in a row, the second while nothing else happened between. */
	start(&a, "A2");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	killed(&a);
	EXPECT(&me, "s 0 W 0 10", "0");
	stop(&b, 0);
}

/* F_SETLKW waits for the holder; several waiters; EINTR. */
static void sc_wait(void)
{
	struct proc a, b, c;
	struct proc *first, *second;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	WAIT_START(&b, "w 0 W 0 10");
	STILL_WAITING(&b);
	EXPECT(&a, "s 0 U 0 0", "0");
	WAIT_END(&b, "w 0 W 0 10", "0");
	EXPECT(&a, "g 0 W 0 0", "W 0 10 B");
	/* A read lock waits for a write lock, not for another read lock. */
	EXPECT(&a, "s 0 R 20 10", "0");
	send_cmd(&b, "w 0 R 20 10");
	if (strcmp(recv_ans(&b, "w 0 R 20 10"), "free") != 0)
		bad(__LINE__, &b, "w 0 R 20 10", "free", last);
	note(&b, "w 0 R 20 10", last);
	WAIT_END(&b, "w 0 R 20 10", "0");
	stop(&a, 0);
	stop(&b, 0);

	/* Two waiters, one holder: one gets it, the other waits on. */
	start(&a, "A");
	start(&b, "B");
	start(&c, "C");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&c, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	WAIT_START(&b, "w 0 W 0 10");
	WAIT_START(&c, "w 0 W 5 1");
	EXPECT(&a, "s 0 U 0 0", "0");
	{
		struct pollfd pf[2] = { { .fd = b.out, .events = POLLIN },
					{ .fd = c.out, .events = POLLIN } };
		while (poll(pf, 2, -1) < 0 && errno == EINTR)
			;
		first = pf[0].revents ? &b : &c;
		second = first == &b ? &c : &b;
	}
	if (strcmp(recv_ans(first, "w"), "0") != 0)
		bad(__LINE__, first, "w", "0", last);
	note(&me, "one waiter got the lock", "");
	STILL_WAITING(second);
	if (strcmp(q_quiet(&a, "g 0 R 0 0"), first == &b ? "W 0 10 B" : "W 5 1 C") != 0)
		bad(__LINE__, &a, "g 0 R 0 0", "the first waiter's lock", last);
	note(&a, "g 0 R 0 0", "(the first waiter's lock)");
	if (strcmp(q_quiet(first, "s 0 U 0 0"), "0") != 0)
		bad(__LINE__, first, "s 0 U 0 0", "0", last);
	if (strcmp(recv_ans(second, "w"), "0") != 0)
		bad(__LINE__, second, "w", "0", last);
	note(&me, "the other waiter got it after the first released", "");
	if (strcmp(q_quiet(&a, "g 0 R 0 0"), second == &b ? "W 0 10 B" : "W 5 1 C") != 0)
		bad(__LINE__, &a, "g 0 R 0 0", "the second waiter's lock", last);
	note(&a, "g 0 R 0 0", "(the second waiter's lock)");
	stop(&a, 0);
	stop(&b, 0);
	stop(&c, 0);
}

/* A signal whose handler has no SA_RESTART ends F_SETLKW with EINTR. */
static void sc_eintr(void)
{
	struct proc a, b;
	static const char *const waits[] = { "w 0 W 0 10", "ow 1 W 0 10", "lockf 0 LOCK 10" };

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 1");
	EXPECT(&b, "sig", "0");
	EXPECT(&a, "s 0 W 0 10", "0");
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		WAIT_START(&b, waits[i]);
		/* The signal may come before the wait starts; repeat it until
		 * the waiter answers. */
		do
			kill(b.pid, SIGUSR1);
		while (!answered(&b, 20));
		WAIT_END(&b, waits[i], "EINTR");
		EXPECT(&b, "g 0 W 0 0", "W 0 10 A");
	}
	EXPECT(&a, "s 0 U 0 0", "0");
	EXPECT(&b, "s 0 W 0 10", "0");
	EXPECT(&a, "g 0 W 0 0", "W 0 10 B");
	stop(&a, 0);
	stop(&b, 0);
}

/* One signal, whenever it comes during the wait, ends it: the alarm()
 * timeout idiom. */
static void sc_alarm(void)
{
	struct proc a, b;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	for (int i = 0; i < 25; i++)
		EXPECT(&b, "alarm 0 W 5 1 15", "EINTR");
	EXPECT(&b, "g 0 W 0 0", "W 0 10 A");
	/* A handler that jumps out of the wait leaves nothing behind: the
	 * process locks and waits normally afterwards. */
	for (int i = 0; i < 10; i++)
		EXPECT(&b, "jump 0 W 5 1 15", "jumped");
	EXPECT(&b, "s 0 W 20 10", "0");
	EXPECT(&a, "g 0 W 0 0", "W 20 10 B");
	EXPECT(&b, "alarm 0 W 5 1 15", "EINTR");
	WAIT_START(&b, "w 0 W 0 10");
	EXPECT(&a, "s 0 U 0 0", "0");
	WAIT_END(&b, "w 0 W 0 10", "0");
	EXPECT(&a, "g 0 W 0 0", "W 0 10 B");
	stop(&a, 0);
	stop(&b, 0);
}

/* With SA_RESTART, a handler that runs during F_SETLKW does not end the
 * wait: the call goes on and gets the lock. */
static void sc_restart(void)
{
	struct proc a, b;
	static const char *const waits[] = { "w 0 W 0 10", "ow 1 W 0 10", "lockf 0 LOCK 10" };

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 1");
	EXPECT(&b, "sigr", "0");
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		EXPECT(&a, "s 0 W 0 10", "0");
		WAIT_START(&b, waits[i]);
		/* Three signals, each sent once the one before was handled: the
		 * later ones come while B waits. */
		for (int n = 0; n < 3; n++) {
			kill(b.pid, SIGUSR1);
			if (strcmp(recv_ans(&b, waits[i]), "signal") != 0)
				bad(__LINE__, &b, waits[i], "signal", last);
		}
		note(&b, "(3 signals handled)", "");
		EXPECT(&a, "s 0 U 0 0", "0");
		WAIT_END(&b, waits[i], "0");
		EXPECT(&a, "g 0 W 0 0", i == 1 ? "W 0 10 -1" : "W 0 10 B");
		EXPECT(&b, i == 1 ? "os 1 U 0 0" : "s 0 U 0 0", "0");
	}
	stop(&a, 0);
	stop(&b, 0);
}

/* Open file description locks. */
static void sc_ofd(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 1");
	EXPECT(&me, "os 0 W 0 10", "0");
	EXPECT(&me, "os 1 W 0 10", "busy"); /* two OFDs of one process conflict */
	EXPECT(&me, "og 1 W 0 0", "W 0 10 -1");
	EXPECT(&me, "og 0 W 0 0", "U");
	EXPECT(&me, "dup 0", "slot 2");
	EXPECT(&me, "os 2 W 0 10", "0"); /* a dup shares the OFD */
	EXPECT(&me, "os 2 W 0 20", "0");
	EXPECT(&me, "s 1 W 0 10", "busy"); /* POSIX vs OFD locks of one process */
	EXPECT(&me, "g 1 W 0 0", "W 0 20 -1");
	EXPECT(&me, "s 1 R 50 10", "0");
	EXPECT(&me, "os 0 W 50 1", "busy");
	EXPECT(&me, "og 0 W 50 0", "R 50 10 main");
	EXPECT(&b, "g 0 R 0 0", "W 0 20 -1");
	EXPECT(&b, "og 0 W 40 0", "R 50 10 main");
	EXPECT(&me, "close 1", "0"); /* releases the POSIX locks, not the OFD's */
	EXPECT(&b, "g 0 R 0 0", "W 0 20 -1");
	EXPECT(&b, "g 0 W 40 0", "U");
	EXPECT(&me, "close 0", "0"); /* slot 2 still names the OFD */
	EXPECT(&b, "og 0 R 0 0", "W 0 20 -1");
	EXPECT(&me, "close 2", "0"); /* the last one */
	EXPECT(&b, "og 0 R 0 0", "U");
	/* l_pid must be 0. */
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "os 0 W 0 10 pid1", "EINVAL");
	EXPECT(&me, "og 0 W 0 10 pid1", "EINVAL");
	/* Access modes, read sharing, unlock. */
	EXPECT(&me, "open r", "slot 1");
	EXPECT(&me, "os 1 W 0 10", "EBADF");
	EXPECT(&me, "os 1 R 0 10", "0");
	EXPECT(&me, "os 0 R 0 10", "0");
	EXPECT(&me, "os 0 W 0 1", "busy");
	EXPECT(&b, "s 0 W 9 1", "busy");
	EXPECT(&b, "og 0 W 0 0", "R 0 10 -1");
	EXPECT(&me, "os 1 U 0 0", "0");
	EXPECT(&me, "os 0 W 0 10", "0");
	EXPECT(&me, "os 0 U 0 5", "0");
	EXPECT(&b, "og 0 W 0 0", "W 5 5 -1");
	/* A waiter gets the lock when the last descriptor of the OFD closes. */
	WAIT_START(&b, "ow 0 W 0 10");
	STILL_WAITING(&b);
	EXPECT(&me, "close 0", "0");
	WAIT_END(&b, "ow 0 W 0 10", "0");
	EXPECT(&me, "og 1 R 0 0", "W 0 10 -1");
	EXPECT(&me, "g 1 R 0 0", "W 0 10 -1");
	stop(&b, 0);
	EXPECT(&me, "og 1 R 0 0", "U");
}

/* lockf: F_TLOCK, F_ULOCK, F_TEST, F_LOCK, from the current offset. */
static void sc_lockf(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "seek 0 10", "0");
	EXPECT(&me, "lockf 0 TLOCK 10", "0");
	EXPECT(&b, "seek 0 10", "0");
	EXPECT(&b, "lockf 0 TEST 10", "busy");
	EXPECT(&b, "lockf 0 TLOCK 1", "busy");
	EXPECT(&b, "seek 0 0", "0");
	EXPECT(&b, "lockf 0 TEST 10", "0");
	EXPECT(&b, "g 0 R 0 0", "W 10 10 main");
	EXPECT(&b, "lockf 0 TLOCK 10", "0");
	EXPECT(&me, "seek 0 5", "0");
	EXPECT(&me, "lockf 0 TEST 10", "busy");
	EXPECT(&me, "lockf 0 TEST -5", "busy"); /* bytes 0..4 */
	EXPECT(&me, "seek 0 10", "0");
	EXPECT(&me, "lockf 0 TEST 0", "0"); /* our own lock */
	EXPECT(&me, "lockf 0 ULOCK 10", "0");
	EXPECT(&b, "seek 0 10", "0");
	EXPECT(&b, "lockf 0 TEST 0", "0");
	EXPECT(&me, "seek 0 50", "0");
	EXPECT(&me, "lockf 0 TLOCK 0", "0");
	EXPECT(&b, "g 0 R 0 0", "W 50 0 main");
	EXPECT(&me, "seek 0 30", "0");
	EXPECT(&me, "lockf 0 TLOCK -10", "0");
	EXPECT(&b, "g 0 R 10 0", "W 20 10 main");
	EXPECT(&b, "seek 0 60", "0");
	WAIT_START(&b, "lockf 0 LOCK 5");
	STILL_WAITING(&b);
	EXPECT(&me, "seek 0 50", "0");
	EXPECT(&me, "lockf 0 ULOCK 0", "0");
	WAIT_END(&b, "lockf 0 LOCK 5", "0");
	EXPECT(&me, "g 0 W 0 0", "W 0 10 B");
	EXPECT(&me, "g 0 W 10 0", "W 60 5 B");
	EXPECT(&b, "g 0 W 0 0", "W 20 10 main");
	EXPECT(&b, "seek 0 0", "0");
	EXPECT(&b, "lockf 0 ULOCK 0", "0");
	EXPECT(&me, "g 0 W 0 0", "U");
	stop(&b, 0);
}

/* POSIX locks survive execve; the new image owns them. */
static void sc_exec(void)
{
	struct proc a, b;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "s 0 R 20 10", "0");
	EXPECT(&a, "exec", "pid A");
	EXPECT(&b, "g 0 R 0 0", "W 0 10 A");
	EXPECT(&b, "s 0 W 25 1", "busy");
	EXPECT(&b, "s 0 R 25 1", "0");
	EXPECT(&a, "g 0 W 0 0", "R 25 1 B"); /* its own locks do not conflict */
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "s 0 U 0 10", "0");
	EXPECT(&b, "g 0 R 0 0", "U");
	EXPECT(&b, "g 0 W 0 0", "R 20 10 A");
	EXPECT(&a, "exec", "pid A");
	stop(&a, 0);
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 U 0 0", "0");
	stop(&b, 0);
}

/* After execve, before any lock call of the new image: closing a
 * descriptor of the file releases, so does exit. */
static void sc_exec_close(void)
{
	struct proc a, b;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "exec", "pid A");
	EXPECT(&a, "open r", "slot 1");
	EXPECT(&a, "close 1", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "exec", "pid A");
	stop(&a, 0);
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 W 0 10", "0");
	stop(&b, 0);
}

/* execve closes close-on-exec descriptors: if one names the file, that
 * close releases the locks, whatever other descriptors stay open. */
static void sc_exec_cloexec(void)
{
	struct proc a, b;

	start(&a, "A");
	start(&b, "B");
	EXPECT(&a, "open rw", "slot 0");
	EXPECT(&a, "open r", "slot 1");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&a, "s 0 W 0 10", "0");
	EXPECT(&a, "cloexec 1", "0");
	EXPECT(&b, "g 0 W 0 0", "W 0 10 A");
	EXPECT(&a, "exec", "pid A");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 W 0 10", "0");
	EXPECT(&b, "s 0 U 0 10", "0");
	stop(&a, 0);
	stop(&b, 0);
}

/* Many readers share; a writer waits for the last of them. */
static void sc_readers(void)
{
	static const char *const names[] = { "R1", "R2", "R3", "R4", "R5", "R6" };
	struct proc r[6], w;

	start(&w, "W");
	EXPECT(&w, "open rw", "slot 0");
	for (int i = 0; i < 6; i++) {
		start(&r[i], names[i]);
		EXPECT(&r[i], "open r", "slot 0");
		EXPECT(&r[i], i % 2 ? "s 0 R 0 0" : "s 0 R 0 100", "0");
	}
	EXPECT(&w, "s 0 W 99 1", "busy");
	EXPECT(&w, "s 0 W 100 1", "busy");
	WAIT_START(&w, "w 0 W 0 0");
	for (int i = 0; i < 5; i++) {
		EXPECT(&r[i], "s 0 U 0 0", "0");
		STILL_WAITING(&w);
	}
	stop(&r[5], 0);
	WAIT_END(&w, "w 0 W 0 0", "0");
	for (int i = 0; i < 5; i++) {
		EXPECT(&r[i], "g 0 R 0 0", "W 0 0 W");
		stop(&r[i], 0);
	}
	stop(&w, 0);
}

/* One owner with many ranges (its owner file outgrows a page). */
static void sc_many(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "many 0 W 1000000000000 1000 150 10", "0");
	EXPECT(&me, "many 0 R 1000000000010 1000 150 5", "0"); /* adjacent, other type */
	EXPECT(&b, "g 0 R 0 0", "W 1000000000000 10 main");
	EXPECT(&b, "g 0 W 1000000149000 0", "W 1000000149000 10 main");
	EXPECT(&b, "g 0 W 1000000149010 0", "R 1000000149010 5 main");
	EXPECT(&b, "g 0 R 1000000149010 0", "U");
	EXPECT(&b, "many 0 W 1000000000015 1000 150 985", "0"); /* every gap */
	EXPECT(&b, "many 0 R 1000000000010 1000 150 1", "0");
	EXPECT(&b, "s 0 W 1000000075009 1", "busy");
	EXPECT(&me, "many 0 U 1000000000000 2000 75 1000", "0"); /* every other */
	EXPECT(&b, "s 0 W 1000000000000 15", "0"); /* freed, and its read there is its own */
	EXPECT(&b, "s 0 R 1000000000000 15", "0");
	EXPECT(&b, "g 0 W 1000000000000 0", "W 1000000001000 10 main");
	EXPECT(&me, "s 0 U 0 0", "0");
	EXPECT(&b, "g 0 W 0 0", "U");
	EXPECT(&b, "s 0 W 0 0", "0");
	stop(&b, 0);
}

/* POSIX locks belong to the process: its threads share them.  OFD locks
 * belong to the open file description, whatever the thread. */
static void sc_threads(void)
{
	struct proc b;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 1");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&me, "t s 1 W 0 10", "0");
	EXPECT(&me, "t g 1 W 0 0", "U");
	EXPECT(&me, "t s 1 U 5 5", "0");
	EXPECT(&b, "g 0 R 0 0", "W 0 5 main");
	EXPECT(&me, "t os 1 W 20 10", "0");
	EXPECT(&me, "os 0 W 25 1", "busy");
	EXPECT(&me, "t og 0 R 10 0", "W 20 10 -1");
	EXPECT(&b, "s 0 W 5 10", "0");
	EXPECT(&me, "t s 0 W 5 1", "busy");
	EXPECT(&me, "t g 0 R 0 15", "W 5 10 B");
	EXPECT(&me, "t close 0", "0");
	EXPECT(&b, "g 0 R 0 5", "U");
	EXPECT(&b, "g 0 R 20 0", "W 20 10 -1");
	EXPECT(&me, "close 1", "0");
	EXPECT(&b, "g 0 R 0 0", "U");
	stop(&b, 0);
}

/* A fork child shares its parent's open file descriptions, and with them
 * their OFD locks: what it adds holds while either process has the OFD. */
static void sc_ofd_fork(void)
{
	struct proc b, k;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "os 0 W 0 10", "0");
	start_forked(&k, "K");
	EXPECT(&k, "og 0 W 0 0", "U");
	EXPECT(&k, "os 0 W 0 20", "0");
	EXPECT(&b, "og 0 R 0 0", "W 0 20 -1");
	EXPECT(&b, "s 0 W 15 1", "busy");
	EXPECT(&me, "og 0 W 0 0", "U");
	EXPECT(&k, "close 0", "0");
	EXPECT(&b, "og 0 R 0 0", "W 0 20 -1");
	stop(&k, 0);
	EXPECT(&b, "og 0 R 0 0", "W 0 20 -1");
	EXPECT(&b, "s 0 W 15 1", "busy");
	EXPECT(&me, "close 0", "0");
	EXPECT(&b, "og 0 R 0 0", "U");
	stop(&b, 0);
}

/* Parent and child both change the shared OFD's locks. */
static void sc_ofd_fork_both(void)
{
	struct proc b, k;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "os 0 W 0 10", "0");
	start_forked(&k, "K");
	EXPECT(&k, "os 0 W 0 20", "0");
	EXPECT(&me, "os 0 U 0 5", "0");
	EXPECT(&b, "og 0 R 0 0", "W 5 15 -1");
	stop(&k, 0);
	stop(&b, 0);
}

/* The parent closes its copy first: the child keeps the OFD and its locks. */
static void sc_ofd_fork_parent_closes(void)
{
	struct proc b, k;

	start(&b, "B");
	EXPECT(&b, "open rw", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "os 0 W 0 10", "0");
	start_forked(&k, "K");
	EXPECT(&me, "close 0", "0");
	EXPECT(&b, "og 0 R 0 0", "W 0 10 -1");
	EXPECT(&k, "os 0 U 0 0", "0");
	EXPECT(&b, "og 0 R 0 0", "U");
	stop(&k, 0);
	stop(&b, 0);
}

/* A file opened through a symbolic link is the same file. */
static void sc_symlink(void)
{
	struct proc b;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char l[4200];

	snprintf(l, sizeof(l), "%s.sym", path);
	unlink(l);
	if (symlink(base, l) != 0) {
		perror(l);
		exit(2);
	}
	start(&b, "B");
	EXPECT(&b, "openl", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&b, "s 0 W 5 1", "busy");
	EXPECT(&b, "g 0 R 0 0", "W 0 10 main");
	EXPECT(&b, "s 0 R 10 10", "0");
	EXPECT(&me, "g 0 W 0 0", "R 10 10 B");
	stop(&b, 0);
	unlink(l);
}

/* A hard link too (the kernel locks the inode, whatever its name). */
static void sc_hardlink(void)
{
	struct proc b;
	char l[4200];

	snprintf(l, sizeof(l), "%s.hard", path);
	unlink(l);
	if (link(path, l) != 0) {
		perror(l);
		exit(2);
	}
	start(&b, "B");
	EXPECT(&b, "openh", "slot 0");
	EXPECT(&me, "open rw", "slot 0");
	EXPECT(&me, "s 0 W 0 10", "0");
	EXPECT(&b, "s 0 W 5 1", "busy");
	stop(&b, 0);
	unlink(l);
}

int main(int argc, char **argv)
{
	/* limit: the shim is known to differ there (ranges.sh reports it). */
	static const struct {
		const char *name;
		void (*fn)(void);
		int limit;
	} scs[] = {
		{ "share", sc_share, 0 },
		{ "bounds", sc_bounds, 0 },
		{ "merge", sc_merge, 0 },
		{ "split", sc_split, 0 },
		{ "convert", sc_convert, 0 },
		{ "getlk", sc_getlk, 0 },
		{ "close", sc_close, 0 },
		{ "fork", sc_fork, 0 },
		{ "exit", sc_exit, 0 },
		{ "kill", sc_kill, 0 },
		{ "wait", sc_wait, 0 },
		{ "eintr", sc_eintr, 0 },
		{ "restart", sc_restart, 0 },
		{ "alarm", sc_alarm, 0 },
		{ "ofd", sc_ofd, 0 },
		{ "lockf", sc_lockf, 0 },
		{ "exec", sc_exec, 0 },
		{ "exec-close", sc_exec_close, 0 },
		{ "threads", sc_threads, 0 },
		{ "readers", sc_readers, 0 },
		{ "many", sc_many, 0 },
		{ "ofd-fork", sc_ofd_fork, 0 },
		{ "symlink", sc_symlink, 0 },
		{ "exec-cloexec", sc_exec_cloexec, 1 },
		{ "ofd-fork-parent-closes", sc_ofd_fork_parent_closes, 1 },
		{ "ofd-fork-both", sc_ofd_fork_both, 1 },
		{ "hardlink", sc_hardlink, 1 },
	};
	const char *cmd = argc > 1 ? argv[1] : "";

	self = argv[0];
	slots_init();
	signal(SIGPIPE, SIG_IGN);
	if (argc < 4) {
		fprintf(stderr, "usage: flp-range-probe SCENARIO|serve|do PATH OTHER ...\n");
		return 2;
	}
	path = argv[2];
	other = argv[3];
	if (!strcmp(cmd, "serve")) {
		alarm(60);
		if (argc > 4)
			slots_from(argv[4]);
		return serve(0, 1);
	}
	if (!strcmp(cmd, "do")) {
		char line[512], ans[512];
		alarm(30);
		for (int i = 4; i < argc; i++) {
			snprintf(line, sizeof(line), "%s", argv[i]);
			run_cmd(line, ans, sizeof(ans), -1);
			printf("%s\n", ans);
		}
		return 0;
	}
	if (!strcmp(cmd, "list") || !strcmp(cmd, "limits")) {
		for (size_t i = 0; i < sizeof(scs) / sizeof(scs[0]); i++)
			if (scs[i].limit == (cmd[1] == 'i' && cmd[2] == 'm'))
				printf("%s\n", scs[i].name);
		return 0;
	}
	for (size_t i = 0; i < sizeof(scs) / sizeof(scs[0]); i++) {
		if (strcmp(cmd, scs[i].name) != 0)
			continue;
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, 100) != 0) {
			perror(path);
			return 2;
		}
		close(fd);
		alarm(30);
		me.pid = getpid();
		reg(&me);
		scs[i].fn();
		return failures ? 1 : 0;
	}
	fprintf(stderr, "flp-range-probe: unknown scenario %s\n", cmd);
	return 2;
}
