# SPDX-License-Identifier: MIT
# adopt.sh -- a lock kept only by a fork child, or by the image a fork child
# exec'd, stays held for as long as that process keeps the descriptor, for
# every rule kind: native (the kernel's flock), soft, strict, lease, soft-rw
# (filelock-rw/1 and the legacy protocol).  The taker (adopt-holder.py, under
# the shim) locks, forks a child that keeps the descriptor and exits; a
# contender waiting three times the rule's expiry bound (lease_duration,
# stale_threshold: 1 s) must not get in; once the child lets go (a close in
# the fork child, exit of the exec'd image) the lock is free at once, without
# waiting for any expiry.  Processes are synchronised through pipes only;
# a watchdog ends the whole process group.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"

PY=${FL_PYTHON3:-/usr/bin/python3}
[ -x "$PY" ] || skip_or_fail "no $PY"
# A process group of our own, so that the watchdog can end all of it.
if [ -z "${FL_ADOPT_PGRP-}" ]; then
	FL_ADOPT_PGRP=1 exec setsid -w bash "$0" "$@"
fi
( sleep 240; echo "FAIL: watchdog: adopt.sh hung"; kill -KILL -- -$$ ) &
FLP_PIDS="$FLP_PIDS $!"
export PYTHONDONTWRITEBYTECODE=1
H=$FL_TOP_SRCDIR/tests/preload/adopt-holder.py
B="heartbeat_interval=0.2 poll_interval=0.05"
flp_policy "$T/*.nat native" "$T/*.sft soft" "$T/*.str strict" \
	"$T/*.lse lease lease_duration=1 $B" "$T/*.rw1 soft-rw stale_threshold=1 $B" \
	"$T/*.leg soft-rw protocol=legacy stale_threshold=1 $B"

n=0
for ext in nat sft str lse rw1 leg; do
	for how in fork exec; do
		n=$((n + 1))
		L=$T/$how.$ext
		mkfifo "$T/ready$n" "$T/release$n" || exit 99
		exec {rel}<>"$T/release$n"
		LD_PRELOAD=$FLP_SO timeout 60 "$PY" "$H" "$L" "$how" 3>"$T/ready$n" <&$rel \
			2>"$T/err$n" &
		hp=$!
		exec {rd}<"$T/ready$n"
		read -r -t 30 w cpid <&$rd
		[ "$w" = child ] || fail "$ext $how: the holder did not start ($(cat "$T/err$n"))"
		FLP_PIDS="$FLP_PIDS $cpid"
		wait "$hp" || fail "$ext $how: the taker failed ($(cat "$T/err$n"))"
		# The taker is gone; only the child keeps the description.
		t0=$(date +%s%N)
		if shim flock -w 3 "$L" true 2>"$T/c$n.err"; then
			fail "$ext $how: a contender got in $(( ($(date +%s%N) - t0) / 1000000 )) ms" \
				"after the taker exited, while its child still kept the lock" \
				"($(cat "$T/err$n" "$T/c$n.err"))"
		fi
		echo go >&$rel
		read -r -t 30 w <&$rd
		[ $? -lt 128 ] || fail "$ext $how: the child did not exit"
		exec {rd}<&- {rel}>&-
		shim flock -n "$L" true 2>"$T/c$n.err" ||
			fail "$ext $how: not free once the child let go ($(cat "$T/err$n" "$T/c$n.err"))"
		if grep -v '^$' "$T/err$n" | grep -q .; then
			cat "$T/err$n"
			fail "$ext $how: the holder printed messages"
		fi
		echo "ok: $ext: kept by a $how child after the taker exited, free when it let go"
	done
done
echo "PASS"
