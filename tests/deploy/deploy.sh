#!/bin/sh
# The README's "Deploying" steps, run on one machine as far as it allows:
# `make install DESTDIR=`, then, in a private mount namespace where that tree
# is bind-mounted over the prefix and /etc is an overlay (nothing of the
# machine's own /etc or prefix changes), the README's code blocks with
# /nfs/proj moved under a temporary directory:
#   - the policy written, checked with filelock-preload --check, moved in;
#   - one command under filelock-preload (flock(1) and sqlite3);
#   - one session with `module load filelock` (environment-modules): the
#     variables, flock(1) redirected to a marker, `module unload` restoring
#     the environment exactly;
#   - the whole site through /etc/ld.so.preload, and its removal;
# and the packaging: one version string everywhere, man pages naming the
# installed paths, the README quick start linked statically against
# libfilelock with `pkg-config --static`, `make uninstall` leaving only the
# policy file.
. "${FL_TOP_SRCDIR:?run through make check}/tests/lib.sh"
B=$FL_TOP_BUILDDIR
S=$FL_TOP_SRCDIR
README=$S/README.md

fails=0
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
pass() { echo "ok: $*"; }
check() { # description, command...: passes when the command succeeds
	what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# readme_block WORD: the first fenced code block of the README's Deploying
# section that contains WORD.
readme_block() {
	awk -v w="$1" '
		/^## / { in_sec = ($0 == "## Deploying") }
		in_sec && /^```/ {
			if (open && index(b, w)) { printf "%s", b; exit }
			open = !open
			b = ""
			next
		}
		in_sec && open { b = b $0 "\n" }
	' "$README"
}
# The README's paths, moved to this run's prefix and data directory.
relocate() {
	sed -e "s|/usr/local/|$prefix/|g" -e "s|/nfs/proj/|$T/nfs/proj/|g"
}

if [ "${1-}" != --in-namespace ]; then
	case ${FL_SANITIZERS-} in
	*address* | *thread*)
		echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"
		exit 77
		;;
	esac
	[ "$(id -u)" = 0 ] || fl_skip "needs root: a private mount namespace stands in for the prefix and /etc"
	command -v unshare >/dev/null || fl_skip "unshare(1) not installed"
	[ -f /usr/share/modules/init/sh ] || fl_skip "environment-modules not installed"
	command -v pkg-config >/dev/null || fl_skip "pkg-config not installed"
	prefix=$(sed -n 's/^prefix=//p' "$B/filelock.pc")
	case $prefix in
	/ | /usr | "") fl_skip "prefix '$prefix': this test bind-mounts the install over it" ;;
	esac
	[ -d "$prefix" ] || fl_skip "prefix $prefix does not exist here (the test mounts over it, it never creates it)"
	T=$(mktemp -d) || exit 99
	trap 'rm -rf "$T"' EXIT
	trap 'exit 99' INT TERM HUP
	if ! make -s -C "$B" install DESTDIR="$T/dest" >"$T/install.log" 2>&1; then
		cat "$T/install.log" >&2
		exit 99
	fi
	outer_ns=$(readlink /proc/self/ns/mnt)
	export T prefix outer_ns
	# The watchdog ends the namespace's whole process group.
	timeout -k 5 240 unshare -m --propagation private sh "$0" --in-namespace
	rc=$?
	[ $rc -eq 124 ] && echo "FAIL: watchdog: the steps took more than 240 s" >&2
	[ $rc -ne 0 ] && exit 1

	# make uninstall removes every installed file; the policy file stays.
	if ! make -s -C "$B" uninstall DESTDIR="$T/dest" >"$T/uninstall.log" 2>&1; then
		cat "$T/uninstall.log" >&2
		exit 1
	fi
	left=$(cd "$T/dest" && find . -type f | sort)
	if [ "$left" != "./${prefix#/}/etc/filelock/preload.conf" ]; then
		echo "FAIL: make uninstall left: $left" >&2
		exit 1
	fi
	echo "ok: make uninstall removed every installed file, the policy stays"
	exit 0
fi

# ---- inside the private mount namespace -------------------------------------------
# Never outside it: everything below writes over the prefix and /etc.
if [ -z "${outer_ns-}" ] || [ "$(readlink /proc/self/ns/mnt)" = "$outer_ns" ]; then
	echo "refusing to run the steps outside a private mount namespace" >&2
	exit 99
fi
mount --bind "$T/dest$prefix" "$prefix" || exit 99
mkdir -p "$T/ovl" && mount -t tmpfs tmpfs "$T/ovl" && mkdir "$T/ovl/up" "$T/ovl/work" || exit 99
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/ovl/up,workdir=$T/ovl/work" /etc || exit 99
[ "$(stat -f -c %T /etc)" = overlayfs ] || { echo "/etc is not the overlay" >&2; exit 99; }
bindir=$prefix/bin
case :$PATH: in
*:"$bindir":*) ;;
*) PATH=$bindir:$PATH ;;
esac
export PATH
mf=$(ls "$prefix"/share/modulefiles/filelock/* 2>/dev/null)
shim=$(sed -n 's/^prepend-path LD_PRELOAD *//p' "$mf")
mandir=$(sed -n 's/^prepend-path MANPATH *//p' "$mf")
check "the modulefile is installed ($mf)" test -f "$mf"
check "the modulefile names the installed shim ($shim)" test -f "$shim"
check "the modulefile names the installed bin" grep -q "^prepend-path PATH *$bindir\$" "$mf"
check "the modulefile carries the Slurm job-step variant" \
	grep -q "SRUN_EXPORT_ENV \"ALL,LD_PRELOAD=$shim\"" "$mf"
srun_line=$(readme_block SRUN_EXPORT_ENV | relocate)
check "the README's Slurm setenv line" grep -qF "$srun_line" "$mf"

# --- one version string everywhere ---------------------------------------------------
V=$(sed -n 's/^AC_INIT(\[filelock\], \[\([^]]*\)\].*/\1/p' "$S/configure.ac")
hv=$(awk '/define FL_VERSION_MAJOR/ { a = $3 } /define FL_VERSION_MINOR/ { b = $3 }
	/define FL_VERSION_PATCH/ { c = $3 } END { print a "." b "." c }' "$prefix/include/filelock.h")
check "filelock.h says $V ($hv)" test "$hv" = "$V"
check "filelock --version" test "$(filelock --version)" = "filelock (libfilelock) $V"
check "filelock-preload --version" test "$(filelock-preload --version)" = "filelock-preload $V"
check "pkg-config --modversion" test \
	"$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion filelock)" = "$V"
check "the modulefile is named by the version" test "${mf##*/}" = "$V"
for m in man1/filelock.1 man3/filelock.3 man5/filelock.conf.5 man8/filelock-preload.8; do
	check "$m: version $V" grep -q "^\.TH .* \"filelock $V\"" "$mandir/$m"
done

# --- man pages name the installed paths ----------------------------------------------
unset FILELOCK_PRELOAD_CONFIG
policy=$(filelock check-policy --help | sed -n 's/.*(default: \([^)]*\)).*/\1/p')
check "the default policy is under the prefix's sysconfdir ($policy)" \
	test "${policy#"$prefix"/}" != "$policy"
check "filelock.conf(5) names $policy" grep -qF "$policy" "$mandir/man5/filelock.conf.5"
check "filelock-preload(8) names $policy" grep -qF "$policy" "$mandir/man8/filelock-preload.8"
check "filelock-preload(8) preloads the installed shim" grep -qF "LD_PRELOAD=$shim" "$mandir/man8/filelock-preload.8"

# --- the policy: written, checked, moved in (the README's first block) -------------
mkdir -p "$T/nfs/proj/jobs" "$T/nfs/proj/db"
readme_block preload.conf.new | relocate > "$T/policy.sh"
sh -e "$T/policy.sh" > "$T/policy.out"
check "the README's policy block writes, checks and installs the policy" test $? -eq 0
check "the checker printed the rules" grep -q "^$policy.new:2: $T/nfs/proj/db/\*.sqlite lease" "$T/policy.out"
check "the policy is in place" test -f "$policy"
FILELOCK_PRELOAD_CONFIG=$policy
export FILELOCK_PRELOAD_CONFIG
host=$(uname -n)

# --- one command ---------------------------------------------------------------------
cd "$T" || exit 99
J=$T/nfs/proj/jobs/nightly.lock
printf '#!/bin/sh\ncat %s.lock > %s/seen\n' "$J" "$T" > nightly.sh
chmod +x nightly.sh
grep -v sqlite3 "$policy" > test.conf
printf '%s/nfs/proj/db/*.sqlite lease lease_duration=3m\n' "$T" >> test.conf
readme_block "filelock-preload -- flock" | relocate > "$T/one.sh"
check "the README's one-command block runs (flock(1) and sqlite3 under the wrapper)" sh -e "$T/one.sh"
check "the command ran while the shim's marker existed" test -s "$T/seen"
check "the marker named the flock process on this host" \
	test "$(sed -n 2p "$T/seen")" = "$host"
check "the marker is gone afterwards" test ! -e "$J.lock"
check "sqlite3 created its database under the shim" test -f "$T/nfs/proj/db/app.sqlite"
check "no lease marker is left" test ! -e "$T/nfs/proj/db/app.sqlite.lock"

# --- one session with environment modules ------------------------------------------
unset LD_PRELOAD MANPATH
cat > "$T/session.sh" <<'SESSION'
set -u
. /usr/share/modules/init/sh
skip='^(LOADEDMODULES|_LMFILES_|__MODULES_[A-Z_]*|MODULES_[A-Z_]*|MODULEPATH|OLDPWD|_)='
env | grep -Ev "$skip" | LC_ALL=C sort > "$T/env.before"
eval "$(sed -n 1p "$T/module.sh")"          # module use ...
eval "$(sed -n 2p "$T/module.sh")"          # module load filelock
[ "${LD_PRELOAD-}" = "$shim" ] || { echo "FAIL: LD_PRELOAD='${LD_PRELOAD-}' after load" >&2; exit 1; }
case :$PATH: in *:"$bindir":*) ;; *) echo "FAIL: PATH=$PATH" >&2; exit 1 ;; esac
case ${MANPATH-} in "$mandir:" | "$mandir":*:) ;; *) echo "FAIL: MANPATH=${MANPATH-}" >&2; exit 1 ;; esac
[ "$(command -v filelock)" = "$bindir/filelock" ] || { echo "FAIL: filelock is $(command -v filelock)" >&2; exit 1; }
echo "ok: module load: LD_PRELOAD, PATH and MANPATH (default man path kept)"
if command -v manpath >/dev/null; then
	manpath 2>/dev/null | tr : '\n' | grep -qx "$mandir" || { echo "FAIL: manpath lacks $mandir" >&2; exit 1; }
fi
# Two flock(1) processes on a policy path, in this session: the holder's
# lock is the shim's marker, the second process sees the conflict.
D=$T/nfs/proj/jobs/run.lock
mkfifo "$T/hin" "$T/hout"
timeout 60 flock "$D" sh -c 'echo ready; read x' < "$T/hin" > "$T/hout" &
h=$!
exec 7> "$T/hin"
exec 8< "$T/hout"
read -r ready <&8
[ "$ready" = ready ] || { echo "FAIL: the holder did not start" >&2; exit 1; }
[ -f "$D.lock" ] && [ "$(sed -n 2p "$D.lock")" = "$(uname -n)" ] ||
	{ echo "FAIL: no marker $D.lock under the loaded module" >&2; exit 1; }
timeout 20 flock -n "$D" true
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: a second flock -n got $rc, want 1" >&2; exit 1; }
timeout 20 filelock status "$D" > "$T/status" 2>&1
[ $? -eq 1 ] && grep -q "^$D.lock: held (kind soft, the marker of $D under" "$T/status" ||
	{ echo "FAIL: filelock status: $(cat "$T/status")" >&2; exit 1; }
exec 7>&-
wait $h
exec 8<&-
[ ! -e "$D.lock" ] || { echo "FAIL: the marker outlived the holder" >&2; exit 1; }
echo "ok: under the module, flock(1) locks through the shim's marker; status finds it"
eval "$(sed -n 3p "$T/module.sh")"          # module unload filelock
env | grep -Ev "$skip" | LC_ALL=C sort > "$T/env.after"
if ! cmp -s "$T/env.before" "$T/env.after"; then
	echo "FAIL: module unload did not restore the environment:" >&2
	diff "$T/env.before" "$T/env.after" >&2
	exit 1
fi
echo "ok: module unload restores the environment exactly"
SESSION
readme_block "module load" | relocate | sed 's/ *#.*//' > "$T/module.sh"
check "the README's session block is use, load, unload" test "$(wc -l < "$T/module.sh")" -eq 3
export shim bindir mandir
check "a session with the module" bash "$T/session.sh"

# --- the whole site: /etc/ld.so.preload, then its removal ---------------------------
readme_block /etc/ld.so.preload | relocate > "$T/site.sh"
check "the README's site block names the installed shim" grep -qF "$shim" "$T/site.sh"
sh -e "$T/site.sh"
check "/etc/ld.so.preload (the namespace's overlay) names the shim" grep -qxF "$shim" /etc/ld.so.preload
D=$T/nfs/proj/jobs/site.lock
env -u LD_PRELOAD timeout 20 flock "$D" sh -c "test -f '$D.lock'"
check "every program gets the shim: plain flock(1) made the marker" test $? -eq 0
env -u LD_PRELOAD timeout 20 ls / > /dev/null
check "programs without locks run as before" test $? -eq 0
sed -i "\\|^$shim\$|d" /etc/ld.so.preload
env -u LD_PRELOAD timeout 20 flock "$D" sh -c "test ! -e '$D.lock'"
check "after removing the line, flock(1) is the kernel's again" test $? -eq 0

# --- the README quick start, linked statically against libfilelock --------------------------
mkdir -p "$T/static/lib" "$T/qs"
cp "$B/lib/.libs/libfilelock-core.a" "$T/static/lib/libfilelock.a"
awk '/^## Quick start/ { q = 1 } q && /^```c/ { c = 1; next } c && /^```/ { exit } c { print }' \
	"$README" | sed "s|\"/nfs/project/job.lock\"|\"$T/qs/job.lock\"|" > "$T/qs.c"
check "the quick start names its lock path" grep -q "$T/qs/job.lock" "$T/qs.c"
flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --static --define-variable=libdir="$T/static/lib" \
	--cflags --libs filelock)
echo "cc qs.c $flags"
check "the quick start links with pkg-config --static" cc -o "$T/qs/qs" "$T/qs.c" $flags
if [ -x "$T/qs/qs" ]; then
	check "the binary does not need libfilelock.so" sh -c "! ldd '$T/qs/qs' | grep -q libfilelock"
	check "the statically linked quick start runs (exit 0)" timeout 20 "$T/qs/qs"
	check "it released its marker" test ! -e "$T/qs/job.lock"
fi

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed" >&2; exit 1; }
exit 0
