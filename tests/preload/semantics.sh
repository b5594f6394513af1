# SPDX-License-Identifier: MIT
# semantics.sh -- flock(2) through the shim keeps the kernel's semantics:
# dup/dup2/dup3/F_DUPFD share the lock, the last close releases it (close,
# close_range, closefrom, fclose, dup2 onto it), fork children share it, the
# daemon pattern keeps it after the taker exits (exit and _exit), LOCK_NB
# gives EWOULDBLOCK, a signal interrupts a blocking wait with EINTR, the
# lock survives execve, and fcntl/lockf locks on matching paths fail with
# ENOLCK.  FLP_MARKER=1 makes every check also look at the soft marker.
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
grep -q 'fcntl on .*/f.lck: byte-range locks are not redirected yet' "$T/err" ||
	fail "no message for the refused fcntl lock"
[ "$(grep -c 'failing with ENOLCK' "$T/err")" = 3 ] || fail "expected 3 refusal lines"

# Without the shim the same scenario names no marker: prove the checks see it.
unset FLP_MARKER
timeout 60 "$FLP_PROBE" dup "$T/plain.lck" || fail "scenario dup without the shim"
[ ! -e "$T/plain.lck.lock" ] || fail "a marker without the shim?"
echo "PASS"
