/* SPDX-License-Identifier: MIT */
/*
 * backend-strict.c -- the `strict` kind: fail-closed hard-link claims
 * (Python's StrictSoftFileLock), byte-compatible with it.
 *
 * Layout, for a lock path P:
 *  - P itself is a permanent sentinel holding exactly the 24 bytes
 *    "1\nfilelock-strict-v1\0\n0\n".  It is never removed.  A protocol-1
 *    reader parses it as pid 1 on a host that is never ours, so soft locks
 *    never break it; lease and soft recognise it and leave it alone.  The
 *    hold keeps a read-only descriptor of it open.  Anything else at P is
 *    handled as Python 4 does (strict_occupant): a soft lock whose owner
 *    may be alive is waited for; a soft lock of a provably dead owner, a
 *    node that is no regular file (after 0.5 s) and unparsable content
 *    unchanged for 2 s refuse the acquire with EPROTO.  Nothing there is
 *    ever removed.
 *  - P.filelock/ and P.filelock/claims/ are real directories (a symlink in
 *    their place is a protocol error, never followed).
 *  - Each contender publishes claims in claims/: "intent-v1-<T>.claim" and,
 *    once it wins, "held-v1-<T>.claim", T being 32 random lowercase hex
 *    digits.  A claim's bytes are exactly five lines:
 *    "filelock-strict-v1\n<T>\n<pid>\n<hex of the UTF-8 host name>\n<start token or empty>\n".
 *
 * Publication.  A record is never visible half-written: it is written under
 * a private name ".<public>.private-v1-<32 hex>.tmp" created with O_EXCL,
 * then hard-linked to its public name with linkat(), which fails with EEXIST
 * instead of replacing anything.  We then check that the public name has the
 * private file's identity (st_dev, st_ino; not st_nlink, which FUSE and NFS
 * attribute caches report stale), close, and unlink the private name.
 * Filesystems without atomic no-replace hard links (some FUSE, SMB, vfat)
 * cannot host this kind; link() failing with ENOSYS, EXDEV, EOPNOTSUPP or
 * EPERM on our own fresh file is reported as -ENOSYS, the way the unix kind
 * reports a filesystem without flock.
 *
 * The doorway (one attempt):
 *   1. scan claims/: any claim at all means contention;
 *   2. publish our intent claim;
 *   3. rescan: a held claim, or an intent smaller than ours, means we lost:
 *      remove our intent, contention;
 *   4. link intent -> held;
 *   5. rescan: both of ours present and our "v1-<T>.claim" key the smallest
 *      of all, else remove both, contention;
 *   6. held.  Both claims stay for the whole hold: the intent existed,
 *      unchanged, before any later scan began, so every scan is guaranteed
 *      to return it, unlike the freshly linked held claim.
 * Two contenders that both pass step 1 both publish; step 3/5 let exactly
 * the one with the smallest token through, because each checks after its
 * own claim is visible to everyone.
 *
 * Fail closed.  Anything unexpected stops the acquire with -EPROTO and a
 * message "Invalid strict soft-lock state at P[: claim 'N']: reason": a
 * symlink or file in place of a directory, a public name in claims/ that is
 * not a v1 claim, a claim that is not a regular file, is unreadable, or whose
 * record is not byte-for-byte canonical (decimal without leading zeros,
 * lowercase hex, printable host name, token equal to the one in its name).
 * A read that meets ESTALE opens the claim's name again at once (three opens
 * at most: fl__record_read); beyond that, readers retry EACCES/ESTALE for
 * 0.5 s (NFS revalidation, as Python does), then skip an ESTALE claim (the
 * server no longer has it) and fail on others.
 *
 * Crash and recovery.  A crashed holder's claims persist forever: no pid, no
 * age and no clock ever removes a strict claim, because that is the overlap
 * this kind exists to rule out.  Recovery is manual: fl_inspect() names the
 * holder and its claim, fl_break(path, FL_STRICT, opt, FL_FORCE, name)
 * removes the named claim and its sibling with the same token (one owner's
 * intent and held claims).  Without FL_FORCE a named claim is removed only
 * when its owner is on this host and provably dead or recycled.  Without a
 * name fl_break() refuses (-EBUSY without FL_FORCE, -EINVAL with it): a
 * strict lock is never broken by guessing which claim is meant.
 *
 * Adoption (fl__adopt, for the preload shim, whose fork children and new
 * images share the taker's open file description and must release the
 * lock when they are its last holder): the held claim, when it names the
 * taker (fl__adopt_pid_ok) and this host, with its intent sibling.  No age
 * is involved: a pid names the claim, it never makes one stale.
 *
 * Leftover private records (a publisher crashed between create and unlink)
 * are swept by scanners once their link count is not 1 or they are older
 * than 2 s both by the scanner's clock and by the file server's (the
 * ledger's probe: skew between hosts cannot make a fresh record look old);
 * a publisher whose private record was swept meanwhile (its write or link
 * meets ESTALE/ENOENT) just tries again; a non-regular private node is a
 * protocol error.
 *
 * Waiting.  Between attempts a waiter sleeps on inotify for a removal of a
 * public claim in claims/ (a release on this host wakes it at once; the
 * private records every publication unlinks do not), else for an
 * adaptive step: 1 ms after claims/ was seen to change (its times move
 * with every claim made or removed), doubling up to the poll interval
 * (fl__adapt_until, wait.c).
 *
 * NFS.  O_EXCL create, link() and readdir are coherent on NFSv3/v4 for a
 * directory that the client revalidates; each scan opens the directory anew
 * (close-to-open consistency).  Upstream gates this kind on NFS in CI.
 *
 * Fork.  A child never unlinks the parent's claims: the front end routes it
 * through strict_drop, which only closes descriptors.
 *
 * Downsides.  Overlap is impossible but liveness is not guaranteed: a holder
 * that crashes wedges the path until an operator breaks its claims.  Each
 * attempt costs several creates, links and directory scans.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl-internal.h"

#define STRICT_MAGIC         "filelock-strict-v1"
#define STRICT_RECORD_MAX    1024
#define STRICT_PRIVATE_GRACE 2.0
#define STRICT_READ_GRACE    0.5
#define STRICT_READ_RETRY    0.002
#define STRICT_NAME_MAX      64 /* "intent-v1-" + 32 + ".claim" = 48 */

/* Per-hold data: our claims while held. */
struct strict_hold {
	int claims_fd; /* P.filelock/claims, O_DIRECTORY, -1 if none */
	char token[33];
	int have_intent;
	int have_held;
	/* What occupies P instead of the sentinel, as first seen by this
	 * acquisition (strict_occupant): identity and CLOCK_MONOTONIC time. */
	dev_t occ_dev;
	ino_t occ_ino;
	double occ_mtime;
	size_t occ_len;
	double occ_first; /* 0 = nothing seen */
};

