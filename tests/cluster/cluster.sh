#!/bin/bash
# SPDX-License-Identifier: MIT
#
# cluster.sh -- simulate several NFS client hosts on one machine.
#
# A host is a PID + UTS + mount + net namespace with its own hostname, its own
# PID 1 (nodeinit), its own boot_id and machine-id (bind-mounted over the
# shared ones), and its own bindfs mount of one shared backing directory at
# the same path ($CLUSTER_DIR/mnt) in every host.  Through bindfs, O_EXCL
# create, link() and rename() stay atomic across hosts (the backing
# filesystem decides each race), attributes are cached per host for
# attr_timeout/entry_timeout, and kernel flock/fcntl locks are NOT
# coordinated across hosts: NFS with local_lock=all or a broken lock manager,
# the world the library is written for.
#
# Each host has a cgroup v2 subtree:  <cluster>/nodeI/app  (PID 1 and every
# command run on the host) and <cluster>/nodeI/fs (the bindfs daemon), so a
# host can be paused without its filesystem client (freeze: a GC pause), its
# filesystem client can be paused alone (hangfs: "server not responding"),
# and everything can be killed at once (crash: cgroup.kill).
#
# Use as a command (state lives in $CLUSTER_DIR, printed by "up"):
#   export CLUSTER_DIR=$(cluster.sh up 3 [-o BINDFS_OPTS])
#   cluster.sh exec I CMD...     run CMD on host I, wait, return its status
#   cluster.sh spawn I CMD...    run CMD on host I in the background (output in
#                                $CLUSTER_DIR/nodeI/spawn.log); prints the host
#                                pid whose exit status is CMD's
#   cluster.sh crash I | boot I  kill every process of host I at once | restart it
#   cluster.sh freeze I | thaw I         pause/resume host I's processes
#   cluster.sh hangfs I | unhangfs I     pause/resume host I's FUSE daemon only
#   cluster.sh skew I [+-]SECONDS        later exec/spawn on host I see a shifted
#                                        wall clock (libfaketime; a touch still
#                                        stamps the true time, as on NFS); 0
#                                        removes it
#   cluster.sh hangsrv | unhangsrv       (NFS tier) pause/resume the NFS server
#   cluster.sh status | down
# Or source it (". cluster.sh") and call cluster_up, cluster_exec, ... as
# functions; cluster_spawn then leaves the pid in CLUSTER_PID so that the
# caller can `wait` for it.  Call cluster_require first: it exits 77 (skip)
# when the machine cannot run the harness, or 99 when FL_REQUIRE_ALL=1.
#
# The NFS tier (CLUSTER_FS=nfs at "up"): instead of bindfs, an NFS server
# (nfs-ganesha, VFS FSAL, after its portmapper rpcbind) runs in a namespace
# of its own (PID + mount + net + UTS, cgroup <cluster>/server) and exports the
# shared directory over NFSv3; host I reaches it at 10.77.I.1 over a veth pair
# (10.77.I.2 on the host's side; these addresses exist only in the cluster's
# namespaces) and mounts it with nfsfuse (tests/nfs), a FUSE client speaking
# NFSv3 through libnfs, with the same timeouts as bindfs would get.  There
# O_EXCL is a GUARDED CREATE, UTIME_NOW is stamped by the server's clock, and
# a file renamed over by another host gives ESTALE to a reader that had it
# open.  hangfs pauses one host's nfsfuse; hangsrv pauses the server for all.
# Each nfsfuse counts the ESTALE replies it met in nodeI/nfsfuse.stats.N.
#
# Environment: CLUSTER_NODEINIT (path of nodeinit), CLUSTER_BINDFS_OPTS
# (default attr_timeout=0.1,entry_timeout=0.1), NODE_PRELOAD (LD_PRELOAD for
# commands on the hosts only, combined with libfaketime; FL_SAN_RT, a
# sanitizer runtime, is put first when libfaketime is added), CLUSTER_FORCE=1
# (exec into a frozen host: the command freezes at once), CLUSTER_FS (bindfs,
# the default, or nfs), CLUSTER_NFSFUSE (path of nfsfuse).

