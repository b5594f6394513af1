/* SPDX-License-Identifier: MIT */
/*
 * fl-storm.c -- SIGKILL storm.
 *
 *   fl-storm DIR SECONDS [KIND...]
 *
 * 8 worker processes take and release locks of every kind (one lock path
 * per kind in DIR) in a loop, while this process SIGKILLs a random worker
 * that is holding a lock every few milliseconds and starts a new one in its
 * place.  A worker that holds a lock creates a witness file for that kind
 * with O_EXCL, writes its pid into it, and removes it before releasing.
 * Finding another worker's witness means two holders at once -- unless that
 * worker was SIGKILLed while holding (the killer marks a victim in shared
 * memory before it sends the signal; a killed process runs no more code, so
 * its hold is over), in which case the witness is cleared.
 *
 * Prints, per kind, the acquisitions, the holders killed while holding, the
 * timeouts and errors, and the overlaps; exits 1 on any overlap, or when a
 * kind made no progress after its first kill (2).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "filelock.h"

#define NWORK 8
#define MAXK 8

struct kstat {
	atomic_long acq, killed, timeouts, errors, overlaps, acq_after_kill;
	atomic_int had_kill;
};

struct slot {
	atomic_int pid;
	atomic_int holding; /* kind index + 1 while holding */
	atomic_int killed;
};

struct shared {
	atomic_int stop;
	struct slot w[NWORK];
	struct kstat k[MAXK];
	char errmsg[MAXK][200];
};

static struct shared *sh;
static const char *dir;
static int nk;
static enum fl_kind kinds[MAXK];
static const char *knames[MAXK];

