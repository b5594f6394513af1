/* SPDX-License-Identifier: MIT */
/*
 * nfsfuse -- a minimal NFSv3 client mounted through FUSE, for the NFS tier of
 * the cluster suite.
 *
 *   nfsfuse [--stats=FILE] nfs://SERVER/EXPORT?version=3 MOUNTPOINT [FUSE OPTIONS]
 *
 * Every file system call becomes NFSv3 RPCs through libnfs, one request at a
 * time (single-threaded, as a hard mount with one slot).  Nothing is cached
 * here: the only caches are FUSE's attribute and entry timeouts
 * (-o attr_timeout=S,entry_timeout=S,negative_timeout=S), which play the
 * part of the NFS client's acregmin/acdirmin.
 *
 * What the real wire shows and a pass-through file system never does:
 *  - O_CREAT|O_EXCL is a GUARDED CREATE: the server decides the race.
 *  - utimensat/futimens with UTIME_NOW is SETATTR with SET_TO_SERVER_TIME: the
 *    server's clock stamps the heartbeat, not the (maybe skewed) client's.
 *  - An open file is a file handle.  When another client renames over the
 *    name or unlinks it, the server forgets the handle and the next READ,
 *    WRITE or GETATTR through it fails with NFS3ERR_STALE, which the caller
 *    sees as ESTALE, as from the kernel client (which retries only lookups
 *    by name, as this client does: a path is resolved afresh on every call).
 *
 * --stats=FILE: the number of ESTALE replies met, the ones retried by name
 * here, and the ones passed to callers, rewritten after each ESTALE and at
 * unmount ("estale_met N retried N returned N"); odd errors go to FILE.log.
 *
 * Limits: futimens on an open file acts on the name the mount last knew for
 * it (FUSE's path API), byte-range and flock locks stay local to the mount
 * (no NLM: the world the library is written for), no special files.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <fuse.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

/* libnfs 4.0 declares the handle behind nfs_get_fh() but keeps its layout
 * private; this is that layout (libnfs-private.h), stable since 1.x. */
struct nfs_fh {
	int len;
	char *val;
};

static struct nfs_context *nfs;
static const char *stats_path;
static unsigned long n_met, n_retried, n_returned;

static FILE *log_f;

static void __attribute__((format(printf, 1, 2))) nf_log(const char *fmt, ...)
{
	va_list ap;

	if (!log_f)
		return;
	va_start(ap, fmt);
	vfprintf(log_f, fmt, ap);
	va_end(ap);
	fputc('\n', log_f);
	fflush(log_f);
}

static void stats_write(void)
{
	FILE *f;
	char tmp[4096];

	if (!stats_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "estale_met %lu retried %lu returned %lu\n", n_met, n_retried, n_returned);
	if (fclose(f) == 0)
		rename(tmp, stats_path);
}

/* Acts as the caller: the server checks permissions and owns new files. */
static void as_caller(void)
{
	struct fuse_context *c = fuse_get_context();

	if (c) {
		nfs_set_uid(nfs, (int)c->uid);
		nfs_set_gid(nfs, (int)c->gid);
	}
}

/* A call by name is resolved from the export's root each time; it meets
 * ESTALE when the file it found by LOOKUP was replaced or removed before the
 * call's next RPC on that handle.  It is tried again, twice at most, as the
 * kernel client redoes such a lookup.  A call on an open file's handle cannot
 * be (the file it opened is gone): its ESTALE goes to the caller.  EFAULT,
 * libnfs's answer to a reply it could not use, is logged to FILE.log. */
