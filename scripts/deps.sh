#!/bin/sh
# Installs the Debian packages that building and testing filelock need.
# Runs apt-get only as root and only for packages that are missing; set
# FL_NO_APT=1 to skip it entirely.
set -eu
[ "${FL_NO_APT:-0}" = 1 ] && exit 0
pkgs="build-essential autoconf automake libtool pkg-config
libcmocka-dev libsqlite3-dev sqlite3 python3 perl util-linux procps
bindfs fuse3 faketime iproute2 psmisc hdf5-tools python3-h5py git
clang libclang-rt-14-dev valgrind libuv1-dev
libcurl4-openssl-dev libjson-c-dev etcd-server etcd-client openssl
environment-modules tcl
nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-dev libfuse3-dev"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "deps: missing Debian packages:$missing (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The NFS tier's daemons (rpcbind, ganesha) run only inside the namespaces
# its tests create: keep their packages from starting them on the machine.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
if [ "$own_policy" = 1 ]; then
	rm -f "$policy"
fi
exit "${rc:-0}"
