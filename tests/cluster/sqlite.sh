#!/bin/bash
# SPDX-License-Identifier: MIT
# sqlite.sh -- an unmodified sqlite3 (rollback journal) on three simulated NFS
# client hosts, with and without the preload shim's byte-range emulation.
#
#   shim     P sqlite3 processes on each of 3 hosts run K transactions each
#            (BEGIN; UPDATE t SET n = n + 1; INSERT the new n into a log;
#            COMMIT) against one database in the shared directory, all
#            released at once through a pipe.  Every sqlite3 exits 0, n is
#            3*P*K exactly, the log holds 3*P*K rows with the distinct values
#            1..3*P*K (no two transactions ever saw the same n), and
#            PRAGMA integrity_check says ok.  Then, under a lease rule, one
#            process per host runs K/2 autocommit UPDATE t SET n = n + 1
#            statements: n exact, integrity ok.
#   control  the same run without the shim: kernel fcntl locks do not cross
#            hosts here, so transactions on different hosts interleave.  At
#            least one of up to CL_SQ_TRIES runs must show the damage: fewer
#            increments than committed transactions, duplicate log values, a
#            failed integrity check or a "malformed" error.
#   wal      with the shim, PRAGMA journal_mode=WAL and a write on a matching
#            path fail with one line naming the -shm file, and the database
#            stays intact (and usable again once switched back).
#   crash    host 1 dies (every process, at once) in the middle of a
#            transaction; hosts 2 and 3 then commit theirs: exact, the dead
#            transaction never shows, its owner file is evicted.
#   corrupt  an unparsable owner file blocks until its bound, is removed and
#            named on stderr; the transactions are exact.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
CL_NAME=sqlite
. "$(dirname "$0")/lib.sh"
SQLITE=${FL_SQLITE3:-/usr/bin/sqlite3}
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
case ${FL_SANITIZERS-} in
*address* | *thread*)
	echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"
	exit 77
	;;
esac
[ -x "$SQLITE" ] || cluster_skip "needs $SQLITE (Debian package sqlite3)"
if [ ! -x "$FLP" ] || [ ! -f "$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so" ]; then
	echo "[$CL_NAME] ERROR: the shim or $FLP is not built" >&2
	exit 99
fi
P=${CL_SQ_P:-2}
K=${CL_SQ_K:-50}
TRIES=${CL_SQ_TRIES:-3}
N=$((3 * P * K))
# No dentry cache: SQLite decides whether a journal is hot by stat()ing its
# name, then opens it; a name another host deleted but this host still
# caches makes that open fail (SQLITE_CANTOPEN, "unable to open database
# file") however well the locks work.  NFS revalidates names on open, FUSE
# trusts them for entry_timeout (filelock-preload(8) asks for 0).
# Attributes stay cached (0.1 s): the shim revalidates them on each lock.
CL_WATCHDOG_SECONDS=${CL_WATCHDOG_SECONDS:-220}
cl_start 3 "${CL_SQ_BINDFS_OPTS:-attr_timeout=0.1,entry_timeout=0,negative_timeout=0}"

POL=$CL_TMP/preload.conf
printf '%s\n' "$M/lease-*.sqlite lease lease_duration=2 heartbeat_interval=0.5 poll_interval=0.02" \
	"$M/*.sqlite soft-rw stale_threshold=2 heartbeat_interval=0.5 poll_interval=0.02" >"$POL"

# sq_create NAME: a fresh rollback-journal database in the shared directory.
sq_create() {
	rm -f "$S/$1" "$S/$1-journal"
	"$SQLITE" "$S/$1" 'PRAGMA journal_mode=DELETE;
		CREATE TABLE t(n INTEGER NOT NULL);
		INSERT INTO t VALUES (0);
		CREATE TABLE log(n INTEGER NOT NULL, who TEXT NOT NULL);' >/dev/null
}

