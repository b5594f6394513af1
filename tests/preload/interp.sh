# SPDX-License-Identifier: MIT
# interp.sh -- Python's fcntl.flock, Perl's flock and util-linux flock(1)
# coordinate through the shim on one lock: K processes of each increment a
# counter M times; the total is exact and every lock went through the shim.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || skip_or_fail "$PY is not installed"
command -v perl >/dev/null || skip_or_fail "perl is not installed"
command -v flock >/dev/null || skip_or_fail "util-linux flock(1) is not installed"
flp_policy "$T/**/*.lck soft poll_interval=0.01"
L=$T/d/e/counter.lck
mkdir -p "$T/d/e"
C=$T/counter
echo 0 > "$C"
K=2 M=10
FILELOCK_PRELOAD_DEBUG=1
export FILELOCK_PRELOAD_DEBUG PYTHONDONTWRITEBYTECODE=1

py_worker() {
	shim "$PY" -c '
import fcntl, os, sys
lock, counter, m = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(m):
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with open(counter, "r+") as f:
        v = int(f.read() or 0)
        f.seek(0)
        f.write("%d\n" % (v + 1))
        f.truncate()
    if i % 2:
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
' "$L" "$C" "$M"
}

pl_worker() {
	shim perl -e '
use Fcntl qw(:flock);
my ($lock, $counter, $m) = @ARGV;
for my $i (1 .. $m) {
    open(my $lh, ">>", $lock) or die "open $lock: $!";
    flock($lh, LOCK_EX) or die "flock: $!";
    open(my $ch, "+<", $counter) or die "open $counter: $!";
    my $v = <$ch>;
    seek($ch, 0, 0);
    truncate($ch, 0);
    print $ch ($v + 1), "\n";
    close($ch);
    flock($lh, LOCK_UN) if $i % 2;
    close($lh);
}
' "$L" "$C" "$M"
}

sh_worker() {
	j=0
	while [ $j -lt "$M" ]; do
		shim flock -x "$L" sh -c 'v=$(cat "$1"); echo $((v + 1)) > "$1"' sh "$C" || return 1
		j=$((j + 1))
	done
}

pids=
i=0
while [ $i -lt $K ]; do
	py_worker 2>>"$T/trace.py" & pids="$pids $!"
	pl_worker 2>>"$T/trace.pl" & pids="$pids $!"
	sh_worker 2>>"$T/trace.sh" & pids="$pids $!"
	i=$((i + 1))
done
FLP_PIDS=$pids
rc=0
for p in $pids; do wait "$p" || rc=1; done
[ $rc = 0 ] || { cat "$T"/trace.*; fail "a worker failed"; }
total=$((3 * K * M))
[ "$(cat "$C")" = $total ] || fail "counter $(cat "$C") != $total"
for w in py pl sh; do
	n=$(grep -c 'LOCK_EX) on .*/counter.lck -> soft .*/counter.lck.lock: acquired' "$T/trace.$w")
	[ "$n" = $((K * M)) ] || fail "$w: $n of $((K * M)) locks went through the shim"
done
[ ! -e "$L.lock" ] || fail "marker left behind"
echo "PASS"
