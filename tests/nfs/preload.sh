#!/bin/bash
# SPDX-License-Identifier: MIT
# ../preload/cluster.sh on the NFS tier: the shim's flock (util-linux
# flock(1), Python, Perl) on three hosts that mount an nfs-ganesha export
# through nfsfuse: refused across hosts, an exact counter, a crashed holder's
# lease taken over after lease_duration.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
. "$(dirname "$0")/tier.sh"
exec bash "$(dirname "$0")/../preload/cluster.sh" "$@"
