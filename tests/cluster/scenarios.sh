# SPDX-License-Identifier: MIT
# scenarios.sh -- the failure suite every NFS-grade kind must pass, on 3
# simulated hosts (sourced by soft.sh, lease.sh, strict.sh, soft-rw.sh and
# their py-*.sh twins, which set KIND and PEERS).
#
# Scenarios (each prints "ok:"/"FAIL:" lines and measured times):
#   counter      3 hosts x K workers x M increments: exact total, and the
#                merged enter/exit logs show no two holders overlapping.
#   crash        host 1 dies while it holds the lock; the others continue
#                within stale + poll (lease, soft-rw), never across hosts
#                nor PID namespaces (soft: a rebooted simulated host runs in
#                a new PID namespace, so only a forced fl_break frees it), or
#                only after fl_break of the named claims (strict); no update
#                lost.
#   freeze-short the holder's host pauses for less than stale: nobody enters,
#                and the holder is still valid afterwards.
#   freeze-long  the holder's host pauses past stale: others proceed (heartbeat
#                kinds) and the thawed holder learns it lost the lock before
#                it writes (fl-counter exit 3); soft/strict: nobody enters.
#   skew         hosts 2 and 3 run +5 and -5 minutes off: no live holder on
#                any host is evicted, and a counter across all three is exact.
#   hang         host 1's filesystem client hangs while it holds the lock:
#                heartbeat kinds let others in within their bounds (the holder
#                learns of it afterwards); soft/strict keep it held.  With a
#                non-holding host hung, the others are not slowed at all.
#   hangsrv-short, hangsrv   (NFS tier only) the NFS server itself hangs for
#                0.5 s, then 1.5 s (stale is 1 s) while hosts 1-3 count with
#                20 ms holds: no overlap, no lost update; a holder evicted
#                meanwhile learns it before writing (exit 3).
# On the NFS tier each scenario also reports "ESTALE M/R/L": the ESTALE
# replies the hosts' NFS clients met (M), passed to callers (R), and the
# records the C library's processes opened again after one (L).
# With PEERS=py, host 2 runs Python's filelock (FL_PEER_DIR) instead of the C
# library (soft-rw: SRW_PROTOCOL=legacy for a 3.32.3 peer, else filelock 4): the Python holder is the one that crashes, and Python processes
# contend against C holders that freeze or skew.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${KIND:?}"
PEERS=${PEERS:-c}
if [ "$PEERS" = py ]; then CL_NAME=py${CL_NAME_SUFFIX:-}-$KIND; else CL_NAME=$KIND; fi
if [ "${CLUSTER_FS:-bindfs}" = nfs ]; then CL_NAME=nfs-$CL_NAME; fi
K=${CL_K:-2}
ITERS=${CL_M:-8}
POLL=0.05
POLL_MS=50
# Small intervals keep the suite fast: heartbeat 0.2 s, stale 1 s.
COPTS=(-o timeout=30 -o poll_interval=$POLL)
PYOPTS=(timeout=30 poll_interval=$POLL)
STALE=
case $KIND in
lease)
	COPTS+=(-o lease_duration=1 -o heartbeat_interval=0.2)
	PYOPTS+=(lease_duration=1.0 heartbeat_interval=0.2)
	STALE=1
	;;
soft-rw)
	# SRW_PROTOCOL=legacy: the 3.32.3 protocol (and peer); default filelock-rw/1.
	COPTS+=(-o heartbeat_interval=0.2 -o stale_threshold=1 -o "protocol=${SRW_PROTOCOL:-rw1}")
	PYOPTS+=(heartbeat_interval=0.2 stale_threshold=1.0)
	STALE=1
	;;
soft | strict) ;;
*)
	echo "scenarios.sh: unknown kind $KIND" >&2
	exit 99
	;;
