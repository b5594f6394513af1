/* SPDX-License-Identifier: MIT */
/*
 * test-preload-ranges.c -- preload/ranges.c held against the kernel.
 *
 * The shim's fcntl/lockf emulation is only as right as its byte-range
 * arithmetic, and Linux's own record locks are the reference.  Every case
 * here therefore runs twice: on the model (a struct flp_rset) and as real
 * fcntl(2) calls on a local file, made by a child process A that owns the
 * kernel's locks.  The two must agree exactly on
 *
 *   - the lock list: A's POSIX locks as the kernel prints them (type,
 *     first byte, last byte or "EOF", the "lock:" lines of A's
 *     /proc/PID/fdinfo, in /proc/locks' format) against the model's ranges;
 *   - F_GETLK: what a second process B is told about a probe range, against
 *     flp_rset_conflict().  Linux keeps one owner's locks sorted by start
 *     and reports the first conflicting one in that order, so the model's
 *     "lowest conflicting range" must be the very lock the kernel returns
 *     (type, l_start, l_len, l_pid), not just any conflicting one;
 *   - errno: every struct flock the kernel rejects (EINVAL, EOVERFLOW) must
 *     be rejected by flp_range_from_flock() with the same error, and every
 *     one it accepts must be accepted;
 *   - two owners: B sometimes locks too (its list is compared the same
 *     way), and a request that flp_rset_conflict() finds in the other
 *     owner's set must be the one the kernel refuses with EAGAIN.
 *
 * flp_rset_unchanged_by() and flp_rset_shrinks() have no kernel
 * counterpart; they are checked against brute force on the model (apply
 * and compare, and a type-by-type walk over every boundary of both sets).
 *
 * The processes talk over pipes (one request, one reply), never sleep, and
 * every test arms alarm() so that a lost reply fails instead of hanging.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "flp.h"

_Static_assert(sizeof(off_t) == sizeof(int64_t), "the kernel comparison needs a 64-bit off_t");

#define OFF_MAX FLP_OFF_MAX

/* ---- the two kernel-side processes ------------------------------------- */

enum { OP_SETLK = 1, OP_GETLK, OP_QUIT };

struct kreq {
	int op;
	short type, whence;
	int64_t start, len;
	int64_t size; /* ftruncate the file to this first, when >= 0 */
	int64_t cur;  /* lseek the descriptor here first, when >= 0 */
};

struct krep {
	int prep_err; /* errno of the ftruncate/lseek before the call */
	int err;      /* errno of fcntl, 0 on success                 */
	short type, whence;
	int64_t start, len;
	pid_t pid;
};

struct kproc {
	pid_t pid;
	int to, from;
	int fd; /* its descriptor of the file */
};

struct harness {
	char dir[4096];
	char path[4200];
	struct kproc a, b;
	int64_t size;    /* the file's size as the model believes it        */
	int64_t cur;     /* A's file position as the model believes it      */
	struct flp_rset m;  /* A's locks */
	struct flp_rset mb; /* B's locks */
	char *kbuf, *mbuf;
};

static struct harness H;

static int full_io(int fd, void *buf, size_t n, int wr)
{
	char *p = buf;

	while (n) {
		ssize_t k = wr ? write(fd, p, n) : read(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return 0;
		p += k;
		n -= (size_t)k;
	}
	return 1;
}

/* A child's whole life: apply each request to its own descriptor of the
 * file and answer.  It exits on OP_QUIT or when the parent's end closes. */
static void serve(const char *path, int in, int out)
{
	struct kreq q;
	int fd;

	alarm(300);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || !full_io(out, &fd, sizeof(fd), 1))
		_exit(3);
	while (full_io(in, &q, sizeof(q), 0) && q.op != OP_QUIT) {
		struct krep r;
		struct flock fl;

		memset(&r, 0, sizeof(r));
		if (q.size >= 0 && ftruncate(fd, q.size) != 0)
			r.prep_err = errno;
		else if (q.cur >= 0 && lseek(fd, q.cur, SEEK_SET) < 0)
			r.prep_err = errno;
		memset(&fl, 0, sizeof(fl));
		fl.l_type = q.type;
		fl.l_whence = q.whence;
		fl.l_start = q.start;
		fl.l_len = q.len;
		if (r.prep_err == 0 && fcntl(fd, q.op == OP_SETLK ? F_SETLK : F_GETLK, &fl) != 0)
			r.err = errno;
		r.type = fl.l_type;
		r.whence = fl.l_whence;
		r.start = fl.l_start;
		r.len = fl.l_len;
		r.pid = fl.l_pid;
		if (!full_io(out, &r, sizeof(r), 1))
			_exit(4);
	}
	_exit(0);
}

static void kproc_start(struct kproc *k, const char *path, const struct kproc *other)
{
	int req[2], rep[2];

	assert_int_equal(pipe2(req, O_CLOEXEC), 0);
	assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		/* The other child's pipe ends must not keep it alive. */
		if (other) {
			close(other->to);
			close(other->from);
		}
		close(req[1]);
		close(rep[0]);
		serve(path, req[0], rep[1]);
	}
	close(req[0]);
	close(rep[1]);
	k->to = req[1];
	k->from = rep[0];
	assert_true(full_io(k->from, &k->fd, sizeof(k->fd), 0));
}

static void kproc_stop(struct kproc *k)
{
	struct kreq q = { .op = OP_QUIT };
	int st;

	if (k->pid <= 0)
		return;
	(void)full_io(k->to, &q, sizeof(q), 1);
	close(k->to);
	close(k->from);
	waitpid(k->pid, &st, 0);
	k->pid = 0;
}

