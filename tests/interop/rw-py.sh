#!/bin/sh
# Interoperability of the rw kind with Python's ReadWriteLock: exclusion in
# both directions, overlapping readers, writer preference across the two.
. "$FL_TOP_SRCDIR/tests/lib.sh"
fl_need_peer
bin="$FL_TOP_BUILDDIR/tests/unit/test-rw"
[ -x "$bin" ] || fl_skip "the rw kind is not built (needs libsqlite3 and cmocka)"
FL_PYTHON3=$FL_PY
export FL_PYTHON3
exec timeout 120 "$bin" interop
