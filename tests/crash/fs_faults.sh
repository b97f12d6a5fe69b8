#!/bin/bash
# capvaultd under file-system faults (the "disk full and other faults"
# cases diskfull.sh and watch_faults.sh leave out). Each case checks a
# clear log line and the right state: the daemon stays up, other folders
# keep working, a source is never lost, no partial object or record.
# - an import folder removed, then re-created; renamed away, then back;
#   made unreadable (chmod 000), then readable again;
# - the store read-only: at start-up (clear error, exit 1) and while
#   running (imports retried, sources kept, imported once writable);
# - the store locked by a running capvaultd: a second capvaultd and an
#   offline `capvault` fail at once naming the lock and its holder; the
#   first one keeps importing and answering;
# - a capture truncated or deleted in the middle of its import (held there
#   by ingest/ring.c's CAPVAULT_FAULT=pause hook), linked and copied: no
#   record for the changed bytes, the truncated source is retried and then
#   stored as it now is, a deleted one is reported and nothing is stored.
# As root the daemons run as nobody (setpriv), so that permissions bite;
# the parts that need that skip themselves when it cannot be done.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.sh"

MNT=
on_exit() {
	[ -z "$MNT" ] || umount "$MNT" 2>/dev/null || umount -l "$MNT"
	chmod -R u+rwX "$T" 2>/dev/null
}
skipped=()

# As root, the daemons run as nobody (DAEMON_AS, daemon_lib.sh).
UNPRIV=yes
if [ "$(id -u)" = 0 ]; then
	if command -v setpriv >/dev/null &&
		setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
		DAEMON_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
		chmod 755 "$T"
	else
		UNPRIV=no
	fi
fi
unprivileged() { [ "$UNPRIV" = yes ]; }
mine() { [ "${#DAEMON_AS[@]}" = 0 ] || chown -R 65534:65534 "$@"; }

# first_line TEXT: the first log line holding TEXT (none: nothing).
first_line() { grep -F -m1 -- "$1" "$T/d.log" || true; }
alive() {
	checks=$((checks + 1))
	kill -0 "$DPID" 2>/dev/null || fail "capvaultd died: $(tail -5 "$T/d.log")"
}
sha_of() { sha256sum <"$1" | cut -c1-64; }
api() { curl -s --max-time 10 --unix-socket "${SOCK:-$S/capvault.sock}" "$@"; }

# drop SRC DIR/NAME: a capture renamed into a folder, owned by the daemon's user.
drop() {
	cp "$1" "$T/stage.tmp"
	mine "$T/stage.tmp"
	mv "$T/stage.tmp" "$2"
}

# config STORE AFTER_IMPORT FOLDER...: the unix socket is STORE/capvault.sock,
# or $SOCK when set.
config() {
	local store=$1 after=$2 f
	shift 2
	printf 'store: %s\njobs: 1\nlog_level: info\napi:\n  listen: []\n' "$store"
	[ -z "${SOCK:-}" ] || printf '  unix_socket: %s\n' "$SOCK"
	printf 'import:\n' 
	for f in "$@"; do
		printf '  - path: %s\n    after_import: %s\n    settle_time: 0\n' "$f" "$after"
	done
}

# captured SHA: the catalog of $S (read through the daemon when it runs)
# holds SHA this many times.
captured() {
	"$CAPVAULT" ls --json --store "$S" >"$T/ls" 2>"$T/ls.err" || { echo "ls failed"; return; }
	jq --arg s "$1" '[.[] | select(.sha256 == $s)] | length' "$T/ls"
}

# store_clean: after the daemon stopped, fsck passes, objects = records, tmp/ empty.
store_clean() {
	local what=$1 objs recs
	expect_rc 0 "$CAPVAULT" fsck --store "$S"
	"$CAPVAULT" ls --json --store "$S" >"$T/ls"
	objs=$(find "$S/objects" -type f | wc -l)
	recs=$(jq -r '.[].sha256' "$T/ls" | sort -u | wc -l)
	check "$what: objects = records" "$recs" "$objs"
	check "$what: tmp/ empty" "" "$(ls -A "$S/tmp")"
}

"$MKCAP" --packets 200 --seed 1 -o "$T/a.pcap"
"$MKCAP" --packets 200 --seed 2 -o "$T/b.pcap"
"$MKCAP" --packets 200 --seed 3 -o "$T/c.pcap"
"$MKCAP" --packets 200 --seed 4 -o "$T/d.pcap"
"$MKCAP" --packets 200 --seed 5 -o "$T/e.pcap"