static struct krep kcall(struct kproc *k, const struct kreq *q)
{
	struct kreq c = *q;
	struct krep r;

	assert_true(full_io(k->to, &c, sizeof(c), 1));
	assert_true(full_io(k->from, &r, sizeof(r), 0));
	assert_int_equal(r.prep_err, 0);
	return r;
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	(void)state;
	memset(&H, 0, sizeof(H));
	snprintf(H.dir, sizeof(H.dir), "%s/fl-ranges.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(H.dir) == NULL)
		return -1;
	snprintf(H.path, sizeof(H.path), "%s/data.XXXXXX", H.dir);
	fd = mkstemp(H.path);
	if (fd < 0)
		return -1;
	close(fd);
	H.kbuf = malloc(1 << 16);
	H.mbuf = malloc(1 << 16);
	if (H.kbuf == NULL || H.mbuf == NULL)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	kproc_start(&H.a, H.path, NULL);
	kproc_start(&H.b, H.path, &H.a);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kproc_stop(&H.b);
	kproc_stop(&H.a);
	flp_rset_free(&H.m);
	flp_rset_free(&H.mb);
	free(H.kbuf);
	free(H.mbuf);
	unlink(H.path);
	rmdir(H.dir);
	return 0;
}

/* ---- lock lists as text ------------------------------------------------ */

static int cmp_range(const void *x, const void *y)
{
	const struct flp_range *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

/* "R0-4 W5-EOF": one lock list in the notation of the expectations below. */
static void fmt_ranges(char *buf, size_t len, const struct flp_range *v, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < len; i++) {
		char end[32];

		if (v[i].end == OFF_MAX)
			strcpy(end, "EOF");
		else
			snprintf(end, sizeof(end), "%" PRId64, v[i].end);
		o += (size_t)snprintf(buf + o, len - o, "%s%c%" PRId64 "-%s", i ? " " : "",
				      v[i].type == F_RDLCK ? 'R' : v[i].type == F_WRLCK ? 'W' : '?',
				      v[i].start, end);
	}
}

/* The POSIX locks of process k (A or B), as the kernel lists them, sorted
 * by start.  They are read from the "lock:" lines of /proc/PID/fdinfo/FD,
 * which print exactly what /proc/locks prints for the locks set through
 * that descriptor, but from one pass over the file's lock list.
 * /proc/locks itself is no snapshot: it is read a page per read(2), and
 * lock traffic elsewhere on the machine between two reads shows a line
 * twice or not at all (seen here as "R41-50 R41-50"). */
static void kernel_list(const struct kproc *k, char *buf, size_t len)
{
	static struct flp_range v[4096];
	size_t n = 0;
	char line[512];
	FILE *f;

	snprintf(line, sizeof(line), "/proc/%ld/fdinfo/%d", (long)k->pid, k->fd);
	f = fopen(line, "re");
	if (f == NULL) {
		const char *req = getenv("FL_REQUIRE_ALL");

		print_message("[ SKIP     ] %s: %s; nothing to compare with\n", line,
			      strerror(errno));
		if (req && strcmp(req, "1") == 0)
			fail();
		skip();
	}
	while (fgets(line, sizeof(line), f)) {
		char kind[16], adv[16], type[16], st[32], en[32];
		long lpid;

		if (sscanf(line, "lock: %*d: %15s %15s %15s %ld %*s %31s %31s", kind, adv, type,
			   &lpid, st, en) != 6)
			continue;
		if (strcmp(kind, "POSIX") != 0 || lpid != (long)k->pid)
			continue;
		assert_true(n < sizeof(v) / sizeof(v[0]));
		v[n].type = -1; /* printed as '?' */
		if (strcmp(type, "READ") == 0)
			v[n].type = F_RDLCK;
		else if (strcmp(type, "WRITE") == 0)
			v[n].type = F_WRLCK;
		v[n].start = strtoll(st, NULL, 10);
		v[n].end = strcmp(en, "EOF") == 0 ? OFF_MAX : strtoll(en, NULL, 10);
		n++;
	}
	fclose(f);
	qsort(v, n, sizeof(v[0]), cmp_range);
	fmt_ranges(buf, len, v, n);
}

static void model_list(char *buf, size_t len, const struct flp_rset *s)
{
	fmt_ranges(buf, len, s->v, s->n);
}

/* ---- one step on both sides -------------------------------------------- */

/* Applies one struct flock as F_SETLK by owner A (b == 0) or B (b == 1): on
 * the kernel by that process, on the model to H.m or H.mb, where a lock
 * that conflicts with the other owner's set fails with EAGAIN and changes
 * nothing.  size/cur >= 0 first set the file's size / A's position (SEEK_END
 * and SEEK_CUR read them; B's position stays 0).  Both sides must return the
 * same errno and leave the same two lock lists; returns that errno, with
 * the stepping owner's list in H.mbuf. */
static int step_by(int b, short type, short whence, int64_t start, int64_t len, int64_t size,
		   int64_t cur)
{
	struct kreq q = { OP_SETLK, type, whence, start, len, size, cur };
	struct flp_rset *mine = b ? &H.mb : &H.m, *other = b ? &H.m : &H.mb;
	struct krep r;
	int64_t s, e;
	int merr;

	assert_true(!b || cur < 0);
	if (size >= 0)
		H.size = size;
	if (cur >= 0)
		H.cur = cur;
	r = kcall(b ? &H.b : &H.a, &q);
	merr = flp_range_from_flock(whence, start, len, b ? 0 : H.cur, H.size, &s, &e);
	if (merr == 0 && type != F_UNLCK && flp_rset_conflict(other, s, e, type))
		merr = -EAGAIN;
	if (merr == 0)
		merr = flp_rset_apply(mine, s, e, type);
	for (int k = 1; k >= 0; k--) {
		/* The other owner's list first, so that H.mbuf ends up with ours. */
		int who = k ? !b : b;

		kernel_list(who ? &H.b : &H.a, H.kbuf, 1 << 16);
		model_list(H.mbuf, 1 << 16, who ? &H.mb : &H.m);
		if (r.err != -merr || strcmp(H.kbuf, H.mbuf) != 0) {
			print_error("%c: op type=%d whence=%d start=%" PRId64 " len=%" PRId64
				    " size=%" PRId64 " cur=%" PRId64 ": kernel errno %d, model %d\n"
				    "  %c's locks, kernel: %s\n             model:  %s\n",
				    b ? 'B' : 'A', type, whence, start, len, H.size, H.cur, r.err,
				    -merr, who ? 'B' : 'A', H.kbuf, H.mbuf);
			fail();
		}
	}
	return r.err;
}

static int step_at(short type, short whence, int64_t start, int64_t len, int64_t size, int64_t cur)
{
	return step_by(0, type, whence, start, len, size, cur);
}

static void step(short type, int64_t start, int64_t len, int want_err, const char *want)
{
	assert_int_equal(step_at(type, SEEK_SET, start, len, -1, -1), want_err);
	if (want)
		assert_string_equal(H.mbuf, want);
}

/* The same for owner B (b == 1) or A. */
static void step2(int b, short type, int64_t start, int64_t len, int want_err, const char *want)
{
	assert_int_equal(step_by(b, type, SEEK_SET, start, len, -1, -1), want_err);
	assert_string_equal(H.mbuf, want);
}

/* B asks F_GETLK for (type, SEEK_SET, start, len); the kernel's answer and
 * the model's must be identical.  Returns the errno; *got is "-" for no
 * conflict or the reported lock as "W5-9". */
static int probe_at(short type, short whence, int64_t start, int64_t len, char *got, size_t glen)
{
	struct kreq q = { OP_GETLK, type, whence, start, len, -1, -1 };
	struct krep r = kcall(&H.b, &q);
	const struct flp_range *c = NULL;
	int64_t s, e, ls, ll;
	int merr;

	/* B's own position stays 0; the size is shared. */
	merr = flp_range_from_flock(whence, start, len, 0, H.size, &s, &e);
	assert_int_equal(r.err, -merr);
	snprintf(got, glen, "-");
	if (merr)
		return r.err;
	c = flp_rset_conflict(&H.m, s, e, type);
	if (c == NULL) {
		assert_int_equal(r.type, F_UNLCK);
		return 0;
	}
	flp_range_to_flock(c->start, c->end, &ls, &ll);
	if (r.type != c->type || r.whence != SEEK_SET || r.start != ls || r.len != ll ||
	    r.pid != H.a.pid) {
		print_error("probe type=%d [%" PRId64 ",%" PRId64 "] against %s:\n"
			    "  kernel: type=%d whence=%d start=%" PRId64 " len=%" PRId64 " pid=%d\n"
			    "  model:  type=%d start=%" PRId64 " len=%" PRId64 " pid=%d\n",
			    type, s, e, H.mbuf, r.type, r.whence, r.start, r.len, (int)r.pid,
			    c->type, ls, ll, (int)H.a.pid);
		fail();
	}
	fmt_ranges(got, glen, c, 1);
	return 0;
}

static void probe(short type, int64_t start, int64_t len, const char *want)
{
	char got[128];

	assert_int_equal(probe_at(type, SEEK_SET, start, len, got, sizeof(got)), 0);
	assert_string_equal(got, want);
}

/* ---- hand-written cases ------------------------------------------------ */

static void test_merge(void **state)
{
	(void)state;
	alarm(30);
	step(F_RDLCK, 0, 10, 0, "R0-9");
	step(F_RDLCK, 5, 10, 0, "R0-14");             /* overlapping */
	step(F_RDLCK, 15, 5, 0, "R0-19");             /* adjacent above */
	step(F_RDLCK, 30, 5, 0, "R0-19 R30-34");
	step(F_RDLCK, 20, 10, 0, "R0-34");            /* fills the gap: three become one */
	step(F_WRLCK, 35, 5, 0, "R0-34 W35-39");      /* adjacent, other type: no merge */
	step(F_WRLCK, 50, 5, 0, "R0-34 W35-39 W50-54");
	step(F_WRLCK, 45, 5, 0, "R0-34 W35-39 W45-54"); /* adjacent below */
	step(F_WRLCK, 40, 5, 0, "R0-34 W35-54");
	step(F_RDLCK, 2, 3, 0, "R0-34 W35-54");       /* inside a range of its type */
	step(F_WRLCK, 60, 0, 0, "R0-34 W35-54 W60-EOF");
	step(F_WRLCK, 55, 5, 0, "R0-34 W35-EOF");     /* joins a to-EOF range */
	step(F_WRLCK, 0, 0, 0, "W0-EOF");             /* one lock swallows them all */
	step(F_UNLCK, 0, 0, 0, "");
}

static void test_split(void **state)
{
	(void)state;
	alarm(30);
	step(F_WRLCK, 0, 100, 0, "W0-99");
	step(F_UNLCK, 40, 20, 0, "W0-39 W60-99");     /* unlock in the middle */
	step(F_UNLCK, 0, 1, 0, "W1-39 W60-99");       /* first byte */
	step(F_UNLCK, 99, 1, 0, "W1-39 W60-98");      /* last byte */
	step(F_UNLCK, 30, 40, 0, "W1-29 W70-98");     /* across a gap */
	step(F_UNLCK, 200, 10, 0, "W1-29 W70-98");    /* nothing there */
	step(F_RDLCK, 10, 5, 0, "W1-9 R10-14 W15-29 W70-98"); /* other type in the middle */
	step(F_RDLCK, 0, 0, 0, "R0-EOF");
	step(F_WRLCK, 5, 1, 0, "R0-4 W5-5 R6-EOF");
	step(F_UNLCK, 1000, 0, 0, "R0-4 W5-5 R6-999"); /* cut a to-EOF range */
	step(F_UNLCK, 0, 0, 0, "");
}

static void test_convert(void **state)
{
	(void)state;
	alarm(30);
	step(F_RDLCK, 0, 100, 0, "R0-99");
	step(F_WRLCK, 0, 50, 0, "W0-49 R50-99");      /* read -> write, lower half */
	step(F_WRLCK, 90, 30, 0, "W0-49 R50-89 W90-119"); /* and past the end */
	step(F_RDLCK, 10, 10, 0, "W0-9 R10-19 W20-49 R50-89 W90-119"); /* write -> read */
	step(F_RDLCK, 20, 30, 0, "W0-9 R10-89 W90-119");
	step(F_WRLCK, 10, 80, 0, "W0-119");
	step(F_RDLCK, 0, 120, 0, "R0-119");           /* downgrade all of it */
	step(F_UNLCK, 0, 0, 0, "");
}

/* SQLite's lock bytes sit at 2^30: PENDING, RESERVED, then 510 SHARED bytes. */
static void test_sqlite_bytes(void **state)
{
	const int64_t P = INT64_C(1) << 30;

	(void)state;
	alarm(30);
	step(F_RDLCK, P, 1, 0, "R1073741824-1073741824");
	step(F_RDLCK, P + 2, 510, 0, "R1073741824-1073741824 R1073741826-1073742335");
	step(F_UNLCK, P, 1, 0, "R1073741826-1073742335");
	step(F_WRLCK, P + 1, 1, 0, "W1073741825-1073741825 R1073741826-1073742335");
	step(F_WRLCK, P, 1, 0, "W1073741824-1073741825 R1073741826-1073742335");
	step(F_WRLCK, P + 2, 510, 0, "W1073741824-1073742335");
	probe(F_RDLCK, P + 100, 1, "W1073741824-1073742335");
	step(F_UNLCK, P, 2, 0, "W1073741826-1073742335");
	step(F_RDLCK, P + 2, 510, 0, "R1073741826-1073742335");
	probe(F_RDLCK, 0, 0, "-");
	probe(F_WRLCK, 0, 0, "R1073741826-1073742335");
	step(F_UNLCK, 0, 0, 0, "");
}

static void test_eof(void **state)
{
	(void)state;
	alarm(30);
	step(F_RDLCK, 100, 0, 0, "R100-EOF");
	step(F_WRLCK, 200, 0, 0, "R100-199 W200-EOF");
	step(F_UNLCK, 150, 0, 0, "R100-149");
	/* A length that reaches the largest offset is the same lock as "to EOF". */
	step(F_WRLCK, INT64_MAX - 9, 10, 0, "R100-149 W9223372036854775798-EOF");
	step(F_WRLCK, 500, 0, 0, "R100-149 W500-EOF");
	step(F_UNLCK, INT64_MAX, 1, 0, "R100-149 W500-9223372036854775806");
	step(F_RDLCK, INT64_MAX, 1, 0,
	     "R100-149 W500-9223372036854775806 R9223372036854775807-EOF");
	step(F_UNLCK, 0, 0, 0, "");
	step(F_RDLCK, 0, INT64_MAX, 0, "R0-9223372036854775806");
	step(F_RDLCK, 1, INT64_MAX, 0, "R0-EOF");
	step(F_UNLCK, 0, 0, 0, "");
}

static void test_negative_len(void **state)
{
	(void)state;
	alarm(30);
	step(F_WRLCK, 10, -5, 0, "W5-9");             /* the 5 bytes before 10 */
	step(F_RDLCK, 5, -5, 0, "R0-4 W5-9");         /* down to byte 0 */
	step(F_RDLCK, 5, -6, EINVAL, "R0-4 W5-9");    /* would start at -1 */
	step(F_UNLCK, 8, -2, 0, "R0-4 W5-5 W8-9");
	/* [INT64_MAX + INT64_MIN + 1, INT64_MAX - 1] */
	step(F_RDLCK, INT64_MAX, INT64_MIN + 1, 0, "R0-9223372036854775806");
	step(F_RDLCK, 0, INT64_MIN, EINVAL, "R0-9223372036854775806");
	step(F_UNLCK, 0, 0, 0, "");
}

static void test_whence(void **state)
{
	(void)state;
	alarm(30);
	/* SEEK_CUR counts from A's position, SEEK_END from the file's size. */
	assert_int_equal(step_at(F_WRLCK, SEEK_CUR, -10, 5, -1, 100), 0);
	assert_string_equal(H.mbuf, "W90-94");
	assert_int_equal(step_at(F_RDLCK, SEEK_CUR, 0, 0, -1, 200), 0);
	assert_string_equal(H.mbuf, "W90-94 R200-EOF");
	assert_int_equal(step_at(F_UNLCK, SEEK_CUR, 5, -5, -1, 300), 0);
	assert_string_equal(H.mbuf, "W90-94 R200-299 R305-EOF");
	assert_int_equal(step_at(F_WRLCK, SEEK_END, -1, 1, 1000, -1), 0);
	assert_string_equal(H.mbuf, "W90-94 R200-299 R305-998 W999-999 R1000-EOF");
	assert_int_equal(step_at(F_WRLCK, SEEK_END, 0, 0, 2000, -1), 0);
	assert_string_equal(H.mbuf, "W90-94 R200-299 R305-998 W999-999 R1000-1999 W2000-EOF");
	assert_int_equal(step_at(F_UNLCK, SEEK_END, -1000, -1000, -1, -1), 0);
	assert_string_equal(H.mbuf, "R1000-1999 W2000-EOF");
	assert_int_equal(step_at(F_UNLCK, SEEK_END, -2001, 0, -1, -1), EINVAL);
	assert_int_equal(step_at(F_UNLCK, SEEK_CUR, -301, 1, -1, 300), EINVAL);
	assert_int_equal(step_at(F_UNLCK, SEEK_SET, 0, 0, 0, 0), 0);
	assert_string_equal(H.mbuf, "");
}

/* Every struct flock the kernel refuses, the model refuses with the same
 * errno, for F_SETLK (A) and F_GETLK (B) alike. */
static void test_errors(void **state)
{
	static const struct {
		short whence;
		int64_t start, len, size, cur;
		int err;
	} c[] = {
		{ 3, 0, 0, 0, 0, EINVAL }, /* SEEK_DATA */
		{ 4, 0, 0, 0, 0, EINVAL }, /* SEEK_HOLE */
		{ 7, 0, 0, 0, 0, EINVAL },
		{ -1, 0, 0, 0, 0, EINVAL },
		{ SEEK_SET, -1, 1, 0, 0, EINVAL },
		{ SEEK_SET, INT64_MIN, 0, 0, 0, EINVAL },
		{ SEEK_SET, INT64_MAX, 1, 0, 0, 0 },
		{ SEEK_SET, INT64_MAX, 2, 0, 0, EOVERFLOW },
		{ SEEK_SET, INT64_MAX, INT64_MAX, 0, 0, EOVERFLOW },
		{ SEEK_SET, INT64_MAX, 0, 0, 0, 0 },
		{ SEEK_SET, INT64_MAX, -1, 0, 0, 0 },
		{ SEEK_SET, 1, INT64_MAX, 0, 0, 0 },
		{ SEEK_SET, 2, INT64_MAX, 0, 0, EOVERFLOW },
		{ SEEK_SET, 0, INT64_MIN, 0, 0, EINVAL },
		{ SEEK_SET, INT64_MAX, INT64_MIN, 0, 0, EINVAL },
		{ SEEK_SET, INT64_MAX, INT64_MIN + 1, 0, 0, 0 },
		{ SEEK_SET, 5, -6, 0, 0, EINVAL },
		{ SEEK_SET, 5, -5, 0, 0, 0 },
		{ SEEK_CUR, INT64_MAX, 0, 0, 100, EOVERFLOW },
		{ SEEK_CUR, INT64_MAX - 100, 1, 0, 100, 0 },
		{ SEEK_CUR, INT64_MAX - 100, 2, 0, 100, EOVERFLOW },
		{ SEEK_CUR, -101, 0, 0, 100, EINVAL },
		{ SEEK_CUR, INT64_MIN, 0, 0, 100, EINVAL },
		{ SEEK_CUR, -50, -50, 0, 100, 0 },
		{ SEEK_CUR, -50, -51, 0, 100, EINVAL },
		{ SEEK_END, INT64_MAX - 1000, 1, 1000, 0, 0 },
		{ SEEK_END, INT64_MAX - 999, 0, 1000, 0, EOVERFLOW },
		{ SEEK_END, -1001, 1, 1000, 0, EINVAL },
		{ SEEK_END, -1000, 1000, 1000, 0, 0 },
		{ SEEK_END, 0, -1000, 1000, 0, 0 },
		{ SEEK_END, 0, -1001, 1000, 0, EINVAL },
	};
	char got[128];

	(void)state;
	alarm(30);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int err;

		err = step_at(F_WRLCK, c[i].whence, c[i].start, c[i].len, c[i].size, c[i].cur);
		if (err != c[i].err) {
			print_error("case %zu: errno %d, expected %d\n", i, err, c[i].err);
			fail();
		}
		/* F_GETLK converts the same way (B's position is 0). */
		if (c[i].whence != SEEK_CUR)
			assert_int_equal(probe_at(F_RDLCK, c[i].whence, c[i].start, c[i].len, got,
						  sizeof(got)),
					 c[i].err);
		assert_int_equal(step_at(F_UNLCK, SEEK_SET, 0, 0, -1, -1), 0);
	}
	/* The model's own argument checks. */
	assert_int_equal(flp_rset_apply(&H.m, -1, 5, F_RDLCK), -EINVAL);
	assert_int_equal(flp_rset_apply(&H.m, 6, 5, F_RDLCK), -EINVAL);
	assert_int_equal(flp_rset_apply(&H.m, 0, 5, 7), -EINVAL);
	assert_int_equal(H.m.n, 0);
}

