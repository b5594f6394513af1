/* SPDX-License-Identifier: MIT */
/*
 * test-heartbeat -- the process-wide heartbeat thread (lib/heartbeat.c):
 * beats at the interval, one thread for many markers, transient failures
 * retried then reported, proven losses reported at once, remove waits for a
 * running beat, the thread blocks every signal and leaves when idle, and a
 * fork child starts with an empty registry.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fl-internal.h"

struct fake {
	struct fl_hb hb;
	atomic_int beats;
	atomic_int ret;   /* what beat returns                       */
	int block_fd;     /* >= 0: beat reads one byte from it first */
	int note_fd;      /* >= 0: beat writes 'b' to it first       */
	struct fl_lock lk;
	struct fl_hold *h;
	atomic_int reason;
	int cb_fd;        /* the compromise callback writes here     */
};

static void on_comp(fl_lock *lk, int reason, void *arg)
{
	struct fake *f = arg;
	char c = (char)('0' + reason);

	(void)lk;
	atomic_store(&f->reason, reason);
	if (f->cb_fd >= 0)
		assert_int_equal(write(f->cb_fd, &c, 1), 1);
}

static int fake_beat(struct fl_hb *hb)
{
	struct fake *f = (struct fake *)(void *)hb;
	char c;

	if (f->note_fd >= 0)
		assert_int_equal(write(f->note_fd, "b", 1), 1);
	if (f->block_fd >= 0)
		assert_int_equal(read(f->block_fd, &c, 1), 1);
	atomic_fetch_add(&f->beats, 1);
	return atomic_load(&f->ret);
}

static struct fake *fake_new(double interval, double give_up, int ret)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->h = calloc(1, sizeof(struct fl_hold));
	assert_non_null(f->h);
	f->h->lk = &f->lk;
	f->lk.opt.on_compromise = on_comp;
	f->lk.opt.compromise_arg = f;
	f->hb.interval = interval;
	f->hb.give_up = give_up;
	f->hb.beat = fake_beat;
	f->hb.h = f->h;
	f->ret = ret;
	f->block_fd = f->note_fd = f->cb_fd = -1;
	return f;
}

static void fake_free(struct fake *f)
{
	fl__hb_remove(&f->hb);
	free(f->h);
	free(f);
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[300], comm[32] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		/* Count our heartbeat threads only: sanitizers add their own. */
		snprintf(p, sizeof(p), "/proc/self/task/%.200s/comm", de->d_name);
		f = fopen(p, "re");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL && strncmp(comm, "fl-heartbeat", 12) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Waits (bounded) until the process has `want` threads. */
static int wait_threads(int want, double secs)
{
	double end = fl__now_mono() + secs;

	while (count_threads() != want) {
		if (fl__now_mono() > end)
			return 0;
		fl__sleep_until(fl__now_mono() + 0.02);
	}
	return 1;
}

static void test_beats_and_idle_exit(void **state)
{
	struct fake *f[50];
	int fds[2];

	(void)state;
	alarm(20);
	assert_true(wait_threads(0, 5));
	assert_int_equal(pipe(fds), 0);
	for (int i = 0; i < 50; i++) {
		f[i] = fake_new(0.05, 10, 0);
		if (i == 49)
			f[i]->note_fd = fds[1];
		assert_int_equal(fl__hb_add(&f[i]->hb), 0);
	}
	/* Three beats of the last one registered: every earlier one is due first. */
	for (int k = 0; k < 3; k++) {
		char c;
		assert_int_equal(read(fds[0], &c, 1), 1);
	}
	assert_int_equal(count_threads(), 1); /* one heartbeat thread for 50 */
	for (int i = 0; i < 49; i++)
		assert_true(atomic_load(&f[i]->beats) >= 2);
	for (int i = 0; i < 50; i++) {
		fl__hb_remove(&f[i]->hb);
		int b = atomic_load(&f[i]->beats);
		/* After remove returns, no beat of it ever runs again. */
		fl__sleep_until(fl__now_mono() + (i == 0 ? 0.15 : 0));
		assert_int_equal(atomic_load(&f[i]->beats), b);
		fake_free(f[i]);
	}
	/* Idle: the thread leaves by itself. */
	assert_true(wait_threads(0, 5));
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

static void test_signals_blocked(void **state)
{
	struct fake *f = fake_new(10, 100, 0);
	char path[512], line[256];
	int found = 0;
	DIR *d;
	struct dirent *de;

	(void)state;
	alarm(10);
	assert_int_equal(fl__hb_add(&f->hb), 0);
	d = opendir("/proc/self/task");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		FILE *fp;
		char comm[64] = "";
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		fp = fopen(path, "re");
		if (fp == NULL)
			continue;
		if (fgets(comm, sizeof(comm), fp) == NULL)
			comm[0] = '\0';
		fclose(fp);
		if (strncmp(comm, "fl-heartbeat", 12) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		fp = fopen(path, "re");
		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp) != NULL) {
			if (strncmp(line, "SigBlk:", 7) == 0) {
				/* Every signal the kernel lets a thread block is blocked. */
				unsigned long long m = strtoull(line + 7, NULL, 16);
				assert_true((m & 0xfffffffe7ffbfeffULL) == 0xfffffffe7ffbfeffULL);
				found = 1;
			}
		}
		fclose(fp);
	}
	closedir(d);
	assert_true(found);
	fake_free(f);
	alarm(0);
}

