/* SPDX-License-Identifier: MIT */
/*
 * filelock.c -- the `filelock` command: flock(1) for every lock kind.
 *
 * Forms (flock(1)'s, plus three subcommands):
 *
 *     filelock [options] FILE|DIR CMD [ARG...]
 *     filelock [options] FILE|DIR -c CMD
 *     filelock [options] FD
 *     filelock status PATH [--kind K] [--json]
 *     filelock break PATH [--kind K] [--force] [--claim NAME]
 *     filelock check-policy [FILE]
 *
 * Two engines.  The default kind, `unix`, is flock(1) itself: we open the
 * path O_RDONLY|O_CREAT (directories too), flock(2) it and let the command
 * inherit the descriptor unless -o is given, so the lock outlives a killed
 * wrapper exactly as with flock(1), and -F can exec in place.  We do not go
 * through the library's unix kind here because that kind follows Python's
 * UnixFileLock: it truncates a non-empty lock file on an exclusive acquire,
 * refuses symlinks and directories and keeps its descriptor O_CLOEXEC.  All
 * of that is right for a dedicated lock file and wrong for `flock "$0"`.
 *
 * Every other kind goes through fl_open()/fl_acquire().  Those locks are
 * held by this process, not by a descriptor the command could inherit: we
 * spawn the command, wait for it, and release afterwards.  Heartbeat kinds
 * are refreshed by the library's heartbeat thread while we wait.  Hence -F
 * (exec in place) is refused for them (the marker would be orphaned, and a
 * heartbeat would stop), and -o changes nothing (the command never holds the
 * lock).  A SIGTERM/SIGHUP/SIGINT/SIGQUIT sent to us alone (kill, not the
 * terminal) is passed on to the command, so that we release only after it
 * has gone: releasing while it still runs would let a second holder in.
 *
 * Waiting.  The unix engine blocks in the kernel.  A timeout (-w), --verbose
 * or a wait on a terminal arms an interval timer whose SIGALRM interrupts
 * flock() with EINTR, as flock(1) does; the timer repeats, so a signal that
 * arrives just before flock() enters the kernel costs one more tick, not a
 * hang.  The library engine reports progress through cancel_check, which
 * the front end calls after each failed attempt.  --verbose names the
 * holder (fl_inspect) at most once a second; on a terminal it is named once,
 * after a few seconds, even without --verbose.
 *
 * Exit codes are flock(1)'s sysexits, listed in filelock(1); a conflict or
 * timeout exits with -E (default 1); a command's status is passed through,
 * 128+N when signal N killed it.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <paths.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "proclocks.h"
#include "filelock.h"
#include "flp.h" /* the shim's policy parser (preload/policy.c), its owner files (ranges.c) */

/* From the library's internals (fl-internal.h pulls in far more). */
int fl__hostname(char *buf, size_t len);
int fl__owner_is_stale(pid_t pid, const char *host, const char *token);
int fl__unlink_if_same(int dirfd, const char *name, dev_t dev, ino_t ino);

static const char *prog = "filelock";

/* ---- messages, numbers ------------------------------------------------- */

/*
 * Text output escapes what other users wrote (marker fields, holder names,
 * etcd values, command names in /proc) with fl__escape(): a marker must not
 * drive the terminal.  esc() returns one of a few rotating buffers, enough
 * for the fields of one printf.
 */
static const char *esc(const char *s)
{
	static char buf[4][FL__ESCAPED_SIZE(1024)];
	static unsigned next;
	char *b = buf[next++ % 4];

	return fl__escape(b, sizeof(buf[0]), s);
}

/* "prog: MESSAGE\n" on stderr, the message escaped as a whole. */
static void vmsg(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void vmsg(const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s: %s\n", prog, esc(msg));
}

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	exit(code);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	exit(EX_USAGE);
}

/* A duration >= 0 as the policy file writes them ("1", "0.25", "2s", "500ms",
 * "1m"); anything else is a usage error. */
static double parse_seconds(const char *s, const char *what)
{
	double v;

	if (flp_parse_duration(s, &v) != 0)
		usage_error("invalid %s: '%s' (expected a duration: seconds, or with a unit: 2.5, "
			    "2s, 500ms, 1m, 1h)",
			    what, s);
	return v;
}

/*
 * The library's messages name its functions and its struct fields; ours name
 * the command's options and subcommands.  Returns a static buffer.
 */
static const char *cli_words(const char *msg)
{
	static const char *const map[][2] = {
		{ "heartbeat_interval", "--heartbeat-interval" },
		{ "stale_threshold", "--stale-threshold" },
		{ "lease_duration", "--lease-duration" },
		{ "poll_interval", "--poll-interval" },
		{ "lifetime", "--lifetime" },
		{ "soft_rw_protocol", "--soft-rw-protocol" },
		{ "fl_break()", "filelock break" },
	};
	static char out[2048];
	size_t n = 0;
	const char *p = msg;

	/* "fl_break: ...", "fl_open: ...": the function name goes. */
	if (strncmp(p, "fl_", 3) == 0) {
		const char *c = p + strcspn(p, ": ");
		if (c[0] == ':' && c[1] == ' ')
			p = c + 2;
	}
	while (*p && n + 1 < sizeof(out)) {
		size_t i, l = 0;

		/* Whole words only: a path in the message keeps its name. */
		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
			l = strlen(map[i][0]);
			if (strncmp(p, map[i][0], l) == 0 && (p == msg || strchr(" (", p[-1])) &&
			    (p[l] == '\0' || strchr(" ,;:)", p[l])))
				break;
		}
		if (i < sizeof(map) / sizeof(map[0])) {
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", map[i][1]);
			if (n >= sizeof(out))
				n = sizeof(out) - 1;
			p += l;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return out;
}

#define ERRMSG(lk) cli_words(fl_errmsg(lk))

/* A decimal integer in [lo, hi]; anything else is a usage error. */
static long parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || isspace((unsigned char)*s) || *s == '+' || *end != '\0' ||
	    errno == ERANGE || v < lo || v > hi)
		usage_error("invalid %s: '%s' (allowed values: %ld-%ld)", what, s, lo, hi);
	return v;
}

static int parse_mode(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 8);
	if (*s == '\0' || !isdigit((unsigned char)*s) || *end != '\0' || errno == ERANGE ||
	    v < 0 || v > 07777)
		usage_error("invalid mode: '%s' (expected octal 0-7777, e.g. 0644)", s);
	return (int)v;
}

static enum fl_kind parse_kind(const char *s)
{
	enum fl_kind k;

	if (fl_kind_parse(s, &k) != 0)
		usage_error("unknown lock kind '%s' (known: file, unix, soft, strict, lease, rw, "
			    "soft-rw, etcd)",
			    s);
	return k;
}

static int all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* Maps a failed open/lock errno to flock(1)'s sysexits. */
static int exit_code_for(int err)
{
	switch (err) {
	case EROFS:
	case ENOSPC:
	case EDQUOT:
		return EX_CANTCREAT;
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case ENOLCK:
	case ENOBUFS:
	case EAGAIN:
		return EX_OSERR;
	case EACCES:
	case EPERM:
	case ENOENT:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case ENXIO:
	case ETXTBSY:
		return EX_NOINPUT;
	case EINVAL:
		return EX_USAGE;
	case ENOTSUP:
		return EX_UNAVAILABLE;
	default:
		return EX_DATAERR;
	}
}

/* closestream: a failed write to stdout must not go unnoticed. */
static void close_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
		if (errno != EPIPE) {
			fprintf(stderr, "%s: write error: %s\n", prog, strerror(errno ? errno : EIO));
			_exit(EX_IOERR);
		}
	}
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- options ------------------------------------------------------------- */

struct cli {
	enum fl_kind kind;
	int kind_given;
	unsigned given; /* G_* bits: the kind options on the command line */
	int shared, unlock, nonblock, close_fd, no_fork, verbose;
	double timeout; /* < 0: none given */
	int conflict_code;
	struct fl_options opt;
	const char *path;
	int fd; /* the FD form, else -1 */
	char **cmd;
	char *sh_argv[4];
};

enum {
	OPT_VERBOSE = CHAR_MAX + 1,
	OPT_HEARTBEAT,
	OPT_STALE,
	OPT_LEASE,
	OPT_POLL,
	OPT_MODE,
	OPT_LIFETIME,
	OPT_NO_CREATE_DIRS,
	OPT_JSON,
	OPT_FORCE,
	OPT_CLAIM,
	OPT_PROTOCOL,
};

