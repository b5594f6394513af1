#!/bin/bash
# SPDX-License-Identifier: MIT
#
# harness.sh -- tests of the cluster simulator itself.  The scenario suites
# are only as good as the world they run in, so prove that world is the one
# NFS gives us:
#   1. O_CREAT|O_EXCL, link() and rename() stay atomic across hosts;
#   2. attributes are cached per host (two hosts see different mtimes of one
#      file at the same moment);
#   3. kernel flock and fcntl locks do NOT cross hosts (two hosts both get a
#      non-blocking exclusive lock on one file), while they still work within
#      a host;
# and that the controls do what they say: separate hosts (hostname, PID
# space, boot_id), crash kills every process (FUSE daemon included) and boot
# gives a new boot_id, freeze pauses a host's processes, hangfs blocks only
# that host's filesystem calls, skew shifts only that host's wall clock, and
# down leaves no mount, cgroup or process behind.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
. "$(dirname "$0")/lib.sh"

CL_NEED=faketime
# Long attribute timeouts make per-host caching observable without sleeps.
cl_start 3 attr_timeout=30,entry_timeout=30
ROUNDS=${CL_ROUNDS:-400}

# --- separate hosts --------------------------------------------------------
h1=$(cluster_exec 1 hostname)
h2=$(cluster_exec 2 hostname)
b1=$(cluster_exec 1 cat /proc/sys/kernel/random/boot_id)
b2=$(cluster_exec 2 cat /proc/sys/kernel/random/boot_id)
pid1=$(cluster_exec 1 sh -c 'echo $$')
if [ "$h1" = node1 ] && [ "$h2" = node2 ] && [ "$b1" != "$b2" ] &&
	[ "$b1" != "$(cat /proc/sys/kernel/random/boot_id)" ] && [ "$pid1" -lt 100 ]; then
	cl_ok "hosts have their own hostname ($h1, $h2), boot_id and PID space (pid $pid1)"
else
	cl_fail "hosts are not separate: $h1/$h2 boot $b1/$b2 pid $pid1"
fi

# --- 1. O_EXCL and link races: every name has exactly one winner ------------
race() {
	local how=$1 d=$CL_TMP/$1 i
	mkdir -p "$S/$how"
	mkfifo "$d.go"
	exec {go}<>"$d.go"
	for i in 1 2 3; do
		(cluster_exec "$i" "$FL_CL_TOOL" "$how" "$M/$how" "$ROUNDS") <"$d.go" >"$d.$i" &
		pids[$i]=$!
	done
	printf 'xxx' >&$go # release all three at once
	for i in 1 2 3; do
		wait "${pids[$i]}" || cl_fail "$how racer on host $i failed"
	done
	exec {go}>&-
	wins=$(cat "$d".[123] | wc -l)
	dups=$(cat "$d".[123] | sort | uniq -d | wc -l)
	spread=$(for i in 1 2 3; do wc -l <"$d.$i"; done | tr '\n' ' ')
	if [ "$wins" -eq "$ROUNDS" ] && [ "$dups" -eq 0 ]; then
		cl_ok "$how: $ROUNDS names raced by 3 hosts, exactly one winner each (wins per host: $spread)"
	else
		cl_fail "$how: $wins wins for $ROUNDS names, $dups names won twice"
	fi
}
race excl
race link

# --- 1b. rename over a file another host keeps opening: never ENOENT, never torn
mkdir -p "$S/ren"
printf '0123456789abcdef0123456789abcdef\n' >"$S/ren/target"
mkfifo "$CL_TMP/ren.go"
exec {go}<>"$CL_TMP/ren.go"
(cluster_exec 1 "$FL_CL_TOOL" renamer "$M/ren" "$ROUNDS") <"$CL_TMP/ren.go" &
rp=$!
(cluster_exec 2 "$FL_CL_TOOL" reader "$M/ren" $((ROUNDS * 4))) <"$CL_TMP/ren.go" >"$CL_TMP/ren.out" &
rd=$!
printf 'xx' >&$go
wait $rp || cl_fail "renamer failed"
wait $rd || cl_fail "reader failed"
exec {go}>&-
if [ "$(cat "$CL_TMP/ren.out")" = "enoent 0 torn 0" ]; then
	cl_ok "rename: $((ROUNDS * 4)) opens on host 2 during $ROUNDS renames on host 1, none ENOENT or torn"
