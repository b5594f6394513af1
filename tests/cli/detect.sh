#!/bin/sh
# filelock status / break without --kind: the kind comes from the files on
# disk (each marker kind, a plain file, nothing); a data path the shim's
# policy redirects is looked at through its marker; messages name the
# command's options; durations take units; a wait on a terminal names the
# holder without --verbose.
. "${FL_TOP_SRCDIR:-.}/tests/cli/lib.sh"

W=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
PY=${FL_PYTHON3:-/usr/bin/python3}
# Keep the machine's policy out: status and break read the shim's policy.
FILELOCK_PRELOAD_CONFIG=$T/none.conf
export FILELOCK_PRELOAD_CONFIG
host=$(uname -n)
built() { # kind: is it built into this libfilelock?
	timeout "$TO" "$FL_CLI" status -t "$1" "$T/probe.$1" >/dev/null 2>&1
	[ $? -ne 69 ]
}

# --- nothing on disk ----------------------------------------------------------------
expect_rc 0 "status of a path with no lock files" "$FL_CLI" status "$T/nothing"
expect_grep "^$T/nothing: free (kind unix, no lock files of any kind)$" "$T/out" "says there is nothing"
expect_rc 0 "status --json: kind_from none" "$FL_CLI" status --json "$T/nothing"
expect_grep '"kind_from":"none"' "$T/out" "json kind_from none"
expect_rc 0 "break of nothing" "$FL_CLI" break "$T/nothing"
expect_grep "nothing to break: no lock files of any kind" "$T/out" "break of nothing says so"

# --- each kind held by filelock: status finds it, break names it ---------------------
# detect KIND WHAT: a holder of KIND on $T/KIND.lock; status without --kind.
detect() {
	L=$T/$1.lock
	start_holder "$FL_CLI" -t "$1" "$L" sh -c "$HOLD"
	expect_rc 1 "$1: status without --kind: held" "$FL_CLI" status "$L"
	expect_grep "^$L: held (kind $1, $2" "$T/out" "$1: kind found from the files"
	expect_grep "pid: $holder_line" "$T/out" "$1: the holder is named"
	expect_rc 1 "$1: status --json" "$FL_CLI" status --json "$L"
	expect_grep "\"kind\":\"$1\",\"kind_from\":\"files\"" "$T/out" "$1: json kind and kind_from"
}
detect soft "found a soft marker"
expect_rc 1 "soft: break without --kind refuses a live holder" "$FL_CLI" break "$T/soft.lock"
expect_grep "kind soft (found a soft marker)" "$T/out" "break says which kind it found"
expect_grep "held by pid $holder_line .*use --force" "$T/err" "break names the live holder"
expect_rc 0 "soft: break --force without --kind" "$FL_CLI" break --force "$T/soft.lock"
expect_grep "removed live lock on $T/soft.lock" "$T/out" "soft: break --force removed the marker"
stop_holder
if built lease; then
	detect lease "found a lease record"
	stop_holder
fi
if built strict; then
	detect strict "found strict claims in $T/strict.lock.filelock/"
	expect_rc 64 "strict: break --force without a claim name" "$FL_CLI" break --force "$T/strict.lock"
	expect_grep "claim NAME" "$T/err" "strict: break says how to name a claim"
	stop_holder
	expect_rc 0 "strict: free after release, still strict" "$FL_CLI" status "$T/strict.lock"
	expect_grep "(kind strict, " "$T/out" "strict: the idle lock is still strict"
fi
if built soft-rw; then
	detect soft-rw "found soft-rw files next to it"
	stop_holder
	# The legacy protocol's files: status reads them with that protocol.
	L=$T/legacy.lock
	start_holder "$FL_CLI" -t soft-rw --soft-rw-protocol=legacy "$L" sh -c "$HOLD"
	expect_rc 1 "soft-rw legacy: status without --kind: held" "$FL_CLI" status "$L"
	expect_grep "pid: $holder_line" "$T/out" "soft-rw legacy: the holder is named"
	stop_holder
	# The generation-log layout (<path>.rw/) is soft-rw too.
	mkdir "$T/gen.rw"
	expect_rc 0 "soft-rw: a .rw/ directory" "$FL_CLI" status --json "$T/gen"
	expect_grep '"kind":"soft-rw","kind_from":"files"' "$T/out" "a .rw/ directory is soft-rw"