esac
# Library bugs this suite has exposed and that are not fixed yet, as
# SCENARIO:KIND words.  Such a failure is printed as "KNOWN BUG" and does not
# fail the test; delete the word once the bug is fixed (an unexpected pass
# is printed too).  None today.  hangsrv:lease and hangsrv:soft-rw were
# listed until the library stopped counting a stalled read of the server as
# the holder's silence and breaks of one marker stopped interleaving (the
# break claim): a contender evicted a live holder right after the stall.
CL_KNOWN_BUGS=${CL_KNOWN_BUGS-}
# Recovery must come within stale + poll; the slack covers the attribute
# cache (0.1 s), one heartbeat tick and a loaded machine.
SLACK_MS=${CL_SLACK_MS:-2000}

# --- which program plays the worker on host I --------------------------------
peer_of() { if [ "$PEERS" = py ] && [ "$1" = 2 ]; then echo py; else echo c; fi; }

# counter_cmd I LOCK COUNTER ITERS WORK_US LOGPREFIX: sets CMD.
counter_cmd() {
	if [ "$(peer_of "$1")" = py ]; then
		CMD=(env "PYTHONPATH=$FL_PEER_DIR" "$FL_PYTHON3" "$CL_HERE/py-worker.py" counter "$KIND"
			"$2" "$3" "$4" "$5" "$6" "${PYOPTS[@]}")
	else
		CMD=("$FL_COUNTER" -t "$KIND" -n "$4" -W "$5" -L "$6" "${COPTS[@]}" "$2" "$3")
	fi
}

# holder_cmd I LOCK [WAIT]: sets CMD (fl-holder or the Python holder).
holder_cmd() {
	if [ "$(peer_of "$1")" = py ]; then
		CMD=(env "PYTHONPATH=$FL_PEER_DIR" "$FL_PYTHON3" "$CL_HERE/py-worker.py" holder "$KIND"
			"$2" "${PYOPTS[@]}" ${3:+timeout=$3})
	else
		CMD=("$FL_HOLDER" -t "$KIND" ${3:+-w "$3"} "${COPTS[@]}" "$2")
	fi
}

# run_counters NAME "HOSTS" K ITERS WORK_US: K workers per host on lock NAME;
# waits; sets CNT_RC (number of failed workers) and CNT_CODES.
run_counters() {
	local name=$1 hosts=$2 k=$3 m=$4 w=$5 i j pids=() codes=""
	for i in $hosts; do
		for ((j = 0; j < k; j++)); do
			counter_cmd "$i" "$M/$name.lock" "$M/$name.count" "$m" "$w" "$M/logs/$name"
			cluster_spawn "$i" "${CMD[@]}" 2>>"$CL_TMP/$name.err"
			pids+=("$CLUSTER_PID")
		done
	done
	CNT_RC=0
	for i in "${pids[@]}"; do
		wait "$i"
		j=$?
		codes+="$j "
		[ $j -eq 0 ] || CNT_RC=$((CNT_RC + 1))
	done
	CNT_CODES=$codes
	if [ $CNT_RC -ne 0 ]; then
		echo "[$CL_NAME] workers on $name said:"
		sed 's/^/    /' "$CL_TMP/$name.err" | tail -n 8
	fi
}

# check_counter NAME EXPECTED [T0]: exact value, no overlap; sets FIRST_MS
# (first enter after T0, in ms).
check_counter() {
	local name=$1 want=$2 t0=${3:-} v res n bad first
	v=$(cl_counter_value "$name.count")
	res=$(cl_check_logs "$S/logs/$name")
	read -r _ n _ bad _ first <<<"$res"
	FIRST_MS=
	RECOVERY=
	if [ -n "$t0" ]; then
		RECOVERY="$(cl_ms "$t0" "$first") ms"
		# Workers that log "begin" (the Python peer, whose start-up takes
		# a while on a loaded machine) are timed from when they began.
		local begin
		begin=$(cat "$S/logs/$name".* 2>/dev/null | awk '$1 == "begin" { print $2 }' | sort -n | head -1)
		if [ -n "$begin" ] && [ "$begin" -gt "$t0" ]; then
			t0=$begin
		fi
		FIRST_MS=$(cl_ms "$t0" "$first")
		[ "$RECOVERY" = "$FIRST_MS ms" ] ||
			RECOVERY="$RECOVERY ($FIRST_MS ms after the Python contender began)"
	fi
	if [ "$v" = "$want" ] && [ "$n" = "$want" ] && [ "$bad" = 0 ]; then
		return 0
	fi
	cl_fail "$name: counter $v, $n complete holds, $bad overlaps (want $want, $want, 0)"
	return 1
}

