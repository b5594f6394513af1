#!/bin/sh
# SPDX-License-Identifier: MIT
# setuid.sh -- the shim inside set-user-ID programs, as a site installs it:
# named in /etc/ld.so.preload (of a private mount namespace here), with a
# system policy under the build's sysconfdir.  The attacker is uid nobody;
# the victims are a real set-user-ID root program built for the test and
# root processes.  Every attack of issue 15 on the shim's environment and
# policy, on terminal output and on the wrapper is replayed and must be
# refused with nothing printed that the attacker could not read before.
. "$FL_TOP_SRCDIR/tests/security/lib.sh"
sec_enter "$@"
sec_tmpdir

FLP_SO=$FL_TOP_BUILDDIR/preload/.libs/libfilelock-preload.so
CLI=$FL_TOP_BUILDDIR/cli/filelock
POL=${FL_SYSTEM_POLICY:?run through make check}
[ -f "$FLP_SO" ] || { echo "shim not built: $FLP_SO"; exit 99; }

# The victims live on a tmpfs of this namespace: the host's /tmp may be
# mounted nosuid, which would quietly turn the set-user-ID test into a
# plain one.  $R is 755 and root's; pub is everyone's (sticky).
R=$T/run
mkdir "$R" && mount -t tmpfs -o mode=755 sec-run "$R" || exit 99
SEC_MOUNTS="$R $SEC_MOUNTS"
install -o root -m 4755 "$FL_TOP_BUILDDIR/tests/security/fl-suid" "$R/suid" || exit 99
install -o root -m 755 "$FL_TOP_BUILDDIR/tests/security/fl-suid" "$R/plain" || exit 99
install -o root -m 644 "$FLP_SO" "$R/shim.so" || exit 99
mkdir -m 755 "$R/data" && mkdir -m 1777 "$R/pub" && mkdir -m 755 "$R/esc" || exit 99
mkdir -m 700 "$R/evil" && chown nobody "$R/evil" || exit 99

# The site's install: the shim in every program, one system policy.
sec_overlay /etc
sec_overlay_for "$POL"
good_policy() {
	printf '%s\n' "$R/data/* soft" "$R/pub/* soft" > "$POL" && chown root "$POL" &&
		chmod 644 "$POL"
}
good_policy || exit 99
echo "$R/shim.so" > /etc/ld.so.preload || exit 99

OUT=$T/out
ERR=$T/err
# victim WHO PROG PATH [VAR=VALUE...]: runs the victim (as nobody, or as
# root) with the variables set, bounded: a hang is exit 124.  Sets rc and
# vpid; output in $OUT and $ERR.  The programs on the way (setpriv, env,
# timeout) load the shim too and may speak; lines() counts the victim's.
victim() {
	who=$1 prog=$2 path=$3
	shift 3
	if [ "$who" = nobody ]; then
		as_nobody env "$@" timeout 10 "$prog" "$path" >"$OUT" 2>"$ERR"
	else
		env "$@" timeout 10 "$prog" "$path" >"$OUT" 2>"$ERR"
	fi
	rc=$?
	vpid=$(sed -n 's/^pid=//p' "$OUT")
}
lacks() { ! grep -q -e "$1" "$OUT" "$ERR"; }
said() { cat "$OUT" "$ERR" | sed 's/^/#   /'; }
vsaid() { grep "^filelock-preload\[${vpid:-none}\]" "$ERR"; }
lines() { [ "$(vsaid | wc -l)" -eq "$1" ]; }
LOCKED='secure=1 flock=0 errno=0 marker=1'

# -- the victim is real: set-user-ID, and the shim redirects its flock ------
victim nobody "$R/suid" "$R/data/f"
t "set-user-ID victim runs with AT_SECURE and the system policy" \
	'[ "$rc" = 0 ] && grep -qx "$LOCKED" "$OUT" && lines 0'

# -- FILELOCK_PRELOAD_CONFIG names /etc/shadow -------------------------------
# Before: the parse error printed shadow's first line.
victim nobody "$R/suid" "$R/data/f" FILELOCK_PRELOAD_CONFIG=/etc/shadow
t "shadow as policy: ignored, the system policy is in force" \
	'[ "$rc" = 0 ] && grep -qx "$LOCKED" "$OUT" && lines 0'
t "shadow as policy: not one byte of /etc/shadow printed" \
	'lacks "root:" && lacks "[$][0-9y][$]"'
