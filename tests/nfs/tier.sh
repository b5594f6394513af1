# SPDX-License-Identifier: MIT
# tier.sh -- sourced by the NFS tier's suites before ../cluster/*.sh: the
# same scenarios, on hosts that mount an nfs-ganesha export through nfsfuse
# instead of bindfs (see README.md).
#
# On by default: the suites run when root, FUSE, cgroup v2, the server
# packages and nfsfuse are there, and otherwise skip (exit 77) saying what is
# missing, or fail under FL_REQUIRE_ALL=1, as the bindfs suites do.
# FL_NFS_TIER=0 switches the tier off (exit 77 whatever FL_REQUIRE_ALL says:
# nothing is missing, it was asked not to run).
if [ "${FL_NFS_TIER:-1}" = 0 ]; then
	echo "SKIP: the NFS tier (nfs-ganesha + nfsfuse) is switched off (FL_NFS_TIER=0)"
	exit 77
fi
export CLUSTER_FS=nfs
