#!/bin/bash
# SPDX-License-Identifier: MIT
# The shim's kind etcd across three simulated hosts (tests/cluster: own PID,
# UTS, mount and network namespaces; kernel flock does not cross them) that
# share no lock state except an etcd cluster.  The three etcd members run in
# a network namespace of their own; each host reaches them over a veth pair
# into a bridge there (its own loopback cannot), so the endpoints come from
# the policy's endpoints= option.  Nothing here touches the machine's own
# network namespace.
#  - without the shim, host 2 gets the flock(1) host 1 holds (the control);
#  - with it, hosts 2 and 3 are refused (flock -n, flock -s -n exit 1);
#  - flock(1) on 3 hosts x W increments of a counter in the shared
#    directory: exact;
#  - host 1 crashes holding the lock: host 2 gets it after the lease TTL.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
CL_NAME=etcd-preload-hosts
case ${FL_SANITIZERS-} in
*address*|*thread*) echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"; exit 77 ;;
esac
. "$FL_TOP_SRCDIR/tests/lib.sh"
[ "${FL_HAVE_ETCD:-no}" = yes ] ||
	fl_skip "the etcd kind is not built (configure found no libcurl/json-c)"
command -v etcd >/dev/null && command -v etcdctl >/dev/null ||
	fl_skip "etcd-server/etcd-client are not installed"
command -v flock >/dev/null || fl_skip "flock(1) (util-linux) is not installed"
command -v ip >/dev/null || fl_skip "ip (iproute2) is not installed"
. "$FL_TOP_SRCDIR/tests/cluster/lib.sh"
. "$FL_TOP_SRCDIR/tests/etcd/etcd-cluster.sh"
FLP_SO=$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so
[ -f "$FLP_SO" ] || { echo "shim not built: $FLP_SO"; exit 99; }

srv=flep$$
if ! ip netns add "$srv" 2>/dev/null; then
	fl_skip "cannot create network namespaces (needs root/CAP_SYS_ADMIN)"
fi
# cl_start's EXIT trap tears the hosts down; the etcd members and the
# server namespace go after them.
etcd_hosts_teardown() {
	cl_teardown
	etcd_cluster_stop
	ip netns del "$srv" 2>/dev/null
}
CL_WATCHDOG_SECONDS=170
cl_start 3
trap etcd_hosts_teardown EXIT
W=15 TTL=2
NET=10.213.91

ip -n "$srv" link set lo up || exit 99
# A fixed address: otherwise the bridge takes its ports' lowest one, and
# when a crashed host's port goes, the others' ARP entries point nowhere.
ip -n "$srv" link add br0 address 02:00:0a:d5:5b:01 type bridge || exit 99
ip -n "$srv" addr add "$NET.1/24" dev br0 || exit 99
ip -n "$srv" link set br0 up || exit 99
for i in 1 2 3; do
	init=$(cat "$CLUSTER_DIR/node$i/init.pid") || exit 99
	ip -n "$srv" link add "h${i}a" type veth peer name "h${i}b" || exit 99
	ip -n "$srv" link set "h${i}b" netns "$init" || exit 99
	ip -n "$srv" link set "h${i}a" master br0 up || exit 99
	cluster_exec "$i" sh -c 'ip addr add "$1" dev "$2" && ip link set "$2" up' \
		sh "$NET.$((10 + i))/24" "h${i}b" || exit 99
done
ETCD_NETNS=$srv ETCD_EXTRA_IP=$NET.1
etcd_cluster_start || fl_skip "could not start a 3-member etcd cluster"
far=$(echo "$FILELOCK_ETCD_ENDPOINTS" | sed "s/127\.0\.0\.1/$NET.1/g")
unset FILELOCK_ETCD_ENDPOINTS FILELOCK_ETCD_PREFIX
cluster_exec 2 etcdctl --endpoints="$far" --dial-timeout=2s endpoint health >/dev/null 2>&1 ||
	cl_fail "host 2 cannot reach etcd at $far"

POL=$CL_TMP/preload.conf
echo "$M/*.db etcd endpoints=$far prefix=/flhosts-$$ ttl=$TTL timeout=60" >"$POL"
export FILELOCK_PRELOAD_CONFIG=$POL
export FILELOCK_PRELOAD_LIBFILELOCK=$FL_TOP_BUILDDIR/lib/.libs/libfilelock.so.0

# 1. No shim: kernel flock does not cross hosts.
unset NODE_PRELOAD
holder_start k 1 flock "$M/a.db" sh -c 'echo ready; read x'
holder_expect k '^ready' 20 || cl_fail "plain holder on host 1: $H_LINE"
if cluster_exec 2 flock -n "$M/a.db" true; then
	cl_ok "without the shim, host 2 got the flock host 1 holds (the overlap)"
else
	cl_fail "kernel flock coordinated across hosts: this harness cannot show the fix"
fi
holder_close k

# 2. The shim on every host: the lock is in etcd, seen from every host.
export NODE_PRELOAD=$FLP_SO
holder_start s 1 flock "$M/a.db" sh -c 'echo ready; read x'
holder_expect s '^ready' 20 || cl_fail "shimmed holder on host 1: $H_LINE"
cluster_exec 2 flock -n "$M/a.db" true; r=$?
[ $r = 1 ] || cl_fail "host 2 flock -n: exit $r, expected 1"
cluster_exec 3 flock -s -n "$M/a.db" true; r=$?
[ $r = 1 ] || cl_fail "host 3 flock -s -n: exit $r, expected 1"
holder_close s
cluster_exec 2 flock -n "$M/a.db" true || cl_fail "host 2 refused after host 1 released"
cl_ok "with the shim, hosts 2 and 3 are refused while host 1 holds; free after"

# 3. Counter: W increments from each host at once.
echo 0 >"$S/count"
inc="for ((j = 0; j < $W; j++)); do flock '$M/c.db' sh -c 'v=\$(cat \"\$1\"); echo \$((v + 1)) > \"\$1\"' sh '$M/count' || exit 1; done"
pids=()
for i in 1 2 3; do
	cluster_spawn "$i" bash -c "$inc"
	pids+=("$CLUSTER_PID")
done
for p in "${pids[@]}"; do wait "$p" || cl_fail "a worker failed"; done
v=$(cl_counter_value count)
if [ "$v" = $((3 * W)) ]; then
	cl_ok "flock(1) on 3 hosts x $W increments through etcd = $v"
else
	cl_fail "the counter is $v, expected $((3 * W))"
fi

# 4. Host 1 crashes holding the lock: host 2 gets it once the lease expired.
holder_start c 1 flock "$M/b.db" sh -c 'echo ready; read x'
holder_expect c '^ready' 20 || cl_fail "holder on host 1: $H_LINE"
cluster_exec 2 flock -n "$M/b.db" true && cl_fail "host 2 got a live lock"
t0=$(cl_mono)
cluster_crash 1
cluster_exec 2 flock -w 20 "$M/b.db" true || cl_fail "host 2 never got the crashed host's lock"
ms=$(cl_ms "$t0" "$(cl_mono)")
[ "$ms" -ge 1000 ] || cl_fail "host 2 got the lock ${ms} ms after the crash: before the lease expired"
[ "$ms" -le $((TTL * 1000 + 3000)) ] || cl_fail "host 2 waited ${ms} ms, more than ttl + 3 s"
cl_ok "host 1 crashed holding the lock; host 2 got it after ${ms} ms (ttl ${TTL} s)"
holder_close c
cl_finish
