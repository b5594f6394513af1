/* SPDX-License-Identifier: MIT */
/* common.h -- scaffolding shared by the cmocka unit tests. */
#ifndef FL_TEST_COMMON_H
#define FL_TEST_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "filelock.h"

/* The group's private directory (made by fl_test_group_setup). */
extern char fl_test_dir[];

/* Group setup/teardown: a private mkdtemp directory, removed afterwards. */
int fl_test_group_setup(void **state);
int fl_test_group_teardown(void **state);
/* Per-test setup: arms alarm(30) so that a deadlock fails the test, resets
 * the syscall table and umask. */
int fl_test_setup(void **state);
int fl_test_teardown(void **state);

/* A fresh path "<dir>/<name>-<n>" (static buffer per call site is not
 * needed: the returned string is malloc'd and freed at teardown). */
const char *fl_test_path(const char *name);

/* A child process with its stdin and stdout connected to pipes. */
struct fl_child {
	pid_t pid;
	int in;  /* write end: the child's stdin  */
	int out; /* read end: the child's stdout */
};

/* Starts argv[0] (a path) with pipes; asserts on failure. */
void fl_child_start(struct fl_child *c, char *const argv[]);
/* Reads one line (without the newline) from the child; asserts on EOF. */
void fl_child_line(struct fl_child *c, char *buf, size_t len);
/* Writes a line to the child's stdin. */
void fl_child_say(struct fl_child *c, const char *line);
/* Closes the child's stdin and waits; returns the wait status. */
int fl_child_finish(struct fl_child *c);
/* SIGKILLs and reaps the child. */
void fl_child_kill(struct fl_child *c);

/* Starts fl-holder with the given arguments (NULL-terminated) and waits for
 * its first line, which is returned in buf ("ready PID" or "error ..."). */
void fl_holder_start(struct fl_child *c, char *buf, size_t len, ...);

/* The path of a helper program built next to the tests ("fl-holder"...). */
const char *fl_test_helper(const char *name);

/* Runs fn in a forked child that drops root privileges first (so permission
 * checks apply); returns the child's exit status (fn's return value). */
int fl_test_as_nobody(int (*fn)(void *), void *arg);

/* Monotonic seconds. */
double fl_test_now(void);

/* fl_open that must succeed (the library's message is printed if not). */
fl_lock *fl_test_open(const char *path, enum fl_kind kind, const struct fl_options *o);
/* Creates or truncates path (0644) and writes n bytes of data; asserts. */
void fl_test_write_file(const char *path, const char *data, size_t n);
/* The same with a NUL-terminated string. */
void fl_test_write_str(const char *path, const char *s);
/* Reads up to cap - 1 bytes of path into buf, NUL-terminated; asserts.
 * Returns the length. */
size_t fl_test_read_file(const char *path, char *buf, size_t cap);

/* fl__adopt (the preload shim's take-over after fork and execve) for a kind
 * whose records name their holder: a taker (fl-holder) holds `path` in
 * `mode`; while it lives its lock is nobody else's (-ESTALE, the taker
 * unknown or another pid); once it was killed without releasing, a wrong mode is
 * refused and the right one adopted: held (beaten: still held after
 * `bound` * 2.5 seconds), then released for another handle to take. */
void fl_test_adopt(const char *path, enum fl_kind kind, const struct fl_options *o,
		   enum fl_mode mode, double bound);

#endif
