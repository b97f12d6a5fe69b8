#!/bin/bash
# after_import: keep remembers a kept file by (device, inode, size, mtime,
# ctime). Without the ctime, a new capture that took a deleted kept
# file's inode with its size and mtime (cp -p, rsync -t, tar restoring
# times: ext4 hands a freed inode out again at once) was taken for the
# kept file and never imported. A record of an earlier version (no ctime)
# still stands for its file: nothing kept is imported again.
# The inode's reuse is played by a record of the file's own device,
# inode, size and mtime with another ctime, as the deleted file had.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
    settle_time: 0s
    after_import: keep
api:
  listen: ["127.0.0.1:$1"]
scrub:
  interval: 0s
YAML
}
mkdir -p "$T/in"
"$CAPVAULT" init --store "$STORE" >/dev/null
captures() { "$CAPVAULT" ls --json --store "$STORE" | jq length; }
# record FILE [CTIME]: the kept record of FILE as it is, with CTIME
# (nanoseconds) as a fifth field when given (an earlier version wrote four).
record() {
	local dev ino size mtime ctime
	read -r dev ino size mtime ctime < <(stat -c '%d %i %s %.9Y %.9Z' "$1")
	printf '%s %s %s %s%s\n' "$dev" "$ino" "$size" "${mtime/./}" "${2:+ $2}" >> "$STORE/autoimport.kept"
}
"$MKCAP" --packets 30 --seed 21 -o "$T/in/old.pcap"
record "$T/in/old.pcap"
"$MKCAP" --packets 50 --seed 1 -o "$T/in/kept.pcap"
read -r ctime < <(stat -c '%.9Z' "$T/in/kept.pcap")
record "$T/in/kept.pcap" "${ctime/./}"
"$MKCAP" --packets 40 --seed 2 -o "$T/in/reused.pcap"
record "$T/in/reused.pcap" 1704067200000000000

start_daemon
wait_for "reused.pcap imported" logged "imported $T/in/reused.pcap"
wait_for "kept.pcap skipped" logged "skipped $T/in/kept.pcap: kept"
wait_for "old.pcap skipped" logged "skipped $T/in/old.pcap: kept"
stop_daemon
check "captures: reused.pcap only" 1 "$(captures)"
finish
