#!/bin/sh
# filelock-preload --check FILE (filelock check-policy): each rule as
# understood, FILE:LINE errors with exit 1, warnings with exit 0.
. "${FL_TOP_SRCDIR:-.}/tests/cli/lib.sh"

W=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
[ -x "$W" ] || { echo "no $W (run through make check)" >&2; exit 99; }
P=$T/site.conf

# --- a good policy: every rule printed, defaults filled in, no warning -----------
cat > "$P" <<'CONF'
# the site's policy
/nfs/jobs/*.lock     soft     timeout=30s poll_interval=100ms also_native=yes
/nfs/db/*.sqlite     lease    lease_duration=1m
/nfs/proj/**         soft-rw  heartbeat_interval=5 lock_dir=/nfs/.locks
/nfs/spool/*.lock    dotlock  stale_threshold=10m
/home/**             native
CONF
expect_rc 0 "a good policy passes" "$W" --check "$P"
expect_grep "^$P:2: /nfs/jobs/\*.lock soft: marker PATH.lock, timeout 30s, poll_interval 0.1s, also the kernel's flock$" "$T/out" "line 2 as understood"
expect_grep "^$P:3: /nfs/db/\*.sqlite lease: marker PATH.lock, lease_duration 60s, heartbeat_interval 20s (default), timeout forever$" "$T/out" "lease defaults filled in"
expect_grep "^$P:4: /nfs/proj/\*\* soft-rw: marker /nfs/.locks/PATH.lock, stale_threshold 15s (default), heartbeat_interval 5s" "$T/out" "lock_dir and soft-rw defaults"
expect_grep "^$P:5: /nfs/spool/\*.lock dotlock: .* older than 600s$" "$T/out" "dotlock age in seconds"
expect_grep "^$P:6: /home/\*\* native: lock calls pass through to the kernel$" "$T/out" "native"
expect_grep "^$P: 5 rules, 0 warnings" "$T/out" "summary"
expect_rc 0 "no warnings on stderr" test ! -s "$T/err"
expect_rc 0 "--check=FILE" "$W" --check="$P"
expect_rc 0 "filelock check-policy FILE" "$FL_CLI" check-policy "$P"
expect_grep "^$P: 5 rules" "$T/out" "check-policy prints the same"
expect_rc 0 "check-policy without FILE: the shim's policy" env FILELOCK_PRELOAD_CONFIG="$P" "$FL_CLI" check-policy
expect_grep "^$P: 5 rules" "$T/out" "default file is \$FILELOCK_PRELOAD_CONFIG"

# --- each kind of error: FILE:LINE: problem, exit 1 ------------------------------
bad() { # description, expected message, policy text
	printf '/ok/* soft\n%s\n' "$3" > "$T/bad.conf"
	expect_rc 1 "$1" "$W" --check "$T/bad.conf"
	expect_grep "^$T/bad.conf:2: $2" "$T/err" "$1: FILE:LINE and the problem"
}
bad "relative pattern" "pattern must be an absolute path, got 'jobs/\*.lock'" "jobs/*.lock soft"
bad "missing kind" "missing kind after pattern '/a'" "/a"
bad "unknown kind" "unknown kind 'sfot'" "/a sfot"
bad "unknown option" "unknown option 'color'" "/a soft color=red"
bad "not OPTION=VALUE" "expected OPTION=VALUE, got 'timeout'" "/a soft timeout"
bad "bad duration" "timeout: expected a duration" "/a soft timeout=5x"
bad "zero poll interval" "poll_interval must be > 0" "/a soft poll_interval=0"
bad "bad boolean" "also_native: expected yes or no" "/a soft also_native=maybe"
bad "relative lock_dir" "lock_dir must be an absolute path" "/a soft lock_dir=locks"
bad "option refused by strict" "heartbeat_interval is not used by kind strict" "/a strict heartbeat_interval=5"
bad "option refused by lease" "stale_threshold is not used by kind lease" "/a lease stale_threshold=60"
bad "option refused by soft-rw" "lease_duration is not used by kind soft-rw" "/a soft-rw lease_duration=60"
bad "soft-rw stale below its default heartbeat" "stale_threshold (20) must be greater than heartbeat_interval (30, the default)" "/a soft-rw stale_threshold=20"
bad "lease heartbeat not below the lease" "heartbeat_interval (60) must be below lease_duration (30, the default)" "/a lease heartbeat_interval=60"
bad "etcd option on another kind" "ttl is an option of kind etcd, not soft" "/a soft ttl=5"
bad "file option on etcd" "lock_dir has no meaning for kind etcd" "/a etcd lock_dir=/l"
expect_rc 1 "a missing file" "$W" --check "$T/nonexistent.conf"
expect_grep "$T/nonexistent.conf: cannot open: No such file or directory" "$T/err" "a missing file is named"
expect_rc 125 "--check without FILE" "$W" --check

# --- warnings: the shim accepts these, the checker explains them ------------------
cat > "$P" <<'CONF'
/nfs/jobs/*.lock   soft   timeout=5 timeout=6
/nfs/cache/        soft
/nfs/a/../b        soft
/nfs//c            soft
/nfs/jobs/a.lock   strict
/nfs/s/*           soft   heartbeat_interval=3
/tmp/**            native timeout=3
CONF
expect_rc 0 "warnings alone do not fail" "$W" --check "$P"
expect_grep "^$P:1: warning: timeout given twice; the last value, '6', wins$" "$T/err" "duplicate option"
expect_grep "^$P:1: /nfs/jobs/\*.lock soft: marker PATH.lock, timeout 6s$" "$T/out" "the last value is the one used"
expect_grep "^$P:2: warning: pattern '/nfs/cache/' can never match: paths are matched without a trailing '/'" "$T/err" "trailing slash"
expect_grep "^$P:3: warning: pattern '/nfs/a/../b' can never match" "$T/err" "dot-dot component"
expect_grep "^$P:4: warning: pattern '/nfs//c' can never match" "$T/err" "double slash"
expect_grep "^$P:5: warning: rule never applies: the rule of line 1 ('/nfs/jobs/\*.lock')" "$T/err" "hidden by an earlier rule"
expect_grep "^$P:6: warning: heartbeat_interval has no effect on kind soft$" "$T/err" "option the kind ignores"
expect_grep "^$P:7: warning: timeout has no effect on kind native$" "$T/err" "option of a pass-through rule"
expect_grep "^$P: 7 rules, 7 warnings" "$T/out" "warnings counted"

# The shim reads the file the checker passed: a never-matching rule really
# never redirects (the lock goes to the kernel, no marker appears).  Not in
# sanitizer builds: their runtime cannot be preloaded into flock(1).
case ${FL_SANITIZERS-} in *address* | *thread*) finish ;; esac
mkdir -p "$T/data"
printf '%s/data/ soft\n%s/data/x soft\n' "$T" "$T" > "$T/shim.conf"
expect_rc 0 "checker on the shim's file" "$W" --check "$T/shim.conf"
expect_grep "^$T/shim.conf:1: warning: pattern '$T/data/' can never match" "$T/err" "the trailing-slash rule is reported"
expect_rc 0 "flock under the shim" "$W" --config "$T/shim.conf" -- flock "$T/data/y" true
expect_rc 0 "no marker for a path only the dead rule names" test ! -e "$T/data/y.lock"
expect_rc 0 "flock under the shim on the good rule" "$W" --config "$T/shim.conf" -- flock "$T/data/x" sh -c "test -f '$T/data/x.lock'"

finish
