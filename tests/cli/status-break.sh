#!/bin/sh
# filelock status / break / --verbose, and signal forwarding for marker kinds.
. "${FL_TOP_SRCDIR:-.}/tests/cli/lib.sh"

PY=${FL_PYTHON3:-python3}
# json_get FILE KEY: prints a top-level value of the JSON object in FILE.
json_get() {
	"$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(json.dumps(v))' "$1" "$2"
}
# keep: saves the last command's output (expect_rc overwrites $T/out and $T/err).
keep() {
	cp "$T/out" "$T/json"
	cp "$T/err" "$T/err.kept"
}
have_py=0
"$PY" -c 'import json' 2>/dev/null && have_py=1

F=$T/lock
host=$(uname -n)

# --- status of the unix kind ---------------------------------------------------
expect_rc 0 "status of a missing lock: free" "$FL_CLI" status "$F"
expect_grep "free" "$T/out" "status says free"
start_holder "$FL_CLI" "$F" sh -c "$HOLD"
expect_rc 1 "status of a held flock: 1" "$FL_CLI" status "$F"
expect_grep "pid: $holder_line" "$T/out" "status names the holder pid"
expect_grep "host: $host" "$T/out" "status names the host"
expect_rc 1 "status --json" "$FL_CLI" status "$F" --json
keep
if [ "$have_py" = 1 ]; then
	expect_rc 0 "json pid" test "$(json_get "$T/json" pid)" = "$holder_line"
	expect_rc 0 "json state" test "$(json_get "$T/json" state)" = '"held"'
	expect_rc 0 "json kind" test "$(json_get "$T/json" kind)" = '"unix"'
	expect_rc 0 "json stale" test "$(json_get "$T/json" stale)" = false
fi
expect_rc 69 "break of a flock: nothing to break" "$FL_CLI" break "$F"
expect_grep "cannot be broken" "$T/err" "break of a flock is explained"

# --verbose names the holder at most once a second while waiting.
expect_rc 1 "--verbose -w 1.5 times out" "$FL_CLI" --verbose -w 1.5 "$F" true
expect_grep "held by pid $holder_line" "$T/err" "--verbose names the holder"
expect_grep "timeout while waiting" "$T/err" "--verbose reports the timeout"
n=$(grep -c "waiting for" "$T/err")
expect_rc 0 "--verbose reported once a second ($n lines in 1.5 s)" test "$n" -ge 1 -a "$n" -le 2
expect_rc 1 "--verbose -n" "$FL_CLI" --verbose -n "$F" true
expect_grep "failed to get lock" "$T/err" "--verbose reports the conflict"
stop_holder
expect_rc 0 "--verbose on a free lock" "$FL_CLI" --verbose "$F" true
expect_grep "getting lock took" "$T/out" "--verbose says how long it took"
expect_grep "executing true" "$T/out" "--verbose names the command"

# flock(1) locks directories too: status finds their holders.
mkdir "$T/dir"
expect_rc 0 "status of a free directory" "$FL_CLI" status "$T/dir"
expect_grep "free" "$T/out" "a free directory is free"
start_holder "$FL_CLI" -s "$T/dir" sh -c "$HOLD"
expect_rc 1 "status of a locked directory" "$FL_CLI" status "$T/dir"
expect_grep "pid: $holder_line" "$T/out" "status names the directory's holder"
expect_grep "mode: shared" "$T/out" "status gives the directory lock's mode"
stop_holder

# --- soft: status, refusal to break a live lock, --force, stale markers ---------
S=$T/soft.lock
expect_rc 0 "soft status: free" "$FL_CLI" status -t soft "$S" --json
keep
if [ "$have_py" = 1 ]; then
	expect_rc 0 "soft json: free" test "$(json_get "$T/json" held)" = false
