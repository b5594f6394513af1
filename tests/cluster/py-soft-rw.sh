#!/bin/bash
# SPDX-License-Identifier: MIT
# The cluster failure suite (scenarios.sh) for the soft-rw kind's legacy
# protocol with Python's filelock 3.32.3 (FL_PEER_DIR) on host 2 and the C
# library (protocol=legacy) on hosts 1 and 3.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
KIND=soft-rw PEERS=py SRW_PROTOCOL=legacy
. "$(dirname "$0")/scenarios.sh"
run_suite
