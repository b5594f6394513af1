#!/bin/bash
# Our exclusive keys use the layout of etcd's concurrency.Mutex: a lock that
# `etcdctl lock` holds on "<prefix><canonical path>" keeps the etcd kind
# out, and the etcd kind gets it once etcdctl lets go (and vice versa).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"

lock="$(cd "$TMP" && pwd -P)/ctl.lock"
name="$FILELOCK_ETCD_PREFIX$lock"
ctl() { etcdctl --endpoints="$FILELOCK_ETCD_ENDPOINTS" "$@"; }

# etcdctl holds while its command waits for a line on the FIFO (etcdctl
# gives its command no stdin, so the command opens the FIFO itself).
mkfifo "$TMP/ctl.in" "$TMP/ctl.out" || exit 99
ctl lock "$name" -- sh -c 'echo held; read x <"$1"' sh "$TMP/ctl.in" >"$TMP/ctl.out" 2>"$TMP/ctl.err" &
cpid=$!
exec {cout}<"$TMP/ctl.out"
read -r -t 15 l <&"$cout"
exec {cin}>"$TMP/ctl.in"
check "etcdctl lock holds ($l)" [ "$l" = held ]
holder_start A -w 0 "$lock"
check "the etcd kind sees etcdctl's lock" holder_expect A '^error 110 ' 10
holder_wait A
holder_start B -w 15 "$lock"
printf 'go\n' >&"$cin"
exec {cin}>&-
wait "$cpid"
check "... and gets it once etcdctl let go" holder_expect B '^ready' 15
holder_send B release
check "B releases" holder_expect B '^released 0$' 10
holder_wait B
out=$(timeout 10 etcdctl --endpoints="$FILELOCK_ETCD_ENDPOINTS" lock "$name" echo got)
check "etcdctl gets it after our release ($out)" [ "$out" = got ]

echo "$FAILS failed"
[ "$FAILS" = 0 ]
