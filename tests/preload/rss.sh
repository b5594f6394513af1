# SPDX-License-Identifier: MIT
# rss.sh -- the shim keeps a record per file it emulated byte-range locks
# on; it must free it once the file has neither locks nor descriptors.  One
# process opens, lockf-locks, unlocks and closes N distinct files (each
# removed with its lock directory afterwards, so inode numbers come back):
# its resident size after the last cycle is within 8 MiB of what it was
# after the first N/10, and every lock was taken in the file's own lock
# directory.  N is 20,000 here (a record was over 12 KiB: 200 MiB if none
# were freed); FL_RSS_CYCLES=100000 for the long run.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || skip_or_fail "no $PY"
case ${FL_SANITIZERS-} in
*address* | *thread*) skip_or_fail "a sanitizer runtime cannot be preloaded into python3" ;;
esac
N=${FL_RSS_CYCLES:-20000}
flp_policy "$T/d/*.dat soft-rw stale_threshold=5 heartbeat_interval=1"
mkdir "$T/d"
out=$(LD_PRELOAD=$FLP_SO timeout 600 "$PY" - "$T/d" "$N" <<'PY' 2>"$T/err"
import fcntl, os, sys
d, n = sys.argv[1], int(sys.argv[2])
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
base = None
for i in range(n):
    p = "%s/f%d.dat" % (d, i)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
    if not os.path.isdir(p + ".lock.ranges"):
        print("no lock directory for", p)
        sys.exit(1)
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
    os.close(fd)
    os.unlink(p)
    os.rmdir(p + ".lock.ranges")
    if i == n // 10:
        base = rss()
print(base, rss())
PY
)
rc=$?
[ $rc = 0 ] || { cat "$T/err"; fail "the cycles failed (exit $rc): $out"; }
set -- $out
[ $# = 2 ] || fail "no sizes: $out"
grow=$(($2 - $1))
echo "VmRSS after $((N / 10)) cycles: $1 KiB, after $N: $2 KiB (+$grow KiB)"
[ "$grow" -lt 8192 ] || fail "resident size grew by $grow KiB over $N cycles"
echo PASS