if [ -u /usr/bin/chsh ]; then
	as_nobody env FILELOCK_PRELOAD_CONFIG=/etc/shadow timeout 10 chsh --help >"$OUT" 2>"$ERR"
	rc=$?
	t "chsh --help with shadow as policy: no shadow bytes, no hang" \
		'[ "$rc" != 124 ] && lacks "root:" && lacks "[$][0-9y][$]"'
else
	echo "# no set-user-ID chsh: the built victim stands alone"
fi

# -- a FIFO as policy --------------------------------------------------------
# Before: the constructor blocked in open() until a writer came.
mkfifo -m 666 "$R/pub/fifo" || exit 99
victim nobody "$R/suid" "$R/data/f" FILELOCK_PRELOAD_CONFIG="$R/pub/fifo"
t "FIFO as policy, set-user-ID: ignored, no hang" '[ "$rc" = 0 ] && grep -qx "$LOCKED" "$OUT"'
victim nobody "$R/plain" "$R/pub/g" FILELOCK_PRELOAD_CONFIG="$R/pub/fifo"
t "FIFO as policy, plain program: no hang, refused, locks fail" \
	'[ "$rc" = 0 ] && grep -q "errno=ENOLCK" "$OUT" && lines 2 &&
	 grep -q "^filelock-preload\[$vpid\]: $R/pub/fifo: refused: not a regular file" "$ERR"'
said

# -- an attacker's policy ----------------------------------------------------
# Before: root created the attacker's lock_dir and world-writable markers.
printf '%s\n' "$R/data/** soft lock_dir=$R/evil" "$R/** soft lock_dir=$R/evil" > "$R/evil/p.conf"
chown nobody "$R/evil/p.conf"
victim nobody "$R/suid" "$R/data/f" FILELOCK_PRELOAD_CONFIG="$R/evil/p.conf"
t "attacker policy: ignored in the set-user-ID program" \
	'[ "$rc" = 0 ] && grep -qx "$LOCKED" "$OUT" && [ "$(ls -A "$R/evil")" = p.conf ]'

# -- debug and statistics switches -------------------------------------------
victim nobody "$R/suid" "$R/data/f" FILELOCK_PRELOAD_DEBUG=1 FILELOCK_PRELOAD_STATS=1
t "DEBUG and STATS ignored in the set-user-ID program" '[ "$rc" = 0 ] && lines 0'
victim nobody "$R/plain" "$R/pub/g" FILELOCK_PRELOAD_DEBUG=1 FILELOCK_PRELOAD_STATS=1
t "... and honoured in a plain one" \
	'[ "$rc" = 0 ] && grep -q "^filelock-preload\[$vpid\]: stats:" "$ERR"'
# Every FILELOCK_* variable (etcd's included) goes through secure_getenv.
t "no plain getenv() in the library or the shim" \
	'! grep -n "[^_]getenv(" "$FL_TOP_SRCDIR"/lib/*.c "$FL_TOP_SRCDIR"/preload/*.c'