static void test_conflict(void **state)
{
	(void)state;
	alarm(30);
	step(F_RDLCK, 0, 10, 0, "R0-9");
	step(F_WRLCK, 20, 10, 0, "R0-9 W20-29");
	step(F_RDLCK, 40, 0, 0, "R0-9 W20-29 R40-EOF");
	probe(F_RDLCK, 0, 0, "W20-29");               /* readers pass readers */
	probe(F_WRLCK, 0, 0, "R0-9");                 /* the lowest of three */
	probe(F_WRLCK, 5, 20, "R0-9");
	probe(F_WRLCK, 10, 10, "-");                  /* the gap */
	probe(F_WRLCK, 10, 11, "W20-29");
	probe(F_RDLCK, 30, 10, "-");
	probe(F_WRLCK, 30, 11, "R40-EOF");
	probe(F_WRLCK, INT64_MAX, 1, "R40-EOF");
	probe(F_WRLCK, 35, -10, "W20-29");
	step(F_UNLCK, 0, 0, 0, "");
	probe(F_WRLCK, 0, 0, "-");
}

/* Two owners: a lock that conflicts with the other's fails with EAGAIN and
 * changes nothing, whether it would add, convert or merely keep bytes. */
static void test_two_owners(void **state)
{
	(void)state;
	alarm(30);
	step2(0, F_WRLCK, 0, 10, 0, "W0-9");
	step2(1, F_RDLCK, 5, 1, EAGAIN, "");
	step2(1, F_RDLCK, 10, 10, 0, "R10-19");
	step2(0, F_WRLCK, 15, 1, EAGAIN, "W0-9");
	step2(0, F_RDLCK, 0, 20, 0, "R0-19");          /* readers share */
	step2(1, F_RDLCK, 5, 1, 0, "R5-5 R10-19");
	step2(0, F_WRLCK, 0, 5, 0, "W0-4 R5-19");      /* beside B's byte 5 */
	step2(0, F_WRLCK, 0, 10, EAGAIN, "W0-4 R5-19"); /* over it */
	step2(0, F_RDLCK, 5, 15, 0, "W0-4 R5-19");     /* keeps what it holds: no conflict */
	step2(0, F_WRLCK, 5, 1, EAGAIN, "W0-4 R5-19"); /* upgrade blocked */
	step2(1, F_WRLCK, 30, 0, 0, "R5-5 R10-19 W30-EOF");
	step2(0, F_RDLCK, INT64_MAX, 1, EAGAIN, "W0-4 R5-19");
	step2(1, F_UNLCK, 0, 0, 0, "");
	step2(0, F_WRLCK, 0, 0, 0, "W0-EOF");
	step2(0, F_UNLCK, 0, 0, 0, "");
}

