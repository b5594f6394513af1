# SPDX-License-Identifier: MIT
# semantics.sh -- flock(2) through the shim keeps the kernel's semantics:
# dup/dup2/dup3/F_DUPFD share the lock, the last close releases it (close,
# close_range, closefrom, fclose, dup2 onto it), fork children share it, the
# daemon pattern keeps it after the taker exits (exit and _exit), LOCK_NB
# gives EWOULDBLOCK, a signal interrupts a blocking wait with EINTR, the
# lock survives execve, and fcntl/lockf locks on matching paths are emulated
# (quietly; ranges.sh checks their semantics against the kernel's) while
# other fcntl commands pass through.  FLP_MARKER=1 makes every check also
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

# Without the shim the same scenario names no marker: prove the checks see it.
unset FLP_MARKER
timeout 60 "$FLP_PROBE" dup "$T/plain.lck" || fail "scenario dup without the shim"
[ ! -e "$T/plain.lck.lock" ] || fail "a marker without the shim?"
echo "PASS"
