# SPDX-License-Identifier: MIT
# policy.sh -- what the policy file decides: a broken file is one line and
# every lock call fails with ENOLCK (programs that do not lock still run);
# deny, native and non-matching paths; lock_dir; dotlock recovery of stale
# O_EXCL lock files (dead holder, or older than stale_threshold) and not of
# live ones; dotlock heartbeats (the creator refreshes its lock file until it
# renames or unlinks it; a silent one is recovered at the first try);
# FILELOCK_PRELOAD_DEBUG; the filelock-preload wrapper.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"

PY=/usr/bin/python3
command -v flock >/dev/null || skip_or_fail "util-linux flock(1) is not installed"
[ -x "$PY" ] || skip_or_fail "$PY is not installed"
WRAP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
mkdir "$T/deny" "$T/nat" "$T/dot" "$T/locks" "$T/data"

# A broken policy: one line naming file, line and problem; locks refused.
flp_policy "$T/*.lck soft" "$T/*.x sfot"
out=$(LD_PRELOAD=$FLP_SO /bin/echo hello 2>"$T/err") || fail "a program that does not lock must still run"
[ "$out" = hello ] || fail "echo under a broken policy printed '$out'"
[ "$(wc -l < "$T/err")" = 1 ] || fail "expected one line, got: $(cat "$T/err")"
grep -q "preload.conf:2: unknown kind 'sfot' (known: .*); every lock call will fail with ENOLCK" "$T/err" ||
	fail "unclear message: $(cat "$T/err")"
shim flock "$T/nomatch" true 2>"$T/err" && fail "flock ran unprotected under a broken policy"
grep -q 'failing with ENOLCK' "$T/err" || fail "no ENOLCK message: $(cat "$T/err")"
FILELOCK_PRELOAD_CONFIG=$T/missing.conf shim flock "$T/nomatch" true 2>"$T/err" &&
	fail "flock ran with a missing explicit policy file"
grep -q "missing.conf: cannot open: No such file or directory" "$T/err" || fail "$(cat "$T/err")"

flp_policy \
	"# test policy" \
	"$T/deny/*    deny" \
	"$T/nat/*     native" \
	"$T/dot/*.lock dotlock" \
	"$T/dot/*.old  dotlock stale_threshold=60" \
	"$T/dot/*.hb   dotlock stale_threshold=1 heartbeat_interval=0.2" \
	"$T/data/*.db soft lock_dir=$T/locks" \
	"$T/*.both    soft also_native=yes" \
	"$T/*.lck     soft"

# deny: every lock call fails with ENOLCK and says why.
shim flock "$T/deny/f" true 2>"$T/err" && fail "deny: flock succeeded"
grep -q "flock($T/deny/f) denied by policy line 2 (kind deny)" "$T/err" || fail "$(cat "$T/err")"
# native and non-matching: the kernel's lock, no marker.
shim flock "$T/nat/f" -c "[ ! -e '$T/nat/f.lock' ] && ! flock -n '$T/nat/f' true" ||
	fail "native: not the kernel's lock"
shim flock "$T/plain" -c "[ ! -e '$T/plain.lock' ]" || fail "non-matching path got a marker"
# lock_dir: the marker mirrors the data path under it.
shim flock "$T/data/x.db" -c "[ -f '$T/locks$T/data/x.db.lock' ] && [ ! -e '$T/data/x.db.lock' ]" ||
	fail "lock_dir: marker not under $T/locks"
# create_dirs=no: a missing marker directory fails the lock, nothing is created
# (its own policy file, for this call only).
printf '%s\n' "$T/nodirs/*.db soft lock_dir=$T/unmounted create_dirs=no" >"$T/nodirs.conf"
mkdir "$T/nodirs" || exit 99
FILELOCK_PRELOAD_CONFIG=$T/nodirs.conf shim flock "$T/nodirs/x.db" true 2>"$T/err" &&
	fail "create_dirs=no: flock succeeded"
grep -q "$T/unmounted: No such file or directory (creating missing lock directories is disabled)" \
	"$T/err" || fail "create_dirs=no: $(cat "$T/err")"