# ---- import folders removed, renamed, made unreadable while watched
folders() {
	S=$T/store1
	mkdir -p "$T/in1" "$T/in2" "$S"
	mine "$T/in1" "$T/in2" "$S"
	config "$S" delete "$T/in1" "$T/in2" >"$T/d.yaml"
	start_daemon

	# Removed, then re-created.
	rm -rf "$T/in1"
	wait_for "removal logged" logged "folder $T/in1: deleted or moved away; waiting for it to come back"
	drop "$T/a.pcap" "$T/in2/a.pcap"
	wait_for "other folder still imports" logged "imported $T/in2/a.pcap: capture"
	alive
	mkdir "$T/in1"
	mine "$T/in1"
	wait_for "re-created folder watched again" logged "folder $T/in1: back, watching with inotify again"
	drop "$T/b.pcap" "$T/in1/b.pcap"
	wait_for "re-created folder imports" logged "imported $T/in1/b.pcap: capture"

	# Renamed away, a file dropped into it there, renamed back.
	mv "$T/in1" "$T/in1.away"
	wait_for "rename logged" eval '[ "$(count_logged "folder $T/in1: deleted or moved away")" = 2 ]'
	drop "$T/c.pcap" "$T/in1.away/c.pcap"
	drop "$T/d.pcap" "$T/in2/d.pcap"
	wait_for "other folder imports meanwhile" logged "imported $T/in2/d.pcap: capture"
	check "nothing imported from the renamed folder" 0 "$(count_logged "$T/in1.away/c.pcap")"
	check "file in the renamed folder kept" yes "$([ -f "$T/in1.away/c.pcap" ] && echo yes)"
	mv "$T/in1.away" "$T/in1"
	wait_for "renamed folder back" eval '[ "$(count_logged "folder $T/in1: back")" = 2 ]'
	wait_for "file found in the returned folder" logged "imported $T/in1/c.pcap: capture"

	# Unreadable, a file dropped in by root, readable again.
	if ! unprivileged; then
		skipped+=("unreadable folder: running as root without setpriv")
	else
		chmod 000 "$T/in1"
		wait_for "unreadable folder logged" logged "folder $T/in1: cannot scan: Permission denied"
		drop "$T/e.pcap" "$T/in1/e.pcap"
		sleep 1.5
		check "file in the unreadable folder kept" yes "$([ -f "$T/in1/e.pcap" ] && echo yes)"
		"$MKCAP" --packets 50 --seed 6 -o "$T/f.pcap"
		drop "$T/f.pcap" "$T/in2/f.pcap"
		wait_for "other folder imports meanwhile" logged "imported $T/in2/f.pcap: capture"
		alive
		chmod 755 "$T/in1"
		wait_for "readable again logged" logged "folder $T/in1: readable again"
		wait_for "file imported once readable" logged "imported $T/in1/e.pcap: capture"
		check "imported once" 1 "$(count_logged "imported $T/in1/e.pcap:")"
	fi
	stop_daemon
	for f in a b c d e; do
		[ -f "$T/in1/$f.pcap" ] && continue # the unreadable part was skipped
		check "$f.pcap stored once" 1 "$(captured "$(sha_of "$T/$f.pcap")")"
	done
	store_clean folders
}