#define BY_NAME(expr)                                                   \
	({                                                              \
		int r_ = -ESTALE, try_;                                 \
		as_caller();                                            \
		for (try_ = 0; try_ < 3 && r_ == -ESTALE; try_++) {     \
			r_ = (expr);                                    \
			if (r_ == -EFAULT)                              \
				nf_log("%s: %d: %s", #expr, r_, nfs_get_error(nfs)); \
			if (r_ == -ESTALE) {                            \
				n_met++;                                \
				if (try_ < 2)                           \
					n_retried++;                    \
				else                                    \
					n_returned++;                   \
				stats_write();                          \
			}                                               \
		}                                                       \
		r_;                                                     \
	})

#define BY_HANDLE(expr)                                                 \
	({                                                              \
		int r_;                                                 \
		as_caller();                                            \
		r_ = (expr);                                            \
		if (r_ == -EFAULT)                                      \
			nf_log("%s: %d: %s", #expr, r_, nfs_get_error(nfs)); \
		if (r_ == -ESTALE) {                                    \
			n_met++;                                        \
			n_returned++;                                   \
			stats_write();                                  \
		}                                                       \
		r_;                                                     \
	})

static struct nfsfh *fh_of(struct fuse_file_info *fi)
{
	return (struct nfsfh *)(uintptr_t)fi->fh;
}

static void to_stat(const struct nfs_stat_64 *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->nfs_ino;
	st->st_mode = n->nfs_mode;
	st->st_nlink = n->nfs_nlink;
	st->st_uid = n->nfs_uid;
	st->st_gid = n->nfs_gid;
	st->st_rdev = n->nfs_rdev;
	st->st_size = n->nfs_size;
	st->st_blksize = n->nfs_blksize;
	st->st_blocks = n->nfs_blocks;
	st->st_atim.tv_sec = n->nfs_atime;
	st->st_atim.tv_nsec = n->nfs_atime_nsec;
	st->st_mtim.tv_sec = n->nfs_mtime;
	st->st_mtim.tv_nsec = n->nfs_mtime_nsec;
	st->st_ctim.tv_sec = n->nfs_ctime;
	st->st_ctim.tv_nsec = n->nfs_ctime_nsec;
}

/*
 * Calls on an open file go to the wire as raw NFSv3 RPCs on its handle, so
 * that the server's status reaches the caller exactly: libnfs 4.0's pread
 * turns NFS3ERR_STALE into EFAULT.
 */
struct raw_call {
	int done;
	int status;  /* 0 or -errno */
	char *buf;   /* READ: where the data goes */
	size_t n;    /* READ/WRITE: bytes moved */
	struct stat *st; /* GETATTR */
};

static int nfs3_errno(nfsstat3 st)
{
	switch (st) {
	case NFS3_OK: return 0;
	case NFS3ERR_PERM: return -EPERM;
	case NFS3ERR_NOENT: return -ENOENT;
	case NFS3ERR_ACCES: return -EACCES;
	case NFS3ERR_EXIST: return -EEXIST;
	case NFS3ERR_NOTDIR: return -ENOTDIR;
	case NFS3ERR_ISDIR: return -EISDIR;
	case NFS3ERR_INVAL: return -EINVAL;
	case NFS3ERR_FBIG: return -EFBIG;
	case NFS3ERR_NOSPC: return -ENOSPC;
	case NFS3ERR_ROFS: return -EROFS;
	case NFS3ERR_DQUOT: return -EDQUOT;
	case NFS3ERR_STALE:
	case NFS3ERR_BADHANDLE: return -ESTALE;
	default: return -EIO;
	}
}

/* Runs the queued call to completion (a hard mount: no timeout). */
static int raw_wait(struct raw_call *c)
{
	while (!c->done) {
		struct pollfd p = { .fd = nfs_get_fd(nfs), .events = (short)nfs_which_events(nfs) };

		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			return -errno;
		if (nfs_service(nfs, p.revents) < 0)
			return -EIO;
	}
	return c->status;
}

static nfs_fh3 fh3_of(struct nfsfh *fh)
{
	struct nfs_fh *f = nfs_get_fh(fh);
	nfs_fh3 r;

	r.data.data_len = (u_int)f->len;
	r.data.data_val = f->val;
	return r;
}

static void setattr_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct raw_call *c = priv;
	SETATTR3res *res = data;

	(void)rpc;
	c->status = status != RPC_STATUS_SUCCESS ? -EIO : nfs3_errno(res->status);
	c->done = 1;
}

static void read_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct raw_call *c = priv;
	READ3res *res = data;

	(void)rpc;
	if (status != RPC_STATUS_SUCCESS) {
		c->status = -EIO;
	} else if (res->status != NFS3_OK) {
		c->status = nfs3_errno(res->status);
	} else {
		size_t len = res->READ3res_u.resok.data.data_len;

		if (len > c->n)
			len = c->n;
		memcpy(c->buf, res->READ3res_u.resok.data.data_val, len);
		c->n = len;
	}
	c->done = 1;
}

