#!/usr/bin/env bash
# fsck_remote_last_copy.sh - fsck --remote --repair never removes the
# only copy of a capture (adv14). A move killed after its put and before
# "both" leaves the catalog saying local with a copy in the bucket; when
# the local copy is then lost (here: bit rot, quarantined by fsck
# --repair), the bucket's copy is the only one: fsck --remote reports it
# and --repair keeps it (it removed it as an orphan before), and records
# it as remote once it hashes to its name. The
# object store is a store folder (CAPVAULT_OBJSTORE_DIR, the local backend).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$T/in"
"$MKCAP" --packets 300 --payload 800 --seed 9 -o "$T/x.pcap"
sx=$(sha256sum "$T/x.pcap" | cut -d' ' -f1)
expect_rc 0 "$CAPVAULT" import "$T/x.pcap"
write_config() { write_inbox_config "$S" "$1"; }
start_daemon CAPVAULT_OBJSTORE_DIR="$B" CAPVAULT_TIER_KILL=put:1
"$CAPVAULT" tier 1 >/dev/null 2>&1 || true
wait "$DPID" 2>/dev/null || true
DPID=
check "location after a move killed at its put" local "$("$CAPVAULT" info --json 1 | jq -r .location)"
[ -f "$B/objects/${sx:0:2}/$sx" ] || fail "the put left nothing in the bucket"

# The local copy rots, and fsck --repair quarantines it.
f=$S/objects/${sx:0:2}/$sx
chmod u+w "$f"
printf '\xff' | dd of="$f" bs=1 seek=5000 conv=notrunc status=none
expect_rc 1 "$CAPVAULT" fsck --repair
[ ! -e "$f" ] || fail "the corrupt local copy was not quarantined"
check "tags after the quarantine" '["capvault:damaged"]' "$("$CAPVAULT" info --json 1 | jq -c '.tags')"

CAPVAULT_OBJSTORE_DIR=$B expect_rc 1 "$CAPVAULT" fsck --remote
grep -q "local copy is missing: kept" "$T/out" || fail "fsck --remote: $(cat "$T/out" "$T/err")"
grep -q "(--repair checks it and records it as remote)" "$T/out" || fail "fsck --remote: $(cat "$T/out")"
# A bucket copy that is not the object's is not taken (nor removed).
obj=$B/objects/${sx:0:2}/$sx
cp -p "$obj" "$T/good"
chmod u+w "$obj"
printf '\x00' | dd of="$obj" bs=1 seek=7000 conv=notrunc status=none
CAPVAULT_OBJSTORE_DIR=$B expect_rc 1 "$CAPVAULT" fsck --remote --repair
grep -q "local copy is missing: kept, as it may be the only copy there is; not taken as the recorded copy: its bytes hash to" "$T/out" ||
	fail "fsck --remote --repair of a bad bucket copy: $(cat "$T/out" "$T/err")"
check "location after a refused repair" local "$("$CAPVAULT" info --json 1 | jq -r .location)"
[ -f "$obj" ] || fail "fsck --remote --repair removed the bucket's copy"
cat "$T/good" >"$obj"

# --repair checks the bucket's copy and records it: the capture reads
# from the store again, whole and by query.
CAPVAULT_OBJSTORE_DIR=$B expect_rc 0 "$CAPVAULT" fsck --remote --repair
grep -q "^repaired: remote object $sx: .*the bucket's copy hashes to its name and is the one recorded now (remote)" "$T/out" ||
	fail "fsck --remote --repair: $(cat "$T/out" "$T/err")"
check "the bucket's copy" "$sx" "$(sha256sum "$obj" | cut -d' ' -f1)"
check "location after the repair" remote "$("$CAPVAULT" info --json 1 | jq -r .location)"
CAPVAULT_OBJSTORE_DIR=$B expect_rc 0 "$CAPVAULT" fsck --remote --verify
check "tags after the repair (damaged gone)" "[]" "$("$CAPVAULT" info --json 1 | jq -c '.tags')"
expect_rc 0 "$CAPVAULT" fsck
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
curl -sS -f -H "Authorization: Bearer $RO" -o "$T/dl.pcap" "$U/v1/captures/1/file" ||
	fail "download after the repair"
check "downloaded bytes" "$sx" "$(sha256sum "$T/dl.pcap" | cut -d' ' -f1)"
expect_rc 0 "$CAPVAULT" query -w "$T/q.pcap" --capture 1
check "packets the query read" 300 "$(tcpdump -r "$T/q.pcap" 2>/dev/null | wc -l)"
stop_daemon

# A local copy simply lost (not quarantined) after such a killed move: the
# local fsck keeps the capture, whether it can ask the store or only sees
# that a move was under way, and fsck --remote --repair takes the bucket's
# copy (the local fsck dropped the capture before, and then fsck --remote
# --repair removed the bucket's copy as an orphan).
"$MKCAP" --packets 300 --payload 800 --seed 10 -o "$T/y.pcap"
sy=$(sha256sum "$T/y.pcap" | cut -d' ' -f1)
expect_rc 0 "$CAPVAULT" import "$T/y.pcap"
start_daemon CAPVAULT_OBJSTORE_DIR="$B" CAPVAULT_TIER_KILL=put:1
"$CAPVAULT" tier 2 >/dev/null 2>&1 || true
wait "$DPID" 2>/dev/null || true
DPID=
check "y after a move killed at its put" local "$("$CAPVAULT" info --json 2 | jq -r .location)"
rm -f "$S/objects/${sy:0:2}/$sy"
expect_rc 1 "$CAPVAULT" fsck --repair
grep -q "capture 2: object $sy is missing here, and a move of it to the object store was under way: kept" "$T/out" ||
	fail "local fsck of a lost copy after a killed move: $(cat "$T/out" "$T/err")"
CAPVAULT_OBJSTORE_DIR=$B expect_rc 1 "$CAPVAULT" fsck --repair
grep -q "capture 2: object $sy is missing here, and the object store holds it: kept" "$T/out" ||
	fail "local fsck with the store: $(cat "$T/out" "$T/err")"
CAPVAULT_OBJSTORE_DIR=$B expect_rc 0 "$CAPVAULT" fsck --remote --repair
grep -q "^repaired: remote object $sy: .*the one recorded now (remote)" "$T/out" ||
	fail "fsck --remote --repair of the lost copy: $(cat "$T/out" "$T/err")"
check "y after the repair" remote "$("$CAPVAULT" info --json 2 | jq -r .location)"
check "y in the bucket" "$sy" "$(sha256sum "$B/objects/${sy:0:2}/$sy" | cut -d' ' -f1)"
finish
