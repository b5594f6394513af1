/* SPDX-License-Identifier: MIT */
/*
 * identity.c -- who a process is: host name, pid liveness and the process
 * start token that defeats pid recycling.
 *
 * The start token is Python filelock's: on Linux (boot_id << 64) | starttime,
 * where boot_id is the 128-bit UUID of /proc/sys/kernel/random/boot_id and
 * starttime field 22 of /proc/<pid>/stat.  The result is a ~192-bit integer
 * written in decimal, so we keep it in six 32-bit limbs and print it by
 * repeated division by 10^9.  Tokens are only ever compared for equality.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "fl-internal.h"

/*
 * The host field of every record we write, Python filelock 4's host_name():
 * the node name with every byte outside 0x21-0x7E, and '?' itself, escaped
 * as "?xx" (lowercase hex), then
 * "?pidns-<hex inode of /proc/self/ns/pid>" outside the initial PID namespace
 * (inode 0xEFFFFFFC), so two containers with one host name are told apart and
 * a pid recorded in one is never judged by the other's /proc.  An empty
 * result is "?".  Python folds names over 253 characters into a digest;
 * Linux node names are at most 64 bytes, so the longest result (3 * 64 plus
 * the suffix) never reaches that limit and no digest is needed here.
 */
int fl__hostname(char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	struct utsname u;
	struct stat st;
	size_t n = 0;

	if (uname(&u) != 0)
		return -errno;
	for (const unsigned char *p = (const unsigned char *)u.nodename; *p; p++) {
		if (n + 4 > len)
			return -ENAMETOOLONG;
		if (*p >= 0x21 && *p <= 0x7e && *p != '?') {
			buf[n++] = (char)*p;
		} else {
			buf[n++] = '?';
			buf[n++] = hex[*p >> 4];
			buf[n++] = hex[*p & 15];
		}
	}
	if (fl__sys.stat("/proc/self/ns/pid", &st) == 0 && st.st_ino != FL__INITIAL_PIDNS) {
		int k = snprintf(buf + n, len - n, "?pidns-%llx", (unsigned long long)st.st_ino);
		if (k < 0 || (size_t)k >= len - n)
			return -ENAMETOOLONG;
		n += (size_t)k;
	}
	if (n == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		buf[n++] = '?';
	}
	buf[n] = '\0';
	return 0;
}

/* Reads a small /proc file into buf (NUL-terminated).  Returns length or -errno. */
static ssize_t fl__read_small(const char *path, char *buf, size_t cap)
{
	int fd = fl__sys.open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t got = 0;
	int r;

	if (fd < 0)
		return -errno;
	r = fl__read_all(fd, buf, cap - 1, &got);
	fl__sys.close(fd);
	if (r != 0)
		return r;
	buf[got] = '\0';
	return (ssize_t)got;
}

/* boot_id as four 32-bit limbs, most significant first; read once. */
static uint32_t fl__boot_id[4];
static pthread_once_t fl__boot_once = PTHREAD_ONCE_INIT;

static void fl__boot_init(void)
{
	char buf[64], hex[33];
	size_t n = 0;

	if (fl__read_small("/proc/sys/kernel/random/boot_id", buf, sizeof(buf)) <= 0)
		return;
	for (const char *p = buf; *p && n < 32; p++) {
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))
			hex[n++] = *p;
	}
	if (n != 32)
		return; /* Python: unparsable boot id counts as 0 */
	hex[32] = '\0';
	for (int i = 0; i < 4; i++) {
		char part[9];
		memcpy(part, hex + 8 * i, 8);
		part[8] = '\0';
		fl__boot_id[i] = (uint32_t)strtoul(part, NULL, 16);
	}
}

