# SPDX-License-Identifier: MIT
# lib.sh -- sourced by the security suites.
#
# The suites play an unprivileged attacker (uid nobody) against root
# victims.  Everything that needs /etc changed happens inside a private
# mount namespace: sec_enter re-runs the suite under `unshare -m`, where
# sec_overlay puts a throw-away overlay on a directory (/etc, the build's
# sysconfdir), so the host's files are never written.

set -u
: "${FL_TOP_BUILDDIR:?run through make check}"
. "$FL_TOP_SRCDIR/tests/lib.sh"

FAILS=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
# t NAME CONDITION: one assertion; CONDITION is shell code (&&, || allowed).
t() {
	if eval "$2"; then ok "$1"; else bad "$1"; fi
}

# Re-runs the calling suite inside a private mount namespace, with a
# watchdog that ends the whole run.  Needs root, unshare and setpriv.
sec_enter() {
	[ "${SEC_IN_NS-}" = 1 ] && return 0
	[ "$(id -u)" = 0 ] || fl_skip "the security suite plays root against nobody: run it as root"
	command -v unshare >/dev/null || fl_skip "no unshare(1)"
	command -v setpriv >/dev/null || fl_skip "no setpriv(1)"
	id nobody >/dev/null 2>&1 || fl_skip "no user nobody"
	case ${FL_SANITIZERS-} in
	*address*|*thread*) echo "SKIP: a sanitizer runtime cannot be preloaded into set-user-ID programs"; exit 77 ;;
	esac
	unshare -m --propagation private true 2>/dev/null ||
		fl_skip "cannot create a mount namespace (unshare -m)"
	SEC_IN_NS=1 exec timeout -k 5 "${SEC_WATCHDOG:-300}" \
		unshare -m --propagation private /bin/sh "$0" "$@"
}

# A directory only we write, that nobody can traverse (test files live below).
sec_tmpdir() {
	T=$(mktemp -d) || exit 99
	chmod 755 "$T"
	trap 'sec_cleanup' EXIT
	trap 'exit 99' INT TERM
	# Overlay upper layers live on a tmpfs of our own: the host's /tmp may
	# itself be an overlay, which cannot hold another one's upper layer.
	mkdir "$T/ovl" && mount -t tmpfs -o mode=700 sec-ovl "$T/ovl" || exit 99
}

SEC_MOUNTS=
sec_cleanup() {
	# Inside the namespace the mounts die with it; unmount anyway, newest first.
	for m in $SEC_MOUNTS; do umount -l "$m" 2>/dev/null; done
	umount -l "$T/ovl" 2>/dev/null
	rm -rf "$T"
}

# sec_overlay DIR: a writable, throw-away view of DIR in this namespace.
sec_overlay() {
	n=$(printf '%s' "$1" | tr / _)
	mkdir -p "$T/ovl/u$n" "$T/ovl/w$n" || exit 99
	mount -t overlay sec-overlay -o "lowerdir=$1,upperdir=$T/ovl/u$n,workdir=$T/ovl/w$n" "$1" ||
		fl_skip "cannot mount an overlay on $1"
	SEC_MOUNTS="$1 $SEC_MOUNTS"
}

# sec_overlay_for FILE: overlays the nearest existing ancestor of FILE's
# directory and creates the directory in it.
sec_overlay_for() {
	d=$(dirname "$1")
	a=$d
	while [ ! -d "$a" ]; do a=$(dirname "$a"); done
	[ "$a" != / ] || fl_skip "$d: no ancestor but / to overlay"
	case " $SEC_MOUNTS " in *" $a "*) ;; *) sec_overlay "$a" ;; esac
	mkdir -p "$d" || exit 99
}

# as_nobody CMD...: runs CMD as the attacker (uid nobody, its group, no others).
as_nobody() {
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --inh-caps=-all -- "$@"
}
