#!/bin/bash
# GET /v1/captures?from=&to= selects the captures with a packet in
# [from, to): edges inclusive and exclusive as GET /v1/packets's after and
# before, and a range that holds no time (to at or before from) lists no
# capture, as the packets query of that range counts none.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
command -v curl >/dev/null || { echo "curl not installed"; exit 77; }

S=$CAPVAULT_STORE
cd "$T"
# packets at 1700000000.000 .. .004 and at 0.000 .. 0.004
"$MKCAP" --format pcap --packets 5 --seed 2 -o a.pcap >/dev/null
"$MKCAP" --format pcap --packets 5 --start 0 -o z.pcap >/dev/null
expect_rc 0 "$CAPVAULT" import a.pcap z.pcap
RO=$("$CAPVAULT" token add ro --store "$S" --scopes read 2>/dev/null)
write_config() {
	cat >"$T/d.yaml" <<EOC
store: $S
api:
  listen: ["127.0.0.1:$1"]
scrub:
  interval: 0s
EOC
}
start_daemon
ids() { curl -sS -g -H "Authorization: Bearer $RO" "$U/v1/captures?$1" | jq -c '[.captures[].name]'; }
count() { curl -sS -g -H "Authorization: Bearer $RO" "$U/v1/packets?count=1&$1" | jq -r .count; }

check "from: the last packet's time, inclusive" '["a.pcap"]' "$(ids from=1700000000.004)"
check "from: after the last packet" '[]' "$(ids from=1700000000.004000001)"
check "to: the first packet's time, exclusive" '[]' "$(ids 'to=1970-01-01T00:00:00Z')"
check "to: just after it" '["z.pcap"]' "$(ids 'to=1970-01-01T00:00:00.000000001Z')"
check "a zone offset" '["a.pcap"]' "$(ids 'from=2023-11-15T00:13:20.004%2B02:00')"
for r in "1700000000.004 1700000000.001" "1700000000.002 1700000000.002" "0.003 0.001"; do
	set -- $r
	check "packets after $1 before $2" 0 "$(count "after=$1&before=$2")"
	check "captures from $1 to $2" '[]' "$(ids "from=$1&to=$2")"
done
stop_daemon
finish
