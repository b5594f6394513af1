#!/bin/bash
# SPDX-License-Identifier: MIT
#
# demo.sh [BUILDDIR] -- three simulated NFS client hosts share one directory.
# Kernel flock() lets two hosts into the same lock at once (as on NFS with
# local locks); filelock's soft (and soft-rw, when built) lock does not.
# Then sqlite3 on the three hosts at once, without and with the shim.
# Needs root and /dev/fuse; BUILDDIR defaults to $FL_TOP_BUILDDIR or _build.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
if [ -n "${1:-}" ]; then
	FL_TOP_BUILDDIR=$(cd "$1" && pwd)
fi
CL_NAME=demo
. "$(dirname "$0")/lib.sh"
CL_WATCHDOG_SECONDS=120
# entry_timeout=0: FUSE would trust cached names for open(), which NFS does
# not, and sqlite3 would trip over a journal another host just deleted.
cl_start 3 attr_timeout=0.1,entry_timeout=0,negative_timeout=0 >/dev/null
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

# sqlite3 (rollback journal) on every host at once, its fcntl byte-range
# locks as the kernel keeps them (host-local), then through the shim.
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
command -v sqlite3 >/dev/null && [ -x "$FLP" ] || exit 0
Q=20
printf '%s\n' "$M/*.sqlite soft-rw stale_threshold=5 heartbeat_interval=1 poll_interval=0.02" \
	>"$CL_TMP/demo-preload.conf"
{
	echo ".timeout 30000"
	for ((j = 0; j < Q; j++)); do echo "BEGIN; UPDATE t SET n = n + 1; COMMIT;"; done
} >"$CL_TMP/demo.sql"
for mode in kernel shim; do
	db=demo-$mode.sqlite
	sqlite3 "$S/$db" 'PRAGMA journal_mode=DELETE; CREATE TABLE t(n); INSERT INTO t VALUES (0);' \
		>/dev/null
	wrap=()
	[ $mode = shim ] && wrap=("$FLP" --config "$CL_TMP/demo-preload.conf")
	pids=()
	for i in 1 2 3; do
		cluster_exec "$i" sh -c 'exec "$@" <"$0"' "$CL_TMP/demo.sql" \
			timeout 60 "${wrap[@]}" sqlite3 "$M/$db" >/dev/null 2>&1 &
		pids+=("$!")
	done
	wait "${pids[@]}"
	v=$(sqlite3 "$S/$db" 'SELECT n FROM t;' 2>&1)
	ic=$(sqlite3 "$S/$db" 'PRAGMA integrity_check;' 2>&1 | head -n 1)
	label="sqlite3 alone:"
	[ $mode = shim ] && label="sqlite3 + shim:"
	printf '%-17s %d hosts x %d transactions on one database -> n = %s, integrity %s' \
		"$label" $N $Q "$v" "$ic"
	if [ "$v" = $((N * Q)) ]; then echo " (exact)"; else echo " (expected $((N * Q)))"; fi
done
exit 0
