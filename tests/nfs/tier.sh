# SPDX-License-Identifier: MIT
# tier.sh -- sourced by the NFS tier's suites before ../cluster/*.sh: the
# same scenarios, on hosts that mount an nfs-ganesha export through nfsfuse
# instead of bindfs (see README.md).
#
# Opt-in: FL_NFS_TIER=1 runs them.  Without it they skip (exit 77, whatever
# FL_REQUIRE_ALL says: nothing is missing, the tier is switched off) until
# it is known to be reliable: under the load of a full make check one run of
# soft-rw.sh hung in its skew scenario until the suite's watchdog fired.
if [ "${FL_NFS_TIER:-0}" != 1 ]; then
	echo "SKIP: the NFS tier (nfs-ganesha + nfsfuse) runs only with FL_NFS_TIER=1"
	exit 77
fi
export CLUSTER_FS=nfs
