/* SPDX-License-Identifier: MIT */
/*
 * fdtable.c -- descriptor -> open file description state.
 *
 * A two-level table: FLP_TOP chunks of FLP_CHUNK atomic slots, indexed by
 * descriptor number.  Chunk 0 is static, so the first 1024 descriptors never
 * need an allocation; other chunks are mmap'ed on first use from a slow path
 * and never freed.  Readers use one relaxed-acquire atomic load per level and
 * take no lock: that is the whole cost of a hook on a descriptor the shim
 * does not manage.  (A signal handler may call close(); the fast path is
 * async-signal-safe, the slow path for a locked descriptor takes a mutex.)
 *
 * A slot holds a small state (FLP_FD_UNKNOWN, FLP_FD_NOMATCH, FLP_FD_FRESH)
 * or a pointer to a struct flp_ofd, shared by the descriptors of this process
 * that name one open file description.  flp_fd_mu guards the OFD list and
 * every refs count; each OFD's own mutex serialises its lock operations.
 *
 * Fork: the child inherits the table (its descriptors are the parent's), and
 * flp_fd_child_reset() re-initialises the mutexes, which a thread of the
 * parent may have held at the moment of the fork.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "flp.h"

#define FLP_CHUNK 1024
#define FLP_TOP   1024 /* 1M descriptors */

typedef _Atomic uintptr_t flp_slot;

static flp_slot flp_chunk0[FLP_CHUNK];
static _Atomic(flp_slot *) flp_top[FLP_TOP] = { [0] = flp_chunk0 };

pthread_mutex_t flp_fd_mu = PTHREAD_MUTEX_INITIALIZER;
struct flp_ofd *flp_ofds;

uintptr_t flp_fd_get(int fd)
{
	flp_slot *c;

	if (FLP_UNLIKELY(fd < 0 || fd >= FLP_CHUNK * FLP_TOP))
		return FLP_FD_UNKNOWN;
	c = atomic_load_explicit(&flp_top[fd / FLP_CHUNK], memory_order_acquire);
	if (c == NULL)
		return FLP_FD_UNKNOWN;
	return atomic_load_explicit(&c[fd % FLP_CHUNK], memory_order_acquire);
}

int flp_fd_set(int fd, uintptr_t v, int alloc)
{
	flp_slot *c;

	if (fd < 0 || fd >= FLP_CHUNK * FLP_TOP)
		return -EBADF;
	c = atomic_load_explicit(&flp_top[fd / FLP_CHUNK], memory_order_acquire);
	if (c == NULL) {
		flp_slot *fresh, *expected = NULL;
		if (!alloc)
			return 0;
		/* mmap, not malloc: this may run inside an allocator's own open(). */
		fresh = mmap(NULL, sizeof(flp_slot) * FLP_CHUNK, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (fresh == MAP_FAILED)
			return -ENOMEM;
		if (atomic_compare_exchange_strong(&flp_top[fd / FLP_CHUNK], &expected, fresh)) {
			c = fresh;
		} else {
			munmap(fresh, sizeof(flp_slot) * FLP_CHUNK);
			c = expected;
		}
	}
	atomic_store_explicit(&c[fd % FLP_CHUNK], v, memory_order_release);
	return 0;
}

int flp_fd_limit(void)
{
	int top = 0;

	for (int i = 0; i < FLP_TOP; i++)
		if (atomic_load_explicit(&flp_top[i], memory_order_acquire) != NULL)
			top = i + 1;
	return top * FLP_CHUNK;
}

struct flp_ofd *flp_ofd_new(void)
{
	struct flp_ofd *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	pthread_mutex_init(&o->mu, NULL);
	o->next = flp_ofds;
	flp_ofds = o;
	return o;
}

void flp_ofd_free(struct flp_ofd *o)
{
	for (struct flp_ofd **pp = &flp_ofds; *pp; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	pthread_mutex_destroy(&o->mu);
	free(o);
}

void flp_fd_child_reset(void)
{
	pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;

	flp_fd_mu = init;
	for (struct flp_ofd *o = flp_ofds; o; o = o->next)
		o->mu = init;
}