# sq_script WHO: K transactions, each of which logs the n it produced (or,
# with STYLE=autocommit, K single UPDATE statements).  "committed" follows
# each one that succeeded (-bail stops the worker at its first error).
STYLE=txn
sq_script() {
	local j
	echo ".timeout 30000"
	echo "PRAGMA journal_mode=DELETE;"
	for ((j = 0; j < K; j++)); do
		if [ "$STYLE" = autocommit ]; then
			echo "UPDATE t SET n = n + 1; SELECT 'committed';"
		else
			echo "BEGIN; UPDATE t SET n = n + 1;"
			echo "INSERT INTO log SELECT n, '$1' FROM t; COMMIT; SELECT 'committed';"
		fi
	done
}

# sq_run NAME shim|plain: P workers on each host, released together; leaves
# their exit codes in $CL_TMP/NAME.rc.* and their stderr in NAME.err.*.
sq_run() {
	local name=$1 mode=$2 i p w go pids=() wrap=()
	if [ "$mode" = shim ]; then
		wrap=("$FLP" --config "$POL")
	fi
	mkfifo "$CL_TMP/$name.go"
	exec {go}<>"$CL_TMP/$name.go"
	for ((i = 1; i <= 3; i++)); do
		for ((p = 1; p <= P; p++)); do
			w=node$i.$p
			sq_script "$w" >"$CL_TMP/$name.sql.$w"
			# dd takes this worker's one byte of the go signal; then sqlite3
			# reads its transactions from the script.
			(cluster_exec "$i" sh -c 'dd bs=1 count=1 status=none of=/dev/null &&
				exec "$@" <"$0"' "$CL_TMP/$name.sql.$w" \
				timeout 120 "${wrap[@]}" "$SQLITE" -bail "$M/$name") \
				<"$CL_TMP/$name.go" >"$CL_TMP/$name.out.$w" 2>"$CL_TMP/$name.err.$w" &
			pids+=("$! $w")
		done
	done
	T0=$(cl_mono)
	printf '%*s' $((3 * P)) '' | tr ' ' x >&$go
	for w in "${pids[@]}"; do
		wait "${w% *}"
		echo $? >"$CL_TMP/$name.rc.${w#* }"
	done
	T1=$(cl_mono)
	exec {go}>&-
}

# sq_facts NAME: integrity, n, and the log's count/distinct/min/max, as read
# on the machine itself after every worker exited.
sq_facts() {
	"$SQLITE" "$S/$1" 'PRAGMA integrity_check;' 2>&1 | tr '\n' ' ' | sed 's/ $//'
	echo
	"$SQLITE" -separator ' ' "$S/$1" 'SELECT n FROM t;
		SELECT count(*), count(DISTINCT n), min(n), max(n) FROM log;' 2>&1 | tr '\n' ' '
	echo
}

# sq_shim NAME LABEL: the shimmed run on NAME and its checks.
sq_shim() {
	local name=$1 label=$2 ms bad=0 f rc integ n cnt dist lo hi c i left detail
	sq_create "$name"
	sq_run "$name" shim
	ms=$(cl_ms "$T0" "$T1")
	for f in "$CL_TMP/$name".rc.*; do
		rc=$(cat "$f")
		if [ "$rc" != 0 ]; then
			bad=$((bad + 1))
			cl_fail "$label: ${f##*.rc.} exited $rc: $(grep -v "stats:" "${f/.rc./.err.}" | head -c 800)"
		fi
	done
	c=$(cat "$CL_TMP/$name".out.* | grep -c '^committed$')
	{ read -r integ; read -r n cnt dist lo hi; } < <(sq_facts "$name")
	detail="log $cnt rows with $dist distinct values $lo..$hi"
	if [ "$STYLE" = autocommit ]; then
		# No log: every row count is what a correct run gives.
		cnt=$N dist=$N lo=1 hi=$N detail="no log"
	fi
	if [ "$integ" = ok ] && [ "$n" = $N ] && [ "$cnt" = $N ] && [ "$dist" = $N ] &&
		[ "$lo" = 1 ] && [ "$hi" = $N ] && [ "$c" = $N ] && [ $bad = 0 ]; then
		cl_ok "$label, 3 hosts x $P sqlite3 x $K $STYLE transactions: n = $n," \
			"$detail," \
			"integrity ok, all exited 0 ($ms ms, $((N * 1000 / (ms > 0 ? ms : 1))) tx/s)"
	else
		cl_fail "$label: integrity '$integ', n $n (expected $N), $c commits reported," \
			"log rows $cnt distinct $dist min $lo max $hi, $bad worker(s) failed"
	fi
	for ((i = 1; i <= 3; i++)); do
		c=$(cat "$CL_TMP/$name".out.node$i.* | grep -c '^committed$')
		[ "$c" = $((P * K)) ] || cl_fail "$label: host $i committed $c transactions," \
			"expected $((P * K))"
	done
	# Every process released its ranges when it exited.
	left=$(find "$S/$name.lock.ranges" -name '[po].*' 2>/dev/null | wc -l)
	[ "$left" = 0 ] || cl_fail "$label: $left owner file(s) left in $name.lock.ranges"
}

# --- 1. with the shim: exact, intact, and every sqlite3 succeeded ----------
sq_shim shim.sqlite "with the shim (soft-rw rule)"
# Single autocommit UPDATEs under a lease rule, smaller.
P0=$P K0=$K
P=1 K=$((K0 / 2)) N=$((3 * P * K)) STYLE=autocommit
sq_shim lease-shim.sqlite "with the shim (lease rule)"
P=$P0 K=$K0 N=$((3 * P * K)) STYLE=txn

# --- 2. without the shim: updates are lost or the database is damaged -------
shown=0
for ((try = 1; try <= TRIES && shown == 0; try++)); do
	db=plain$try.sqlite
	sq_create "$db"
	sq_run "$db" plain
	ok=0
	errs=
	commits=$(cat "$CL_TMP/$db".out.* | grep -c '^committed$')
	for ((i = 1; i <= 3; i++)); do
		for ((p = 1; p <= P; p++)); do
			rc=$(cat "$CL_TMP/$db.rc.node$i.$p")
			if [ "$rc" = 0 ]; then
				ok=$((ok + 1))
			else
				errs+="node$i.$p: exit $rc ($(tr '\n' ' ' <"$CL_TMP/$db.err.node$i.$p" |
					head -c 120)); "
			fi
		done
	done
	{ read -r integ; read -r n cnt dist lo hi; } < <(sq_facts "$db")
	# A worker prints "committed" after each COMMIT that succeeded (-bail
	# stops it at the first error): the increments the database must show.
	what=
	case $n in '' | *[!0-9]*) what+="n unreadable ($n); " ;; esac
	if [ -z "$what" ] && [ "$n" -lt "$commits" ]; then
		what+="n = $n < $commits transactions reported committed (lost updates); "
	fi
	[ "$integ" = ok ] || what+="integrity_check: ${integ:0:200}; "
	if [ "$cnt" != "$dist" ]; then what+="log has $cnt rows but $dist distinct n; "; fi
	if grep -qi 'malformed\|corrupt' "$CL_TMP/$db".err.* 2>/dev/null; then
		what+="a worker reported a malformed/corrupt database; "
	fi
	cl_log "without the shim, run $try: n = $n, $commits of $N commits reported, log $cnt" \
		"rows ($dist distinct)," \
		"integrity '${integ:0:60}', $ok/$((3 * P)) workers exited 0${errs:+; $errs}"
	if [ -n "$what" ]; then
		shown=1
		cl_ok "without the shim, run $try shows the damage: $what"
	fi
