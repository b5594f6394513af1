# SPDX-License-Identifier: MIT
# symbols.sh -- every open/close/dup/lock call that the test binaries and
# Debian's flock, sqlite3 (and libsqlite3), python3 and perl import is one the
# shim defines.  A new glibc alias, or a program built another way, that
# slips past the shim fails here instead of silently running unprotected.
. "$FL_TOP_SRCDIR/tests/preload/lib.sh"

command -v nm >/dev/null || skip_or_fail "nm (binutils) is not installed"

# The calls that open, duplicate, close or lock a descriptor.
# And the ones that start a new image or a child without fork's handlers
# (the shim writes its lingering byte-range state first, or marks shared
# descriptors): exec*, posix_spawn*.
CALLS='^(__)?(open(at)?(64)?(_2)?|creat(64)?|close|close_range|closefrom|fclose|fcloseall|dup[23]?|fcntl(64)?|flock|lockf(64)?|fopen(64)?|freopen(64)?|fdopen|exec(ve|v|vp|vpe|l|lp|le)|fexecve|execveat|posix_spawnp?)$'
# Imported but deliberately not wrapped, with the reason.
ALLOWED='^(fdopen|fcloseall)$'
# fdopen: attaches a descriptor that already exists; nothing to track.
# fcloseall: closes every stream; the destructor's exit pass covers exit-time use.

nm -D --defined-only "$FLP_SO" | awk '{print $NF}' > "$T/defined"

# The shim exports exactly the hooks of preload.sym, with no version node (a
# named node would stop them from interposing), and none of the library.
sed -n 's/^[[:space:]]*\([a-z_][a-z0-9_; ]*\);$/\1/p' "$FL_TOP_SRCDIR/preload/preload.sym" |
	tr ';' '\n' | tr -d ' \t' | grep -v '^$' | sort > "$T/listed"
sort "$T/defined" > "$T/exported"
cmp -s "$T/listed" "$T/exported" || { diff "$T/listed" "$T/exported"; fail "shim exports differ from preload.sym (< listed, > exported)"; }
grep -q '@' "$T/exported" && fail "shim exports carry a version: $(grep @ "$T/exported")"
undef() { nm -D --undefined-only "$1" 2>/dev/null | awk '{print $NF}' | sed 's/@.*//'; }

bins="$FLP_PROBE"
for b in "$FL_TOP_BUILDDIR"/tests/unit/test-*; do
	[ -x "$b" ] && [ ! -d "$b" ] && bins="$bins $b"
done
missing=
for p in flock sqlite3 python3 perl; do
	b=$(command -v "$p") || { missing="$missing $p"; continue; }
	b=$(readlink -f "$b")
	bins="$bins $b"
	# The libraries that do the locking for them.
	for l in $(ldd "$b" 2>/dev/null | awk '/libsqlite3|libperl|libpython/ {print $3}'); do
		bins="$bins $l"
	done
done
[ -z "$missing" ] || [ "${FL_REQUIRE_ALL-}" != 1 ] || fail "not installed:$missing"

bad=
checked=0
for b in $bins; do
	for s in $(undef "$b" | grep -E "$CALLS" | sort -u); do
		checked=$((checked + 1))
		grep -qx "$s" "$T/defined" && continue
		echo "$s" | grep -qE "$ALLOWED" && continue
		bad="$bad $(basename "$b"):$s"
	done
done
[ -z "$bad" ] || fail "imported but not wrapped by the shim:$bad"
[ "$checked" -gt 10 ] || fail "only $checked imports checked; is nm working?"
[ -z "$missing" ] || echo "note: not installed, not checked:$missing"
echo "PASS ($checked imports checked)"