/* The kind options, as bits of struct cli's `given`. */
enum {
	G_HEARTBEAT = 1,
	G_STALE = 2,
	G_LEASE = 4,
	G_POLL = 8,
	G_LIFETIME = 16,
	G_MODE = 32,
	G_PROTOCOL = 64
};

static const char *const given_names[] = { "--heartbeat-interval", "--stale-threshold",
					   "--lease-duration", "--poll-interval", "--lifetime",
					   "--mode", "--soft-rw-protocol" };

/* Kind options shared by the lock form and the status/break subcommands. */
static int kind_option(struct cli *c, int o, const char *arg)
{
	switch (o) {
	case 't':
		c->kind = parse_kind(arg);
		c->kind_given = 1;
		return 1;
	case OPT_HEARTBEAT:
		c->opt.heartbeat_interval = parse_seconds(arg, "--heartbeat-interval");
		c->given |= G_HEARTBEAT;
		return 1;
	case OPT_STALE:
		c->opt.stale_threshold = parse_seconds(arg, "--stale-threshold");
		c->given |= G_STALE;
		return 1;
	case OPT_LEASE:
		c->opt.lease_duration = parse_seconds(arg, "--lease-duration");
		c->given |= G_LEASE;
		return 1;
	case OPT_POLL:
		c->opt.poll_interval = parse_seconds(arg, "--poll-interval");
		c->given |= G_POLL;
		return 1;
	case OPT_LIFETIME:
		c->opt.lifetime = parse_seconds(arg, "--lifetime");
		c->given |= G_LIFETIME;
		return 1;
	case OPT_MODE:
		c->opt.mode = parse_mode(arg);
		c->given |= G_MODE;
		return 1;
	case OPT_PROTOCOL:
		if (strcmp(arg, "legacy") == 0)
			c->opt.soft_rw_protocol = FL_SOFT_RW_LEGACY;
		else if (strcmp(arg, "rw1") == 0 || strcmp(arg, "filelock-rw/1") == 0)
			c->opt.soft_rw_protocol = FL_SOFT_RW_RW1;
		else
			die(EX_USAGE, "bad soft-rw protocol '%s' (rw1 or legacy)", arg);
		c->given |= G_PROTOCOL;
		return 1;
	case OPT_NO_CREATE_DIRS:
		c->opt.flags |= FL_NO_CREATE_DIRS;
		return 1;
	}
	return 0;
}

/*
 * Kind options the kind neither uses nor refuses (the library refuses, with
 * a message, e.g. --stale-threshold for lease): a warning each, since they
 * change nothing.
 */
static void warn_unused_options(const struct cli *c)
{
	unsigned uses, refuses = c->kind == FL_SOFT ? 0 : G_LIFETIME;

	switch (c->kind) {
	case FL_UNIX: /* the kernel's flock: it blocks, nothing to poll */
		uses = G_MODE;
		break;
	case FL_FILE: /* falls back to soft without flock */
	case FL_RW:
		uses = G_MODE | G_POLL;
		break;
	case FL_SOFT:
		uses = G_MODE | G_POLL | G_LIFETIME;
		break;
	case FL_STRICT:
		uses = G_MODE | G_POLL;
		refuses |= G_HEARTBEAT | G_STALE | G_LEASE;
		break;
	case FL_LEASE:
		uses = G_MODE | G_POLL | G_HEARTBEAT | G_LEASE;
		refuses |= G_STALE;
		break;
	case FL_SOFT_RW:
		uses = G_MODE | G_POLL | G_HEARTBEAT | G_STALE | G_PROTOCOL;
		refuses |= G_LEASE;
		break;
	default: /* etcd: the lease TTL is --stale-threshold or --lease-duration */
		uses = G_POLL | G_HEARTBEAT | G_STALE | G_LEASE;
		break;
	}
	for (unsigned i = 0; i < sizeof(given_names) / sizeof(given_names[0]); i++)
		if (c->given & ~uses & ~refuses & (1u << i))
			warnx_("warning: %s has no effect on kind %s (ignored)", given_names[i],
			       fl_kind_name(c->kind));
}

