# SPDX-License-Identifier: MIT
# dirs.sh -- root against an unprivileged attacker (nobody, through setpriv)
# in shared lock directories.  Each attack is reproduced and must be
# refused with nothing lost (the victim's bytes unchanged, directories
# still there) and without hanging:
#  1. a lock directory made world-writable by nobody: every kind refuses
#     it as root (-ENOLCK, one message naming it), and nothing is created;
#  2. a symlinked parent planted by nobody, pointing at a root directory
#     that holds root's own one-hour-old non-marker file at the lock name:
#     refused; and reached directly, the file is not a marker: refused;
#  3. the shim as root (LD_PRELOAD): FIFOs, regular files and symlinks
#     planted by nobody at every temporary file name nobody can know (the
#     old fixed names, names of the random form) in a sticky ranges
#     directory: every F_SETLK succeeds at once, nothing planted is
#     touched, root's own leftovers are swept; a write failing anyway (a
#     file size limit) loses the locks at once; a ranges directory made
#     0777 by nobody: ENOLCK at once;
#  4. an owner file of 40,000 ranges, and one over the 4 MiB cap, planted
#     by nobody: F_SETLK answers in well under a second each (it took 5.9 s);
#  5. a data file and a directory at the lock path of each marker kind,
#     through the CLI (lock and break --force): refused, bytes unchanged.
# Every command is bounded by timeout; a watchdog kills the whole process
# group.
. "$FL_TOP_SRCDIR/tests/lib.sh"
set -u
: "${FL_TOP_BUILDDIR:?run through make check}"

[ "$(id -u)" = 0 ] || fl_skip "dirs.sh needs root: the victim is root, the attacker nobody"
command -v setpriv >/dev/null || fl_skip "no setpriv (util-linux)"
case ${FL_SANITIZERS-} in
*address*|*thread*) fl_skip "a sanitizer runtime cannot be preloaded into foreign programs" ;;
esac
# A process group of our own, so that the watchdog can end all of it.
if [ -z "${FL_DIRS_PGRP-}" ]; then
	FL_DIRS_PGRP=1 exec setsid -w bash "$0" "$@"
fi

F=$FL_TOP_BUILDDIR/cli/filelock
SO=$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so
P=$FL_TOP_BUILDDIR/tests/preload/flp-range-probe
for x in "$F" "$SO" "$P"; do [ -e "$x" ] || { echo "not built: $x"; exit 99; }; done