[ ! -e "$T/unmounted" ] || fail "create_dirs=no: the lock directory was created"
# also_native: the kernel's exclusive lock too, so programs without the shim
# are excluded even from a shared lock; without it only a shared pin is held.
shim flock "$T/x.both" -c "[ -f '$T/x.both.lock' ] && ! env -u LD_PRELOAD flock -s -n '$T/x.both' true" ||
	fail "also_native=yes: no kernel exclusive lock"
# also_native: a waiter for the kernel's lock, held by a program without the
# shim, is handed the lock when that program closes it, and ends with EINTR
# when flock(1)'s timer fires (-w: its handler has no SA_RESTART).
mkfifo "$T/nat-ready" "$T/nat-go" || exit 99
env -u LD_PRELOAD flock "$T/y.both" -c "echo held > '$T/nat-ready'; read x < '$T/nat-go'" &
FLP_PIDS="$FLP_PIDS $!"
NATHOLDER=$!
read -r x < "$T/nat-ready"
start=$(date +%s)
shim flock -w 1 "$T/y.both" true && fail "also_native: flock -w 1 got a lock held in the kernel"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "also_native: flock -w 1 did not stop waiting"
[ ! -e "$T/y.both.lock" ] || fail "also_native: the marker stayed after the interrupted wait"
shim flock "$T/y.both" -c "echo got > '$T/nat-got'" &
FLP_PIDS="$FLP_PIDS $!"
WAITER=$!
echo go > "$T/nat-go"
wait "$NATHOLDER" || fail "also_native: the holder exited $?"
wait "$WAITER" || fail "also_native: the waiter exited $?"
[ "$(cat "$T/nat-got")" = got ] || fail "also_native: the waiter did not get the lock"
shim flock "$T/x.lck" -c "env -u LD_PRELOAD flock -s -n '$T/x.lck' true &&
	! env -u LD_PRELOAD flock -x -n '$T/x.lck' true" ||
	fail "without also_native: expected only a shared kernel pin"
# FILELOCK_PRELOAD_DEBUG traces each redirect.
FILELOCK_PRELOAD_DEBUG=1 shim flock "$T/a.lck" true 2>"$T/err" || fail "flock a.lck"
grep -q "filelock-preload\[[0-9]*\]: flock(3, LOCK_EX) on $T/a.lck -> soft $T/a.lck.lock: acquired" \
	"$T/err" || fail "no trace: $(cat "$T/err")"
grep -q "released $T/a.lck.lock" "$T/err" || fail "no release trace"
# Level 2 also says why a lock goes to the kernel: no rule matched the path,
# or a pass-through rule did; level 1 does not.
FILELOCK_PRELOAD_DEBUG=2 shim flock "$T/plain" true 2>"$T/err" || fail "flock plain"
grep -q "filelock-preload\[[0-9]*\]: flock(3): no rule matched $T/plain; passed to the kernel" \
	"$T/err" || fail "level 2: no 'no rule matched': $(cat "$T/err")"
FILELOCK_PRELOAD_DEBUG=2 shim flock "$T/nat/f" true 2>"$T/err" || fail "flock nat/f"
grep -q "flock(3): $T/nat/f matches the rule of line [0-9]*, kind native; passed to the kernel" \
	"$T/err" || fail "level 2: the native rule is not named: $(cat "$T/err")"
FILELOCK_PRELOAD_DEBUG=1 shim flock "$T/plain" true 2>"$T/err" || fail "flock plain"
grep -q "no rule matched" "$T/err" && fail "level 1 reports unmatched paths: $(cat "$T/err")"
# The start-up line (policy file, rules) once per process tree, not per exec:
# a shell that runs three programs under the shim prints it once.
FILELOCK_PRELOAD_DEBUG=1 shim sh -c 'true; sh -c true; flock "$1" true' sh "$T/b.lck" 2>"$T/err" ||
	fail "process tree"
n=$(grep -c ": $T/preload.conf: [0-9]* rule(s)" "$T/err")
[ "$n" = 1 ] || fail "start-up line printed $n times, want 1: $(cat "$T/err")"
grep -q "acquired" "$T/err" || fail "the child's redirect is still traced: $(cat "$T/err")"
# A child that reads another policy file announces it.
printf '/nowhere/* soft\n' > "$T/other.conf"
FILELOCK_PRELOAD_DEBUG=1 shim sh -c 'FILELOCK_PRELOAD_CONFIG=$1 sh -c true' sh "$T/other.conf" \
	2>"$T/err"
