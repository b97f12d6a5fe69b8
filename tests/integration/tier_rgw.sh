#!/usr/bin/env bash
# tier_rgw.sh - the object tier against a real Ceph RGW (issue 18), with
# the object_store: section of capvaultd's configuration: `capvault tier`
# moves a capture's object to the bucket under objects/ab/<sha256> (and
# removes the local copy only then), info shows location remote, a failed
# move (RGW down) leaves the capture local and whole and counts the error,
# removing the last capture removes the key, `capvault fsck --remote`
# finds an orphan (--repair removes it) and --verify a tampered object
# (kept). Skipped (77) without Ceph.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/rgw_lib.sh"
rgw_start

S=$CAPVAULT_STORE
mkdir -p "$T/in"
for i in 1 2 3; do
	"$MKCAP" --packets $((30 * i)) --seed $((80 + i)) -o "$T/c$i.pcap"
done
expect_rc 0 "$CAPVAULT" import "$T/c1.pcap" "$T/c2.pcap" "$T/c3.pcap"
sha() { sha256sum "$1" | cut -d' ' -f1; }
s1=$(sha "$T/c1.pcap") s2=$(sha "$T/c2.pcap") s3=$(sha "$T/c3.pcap")
obj() { echo "$S/objects/${1:0:2}/$1"; }
key() { echo "$CAPVAULT_S3_ENDPOINT/$CAPVAULT_S3_BUCKET/objects/${1:0:2}/$1"; }
status_of() { s3 -o /dev/null -w '%{http_code}' -I "$(key "$1")"; }
loc() { "$CAPVAULT" info --json "$1" | jq -r .location; }

write_config() {
	write_inbox_config "$S" "$1"
	rgw_object_store_config connect_timeout=2s request_timeout=5s
}
start_daemon
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)

expect_rc 0 "$CAPVAULT" tier 1
grep -q "^tiered 1 .* sha256 $s1 .*: remote$" "$T/out" || fail "tier: $(cat "$T/out" "$T/err")"
check "location" remote "$(loc 1)"
check "the key in the bucket" 200 "$(status_of "$s1")"
check "its bytes" "$s1" "$(s3 "$(key "$s1")" | sha256sum | cut -d' ' -f1)"
gone "$(obj "$s1")" || fail "the local copy is still there"

# The store down: the move fails, the capture stays local and whole.
rgw_down
expect_rc 1 "$CAPVAULT" tier 2
check "location after a failed move" local "$(loc 2)"
check "local copy after a failed move" "$s2" "$(sha "$(obj "$s2")")"
curl -sS -H "Authorization: Bearer $RO" "$U/metrics" >"$T/m"
refused=$(awk '$1 == "capvault_tier_errors_total{kind=\"refused\"}" { print $2 }' "$T/m")
[ "${refused:-0}" -ge 1 ] || fail "no refused error counted: $(grep tier_errors "$T/m")"
rgw_up
expect_rc 0 "$CAPVAULT" tier 2
check "location after the store is back" remote "$(loc 2)"

# The last capture of a remote object goes: so does its key.
expect_rc 0 "$CAPVAULT" rm 1
key_gone() { [ "$(status_of "$s1")" = 404 ]; }
wait_for "the key of a removed capture removed" key_gone
# A reload cannot swap the object store under the mover: it says so.
sed -i 's/request_timeout: 5s/request_timeout: 6s/' "$T/d.yaml"
kill -HUP "$DPID"
wait_for "object_store named as needing a restart" logged "need a restart: object_store"
stop_daemon

# fsck --remote with the daemon's configuration.
expect_rc 0 "$CAPVAULT" fsck --remote --config "$T/d.yaml"
grep -q "^1 remote objects (.*): 0 problems" "$T/out" || fail "fsck --remote: $(cat "$T/out" "$T/err")"
expect_rc 0 "$CAPVAULT" fsck
# An orphan: c3's bytes under its key while the catalog keeps it local.
s3 -o /dev/null -T "$T/c3.pcap" "$(key "$s3")"
expect_rc 1 "$CAPVAULT" fsck --remote --config "$T/d.yaml"
grep -q "remote object $s3 is an orphan" "$T/out" || fail "orphan: $(cat "$T/out")"
expect_rc 0 "$CAPVAULT" fsck --remote --repair --config "$T/d.yaml"
check "orphan removed" 404 "$(status_of "$s3")"
check "its capture stays local" local "$(loc 3)"
# A tampered object (same size): --verify finds it and keeps it.
cp "$T/c2.pcap" "$T/bad"
printf '\xff' | dd of="$T/bad" bs=1 seek=100 conv=notrunc status=none
s3 -o /dev/null -T "$T/bad" "$(key "$s2")"
expect_rc 0 "$CAPVAULT" fsck --remote --config "$T/d.yaml"
expect_rc 1 "$CAPVAULT" fsck --remote --verify --repair --config "$T/d.yaml"
grep -q "remote object $s2: .*corrupt" "$T/out" || fail "verify: $(cat "$T/out")"
check "a corrupt remote object is kept" 200 "$(status_of "$s2")"
# An offline rm (no daemon) of the last capture of a remote object, with
# the daemon's configuration: the key goes with it, no orphan is left.
expect_rc 0 "$CAPVAULT" rm --config "$T/d.yaml" 2
check "the key of a capture removed offline" 404 "$(status_of "$s2")"
finish
