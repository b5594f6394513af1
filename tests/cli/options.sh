#!/bin/sh
# filelock(1): options, usage errors and exit codes of the lock form.
. "${FL_TOP_SRCDIR:-.}/tests/cli/lib.sh"

F=$T/lock
fl() { "$FL_CLI" "$@"; }

# --- help, version, usage errors (64) with a clear message ---------------------
expect_rc 0 "--help" "$FL_CLI" --help
expect_grep "Usage:" "$T/out" "--help prints usage on stdout"
expect_rc 0 "-V" "$FL_CLI" -V
expect_grep "libfilelock" "$T/out" "-V names the library"
expect_rc 74 "a failed write to stdout is an error" sh -c '"$0" -V >/dev/full' "$FL_CLI"
expect_rc 64 "no arguments" "$FL_CLI"
expect_rc 64 "unknown option" "$FL_CLI" --bogus "$F" true
expect_grep "unrecognized option '--bogus'" "$T/err" "unknown option is named"
expect_rc 64 "missing option argument" "$FL_CLI" -E
expect_grep "requires an argument" "$T/err" "missing argument is explained"
expect_rc 64 "-w without argument" "$FL_CLI" -w
for bad in abc -1 1x '' nan inf 1e999 ' 1'; do
	expect_rc 64 "bad timeout '$bad'" "$FL_CLI" -w "$bad" "$F" true
	expect_grep "invalid timeout" "$T/err" "bad timeout '$bad' is explained"
done
for bad in 256 -1 abc 1.5 ''; do
	expect_rc 64 "bad -E '$bad'" "$FL_CLI" -E "$bad" "$F" true
	expect_grep "invalid exit code" "$T/err" "bad -E '$bad' is explained"
done
for o in --heartbeat-interval --stale-threshold --lease-duration --poll-interval --lifetime; do
	expect_rc 64 "bad $o" "$FL_CLI" -t soft "$o" x1 "$F" true
	expect_grep "invalid" "$T/err" "bad $o is explained"
done
expect_rc 64 "bad --mode" "$FL_CLI" --mode 0999 "$F" true
expect_grep "invalid mode" "$T/err" "bad --mode is explained"
expect_rc 64 "unknown kind" "$FL_CLI" -t nosuch "$F" true
expect_grep "unknown lock kind 'nosuch'" "$T/err" "unknown kind is named"
expect_rc 64 "--kind=nosuch" "$FL_CLI" --kind=nosuch "$F" true
expect_rc 64 "-F with -o" "$FL_CLI" -F -o "$F" true
expect_grep "incompatible" "$T/err" "-F -o is explained"
expect_rc 64 "-c takes exactly one argument" "$FL_CLI" "$F" -c true extra
expect_rc 64 "a bare word is not a file descriptor" "$FL_CLI" "$F"
expect_rc 64 "a huge fd number" "$FL_CLI" 99999999999
expect_rc 64 "-u with a command" "$FL_CLI" -u "$F" true
expect_rc 64 "fd form with another kind" "$FL_CLI" -t soft 0
expect_rc 64 "-F with a marker kind" "$FL_CLI" -F -t soft "$F.soft" true
expect_grep "kind unix only" "$T/err" "-F with a marker kind is explained"
expect_rc 64 "-s with an exclusive-only kind" "$FL_CLI" -s -t soft "$F.soft" true
expect_grep "no shared mode" "$T/err" "-s with soft is explained"
expect_rc 64 "invalid kind options (library)" "$FL_CLI" -t soft --lifetime 0 -t unix "$F" true

