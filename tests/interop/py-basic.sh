#!/bin/sh
# Interoperability of the soft and file/unix kinds with Python's filelock.
. "$FL_TOP_SRCDIR/tests/lib.sh"
fl_need_peer
exec timeout 120 "$FL_PY" "$FL_TOP_SRCDIR/tests/interop/py_basic.py"