grep -q ": $T/preload.conf: [0-9]* rule(s)" "$T/err" && grep -q ": $T/other.conf: 1 rule(s)" "$T/err" ||
	fail "a child with another policy file was not announced: $(cat "$T/err")"

# dotlock: O_CREAT|O_EXCL over a stale lock file succeeds, over a live one not.
excl() {
	$1 "$PY" -c '
import os, sys
try:
    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
except FileExistsError:
    sys.exit(3)
' "$2"
}
dead=$(sh -c 'echo $$')
host=$(uname -n)
echo "$dead" > "$T/dot/a.lock"
excl env "$T/dot/a.lock" && fail "without the shim a stale dotlock must stay"
excl shim "$T/dot/a.lock" || fail "dotlock with a dead pid was not recovered"
printf '%s\n%s\n' "$dead" "$host" > "$T/dot/b.lock"
excl shim "$T/dot/b.lock" || fail "dotlock 'pid\\nhost' with a dead pid was not recovered"
echo $$ > "$T/dot/c.lock"
excl shim "$T/dot/c.lock"; [ $? = 3 ] || fail "a live holder's dotlock was broken"
printf '%s\n%s\n' "$dead" "other-host.invalid" > "$T/dot/d.lock"
excl shim "$T/dot/d.lock"; [ $? = 3 ] || fail "another host's dotlock was judged by pid"
echo $$ > "$T/dot/e.old"
touch -d '2 minutes ago' "$T/dot/e.old"
excl shim "$T/dot/e.old" || fail "a dotlock older than stale_threshold was not recovered"
echo $$ > "$T/dot/f.old"
excl shim "$T/dot/f.old"; [ $? = 3 ] || fail "a young live dotlock was broken"
: > "$T/dot/g.lock"
excl shim "$T/dot/g.lock"; [ $? = 3 ] || fail "an empty dotlock without stale_threshold was broken"

# dotlock with a heartbeat: the creator's shim refreshes the file it created
# (not after it renamed it away, not a successor at the same name), and a
# file silent for stale_threshold by the file system's clock is recovered
# at the first try.
shim "$PY" -c '
import os, sys, time
d = sys.argv[1]
def mt(p):
    return os.stat(p).st_mtime_ns
os.close(os.open(d + "/x.hb", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
a = mt(d + "/x.hb")
time.sleep(0.7)
if mt(d + "/x.hb") <= a:
    sys.exit("x.hb was not refreshed")
os.rename(d + "/x.hb", d + "/x.done")
a = mt(d + "/x.done")
time.sleep(0.5)
if mt(d + "/x.done") != a:
    sys.exit("x.done was refreshed after the rename")
os.close(os.open(d + "/y.hb", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
os.unlink(d + "/y.hb")
os.close(os.open(d + "/y.hb", os.O_EXCL | os.O_CREAT | os.O_WRONLY, 0o644))
os.unlink(d + "/y.hb")
fd = os.open(d + "/y.hb", os.O_CREAT | os.O_WRONLY, 0o644)  # not exclusive: not ours to beat
os.close(fd)
a = mt(d + "/y.hb")
time.sleep(0.5)
if mt(d + "/y.hb") != a:
    sys.exit("a file not created with O_EXCL was refreshed")
' "$T/dot" || fail "dotlock heartbeat"
echo $$ > "$T/dot/z.hb"
excl shim "$T/dot/z.hb"; [ $? = 3 ] || fail "a fresh dotlock of a heartbeat rule was broken"
touch -d '5 seconds ago' "$T/dot/z.hb"
excl shim "$T/dot/z.hb" || fail "a heartbeat rule's dotlock silent for 5 s was not recovered at once"
ls -a "$T/dot" | grep -q probe && fail "a probe file was left behind: $(ls -a "$T/dot")"

# The wrapper: --config (relative too), --, a missing file is exit 125.
(cd "$T" && "$WRAP" --config preload.conf -- flock "$T/w.lck" -c "[ -f '$T/w.lck.lock' ]") ||
	fail "wrapper --config FILE -- CMD"
"$WRAP" --config "$T/nope.conf" true 2>/dev/null; [ $? = 125 ] || fail "wrapper: missing config"
"$WRAP" 2>/dev/null; [ $? = 125 ] || fail "wrapper without a command"
echo "PASS"