#define KIND_LONG_OPTIONS                                              \
	{ "kind", required_argument, NULL, 't' },                          \
	{ "heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT },  \
	{ "stale-threshold", required_argument, NULL, OPT_STALE },         \
	{ "lease-duration", required_argument, NULL, OPT_LEASE },          \
	{ "poll-interval", required_argument, NULL, OPT_POLL },            \
	{ "lifetime", required_argument, NULL, OPT_LIFETIME },             \
	{ "mode", required_argument, NULL, OPT_MODE },                     \
	{ "soft-rw-protocol", required_argument, NULL, OPT_PROTOCOL },     \
	{ "no-create-dirs", no_argument, NULL, OPT_NO_CREATE_DIRS }

static void usage(void)
{
	printf("Usage:\n"
	       " %1$s [options] <file>|<directory> <command> [<argument>...]\n"
	       " %1$s [options] <file>|<directory> -c <command>\n"
	       " %1$s [options] <file descriptor number>\n"
	       " %1$s status <path> [--kind <kind>] [--json]\n"
	       " %1$s break <path> [--kind <kind>] [--force] [--claim <name>]\n"
	       " %1$s check-policy [<file>]\n"
	       "\n"
	       "Hold a file lock of any kind while a command runs (flock(1) compatible).\n"
	       "\n"
	       "Options:\n"
	       " -s, --shared               get a shared lock\n"
	       " -x, -e, --exclusive        get an exclusive lock (default)\n"
	       " -u, --unlock               remove a lock (file descriptor form)\n"
	       " -n, --nb, --nonblock       fail rather than wait\n"
	       " -w, --wait, --timeout <secs>  wait at most <secs> (fractional; 0 = -n)\n"
	       " -E, --conflict-exit-code <number>  exit code after conflict or timeout (1)\n"
	       " -o, --close                the command does not inherit the lock descriptor\n"
	       " -c, --command <command>    run a single command string through the shell\n"
	       " -F, --no-fork              execute the command without forking (unix only)\n"
	       "     --verbose              say who holds the lock while waiting\n"
	       " -t, --kind <kind>          file, unix (default), soft, strict, lease, rw, soft-rw,\n"
	       "                            etcd (endpoints: FILELOCK_ETCD_ENDPOINTS)\n"
	       "     --poll-interval <secs> pause between attempts of marker kinds\n"
	       "     --heartbeat-interval <secs>  lease and soft-rw heartbeat period\n"
	       "     --stale-threshold <secs>     soft-rw: a silent holder is stale after this\n"
	       "     --lease-duration <secs>      lease: a silent lease expires after this\n"
	       "     --lifetime <secs>      soft: markers older than this are broken\n"
	       "     --mode <octal>         permissions of files the lock creates\n"
	       "     --soft-rw-protocol <rw1|legacy>  soft-rw on disk: filelock-rw/1 (default,\n"
	       "                            Python filelock 4) or legacy (filelock <= 3.32.3)\n"
	       "     --no-create-dirs       fail if the lock's directory is missing\n"
	       "\n"
	       "Durations are seconds, or take a unit: 500ms, 2s, 1m, 1h.\n"
	       "status and break find the kind from the files on disk when --kind is not\n"
	       "given, and look at the marker of a data path the shim's policy redirects.\n"
	       "\n"
	       " -h, --help                 display this help\n"
	       " -V, --version              display version\n"
	       "\n"
	       "For more details see filelock(1).\n",
	       prog);
	exit(EX_OK);
}

static void version(void)
{
	printf("%s (libfilelock) %s\n", prog, fl_version());
	exit(EX_OK);
}

/* ---- who holds it -------------------------------------------------------- */

static const char *state_name(int state)
{
	switch (state) {
	case FL_HOLDER_FREE:
		return "free";
	case FL_HOLDER_HELD:
		return "held";
	case FL_HOLDER_STALE:
		return "stale";
	case FL_HOLDER_MALFORMED:
		return "malformed";
	case FL_HOLDER_UNKNOWN:
		return "held";
	}
	return "unknown";
}

/* The command name and owner of a local pid, "" when unknown. */
static void proc_info(pid_t pid, char *comm, size_t clen, char *user, size_t ulen)
{
	char p[64];
	struct stat st;
	FILE *f;

	comm[0] = '\0';
	user[0] = '\0';
	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	f = fopen(p, "re");
	if (f != NULL) {
		if (fgets(comm, (int)clen, f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		else
			comm[0] = '\0';
		fclose(f);
	}
	snprintf(p, sizeof(p), "/proc/%d", (int)pid);
	if (stat(p, &st) == 0) {
		struct passwd *pw = getpwuid(st.st_uid);
		if (pw != NULL)
			snprintf(user, ulen, "%s", pw->pw_name);
		else
			snprintf(user, ulen, "%u", (unsigned)st.st_uid);
	}
}

static void fmt_duration(char *buf, size_t len, double s)
{
	if (s < 0)
		snprintf(buf, len, "?");
	else if (s < 60)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* One line naming the holder, e.g. "pid 42 (make, user ann) on host n1, exclusive, for 3.0s". */
static void describe_holder(const struct fl_holder *h, char *buf, size_t len)
{
	char comm[64], user[64], age[32];
	int n = 0;

	if (h->pid > 0) {
		n = snprintf(buf, len, "pid %d", (int)h->pid);
		if (h->same_host) {
			proc_info(h->pid, comm, sizeof(comm), user, sizeof(user));
			if (comm[0] || user[0])
				n += snprintf(buf + n, len - (size_t)n, " (%s%s%s)", esc(comm),
					      comm[0] && user[0] ? ", user " : "", esc(user));
		}
		if (h->host[0])
			n += snprintf(buf + n, len - (size_t)n, " on host %s", esc(h->host));
	} else {
		n = snprintf(buf, len, "an unnamed holder");
	}
	if ((size_t)n >= len)
		return;
	n += snprintf(buf + n, len - (size_t)n, ", %s",
		      h->mode == FL_SHARED ? "shared" : "exclusive");
	if (h->mode == FL_SHARED && h->readers > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " (%u reader%s)", h->readers,
			      h->readers == 1 ? "" : "s");
	if (h->age >= 0 && (size_t)n < len) {
		fmt_duration(age, sizeof(age), h->age);
		n += snprintf(buf + n, len - (size_t)n, ", for %s", age);
	}
	if (h->heartbeat_age >= 0 && (size_t)n < len) {
		fmt_duration(age, sizeof(age), h->heartbeat_age);
		n += snprintf(buf + n, len - (size_t)n, ", last heartbeat %s ago", age);
	}
	if (h->state == FL_HOLDER_STALE && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", stale");
}

/*
 * The path to inspect for kind: flock(1) follows symlinks, the library's
 * inspection does not, so the unix engine resolves the link first.  Returns
 * a malloc'ed string or NULL (then use the path as given).
 */
static char *inspect_path(const char *path, enum fl_kind kind)
{
	if (kind != FL_UNIX)
		return NULL;
	return realpath(path, NULL);
}

/*
 * The kernel's locks of one type ("FLOCK" or "POSIX") on a file, from
 * /proc/locks (local holders only).  flock(1) can lock a directory, which
 * the library's unix kind does not inspect; and an idle rw lock is an empty
 * file told apart only by SQLite's POSIX locks.  Returns 0, or -errno.
 */
static int proc_locks(const struct stat *st, const char *want, struct fl_holder *h)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen("/proc/locks", "re");

	if (f == NULL)
		return -errno;
	h->state = FL_HOLDER_FREE;
	h->age = -1;
	h->heartbeat_age = -1;
	h->alive = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		struct fl__proc_lock pl;

		/* A blocked waiter holds nothing. */
		if (!fl__proc_lock_parse(line, &pl) || pl.waiter || strcmp(pl.type, want) != 0 ||
		    makedev(pl.maj, pl.min) != st->st_dev || (ino_t)pl.ino != st->st_ino)
			continue;
		if (n++ == 0) {
			h->state = FL_HOLDER_HELD;
			h->pid = pl.pid;
			h->mode = strcmp(pl.mode, "READ") == 0 ? FL_SHARED : FL_EXCLUSIVE;
			h->same_host = 1;
			h->alive = 1;
			gethostname(h->host, sizeof(h->host) - 1);
		}
	}
	fclose(f);
	if (n > 0) {
		if (h->mode == FL_SHARED)
			h->readers = n;
		else
			h->writers = 1;
		snprintf(h->detail, sizeof(h->detail), "%s %s held by %u process%s on this host",
			 h->mode == FL_SHARED ? "shared" : "exclusive",
			 strcmp(want, "FLOCK") == 0 ? "flock" : "byte-range lock", n,
			 n == 1 ? "" : "es");
	}
	return 0;
}

static int inspect(const char *path, enum fl_kind kind, const struct fl_options *opt,
		   struct fl_holder *h)
{
	char *rp = inspect_path(path, kind);
	struct stat st;
	int r;

	memset(h, 0, sizeof(*h));
	h->size = sizeof(*h);
	if (kind == FL_UNIX && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		free(rp);
		return proc_locks(&st, "FLOCK", h);
	}
	r = fl_inspect(rp ? rp : path, kind, opt, h);
	free(rp);
	return r;
}

/* ---- saying who holds the lock while waiting ------------------------------ */

/*
 * --verbose names the holder once a second.  Without it, a wait on a
 * terminal (stderr is one) names the holder once, after TTY_REPORT_AFTER
 * seconds: a person looking at a command that hangs wants to know why;
 * scripts and logs get flock(1)'s silence.
 */
#define TTY_REPORT_AFTER 3.0

struct waiter {
	const struct cli *c;
	double start;
	double next_report; /* INFINITY: no (more) reports */
};

static void waiter_init(struct waiter *w, const struct cli *c)
{
	w->c = c;
	w->start = now_mono();
	w->next_report = c->verbose ? w->start + 1.0
			 : c->path != NULL && isatty(STDERR_FILENO) ? w->start + TTY_REPORT_AFTER
								     : INFINITY;
}

static void report_wait(struct waiter *w)
{
	struct fl_holder h;
	char who[640], waited[32];
	double now = now_mono();

	if (now < w->next_report)
		return;
	w->next_report = w->c->verbose ? now + 1.0 : INFINITY;
	fmt_duration(waited, sizeof(waited), now - w->start);
	if (inspect(w->c->path, w->c->kind, &w->c->opt, &h) != 0) {
		fprintf(stderr, "%s: waiting for %s (%s); holder unknown: %s\n", prog,
			esc(w->c->path), waited, esc(ERRMSG(NULL)));
		return;
	}
	if (h.state == FL_HOLDER_FREE) {
		fprintf(stderr, "%s: waiting for %s (%s)\n", prog, esc(w->c->path), waited);
		return;
	}
	describe_holder(&h, who, sizeof(who));
	fprintf(stderr, "%s: waiting for %s (%s): held by %s\n", prog, esc(w->c->path), waited,
		who);
}

static int report_cancel_check(void *arg)
{
	report_wait(arg);
	return 0;
}

/* ---- the unix engine: flock(1) ------------------------------------------- */

static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

/* Arms a repeating SIGALRM after `first` seconds (0 disarms). */
static void arm_timer(double first)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	if (first > 0) {
		if (first < 1e-6)
			first = 1e-6;
		it.it_value.tv_sec = (time_t)first;
		it.it_value.tv_usec = (suseconds_t)((first - (double)(time_t)first) * 1e6);
		if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
			it.it_value.tv_usec = 1;
		it.it_interval.tv_usec = 10000; /* a missed first tick costs 10 ms */
	}
	setitimer(ITIMER_REAL, &it, NULL);
}

static int open_lock_file(const struct cli *c)
{
	int cloexec = c->close_fd ? O_CLOEXEC : 0;
	mode_t perm = c->opt.mode == -1 ? 0666 : (mode_t)c->opt.mode;
	int fd;

	do
		fd = open(c->path, O_RDONLY | O_NOCTTY | O_CREAT | cloexec, perm);
	while (fd < 0 && errno == EINTR);
	if (fd < 0 && errno == EISDIR) {
		do
			fd = open(c->path, O_RDONLY | O_NOCTTY | cloexec);
		while (fd < 0 && errno == EINTR);
	}
	if (fd < 0) {
		int e = errno;
		die(exit_code_for(e) == EX_OSERR || exit_code_for(e) == EX_CANTCREAT
			    ? exit_code_for(e)
			    : EX_NOINPUT,
		    "cannot open lock file %s: %s", c->path, strerror(e));
	}
	return fd;
}

/* Takes (or with -u drops) the flock on fd; exits on conflict or error. */
static void flock_fd(const struct cli *c, int fd)
{
	int op = c->shared ? LOCK_SH : LOCK_EX;
	double start = now_mono(), deadline;
	struct waiter w;
	struct sigaction sa;
	int armed = 0, first = 1, reopened = 0;

	if (c->unlock) {
		while (flock(fd, LOCK_UN) != 0) {
			if (errno != EINTR)
				die(errno == ENOLCK || errno == ENOMEM ? EX_OSERR : EX_DATAERR,
				    "%d: %s", fd, strerror(errno));
		}
		return;
	}
	deadline = c->timeout >= 0 ? start + c->timeout : INFINITY;
	waiter_init(&w, c);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: flock() must return EINTR */
	sigemptyset(&sa.sa_mask);
	for (;;) {
		int how = LOCK_NB, e;

		/* The first try never blocks, so that the wait can be reported and timed. */
		if (!first && !c->nonblock) {
			double now = now_mono(), until = deadline;

			if (now >= deadline)
				break;
			report_wait(&w);
			if (w.next_report < until)
				until = w.next_report;
			how = 0;
			if (!isinf(until)) {
				if (!armed) {
					sigaction(SIGALRM, &sa, NULL);
					armed = 1;
				}
				arm_timer(until > now ? until - now : 1e-6);
			}
		}
		first = 0;
		if (flock(fd, op | how) == 0) {
			if (armed)
				arm_timer(0);
			if (c->verbose)
				printf("%s: getting lock took %.6f seconds\n", prog, now_mono() - start);
			return;
		}
		e = errno;
		if (armed)
			arm_timer(0);
		if (e == EINTR)
			continue;
		if (e == EWOULDBLOCK || e == EACCES) {
			if (c->nonblock)
				break;
			continue;
		}
		if ((e == EIO || e == EBADF) && c->path != NULL && op == LOCK_EX && !reopened &&
		    access(c->path, R_OK | W_OK) == 0) {
			/* NFS emulates flock with fcntl locks, and an exclusive fcntl lock
			 * needs a descriptor open for writing (flock(1) does the same). */
			int nfd = open(c->path, O_RDWR | O_NOCTTY | O_CLOEXEC);

			reopened = 1;
			if (nfd >= 0 && dup3(nfd, fd, c->close_fd ? O_CLOEXEC : 0) >= 0) {
				close(nfd);
				continue;
			}
			if (nfd >= 0)
				close(nfd);
		}
		if (c->path != NULL)
			die(e == ENOLCK || e == ENOMEM ? EX_OSERR : EX_DATAERR, "%s: flock: %s",
			    c->path, strerror(e));
		die(e == ENOLCK || e == ENOMEM ? EX_OSERR : EX_DATAERR, "%d: flock: %s", fd,
		    strerror(e));
	}
	if (c->verbose)
		warnx_("%s", c->nonblock ? "failed to get lock" : "timeout while waiting to get lock");
	exit(c->conflict_code);
}

/* ---- running the command ------------------------------------------------- */

static volatile sig_atomic_t child_pid;

/* A signal sent to us alone (by kill) is passed on to the command. */
static void on_forward(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (child_pid > 0 && si != NULL && si->si_code != SI_KERNEL)
		kill((pid_t)child_pid, sig);
}

static void exec_failed(const char *cmd, int e) __attribute__((noreturn));
static void exec_failed(const char *cmd, int e)
{
	die(e == ENOMEM ? EX_OSERR : EX_UNAVAILABLE, "failed to execute %s: %s", cmd, strerror(e));
}

/* Runs the command and returns its status: exit code or 128+signal. */
static int run(const struct cli *c, int lock_fd, int forward)
{
	static const int fwd[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t block, old_mask;
	pid_t pid;
	int r, status;

	if (c->verbose) {
		printf("%s: executing %s\n", prog, esc(c->cmd[0]));
		fflush(stdout);
	}
	if (c->no_fork) {
		fflush(NULL);
		execvp(c->cmd[0], c->cmd);
		exec_failed(c->cmd[0], errno);
	}
	signal(SIGCHLD, SIG_DFL);
	posix_spawn_file_actions_init(&fa);
	if (c->close_fd && lock_fd >= 0)
		posix_spawn_file_actions_addclose(&fa, lock_fd);
	/*
	 * Our handlers are reset by exec and ignored signals stay ignored (as
	 * with flock(1)).  The forwarded signals are blocked until child_pid is
	 * set, so that one arriving during the spawn is forwarded, not lost; the
	 * command starts with the caller's mask.
	 */
	posix_spawnattr_init(&at);
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaddset(&block, fwd[i]);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	posix_spawnattr_setsigmask(&at, &old_mask);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	fflush(NULL);
	if (forward) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_forward;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++) {
			struct sigaction old;

			/* Leave signals the caller ignores ignored (nohup). */
			if (sigaction(fwd[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
				continue;
			sigaction(fwd[i], &sa, NULL);
		}
	}
	r = posix_spawnp(&pid, c->cmd[0], &fa, &at, c->cmd, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r == 0)
		child_pid = pid;
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	if (r != 0) {
		warnx_("failed to execute %s: %s", c->cmd[0], strerror(r));
		return r == ENOMEM || r == EAGAIN ? EX_OSERR : EX_UNAVAILABLE;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			warnx_("waitpid failed: %s", strerror(errno));
			return EX_OSERR;
		}
	}
	child_pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EX_OSERR;
}

/* ---- the library engine -------------------------------------------------- */

static void on_compromise(fl_lock *lk, int reason, void *arg)
{
	(void)arg;
	/* Runs on the heartbeat thread: one write(2), nothing that allocates. */
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "%s: WARNING: lost the lock on %s (%s); the command "
					   "is no longer protected\n",
			 prog, fl_path(lk),
			 reason == FL_COMPROMISE_MISSING	    ? "marker removed"
			 : reason == FL_COMPROMISE_REPLACED ? "marker replaced by another holder"
							    : "heartbeat refresh failed");
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
}

static int lock_with_library(struct cli *c)
{
	struct waiter w;
	fl_lock *lk;
	double timeout = c->nonblock ? 0 : c->timeout;
	int r, status;

	if (c->no_fork)
		usage_error("--no-fork works with kind unix only: a %s lock is held by this process "
			    "(a marker%s), which must outlive the command",
			    fl_kind_name(c->kind),
			    c->kind == FL_LEASE || c->kind == FL_SOFT_RW ? " and its heartbeat" : "");
	if (c->unlock)
		usage_error("--unlock works with the file descriptor form only");
	waiter_init(&w, c);
	if (!isinf(w.next_report)) {
		c->opt.cancel_check = report_cancel_check;
		c->opt.cancel_arg = &w;
	}
	c->opt.on_compromise = on_compromise;
	r = fl_open(&lk, c->path, c->kind, &c->opt);
	if (r == -ENOTSUP)
		die(EX_UNAVAILABLE, "lock kind %s is not built into this libfilelock (version %s)",
		    fl_kind_name(c->kind), fl_version());
	if (r != 0)
		die(exit_code_for(-r), "%s: %s", c->path, ERRMSG(NULL));
	r = fl_acquire(lk, c->shared ? FL_SHARED : FL_EXCLUSIVE, timeout);
	if (r == -ETIMEDOUT) {
		if (c->verbose)
			warnx_("%s", ERRMSG(lk));
		fl_close(lk);
		exit(c->conflict_code);
	}
	if (r == -ENOTSUP && c->shared)
		die(EX_USAGE, "%s: kind %s has no shared mode (use rw, soft-rw, unix or file)",
		    c->path, fl_kind_name(c->kind));
	if (r != 0) {
		int code = exit_code_for(-r);
		warnx_("%s", ERRMSG(lk));
		fl_close(lk);
		exit(code);
	}
	if (c->verbose)
		printf("%s: getting lock took %.6f seconds\n", prog, now_mono() - w.start);
	status = run(c, -1, 1);
	r = fl_release(lk, FL_FORCE);
	if (r != 0)
		warnx_("release failed: %s", ERRMSG(lk));
	fl_close(lk);
	return status;
}

/* ---- the shim's policy ----------------------------------------------------- */

/* The policy file the shim of this environment reads. */
static const char *policy_file(void)
{
	const char *f = getenv("FILELOCK_PRELOAD_CONFIG");

	return f != NULL && f[0] != '\0' ? f : FL_DEFAULT_POLICY;
}

/* Reads and parses a policy file (at most 1 MiB, like the shim).  Returns 0
 * or a negative errno (-ENOENT: no such file), with the reason in why. */
static int read_policy(const char *file, struct flp_policy *pol, char *why, size_t wlen,
		       flp_warn_fn warn, void *warn_arg)
{
	enum { MAX = 1 << 20 };
	char *buf;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	fd = open(file, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(why, wlen, "%s: cannot open: %s", file, strerror(errno));
		return r;
	}
	buf = malloc(MAX + 1);
	if (buf == NULL) {
		close(fd);
		snprintf(why, wlen, "%s: out of memory", file);
		return -ENOMEM;
	}
	while ((n = read(fd, buf + got, MAX + 1 - got)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && (got += (size_t)n) > MAX)
			break;
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r != 0)
		snprintf(why, wlen, "%s: cannot read: %s", file, strerror(-r));
	else if (got > MAX)
		r = -EFBIG;
	if (r == -EFBIG)
		snprintf(why, wlen, "%s: larger than %d bytes", file, MAX);
	else if (r == 0)
		r = flp_policy_parse_warn(pol, buf, got, file, why, wlen, warn, warn_arg);
	free(buf);
	return r;
}

static void print_warning(void *arg, const char *msg)
{
	int *count = arg;

	fprintf(stderr, "%s\n", esc(msg));
	(*count)++;
}

/* filelock check-policy [FILE]: what filelock-preload --check runs. */
static int check_policy(int argc, char **argv)
{
	const char *file = argc > 2 ? argv[2] : policy_file();
	struct flp_policy pol;
	char why[1024], line[2048];
	int warnings = 0;

	if (argc > 3 ||
	    (argc == 3 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0))) {
		printf("Usage: %s check-policy [<file>]\n"
		       "Parses a policy file of filelock-preload (default: %s), prints each rule\n"
		       "as understood and warns about rules that cannot work as written.\n"
		       "Exit status: 0 valid (warnings allowed), 1 invalid.\n",
		       prog, policy_file());
		return argc > 3 ? EX_USAGE : EX_OK;
	}
	if (read_policy(file, &pol, why, sizeof(why), print_warning, &warnings) != 0) {
		fprintf(stderr, "%s\n", esc(why));
		return 1;
	}
	for (size_t i = 0; i < pol.n; i++) {
		flp_rule_describe(&pol.rules[i], line, sizeof(line));
		printf("%s:%d: %s\n", esc(file), pol.rules[i].line, esc(line));
	}
	printf("%s: %zu rule%s, %d warning%s; the first rule that matches a path applies\n", file,
	       pol.n, pol.n == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
	flp_policy_free(&pol);
	return 0;
}

/*
 * The marker the shim uses for a data path under the policy of this
 * environment (read into pol).  Returns the rule, with the absolute data
 * path in data and the marker in marker (len bytes each), or NULL: no
 * policy, no rule, or a rule that keeps no marker (native, deny, dotlock).
 * A path that is itself the marker of a data path stays the marker.
 */
static const struct flp_rule *policy_marker(const char *path, struct flp_policy *pol,
					    char *data, char *marker, size_t len)
{
	const struct flp_rule *rule;
	char why[1024], tmp[4096], norm[4096], *rp;
	int r;

	memset(pol, 0, sizeof(*pol));
	r = read_policy(policy_file(), pol, why, sizeof(why), NULL, NULL);
	if (r != 0) {
		if (r != -ENOENT)
			warnx_("warning: not using the shim's policy: %s", why);
		return NULL;
	}
	/* The shim matches the kernel's name of the open file: symlinks resolved. */
	if ((rp = realpath(path, NULL)) != NULL) {
		snprintf(tmp, sizeof(tmp), "%s", rp);
		free(rp);
	} else if (path[0] == '/' || getcwd(tmp, sizeof(tmp) - 1) == NULL) {
		snprintf(tmp, sizeof(tmp), "%s", path);
	} else {
		size_t l = strlen(tmp);
		snprintf(tmp + l, sizeof(tmp) - l, "/%s", path);
	}
	if (flp_normalize(tmp, norm, sizeof(norm)) != 0)
		return NULL;
	if (flp_data_path(pol, norm, data, len) == 0) {
		snprintf(marker, len, "%s", norm);
		return flp_policy_match(pol, data);
	}
	snprintf(data, len, "%s", norm);
	if ((rule = flp_policy_match(pol, data)) == NULL || flp_lib_kind(rule->kind) < 0 ||
	    flp_marker_path(rule, data, marker, len) != 0)
		return NULL;
	return rule;
}

/* ---- which kind is on disk -------------------------------------------------- */

static int is_dir(const char *base, const char *suffix)
{
	char p[4096 + 32];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", base, suffix);
	return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_reg(const char *base, const char *suffix)
{
	char p[4096 + 32];
	struct stat st;

	snprintf(p, sizeof(p), "%s%s", base, suffix);
	return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* "<pid>\n<host>\n[<start token>\n]": a soft (protocol 1) marker. */
static int is_protocol1(const char *b, size_t n)
{
	size_t i = 0, lines = 0;

	while (i < n && isdigit((unsigned char)b[i]))
		i++;
	if (i == 0 || i >= n || b[i] != '\n' || b[n - 1] != '\n')
		return 0;
	for (i = 0; i < n; i++) {
		if (b[i] == '\n')
			lines++;
		else if (!isprint((unsigned char)b[i]))
			return 0;
	}
	return lines == 2 || lines == 3;
}

/*
 * The kind whose files are at path, and in why what gave it away.  Returns
 * the kind, or -1 when there is nothing of any kind.  A file that is no
 * marker is the kernel's (unix): we never call a data file a broken marker.
 */
static int detect_kind(const char *path, char *why, size_t len)
{
	static const char strict_sentinel[] = "1\nfilelock-strict-v1\0\n0\n";
	static const char sqlite_magic[] = "SQLite format 3";
	char buf[1025];
	struct stat st;
	ssize_t n = 0;
	int fd;

	if (is_dir(path, ".filelock")) {
		snprintf(why, len, "found strict claims in %s.filelock/", path);
		return FL_STRICT;
	}
	if (is_dir(path, ".rw") || is_reg(path, ".write") || is_dir(path, ".readers") ||
	    is_reg(path, ".state")) {
		snprintf(why, len,
			 "found soft-rw files next to it: %s.state, .write, .readers/ or .rw/", path);
		return FL_SOFT_RW;
	}
	if (stat(path, &st) != 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, len, "found a directory: the kernel's flock");
		return FL_UNIX;
	}
	fd = open(path, O_RDONLY | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && S_ISREG(st.st_mode)) {
		do
			n = read(fd, buf, sizeof(buf) - 1);
		while (n < 0 && errno == EINTR);
	}
	if (fd >= 0)
		close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if ((size_t)n == sizeof(strict_sentinel) - 1 &&
	    memcmp(buf, strict_sentinel, (size_t)n) == 0) {
		snprintf(why, len, "found a strict sentinel");
		return FL_STRICT;
	}
	if (n >= 11 && memcmp(buf, "filelock/2\n", 11) == 0 &&
	    strstr(buf, "\nmode=lease\n") != NULL) {
		snprintf(why, len, "found a lease record");
		return FL_LEASE;
	}
	if (is_protocol1(buf, (size_t)n) || (n >= 11 && memcmp(buf, "filelock/2\n", 11) == 0)) {
		snprintf(why, len, "found a soft marker");
		return FL_SOFT;
	}
	if ((size_t)n >= sizeof(sqlite_magic) &&
	    memcmp(buf, sqlite_magic, sizeof(sqlite_magic)) == 0) {
		snprintf(why, len, "found an SQLite database");
		return FL_RW;
	}
#ifdef HAVE_SQLITE3
	struct fl_holder h;
	if (n == 0 && proc_locks(&st, "POSIX", &h) == 0 && h.state != FL_HOLDER_FREE) {
		snprintf(why, len, "found an empty file with byte-range locks");
		return FL_RW;
	}
#endif
	snprintf(why, len, "found no marker: the kernel's flock");
	return FL_UNIX;
}

/* ---- status and break ---------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (v < 0 || !isfinite(v))
		fputs("null", f);
	else
		fprintf(f, "%.3f", v);
}

/* What status and break look at, and how its kind was found. */
struct target {
	const char *path;  /* the lock path inspected (a marker for a mapped data path) */
	const char *data;  /* the data path the shim's policy maps to path, or NULL */
	enum fl_kind kind;
	const char *from;  /* "option", "policy", "files" or "none" (nothing on disk) */
	char why[8192 + 64]; /* for humans: the policy rule, or what was found */
};

/*
 * The shim's byte-range owners (its fcntl/lockf emulation): one file per
 * owner in "<marker>.ranges/" (see preload/rlock.c).  alive: 1 or 0 for an
 * owner on this host (pid and start token), -1 for another host's.
 */
struct range_owner {
	char name[256];
	char host[256];
	pid_t pid;
	int ofd;
	int malformed;
	int alive;
	double age; /* seconds since the file last changed (its heartbeat) */
	dev_t dev;
	ino_t ino;
	uid_t uid;
	struct flp_rset set;
};

static int range_owner_read(int dfd, const char *name, struct range_owner *o)
{
	char buf[65536], me[256] = "", token[128];
	const char *t, *at;
	struct stat st;
	ssize_t n;
	size_t tl;
	int fd;

	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->alive = -1;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return -ENOENT; /* released meanwhile */
		o->malformed = 1;
		return 0;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		o->malformed = 1;
		return 0;
	}
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	o->uid = st.st_uid;
	{
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		o->age = (double)(now.tv_sec - st.st_mtim.tv_sec) +
			 (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || (size_t)n == sizeof(buf) ||
	    flp_rl_parse(buf, (size_t)n, o->host, sizeof(o->host), &o->pid, &o->ofd, &o->set) != 0) {
		flp_rset_free(&o->set);
		o->malformed = 1;
		return 0;
	}
	fl__hostname(me, sizeof(me));
	if (strcmp(me, o->host) != 0)
		return 0;
	/* The start token is in the name: p.<pid>.<token>@host, o.<pid>.<token>.<n>@host */
	t = strchr(name + 2, '.');
	at = strchr(name, '@');
	if (t == NULL || at == NULL || at < t)
		return 0;
	t++;
	tl = (size_t)(at - t);
	if (o->ofd && memchr(t, '.', tl))
		tl = (size_t)((const char *)memchr(t, '.', tl) - t);
	if (tl == 0 || tl >= sizeof(token))
		return 0;
	memcpy(token, t, tl);
	token[tl] = '\0';
	o->alive = !fl__owner_is_stale(o->pid, o->host, token);
	return 0;
}

/* Reads every owner file of dir ("<marker>.ranges").  *n = 0 when there is
 * no such directory. */
static struct range_owner *range_owners(const char *dir, size_t *n)
{
	struct range_owner *v = NULL;
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int dfd;

	*n = 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return NULL;
	d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if ((de->d_name[0] != 'p' && de->d_name[0] != 'o') || de->d_name[1] != '.' ||
		    strchr(de->d_name, '@') == NULL || strlen(de->d_name) >= 256)
			continue;
		if (*n == cap) {
			struct range_owner *nv;
			cap = cap ? 2 * cap : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL)
				break;
			v = nv;
		}
		if (range_owner_read(dirfd(d), de->d_name, &v[*n]) == 0)
			(*n)++;
	}
	closedir(d);
	return v;
}