done
[ $shown = 1 ] || cl_fail "without the shim, $TRIES runs lost nothing: the control shows nothing"

# --- 3. WAL on a matching path: refused with a clear message, no damage -----
sq_create wal.sqlite
"$SQLITE" "$S/wal.sqlite" 'UPDATE t SET n = 41;'
cluster_exec 1 timeout 30 "$FLP" --config "$POL" "$SQLITE" -bail "$M/wal.sqlite" \
	'.timeout 5000' 'PRAGMA journal_mode=WAL;' 'UPDATE t SET n = n + 1;' \
	>"$CL_TMP/wal.out" 2>"$CL_TMP/wal.err"
rc=$?
if [ $rc = 0 ]; then
	cl_fail "with the shim, a write in WAL mode succeeded (out: $(tr '\n' ' ' <"$CL_TMP/wal.out"))"
elif ! grep -qi -- '-shm' "$CL_TMP/wal.err" || ! grep -qi 'wal' "$CL_TMP/wal.err"; then
	cl_fail "WAL write failed (exit $rc) but stderr names neither -shm nor WAL: $(cat "$CL_TMP/wal.err")"
else
	cl_ok "with the shim, a WAL write fails (exit $rc): $(grep -i -m1 -- '-shm' "$CL_TMP/wal.err")"
