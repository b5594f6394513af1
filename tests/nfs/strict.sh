#!/bin/bash
# SPDX-License-Identifier: MIT
# The cluster failure suite (../cluster/scenarios.sh) for the strict kind on the
# NFS tier: nfs-ganesha over NFSv3, nfsfuse on every host.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
KIND=strict PEERS=c
. "$(dirname "$0")/tier.sh"
. "$(dirname "$0")/../cluster/scenarios.sh"
run_suite
