/* SPDX-License-Identifier: MIT */
/*
 * util.c -- clocks, paths, whole reads and writes, randomness, thread ids and fork
 * bookkeeping shared by the front end and the backends.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fl-internal.h"

double fl__now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fl__now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fl__sleep_until(double deadline)
{
	struct timespec ts;

	if (deadline <= 0)
		return;
	ts.tv_sec = (time_t)deadline;
	ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

double fl__mtime(const struct stat *st)
{
	return (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec / 1e9;
}

/*
 * Lock directories and who controls them.
 *
 * A directory is controlled by another user (than root) when its owner is
 * not root, or when its group or others may write it and it
 * has no sticky bit (group 0 excepted): that user can then rename, replace
 * or delete its entries, and so redirect anything done by path inside it.
 * A sticky directory (/tmp) is not: others can add entries but not move
 * ours, and everything we create there is O_EXCL|O_NOFOLLOW and checked.
 * A root process (euid 0) locks only in a directory whose every ancestor,
 * and itself, passes this rule; anywhere else it would follow, create or
 * delete where another user points it.
 */
static int fl__dir_foreign(const struct stat *st)
{
	if (st->st_uid != 0)
		return 1;
	if ((st->st_mode & S_IWOTH) && !(st->st_mode & S_ISVTX))
		return 1;
	return (st->st_mode & S_IWGRP) && st->st_gid != 0 && !(st->st_mode & S_ISVTX);
}

static int fl__dir_refuse(const struct fl_lock *lk, const char *dir, size_t len,
			  const struct stat *st)
{
	return fl__errf(lk, -ENOLCK,
			"%.*s: another user controls this directory (owner uid %d, mode %04o): a "
			"root process does not lock in it or below it; lock a path under a "
			"directory only root can change (the shim: lock_dir= in its policy)",
			(int)len, dir, (int)st->st_uid, (unsigned)(st->st_mode & 07777));
}

int fl__dir_open(const struct fl_lock *lk, const char *dir, unsigned how)
{
	const int oflags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	const int root = geteuid() == 0;
	const char *s = dir;
	struct stat st;
	int fd;

	if (dir[0] != '/')
		return fl__errf(lk, -EINVAL, "%s: lock directory is not absolute", dir);
	fd = fl__sys.open("/", oflags);
	if (fd < 0)
		return fl__err(lk, -errno, "open", "/");
	for (;;) {
		char comp[NAME_MAX + 1];
		const char *e, *op = "open";
		size_t cl;
		int nfd, made = 0;

		if (root || (how & FL__DIR_CREATE)) {
			if (fl__sys.fstat(fd, &st) != 0) {
				int r = fl__err(lk, -errno, "fstat", dir);
				fl__sys.close(fd);
				return r;
			}
			if (root && fl__dir_foreign(&st)) {
				fl__sys.close(fd);
				return fl__dir_refuse(lk, dir, s == dir ? 1 : (size_t)(s - dir), &st);
			}
		}
		while (*s == '/')
			s++;
		if (*s == '\0')
			break;
		e = strchrnul(s, '/');
		cl = (size_t)(e - s);
		if (cl > NAME_MAX) {
			fl__sys.close(fd);
			return fl__err(lk, -ENAMETOOLONG, "open", dir);
		}
		memcpy(comp, s, cl);
		comp[cl] = '\0';
		nfd = fl__sys.openat(fd, comp, oflags);
		if (nfd < 0 && errno == ENOENT && (how & FL__DIR_CREATE)) {
			/* 0777 & ~umask, as Python's mkdir -p; the sticky bit of a
			 * shared parent is kept, so that users of a /tmp-like
			 * directory cannot remove each other's files below it
			 * either (setgid is inherited by the kernel). */
			op = "mkdir";
			if (fl__sys.mkdirat(fd, comp, 0777) == 0)
				made = 1;
			else if (errno != EEXIST)
				goto fail;
			op = "open";
			nfd = fl__sys.openat(fd, comp, (made && (st.st_mode & S_ISVTX))
							      ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
							      : oflags);
			if (nfd >= 0 && made && (st.st_mode & S_ISVTX)) {
				struct stat nst;
				if (fl__sys.fstat(nfd, &nst) == 0)
					(void)fl__sys.fchmod(nfd, (nst.st_mode & 07777) | S_ISVTX);
			}
		}
		if (nfd < 0)
			goto fail;
		fl__sys.close(fd);
		fd = nfd;
		s = e;
		continue;
fail:
		{
			int err = errno;
			char part[PATH_MAX];

			fl__sys.close(fd);
			snprintf(part, sizeof(part), "%.*s", (int)(e - dir), dir);
			if (err == ENOENT && !(how & FL__DIR_CREATE) && (how & FL__DIR_QUIET))
				return -ENOENT;
			if (err == ENOENT && !(how & FL__DIR_CREATE))
				return fl__errf(lk, -ENOENT,
						"%s: No such file or directory (creating missing lock "
						"directories is disabled)",
						part);
			if (err == ELOOP || err == ENOTDIR)
				return fl__errf(lk, -ENOTDIR,
						"%s: not a directory (a symlink or file put there "
						"after the lock path was resolved?)",
						part);
			return fl__err(lk, -err, op, part);
		}
	}
	fl__sys.close(fd);
	return 0;
}