/* One parsed claim. */
struct strict_claim {
	char name[STRICT_NAME_MAX];
	int held; /* 1 = held-v1-, 0 = intent-v1- */
	char token[33];
	pid_t pid;
	char host[256];
	char start[128];
	double mtime;
};

struct strict_scan {
	struct strict_claim *v;
	size_t n, cap;
};

static void strict_scan_free(struct strict_scan *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* Records a protocol error (SoftFileLockProtocolError in Python). */
static int strict_proto(const struct fl_lock *lk, const char *path, const char *claim,
			const char *reason)
{
	if (claim)
		return fl__errf(lk, -EPROTO, "Invalid strict soft-lock state at %s: claim '%s': %s",
				path, claim, reason);
	return fl__errf(lk, -EPROTO, "Invalid strict soft-lock state at %s: %s", path, reason);
}

static int strict_is_lhex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Parses a public claim name; returns 1 and fills state/token, 0 if unknown. */
static int strict_parse_name(const char *name, int *held, char token[33])
{
	size_t n = strlen(name), off;

	if (strncmp(name, "intent-v1-", 10) == 0) {
		*held = 0;
		off = 10;
	} else if (strncmp(name, "held-v1-", 8) == 0) {
		*held = 1;
		off = 8;
	} else {
		return 0;
	}
	if (n != off + 32 + 6 || strcmp(name + off + 32, ".claim") != 0 ||
	    !strict_is_lhex(name + off, 32))
		return 0;
	memcpy(token, name + off, 32);
	token[32] = '\0';
	return 1;
}

/* Maps ".<public>.private-v1-<32 hex>.tmp" to <public> in out; 0 if not one. */
static int strict_private_public(const char *name, char *out, size_t cap)
{
	static const char mark[] = ".private-v1-";
	size_t n = strlen(name), pub;

	if (n < 1 + 12 + 32 + 4 || name[0] != '.' || strcmp(name + n - 4, ".tmp") != 0)
		return 0;
	if (!strict_is_lhex(name + n - 4 - 32, 32) || memcmp(name + n - 4 - 32 - 12, mark, 12) != 0)
		return 0;
	pub = n - 4 - 32 - 12 - 1;
	if (pub + 1 > cap)
		return 0;
	memcpy(out, name + 1, pub);
	out[pub] = '\0';
	return 1;
}

/* Python's str.isprintable() and not isspace(), on a decoded host name. */
static int strict_host_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		uint32_t cp;
		size_t k;

		if (c < 0x80) {
			if (c <= 0x20 || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		/* C1 controls, Unicode spaces and separators, format characters. */
		if (cp < 0xa1 || cp == 0xad || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) ||
		    (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) ||
		    cp == 0x3000 || cp == 0xfeff)
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Canonical decimal: no sign, no leading zero (except "0" when allow0). */
static int strict_canon_dec(const char *s, size_t n, int allow0)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	if (s[0] == '0')
		return allow0 && n == 1;
	return 1;
}

/* Parses a claim record canonically.  0 or -EBADMSG. */
static int strict_parse_record(const char *buf, size_t len, const char *name_token,
			       struct strict_claim *c)
{
	const char *f[6];
	size_t fl[6];
	size_t nf = 0, i, start = 0;
	long long pid = 0;

	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] >= 0x80)
			return -EBADMSG;
	for (i = 0; i <= len; i++) {
		if (i == len || buf[i] == '\n') {
			if (nf == 6)
				return -EBADMSG;
			f[nf] = buf + start;
			fl[nf] = i - start;
			nf++;
			start = i + 1;
		}
	}
	if (nf != 6 || fl[5] != 0)
		return -EBADMSG;
	if (fl[0] != sizeof(STRICT_MAGIC) - 1 || memcmp(f[0], STRICT_MAGIC, fl[0]) != 0)
		return -EBADMSG;
	if (fl[1] != 32 || memcmp(f[1], name_token, 32) != 0)
		return -EBADMSG;
	if (!strict_canon_dec(f[2], fl[2], 0) || fl[2] > 10 ||
	    fl__parse_ll(f[2], fl[2], &pid) != 0 || pid < 1 || pid > 2147483647LL)
		return -EBADMSG;
	if (fl[3] % 2 != 0 || !strict_is_lhex(f[3], fl[3]) || fl[3] / 2 >= sizeof(c->host))
		return -EBADMSG;
	for (i = 0; i < fl[3] / 2; i++) {
		unsigned hi =
		    (unsigned)(f[3][2 * i] <= '9' ? f[3][2 * i] - '0' : f[3][2 * i] - 'a' + 10);
		unsigned lo = (unsigned)(f[3][2 * i + 1] <= '9' ? f[3][2 * i + 1] - '0'
								: f[3][2 * i + 1] - 'a' + 10);
		c->host[i] = (char)(hi << 4 | lo);
	}
	c->host[fl[3] / 2] = '\0';
	if (memchr(c->host, '\0', fl[3] / 2) != NULL ||
	    !strict_host_ok((const unsigned char *)c->host, fl[3] / 2))
		return -EBADMSG;
	if (fl[4] != 0 && (!strict_canon_dec(f[4], fl[4], 1) || fl[4] >= sizeof(c->start)))
		return -EBADMSG;
	memcpy(c->start, f[4], fl[4]);
	c->start[fl[4]] = '\0';
	c->pid = (pid_t)pid;
	return 0;
}

/* The claim parser for fuzzing and tests: name and record, canonical only. */
int fl__strict_claim_parse(const char *name, const char *buf, size_t len, struct fl_claim *out)
{
	struct strict_claim c;

	memset(&c, 0, sizeof(c));
	if (!strict_parse_name(name, &c.held, c.token))
		return -ENOENT;
	if (len > STRICT_RECORD_MAX || strict_parse_record(buf, len, c.token, &c) != 0)
		return -EBADMSG;
	out->held = c.held;
	memcpy(out->token, c.token, sizeof(out->token));
	out->pid = c.pid;
	memcpy(out->host, c.host, sizeof(out->host));
	memcpy(out->start, c.start, sizeof(out->start));
	return 0;
}

/* Formats our claim record.  Returns its length or -errno. */
static int strict_format_record(const char *token, char *buf, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	char host[256], hosthex[512];
	size_t i, hl;
	int n, r = fl__hostname(host, sizeof(host));

	if (r != 0)
		return r;
	hl = strlen(host);
	for (i = 0; i < hl; i++) {
		hosthex[2 * i] = hex[(unsigned char)host[i] >> 4];
		hosthex[2 * i + 1] = hex[(unsigned char)host[i] & 15];
	}
	hosthex[2 * hl] = '\0';
	n = snprintf(buf, cap, STRICT_MAGIC "\n%s\n%d\n%s\n%s\n", token, (int)fl__pid(), hosthex,
		     fl__self_token());
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return n;
}

