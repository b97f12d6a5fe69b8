#!/bin/bash
# The object tier when a real Ceph RGW (tools/rgw-test) fails, three ways:
# down (RGW stopped: connections refused), slow (RGW frozen: connections
# taken, never answered: time-outs) and refusing (the user suspended: 403,
# as with a wrong key). In each: imports go on locally; `capvault tier`
# fails within the request timeout, exits 1 naming the object store, and
# leaves the capture local and readable; a query touching a tiered capture
# gets 503 naming the object store and the capture (not a hang); the
# daemon lives and answers; /metrics counts the failure by kind. A remote
# removal queued while the store is down is retried with backoff and done
# once it is back. Reads with the store down or frozen are also covered by
# query_remote_rgw; here the refusing store, and the writes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
. "$(dirname "$0")/rgw_lib.sh"

rgw_start
S=$CAPVAULT_STORE
mkdir -p "$T/in"
write_config() {
	write_inbox_config "$S" "$1"
	rgw_object_store_config prefix=faults/ cache_size=64MiB connect_timeout=1s \
		request_timeout=2s read_timeout=2s
}
"$MKCAP" --packets 3000 --hosts 20 --seed 31 -o "$T/a.pcap"
"$MKCAP" --packets 3000 --hosts 20 --seed 32 -o "$T/b.pcap"
"$MKCAP" --packets 3000 --hosts 20 --seed 33 -o "$T/d.pcap"
expect_rc 0 "$CAPVAULT" import "$T/a.pcap" "$T/b.pcap" "$T/d.pcap"
A=1 B=2 D=3
start_daemon
logged "tier: object store s3://$CAPVAULT_S3_BUCKET/faults/" ||
	fail "capvaultd did not open the object store: $(tail -5 "$T/d.log")"
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
api() { curl -sS --max-time 60 -H "Authorization: Bearer $RO" "$@"; }
loc() { "$CAPVAULT" info --json "$1" | jq -r .location; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
key() { local s; s=$(sha "$1"); echo "$CAPVAULT_S3_ENDPOINT/$CAPVAULT_S3_BUCKET/faults/objects/${s:0:2}/$s"; }
metric() { # NAME: its value in /metrics (0 when absent)
	api "$U/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
DPID0=$DPID
imported_local() {
	[ "$("$CAPVAULT" ls --json | jq -r ".[] | select(.name == \"$1\") | .location")" = local ]
}

expect_rc 0 "$CAPVAULT" tier "$A" "$D"
check "a is remote" remote "$(loc "$A")"
check "d is remote" remote "$(loc "$D")"
check "the store holds a" 200 "$(s3 -o /dev/null -w '%{http_code}' -I "$(key "$T/a.pcap")")"

# Each fault, then the store back. N counts the imports.
n=0
faulty() {
	local what=$1 kind=$2 errors
	errors=$(metric "capvault_tier_errors_total{kind=\"$kind\"}")

	# Imports go on locally.
	n=$((n + 1))
	"$MKCAP" --packets 500 --hosts 10 --seed $((40 + n)) -o "$T/new$n.tmp"
	mv "$T/new$n.tmp" "$T/in/new$n.pcap"
	wait_for "$what: new$n.pcap imported, local" imported_local "new$n.pcap"

	# A move fails, says where, and leaves the capture as it was.
	expect_rc 1 "$CAPVAULT" tier "$B"
	grep -q "s3://$CAPVAULT_S3_BUCKET" "$T/out" "$T/err" ||
		fail "$what: tier does not name the object store: $(cat "$T/out" "$T/err")"
	check "$what: b stays local" local "$(loc "$B")"
	expect_rc 0 "$CAPVAULT" query --capture "$B" --count "tcp or udp"
	check "$what: b still readable" "$(tcpdump -r "$T/b.pcap" "tcp or udp" 2>/dev/null | wc -l)" \
		"$(cat "$T/out")"
	check "$what: counted as $kind" 1 \
		"$(( $(metric "capvault_tier_errors_total{kind=\"$kind\"}") > errors ))"

	# A query touching a tiered capture: 503 naming the store and the capture.
	check "$what: query status" 503 "$(api -o "$T/e.json" -w '%{http_code}' -G \
		--data-urlencode "filter=tcp" --data "captures=$A" "$U/v1/packets")"
	grep -q "object store" "$T/e.json" || fail "$what: no object store named: $(cat "$T/e.json")"
	grep -q "capture $A" "$T/e.json" || fail "$what: no capture named: $(cat "$T/e.json")"

	check "$what: health" 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/v1/health")"
	check "$what: the same daemon" "$DPID0" "$DPID"
	kill -0 "$DPID" 2>/dev/null || fail "$what: the daemon died: $(tail -5 "$T/d.log")"
}

rgw_down
faulty "store down" refused
# A removal of a tiered capture, queued while the store is down.
retries=$(metric capvault_tier_retries_total)
expect_rc 0 "$CAPVAULT" rm "$D"
retried() { [ "$(metric capvault_tier_retries_total)" -gt "$retries" ]; }
wait_for "the remote removal retried" retried
rgw_up
d_gone() { [ "$(s3 -o /dev/null -w '%{http_code}' -I "$(key "$T/d.pcap")")" = 404 ]; }
# The backoff has doubled a few times (0.5 s up): up to 60 s.
for _ in $(seq 12); do d_gone && break; sleep 5; done
check "the removal done once the store is back" 404 \
	"$(s3 -o /dev/null -w '%{http_code}' -I "$(key "$T/d.pcap")")"

rgw_pause
faulty "store frozen" timeout
rgw_resume

rgw_refuse
faulty "store refusing (403)" forbidden
rgw_accept

# Back to normal: the move succeeds, the tiered capture reads right.
expect_rc 0 "$CAPVAULT" tier "$B"
check "b is remote" remote "$(loc "$B")"
expect_rc 0 "$CAPVAULT" query --capture "$A" -w "$T/got.pcap" tcp
tcpdump -r "$T/a.pcap" -w "$T/want.pcap" tcp 2>/dev/null
check "a reads as tcpdump" "$(tcpdump -r "$T/want.pcap" -nn -tt 2>/dev/null | sha256sum)" \
	"$(tcpdump -r "$T/got.pcap" -nn -tt 2>/dev/null | sha256sum)"
finish