static void write_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct raw_call *c = priv;
	WRITE3res *res = data;

	(void)rpc;
	if (status != RPC_STATUS_SUCCESS)
		c->status = -EIO;
	else if (res->status != NFS3_OK)
		c->status = nfs3_errno(res->status);
	else
		c->n = res->WRITE3res_u.resok.count;
	c->done = 1;
}

static void fattr_to_stat(const fattr3 *a, struct stat *st)
{
	static const mode_t type[] = { 0, S_IFREG, S_IFDIR, S_IFBLK, S_IFCHR, S_IFLNK, S_IFSOCK, S_IFIFO };

	memset(st, 0, sizeof(*st));
	st->st_ino = a->fileid;
	st->st_mode = (a->type < 8 ? type[a->type] : 0) | (a->mode & 07777);
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((a->used + 511) / 512);
	st->st_atim.tv_sec = a->atime.seconds;
	st->st_atim.tv_nsec = a->atime.nseconds;
	st->st_mtim.tv_sec = a->mtime.seconds;
	st->st_mtim.tv_nsec = a->mtime.nseconds;
	st->st_ctim.tv_sec = a->ctime.seconds;
	st->st_ctim.tv_nsec = a->ctime.nseconds;
}

static void getattr_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct raw_call *c = priv;
	GETATTR3res *res = data;

	(void)rpc;
	if (status != RPC_STATUS_SUCCESS)
		c->status = -EIO;
	else if (res->status != NFS3_OK)
		c->status = nfs3_errno(res->status);
	else
		fattr_to_stat(&res->GETATTR3res_u.resok.obj_attributes, c->st);
	c->done = 1;
}

static int raw_getattr(struct nfsfh *fh, struct stat *st)
{
	struct raw_call c = { .st = st };
	GETATTR3args a;

	a.object = fh3_of(fh);
	if (rpc_nfs3_getattr_async(nfs_get_rpc_context(nfs), getattr_cb, &a, &c) != 0)
		return -ENOMEM;
	return raw_wait(&c);
}

/* A short READ before EOF is continued, so FUSE never mistakes it for EOF. */
static int raw_read(struct nfsfh *fh, char *buf, size_t size, uint64_t off)
{
	size_t got = 0;

	while (got < size) {
		struct raw_call c = { .buf = buf + got, .n = size - got };
		READ3args a;
		int r;

		a.file = fh3_of(fh);
		a.offset = off + got;
		a.count = (count3)(size - got);
		if (rpc_nfs3_read_async(nfs_get_rpc_context(nfs), read_cb, &a, &c) != 0)
			return -ENOMEM;
		r = raw_wait(&c);
		if (r < 0)
			return got ? (int)got : r;
		if (c.n == 0)
			break;
		got += c.n;
	}
	return (int)got;
}

/* UNSTABLE, as the kernel client writes: the data is in the server's
 * page cache, where every other client reads it; fsync sends COMMIT. */