/*
 * Removes a leftover private record if its publisher is done with it (link
 * count not 1: it was published) or it is older than the grace both by its
 * mtime against our clock and by the ledger (the file server's clock on a
 * first sight, our own watch after): a host whose clock runs ahead of the
 * server's would otherwise see every record just created as old and pull it
 * from under its publisher.  A node that is not a regular file is a
 * protocol error.
 */
static int strict_reclaim_private(const struct fl_lock *lk, const char *path, int dirfd,
				  const char *name)
{
	struct stat st;

	if (fl__sys.fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (!S_ISREG(st.st_mode)) {
		char why[STRICT_NAME_MAX + 320];
		snprintf(why, sizeof(why), "%.200s is not a regular private record", name);
		return strict_proto(lk, path, NULL, why);
	}
	if (st.st_nlink == 1) {
		char key[4096 + STRICT_NAME_MAX + 64];
		struct fl_seen seen;

		/* Young by our clock: kept, as Python keeps it.  Old by our
		 * clock: confirmed by the ledger, which judges a first sight by
		 * the file server's clock (a probe beside it) and later ones by
		 * our own watch. */
		if (fl__now_wall() - fl__mtime(&st) < STRICT_PRIVATE_GRACE)
			return 0;
		fl__seen_of(&seen, &st);
		if ((size_t)snprintf(key, sizeof(key), "%s//%s", path, name) >= sizeof(key) ||
		    fl__ledger_silent(key, dirfd, name, &seen) < STRICT_PRIVATE_GRACE)
			return 0;
		fl__ledger_forget(key);
	}
	if (fl__sys.unlinkat(dirfd, name, 0) != 0 && errno != ENOENT && errno != EACCES &&
	    errno != EPERM)
		return fl__err(lk, -errno, "unlink", name);
	return 0;
}

#define STRICT_GONE    1 /* vanished between readdir and read: skip it */
#define STRICT_NOTREG  2 /* not a regular file                         */
#define STRICT_CHANGED 3 /* replaced between lstat and open            */

/* Reads one claim (regular file, identity-checked, capped at 1024 bytes).
 * Returns 0, a positive STRICT_* code, or -errno (EACCES/ESTALE retryable). */
static int strict_read_claim(int dirfd, const char *name, char *buf, size_t *len, double *mtime)
{
	struct stat st, fst;
	size_t got = 0;
	int r;

	if (fl__sys.fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? STRICT_GONE : -errno;
	if (!S_ISREG(st.st_mode))
		return STRICT_NOTREG;
	r = fl__record_read(dirfd, name, buf, STRICT_RECORD_MAX + 1, &got, &fst, NULL);
	/* FUSE answers ENOENT on the descriptor of a file unlinked after our
	 * open: the claim was released, as if we had not seen it. */
	if (r < 0)
		return r == -ENOENT ? STRICT_GONE : r == -ELOOP ? STRICT_NOTREG : r;
	if (!S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev)
		return STRICT_CHANGED;
	if (got > STRICT_RECORD_MAX)
		return -EFBIG;
	*len = got;
	*mtime = fl__mtime(&fst);
	return 0;
}

static int strict_scan_push(struct strict_scan *s, const struct strict_claim *c)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4;
		struct strict_claim *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *c;
	return 0;
}

/* Reads, with Python's retry of EACCES/EPERM/ESTALE, and parses one claim. */
static int strict_load_claim(const struct fl_lock *lk, const char *path, int dirfd,
			     const char *name, struct strict_scan *out)
{
	char buf[STRICT_RECORD_MAX + 2], why[160], eb[64];
	struct strict_claim c;
	double deadline = 0;
	size_t len = 0;
	int r;

	memset(&c, 0, sizeof(c));
	if (!strict_parse_name(name, &c.held, c.token))
		return strict_proto(lk, path, name, "unknown claim name or protocol version");
	snprintf(c.name, sizeof(c.name), "%s", name);
	for (;;) {
		r = strict_read_claim(dirfd, name, buf, &len, &c.mtime);
		if (r == 0 || r == STRICT_GONE)
			break;
		if (r == STRICT_NOTREG)
			return strict_proto(lk, path, name,
					    "cannot read claim: not a regular file");
		if (r == STRICT_CHANGED)
			return strict_proto(lk, path, name,
					    "cannot read claim: changed while opening");
		if (r == -EFBIG)
			return strict_proto(lk, path, name,
					    "cannot read claim: exceeds 1024 bytes");
		if (r != -EACCES && r != -EPERM && r != -ESTALE) {
			snprintf(why, sizeof(why), "cannot read claim: %s",
				 fl__strerror_r(-r, eb, sizeof(eb)));
			return strict_proto(lk, path, name, why);
		}
		/* Windows delete-pending and NFS stale handles resolve on a brief retry. */
		if (deadline == 0) {
			deadline = fl__now_mono() + STRICT_READ_GRACE;
		} else if (fl__now_mono() >= deadline) {
			if (r == -ESTALE)
				return 0; /* the server no longer has it: skip it */
			snprintf(why, sizeof(why), "cannot read claim: %s",
				 fl__strerror_r(-r, eb, sizeof(eb)));
			return strict_proto(lk, path, name, why);
		}
		fl__sleep_until(fl__now_mono() + STRICT_READ_RETRY);
	}
	if (r == STRICT_GONE)
		return 0;
	if (strict_parse_record(buf, len, c.token, &c) != 0)
		return strict_proto(lk, path, name, "malformed claim record");
	return strict_scan_push(out, &c);
}

/*
 * Lists every claim in the claims directory.  Unknown public names and
 * malformed claims are protocol errors; our private records of finished
 * publications are swept on the way.
 */
static int strict_scan(const struct fl_lock *lk, const char *path, int claims_fd,
		       struct strict_scan *out)
{
	char pub[256], why[160], eb[64];
	struct dirent *de;
	DIR *d;
	int dfd, r = 0;

	out->n = 0;
	dfd = fl__sys.openat(claims_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (d = fl__sys.fdopendir(dfd)) == NULL) {
		int e = errno;
		if (dfd >= 0)
			fl__sys.close(dfd);
		snprintf(why, sizeof(why), "cannot list claim directory: %s",
			 fl__strerror_r(e, eb, sizeof(eb)));
		return strict_proto(lk, path, NULL, why);
	}
	while (r == 0) {
		errno = 0;
		de = fl__sys.readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				snprintf(why, sizeof(why), "cannot list claim directory: %s",
					 fl__strerror_r(errno, eb, sizeof(eb)));
				r = strict_proto(lk, path, NULL, why);
			}
			break;
		}
		if (de->d_name[0] == '.') {
			int held;
			char tok[33];
			if (strict_private_public(de->d_name, pub, sizeof(pub)) &&
			    strict_parse_name(pub, &held, tok))
				r = strict_reclaim_private(lk, path, claims_fd, de->d_name);
			continue;
		}
		r = strict_load_claim(lk, path, claims_fd, de->d_name, out);
	}
	fl__sys.closedir(d);
	if (r != 0)
		strict_scan_free(out); /* a failed scan owns nothing */
	return r;
}