/* ---- flp_rset_unchanged_by / flp_rset_shrinks, brute force ------------- */

static short type_at(const struct flp_rset *s, int64_t x)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].start <= x && x <= s->v[i].end)
			return s->v[i].type;
	return F_UNLCK;
}

static int rset_equal(const struct flp_rset *a, const struct flp_rset *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].start != b->v[i].start || a->v[i].end != b->v[i].end ||
		    a->v[i].type != b->v[i].type)
			return 0;
	return 1;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

/* Going from b to a only releases or downgrades, checked at the first byte
 * of every piece where either set may change type. */
static int bf_shrinks(const struct flp_rset *a, const struct flp_rset *b)
{
	size_t n = 0, cap = 2 * (a->n + b->n) + 1;
	int64_t *pt = malloc(cap * sizeof(*pt));
	int ok = 1;

	assert_non_null(pt);
	pt[n++] = 0;
	for (int k = 0; k < 2; k++) {
		const struct flp_rset *s = k ? b : a;

		for (size_t i = 0; i < s->n; i++) {
			pt[n++] = s->v[i].start;
			if (s->v[i].end != OFF_MAX)
				pt[n++] = s->v[i].end + 1;
		}
	}
	qsort(pt, n, sizeof(*pt), cmp_i64);
	for (size_t i = 0; i < n && ok; i++) {
		short ta = type_at(a, pt[i]), tb = type_at(b, pt[i]);

		if (ta != F_UNLCK && ta != tb && !(ta == F_RDLCK && tb == F_WRLCK))
			ok = 0;
	}
	free(pt);
	return ok;
}

