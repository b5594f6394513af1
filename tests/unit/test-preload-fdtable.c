/* SPDX-License-Identifier: MIT */
/*
 * test-preload-fdtable.c -- the shim's descriptor table: states, chunk
 * allocation past the static first chunk, range limits, the OFD list, and
 * concurrent readers while a writer allocates chunks.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "flp.h"

static void test_states(void **state)
{
	(void)state;
	assert_int_equal(flp_fd_get(5), FLP_FD_UNKNOWN);
	assert_int_equal(flp_fd_set(5, FLP_FD_FRESH, 0), 0);
	assert_int_equal(flp_fd_get(5), FLP_FD_FRESH);
	assert_int_equal(flp_fd_set(5, FLP_FD_NOMATCH, 0), 0);
	assert_int_equal(flp_fd_get(5), FLP_FD_NOMATCH);
	assert_false(FLP_FD_IS_OFD(FLP_FD_NOMATCH));
	assert_int_equal(flp_fd_get(-1), FLP_FD_UNKNOWN);
	assert_int_equal(flp_fd_set(-1, FLP_FD_FRESH, 1), -EBADF);
	assert_int_equal(flp_fd_set(1 << 20, FLP_FD_FRESH, 1), -EBADF);
	assert_int_equal(flp_fd_get(1 << 20), FLP_FD_UNKNOWN);
}

static void test_chunks(void **state)
{
	(void)state;
	assert_int_equal(flp_fd_limit(), 1024);
	/* Without alloc, a store into a missing chunk is a no-op (fast paths). */
	assert_int_equal(flp_fd_set(5000, FLP_FD_FRESH, 0), 0);
	assert_int_equal(flp_fd_get(5000), FLP_FD_UNKNOWN);
	assert_int_equal(flp_fd_limit(), 1024);
	assert_int_equal(flp_fd_set(5000, FLP_FD_NOMATCH, 1), 0);
	assert_int_equal(flp_fd_get(5000), FLP_FD_NOMATCH);
	assert_int_equal(flp_fd_get(5001), FLP_FD_UNKNOWN);
	assert_int_equal(flp_fd_limit(), 5 * 1024);
	assert_int_equal(flp_fd_set((1 << 20) - 1, FLP_FD_FRESH, 1), 0);
	assert_int_equal(flp_fd_get((1 << 20) - 1), FLP_FD_FRESH);
	assert_int_equal(flp_fd_limit(), 1 << 20);
}

static void test_ofd_list(void **state)
{
	struct flp_ofd *a, *b, *c;
	int n = 0;

	(void)state;
	pthread_mutex_lock(&flp_fd_mu);
	a = flp_ofd_new();
	b = flp_ofd_new();
	c = flp_ofd_new();
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(FLP_FD_IS_OFD((uintptr_t)a));
	assert_int_equal(flp_fd_set(7, (uintptr_t)b, 1), 0);
	assert_ptr_equal((void *)flp_fd_get(7), b);
	for (struct flp_ofd *o = flp_ofds; o; o = o->next)
		n++;
	assert_int_equal(n, 3);
	flp_ofd_free(b);
	n = 0;
	for (struct flp_ofd *o = flp_ofds; o; o = o->next) {
		assert_ptr_not_equal(o, b);
		n++;
	}
	assert_int_equal(n, 2);
	flp_fd_set(7, FLP_FD_FRESH, 0);
	/* A fork child re-initialises the mutexes, which may have been held. */
	pthread_mutex_lock(&a->mu);
	flp_fd_child_reset(); /* also resets flp_fd_mu, which we hold */
	assert_int_equal(pthread_mutex_trylock(&a->mu), 0);
	pthread_mutex_unlock(&a->mu);
	assert_int_equal(pthread_mutex_trylock(&flp_fd_mu), 0);
	flp_ofd_free(a);
	flp_ofd_free(c);
	assert_null(flp_ofds);
	pthread_mutex_unlock(&flp_fd_mu);
}

static atomic_int stop;

static void *reader(void *arg)
{
	unsigned long bad = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		for (int fd = 2048; fd < 2048 + 64 * 1024; fd += 1024) {
			uintptr_t v = flp_fd_get(fd);
			if (v != FLP_FD_UNKNOWN && v != FLP_FD_NOMATCH)
				bad++;
		}
	}
	return (void *)bad;
}

static void test_concurrent(void **state)
{
	pthread_t t[2];
	void *bad;

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
	for (int fd = 2048; fd < 2048 + 64 * 1024; fd += 1024)
		assert_int_equal(flp_fd_set(fd, FLP_FD_NOMATCH, 1), 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], &bad);
		assert_null(bad);
	}
	for (int fd = 2048; fd < 2048 + 64 * 1024; fd += 1024)
		assert_int_equal(flp_fd_get(fd), FLP_FD_NOMATCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_ofd_list),
		cmocka_unit_test(test_concurrent),
	};
	alarm(60);
	return cmocka_run_group_tests_name("preload-fdtable", tests, NULL, NULL);
}
