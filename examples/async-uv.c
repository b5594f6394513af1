/* SPDX-License-Identifier: MIT */
/*
 * async-uv.c -- libuv glue for the asynchronous acquire.
 *
 *     async-uv [-k KIND] [-w SECONDS] PATH...
 *
 * The whole glue is one uv_poll_t on fl_async_fd() whose callback calls
 * fl_async_dispatch(); completions then run on the loop's thread like any
 * other libuv callback.  This program takes every PATH, printing "locked
 * PATH" (or "failed PATH: reason") as each arrives, while a timer keeps
 * ticking to show that the loop is never blocked; once all completed it
 * releases them and exits: 0 if all were taken, 1 otherwise.
 *
 * Build: cc async-uv.c $(pkg-config --cflags --libs filelock libuv)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <filelock.h>
#include <uv.h>

/* ---- the glue: add an executor to a uv loop ------------------------------ */

struct fl_uv {
	uv_poll_t poll;
	fl_async *ex;
	void (*idle)(struct fl_uv *g); /* called when no request is pending */
};

static void fl_uv_on_ready(uv_poll_t *p, int status, int events)
{
	struct fl_uv *g = p->data;

	(void)events;
	if (status < 0)
		return;
	fl_async_dispatch(g->ex);
	if (fl_async_pending(g->ex) == 0 && g->idle)
		g->idle(g);
}

static int fl_uv_start(uv_loop_t *loop, struct fl_uv *g, fl_async *ex)
{
	int r = uv_poll_init(loop, &g->poll, fl_async_fd(ex));

	if (r < 0)
		return r;
	g->ex = ex;
	g->poll.data = g;
	return uv_poll_start(&g->poll, UV_READABLE, fl_uv_on_ready);
}

/* ---- the program ---------------------------------------------------------- */

struct job {
	fl_lock *lk;
	int result; /* 1 = not completed yet */
};

static uv_timer_t ticker;
static unsigned ticks;

static void on_acquired(fl_lock *lk, int result, void *arg)
{
	struct job *j = arg;

	j->result = result;
	if (result == 0)
		printf("locked %s\n", fl_path(lk));
	else
		printf("failed %s: %s\n", fl_path(lk), fl_errmsg(lk));
	fflush(stdout);
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
	ticks++;
}

static void all_done(struct fl_uv *g)
{
	uv_poll_stop(&g->poll);
	uv_close((uv_handle_t *)&g->poll, NULL);
	uv_timer_stop(&ticker);
	uv_close((uv_handle_t *)&ticker, NULL);
}

int main(int argc, char **argv)
{
	enum fl_kind kind = FL_FILE;
	double timeout = -1;
	struct fl_options opt;
	struct fl_uv glue = { .idle = all_done };
	struct job *jobs;
	uv_loop_t *loop = uv_default_loop();
	fl_async *ex;
	int c, n, r, failed = 0, started = 0;

	while ((c = getopt(argc, argv, "k:w:")) != -1) {
		if (c == 'k' && fl_kind_parse(optarg, &kind) == 0)
			continue;
		if (c == 'w') {
			timeout = strtod(optarg, NULL);
			continue;
		}
		fprintf(stderr, "usage: async-uv [-k KIND] [-w SECONDS] PATH...\n");
		return 2;
	}
	n = argc - optind;
	if (n <= 0) {
		fprintf(stderr, "usage: async-uv [-k KIND] [-w SECONDS] PATH...\n");
		return 2;
	}
	fl_options_init(&opt);
	opt.flags = FL_SHARED_CONTEXT; /* required: a pool thread takes the lock */
	if ((r = fl_async_new(&ex, 2)) < 0 || (r = fl_uv_start(loop, &glue, ex)) < 0) {
		fprintf(stderr, "setup failed: %d\n", r);
		return 1;
	}
	jobs = calloc((size_t)n, sizeof(*jobs));
	if (jobs == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		jobs[i].result = 1;
		r = fl_open(&jobs[i].lk, argv[optind + i], kind, &opt);
		if (r == 0)
			r = fl_acquire_async(ex, jobs[i].lk, FL_EXCLUSIVE, timeout, on_acquired,
					     &jobs[i], NULL);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[optind + i], fl_strerror(r));
			jobs[i].result = r;
		} else {
			started++;
		}
	}
	uv_timer_init(loop, &ticker);
	uv_timer_start(&ticker, on_tick, 10, 10);
	if (started == 0)
		all_done(&glue);
	uv_run(loop, UV_RUN_DEFAULT);

	for (int i = 0; i < n; i++) {
		if (jobs[i].result == 0)
			fl_release(jobs[i].lk, 0);
		else
			failed = 1;
		fl_close(jobs[i].lk);
	}
	fl_async_free(ex);
	free(jobs);
	uv_loop_close(loop);
	return failed;
}
