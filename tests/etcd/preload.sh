#!/bin/bash
# The preload shim's policy kind etcd, against a real 3-member cluster on
# loopback, with util-linux flock(1) (and Python's fcntl) under the
# uninstalled wrapper tests/preload/filelock-preload:
#  - a policy without etcd rules, or an etcd rule never used, maps no libcurl
#    and no libfilelock into the program (/proc/PID/maps); using one does;
#  - N processes x M increments of a counter under flock(1) are exact: the
#    only exclusive state is in etcd (the shim's kernel pins are LOCK_SH);
#  - a held lock is refused to others (flock -n exits 1, -s too), also to the
#    library itself through the CLI on the same lock path; readers share;
#  - a lock stays held past 2 x ttl (keep-alives of the loaded library), and
#    flock -w ends a wait on time (SIGALRM -> EINTR through the shim);
#  - SIGKILL of the holder frees the lock once its lease expired (ttl);
#  - what an etcd lease cannot do: a fork child cannot share it (ENOLCK), its
#    LOCK_UN leaves it with the owner (reported), a vfork child's closes do
#    not touch it, and the shell idiom `exec 9>f; flock 9` releases it when
#    flock(1) exits (reported), never leaving two holders;
#    flock -F (lock, then execve in the same process) is reported;
#  - byte ranges (fcntl/lockf) on an etcd rule fail with ENOLCK and say why;
#  - also_native=yes also takes the kernel's flock;
#  - a library that cannot be loaded fails etcd rules with ENOLCK, others work.
# Plain processes on one host: the simulated hosts of tests/cluster have
# their own network namespaces (see tests/etcd/preload-hosts.sh for those).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
case ${FL_SANITIZERS-} in
*address*|*thread*) echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"; exit 77 ;;
esac
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"

W=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
CLI=$FL_TOP_BUILDDIR/cli/filelock
PY=/usr/bin/python3
[ -x "$W" ] || { echo "not built: $W"; exit 99; }
command -v flock >/dev/null || fl_skip "flock(1) (util-linux) is not installed"
[ -x "$PY" ] || fl_skip "no $PY"
TTL=2
printf '%s\n' "$TMP/*.db etcd ttl=$TTL timeout=30" "$TMP/*.nat etcd ttl=$TTL also_native=yes" \
	"$TMP/*.lck soft" >"$TMP/etcd.conf"
printf '%s\n' "$TMP/*.lck soft" >"$TMP/soft.conf"
export FILELOCK_PRELOAD_CONFIG=$TMP/etcd.conf
: >"$TMP/c.db"
: >"$TMP/x.lck"

# run SECONDS CMD...: bounded, so that a deadlock fails instead of hanging.
run() { t=$1; shift; timeout "$t" "$@"; }
maps_of_flock() { # POLICY LOCKFILE: flock(1)'s own maps while it holds the lock
	FILELOCK_PRELOAD_CONFIG=$1 run 20 "$W" flock "$2" sh -c 'cat /proc/$PPID/maps' 2>&1
}

# 1. Nothing external is loaded unless an etcd rule is used.
m=$(maps_of_flock "$TMP/soft.conf" "$TMP/x.lck")
check "the shim is mapped into flock(1) (soft-only policy)" grep -q libfilelock-preload <<<"$m"
check "soft-only policy: no libcurl, no libfilelock, no json-c mapped" \
	bash -c '! grep -Eq "libcurl|libfilelock\.so|libjson-c" <<<"$1"' _ "$m"
m=$(maps_of_flock "$TMP/etcd.conf" "$TMP/x.lck")
check "etcd rule present but unused: no libcurl mapped" \
	bash -c '! grep -Eq "libcurl|libfilelock\.so" <<<"$1"' _ "$m"
m=$(maps_of_flock "$TMP/etcd.conf" "$TMP/c.db")
check "etcd rule used: the full library and libcurl are mapped" \
	bash -c 'grep -q "libfilelock\.so" <<<"$1" && grep -q libcurl <<<"$1"' _ "$m"

# 2. Counter: N processes x M increments, flock(1) under the shim.
N=4 M=15
echo 0 >"$TMP/counter"
inc='v=$(cat "$1"); echo $((v + 1)) >"$1"'
pids=
for ((p = 0; p < N; p++)); do
	(
		for ((j = 0; j < M; j++)); do
			run 60 "$W" flock "$TMP/c.db" sh -c "$inc" sh "$TMP/counter" || exit 1
		done
	) &
	pids="$pids $!"
done
ok=1
for p in $pids; do wait "$p" || ok=0; done
check "all $N x $M flock(1) runs succeeded" [ $ok = 1 ]
check "counter is exactly $((N * M)) (got $(cat "$TMP/counter"))" [ "$(cat "$TMP/counter")" = $((N * M)) ]

