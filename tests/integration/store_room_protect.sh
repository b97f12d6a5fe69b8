#!/usr/bin/env bash
# store_room_protect.sh - retention.protect_tag and the room an import
# waits for: captures retention may never prune are not room it could
# make. The store is a 48 MiB tmpfs, retention.min_free 8MiB, protect_tag
# keep. Four 3 MiB captures, a 15 MiB one tagged keep; then a 30 MiB
# capture, which would fit were the kept one prunable, but is not: it
# waits (retried, left in place: the kept capture may be untagged or
# removed) and retention prunes nothing for it, rather than asking for a
# room retention can never make and pruning every capture that is not
# kept. Once the kept capture is removed, it goes in.
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

room_store 48m "  min_free: 8MiB
  protect_tag: keep"
for i in 1 2 3 4; do
	"$MKCAP" --size $((3 * MB)) --seed "$i" --start $((1600000000 + i * 100)) -o "$T/src/c$i.pcap"
done
"$MKCAP" --size $((15 * MB)) --seed 15 --start 1600001000 -o "$T/src/p.pcap"
"$MKCAP" --size $((30 * MB)) --seed 30 --start 1700000000 -o "$T/src/big.pcap"

start_daemon
for i in 1 2 3 4; do
	cp "$T/src/c$i.pcap" "$T/in/"
	wait_for "c$i imported" logged "imported $T/in/c$i.pcap"
done
cp "$T/src/p.pcap" "$T/in/"
wait_for "p imported" logged "imported $T/in/p.pcap"
"$CAPVAULT" tag "$(sha256sum <"$T/src/p.pcap" | cut -d' ' -f1)" +keep >/dev/null
check "five captures" 5 "$(captures)"
df -k "$FS" >&2

cp "$T/src/big.pcap" "$T/in/big.pcap"
wait_for "big.pcap waits" logged "retrying $T/in/big.pcap later: the capture needs 30MiB: the store can take at most"
sleep 3
[ -f "$T/in/big.pcap" ] || fail "big.pcap was not left in place"
check "big.pcap: five captures still" 5 "$(captures)"
check "big.pcap: nothing pruned" 0 "$(count_logged "pruned capture")"
check "big.pcap: no room asked" 0 "$(count_logged "waiting for retention")"
"$CAPVAULT" rm "$(sha256sum <"$T/src/p.pcap" | cut -d' ' -f1)" >/dev/null
wait_for "big.pcap imported once the kept capture is gone" logged "imported $T/in/big.pcap"
stop_daemon
finish