if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

CLUSTER_SELF=${BASH_SOURCE[0]}
CLUSTER_SRCDIR=$(cd "$(dirname "$CLUSTER_SELF")" && pwd)

_cl_die() {
	echo "cluster.sh: $*" >&2
	return 1
}

# Exits the calling test with 77 (skip) or, under FL_REQUIRE_ALL=1, 99.
cluster_skip() {
	if [ "${FL_REQUIRE_ALL:-0}" = 1 ]; then
		echo "FAIL: cannot run the cluster tests: $* (FL_REQUIRE_ALL=1 forbids skipping)" >&2
		exit 99
	fi
	echo "SKIP: cannot run the cluster tests: $*"
	exit 77
}

_cl_cgroot() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}

_cl_nodeinit() {
	local p
	for p in "${CLUSTER_NODEINIT:-}" "${FL_TOP_BUILDDIR:+$FL_TOP_BUILDDIR/tests/cluster/nodeinit}" \
		"$CLUSTER_SRCDIR/nodeinit"; do
		if [ -n "$p" ] && [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

_cl_nfsfuse() {
	local p
	for p in "${CLUSTER_NFSFUSE:-}" "${FL_TOP_BUILDDIR:+$FL_TOP_BUILDDIR/tests/nfs/nfsfuse}" \
		"$CLUSTER_SRCDIR/../nfs/nfsfuse"; do
		if [ -n "$p" ] && [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

_cl_faketime_lib() {
	local p
	for p in "${CLUSTER_FAKETIME_LIB:-}" /usr/lib/*/faketime/libfaketimeMT.so.1 \
		/usr/lib/faketime/libfaketimeMT.so.1 /usr/lib/*/faketime/libfaketime.so.1; do
		if [ -n "$p" ] && [ -e "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Prints why this machine cannot run the harness, or nothing.
cluster_missing() {
	local root t
	if [ "$(id -u)" != 0 ]; then
		echo "needs root (namespaces, mounts, cgroups)"
		return
	fi
	if [ ! -c /dev/fuse ] || ! { : </dev/fuse; } 2>/dev/null; then
		echo "needs /dev/fuse"
		return
	fi
	for t in bindfs unshare nsenter mkfifo awk timeout; do
		if ! command -v "$t" >/dev/null 2>&1; then
			echo "needs $t (Debian: bindfs, util-linux, coreutils, gawk or mawk)"
			return
		fi
	done
	if ! _cl_nodeinit >/dev/null; then
		echo "nodeinit is not built (set CLUSTER_NODEINIT or FL_TOP_BUILDDIR)"
		return
	fi
	if [ "${CLUSTER_FS:-bindfs}" = nfs ]; then
		for t in ganesha.nfsd rpcbind ip; do
			if ! command -v "$t" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$t" ] && [ ! -x "/sbin/$t" ]; then
				echo "the NFS tier needs $t (Debian: nfs-ganesha nfs-ganesha-vfs rpcbind iproute2)"
				return
			fi
		done
		if ! compgen -G "/usr/lib/*/ganesha/libfsalvfs.so" >/dev/null &&
			! compgen -G "/usr/lib/ganesha/libfsalvfs.so" >/dev/null; then
			echo "the NFS tier needs ganesha's VFS FSAL (Debian: nfs-ganesha-vfs)"
			return
		fi
		if ! _cl_nfsfuse >/dev/null; then
			echo "the NFS tier needs nfsfuse, built only when configure finds libnfs and fuse3 (Debian: libnfs-dev libfuse3-dev)"
			return
		fi
	fi
	root=$(_cl_cgroot)
	if [ -z "$root" ] || [ ! -w "$root/cgroup.procs" ]; then
		echo "needs a writable cgroup v2 hierarchy"
		return
	fi
	if ! unshare --pid --fork --uts --mount --net --mount-proc --propagation private true \
		2>/dev/null; then
		echo "cannot create PID/UTS/mount/net namespaces"
		return
	fi
}

# Skips (exit 77/99) unless the machine can run the harness.
cluster_require() {
	local why
	why=$(cluster_missing)
	if [ -n "$why" ]; then
		cluster_skip "$why"
	fi
	if [ "${1:-}" = faketime ] && ! _cl_faketime_lib >/dev/null; then
		cluster_skip "needs libfaketime (Debian package faketime)"
	fi
}

_cl_state() {
	if [ -z "${CLUSTER_DIR:-}" ] || [ ! -e "$CLUSTER_DIR/.fl-cluster" ]; then
		_cl_die "no cluster: run 'up' and export CLUSTER_DIR"
		return 1
	fi
	read -r CLUSTER_CG <"$CLUSTER_DIR/cgroup" || return 1
	CLUSTER_MNT=$CLUSTER_DIR/mnt
	CLUSTER_SHARED=$CLUSTER_DIR/shared
	CLUSTER_FSKIND=bindfs
	read -r CLUSTER_FSKIND 2>/dev/null <"$CLUSTER_DIR/fs"
}

_cl_node() {
	_cl_state || return 1
	case $1 in
	'' | *[!0-9]*)
		_cl_die "bad host number '$1'"
		return 1
		;;
	esac
	if [ ! -d "$CLUSTER_DIR/node$1" ]; then
		_cl_die "no host $1"
		return 1
	fi
	CL_ND=$CLUSTER_DIR/node$1
	CL_NCG=$CLUSTER_CG/node$1
}

# Sets CL_INIT to host I's PID 1 (as the machine sees it); fails if it is down.
_cl_init_pid() {
	CL_INIT=
	read -r CL_INIT 2>/dev/null <"$CL_ND/init.pid" || return 1
	[ -n "$CL_INIT" ] && [ -d "/proc/$CL_INIT" ]
}

# Polls FILE until it contains the line LINE, for at most SECONDS.
_cl_wait_line() {
	local file=$1 line=$2 n=$(($3 * 100))
	while [ "$n" -gt 0 ]; do
		if grep -qx "$line" "$file" 2>/dev/null; then
			return 0
		fi
		sleep 0.01
		n=$((n - 1))
	done
	return 1
}

# Builds CL_ARGV: the argv that runs CMD... on host I; the caller runs it
# from a subshell that first joins CL_PROCS (the host's app cgroup).  Written
# with builtins only: forks are slow on a loaded machine.
_cl_argv() {
	local i=$1 pre frozen=0 skew=0 wd=/
	shift
	_cl_node "$i" || return 1
	_cl_init_pid || {
		_cl_die "host $i is down"
		return 1
	}
	read -r frozen 2>/dev/null <"$CL_NCG/app/cgroup.freeze"
	if [ "$frozen" = 1 ] && [ "${CLUSTER_FORCE:-0}" != 1 ]; then
		_cl_die "host $i is frozen (CLUSTER_FORCE=1 runs the command anyway; it freezes at once)"
		return 75
	fi
	pre=${NODE_PRELOAD:-}
	read -r skew 2>/dev/null <"$CL_ND/skew"
	if [ -d "$PWD" ]; then
		wd=$PWD
	fi
	CL_PROCS=$CL_NCG/app/cgroup.procs
	CL_ARGV=(nsenter -t "$CL_INIT" --pid --uts --mount --net "--wd=$wd" --)
	if [ -n "$skew" ] && [ "$skew" != 0 ]; then
		if [ -z "${CL_FAKETIME:-}" ]; then
			CL_FAKETIME=$(_cl_faketime_lib) || {
				_cl_die "libfaketime not found (Debian package faketime)"
				return 1
			}
		fi
		# A sanitizer runtime must stay first in LD_PRELOAD.
		pre="${FL_SAN_RT:+$FL_SAN_RT }$CL_FAKETIME${pre:+ $pre}"
		# FAKE_UTIME=1: futimens(NULL)/utimensat(NULL) stamp the true time, as
		# an NFS server does (SET_TO_SERVER_TIME); without it libfaketime
		# stamps a shifted time no real client could produce.
		CL_ARGV+=(env "LD_PRELOAD=$pre" "FAKETIME=$skew" FAKETIME_DONT_FAKE_MONOTONIC=1
			FAKE_UTIME=1)
	elif [ -n "$pre" ]; then
		CL_ARGV+=(env "LD_PRELOAD=$pre")
	fi
	CL_ARGV+=("$@")
}

# cluster_exec I CMD...: runs CMD on host I and returns its exit status.
cluster_exec() {
	local rc
	_cl_argv "$@" || {
		rc=$?
		return $rc
	}
	(
		echo "$BASHPID" >"$CL_PROCS" && exec "${CL_ARGV[@]}"
	)
}

# cluster_spawn I CMD...: starts CMD on host I in the background with the
# caller's stdio; CLUSTER_PID is the host pid whose exit status is CMD's.
cluster_spawn() {
	local rc
	_cl_argv "$@" || {
		rc=$?
		return $rc
	}
	(
		echo "$BASHPID" >"$CL_PROCS" && exec "${CL_ARGV[@]}"
	) &
	CLUSTER_PID=$!
}

# Starts host I (a fresh boot: new PID 1, new boot_id, same machine-id).
cluster_boot() {
	local i=$1 init upid line opts
	_cl_node "$i" || return 1
	if _cl_init_pid; then
		_cl_die "host $i is already up"
		return 1
	fi
	if [ -z "${CL_NODEINIT:-}" ]; then
		CL_NODEINIT=$(_cl_nodeinit) || {
			_cl_die "nodeinit is not built"
			return 1
		}
	fi
	mkdir -p "$CL_NCG/app" "$CL_NCG/fs" || return 1
	echo 0 >"$CL_NCG/app/cgroup.freeze"
	echo 0 >"$CL_NCG/fs/cgroup.freeze"
	cat /proc/sys/kernel/random/uuid >"$CL_ND/boot_id"
	if [ ! -s "$CL_ND/machine-id" ]; then
		tr -d '-' </proc/sys/kernel/random/uuid >"$CL_ND/machine-id"
	fi
	rm -f "$CL_ND/ready"
	mkfifo "$CL_ND/ready" || return 1
	(
		echo "$BASHPID" >"$CL_NCG/app/cgroup.procs" &&
			exec unshare --pid --fork --kill-child --uts --mount --net --mount-proc \
				--propagation private "$CL_NODEINIT" "node$i"
	) <"/dev/null" >"$CL_ND/ready" 2>>"$CL_ND/init.log" &
	upid=$!
	# Not a job of the caller's: no "Killed" message when the host crashes.
	disown "$upid" 2>/dev/null
	if ! read -r -t 10 line <"$CL_ND/ready" || [ "$line" != ready ]; then
		_cl_die "host $i did not start (see $CL_ND/init.log)"
		return 1
	fi
	rm -f "$CL_ND/ready"
	init=
	read -r init _ 2>/dev/null <"/proc/$upid/task/$upid/children"
	if [ -z "$init" ]; then
		_cl_die "host $i: cannot find its PID 1"
		return 1
	fi
	echo "$upid" >"$CL_ND/unshare.pid"
	echo "$init" >"$CL_ND/init.pid"
	# Private loopback, this boot's identity over the machine-wide one, then
	# the filesystem client, moved into its own cgroup so that hangfs can
	# pause it alone.  bindfs (or nfsfuse) returns once the mount is live and
	# leaves its daemon behind, re-parented to the host's PID 1.
	read -r opts <"$CLUSTER_DIR/bindfs.opts"
	if [ "$CLUSTER_FSKIND" = nfs ]; then
		_cl_nfs_mount "$i" "$opts"
		return
	fi
	cluster_exec "$i" sh -c '
		ip link set lo up 2>/dev/null
		mount --bind "$1" /proc/sys/kernel/random/boot_id || exit 1
		if [ -e /etc/machine-id ]; then mount --bind "$2" /etc/machine-id || exit 1; fi
		echo $$ >"$3" || exit 1
		exec bindfs ${4:+-o "$4"} "$5" "$6"
	' sh "$CL_ND/boot_id" "$CL_ND/machine-id" "$CL_NCG/fs/cgroup.procs" "$opts" \
		"$CLUSTER_SHARED" "$CLUSTER_MNT" </dev/null >>"$CL_ND/init.log" 2>&1 || {
		_cl_die "host $i: identity mounts or bindfs failed (see $CL_ND/init.log)"
		return 1
	}
}

# --- the NFS tier ------------------------------------------------------------

# Starts the NFS server's namespace (PID 1: nodeinit), rpcbind and ganesha in
# it, and waits until NFS and MOUNT listen.
_cl_nfs_server_up() {
	local sd=$CLUSTER_DIR/server cg=$CLUSTER_CG/server upid init line
	mkdir -p "$sd" "$cg" || return 1
	echo 0 >"$cg/cgroup.freeze"
	# No NLM, no NFSv4 (its libnfs client mishandles SETATTR of times), TCP
	# only, fixed ports (the namespace is ours alone), and no attribute
	# cache in the server: the tests read the exported directory directly.
	cat >"$sd/ganesha.conf" <<-EOF
		NFS_CORE_PARAM {
			Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false;
			Protocols = 3; NFS_Port = 2049; MNT_Port = 20048;
		}
		NFSV4 { Graceless = true; }
		NFS_KRB5 { Active_krb5 = false; }
		EXPORT {
			Export_Id = 1; Path = "$CLUSTER_SHARED"; Pseudo = "/shared";
			Access_Type = RW; Squash = No_Root_Squash; Protocols = 3;
			Transports = TCP; SecType = sys; Attr_Expiration_Time = 0;
			FSAL { Name = VFS; }
		}
	EOF
	rm -f "$sd/ready"
	mkfifo "$sd/ready" || return 1
	(
		echo "$BASHPID" >"$cg/cgroup.procs" &&
			exec unshare --pid --fork --kill-child --uts --mount --net --mount-proc \
				--propagation private "$CL_NODEINIT" nfsserver
	) </dev/null >"$sd/ready" 2>>"$sd/init.log" &
	upid=$!
	disown "$upid" 2>/dev/null
	if ! read -r -t 10 line <"$sd/ready" || [ "$line" != ready ]; then
		_cl_die "the NFS server's namespace did not start (see $sd/init.log)"
		return 1
	fi
	rm -f "$sd/ready"
	init=
	read -r init _ 2>/dev/null <"/proc/$upid/task/$upid/children"
	[ -n "$init" ] || {
		_cl_die "the NFS server: cannot find its PID 1"
		return 1
	}
	echo "$init" >"$sd/init.pid"
	# rpcbind first (ganesha registers with it), each with a private /run
	# and /var/lib/nfs; both end up children of the namespace's PID 1.
	(
		echo "$BASHPID" >"$cg/cgroup.procs" &&
			exec nsenter -t "$init" --pid --uts --mount --net -- sh -c '
		ip link set lo up || exit 1
		mount -t tmpfs -o mode=0755 fl-nfs-run /run || exit 1
		mkdir -p /var/lib/nfs && mount -t tmpfs fl-nfs-lib /var/lib/nfs || exit 1
		listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
		waitport() {
			n=0
			while ! listening "$1"; do
				n=$((n + 1)); [ $n -lt 300 ] || return 1; sleep 0.05
			done
		}
		rpcbind -f >"$1/rpcbind.log" 2>&1 </dev/null &
		waitport 111 || { echo "rpcbind did not start" >&2; exit 1; }
		ganesha.nfsd -F -f "$1/ganesha.conf" -L "$1/ganesha.log" -N NIV_EVENT \
			-p "$1/ganesha.pid" >"$1/ganesha.out" 2>&1 </dev/null &
		waitport 2049 && waitport 20048 || { echo "ganesha did not start" >&2; exit 1; }
	' sh "$sd"
	) </dev/null >>"$sd/init.log" 2>&1 || {
		_cl_die "the NFS server did not start (see $sd/init.log, $sd/ganesha.log)"
		return 1
	}
}

# Host I's network link to the server, then its nfsfuse mount (in the fs
# cgroup).  OPTS are the FUSE timeouts.
_cl_nfs_mount() {
	local i=$1 opts=$2 srv fuse bid
	read -r srv 2>/dev/null <"$CLUSTER_DIR/server/init.pid" || {
		_cl_die "the NFS server is down"
		return 1
	}
	fuse=$(_cl_nfsfuse) || {
		_cl_die "nfsfuse is not built"
		return 1
	}
	read -r bid <"$CL_ND/boot_id"
	_cl_init_pid || return 1
	nsenter -t "$srv" --net -- sh -c '
		ip link del "s$1" 2>/dev/null
		ip link add "s$1" type veth peer name eth0 netns "$2" &&
			ip addr add "10.77.$1.1/24" dev "s$1" && ip link set "s$1" up
	' sh "$i" "$CL_INIT" >>"$CL_ND/init.log" 2>&1 || {
		_cl_die "host $i: cannot link it to the NFS server (see $CL_ND/init.log)"
		return 1
	}
	cluster_exec "$i" sh -c '
		ip link set lo up 2>/dev/null
		ip addr add "10.77.$7.2/24" dev eth0 && ip link set eth0 up || exit 1
		mount --bind "$1" /proc/sys/kernel/random/boot_id || exit 1
		if [ -e /etc/machine-id ]; then mount --bind "$2" /etc/machine-id || exit 1; fi
		echo $$ >"$3" || exit 1
		exec "$8" "--stats=$9" "nfs://10.77.$7.1$5?version=3&nfsport=2049&mountport=20048" \
			"$6" -o "allow_other${4:+,$4}"
	' sh "$CL_ND/boot_id" "$CL_ND/machine-id" "$CL_NCG/fs/cgroup.procs" "$opts" \
		"$CLUSTER_SHARED" "$CLUSTER_MNT" "$i" "$fuse" "$CL_ND/nfsfuse.stats.$bid" \
		</dev/null >>"$CL_ND/init.log" 2>&1 || {
		_cl_die "host $i: identity mounts or nfsfuse failed (see $CL_ND/init.log)"
		return 1
	}
}

# cluster_estale: the ESTALE replies every nfsfuse of the cluster met so far,
# "met N retried N returned N" (0 0 0 on bindfs).
cluster_estale() {
	local f m r t a=0 b=0 c=0
	_cl_state || return 1
	for f in "$CLUSTER_DIR"/node*/nfsfuse.stats.*; do
		case $f in *.log | *.tmp) continue ;; esac
		[ -e "$f" ] || continue
		read -r _ m _ r _ t 2>/dev/null <"$f" || continue
		a=$((a + m))
		b=$((b + r))
		c=$((c + t))
	done
	echo "met $a retried $b returned $c"
}

cluster_hangsrv() {
	_cl_state && [ -d "$CLUSTER_CG/server" ] && _cl_freeze "$CLUSTER_CG/server" 1 "NFS server"
}
cluster_unhangsrv() {
	_cl_state && [ -d "$CLUSTER_CG/server" ] && _cl_freeze "$CLUSTER_CG/server" 0 "NFS server"
}

# cluster_up N [-o BINDFS_OPTS]: creates the state dir (unless CLUSTER_DIR
# names an empty one) and starts hosts 1..N.
cluster_up() {
	local n=$1 opts=${CLUSTER_BINDFS_OPTS-attr_timeout=0.1,entry_timeout=0.1} root i why
	shift
	case $n in
	'' | *[!0-9]* | 0)
		_cl_die "usage: up N [-o BINDFS_OPTS]"
		return 1
		;;
	esac
	if [ "${1:-}" = -o ]; then
		opts=$2
	fi
	why=$(cluster_missing)
	if [ -n "$why" ]; then
		_cl_die "$why"
		return 1
	fi
	CL_NODEINIT=$(_cl_nodeinit)
	if [ -z "${CLUSTER_DIR:-}" ]; then
		CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fl-cluster.XXXXXX") || return 1
	elif [ -e "$CLUSTER_DIR/.fl-cluster" ]; then
		_cl_die "$CLUSTER_DIR already holds a cluster"
		return 1
	fi
	export CLUSTER_DIR
	root=$(_cl_cgroot)
	: >"$CLUSTER_DIR/.fl-cluster"
	# The cgroup is named after the unique state dir, so concurrent runs
	# never share one.
	mkdir "$root/$(basename "$CLUSTER_DIR")" || return 1
	echo "$root/$(basename "$CLUSTER_DIR")" >"$CLUSTER_DIR/cgroup"
	echo "$opts" >"$CLUSTER_DIR/bindfs.opts"
	echo "${CLUSTER_FS:-bindfs}" >"$CLUSTER_DIR/fs"
	mkdir -p "$CLUSTER_DIR/shared" "$CLUSTER_DIR/mnt"
	chmod 1777 "$CLUSTER_DIR/shared"
	_cl_state || return 1
	if [ ! -e "$CLUSTER_CG/cgroup.kill" ] || [ ! -e "$CLUSTER_CG/cgroup.freeze" ]; then
		_cl_die "the kernel lacks cgroup.kill or cgroup.freeze (Linux >= 5.14 needed)"
		return 1
	fi
	if [ "$CLUSTER_FSKIND" = nfs ]; then
		_cl_nfs_server_up || return 1
	fi
	for ((i = 1; i <= n; i++)); do
		mkdir "$CLUSTER_DIR/node$i"
		cluster_boot "$i" || return 1
	done
	echo "$n" >"$CLUSTER_DIR/nodes"
}

