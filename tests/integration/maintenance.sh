#!/bin/bash
# Store maintenance through the real CLI: rm and tag; prune --dry-run lists
# exactly what prune then deletes; backup and restore give a store that
# fsck passes and that answers queries the same; fsck finds a flipped byte
# in an object, a deleted object file and a stray tmp file, and --repair
# fixes what can be fixed; kill -9 in the middle of pruning many captures
# leaves a store that fsck passes once reopened.
. "$(dirname "$0")/lib.sh"

S=$CAPVAULT_STORE
ids() { "$CAPVAULT" ls --json | jq -r '[.[].id] | join(",")'; }

# --- import: old captures (by last packet), tagged ones, a protected one
for i in 1 2 3 4 5 6; do
	"$MKCAP" --packets 500 --hosts 8 --seed $i --start $((1500000000 + i * 86400)) -o "$T/c$i.pcap"
done
"$MKCAP" --packets 500 --hosts 8 --seed 7 --start "$(date +%s)" -o "$T/new.pcap"
# One file per import: ids follow the order (a parallel import would not).
for i in 1 2 3; do expect_rc 0 "$CAPVAULT" import --tags lab "$T/c$i.pcap"; done
expect_rc 0 "$CAPVAULT" import --tags keep "$T/c4.pcap"
for f in c5 c6 new; do expect_rc 0 "$CAPVAULT" import "$T/$f.pcap"; done
check "imported" "1,2,3,4,5,6,7" "$(ids)"

# --- tag and rm
expect_rc 0 "$CAPVAULT" tag 3 +scratch -lab
check "tag output" "3: scratch" "$(cat "$T/out")"
check "tag index" "3" "$("$CAPVAULT" ls --tag scratch --json | jq -r '.[].id')"
# A bad tag or token name is echoed escaped: one line, never the raw
# control bytes (a newline would forge a second line of output).
for cmd in "1 tag 3 +bad$'\n'forged" "2 import --tags bad$'\n'forged $T/c1.pcap" \
	"1 token add bad$'\n'forged --scopes read"; do
	eval "expect_rc ${cmd%% *} \"\$CAPVAULT\" ${cmd#* }"
	check "$cmd: one line" 1 "$(wc -l <"$T/err")"
	grep -qF 'bad\x0aforged' "$T/err" || fail "$cmd: not escaped: $(cat "$T/err")"
done
expect_rc 0 "$CAPVAULT" rm 3
check "rm" "1,2,4,5,6,7" "$(ids)"
sha3=$(sha256sum <"$T/c3.pcap" | cut -c1-64)
check "rm removed the object" "gone" "$([ -e "$S/objects/${sha3:0:2}/$sha3" ] && echo there || echo gone)"
expect_rc 1 "$CAPVAULT" rm 3

# --- prune: dry run lists, real run deletes the same
cat >"$T/cfg.yaml" <<EOF
store: $S
retention:
  policies:
    - name: lab
      tags: [lab]
      max_count: 1
    - name: everything
      max_age: 30d
      age_by: last_packet
EOF
expect_rc 0 "$CAPVAULT" prune --config "$T/cfg.yaml" --dry-run --json
dry=$(jq -r '[.captures[].id] | join(",")' "$T/out")
check "dry run plan" "1,5,6" "$dry"
check "dry run deleted nothing" "1,2,4,5,6,7" "$(ids)"
check "reason" "age" "$(jq -r '.captures[1].reason' "$T/out" | cut -c1-3)"
expect_rc 0 "$CAPVAULT" prune --config "$T/cfg.yaml" --json
check "real run = dry run" "$dry" "$(jq -r '[.captures[] | select(.deleted) | .id] | join(",")' "$T/out")"
check "kept" "2,4,7" "$(ids)"
expect_rc 0 "$CAPVAULT" prune --config "$T/cfg.yaml"
check "nothing left to prune" "0 captures deleted, 0 bytes freed" "$(tail -1 "$T/out")"
expect_rc 0 "$CAPVAULT" fsck

