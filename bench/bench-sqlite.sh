#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-sqlite.sh -- what the preload shim's byte-range emulation costs an
# unmodified sqlite3 (rollback journal), in one run:
#
#   native, 1 host     sqlite3 with the kernel's fcntl locks, local directory
#   shim, 1 host       the same directory, a soft-rw rule for the database
#   shim, 3 hosts      the simulated NFS cluster (tests/cluster/cluster.sh),
#                      P processes on each host; needs root and /dev/fuse,
#                      otherwise the row says why it is missing
#
# each with 1 process (no contention: the cost of a transaction) and with
# P per host (contention).  Every process runs K transactions
#   BEGIN; UPDATE t SET n = n + 1; INSERT INTO log ...; COMMIT;
# released together through a pipe.  Columns: transactions per second
# (wall clock, all processes), and per transaction the emulated lock calls,
# the marker operations (create, unlink, rename, readdir, read, write in the
# lock directory) and the waits for the directory's mutex, summed over the
# "stats:" lines FILELOCK_PRELOAD_STATS=1 makes every sqlite3 print at exit.
# The last column checks the result (n equals the transactions, integrity ok).
# First, counted outside the shim: the system calls one sqlite3 makes on the
# lock directory per transaction (strace -f of 20 transactions; by path or
# on a descriptor opened there).
#
#   bench-sqlite.sh [-k K] [-p P]            (make bench-sqlite)
#
# Environment: FL_TOP_BUILDDIR (default: ../_build next to this script),
# SQLITE3 (default /usr/bin/sqlite3).  Numbers, not pass/fail: exits 1 only
# when a run's result is wrong.

if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
: "${FL_TOP_SRCDIR:=$(cd "$HERE/.." && pwd)}"
: "${FL_TOP_BUILDDIR:=$FL_TOP_SRCDIR/_build}"
: "${CLUSTER_NODEINIT:=$FL_TOP_BUILDDIR/tests/cluster/nodeinit}"
export FL_TOP_SRCDIR FL_TOP_BUILDDIR CLUSTER_NODEINIT
SQLITE=${SQLITE3:-/usr/bin/sqlite3}
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
K=50
P=2
while getopts k:p: o; do
	case $o in
	k) K=$OPTARG ;;
	p) P=$OPTARG ;;
	*)
		echo "usage: bench-sqlite.sh [-k TRANSACTIONS] [-p PROCESSES_PER_HOST]" >&2
		exit 64
		;;
	esac
done
for f in "$SQLITE" "$FLP"; do
	[ -x "$f" ] || {
		echo "bench-sqlite: $f is missing (build the tree: make, make check TESTS=)" >&2
		exit 2
	}
done