# Waits until host I's cgroups hold no process.
_cl_wait_empty() {
	_cl_wait_line "$CL_NCG/cgroup.events" "populated 0" 10
}

# cluster_crash I: every process of host I, its FUSE daemon included, dies at once.
cluster_crash() {
	local i=$1
	_cl_node "$i" || return 1
	if [ -e "$CL_NCG/cgroup.kill" ]; then
		echo 1 >"$CL_NCG/cgroup.kill"
	fi
	if ! _cl_wait_empty; then
		_cl_die "host $i: processes survive cgroup.kill"
		return 1
	fi
	echo 0 >"$CL_NCG/app/cgroup.freeze"
	echo 0 >"$CL_NCG/fs/cgroup.freeze"
	rm -f "$CL_ND/init.pid" "$CL_ND/unshare.pid"
}

_cl_freeze() {
	local cg=$1 v=$2 what=$3
	echo "$v" >"$cg/cgroup.freeze" || return 1
	if ! _cl_wait_line "$cg/cgroup.events" "frozen $v" 5; then
		_cl_die "$what: cgroup.freeze=$v did not settle"
		return 1
	fi
}

cluster_freeze() { _cl_node "$1" && _cl_freeze "$CL_NCG/app" 1 "host $1"; }
cluster_thaw() { _cl_node "$1" && _cl_freeze "$CL_NCG/app" 0 "host $1"; }
cluster_hangfs() { _cl_node "$1" && _cl_freeze "$CL_NCG/fs" 1 "host $1 fs"; }
cluster_unhangfs() { _cl_node "$1" && _cl_freeze "$CL_NCG/fs" 0 "host $1 fs"; }