static void range_owners_free(struct range_owner *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		flp_rset_free(&v[i].set);
	free(v);
}

static void print_ranges_json(const struct range_owner *v, size_t n)
{
	printf(",\"range_owners\":[");
	for (size_t i = 0; i < n; i++) {
		const struct range_owner *o = &v[i];
		printf("%s{\"name\":", i ? "," : "");
		json_str(stdout, o->name);
		printf(",\"malformed\":%s", o->malformed ? "true" : "false");
		if (!o->malformed) {
			printf(",\"host\":");
			json_str(stdout, o->host);
			printf(",\"pid\":%d,\"owner\":\"%s\"", (int)o->pid, o->ofd ? "ofd" : "posix");
		}
		printf(",\"alive\":%s,\"age\":",
		       o->alive > 0 ? "true" : o->alive == 0 ? "false" : "null");
		json_num(stdout, o->age);
		printf(",\"ranges\":[");
		for (size_t j = 0; j < o->set.n; j++)
			printf("%s[\"%c\",%lld,%lld]", j ? "," : "",
			       o->set.v[j].type == F_WRLCK ? 'W' : 'R', (long long)o->set.v[j].start,
			       (long long)o->set.v[j].end);
		printf("]}");
	}
	printf("]");
}

static void print_ranges_human(const char *dir, const struct range_owner *v, size_t n)
{
	char d[32];

	printf("  byte-range owners (%s): %s\n", esc(dir), n ? "" : "none");
	for (size_t i = 0; i < n; i++) {
		const struct range_owner *o = &v[i];
		if (o->malformed) {
			printf("    %s: not a valid owner file (counts as a write lock on the whole "
			       "file)\n",
			       esc(o->name));
			continue;
		}
		fmt_duration(d, sizeof(d), o->age >= 0 ? o->age : 0);
		printf("    host %s, pid %d, %s%s, alive %s, changed %s ago:", esc(o->host),
		       (int)o->pid, o->ofd ? "open-file-description lock" : "process lock",
		       "", o->alive > 0 ? "yes" : o->alive == 0 ? "no" : "unknown (another host)", d);
		for (size_t j = 0; j < o->set.n; j++) {
			const struct flp_range *r = &o->set.v[j];
			if (r->end == FLP_OFF_MAX)
				printf(" %c %lld-", r->type == F_WRLCK ? 'W' : 'R', (long long)r->start);
			else
				printf(" %c %lld-%lld", r->type == F_WRLCK ? 'W' : 'R',
				       (long long)r->start, (long long)r->end);
		}
		printf("\n");
	}
}

