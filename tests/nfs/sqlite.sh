#!/bin/bash
# SPDX-License-Identifier: MIT
# ../cluster/sqlite.sh on the NFS tier: unmodified sqlite3 on three hosts
# that mount an nfs-ganesha export through nfsfuse, with and without the
# preload shim's byte-range emulation.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
. "$(dirname "$0")/tier.sh"
exec bash "$(dirname "$0")/../cluster/sqlite.sh" "$@"
