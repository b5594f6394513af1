#!/bin/bash
# SPDX-License-Identifier: MIT
# py-lockf.sh -- Python's fcntl.lockf on three simulated NFS client hosts,
# with the preload shim's byte-range emulation (worker: py-lockf.py).
#
#   counter   P processes on each host add 1, ITERS times each, to a counter kept
#             in the lock file itself, under lockf(fd, LOCK_EX) of the whole
#             file, all released at once: exactly 3*P*ITERS with the shim.
#             Without it (kernel locks do not cross hosts here) at least one
#             of up to CL_LF_TRIES runs must lose updates.
#   ranges    host 1 holds bytes 0..19 and host 2 then gets 20..39 while host
#             1 still holds (disjoint ranges do not exclude: a handshake, not
#             a timing); host 3 is refused 10..29 (EAGAIN/EACCES), gets
#             40..59, F_GETLK reports a write lock with pid -1 (a holder on
#             another host); host 3's blocking lock on 15..24 is granted only
#             after both holders released (it sees both their release marks).
#   range counters
#             two counters in bytes 0..19 and 20..39 of one file, each host
#             running a worker on A, one on B and one on both (0..39): A and
#             B each end at exactly 2*3*ITERS.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
CL_NAME=py-lockf
. "$(dirname "$0")/lib.sh"
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
PY=/usr/bin/python3
WORKER=$CL_HERE/py-lockf.py
case ${FL_SANITIZERS-} in
*address* | *thread*)
	echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"
	exit 77
	;;
esac
[ -x "$PY" ] || cluster_skip "needs $PY"
if [ ! -x "$FLP" ] || [ ! -f "$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so" ]; then
	echo "[$CL_NAME] ERROR: the shim or $FLP is not built" >&2
	exit 99
fi
P=${CL_LF_P:-2}
ITERS=${CL_LF_M:-40}
TRIES=${CL_LF_TRIES:-3}
cl_start 3

POL=$CL_TMP/preload.conf
printf '%s\n' "$M/*.lck soft-rw stale_threshold=2 heartbeat_interval=0.5 poll_interval=0.02" \
	>"$POL"
SHIM=("$FLP" --config "$POL")

# run_counters NAME shim|plain SPEC...: on each host, P workers per SPEC
# ("START LEN"), released together; waits for them all.
run_counters() {
	local name=$1 mode=$2 i p spec go n=0 pids=() wrap=()
	shift 2
	[ "$mode" = shim ] && wrap=("${SHIM[@]}")
	: >"$S/$name"
	mkfifo "$CL_TMP/$name.go"
	exec {go}<>"$CL_TMP/$name.go"
	for ((i = 1; i <= 3; i++)); do
		for spec in "$@"; do
			for ((p = 1; p <= P; p++)); do
				# shellcheck disable=SC2086
				(cluster_exec "$i" timeout 60 "${wrap[@]}" "$PY" "$WORKER" counter \
					"$M/$name" "$ITERS" $spec) <"$CL_TMP/$name.go" \
					>"$CL_TMP/$name.out.$i.$p.${spec// /-}" 2>&1 &
				pids+=("$!")
				n=$((n + 1))
			done
		done
	done
	printf '%*s' "$n" '' | tr ' ' x >&$go
	RC_BAD=0
	for p in "${pids[@]}"; do
		wait "$p" || RC_BAD=$((RC_BAD + 1))
	done
	exec {go}>&-
}

# slot NAME OFFSET: the counter at OFFSET of the shared file NAME.
slot() {
	local v
	v=$(dd if="$S/$1" bs=1 skip="$2" count=20 status=none 2>/dev/null | tr -d ' \n\0')
	echo "${v:-0}"
}

# --- 1. whole-file counter ---------------------------------------------------
t0=$(cl_mono)
run_counters count.lck shim "0 0"
ms=$(cl_ms "$t0" "$(cl_mono)")
v=$(slot count.lck 0)
if [ "$v" = $((3 * P * ITERS)) ] && [ $RC_BAD = 0 ]; then
	cl_ok "with the shim, 3 hosts x $P python x $ITERS lockf(LOCK_EX) increments = $v ($ms ms)"
else
	cl_fail "with the shim the counter is $v, expected $((3 * P * ITERS)); $RC_BAD worker(s) failed:" \
		"$(cat "$CL_TMP"/count.lck.out.* | grep -v '^done$' | head -5)"
fi
[ -z "$(find "$S/count.lck.lock.ranges" -name '[po].*' 2>/dev/null)" ] ||
	cl_fail "owner files left in count.lck.lock.ranges after every worker exited"

