#!/bin/bash
# Queries a client controls cannot hold the daemon (issue 15.10): a
# filter over the size bounds is refused with 400 and a JSON reason
# before libpcap sees it (a 700-term one compiled for 25 s), a plain
# query is answered while the heaviest filter allowed compiles, and a
# query whose client has gone stops (count and stream), as the log says.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
api:
  listen: ["127.0.0.1:$1"]
  timeout: 30s
YAML
}

# or_chain FORMAT N: "P1+or+P2+..." (URL form) with FORMAT given i and i+1.
or_chain() {
	local i out=
	for i in $(seq 1 "$2"); do
		# shellcheck disable=SC2059
		out+="${out:++or+}$(printf "$1" "$i" $((i + 1)))"
	done
	echo "$out"
}

"$MKCAP" --packets 200000 --payload 0 --seed 3 -o "$T/big.pcap"
"$CAPVAULT" import --store "$STORE" --quiet "$T/big.pcap" >/dev/null
TOKEN=$("$CAPVAULT" token add reader --store "$STORE" --scopes read 2>/dev/null)
auth=(-H "Authorization: Bearer $TOKEN")
start_daemon

# --- the report's filter: 700 "host" terms, refused at once
huge=$(or_chain "host+10.0.%d.1" 700 | sed -E 's/10\.0\.([0-9]{3,})\./10.0.9./g')
code=$(curl -s -o "$T/huge" -w '%{http_code}' --max-time 20 "${auth[@]}" "$U/v1/packets?count=1&filter=$huge" || true)
check "700-term filter: HTTP status" 400 "$code"
grep -q '"error":"filter_too_large"' "$T/huge" || fail "700-term filter: no filter_too_large in $(head -c 300 "$T/huge")"
grep -q 'bytes; at most 4096 are allowed' "$T/huge" || fail "700-term filter: the bound is not named: $(head -c 300 "$T/huge")"
# short, but 65 terms
many=$(printf 'tcp%.0s+or+' $(seq 1 64))tcp
code=$(curl -s -o "$T/many" -w '%{http_code}' --max-time 20 "${auth[@]}" "$U/v1/packets?filter=$many" || true)
check "65-term filter: HTTP status" 400 "$code"
grep -q '65 terms.*at most 64' "$T/many" || fail "65-term filter: $(head -c 300 "$T/many")"
# the CLI says the same, through the daemon and offline
expect_rc 2 "$CAPVAULT" query --count "$(echo "$many" | tr + ' ')"
grep -q "at most 64" "$T/err" || fail "CLI: $(head -c 300 "$T/err")"

# --- a plain query is answered while the heaviest allowed filter compiles
heavy=$(or_chain "portrange+%d-%d" 64)
curl -s -o "$T/heavy" --max-time 120 "${auth[@]}" "$U/v1/packets?count=1&filter=$heavy" &
hpid=$!
code=$(curl -s -o "$T/plain" -w '%{http_code}' --max-time 120 "${auth[@]}" "$U/v1/packets?count=1&filter=tcp" || true)
check "plain query beside a heavy compile: HTTP status" 200 "$code"
grep -q '"count":' "$T/plain" || fail "plain query: $(head -c 300 "$T/plain")"
wait "$hpid" || fail "heavy query failed"
grep -q '"count":' "$T/heavy" || fail "heavy query: $(head -c 300 "$T/heavy")"

# --- a client that leaves: the query stops. The filter matches nothing
# and the planner cannot narrow it, so every packet is read; the client
# sends its request and closes at once.
leave() {
	exec 3<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET /v1/packets?%sfilter=ip%%5b0%%5d+%%3d+0x99 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' \
		"$1" "$TOKEN" >&3
	exec 3>&-
}
leave "count=1&"
wait_for "count query cancelled" logged "query: the client left: query cancelled after"
n=$(count_logged "query: the client left")
leave ""
wait_for "stream query cancelled" eval '[ "$(count_logged "query: the client left")" -gt "$n" ]'
# the daemon still answers, and counts the same as before
code=$(curl -s -o "$T/after" -w '%{http_code}' --max-time 60 "${auth[@]}" "$U/v1/packets?count=1&filter=ip%5b0%5d+%3d+0x99" || true)
check "query after the cancelled ones" 200 "$code"
grep -q '"count":0' "$T/after" || fail "query after: $(head -c 300 "$T/after")"

stop_daemon
finish