# Holders are flock(1) running `sh -c 'echo ready; read x'` on FIFOs; the
# wrapper execs flock(1), so $! is the process that owns the lease.
hold_start() { # NAME FLOCK-ARGS...
	n=$1
	shift
	mkfifo "$TMP/$n.in" "$TMP/$n.out" || exit 99
	"$W" flock "$@" sh -c 'echo ready; read x; exit 0' <"$TMP/$n.in" >"$TMP/$n.out" 2>>"$TMP/$n.err" &
	eval "HPID_$n=$!"
	HOLDERS="$HOLDERS $n"
	eval "exec {HIN_$n}>\"\$TMP/\$n.in\""
	eval "exec {HOUT_$n}<\"\$TMP/\$n.out\""
	holder_expect "$n" '^ready$' 20
}
hold_end() { # NAME: EOF on its stdin; flock(1) releases and exits
	eval "fd=\$HIN_$1; fo=\$HOUT_$1; pid=\$HPID_$1"
	exec {fd}>&-
	exec {fo}<&-
	wait "$pid" 2>/dev/null
	rc=$?
	eval "HPID_$1="
	return $rc
}
nb() { run 20 "$W" flock -n "$@" true 2>>"$TMP/nb.err"; echo $?; }

# 3. Held: refused to flock -n (exit 1), to readers, and to the library's CLI.
check "holder H acquires" hold_start H "$TMP/c.db"
check "flock -n on a held lock exits 1" [ "$(nb "$TMP/c.db")" = 1 ]
check "flock -s -n on a held lock exits 1" [ "$(nb -s "$TMP/c.db")" = 1 ]
run 20 "$CLI" -t etcd -n "$TMP/c.db.lock" true 2>/dev/null
check "the library (filelock -t etcd -n FILE.lock) sees it held too" [ $? = 1 ]
keys=$(etcdctl --endpoints="$FILELOCK_ETCD_ENDPOINTS" get --prefix --keys-only \
	"$FILELOCK_ETCD_PREFIX$TMP/c.db.lock/" 2>/dev/null | grep -c .)
check "one key under <prefix><file>.lock/ in etcd (got $keys)" [ "$keys" = 1 ]

# 4. Past 2 x ttl it is still held, and flock -w ends the wait on time.
t0=$(now_ms)
run 30 "$W" flock -w 5 "$TMP/c.db" true 2>/dev/null
rc=$? t=$(($(now_ms) - t0))
echo "# flock -w 5 against a holder: exit $rc after $t ms"
check "flock -w 5 gives up with exit 1 (EINTR on SIGALRM)" [ $rc = 1 ]
check "... after 5 s (${t} ms), the lock kept past 2 x ttl" [ $t -ge 4900 ] && [ $t -lt 8000 ]
# A one-shot timer whose handler (no SA_RESTART) raises ends the wait.
out=$(run 30 "$W" "$PY" -c 'import fcntl, os, signal, sys, time
def on_alarm(sig, frame):
    raise TimeoutError
signal.signal(signal.SIGALRM, on_alarm)
fd = os.open(sys.argv[1], os.O_RDWR)
t = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 0.3)
try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("acquired")
except TimeoutError:
    print("interrupted %d" % ((time.monotonic() - t) * 1000))' "$TMP/c.db" 2>&1)
