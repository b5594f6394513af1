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
#  3. the shim as root (LD_PRELOAD): a FIFO, a regular file and a symlink
#     planted by nobody at the temporary file's name in a sticky ranges
#     directory: non-blocking F_SETLK answers at once (ENOLCK for the
#     FIFO, success after removing the leftover file or symlink, whose
#     target is untouched); a ranges directory made 0777 by nobody: ENOLCK
#     at once;
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
coproc PROBE { LD_PRELOAD=$SO timeout 120 "$P" serve "$PUB/a.db" "$PUB/other" 2>"$T/probe.err"; }
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
owner=$(cd "$PUB/a.db.lock.ranges" && ls | grep '^p\.') || fail "no owner file"
grep -qx "W 0 0" "$PUB/a.db.lock.ranges/$owner" || fail "the owner file misses W 0 0"
asnobody mkfifo -m 666 "$PUB/a.db.lock.ranges/.tmp.$owner" || exit 99
# The grow itself only takes the mutex; the write that meets the FIFO is
# the hand-back: it must neither hang nor leave us holding a lock that no
# file records.  The locks taken under the mutex are lost, and said so.
ask "s 0 W 1 1"; [ "$ans" = 0 ] || fail "F_SETLK under the mutex: $ans"
handback ENOLCK
grep -q "neither a file nor a symbolic link is in the way of our temporary" "$T/probe.err" ||
	{ cat "$T/probe.err"; fail "no message about the planted FIFO"; }
grep -q "byte-range locks taken since it was taken are lost" "$T/probe.err" ||
	{ cat "$T/probe.err"; fail "no message about the lost locks"; }
[ -p "$PUB/a.db.lock.ranges/.tmp.$owner" ] || fail "root removed nobody's FIFO"
[ ! -e "$PUB/a.db.lock.ranges/mutex" ] || fail "the mutex was kept after the failed write"
[ "$(grep '^[RW] ' "$PUB/a.db.lock.ranges/$owner")" = "W 0 0" ] ||
	fail "the owner file changed although its write failed"
ask "s 0 W 2 1"; [ "$ans" = ENOLCK ] || fail "F_SETLK after the locks were lost: $ans"
# A second process can take the lost byte at once (nothing records it).
out=$(LD_PRELOAD=$SO timeout 30 "$P" do "$PUB/a.db" "$PUB/other" "open rw" "s 0 W 1 1" 2>>"$T/probe.err")
[ "$out" = "slot 0
0" ] || fail "another process and the lost lock: $(echo $out)"
ask "s 0 U 0 0"; [ "$ans" = 0 ] || fail "unlock after the loss: $ans"
[ ! -e "$PUB/a.db.lock.ranges/$owner" ] || fail "the owner file outlived the unlock"
rm -f "$PUB/a.db.lock.ranges/.tmp.$owner"
# Leftovers that are a regular file or a symlink are replaced, never
# written through, at the hand-back as at any write.
asnobody sh -c "printf x >'$PUB/a.db.lock.ranges/.tmp.$owner'" || exit 99
ask "s 0 W 2 1"; [ "$ans" = 0 ] || fail "F_SETLK over a leftover temporary file: $ans"
handback busy
grep -qx "W 2 2" "$PUB/a.db.lock.ranges/$owner" || fail "the owner file misses W 2 2"
[ ! -e "$PUB/a.db.lock.ranges/.tmp.$owner" ] || fail "the leftover temporary is still there"
asnobody ln -s "$T/precious" "$PUB/a.db.lock.ranges/.tmp.$owner" || exit 99
psum=$(sum "$T/precious")
ask "s 0 W 3 1"; [ "$ans" = 0 ] || fail "F_SETLK over a planted symlink: $ans"
handback busy
[ "$(sum "$T/precious")" = "$psum" ] || fail "the symlink's target was written"
[ ! -e "$PUB/a.db.lock.ranges/.tmp.$owner" ] && [ ! -L "$PUB/a.db.lock.ranges/.tmp.$owner" ] ||
	fail "the planted temporary is still there"
grep -qx "W 2 3" "$PUB/a.db.lock.ranges/$owner" || fail "the owner file misses W 2 3"
ask "s 0 U 0 0"; [ "$ans" = 0 ] || fail "unlock: $ans"
ask "os 1 U 0 0"; [ "$ans" = 0 ] || fail "OFD unlock: $ans"
echo "ok: the shim's temporaries: a FIFO at the hand-back loses the locks at once, never hangs; leftovers are replaced"

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