int fl__mkdir_p(const struct fl_lock *lk)
{
	unsigned how = lk->opt.flags & FL_NO_CREATE_DIRS ? 0 : FL__DIR_CREATE;
	struct stat st;

	/* Usually it exists (a caller's create failed for another reason);
	 * a root process's directories were checked by fl_open. */
	if (fl__sys.stat(lk->dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0
					   : fl__errf(lk, -ENOTDIR, "%s: Not a directory", lk->dir);
	return fl__dir_open(lk, lk->dir, how);
}

/* Appends the lexically normalised components of `rest` to buf (an absolute
 * directory).  Returns 0 or -ENAMETOOLONG. */
static int fl__append_norm(char *buf, size_t cap, const char *rest)
{
	size_t n = strlen(buf);
	const char *s = rest;

	while (*s) {
		const char *e = strchr(s, '/');
		size_t cl = e ? (size_t)(e - s) : strlen(s);

		if (cl == 0 || (cl == 1 && s[0] == '.')) {
			/* skip */
		} else if (cl == 2 && s[0] == '.' && s[1] == '.') {
			char *slash = strrchr(buf, '/');
			if (slash == buf)
				buf[1] = '\0';
			else if (slash)
				*slash = '\0';
			n = strlen(buf);
		} else {
			int need_slash = !(n == 1 && buf[0] == '/');
			if (n + need_slash + cl + 1 > cap)
				return -ENAMETOOLONG;
			if (need_slash)
				buf[n++] = '/';
			memcpy(buf + n, s, cl);
			n += cl;
			buf[n] = '\0';
		}
		s += cl;
		if (*s == '/')
			s++;
	}
	return 0;
}

char *fl__canonical(const char *path, int *err)
{
	char abs[PATH_MAX], res[PATH_MAX], out[PATH_MAX];
	const char *base;
	size_t dirlen;
	char *p;

	*err = 0;
	if (path == NULL || path[0] == '\0') {
		*err = -ENOENT;
		return NULL;
	}
	if (strlen(path) >= PATH_MAX) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	/* Split into parent and final name; a trailing slash is not a lock name. */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		*err = -EISDIR;
		return NULL;
	}
	dirlen = (size_t)(base - path);
	if (path[0] == '/') {
		abs[0] = '\0';
	} else if (getcwd(abs, sizeof(abs)) == NULL) {
		*err = -errno;
		return NULL;
	}
	{
		size_t al = strlen(abs);
		if (al + 1 + dirlen + 1 > sizeof(abs)) {
			*err = -ENAMETOOLONG;
			return NULL;
		}
		if (path[0] != '/')
			abs[al++] = '/';
		memcpy(abs + al, path, dirlen);
		abs[al + dirlen] = '\0';
	}
	/* Resolve the longest existing prefix of the parent; keep the rest. */
	{
		char probe[PATH_MAX];
		size_t plen = strlen(abs);
		const char *rest = "";

		memcpy(probe, abs, plen + 1);
		for (;;) {
			if (realpath(probe, res) != NULL)
				break;
			if (errno != ENOENT && errno != ENOTDIR) {
				*err = -errno;
				return NULL;
			}
			/* strip the last component */
			while (plen > 1 && probe[plen - 1] == '/')
				probe[--plen] = '\0';
			p = strrchr(probe, '/');
			if (p == NULL || p == probe) {
				strcpy(res, "/");
				rest = abs + 1;
				break;
			}
			*p = '\0';
			plen = (size_t)(p - probe);
			rest = abs + plen + 1;
		}
		strcpy(out, res);
		if (fl__append_norm(out, sizeof(out), rest) != 0) {
			*err = -ENAMETOOLONG;
			return NULL;
		}
	}
	{
		size_t ol = strlen(out), bl = strlen(base);
		int need_slash = !(ol == 1 && out[0] == '/');
		if (ol + need_slash + bl + 1 > sizeof(out)) {
			*err = -ENAMETOOLONG;
			return NULL;
		}
		if (need_slash)
			out[ol++] = '/';
		memcpy(out + ol, base, bl + 1);
	}
	p = strdup(out);
	if (p == NULL)
		*err = -ENOMEM;
	return p;
}

int fl__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = fl__sys.write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fl__read_all(int fd, void *buf, size_t cap, size_t *len)
{
	char *p = buf;
	size_t got = 0;

	while (got < cap) {
		ssize_t n = fl__sys.read(fd, p + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*len = got;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

void fl__random_hex(char buf[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	size_t got = 0;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No entropy source: fall back to time and pid mixing. */
			uint64_t x = (uint64_t)fl__now_wall() * 1000003u ^ (uint64_t)getpid() << 20;
			for (; got < sizeof(r); got++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				r[got] = (unsigned char)x;
			}
			break;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		buf[2 * i] = hex[r[i] >> 4];
		buf[2 * i + 1] = hex[r[i] & 15];
	}
	buf[32] = '\0';
}

static atomic_uint_fast64_t fl__next_tid = 1;
static __thread uint64_t fl__tls_tid;

uint64_t fl__thread_uid(void)
{
	if (fl__tls_tid == 0)
		fl__tls_tid = atomic_fetch_add(&fl__next_tid, 1);
	return fl__tls_tid;
}

atomic_uint fl__fork_generation;
static atomic_int fl__cached_pid;
static void (*fl__child_fns[8])(void);
static atomic_int fl__n_child_fns;
static pthread_once_t fl__fork_once = PTHREAD_ONCE_INIT;

static void fl__on_fork_child(void)
{
	int n = atomic_load(&fl__n_child_fns);

	atomic_store(&fl__cached_pid, (int)getpid());
	atomic_fetch_add(&fl__fork_generation, 1);
	for (int i = 0; i < n; i++)
		fl__child_fns[i]();
}

static void fl__fork_init(void)
{
	atomic_store(&fl__cached_pid, (int)getpid());
	pthread_atfork(NULL, NULL, fl__on_fork_child);
}

pid_t fl__pid(void)
{
	pthread_once(&fl__fork_once, fl__fork_init);
	return (pid_t)atomic_load(&fl__cached_pid);
}

void fl__atfork_child(void (*fn)(void))
{
	pthread_once(&fl__fork_once, fl__fork_init);
	int i = atomic_fetch_add(&fl__n_child_fns, 1);
	if (i < (int)(sizeof(fl__child_fns) / sizeof(fl__child_fns[0])))
		fl__child_fns[i] = fn;
	else
		abort(); /* a programming error: raise the table size */
}

int fl__parse_ll(const char *s, size_t len, long long *out)
{
	size_t i = 0, end = len;
	long long v = 0;
	int neg = 0, digits = 0;

	while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
			   s[i] == '\v' || s[i] == '\f'))
		i++;
	while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\n' ||
			   s[end - 1] == '\r' || s[end - 1] == '\v' || s[end - 1] == '\f'))
		end--;
	if (i < end && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	for (; i < end; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (LLONG_MAX - (s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (s[i] - '0');
		digits++;
	}
	if (digits == 0)
		return -EINVAL;
	*out = neg ? -v : v;
	return 0;
}
