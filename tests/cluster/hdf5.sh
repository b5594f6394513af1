#!/bin/bash
# SPDX-License-Identifier: MIT
# hdf5.sh -- Debian's HDF5 tools and h5py on three simulated hosts under the
# preload shim with a soft-rw rule.  HDF5 1.10 takes flock(LOCK_EX|LOCK_NB)
# (writers) or flock(LOCK_SH|LOCK_NB) (readers) once per open and fails the
# open at once when the lock is busy; it never waits.
#   writer   an h5py writer on host 1 refuses h5dump on host 2 and an h5py
#            read on host 3;
#   readers  h5py readers on hosts 1 and 2 share, and h5dump on host 3 reads
#            alongside them; a writer on host 3 is refused;
#   crash    host 2 dies while an h5py writer holds the file; host 1's reads,
#            each a fresh process, succeed within stale_threshold + 2 s;
#   counter  three hosts run N read-modify-write cycles each (a new open per
#            cycle, retried while refused): the total is exactly 3N and no
#            two writers overlapped.
# CL_ONETRY_BASELINE=1 reports the recovery time without judging it (to
# measure a build from before the ledger with the same script).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
CL_NAME=hdf5
. "$(dirname "$0")/lib.sh"
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
H5DUMP=${FL_H5DUMP:-/usr/bin/h5dump}
W=$CL_HERE/h5-worker.py
N=${CL_H5_N:-10}
STALE_MS=1200
case ${FL_SANITIZERS-} in
*address* | *thread*)
	echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"
	exit 77
	;;
esac
[ -x "$H5DUMP" ] || cluster_skip "needs $H5DUMP (Debian package hdf5-tools)"
"$FL_PYTHON3" -c 'import h5py' 2>/dev/null || cluster_skip "needs h5py (Debian package python3-h5py)"
if [ ! -x "$FLP" ]; then
	echo "[$CL_NAME] ERROR: $FLP is not built" >&2
	exit 99
fi
CL_WATCHDOG_SECONDS=${CL_WATCHDOG_SECONDS:-100}
cl_start 3
POL=$CL_TMP/preload.conf
echo "$M/*.h5 soft-rw stale_threshold=1.2 heartbeat_interval=0.3 poll_interval=0.02" >"$POL"
PY=("$FLP" --config "$POL" "$FL_PYTHON3" "$W")

h5_create() {
	"$FL_PYTHON3" -c 'import sys, h5py, numpy
with h5py.File(sys.argv[1], "w") as f:
    f["c"] = numpy.array([0], dtype="i8")' "$S/$1"
}

# on I CMD...: CMD on host I under the shim; stdout only.
on() {
	local i=$1
	shift
	cluster_exec "$i" "$FLP" --config "$POL" "$@" 2>>"$CL_TMP/err.$i"
}

h5_create d.h5

# writer
holder_start w 1 "${PY[@]}" hold r+ "$M/d.h5"
if holder_expect w '^ready' 20; then
	on 2 "$H5DUMP" "$M/d.h5" >/dev/null
	rc2=$?
	out3=$(on 3 "$FL_PYTHON3" "$W" read "$M/d.h5")
	rc3=$?
	if [ $rc2 -ne 0 ] && [ $rc3 -eq 1 ] && [ "$out3" = locked ]; then
		cl_ok "writer: host 1's writer refuses h5dump on host 2 (exit $rc2) and an h5py read on host 3"
	else
		cl_fail "writer: h5dump exit $rc2, h5py read '$out3' exit $rc3 (want refusals)"
	fi
else
	cl_fail "writer: holder on host 1: $H_LINE"
fi
holder_close w

# readers
holder_start r1 1 "${PY[@]}" hold r "$M/d.h5"
holder_expect r1 '^ready' 20 || cl_fail "readers: reader on host 1: $H_LINE"
holder_start r2 2 "${PY[@]}" hold r "$M/d.h5"
if holder_expect r2 '^ready' 20; then
	on 3 "$H5DUMP" "$M/d.h5" >/dev/null
	rc3=$?
	out3=$(on 3 "$FL_PYTHON3" -c 'import sys, h5py
try:
    h5py.File(sys.argv[1], "r+").close()
    print("opened")
except OSError as e:
    print("locked" if "lock" in str(e) else e)' "$M/d.h5")
	if [ $rc3 -eq 0 ] && [ "$out3" = locked ]; then
		cl_ok "readers: readers on hosts 1 and 2 share, h5dump on host 3 reads with them, a writer on host 3 is refused"
	else
		cl_fail "readers: h5dump on host 3 exit $rc3, writer on host 3 '$out3'"
	fi
else
	cl_fail "readers: a second reader on host 2 was refused: $H_LINE"
fi
holder_close r1
holder_close r2

# crash
holder_start c 2 "${PY[@]}" hold r+ "$M/d.h5"
if holder_expect c '^ready' 20; then
	t0=$(cl_mono)
	cluster_crash 2
	holder_close c
	tries=0
	ok_ms=
	while [ $(($(cl_mono) - t0)) -lt 20000000000 ]; do
		tries=$((tries + 1))
		if [ "$(on 1 "$FL_PYTHON3" "$W" read "$M/d.h5")" = 0 ]; then
			ok_ms=$(cl_ms "$t0" "$(cl_mono)")
			break
		fi
	done
	if [ -z "$ok_ms" ]; then
		cl_fail "crash: no fresh h5py read on host 1 got in within 20 s ($tries tries)"
	elif [ "$ok_ms" -le $((STALE_MS + 2000)) ] || [ "${CL_ONETRY_BASELINE:-0}" = 1 ]; then
		cl_ok "crash: host 2 died writing; a fresh h5py read on host 1 opened it after $ok_ms ms ($tries tries; stale ${STALE_MS} ms)"
	else
		cl_fail "crash: recovery took $ok_ms ms, more than stale_threshold + 2 s"
	fi
	cluster_boot 2
else
	cl_fail "crash: writer on host 2: $H_LINE"
	holder_close c
fi

# counter
h5_create cnt.h5
mkdir -p "$S/logs"
pids=()
for i in 1 2 3; do
	(on $i "$FL_PYTHON3" "$W" rmw "$M/cnt.h5" "$N" "$M/logs/h5.$i" >"$CL_TMP/rmw.$i") &
	pids+=($!)
done
codes=
for p in "${pids[@]}"; do
	wait "$p"
	codes+="$? "
done
v=$("$FL_PYTHON3" -c 'import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    print(int(f["c"][0]))' "$S/cnt.h5")
read -r _ n _ bad _ _ <<<"$(cl_check_logs "$S/logs/h5")"
if [ "$codes" = "0 0 0 " ] && [ "$v" = $((3 * N)) ] && [ "$n" = $((3 * N)) ] && [ "$bad" = 0 ]; then
	cl_ok "counter: 3 hosts x $N h5py read-modify-write cycles = $v, no overlap (tries: $(cat "$CL_TMP"/rmw.* | awk '{printf "%s ", $2}'))"
else
	cl_fail "counter: exit codes $codes, value $v, $n complete cycles, $bad overlaps (want $((3 * N)), $((3 * N)), 0): $(tail -3 "$CL_TMP"/err.* 2>/dev/null)"
fi
cl_finish
