#!/bin/bash
# A polled folder: a FUSE mount (bindfs) of a folder is the import path,
# and the captures are written into the folder underneath, so inotify on
# the mount sees nothing. In watch: auto, capvaultd must recognise FUSE,
# say in its log that it polls and why, and import every file within the
# poll interval plus the settle time (plus a margin for the import).
# Skips (77) without root, /dev/fuse, bindfs or a permitted mount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to mount"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v bindfs >/dev/null || skip "bindfs is not installed (tools/install-deps)"

U=$T/under
M=$T/mnt
mkdir -p "$U" "$M"
MOUNTED=
on_exit() { [ -z "$MOUNTED" ] || umount "$M" 2>/dev/null || umount -l "$M"; }
bindfs "$U" "$M" 2>"$T/bindfs.err" || skip "bindfs mount failed: $(cat "$T/bindfs.err")"
MOUNTED=1
check "mount is FUSE" fuse "$(stat -f -c %T "$M" | cut -c1-4)"

POLL_MS=1000
SETTLE_MS=500
cat >"$T/d.yaml" <<YAML
store: $T/store
jobs: 2
log_level: info
import:
  - path: $M
    watch: auto
    poll_interval: ${POLL_MS}ms
    settle_time: ${SETTLE_MS}ms
    tags: [polled]
api:
  listen: []
YAML

start_daemon
grep -qF "folder $M: polling every 1s (fuse: inotify does not see remote writes)" "$T/d.log" ||
	fail "log says polling and why: $(grep -F "$M" "$T/d.log")"

now_ms() { date +%s%3N; }
# Files written underneath, one at a time: each must be gone (imported and
# deleted through the mount) within interval + settle + margin.
limit=$((POLL_MS + SETTLE_MS + 400))
worst=0
for i in 1 2 3 4 5; do
	"$MKCAP" --packets 200 --seed $i -o "$T/src$i.pcap"
	t0=$(now_ms)
	cp "$T/src$i.pcap" "$U/c$i.pcap"
	while [ -e "$U/c$i.pcap" ] && [ $(($(now_ms) - t0)) -lt 10000 ]; do sleep 0.02; done
	dt=$(($(now_ms) - t0))
	[ -e "$U/c$i.pcap" ] && fail "c$i.pcap not imported after 10 s"
	[ "$dt" -gt "$worst" ] && worst=$dt
	# Land the next file at a different point of the poll cycle.
	sleep 0.$((i * 17))
done
echo "polled folder: worst drop-to-imported ${worst} ms (limit ${limit} ms)"
checks=$((checks + 1))
[ "$worst" -le "$limit" ] || fail "polled import took ${worst} ms > ${limit} ms"

# A burst written underneath in a subfolder, while polling: all imported.
mkdir -p "$U/sub"
for i in $(seq 10 29); do "$MKCAP" --packets 50 --seed $i -o "$U/sub/b$i.pcap"; done
for _ in $(seq 200); do
	[ -z "$(find "$U" -type f)" ] && break
	sleep 0.1
done
check "burst imported" "" "$(find "$U" -type f)"

stop_daemon
check "no inotify for the mount" 0 "$(grep -c "folder $M: watching with inotify" "$T/d.log")"
expect_rc 0 "$CAPVAULT" ls --json --store "$T/store"
check "captures" 25 "$(jq length "$T/out")"
check "tag" 25 "$(jq '[.[] | select(.tags == ["polled"])] | length' "$T/out")"

finish
