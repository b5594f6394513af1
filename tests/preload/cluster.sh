#!/bin/bash
# SPDX-License-Identifier: MIT
# cluster.sh -- the shim across three simulated NFS client hosts (see
# tests/cluster/README.md), where kernel flock() does not cross hosts:
#  - without the shim, util-linux flock(1) lets host 2 into a lock host 1
#    holds (the overlap the shim exists to fix);
#  - with the shim on every host, flock(1), Python's fcntl.flock and Perl's
#    flock on hosts 1..3 refuse it, and a counter incremented under them
#    from all three hosts at once is exact;
#  - a host that crashes holding a shimmed lease-kind flock: the others get
#    the lock after lease_duration.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
CL_NAME=preload-cluster
. "$FL_TOP_SRCDIR/tests/cluster/lib.sh"
FLP_SO=$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so
PY=/usr/bin/python3
case ${FL_SANITIZERS-} in
*address*|*thread*) echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"; exit 77 ;;
esac
for p in flock perl "$PY"; do
	command -v "$p" >/dev/null || { cluster_skip "$p is not installed"; exit $?; }
done
CL_WATCHDOG_SECONDS=170
cl_start 3
W=15

POL=$CL_TMP/preload.conf
printf '%s\n' "$M/*.lck soft poll_interval=0.02" \
	"$M/*.lease lease lease_duration=3 poll_interval=0.05" > "$POL"
export FILELOCK_PRELOAD_CONFIG=$POL

py_nb='import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(3)'
pl_nb='use Fcntl qw(:flock); open(my $h, ">>", $ARGV[0]) or die; flock($h, LOCK_EX | LOCK_NB) or exit 3;'

# 1. No shim: host 2 gets the lock host 1 holds.
unset NODE_PRELOAD
holder_start k 1 flock "$M/a.lck" sh -c 'echo ready; read x'
holder_expect k '^ready' 20 || cl_fail "plain holder on host 1: $H_LINE"
if cluster_exec 2 flock -n "$M/a.lck" true; then
	cl_ok "without the shim, host 2 got the flock host 1 holds (the overlap)"
else
	cl_fail "kernel flock coordinated across hosts: this harness cannot show the fix"
fi
holder_close k

# 2. The shim on every host: everyone else is refused while host 1 holds it.
export NODE_PRELOAD=$FLP_SO
holder_start s 1 flock "$M/a.lck" sh -c 'echo ready; read x'
holder_expect s '^ready' 20 || cl_fail "shimmed holder on host 1: $H_LINE"
[ -f "$S/a.lck.lock" ] || cl_fail "no soft marker in the shared directory"
cluster_exec 2 flock -n "$M/a.lck" true && cl_fail "host 2 flock(1) got the lock"
cluster_exec 3 flock -s -n "$M/a.lck" true && cl_fail "host 3 flock -s got the lock"
cluster_exec 2 "$PY" -c "$py_nb" "$M/a.lck"; r=$?
[ $r = 3 ] || cl_fail "host 2 python fcntl.flock: exit $r, expected 3 (EWOULDBLOCK)"
cluster_exec 3 perl -e "$pl_nb" "$M/a.lck"; r=$?
[ $r = 3 ] || cl_fail "host 3 perl flock: exit $r, expected 3 (EWOULDBLOCK)"
holder_close s
cluster_exec 2 flock -n "$M/a.lck" true || cl_fail "host 2 refused after host 1 released"
[ ! -e "$S/a.lck.lock" ] || cl_fail "marker left after release"
cl_ok "with the shim, flock(1), python and perl on hosts 2 and 3 are refused"

# 3. Counters: host 1 flock(1), host 2 python, host 3 perl, W increments each.
sh_inc="for ((j = 0; j < $W; j++)); do flock '$M/c.lck' sh -c 'v=\$(cat \"\$1\"); echo \$((v + 1)) > \"\$1\"' sh '$M/\$1' || exit 1; done"
py_inc='import fcntl, os, sys
lock, counter, w = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(w):
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    with open(counter, "r+") as f:
        v = int(f.read() or 0)
        f.seek(0)
        f.write("%d\n" % (v + 1))
        f.truncate()
    os.close(fd)'
pl_inc='use Fcntl qw(:flock);
my ($lock, $counter, $w) = @ARGV;
for (1 .. $w) {
    open(my $lh, ">>", $lock) or die; flock($lh, LOCK_EX) or die "flock: $!";
    open(my $ch, "+<", $counter) or die; my $v = <$ch>;
    seek($ch, 0, 0); truncate($ch, 0); print $ch ($v + 1), "\n"; close($ch);
    close($lh);
}'
run_counters() {
	local name=$1 pids=()
	echo 0 > "$S/$name"
	cluster_spawn 1 bash -c "$sh_inc" bash "$name"; pids+=("$CLUSTER_PID")
	cluster_spawn 2 "$PY" -c "$py_inc" "$M/c.lck" "$M/$name" "$W"; pids+=("$CLUSTER_PID")
	cluster_spawn 3 perl -e "$pl_inc" "$M/c.lck" "$M/$name" "$W"; pids+=("$CLUSTER_PID")
	for p in "${pids[@]}"; do wait "$p" || cl_fail "$name: a worker failed"; done
	cl_counter_value "$name"
}
v=$(run_counters count.shim)
[ "$v" = $((3 * W)) ] || cl_fail "with the shim the counter is $v, expected $((3 * W))"
cl_ok "with the shim, 3 hosts x $W increments (flock(1), python, perl) = $v"
unset NODE_PRELOAD
v=$(run_counters count.plain)
cl_log "without the shim the same run counted $v of $((3 * W)) (kernel flock does not cross hosts)"
export NODE_PRELOAD=$FLP_SO

# 4. A host crashes holding a shimmed lease-kind flock; host 2 gets it later.
holder_start c 1 flock "$M/b.lease" sh -c 'echo ready; read x'
holder_expect c '^ready' 20 || cl_fail "lease holder on host 1: $H_LINE"
cluster_exec 2 flock -n "$M/b.lease" true && cl_fail "host 2 got a live lease"
t0=$(cl_mono)
cluster_crash 1
cluster_exec 2 flock -w 30 "$M/b.lease" true || cl_fail "host 2 never got the crashed host's lease"
ms=$(cl_ms "$t0" "$(cl_mono)")
cl_ok "host 1 crashed holding the lease; host 2 got it after ${ms} ms (lease_duration 3 s)"
holder_close c
cl_finish