# --- commands: status pass-through, 128+signal, -c, exec failures --------------
expect_rc 0 "command runs" "$FL_CLI" "$F" true
expect_rc 7 "child exit status passes through" "$FL_CLI" "$F" sh -c 'exit 7'
expect_rc 143 "signalled child: 128+SIGTERM" "$FL_CLI" "$F" sh -c 'kill -TERM $$'
expect_rc 137 "signalled child: 128+SIGKILL" "$FL_CLI" "$F" sh -c 'kill -KILL $$'
expect_rc 3 "-c runs through the shell" env SHELL=/bin/sh "$FL_CLI" "$F" -c 'echo a b; exit 3'
expect_grep "^a b$" "$T/out" "-c output"
expect_rc 4 "--command" "$FL_CLI" "$F" --command 'exit 4'
expect_rc 69 "command not found" "$FL_CLI" "$F" /nonexistent/cmd
expect_grep "failed to execute" "$T/err" "exec failure is explained"
expect_rc 69 "-F: command not found" "$FL_CLI" -F "$F" /nonexistent/cmd
expect_rc 5 "marker kind: child status" "$FL_CLI" -t soft "$F.soft" sh -c 'exit 5'
expect_rc 130 "marker kind: 128+SIGINT" "$FL_CLI" -t soft "$F.soft" sh -c 'kill -INT $$'
expect_rc 0 "marker kind: released afterwards" "$FL_CLI" -n -t soft "$F.soft" true
expect_rc 0 "directories can be locked" "$FL_CLI" -n "$T" true
mkdir "$T/d"
expect_rc 0 "symlinks are followed, content kept" sh -c \
	'echo keep >"$1/content" && ln -s content "$1/link" && "$2" "$1/link" true &&
	 test "$(cat "$1/content")" = keep && test -L "$1/link"' sh "$T" "$FL_CLI"

# --- cannot open: 66; read-only filesystem: 73 ---------------------------------
: >"$T/plain"
expect_rc 66 "lock file under a regular file" "$FL_CLI" "$T/plain/x" true
expect_grep "cannot open lock file" "$T/err" "open failure is explained"
expect_rc 66 "marker kind: lock under a regular file" "$FL_CLI" -t soft "$T/plain/x" true
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$T/ro" && chmod 555 "$T/ro"
	expect_rc 66 "unwritable directory" "$FL_CLI" "$T/ro/x" true
	expect_rc 66 "marker kind: unwritable directory" "$FL_CLI" -t soft "$T/ro/x" true
else
	expect_rc 66 "unwritable path (/sys)" "$FL_CLI" /sys/fl-cli-test true
fi
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null &&
	timeout "$TO" unshare -m true 2>/dev/null; then
	mkdir "$T/rofs"
	for k in unix soft; do
		expect_rc 73 "read-only filesystem ($k)" timeout "$TO" unshare -m sh -c \
			'mount -t tmpfs -o ro none "$1" && exec "$2" -t "$3" "$1/x" true' \
			sh "$T/rofs" "$FL_CLI" "$k"
	done
else
	echo "skip: EROFS check needs root and unshare -m"
fi

# --- conflicts: -n, -w 0, -w SECS, -E --------------------------------------------
for kind in unix file soft; do
	start_holder "$FL_CLI" -t "$kind" "$F.$kind" sh -c "$HOLD"
	expect_rc 1 "$kind: -n on a held lock" "$FL_CLI" -t "$kind" -n "$F.$kind" true
	expect_rc 1 "$kind: --nonblock" "$FL_CLI" -t "$kind" --nonblock "$F.$kind" true
	expect_rc 42 "$kind: -E 42" "$FL_CLI" -t "$kind" -n -E 42 "$F.$kind" true
	expect_rc 0 "$kind: -E 0" "$FL_CLI" -t "$kind" -n -E 0 "$F.$kind" echo ran
	if [ -s "$T/out" ]; then fail "$kind: the command ran without the lock"; fi
	expect_rc 1 "$kind: -w 0 is -n" "$FL_CLI" -t "$kind" -w 0 "$F.$kind" true
	expect_rc 9 "$kind: -w 0 -E 9" "$FL_CLI" -t "$kind" -w 0 -E 9 "$F.$kind" true
	t0=$(date +%s%N)
	expect_rc 1 "$kind: -w 0.3 times out" "$FL_CLI" -t "$kind" -w 0.3 "$F.$kind" true
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	if [ "$ms" -ge 290 ] && [ "$ms" -lt 5000 ]; then
		pass "$kind: -w 0.3 waited ${ms} ms"
	else
		fail "$kind: -w 0.3 waited ${ms} ms"
	fi
	expect_rc 3 "$kind: --timeout=0.1 -E 3" "$FL_CLI" -t "$kind" --timeout=0.1 -E 3 "$F.$kind" true
	stop_holder
	expect_rc 0 "$kind: holder exit status" test "$holder_rc" -eq 0
	expect_rc 0 "$kind: -n once released" "$FL_CLI" -t "$kind" -n "$F.$kind" true