fi
start_holder "$FL_CLI" -t soft "$S" sh -c "$HOLD"
expect_rc 1 "soft status: held" "$FL_CLI" status --kind soft "$S"
expect_grep "pid: $holder_line" "$T/out" "soft status names the pid"
expect_grep "stale: no" "$T/out" "soft status: not stale"
expect_grep "age: " "$T/out" "soft status gives the age"
expect_rc 1 "soft --verbose -w 1.2" "$FL_CLI" -t soft --verbose -w 1.2 "$S" true
expect_grep "held by pid $holder_line" "$T/err" "soft --verbose names the holder"
expect_rc 1 "break refuses a live holder" "$FL_CLI" break -t soft "$S"
expect_grep "use --force" "$T/err" "the refusal says how to force"
test -f "$S" || fail "the live marker was removed without --force"
expect_rc 0 "break --force" "$FL_CLI" break -t soft --force "$S"
expect_grep "removed live lock on $S held by pid $holder_line" "$T/out" "--force says what it removed"
test -e "$S" && fail "the marker is still there after --force"
expect_rc 0 "status after the forced break: free" "$FL_CLI" status -t soft "$S"
stop_holder

# A marker left by a dead process on this host is stale: status 2, break removes it.
dead=$(sh -c 'echo $$')
printf '%s\n%s\n%s\n' "$dead" "$host" 1 >"$S"
expect_rc 2 "status of a stale marker: 2" "$FL_CLI" status -t soft "$S"
expect_grep "stale: yes" "$T/out" "status says stale"
expect_rc 2 "status --json of a stale marker" "$FL_CLI" status -t soft --json "$S"
keep
if [ "$have_py" = 1 ]; then
	expect_rc 0 "json stale" test "$(json_get "$T/json" stale)" = true
	expect_rc 0 "json pid of the dead holder" test "$(json_get "$T/json" pid)" = "$dead"
	expect_rc 0 "json host" test "$(json_get "$T/json" host)" = "\"$host\""
fi
expect_rc 0 "break a stale marker" "$FL_CLI" break -t soft "$S"
expect_grep "removed stale lock on $S held by pid $dead" "$T/out" "break says what it removed"
test -e "$S" && fail "the stale marker is still there"
expect_rc 0 "break of a free lock" "$FL_CLI" break -t soft "$S"
expect_grep "nothing to break" "$T/out" "break of a free lock says so"

# status/break usage errors.
expect_rc 64 "status without a path" "$FL_CLI" status
expect_rc 64 "status with two paths" "$FL_CLI" status a b
expect_rc 64 "status --force" "$FL_CLI" status --force "$S"
expect_rc 64 "break --json" "$FL_CLI" break --json "$S"
expect_rc 64 "status: unknown kind" "$FL_CLI" status -t nosuch "$S"
expect_rc 64 "status: bad number" "$FL_CLI" status -t soft --stale-threshold x "$S"
expect_rc 0 "status --help" "$FL_CLI" status --help

# --- marker kinds: a kill aimed at filelock reaches the command first -----------
start_holder "$FL_CLI" -t soft "$S" sh -c "$HOLD"
kill -TERM "$holder_line"
wait "$holder_pid"
expect_rc 0 "SIGTERM to filelock: 128+15 from the command ($?)" test $? -eq 143
exec 7>&- 8<&-
expect_rc 0 "the marker is released after the command died" "$FL_CLI" status -t soft "$S"
test -e "$S" && fail "the marker outlived the command"

