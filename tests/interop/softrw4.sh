#!/bin/sh
# SPDX-License-Identifier: MIT
# filelock-rw/1 interop with Python filelock 4's SoftReadWriteLock on the
# same lock path: each side's writer keeps out the other's writers and
# readers, readers share, a mixed N x M counter loses no update and its
# fencing tokens (C and Python alternating) strictly increase, each side
# recovers the other's SIGKILLed writer within stale_threshold + 2 s and not
# before, and the records C writes equal Python's byte for byte once tokens,
# nonces and pids are masked.  Then mixed deployments: the legacy protocol
# (C legacy mode, Python 3.32.3) and filelock-rw/1 refuse each other in both
# directions.  Processes synchronise through FIFOs.
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
[ -n "${FL_PEER4_DIR:-}" ] && [ -d "$FL_PEER4_DIR/filelock" ] ||
	skip "Python filelock 4 peer not found (FL_PEER4_DIR=${FL_PEER4_DIR:-unset})"
[ -x "$PY" ] || skip "no python3 at $PY"
PEER="${FL_TOP_SRCDIR}/tests/interop/softrw4_peer.py"
PEER3="${FL_TOP_SRCDIR}/tests/interop/softrw_peer.py"
HOLDER=${FL_HOLDER:-$FL_TOP_BUILDDIR/tests/helpers/fl-holder}
COUNTER=${FL_COUNTER:-$FL_TOP_BUILDDIR/tests/helpers/fl-counter}
PYTHONPATH=$FL_PEER4_DIR
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH PYTHONDONTWRITEBYTECODE

HB=0.2
STALE=0.6
COPT="-t soft-rw -o heartbeat_interval=$HB -o stale_threshold=$STALE -o poll_interval=0.01"
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
hear() { # hear SLOT -> first word of the next line in $WORD, the rest in $REST
	eval "read -r WORD REST <&$(($1 + 5))" || WORD=EOF
}
tell() { # tell SLOT LINE
	eval "echo \"\$2\" >&$(($1 + 2))"
}

timeout 60 true || skip "no timeout(1)"

# 1. A Python writer keeps out C readers and writers.
start "$PY" "$PEER" hold write "$L" $HB $STALE; P1=$SLOT
hear $P1; [ "$WORD" = ready ] || fail "python writer: $WORD $REST"
timeout 20 "$HOLDER" $COPT -s -w 0.5 "$L" </dev/null >/dev/null
[ $? = 1 ] || fail "C reader got in while a Python writer held the lock"
timeout 20 "$HOLDER" $COPT -w 0.5 "$L" </dev/null >/dev/null
[ $? = 1 ] || fail "C writer got in while a Python writer held the lock"
tell $P1 x; hear $P1; [ "$WORD" = released ] || fail "python release: $WORD"

# 2. A C reader and a Python reader share; writers of both sides wait.
start "$HOLDER" $COPT -s "$L"; C1=$SLOT
hear $C1; [ "$WORD" = ready ] || fail "C reader: $WORD $REST"
start "$PY" "$PEER" hold read "$L" $HB $STALE; P2=$SLOT
hear $P2; [ "$WORD" = ready ] || fail "python reader did not share with a C reader"
timeout 20 "$PY" "$PEER" try write "$L" $HB $STALE 0.5
[ $? = 1 ] || fail "Python writer got in while readers held the lock"
timeout 20 "$HOLDER" $COPT -w 0.5 "$L" </dev/null >/dev/null
[ $? = 1 ] || fail "C writer got in while readers held the lock"
tell $C1 release; hear $C1
tell $P2 x; hear $P2; [ "$WORD" = released ] || fail "python reader release"
# A C writer keeps out Python readers and writers.
start "$HOLDER" $COPT "$L"; C2=$SLOT
hear $C2; [ "$WORD" = ready ] || fail "C writer: $WORD $REST"
timeout 20 "$PY" "$PEER" try read "$L" $HB $STALE 0.5
[ $? = 1 ] || fail "Python reader got in while a C writer held the lock"
timeout 20 "$PY" "$PEER" try write "$L" $HB $STALE 0.5
[ $? = 1 ] || fail "Python writer got in while a C writer held the lock"
tell $C2 release; hear $C2
timeout 20 "$PY" "$PEER" try read "$L" $HB $STALE 0 || fail "Python reader after release"