/* The claim name without its state prefix ("v1-<T>.claim"), for ordering. */
static const char *strict_key(const char *name)
{
	return name[0] == 'h' ? name + 5 : name + 7;
}

/*
 * The publication primitive: write `rec` under a private name in dirfd, link
 * it to `pub` without replacing anything, verify the identity of `pub`.
 * `priv_dir_prefix` is prepended to the private name (a directory path when
 * dirfd is AT_FDCWD, "" otherwise).  Returns 0 published, -EEXIST `pub`
 * exists, -EAGAIN our private record was reclaimed or `pub` is not ours
 * (contention), -ENOSYS no hard links, or another -errno (recorded).
 */
static int strict_publish(const struct fl_lock *lk, const char *path, int dirfd,
			  const char *priv_dir, const char *pub, const char *pub_base,
			  const char *rec, size_t len, mode_t perm)
{
	char priv[4096 + 128], hex[33];
	struct stat st, pst;
	int fd, r;

	fl__random_hex(hex);
	if ((size_t)snprintf(priv, sizeof(priv), "%s.%s.private-v1-%s.tmp", priv_dir, pub_base,
			     hex) >= sizeof(priv))
		return fl__errf(lk, -ENAMETOOLONG, "%s: path too long", path);
	fd = fl__sys.openat(dirfd, priv,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, perm);
	if (fd < 0)
		return fl__err(lk, -errno, "open", priv);
	if (fl__sys.fstat(fd, &st) != 0) {
		r = fl__err(lk, -errno, "fstat", priv);
		fl__sys.close(fd);
		fl__sys.unlinkat(dirfd, priv, 0);
		return r;
	}
	r = fl__write_all(fd, rec, len);
	if (r == -ESTALE || r == -ENOENT) {
		r = -EAGAIN; /* a sweeper took our private record: just contention */
		goto out;
	}
	if (r != 0) {
		r = fl__err(lk, r, "write", priv);
		goto out;
	}
	if (fl__sys.linkat(dirfd, priv, dirfd, pub, 0) != 0) {
		int e = errno;
		if (e == EEXIST) {
			r = -EEXIST;
		} else if (e == ENOSYS || e == EXDEV || e == EOPNOTSUPP || e == ENOTSUP ||
			   e == EPERM) {
			r = fl__errf(
			    lk, -ENOSYS,
			    "Invalid strict soft-lock state at %s: filesystem does not support "
			    "atomic no-replace hard-link publication (link: %s)",
			    path, strerror(e));
		} else if (e == ENOENT &&
			   fl__sys.fstatat(dirfd, priv, &pst, AT_SYMLINK_NOFOLLOW) != 0) {
			r = -EAGAIN; /* a sweeper took our private record: just contention */
		} else {
			r = fl__err(lk, -e, "link", pub);
		}
		goto out;
	}
	/* Identity, not link count: attribute caches report st_nlink stale. */
	if (fl__sys.fstatat(dirfd, pub, &pst, AT_SYMLINK_NOFOLLOW) != 0 ||
	    pst.st_dev != st.st_dev || pst.st_ino != st.st_ino) {
		/* The link may have published our record even though we cannot
		 * see it now (ESTALE, EIO): withdraw it if it is ours, since a
		 * strict claim is never reclaimed by age and would block the
		 * lock for good.  Another's (or none) is left alone. */
		int u = fl__unlink_if_same(dirfd, pub, st.st_dev, st.st_ino);
		/* An intent claim's name carries our random token: nobody else
		 * makes it, so when its identity cannot be read it goes by name. */
		if (u != 0 && u != -ESTALE && u != -ENOENT && strncmp(pub, "intent-v1-", 10) == 0 &&
		    fl__sys.unlinkat(dirfd, pub, 0) == 0)
			u = 0;
		r = u == 0 || u == -ESTALE || u == -ENOENT ? -EAGAIN : fl__err(lk, u, "unlink", pub);
	}
out:
	fl__sys.close(fd);
	/* The private name carries fresh randomness: ours alone, so when its
	 * identity cannot be read it goes by name. */
	{
		int u = fl__unlink_if_same(dirfd, priv, st.st_dev, st.st_ino);
		if (u != 0 && u != -ESTALE && u != -ENOENT)
			fl__sys.unlinkat(dirfd, priv, 0);
	}
	return r;
}

/*
 * Opens (creating if missing) a protocol directory relative to dirfd without
 * following a symlink.  Returns the fd or -errno (recorded).
 */
static int strict_open_dir(const struct fl_lock *lk, const char *path, int dirfd, const char *name,
			   const char *shown)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	char why[4300];
	int fd, made = 0;

	for (;;) {
		fd = fl__sys.openat(dirfd, name, flags);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && !made) {
			made = 1;
			if (fl__sys.mkdirat(dirfd, name, 0777) != 0 && errno != EEXIST)
				return fl__err(lk, -errno, "mkdir", shown);
			continue;
		}
		if (errno == ELOOP || errno == ENOTDIR) {
			snprintf(why, sizeof(why), "%s is not a real directory", shown);
			return strict_proto(lk, path, NULL, why);
		}
		return fl__err(lk, -errno, "open", shown);
	}
}

/* Opens the sentinel read-only if it is a regular file with exactly the
 * sentinel bytes.  Returns the fd, -ENOENT missing, -EAGAIN anything else
 * (contention: someone else's marker, a directory, ...). */
static int strict_open_sentinel(const char *path)
{
	char buf[FL__STRICT_SENTINEL_LEN + 1];
	struct stat st, fst;
	size_t got = 0;
	int fd = -1, r;

	if (fl__sys.lstat(path, &st) != 0)
		return errno == ENOENT ? -ENOENT : -EAGAIN;
	if (!S_ISREG(st.st_mode))
		return -EAGAIN;
	r = fl__record_read(AT_FDCWD, path, buf, sizeof(buf), &got, &fst, &fd);
	if (r < 0)
		return r == -ENOENT ? -ENOENT : -EAGAIN;
	if (fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)
		goto no;
	if (got == FL__STRICT_SENTINEL_LEN && memcmp(buf, fl__strict_sentinel, got) == 0)
		return fd;
no:
	fl__sys.close(fd);
	return -EAGAIN;
}

