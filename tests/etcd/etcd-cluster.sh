# tests/etcd/etcd-cluster.sh -- a throw-away 3-member etcd cluster on loopback.
#
# Sourced by the etcd suites:
#   . "$FL_TOP_SRCDIR/tests/etcd/etcd-cluster.sh"
#   etcd_cluster_start || fl_skip "..."   # sets FILELOCK_ETCD_ENDPOINTS, ETCD_PIDS
#   trap etcd_cluster_stop EXIT
#   etcd_member_stop 2                    # kill one member (1..3) by pid
#   etcd_member_start 2                   # start it again with its data dir
# or run standalone around a command:
#   sh tests/etcd/etcd-cluster.sh run -- CMD ARGS...
#
# Ports are picked free on 127.0.0.1 (checked with ss before use), data dirs
# come from mktemp -d, readiness is `etcdctl endpoint health` on every member
# (never a sleep), and everything is stopped by pid.  Optional variables:
#   ETCD_NETNS     run the members inside this network namespace (ip netns)
#   ETCD_EXTRA_IP  also serve clients on this address (same port per member)
#   ETCD_MEMBERS   number of members (default 3)
#   ETCD_TLS_DIR   serve clients over TLS with ca.crt, srv.crt, srv.key from
#                  this directory and require client certificates (cli.crt,
#                  cli.key are used for the health check)

ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}

etcd__ns() {
	if [ -n "${ETCD_NETNS:-}" ]; then
		ip netns exec "$ETCD_NETNS" "$@"
	else
		"$@"
	fi
}

# Prints a base port p such that p .. p+2*N-1 are all free on loopback.
etcd__free_ports() {
	n=$1
	tries=0
	while [ $tries -lt 50 ]; do
		tries=$((tries + 1))
		base=$(( ( $(od -An -N2 -tu2 /dev/urandom) % 20000 ) + 30000 ))
		used=$(etcd__ns ss -Hltn 2>/dev/null | awk '{ print $4 }' | sed 's/.*://')
		ok=1
		p=$base
		while [ $p -lt $((base + 2 * n)) ]; do
			if printf '%s\n' $used | grep -qx "$p"; then
				ok=0
				break
			fi
			p=$((p + 1))
		done
		if [ $ok = 1 ]; then
			echo "$base"
			return 0
		fi
	done
	return 1
}

# etcd_member_start I: (re)starts member I of the configured cluster.
etcd_member_start() {
	i=$1
	cport=$((ETCD_BASE + 2 * (i - 1)))
	pport=$((cport + 1))
	sch=http
	[ -n "${ETCD_TLS_DIR:-}" ] && sch=https
	curls="$sch://127.0.0.1:$cport"
	[ -n "${ETCD_EXTRA_IP:-}" ] && curls="$curls,$sch://$ETCD_EXTRA_IP:$cport"
	state=new
	[ -d "$ETCD_DIR/m$i/member" ] && state=existing
	# Started directly (ip netns exec execs), so $! is etcd's own pid.
	if [ -n "${ETCD_NETNS:-}" ]; then
		set -- ip netns exec "$ETCD_NETNS" "$ETCD_BIN"
	else
		set -- "$ETCD_BIN"
	fi
	if [ -n "${ETCD_TLS_DIR:-}" ]; then
		set -- "$@" --cert-file "$ETCD_TLS_DIR/srv.crt" --key-file "$ETCD_TLS_DIR/srv.key" \
			--trusted-ca-file "$ETCD_TLS_DIR/ca.crt" --client-cert-auth
	fi
	"$@" --name "m$i" --data-dir "$ETCD_DIR/m$i" \
		--listen-client-urls "$curls" --advertise-client-urls "$sch://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$ETCD_INITIAL" --initial-cluster-state "$state" \
		--initial-cluster-token "fl-$ETCD_BASE" \
		--heartbeat-interval 50 --election-timeout 500 \
		--log-level error --logger zap >"$ETCD_DIR/m$i.log" 2>&1 &
	eval "ETCD_PID_$i=$!"
}

# etcd_member_stop I: SIGKILLs member I and reaps it.
etcd_member_stop() {
	eval "pid=\${ETCD_PID_$1:-}"
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		eval "ETCD_PID_$1="
	fi
}

# etcd_wait_healthy [SECONDS] [ENDPOINTS]: until every endpoint reports healthy.
etcd_wait_healthy() {
	limit=${1:-20}
	eps=${2:-$FILELOCK_ETCD_ENDPOINTS}
	tls=
	[ -n "${ETCD_TLS_DIR:-}" ] && tls="--cacert=$ETCD_TLS_DIR/ca.crt --cert=$ETCD_TLS_DIR/cli.crt --key=$ETCD_TLS_DIR/cli.key"
	etcd__ns timeout "$limit" sh -c '
		while ! "$0" --endpoints="$1" $2 --dial-timeout=1s --command-timeout=1s \
			endpoint health >/dev/null 2>&1; do
			# etcdctl itself waits up to its timeouts; this bounds a fast failure.
			sleep 0.1
		done' "$ETCDCTL_BIN" "$eps" "$tls"
}

etcd_cluster_start() {
	n=${ETCD_MEMBERS:-3}
	command -v "$ETCD_BIN" >/dev/null || { echo "etcd not installed" >&2; return 1; }
	command -v "$ETCDCTL_BIN" >/dev/null || { echo "etcdctl not installed" >&2; return 1; }
	ETCD_DIR=$(mktemp -d) || return 1
	attempt=0
	while [ $attempt -lt 3 ]; do
		attempt=$((attempt + 1))
		ETCD_BASE=$(etcd__free_ports "$n") || return 1
		ETCD_INITIAL=
		FILELOCK_ETCD_ENDPOINTS=
		i=1
		while [ $i -le "$n" ]; do
			c=$((ETCD_BASE + 2 * (i - 1)))
			ETCD_INITIAL="${ETCD_INITIAL:+$ETCD_INITIAL,}m$i=http://127.0.0.1:$((c + 1))"
			sch=http
			[ -n "${ETCD_TLS_DIR:-}" ] && sch=https
			FILELOCK_ETCD_ENDPOINTS="${FILELOCK_ETCD_ENDPOINTS:+$FILELOCK_ETCD_ENDPOINTS,}$sch://127.0.0.1:$c"
			i=$((i + 1))
		done
		i=1
		while [ $i -le "$n" ]; do
			etcd_member_start $i
			i=$((i + 1))
		done
		if etcd_wait_healthy 20; then
			export FILELOCK_ETCD_ENDPOINTS
			ETCD_MEMBERS=$n
			return 0
		fi
		# A port was taken between the check and the bind: try other ports.
		echo "etcd cluster did not become healthy; logs:" >&2
		tail -n 5 "$ETCD_DIR"/m*.log >&2
		etcd_cluster_stop_members
		rm -rf "${ETCD_DIR:?}"/m*
	done
	return 1
}

etcd_cluster_stop_members() {
	i=1
	while [ $i -le "${ETCD_MEMBERS:-3}" ]; do
		etcd_member_stop $i
		i=$((i + 1))
	done
}

etcd_cluster_stop() {
	etcd_cluster_stop_members
	[ -n "${ETCD_DIR:-}" ] && rm -rf "$ETCD_DIR"
	ETCD_DIR=
}

if [ "${1:-}" = run ]; then
	shift
	[ "${1:-}" = -- ] && shift
	etcd_cluster_start || exit 99
	trap etcd_cluster_stop EXIT
	trap 'exit 130' INT TERM
	"$@"
	exit $?
fi
