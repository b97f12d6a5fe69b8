#!/bin/bash
# What a host clock that was ahead leaves behind once it is set right.
# - The scrub's last pass, recorded in scrub.last while the clock read a
#   year ahead, must not put the next pass a year away: a pass stamped
#   later than now counts as just ended, so the next is one interval on.
# - Retention by last packet: a capture stamped 2090 ages from its import
#   (prune names why) and does not outrank real captures under max_count.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
command -v curl >/dev/null || { echo "curl not installed"; exit 77; }

S=$CAPVAULT_STORE
cd "$T"
mkdir -p in
now=$(date +%s)

# --- retention by last packet, offline
# fresh.pcap's last packet is later than f2090.pcap's import
"$MKCAP" --format pcap --packets 5 --start 3786912000 -o f2090.pcap >/dev/null
expect_rc 0 "$CAPVAULT" import f2090.pcap
sleep 2
"$MKCAP" --format pcap --packets 5 --seed 2 --start $(($(date +%s) - 1)) -o fresh.pcap >/dev/null
expect_rc 0 "$CAPVAULT" import fresh.pcap
cat >cfg.yaml <<YAML
store: $S
retention:
  policies:
    - name: newest
      max_count: 1
      age_by: last_packet
YAML
expect_rc 0 "$CAPVAULT" prune --config cfg.yaml --dry-run --json
check "max_count keeps the fresh capture, not the one stamped 2090" "f2090.pcap" \
	"$(jq -r '[.captures[].name] | join(",")' "$T/out")"
cat >cfg.yaml <<YAML
store: $S
retention:
  policies:
    - name: second
      max_age: 1s
      age_by: last_packet
YAML
sleep 1.1
expect_rc 0 "$CAPVAULT" prune --config cfg.yaml --dry-run --json
check "max_age counts the 2090 capture from its import" \
	"f2090.pcap: by import: last packet stamped later" \
	"$(jq -r '.captures[] | select(.name == "f2090.pcap") | .name + ": " +
		(.reason | capture("\\((?<b>[^)]*)\\)").b)' "$T/out")"

# --- the scrub's last pass stamped a year ahead
echo $(((now + 365 * 86400) * 1000000000)) >"$S/scrub.last"
RO=$("$CAPVAULT" token add ro --store "$S" --scopes read 2>/dev/null)
write_config() { write_inbox_config "$S" "$1" $'  interval: 1h\n  rate: 16MiB'; }
start_daemon
curl -sS -H "Authorization: Bearer $RO" "$U/metrics" >"$T/metrics"
next=$(awk '$1 == "capvault_scrub_next_run_timestamp_seconds" {print $2}' "$T/metrics")
checks=$((checks + 1))
[ -n "$next" ] && [ "$next" -le $(($(date +%s) + 3600 + 5)) ] ||
	fail "next scrub at '$next', more than the 1h interval away (now $(date +%s))"
stop_daemon
finish
