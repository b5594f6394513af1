/* SPDX-License-Identifier: MIT */
/*
 * error.c -- fl_strerror() and the per-thread record of the last failure.
 *
 * A failure detail is kept per thread (so that threads sharing a handle never
 * read each other's half-written message) together with the handle it was
 * about.  fl_errmsg(lk) returns it when it is about lk.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fl-internal.h"

struct fl_errstate {
	const struct fl_lock *lk; /* handle the message is about (NULL: none)  */
	int err;                  /* negative errno                              */
	char msg[FL__ERRLEN];
};

static __thread struct fl_errstate fl__tls_err;

const char *fl__strerror_r(int errnum, char *buf, size_t len)
{
#ifdef STRERROR_R_CHAR_P
	return strerror_r(errnum, buf, len);
#else
	if (strerror_r(errnum, buf, len) != 0)
		snprintf(buf, len, "error %d", errnum);
	return buf;
#endif
}

void fl__err_clear(void)
{
	fl__tls_err.lk = NULL;
	fl__tls_err.err = 0;
	fl__tls_err.msg[0] = '\0';
}

void fl__err_restore(const struct fl_lock *lk, int err, const char *msg)
{
	fl__tls_err.lk = lk;
	fl__tls_err.err = err;
	snprintf(fl__tls_err.msg, sizeof(fl__tls_err.msg), "%s", msg);
}

static void fl__err_tag(const struct fl_lock *lk)
{
	size_t n = strlen(fl__tls_err.msg);

	if (lk != NULL && n < sizeof(fl__tls_err.msg))
		snprintf(fl__tls_err.msg + n, sizeof(fl__tls_err.msg) - n, " [%s]", fl__kind_tag(lk));
}

int fl__err(const struct fl_lock *lk, int err, const char *op, const char *path)
{
	char eb[128];

	fl__tls_err.lk = lk;
	fl__tls_err.err = err;
	snprintf(fl__tls_err.msg, sizeof(fl__tls_err.msg), "%s(%s): %s", op, path ? path : "",
		 fl__strerror_r(err < 0 ? -err : err, eb, sizeof(eb)));
	fl__err_tag(lk);
	return err;
}

int fl__errf(const struct fl_lock *lk, int err, const char *fmt, ...)
{
	va_list ap;

	fl__tls_err.lk = lk;
	fl__tls_err.err = err;
	va_start(ap, fmt);
	vsnprintf(fl__tls_err.msg, sizeof(fl__tls_err.msg), fmt, ap);
	va_end(ap);
	fl__err_tag(lk);
	return err;
}

FL_EXPORT const char *fl_errmsg(const fl_lock *lk)
{
	if (lk == NULL || fl__tls_err.lk == lk)
		return fl__tls_err.msg;
	return "";
}

FL_EXPORT const char *fl_strerror(int err)
{
	static __thread char buf[128];

	if (err > 0)
		err = -err;
	switch (err) {
	case 0:
		return "Success";
	case -ETIMEDOUT:
		return "Lock is held by someone else (timed out)";
	case -ECANCELED:
		return "Acquire cancelled (cancel_check or fl_async_cancel)";
	case -EDEADLK:
		return "Would deadlock (held by another handle in this thread, or mode change while held)";
	case -ENOTSUP:
		return "Not supported by this lock kind";
	case -ECHILD:
		return "Handle was inherited across fork; open a new one";
	case -ENOLCK:
		return "Lock not held";
	default:
		return fl__strerror_r(-err, buf, sizeof(buf));
	}
}
