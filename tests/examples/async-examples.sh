#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs examples/async-poll (and examples/async-uv when built): free locks are
# taken, a lock held by another process times out with exit 1, and the loop
# keeps serving standard input while a lock is awaited.
set -u

B=${FL_TOP_BUILDDIR:?}/examples
d=$(mktemp -d) || exit 99
hpid=
cleanup() {
	[ -n "$hpid" ] && { [ -p "$d/ctl" ] && echo > "$d/ctl"; wait "$hpid"; } 2>/dev/null
	rm -rf "$d"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
T="timeout 30"

progs=async-poll
if [ -x "$B/async-uv" ]; then
	progs="$progs async-uv"
else
	echo "note: async-uv not built (no libuv); testing async-poll only"
fi

# A holder of $d/held (flock(1), the unix kind's lock), released via $d/ctl.
command -v flock >/dev/null || { echo "SKIP: flock(1) not installed"; exit 77; }
mkfifo "$d/ctl" "$d/ready" || exit 99
flock "$d/held" sh -c 'echo up > "$1"; read x < "$0"' "$d/ctl" "$d/ready" &
hpid=$!
read x < "$d/ready"

for p in $progs; do
	# Free locks of two kinds.
	out=$($T "$B/$p" -k soft "$d/$p-a" "$d/$p-b" < /dev/null) || fail "$p: free locks: exit $?"
	echo "$out" | grep -qx "locked $d/$p-a" || fail "$p: $out"
	echo "$out" | grep -qx "locked $d/$p-b" || fail "$p: $out"
	[ -e "$d/$p-a" ] && fail "$p: soft marker left behind"
	$T "$B/$p" -k unix "$d/$p-c" < /dev/null > /dev/null || fail "$p: unix: exit $?"

	# A lock held by another process: finite wait times out, the free one is taken.
	out=$($T "$B/$p" -k unix -w 0.2 "$d/held" "$d/$p-d" < /dev/null)
	rc=$?
	[ "$rc" -eq 1 ] || fail "$p: held lock: exit $rc, $out"
	echo "$out" | grep -q "^failed $d/held: .*timed out after 0.2s" || fail "$p: $out"
	echo "$out" | grep -qx "locked $d/$p-d" || fail "$p: $out"
done

# The poll loop answers standard input while it waits for the held lock:
# it reads our line, reports one waiting acquire, and we then free the lock.
mkfifo "$d/in" "$d/out" || exit 99
$T "$B/async-poll" -k unix "$d/held" < "$d/in" > "$d/out" &
ppid=$!
exec 3> "$d/in" 4< "$d/out"
echo status >&3
read line <&4
[ "$line" = "waiting for 1 lock(s)" ] || fail "async-poll stdin: '$line'"
echo > "$d/ctl"            # the holder exits, releasing the lock
wait "$hpid"; hpid=
read line <&4
[ "$line" = "locked $d/held" ] || fail "async-poll after release: '$line'"
exec 3>&-
wait "$ppid" || fail "async-poll exit $?"
exec 4<&-
echo "PASS"
exit 0