/* Sweeps leftover private records of the sentinel in its directory. */
static int strict_sweep_sentinel_privates(struct fl_lock *lk)
{
	char pub[256];
	struct dirent *de;
	DIR *d;
	int dfd, r = 0;

	dfd = fl__sys.open(lk->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fl__err(lk, -errno, "open", lk->dir);
	d = fl__sys.fdopendir(dfd);
	if (d == NULL) {
		r = fl__err(lk, -errno, "opendir", lk->dir);
		fl__sys.close(dfd);
		return r;
	}
	while (r == 0 && (de = fl__sys.readdir(d)) != NULL)
		if (strict_private_public(de->d_name, pub, sizeof(pub)) &&
		    strcmp(pub, lk->name) == 0)
			r = strict_reclaim_private(lk, lk->path, dirfd(d), de->d_name);
	fl__sys.closedir(d);
	return r;
}

#define STRICT_OCCUPANT_GRACE 0.5     /* a directory, symlink, special file   */
/* Unparsable content, unchanged: FL__MALFORMED_AGE (Python's 2 s). */

/*
 * Something other than the sentinel is at P (Python 4's rule; 3.32.3 and we
 * used to wait for it forever).  A soft lock (protocol 1 or 2) whose owner
 * may be alive is a holder: wait (-EAGAIN).  One whose owner this host
 * proves has exited, a node that is no file (a directory, a symbolic link, a
 * FIFO, ...) or an unreadable one after 0.5 s, and unparsable content that
 * stayed the same for 2 s on our monotonic clock: -EPROTO, naming what is
 * there.  Nothing is removed: it is not ours.
 */
static int strict_occupant(struct fl_lock *lk, struct strict_hold *sh)
{
	double now = fl__now_mono(), lim = STRICT_OCCUPANT_GRACE;
	const char *what = "a node that is not a regular file";
	struct fl_marker m;
	struct fl_p1 p1;
	int r = fl__marker_read(AT_FDCWD, lk->path, &m), lease;
	double dur;
	pid_t pid;

	if (r == -EACCES)
		return -EAGAIN; /* Python: unreadable for permission is a holder */
	if (r != 0) {
		what = "an unreadable node";
		memset(&m, 0, sizeof(m));
		m.exists = 1;
	} else if (!m.exists) {
		return -EAGAIN; /* gone: the next try publishes the sentinel */
	} else if (m.regular && !m.malformed) {
		if (fl__p1_parse(m.buf, m.len, &p1) == 0) {
			if (!fl__owner_is_stale(p1.pid, p1.host, p1.token))
				return -EAGAIN;
			return fl__errf(lk, -EPROTO,
					"%s: a soft lock of pid %d, which has exited on this host, "
					"occupies the strict lock's path; remove it (strict locks "
					"never break another kind's marker)",
					lk->path, (int)p1.pid);
		}
		if (fl__p2_parse(m.buf, m.len, &pid, &lease, &dur) == 0)
			return -EAGAIN; /* a protocol-2 owner that may be alive */
		what = "unparsable content";
		lim = FL__MALFORMED_AGE;
	}
	if (sh->occ_first == 0 || sh->occ_dev != m.dev || sh->occ_ino != m.ino ||
	    sh->occ_mtime != m.mtime || sh->occ_len != m.len) {
		sh->occ_dev = m.dev;
		sh->occ_ino = m.ino;
		sh->occ_mtime = m.mtime;
		sh->occ_len = m.len;
		sh->occ_first = now;
		return -EAGAIN;
	}
	if (now - sh->occ_first < lim)
		return -EAGAIN;
	return fl__errf(lk, -EPROTO,
			"%s: %s occupies the strict lock's path instead of its sentinel; remove it "
			"(strict locks never break what is not theirs)",
			lk->path, what);
}

/* Opens the sentinel, publishing it first when missing.  fd, -EAGAIN, or error. */
static int strict_sentinel(struct fl_lock *lk, struct strict_hold *sh)
{
	mode_t perm = lk->opt.mode == -1 ? 0666 : (mode_t)lk->opt.mode;
	char pdir[4096 + 2];
	int fd = strict_open_sentinel(lk->path), r;

	if (fd == -EAGAIN)
		return strict_occupant(lk, sh);
	if (fd != -ENOENT)
		return fd;
	r = strict_sweep_sentinel_privates(lk);
	if (r != 0)
		return r;
	snprintf(pdir, sizeof(pdir), "%s/", strcmp(lk->dir, "/") == 0 ? "" : lk->dir);
	r = strict_publish(lk, lk->path, AT_FDCWD, pdir, lk->path, lk->name, fl__strict_sentinel,
			   FL__STRICT_SENTINEL_LEN, perm);
	if (r != 0 && r != -EEXIST && r != -EAGAIN)
		return r;
	fd = strict_open_sentinel(lk->path);
	return fd == -ENOENT ? -EAGAIN : fd;
}

/* Unlinks our claims (identity is not needed: the names carry our token). */
static int strict_unlink_ours(struct fl_lock *lk, struct strict_hold *sh)
{
	char name[STRICT_NAME_MAX];
	int r = 0;

	if (sh->have_held) {
		snprintf(name, sizeof(name), "held-v1-%s.claim", sh->token);
		if (fl__sys.unlinkat(sh->claims_fd, name, 0) == 0 || errno == ENOENT)
			sh->have_held = 0;
		else
			r = fl__err(lk, -errno, "unlink", name);
	}
	if (sh->have_intent) {
		snprintf(name, sizeof(name), "intent-v1-%s.claim", sh->token);
		if (fl__sys.unlinkat(sh->claims_fd, name, 0) == 0 || errno == ENOENT)
			sh->have_intent = 0;
		else if (r == 0)
			r = fl__err(lk, -errno, "unlink", name);
	}
	return r;
}

/* Ends a failed doorway: our claims go, descriptors close.  Returns `ret`
 * unless a claim could not be removed (then that error, naming it). */
static int strict_abandon(struct fl_lock *lk, struct strict_hold *sh, int sentinel_fd, int ret)
{
	int r = 0;

	if (sh->claims_fd >= 0) {
		r = strict_unlink_ours(lk, sh);
		if (r != 0)
			fl__errf(lk, r,
				 "%s: could not remove our claim with token %s; it blocks the lock "
				 "until fl_break() removes it",
				 lk->path, sh->token);
		fl__sys.close(sh->claims_fd);
		sh->claims_fd = -1;
	}
	if (sentinel_fd >= 0)
		fl__sys.close(sentinel_fd);
	return r != 0 ? r : ret;
}

/* Each try starts afresh, but for what it saw occupy P. */
static void strict_try_fresh(struct strict_hold *sh)
{
	struct strict_hold keep = *sh;

	memset(sh, 0, sizeof(*sh));
	sh->occ_dev = keep.occ_dev;
	sh->occ_ino = keep.occ_ino;
	sh->occ_mtime = keep.occ_mtime;
	sh->occ_len = keep.occ_len;
	sh->occ_first = keep.occ_first;
	sh->claims_fd = -1;
}

/* Makes the parents and opens P.filelock/claims into sh->claims_fd. */
static int strict_open_claims(struct fl_lock *lk, struct strict_hold *sh)
{
	char coord[4096 + 16], shown[4096 + 32];
	int coord_fd, r;

	if ((size_t)snprintf(coord, sizeof(coord), "%s.filelock", lk->path) >= sizeof(coord))
		return fl__errf(lk, -ENAMETOOLONG, "%s: path too long", lk->path);
	r = fl__mkdir_p(lk);
	if (r != 0)
		return r; /* recorded */
	coord_fd = strict_open_dir(lk, lk->path, AT_FDCWD, coord, coord);
	if (coord_fd < 0)
		return coord_fd;
	snprintf(shown, sizeof(shown), "%s/claims", coord);
	sh->claims_fd = strict_open_dir(lk, lk->path, coord_fd, "claims", shown);
	fl__sys.close(coord_fd);
	if (sh->claims_fd < 0) {
		r = sh->claims_fd;
		sh->claims_fd = -1;
		return r;
	}
	return 0;
}

/* Step 2: a new token, and our intent claim published under it.  0, or
 * -EAGAIN (the name was taken), or an error (recorded). */
static int strict_publish_intent(struct fl_lock *lk, struct strict_hold *sh, char *intent,
				 char *held)
{
	mode_t perm = lk->opt.mode == -1 ? 0666 : (mode_t)lk->opt.mode;
	char rec[STRICT_RECORD_MAX];
	int n, r;

	fl__random_hex(sh->token);
	snprintf(intent, STRICT_NAME_MAX, "intent-v1-%s.claim", sh->token);
	snprintf(held, STRICT_NAME_MAX, "held-v1-%s.claim", sh->token);
	n = strict_format_record(sh->token, rec, sizeof(rec));
	if (n < 0)
		return fl__errf(lk, n, "%s: cannot format the claim record (host name)", lk->path);
	r = strict_publish(lk, lk->path, sh->claims_fd, "", intent, intent, rec, (size_t)n, perm);
	if (r == -EEXIST || r == -EAGAIN)
		return -EAGAIN;
	if (r == 0)
		sh->have_intent = 1;
	return r;
}

/* Step 3: no held claim, and our intent the smallest name. */
static int strict_intent_first(const struct strict_scan *sc, const char *intent)
{
	const char *min = NULL;

	for (size_t i = 0; i < sc->n; i++) {
		if (sc->v[i].held)
			return 0;
		if (min == NULL || strcmp(sc->v[i].name, min) < 0)
			min = sc->v[i].name;
	}
	return min != NULL && strcmp(min, intent) == 0;
}

/* Step 4: promote the intent to held by a second hard link. */
static int strict_promote(struct fl_lock *lk, struct strict_hold *sh, const char *intent,
			  const char *held)
{
	int e;

	if (fl__sys.linkat(sh->claims_fd, intent, sh->claims_fd, held, 0) == 0) {
		sh->have_held = 1;
		return 0;
	}
	e = errno;
	if (e == ENOSYS || e == EXDEV || e == EOPNOTSUPP || e == ENOTSUP || e == EPERM)
		return fl__errf(lk, -ENOSYS,
				"Invalid strict soft-lock state at %s: filesystem does not support "
				"atomic no-replace hard-link publication (link: %s)",
				lk->path, strerror(e));
	return fl__err(lk, -e, "link", held);
}

/* Step 5: both our claims present and our key the smallest of all. */
static int strict_claims_won(const struct strict_scan *sc, const char *token, const char *intent,
			     const char *held)
{
	char key[STRICT_NAME_MAX];
	int have_intent = 0, have_held = 0;

	snprintf(key, sizeof(key), "v1-%s.claim", token);
	for (size_t i = 0; i < sc->n; i++) {
		if (strcmp(sc->v[i].name, intent) == 0)
			have_intent = 1;
		else if (strcmp(sc->v[i].name, held) == 0)
			have_held = 1;
		else if (strcmp(strict_key(sc->v[i].name), key) <= 0)
			return 0;
	}
	return have_intent && have_held;
}

/* Steps 1-5 of a claim (see the essay).  0 = the lock is ours, -EAGAIN =
 * contention, or an error (recorded).  Scans land in *sc. */
static int strict_claim(struct fl_lock *lk, struct strict_hold *sh, struct strict_scan *sc)
{
	char intent[STRICT_NAME_MAX], held[STRICT_NAME_MAX];
	int r;

	/* 1. Any claim at all: contention. */
	r = strict_scan(lk, lk->path, sh->claims_fd, sc);
	if (r != 0 || sc->n > 0)
		return r != 0 ? r : -EAGAIN;
	/* 2. Publish our intent. */
	r = strict_publish_intent(lk, sh, intent, held);
	if (r != 0)
		return r;
	/* 3. No held claim, and ours the smallest name. */
	r = strict_scan(lk, lk->path, sh->claims_fd, sc);
	if (r != 0 || !strict_intent_first(sc, intent))
		return r != 0 ? r : -EAGAIN;
	/* 4. Promote the intent to held. */
	r = strict_promote(lk, sh, intent, held);
	if (r != 0)
		return r;
	/* 5. Both ours present and our key the smallest of all. */
	r = strict_scan(lk, lk->path, sh->claims_fd, sc);
	if (r != 0 || !strict_claims_won(sc, sh->token, intent, held))
		return r != 0 ? r : -EAGAIN;
	return 0;
}

static int strict_attempt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, int how)
{
	struct strict_hold *sh = (struct strict_hold *)h->priv;
	struct strict_scan sc = { 0 };
	int sfd, r;

	(void)mode;
	(void)how;
	strict_try_fresh(sh);
	r = strict_open_claims(lk, sh);
	if (r != 0)
		return r;
	sfd = strict_sentinel(lk, sh);
	if (sfd < 0)
		return strict_abandon(lk, sh, -1, sfd);
	r = strict_claim(lk, sh, &sc);
	strict_scan_free(&sc);
	if (r != 0)
		return strict_abandon(lk, sh, sfd, r);
	h->fd = sfd;
	return 0;
}