# 3. Mixed N x M counter, two C and two Python writers; the fencing tokens
# the holders log under the lock strictly increase; then C and Python
# holders alternate, each token above the one before.
M=25
echo 0 >"$T/counter"
: >"$T/fences"
timeout 120 "$COUNTER" $COPT -n $M -F "$T/fences" "$L" "$T/counter" & a=$!
timeout 120 "$COUNTER" $COPT -n $M -F "$T/fences" "$L" "$T/counter" & b=$!
timeout 120 "$PY" "$PEER" count "$L" "$T/counter" $M $HB $STALE "$T/fences" & c=$!
timeout 120 "$PY" "$PEER" count "$L" "$T/counter" $M $HB $STALE "$T/fences" & d=$!
for p in $a $b $c $d; do
	wait $p || fail "counter worker $p exited $?"
done
got=$(tr -d ' \n' <"$T/counter")
[ "$got" = $((4 * M)) ] || fail "mixed counter is $got, want $((4 * M))"
[ "$(wc -l <"$T/fences")" -eq $((4 * M)) ] || fail "fences: $(wc -l <"$T/fences") lines"
awk 'NR > 1 && $1 + 0 <= last { bad = 1 } { last = $1 + 0 } END { exit bad }' "$T/fences" ||
	fail "fencing tokens do not strictly increase across C and Python holders: $(tr '\n' ' ' <"$T/fences")"
