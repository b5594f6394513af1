# SPDX-License-Identifier: MIT
# lib.sh -- sourced by the preload shell suites.
#
# Sets FLP_SO (the built shim), FLP_PROBE, and T (a private directory,
# removed on exit together with every process the suite started).

set -u
: "${FL_TOP_BUILDDIR:?run through make check}"
FLP_SO=$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so
FLP_PROBE=$FL_TOP_BUILDDIR/tests/preload/flp-probe
T=$(mktemp -d) || exit 99
FLP_PIDS=
flp_cleanup() {
	for p in $FLP_PIDS; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap flp_cleanup EXIT
trap 'exit 99' INT TERM

[ -f "$FLP_SO" ] || { echo "shim not built: $FLP_SO"; exit 99; }
case ${FL_SANITIZERS-} in
*address*|*thread*) echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"; exit 77 ;;
esac

fail() { echo "FAIL: $*"; exit 1; }
skip_or_fail() {
	if [ "${FL_REQUIRE_ALL-}" = 1 ]; then echo "FAIL (FL_REQUIRE_ALL=1): $*"; exit 99; fi
	echo "SKIP: $*"; exit 77
}

# Writes a policy file and exports it.
flp_policy() {
	printf '%s\n' "$@" > "$T/preload.conf"
	FILELOCK_PRELOAD_CONFIG=$T/preload.conf
	export FILELOCK_PRELOAD_CONFIG
}

# Runs a command with the shim preloaded.
# Every shimmed command is bounded, so that a deadlock fails the suite.
shim() { LD_PRELOAD=$FLP_SO timeout 60 "$@"; }