done

# --- shared locks ---------------------------------------------------------------
for kind in unix file; do
	start_holder "$FL_CLI" -t "$kind" -s "$F.$kind" sh -c "$HOLD"
	expect_rc 0 "$kind: two shared holders" "$FL_CLI" -t "$kind" -s -n "$F.$kind" true
	expect_rc 1 "$kind: exclusive vs shared" "$FL_CLI" -t "$kind" -x -n "$F.$kind" true
	expect_rc 1 "$kind: -e vs shared" "$FL_CLI" -t "$kind" -e -n "$F.$kind" true
	stop_holder
	start_holder "$FL_CLI" -t "$kind" "$F.$kind" sh -c "$HOLD"
	expect_rc 1 "$kind: shared vs exclusive" "$FL_CLI" -t "$kind" -s -n "$F.$kind" true
	stop_holder
done

# --- a blocked waiter gets the lock when the holder lets go ----------------------
start_holder "$FL_CLI" "$F" sh -c "$HOLD"
timeout "$TO" "$FL_CLI" "$F" echo waiter-ran >"$T/waiter" 2>&1 7>&- 8<&- &
wpid=$!
if [ -s "$T/waiter" ]; then fail "the waiter ran while the lock was held"; fi
stop_holder
wait "$wpid"
expect_rc 0 "blocked waiter ran after release (exit $?)" grep -q waiter-ran "$T/waiter"

# --- the lock fd: inherited by the command unless -o -----------------------------
# The filelock process is killed; the lock stays held exactly when the command
# inherited the descriptor.
for o in "" -o; do
	start_holder "$FL_CLI" $o "$F" sh -c "$HOLD"
	kill -KILL "$holder_line"
	want=1
	[ "$o" = -o ] && want=0
	expect_rc "$want" "with '$o' after the wrapper died" "$FL_CLI" -n "$F" true
	stop_holder
done

# --- -F: exec in place, keeps the lock -----------------------------------------------
expect_rc 0 "-F execs in place" sh -c \
	'me=$$; exec timeout "$2" "$1" -F "$3" sh -c "test \$PPID -eq $me"' sh "$FL_CLI" "$TO" "$F"
expect_rc 1 "without -F the command is a child" sh -c \
	'me=$$; exec timeout "$2" "$1" "$3" sh -c "test \$PPID -eq $me"' sh "$FL_CLI" "$TO" "$F"
expect_rc 1 "-F keeps the lock in the exec'd command" "$FL_CLI" -F "$F" \
	flock -n "$F" true

# --- the fd form ------------------------------------------------------------------
expect_rc 0 "fd form: lock, conflict, unlock" sh -c '
	exec 9>"$2"
	"$1" -n 9 || exit 10
	flock -n "$2" true && exit 11
	"$1" -u 9 || exit 12
	flock -n "$2" true || exit 13
	"$1" -s 9 || exit 14
	flock -s -n "$2" true || exit 15
	flock -x -n "$2" true && exit 16
	exit 0' sh "$FL_CLI" "$F"
expect_rc 65 "fd form: closed descriptor" sh -c 'exec 9>&-; exec "$1" 9' sh "$FL_CLI"
expect_rc 65 "fd form: -u on a closed descriptor" sh -c 'exec 9>&-; exec "$1" -u 9' sh "$FL_CLI"
expect_rc 1 "fd form: -n conflict" sh -c 'exec 9>"$2"; flock "$2" sh -c "exec \"\$0\" -n 9" "$1"' \
	sh "$FL_CLI" "$F"

# --- kinds not built in ------------------------------------------------------------
for k in strict lease rw soft-rw etcd; do
	timeout "$TO" "$FL_CLI" -t "$k" "$F.$k" true >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 69 ]; then
		expect_grep "lock kind $k is not built into" "$T/err" "$k: not built in, exit 69"
	elif [ "$rc" -eq 0 ]; then
		pass "$k: built in and works"
	elif [ "$k" = etcd ] && grep -q 'etcd /v3/.* failed (' "$T/err"; then
		# Built in; working needs a cluster (tests/etcd/ start one).
		pass "etcd: built in, clear error without a cluster (exit $rc)"
	else
		fail "$k: exit $rc: $(cat "$T/err")"
	fi
done

finish
