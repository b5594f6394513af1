#!/bin/bash
# TLS with client certificates: a cluster that serves clients over https
# only and requires a certificate signed by its CA.  With the CA, certificate
# and key (here from the environment) locks work, including the watch; with
# no client certificate the handshake is refused and the error says so.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
ETCD_NO_AUTOSTART=1
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"
command -v openssl >/dev/null || fl_skip "openssl is not installed"

pki=$TMP/pki
mkdir "$pki" || exit 99
gen() { # name subject extensions [signed-by-ca]
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
case $FILELOCK_ETCD_ENDPOINTS in https://*) ;; *) echo "not https: $FILELOCK_ETCD_ENDPOINTS"; exit 99 ;; esac

export FILELOCK_ETCD_CACERT=$pki/ca.crt FILELOCK_ETCD_CERT=$pki/cli.crt FILELOCK_ETCD_KEY=$pki/cli.key
holder_start A "$TMP/tls.lock"
check "A acquires over TLS" holder_expect A '^ready' 15
holder_start B -w 15 "$TMP/tls.lock"
holder_send A release
check "A releases" holder_expect A '^released 0$' 10
check "B, waiting on a TLS watch, takes over" holder_expect B '^ready' 15
holder_send B release
check "B releases" holder_expect B '^released 0$' 10
holder_wait A
holder_wait B

FILELOCK_ETCD_CERT= FILELOCK_ETCD_KEY= holder_start C -w 3 -o stale_threshold=2 "$TMP/tls.lock"
check "no client certificate: refused with a TLS error" \
	holder_expect C '^error [0-9]+ etcd /v3/lease/grant failed .*(SSL|TLS|certificate|alert)' 10
echo "# $LINE"
holder_wait C

echo "$FAILS failed"
[ "$FAILS" = 0 ]