# ---- the store read-only
readonly_store() {
	S=$T/store2
	mkdir -p "$T/in3"
	mine "$T/in3"
	"$CAPVAULT" init --store "$S" >/dev/null
	expect_rc 0 "$CAPVAULT" import --store "$S" "$T/a.pcap"
	mine "$S"
	config "$S" delete "$T/in3" >"$T/d.yaml"

	# At start-up: a read-only bind mount (root), else permissions.
	local how=
	if [ "$(id -u)" = 0 ] && mount --bind "$S" "$S" 2>/dev/null; then
		MNT=$S
		if mount -o remount,ro,bind "$S" 2>/dev/null; then
			how=mount
		else
			umount "$MNT"
			MNT=
		fi
	fi
	if [ -z "$how" ] && unprivileged; then
		how=chmod
		find "$S" -type d -exec chmod a-w {} +
	fi
	if [ -z "$how" ]; then
		skipped+=("read-only store at start-up: neither a bind mount nor an unprivileged user")
	else
		rc=0
		timeout 60 env "${DAEMON_AS[@]}" "$CAPVAULTD" --config "$T/d.yaml" >"$T/start.out" 2>&1 || rc=$?
		echo "read-only store ($how): $(tail -1 "$T/start.out")"
		check "start-up on a read-only store ($how) fails with 1" 1 "$rc"
		grep -qE "$S.*(Read-only file system|Permission denied)" "$T/start.out" ||
			fail "start-up error names the store and why: $(cat "$T/start.out")"
		grep -qE "Sanitizer|runtime error|Aborted|core dumped" "$T/start.out" &&
			fail "start-up crashed: $(cat "$T/start.out")"
		if [ "$how" = mount ]; then
			umount "$MNT"
			MNT=
		else
			find "$S" -type d -exec chmod u+w {} +
		fi
	fi

	# While running: objects/ and tmp/ lose their write permission.
	if ! unprivileged; then
		skipped+=("read-only store while running: running as root without setpriv")
		return 0
	fi
	start_daemon
	find "$S/objects" "$S/tmp" -type d -exec chmod a-w {} +
	drop "$T/b.pcap" "$T/in3/b.pcap"
	wait_for "refused import retried" logged "retrying $T/in3/b.pcap later: "
	first_line "retrying $T/in3/b.pcap"
	first_line "retrying $T/in3/b.pcap" | grep -q "Permission denied" ||
		fail "retry line names the cause: $(grep -F "$T/in3/b.pcap" "$T/d.log")"
	check "source kept" yes "$([ -f "$T/in3/b.pcap" ] && echo yes)"
	check "not moved aside" no "$([ -e "$T/in3/.failed/b.pcap" ] && echo yes || echo no)"
	check "queries still answered" 200 "$(api -o /dev/null -w '%{http_code}' "http://x/v1/packets?count=1" || true)"
	alive
	find "$S/objects" "$S/tmp" -type d -exec chmod u+w {} +
	wait_for "imported once writable again" logged "imported $T/in3/b.pcap: capture"
	stop_daemon
	check "b.pcap stored once" 1 "$(captured "$(sha_of "$T/b.pcap")")"
	store_clean "read-only store"
}

# ---- the store locked by a running daemon, in the middle of an import
# (its temp file in tmp/ must survive the others' attempts to open the
# store). Its socket is not in the store, so `capvault` opens the store.
locked() {
	S=$T/store3
	SOCK=$T/sock/d.sock
	mkdir -p "$T/in4" "$T/in5" "$S" "$T/sock" "$T/marks"
	mine "$T/in4" "$T/in5" "$S" "$T/sock" "$T/marks"
	config "$S" keep "$T/in5" >"$T/d2.yaml"
	config "$S" keep "$T/in4" >"$T/d.yaml"
	start_daemon CAPVAULT_FAULT="pause:2:$T/marks/pause"
	drop "$T/big.pcap" "$T/in4/big.pcap"
	wait_for "import paused" test -e "$T/marks/pause"
	check "import in progress in tmp/" 1 "$(find "$S/tmp" -type f | wc -l)"
	local rc=0
	timeout 30 env "${DAEMON_AS[@]}" "$CAPVAULTD" --config "$T/d2.yaml" >"$T/second" 2>&1 || rc=$?
	echo "second capvaultd: $(tail -1 "$T/second")"
	check "second capvaultd exit code (1, not a hang: 124)" 1 "$rc"
	grep -qF "is in use by another process: $S/index/LOCK is held by process $DPID (capvaultd)" "$T/second" ||
		fail "lock holder named: $(cat "$T/second")"
	rc=0
	timeout 30 "$CAPVAULT" token ls --store "$S" >"$T/cli" 2>&1 || rc=$?
	echo "offline capvault: $(tail -1 "$T/cli")"
	check "offline capvault exit code" 1 "$rc"
	grep -qF "is in use by another process: $S/index/LOCK is held by process $DPID (capvaultd)" "$T/cli" ||
		fail "lock holder named to the CLI: $(cat "$T/cli")"
	alive
	check "import in progress kept in tmp/" 1 "$(find "$S/tmp" -type f | wc -l)"
	rm "$T/marks/pause"
	wait_for "import in progress completes" logged "imported $T/in4/big.pcap: capture"
	drop "$T/c.pcap" "$T/in4/c.pcap"
	wait_for "first daemon still imports" logged "imported $T/in4/c.pcap: capture"
	check "first daemon still answers" 200 "$(api -o /dev/null -w '%{http_code}' "http://x/v1/captures" || true)"
	stop_daemon
	SOCK=
	check "big.pcap stored once" 1 "$(captured "$(sha_of "$T/big.pcap")")"
	store_clean locked
}

