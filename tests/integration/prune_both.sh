#!/usr/bin/env bash
# prune_both.sh - min_free and an object in both places (a remote capture
# imported again): capvaultd ends its move instead of deleting its capture
# while the object store answers; `capvault prune` without the daemon,
# whose object store answers too (it tiers by tier_after and
# local_max_size itself), must do the same, not delete the capture.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$B"
export CAPVAULT_OBJSTORE_DIR=$B
"$MKCAP" --packets 20000 --seed 41 -o "$T/a.pcap"
expect_rc 0 "$CAPVAULT" import "$T/a.pcap"
mkdir -p "$T/in"
write_config() { write_inbox_config "$S" "$1"; }
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
expect_rc 0 "$CAPVAULT" tier 1
check "location after tier" remote "$("$CAPVAULT" info --json 1 | jq -r .location)"
stop_daemon
expect_rc 0 "$CAPVAULT" import "$T/a.pcap"
check "location after the import again" both "$("$CAPVAULT" info --json 1 | jq -r .location)"
size=$(stat -c %s "$T/a.pcap")
avail=$(df --output=avail -B1 "$S" | tail -1)
# A floor that the object's local copy alone brings the store back over.
floor=$((avail + size / 2))
cat >"$T/c.yaml" <<EOC
store: $S
retention:
  interval: 1h
  min_free: $floor
EOC
expect_rc 0 "$CAPVAULT" prune --config "$T/c.yaml" --dry-run --json
cp "$T/out" "$T/plan.json"
echo "plan: $(jq -c . "$T/plan.json" | head -c 600)"
check "captures the dry run deletes" 0 "$(jq '.captures | length' "$T/plan.json")"
expect_rc 0 "$CAPVAULT" prune --config "$T/c.yaml" --json
check "captures after prune" 1 "$("$CAPVAULT" ls --json | jq length)"
check "location after prune" remote "$("$CAPVAULT" info --json 1 2>/dev/null | jq -r .location)"
finish