static const struct {
	const char *name;
	enum fl_kind kind;
} known[] = {
	{"file", FL_FILE}, {"unix", FL_UNIX}, {"soft", FL_SOFT}, {"strict", FL_STRICT},
	{"lease", FL_LEASE}, {"rw", FL_RW}, {"soft-rw", FL_SOFT_RW},
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int slot_of_pid(pid_t pid)
{
	for (int i = 0; i < NWORK; i++)
		if (atomic_load(&sh->w[i].pid) == pid)
			return i;
	return -1;
}

/* Creates the witness for kind ki; returns 0, or 1 on an overlap. */
static int witness_enter(int ki, const char *wpath)
{
	for (int tries = 0; tries < 100; tries++) {
		int fd = open(wpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		char buf[32];
		ssize_t n;

		if (fd >= 0) {
			n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
			if (write(fd, buf, (size_t)n) != n) {
				close(fd);
				continue;
			}
			close(fd);
			return 0;
		}
		fd = open(wpath, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* removed meanwhile */
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue; /* being written: a dying holder's, or a race; look again */
		buf[n] = '\0';
		pid_t other = (pid_t)atoi(buf);
		int s = slot_of_pid(other);
		if (s < 0 || atomic_load(&sh->w[s].killed)) {
			unlink(wpath); /* a killed holder's: its hold ended with it */
			continue;
		}
		if (other == getpid())
			continue;
		atomic_fetch_add(&sh->k[ki].overlaps, 1);
		fprintf(stderr, "OVERLAP %s: pid %d holds while pid %d holds\n", knames[ki],
			(int)getpid(), (int)other);
		return 1;
	}
	return 0;
}

static void worker(int me)
{
	fl_lock *lk[MAXK] = {0};
	unsigned seed = (unsigned)getpid() * 2654435761u;

	for (int i = 0; i < nk; i++) {
		struct fl_options o;
		char path[4096];
		fl_options_init(&o);
		o.flags |= FL_NO_SINGLETON;
		o.poll_interval = 0.005;
		if (kinds[i] == FL_LEASE)
			o.lease_duration = 0.6;
		if (kinds[i] == FL_SOFT_RW) {
			o.heartbeat_interval = 0.1;
			o.stale_threshold = 0.4;
			o.poll_interval = 0.01;
		}
		snprintf(path, sizeof(path), "%s/%s.lock", dir, knames[i]);
		if (fl_open(&lk[i], path, kinds[i], &o) != 0) {
			snprintf(sh->errmsg[i], sizeof(sh->errmsg[i]), "%s", fl_errmsg(NULL));
			_exit(3);
		}
	}
	while (!atomic_load(&sh->stop)) {
		int ki = (int)(rand_r(&seed) % (unsigned)nk), r;
		char wpath[4096];

		r = fl_acquire(lk[ki], FL_EXCLUSIVE, 1.0);
		if (r == -ETIMEDOUT) {
			atomic_fetch_add(&sh->k[ki].timeouts, 1);
			continue;
		}
		if (r != 0) {
			atomic_fetch_add(&sh->k[ki].errors, 1);
			snprintf(sh->errmsg[ki], sizeof(sh->errmsg[ki]), "%s", fl_errmsg(lk[ki]));
			continue;
		}
		snprintf(wpath, sizeof(wpath), "%s/%s.witness", dir, knames[ki]);
		atomic_store(&sh->w[me].holding, ki + 1);
		witness_enter(ki, wpath);
		atomic_fetch_add(&sh->k[ki].acq, 1);
		if (atomic_load(&sh->k[ki].had_kill))
			atomic_fetch_add(&sh->k[ki].acq_after_kill, 1);
		/* Work while holding: 0..2 ms. */
		struct timespec ts = {0, (long)(rand_r(&seed) % 2000) * 1000};
		nanosleep(&ts, NULL);
		unlink(wpath);
		atomic_store(&sh->w[me].holding, 0);
		if (fl_release(lk[ki], 0) != 0) {
			atomic_fetch_add(&sh->k[ki].errors, 1);
			snprintf(sh->errmsg[ki], sizeof(sh->errmsg[ki]), "%s", fl_errmsg(lk[ki]));
		}
	}
	for (int i = 0; i < nk; i++)
		fl_close(lk[i]);
	_exit(0);
}

/* A strict lock is never reclaimed by itself (fail-closed): do what an
 * operator does, break the claims of the dead holder by name.  fl_break
 * without FL_FORCE removes only a provably stale (dead) holder's claim. */
static void strict_recover(const char *kname)
{
	char path[4096], cdir[4200];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s.lock", dir, kname);
	snprintf(cdir, sizeof(cdir), "%s.filelock/claims", path);
	d = opendir(cdir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			(void)fl_break(path, FL_STRICT, NULL, 0, e->d_name);
	closedir(d);
}

static void spawn(int i)
{
	pid_t pid;

	/* Forget the dead worker's pid before clearing its killed mark, so that
	 * its witness never looks like a live holder's. */
	atomic_store(&sh->w[i].pid, 0);
	atomic_store(&sh->w[i].holding, 0);
	atomic_store(&sh->w[i].killed, 0);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(99);
	}
	if (pid == 0) {
		atomic_store(&sh->w[i].pid, getpid());
		worker(i);
	}
	atomic_store(&sh->w[i].pid, pid);
}

int main(int argc, char **argv)
{
	double secs, end;
	long kills = 0, total_overlaps = 0;
	unsigned seed = (unsigned)time(NULL);
	int bad = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: fl-storm DIR SECONDS [KIND...]\n");
		return 64;
	}
	dir = argv[1];
	secs = atof(argv[2]);
	for (int i = 3; i < argc || (argc == 3 && nk < (int)(sizeof(known) / sizeof(known[0])));
	     i++) {
		const char *want = argc == 3 ? known[nk].name : argv[i];
		int found = 0;
		for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
			if (!strcmp(known[j].name, want)) {
				kinds[nk] = known[j].kind;
				knames[nk] = known[j].name;
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "fl-storm: unknown kind %s\n", want);
			return 64;
		}
		nk++;
		if (argc == 3 && nk == (int)(sizeof(known) / sizeof(known[0])))
			break;
	}
	/* Only the kinds this build has. */
	for (int i = 0; i < nk;) {
		char path[4096];
		fl_lock *lk = NULL;
		snprintf(path, sizeof(path), "%s/%s.probe", dir, knames[i]);
		if (fl_open(&lk, path, kinds[i], NULL) == 0) {
			fl_close(lk);
			i++;
			continue;
		}
		printf("(%s not built: %s)\n", knames[i], fl_errmsg(NULL));
		memmove(&kinds[i], &kinds[i + 1], sizeof(kinds[0]) * (size_t)(nk - i - 1));
		memmove(&knames[i], &knames[i + 1], sizeof(knames[0]) * (size_t)(nk - i - 1));
		nk--;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 99;
	memset(sh, 0, sizeof(*sh));
	alarm((unsigned)secs + 120); /* a hang fails */
	for (int i = 0; i < NWORK; i++)
		spawn(i);
	end = now() + secs;
	while (now() < end) {
		struct timespec ts = {0, 2 * 1000 * 1000};
		int i = (int)(rand_r(&seed) % NWORK), st;
		int h = 0;

		/* A kill at most every ~2 ms, of the first holder found from a
		 * random worker on. */
		nanosleep(&ts, NULL);
		for (int j = 0; j < NWORK && h == 0; j++) {
			i = (i + 1) % NWORK;
			h = atomic_load(&sh->w[i].holding);
		}
		if (h == 0)
			continue; /* only holders are killed */
		atomic_store(&sh->w[i].killed, 1);
		kill(atomic_load(&sh->w[i].pid), SIGKILL);
		waitpid(atomic_load(&sh->w[i].pid), &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
			fprintf(stderr, "fl-storm: a worker could not open its locks\n");
			return 99;
		}
		atomic_fetch_add(&sh->k[h - 1].killed, 1);
		atomic_store(&sh->k[h - 1].had_kill, 1);
		kills++;
		if (kinds[h - 1] == FL_STRICT)
			strict_recover(knames[h - 1]);
		spawn(i);
	}
	atomic_store(&sh->stop, 1);
	for (int i = 0; i < NWORK; i++) {
		int st;
		waitpid(atomic_load(&sh->w[i].pid), &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "fl-storm: worker %d ended with status %d\n", i, st);
			bad = 1;
		}
	}
	printf("%-8s %8s %8s %8s %8s %8s %9s\n", "kind", "acquired", "killed", "after-k", "timeout",
	       "errors", "overlaps");
	for (int i = 0; i < nk; i++) {
		struct kstat *k = &sh->k[i];
		printf("%-8s %8ld %8ld %8ld %8ld %8ld %9ld\n", knames[i], atomic_load(&k->acq),
		       atomic_load(&k->killed), atomic_load(&k->acq_after_kill),
		       atomic_load(&k->timeouts), atomic_load(&k->errors),
		       atomic_load(&k->overlaps));
		if (sh->errmsg[i][0])
			printf("  last error [%s]: %s\n", knames[i], sh->errmsg[i]);
		total_overlaps += atomic_load(&k->overlaps);
		if (atomic_load(&k->had_kill) && atomic_load(&k->acq_after_kill) == 0) {
			printf("  NO PROGRESS [%s] after its first kill\n", knames[i]);
			bad = bad ? bad : 2;
		}
	}
	printf("%.0f s, %d workers, %ld holders SIGKILLed, %ld overlaps\n", secs, NWORK, kills,
	       total_overlaps);
	if (total_overlaps)
		return 1;
	return bad;
}
