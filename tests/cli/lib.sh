# Shared helpers of the tests/cli suites (sourced, POSIX sh).
#
# Every command runs under `timeout`, so a deadlock fails the test instead of
# hanging `make check`.  Processes synchronise through FIFOs, never sleeps:
# a holder prints "ready" once it holds the lock, and lets go when the test
# closes the FIFO that feeds its stdin.

: "${FL_CLI:?FL_CLI is not set; run through make check}"
if [ ! -x "$FL_CLI" ]; then
	echo "FL_CLI=$FL_CLI is not executable" >&2
	exit 99
fi
TO=${FL_TEST_TIMEOUT:-20}
fails=0
T=$(mktemp -d -t fl-cli.XXXXXX) || exit 99
holders=

cleanup() {
	for h in $holders; do
		kill -KILL "$h" 2>/dev/null
	done
	exec 7>&- 8<&- 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

pass() {
	echo "ok: $*"
}

# expect_rc WANT DESCRIPTION CMD... : runs CMD (under timeout) and checks its exit status.
# Its stdout and stderr are kept in $T/out and $T/err.
expect_rc() {
	want=$1
	what=$2
	shift 2
	timeout "$TO" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		pass "$what (exit $rc)"
	else
		fail "$what: exit $rc, want $want; stderr: $(cat "$T/err")"
	fi
}

# expect_grep PATTERN FILE DESCRIPTION
expect_grep() {
	if grep -q -e "$1" "$2"; then
		pass "$3"
	else
		fail "$3: '$1' not in $(cat "$2")"
	fi
}

# start_holder CMD... : runs `CMD sh -c 'echo ready; read x'`-style holders.
# CMD must print one line once it holds the lock and then wait for EOF on
# stdin; start_holder returns once that line has arrived, and sets
# $holder_pid (the timeout wrapper) and $holder_line.
start_holder() {
	rm -f "$T/hin" "$T/hout"
	mkfifo "$T/hin" "$T/hout" || exit 99
	timeout "$TO" "$@" <"$T/hin" >"$T/hout" 2>"$T/herr" &
	holder_pid=$!
	holders="$holders $holder_pid"
	exec 7>"$T/hin"
	exec 8<"$T/hout"
	holder_line=
	if ! read -r holder_line <&8; then
		echo "holder did not start: $(cat "$T/herr")" >&2
		exit 99
	fi
}

# stop_holder: lets the holder go, waits for it and sets $holder_rc.
stop_holder() {
	exec 7>&-
	wait "$holder_pid"
	holder_rc=$?
	exec 8<&-
}

# A shell snippet for holders: prints a line (its parent's pid, which is the
# filelock process when filelock spawned it) and waits for EOF on stdin.
HOLD='echo $PPID; read x; exit 0'

finish() {
	if [ "$fails" -ne 0 ]; then
		echo "$fails check(s) failed" >&2
		exit 1
	fi
	exit 0
}