/* Prints the 192-bit number in limbs[6] (most significant first) in decimal. */
static void fl__u192_to_dec(uint32_t limbs[6], char *out, size_t cap)
{
	char tmp[80];
	size_t n = 0;
	int zero;

	do {
		uint64_t rem = 0;
		zero = 1;
		for (int i = 0; i < 6; i++) {
			uint64_t cur = (rem << 32) | limbs[i];
			limbs[i] = (uint32_t)(cur / 1000000000u);
			rem = cur % 1000000000u;
			if (limbs[i])
				zero = 0;
		}
		/* emit 9 digits (or fewer for the last chunk) */
		for (int d = 0; d < 9; d++) {
			tmp[n++] = (char)('0' + rem % 10);
			rem /= 10;
			if (zero && rem == 0)
				break;
		}
	} while (!zero);
	while (n > 1 && tmp[n - 1] == '0')
		n--;
	if (n + 1 > cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

int fl__start_token(pid_t pid, char *buf, size_t len)
{
	char path[64], stat[1024];
	unsigned long long starttime;
	ssize_t n;
	const char *p;
	uint32_t limbs[6];

	pthread_once(&fl__boot_once, fl__boot_init);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = fl__read_small(path, stat, sizeof(stat));
	if (n < 0)
		return (int)n;
	p = strrchr(stat, ')');
	if (p == NULL)
		return -EBADMSG;
	p++;
	/* fields after ')': index 0 = state ... index 19 = starttime */
	for (int field = 0; field < 19; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
		if (*p == '\0')
			return -EBADMSG;
	}
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -EBADMSG;
	starttime = strtoull(p, NULL, 10);
	limbs[0] = fl__boot_id[0];
	limbs[1] = fl__boot_id[1];
	limbs[2] = fl__boot_id[2];
	limbs[3] = fl__boot_id[3];
	limbs[4] = (uint32_t)(starttime >> 32);
	limbs[5] = (uint32_t)starttime;
	fl__u192_to_dec(limbs, buf, len);
	return 0;
}

static char fl__self_tok[96];
static pid_t fl__self_tok_pid;
static pthread_mutex_t fl__self_tok_mu = PTHREAD_MUTEX_INITIALIZER;

const char *fl__self_token(void)
{
	static __thread char copy[96];
	pid_t me = fl__pid();

	pthread_mutex_lock(&fl__self_tok_mu);
	if (fl__self_tok_pid != me) {
		if (fl__start_token(me, fl__self_tok, sizeof(fl__self_tok)) != 0)
			fl__self_tok[0] = '\0';
		fl__self_tok_pid = me;
	}
	memcpy(copy, fl__self_tok, sizeof(copy));
	pthread_mutex_unlock(&fl__self_tok_mu);
	return copy;
}

int fl__pid_alive(pid_t pid)
{
	if (pid <= 0)
		return -EINVAL;
	if (fl__sys.kill(pid, 0) == 0)
		return 1;
	if (errno == ESRCH)
		return 0;
	if (errno == EPERM)
		return 1;
	return -errno;
}

/* Skips whitespace, a '+', and leading zeros; returns the digit span. */
static const char *fl__tok_norm(const char *s, size_t *len)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s == '+')
		s++;
	while (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		s++;
	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		;
	*len = n;
	return s;
}

int fl__token_equal(const char *a, const char *b)
{
	size_t la, lb;
	const char *na = fl__tok_norm(a, &la), *nb = fl__tok_norm(b, &lb);

	return la == lb && la > 0 && memcmp(na, nb, la) == 0;
}

/* The innermost pid of task (the last field of NSpid in its status), or 0. */
static pid_t fl__innermost_pid(pid_t task)
{
	char path[64], buf[4096], *l;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)task);
	if (fl__read_small(path, buf, sizeof(buf)) <= 0 || (l = strstr(buf, "\nNSpid:")) == NULL)
		return 0;
	l += 7;
	for (char *e = strchr(l, '\n') ? strchr(l, '\n') : l + strlen(l); e > l; e--)
		if (e[-1] == ' ' || e[-1] == '\t')
			return (pid_t)atoi(e);
	return 0;
}

/*
 * Python 4's _owner_runs_elsewhere(): an older release in a container that
 * shares our host name recorded its in-container pid.  Start tokens (boot id
 * and start time) are kernel-wide, so another task with the recorded token
 * whose innermost pid is the recorded pid is the owner, alive elsewhere.
 */
static int fl__owner_runs_elsewhere(pid_t pid, const char *token)
{
	struct dirent *de;
	int fd, found = 0;
	DIR *d;

	if (token == NULL || token[0] == '\0')
		return 0;
	fd = fl__sys.open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	d = fl__sys.fdopendir(fd);
	if (d == NULL) {
		fl__sys.close(fd);
		return 0;
	}
	while (!found && (de = fl__sys.readdir(d)) != NULL) {
		char cur[96];
		pid_t task;

		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		task = (pid_t)atoi(de->d_name);
		found = task != pid && fl__start_token(task, cur, sizeof(cur)) == 0 &&
			fl__token_equal(cur, token) && fl__innermost_pid(task) == pid;
	}
	fl__sys.closedir(d);
	return found;
}

/*
 * Python 4's owner_is_stale(): only a provably dead owner is stale.  Another
 * host's (a different host field, which includes another PID namespace of
 * this host) never is.  A live pid whose start token matches, or cannot be
 * read, is the owner.  Otherwise the owner is gone, unless the host field is
 * bare (no "?pidns-") and the owner is found alive as another task of this
 * kernel: an older release in a container sharing our name wrote it.
 */
int fl__owner_is_stale(pid_t pid, const char *host, const char *token)
{
	char me[256], cur[96];
	int alive;

	if (fl__hostname(me, sizeof(me)) != 0 || strcmp(me, host) != 0)
		return 0; /* another host's marker is never ours to judge */
	alive = fl__pid_alive(pid);
	if (alive < 0)
		return 0;
	if (alive == 1 && (token == NULL || token[0] == '\0' ||
			   fl__start_token(pid, cur, sizeof(cur)) != 0 || fl__token_equal(cur, token)))
		return 0;
	return strstr(host, "?pidns-") != NULL || !fl__owner_runs_elsewhere(pid, token);
}