# --- backup and restore
count_all() { CAPVAULT_STORE=$1 "$CAPVAULT" query --count "${@:2}"; }
want=$(count_all "$S" tcp)
expect_rc 0 "$CAPVAULT" backup "$T/bk"
expect_rc 1 "$CAPVAULT" backup "$T/bk" # not empty
expect_rc 0 "$CAPVAULT" restore "$T/bk" --store "$T/restored"
CAPVAULT_STORE=$T/restored expect_rc 0 "$CAPVAULT" fsck
check "restored tcp count" "$want" "$(count_all "$T/restored" tcp)"
check "restored all count" "$(count_all "$S")" "$(count_all "$T/restored")"
check "restored ids" "2,4,7" "$(CAPVAULT_STORE=$T/restored "$CAPVAULT" ls --json | jq -r '[.[].id] | join(",")')"

# --- fsck: flipped byte, deleted object, stray tmp file (on the restored copy
# of the objects: copy them first so the backup's hard links are not hit)
R=$T/restored
for f in $(find "$R/objects" -type f); do cp "$f" "$f.x" && mv -f "$f.x" "$f" && chmod 444 "$f"; done
obj() { echo "$R/objects/$(echo "$1" | cut -c1-2)/$1"; }
sha2=$(CAPVAULT_STORE=$R "$CAPVAULT" info --json 2 | jq -r .sha256)
sha4=$(CAPVAULT_STORE=$R "$CAPVAULT" info --json 4 | jq -r .sha256)
chmod u+w "$(obj "$sha2")"
printf '\xff' | dd of="$(obj "$sha2")" bs=1 seek=3000 conv=notrunc status=none
rm -f "$(obj "$sha4")"
echo partial >"$R/tmp/obj-Ab12Cd"
CAPVAULT_STORE=$R expect_rc 1 "$CAPVAULT" fsck
check "flipped byte found" "1" "$(grep -c "problem: object $sha2: content hashes to" "$T/out")"
check "deleted object found" "1" "$(grep -c "problem: capture 4: object $sha4 is missing" "$T/out")"
check "tmp file found" "1" "$(grep -c "problem: .*tmp/obj-Ab12Cd: leftover" "$T/out")"
check "problems" "3 problems, 0 repaired" "$(tail -1 "$T/out" | sed 's/.*: //')"
CAPVAULT_STORE=$R expect_rc 1 "$CAPVAULT" fsck --repair
check "repaired" "3 problems, 2 repaired" "$(tail -1 "$T/out" | sed 's/.*: //')"
check "tmp removed" "" "$(ls "$R/tmp")"
CAPVAULT_STORE=$R expect_rc 1 "$CAPVAULT" fsck
check "only the corrupt object is left" "1 problems, 0 repaired" "$(tail -1 "$T/out" | sed 's/.*: //')"
CAPVAULT_STORE=$R expect_rc 0 "$CAPVAULT" rm 2
CAPVAULT_STORE=$R expect_rc 0 "$CAPVAULT" fsck
check "the original is untouched" "2,4,7" "$(ids)"
expect_rc 0 "$CAPVAULT" fsck

# --- kill -9 during a prune of many captures, then fsck after reopening
K=$T/kill
"$CAPVAULT" init --store "$K" >/dev/null
for i in $(seq 1 120); do
	"$MKCAP" --packets 20 --hosts 2 --seed $((100 + i)) --start $((1500000000 + i)) -o "$T/many$i.pcap"
done
CAPVAULT_STORE=$K expect_rc 0 "$CAPVAULT" import "$T"/many*.pcap
cat >"$T/all.yaml" <<EOF
store: $K
retention:
  policies:
    - name: all
      max_age: 0
      allow_empty: true
EOF
CAPVAULT_STORE=$K "$CAPVAULT" prune --config "$T/all.yaml" >/dev/null 2>&1 &
pid=$!
# Kill it once it has deleted some objects (it unlinks them one by one).
for _ in $(seq 1 500); do
	[ "$(find "$K/objects" -type f | wc -l)" -lt 110 ] && break
	sleep 0.01
done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
left=$(CAPVAULT_STORE=$K "$CAPVAULT" ls --json | jq length)
echo "kill -9 left $left of 120 captures"
CAPVAULT_STORE=$K expect_rc 0 "$CAPVAULT" fsck
CAPVAULT_STORE=$K expect_rc 0 "$CAPVAULT" prune --config "$T/all.yaml"
check "the rest pruned" "0" "$(CAPVAULT_STORE=$K "$CAPVAULT" ls --json | jq length)"
check "no objects left" "0" "$(find "$K/objects" -type f | wc -l)"
CAPVAULT_STORE=$K expect_rc 0 "$CAPVAULT" fsck

finish
