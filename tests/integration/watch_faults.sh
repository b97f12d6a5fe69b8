#!/bin/bash
# capvaultd under faults:
# - a transient error: the store's file system (a small tmpfs mounted by
#   the test) is full; the import is retried with back-off (the log says
#   so), the file stays in the import folder meanwhile, and once space is
#   freed it is imported, once;
# - an overflowed inotify queue: max_queued_events is set to 16 while the
#   daemon makes its inotify instance (then restored), and 2,000 files
#   dropped at once are all imported exactly once.
# Each part skips itself (the whole test exits 77 only if none could
# run) without root, a permitted tmpfs mount or a writable
# /proc/sys/fs/inotify/max_queued_events.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

QUEUED=/proc/sys/fs/inotify/max_queued_events
MNT=
BOUND=
OLD_QUEUED=
on_exit() {
	[ -z "$OLD_QUEUED" ] || echo "$OLD_QUEUED" >"$QUEUED"
	[ -z "$MNT" ] || umount "$MNT" 2>/dev/null || umount -l "$MNT"
	[ -z "$BOUND" ] || umount "$BOUND" 2>/dev/null || umount -l "$BOUND"
}
skipped=0

# config STORE INBOX
config() {
	cat <<YAML
store: $1
jobs: 2
log_level: info
import:
  - path: $2
    settle_time: 200ms
api:
  listen: []
YAML
}

# --- transient error: the store's file system is full
transient() {
	MNT=$T/small
	mkdir -p "$MNT" "$T/in1"
	if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=16m tmpfs "$MNT" 2>/dev/null; then
		MNT=
		echo "transient part skipped: cannot mount a tmpfs"
		skipped=$((skipped + 1))
		return 0
	fi
	config "$MNT/store" "$T/in1" >"$T/d.yaml"
	start_daemon
	# Fill the file system, leaving nothing for an object.
	dd if=/dev/zero of="$MNT/filler" bs=64k status=none 2>/dev/null || true
	"$MKCAP" --packets 3000 --seed 1 -o "$T/big.pcap"
	mv "$T/big.pcap" "$T/in1/big.pcap"
	wait_for "a retry logged" logged "retrying $T/in1/big.pcap later: "
	wait_for "a second retry (back-off)" eval '[ "$(count_logged "retrying $T/in1/big.pcap later")" -ge 2 ]'
	check "file still in the import folder" yes "$([ -f "$T/in1/big.pcap" ] && echo yes)"
	check "not moved to .failed" no "$([ -e "$T/in1/.failed/big.pcap" ] && echo yes || echo no)"
	grep -F "retrying $T/in1/big.pcap" "$T/d.log" | head -1
	rm -f "$MNT/filler"
	wait_for "imported once space is back" logged "imported $T/in1/big.pcap: capture "
	check "file removed after import" no "$([ -e "$T/in1/big.pcap" ] && echo yes || echo no)"
	stop_daemon
	check "imported once" 1 "$(count_logged "imported $T/in1/big.pcap:")"
	grep -q "$T/in1: .* 1 imported, 0 duplicates, 0 failed" "$T/d.log" ||
		fail "a retried file is not counted failed: $(grep seen "$T/d.log")"
	expect_rc 0 "$CAPVAULT" ls --json --store "$MNT/store"
	check "one capture" 1 "$(jq length "$T/out")"
	expect_rc 0 "$CAPVAULT" fsck --store "$MNT/store"
}

