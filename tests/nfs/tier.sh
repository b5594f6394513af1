# SPDX-License-Identifier: MIT
# tier.sh -- sourced by the NFS tier's suites before ../cluster/*.sh: the
# same scenarios, on hosts that mount an nfs-ganesha export through nfsfuse
# instead of bindfs (see README.md).  FL_NFS_TIER=0 skips them.
if [ "${FL_NFS_TIER:-1}" = 0 ]; then
	echo "SKIP: the NFS tier is switched off (FL_NFS_TIER=0)"
	exit 77
fi
export CLUSTER_FS=nfs
