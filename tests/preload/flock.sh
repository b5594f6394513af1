# SPDX-License-Identifier: MIT
# flock.sh -- util-linux flock(1) through the shim: -x, -s, -n, -w 1, -c,
# -u, the `exec 9>lock; flock 9` shell idiom, and K x M increments of a
# counter under the soft kind, exact, with every lock redirected.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"

command -v flock >/dev/null || skip_or_fail "util-linux flock(1) is not installed"
flp_policy "$T/*.lck soft" "$T/rd/*.lck soft shared=reader"
mkdir "$T/rd"
L=$T/a.lck
mkfifo "$T/ready" "$T/go"

# Starts a holder: shim flock ARGS... $1 holding until "$T/go" is written.
hold() {
	shim flock "$@" -c "echo held > '$T/ready'; read x < '$T/go'" &
	FLP_PIDS="$FLP_PIDS $!"
	HOLDER=$!
	read -r x < "$T/ready"
}
release() { echo go > "$T/go"; wait "$HOLDER" || fail "holder exited $?"; }

# -x: exclusive; -n fails at once with exit 1; the marker is there.
hold -x "$L"
[ -f "$L.lock" ] || fail "no soft marker while flock -x holds"
shim flock -x -n "$L" true && fail "flock -x -n got a held lock"
shim flock -s -n "$L" true && fail "flock -s -n got an exclusively held lock"
# -w 1: waits, then the timer's signal interrupts the wait (EINTR): exit 1.
start=$(date +%s)
shim flock -w 1 "$L" true && fail "flock -w 1 got a held lock"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "flock -w 1 did not stop waiting"
# -E: the conflict exit code is ours to choose, as with the kernel.
shim flock -n -E 42 "$L" true; [ $? = 42 ] || fail "flock -n -E 42"
release
[ ! -e "$L.lock" ] || fail "marker left after the holder exited"
shim flock -n "$L" true || fail "flock -n after release"

# -s with the soft kind (exclusive-only, shared=exclusive): readers exclude.
hold -s "$L"
shim flock -s -n "$L" true && fail "soft: a second reader got in (shared=exclusive)"
release
# shared=reader: readers share the kernel's lock, writers exclude them.
R=$T/rd/r.lck
hold -s "$R"
shim flock -s -n "$R" true || fail "shared=reader: second reader refused"
shim flock -x -n "$R" true && fail "shared=reader: writer got in with a reader"
release
hold -x "$R"
shim flock -s -n "$R" true && fail "shared=reader: reader got in with a writer"
release

# The shell idiom: the lock is taken by flock(1) on the shell's descriptor and
# kept by the shell after flock(1) exits, released by flock -u and at exit.
shim bash -c "
	exec 9>'$L'
	flock 9 || exit 11
	[ -f '$L.lock' ] || exit 12
	flock -n '$L' true && exit 13
	flock -u 9 || exit 14
	[ ! -e '$L.lock' ] || exit 15
	flock -n '$L' true || exit 16
	flock 9 || exit 17
	exit 0
" || fail "exec 9>lock; flock 9 idiom (exit $?)"
[ ! -e "$L.lock" ] || fail "the shell exited holding the lock; marker not released"

# K x M: every increment under flock -x, each lock redirected to the marker.
K=3 M=10
echo 0 > "$T/counter"
: > "$T/trace"
i=0
while [ $i -lt $K ]; do
	(
		j=0
		while [ $j -lt $M ]; do
			FILELOCK_PRELOAD_DEBUG=1 shim flock -x "$L" \
				sh -c 'v=$(cat "$1"); echo $((v + 1)) > "$1"' sh "$T/counter" \
				2>>"$T/trace" || exit 1
			j=$((j + 1))
		done
	) &
	FLP_PIDS="$FLP_PIDS $!"
	i=$((i + 1))
done
for p in $FLP_PIDS; do wait "$p" 2>/dev/null; done
[ "$(cat "$T/counter")" = $((K * M)) ] || fail "counter $(cat "$T/counter") != $((K * M))"
n=$(grep -c 'LOCK_EX) on .*/a.lck -> soft .*/a.lck.lock: acquired' "$T/trace")
[ "$n" = $((K * M)) ] || fail "$n of $((K * M)) locks went through the shim"
[ ! -e "$L.lock" ] || fail "marker left after the counter run"

# A one-shot timer ends a blocking wait (the alarm() idiom): Python's handler
# (no SA_RESTART) raises from the interrupted flock.  (That a signal landing
# between two tries is not lost is shown for the same wait code by the
# alarm scenario of ranges.sh, with many timers.)
printf '%s\n' "$T/*.ost soft poll_interval=0.01" > "$T/ost.conf"
mkfifo "$T/ost.held" "$T/ost.go"
FILELOCK_PRELOAD_CONFIG=$T/ost.conf shim flock "$T/a.ost" \
	sh -c 'echo held; read x < "$1"' sh "$T/ost.go" > "$T/ost.held" &
FLP_PIDS="$FLP_PIDS $!"
read -t 30 line < "$T/ost.held" || fail "one-shot timer: the holder never reported"
for i in 1 2 3 4 5; do
	FILELOCK_PRELOAD_CONFIG=$T/ost.conf shim /usr/bin/python3 -c '
import fcntl, os, signal, sys
def on_alarm(sig, frame):
    raise TimeoutError
signal.signal(signal.SIGALRM, on_alarm)
fd = os.open(sys.argv[1], os.O_RDWR)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    fcntl.flock(fd, fcntl.LOCK_EX)
except TimeoutError:
    sys.exit(0)
sys.exit(3)' "$T/a.ost" || fail "one-shot timer $i: the wait was not interrupted (exit $?)"
done
echo go > "$T/ost.go"

# Hand-off: with poll_interval=30s a shimmed waiter still holds soon after
# the release (the library's wait wakes on it), for soft and soft-rw.
for kind in soft soft-rw; do
	printf '%s\n' "$T/*.ho $kind poll_interval=30s" > "$T/ho.conf"
	mkfifo "$T/ho.held" "$T/ho.go" "$T/ho.busy"
	FILELOCK_PRELOAD_CONFIG=$T/ho.conf shim flock "$T/$kind.ho" \
		sh -c 'echo held > "$1"; read x < "$2"' sh "$T/ho.held" "$T/ho.go" &
	FLP_PIDS="$FLP_PIDS $!"
	h=$!
	read -r x < "$T/ho.held"
	FILELOCK_PRELOAD_CONFIG=$T/ho.conf shim /usr/bin/python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sys.exit(4)
except BlockingIOError:
    pass
with open(sys.argv[2], "w") as f:
    f.write("busy\n")
fcntl.flock(fd, fcntl.LOCK_EX)
print(time.monotonic())' "$T/$kind.ho" "$T/ho.busy" > "$T/ho.got" &
	FLP_PIDS="$FLP_PIDS $!"
	w=$!
	read -r x < "$T/ho.busy"
	released=$(/usr/bin/python3 -c 'import time; print(time.monotonic())')
	echo go > "$T/ho.go"
	wait "$h" || fail "$kind hand-off: holder exited $?"
	wait "$w" || fail "$kind hand-off: waiter exited $?"
	/usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) - float(sys.argv[2]) < 10 else 1)' \
		"$(cat "$T/ho.got")" "$released" ||
		fail "$kind hand-off: the waiter held $(cat "$T/ho.got") s, released at $released s"
	rm -f "$T/ho.held" "$T/ho.go" "$T/ho.busy"
done
echo "PASS"
