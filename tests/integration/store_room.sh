#!/usr/bin/env bash
# store_room.sh - a capture that can never be kept is refused before
# retention deletes anything for it, and one that fits once the oldest
# captures are pruned still gets its room. The store is a 48 MiB tmpfs,
# the import folder outside it (so files are copied, not linked),
# retention.min_free 8MiB.
# 1. A 40 MiB plain capture (more than free space plus every capture):
#    refused at its start, left in place to wait for space (retried),
#    nothing pruned.
# 2. The same bytes gzip'd (a few hundred KiB: its size says nothing):
#    measured when it reaches min_free, refused, nothing pruned.
# 3. An upload of it: 507 no_space with the reason; capvault import of the
#    plain file through the daemon (a stream of announced length): the
#    same reason, exit 1.
# 4. A 20 MiB capture, then a 12 MiB gzip'd one that fits only once the
#    oldest captures go: imported, and retention prunes the oldest.
# 5. After a reload with max_total_size 16MiB, a 17 MiB capture is
#    refused, naming max_total_size.
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

room_store 48m "  min_free: 8MiB"
for i in 1 2 3 4; do
	"$MKCAP" --size $((3 * MB)) --seed "$i" --start $((1600000000 + i * 100)) -o "$T/src/c$i.pcap"
done
"$MKCAP" --size $((40 * MB)) --payload 1400 --seed 40 -o "$T/src/big.pcap"
gzip -1 -c "$T/src/big.pcap" >"$T/src/bomb.pcap.gz"

start_daemon
for i in 1 2 3 4; do
	cp "$T/src/c$i.pcap" "$T/in/"
	wait_for "c$i imported" logged "imported $T/in/c$i.pcap"
done
check "four captures" 4 "$(captures)"

# 1. plain, too big for the store whatever is pruned
cp "$T/src/big.pcap" "$T/in/big.pcap"
wait_for "big.pcap refused" logged "retrying $T/in/big.pcap later: the capture needs 40MiB: the store can take at most"
wait_for "big.pcap retried" eval '[ "$(count_logged "retrying $T/in/big.pcap later")" -ge 2 ]'
[ -f "$T/in/big.pcap" ] || fail "big.pcap was not left in place"
check "big.pcap: four captures still" 4 "$(captures)"
check "big.pcap: nothing pruned" 0 "$(count_logged "pruned capture")"
rm "$T/in/big.pcap"

# 2. the same bytes gzip'd: measured once space is short
cp "$T/src/bomb.pcap.gz" "$T/in/bomb.pcap.gz"
wait_for "bomb refused" logged "retrying $T/in/bomb.pcap.gz later: the capture needs more than"
[ -f "$T/in/bomb.pcap.gz" ] || fail "bomb.pcap.gz was not left in place"
check "bomb: four captures still" 4 "$(captures)"
check "bomb: nothing pruned" 0 "$(count_logged "pruned capture")"
rm "$T/in/bomb.pcap.gz"

# 3. uploaded: 507, the reason in the JSON error
UP=$("$CAPVAULT" token add up --scopes upload 2>/dev/null)
code=$(curl -sS -o "$T/up.json" -w '%{http_code}' -H "Authorization: Bearer $UP" \
	-F "file=@$T/src/bomb.pcap.gz" "$U/v1/captures")
check "upload of the bomb: HTTP status" 507 "$code"
check "upload of the bomb: error" no_space "$(jq -r .error "$T/up.json")"
jq -r .message "$T/up.json" | grep -q "can take at most" || fail "upload: $(cat "$T/up.json")"
check "upload: four captures still" 4 "$(captures)"
check "upload: nothing pruned" 0 "$(count_logged "pruned capture")"
# capvault import with the daemon running streams the file to it, its
# length announced: checked before its first byte is stored
expect_rc 1 "$CAPVAULT" import "$T/src/big.pcap"
grep -q "the capture needs 40MiB: the store can take at most" "$T/out" "$T/err" ||
	fail "import through the daemon: $(cat "$T/out" "$T/err")"
check "import through the daemon: four captures still" 4 "$(captures)"
check "import through the daemon: nothing pruned" 0 "$(count_logged "pruned capture")"

# 4. a capture that fits once the oldest go still gets its room
"$MKCAP" --size $((20 * MB)) --seed 20 --start 1700000000 -o "$T/in/d.pcap"
wait_for "d imported" logged "imported $T/in/d.pcap"
"$MKCAP" --size $((12 * MB)) --payload 1400 --seed 12 --start 1700001000 -o "$T/src/e.pcap"
gzip -1 -c "$T/src/e.pcap" >"$T/in/e.pcap.gz"
wait_for "e imported" logged "imported $T/in/e.pcap.gz"
wait_for "the oldest pruned for it" logged "pruned capture 1 c1.pcap"
"$CAPVAULT" info --json "$(sha256sum <"$T/src/e.pcap" | cut -d' ' -f1)" >"$T/e.json" ||
	fail "e.pcap.gz not in the catalog"

# 5. larger than max_total_size: refused, named
ROOM_RETENTION="  min_free: 8MiB
  max_total_size: 16MiB"
write_config "${U##*:}"
kill -HUP "$DPID"
wait_for "reloaded" logged "configuration reloaded"
"$MKCAP" --size $((17 * MB)) --seed 17 --start 1700002000 -o "$T/in/f.pcap"
wait_for "f.pcap refused" logged "failed $T/in/f.pcap: the capture needs 17MiB: retention's max_total_size is 16MiB"
check "f.pcap: not retried" 0 "$(count_logged "retrying $T/in/f.pcap")"
[ -f "$T/in/f.pcap" ] || fail "f.pcap was not left in place"
cat "$T/d.log" >&2
stop_daemon
finish