static int raw_write(struct nfsfh *fh, const char *buf, size_t size, uint64_t off)
{
	size_t put = 0;

	while (put < size) {
		struct raw_call c = { 0 };
		WRITE3args a;
		int r;

		a.file = fh3_of(fh);
		a.offset = off + put;
		a.count = (count3)(size - put);
		a.stable = UNSTABLE;
		a.data.data_len = (u_int)(size - put);
		a.data.data_val = (char *)(uintptr_t)(buf + put);
		if (rpc_nfs3_write_async(nfs_get_rpc_context(nfs), write_cb, &a, &c) != 0)
			return -ENOMEM;
		r = raw_wait(&c);
		if (r < 0)
			return put ? (int)put : r;
		if (c.n == 0)
			return -EIO;
		put += c.n;
	}
	return (int)put;
}

static void *nf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	/* Opens revalidate nothing beyond the timeouts; the page cache is
	 * dropped at every open (no kernel_cache, no auto_cache). */
	cfg->kernel_cache = 0;
	return NULL;
}

static int nf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct nfs_stat_64 n;
	int r;

	if (fi)
		return BY_HANDLE(raw_getattr(fh_of(fi), st));
	r = BY_NAME(nfs_lstat64(nfs, path, &n));
	if (r == 0)
		to_stat(&n, st);
	return r;
}

static int nf_open(const char *path, struct fuse_file_info *fi)
{
	struct nfsfh *fh = NULL;
	/* FUSE passes the offset of every write: no O_APPEND on the wire. */
	int flags = fi->flags & (O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC);
	int r = BY_NAME(nfs_open(nfs, path, flags, &fh));

	if (r == 0)
		fi->fh = (uintptr_t)fh;
	return r;
}

static int nf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct nfsfh *fh = NULL;
	/* O_EXCL makes libnfs send a GUARDED CREATE (UNCHECKED otherwise). */
	int flags = fi->flags & (O_ACCMODE | O_EXCL | O_TRUNC | O_SYNC | O_DSYNC);
	int r = BY_NAME(nfs_create(nfs, path, flags, (int)(mode & 07777), &fh));

	if (r == 0)
		fi->fh = (uintptr_t)fh;
	return r;
}

static int nf_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	nfs_close(nfs, fh_of(fi));
	return 0;
}

static int nf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	return BY_HANDLE(raw_read(fh_of(fi), buf, size, (uint64_t)off));
}

static int nf_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	return BY_HANDLE(raw_write(fh_of(fi), buf, size, (uint64_t)off));
}

static int nf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	return BY_HANDLE(nfs_fsync(nfs, fh_of(fi)));
}

static int nf_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0; /* writes are synchronous RPCs already */
}

static int nf_mkdir(const char *path, mode_t mode)
{
	return BY_NAME(nfs_mkdir2(nfs, path, (int)(mode & 07777)));
}

static int nf_rmdir(const char *path)
{
	return BY_NAME(nfs_rmdir(nfs, path));
}

static int nf_unlink(const char *path)
{
	return BY_NAME(nfs_unlink(nfs, path));
}

static int nf_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags)
		return -EINVAL; /* NFSv3 has no RENAME_NOREPLACE/EXCHANGE */
	return BY_NAME(nfs_rename(nfs, from, to));
}

static int nf_link(const char *from, const char *to)
{
	return BY_NAME(nfs_link(nfs, from, to));
}

static int nf_symlink(const char *target, const char *path)
{
	return BY_NAME(nfs_symlink(nfs, target, path));
}

static int nf_readlink(const char *path, char *buf, size_t size)
{
	int r;

	if (size == 0)
		return -EINVAL;
	memset(buf, 0, size);
	r = BY_NAME(nfs_readlink(nfs, path, buf, (int)size - 1));
	return r < 0 ? r : 0;
}

static int nf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (fi)
		return BY_HANDLE(nfs_fchmod(nfs, fh_of(fi), (int)(mode & 07777)));
	return BY_NAME(nfs_chmod(nfs, path, (int)(mode & 07777)));
}