# The marker that shows a holder is inside, as the machine sees it.
# The record, not just the file: O_EXCL creates the file before the holder
# writes its record, and a holder frozen in between never held the lock.
marker_present() {
	case $KIND in
	soft | lease) [ -s "$S/$1.lock" ] ;;
	soft-rw)
		if [ "${SRW_PROTOCOL:-rw1}" = legacy ]; then
			# Inside is P.write written and P.state dropped: freezing
			# a writer that still holds P.state wedges a Python peer,
			# which waits for P.state without a bound.
			[ -s "$S/$1.lock.write" ] && [ ! -e "$S/$1.lock.state" ]
		else # the newest generation names a writer
			local g
			g=$(ls "$S/$1.lock.rw/gen" 2>/dev/null | grep -E '^[0-9]{20}$' | tail -n 1)
			[ -n "$g" ] && grep -q '^writer=' "$S/$1.lock.rw/gen/$g"
		fi
		;;
	strict) compgen -G "$S/$1.lock.filelock/claims/held-*" >/dev/null ;;
	esac
}

# contend I NAME SECONDS: one contender on host I that must NOT get in
# within SECONDS.  Returns 0 when it timed out as required.
contend_blocked() {
	local out
	holder_cmd "$1" "$M/$2.lock" "$3"
	out=$(cluster_exec "$1" "${CMD[@]}" </dev/null 2>>"$CL_TMP/contend.err")
	case $out in
	"error 110"*) return 0 ;;
	*)
		CONTEND_OUT=$out
		return 1
		;;
	esac
}

RESULTS=()
result() { RESULTS+=("$(printf '%-13s %-7s %s' "$1" "$2" "$3")"); }

# --- scenarios --------------------------------------------------------------

sc_counter() {
	local t0 t1
	t0=$(cl_mono)
	run_counters cnt "1 2 3" "$K" "$ITERS" 300
	t1=$(cl_mono)
	if [ $CNT_RC -ne 0 ]; then
		cl_fail "counter: workers failed (exit codes $CNT_CODES)"
		result counter FAIL "workers failed"
	elif check_counter cnt $((3 * K * ITERS)); then
		cl_ok "counter: 3 hosts x $K workers x $ITERS = $((3 * K * ITERS)), no overlap ($(cl_ms "$t0" "$t1") ms)"
		result counter pass "$((3 * K * ITERS)) holds in $(cl_ms "$t0" "$t1") ms"
	else
		result counter FAIL "lost update or overlap"
	fi
}

