#!/bin/sh
# Builds filelock from a clean tree and runs the whole test suite:
#   1. the normal build with -Werror: make check (unit, interop, CLI, shim, cluster);
#   2. an ASan+UBSan build and a TSan build running the unit tests.
# Set FL_SANITIZERS=0 to skip step 2.  Exit status 0 only if everything passed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/deps.sh
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
jobs=$(nproc 2>/dev/null || echo 2)

run_build() { # name, configure args...
	name=$1
	shift
	dir="$top/_build/$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "== $name: configure $*"
	(cd "$dir" && "$top/configure" -q "$@") || return 1
	echo "== $name: make"
	make -s -C "$dir" -j"$jobs" >/dev/null || return 1
	echo "== $name: make check ${FL_CHECK_TESTS:-(all)}"
	if ! make -s -C "$dir" -j2 check ${FL_CHECK_TESTS:+"TESTS=$FL_CHECK_TESTS"}; then
		find "$dir" -name '*.log' ! -name config.log ! -name test-suite.log -newer "$dir/Makefile" \
			-exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null |
			while read -r f; do echo "---- $f"; tail -n 60 "$f"; done
		return 1
	fi
}

FL_CHECK_TESTS=
run_build normal --enable-werror CFLAGS="-O2 -g"
if [ "${FL_SANITIZERS:-1}" != 0 ]; then
	unit=$(cd "$top/_build/normal" && make -s print-unit-tests)
	# ASan+UBSan also runs the fuzz targets (corpus + bounded mutation) and
	# the SIGKILL storm; TSan runs the storm too (its workers fork from a
	# thread-free parent).  The shell suites that drive the CLI, the shim or
	# Python peers are left to the normal build: the shim cannot be preloaded
	# ahead of a sanitizer runtime into uninstrumented programs.
	FL_CHECK_TESTS="$unit tests/fuzz/fuzz.sh tests/stress/storm.sh"
	run_build asan --enable-werror --enable-sanitizers=address,undefined CFLAGS="-O1 -g"
	# TSan: tests fork children that start threads from a parent whose
	# heartbeat thread runs (die_after_fork=0 lets them), and test-preload-fdtable
	# is left out: it fakes a fork child's mutex re-initialisation inside one
	# process, which TSan reports as destroying a locked mutex.
	FL_CHECK_TESTS="$(echo "$unit" | sed 's|tests/unit/test-preload-fdtable||') tests/stress/storm.sh"
	TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}die_after_fork=0"
	export TSAN_OPTIONS
	run_build tsan --enable-werror --enable-sanitizers=thread CFLAGS="-O1 -g"
fi
echo "== all test runs passed"
