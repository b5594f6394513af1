# SPDX-License-Identifier: MIT
# lib.sh -- shared code of the cluster suites (sourced, bash).
#
# Finds the build and the helpers, sources cluster.sh, arms a watchdog and an
# EXIT trap that tears the cluster down whatever happens, and offers: pipe-
# controlled lock holders on a host (holder_*), timestamps from the kernel's
# monotonic clock (which every simulated host shares and libfaketime leaves
# alone), and the overlap checker for the holders' enter/exit logs.

if [ -z "${BASH_VERSION:-}" ]; then
	echo "lib.sh needs bash" >&2
	exit 99
fi

CL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${FL_TOP_SRCDIR:=$(cd "$CL_HERE/../.." && pwd)}"
: "${FL_TOP_BUILDDIR:=$FL_TOP_SRCDIR/_build}"
: "${FL_HOLDER:=$FL_TOP_BUILDDIR/tests/helpers/fl-holder}"
: "${FL_COUNTER:=$FL_TOP_BUILDDIR/tests/helpers/fl-counter}"
: "${FL_CL_TOOL:=$FL_TOP_BUILDDIR/tests/cluster/cl-tool}"
: "${CLUSTER_NODEINIT:=$FL_TOP_BUILDDIR/tests/cluster/nodeinit}"
: "${FL_PYTHON3:=/usr/bin/python3}"
export FL_TOP_SRCDIR FL_TOP_BUILDDIR FL_HOLDER FL_COUNTER FL_CL_TOOL CLUSTER_NODEINIT
export PYTHONDONTWRITEBYTECODE=1

# shellcheck source=cluster.sh
. "$CL_HERE/cluster.sh"

CL_FAILS=0
CL_NAME=${CL_NAME:-$(basename "$0" .sh)}
if [ "${CLUSTER_FS:-bindfs}" = nfs ]; then CL_NAME=nfs-$CL_NAME; fi

cl_log() { echo "[$CL_NAME] $*"; }
cl_fail() {
	echo "[$CL_NAME] FAIL: $*"
	CL_FAILS=$((CL_FAILS + 1))
}
cl_ok() { echo "[$CL_NAME] ok: $*"; }

declare -A H_IN H_OUT H_PID
CL_WATCHDOG=

cl_teardown() {
	local n
	trap - EXIT INT TERM HUP
	if [ -n "$CL_WATCHDOG" ]; then
		kill "$CL_WATCHDOG" 2>/dev/null
		wait "$CL_WATCHDOG" 2>/dev/null
	fi
	for n in "${!H_PID[@]}"; do
		holder_close "$n"
	done
	cluster_down || echo "[$CL_NAME] WARNING: teardown was not clean" >&2
	if [ -n "${CL_TMP:-}" ]; then
		rm -rf "$CL_TMP"
	fi
}

# What every process of the cluster waits in, for the log of a suite that
# hung (the watchdog fired): which host, its cgroup, command and wchan.
cl_dump_procs() {
	local f pid
	[ -n "${CLUSTER_CG:-}" ] && [ -d "$CLUSTER_CG" ] || return 0
	echo "[$CL_NAME] processes of the cluster when it was interrupted:"
	while read -r f; do
		while read -r pid; do
			echo "    ${f#"$CLUSTER_CG"/} $pid wchan=$(cat "/proc/$pid/wchan" 2>/dev/null)" \
				"$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)"
		done <"$f"
	done < <(find "$CLUSTER_CG" -name cgroup.procs)
}

# cl_start N [BINDFS_OPTS]: skip unless possible, then bring up N hosts.
cl_start() {
	local missing p
	for p in "$FL_HOLDER" "$FL_COUNTER" "$FL_CL_TOOL" "$CLUSTER_NODEINIT"; do
		if [ ! -x "$p" ]; then
			echo "[$CL_NAME] ERROR: $p is not built" >&2
			exit 99
		fi
	done
	cluster_require "${CL_NEED:-}"
	CL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/fl-cltest.XXXXXX")
	trap 'cl_teardown' EXIT
	trap 'echo "[$CL_NAME] interrupted"; cl_dump_procs; exit 99' INT TERM HUP
	# A deadlock must fail the test, not hang the suite.
	# It waits with the read builtin on a FIFO nobody writes, so killing the
	# subshell leaves no sleep(1) behind holding the test's output open.
	mkfifo "$CL_TMP/watchdog"
	(
		exec 3<>"$CL_TMP/watchdog"
		read -r -t "${CL_WATCHDOG_SECONDS:-150}" -u 3 _
		echo "[$CL_NAME] FAIL: watchdog fired (deadlock?)" >&2
		# The whole process group where the suite leads one (it does
		# under tests/watchdog.sh): a shell runs its TERM trap only
		# once the foreground command it waits for ends, and a
		# deadlocked one never does.
		kill -TERM -- "-$$" 2>/dev/null || kill -TERM $$
	) >/dev/null &
	CL_WATCHDOG=$!
	unset CLUSTER_DIR
	if ! cluster_up "$1" ${2:+-o "$2"}; then
		echo "[$CL_NAME] ERROR: cluster_up failed" >&2
		exit 99
	fi
	M=$CLUSTER_MNT
	S=$CLUSTER_SHARED
}