/* The temporaries a dead owner left (".tmp.<name>.<32 hex>", or ".tmp.<name>"
 * as older versions named them; a crash between create and rename leaves
 * one): removed when they are a regular file with one link, of the owner
 * file's user.  What anyone else put at such a name stays. */
static void break_range_tmps(int dfd, const struct range_owner *o)
{
	size_t nl = strlen(o->name);
	struct dirent *de;
	DIR *d;
	int fd = dup(dfd);

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *s = de->d_name;
		struct stat st;

		if (strncmp(s, ".tmp.", 5) != 0 || strncmp(s + 5, o->name, nl) != 0)
			continue;
		s += 5 + nl;
		if (*s != '\0' && !(s[0] == '.' && strlen(s + 1) == 32 &&
				     strspn(s + 1, "0123456789abcdef") == 32))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != o->uid)
			continue;
		(void)fl__unlink_if_same(dfd, de->d_name, st.st_dev, st.st_ino);
	}
	closedir(d);
}

/* break: removes the owner files whose owner is provably gone (this host,
 * its process dead or its pid recycled), if still the file we read.  Never
 * a live owner's, never another host's (whose liveness only its heartbeat
 * tells: the shim evicts those itself after the rule's bound).  Returns how
 * many it removed. */
static int break_range_owners(const char *dir, const struct range_owner *v, size_t n)
{
	int dfd, removed = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct range_owner *o = &v[i];
		int r;

		if (o->malformed || o->alive != 0)
			continue;
		r = fl__unlink_if_same(dfd, o->name, o->dev, o->ino);
		if (r != 0 && r != -ENOENT) {
			warnx_("cannot remove %s/%s: %s", dir, o->name, strerror(-r));
			continue;
		}
		break_range_tmps(dfd, o);
		printf("%s: removed the byte-range locks of dead pid %d (%s/%s)\n", prog,
		       (int)o->pid, esc(dir), esc(o->name));
		removed++;
	}
	close(dfd);
	return removed;
}