fi
{ read -r integ; read -r n _; } < <(sq_facts wal.sqlite)
if [ "$integ" = ok ] && [ "$n" = 41 ]; then
	cl_ok "after the refused WAL write the database is intact (integrity ok, n = 41)"
else
	cl_fail "after the refused WAL write: integrity '$integ', n '$n' (expected 41)"
fi
# Switched back to a rollback journal (without the shim, on one host), the
# database works under the shim again.
cluster_exec 2 "$SQLITE" "$M/wal.sqlite" 'PRAGMA journal_mode=DELETE;' >/dev/null
if cluster_exec 3 timeout 30 "$FLP" --config "$POL" "$SQLITE" -bail "$M/wal.sqlite" \
	'.timeout 5000' 'UPDATE t SET n = n + 1;' 2>"$CL_TMP/wal2.err" &&
	[ "$("$SQLITE" "$S/wal.sqlite" 'SELECT n FROM t;')" = 42 ]; then
	cl_ok "switched back to journal_mode=DELETE, the shim writes it again (n = 42)"
else
	cl_fail "back in DELETE mode the shimmed write failed: $(cat "$CL_TMP/wal2.err")"
fi

# sq_pair NAME K2: one shimmed sqlite3 on each of hosts 2 and 3, K2
# transactions each, released together; checks n = 2*K2 exactly, the log,
# integrity, exit codes.  Leaves their stderr in NAME.err.2 / .3.
sq_pair() {
	local name=$1 k2=$2 i go pids=() rc bad=0 integ n cnt dist lo hi
	mkfifo "$CL_TMP/$name.go"
	exec {go}<>"$CL_TMP/$name.go"
	for i in 2 3; do
		K=$k2 sq_script "node$i" >"$CL_TMP/$name.sql.$i"
		(cluster_exec "$i" sh -c 'dd bs=1 count=1 status=none of=/dev/null &&
			exec "$@" <"$0"' "$CL_TMP/$name.sql.$i" \
			timeout 120 "$FLP" --config "$POL" "$SQLITE" -bail "$M/$name") \
			<"$CL_TMP/$name.go" >"$CL_TMP/$name.out.$i" 2>"$CL_TMP/$name.err.$i" &
		pids+=("$!")
	done
	printf 'xx' >&$go
	for i in "${pids[@]}"; do
		wait "$i" || bad=$((bad + 1))
	done
	exec {go}>&-
	{ read -r integ; read -r n cnt dist lo hi; } < <(sq_facts "$name")
	if [ $bad = 0 ] && [ "$integ" = ok ] && [ "$n" = $((2 * k2)) ] &&
		[ "$cnt" = $((2 * k2)) ] && [ "$dist" = $((2 * k2)) ]; then
		return 0
	fi
	cl_fail "$name: $bad worker(s) failed ($(cat "$CL_TMP/$name".err.* | grep -v stats: |
		head -c 600)), integrity '$integ', n '$n', log $cnt rows $dist distinct" \
		"(expected $((2 * k2)))"
	return 1
}