T=$(mktemp -d) || exit 99
chmod 755 "$T"
( sleep 240; echo "FAIL: watchdog: dirs.sh hung"; kill -KILL -- -$$ ) &
WD=$!
cleanup() { kill "$WD" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 99' INT TERM

fail() { echo "FAIL: $*"; exit 1; }
asnobody() { setpriv --reuid nobody --regid nogroup --clear-groups "$@"; }
sum() { cksum <"$1"; }

PUB=$T/pub # a /tmp-like directory: sticky, world-writable
mkdir -m 1777 "$PUB" || exit 99
chmod 1777 "$PUB"
head -c 4096 /dev/urandom >"$T/precious"

# ---- 1. a lock directory nobody made world-writable -------------------------
asnobody mkdir -m 0777 "$PUB/nob" || exit 99
asnobody chmod 0777 "$PUB/nob"
for k in file unix soft strict lease soft-rw; do
	if timeout 30 "$F" -t "$k" -w 1 "$PUB/nob/x.lock" true 2>"$T/err"; then
		fail "$k: root locked in a directory nobody controls"
	fi
	grep -q "$PUB/nob: another user controls this directory (owner uid 65534, mode 0777)" \
		"$T/err" || { cat "$T/err"; fail "$k: no message naming the directory"; }
	[ "$(wc -l <"$T/err")" = 1 ] || { cat "$T/err"; fail "$k: more than one line"; }
	if timeout 30 "$F" break -t "$k" --force "$PUB/nob/x.lock" 2>"$T/err"; then
		fail "$k: root broke in a directory nobody controls"
	fi
done
[ -z "$(ls -A "$PUB/nob")" ] || fail "something was created in nobody's directory: $(ls -A "$PUB/nob")"
# Below it too, and in a directory owned by nobody even if not writable.
timeout 30 "$F" -t soft "$PUB/nob/deeper/x.lock" true 2>/dev/null && fail "below nobody's directory"
[ ! -e "$PUB/nob/deeper" ] || fail "root created a directory below nobody's"
echo "ok: every kind refuses, as root, a lock directory nobody controls; nothing created"

# ---- 2. a symlinked parent ----------------------------------------------------
mkdir -m 700 "$T/rootdir" || exit 99
printf 'root data, not a lock\n' >"$T/rootdir/x.lock"
touch -d '1 hour ago' "$T/rootdir/x.lock"
before=$(sum "$T/rootdir/x.lock")
asnobody mkdir "$PUB/nob2" || exit 99
asnobody ln -s "$T/rootdir" "$PUB/nob2/link" || exit 99
for k in soft lease; do
	timeout 30 "$F" -t "$k" -w 3 "$PUB/nob2/link/x.lock" true 2>"$T/err" &&
		fail "$k: root followed nobody's symlink"
	grep -q "passes through a symbolic link owned by uid 65534" "$T/err" ||
		{ cat "$T/err"; fail "$k: no message naming the symlink"; }
	timeout 30 "$F" break -t "$k" --force "$PUB/nob2/link/x.lock" 2>/dev/null &&
		fail "$k: break followed nobody's symlink"
	# The same file reached without the symlink is not a marker either.
	timeout 30 "$F" -t "$k" -w 3 "$T/rootdir/x.lock" true 2>"$T/err" &&
		fail "$k: root took its own non-marker file as a stale marker"
	grep -q "not a $k lock marker" "$T/err" || { cat "$T/err"; fail "$k: message"; }
	[ "$(sum "$T/rootdir/x.lock")" = "$before" ] || fail "$k: root's file changed"
done
# An old symlink at the same place in the sticky /tmp-like directory.
asnobody ln -s "$T/rootdir" "$PUB/link3" || exit 99
timeout 30 "$F" -t soft "$PUB/link3/y.lock" true 2>/dev/null &&
	fail "root followed nobody's symlink in a sticky directory"
[ ! -e "$T/rootdir/y.lock" ] || fail "root created a marker through nobody's symlink"
echo "ok: nobody's symlinked parent is refused; root's non-marker file is left alone"

# ---- 3. the shim as root: temporaries and ranges directories ------------------
printf '%s\n' "$PUB/*.db soft poll_interval=0.01" >"$T/preload.conf"
export FILELOCK_PRELOAD_CONFIG="$T/preload.conf"
printf 'database bytes\n' >"$PUB/a.db"
dbsum=$(sum "$PUB/a.db")
mkdir -m 1777 "$PUB/a.db.lock.ranges" || exit 99
chmod 1777 "$PUB/a.db.lock.ranges"
# The probe's stderr is a pipe (a file size limit below must not stop its
# messages), read here: every line goes to probe.err.
mkfifo "$T/errfifo" || exit 99
coproc PROBE { LD_PRELOAD=$SO timeout 120 "$P" serve "$PUB/a.db" "$PUB/other" 2>"$T/errfifo"; }
exec {EF}<"$T/errfifo"
: >"$T/probe.err"
errs() { # what the probe has written so far (before its last answer)
	local l
	while read -t 0 -u "$EF"; do
		IFS= read -r -t 5 -u "$EF" l || break
		printf '%s\n' "$l" >>"$T/probe.err"
	done
}
ask() { # one command, one answer, bounded
	printf '%s\n' "$1" >&"${PROBE[1]}"
	IFS= read -r -t 30 ans <&"${PROBE[0]}" || fail "no answer to '$1' (hung?)"
}
IFS= read -r -t 30 ans <&"${PROBE[0]}" && [ "${ans%% *}" = pid ] || fail "probe did not start"
ask "open rw"; [ "$ans" = "slot 0" ] || fail "open: $ans"
ask "open rw"; [ "$ans" = "slot 1" ] || fail "open: $ans"
# The POSIX owner's file is written when the directory mutex goes back,
# not at each grow (the mutex lingers over a burst).  A conflict is one
# point where it goes back synchronously: an OFD lock of the same process
# (written at once) gives the POSIX grows a conflict to meet on demand.
ask "os 1 W 100 1"; [ "$ans" = 0 ] || fail "OFD F_SETLK: $ans"
handback() { # $1: the expected answer of the conflicting request
	ask "s 0 W 100 1"; [ "$ans" = "$1" ] || fail "F_SETLK against our own OFD lock: $ans"
}
ask "s 0 W 0 1"; [ "$ans" = 0 ] || fail "first F_SETLK: $ans"
handback busy
R=$PUB/a.db.lock.ranges
owner=$(cd "$R" && ls | grep '^p\.') || fail "no owner file"
ofd=$(cd "$R" && ls | grep '^o\.') || fail "no OFD owner file"
grep -qx "W 0 0" "$R/$owner" || fail "the owner file misses W 0 0"
# Every temporary name nobody can know or guess: the fixed names of both
# owners (as they were), and names of the random form, as if copied from a
# listing.  A FIFO, a symlink to root's file and nobody's regular files.
h1=0123456789abcdef0123456789abcdef h2=fedcba9876543210fedcba9876543210
h3=00112233445566778899aabbccddeeff
host=${owner#*@}
asnobody mkfifo -m 666 "$R/.tmp.$owner" || exit 99
asnobody ln -s "$T/precious" "$R/.tmp.$ofd" || exit 99
asnobody sh -c "printf x >'$R/.tmp.$owner.$h1'" || exit 99
asnobody mkfifo -m 666 "$R/.tmp.$owner.$h2" || exit 99
asnobody ln -s "$T/precious" "$R/.tmp.$ofd.$h3" || exit 99
# ... and nobody's file at the temporary name of a dead owner of this host.
asnobody sh -c "printf x >'$R/.tmp.p.1.1@$host.$h1'" || exit 99
planted() { (cd "$R" && stat -c '%n %F %U %s %i %N' .tmp.* | sort); }
psum=$(sum "$T/precious")
before=$(planted)
[ "$(echo "$before" | wc -l)" = 6 ] || fail "planting: $before"
for i in 1 2 3; do
	ask "s 0 W $i 1"; [ "$ans" = 0 ] || fail "F_SETLK $i beside the planted temporaries: $ans"
	handback busy # the owner file is written as the mutex goes back
done
grep -qx "W 0 3" "$R/$owner" || { cat "$R/$owner"; fail "the owner file misses W 0 3"; }
ask "os 1 W 101 1"; [ "$ans" = 0 ] || fail "OFD F_SETLK beside the planted temporaries: $ans"
grep -qx "W 100 101" "$R/$ofd" || { cat "$R/$ofd"; fail "the OFD owner file misses W 100 101"; }
[ "$(planted)" = "$before" ] || fail "something nobody planted was touched: $(planted)"
[ "$(sum "$T/precious")" = "$psum" ] || fail "the symlinks' target was written"
[ -z "$(find "$R" -name '.tmp.*' -user root)" ] || fail "root left temporaries: $(ls -a "$R")"
errs
if grep -q "lost\|cannot create a temporary" "$T/probe.err"; then
	cat "$T/probe.err"; fail "the planted names disturbed the writes"
fi
# Leftovers provably ours (a crash between create and rename): our own
# owner's and a dead local owner's, root's regular files: the next grow
# removes them; nobody's files at the same names stay.
printf 'filelock-ranges 1\n' >"$R/.tmp.$owner.$h3"
printf 'filelock-ranges 1\n' >"$R/.tmp.p.1.1@$host.$h2"
ask "s 0 W 4 1"; [ "$ans" = 0 ] || fail "F_SETLK with leftovers: $ans"
handback busy
[ ! -e "$R/.tmp.$owner.$h3" ] || fail "our own leftover temporary was not removed"
[ ! -e "$R/.tmp.p.1.1@$host.$h2" ] || fail "a dead owner's leftover temporary was not removed"
[ "$(planted)" = "$before" ] || fail "the sweep touched something of nobody's: $(planted)"
grep -qx "W 0 4" "$R/$owner" || fail "the owner file misses W 0 4"
echo "ok: the shim's temporaries have random names: nothing planted at any name an attacker knows blocks a write or is touched; our leftovers are swept"

# A write that fails all the same (a full disk: here a file size limit) as
# the mutex goes back: the locks taken under it are lost, at once, said so.
# Twenty separate ranges make our owner file larger than the limit, the
# mutex (a marker) smaller: the grow takes it, and whichever gives it back
# (the conflicting request, or the reaper on a slow machine) fails to write.
ask "many 0 W 10 2 20 1"; [ "$ans" = 0 ] || fail "twenty ranges: $ans"
handback busy
before_ranges=$(grep '^[RW] ' "$R/$owner")
[ "$(echo "$before_ranges" | wc -l)" = 21 ] || fail "the owner file: $before_ranges"
[ "$(stat -c %s "$R/$owner")" -gt 200 ] || fail "the owner file is too small for the test"
ask "fsize 200"; [ "$ans" = 0 ] || fail "fsize: $ans"
ask "s 0 W 5 1"; [ "$ans" = 0 ] || fail "F_SETLK under the mutex: $ans"
handback ENOLCK
ask "fsize -1"; [ "$ans" = 0 ] || fail "fsize: $ans"
errs
grep -q "byte-range locks taken since it was taken are lost" "$T/probe.err" ||
	{ cat "$T/probe.err"; fail "no message about the lost locks"; }
[ ! -e "$R/mutex" ] || fail "the mutex was kept after the failed write"
[ "$(grep '^[RW] ' "$R/$owner")" = "$before_ranges" ] ||
	fail "the owner file changed although its write failed"
ask "s 0 W 6 1"; [ "$ans" = ENOLCK ] || fail "F_SETLK after the locks were lost: $ans"
# A second process can take the lost byte at once (nothing records it).
out=$(LD_PRELOAD=$SO timeout 30 "$P" do "$PUB/a.db" "$PUB/other" "open rw" "s 0 W 5 1" 2>>"$T/probe.err")
[ "$out" = "slot 0
0" ] || fail "another process and the lost lock: $(echo $out)"
ask "s 0 U 0 0"; [ "$ans" = 0 ] || fail "unlock after the loss: $ans"
[ ! -e "$R/$owner" ] || fail "the owner file outlived the unlock"
ask "os 1 U 0 0"; [ "$ans" = 0 ] || fail "OFD unlock: $ans"
[ "$(planted)" = "$before" ] || fail "something nobody planted was touched: $(planted)"
(cd "$R" && rm -f .tmp.*)
echo "ok: a failed write at the mutex's hand-back loses the locks at once, never hangs"

# ---- 4. oversized owner files ---------------------------------------------------
big=$PUB/a.db.lock.ranges/p.1.1@elsewhere
asnobody awk 'BEGIN { printf "filelock-ranges 1\nhost elsewhere\npid 1\ntoken 1\nowner posix\n";
	for (i = 0; i < 40000; i++) printf "R %d %d\n", 1000000 + 2 * i, 1000000 + 2 * i }' \
	>"$T/big" || exit 99
asnobody cp "$T/big" "$big" || exit 99
t0=$(date +%s%N)
ask "s 0 W 0 1"; [ "$ans" = 0 ] || fail "F_SETLK beside a 40,000-range owner file: $ans"
ask "s 0 W 1000000 1"; [ "$ans" = busy ] || fail "the 40,000-range owner file's lock: $ans"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "note: two F_SETLK beside a 40,000-range owner file: $ms ms (5.9 s each before)"
[ "$ms" -lt 3000 ] || fail "40,000 ranges still cost $ms ms"
rm -f "$big"
asnobody sh -c "head -c 5000000 /dev/zero | tr '\\0' x >'$big'" || exit 99
ask "s 0 W 5 1"; [ "$ans" = busy ] || fail "an owner file over the cap must count as a lock: $ans"
rm -f "$big"
ask "s 0 U 0 0"; [ "$ans" = 0 ] || fail "unlock: $ans"
printf 'exit\n' >&"${PROBE[1]}"
wait "$PROBE_PID" 2>/dev/null
[ "$(sum "$PUB/a.db")" = "$dbsum" ] || fail "the database file changed"
echo "ok: owner files are parsed in linear time; over the cap they count as a lock"

# A ranges directory nobody made 0777: root's F_SETLK fails at once.
printf 'database bytes\n' >"$PUB/b.db"
asnobody mkdir -m 0777 "$PUB/b.db.lock.ranges" || exit 99
asnobody chmod 0777 "$PUB/b.db.lock.ranges"
out=$(LD_PRELOAD=$SO timeout 30 "$P" do "$PUB/b.db" "$PUB/other" "open rw" "s 0 W 0 1" 2>"$T/err")
[ "$out" = "slot 0
ENOLCK" ] || { cat "$T/err"; fail "F_SETLK in nobody's ranges directory: $(echo $out)"; }
grep -q "$PUB/b.db.lock.ranges: another user controls this directory" "$T/err" ||
	{ cat "$T/err"; fail "no message naming nobody's ranges directory"; }
[ -z "$(ls -A "$PUB/b.db.lock.ranges")" ] || fail "root wrote into nobody's ranges directory"
unset FILELOCK_PRELOAD_CONFIG
echo "ok: the shim refuses, as root, a ranges directory nobody controls"

# ---- 5. data files and directories at marker paths --------------------------------
D=$T/data
mkdir "$D" || exit 99
for k in soft lease strict soft-rw; do
	head -c 4096 /dev/urandom >"$D/$k.dat"
	s0=$(sum "$D/$k.dat")
	mkdir "$D/$k.dir"
	timeout 30 "$F" -t "$k" -w 3 "$D/$k.dat" true 2>"$T/err"
	timeout 30 "$F" break -t "$k" "$D/$k.dat" 2>>"$T/err"
	timeout 30 "$F" break -t "$k" --force "$D/$k.dat" 2>>"$T/err"
	timeout 30 "$F" break -t "$k" --force "$D/$k.dir" 2>>"$T/err"
	timeout 30 "$F" -t "$k" -w 3 "$D/$k.dir" true 2>>"$T/err"
	[ -f "$D/$k.dat" ] && [ "$(sum "$D/$k.dat")" = "$s0" ] ||
		{ cat "$T/err"; fail "$k: the data file was changed or removed"; }
	[ -d "$D/$k.dir" ] || { cat "$T/err"; fail "$k: the directory was moved"; }
	[ -z "$(ls "$D" | grep '\.break\.')" ] || fail "$k: something was renamed aside"
done
for k in soft lease; do
	timeout 30 "$F" -t "$k" -w 3 "$D/$k.dat" true 2>"$T/err" && fail "$k: locked a data file"
	grep -q "$D/$k.dat: exists and is larger than any lock marker (a data file?), not a $k lock marker; it is left alone: lock a separate path such as $D/$k.dat.lock" "$T/err" ||
		{ cat "$T/err"; fail "$k: message for a data file"; }
	timeout 30 "$F" break -t "$k" --force "$D/$k.dir" 2>"$T/err" && fail "$k: broke a directory"
	grep -q "a directory, not a $k lock marker: not broken, even with force" "$T/err" ||
		{ cat "$T/err"; fail "$k: message for a directory"; }
done
echo "ok: no kind removes, moves or changes a data file or a directory at its lock path"