# -- policies a root process must refuse -------------------------------------
# One line naming the rule, never the content; every lock fails (ENOLCK).
secret() { printf '%s\n' "$R/data/* soft # SECRET-$1" > "$R/p-$1.conf" && chmod 644 "$R/p-$1.conf"; }
secret owner && chown nobody "$R/p-owner.conf"
secret grp && chmod 664 "$R/p-grp.conf"
secret oth && chmod 646 "$R/p-oth.conf"
secret ok && ln -s "$R/p-ok.conf" "$R/p-link.conf"
for c in "owner:not owned by root" "grp:writable by group or others" \
	"oth:writable by group or others" "link:a symbolic link"; do
	f=${c%%:*} why=${c#*:}
	victim root "$R/plain" "$R/data/f" FILELOCK_PRELOAD_CONFIG="$R/p-$f.conf"
	t "root refuses a policy: $why" \
		'[ "$rc" = 0 ] && grep -q "flock=-1 errno=ENOLCK" "$OUT" && lacks SECRET &&
		 grep -q "^filelock-preload\[$vpid\]: $R/p-$f.conf: refused: $why" "$ERR"'
done
victim root "$R/plain" "$R/data/f" FILELOCK_PRELOAD_CONFIG="$R/p-ok.conf"
t "root accepts a root-owned policy not writable by others" \
	'[ "$rc" = 0 ] && grep -q "flock=0 errno=0 marker=1" "$OUT" && lines 0'

# -- the system policy itself, in the set-user-ID program --------------------
chmod 664 "$POL"
victim nobody "$R/suid" "$R/data/f"
good_policy
t "group-writable system policy: refused, locks fail" \
	'grep -q "flock=-1 errno=ENOLCK" "$OUT" && lines 2 &&
	 grep -q "^filelock-preload\[$vpid\]: $POL: refused: writable by group or others" "$ERR"'
printf '%s\n' "$R/data/* soft" "$R/pub/* SECRET-kind" > "$POL" && chmod 600 "$POL"
victim nobody "$R/suid" "$R/data/f"
t "unreadable broken system policy: the line number only, no content" \
	'grep -q "flock=-1 errno=ENOLCK" "$OUT" && ! vsaid | grep -q SECRET &&
	 grep -q "^filelock-preload\[$vpid\]: $POL:2: invalid rule" "$ERR"'
victim root "$R/plain" "$R/data/f"
t "... while root, who can read it, is shown the detail" \
	'grep -q "^filelock-preload\[$vpid\]: $POL:2: unknown kind .SECRET-kind." "$ERR"'
good_policy

# -- escape bytes in a marker -------------------------------------------------
# Before: `filelock status` wrote the host field raw to the terminal.
ESC=$(printf '\033') BEL=$(printf '\007')
printf '1\nh\033]0;pwned\007\033[2J\n' > "$R/esc/m"
"$CLI" status -t soft "$R/esc/m" >"$OUT" 2>"$ERR"
t "status: a marker's escape bytes are shown escaped" \
	'grep -qF "host: h\\x1b]0;pwned\\x07\\x1b[2J" "$OUT" && lacks "$ESC" && lacks "$BEL"'
timeout 20 "$CLI" -t soft -w 1.2 --verbose "$R/esc/m" true >"$OUT" 2>"$ERR"
rc=$?
t "--verbose holder lines: escaped" \
	'[ "$rc" = 1 ] && grep -qF "host h\\x1b]0;pwned" "$ERR" && lacks "$ESC" && lacks "$BEL"'

# -- the wrapper without its shim --------------------------------------------
# Before: the command ran unprotected and the wrapper exited 0.
sed "s|^shim=.*|shim='$R/no-such-shim.so'|" "$FL_TOP_BUILDDIR/tests/preload/filelock-preload" > "$R/fp"
sh "$R/fp" touch "$R/ran" >"$OUT" 2>"$ERR"
rc=$?
t "wrapper without the shim: exit 125, the command not run" \
	'[ "$rc" = 125 ] && [ ! -e "$R/ran" ] && grep -q "cannot read the shim" "$ERR"'

# -- etcd credentials ---------------------------------------------------------
if [ "${FL_HAVE_ETCD-}" = yes ]; then
	etcd_cli() {
		env "$@" timeout 30 "$CLI" -t etcd -w 1 "$R/pub/e" touch "$R/ran" >"$OUT" 2>"$ERR"
		rc=$?
	}
	etcd_cli FILELOCK_ETCD_ENDPOINTS=http://192.0.2.1:2379 FILELOCK_ETCD_USER=u \
		FILELOCK_ETCD_PASSWORD=pw-SECRET-1
	t "etcd: a password over plain http is refused, never printed" \
		'[ "$rc" != 0 ] && [ ! -e "$R/ran" ] && lacks SECRET &&
		 grep -q "refusing to send the password of user u over plain http" "$ERR"'
	etcd_cli FILELOCK_ETCD_ENDPOINTS=http://127.0.0.1.nip.example:2379 FILELOCK_ETCD_USER=u \
		FILELOCK_ETCD_PASSWORD=pw-SECRET-1
	t "etcd: a host name that starts like 127/8 is not loopback" \
		'[ "$rc" != 0 ] && grep -q "refusing to send the password" "$ERR" && lacks SECRET'
	printf 'pw-SECRET-2\n' > "$R/pw" && chmod 644 "$R/pw"
	etcd_cli FILELOCK_ETCD_ENDPOINTS=https://192.0.2.1:2379 FILELOCK_ETCD_USER=u \
		FILELOCK_ETCD_PASSWORD_FILE="$R/pw"
	t "etcd: a password file others can read is refused" \
		'[ "$rc" != 0 ] && grep -q "password file $R/pw: readable by others" "$ERR" && lacks SECRET'
	chmod 600 "$R/pw"
	etcd_cli FILELOCK_ETCD_ENDPOINTS=http://127.0.0.1:1 FILELOCK_ETCD_USER=u \
		FILELOCK_ETCD_PASSWORD_FILE="$R/pw"
	t "etcd: loopback http with a password file goes ahead (and fails to connect)" \
		'[ "$rc" != 0 ] && lacks refusing && grep -q "127.0.0.1:1" "$ERR" && lacks SECRET'
	said
else
	echo "# etcd kind not built: its credential checks are not run"
fi

echo "$FAILS failed"
[ "$FAILS" = 0 ]