# --- 4. a host crashes in the middle of a transaction ------------------------
# Host 1's sqlite3 has run BEGIN and an UPDATE (it holds SQLite's RESERVED
# lock, the journal exists, the mutex may still linger) when every process
# of host 1 dies.  Hosts 2 and 3 then run their transactions: the dead
# owner's file and mutex are evicted once unchanged for stale_threshold,
# the uncommitted update never shows, everything else is exact.
sq_create crash.sqlite
mkfifo "$CL_TMP/crash.in" "$CL_TMP/crash.outp"
exec {cin}<>"$CL_TMP/crash.in" {cout}<>"$CL_TMP/crash.outp"
# (.system: sqlite3's own output to a pipe is buffered; echo's is not.  The
# subshell's own redirection: an asynchronous command's stdin is otherwise
# /dev/null.)
(cluster_exec 1 timeout 120 "$FLP" --config "$POL" "$SQLITE" -bail "$M/crash.sqlite") \
	<"$CL_TMP/crash.in" >"$CL_TMP/crash.outp" 2>"$CL_TMP/crash.err" &
crash_pid=$!
printf '%s\n' ".timeout 30000" "PRAGMA journal_mode=DELETE;" \
	"BEGIN; UPDATE t SET n = n + 1000; INSERT INTO log SELECT n, 'crashed' FROM t;" \
	".system echo in-transaction" >&$cin
got=
while read -r -t 60 line <&$cout; do
	[ "$line" = in-transaction ] && got=1 && break
done
if [ -z "$got" ]; then
	cl_fail "crash: host 1's sqlite3 never reached the middle of its transaction:" \
		"$(head -c 400 "$CL_TMP/crash.err")"
else
	cluster_crash 1
	wait $crash_pid
	if sq_pair crash.sqlite $((K / 2)); then
		cl_ok "host 1 crashed in the middle of a transaction; hosts 2 and 3 then ran" \
			"$K transactions: n = $K exact, its update never seen, integrity ok"
	fi
	left=$(find "$S/crash.sqlite.lock.ranges" -name '[po].*' 2>/dev/null | wc -l)
	[ "$left" = 0 ] || cl_fail "crash: $left owner file(s) left: the dead host's was not evicted"
	cluster_boot 1 || cl_fail "host 1 did not boot again"
fi
exec {cin}>&- {cout}>&-

# --- 5. a corrupt owner file ---------------------------------------------------
# Counted as a write lock on the whole file until it has stayed unchanged for
# the bound (at least 2 s), then removed, named on stderr; the transactions
# wait for it and are exact.
sq_create corrupt.sqlite
mkdir "$S/corrupt.sqlite.lock.ranges"
printf 'filelock-ranges 1\nhost elsewhere\npid 12\nW 0 garbage\n' \
	>"$S/corrupt.sqlite.lock.ranges/p.12.x@elsewhere"
if sq_pair corrupt.sqlite $((K / 5)); then
	if [ -e "$S/corrupt.sqlite.lock.ranges/p.12.x@elsewhere" ]; then
		cl_fail "corrupt owner file: still there after the run"
	elif ! grep -q 'p.12.x@elsewhere: not a valid owner file' "$CL_TMP"/corrupt.sqlite.err.*; then
		cl_fail "corrupt owner file: removed, but no worker named it on stderr"
	else
		cl_ok "a corrupt owner file held the database until its bound, was removed and" \
			"named; then $((2 * (K / 5))) transactions exact, integrity ok"
	fi
fi
cl_finish