echo "# python one-shot timer of 300 ms: $out"
check "a Python handler that raises ends the wait" grep -q '^interrupted [0-9]*$' <<<"$out"
ms=${out#interrupted }
check "... about when it ran (${ms} ms < 2000)" [ "${ms//[!0-9]/}" -lt 2000 ]
check "holder H releases" hold_end H
check "free after release: flock -n exits 0" [ "$(nb "$TMP/c.db")" = 0 ]

# 5. Readers share; a writer is refused while they hold.
check "reader R acquires (flock -s)" hold_start R -s "$TMP/c.db"
check "a second reader gets it (flock -s -n exits 0)" [ "$(nb -s "$TMP/c.db")" = 0 ]
check "a writer is refused (flock -n exits 1)" [ "$(nb "$TMP/c.db")" = 1 ]
check "reader R releases" hold_end R

# 6. SIGKILL of the holder: others get the lock once its lease expired.
check "holder K acquires" hold_start K "$TMP/c.db"
{ kill -KILL "$HPID_K"; wait "$HPID_K"; } 2>/dev/null # no "Killed" line
t0=$(now_ms)
run 30 "$W" flock -w 20 "$TMP/c.db" true 2>"$TMP/kill.err"
rc=$? t=$(($(now_ms) - t0))
echo "# holder SIGKILLed -> lock taken after $t ms (ttl ${TTL} s)"
check "after the kill, flock -w 20 gets the lock" [ $rc = 0 ]
check "... once the lease expired, not at once (${t} ms >= 1000)" [ $t -ge 1000 ]
check "... within ttl + 3 s (${t} ms)" [ $t -le $((TTL * 1000 + 3000)) ]
check "... whose last close released without a report (another OFD's pin is not ours)" \
	bash -c '! grep -q "not handed on" "$1"' _ "$TMP/kill.err"
hold_end K 2>/dev/null

# 7. What an etcd lease cannot do, and that it fails safe.
out=$(run 60 "$W" "$PY" - "$TMP/c.db" 2>"$TMP/fork.err" <<'PY'
import errno, fcntl, os, subprocess, sys
f = sys.argv[1]
def other():  # another process's one try: 0 free, 1 held
    return subprocess.run(["flock", "-n", f, "true"]).returncode
fd = os.open(f, os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", other())
subprocess.run(["true"])                     # a vfork child closes fd
print("after-subprocess", other())
pid = os.fork()
if pid == 0:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("child-relock 0")
    except OSError as e:
        print("child-relock", errno.errorcode.get(e.errno, e.errno))
    fcntl.flock(fd, fcntl.LOCK_UN)
    print("child-unlock", other())
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
print("parent-after-child", other())
fcntl.flock(fd, fcntl.LOCK_UN)
print("parent-unlock", other())
fcntl.flock(fd, fcntl.LOCK_EX)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("lockf 0")
except OSError as e:
    print("lockf", errno.errorcode.get(e.errno, e.errno))
PY
)
echo "$out" | sed 's/^/# /'
check "python: held, others refused" grep -qx "held 1" <<<"$out"
check "a vfork child (subprocess) closing the descriptor leaves the lock held" \
	grep -qx "after-subprocess 1" <<<"$out"
check "a fork child cannot re-lock its parent's lease: ENOLCK" grep -qx "child-relock ENOLCK" <<<"$out"
check "... and says why" grep -q "cannot be shared" "$TMP/fork.err"
check "the child's LOCK_UN leaves the lock with its owner" grep -qx "child-unlock 1" <<<"$out"
check "... reported on stderr" grep -q "stays held until pid" "$TMP/fork.err"
check "the parent still holds it after the child exited" grep -qx "parent-after-child 1" <<<"$out"
check "the parent's LOCK_UN frees it" grep -qx "parent-unlock 0" <<<"$out"
check "lockf on an etcd rule: ENOLCK" grep -qx "lockf ENOLCK" <<<"$out"
check "... with one line naming the shared-filesystem kinds" \
	grep -q "byte-range locks need a shared-filesystem kind" "$TMP/fork.err"
check "the python holder's exit released it" [ "$(nb "$TMP/c.db")" = 0 ]

out=$(run 60 "$W" bash -c 'exec 9>>"$1"; flock 9; echo "first $?"
	flock -n "$1" true; echo "other $?"' _ "$TMP/c.db" 2>"$TMP/idiom.err")
echo "$out" | sed 's/^/# /'
check "exec 9>f; flock 9: flock(1) got the lock" grep -qx "first 0" <<<"$out"
check "... and released it when it exited (nobody holds a dead lease)" grep -qx "other 0" <<<"$out"
check "... which it reported" grep -q "is not handed on" "$TMP/idiom.err"

out=$(run 60 "$W" flock -F "$TMP/c.db" sh -c 'flock -n "$1" true; echo "inner $?"' sh \
	"$TMP/c.db" 2>"$TMP/F.err")
check "flock -F (lock, then execve): the lock was taken" grep -qx "inner 1" <<<"$out"
check "... and the new image reports that its lease is no longer kept alive" \
	grep -q "arrived locked across execve" "$TMP/F.err"
out=$(run 60 "$W" flock "$TMP/c.db" sh -c 'echo x' 2>&1)
check "flock FILE CMD (fork, then execve): no such report" [ "$out" = x ]

# also_native: the kernel's lock too, for programs without the shim.
: >"$TMP/n.nat"
out=$(run 60 "$W" flock "$TMP/n.nat" sh -c 'LD_PRELOAD= flock -n "$1" true; echo "native $?"' \
	sh "$TMP/n.nat")
check "also_native=yes: a program without the shim is refused the kernel lock" [ "$out" = "native 1" ]

# 8. A library that cannot be loaded: etcd rules fail with ENOLCK, soft works.
FILELOCK_PRELOAD_LIBFILELOCK=$TMP/no-such-lib.so.0 run 20 "$W" flock -n "$TMP/c.db" true \
	2>"$TMP/noload.err"
rc=$?
check "unloadable library: flock(1) fails (exit $rc, EX_OSERR 71 for ENOLCK)" [ $rc = 71 ]
check "... with one line naming the library" grep -q "needs the full library: cannot load" \
	"$TMP/noload.err"
FILELOCK_PRELOAD_LIBFILELOCK=$TMP/no-such-lib.so.0 run 20 "$W" flock -n "$TMP/x.lck" true
check "... while a soft rule in the same policy still works" [ $? = 0 ]

echo "$FAILS failed"
[ "$FAILS" = 0 ]
