#!/bin/bash
# The etcd kind against a real 3-member cluster on loopback: exact counter
# from several processes, crash recovery after the TTL, one member down,
# a majority down.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"

# 1. N x M counter: four processes that share nothing but etcd.
echo 0 >"$TMP/counter"
pids=
for i in 1 2 3 4; do
	timeout 60 "$FL_COUNTER" -t etcd -n 25 -W 200 -o stale_threshold=3 -o timeout=30 \
		"$TMP/count.lock" "$TMP/counter" &
	pids="$pids $!"
done
rc=0
for p in $pids; do wait "$p" || rc=$?; done
check "4 x 25 increments under the etcd lock (rc $rc)" [ "$rc" = 0 ] && [ "$(cat "$TMP/counter")" = 100 ]
check "counter is exactly 100 (got $(cat "$TMP/counter"))" [ "$(cat "$TMP/counter")" = 100 ]

# 2. A holder is SIGKILLed: the next one gets the lock once the lease (TTL 2)
#    expires, not before and not much after.
holder_start A -o stale_threshold=2 "$TMP/crash.lock"
check "A acquires" holder_expect A '^ready [0-9]+$' 10
apid=${LINE#ready }
holder_start B -w 1 "$TMP/crash.lock"
check "B times out while A lives" holder_expect B '^error 110 .*timed out' 10
holder_wait B
kill -KILL "$apid"
t0=$(now_ms)
holder_start C -w 15 "$TMP/crash.lock"
check "C acquires after A's crash" holder_expect C '^ready' 15
dt=$(( $(now_ms) - t0 ))
echo "# takeover after SIGKILL: ${dt} ms (TTL 2 s)"
check "takeover waited for the lease (>= 1000 ms: ${dt})" [ "$dt" -ge 1000 ]
check "takeover within TTL + 2 s (${dt} ms)" [ "$dt" -le 4000 ]
holder_send C release
check "C releases" holder_expect C '^released 0$' 10
holder_wait C

# 3. One member down (the first endpoint every client tries): holders stay
#    valid and locks keep working.
holder_start D -o stale_threshold=3 "$TMP/hold.lock"
check "D acquires" holder_expect D '^ready' 10
etcd_member_stop 1
echo 0 >"$TMP/counter2"
pids=
for i in 1 2 3; do
	timeout 60 "$FL_COUNTER" -t etcd -n 15 -o stale_threshold=4 -o timeout=30 \
		"$TMP/count2.lock" "$TMP/counter2" &
	pids="$pids $!"
done
rc=0
for p in $pids; do wait "$p" || rc=$?; done
check "3 x 15 increments with member 1 down (rc $rc, counter $(cat "$TMP/counter2"))" \
	[ "$rc" = 0 ] && [ "$(cat "$TMP/counter2")" = 45 ]
# Outlive D's TTL (3 s) with member 1 down: its keep-alives must fail over.
holder_start E -w 4 "$TMP/hold.lock"
check "E times out: D still holds after its TTL" holder_expect E '^error 110 ' 10
holder_wait E
holder_send D valid
check "D is still valid" holder_expect D '^valid 1$' 10

# 4. A majority down: the holder learns its lease is at risk before it could
#    expire; a new acquire fails with an error naming the endpoints.
etcd_member_stop 2
t0=$(now_ms)
check "D is told its lease is at risk" holder_expect D '^compromised 3$' 10
dt=$(( $(now_ms) - t0 ))
echo "# compromise notice after losing quorum: ${dt} ms (TTL 3 s)"
check "notice before the TTL ran out (${dt} ms < 3000)" [ "$dt" -lt 3000 ]
holder_send D valid
check "D reports invalid" holder_expect D '^valid 0$' 10
t0=$(now_ms)
holder_start F -w 3 -o stale_threshold=3 "$TMP/other.lock"
check "F fails with a clear error" holder_expect F '^error [0-9]+ etcd /v3/lease/grant failed .*127\.0\.0\.1' 10
echo "# F: $LINE"
dt=$(( $(now_ms) - t0 ))
check "F fails within its 3 s timeout (${dt} ms)" [ "$dt" -le 3500 ]
holder_wait F

echo "$FAILS failed"
[ "$FAILS" = 0 ]