sc_crash() {
	local victim=1 others="2 3" t0 name=crash m=5 claim ok=1
	[ "$PEERS" = py ] && victim=2 && others="1 3"
	holder_cmd $victim "$M/$name.lock"
	holder_start crash $victim "${CMD[@]}"
	if ! holder_expect crash '^ready' 10; then
		cl_fail "crash: holder on host $victim: $H_LINE"
		result crash FAIL "holder did not start"
		holder_close crash
		return
	fi
	if [ -n "$STALE" ]; then
		# Workers wait on the other hosts, then the holder's host dies.
		mkfifo "$CL_TMP/crash.go"
		(
			read -r _ <"$CL_TMP/crash.go"
			run_counters "$name" "$others" 1 $m 300
			echo "$CNT_RC $CNT_CODES" >"$CL_TMP/crash.rc"
		) &
		local bg=$!
		echo go >"$CL_TMP/crash.go"
		t0=$(cl_mono)
		cluster_crash $victim
		holder_close crash
		wait $bg
		read -r rc codes <"$CL_TMP/crash.rc"
		if [ "$rc" -ne 0 ]; then
			cl_fail "crash: workers failed after the crash (exit codes $codes)"
			result crash FAIL "workers failed"
		elif check_counter $name $((2 * m)) "$t0"; then
			if [ "$FIRST_MS" -le $((STALE * 1000 + POLL_MS + SLACK_MS)) ]; then
				cl_ok "crash: host $victim died holding it; others got in after $RECOVERY (stale ${STALE}s + poll), counter exact"
				result crash pass "recovered in $RECOVERY"
			else
				cl_fail "crash: recovery took $FIRST_MS ms, more than stale + poll + ${SLACK_MS} ms"
				result crash FAIL "recovery $FIRST_MS ms"
			fi
		else
			result crash FAIL "lost update or overlap"
		fi
		cluster_boot $victim
		return
	fi
	# soft and strict: nobody on another host may take it over.
	t0=$(cl_mono)
	cluster_crash $victim
	holder_close crash
	contend_blocked ${others%% *} $name 1.5 || {
		cl_fail "crash: host ${others%% *} took a lock whose holder's host died: $CONTEND_OUT"
		ok=0
	}
	if [ $KIND = soft ] && [ "$PEERS" = py ]; then
		# The holder is Python 3.32.3, whose host field is the bare
		# name: its own host, rebooted, proves it dead and breaks it.
		cluster_boot $victim
		run_counters $name "1 2 3" 1 $m 300
		[ $CNT_RC -eq 0 ] || {
			cl_fail "crash: workers failed after reboot (exit codes $CNT_CODES)"
			ok=0
		}
		check_counter $name $((3 * m)) "$t0" || ok=0
		if [ $ok = 1 ]; then
			cl_ok "crash: no other host took it over; rebooted host $victim recovered it itself, counter exact"
			result crash pass "other hosts: never; own host after reboot"
		else
			result crash FAIL "see log"
		fi
		return
	fi
	if [ $KIND = soft ]; then
		# Only the holder's own host and PID namespace could prove the
		# holder dead.  A simulated host reboots into a new PID namespace,
		# as a restarted container does, and the 4.x host field
		# ("name?pidns-<inode>") tells the two apart: the rebooted host
		# may not break it either.  An operator's forced break frees it.
		cluster_boot $victim
		# The kernel hands a dead namespace's inode number out again: a
		# new namespace that got it back has the dead one's identity, and
		# its pid check proves the holder dead (Python 4 does the same).
		local ns reused=0
		ns=$(cluster_exec $victim stat -L -c %i /proc/self/ns/pid)
		if [ -n "$ns" ] && grep -q "?pidns-$(printf '%x' "$ns")\$" "$S/$name.lock" 2>/dev/null; then
			cl_log "crash: the rebooted host's PID namespace has the dead one's inode number again; it may break the marker"
			reused=1
		fi
		if [ $reused = 0 ]; then
			contend_blocked $victim $name 1.5 || {
				cl_fail "crash: the rebooted host (a new PID namespace) broke the old namespace's marker: $CONTEND_OUT"
				ok=0
			}
			if cluster_exec 3 "$FL_CL_TOOL" break soft "$M/$name.lock" >/dev/null 2>&1; then
				cl_fail "crash: fl_break without FL_FORCE removed the marker of another host"
				ok=0
			fi
			cluster_exec 3 "$FL_CL_TOOL" break soft "$M/$name.lock" force >/dev/null || {
				cl_fail "crash: fl_break(FL_FORCE) of the dead holder's marker failed"
				ok=0
			}
		fi
		run_counters $name "1 2 3" 1 $m 300
		[ $CNT_RC -eq 0 ] || {
			cl_fail "crash: workers failed after the break (exit codes $CNT_CODES)"
			ok=0
		}
		check_counter $name $((3 * m)) || ok=0
		if [ $ok = 1 ]; then
			if [ $reused = 1 ]; then
				cl_ok "crash: no other host took it over; host $victim, rebooted into a namespace with the dead one's identity, freed it; counter exact"
				result crash pass "other hosts: never; own identity after reboot"
			else
				cl_ok "crash: no host took it over, not even host $victim rebooted into a new PID namespace; freed by a forced break, counter exact"
				result crash pass "never automatically; forced break"
			fi
		else
			result crash FAIL "see log"
		fi
		return
	fi
	# strict: only an operator's fl_break of each named claim frees it.  A
	# claim from another host is never provably dead, so without FL_FORCE
	# the break is refused; the operator who knows the host died forces it.
	local n=0
	for claim in "$S/$name.lock.filelock/claims/"*.claim; do
		[ -e "$claim" ] || continue
		n=$((n + 1))
		if cluster_exec 3 "$FL_CL_TOOL" break strict "$M/$name.lock" "$(basename "$claim")" \
			>/dev/null 2>&1; then
			cl_fail "crash: fl_break without FL_FORCE removed a claim of another host"
			ok=0
		fi
		cluster_exec 3 "$FL_CL_TOOL" break strict "$M/$name.lock" "$(basename "$claim")" force \
			>/dev/null || {
			cl_fail "crash: fl_break(FL_FORCE) of claim $(basename "$claim") failed"
			ok=0
		}
	done
	[ $n -gt 0 ] || {
		cl_fail "crash: the dead holder left no claim to break"
		ok=0
	}
	run_counters $name "$others" 1 $m 300
	[ $CNT_RC -eq 0 ] || {
		cl_fail "crash: workers failed after the break (exit codes $CNT_CODES)"
		ok=0
	}
	check_counter $name $((2 * m)) || ok=0
	cluster_boot $victim
	if [ $ok = 1 ]; then
		cl_ok "crash: nobody took over the dead holder's $n claims; fl_break refused them without FL_FORCE and removed them with it; counter exact"
		result crash pass "never until fl_break(claim, FL_FORCE)"
	else
		result crash FAIL "see log"
	fi
}

