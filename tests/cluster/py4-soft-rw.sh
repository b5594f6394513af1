#!/bin/bash
# SPDX-License-Identifier: MIT
# The cluster failure suite (scenarios.sh) for the soft-rw kind's default
# protocol, filelock-rw/1, with Python's filelock 4 (FL_PEER4_DIR) on host 2
# and the C library on hosts 1 and 3.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
KIND=soft-rw PEERS=py SRW_PROTOCOL=rw1 FL_PEER_DIR=${FL_PEER4_DIR:-}
CL_NAME_SUFFIX=4
. "$(dirname "$0")/scenarios.sh"
run_suite
