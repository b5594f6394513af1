# SPDX-License-Identifier: MIT
# vfork.sh -- CPython's subprocess closes the child's descriptors in a vfork
# child, which shares the parent's memory (and runs no fork handlers).  The
# shim's close hooks must not touch the parent's state from there: before
# the fix, a flock'ed soft lock lost its record (LOCK_UN then left the marker
# behind, and the next flock waited for itself) and the parent's lockf
# byte-range lock was released, so another process got it while the parent
# still believed it held it.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_or_fail "no $PY"
flp_policy "$T/*.db soft poll_interval=0.02"
: >"$T/a.db"
: >"$T/b.db"

out=$(shim "$PY" - "$T/a.db" <<'PY'
import fcntl, os, subprocess, sys
f = sys.argv[1]
fd = os.open(f, os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
subprocess.run(["true"])
print("other", subprocess.run(["flock", "-n", f, "true"]).returncode)
fcntl.flock(fd, fcntl.LOCK_UN)
print("marker", int(os.path.exists(f + ".lock")))
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("relock ok")
PY
)
[ "$(echo "$out" | grep '^other')" = "other 1" ] ||
	fail "flock: after a subprocess the lock was free to others: $out"
[ "$(echo "$out" | grep '^marker')" = "marker 0" ] || fail "flock: LOCK_UN left the marker: $out"
echo "$out" | grep -qx "relock ok" || fail "flock: could not lock again: $out"

out=$(shim "$PY" - "$T/b.db" <<'PY'
import fcntl, os, subprocess, sys
f = sys.argv[1]
fd = os.open(f, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
subprocess.run(["true"])
probe = "import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\ntry:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('free')\nexcept OSError:\n    print('held')"
print(subprocess.run([sys.executable, "-c", probe, f], capture_output=True, text=True).stdout.strip())
PY
)
[ "$out" = held ] || fail "lockf: after a subprocess another process saw the range '$out'"
echo "ok: a vfork child's closes leave the parent's flock and lockf locks alone"

# dup2 in the vfork child (stdout= a locked descriptor, and another file
# onto stdin): the parent's table must not count the child's copies, so
# the parent's close of its only descriptor still releases the lock.
: >"$T/c.db"
out=$(shim "$PY" - "$T/c.db" "$T/a.db" <<'PY'
import fcntl, os, subprocess, sys
f = sys.argv[1]
fd = os.open(f, os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
with open(sys.argv[2]) as other:
    subprocess.run(["true"], stdout=fd, stdin=other)
os.close(fd)
print("marker", int(os.path.exists(f + ".lock")))
print("other", subprocess.run(["flock", "-n", f, "true"]).returncode)
PY
)
[ "$out" = "marker 0
other 0" ] || fail "dup2 in a vfork child: the parent's close did not release: $(echo $out)"
echo "ok: a vfork child's dup2 leaves the parent's table alone"

# posix_spawn runs no fork handlers; its file actions run in the child.
# With each action (dup2 of the file onto 9, close, open of the file), the
# child flock(1) locks the shared description and exits; the parent still
# holds it (others are refused), and its close of its one descriptor
# releases it: the marker goes.
: >"$T/s.db"
out=$(shim "$PY" - "$T/s.db" <<'PY'
import os, subprocess, sys
f = sys.argv[1]
fd = os.open(f, os.O_RDWR)
spare = os.open("/dev/null", os.O_RDONLY)
acts = [(os.POSIX_SPAWN_DUP2, fd, 9), (os.POSIX_SPAWN_CLOSE, spare),
        (os.POSIX_SPAWN_OPEN, 8, f, os.O_RDONLY, 0)]
pid = os.posix_spawn("/usr/bin/flock", ["flock", "9"], os.environ, file_actions=acts)
print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print("held", subprocess.run(["flock", "-n", f, "true"]).returncode)
os.close(fd)
print("marker", int(os.path.exists(f + ".lock")))
print("other", subprocess.run(["flock", "-n", f, "true"]).returncode)
PY
)
[ "$out" = "child 0
held 1
marker 0
other 0" ] || fail "posix_spawn: $(echo $out) (want child 0 held 1 marker 0 other 0)"
echo "ok: a lock a posix_spawn child takes on a shared description is released by the parent's close"