sc_freeze_short() {
	local name=fzs h=1 c=2
	# With Python peers the Python holder is the one paused (Python
	# contenders judge by wall-clock age, which includes their start-up).
	[ "$PEERS" = py ] && h=2 && c=1
	holder_cmd $h "$M/$name.lock"
	holder_start fzs $h "${CMD[@]}"
	if ! holder_expect fzs '^ready' 10; then
		cl_fail "freeze-short: holder: $H_LINE"
		result freeze-short FAIL "holder did not start"
		holder_close fzs
		return
	fi
	cluster_freeze $h
	# The contender's own timeout is the length of the pause.
	contend_blocked $c $name 0.4
	local blocked=$?
	cluster_thaw $h
	holder_send fzs valid
	holder_expect fzs '^(valid|compromised)' 5
	if [ $blocked -eq 0 ] && [ "$H_LINE" = "valid 1" ]; then
		cl_ok "freeze-short: nobody entered during a pause shorter than stale; holder still valid"
		result freeze-short pass ""
	else
		cl_fail "freeze-short: contender ${CONTEND_OUT:-blocked}, holder says '$H_LINE'"
		result freeze-short FAIL "$H_LINE"
	fi
	holder_close fzs
}

sc_freeze_long() {
	local name=fzl t0 n rc
	if [ -z "$STALE" ]; then
		holder_cmd 1 "$M/$name.lock"
		holder_start fzl 1 "${CMD[@]}"
		holder_expect fzl '^ready' 10 || cl_fail "freeze-long: holder: $H_LINE"
		cluster_freeze 1
		contend_blocked 2 $name 1.5
		local blocked=$?
		cluster_thaw 1
		holder_send fzl valid
		holder_expect fzl '^(valid|compromised)' 5
		if [ $blocked -eq 0 ] && [ "$H_LINE" = "valid 1" ]; then
			cl_ok "freeze-long: $KIND never expires a live holder; nobody entered in 1.5 s"
			result freeze-long pass "never expires (by contract)"
		else
			cl_fail "freeze-long: contender ${CONTEND_OUT:-blocked}, holder says '$H_LINE'"
			result freeze-long FAIL "$H_LINE"
		fi
		holder_close fzl
		return
	fi
	# Host 1 takes the lock and "works" for 0.3 s; it is frozen during the
	# work, host 2 gets in after stale, and host 1 is thawed only after host 2
	# is done.  Its work ended during the pause, so the first thing it does
	# is check fl_is_valid(): that must already say the lock is gone, although
	# the heartbeat thread, thawed at the same moment, may not have run yet.
	counter_cmd 1 "$M/$name.lock" "$M/$name.count" 1 300000 "$M/logs/$name"
	cluster_spawn 1 "${CMD[@]}" 2>"$CL_TMP/fzl.err"
	local p1=$CLUSTER_PID
	for ((n = 0; n < 500; n++)); do
		marker_present $name && break
		sleep 0.01
	done
	cluster_freeze 1
	t0=$(cl_mono)
	run_counters $name 2 1 1 0
	cluster_thaw 1
	wait $p1
	rc=$?
	if [ $CNT_RC -ne 0 ]; then
		cl_fail "freeze-long: the contender on host 2 failed (exit $CNT_CODES)"
		result freeze-long FAIL "contender failed"
		return
	fi
	if check_counter $name 1 "$t0" && [ $rc -eq 3 ]; then
		cl_ok "freeze-long: host 2 got in $RECOVERY after the freeze; thawed host 1 saw the loss before writing (exit 3)"
		result freeze-long pass "others in after $RECOVERY; holder exit 3"
	else
		cl_fail "freeze-long: thawed holder exit $rc (want 3: lock lost before the write), counter $(cl_counter_value $name.count); it said: $(tr '\n' ' ' <"$CL_TMP/fzl.err")"
		result freeze-long FAIL "thawed holder exit $rc"
	fi
}