static void test_helpers_small(void **state)
{
	struct flp_rset a = { 0 }, b = { 0 };
	int64_t ls, ll;

	(void)state;
	alarm(30);
	assert_true(flp_rset_shrinks(&a, &b));
	assert_int_equal(flp_rset_apply(&b, 0, 99, F_WRLCK), 0);
	assert_true(flp_rset_shrinks(&a, &b));
	assert_false(flp_rset_shrinks(&b, &a));
	assert_int_equal(flp_rset_apply(&a, 10, 19, F_RDLCK), 0);
	assert_true(flp_rset_shrinks(&a, &b)); /* a downgrade of part */
	assert_false(flp_rset_shrinks(&b, &a));
	assert_int_equal(flp_rset_apply(&b, 50, 59, F_RDLCK), 0);
	assert_int_equal(flp_rset_apply(&a, 50, 59, F_WRLCK), 0);
	assert_false(flp_rset_shrinks(&a, &b)); /* an upgrade of part */
	assert_int_equal(flp_rset_copy(&a, &b), 0);
	assert_true(rset_equal(&a, &b));
	assert_true(flp_rset_shrinks(&a, &b) && flp_rset_shrinks(&b, &a));
	assert_true(flp_rset_unchanged_by(&b, 0, 49, F_WRLCK));
	assert_true(flp_rset_unchanged_by(&b, 52, 52, F_RDLCK));
	assert_false(flp_rset_unchanged_by(&b, 49, 50, F_WRLCK));
	assert_false(flp_rset_unchanged_by(&b, 100, 100, F_RDLCK));
	assert_true(flp_rset_unchanged_by(&b, 100, OFF_MAX, F_UNLCK));
	assert_false(flp_rset_unchanged_by(&b, 99, OFF_MAX, F_UNLCK));
	flp_rset_clear(&a);
	assert_int_equal(a.n, 0);
	assert_true(flp_rset_unchanged_by(&a, 0, OFF_MAX, F_UNLCK));
	flp_range_to_flock(5, 9, &ls, &ll);
	assert_true(ls == 5 && ll == 5);
	flp_range_to_flock(5, OFF_MAX, &ls, &ll);
	assert_true(ls == 5 && ll == 0);
	flp_rset_free(&a);
	flp_rset_free(&b);
	assert_null(b.v);
}

