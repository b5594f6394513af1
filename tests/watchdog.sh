#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/watchdog.sh -- runs one test of `make check` in a process group of
# its own and ends that whole group if the test outlives its time.
#
#   watchdog.sh PROGRAM [ARG ...]
#
# Every test, unit binary or shell suite, runs through this (LOG_COMPILER and
# SH_LOG_COMPILER in tests/Makemodule.am).  A suite's own watchdog fires first
# with a message that says what hung; this one is the backstop that makes a
# deadlock fail at once instead of holding the run until CI's limit: a shell
# defers its traps while a foreground command blocks, so "kill the test's
# shell" alone can wait forever.  After FL_TEST_TIMEOUT seconds (default 600)
# the group gets SIGTERM (the suites' EXIT traps tear down what they set up),
# FL_TEST_GRACE seconds later (default 15) SIGKILL, and the test fails with
# exit status 99 (automake's hard error).
set -u
limit=${FL_TEST_TIMEOUT:-600}
grace=${FL_TEST_GRACE:-15}

# Not a group leader here (a non-interactive shell's background job), so
# setsid(1) calls setsid() and execs: $! is the test and its group id.
setsid "$@" &
test_pid=$!
# Interrupted (make stopped): the group goes too.
trap 'kill -TERM -- "-$test_pid" 2>/dev/null; exit 143' TERM INT HUP
sleep "$limit" &
timer=$!
wait -n -p first "$test_pid" "$timer"
rc=$?
if [ "${first:-}" = "$test_pid" ]; then
	kill "$timer" 2>/dev/null
	wait "$timer" 2>/dev/null
	exit "$rc"
fi

echo "FAIL: watchdog: '$*' still running after ${limit}s; ending its process group" >&2
kill -TERM -- "-$test_pid" 2>/dev/null
n=0
while kill -0 -- "-$test_pid" 2>/dev/null; do
	if [ "$n" -ge "$grace" ]; then
		echo "FAIL: watchdog: group still there ${grace}s after SIGTERM; SIGKILL" >&2
		kill -KILL -- "-$test_pid" 2>/dev/null
		break
	fi
	sleep 1 # only on this failure path: the group has no exit to wait for
	n=$((n + 1))
done
wait 2>/dev/null
exit 99
