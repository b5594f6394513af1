#!/bin/sh
# SPDX-License-Identifier: MIT
# soft-rw interop with Python's SoftReadWriteLock on the same lock path:
# mixed readers overlap, writers exclude readers and writers of the other
# language, a mixed N x M counter loses no update, and each side evicts the
# other's SIGKILLed holder.  Processes synchronise through FIFOs.
set -u

skip() {
	if [ "${FL_REQUIRE_ALL:-0}" = 1 ]; then
		echo "FAIL (required): $*" >&2
		exit 99
	fi
	echo "SKIP: $*" >&2
	exit 77
}

PY=${FL_PYTHON3:-/usr/bin/python3}
[ -n "$PY" ] || PY=/usr/bin/python3
[ -n "${FL_PEER_DIR:-}" ] && [ -d "$FL_PEER_DIR/filelock" ] ||
	skip "Python peer not found (FL_PEER_DIR=${FL_PEER_DIR:-unset})"
[ -x "$PY" ] || skip "no python3 at $PY"
PEER="${FL_TOP_SRCDIR}/tests/interop/softrw_peer.py"
HOLDER=${FL_HOLDER:-$FL_TOP_BUILDDIR/tests/helpers/fl-holder}
COUNTER=${FL_COUNTER:-$FL_TOP_BUILDDIR/tests/helpers/fl-counter}
PYTHONPATH=$FL_PEER_DIR
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH PYTHONDONTWRITEBYTECODE

HB=0.2
STALE=0.6
COPT="-t soft-rw -o protocol=legacy -o heartbeat_interval=$HB -o stale_threshold=$STALE -o poll_interval=0.01"
T=$(mktemp -d) || exit 99
L=$T/d/x.lock
PIDS=
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

now() { date +%s.%N; }

# start CMD...: runs CMD with stdin/stdout on FIFOs in one of three slots
# (POSIX shells only promise descriptors 0-9): its input is descriptor
# SLOT+2 (written by `tell`), its output SLOT+5 (read by `hear`).
N=0
start() {
	N=$((N + 1))
	SLOT=$(((N - 1) % 3 + 1))
	eval "exec $((SLOT + 2))>&- $((SLOT + 5))<&-"
	mkfifo "$T/in$N" "$T/out$N"
	"$@" <"$T/in$N" >"$T/out$N" &
	PIDS="$PIDS $!"
	LASTPID=$!
	eval "exec $((SLOT + 2))>\"\$T/in\$N\" $((SLOT + 5))<\"\$T/out\$N\""
}
hear() { # hear SLOT -> first word of the next line in $WORD
	eval "read -r WORD REST <&$(($1 + 5))" || WORD=EOF
}
tell() { # tell SLOT LINE
	eval "echo \"\$2\" >&$(($1 + 2))"
}

timeout 60 true || skip "no timeout(1)"

# 1. A Python writer excludes C readers and writers.
start "$PY" "$PEER" hold write "$L" $HB $STALE; P1=$SLOT
hear $P1; [ "$WORD" = ready ] || fail "python writer: $WORD $REST"
timeout 20 "$HOLDER" $COPT -s -w 0.5 "$L" </dev/null >/dev/null
[ $? = 1 ] || fail "C reader got in while a Python writer held the lock"
timeout 20 "$HOLDER" $COPT -w 0.5 "$L" </dev/null >"$T/c1"
[ $? = 1 ] || fail "C writer got in while a Python writer held the lock"
# C parses Python's marker: the timeout names the Python holder.
grep -q "held by pid $REST on $(uname -n)" "$T/c1" || fail "C did not name the Python holder: $(cat "$T/c1")"
tell $P1 x; hear $P1; [ "$WORD" = released ] || fail "python release: $WORD"