static void print_json(const struct target *t, const struct fl_holder *h,
		       const struct range_owner *ro, size_t nro)
{
	printf("{\"path\":");
	json_str(stdout, t->path);
	printf(",\"data_path\":");
	if (t->data)
		json_str(stdout, t->data);
	else
		fputs("null", stdout);
	printf(",\"kind\":\"%s\",\"kind_from\":\"%s\",\"state\":\"%s\",\"held\":%s,\"stale\":%s,",
	       fl_kind_name(t->kind), t->from, state_name(h->state),
	       h->state == FL_HOLDER_FREE ? "false" : "true",
	       h->state == FL_HOLDER_STALE ? "true" : "false");
	if (h->pid > 0)
		printf("\"pid\":%d,", (int)h->pid);
	else
		printf("\"pid\":null,");
	printf("\"host\":");
	if (h->host[0])
		json_str(stdout, h->host);
	else
		fputs("null", stdout);
	printf(",\"start\":");
	if (h->start[0])
		json_str(stdout, h->start);
	else
		fputs("null", stdout);
	printf(",\"mode\":\"%s\",\"age\":", h->state == FL_HOLDER_FREE ? "none"
					    : h->mode == FL_SHARED ? "shared"
								   : "exclusive");
	json_num(stdout, h->age);
	printf(",\"heartbeat_age\":");
	json_num(stdout, h->heartbeat_age);
	printf(",\"readers\":%u,\"writers\":%u,\"same_host\":%s,\"alive\":%s,\"detail\":",
	       h->readers, h->writers, h->same_host ? "true" : "false",
	       h->alive > 0 ? "true" : h->alive == 0 ? "false" : "null");
	json_str(stdout, h->detail);
	print_ranges_json(ro, nro);
	printf("}\n");
}