else
	cl_fail "rename is not atomic across hosts: $(cat "$CL_TMP/ren.out")"
fi

# --- 2. attribute caching per host ------------------------------------------
: >"$S/attr"
touch -d @1000000000 "$S/attr"
before=$(cluster_exec 1 stat -c %Y "$M/attr") # host 1 caches the old mtime
cluster_exec 2 touch -d @2000000000 "$M/attr"
now1=$(cluster_exec 1 stat -c %Y "$M/attr")
now2=$(cluster_exec 2 stat -c %Y "$M/attr")
if [ "$before" = 1000000000 ] && [ "$now1" = 1000000000 ] && [ "$now2" = 2000000000 ] &&
	[ "$(stat -c %Y "$S/attr")" = 2000000000 ]; then
	cl_ok "attributes are cached per host: host 1 still sees mtime $now1, host 2 sees $now2"
else
	cl_fail "attribute caching: host1 before $before after $now1, host2 $now2"
fi

# --- 3. kernel locks do not cross hosts ---------------------------------------
for how in flock fcntl; do
	holder_start k$how 1 "$FL_CL_TOOL" hold "$how" "$M/klock.$how"
	if ! holder_expect k$how '^locked$' 10; then
		cl_fail "$how holder on host 1: $H_LINE"
		continue
	fi
	cluster_exec 1 "$FL_CL_TOOL" try "$how" "$M/klock.$how"
	same=$?
	cluster_exec 2 "$FL_CL_TOOL" try "$how" "$M/klock.$how"
	other=$?
	holder_close k$how
	if [ $same -eq 1 ] && [ $other -eq 0 ]; then
		cl_ok "$how: a second process on host 1 is refused, host 2 gets the same lock (no cross-host locking)"
	else
		cl_fail "$how: same-host try rc $same (want 1), other-host try rc $other (want 0)"
	fi
done
# The same with util-linux flock(1), the tool scripts use.
if command -v flock >/dev/null; then
	holder_start kf 1 flock -n "$M/klock.cli" -c 'echo locked; read x'
	if holder_expect kf '^locked$' 10; then
		cluster_exec 3 flock -n "$M/klock.cli" true && cl_ok "flock(1): hosts 1 and 3 both hold it" ||
			cl_fail "flock(1) crossed hosts"
	else
		cl_fail "flock(1) on host 1: $H_LINE"
	fi
	holder_close kf
fi

# --- negative control: the overlap checker catches kernel flock across hosts --
mkdir -p "$S/logs"
pids=()
for i in 1 2 3; do
	cluster_spawn "$i" "$FL_COUNTER" -t unix -n 20 -W 2000 -L "$M/logs/neg" -o timeout=30 \
		"$M/neg.lock" "$M/neg.count"
	pids+=("$CLUSTER_PID")
done
wait "${pids[@]}"
read -r _ n _ bad _ <<<"$(cl_check_logs "$S/logs/neg")"
v=$(cl_counter_value neg.count)
if [ "$n" = 60 ] && [ "$bad" -gt 0 ]; then
	cl_ok "checker: with kernel flock across hosts it finds $bad overlaps (counter $v of 60)"
else
	cl_fail "checker: flock across hosts gave $n holds, $bad overlaps, counter $v (want overlaps)"
fi

# --- controls ---------------------------------------------------------------
# freeze: a frozen host's holder cannot answer; after thaw it does.
holder_start fz 2 "$FL_HOLDER" -t unix "$M/fz.lock"
holder_expect fz '^ready' 10 || cl_fail "fl-holder on host 2: $H_LINE"
cluster_freeze 2
holder_send fz counter
if holder_expect fz '^counter' 0.5; then
	cl_fail "freeze: a frozen process answered"