shown=0
for ((try = 1; try <= TRIES && shown == 0; try++)); do
	run_counters plain$try.lck plain "0 0"
	v=$(slot plain$try.lck 0)
	cl_log "without the shim, run $try: the counter is $v of $((3 * P * ITERS))" \
		"($RC_BAD worker(s) failed)"
	if [ "$v" -lt $((3 * P * ITERS)) ]; then
		shown=1
		cl_ok "without the shim, run $try lost $((3 * P * ITERS - v)) of $((3 * P * ITERS)) updates"
	fi
done
[ $shown = 1 ] || cl_fail "without the shim, $TRIES runs lost nothing: the control shows nothing"

# --- 2. ranges: disjoint share, overlapping exclude --------------------------
mkdir "$S/ev"
: >"$S/r.lck"
holder_start h1 1 "${SHIM[@]}" "$PY" "$WORKER" hold "$M/r.lck" 0 20 "$M/ev" h1
holder_expect h1 '^held' 20 || cl_fail "host 1 did not get bytes 0..19: $H_LINE"
holder_start h2 2 "${SHIM[@]}" "$PY" "$WORKER" hold "$M/r.lck" 20 20 "$M/ev" h2
if holder_expect h2 '^held' 20; then
	cl_ok "host 2 holds bytes 20..39 while host 1 holds 0..19 (disjoint ranges do not exclude)"
else
	cl_fail "host 2 did not get bytes 20..39 while host 1 holds 0..19: $H_LINE"
fi
r=$(cluster_exec 3 timeout 30 "${SHIM[@]}" "$PY" "$WORKER" try "$M/r.lck" 10 20 2>&1)
case $r in
busy*) cl_ok "host 3 is refused bytes 10..29, which overlap both holders ($r)" ;;
*) cl_fail "host 3 lockf(LOCK_NB) on bytes 10..29: '$r', expected busy" ;;
esac
r=$(cluster_exec 3 timeout 30 "${SHIM[@]}" "$PY" "$WORKER" try "$M/r.lck" 40 20 2>&1)
[ "$r" = got ] || cl_fail "host 3 lockf(LOCK_NB) on the free bytes 40..59: '$r', expected got"
r=$(cluster_exec 3 timeout 30 "${SHIM[@]}" "$PY" "$WORKER" getlk "$M/r.lck" 15 10 2>&1)
if [[ $r =~ ^locked\ W\ (0\ 20|20\ 20)\ -1$ ]]; then
	cl_ok "host 3 F_GETLK on bytes 15..24: $r (a write lock held on another host, pid -1)"
else
	cl_fail "host 3 F_GETLK on bytes 15..24: '$r', expected 'locked W 0 20 -1' or 'W 20 20 -1'"
fi
holder_start w 3 "${SHIM[@]}" "$PY" "$WORKER" wait "$M/r.lck" 15 10 "$M/ev"
holder_expect w '^waiting' 20 || cl_fail "host 3 waiter did not start: $H_LINE"
# The waiter is granted the range only after both holders left their marks
# and released; if it got in early it would list fewer marks.
holder_send h1 release
holder_expect h1 '^released' 20 || cl_fail "host 1 did not release: $H_LINE"
holder_send h2 release
holder_expect h2 '^released' 20 || cl_fail "host 2 did not release: $H_LINE"
if holder_expect w '^held' 30 && [ "$H_LINE" = "held h1 h2" ]; then
	cl_ok "host 3's blocking lock on bytes 15..24 was granted after both holders released"
else
	cl_fail "host 3's blocking lock on bytes 15..24: '$H_LINE', expected 'held h1 h2'"
fi
# Newest first: a holder started later inherited the pipes of the earlier ones.
holder_close w
holder_close h2
holder_close h1

# --- 3. two counters in two ranges of one file, and workers on both ---------
t0=$(cl_mono)
P0=$P
P=1
run_counters two.lck shim "0 20" "20 20" "0 40"
P=$P0
ms=$(cl_ms "$t0" "$(cl_mono)")
a=$(slot two.lck 0)
b=$(slot two.lck 20)
if [ "$a" = $((2 * 3 * ITERS)) ] && [ "$b" = $((2 * 3 * ITERS)) ] && [ $RC_BAD = 0 ]; then
	cl_ok "with the shim, counters in bytes 0..19 and 20..39 (workers on each and on both," \
		"3 hosts): $a and $b, both exact ($ms ms)"
else
	cl_fail "range counters: A $a, B $b, expected $((2 * 3 * ITERS)) each; $RC_BAD worker(s) failed:" \
		"$(cat "$CL_TMP"/two.lck.out.* | grep -v '^done$' | head -5)"
fi
cl_finish