cl_finish() {
	if [ "$CL_FAILS" -ne 0 ]; then
		echo "[$CL_NAME] $CL_FAILS check(s) failed"
		exit 1
	fi
	echo "[$CL_NAME] all checks passed"
	exit 0
}

# Kernel CLOCK_MONOTONIC in ns, the same on every host.
cl_mono() { "$FL_CL_TOOL" mono; }
# Milliseconds between two ns stamps.
cl_ms() { echo $((($2 - $1) / 1000000)); }

# holder_start NAME I CMD...: runs CMD (fl-holder or a Python holder) on host
# I with its stdin and stdout on pipes; the caller talks to it with
# holder_send / holder_expect.
holder_start() {
	local name=$1 i=$2 d
	shift 2
	d=$CL_TMP/h.$name
	rm -f "$d.in" "$d.out"
	mkfifo "$d.in" "$d.out"
	# The other holders' pipe ends are not this one's: an inherited write
	# end would keep their stdin from ever reaching EOF.
	(
		for fd in "${H_IN[@]}" "${H_OUT[@]}"; do
			exec {fd}>&-
		done
		cluster_exec "$i" "$@"
	) <"$d.in" >"$d.out" 2>"$d.err" &
	H_PID[$name]=$!
	exec {H_IN[$name]}>"$d.in"
	exec {H_OUT[$name]}<"$d.out"
}

holder_send() { echo "$2" >&"${H_IN[$1]}" 2>/dev/null; }

# holder_expect NAME REGEX SECONDS: reads lines until one matches REGEX;
# fails on EOF or timeout.  The line is left in H_LINE.
holder_expect() {
	local name=$1 re=$2 t=$3
	while :; do
		if ! read -r -t "$t" -u "${H_OUT[$name]}" H_LINE; then
			H_LINE="<eof or timeout after ${t}s>"
			return 1
		fi
		if [[ $H_LINE =~ $re ]]; then
			return 0
		fi
	done
}

# holder_close NAME: EOF on its stdin (fl-holder releases and exits), reap it.
holder_close() {
	local name=$1 fd
	[ -n "${H_PID[$name]:-}" ] || return 0
	fd=${H_IN[$name]}
	exec {fd}>&-
	fd=${H_OUT[$name]}
	exec {fd}<&-
	timeout 10 tail --pid="${H_PID[$name]}" -f /dev/null 2>/dev/null
	wait "${H_PID[$name]}" 2>/dev/null
	H_RC=$?
	unset "H_PID[$name]" "H_IN[$name]" "H_OUT[$name]"
	return 0
}

# cl_check_logs PREFIX: merges the enter/exit logs PREFIX.* and proves that no
# two holders overlapped.  Prints "intervals N overlaps K first_enter NS".
# An enter without an exit is left out: that holder crashed, or found its
# lock lost and skipped its write (fl-counter exit 3); lines other than
# enter/exit (the Python peer's "begin") are ignored.
cl_check_logs() {
	local prefix=$1
	for f in "$prefix".*; do
		[ -e "$f" ] || continue
		awk -v f="$f" '
			$1 == "enter" { if (open) print s, s, f, "unmatched"; s = $2; open = 1 }
			$1 == "exit"  { if (open) print s, $2, f, "ok"; open = 0 }
			END { if (open) print s, s, f, "unmatched" }
		' "$f"
	done | sort -n -k1,1 | awk '
		BEGIN { maxend = -1; n = 0; bad = 0; first = "" }
		$4 == "ok" {
			n++
			if (first == "") first = $1
			if ($1 + 0 < maxend + 0) {
				bad++
				print "overlap: " $3 " entered at " $1 " before " who " left at " maxend > "/dev/stderr"
			}
			if ($2 + 0 > maxend + 0) { maxend = $2; who = $3 }
		}
		END { print "intervals", n, "overlaps", bad, "first_enter", (first == "" ? 0 : first) }
	'
}

# cl_counter_value: the shared counter file's number (read on the machine).
cl_counter_value() {
	local v=0
	read -r v 2>/dev/null <"$S/$1" || v=0
	echo "${v:-0}"
}
