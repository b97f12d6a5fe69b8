#!/usr/bin/env bash
# packets_answer.sh - GET /v1/packets answered as the query ended (a query
# that ends within 0.2 s): the status of a failed query, the metrics of
# fast and failed queries (each counted once), outputs around the 1 MiB
# buffer, and limit=.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
command -v capinfos >/dev/null || { echo "SKIP: no capinfos"; exit 77; }
S=$CAPVAULT_STORE
mkdir -p "$T/in"
write_config() { write_inbox_config "$S" "$1"; }
"$MKCAP" --packets 300 --seed 31 -o "$T/small.pcap"
"$MKCAP" --packets 40000 --hosts 10 --seed 32 -o "$T/big.pcap"
expect_rc 0 "$CAPVAULT" import "$T/small.pcap"
expect_rc 0 "$CAPVAULT" import "$T/big.pcap"
start_daemon
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
api() { curl -sS -H "Authorization: Bearer $RO" "$@"; }
metric() { api "$U/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
npk() { capinfos -M -c -T "$1" | awk -F'\t' 'NR == 2 { print $2 }'; }
dump() { { tcpdump -r "$1" -tt -nn -x 2>/dev/null || echo unreadable; } | sha256sum | cut -c1-16; }

q0=$(metric capvault_queries_total) f0=$(metric capvault_query_failures_total)
check "small query" 200 "$(api -o "$T/s.pcap" -w '%{http_code}' "$U/v1/packets?captures=1")"
check "small query = original" "$(dump "$T/small.pcap")" "$(dump "$T/s.pcap")"
sleep 0.3
check "queries after one fast query" $((q0 + 1)) "$(metric capvault_queries_total)"
check "failures after one fast query" "$f0" "$(metric capvault_query_failures_total)"

check "limit=5" 200 "$(api -o "$T/l.pcap" -w '%{http_code}' "$U/v1/packets?captures=1&limit=5")"
check "limit=5 packets" 5 "$(npk "$T/l.pcap")"

check "big query" 200 "$(api -o "$T/b.pcap" -w '%{http_code}' "$U/v1/packets?captures=2")"
check "big query = original" "$(dump "$T/big.pcap")" "$(dump "$T/b.pcap")"
# Around the 1 MiB buffer: limits whose output lands near it.
for n in 1000 5000 8000 12000; do
	api -o "$T/n.pcap" "$U/v1/packets?captures=2&limit=$n"
	check "limit=$n packets" "$n" "$(npk "$T/n.pcap")"
done

# A local capture whose object file is gone (lost data, not pruned).
sha=$(sha256sum "$T/small.pcap" | cut -d' ' -f1)
mv "$S/objects/${sha:0:2}/$sha" "$T/moved"
q0=$(metric capvault_queries_total) f0=$(metric capvault_query_failures_total)
code=$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/packets?captures=1")
echo "lost local object: $code $(cat "$T/e.json" | head -c 300)"
# Lost data is not "no such resource": 404 would say the request named
# nothing there (a client would take it for a bad capture id).
[ "$code" != 404 ] || fail "a lost local object answers 404: $(cat "$T/e.json")"
[ "$code" != 200 ] || fail "a lost local object answers 200"
sleep 0.3
check "queries after one failed query" $((q0 + 1)) "$(metric capvault_queries_total)"
check "failures after one failed query" $((f0 + 1)) "$(metric capvault_query_failures_total)"
expect_rc 1 "$CAPVAULT" --url "$U" --token "$RO" query --capture 1 -w "$T/c.pcap" ""
echo "CLI: $(cat "$T/err")"
mv "$T/moved" "$S/objects/${sha:0:2}/$sha"
stop_daemon
finish
