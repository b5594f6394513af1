#!/bin/sh
# Builds filelock and shows a lock at work.  With root and /dev/fuse: three
# simulated NFS client hosts share one directory; the kernel's flock lets
# two hosts in at once, our locks do not.  Elsewhere: processes on this host
# race on one counter file with and without a soft lock.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/deps.sh
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
dir="$top/_build/demo"
mkdir -p "$dir"
[ -f "$dir/Makefile" ] || (cd "$dir" && "$top/configure" -q CFLAGS="-O2 -g")
make -s -C "$dir" -j"$(nproc 2>/dev/null || echo 2)" all >/dev/null
make -s -C "$dir" -j2 check TESTS= >/dev/null # builds the helper programs
export FL_TOP_BUILDDIR="$dir" FL_TOP_SRCDIR="$top"

if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && [ -f "$top/tests/cluster/demo.sh" ]; then
	exec sh "$top/tests/cluster/demo.sh"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
counter="$dir/tests/helpers/fl-counter"
race() { # kind -> final counter of 4 processes x 200 increments
	rm -f "$tmp/ctr"
	for i in 1 2 3 4; do "$counter" -t "$1" -n 200 -W 50 "$tmp/$1.lock" "$tmp/ctr" & done
	wait
	cat "$tmp/ctr"
}
echo "4 processes x 200 read-increment-write cycles of one counter file:"
echo "  under a soft lock (O_EXCL marker): $(race soft) (expected 800)"
echo "  under a unix lock (flock):         $(race unix) (expected 800)"
