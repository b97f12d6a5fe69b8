#!/usr/bin/env bash
# remote_size.sh - a tiered capture whose object in the store was swapped
# for bytes of another length (issue 18): a query of it fails, naming the
# capture and the two sizes, rather than reading packets at offsets that
# are not theirs; a download fails the same way. The object store is a
# second store folder (CAPVAULT_OBJSTORE_DIR, the local backend).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$T/in"
write_config() { write_inbox_config "$S" "$1"; }
"$MKCAP" --packets 400 --seed 31 -o "$T/a.pcap"
expect_rc 0 "$CAPVAULT" import "$T/a.pcap"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
expect_rc 0 "$CAPVAULT" tier 1
check "location" remote "$("$CAPVAULT" info --json 1 | jq -r .location)"

sha=$(sha256sum "$T/a.pcap" | cut -d' ' -f1)
obj=$B/objects/${sha:0:2}/$sha
size=$(stat -c %s "$obj")
chmod u+w "$obj"
head -c 1000 /dev/urandom >>"$obj"

expect_rc 1 "$CAPVAULT" query --capture 1 -w "$T/q.pcap" udp
grep -q "capture 1" "$T/err" || fail "query: the capture is not named: $(cat "$T/err")"
grep -q "holds $((size + 1000)) bytes, not $size" "$T/err" ||
	fail "query: the sizes are not given: $(cat "$T/err")"
TOK=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
code=$(curl -sS -o "$T/q.json" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
	"$U/v1/packets?captures=1&filter=udp")
check "query API: status" 502 "$code"
check "query API: error" object_corrupt "$(jq -r .error "$T/q.json")"
code=$(curl -sS -o "$T/dl" -w '%{http_code}' -H "Authorization: Bearer $TOK" "$U/v1/captures/1/file")
[ "$code" != 200 ] || fail "download of a swapped object answered 200"
jq -e .error "$T/dl" >/dev/null || fail "download: no JSON error: $(head -c 300 "$T/dl")"
stop_daemon
finish
