#!/usr/bin/env bash
# tier.sh - the object tier's moves through capvaultd (issue 18): `capvault
# tier` moves a capture's object (put, confirmed, "both", "remote", then the
# local copy goes), `info` and the API show its location, a second move is
# "already remote", the metrics count it, removing the last capture removes
# the remote copy, fsck keeps a tiered capture (its bytes are remote, not
# missing), and a daemon killed after recording "both" finishes the move at
# its next start. The object store here is a second store folder through
# the local backend (CAPVAULT_OBJSTORE_DIR); tier_rgw.sh runs against RGW.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$T/in"
for i in 1 2 3 4; do
	"$MKCAP" --packets $((20 * i)) --seed $((60 + i)) -o "$T/c$i.pcap"
done
expect_rc 0 "$CAPVAULT" import "$T/c1.pcap" "$T/c2.pcap" "$T/c3.pcap" "$T/c4.pcap"
sha() { sha256sum "$1" | cut -d' ' -f1; }
s1=$(sha "$T/c1.pcap") s2=$(sha "$T/c2.pcap") s3=$(sha "$T/c3.pcap")
obj() { echo "$S/objects/${1:0:2}/$1"; }
remote() { echo "$B/objects/${1:0:2}/$1"; }
loc() { "$CAPVAULT" info --json "$1" | jq -r .location; }

write_config() {
	write_inbox_config "$S" "$1"
}
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)

check "location before" local "$(loc 1)"
expect_rc 0 "$CAPVAULT" tier --dry-run 1
grep -q "^would tier 1 .* sha256 $s1 .*: local$" "$T/out" || fail "dry run: $(cat "$T/out")"
[ -e "$(obj "$s1")" ] || fail "a dry run moved the object"

expect_rc 0 "$CAPVAULT" tier 1
grep -q "^tiered 1 .* sha256 $s1 .*: remote$" "$T/out" || fail "tier: $(cat "$T/out" "$T/err")"
check "location after" remote "$(loc 1)"
check "API location" remote "$(curl -sS -H "Authorization: Bearer $RO" "$U/v1/captures/1" | jq -r .location)"
check "list location" "remote local" \
	"$(curl -sS -H "Authorization: Bearer $RO" "$U/v1/captures" | jq -r '[.captures[] | select(.id <= 2) | .location] | join(" ")')"
gone "$(obj "$s1")" || fail "the local copy is still there"
check "remote copy" "$s1" "$(sha "$(remote "$s1")")"
expect_rc 0 "$CAPVAULT" tier --json "$s1"
check "second move" already_remote "$(jq -r '.objects[0].result' "$T/out")"
post_tier() {
	curl -sS -o "$T/reply" -w '%{http_code}' --unix-socket "$S/capvault.sock" -X POST \
		-H 'Content-Type: application/json' -d "$1" http://localhost/v1/tier
}
check "POST /v1/tier without captures" 422 "$(post_tier '{}')"
check "POST /v1/tier with a number" 422 "$(post_tier '{"captures": [1]}')"
check "POST /v1/tier dry_run not boolean" 422 "$(post_tier '{"captures": ["1"], "dry_run": 1}')"
check "POST /v1/tier dry run" "200 would_tier" \
	"$(post_tier '{"captures": ["3"], "dry_run": true}') $(jq -r '.objects[0].result' "$T/reply")"
expect_rc 1 "$CAPVAULT" tier 999
grep -q "999" "$T/err" || fail "unknown capture: $(cat "$T/err")"
# 64 decimal digits are a sha256, never an id (adv18 F11).
Z=0000000000000000000000000000000000000000000000000000000000000000
expect_rc 1 "$CAPVAULT" tier "$Z"
grep -q "no capture with sha256 prefix $Z" "$T/err" || fail "64 digits: $(cat "$T/err")"
expect_rc 1 "$CAPVAULT" tier --dry-run "$Z"
grep -q "no capture with sha256 prefix $Z" "$T/err" || fail "64 digits, dry run: $(cat "$T/err")"
# An argument that is not UTF-8 is said to be no capture, not dropped from
# the request unsaid (advtier C): the other one still goes, the exit is 1.
expect_rc 1 "$CAPVAULT" tier --dry-run 3 "$(printf 'x\377')"
grep -qF "capvault: x\xff: 'x\xff' is neither a capture id nor a sha256 prefix" "$T/err" ||
	fail "not UTF-8: $(cat "$T/err")"
