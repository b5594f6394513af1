#!/bin/bash
# SPDX-License-Identifier: MIT
# git.sh -- git on three simulated hosts under the preload shim with a
# `dotlock` rule on the repository's index.lock that has a heartbeat
# (stale_threshold=2 heartbeat_interval=0.3).  git creates index.lock with
# O_CREAT|O_EXCL, keeps it for as long as an operation lasts (here: while
# `git commit` waits for its editor) and renames it onto index; a second
# git fails at once with "File exists".
#   live   host 1's commit holds index.lock 3 s past stale_threshold while
#          `git add` on hosts 2 and 3, each a fresh process, keeps failing,
#          with host 1's clock 5 minutes behind, host 3's 5 minutes ahead,
#          and host 1 paused for 1 s on the way; then the commit completes;
#   crash  host 1 dies with its commit's index.lock in place; fresh `git add`
#          processes on hosts 2 and 3 get in within stale_threshold + 2 s;
#          the repository is consistent (git fsck) and has every change.
# CL_ONETRY_BASELINE=1 reports the recovery time without judging it (to
# measure a build from before the ledger with the same script).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
CL_NAME=git
. "$(dirname "$0")/lib.sh"
FLP=$FL_TOP_BUILDDIR/tests/preload/filelock-preload
GIT=${FL_GIT:-/usr/bin/git}
STALE_MS=2000
case ${FL_SANITIZERS-} in
*address* | *thread*)
	echo "SKIP: a sanitizer runtime cannot be preloaded into foreign programs"
	exit 77
	;;
esac
[ -x "$GIT" ] || cluster_skip "needs $GIT (Debian package git)"
if [ ! -x "$FLP" ]; then
	echo "[$CL_NAME] ERROR: $FLP is not built" >&2
	exit 99
fi
CL_NEED=faketime
CL_WATCHDOG_SECONDS=${CL_WATCHDOG_SECONDS:-90}
cl_start 3
export GIT_CONFIG_NOSYSTEM=1 HOME=$CL_TMP GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid \
	GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
POL=$CL_TMP/preload.conf
echo "$M/repo/.git/index.lock dotlock stale_threshold=2 heartbeat_interval=0.3" >"$POL"
"$GIT" init -q "$S/repo"
echo 0 >"$S/repo/f0"
"$GIT" -C "$S/repo" add f0
"$GIT" -C "$S/repo" commit -q -m init
# The editor says "ready" on git's stdout and waits for a line on its stdin.
ED=$CL_TMP/editor.sh
printf '%s\n' '#!/bin/sh' 'echo ready' 'read -r _' 'echo "commit from $(hostname)" >"$1"' >"$ED"
chmod +x "$ED"

git_on() {
	local i=$1
	shift
	cluster_exec "$i" "$FLP" --config "$POL" "$GIT" -C "$M/repo" "$@" 2>>"$CL_TMP/git.err.$i"
}

# commit_holder NAME I: `git commit -a` on host I, waiting in its editor.
commit_holder() {
	echo "$1" >"$S/repo/$1"
	"$GIT" -C "$S/repo" add "$1"
	holder_start "$1" "$2" env GIT_EDITOR="$ED" "$FLP" --config "$POL" "$GIT" -C "$M/repo" commit -q -a
	holder_expect "$1" '^ready' 20
}

# live
cluster_skew 1 -300
cluster_skew 3 +300
if commit_holder live 1; then
	t0=$(cl_mono)
	end=$((t0 + (STALE_MS + 3000) * 1000000))
	tries=0 bad= frozen=
	while [ "$(cl_mono)" -lt "$end" ]; do
		now=$(cl_mono)
		if [ -z "$frozen" ] && [ $((now - t0)) -gt 1000000000 ]; then
			cluster_freeze 1
			frozen=$now
		elif [ -n "$frozen" ] && [ "$frozen" != done ] && [ $((now - frozen)) -gt 1000000000 ]; then
			cluster_thaw 1
			frozen=done
		fi
		h=$((2 + tries % 2))
		echo "$tries" >"$S/repo/t$tries"
		if git_on $h add "t$tries"; then
			bad="try $tries on host $h succeeded"
			break
		fi
		tries=$((tries + 1))
	done
	[ "$frozen" = done ] || cluster_thaw 1
	ls_lock=$([ -e "$S/repo/.git/index.lock" ] && echo present)
	holder_send live done
	holder_close live
	if [ -z "$bad" ] && [ "$ls_lock" = present ] && [ "$H_RC" = 0 ] &&
		"$GIT" -C "$S/repo" log -1 --format=%s | grep -q "commit from node1"; then
		cl_ok "live: $tries fresh git add on hosts 2 (true time) and 3 (+300 s) refused over stale_threshold + 3 s with host 1 at -300 s and paused for 1 s; host 1's commit then completed"
	else
		cl_fail "live: ${bad:-index.lock ${ls_lock:-missing}, commit exit $H_RC}: $(tail -2 "$CL_TMP"/git.err.* 2>/dev/null)"
	fi
else
	cl_fail "live: commit on host 1: $H_LINE"
	holder_close live
fi
cluster_skew 1 0
cluster_skew 3 0

# crash
if commit_holder crash 1; then
	t0=$(cl_mono)
	cluster_crash 1
	holder_close crash
	tries=0 ok_ms=
	echo crashed >"$S/repo/after"
	while [ $(($(cl_mono) - t0)) -lt 20000000000 ]; do
		h=$((2 + tries % 2))
		tries=$((tries + 1))
		if git_on $h add after; then
			ok_ms=$(cl_ms "$t0" "$(cl_mono)")
			break
		fi
	done
	git_on 2 commit -q -m "after the crash"
	rc=$?
	if [ -z "$ok_ms" ]; then
		cl_fail "crash: no fresh git add got in within 20 s ($tries tries)"
	elif [ "$ok_ms" -gt $((STALE_MS + 2000)) ] && [ "${CL_ONETRY_BASELINE:-0}" != 1 ]; then
		cl_fail "crash: recovery took $ok_ms ms, more than stale_threshold + 2 s"
	elif [ $rc -ne 0 ] || ! "$GIT" -C "$S/repo" fsck --no-progress 2>>"$CL_TMP/git.err.fsck" ||
		[ "$("$GIT" -C "$S/repo" show HEAD:after)" != crashed ]; then
		cl_fail "crash: the commit after recovery (exit $rc) or the repository is broken: $(tail -3 "$CL_TMP"/git.err.*)"
	else
		cl_ok "crash: host 1 died in a commit; a fresh git add on host $h got in after $ok_ms ms ($tries tries; stale ${STALE_MS} ms), commit and fsck ok"
	fi
	cluster_boot 1
else
	cl_fail "crash: commit on host 1: $H_LINE"
	holder_close crash
fi
cl_finish
