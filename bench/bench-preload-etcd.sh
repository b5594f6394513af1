#!/bin/bash
# SPDX-License-Identifier: MIT
# bench-preload-etcd.sh -- flock(2) through the shim on an etcd rule, next to
# the library's etcd kind called directly, in the same run:
#   1. in one process: flock(fd, LOCK_EX) + flock(fd, LOCK_UN), blocking and
#      LOCK_NB, under the shim (Python's fcntl; its own cost is microseconds);
#      kernel flock without the shim for scale;
#   2. bench-etcd's uncontended fl_acquire + fl_release (the library alone);
#   3. whole commands: flock(1) under the shim vs `filelock -t etcd` vs plain
#      flock(1) (process start, loading libcurl, the lock), with hyperfine.
#
#   make bench/bench-etcd
#   sh tests/etcd/etcd-cluster.sh run -- bash bench/bench-preload-etcd.sh [BUILDDIR [N]]
B=$(cd "${1:-_build}" && pwd) || exit 2
N=${2:-300}
W=$B/tests/preload/filelock-preload
PY=/usr/bin/python3
[ -n "${FILELOCK_ETCD_ENDPOINTS:-}" ] || { echo "run inside tests/etcd/etcd-cluster.sh run --" >&2; exit 2; }
D=$(mktemp -d) || exit 2
trap 'rm -rf "$D"' EXIT
export FILELOCK_ETCD_PREFIX=/bench-preload-$$
echo "$D/*.db etcd" >"$D/policy"
export FILELOCK_PRELOAD_CONFIG=$D/policy
: >"$D/c.db"
: >"$D/k.txt"
cat >"$D/loop.py" <<'PY'
import fcntl, os, statistics, sys, time
f, n, nb, label = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "nb", sys.argv[4]
fd = os.open(f, os.O_RDWR)
op = fcntl.LOCK_EX | (fcntl.LOCK_NB if nb else 0)
fcntl.flock(fd, op)  # warm-up: the shim loads the library here
fcntl.flock(fd, fcntl.LOCK_UN)
t = []
for i in range(n):
    a = time.perf_counter()
    fcntl.flock(fd, op)
    fcntl.flock(fd, fcntl.LOCK_UN)
    t.append(time.perf_counter() - a)
t.sort()
print("%-30s median %9.3f ms   p99 %9.3f ms   (n=%d)"
      % (label, statistics.median(t) * 1e3, t[max(0, int(n * 0.99) - 1)] * 1e3, n))
PY
echo "== flock(fd, LOCK_EX) + flock(fd, LOCK_UN) in one process"
"$PY" "$D/loop.py" "$D/k.txt" "$N" b "kernel flock, no shim"
"$W" "$PY" "$D/loop.py" "$D/c.db" "$N" b "shim, etcd rule, blocking"
"$W" "$PY" "$D/loop.py" "$D/c.db" "$N" nb "shim, etcd rule, LOCK_NB"
echo "== the library alone (bench-etcd: fl_acquire + fl_release, uncontended)"
if [ -x "$B/bench/bench-etcd" ]; then
	"$B/bench/bench-etcd" -n "$N" -p 2 -s 2 "$D" 2>&1 | grep -E '^(kind|etcd) '
else
	echo "(not built: make bench/bench-etcd)"
fi
if command -v hyperfine >/dev/null; then
	echo "== whole commands"
	hyperfine -N -w 5 -r 50 "flock $D/k.txt true" "$W flock $D/c.db true" \
		"$B/cli/filelock -t etcd $D/c.db.lock true" 2>&1 | grep -E 'Benchmark|Time'
fi
