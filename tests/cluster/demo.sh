#!/bin/bash
# SPDX-License-Identifier: MIT
#
# demo.sh [BUILDDIR] -- three simulated NFS client hosts share one directory.
# Kernel flock() lets two hosts into the same lock at once (as on NFS with
# local locks); filelock's soft (and soft-rw, when built) lock does not.
# Needs root and /dev/fuse; BUILDDIR defaults to $FL_TOP_BUILDDIR or _build.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
if [ -n "${1:-}" ]; then
	FL_TOP_BUILDDIR=$(cd "$1" && pwd)
fi
CL_NAME=demo
. "$(dirname "$0")/lib.sh"
CL_WATCHDOG_SECONDS=60
cl_start 3 >/dev/null
mkdir -p "$S/logs"
N=3 W=40

echo "3 simulated hosts (node1..node3), each with its own NFS-like view of one shared directory."

# Kernel flock: host 1 holds it, host 2 asks without waiting.
holder_start k 1 "$FL_HOLDER" -t unix "$M/demo-flock.lock"
holder_expect k '^ready' 10
if cluster_exec 2 "$FL_HOLDER" -t unix -w 0 "$M/demo-flock.lock" </dev/null | grep -q '^ready'; then
	echo "kernel flock:     node1 holds demo-flock.lock, and node2 got it too -> both inside at once"
else
	echo "kernel flock:     node2 was refused (this filesystem coordinates kernel locks)"
fi
holder_close k

for kind in soft soft-rw; do
	"$FL_CL_TOOL" probe "$kind" "${TMPDIR:-/tmp}/fl-demo-probe.lock" || continue
	holder_start s 1 "$FL_HOLDER" -t "$kind" "$M/demo-$kind.lock"
	holder_expect s '^ready' 10
	out=$(cluster_exec 2 "$FL_HOLDER" -t "$kind" -w 0 "$M/demo-$kind.lock" </dev/null)
	case $out in
	ready*) printf '%-17s node2 got it while node1 holds it -> BROKEN\n' "filelock $kind:" ;;
	*) printf '%-17s node1 holds demo-%s.lock, node2 is refused\n' "filelock $kind:" "$kind" ;;
	esac
	holder_close s
done

# Lost updates: every host increments one counter $W times under each lock.
for kind in unix soft soft-rw; do
	"$FL_CL_TOOL" probe "$kind" "${TMPDIR:-/tmp}/fl-demo-probe.lock" || continue
	pids=()
	for i in 1 2 3; do
		cluster_spawn "$i" "$FL_COUNTER" -t "$kind" -n $W -W 2000 -o timeout=30 \
			"$M/demo-$kind.lock" "$M/demo-$kind.count"
		pids+=("$CLUSTER_PID")
	done
	wait "${pids[@]}"
	v=$(cl_counter_value "demo-$kind.count")
	label="filelock $kind"
	[ $kind = unix ] && label="kernel flock"
	printf '%-17s %d hosts x %d increments of one counter -> %s' "$label:" $N $W "$v"
	if [ "$v" -eq $((N * W)) ]; then echo " (exact)"; else echo " ($((N * W - v)) updates lost)"; fi
done
exit 0