sc_skew() {
	# Two rounds cover every pairing that matters: a holder at +300 s judged
	# by true-time and -300 s contenders, and a holder at -300 s judged by
	# true-time and +300 s ones (a marker that looks 10 minutes old).
	local h c1 c2 ok=1 name=skew rounds="2:0:+300:-300 3:0:+300:-300"
	# Python contenders evict by wall-clock age, so a skewed clock on either
	# side makes them evict live holders (Python's documented rule).  With
	# Python peers, the Python holder is the skewed one and C contenders on
	# true-time hosts must leave it alone.
	[ "$PEERS" = py ] && rounds="2:0:+300:0 2:0:-300:0"
	for r in $rounds; do
		IFS=: read -r h s1 s2 s3 <<<"$r"
		cluster_skew 1 $s1
		cluster_skew 2 $s2
		cluster_skew 3 $s3
		holder_cmd $h "$M/$name.lock"
		holder_start sk $h "${CMD[@]}"
		if ! holder_expect sk '^ready' 10; then
			cl_fail "skew: holder on host $h: $H_LINE"
			ok=0
			holder_close sk
			continue
		fi
		c1=$(((h % 3) + 1))
		c2=$((((h + 1) % 3) + 1))
		contend_blocked $c1 $name 1.2 &
		local p=$!
		contend_blocked $c2 $name 1.2 || {
			cl_fail "skew: host $c2 evicted the live holder on host $h: $CONTEND_OUT"
			ok=0
		}
		wait $p || {
			cl_fail "skew: host $c1 evicted the live holder on host $h"
			ok=0
		}
		holder_send sk valid
		holder_expect sk '^(valid|compromised)' 5
		[ "$H_LINE" = "valid 1" ] || {
			cl_fail "skew: holder on host $h says '$H_LINE'"
			ok=0
		}
		holder_close sk
	done
	if [ "$PEERS" != py ]; then
		run_counters skewcnt "1 2 3" 1 "$ITERS" 300
		[ $CNT_RC -eq 0 ] || {
			cl_fail "skew: counter workers failed (exit $CNT_CODES)"
			ok=0
		}
		check_counter skewcnt $((3 * ITERS)) || ok=0
	fi
	cluster_skew 1 0
	cluster_skew 2 0
	cluster_skew 3 0
	if [ $ok = 1 ] && [ "$PEERS" = py ]; then
		cl_ok "skew: C contenders left the live Python holder on a host at +300 s, then -300 s, alone"
		result skew pass "no eviction of a Python holder at +-300 s"
	elif [ $ok = 1 ]; then
		cl_ok "skew: hosts at +300 s and -300 s evicted no live holder; counter across all hosts exact"
		result skew pass "no eviction at +-300 s"
	else
		result skew FAIL "see log"
	fi
}

