/* SPDX-License-Identifier: MIT */
/*
 * test-perm.c -- files of mode 000, owned by someone else, where each kind
 * expects its lock file or markers.  Run as an unprivileged user (when the
 * tests run as root a forked child drops to nobody): no kind may hang, crash
 * or report a strange error, and none may remove or change the file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

struct perm_case {
	enum fl_kind kind;
	const char *path;
	const char *const *files; /* suffixes of `path` made mode 000 */
};

/* In the child: try the lock; 0 = behaved. */
static int perm_child(void *arg)
{
	const struct perm_case *c = arg;
	struct fl_options o;
	fl_lock *lk;
	int r;

	fl_options_init(&o);
	o.poll_interval = 0.05;
	if (c->kind == FL_SOFT_RW) {
		o.heartbeat_interval = 0.1;
		o.stale_threshold = 0.3;
	}
	if (c->kind == FL_LEASE)
		o.lease_duration = 0.3;
	if (fl_open(&lk, c->path, c->kind, &o) != 0)
		return 10;
	r = fl_acquire(lk, FL_EXCLUSIVE, 0.5);
	if (r == 0) {
		/* Legitimate where the kind does not need the file (it may create
		 * others beside it); it must then really hold and release. */
		if (!fl_is_locked(lk) || fl_release(lk, 0) != 0)
			return 11;
	} else if (r != -EACCES && r != -EPERM && r != -ETIMEDOUT && r != -EPROTO &&
		   r != -EBADMSG) {
		fprintf(stderr, "%s: unexpected %d: %s\n", fl_kind_name(c->kind), r, fl_errmsg(lk));
		return 12;
	} else if (r != -ETIMEDOUT && fl_errmsg(lk)[0] == '\0') {
		return 13; /* an error must say what failed */
	}
	fl_close(lk);
	return 0;
}

static void test_perm_000_everywhere(void **state)
{
	static const char *const plain[] = { "", NULL };
	static const char *const srw[] = { ".state", ".write", NULL };
	static const char *const kinds_all[] = { "file", "unix", "soft", "strict", "lease", "rw",
						 "soft-rw" };

	for (size_t i = 0; i < sizeof(kinds_all) / sizeof(kinds_all[0]); i++) {
		struct perm_case c;
		char path[4096], f[4200];
		enum fl_kind k;
		fl_lock *probe;

		assert_int_equal(fl_kind_parse(kinds_all[i], &k), 0);
		if (fl_open(&probe, fl_test_path("probe"), k, NULL) != 0)
			continue; /* not built in */
		fl_close(probe);
		snprintf(path, sizeof(path), "%s/perm-%s.lock", fl_test_dir, kinds_all[i]);
		c.kind = k;
		c.path = path;
		c.files = k == FL_SOFT_RW ? srw : plain;
		for (const char *const *s = c.files; *s; s++) {
			int fd;
			snprintf(f, sizeof(f), "%s%s", path, *s);
			fd = open(f, O_CREAT | O_WRONLY, 0600);
			assert_true(fd >= 0);
			assert_int_equal(write(fd, "x\n", 2), 2);
			close(fd);
			assert_int_equal(chmod(f, 0), 0);
		}
		if (fl_test_as_nobody(perm_child, &c) != 0)
			fail_msg("kind %s misbehaved on mode-000 files", kinds_all[i]);
		for (const char *const *s = c.files; *s; s++) {
			struct stat st;
			snprintf(f, sizeof(f), "%s%s", path, *s);
			assert_int_equal(lstat(f, &st), 0); /* never removed */
			assert_int_equal(st.st_mode & 07777, 0);
			assert_int_equal(st.st_size, 2);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_perm_000_everywhere, fl_test_setup,
						fl_test_teardown),
	};
	return cmocka_run_group_tests_name("perm", tests, fl_test_group_setup,
					   fl_test_group_teardown);
}
