#!/usr/bin/env bash
# scrub.sh - invariant 6's checks (issue 15.4): an object whose bytes no
# longer hash to its name is found by `capvault fsck --verify` and by
# capvaultd's scheduled scrub (log, /metrics, `capvault status`); the scrub
# and `fsck --repair` move it to quarantine/ and tag its captures
# capvault:damaged (never deleted, never dropped); importing the same
# bytes again restores the object instead of deduping onto the corrupt
# one, and the next --repair removes the tag. A writable object is
# reported and made read-only again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
mkdir -p "$T/in" "$T/keep"
for i in 1 2 3; do
	"$MKCAP" --packets $((50 * i)) --seed $((40 + i)) -o "$T/keep/c$i.pcap"
done
expect_rc 0 "$CAPVAULT" import "$T/keep/c1.pcap" "$T/keep/c2.pcap" "$T/keep/c3.pcap"
sha() { sha256sum "$1" | cut -d' ' -f1; }
obj() { echo "$S/objects/${1:0:2}/$1"; }
s1=$(sha "$T/keep/c1.pcap") s2=$(sha "$T/keep/c2.pcap")
flip() { # OBJECT: one byte changed in place, the size kept
	chmod u+w "$1"
	printf '\xff' | dd of="$1" bs=1 seek=200 conv=notrunc status=none
	chmod 444 "$1"
}

# --- fsck --verify finds it; --verify --repair quarantines, keeps the capture.
flip "$(obj "$s2")"
expect_rc 1 "$CAPVAULT" fsck --verify
check "verify finds the object" 1 "$(grep -c "problem: object $s2: content hashes to" "$T/out")"
grep -q "3 objects (.* 1 corrupt)" "$T/out" || fail "verify summary: $(tail -1 "$T/out")"
expect_rc 1 "$CAPVAULT" fsck --verify --repair
grep -q "moved to quarantine/, 1 captures tagged capvault:damaged" "$T/out" ||
	fail "repair: $(cat "$T/out")"
[ -e "$(obj "$s2")" ] && fail "the corrupt object is still under its name"
[ -e "$S/quarantine/$s2.0" ] || fail "no quarantine/$s2.0"
expect_rc 1 "$CAPVAULT" fsck
grep -q "object $s2 was quarantined as corrupt (tagged capvault:damaged)" "$T/out" ||
	fail "fsck after quarantine: $(cat "$T/out")"
expect_rc 0 "$CAPVAULT" ls --tag capvault:damaged --json
check "damaged capture kept" "1" "$(jq length "$T/out")"

# --- the daemon's scrub finds the next one.
RO=$("$CAPVAULT" token add ro --store "$S" --scopes read 2>/dev/null)
flip "$(obj "$s1")"
write_config() { write_inbox_config "$S" "$1" $'  interval: 1h\n  rate: 16MiB'; }
start_daemon
wait_for "the scrub to find $s1" logged "scrub: object $s1 is corrupt"
wait_for "the scrub pass to end" logged "scrub: done: 2 objects"
curl -sS -H "Authorization: Bearer $RO" "$U/metrics" >"$T/metrics"
grep -q '^capvault_scrub_corrupt_objects 1$' "$T/metrics" || fail "metrics: $(grep scrub "$T/metrics")"
grep -q '^capvault_scrub_objects_total 2$' "$T/metrics" || fail "objects metric"
grep -q '^capvault_scrub_quarantined_total 1$' "$T/metrics" || fail "quarantined metric"
grep -Eq '^capvault_scrub_last_run_timestamp_seconds [1-9][0-9]+$' "$T/metrics" ||
	fail "last run metric"
[ -e "$S/quarantine/$s1.0" ] || fail "the scrub did not quarantine $s1"
expect_rc 0 "$CAPVAULT" status
grep -Eq "^scrub: +last pass .*: 2 objects, 1 corrupt" "$T/out" || fail "status: $(cat "$T/out")"

# --- the same bytes imported again: a good object, not a dedup onto nothing.
cp "$T/keep/c1.pcap" "$T/in/again.pcap"
wait_for "the re-import" logged "$T/in/again.pcap"
wait_for "the source to go" gone "$T/in/again.pcap"
check "restored object" "$s1" "$(sha "$(obj "$s1")")"
stop_daemon
check "scrub.last kept" 1 "$(grep -c '^[0-9]\+$' "$S/scrub.last")"

cp "$T/keep/c2.pcap" "$T/c2.pcap"
expect_rc 0 "$CAPVAULT" import --move "$T/c2.pcap"
check "restored object 2" "$s2" "$(sha "$(obj "$s2")")"
expect_rc 1 "$CAPVAULT" fsck
check "tags to remove" 2 "$(grep -c "tagged capvault:damaged but its object is whole again" "$T/out")"
expect_rc 0 "$CAPVAULT" fsck --repair
expect_rc 0 "$CAPVAULT" fsck --verify
expect_rc 0 "$CAPVAULT" ls --tag capvault:damaged --json
check "no damaged capture left" "0" "$(jq length "$T/out")"
check "quarantine kept" 2 "$(ls "$S/quarantine" | wc -l)"

# An intact object someone made writable is reported and sealed again.
s3=$(sha "$T/keep/c3.pcap")
chmod 644 "$(obj "$s3")"
expect_rc 1 "$CAPVAULT" fsck --verify
grep -q "problem: object $s3: writable (mode 0644)" "$T/out" || fail "writable: $(cat "$T/out")"
expect_rc 0 "$CAPVAULT" fsck --verify --repair
check "sealed again" 444 "$(stat -c %a "$(obj "$s3")")"
finish