static void print_human(const struct target *t, const struct fl_holder *h)
{
	char d[32];

	printf("%s: %s (kind %s%s%s)\n", esc(t->path),
	       h->state == FL_HOLDER_UNKNOWN ? "held by an unnamed holder" : state_name(h->state),
	       fl_kind_name(t->kind), t->why[0] ? ", " : "", esc(t->why));
	if (h->state == FL_HOLDER_FREE) {
		if (h->detail[0])
			printf("  detail: %s\n", esc(h->detail));
		return;
	}
	if (h->pid > 0) {
		char comm[64] = "", user[64] = "";
		if (h->same_host)
			proc_info(h->pid, comm, sizeof(comm), user, sizeof(user));
		printf("  pid: %d", (int)h->pid);
		if (comm[0] || user[0])
			printf(" (%s%s%s)", esc(comm), comm[0] && user[0] ? ", user " : "", esc(user));
		printf("\n");
	}
	if (h->host[0])
		printf("  host: %s%s\n", esc(h->host), h->same_host ? " (this host)" : "");
	if (h->start[0])
		printf("  start token: %s\n", esc(h->start));
	printf("  mode: %s\n", h->mode == FL_SHARED ? "shared" : "exclusive");
	if (h->age >= 0) {
		fmt_duration(d, sizeof(d), h->age);
		printf("  age: %s\n", d);
	}
	if (h->heartbeat_age >= 0) {
		fmt_duration(d, sizeof(d), h->heartbeat_age);
		printf("  heartbeat age: %s\n", d);
	}
	if (h->readers || h->writers)
		printf("  readers: %u, writers: %u\n", h->readers, h->writers);
	printf("  alive: %s\n", h->alive > 0 ? "yes" : h->alive == 0 ? "no" : "unknown");
	printf("  stale: %s\n", h->state == FL_HOLDER_STALE ? "yes" : "no");
	if (h->detail[0])
		printf("  detail: %s\n", esc(h->detail));
}

static void sub_usage(const char *sub)
{
	if (strcmp(sub, "status") == 0)
		printf("Usage: %s status <path> [--kind <kind>] [--json] [kind options]\n"
		       "Exit status: 0 free, 1 held, 2 held by a stale (dead or expired) holder.\n",
		       prog);
	else
		printf("Usage: %s break <path> [--kind <kind>] [--force] [--claim <name>] "
		       "[kind options]\n"
		       "Removes a stale holder's marker; --force removes a live one.\n",
		       prog);
	exit(EX_OK);
}

/*
 * What status and break look at.  A data path the shim's policy redirects
 * is looked at through its marker, with the rule's kind and timing options
 * (the command line's win).  Otherwise, without --kind, the kind is the one
 * whose files are on disk.  Sets t->why to say which.
 */
static void find_target(struct cli *c, struct target *t)
{
	static char data[4096], marker[4096];
	static struct flp_policy pol;
	const struct flp_rule *rule = policy_marker(c->path, &pol, data, marker, sizeof(data));
	int k;

	memset(t, 0, sizeof(*t));
	t->path = c->path;
	t->kind = c->kind;
	t->from = c->kind_given ? "option" : "files";
	if (rule != NULL) {
		enum fl_kind rk = (enum fl_kind)flp_lib_kind(rule->kind);

		t->path = marker;
		t->data = data;
		if (!c->kind_given) {
			t->kind = c->kind = rk;
			t->from = "policy";
		} else if (rk != c->kind) {
			warnx_("warning: the policy's rule for %s says kind %s; using --kind %s as "
			       "asked",
			       data, fl_kind_name(rk), fl_kind_name(c->kind));
		}
		snprintf(t->why, sizeof(t->why), "the marker of %s under %s:%d", data,
			 policy_file(), rule->line);
		if (!(c->given & G_HEARTBEAT))
			c->opt.heartbeat_interval = rule->heartbeat_interval;
		if (!(c->given & G_STALE))
			c->opt.stale_threshold = rule->stale_threshold;
		if (!(c->given & G_LEASE))
			c->opt.lease_duration = rule->lease_duration;
		if (!(c->given & G_PROTOCOL))
			c->opt.soft_rw_protocol = rule->soft_rw_protocol;
		if (!(c->given & G_POLL))
			c->opt.poll_interval = rule->poll_interval;
		if (rk == FL_ETCD) {
			c->opt.etcd_endpoints = rule->etcd_endpoints;
			c->opt.etcd_prefix = rule->etcd_prefix;
		}
		return;
	}
	if (c->kind_given)
		return;
	k = detect_kind(t->path, t->why, sizeof(t->why));
	if (k < 0) {
		t->kind = FL_UNIX;
		t->from = "none";
		snprintf(t->why, sizeof(t->why), "no lock files of any kind");
		return;
	}
	t->kind = (enum fl_kind)k;
	c->kind = t->kind;
	/* soft-rw: the protocol whose files are there (the log wins). */
	if (k == FL_SOFT_RW && !(c->given & G_PROTOCOL) && !is_dir(t->path, ".rw"))
		c->opt.soft_rw_protocol = FL_SOFT_RW_LEGACY;
}

/* The arguments of status and break (no I/O; bad usage exits 64). */
struct sub_args {
	int is_status, json, force;
	const char *claim;
};

