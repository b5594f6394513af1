#!/bin/sh
# SIGKILL storm: 8 processes take and release every kind's lock while random
# holders are SIGKILLed; no two live holders may overlap and every kind must
# keep making progress.  FL_STORM_SECONDS sets the length (default 12; the
# documented long run is FL_STORM_SECONDS=60).
. "$FL_TOP_SRCDIR/tests/lib.sh"
secs=${FL_STORM_SECONDS:-12}
# FL_STORM_KINDS="..." limits the kinds (default: every kind built).
kinds=${FL_STORM_KINDS:-}
d=$(mktemp -d -t fl-storm.XXXXXX) || exit 99
trap 'rm -rf "$d"' EXIT
timeout $((secs + 150)) "$FL_TOP_BUILDDIR/tests/stress/fl-storm" "$d" "$secs" $kinds
rc=$?
[ $rc = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $rc
