#!/bin/bash
# SPDX-License-Identifier: MIT
# onetry.sh -- contenders that never wait, each try a fresh process, on three
# simulated hosts: `filelock -n` for the soft-rw and lease kinds, and
# sqlite3 under the preload shim's byte-range emulation.
#
# For each of soft-rw and lease (stale_threshold / lease_duration 1.2 s,
# heartbeat 0.3 s), a holder on host 2 and then:
#   live     for three bounds, hosts 1 and 3 take turns running
#            `filelock -n ... true`: every one exits 1;
#   freeze   host 2 pauses for 0.6 s (less than the bound): tries during and
#            after the pause exit 1, and the holder is still valid;
#   skew     a holder on host 2 at -300 s, contenders on host 1 (true time)
#            and host 3 (+300 s) for two bounds: every try exits 1, the holder
#            is still valid;
#   crash    host 2 dies; host 1 runs `filelock -n` in a loop, each try a new
#            process: one gets in within the bound + 2 s.
# sqlite: under a soft-rw rule, host 2's sqlite3 (clock 5 minutes behind)
# holds an EXCLUSIVE transaction; for two bounds, with host 2 paused for
# 0.6 s on the way, fresh sqlite3 processes without a busy timeout on host 1
# (true time) and host 3 (+300 s) all get "database is locked"; host 2 dies;
# a fresh host 1 sqlite3 with a busy timeout commits within the bound + 2 s
# and the database is intact.
# CL_ONETRY_BASELINE=1 reports recovery times without judging them (to
# measure a build from before the ledger with the same script).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
CL_NAME=onetry
. "$(dirname "$0")/lib.sh"
: "${FL_CLI:?FL_CLI is not set; run through make check}"
SQLITE=${FL_SQLITE3:-/usr/bin/sqlite3}
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
CL_NEED=faketime
CL_WATCHDOG_SECONDS=${CL_WATCHDOG_SECONDS:-120}
BOUND=1.2
BOUND_MS=1200
HB=0.3
LIMIT_MS=$((BOUND_MS + 2000))
cl_start 3 "attr_timeout=0.1,entry_timeout=0,negative_timeout=0"

kind_opts() {
	case $1 in
	soft-rw)
		CLI_OPTS=(-t soft-rw --heartbeat-interval $HB --stale-threshold $BOUND)
		H_OPTS=(-t soft-rw -o heartbeat_interval=$HB -o stale_threshold=$BOUND)
		;;
	lease)
		CLI_OPTS=(-t lease --heartbeat-interval $HB --lease-duration $BOUND)
		H_OPTS=(-t lease -o heartbeat_interval=$HB -o lease_duration=$BOUND)
		;;
	esac
}