fi
if built rw; then
	detect rw "found an empty file with byte-range locks"
	stop_holder
fi

# A plain flock (unix): held, and break explains that the kernel owns it.
start_holder "$FL_CLI" "$T/plain" sh -c "$HOLD"
expect_rc 1 "unix: status without --kind" "$FL_CLI" status "$T/plain"
expect_grep "^$T/plain: held (kind unix, found no marker: the kernel's flock)$" "$T/out" "unix found"
expect_rc 69 "unix: break" "$FL_CLI" break "$T/plain"
expect_grep "is the kernel's flock, held by pid $holder_line" "$T/err" "break names the flock holder"
expect_grep "cannot be broken" "$T/err" "break says it cannot be broken"
if grep -q "fl_break\|fl_open" "$T/err"; then fail "break names a library function: $(cat "$T/err")"; fi
stop_holder
expect_rc 0 "unix: the plain file is untouched" test -f "$T/plain"

# A data file whose first lines look like text, not like a marker, is never
# called a broken marker.
printf 'results\n42\n' > "$T/data.txt"
expect_rc 0 "a text file is not a marker" "$FL_CLI" status "$T/data.txt"
expect_grep "kind unix, found no marker" "$T/out" "a text file is unix"
expect_rc 69 "break leaves a text file alone" "$FL_CLI" break "$T/data.txt"
expect_rc 0 "the text file is intact" test "$(cat "$T/data.txt")" = "results
42"

# A stale soft marker of a dead process on this host: status 2, break removes it.
dead=$(sh -c 'echo $$')
printf '%s\n%s\n%s\n' "$dead" "$host" 1 > "$T/dead.lock"
expect_rc 2 "a dead holder's soft marker: stale" "$FL_CLI" status "$T/dead.lock"
expect_rc 0 "break it without --kind" "$FL_CLI" break "$T/dead.lock"
expect_grep "removed stale lock on $T/dead.lock held by pid $dead" "$T/out" "break names the dead holder"
expect_rc 0 "the stale marker is gone" test ! -e "$T/dead.lock"

# --- a data path the shim protects: status and break use the marker ------------------
# (The shim takes the lock; sanitizer builds cannot preload it into flock(1).)
shim_ok=1
case ${FL_SANITIZERS-} in *address* | *thread*) shim_ok=0 ;; esac
[ "$shim_ok" = 1 ] && {
mkdir -p "$T/nfs/jobs" "$T/locks"
printf '%s/nfs/jobs/*.dat soft\n%s/nfs/jobs/*.db lease lock_dir=%s/locks lease_duration=20\n' \
	"$T" "$T" "$T" > "$T/site.conf"
D=$T/nfs/jobs/run.dat
printf 'payload\n' > "$D"
FILELOCK_PRELOAD_CONFIG=$T/site.conf
# The shim takes the lock: flock(1) under the wrapper holds $D, the marker is $D.lock.
start_holder "$W" --config "$T/site.conf" -- flock "$D" sh -c "$HOLD"
expect_rc 0 "the shim made the marker" test -f "$D.lock"
expect_rc 1 "status of the data path: held" "$FL_CLI" status "$D"
expect_grep "^$D.lock: held (kind soft, the marker of $D under $T/site.conf:1)$" "$T/out" "status uses the marker and says so"
expect_rc 1 "status -t soft DATA uses the marker too" "$FL_CLI" status -t soft "$D"
expect_grep "^$D.lock: held" "$T/out" "-t soft DATA: the marker"
if grep -q "malformed" "$T/out"; then fail "the data file was read as a marker"; fi
expect_rc 1 "status --json of the data path" "$FL_CLI" status --json "$D"
expect_grep "\"path\":\"$D.lock\",\"data_path\":\"$D\",\"kind\":\"soft\",\"kind_from\":\"policy\"" "$T/out" "json: marker, data path, kind from the policy"
expect_rc 1 "status of the marker itself: the same lock" "$FL_CLI" status --json "$D.lock"
expect_grep "\"path\":\"$D.lock\",\"data_path\":\"$D\",\"kind\":\"soft\",\"kind_from\":\"policy\"" "$T/out" "the marker is not taken for a data path"
expect_rc 1 "break of the data path refuses the live holder" "$FL_CLI" break "$D"
expect_grep "not breaking it" "$T/err" "break refuses"
stop_holder
expect_rc 0 "the data file is intact" test "$(cat "$D")" = payload
expect_rc 0 "status after release: free" "$FL_CLI" status "$D"
if built lease; then
	D2=$T/nfs/jobs/q.db
	: > "$D2"
	start_holder "$W" --config "$T/site.conf" -- flock "$D2" sh -c "$HOLD"
	expect_rc 1 "lease rule with lock_dir: status of the data path" "$FL_CLI" status "$D2"
	expect_grep "^$T/locks$D2.lock: held (kind lease, the marker of $D2 under $T/site.conf:2)$" "$T/out" "the marker under lock_dir"
	expect_grep "lease 20.0s" "$T/out" "the rule's lease_duration is used"
	stop_holder
fi
FILELOCK_PRELOAD_CONFIG=$T/none.conf
}