static void test_transient_then_give_up(void **state)
{
	struct fake *f = fake_new(0.05, 0.3, -EIO);
	int fds[2];
	char c;
	double t0 = fl__now_mono();

	(void)state;
	alarm(10);
	assert_int_equal(pipe(fds), 0);
	f->cb_fd = fds[1];
	assert_int_equal(fl__hb_add(&f->hb), 0);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, '0' + FL_COMPROMISE_REFRESH_FAILED);
	assert_true(fl__now_mono() - t0 >= 0.3);  /* retried until give_up */
	assert_true(atomic_load(&f->beats) >= 4);
	assert_int_equal(atomic_load(&f->h->compromised), FL_COMPROMISE_REFRESH_FAILED);
	/* Reported once; the entry left the registry. */
	int b = atomic_load(&f->beats);
	fl__sleep_until(fl__now_mono() + 0.15);
	assert_int_equal(atomic_load(&f->beats), b);
	fake_free(f);
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

static void test_transient_recovers(void **state)
{
	struct fake *f = fake_new(0.03, 0.2, -ESTALE);
	int fds[2];
	char c;

	(void)state;
	alarm(10);
	assert_int_equal(pipe(fds), 0);
	f->note_fd = fds[1];
	assert_int_equal(fl__hb_add(&f->hb), 0);
	assert_int_equal(read(fds[0], &c, 1), 1);
	f->ret = 0; /* the next beats succeed: the failure run is broken */
	for (int i = 0; i < 12; i++)
		assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(atomic_load(&f->h->compromised), 0);
	fake_free(f);
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

static void test_positive_reason(void **state)
{
	struct fake *f = fake_new(0.02, 10, FL_COMPROMISE_REPLACED);
	int fds[2];
	char c;

	(void)state;
	alarm(10);
	assert_int_equal(pipe(fds), 0);
	f->cb_fd = fds[1];
	assert_int_equal(fl__hb_add(&f->hb), 0);
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(c, '0' + FL_COMPROMISE_REPLACED);
	assert_int_equal(atomic_load(&f->beats), 1);
	/* fl__compromise reports once. */
	fl__compromise(f->h, FL_COMPROMISE_MISSING);
	assert_int_equal(atomic_load(&f->reason), FL_COMPROMISE_REPLACED);
	fake_free(f);
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

struct remover {
	struct fake *f;
	atomic_int done;
};

static void *remover_main(void *arg)
{
	struct remover *r = arg;

	fl__hb_remove(&r->f->hb);
	atomic_store(&r->done, 1);
	return NULL;
}

static void test_remove_waits_for_running_beat(void **state)
{
	struct fake *f = fake_new(0.02, 10, 0);
	struct remover rm = { f, 0 };
	int note[2], gate[2];
	pthread_t t;
	char c;

	(void)state;
	alarm(10);
	assert_int_equal(pipe(note), 0);
	assert_int_equal(pipe(gate), 0);
	f->note_fd = note[1];
	f->block_fd = gate[0];
	assert_int_equal(fl__hb_add(&f->hb), 0);
	assert_int_equal(read(note[0], &c, 1), 1); /* the beat is running and blocked */
	assert_int_equal(pthread_create(&t, NULL, remover_main, &rm), 0);
	fl__sleep_until(fl__now_mono() + 0.1);
	assert_int_equal(atomic_load(&rm.done), 0); /* still waiting for the beat */
	assert_int_equal(write(gate[1], "g", 1), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&rm.done), 1);
	assert_int_equal(atomic_load(&f->beats), 1);
	fake_free(f);
	close(note[0]);
	close(note[1]);
	close(gate[0]);
	close(gate[1]);
	alarm(0);
}

static void test_fork_child_empty(void **state)
{
	struct fake *f = fake_new(0.02, 10, 0);
	int fds[2], st;
	pid_t pid;
	char c;

	(void)state;
	alarm(10);
	assert_int_equal(pipe(fds), 0);
	f->note_fd = fds[1];
	assert_int_equal(fl__hb_add(&f->hb), 0);
	assert_int_equal(read(fds[0], &c, 1), 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fake *g = fake_new(0.02, 10, 0);
		int b = atomic_load(&f->beats);
		/* The parent's entry is not ours: removing it is a no-op. */
		fl__hb_remove(&f->hb);
		/* The child can register its own and gets its own thread. */
		if (fl__hb_add(&g->hb) != 0)
			_exit(1);
		while (atomic_load(&g->beats) < 3)
			fl__sleep_until(fl__now_mono() + 0.01);
		if (atomic_load(&f->beats) != b)
			_exit(2); /* the parent's entry was beaten in the child */
		fl__hb_remove(&g->hb);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The parent keeps beating. */
	assert_int_equal(read(fds[0], &c, 1), 1);
	fake_free(f);
	close(fds[0]);
	close(fds[1]);
	alarm(0);
}

static void test_bad_args(void **state)
{
	struct fake *f = fake_new(0, 1, 0);

	(void)state;
	assert_int_equal(fl__hb_add(&f->hb), -EINVAL);
	f->hb.interval = 1;
	assert_int_equal(fl__hb_add(&f->hb), 0);
	assert_int_equal(fl__hb_add(&f->hb), -EALREADY);
	fake_free(f);
	fl__hb_remove(NULL);
}

/* Under TSan, fork children of this multi-threaded test start threads:
 * re-run ourselves with the option that allows it. */
static void tsan_reexec(char **argv)
{
#if defined(__SANITIZE_THREAD__)
	const char *o = getenv("TSAN_OPTIONS");

	if (o == NULL || strstr(o, "die_after_fork=0") == NULL) {
		char buf[2048];
		snprintf(buf, sizeof(buf), "%s%sdie_after_fork=0", o ? o : "", o ? " " : "");
		setenv("TSAN_OPTIONS", buf, 1);
		execv("/proc/self/exe", argv);
	}
#else
	(void)argv;
#endif
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beats_and_idle_exit),
		cmocka_unit_test(test_signals_blocked),
		cmocka_unit_test(test_transient_then_give_up),
		cmocka_unit_test(test_transient_recovers),
		cmocka_unit_test(test_positive_reason),
		cmocka_unit_test(test_remove_waits_for_running_beat),
		cmocka_unit_test(test_fork_child_empty),
		cmocka_unit_test(test_bad_args),
	};

	(void)argc;
	tsan_reexec(argv);
	return cmocka_run_group_tests_name("heartbeat", tests, NULL, NULL);
}
