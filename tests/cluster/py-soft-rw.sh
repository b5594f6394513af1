#!/bin/bash
# SPDX-License-Identifier: MIT
# The cluster failure suite (scenarios.sh) for the soft-rw kind with Python's
# filelock (FL_PEER_DIR) on host 2 and the C library on hosts 1 and 3.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
KIND=soft-rw PEERS=py
. "$(dirname "$0")/scenarios.sh"
run_suite
