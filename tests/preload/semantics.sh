# SPDX-License-Identifier: MIT
# semantics.sh -- flock(2) through the shim keeps the kernel's semantics:
# dup/dup2/dup3/F_DUPFD share the lock, the last close releases it (close,
# close_range, closefrom, fclose, dup2 onto it), fork children share it, the
# daemon pattern keeps it after the taker exits (exit and _exit), LOCK_NB
# gives EWOULDBLOCK, a signal interrupts a blocking wait with EINTR, the
# lock survives execve, and fcntl/lockf locks on matching paths are emulated
# (quietly; ranges.sh checks their semantics against the kernel's) while
# other fcntl commands pass through; a lease kept through execve is adopted
# and stays alive.  FLP_MARKER=1 makes every check also
# look at the soft marker.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"

flp_policy "$T/*.lck soft"
FLP_MARKER=1
export FLP_MARKER
for s in dup dup2 closers nb fork daemon daemon-_exit eintr exec; do
	timeout 60 env LD_PRELOAD="$FLP_SO" "$FLP_PROBE" "$s" "$T/$s.lck" || fail "scenario $s"
	[ ! -e "$T/$s.lck.lock" ] || fail "scenario $s left its marker behind"
done
timeout 60 env LD_PRELOAD="$FLP_SO" "$FLP_PROBE" fcntl "$T/f.lck" "$T/other" 2>"$T/err" ||
	fail "scenario fcntl"
[ ! -s "$T/err" ] || { cat "$T/err"; fail "the fcntl scenario printed messages"; }
[ -z "$(ls -A "$T/f.lck.lock.ranges" 2>/dev/null)" ] || fail "fcntl scenario left owner files"

# A lease taken through an inherited descriptor survives execve: flock(1)
# (a child that exits) locks bash's descriptor, bash execs a program that
# keeps it; that image adopts the lease and beats it, so a contender waiting
# three times lease_duration still finds it held.  Once the holder is gone
# the lease is free.
flp_policy "$T/*.lse lease lease_duration=1 heartbeat_interval=0.2 poll_interval=0.05"
L=$T/a.lse
mkfifo "$T/lse.ready"
exec {rd}<>"$T/lse.ready"
shim bash -c 'exec 9>"$1" && flock 9 && echo locked $$ >&3 && exec sleep 50' _ "$L" \
	3>"$T/lse.ready" 2>"$T/lse.err" &
hp=$!
FLP_PIDS="${FLP_PIDS-} $hp"
read -r -t 30 line holder <&$rd
[ "$line" = locked ] || fail "lease exec: the holder did not lock ($(cat "$T/lse.err"))"
FLP_PIDS="$FLP_PIDS $holder"
if shim flock -w 3 "$L" true 2>"$T/lse.c.err"; then
	fail "lease exec: a contender took the lease 3 s after the taker exited and the" \
		"holder exec'd (nobody kept it alive)"
fi
grep -q '^mode=lease$' "$L.lock" || fail "lease exec: the marker is not a lease record"
kill "$holder"
wait "$hp" 2>/dev/null
shim flock -w 10 "$L" true || fail "lease exec: still held after its holder was killed"
exec {rd}>&-

# Without the shim the same scenario names no marker: prove the checks see it.
unset FLP_MARKER
timeout 60 "$FLP_PROBE" dup "$T/plain.lck" || fail "scenario dup without the shim"
[ ! -e "$T/plain.lck.lock" ] || fail "a marker without the shim?"
echo "PASS"
