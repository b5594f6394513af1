#!/bin/sh
# The preload shim uses lib/ only through lib/fl-shim.h and the shared
# primitives sys.h, proclocks.h and escape.h: no preload source includes
# fl-internal.h or names a struct of lib/, and every fl__/fl_shim_
# identifier it uses is declared in one of those headers.
. "$FL_TOP_SRCDIR/tests/lib.sh"
src="$FL_TOP_SRCDIR"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

if grep -n '#include "fl-internal.h"' "$src"/preload/*.c "$src"/preload/*.h; then
	echo "preload/ includes fl-internal.h (above)"
	fail=1
fi
if grep -nE 'struct fl_(hold|lock|backend|hb|marker|seen|p1|claim)\b|struct fl__wait_intr|->(opt|be|be_data|priv)\b' \
	"$src"/preload/*.c "$src"/preload/*.h; then
	echo "preload/ reaches into a struct of lib/ (above)"
	fail=1
fi
cat "$src"/preload/*.c "$src"/preload/*.h | sed 's,/\*.*\*/,,g' |
	grep -oE '\bfl(__|_shim_)[A-Za-z0-9_]+' | sort -u > "$tmp/used"
cat "$src"/lib/fl-shim.h "$src"/lib/sys.h "$src"/lib/proclocks.h "$src"/lib/escape.h |
	grep -oE '\bfl(__|_shim_)[A-Za-z0-9_]+' | sort -u > "$tmp/declared"
if comm -23 "$tmp/used" "$tmp/declared" | grep .; then
	echo "preload/ uses the identifiers above, which the interface does not declare"
	fail=1
fi
n=$(wc -l < "$tmp/used")
if [ $fail = 0 ]; then
	echo "preload/ uses $n identifiers of lib/, all from its interface"
	echo "1 passed, 0 failed"
	exit 0
fi
echo "0 passed, 1 failed"
exit 1
