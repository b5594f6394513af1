# tests/lib.sh -- helpers shared by the shell suites (sourced).
# Exit codes follow automake: 0 pass, 77 skip, 99 hard error.

fl_skip() {
	# A skip is a failure where the run must be complete (CI sets FL_REQUIRE_ALL=1).
	if [ "${FL_REQUIRE_ALL:-0}" = 1 ]; then
		echo "FAIL (required): $*" >&2
		exit 99
	fi
	echo "SKIP: $*" >&2
	exit 77
}

fl_need_peer() {
	if [ -z "${FL_PEER_DIR:-}" ] || [ ! -f "$FL_PEER_DIR/filelock/__init__.py" ]; then
		fl_skip "Python peer not found (FL_PEER_DIR=${FL_PEER_DIR:-unset})"
	fi
	FL_PY=${FL_PYTHON3:-/usr/bin/python3}
	[ -x "$FL_PY" ] || fl_skip "no python3 at $FL_PY"
	export PYTHONDONTWRITEBYTECODE=1
}