grep -q "^would tier 3 " "$T/out" || fail "not UTF-8, the other argument: $(cat "$T/out")"
expect_rc 1 "$CAPVAULT" tier "$(printf '\377')"
grep -qF "'\xff' is neither" "$T/err" || fail "not UTF-8 alone: $(cat "$T/err")"

curl -sS -H "Authorization: Bearer $RO" "$U/metrics" >"$T/m"
check "tiered_objects_total" 1 "$(awk '$1 == "capvault_tiered_objects_total" { print $2 }' "$T/m")"
check "remote_objects" 1 "$(awk '$1 == "capvault_remote_objects" { print $2 }' "$T/m")"
check "timeout errors" 0 "$(awk '$1 == "capvault_tier_errors_total{kind=\"timeout\"}" { print $2 }' "$T/m")"
expect_rc 0 "$CAPVAULT" status
grep -q "^tier: *1 objects remote .* 1 moved, 0 errors since start$" "$T/out" || fail "status: $(cat "$T/out")"
check "status --json tier" "1 3" "$("$CAPVAULT" status --json | jq -r '"\(.tier.remote_objects) \(.tier.local_objects)"')"

# The last capture of a remote object goes: so does the remote copy.
expect_rc 0 "$CAPVAULT" tier 2
expect_rc 0 "$CAPVAULT" rm 2
remote_gone() { gone "$(remote "$s2")"; }
wait_for "remote copy of a removed capture removed" remote_gone
# A removal still failing when the daemon stops is done at its next start
# (adv18 F5). The remote key is made a directory, which the local backend
# cannot unlink, as a store that is down would refuse.
"$MKCAP" --packets 7 --seed 90 -o "$T/c10.pcap"
s10=$(sha "$T/c10.pcap")
expect_rc 0 "$CAPVAULT" import "$T/c10.pcap"
id10=$("$CAPVAULT" info --json "$s10" | jq .id)
expect_rc 0 "$CAPVAULT" tier "$id10"
mv "$(remote "$s10")" "$T/s10.kept"
mkdir "$(remote "$s10")"
expect_rc 0 "$CAPVAULT" rm "$id10"
failed10() { logged "tier: removing object $s10 failed"; }
wait_for "the remote removal failed" failed10
# Its failures are warned at attempts 1, 2, 4, 8... (the others at debug
# level), not at each: a full queue and a store down for hours made a
# line per job a minute (adv15a).
retries() {
	curl -sS -H "Authorization: Bearer $RO" "$U/metrics" |
		awk '$1 == "capvault_tier_retries_total" { print $2 }'
}
five_tries() { [ "$(retries)" -ge 5 ]; }
wait_for "five attempts at the removal" five_tries
sleep 0.2 # the fifth attempt's line follows its count
check "attempts warned" "1 2 4" "$(grep -o "removing object $s10 failed (attempt [0-9]*" "$T/d.log" |
	awk '{ print $NF }' | tr '\n' ' ' | sed 's/ $//')"
stop_daemon
expect_rc 0 "$CAPVAULT" fsck
grep -q " 0 problems" "$T/out" || fail "fsck with a pending removal: $(cat "$T/out")"
rmdir "$(remote "$s10")"
mv "$T/s10.kept" "$(remote "$s10")"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
logged "1 pending removals of remote copies to finish" || fail "start: $(tail -5 "$T/d.log")"
remote10_gone() { gone "$(remote "$s10")"; }
wait_for "a pending remote removal done after a restart" remote10_gone

# Killed after "both": the next start finishes the move.
stop_daemon
start_daemon CAPVAULT_OBJSTORE_DIR="$B" CAPVAULT_TIER_KILL=both:1
"$CAPVAULT" tier 3 >/dev/null 2>&1 || true
wait "$DPID" 2>/dev/null || true
DPID=
[ -e "$(obj "$s3")" ] || fail "the local copy went before the catalog said remote"
check "location after the kill" both "$("$CAPVAULT" info --json 3 | jq -r .location)"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
is_remote() { [ "$(loc 3)" = remote ]; }
wait_for "the interrupted move finished" is_remote
gone "$(obj "$s3")" || fail "the local copy of a finished move is still there"
# A query of the remote capture leaves its blocks in the read-through cache.
expect_rc 0 "$CAPVAULT" query --capture 3 -w "$T/q3.pcap"
check "packets of the remote capture" 60 "$(capinfos -c -M -T -r "$T/q3.pcap" | cut -f2)"
stop_daemon
# Cached blocks: nonzero bytes of the packs' bitmaps (past a 16-byte header).
cached() { find "$S/cache" -name '*.blk' -exec od -An -v -t u1 -j 16 -N 8 {} + | tr -s ' ' '\n' | grep -c '^[1-9]'; }
[ "$(cached)" -gt 0 ] || fail "no cached block after a query of a remote capture"

# fsck: a tiered capture's object is remote, not missing; --repair keeps it.
expect_rc 0 "$CAPVAULT" fsck
expect_rc 0 "$CAPVAULT" fsck --repair
check "captures after fsck --repair" 3 "$("$CAPVAULT" ls --json | jq length)"
export CAPVAULT_OBJSTORE_DIR=$B
# fsck --repair with the object store but without --config opens the cache
# at the default bound, not at 0 (which emptied it).
expect_rc 0 "$CAPVAULT" fsck --repair
[ "$(cached)" -gt 0 ] || fail "fsck --repair emptied the read-through cache"
expect_rc 0 "$CAPVAULT" fsck --remote --verify
grep -q "^2 remote objects (.* 0 corrupt): 0 problems" "$T/out" || fail "fsck --remote: $(cat "$T/out")"

# Killed after the upload, before "both": an orphan that fsck --remote
# finds and --repair removes; the capture stays local and whole.
s4=$(sha "$T/c4.pcap")
start_daemon CAPVAULT_OBJSTORE_DIR="$B" CAPVAULT_TIER_KILL=put:1
"$CAPVAULT" tier 4 >/dev/null 2>&1 || true
wait "$DPID" 2>/dev/null || true
DPID=
check "location after a kill after the put" local "$(loc 4)"
check "local copy" "$s4" "$(sha "$(obj "$s4")")"
[ -e "$(remote "$s4")" ] || fail "no uploaded copy to be an orphan"
expect_rc 1 "$CAPVAULT" fsck --remote
grep -q "remote object $s4 is an orphan (the catalog keeps it locally only)$" "$T/out" ||
	fail "orphan: $(cat "$T/out")"
expect_rc 0 "$CAPVAULT" fsck --remote --repair
grep -q "remote object $s4 is an orphan .*; removed" "$T/out" || fail "repair: $(cat "$T/out")"
gone "$(remote "$s4")" || fail "the orphan is still there"
expect_rc 0 "$CAPVAULT" fsck --remote
grep -q "^2 remote objects (.*): 0 problems" "$T/out" || fail "after repair: $(cat "$T/out")"

# A tampered remote object: --verify finds it, nothing is deleted.
chmod u+w "$(remote "$s1")"
printf '\xff' | dd of="$(remote "$s1")" bs=1 seek=100 conv=notrunc status=none
expect_rc 0 "$CAPVAULT" fsck --remote
expect_rc 1 "$CAPVAULT" fsck --remote --verify --repair
grep -q "remote object $s1: .*(corrupt: kept" "$T/out" || fail "verify: $(cat "$T/out")"
[ -e "$(remote "$s1")" ] || fail "a corrupt remote object was deleted"
check "the capture stays" remote "$(loc 1)"

# Backup and restore: remote objects stay in the bucket, the restored
# store points at them (and checks they are there).
expect_rc 0 "$CAPVAULT" backup "$T/bk"
[ -e "$T/bk/objects/${s1:0:2}/$s1" ] && fail "a remote object was copied into the backup"
[ -e "$T/bk/objects/${s4:0:2}/$s4" ] || fail "a local object is missing from the backup"
expect_rc 1 env -u CAPVAULT_OBJSTORE_DIR "$CAPVAULT" restore "$T/bk" --store "$T/r1"
grep -q "is in the object store, and no object store is configured" "$T/err" ||
	fail "restore without the object store: $(cat "$T/err")"
expect_rc 0 "$CAPVAULT" restore "$T/bk" --store "$T/r2"
check "restored location" remote "$(CAPVAULT_STORE=$T/r2 "$CAPVAULT" info --json 3 | jq -r .location)"
check "restored local one" local "$(CAPVAULT_STORE=$T/r2 "$CAPVAULT" info --json 4 | jq -r .location)"
expect_rc 0 env CAPVAULT_STORE="$T/r2" "$CAPVAULT" fsck
# A remote object gone from the bucket since the backup (retention pruned
# it, say) does not make the backup unrestorable: the rest comes back, the
# lost capture is said by name and restored as remote, and fsck --remote
# lists it.
mv "$(remote "$s3")" "$T/s3.moved"
expect_rc 0 "$CAPVAULT" restore "$T/bk" --store "$T/r3"
grep -q "object $s3 ([0-9]* bytes) is lost: not in" "$T/err" ||
	fail "restore with a missing remote object: $(cat "$T/err")"
grep -q "capture 3 (object $s3) is restored but its bytes are gone" "$T/err" ||
	fail "restore with a missing remote object, the capture: $(cat "$T/err")"
grep -q "^restored 3 captures" "$T/out" || fail "restore with a missing remote object: $(cat "$T/out")"
check "lost one restored as" remote "$(CAPVAULT_STORE=$T/r3 "$CAPVAULT" info --json 3 | jq -r .location)"
check "local one beside it" local "$(CAPVAULT_STORE=$T/r3 "$CAPVAULT" info --json 4 | jq -r .location)"
expect_rc 1 env CAPVAULT_STORE="$T/r3" "$CAPVAULT" fsck --remote
grep -q "$s3" "$T/out" || fail "fsck --remote of the restore: $(cat "$T/out")"
mv "$T/s3.moved" "$(remote "$s3")"
# A restore given another bucket (here an empty folder) finds none of the
# remote objects: that is a wrong config, said as such, not a bucket
# pruned bare whose captures to remove.
mkdir "$T/elsewhere"
expect_rc 1 env CAPVAULT_OBJSTORE_DIR="$T/elsewhere" "$CAPVAULT" restore "$T/bk" --store "$T/r4"
grep -q "none of the backup's [0-9]* remote objects is in the object store, and it holds no capvault-vault key either: check object_store's endpoint, bucket and prefix" "$T/err" ||
	fail "restore from another bucket: $(cat "$T/err")"
# Another vault's bucket: its owner key says so.
echo "vault 0123456789abcdef0123456789abcdef" >"$T/elsewhere/capvault-vault"
expect_rc 1 env CAPVAULT_OBJSTORE_DIR="$T/elsewhere" "$CAPVAULT" restore "$T/bk" --store "$T/r5"
grep -q "and its capvault-vault key names vault 0123456789abcdef0123456789abcdef, not this vault [0-9a-f]\{32\}: check" "$T/err" ||
	fail "restore from another vault's bucket: $(cat "$T/err")"
# The vault's own bucket, whose remote objects were all removed since the
# backup: its owner key names this vault, so they are lost, not misplaced.
mv "$B/objects" "$T/objects.moved"
expect_rc 0 "$CAPVAULT" restore "$T/bk" --store "$T/r6"
grep -q "check object_store" "$T/err" && fail "restore from a pruned bucket blamed the config: $(cat "$T/err")"
grep -q "capture 3 (object $s3) is restored but its bytes are gone" "$T/err" ||
	fail "restore from a pruned bucket, the capture: $(cat "$T/err")"
grep -q "objects of the backup are no longer in the object store" "$T/err" ||
	fail "restore from a pruned bucket: $(cat "$T/err")"
mv "$T/objects.moved" "$B/objects"

# Retention: a policy's tier_after moves, and a prune of a remote
# capture removes its remote copy; offline (prune --config) and by the
# daemon's own runs.
for i in 5 6 7; do "$MKCAP" --packets 9 --seed $((70 + i)) -o "$T/c$i.pcap"; done
s5=$(sha "$T/c5.pcap") s6=$(sha "$T/c6.pcap") s7=$(sha "$T/c7.pcap")
expect_rc 0 "$CAPVAULT" import --tags old "$T/c5.pcap"
expect_rc 0 "$CAPVAULT" import --tags gone "$T/c6.pcap"
id5=$("$CAPVAULT" info --json "$s5" | jq .id) id6=$("$CAPVAULT" info --json "$s6" | jq .id)
start_daemon
expect_rc 0 "$CAPVAULT" tier "$id6"
stop_daemon
write_config() {
	write_inbox_config "$S" "$1"
	cat >>"$T/d.yaml" <<EOC
retention:
  policies:
    - name: gone
      tags: [gone]
      max_age: 0s
      allow_empty: true
    - name: old
      tags: [old]
      tier_after: 0s
EOC
}
write_config 1
expect_rc 0 "$CAPVAULT" prune --dry-run --config "$T/d.yaml"
grep -q "^would delete $id6 .* \[gone\]" "$T/out" || fail "prune dry run: $(cat "$T/out")"
grep -q "^would tier $id5 .* \[old\] age .* > tier_after" "$T/out" || fail "prune dry run: $(cat "$T/out")"
check "a dry run moves nothing" local "$(loc "$id5")"
expect_rc 0 "$CAPVAULT" prune --config "$T/d.yaml"
check "tiered by prune" remote "$(loc "$id5")"
gone "$(remote "$s6")" || fail "the remote copy of a pruned capture is still there"
# The daemon's own run at its start queues what tier_after selects.
expect_rc 0 "$CAPVAULT" import --tags old "$T/c7.pcap"
id7=$("$CAPVAULT" info --json "$s7" | jq .id)
start_daemon
is7_remote() { [ "$(loc "$id7")" = remote ]; }
wait_for "tier_after moved a capture" is7_remote
logged "tiering capture $id7 " || fail "no tiering log line for $id7"
stop_daemon

# A corrupt local copy of a "both" object: quarantined, and the copy in
# the object store (confirmed when stored) is the one recorded; no
# capture is damaged.
"$MKCAP" --packets 9 --seed 88 -o "$T/c8.pcap"
s8=$(sha "$T/c8.pcap")
expect_rc 0 "$CAPVAULT" import "$T/c8.pcap"
id8=$("$CAPVAULT" info --json "$s8" | jq .id)
start_daemon CAPVAULT_TIER_KILL=both:1
"$CAPVAULT" tier "$id8" >/dev/null 2>&1 || true
wait "$DPID" 2>/dev/null || true
DPID=
check "killed after both" both "$(loc "$id8")"
chmod u+w "$(obj "$s8")"
printf '\xff' | dd of="$(obj "$s8")" bs=1 seek=100 conv=notrunc status=none
expect_rc 0 "$CAPVAULT" fsck --verify --repair
grep -q "object $s8: .*its copy in the object store is the one recorded now" "$T/out" ||
	fail "fsck of a corrupt local copy of a both object: $(cat "$T/out")"
check "location after" remote "$(loc "$id8")"
check "not damaged" false "$("$CAPVAULT" info --json "$id8" | jq '.tags | index("capvault:damaged") != null')"
expect_rc 0 "$CAPVAULT" fsck
grep -q " 0 problems" "$T/out" || fail "fsck after: $(cat "$T/out")"
# A "both" object whose local file is gone (a crash between an import and
# its record): a backup records it as remote, not fail, and the restore
# finds it in the bucket.
"$MKCAP" --packets 9 --seed 89 -o "$T/c9.pcap"
s9=$(sha "$T/c9.pcap")
expect_rc 0 "$CAPVAULT" import "$T/c9.pcap"
id9=$("$CAPVAULT" info --json "$s9" | jq .id)
start_daemon CAPVAULT_TIER_KILL=both:1
"$CAPVAULT" tier "$id9" >/dev/null 2>&1 || true
wait "$DPID" 2>/dev/null || true
DPID=
check "killed after both" both "$(loc "$id9")"
rm -f "$(obj "$s9")"
expect_rc 0 "$CAPVAULT" backup "$T/bk9"
[ -e "$T/bk9/objects/${s9:0:2}/$s9" ] && fail "a missing local copy appeared in the backup"
expect_rc 0 "$CAPVAULT" restore "$T/bk9" --store "$T/r9"
check "restored both-without-file" remote "$(CAPVAULT_STORE=$T/r9 "$CAPVAULT" info --json "$id9" | jq -r .location)"
expect_rc 0 env CAPVAULT_STORE="$T/r9" "$CAPVAULT" fsck
grep -q " 0 problems" "$T/out" || fail "fsck of the restored store: $(cat "$T/out")"
finish
