#!/bin/sh
# Runs every fuzz target on its committed corpus plus random mutations for
# FL_FUZZ_SECONDS (default 2) each.  Long coverage-guided runs: `make fuzz`.
. "$FL_TOP_SRCDIR/tests/lib.sh"
secs=${FL_FUZZ_SECONDS:-2}
fail=0
n=0
for t in $FL_FUZZ_TARGETS; do
	name=${t##*/}
	corpus="$FL_TOP_SRCDIR/tests/fuzz/corpus/${name#fuzz-}"
	echo "== $name ($secs s, corpus $corpus)"
	if timeout $((secs + 60)) "$FL_TOP_BUILDDIR/$t" -t "$secs" "$corpus"; then
		n=$((n + 1))
	else
		echo "FAIL: $name crashed (the seed above reproduces it)"
		fail=$((fail + 1))
	fi
done
echo "$n passed, $fail failed"
[ $fail = 0 ]