# --- option names, ignored options, durations with units ------------------------------
expect_rc 0 "--lease-duration with -t soft: a warning" "$FL_CLI" -t soft --lease-duration 5 "$T/o.lock" true
expect_grep "warning: --lease-duration has no effect on kind soft" "$T/err" "the ignored option is named"
expect_rc 0 "--heartbeat-interval with the unix kind: a warning" "$FL_CLI" --heartbeat-interval 1 "$T/o" true
expect_grep "warning: --heartbeat-interval has no effect on kind unix" "$T/err" "unix: ignored option named"
if built soft-rw; then
	expect_rc 64 "soft-rw: stale below heartbeat" "$FL_CLI" -t soft-rw --heartbeat-interval 30 --stale-threshold 10 "$T/o2" true
	expect_grep "--stale-threshold must exceed --heartbeat-interval" "$T/err" "the error names the options"
	if grep -q "heartbeat_interval\|stale_threshold" "$T/err"; then fail "library field names: $(cat "$T/err")"; fi
fi
if built lease; then
	expect_rc 64 "lease: --stale-threshold refused" "$FL_CLI" status -t lease --stale-threshold 5 "$T/o3"
	expect_grep "--stale-threshold is not used by lease: --lease-duration sets" "$T/err" "lease refusal names options"
fi
start_holder "$FL_CLI" "$T/w" sh -c "$HOLD"
expect_rc 1 "-w 300ms times out" "$FL_CLI" -w 300ms "$T/w" true
expect_rc 1 "-w 0.3s times out" "$FL_CLI" -w 0.3s "$T/w" true
expect_rc 64 "-w 2x is refused" "$FL_CLI" -w 2x "$T/w" true
expect_grep "expected a duration" "$T/err" "the refusal says what a duration is"

# --- a wait on a terminal names the holder after a few seconds, without --verbose ------
# The waiter's stderr is a pseudo-terminal (Python's pty); -w 4s ends it.
if "$PY" -c 'import pty' 2>/dev/null; then
	expect_rc 0 "wait on a terminal" "$PY" -c '
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "-w", "4s", sys.argv[2], "true"])
out = b""
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(0 if os.WEXITSTATUS(st) == 1 else 3)
' "$FL_CLI" "$T/w"
	expect_grep "waiting for $T/w (3\.[0-9]s): held by pid $holder_line" "$T/out" "the holder is named on a terminal"
	n=$(grep -c "waiting for" "$T/out")
	expect_rc 0 "named once ($n)" test "$n" -eq 1
fi
expect_rc 1 "no terminal: silent as flock(1)" "$FL_CLI" -w 3.5 "$T/w" true
expect_rc 0 "nothing on stderr without a terminal" test ! -s "$T/err"
stop_holder

finish