fi
cluster_exec 2 true 2>/dev/null
rc=$?
cluster_thaw 2
if holder_expect fz '^counter 1$' 5 && [ $rc -eq 75 ]; then
	cl_ok "freeze pauses host 2's processes (exec refused with 75), thaw resumes them"
else
	cl_fail "freeze/thaw: rc $rc, line $H_LINE"
fi
holder_close fz

# hangfs: uncached calls on host 3 block, host 1 is unaffected.
cluster_hangfs 3
cluster_exec 3 timeout -s KILL 1 stat "$M/never-seen-before" >/dev/null 2>&1
hung=$?
cluster_exec 1 stat "$M/attr" >/dev/null
free=$?
cluster_unhangfs 3
cluster_exec 3 stat "$M/attr" >/dev/null
after=$?
if [ $hung -eq 137 ] && [ $free -eq 0 ] && [ $after -eq 0 ]; then
	cl_ok "hangfs blocks host 3's filesystem calls only; unhangfs resumes them"
else
	cl_fail "hangfs: host3 rc $hung (want 137), host1 rc $free, after unhang rc $after"
fi

# skew: only host 2's wall clock moves, monotonic time does not.
cluster_skew 2 +300
t2=$(cluster_exec 2 date +%s)
t1=$(cluster_exec 1 date +%s)
m2=$(cluster_exec 2 "$FL_CL_TOOL" mono)
m0=$(cl_mono)
# A touch without an explicit time is stamped by the "server" (true time),
# as NFS does, not with host 2's shifted clock.
cluster_exec 2 touch "$M/skewtouch"
tt=$(stat -c %Y "$S/skewtouch")
cluster_skew 2 0
d=$((t2 - t1))
dt=$((tt - $(date +%s)))
if [ $d -ge 290 ] && [ $d -le 310 ] && [ $((m0 - m2)) -ge 0 ] && [ $((m0 - m2)) -lt 5000000000 ] &&
	[ $dt -ge -5 ] && [ $dt -le 5 ]; then
	cl_ok "skew +300: host 2 is ${d}s ahead of host 1, monotonic clocks agree, its touch stamps the true time"
else
	cl_fail "skew: wall difference $d, monotonic difference $((m0 - m2)) ns, touch stamped ${dt}s off"
fi

# crash + boot: every process of host 1 dies (its bindfs too), the host comes
# back with a new boot_id and a working mount.
holder_start cr 1 "$FL_CL_TOOL" hold flock "$M/crash.lock"
holder_expect cr '^locked$' 10 || cl_fail "crash holder: $H_LINE"
cg=$CLUSTER_CG/node1
cluster_crash 1
left=$(cat "$cg/app/cgroup.procs" "$cg/fs/cgroup.procs" | wc -l)
holder_close cr
cluster_boot 1
b1new=$(cluster_exec 1 cat /proc/sys/kernel/random/boot_id)
if [ "$left" -eq 0 ] && [ "$b1new" != "$b1" ] && cluster_exec 1 stat "$M/attr" >/dev/null &&
	[ "$(cluster_exec 1 pgrep -c bindfs)" = 1 ]; then
	cl_ok "crash killed every process of host 1; boot gave boot_id ${b1new:0:8}... and a fresh mount"
else
	cl_fail "crash/boot: $left processes left, boot_id $b1 -> $b1new"
fi

# down: nothing left behind.
dir=$CLUSTER_DIR
cgdir=$CLUSTER_CG
cluster_down
cluster_down # idempotent
if [ ! -e "$dir" ] && [ ! -e "$cgdir" ] && ! grep -q "$dir" /proc/self/mounts; then
	cl_ok "down removed the state dir, the cgroups and every mount (and may run twice)"
else
	cl_fail "down left something behind in $dir or $cgdir"
fi
cl_finish