static void parse_sub(int argc, char **argv, struct cli *c, struct sub_args *a)
{
	static const struct option longopts[] = {
		KIND_LONG_OPTIONS,
		{ "json", no_argument, NULL, OPT_JSON },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "claim", required_argument, NULL, OPT_CLAIM },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub = argv[1];
	int o;

	memset(a, 0, sizeof(*a));
	a->is_status = strcmp(sub, "status") == 0;
	memset(c, 0, sizeof(*c));
	c->kind = FL_UNIX;
	fl_options_init(&c->opt);
	opterr = 0;
	optind = 2;
	while ((o = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
		if (kind_option(c, o, optarg))
			continue;
		switch (o) {
		case OPT_JSON:
			if (!a->is_status)
				usage_error("break: unrecognized option '--json'");
			a->json = 1;
			break;
		case OPT_FORCE:
		case OPT_CLAIM:
			if (a->is_status)
				usage_error("status: unrecognized option '%s'", argv[optind - 1]);
			if (o == OPT_FORCE)
				a->force = 1;
			else
				a->claim = optarg;
			break;
		case 'h':
			sub_usage(sub);
			break;
		case ':':
			usage_error("%s: option '%s' requires an argument", sub, argv[optind - 1]);
		default:
			usage_error("%s: unrecognized option '%s'", sub, argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		usage_error("%s: expected exactly one path", sub);
	c->path = argv[optind];
}

/* `break` after the look at the target: say what we are about to remove,
 * then remove it.  r is what the look returned, h what it saw. */
static int break_lock(const struct target *t, const struct sub_args *a, struct cli *c,
		      const struct fl_holder *h, int r)
{
	char who[640] = "";

	if (r == 0 && h->state != FL_HOLDER_FREE)
		describe_holder(h, who, sizeof(who));
	if (strcmp(t->from, "option") != 0)
		printf("%s: %s: kind %s (%s)\n", prog, esc(t->path), fl_kind_name(t->kind), esc(t->why));
	if (t->kind == FL_UNIX) {
		warnx_("%s is the kernel's flock%s%s: it cannot be broken; the kernel releases it "
		       "when its holder closes the file or exits%s",
		       t->path, who[0] ? ", held by " : "", who,
		       who[0] ? "" : " (and nobody holds it now)");
		return EX_UNAVAILABLE;
	}
	r = fl_break(t->path, t->kind, &c->opt, a->force ? FL_FORCE : 0, a->claim);
	switch (r) {
	case 0:
		printf("%s: removed %s lock on %s%s%s\n", prog,
		       h->state == FL_HOLDER_STALE ? "stale" : a->force ? "live" : "the", esc(t->path),
		       who[0] ? " held by " : "", who);
		if (h->detail[0])
			printf("%s: (%s)\n", prog, esc(h->detail));
		return 0;
	case -ENOENT:
		printf("%s: nothing to break: %s is free\n", prog, esc(t->path));
		return 0;
	case -EBUSY:
		warnx_("%s is held by %s, which is alive; not breaking it (use --force to break "
		       "a live lock)",
		       t->path, who[0] ? who : "a live holder");
		return 1;
	case -ENOTSUP:
		die(EX_UNAVAILABLE, "%s", ERRMSG(NULL));
	case -EINVAL:
		if (t->kind == FL_STRICT && a->claim == NULL) {
			warnx_("%s", ERRMSG(NULL));
			usage_error("(strict claims are broken one at a time: %s break -t strict "
				    "--force --claim NAME %s)",
				    prog, t->path);
		}
		usage_error("%s", ERRMSG(NULL));
	default:
		die(exit_code_for(-r), "%s", ERRMSG(NULL));
	}
}

static int subcommand(int argc, char **argv)
{
	struct sub_args a;
	struct fl_holder h;
	struct target t;
	struct cli c;
	struct range_owner *ro = NULL;
	struct stat rst;
	char rdir[8192 + 16];
	size_t nro = 0;
	int r, have_ro, broke_ro = 0;

	parse_sub(argc, argv, &c, &a);
	find_target(&c, &t);
	warn_unused_options(&c);
	/* The shim's byte-range owners of the same file, if it has any. */
	snprintf(rdir, sizeof(rdir), "%s.ranges", t.path);
	have_ro = lstat(rdir, &rst) == 0 && S_ISDIR(rst.st_mode);
	ro = have_ro ? range_owners(rdir, &nro) : NULL;
	if (!a.is_status && have_ro)
		broke_ro = break_range_owners(rdir, ro, nro);
	if (strcmp(t.from, "none") == 0) {
		if (!a.is_status) {
			if (!broke_ro)
				printf("%s: nothing to break: no lock files of any kind at %s\n",
				       prog, esc(t.path));
			range_owners_free(ro, nro);
			return 0;
		}
		memset(&h, 0, sizeof(h));
		h.state = FL_HOLDER_FREE;
		h.age = h.heartbeat_age = -1;
		r = 0;
	} else {
		r = inspect(t.path, t.kind, &c.opt, &h);
	}
	if (r == -ENOTSUP && fl_kind_name(t.kind) && a.is_status)
		die(EX_UNAVAILABLE, "lock kind %s is not built into this libfilelock (version %s)",
		    fl_kind_name(t.kind), fl_version());
	if (a.is_status) {
		if (r != 0)
			die(exit_code_for(-r), "%s", ERRMSG(NULL));
		if (a.json)
			print_json(&t, &h, ro, nro);
		else
			print_human(&t, &h);
		if (!a.json && have_ro)
			print_ranges_human(rdir, ro, nro);
		range_owners_free(ro, nro);
		return h.state == FL_HOLDER_FREE ? 0 : h.state == FL_HOLDER_STALE ? 2 : 1;
	}

	return break_lock(&t, &a, &c, &h, r);
}

/* ---- main ---------------------------------------------------------------- */

/*
 * The flock(1)-style arguments into *c: the FD form (c->fd >= 0) or a path
 * and a command.  No I/O besides messages; bad usage exits 64 (fuzz-cli
 * drives this).
 */
/* The options of the flock(1) form; returns the index of the first operand. */
static int parse_options(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {
		{ "shared", no_argument, NULL, 's' },
		{ "exclusive", no_argument, NULL, 'x' },
		{ "unlock", no_argument, NULL, 'u' },
		{ "nonblock", no_argument, NULL, 'n' },
		{ "nonblocking", no_argument, NULL, 'n' },
		{ "nb", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "wait", required_argument, NULL, 'w' },
		{ "conflict-exit-code", required_argument, NULL, 'E' },
		{ "close", no_argument, NULL, 'o' },
		{ "no-fork", no_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		KIND_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int o;

	memset(c, 0, sizeof(*c));
	c->kind = FL_UNIX;
	c->timeout = -1;
	c->conflict_code = 1;
	c->fd = -1;
	fl_options_init(&c->opt);
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+:sexunoFw:E:t:hV", longopts, NULL)) != -1) {
		if (kind_option(c, o, optarg))
			continue;
		switch (o) {
		case 's':
			c->shared = 1;
			c->unlock = 0;
			break;
		case 'e':
		case 'x':
			c->shared = 0;
			c->unlock = 0;
			break;
		case 'u':
			c->unlock = 1;
			break;
		case 'n':
			c->nonblock = 1;
			break;
		case 'o':
			c->close_fd = 1;
			break;
		case 'F':
			c->no_fork = 1;
			break;
		case 'w':
			c->timeout = parse_seconds(optarg, "timeout");
			break;
		case 'E':
			c->conflict_code = (int)parse_long(optarg, 0, 255, "exit code");
			break;
		case OPT_VERBOSE:
			c->verbose = 1;
			break;
		case 'h':
			usage();
			break;
		case 'V':
			version();
			break;
		case ':':
			usage_error("option '%s' requires an argument", argv[optind - 1]);
		default:
			usage_error("unrecognized option '%s'", argv[optind - 1]);
		}
	}
	if (c->no_fork && c->close_fd)
		usage_error("the --no-fork and --close options are incompatible");
	warn_unused_options(c);
	if (c->timeout == 0)
		c->nonblock = 1; /* -w 0 is -n, as in flock(1) */
	return optind;
}

/* The operands: FD, or FILE COMMAND [ARG...], or FILE -c COMMAND. */
static void parse_operands(char **args, int nargs, struct cli *c)
{
	if (nargs == 0)
		usage_error("not enough arguments");
	if (nargs == 1) {
		/* filelock [options] FD */
		if (!all_digits(args[0]))
			usage_error("%s: a lock file needs a command to run; a bare argument must be "
				    "a file descriptor number",
				    args[0]);
		if (c->kind_given && c->kind != FL_UNIX)
			usage_error("the file descriptor form works with kind unix only");
		if (c->no_fork || c->close_fd)
			usage_error("--no-fork and --close need a command");
		c->fd = (int)parse_long(args[0], 0, INT_MAX, "file descriptor");
		return;
	}
	c->path = args[0];
	if (strcmp(args[1], "-c") == 0 || strcmp(args[1], "--command") == 0) {
		static char bsh[] = _PATH_BSHELL, dash_c[] = "-c";
		char *sh = getenv("SHELL");

		if (nargs != 3)
			usage_error("%s requires exactly one command argument", args[1]);
		c->sh_argv[0] = sh != NULL && sh[0] != '\0' ? sh : bsh;
		c->sh_argv[1] = dash_c;
		c->sh_argv[2] = args[2];
		c->sh_argv[3] = NULL;
		c->cmd = c->sh_argv;
	} else {
		c->cmd = args + 1;
	}
	if (c->unlock)
		usage_error("--unlock works with the file descriptor form only");
}

static void parse_args(int argc, char **argv, struct cli *c)
{
	int first = parse_options(argc, argv, c);

	parse_operands(argv + first, argc - first, c);
}

int main(int argc, char **argv)
{
	struct cli c;

	if (argv[0] != NULL && strrchr(argv[0], '/') != NULL)
		prog = strrchr(argv[0], '/') + 1;
	else if (argv[0] != NULL && argv[0][0] != '\0')
		prog = argv[0];
	atexit(close_stdout);
	if (argc < 2)
		usage_error("not enough arguments");
	if (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "break") == 0)
		return subcommand(argc, argv);
	if (strcmp(argv[1], "check-policy") == 0)
		return check_policy(argc, argv);

	parse_args(argc, argv, &c);
	if (c.fd >= 0) {
		flock_fd(&c, c.fd);
		return EX_OK;
	}
	if (c.kind != FL_UNIX)
		return lock_with_library(&c);

	/* The library judges the kind options (e.g. --lifetime is soft's only). */
	fl_lock *probe;
	int r = fl_open(&probe, c.path, FL_UNIX, &c.opt);
	if (r == -EINVAL)
		usage_error("%s", ERRMSG(NULL));
	if (r == -ENOLCK) /* root, in a directory another user controls */
		die(exit_code_for(-r), "%s", ERRMSG(NULL));
	fl_close(probe);

	int fd = open_lock_file(&c);
	flock_fd(&c, fd);
	return run(&c, fd, 0);
}
