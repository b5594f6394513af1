/* SPDX-License-Identifier: MIT */
/* helper-common.h -- option parsing shared by the test helper programs. */
#ifndef FL_HELPER_COMMON_H
#define FL_HELPER_COMMON_H

#include "filelock.h"

/* Applies "key=value" (timeout, poll_interval, lifetime, lease_duration,
 * heartbeat_interval, stale_threshold, mode, flags=a,b,...) to *o.
 * Returns 0 or -1 with a message on stderr. */
int fl_helper_opt(struct fl_options *o, const char *kv);
/* Monotonic nanoseconds from the kernel directly (bypasses libfaketime). */
long long fl_helper_mono_ns(void);

#endif