sc_hang() {
	local name=hang t0 ok=1 t1 detail
	# A hung host that holds nothing must not slow the others down.
	cluster_hangfs 3
	t0=$(cl_mono)
	run_counters hangfree "1 2" 1 "$ITERS" 300
	t1=$(cl_mono)
	cluster_unhangfs 3
	[ $CNT_RC -eq 0 ] || {
		cl_fail "hang: workers on healthy hosts failed (exit $CNT_CODES)"
		ok=0
	}
	check_counter hangfree $((2 * ITERS)) || ok=0
	detail="healthy hosts $(cl_ms "$t0" "$t1") ms for $((2 * ITERS)) holds"
	# The holder's host hangs.
	holder_cmd 1 "$M/$name.lock"
	holder_start hg 1 "${CMD[@]}"
	if ! holder_expect hg '^ready' 10; then
		cl_fail "hang: holder: $H_LINE"
		holder_close hg
		result hang FAIL "holder did not start"
		return
	fi
	cluster_hangfs 1
	t0=$(cl_mono)
	if [ -n "$STALE" ]; then
		run_counters $name 2 1 1 0
		cluster_unhangfs 1
		if [ $CNT_RC -ne 0 ]; then
			cl_fail "hang: host 2 did not get in while host 1's filesystem hung (exit $CNT_CODES)"
			ok=0
		elif check_counter $name 1 "$t0"; then
			detail="others in after $RECOVERY; $detail"
			[ "$FIRST_MS" -le $((STALE * 1000 + SLACK_MS)) ] || {
				cl_fail "hang: took $FIRST_MS ms"
				ok=0
			}
		else
			ok=0
		fi
		holder_send hg valid
		holder_expect hg '^(compromised|valid 0)' 5 || {
			cl_fail "hang: the holder on host 1 was not told it lost the lock: $H_LINE"
			ok=0
		}
	else
		contend_blocked 2 $name 1.5 || {
			cl_fail "hang: host 2 took a lock held by a hung host: $CONTEND_OUT"
			ok=0
		}
		cluster_unhangfs 1
		holder_send hg valid
		holder_expect hg '^(valid|compromised)' 5
		[ "$H_LINE" = "valid 1" ] || {
			cl_fail "hang: holder says '$H_LINE' after the hang"
			ok=0
		}
		detail="held through the hang (by contract); $detail"
	fi
	holder_close hg
	if [ $ok = 1 ]; then
		cl_ok "hang: $detail"
		result hang pass "$detail"
	else
		result hang FAIL "$detail"
	fi
}

# hang_server NAME SECONDS: the NFS server freezes for SECONDS while hosts
# 1-3 count.
hang_server() {
	local name=$1 secs=$2 n=0 t0 t1 rc codes c lost=0 v res nint bad
	if [ "$CLUSTER_FSKIND" != nfs ]; then
		result "$name" n/a "needs the NFS tier (CLUSTER_FS=nfs)"
		return
	fi
	# 20 ms holds, so that the hang is likely to catch a holder inside.
	(
		run_counters $name "1 2 3" 1 "$ITERS" 20000
		echo "$CNT_RC $CNT_CODES" >"$CL_TMP/hangsrv.rc"
	) &
	local bg=$!
	while [ "$(cl_counter_value $name.count)" -lt 2 ] && [ $n -lt 1000 ]; do
		sleep 0.01
		n=$((n + 1))
	done
	cluster_hangsrv
	t0=$(cl_mono)
	# The fault's length (a server that stalls or reboots) is the point of
	# the scenario: nothing to synchronise on.
	sleep "$secs"
	cluster_unhangsrv
	t1=$(cl_mono)
	wait $bg
	read -r rc codes <"$CL_TMP/hangsrv.rc"
	for c in $codes; do
		case $c in
		0) ;;
		3) lost=$((lost + 1)) ;;
		*)
			cl_fail "$name: a worker failed (exit codes $codes)"
			result "$name" FAIL "workers failed"
			return
			;;
		esac
	done
	v=$(cl_counter_value $name.count)
	res=$(cl_check_logs "$S/logs/$name")
	read -r _ nint _ bad _ <<<"$res"
	if [ "$v" = "$nint" ] && [ "$bad" = 0 ] && [ "$v" -ge 2 ]; then
		cl_ok "$name: server frozen $(cl_ms "$t0" "$t1") ms under 3 counting hosts: counter $v = complete holds, no overlap, $lost holder(s) saw the loss (exit 3)"
		result "$name" pass "server hung $(cl_ms "$t0" "$t1") ms; $v holds exact, $lost exit 3"
	else
		cl_fail "$name: counter $v, $nint complete holds, $bad overlaps"
		result "$name" FAIL "lost update or overlap"
	fi
}