static int nf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct nfs_stat_64 n;
	int r;

	/* -1 keeps the current owner or group. */
	if (uid == (uid_t)-1 || gid == (gid_t)-1) {
		r = fi ? BY_HANDLE(nfs_fstat64(nfs, fh_of(fi), &n)) : BY_NAME(nfs_lstat64(nfs, path, &n));
		if (r < 0)
			return r;
		if (uid == (uid_t)-1)
			uid = (uid_t)n.nfs_uid;
		if (gid == (gid_t)-1)
			gid = (gid_t)n.nfs_gid;
	}
	if (fi)
		return BY_HANDLE(nfs_fchown(nfs, fh_of(fi), (int)uid, (int)gid));
	return BY_NAME(nfs_lchown(nfs, path, (int)uid, (int)gid));
}

static int nf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi)
		return BY_HANDLE(nfs_ftruncate(nfs, fh_of(fi), (uint64_t)size));
	return BY_NAME(nfs_truncate(nfs, path, (uint64_t)size));
}

static void set_time(time_how *how, nfstime3 *t, const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_OMIT) {
		*how = DONT_CHANGE;
	} else if (ts->tv_nsec == UTIME_NOW) {
		*how = SET_TO_SERVER_TIME;
	} else {
		*how = SET_TO_CLIENT_TIME;
		t->seconds = (u_int)ts->tv_sec;
		t->nseconds = (u_int)ts->tv_nsec;
	}
}

static int setattr_times(struct nfsfh *fh, const struct timespec tv[2])
{
	struct raw_call c = { 0 };
	SETATTR3args a;

	memset(&a, 0, sizeof(a));
	a.object = fh3_of(fh);
	set_time(&a.new_attributes.atime.set_it, &a.new_attributes.atime.set_atime_u.atime, &tv[0]);
	set_time(&a.new_attributes.mtime.set_it, &a.new_attributes.mtime.set_mtime_u.mtime, &tv[1]);
	if (rpc_nfs3_setattr_async(nfs_get_rpc_context(nfs), setattr_cb, &a, &c) != 0)
		return -ENOMEM;
	return raw_wait(&c);
}

static int nf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	struct nfsfh *fh = NULL;
	struct nfs_stat_64 n;
	int r;

	if (!tv)
		tv = now;
	if (fi)
		return BY_HANDLE(setattr_times(fh_of(fi), tv));
	r = BY_NAME(nfs_lstat64(nfs, path, &n));
	if (r < 0)
		return r;
	if (S_ISREG(n.nfs_mode)) {
		int try;

		/* By name: a file replaced between the open and the SETATTR is
		 * looked up again, as for any call by name. */
		for (try = 0; try < 3; try++) {
			if (BY_NAME(nfs_open(nfs, path, O_RDONLY, &fh)) != 0)
				break;
			r = setattr_times(fh, tv);
			nfs_close(nfs, fh);
			if (r != -ESTALE)
				return r;
			n_met++;
			if (try < 2)
				n_retried++;
			else
				n_returned++;
			stats_write();
		}
		if (try == 3)
			return -ESTALE;
	}
	/* Not a readable regular file: libnfs's utimes by name, with the
	 * client's clock standing in for "now" and the old value for OMIT. */
	{
		struct timeval t[2];
		int i;

		for (i = 0; i < 2; i++) {
			if (tv[i].tv_nsec == UTIME_NOW) {
				gettimeofday(&t[i], NULL);
			} else if (tv[i].tv_nsec == UTIME_OMIT) {
				t[i].tv_sec = (time_t)(i ? n.nfs_mtime : n.nfs_atime);
				t[i].tv_usec = (suseconds_t)((i ? n.nfs_mtime_nsec : n.nfs_atime_nsec) / 1000);
			} else {
				t[i].tv_sec = tv[i].tv_sec;
				t[i].tv_usec = tv[i].tv_nsec / 1000;
			}
		}
		return BY_NAME(nfs_lutimes(nfs, path, t));
	}
}

