#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-cluster-handoff.sh [BUILDDIR] -- cross-host hand-off of the marker
# kinds on the cluster harness (tests/cluster): a holder on host 1 releases,
# a waiter on host 2 holds.  No notification crosses the hosts' views of the
# shared directory, so the waiter finds the release by polling; the adaptive
# step (quick after the lock was seen to change, backing off to the poll
# interval) should keep the median at or below half the poll interval.
# Prints bench-handoff's table for poll intervals of 50 and 250 ms.  Needs
# root and /dev/fuse, like the cluster suites; a measurement, not a test.
# BENCH_XHOST_N sets the number of hand-offs per kind (default 40),
# BENCH_XHOST_KIND one kind to measure (default: every marker kind).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
if [ -n "${1:-}" ]; then
	FL_TOP_BUILDDIR=$(cd "$1" && pwd)
fi
CL_NAME=bench-xhost
. "$(dirname "$0")/../tests/cluster/lib.sh"
CL_WATCHDOG_SECONDS=${CL_WATCHDOG_SECONDS:-900}
BENCH=$FL_TOP_BUILDDIR/bench/bench-handoff
if [ ! -x "$BENCH" ]; then
	echo "[$CL_NAME] ERROR: $BENCH is not built (make bench/bench-handoff)" >&2
	exit 99
fi
# entry_timeout=0: as NFS does at open (close-to-open), look names up again.
cl_start 3 attr_timeout=0.1,entry_timeout=0,negative_timeout=0 >/dev/null
read -r P1 <"$CLUSTER_DIR/node1/init.pid"
read -r P2 <"$CLUSTER_DIR/node2/init.pid"
for poll in 0.05 0.25; do
	"$BENCH" -x "$P1,$P2" -n "${BENCH_XHOST_N:-40}" -p "$poll" ${BENCH_XHOST_KIND:+-k "$BENCH_XHOST_KIND"} "$M" || CL_FAILS=$((CL_FAILS + 1))
	echo
done
cl_finish