# --- heartbeat kinds keep their lock while the command runs (once built in) -------
# The stale bound is 0.4 s and the contender waits 1.5 s: only the heartbeat
# of the holder (a thread of the filelock process) keeps it out.
for k in lease soft-rw; do
	timeout "$TO" "$FL_CLI" status -t "$k" "$T/$k" >/dev/null 2>&1
	if [ $? -eq 69 ]; then
		echo "skip: kind $k is not built in"
		continue
	fi
	case $k in
	lease) ko="--lease-duration 0.4 --heartbeat-interval 0.1" ;;
	soft-rw) ko="--heartbeat-interval 0.1 --stale-threshold 0.4" ;;
	esac
	start_holder "$FL_CLI" -t "$k" $ko "$T/$k" sh -c "$HOLD"
	expect_rc 1 "$k: the heartbeat keeps the lock past its stale bound" \
		"$FL_CLI" -t "$k" $ko -w 1.5 "$T/$k" true
	expect_rc 1 "$k: status held" "$FL_CLI" status -t "$k" $ko "$T/$k"
	expect_grep "stale: no" "$T/out" "$k: status says not stale"
	expect_grep "heartbeat age" "$T/out" "$k: status gives the heartbeat age"
	expect_rc 1 "$k: break refuses the live holder" "$FL_CLI" break -t "$k" $ko "$T/$k"
	stop_holder
	expect_rc 0 "$k: free after the command" "$FL_CLI" -t "$k" $ko -n "$T/$k" true
done

# --- every kind that is built in runs a command and passes its status through ----
for k in strict lease rw soft-rw; do
	timeout "$TO" "$FL_CLI" -t "$k" "$T/any.$k" sh -c 'exit 0' >"$T/out" 2>"$T/err"
	if [ $? -eq 69 ]; then
		echo "skip: kind $k is not built in"
		continue
	fi
	expect_rc 6 "$k: child status" "$FL_CLI" -t "$k" "$T/any.$k" sh -c 'exit 6'
	start_holder "$FL_CLI" -t "$k" "$T/any.$k" sh -c "$HOLD"
	expect_rc 1 "$k: -n conflict" "$FL_CLI" -t "$k" -n "$T/any.$k" true
	expect_rc 1 "$k: status held" "$FL_CLI" status -t "$k" "$T/any.$k"
	stop_holder
	expect_rc 0 "$k: status free after release" "$FL_CLI" status -t "$k" "$T/any.$k"
done
# strict: claims are broken by name only.
timeout "$TO" "$FL_CLI" status -t strict "$T/strict" >/dev/null 2>&1
if [ $? -ne 69 ]; then
	start_holder "$FL_CLI" -t strict "$T/strict" sh -c "$HOLD"
	expect_rc 64 "strict: --force without --claim" "$FL_CLI" break -t strict --force "$T/strict"
	expect_grep "claim NAME" "$T/err" "strict: the refusal says how to name a claim"
	name=$(ls "$T/strict.filelock/claims" | grep '^held-' | head -n 1)
	expect_rc 1 "strict: a named live claim needs --force" "$FL_CLI" break -t strict \
		--claim "$name" "$T/strict"
	expect_rc 0 "strict: break --force --claim" "$FL_CLI" break -t strict --force \
		--claim "$name" "$T/strict"
	expect_grep "removed live lock" "$T/out" "strict: says what it removed"
	expect_rc 0 "strict: free afterwards" "$FL_CLI" status -t strict "$T/strict"
	stop_holder
fi

for k in rw soft-rw; do
	timeout "$TO" "$FL_CLI" -t "$k" "$T/sh.$k" true >/dev/null 2>&1
	[ $? -eq 69 ] && continue
	start_holder "$FL_CLI" -t "$k" -s "$T/sh.$k" sh -c "$HOLD"
	expect_rc 0 "$k: two readers" "$FL_CLI" -t "$k" -s -n "$T/sh.$k" true
	expect_rc 1 "$k: a writer waits for the reader" "$FL_CLI" -t "$k" -n "$T/sh.$k" true
	expect_rc 1 "$k: status shows the reader" "$FL_CLI" status --json -t "$k" "$T/sh.$k"
	expect_grep '"readers":1' "$T/out" "$k: one reader in --json"
	stop_holder
done

