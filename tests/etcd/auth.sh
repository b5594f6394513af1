#!/bin/bash
# etcd authentication: with auth enabled on the cluster, the right user and
# password (from the environment, then from a file) lock, queue and
# release; a wrong password and a missing user fail with a clear error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"

ctl() { etcdctl --endpoints="$FILELOCK_ETCD_ENDPOINTS" "$@"; }
ctl user add root:s3cret >/dev/null || exit 99
ctl user grant-role root root >/dev/null || exit 99
ctl auth enable >/dev/null || exit 99

export FILELOCK_ETCD_USER=root FILELOCK_ETCD_PASSWORD=s3cret
holder_start A "$TMP/auth.lock"
check "A acquires as root" holder_expect A '^ready' 15
holder_start B -w 15 "$TMP/auth.lock"
holder_send A release
check "A releases" holder_expect A '^released 0$' 10
check "B, waiting on a watch with a token, takes over" holder_expect B '^ready' 15
holder_send B release
check "B releases" holder_expect B '^released 0$' 10
holder_wait A
holder_wait B

printf 's3cret\n' > "$TMP/pw" && chmod 600 "$TMP/pw"
FILELOCK_ETCD_PASSWORD= FILELOCK_ETCD_PASSWORD_FILE=$TMP/pw holder_start E "$TMP/auth.lock"
check "the password from a file (FILELOCK_ETCD_PASSWORD_FILE)" holder_expect E '^ready' 15
holder_send E release
check "E releases" holder_expect E '^released 0$' 10
holder_wait E

FILELOCK_ETCD_PASSWORD=wrong holder_start C -w 3 "$TMP/auth.lock"
check "a wrong password is refused clearly" holder_expect C '^error 13 .*authenticat' 10
echo "# $LINE"
holder_wait C
FILELOCK_ETCD_USER= FILELOCK_ETCD_PASSWORD= holder_start D -w 3 "$TMP/auth.lock"
check "no credentials: a clear error" holder_expect D '^error 13 etcd /v3/.* failed .*user name is empty' 10
echo "# $LINE"
holder_wait D

echo "$FAILS failed"
[ "$FAILS" = 0 ]
