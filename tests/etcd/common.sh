# tests/etcd/common.sh -- shared by the etcd suites (sourced, bash).
# Starts the loopback cluster, and drives fl-holder processes through FIFOs:
#   holder_start NAME [fl-holder args...]   starts it, its output on fd H_NAME
#   holder_expect NAME REGEX SECONDS        next line must match (sets LINE)
#   holder_send NAME LINE                   writes a command to it
#   holder_wait NAME                        closes its stdin, reaps it
#   holder_quiet NAME                       true when it has printed nothing new
. "$FL_TOP_SRCDIR/tests/lib.sh"
. "$FL_TOP_SRCDIR/tests/etcd/etcd-cluster.sh"

[ "${FL_HAVE_ETCD:-no}" = yes ] ||
	fl_skip "the etcd kind is not built (configure found no libcurl/json-c)"
command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
	fl_skip "etcd-server/etcd-client are not installed"

TMP=$(mktemp -d) || exit 99
HOLDERS=
NETNS_LIST=
etcd_test_cleanup() {
	for n in $HOLDERS; do
		eval "pid=\${HPID_$n:-}"
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	etcd_cluster_stop
	for ns in $NETNS_LIST; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap etcd_test_cleanup EXIT
trap 'exit 99' INT TERM

# Suites that set ETCD_NO_AUTOSTART call etcd_start_or_skip themselves.
etcd_start_or_skip() {
	etcd_cluster_start || fl_skip "could not start a 3-member etcd cluster"
}
[ -n "${ETCD_NO_AUTOSTART:-}" ] || etcd_start_or_skip
# Each suite uses its own key prefix so that runs never see each other's keys.
export FILELOCK_ETCD_PREFIX="/fltest-$$"

holder_start() {
	name=$1
	shift
	mkfifo "$TMP/$name.in" "$TMP/$name.out" || exit 99
	# HOLDER_PREFIX (e.g. "ip netns exec NS env VAR=...") must exec, so that
	# $! is the holder's own pid.
	$HOLDER_PREFIX "$FL_HOLDER" -t etcd "$@" <"$TMP/$name.in" >"$TMP/$name.out" &
	eval "HPID_$name=$!"
	eval "exec {HIN_$name}>\"\$TMP/\$name.in\""
	eval "exec {HOUT_$name}<\"\$TMP/\$name.out\""
	HOLDERS="$HOLDERS $name"
}

holder_expect() {
	name=$1 re=$2 secs=$3
	eval "fd=\$HOUT_$name"
	LINE=
	if ! IFS= read -r -t "$secs" LINE <&"$fd"; then
		echo "FAIL: $name: no line within ${secs}s (wanted /$re/)"
		return 1
	fi
	if ! [[ $LINE =~ $re ]]; then
		echo "FAIL: $name: got '$LINE', wanted /$re/"
		return 1
	fi
	return 0
}

holder_send() {
	eval "fd=\$HIN_$1"
	printf '%s\n' "$2" >&"$fd"
}

holder_wait() {
	eval "fd=\$HIN_$1; pid=\$HPID_$1"
	exec {fd}>&-
	wait "$pid"
	rc=$?
	eval "HPID_$1="
	return $rc
}

holder_quiet() {
	eval "fd=\$HOUT_$1"
	! read -r -t 0 <&"$fd"
}

now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

FAILS=0
check() { # description, then a command that must succeed
	d=$1
	shift
	if "$@"; then
		echo "ok - $d"
	else
		echo "not ok - $d"
		FAILS=$((FAILS + 1))
	fi
}
