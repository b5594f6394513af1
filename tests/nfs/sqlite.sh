#!/bin/bash
# SPDX-License-Identifier: MIT
# ../cluster/sqlite.sh on the NFS tier: unmodified sqlite3 on three hosts
# that mount an nfs-ganesha export through nfsfuse, with and without the
# preload shim's byte-range emulation.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
. "$(dirname "$0")/tier.sh"
# One sqlite3 per host, 20 transactions each: every file operation is a
# synchronous round trip through nfsfuse, so the bindfs suite's 2 x 50 per
# host would not finish in its time limit.
export CL_SQ_P=${CL_SQ_P:-1} CL_SQ_K=${CL_SQ_K:-20}
exec bash "$(dirname "$0")/../cluster/sqlite.sh" "$@"