# 2. A C reader and a Python reader overlap; writers of both sides wait.
start "$HOLDER" $COPT -s "$L"; C1=$SLOT
hear $C1; [ "$WORD" = ready ] || fail "C reader: $WORD $REST"
# Python parses C's marker bytes with its own parser.
"$PY" - "$L.readers" "$REST" <<'PYEOF' || fail "Python cannot parse the C reader marker"
import os, sys
from filelock._soft_rw._sync import _parse_marker_bytes
d, pid = sys.argv[1], int(sys.argv[2])
names = [n for n in os.listdir(d) if not n.startswith(".")]
assert len(names) == 1 and names[0].endswith(f".{pid}"), names
with open(os.path.join(d, names[0]), "rb") as f:
    info = _parse_marker_bytes(f.read())
assert info is not None and info.pid == pid, info
PYEOF
start "$PY" "$PEER" hold read "$L" $HB $STALE; P2=$SLOT
hear $P2; [ "$WORD" = ready ] || fail "python reader did not overlap a C reader"
timeout 20 "$PY" "$PEER" try write "$L" $HB $STALE 0.5
[ $? = 1 ] || fail "Python writer got in while readers held the lock"
timeout 20 "$HOLDER" $COPT -w 0.5 "$L" </dev/null >/dev/null
[ $? = 1 ] || fail "C writer got in while readers held the lock"
tell $C1 release; hear $C1
tell $P2 x; hear $P2; [ "$WORD" = released ] || fail "python reader release"
# A C writer excludes Python readers.
start "$HOLDER" $COPT "$L"; C2=$SLOT
hear $C2; [ "$WORD" = ready ] || fail "C writer: $WORD $REST"
timeout 20 "$PY" "$PEER" try read "$L" $HB $STALE 0.5
[ $? = 1 ] || fail "Python reader got in while a C writer held the lock"
tell $C2 release; hear $C2
timeout 20 "$PY" "$PEER" try read "$L" $HB $STALE 0 || fail "Python reader after release"

# 3. Mixed N x M counter: two C and two Python writers.
M=25
echo 0 >"$T/counter"
timeout 120 "$COUNTER" $COPT -n $M "$L" "$T/counter" & a=$!
timeout 120 "$COUNTER" $COPT -n $M "$L" "$T/counter" & b=$!
timeout 120 "$PY" "$PEER" count "$L" "$T/counter" $M $HB $STALE & c=$!
timeout 120 "$PY" "$PEER" count "$L" "$T/counter" $M $HB $STALE & d=$!
for p in $a $b $c $d; do
	wait $p || fail "counter worker $p exited $?"
done
got=$(tr -d ' \n' <"$T/counter")
[ "$got" = $((4 * M)) ] || fail "mixed counter is $got, want $((4 * M))"

# 4. C evicts a SIGKILLed Python writer: after stale_threshold, not before.
start "$PY" "$PEER" hold write "$L" $HB $STALE; P3=$SLOT
hear $P3; [ "$WORD" = ready ] || fail "python writer: $WORD"
kill -9 "$LASTPID"
t0=$(now)
timeout 20 "$HOLDER" $COPT -w 10 "$L" </dev/null >"$T/c4" || fail "C could not evict a dead Python writer"
t1=$(now)
awk -v a="$t0" -v b="$t1" -v s=$STALE 'BEGIN { exit !(b - a >= s) }' ||
	fail "C evicted a Python writer before stale_threshold ($t0 -> $t1)"
grep -q ready "$T/c4" || fail "C holder output: $(cat "$T/c4")"

# 5. Python evicts a SIGKILLed C writer and a SIGKILLed C reader.
for mode in "" -s; do
	start "$HOLDER" $COPT $mode "$L"; C3=$SLOT
	hear $C3; [ "$WORD" = ready ] || fail "C holder: $WORD"
	kill -9 "$LASTPID"
	timeout 20 "$PY" "$PEER" try write "$L" $HB $STALE 10 ||
		fail "Python could not evict a dead C holder ($mode)"
done
[ -e "$L.write" ] && fail "a writer marker was left behind"
[ -e "$L.state" ] && fail "a .state marker was left behind"
exit 0
