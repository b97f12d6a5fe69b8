#!/usr/bin/env bash
# store_room_dup.sh - a plain file whose bytes are stored already needs
# no room: on a store with less room above min_free than the file's size
# (but more free space than the size plus the index's reserve), it is
# imported as a duplicate and retention prunes nothing for it. The store
# is a tmpfs, retention.min_free 16MiB.
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

room_store 64m "  min_free: 16MiB"
free_mib() { echo $(($(df -k --output=avail "$FS" | tail -1) / 1024)); }
for i in 1 2 3 4; do
	"$MKCAP" --size $((3 * MB)) --seed "$i" --start $((1600000000 + i * 100)) -o "$T/src/c$i.pcap"
done
"$MKCAP" --size $((15 * MB)) --seed 15 --start 1600001000 -o "$T/src/d.pcap"

start_daemon
for i in 1 2 3 4; do
	cp "$T/src/c$i.pcap" "$T/in/"
	wait_for "c$i imported" logged "imported $T/in/c$i.pcap"
done
cp "$T/src/d.pcap" "$T/in/"
wait_for "d imported" logged "imported $T/in/d.pcap"
check "five captures" 5 "$(captures)"
# Free space between 15 MiB + the 4 MiB reserve and 15 MiB + min_free:
# a filler outside the catalog takes what is beyond.
f=$(free_mib)
[ "$f" -gt 25 ] && dd if=/dev/zero of="$FS/filler" bs=1M count=$((f - 25)) status=none
f=$(free_mib)
{ [ "$f" -ge 20 ] && [ "$f" -lt 31 ]; } || fail "free space $f MiB, not in [20, 31)"

cp "$T/src/d.pcap" "$T/in/again.pcap"
wait_for "again.pcap stored as a duplicate" logged "duplicate $T/in/again.pcap: capture 5"
sleep 2
check "again.pcap: a duplicate, five captures still" 5 "$(captures)"
check "again.pcap: nothing pruned" 0 "$(count_logged "pruned capture")"
check "again.pcap: no wait for room" 0 "$(count_logged "waiting for retention")"
stop_daemon
finish