/* ---- owner files: linear parse, explicit caps --------------------------- */

/* An owner file of `bytes` bytes or more: alternating R/W ranges two bytes
 * apart (none merge), as many lines as fit the size. */
static char *owner_file(size_t bytes, size_t *len, size_t *ranges)
{
	char *buf = malloc(bytes + 128);
	size_t n = (size_t)sprintf(buf, "filelock-ranges 1\nhost h\npid 7\ntoken 1\nowner posix\n");
	int64_t at = 1000000000;

	*ranges = 0;
	while (n < bytes) {
		n += (size_t)sprintf(buf + n, "%c %lld %lld\n", *ranges % 2 ? 'W' : 'R',
				     (long long)at, (long long)at);
		at += 2;
		(*ranges)++;
	}
	*len = n;
	return buf;
}

/* Best of five, seconds. */
static double parse_time(const char *buf, size_t len, size_t want)
{
	double best = 1e9;

	for (int i = 0; i < 5; i++) {
		struct flp_rset set = { 0 };
		struct timespec a, b;
		char host[256];
		pid_t pid;
		int ofd;

		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(flp_rl_parse(buf, len, host, sizeof(host), &pid, &ofd, &set), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		assert_int_equal(set.n, want);
		flp_rset_free(&set);
		double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		if (t < best)
			best = t;
	}
	return best;
}

static void test_owner_parse_linear(void **state)
{
	size_t len1, lenbig, n1, nbig, lenover, nover;
	char *small, *big, *over, host[256];
	struct flp_rset set = { 0 };
	double t1, tbig;
	pid_t pid;
	int ofd;

	(void)state;
	alarm(60);
	small = owner_file(64 << 10, &len1, &n1);
	big = owner_file(1 << 20, &lenbig, &nbig);
	t1 = parse_time(small, len1, n1);
	tbig = parse_time(big, lenbig, nbig);
	print_message("owner file parse: %zu ranges (%zu bytes) %.3f ms, %zu ranges (%zu bytes) "
		      "%.3f ms, ratio %.1f for %.1fx the size\n",
		      n1, len1, t1 * 1e3, nbig, lenbig, tbig * 1e3, tbig / t1,
		      (double)lenbig / (double)len1);
	/* 16x the bytes: linear is ~16x, the old quadratic parse was ~256x.
	 * Generous, so that a loaded machine cannot fail it; the absolute
	 * time (under 50 ms unoptimised) is printed, not asserted. */
	assert_true(tbig / t1 < 64.0);
	assert_true(nbig < FLP_RL_MAX_RANGES);
	/* Over the caps: malformed, at once. */
	over = owner_file((size_t)FLP_RL_MAX_RANGES * 25, &lenover, &nover);
	assert_true(nover > FLP_RL_MAX_RANGES && lenover < FLP_RL_MAX_BYTES);
	assert_int_equal(flp_rl_parse(over, lenover, host, sizeof(host), &pid, &ofd, &set),
			 -EBADMSG);
	assert_int_equal(flp_rl_parse(big, FLP_RL_MAX_BYTES + 1, host, sizeof(host), &pid, &ofd,
				      &set),
			 -EBADMSG);
	flp_rset_free(&set);
	free(small);
	free(big);
	free(over);
}

/* ---- the differential random test -------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static int64_t below(uint64_t *s, int64_t n)
{
	return (int64_t)(rnd(s) % (uint64_t)n);
}

/* Where the random ranges fall: a small window at 0 so that they meet,
 * SQLite's lock bytes at 2^30, and the top of the offset space where
 * l_start + l_len overflows. */
static const struct {
	int64_t base, width;
} clusters[] = {
	{ 0, 48 },
	{ INT64_C(1) << 30, 520 },
	{ INT64_MAX - 47, 48 },
};

static int pick_cluster(uint64_t *s)
{
	int64_t r = below(s, 100);

	return r < 60 ? 0 : r < 90 ? 1 : 2;
}

static void gen_range(uint64_t *s, int c, int64_t *start, int64_t *len)
{
	int64_t w = clusters[c].width, r = below(s, 100);

	*start = clusters[c].base + below(s, w);
	if (r < 8)
		*len = 0;
	else if (r < 20)
		*len = -(1 + below(s, w / 2));
	else if (r < 25)
		*len = c == 1 ? 510 : w;
	else
		*len = 1 + below(s, w / 3);
}

struct rstats {
	long ops, byb, errs, eagain, lists, probes, conflicts, multi, unchanged, unchanged1;
	long shrinks, shrinks1;
};

static void check_shrinks(const struct flp_rset *a, const struct flp_rset *b, struct rstats *st)
{
	int want = bf_shrinks(a, b);

	assert_int_equal(flp_rset_shrinks(a, b), want);
	st->shrinks++;
	st->shrinks1 += want;
}

static void random_run(uint64_t seed, int nops, struct rstats *st)
{
	enum { NSNAP = 4 };
	struct flp_rset before = { 0 }, snap[NSNAP] = { { 0 } };
	uint64_t g = seed;

	assert_int_equal(step_at(F_UNLCK, SEEK_SET, 0, 0, 0, 0), 0);
	assert_int_equal(step_by(1, F_UNLCK, SEEK_SET, 0, 0, -1, -1), 0);
	for (int i = 0; i < nops; i++) {
		short type, whence = SEEK_SET;
		int64_t start, len, size = -1, cur = -1, cur_now, r = below(&g, 100), s, e;
		int c = pick_cluster(&g), err, modelerr, byb = below(&g, 100) < 15;
		struct flp_rset *mine = byb ? &H.mb : &H.m;

		type = r < 35 ? F_RDLCK : r < 70 ? F_WRLCK : F_UNLCK;
		if (byb) /* B: fewer and weaker locks, so that A's still mostly succeed */
			type = r < 30 ? F_RDLCK : r < 45 ? F_WRLCK : F_UNLCK;
		gen_range(&g, c, &start, &len);
		r = below(&g, 100);
		if (byb) {
			if (r < 10)
				start = len = 0;
		} else if (c != 2 && r < 8) {
			/* The same absolute start, counted from A's position. */
			cur = clusters[c].base + below(&g, clusters[c].width);
			start -= cur;
			whence = SEEK_CUR;
		} else if (c != 2 && r < 14) {
			size = clusters[c].base + below(&g, clusters[c].width);
			start -= size;
			whence = SEEK_END;
		} else if (r < 16) {
			whence = (short)(3 + below(&g, 3)); /* SEEK_DATA, SEEK_HOLE, 5 */
		} else if (r < 18) {
			type = F_UNLCK;
			start = len = 0;
		}

		assert_int_equal(flp_rset_copy(&before, mine), 0);
		if (!byb && cur < 0)
			cur_now = H.cur;
		else
			cur_now = byb ? 0 : cur;
		modelerr = flp_range_from_flock(whence, start, len, cur_now,
						size >= 0 ? size : H.size, &s, &e);
		err = step_by(byb, type, whence, start, len, size, cur);
		st->ops++;
		st->byb += byb;
		st->lists += 2;
		if (err) {
			st->errs += err != EAGAIN;
			st->eagain += err == EAGAIN;
			assert_true(rset_equal(&before, mine));
		} else {
			int same = rset_equal(&before, mine);

			assert_int_equal(modelerr, 0);
			assert_int_equal(flp_rset_unchanged_by(&before, s, e, type), same);
			st->unchanged++;
			st->unchanged1 += same;
		}

		/* Shrinks: this step both ways, and A's set against older states. */
		check_shrinks(mine, &before, st);
		check_shrinks(&before, mine, st);
		for (int k = 0; k < NSNAP; k++) {
			check_shrinks(&H.m, &snap[k], st);
			check_shrinks(&snap[k], &H.m, st);
		}
		if (i % 7 == 0)
			assert_int_equal(flp_rset_copy(&snap[(i / 7) % NSNAP], &H.m), 0);

		/* B's view: a few probes, compared lock for lock. */
		for (int p = 0; p < 4; p++) {
			short pt = below(&g, 2) ? F_RDLCK : F_WRLCK;
			int pc = pick_cluster(&g), nconf = 0;
			int64_t ps, pl, a, b;
			char got[128];

			gen_range(&g, pc, &ps, &pl);
			if (below(&g, 100) < 5)
				ps = pl = 0;
			if (flp_range_from_flock(SEEK_SET, ps, pl, 0, H.size, &a, &b) == 0) {
				for (size_t k = 0; k < H.m.n; k++)
					if (H.m.v[k].start <= b && a <= H.m.v[k].end &&
					    (pt == F_WRLCK || H.m.v[k].type == F_WRLCK))
						nconf++;
			}
			(void)probe_at(pt, SEEK_SET, ps, pl, got, sizeof(got));
			st->probes++;
			st->conflicts += nconf > 0;
			st->multi += nconf > 1;
		}
	}
	flp_rset_free(&before);
	for (int k = 0; k < NSNAP; k++)
		flp_rset_free(&snap[k]);
}

static void test_random_vs_kernel(void **state)
{
	static const uint64_t seeds[] = { 0x9e3779b97f4a7c15, 0xd1b54a32d192ed03, 42, 0x5eed };
	struct rstats st = { 0 };

	(void)state;
	alarm(120);
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		random_run(seeds[i], 1500, &st);
	print_message("[ INFO     ] %ld F_SETLK ops (%ld by B; %ld EINVAL/EOVERFLOW and %ld "
		      "EAGAIN, same errno) and %ld lock lists identical to the kernel's; %ld "
		      "F_GETLK probes identical (%ld conflicts, %ld with several candidates); "
		      "%ld unchanged_by checks (%ld true), %ld shrinks checks (%ld true)\n",
		      st.ops, st.byb, st.errs, st.eagain, st.lists, st.probes, st.conflicts,
		      st.multi, st.unchanged, st.unchanged1, st.shrinks, st.shrinks1);
	assert_true(st.multi > 100); /* the "which one" question was really asked */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_convert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_negative_len, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_owners, setup, teardown),
		cmocka_unit_test(test_helpers_small),
		cmocka_unit_test(test_owner_parse_linear),
		cmocka_unit_test_setup_teardown(test_random_vs_kernel, setup, teardown),
	};

	return cmocka_run_group_tests_name("preload-ranges", tests, NULL, NULL);
}