# --- overflowed inotify queue, 2,000 files at once
overflow() {
	local n=2000
	if [ ! -w "$QUEUED" ] || ! OLD_QUEUED=$(cat "$QUEUED") || ! echo 16 >"$QUEUED" 2>/dev/null; then
		OLD_QUEUED=
		echo "overflow part skipped: cannot write $QUEUED"
		skipped=$((skipped + 1))
		return 0
	fi
	mkdir -p "$T/in2" "$T/stage"
	config "$T/store2" "$T/in2" >"$T/d.yaml"
	# The limit is taken when the daemon makes its inotify instance.
	start_daemon
	echo "$OLD_QUEUED" >"$QUEUED"
	OLD_QUEUED=
	for i in $(seq 1 $n); do
		"$MKCAP" --packets 4 --hosts 2 --seed $((1000 + i)) -o "$T/stage/f$i.pcap"
	done
	# mv checks each file after its rename; the daemon may have claimed it by
	# then (renamed it into .capvault-claim): the counts below are the test.
	find "$T/stage" -name '*.pcap' -print0 | xargs -0 mv -t "$T/in2/" || true
	wait_for "inotify overflow logged" logged "inotify queue overflowed"
	for _ in $(seq 600); do no_files "$T/in2" && break; sleep 0.1; done
	check "import folder emptied" yes "$(no_files "$T/in2" && echo yes)"
	stop_daemon
	check "imported lines" $n "$(grep -c "imported $T/in2/f[0-9]*.pcap: capture" "$T/d.log")"
	check "each file once" $n "$(grep -o "imported $T/in2/f[0-9]*.pcap:" "$T/d.log" | sort -u | wc -l)"
	check "no duplicates" 0 "$(count_logged "duplicate $T/in2/")"
	expect_rc 0 "$CAPVAULT" ls --json --store "$T/store2"
	check "captures" $n "$(jq length "$T/out")"
	check "distinct objects" $n "$(jq -r '.[].sha256' "$T/out" | sort -u | wc -l)"
}

# A mount over a watched folder sends no event to the folder's watch: the
# daemon finds its path leads elsewhere (checked every 5 s), watches the
# folder now there and imports what it holds; and again once unmounted.
mounted_over() {
	mkdir -p "$T/in3" "$T/over"
	"$MKCAP" --packets 10 --seed 31 -o "$T/over/under-mount.pcap"
	config "$T/store3" "$T/in3" >"$T/d.yaml"
	start_daemon
	if [ "$(id -u)" != 0 ] || ! mount --bind "$T/over" "$T/in3" 2>/dev/null; then
		stop_daemon
		echo "mount part skipped: cannot bind-mount"
		skipped=$((skipped + 1))
		return 0
	fi
	BOUND=$T/in3
	wait_for "a capture in the folder mounted over the watched one imported" \
		logged "imported $T/in3/under-mount.pcap"
	logged "folder $T/in3: its path leads to another folder now" ||
		fail "the mount was not said: $(grep "folder $T/in3" "$T/d.log")"
	umount "$T/in3"
	BOUND=
	"$MKCAP" --packets 10 --seed 32 -o "$T/in3/after-unmount.pcap"
	wait_for "a capture in the folder uncovered again imported" \
		logged "imported $T/in3/after-unmount.pcap"
	stop_daemon
}

# A tree deeper than 64 levels, and a path longer than PATH_MAX: skipped
# and said once at the scan, not a folder that cannot be read (which was
# rescanned every second, and named neither); the rest imports.
deep_and_long() {
	local d=$T/in4 i long
	mkdir -p "$d"
	for i in $(seq 70); do d=$d/d; done
	mkdir -p "$d"
	"$MKCAP" --packets 10 --seed 41 -o "$d/too-deep.pcap"
	long=$(printf 'x%.0s' $(seq 250))
	(cd "$T/in4" && for i in $(seq 17); do mkdir "$long" && cd "$long"; done &&
		"$MKCAP" --packets 10 --seed 42 -o too-long.pcap)
	"$MKCAP" --packets 10 --seed 43 -o "$T/in4/fine.pcap"
	config "$T/store4" "$T/in4" >"$T/d.yaml"
	start_daemon
	wait_for "the file beside them imported" logged "imported $T/in4/fine.pcap"
	wait_for "the deep tree said" logged "folder $T/in4: not looking below $T/in4/d/d/"
	wait_for "the long path said" logged "folder $T/in4: skipping xxxxxxxxxx"
	logged "cannot scan" && fail "a skipped path made the folder unreadable: $(grep 'cannot scan' "$T/d.log")"
	sleep 2
	check "said once" 1 "$(count_logged "not looking below")"
	stop_daemon
}

transient
overflow
mounted_over
deep_and_long
[ "$skipped" = 3 ] && { echo "SKIP: no part could run here"; exit 77; }
finish
