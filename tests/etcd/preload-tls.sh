#!/bin/bash
# SPDX-License-Identifier: MIT
# The shim's kind etcd against a cluster that serves clients over https only
# and requires client certificates (FILELOCK_ETCD_CACERT/_CERT/_KEY): a lock
# held by flock(1) is refused to others, and locks that programs never
# unlock are released at exit, when the exit handlers of the TLS library
# the shim loaded have already run.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
case ${FL_SANITIZERS-} in
*address*|*thread*) echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"; exit 77 ;;
esac
ETCD_NO_AUTOSTART=1
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"
command -v openssl >/dev/null || fl_skip "openssl is not installed"
command -v flock >/dev/null || fl_skip "flock(1) (util-linux) is not installed"
W=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
PY=/usr/bin/python3

pki=$TMP/pki
mkdir "$pki" || exit 99
gen() { # name subject extensions
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2" 2>/dev/null || return 1
	printf '%b' "$3" >"$pki/$1.ext"
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -days 2 -out "$pki/$1.crt" -extfile "$pki/$1.ext" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-keyout "$pki/ca.key" -out "$pki/ca.crt" -subj /CN=filelock-test-ca 2>/dev/null || exit 99
gen srv /CN=127.0.0.1 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' || exit 99
gen cli /CN=filelock-test-client 'extendedKeyUsage=clientAuth\n' || exit 99
ETCD_TLS_DIR=$pki
etcd_start_or_skip
export FILELOCK_ETCD_CACERT=$pki/ca.crt FILELOCK_ETCD_CERT=$pki/cli.crt FILELOCK_ETCD_KEY=$pki/cli.key
# A TTL far longer than the test: only a real release frees the lock.
echo "$TMP/*.db etcd ttl=60" >"$TMP/policy"
export FILELOCK_PRELOAD_CONFIG=$TMP/policy
: >"$TMP/c.db"

out=$(timeout 60 "$W" flock "$TMP/c.db" sh -c 'flock -n "$1" true; echo "inner $?"' sh "$TMP/c.db")
check "flock(1) over TLS holds the lock: another flock -n exits 1" [ "$out" = "inner 1" ]
timeout 60 "$W" flock -n "$TMP/c.db" true
check "released when flock(1) exited" [ $? = 0 ]
if [ -x "$PY" ]; then
	timeout 60 "$W" "$PY" -c 'import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)' "$TMP/c.db"
	check "python took the lock and exited without unlocking (exit $?)" [ $? = 0 ]
	timeout 60 "$W" flock -n "$TMP/c.db" true
	check "the shim released it at exit, over TLS" [ $? = 0 ]
fi
echo "$FAILS failed"
[ "$FAILS" = 0 ]
