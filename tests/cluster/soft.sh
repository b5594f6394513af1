#!/bin/bash
# SPDX-License-Identifier: MIT
# The cluster failure suite (scenarios.sh) for the soft kind, C library on every host.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
KIND=soft PEERS=c
. "$(dirname "$0")/scenarios.sh"
run_suite