/* 1 while claims/ (arg) holds a public name: someone still claims the lock. */
static int strict_claimed(void *arg)
{
	struct dirent *de;
	int fd, found = 0;
	DIR *d;

	fd = fl__sys.open(arg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 1; /* cannot tell: wait */
	d = fl__sys.fdopendir(fd);
	if (d == NULL) {
		fl__sys.close(fd);
		return 1;
	}
	while (!found && (de = fl__sys.readdir(d)) != NULL)
		found = de->d_name[0] != '.';
	fl__sys.closedir(d);
	return found;
}

/* Wakes when a claim is removed (a release on this host), else polls. */
static void strict_wait(struct fl_lock *lk, struct fl_hold *h, double until)
{
	char claims[4096 + 32];

	if ((size_t)snprintf(claims, sizeof(claims), "%s.filelock/claims", lk->path) >=
	    sizeof(claims)) {
		fl__wait_sleep_until(until);
		return;
	}
	/* A claim added or removed changes the directory's times. */
	until = fl__adapt_until(h, claims, lk->opt.poll_interval, until);
	fl__wait_removal(claims, NULL, strict_claimed, claims, until);
}

static int strict_release(struct fl_lock *lk, struct fl_hold *h)
{
	struct strict_hold *sh = (struct strict_hold *)h->priv;
	int r = strict_unlink_ours(lk, sh);

	if (r != 0)
		return r; /* still held: a retried release removes the rest */
	fl__sys.close(sh->claims_fd);
	sh->claims_fd = -1;
	h->held = 0;
	if (fl__sys.close(h->fd) != 0 && errno != EINTR) {
		h->fd = -1;
		return fl__err(lk, -errno, "close", lk->path);
	}
	h->fd = -1;
	return 0;
}

static void strict_drop(struct fl_lock *lk, struct fl_hold *h)
{
	struct strict_hold *sh = (struct strict_hold *)h->priv;

	(void)lk;
	if (sh->claims_fd >= 0)
		fl__sys.close(sh->claims_fd); /* the claims stay the parent's */
	sh->claims_fd = -1;
	if (h->fd >= 0)
		fl__sys.close(h->fd);
	h->fd = -1;
}

/*
 * Takes over the claims a process that shares our open file description
 * published (the preload shim after fork or execve): the held claim of the
 * taker (or of this process, whose pid execve keeps; fl__adopt_pid_ok), on
 * this host, with its intent sibling.  The lock is exclusive, so there is at
 * most one held claim; anyone else's is not ours (-ESTALE).
 */
static int strict_adopt(struct fl_lock *lk, struct fl_hold *h, enum fl_mode mode, dev_t dev,
			ino_t ino, pid_t taker)
{
	struct strict_hold *sh = (struct strict_hold *)h->priv;
	struct strict_scan sc = { 0 };
	char coord[4096 + 16], shown[4096 + 32], me[256];
	const struct strict_claim *held = NULL;
	int coord_fd, sfd, r;

	(void)mode;
	(void)dev;
	(void)ino;
	if (fl__hostname(me, sizeof(me)) != 0)
		return -ESTALE;
	memset(sh, 0, sizeof(*sh));
	sh->claims_fd = -1;
	if ((size_t)snprintf(coord, sizeof(coord), "%s.filelock", lk->path) >= sizeof(coord))
		return fl__errf(lk, -ENAMETOOLONG, "%s: path too long", lk->path);
	coord_fd = strict_open_dir(lk, lk->path, AT_FDCWD, coord, coord);
	if (coord_fd < 0)
		return coord_fd == -ENOENT ? -ESTALE : coord_fd;
	snprintf(shown, sizeof(shown), "%s/claims", coord);
	sh->claims_fd = strict_open_dir(lk, lk->path, coord_fd, "claims", shown);
	fl__sys.close(coord_fd);
	if (sh->claims_fd < 0) {
		r = sh->claims_fd;
		sh->claims_fd = -1;
		return r == -ENOENT ? -ESTALE : r;
	}
	r = strict_scan(lk, lk->path, sh->claims_fd, &sc);
	for (size_t i = 0; r == 0 && i < sc.n; i++)
		if (sc.v[i].held)
			held = &sc.v[i];
	if (r != 0 || held == NULL || strcmp(held->host, me) != 0 ||
	    !fl__adopt_pid_ok(held->pid, taker)) {
		strict_scan_free(&sc);
		fl__sys.close(sh->claims_fd);
		sh->claims_fd = -1;
		return r != 0 ? r : -ESTALE;
	}
	memcpy(sh->token, held->token, sizeof(sh->token));
	sh->have_held = 1;
	for (size_t i = 0; i < sc.n; i++)
		if (!sc.v[i].held && strcmp(sc.v[i].token, sh->token) == 0)
			sh->have_intent = 1;
	strict_scan_free(&sc);
	sfd = strict_open_sentinel(lk->path);
	if (sfd < 0) {
		fl__sys.close(sh->claims_fd);
		sh->claims_fd = -1;
		return -ESTALE;
	}
	h->fd = sfd;
	return 0;
}

/* Options that mean nothing to this kind are refused, as Python refuses
 * unknown keyword options (TypeError). */
static int strict_setup(struct fl_lock *lk)
{
	const struct fl_options *o = &lk->opt;
	int r = fl__opt_no_lifetime(lk, "manual break only");

	if (r != 0)
		return r;
	if (o->lease_duration != 0 || o->heartbeat_interval != 0 || o->stale_threshold != 0)
		return fl__errf(
		    NULL, -EINVAL,
		    "%s%s%sis not supported by strict: a strict claim is never broken by "
		    "age, only by fl_break() [strict]",
		    o->lease_duration != 0 ? "lease_duration " : "",
		    o->heartbeat_interval != 0 ? "heartbeat_interval " : "",
		    o->stale_threshold != 0 ? "stale_threshold " : "");
	return 0;
}

/* Opens P.filelock/claims for inspection without creating anything.
 * Returns the fd, -ENOENT when absent, or -EPROTO (recorded). */
static int strict_open_claims_ro(const char *path)
{
	char coord[4096 + 32], why[4200];
	int fd;

	if ((size_t)snprintf(coord, sizeof(coord), "%s.filelock/claims", path) >= sizeof(coord))
		return fl__errf(NULL, -ENAMETOOLONG, "%s: path too long", path);
	fd = fl__sys.open(coord, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		/* O_NOFOLLOW covers the last component only; check the middle one. */
		struct stat st;
		coord[strlen(path) + 9] = '\0';
		if (fl__sys.lstat(coord, &st) == 0 && S_ISDIR(st.st_mode))
			return fd;
		fl__sys.close(fd);
		snprintf(why, sizeof(why), "%s is not a real directory", coord);
		return strict_proto(NULL, path, NULL, why);
	}
	if (errno == ENOENT)
		return -ENOENT;
	if (errno == ELOOP || errno == ENOTDIR) {
		snprintf(why, sizeof(why), "%s is not a real directory", coord);
		return strict_proto(NULL, path, NULL, why);
	}
	return fl__err(NULL, -errno, "open", coord);
}

/* The claim that best names the holder: a held claim, else the smallest. */
static const struct strict_claim *strict_owner(const struct strict_scan *sc)
{
	const struct strict_claim *best = NULL;

	for (size_t i = 0; i < sc->n; i++) {
		const struct strict_claim *c = &sc->v[i];
		if (best == NULL || (c->held && !best->held) ||
		    (c->held == best->held &&
		     strcmp(strict_key(c->name), strict_key(best->name)) < 0))
			best = c;
	}
	return best;
}

static int strict_inspect(const char *path, const struct fl_options *opt, struct fl_holder *out)
{
	struct strict_scan sc = { 0 };
	const struct strict_claim *c;
	char me[256] = "";
	size_t len;
	int fd, r, dead;

	(void)opt;
	out->mode = FL_EXCLUSIVE;
	fd = strict_open_claims_ro(path);
	if (fd == -ENOENT) {
		out->state = FL_HOLDER_FREE;
		return 0;
	}
	if (fd == -EPROTO) {
		out->state = FL_HOLDER_MALFORMED;
		snprintf(out->detail, sizeof(out->detail), "%s", fl_errmsg(NULL));
		return 0;
	}
	if (fd < 0)
		return fd;
	r = strict_scan(NULL, path, fd, &sc);
	fl__sys.close(fd);
	if (r == -EPROTO) {
		out->state = FL_HOLDER_MALFORMED;
		snprintf(out->detail, sizeof(out->detail), "%s", fl_errmsg(NULL));
		return 0;
	}
	if (r != 0)
		return r;
	if (sc.n == 0) {
		out->state = FL_HOLDER_FREE;
		strict_scan_free(&sc);
		return 0;
	}
	c = strict_owner(&sc);
	out->pid = c->pid;
	snprintf(out->host, sizeof(out->host), "%s", c->host);
	snprintf(out->start, sizeof(out->start), "%.95s", c->start);
	out->age = fl__now_wall() - c->mtime;
	out->heartbeat_age = -1;
	out->writers = 1;
	fl__hostname(me, sizeof(me));
	out->same_host = strcmp(me, c->host) == 0;
	dead = fl__owner_is_stale(c->pid, c->host, c->start);
	if (out->same_host) {
		int a = fl__pid_alive(c->pid);
		out->alive = a < 0 ? -1 : (a && !dead);
	} else {
		out->alive = -1;
	}
	/* Informational only: strict never breaks a claim because of this. */
	out->state = dead ? FL_HOLDER_STALE : FL_HOLDER_HELD;
	len = (size_t)snprintf(out->detail, sizeof(out->detail), "%s claim %s%s",
			       c->held ? "held" : "intent (doorway in progress)", c->name,
			       dead ? "; owner is dead, break it by name" : "");
	if (sc.n > 2 && len < sizeof(out->detail))
		snprintf(out->detail + len, sizeof(out->detail) - len, "; %zu claims in all", sc.n);
	strict_scan_free(&sc);
	return 0;
}

/* Python's force_break name check: one public basename. */
static int strict_name_ok(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
	       strchr(name, '\\') == NULL;
}

static int strict_break(const char *path, const struct fl_options *opt, unsigned flags,
			const char *name)
{
	struct strict_scan sc = { 0 };
	const struct strict_claim *c = NULL;
	int fd, r;

	(void)opt;
	if (name != NULL && !strict_name_ok(name))
		return fl__errf(NULL, -EINVAL,
				"%s: claim name must be one public claim basename, "
				"got '%s' [strict]",
				path, name);
	fd = strict_open_claims_ro(path);
	if (fd == -ENOENT)
		return fl__errf(NULL, -ENOENT, "%s: no strict claims to break [strict]", path);
	if (fd < 0)
		return fd;
	if (name == NULL) {
		/* List what is there so the operator can name it. */
		r = strict_scan(NULL, path, fd, &sc);
		fl__sys.close(fd);
		if (r != 0)
			return r;
		if (sc.n == 0) {
			strict_scan_free(&sc);
			return fl__errf(NULL, -ENOENT, "%s: no strict claims to break [strict]",
					path);
		}
		c = strict_owner(&sc);
		r = fl__errf(NULL, (flags & FL_FORCE) ? -EINVAL : -EBUSY,
			     "%s: strict claims are never broken without a name; %zu claim(s), "
			     "e.g. '%s' by pid %d on %s: pass that name with FL_FORCE [strict]",
			     path, sc.n, c->name, (int)c->pid, c->host);
		strict_scan_free(&sc);
		return r;
	}
	{
		/* The entry must exist exactly (no lookup games through odd names). */
		struct dirent *de;
		int dfd = fl__sys.openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = dfd >= 0 ? fl__sys.fdopendir(dfd) : NULL;
		int found = 0;

		if (d == NULL) {
			r = fl__err(NULL, -errno, "opendir", path);
			if (dfd >= 0)
				fl__sys.close(dfd);
			fl__sys.close(fd);
			return r;
		}
		while (!found && (de = fl__sys.readdir(d)) != NULL)
			found = strcmp(de->d_name, name) == 0;
		fl__sys.closedir(d);
		if (!found) {
			fl__sys.close(fd);
			return fl__errf(NULL, -ENOENT, "%s: no claim named '%s' [strict]", path,
					name);
		}
	}
	{
		struct strict_claim one;
		struct strict_scan tmp = { 0 };
		int held;

		memset(&one, 0, sizeof(one));
		if (!(flags & FL_FORCE)) {
			/* Without force: only a claim whose owner is provably dead here. */
			if (!strict_parse_name(name, &held, one.token) ||
			    strict_load_claim(NULL, path, fd, name, &tmp) != 0 || tmp.n != 1 ||
			    !fl__owner_is_stale(tmp.v[0].pid, tmp.v[0].host, tmp.v[0].start)) {
				r = fl__errf(
				    NULL, -EBUSY,
				    "%s: claim '%s' is not provably dead (its owner is alive, "
				    "on another host, or unreadable); strict claims are "
				    "removed only with FL_FORCE [strict]",
				    path, name);
				strict_scan_free(&tmp);
				fl__sys.close(fd);
				return r;
			}
			strict_scan_free(&tmp);
		}
		if (fl__sys.unlinkat(fd, name, 0) != 0) {
			r = fl__err(NULL, -errno, "unlink", name);
			fl__sys.close(fd);
			return r;
		}
		/* The same owner's other claim goes too, or it would keep blocking. */
		if (strict_parse_name(name, &held, one.token)) {
			char sib[STRICT_NAME_MAX];
			snprintf(sib, sizeof(sib), "%s-v1-%s.claim", held ? "intent" : "held",
				 one.token);
			fl__sys.unlinkat(fd, sib, 0);
		}
	}
	fl__sys.close(fd);
	return 0;
}

const struct fl_backend fl__backend_strict = {
	.version = 1,
	.name = "strict",
	.kind = FL_STRICT,
	.caps = 0,
	.hold_size = sizeof(struct strict_hold),
	.default_poll = 0.05,
	.setup = strict_setup,
	.attempt = strict_attempt,
	.wait = strict_wait,
	.release = strict_release,
	.drop = strict_drop,
	.inspect = strict_inspect,
	.brk = strict_break,
	.adopt = strict_adopt,
};