# And holder after holder, C and Python strictly alternating.
last=0
for i in 1 2 3 4; do
	start "$HOLDER" $COPT "$L"; S=$SLOT
	hear $S; [ "$WORD" = ready ] || fail "C writer $i: $WORD $REST"
	tell $S fence; hear $S; [ "$WORD" = fence ] || fail "C fence: $WORD $REST"
	[ "$REST" -gt "$last" ] || fail "C holder $i got fencing token $REST after $last"
	last=$REST
	tell $S release; hear $S
	start "$PY" "$PEER" hold write "$L" $HB $STALE; S=$SLOT
	hear $S; [ "$WORD" = ready ] || fail "python writer $i: $WORD $REST"
	[ "${REST#* }" -gt "$last" ] || fail "Python holder $i got generation ${REST#* } after $last"
	last=${REST#* }
	tell $S x; hear $S
done

# 4. Each side recovers the other's SIGKILLed writer: after stale_threshold
# (the first sighting counts as zero), within stale_threshold + 2 s.
within() { # within T0 T1: STALE <= T1 - T0 <= STALE + 2
	awk -v a="$1" -v b="$2" -v s=$STALE 'BEGIN { exit !(b - a >= s && b - a <= s + 2) }'
}
start "$PY" "$PEER" hold write "$L" $HB $STALE; P3=$SLOT
hear $P3; [ "$WORD" = ready ] || fail "python writer: $WORD"
kill -9 "$LASTPID"
t0=$(now)
timeout 20 "$HOLDER" $COPT -w 10 "$L" </dev/null >"$T/c4" || fail "C could not evict a dead Python writer"
t1=$(now)
grep -q ready "$T/c4" || fail "C holder output: $(cat "$T/c4")"
within "$t0" "$t1" || fail "C evicted a dead Python writer after $t0 -> $t1 (stale $STALE)"
for mode in "" -s; do
	start "$HOLDER" $COPT $mode "$L"; C3=$SLOT
	hear $C3; [ "$WORD" = ready ] || fail "C holder: $WORD"
	kill -9 "$LASTPID"
	t0=$(now)
	timeout 20 "$PY" "$PEER" try write "$L" $HB $STALE 10 ||
		fail "Python could not evict a dead C holder ($mode)"
	t1=$(now)
	within "$t0" "$t1" || fail "Python evicted a dead C holder ($mode) after $t0 -> $t1"
done
ls "$T/d/x.lock.rw/holders" | grep -q . && fail "holder records left: $(ls "$T/d/x.lock.rw/holders")"

# 5. Byte formats: the same transitions by C and by Python, on two paths,
# give equal records once tokens, nonces and pids are masked.  Writer held,
# then two readers held, then after release.
mask() { # mask DIR: every record under DIR, names and bytes, normalised
	"$PY" - "$1" <<'PYEOF'
import os, re, sys
root = sys.argv[1]
for dirpath, _, files in sorted(os.walk(root)):
    for name in sorted(files):
        path = os.path.join(dirpath, name)
        with open(path, "rb") as f:
            data = f.read()
        text = re.sub(rb"[0-9a-f]{32}", b"TOK", os.path.relpath(path, root).encode() + b" " + data)
        print(re.sub(rb"pid=[0-9]+\n", b"pid=PID\n", text))
PYEOF
}
snap() { # snap WHO STEP LOCK
	mask "$3.rw" >"$T/$1.$2"
}
for who in c py; do
	LL=$T/f-$who/x.lock
	if [ $who = c ]; then
		start "$HOLDER" $COPT "$LL"
	else
		start "$PY" "$PEER" hold write "$LL" $HB $STALE
	fi
	S1=$SLOT; hear $S1; [ "$WORD" = ready ] || fail "$who writer: $WORD"
	snap $who 1 "$LL"
	if [ $who = c ]; then tell $S1 release; else tell $S1 x; fi
	hear $S1
	if [ $who = c ]; then
		start "$HOLDER" $COPT -s "$LL"; S1=$SLOT; hear $S1
		start "$HOLDER" $COPT -s "$LL"; S2=$SLOT; hear $S2
	else
		start "$PY" "$PEER" hold read "$LL" $HB $STALE; S1=$SLOT; hear $S1
		start "$PY" "$PEER" hold read "$LL" $HB $STALE; S2=$SLOT; hear $S2
	fi
	[ "$WORD" = ready ] || fail "$who readers: $WORD"
	snap $who 2 "$LL"
	if [ $who = c ]; then tell $S1 release; tell $S2 release; else tell $S1 x; tell $S2 x; fi
	hear $S1; hear $S2
	snap $who 3 "$LL"
done
for step in 1 2 3; do
	cmp -s "$T/c.$step" "$T/py.$step" ||
		fail "records differ at step $step: $(diff "$T/c.$step" "$T/py.$step")"
done
# The masks hide only tokens and pids: the host field and the lease are C's.
grep -qF "host=$("$PY" "$PEER" host)\\n" "$T/c.1" || fail "host field: $(cat "$T/c.1")"

# 6. Mixed deployments refuse, in both directions, naming the other protocol.
L2=$T/m/x.lock
LEG="-o protocol=legacy"
#  a. a C legacy writer holds: a C filelock-rw/1 writer refuses
start "$HOLDER" $COPT $LEG "$L2"; C5=$SLOT
hear $C5; [ "$WORD" = ready ] || fail "C legacy writer: $WORD $REST"
timeout 20 "$HOLDER" $COPT -w 2 "$L2" </dev/null >"$T/m1"
[ $? = 2 ] && grep -q "error 71 .*legacy soft-rw protocol.*--soft-rw-protocol=legacy" "$T/m1" ||
	fail "filelock-rw/1 writer did not refuse a live legacy writer: $(cat "$T/m1")"
tell $C5 release; hear $C5
#  b. a Python 3.32.3 reader holds: a C filelock-rw/1 reader refuses
if [ -n "${FL_PEER_DIR:-}" ] && [ -d "$FL_PEER_DIR/filelock" ]; then
	start env PYTHONPATH="$FL_PEER_DIR" "$PY" "$PEER3" hold read "$L2" $HB $STALE; P6=$SLOT
	hear $P6; [ "$WORD" = ready ] || fail "python 3.32.3 reader: $WORD"
	timeout 20 "$HOLDER" $COPT -s -w 2 "$L2" </dev/null >"$T/m2"
	[ $? = 2 ] && grep -q "error 71 .*legacy" "$T/m2" ||
		fail "filelock-rw/1 reader did not refuse a live 3.32.3 reader: $(cat "$T/m2")"
	tell $P6 x; hear $P6
else
	echo "note: no 3.32.3 peer, skipping its refusal case" >&2
fi
#  c. a Python 4 writer holds: C legacy writers and readers refuse
start "$PY" "$PEER" hold write "$L2" $HB $STALE; P7=$SLOT
hear $P7; [ "$WORD" = ready ] || fail "python 4 writer: $WORD"
for mode in "" -s; do
	timeout 20 "$HOLDER" $COPT $LEG $mode -w 2 "$L2" </dev/null >"$T/m3"
	[ $? = 2 ] && grep -q "error 71 .*filelock-rw/1.*--soft-rw-protocol=rw1" "$T/m3" ||
		fail "legacy ($mode) did not refuse a live filelock-rw/1 writer: $(cat "$T/m3")"
done
tell $P7 x; hear $P7
#  d. a C filelock-rw/1 reader holds: a C legacy writer refuses; once it has
#     left (its record gone), the legacy writer gets in.
start "$HOLDER" $COPT -s "$L2"; C8=$SLOT
hear $C8; [ "$WORD" = ready ] || fail "C reader: $WORD"
timeout 20 "$HOLDER" $COPT $LEG -w 2 "$L2" </dev/null >"$T/m4"
[ $? = 2 ] || fail "legacy writer did not refuse a live filelock-rw/1 reader: $(cat "$T/m4")"
tell $C8 release; hear $C8
echo | timeout 20 "$HOLDER" $COPT $LEG -w 2 "$L2" >"$T/m5" || fail "legacy writer after the rw/1 reader left: $(cat "$T/m5")"
[ -e "$L2.write" ] && fail "the refused legacy writer left its marker"
exit 0