# The NFS server stalls for less than stale (0.5 s), then for longer (1.5 s,
# a server reboot).  Every host is paused alike, the holder's heartbeat too.
sc_hangsrv_short() { hang_server hangsrv-short 0.5; }
sc_hangsrv() { hang_server hangsrv 1.5; }

# The C helpers' ESTALE re-opens so far (FL_ESTALE_LOG, summed).
estale_reopens() {
	awk '{ n += $1 } END { print n + 0 }' "$FL_ESTALE_LOG" 2>/dev/null || echo 0
}

run_suite() {
	local rc t0 t1
	if [ "$PEERS" = py ]; then
		if [ ! -d "${FL_PEER_DIR:-}/filelock" ]; then
			cluster_skip "the Python peer is not at FL_PEER_DIR='${FL_PEER_DIR:-}'"
		fi
		if ! PYTHONPATH=$FL_PEER_DIR "$FL_PYTHON3" -c 'import filelock' 2>/dev/null; then
			cluster_skip "$FL_PYTHON3 cannot import filelock from $FL_PEER_DIR"
		fi
	fi
	rc=0
	"$FL_CL_TOOL" probe "$KIND" "${TMPDIR:-/tmp}/fl-cluster-probe.lock" || rc=$?
	if [ $rc -eq 3 ]; then
		echo "SKIP: lock kind $KIND is not built into this library yet (fl_open: -ENOTSUP)"
		exit 77
	elif [ $rc -ne 0 ]; then
		echo "ERROR: cannot open a $KIND lock" >&2
		exit 99
	fi
	CL_NEED=faketime
	cl_start 3
	export FL_ESTALE_LOG=$CL_TMP/estale.log
	mkdir -p "$S/logs"
	t0=$(cl_mono)
	local sc all="counter crash freeze_short freeze_long skew hang" e0 e1 l0 l1
	if [ "$CLUSTER_FSKIND" = nfs ]; then
		all="$all hangsrv_short hangsrv"
	fi
	for sc in ${CL_SCENARIOS:-$all}; do
		t1=$(cl_mono)
		e0=$(cluster_estale)
		l0=$(estale_reopens)
		local before=$CL_FAILS known=0
		case " $CL_KNOWN_BUGS " in *" $sc:$KIND "*) known=1 ;; esac
		"sc_$sc"
		if [ $known = 1 ] && [ "$CL_FAILS" -gt "$before" ]; then
			echo "[$CL_NAME] KNOWN BUG (not counted; listed in CL_KNOWN_BUGS): $sc fails for $KIND"
			CL_FAILS=$before
			RESULTS[-1]=${RESULTS[-1]/FAIL   /KNOWNBUG}
		elif [ $known = 1 ]; then
			echo "[$CL_NAME] note: $sc:$KIND is listed as a known bug but passed this time"
		fi
		echo "[$CL_NAME] ($sc took $(cl_ms "$t1" "$(cl_mono)") ms)"
		if [ "$CLUSTER_FSKIND" = nfs ]; then
			e1=$(cluster_estale)
			read -r _ a0 _ b0 _ c0 <<<"$e0"
			read -r _ a1 _ b1 _ c1 <<<"$e1"
			l1=$(estale_reopens)
			echo "[$CL_NAME] ($sc: ESTALE met $((a1 - a0)), retried by name in the client $((b1 - b0)), returned to callers $((c1 - c0)); records the C library opened again: $((l1 - l0)))"
			RESULTS[-1]="${RESULTS[-1]}; ESTALE $((a1 - a0))/$((c1 - c0))/$((l1 - l0))"
		fi
	done
	t1=$(cl_mono)
	echo "[$CL_NAME] results ($(cl_ms "$t0" "$t1") ms):"
	printf '  %s\n' "${RESULTS[@]}"
	cl_finish
}
