#!/bin/bash
# Runs the etcd kind's cmocka tests (tests/unit/test-etcd) against a fresh
# 3-member cluster on loopback.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$FL_TOP_SRCDIR/tests/etcd/common.sh"
bin="$FL_TOP_BUILDDIR/tests/unit/test-etcd"
[ -x "$bin" ] || fl_skip "test-etcd was not built (cmocka missing?)"
timeout 90 "$bin"
