#!/bin/bash
# SPDX-License-Identifier: MIT
# The filelock command on the cluster simulator: `filelock -t soft-rw` writers
# on three hosts, K workers per host, M increments each, every increment a
# separate `filelock ... sh -c 'read; write'` run.  The counter must come out
# at exactly 3*K*M and the enter/exit logs must show no two holders
# overlapping.  CL_CLI_KIND picks another kind (e.g. soft, lease).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi

here=$(dirname "$0")
KIND=${CL_CLI_KIND:-soft-rw}
if [ ! -f "$here/lib.sh" ]; then
	echo "skip: the cluster harness (tests/cluster/lib.sh) is not in this tree"
	exit 77
fi
: "${FL_CLI:?FL_CLI is not set; run through make check}"
if timeout 20 "$FL_CLI" status -t "$KIND" /nonexistent-dir/x >/dev/null 2>&1; [ $? -eq 69 ]; then
	echo "skip: kind $KIND is not built into the library yet"
	exit 77
fi

CL_NAME=cli-$KIND
. "$here/lib.sh"
K=${CL_K:-2}
ITERS=${CL_M:-10}
OPTS=(-t "$KIND" -w 60 --poll-interval 0.05)
case $KIND in
soft-rw) OPTS+=(--heartbeat-interval 0.2 --stale-threshold 1) ;;
lease) OPTS+=(--lease-duration 1 --heartbeat-interval 0.2) ;;
esac

cl_start 3
mkdir -p "$S/logs"

# One worker: ITERS increments, each one filelock run.
worker() {
	local host=$1 j=$2
	cluster_spawn "$host" bash -c '
		cli=$1 tool=$2 lock=$3 cnt=$4 log=$5 m=$6
		shift 6
		for ((n = 0; n < m; n++)); do
			"$cli" "$@" "$lock" sh -c "
				echo enter \$(\"$tool\" mono) >>\"$log\"
				v=\$(cat \"$cnt\" 2>/dev/null)
				echo \$((\${v:-0} + 1)) >\"$cnt\"
				echo exit \$(\"$tool\" mono) >>\"$log\"" || exit $?
		done' worker "$FL_CLI" "$FL_CL_TOOL" "$M/cli.lock" "$M/cli.count" \
		"$M/logs/cli.$host.$j" "$ITERS" "${OPTS[@]}" 2>>"$CL_TMP/workers.err"
	pids+=("$CLUSTER_PID")
}

pids=()
t0=$(cl_mono)
for host in 1 2 3; do
	for ((j = 0; j < K; j++)); do
		worker "$host" "$j"
	done
done
codes=
failed=0
for p in "${pids[@]}"; do
	wait "$p"
	rc=$?
	codes+="$rc "
	[ "$rc" -eq 0 ] || failed=$((failed + 1))
done
t1=$(cl_mono)

want=$((3 * K * ITERS))
v=$(cl_counter_value cli.count)
read -r _ n _ bad _ _ <<<"$(cl_check_logs "$S/logs/cli")"
if [ "$failed" -ne 0 ]; then
	cl_fail "workers failed (exit codes $codes): $(head -5 "$CL_TMP/workers.err")"
elif [ "$v" = "$want" ] && [ "$n" = "$want" ] && [ "$bad" = 0 ]; then
	cl_ok "filelock -t $KIND: 3 hosts x $K workers x $ITERS = $want, no overlap ($(cl_ms "$t0" "$t1") ms)"
else
	cl_fail "counter $v, $n complete holds, $bad overlaps (want $want, $want, 0)"
fi
cl_finish
