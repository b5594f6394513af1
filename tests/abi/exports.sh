#!/bin/sh
# libfilelock.so exports exactly the fl_* functions declared in filelock.h,
# all under the FL_0.1 version node, and no internal fl__* symbol.
. "$FL_TOP_SRCDIR/tests/lib.sh"
so="$FL_TOP_BUILDDIR/lib/.libs/libfilelock.so"
[ -f "$so" ] || fl_skip "no shared library at $so (static-only build?)"
command -v nm >/dev/null || fl_skip "nm not installed"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' | sort > "$tmp/exported"
sed -n 's/^FL_EXPORT[^(]*[ *]\(fl_[a-z0-9_]*\)(.*/\1/p' "$FL_TOP_SRCDIR/include/filelock.h" |
	sort -u > "$tmp/declared"
sed 's/@.*//' "$tmp/exported" | sort > "$tmp/names"
fail=0
if ! cmp -s "$tmp/names" "$tmp/declared"; then
	echo "exported symbols differ from filelock.h (< exported, > declared):"
	diff "$tmp/names" "$tmp/declared"
	fail=1
fi
if grep -v '@@FL_0\.1$' "$tmp/exported"; then
	echo "symbols above lack the FL_0.1 version node"
	fail=1
fi
if grep -q '^fl__' "$tmp/names"; then
	echo "internal fl__ symbols are exported"
	fail=1
fi
n=$(wc -l < "$tmp/names")
if [ $fail = 0 ]; then
	echo "$n exported symbols match filelock.h"
	echo "1 passed, 0 failed"
	exit 0
fi
echo "0 passed, 1 failed"
exit 1
