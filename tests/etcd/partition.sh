#!/bin/bash
# Partition: a holder runs on its own "host" (a network namespace) and
# reaches the cluster over a veth pair; the cluster and a contender run in
# a second namespace.  Both namespaces and every address are ours alone.
# When the holder's link goes down its lease expires, the contender takes
# over, and the isolated holder is told (on_compromise, fl_is_valid false)
# before the contender gets the lock.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
ETCD_NO_AUTOSTART=1
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"

srv=flsrv$$
hst=flhst$$
ip netns add "$srv" 2>/dev/null || fl_skip "cannot create network namespaces (needs root/CAP_SYS_ADMIN)"
NETNS_LIST="$srv"
ip netns add "$hst" || exit 99
NETNS_LIST="$srv $hst"
ip -n "$srv" link set lo up || exit 99
ip -n "$hst" link set lo up || exit 99
ip link add "flv$$a" netns "$srv" type veth peer name "flv$$b" netns "$hst" || exit 99
ip -n "$srv" addr add 10.213.77.1/30 dev "flv$$a" || exit 99
ip -n "$hst" addr add 10.213.77.2/30 dev "flv$$b" || exit 99
ip -n "$srv" link set "flv$$a" up || exit 99
ip -n "$hst" link set "flv$$b" up || exit 99

ETCD_NETNS=$srv ETCD_EXTRA_IP=10.213.77.1
etcd_start_or_skip
far=$(echo "$FILELOCK_ETCD_ENDPOINTS" | sed 's/127\.0\.0\.1/10.213.77.1/g')

# The holder, on its own host, TTL 3 s.
HOLDER_PREFIX="ip netns exec $hst env FILELOCK_ETCD_ENDPOINTS=$far"
holder_start H -o stale_threshold=3 "$TMP/part.lock"
check "isolated-to-be holder acquires over the veth" holder_expect H '^ready' 15
holder_send H valid
check "holder is valid" holder_expect H '^valid 1$' 10

# The contender, next to the cluster, queued behind the holder.
HOLDER_PREFIX="ip netns exec $srv"
holder_start C -w 20 "$TMP/part.lock"
holder_start T -w 0 "$TMP/part.lock"
check "a one-try contender sees it held" holder_expect T '^error 110 ' 10
holder_wait T

ip -n "$hst" link set "flv$$b" down
t0=$(now_ms)
check "the holder is told its lease is at risk" holder_expect H '^compromised 3$' 10
t1=$(now_ms)
check "... before the contender got the lock" holder_quiet C
holder_send H valid
check "holder reports invalid" holder_expect H '^valid 0$' 10
check "the contender takes over once the lease expired" holder_expect C '^ready' 15
t2=$(now_ms)
echo "# link down -> holder told: $((t1 - t0)) ms; -> contender holds: $((t2 - t0)) ms (TTL 3 s)"
check "holder was told first (told $((t1 - t0)) ms < taken $((t2 - t0)) ms)" [ "$t1" -lt "$t2" ]
holder_send C release
check "contender releases" holder_expect C '^released 0$' 10
holder_wait C

echo "$FAILS failed"
[ "$FAILS" = 0 ]