# tries_all_fail "HOSTS" LOCK SECONDS: fresh `filelock -n` processes, round
# robin over HOSTS, for SECONDS; 0 when every one exited 1.  TRIES counts.
tries_all_fail() {
	local hosts=($1) lock=$2 end rc n=0
	end=$(($(cl_mono) + ${3%.*} * 1000000000 + ${3#*.} * 100000000))
	TRIES=0
	while [ "$(cl_mono)" -lt "$end" ]; do
		cluster_exec "${hosts[$((n % ${#hosts[@]}))]}" "$FL_CLI" -n "${CLI_OPTS[@]}" "$lock" true \
			2>>"$CL_TMP/tries.err"
		rc=$?
		n=$((n + 1))
		TRIES=$n
		if [ "$rc" -ne 1 ]; then
			TRY_RC=$rc
			return 1
		fi
	done
	return 0
}

# until_ok HOST LOCK T0 SECONDS: fresh `filelock -n` processes on HOST until
# one succeeds; sets OK_MS (since T0) and TRIES; 1 after SECONDS.
until_ok() {
	local host=$1 lock=$2 t0=$3 end rc
	end=$((t0 + $4 * 1000000000))
	TRIES=0
	while [ "$(cl_mono)" -lt "$end" ]; do
		TRIES=$((TRIES + 1))
		cluster_exec "$host" "$FL_CLI" -n "${CLI_OPTS[@]}" "$lock" true 2>>"$CL_TMP/tries.err"
		rc=$?
		if [ "$rc" -eq 0 ]; then
			OK_MS=$(cl_ms "$t0" "$(cl_mono)")
			return 0
		fi
		[ "$rc" -eq 1 ] || echo "try exit $rc" >>"$CL_TMP/tries.err"
	done
	return 1
}

holder_valid() {
	holder_send "$1" valid
	holder_expect "$1" '^(valid|compromised)' 5
	[ "$H_LINE" = "valid 1" ]
}

run_kind() {
	local kind=$1 lock=$M/one-$1.lock t0
	kind_opts "$kind"
	holder_start h 2 "$FL_HOLDER" "${H_OPTS[@]}" "$lock"
	if ! holder_expect h '^ready' 10; then
		cl_fail "$kind: holder on host 2: $H_LINE"
		holder_close h
		return
	fi
	# live
	if tries_all_fail "1 3" "$lock" 3.6 && holder_valid h; then
		cl_ok "$kind live: $TRIES one-try contenders on hosts 1 and 3 over 3 bounds all refused"
	else
		cl_fail "$kind live: try $TRIES exited ${TRY_RC:-?} or the holder says '$H_LINE'"
	fi
	# freeze shorter than the bound
	cluster_freeze 2
	tries_all_fail "1 3" "$lock" 0.6
	local ok=$? n=$TRIES
	cluster_thaw 2
	tries_all_fail "1 3" "$lock" 0.5 || ok=1
	n=$((n + TRIES))
	if [ $ok -eq 0 ] && holder_valid h; then
		cl_ok "$kind freeze: $n one-try contenders during and after a 0.6 s pause all refused"
	else
		cl_fail "$kind freeze: a try got in (exit ${TRY_RC:-?}) or the holder says '$H_LINE'"
	fi
	holder_close h
	# skew: the holder's clock 5 minutes behind, contenders at 0 and +5 min
	cluster_skew 2 -300
	cluster_skew 3 +300
	holder_start h 2 "$FL_HOLDER" "${H_OPTS[@]}" "$lock"
	if holder_expect h '^ready' 10 && tries_all_fail "1 3" "$lock" 2.4 && holder_valid h; then
		cl_ok "$kind skew: $TRIES one-try contenders at 0 and +300 s left a holder at -300 s alone"
	else
		cl_fail "$kind skew: try $TRIES exited ${TRY_RC:-?} or the holder says '$H_LINE'"
	fi
	cluster_skew 2 0
	cluster_skew 3 0
	# crash
	t0=$(cl_mono)
	cluster_crash 2
	holder_close h
	if until_ok 1 "$lock" "$t0" 20; then
		if [ "$OK_MS" -le $LIMIT_MS ] || [ "${CL_ONETRY_BASELINE:-0}" = 1 ]; then
			cl_ok "$kind crash: a fresh one-try process got in $OK_MS ms after host 2 died ($TRIES tries; bound $BOUND_MS ms)"
		else
			cl_fail "$kind crash: recovery took $OK_MS ms, more than the bound + 2 s"
		fi
	else
		cl_fail "$kind crash: no one-try process got in within 20 s ($TRIES tries)"
	fi
	cluster_boot 2
}

run_sqlite() {
	local db=one.sqlite pol=$CL_TMP/preload.conf t0 out v
	if [ ! -x "$SQLITE" ] || [ ! -x "$FLP" ]; then
		cl_log "sqlite: skipped (no $SQLITE or shim)"
		return
	fi
	case ${FL_SANITIZERS-} in
	*address* | *thread*)
		cl_log "sqlite: skipped (a sanitizer runtime cannot be preloaded)"
		return
		;;
	esac
	printf '%s\n' "$M/*.sqlite soft-rw stale_threshold=$BOUND heartbeat_interval=$HB poll_interval=0.02" >"$pol"
	"$SQLITE" "$S/$db" 'PRAGMA journal_mode=DELETE; CREATE TABLE t(n INTEGER NOT NULL);
		INSERT INTO t VALUES (0);' >/dev/null
	cluster_skew 2 -300
	cluster_skew 3 +300
	holder_start sq 2 "$FLP" --config "$pol" "$SQLITE" -batch "$M/$db"
	holder_send sq "BEGIN EXCLUSIVE; UPDATE t SET n = n + 100; SELECT 'ready';"
	if ! holder_expect sq '^ready' 10; then
		cl_fail "sqlite: holder on host 2: $H_LINE"
		holder_close sq
		return
	fi
	local t1 end n=0 frozen= bad=
	t1=$(cl_mono)
	end=$((t1 + 2 * BOUND_MS * 1000000))
	while [ "$(cl_mono)" -lt "$end" ]; do
		if [ -z "$frozen" ] && [ $(($(cl_mono) - t1)) -gt 500000000 ]; then
			cluster_freeze 2
			frozen=$(cl_mono)
		elif [ -n "$frozen" ] && [ "$frozen" != done ] &&
			[ $(($(cl_mono) - frozen)) -gt 600000000 ]; then
			cluster_thaw 2
			frozen=done
		fi
		out=$(cluster_exec $((1 + 2 * (n % 2))) "$FLP" --config "$pol" "$SQLITE" "$M/$db" \
			'UPDATE t SET n = n + 1;' 2>&1)
		n=$((n + 1))
		case $out in
		*"database is locked"*) ;;
		*)
			bad=$out
			break
			;;
		esac
	done
	[ "$frozen" = done ] || cluster_thaw 2
	cluster_skew 2 0
	cluster_skew 3 0
	if [ -z "$bad" ]; then
		cl_ok "sqlite: $n fresh sqlite3 writes on hosts 1 and 3 (+300 s) refused by host 2's transaction (-300 s, paused 0.6 s) over 2 bounds"
	else
		cl_fail "sqlite: try $n wrote through host 2's transaction: $bad"
	fi
	t0=$(cl_mono)
	cluster_crash 2
	holder_close sq
	out=$(cluster_exec 1 "$FLP" --config "$pol" "$SQLITE" -cmd '.timeout 20000' "$M/$db" \
		'UPDATE t SET n = n + 1; SELECT n FROM t;' 2>"$CL_TMP/sq.err")
	OK_MS=$(cl_ms "$t0" "$(cl_mono)")
	v=$("$SQLITE" "$S/$db" 'PRAGMA integrity_check; SELECT n FROM t;' 2>&1 | tr '\n' ' ')
	if [ "$out" = 1 ] && [ "$v" = "ok 1 " ] &&
		{ [ "$OK_MS" -le $LIMIT_MS ] || [ "${CL_ONETRY_BASELINE:-0}" = 1 ]; }; then
		cl_ok "sqlite: after host 2 died, a fresh sqlite3 with a busy timeout committed in $OK_MS ms (the crashed transaction rolled back; integrity ok)"
	else
		cl_fail "sqlite: after the crash: '$out' in $OK_MS ms, database '$v' (want 1, 'ok 1', <= $LIMIT_MS ms): $(head -3 "$CL_TMP/sq.err")"
	fi
	cluster_boot 2
}

run_kind soft-rw
run_kind lease
run_sqlite
cl_finish