# shellcheck source=../tests/cluster/cluster.sh
. "$FL_TOP_SRCDIR/tests/cluster/cluster.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/fl-bench-sqlite.XXXXXX") || exit 2
unset CLUSTER_DIR
cleanup() {
	cluster_down >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP
mkdir "$W/local"
BAD=0

now_ns() { date +%s%N; }

# script FILE: K transactions.
script() {
	local j
	{
		echo ".timeout 30000"
		for ((j = 0; j < K; j++)); do
			echo "BEGIN; UPDATE t SET n = n + 1; INSERT INTO log SELECT n, 'w' FROM t; COMMIT;"
		done
	} >"$1"
}
script "$W/tx.sql"

create() {
	rm -f "$1" "$1-journal"
	"$SQLITE" "$1" 'PRAGMA journal_mode=DELETE; CREATE TABLE t(n INTEGER NOT NULL);
		INSERT INTO t VALUES (0); CREATE TABLE log(n INTEGER NOT NULL, who TEXT);' >/dev/null
}

# run LABEL DB DBREAL HOSTS PROCS shim|native: PROCS sqlite3 processes per host
# (host 0: this machine), released together; prints one table row.
run() {
	local label=$1 db=$2 real=$3 hosts=$4 procs=$5 mode=$6 h p go n=0 pids=() wrap=() cmd
	local t0 t1 tx s calls=0 ops=0 waits=0 line v check
	create "$real"
	rm -f "$W"/err.* "$W/go"
	[ "$mode" = shim ] && wrap=(env FILELOCK_PRELOAD_STATS=1 "$FLP" --config "$W/preload.conf")
	mkfifo "$W/go"
	exec {go}<>"$W/go"
	for ((h = 1; h <= hosts; h++)); do
		for ((p = 1; p <= procs; p++)); do
			# dd takes this process's byte of the go signal.
			cmd=(sh -c 'dd bs=1 count=1 status=none of=/dev/null && exec "$@" <"$0"'
				"$W/tx.sql" "${wrap[@]}" "$SQLITE" -bail "$db")
			if [ "$hosts" = 1 ] && [ -z "${CLUSTER_DIR:-}" ]; then
				"${cmd[@]}" <"$W/go" >/dev/null 2>"$W/err.$h.$p" &
			else
				# The subshell's own redirection: an asynchronous
				# command's stdin would be /dev/null (no go signal).
				(cluster_exec "$h" "${cmd[@]}") <"$W/go" >/dev/null 2>"$W/err.$h.$p" &
			fi
			pids+=("$!")
			n=$((n + 1))
		done
	done
	t0=$(now_ns)
	printf '%*s' "$n" '' | tr ' ' x >&$go
	for p in "${pids[@]}"; do
		wait "$p" || BAD=1
	done
	t1=$(now_ns)
	exec {go}>&-
	tx=$((n * K))
	for f in "$W"/err.*; do
		while read -r line; do
			case $line in
			*"stats: range_calls="*)
				set -- ${line#*stats: }
				calls=$((calls + ${1#range_calls=}))
				ops=$((ops + ${2#marker_ops=}))
				waits=$((waits + ${3#mutex_waits=}))
				;;
			esac
		done <"$f"
	done
	v=$("$SQLITE" "$real" 'PRAGMA integrity_check; SELECT n FROM t;' 2>&1 | tr '\n' ' ')
	if [ "$v" = "ok $tx " ]; then
		check=ok
	else
		check="WRONG: $v (expected ok $tx)"
		BAD=1
	fi
	if grep -q . "$W"/err.* 2>/dev/null && grep -qv 'stats:' "$W"/err.*; then
		check="$check; stderr: $(grep -hv 'stats:' "$W"/err.* | head -1)"
	fi
	s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	if [ "$mode" = shim ]; then
		printf '%-22s %5s %5s %7s %8s %9s %9s %9s  %s\n' "$label" "$n" "$tx" "$s" \
			"$(awk -v t="$tx" -v s="$s" 'BEGIN { printf "%.1f", t / s }')" \
			"$(awk -v c="$calls" -v t="$tx" 'BEGIN { printf "%.1f", c / t }')" \
			"$(awk -v c="$ops" -v t="$tx" 'BEGIN { printf "%.1f", c / t }')" \
			"$(awk -v c="$waits" -v t="$tx" 'BEGIN { printf "%.2f", c / t }')" "$check"
	else
		printf '%-22s %5s %5s %7s %8s %9s %9s %9s  %s\n' "$label" "$n" "$tx" "$s" \
			"$(awk -v t="$tx" -v s="$s" 'BEGIN { printf "%.1f", t / s }')" - - - "$check"
	fi
}

# lockdir_calls TRACE DIR: the system calls of an strace -f log that touch
# the lock directory DIR: by path, or on a descriptor opened in it (read,
# write, fstat, getdents, close, openat relative to it, ...).
lockdir_calls() {
	awk -v dir="$2" '
	/ resumed>/ { next }
	{
		pid = $1
		if (!match($0, /^[0-9]+ +[a-z0-9_]+\(/))
			next
		call = substr($0, RSTART, RLENGTH - 1)
		sub(/^[0-9]+ +/, "", call)
		rest = substr($0, RSTART + RLENGTH)
		fd = rest
		sub(/[,)].*/, "", fd)
		ret = $0
		if (ret ~ /= -?[0-9]+/) {
			sub(/.*= /, "", ret)
			sub(/ .*/, "", ret)
		} else
			ret = ""
		ours = index($0, dir) > 0 || ((pid, fd) in open)
		if (!ours)
			next
		n++
		if (call == "close")
			delete open[pid, fd]
		else if (call ~ /^(open|openat|creat)$/ && ret ~ /^[0-9]+$/)
			open[pid, ret] = 1
	}
	END { print n + 0 }' "$1"
}

# trace_count N: the lock-directory system calls of one shimmed sqlite3
# running N transactions, per transaction, counted by strace (not by the
# shim's own counters), or why it could not be measured.
trace_count() {
	local n=$1 db=$W/local/st.sqlite c
	command -v strace >/dev/null 2>&1 || {
		echo "not measured: strace is not installed"
		return
	}
	create "$db"
	head -n $((n + 1)) "$W/tx.sql" >"$W/st.sql"
	if ! strace -f -qq -o "$W/st.log" -e trace=%file,%desc \
		"$FLP" --config "$W/preload.conf" "$SQLITE" -bail "$db" <"$W/st.sql" >/dev/null 2>"$W/st.err"; then
		echo "not measured: $(head -1 "$W/st.err")"
		return
	fi
	c=$(lockdir_calls "$W/st.log" "$db.lock.ranges")
	awk -v c="$c" -v n="$n" 'BEGIN { printf "%.1f (%d calls, %d transactions)\n", c / n, c, n }'
}

RULE="soft-rw stale_threshold=2 heartbeat_interval=0.5 poll_interval=0.02"
echo "sqlite3 $("$SQLITE" -version | cut -d' ' -f1), journal_mode=DELETE, $K transactions per" \
	"process; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rule: <db> $RULE"
printf '%-22s %5s %5s %7s %8s %9s %9s %9s  %s\n' setup procs tx seconds tx/s \
	calls/tx ops/tx waits/tx check
echo "$W/local/*.sqlite $RULE" >"$W/preload.conf"
echo "lock-directory system calls per transaction, 1 process (strace): $(trace_count 20)"
run "native, 1 host" "$W/local/n1.sqlite" "$W/local/n1.sqlite" 1 1 native
run "shim, 1 host" "$W/local/s1.sqlite" "$W/local/s1.sqlite" 1 1 shim
run "native, 1 host" "$W/local/n.sqlite" "$W/local/n.sqlite" 1 $((3 * P)) native
run "shim, 1 host" "$W/local/s.sqlite" "$W/local/s.sqlite" 1 $((3 * P)) shim

why=$(cluster_missing)
if [ -z "$why" ]; then
	# As tests/cluster/sqlite.sh: no dentry cache (SQLite's hot-journal check
	# must not see a journal another host deleted).
	CLUSTER_DIR=$W/cluster
	mkdir "$CLUSTER_DIR"
	if cluster_up 3 -o attr_timeout=0.1,entry_timeout=0,negative_timeout=0 </dev/null >/dev/null; then
		echo "$CLUSTER_MNT/*.sqlite $RULE" >"$W/preload.conf"
		run "shim, 3 hosts" "$CLUSTER_MNT/c1.sqlite" "$CLUSTER_SHARED/c1.sqlite" 3 1 shim
		run "shim, 3 hosts" "$CLUSTER_MNT/c.sqlite" "$CLUSTER_SHARED/c.sqlite" 3 "$P" shim
	else
		echo "shim, 3 hosts: the cluster did not start"
		BAD=1
	fi
else
	echo "shim, 3 hosts: not measured: $why"
fi
exit $BAD