# ---- a capture truncated or deleted in the middle of its import
# changed MODE FAULT: MODE delete (the object is linked) or keep (copied);
# FAULT truncate or delete.
changed() {
	local mode=$1 what=$2 name="big-$1-$2.pcap" size half
	S=$T/store-$mode-$what
	local in=$T/in-$mode-$what
	mkdir -p "$in" "$S" "$T/marks"
	mine "$in" "$S" "$T/marks"
	config "$S" "$mode" "$in" >"$T/d.yaml"
	start_daemon CAPVAULT_FAULT="pause:3:$T/marks/pause"
	drop "$T/big.pcap" "$in/$name"
	wait_for "import paused" test -e "$T/marks/pause"
	# Where the file is while it is imported: claimed (after_import delete)
	# or in place (keep).
	local live=$in/$name
	[ ! -e "$in/.capvault-claim/$name" ] || live=$in/.capvault-claim/$name
	size=$(stat -c %s "$live")
	half=$((size / 2))
	if [ "$what" = truncate ]; then
		# A linking import holds a read lease on its source (issue
		# 15.4): a writer's open breaks it, so the import stops to be
		# retried, and fails meanwhile when non-blocking (truncate's).
		# Let go, the daemon puts a claimed file back under its name.
		where_now() { [ -e "$live" ] && echo "$live" || echo "$in/$name"; }
		shrink() { truncate -c -s "$half" "$(where_now)" 2>/dev/null; }
		if ! shrink; then
			# truncate(2) waits for the lease instead, and runs the
			# moment the import lets go: before the daemon (one worker,
			# paused) can take the file again. Polling a non-blocking
			# truncate after it let go lost that race now and then, and
			# the retry stored the file whole, as it then was. The file
			# may be back under its name already (the lease broken).
			python3 -c '
import os, sys, time
half = int(sys.argv[1])
while True:
    for path in sys.argv[2:]:
        try:
            os.truncate(path, half)
            sys.exit(0)
        except FileNotFoundError:
            pass
    time.sleep(0.01)' "$half" "$live" "$in/$name" &
			local tpid=$!
			# Done, or waiting in truncate(2) (x86_64: 76) for the lease.
			settled() {
				! kill -0 "$tpid" 2>/dev/null ||
					[ "$(cut -d' ' -f1 "/proc/$tpid/syscall" 2>/dev/null)" = 76 ]
			}
			wait_for "the truncate to run or wait on the lease ($mode)" settled
			rm "$T/marks/pause"
			wait "$tpid" || fail "$mode/$what: the blocking truncate failed"
		fi
		cp "$(where_now)" "$T/truncated.pcap"
	else
		rm "$live"
	fi
	rm -f "$T/marks/pause"
	if [ "$what" = truncate ]; then
		wait_for "change detected ($mode)" logged "retrying $in/$name later: "
		first_line "retrying $in/$name later"
		first_line "retrying $in/$name later" |
			grep -q "the source changed while it was being imported" ||
			fail "$mode/$what: the retry says why: $(grep -F "$in/$name" "$T/d.log")"
		wait_for "truncated capture imported as it now is ($mode)" logged "imported $in/$name: capture"
	else
		wait_for "deletion reported ($mode)" logged "$in/$name: deleted or moved away while being imported"
		first_line "$in/$name"
	fi
	alive
	stop_daemon
	check "$mode/$what: the original bytes not stored" 0 "$(captured "$(sha_of "$T/big.pcap")")"
	if [ "$what" = truncate ]; then
		check "$mode/$what: stored once as it now is" 1 "$(captured "$(sha_of "$T/truncated.pcap")")"
		check "$mode/$what: one capture" 1 "$(jq length "$T/ls")"
		if [ "$mode" = keep ]; then
			cmp -s "$in/$name" "$T/truncated.pcap" || fail "$mode/$what: kept source changed"
		else
			check "$mode/$what: source removed after its import" no "$([ -e "$in/$name" ] && echo yes || echo no)"
		fi
	else
		check "$mode/$what: nothing stored" 0 "$(jq length "$T/ls")"
		check "$mode/$what: not counted as imported" 0 "$(count_logged "imported $in/$name")"
	fi
	check "$mode/$what: nothing moved aside" no "$([ -e "$in/.failed" ] && echo yes || echo no)"
	store_clean "$mode/$what"
}

# 48 MiB: an import is held at its second or third MiB; a cut is at 24 MiB.
"$MKCAP" --packets 40000 --size $((48 << 20)) --seed 7 -o "$T/big.pcap"
folders
readonly_store
locked
for mode in delete keep; do
	changed "$mode" truncate
	changed "$mode" delete
done
for s in "${skipped[@]}"; do
	echo "skipped: $s"
done
finish