static int nf_statfs(const char *path, struct statvfs *sv)
{
	return BY_NAME(nfs_statvfs(nfs, path, sv));
}

static int nf_opendir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0;
}

static int nf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct nfsdir *d = NULL;
	struct nfsdirent *e;
	int r;

	(void)off;
	(void)fi;
	(void)flags;
	r = BY_NAME(nfs_opendir(nfs, path, &d));
	if (r < 0)
		return r;
	while ((e = nfs_readdir(nfs, d)) != NULL) {
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = e->inode;
		st.st_mode = e->mode;
		if (fill(buf, e->name, &st, 0, 0))
			break;
	}
	nfs_closedir(nfs, d);
	return 0;
}

static int nf_access(const char *path, int mask)
{
	return BY_NAME(nfs_access(nfs, path, mask));
}

static void nf_destroy(void *priv)
{
	(void)priv;
	stats_write();
	if (stats_path)
		fprintf(stderr, "nfsfuse: estale_met %lu retried %lu returned %lu\n", n_met,
			n_retried, n_returned);
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
}

static const struct fuse_operations ops = {
	.init = nf_init,
	.destroy = nf_destroy,
	.getattr = nf_getattr,
	.open = nf_open,
	.create = nf_create,
	.release = nf_release,
	.read = nf_read,
	.write = nf_write,
	.flush = nf_flush,
	.fsync = nf_fsync,
	.mkdir = nf_mkdir,
	.rmdir = nf_rmdir,
	.unlink = nf_unlink,
	.rename = nf_rename,
	.link = nf_link,
	.symlink = nf_symlink,
	.readlink = nf_readlink,
	.chmod = nf_chmod,
	.chown = nf_chown,
	.truncate = nf_truncate,
	.utimens = nf_utimens,
	.statfs = nf_statfs,
	.opendir = nf_opendir,
	.readdir = nf_readdir,
	.access = nf_access,
};

int main(int argc, char **argv)
{
	struct nfs_url *url;
	char **fargv;
	int i, fargc = 0;
	static char opt_single[] = "-s", opt_name[] = "-ofsname=nfsfuse,subtype=nfs3";
	const char *urls;
	char *prog = argv[0];

	if (argc >= 2 && strncmp(argv[1], "--stats=", 8) == 0) {
		stats_path = argv[1] + 8;
		argv++;
		argc--;
	}
	if (argc < 3 || strncmp(argv[1], "nfs://", 6) != 0) {
		fprintf(stderr, "usage: nfsfuse [--stats=FILE] nfs://SERVER/EXPORT?version=3 "
				"MOUNTPOINT [FUSE OPTIONS]\n");
		return 64;
	}
	urls = argv[1];
	nfs = nfs_init_context();
	if (!nfs) {
		fprintf(stderr, "nfsfuse: nfs_init_context failed\n");
		return 1;
	}
	url = nfs_parse_url_dir(nfs, urls);
	if (!url) {
		fprintf(stderr, "nfsfuse: bad URL %s: %s\n", urls, nfs_get_error(nfs));
		return 1;
	}
	if (nfs_mount(nfs, url->server, url->path) != 0) {
		fprintf(stderr, "nfsfuse: mount %s failed: %s\n", urls, nfs_get_error(nfs));
		return 1;
	}
	nfs_destroy_url(url);
	if (stats_path) {
		char lp[4096];

		snprintf(lp, sizeof(lp), "%s.log", stats_path);
		log_f = fopen(lp, "a");
	}
	stats_write();
	fargv = calloc((size_t)argc + 4, sizeof(*fargv));
	if (!fargv)
		return 1;
	fargv[fargc++] = prog;
	fargv[fargc++] = opt_single; /* one RPC at a time: a libnfs context is not thread-safe */
	fargv[fargc++] = opt_name;
	for (i = 2; i < argc; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &ops, NULL);
}