# --- the shim's byte-range owners (fcntl/lockf emulation) ----------------------
# status lists each owner file of "<marker>.ranges" (host, pid, ranges,
# liveness); break removes only a provably dead owner's (this host, its pid
# gone), never another host's nor an unparsable one.
R=$T/r.dat
mkdir "$R.lock.ranges"
dead=$(sh -c 'echo $$')
printf 'filelock-ranges 1\nhost %s\npid %s\ntoken x\nowner posix\nW 5 5\nR 20 9223372036854775807\n' \
	"$host" "$dead" >"$R.lock.ranges/p.$dead.x@$host"
printf 'filelock-ranges 1\nhost elsewhere\npid 7\ntoken y\nowner ofd 2\nW 0 9\n' \
	>"$R.lock.ranges/o.7.y.2@elsewhere"
printf 'not an owner file\n' >"$R.lock.ranges/p.8.z@elsewhere"
# Temporaries: the dead owner's leftovers (random and old fixed name) go
# with it; a FIFO and a symlink at its temporary names, and a live owner's
# temporary, stay.
h1=0123456789abcdef0123456789abcdef h2=fedcba9876543210fedcba9876543210
rtmp=$R.lock.ranges/.tmp.p.$dead.x@$host
printf 'filelock-ranges 1\n' >"$rtmp.$h1"
printf 'filelock-ranges 1\n' >"$rtmp"
mkfifo "$rtmp.$h2"
ln -s "$T/r.dat" "$rtmp.00112233445566778899aabbccddeeff"
printf 'filelock-ranges 1\n' >"$R.lock.ranges/.tmp.o.7.y.2@elsewhere.$h1"
expect_rc 0 "ranges: status (the marker is free)" "$FL_CLI" status -t soft "$R.lock"
expect_grep "host $host, pid $dead, process lock, alive no, .*: W 5-5 R 20-" "$T/out" \
	"ranges: status lists the dead local owner and its ranges"
expect_grep "host elsewhere, pid 7, open-file-description lock, alive unknown (another host).*: W 0-9" \
	"$T/out" "ranges: status lists the other host's owner"
expect_grep "p.8.z@elsewhere: not a valid owner file" "$T/out" "ranges: status names the corrupt file"
if [ "$have_py" = 1 ]; then
	expect_rc 0 "ranges: status --json" "$FL_CLI" status --json -t soft "$R.lock"
	keep
	v=$(json_get "$T/json" range_owners | "$PY" -c 'import json,sys
v = {o["name"]: o for o in json.load(sys.stdin)}
print(len(v), v["p.'"$dead"'.x@'"$host"'"]["alive"], v["p.'"$dead"'.x@'"$host"'"]["ranges"],
      v["o.7.y.2@elsewhere"]["alive"], v["p.8.z@elsewhere"]["malformed"])')
	[ "$v" = "3 False [['W', 5, 5], ['R', 20, 9223372036854775807]] None True" ] &&
		pass "ranges: --json lists the owners" || fail "ranges: --json gave: $v"
fi
expect_rc 0 "ranges: break" "$FL_CLI" break -t soft "$R.lock"
expect_grep "removed the byte-range locks of dead pid $dead" "$T/out" "ranges: break says what it removed"
[ ! -e "$R.lock.ranges/p.$dead.x@$host" ] && [ -e "$R.lock.ranges/o.7.y.2@elsewhere" ] &&
	[ -e "$R.lock.ranges/p.8.z@elsewhere" ] &&
	pass "ranges: break removed the dead owner's file only" ||
	fail "ranges: break removed the wrong files: $(ls "$R.lock.ranges" | tr '\n' ' ')"
[ ! -e "$rtmp.$h1" ] && [ ! -e "$rtmp" ] && [ -p "$rtmp.$h2" ] &&
	[ -L "$rtmp.00112233445566778899aabbccddeeff" ] &&
	[ -e "$R.lock.ranges/.tmp.o.7.y.2@elsewhere.$h1" ] &&
	pass "ranges: break removed the dead owner's temporaries, nothing else" ||
	fail "ranges: break and temporaries: $(ls -a "$R.lock.ranges" | tr '\n' ' ')"

finish
