#!/bin/sh
# SPDX-License-Identifier: MIT
# The 4.x host identity inside a PID namespace (unshare --pid --fork
# --mount-proc): the host field of every record C writes there (soft, lease,
# strict claim, soft-rw holder record, legacy soft-rw marker) equals Python
# filelock 4's host_name() there, "<escaped name>?pidns-<hex inode>" (also
# with a node name that needs escaping, in a UTS namespace); and a live
# holder in another PID namespace of this host is never broken: neither one
# inside a namespace by a contender outside, nor the reverse, nor a bare-host
# marker that an older release wrote inside a container (its pid means
# nothing here: found alive by its start token and innermost pid).
set -u
. "$FL_TOP_SRCDIR/tests/lib.sh"

PY=${FL_PYTHON3:-/usr/bin/python3}
[ -n "${FL_PEER4_DIR:-}" ] && [ -d "$FL_PEER4_DIR/filelock" ] ||
	fl_skip "Python filelock 4 peer not found (FL_PEER4_DIR=${FL_PEER4_DIR:-unset})"
[ -x "$PY" ] || fl_skip "no python3 at $PY"
[ "$(id -u)" = 0 ] || fl_skip "unshare --pid needs root"
timeout 10 unshare --pid --fork --mount-proc true 2>/dev/null || fl_skip "unshare --pid --fork --mount-proc is not permitted here"
CLI=${FL_CLI:-$FL_TOP_BUILDDIR/cli/filelock}
HOLDER=${FL_HOLDER:-$FL_TOP_BUILDDIR/tests/helpers/fl-holder}
PYTHONPATH=$FL_PEER4_DIR
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH PYTHONDONTWRITEBYTECODE PY CLI T

T=$(mktemp -d) || exit 99
PIDS=
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
HOSTPY='from filelock._identity import host_name; print(host_name())'

# 1. Inside one new PID namespace, each record's host field; in a UTS
# namespace too, with a node name that needs escaping (a space, '?', a
# control byte, UTF-8).
timeout 60 unshare --uts --pid --fork --mount-proc sh -c '
	set -e
	"$PY" -c "import socket; socket.sethostname(b\"odd ho?st\\x01\\xc3\\xa9\")"
	"$PY" -c "$0" >"$T/py-host"
	"$CLI" -t soft "$T/a.lock" sh -c "sed -n 2p $T/a.lock" >"$T/soft"
	"$CLI" -t lease "$T/b.lock" sh -c "sed -n s/^host=//p $T/b.lock" >"$T/lease"
	"$CLI" -t strict "$T/c.lock" sh -c "sed -n 4p $T/c.lock.filelock/claims/held-*" >"$T/strict"
	"$CLI" -t soft-rw "$T/d.lock" sh -c "sed -n s/^host=//p $T/d.lock.rw/holders/*" >"$T/softrw"
	"$CLI" -t soft-rw --soft-rw-protocol=legacy "$T/e.lock" sh -c "sed -n 3p $T/e.lock.write" >"$T/legacy"
' "$HOSTPY" || fail "the commands inside the PID namespace failed"
want=$(cat "$T/py-host")
case $want in
'odd?20ho?3fst?01?c3?a9?pidns-'*) ;;
*) fail "Python's host_name() in a new PID namespace has no ?pidns- suffix: '$want'" ;;
esac
[ "$want" != "$("$PY" -c "$HOSTPY")" ] || fail "the namespace suffix is missing"
for f in soft lease softrw legacy; do
	[ "$(cat "$T/$f")" = "$want" ] || fail "$f host field '$(cat "$T/$f")', Python's '$want'"
done
got=$("$PY" -c 'import sys; print(bytes.fromhex(sys.argv[1]).decode())' "$(cat "$T/strict")")
[ "$got" = "$want" ] || fail "strict claim host '$got', Python's '$want'"

# 2. A live holder inside a PID namespace is pid 1 there; outside, pid 1 is
# init with another start token.  The contender outside must not break it.
mkfifo "$T/in" "$T/out"
unshare --pid --fork --mount-proc "$HOLDER" -t soft "$T/n.lock" <"$T/in" >"$T/out" & PIDS="$PIDS $!"
exec 3>"$T/in" 4<"$T/out"
read -r word inpid <&4 || fail "no word from the holder inside the namespace"
[ "$word" = ready ] || fail "holder inside: $word $inpid"
timeout 20 "$HOLDER" -t soft -w 1 "$T/n.lock" </dev/null >"$T/o2"
[ $? = 1 ] || fail "a contender outside broke a live holder inside a PID namespace: $(cat "$T/o2")"
[ "$(sed -n 1p "$T/n.lock")" = "$inpid" ] || fail "the marker changed"
echo release >&3
read -r word rest <&4
exec 3>&- 4<&-

# 3. The reverse: a holder outside, a contender inside a new namespace (where
# the holder's pid does not exist).
mkfifo "$T/in3" "$T/out3"
"$HOLDER" -t soft "$T/o.lock" <"$T/in3" >"$T/out3" & PIDS="$PIDS $!"
exec 3>"$T/in3" 4<"$T/out3"
read -r word outpid <&4
[ "$word" = ready ] || fail "holder outside: $word $outpid"
timeout 20 unshare --pid --fork --mount-proc "$HOLDER" -t soft -w 1 "$T/o.lock" </dev/null >"$T/o3"
[ $? = 1 ] || fail "a contender inside a PID namespace broke a live holder outside: $(cat "$T/o3")"
echo release >&3
read -r word rest <&4
exec 3>&- 4<&-

# 4. A marker an older release wrote inside a container: the bare host
# name, the in-container pid and its start token.  Outside, that pid names
# another process or none: the owner is found alive by its start token and
# innermost pid, and not broken; once it exits, the marker is broken.
mkfifo "$T/in4" "$T/out4"
unshare --pid --fork --mount-proc sh -c '
	sleep 600 & s=$!
	"$PY" -c "from filelock._identity import process_start_token as t; import sys; print(sys.argv[1], t(int(sys.argv[1])))" $s
	read -r x
	kill $s
' <"$T/in4" >"$T/out4" & PIDS="$PIDS $!"
exec 3>"$T/in4" 4<"$T/out4"
read -r spid stoken <&4 || fail "no owner inside"
printf '%s\n%s\n%s\n' "$spid" "$("$PY" -c "$HOSTPY")" "$stoken" >"$T/old.lock"
timeout 20 "$HOLDER" -t soft -w 1 "$T/old.lock" </dev/null >"$T/o4"
[ $? = 1 ] || fail "broke the bare-host marker of an owner alive in a container: $(cat "$T/o4")"
echo done >&3
exec 3>&- 4<&-
wait
PIDS=
echo | timeout 20 "$HOLDER" -t soft -w 10 "$T/old.lock" >"$T/o5" ||
	fail "the dead container owner's marker was not broken: $(cat "$T/o5")"
exit 0
