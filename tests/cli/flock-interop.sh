#!/bin/sh
# filelock(1) side by side with util-linux flock(1) on the same file: each
# excludes the other, in both directions, for the unix kind (flock(1)'s own
# engine) and the file kind (the library's flock backend).
. "${FL_TOP_SRCDIR:-.}/tests/cli/lib.sh"

if ! command -v flock >/dev/null; then
	if [ "${FL_REQUIRE_ALL:-0}" = 1 ]; then
		echo "util-linux flock(1) is required (FL_REQUIRE_ALL=1)" >&2
		exit 99
	fi
	echo "skip: util-linux flock(1) is not installed"
	exit 77
fi

F=$T/shared.lock
for kind in unix file; do
	# flock(1) holds: filelock is excluded, and gets it afterwards.
	start_holder flock "$F" sh -c "$HOLD"
	expect_rc 1 "$kind: flock -x holds, filelock -n" "$FL_CLI" -t "$kind" -n "$F" true
	expect_rc 1 "$kind: flock -x holds, filelock -s -n" "$FL_CLI" -t "$kind" -s -n "$F" true
	expect_rc 1 "$kind: flock -x holds, filelock -w 0.2" "$FL_CLI" -t "$kind" -w 0.2 "$F" true
	stop_holder
	expect_rc 0 "$kind: flock released, filelock -n" "$FL_CLI" -t "$kind" -n "$F" true

	# filelock holds: flock(1) is excluded, and gets it afterwards.
	start_holder "$FL_CLI" -t "$kind" "$F" sh -c "$HOLD"
	expect_rc 1 "$kind: filelock holds, flock -n" flock -n "$F" true
	expect_rc 1 "$kind: filelock holds, flock -s -n" flock -s -n "$F" true
	expect_rc 1 "$kind: filelock holds, flock -w 0.2" flock -w 0.2 "$F" true
	stop_holder
	expect_rc 0 "$kind: filelock released, flock -n" flock -n "$F" true

	# Shared locks of both programs coexist and keep exclusive ones out.
	start_holder flock -s "$F" sh -c "$HOLD"
	expect_rc 0 "$kind: flock -s and filelock -s coexist" "$FL_CLI" -t "$kind" -s -n "$F" true
	stop_holder
	start_holder "$FL_CLI" -t "$kind" -s "$F" sh -c "$HOLD"
	expect_rc 0 "$kind: filelock -s and flock -s coexist" flock -s -n "$F" true
	expect_rc 1 "$kind: filelock -s holds, flock -x -n" flock -x -n "$F" true
	stop_holder

	# A blocked flock(1) waiter proceeds once filelock lets go, and vice versa.
	start_holder "$FL_CLI" -t "$kind" "$F" sh -c "$HOLD"
	timeout "$TO" flock "$F" echo flock-ran >"$T/w1" 2>&1 7>&- 8<&- &
	w=$!
	stop_holder
	wait "$w"
	expect_rc 0 "$kind: blocked flock ran after filelock released" grep -q flock-ran "$T/w1"
	start_holder flock "$F" sh -c "$HOLD"
	timeout "$TO" "$FL_CLI" -t "$kind" "$F" echo filelock-ran >"$T/w2" 2>&1 7>&- 8<&- &
	w=$!
	stop_holder
	wait "$w"
	expect_rc 0 "$kind: blocked filelock ran after flock released" grep -q filelock-ran "$T/w2"
done

# The same exit codes as flock(1) for the same situations.
start_holder flock "$F" sh -c "$HOLD"
for args in "-n" "-w 0" "-n -E 17" "-w 0.1 -E 0"; do
	timeout "$TO" flock $args "$F" true 2>/dev/null
	want=$?
	expect_rc "$want" "same exit code as flock $args" "$FL_CLI" $args "$F" true
done
stop_holder
for cmd in "sh -c 'exit 6'" "sh -c 'kill -HUP \$\$'" "/nonexistent/cmd"; do
	timeout "$TO" sh -c "flock '$F' $cmd" 2>/dev/null
	want=$?
	expect_rc "$want" "same exit code as flock for: $cmd" sh -c "\"\$0\" '$F' $cmd" "$FL_CLI"
done

finish