# cluster_skew I OFFSET: libfaketime offset ("+300", "-300", "+5m") for later
# commands on host I; 0 or "" removes it.
cluster_skew() {
	_cl_node "$1" || return 1
	if [ -n "${2:-}" ] && [ "$2" != 0 ] && ! _cl_faketime_lib >/dev/null; then
		_cl_die "libfaketime not found (Debian package faketime)"
		return 1
	fi
	echo "${2:-0}" >"$CL_ND/skew"
}

cluster_status() {
	local d i init
	_cl_state || return 1
	echo "cluster $CLUSTER_DIR (cgroup $CLUSTER_CG, $CLUSTER_FSKIND -o $(cat "$CLUSTER_DIR/bindfs.opts"))"
	if [ -d "$CLUSTER_CG/server" ]; then
		echo "NFS server: init $(cat "$CLUSTER_DIR/server/init.pid" 2>/dev/null)," \
			"frozen $(cat "$CLUSTER_CG/server/cgroup.freeze"), ESTALE $(cluster_estale)"
	fi
	for d in "$CLUSTER_DIR"/node[0-9]*; do
		i=${d##*node}
		_cl_node "$i" || continue
		if _cl_init_pid; then
			echo "node$i: up, init $CL_INIT, app frozen $(cat "$CL_NCG/app/cgroup.freeze")," \
				"fs frozen $(cat "$CL_NCG/fs/cgroup.freeze"), skew $(cat "$CL_ND/skew" 2>/dev/null || echo 0)"
		else
			echo "node$i: down"
		fi
	done
}

# cluster_down: kills every host, removes cgroups and the state dir.  Safe to
# call twice, on a half-started cluster, and from an EXIT trap.
cluster_down() {
	local d i rc=0 cg
	if [ -z "${CLUSTER_DIR:-}" ] || [ ! -e "$CLUSTER_DIR/.fl-cluster" ]; then
		return 0
	fi
	cg=$(cat "$CLUSTER_DIR/cgroup" 2>/dev/null)
	for d in "$CLUSTER_DIR"/node[0-9]*; do
		[ -d "$d" ] || continue
		i=${d##*node}
		if [ -n "$cg" ] && [ -d "$cg/node$i" ]; then
			cluster_crash "$i" || rc=1
			rmdir "$cg/node$i/app" "$cg/node$i/fs" "$cg/node$i" 2>/dev/null || rc=1
		fi
	done
	# The NFS server goes last: hosts blocked on it die first.
	if [ -n "$cg" ] && [ -d "$cg/server" ]; then
		echo 1 >"$cg/server/cgroup.kill"
		_cl_wait_line "$cg/server/cgroup.events" "populated 0" 10 || rc=1
		rmdir "$cg/server" || rc=1
	fi
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		rmdir "$cg" || rc=1
	fi
	# The mounts lived in the hosts' mount namespaces, which died with them;
	# this only catches a mount someone made on the machine itself.
	awk -v d="$CLUSTER_DIR" 'index($2, d) == 1 { print $2 }' /proc/self/mounts |
		while read -r m; do umount -l "$m" || rc=1; done
	rm -rf "$CLUSTER_DIR" || rc=1
	unset CLUSTER_CG
	return $rc
}

# As a command: cluster.sh VERB ARGS...
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	verb=${1:-}
	shift || true
	case $verb in
	up)
		cluster_up "$@" </dev/null >/dev/null || {
			cluster_down
			exit 1
		}
		echo "$CLUSTER_DIR"
		;;
	exec) cluster_exec "$@" ;;
	spawn)
		_cl_node "$1" || exit 1
		cluster_spawn "$@" </dev/null >>"$CL_ND/spawn.log" 2>&1 || exit $?
		echo "$CLUSTER_PID"
		;;
	crash | boot | freeze | thaw | hangfs | unhangfs | hangsrv | unhangsrv | skew | status | estale | down)
		"cluster_$verb" "$@"
		;;
	*)
		sed -n '/^# Use as a command/,/^# Environment/p' "$CLUSTER_SELF" | sed 's/^# \{0,1\}//' >&2
		exit 64
		;;
	esac
fi
