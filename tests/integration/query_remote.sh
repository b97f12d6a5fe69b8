#!/usr/bin/env bash
# query_remote.sh - reading tiered captures through capvaultd (issue 18):
# once a capture's object is only in the object store, a filtered query
# gives packet for packet what `tcpdump -r` gives on the original, reading
# from the store a small part of the object (only blocks around the
# candidate packets); the repeat query is served from the cache; a filter
# the index cannot narrow reads it all, still exact; a download is the
# original's bytes, and once cached needs no store. A store that fails
# (its objects gone, or a real Ceph RGW stopped or frozen)
# fails queries and downloads of remote captures with 503 and a message
# naming the object store and the capture, the CLI prints it, and the
# daemon goes on answering. The CloudShark readers of capture bytes
# work on tiered captures too: merge (the packets mergecap gives), the
# annotated download (comments tshark reads) and the key log download,
# and answer 503 the same way when the store fails. With the argument
# "rgw" the object store is a real Ceph RGW (stopped, then frozen; its
# request_timeout is 60s for uploads and read_timeout 2s for reads, so a
# frozen store fails a query well within the test's 30 s guard);
# without, a second store folder (CAPVAULT_OBJSTORE_DIR, the local
# backend) whose objects go away.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
for tool in tshark mergecap; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done

S=$CAPVAULT_STORE
B=$T/bucket
RGW=${1:-}
mkdir -p "$T/in"
if [ -n "$RGW" ]; then
	source "$(dirname "$0")/rgw_lib.sh"
	rgw_start
fi

"$MKCAP" --packets 30000 --hosts 40 --flows 0 --seed 21 -o "$T/a.pcap"
"$MKCAP" --packets 8000 --hosts 20 --seed 22 -o "$T/b.pcap"
"$MKCAP" --packets 300 --seed 23 -o "$T/c.pcap"
expect_rc 0 "$CAPVAULT" import "$T/a.pcap"
expect_rc 0 "$CAPVAULT" import "$T/b.pcap"
A=1 BID=2
sha() { sha256sum "$1" | cut -d' ' -f1; }
dump() { { tcpdump -r "$1" -tt -nn -x 2>/dev/null || echo unreadable; } | sha256sum | cut -c1-16; }
loc() { "$CAPVAULT" info --json "$1" | jq -r .location; }

write_config() {
	write_inbox_config "$S" "$1"
	# 5 MiB parts: a.pcap (22 MB) goes up in parts, whose hash of the
	# local copy hands out its blocks' states (objstore_put_chained).
	[ -z "$RGW" ] || rgw_object_store_config cache_size=256MiB connect_timeout=1s \
		request_timeout=60s read_timeout=2s part_size=5MiB
}
# Uploads get time (request_timeout); reads fail fast (read_timeout).
if [ -n "$RGW" ]; then
	start_daemon
	if ! logged "object store s3://"; then
		echo "capvaultd does not read object_store: from its config yet"
		exit 77
	fi
else
	start_daemon CAPVAULT_OBJSTORE_DIR="$B"
fi
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
api() { curl -sS -H "Authorization: Bearer $RO" "$@"; }
CS=$("$CAPVAULT" token add cs --scopes read,upload --cloudshark 2>/dev/null)
CSU="$U/api/v1/$CS"
printf 'CLIENT_RANDOM 00112233 44556677\n' >"$T/keys.log"
check "upload of c with a key log" 200 "$(curl -sS -o "$T/up.json" -w '%{http_code}' \
	-F "file=@$T/c.pcap" -F "filename=c.pcap" -F "keylog=@$T/keys.log" "$CSU/upload")"
C=$(jq -r .id "$T/up.json")
check "annotate b" 204 "$(curl -sS -o /dev/null -w '%{http_code}' -X POST \
	"$CSU/annotations/$BID?frame=3&text=look+here&quiet=true")"

expect_rc 0 "$CAPVAULT" tier "$A" "$BID" "$C"
check "location of a" remote "$(loc "$A")"
check "location of b" remote "$(loc "$BID")"
check "location of c" remote "$(loc "$C")"
gone "$S/objects/$(sha "$T/a.pcap" | cut -c1-2)/$(sha "$T/a.pcap")" || fail "local copy kept"

# One conversation of the middle of a.pcap (every packet is its own).
read -r src dst < <(tcpdump -r "$T/a.pcap" -nn 'ip and tcp' 2>/dev/null |
	awk 'NR == 3000 { sub(/:$/, "", $5); print $3, $5; exit }')
sh=${src%.*} sp=${src##*.} dh=${dst%.*} dp=${dst##*.}
filter="host $sh and host $dh and tcp port $sp and tcp port $dp"
size=$(stat -c %s "$T/a.pcap")

explain() {
	api -G --data-urlencode "filter=$filter" --data "captures=$A" --data explain=1 \
		"$U/v1/packets" >"$T/explain.json"
}
explain
read -r matched remote_bytes < <(jq -r '"\(.packets_matched) \(.bytes_remote)"' "$T/explain.json")
[ "$matched" -ge 1 ] || fail "the conversation matched nothing: $(cat "$T/explain.json")"
echo "selective query: $matched packets, $remote_bytes bytes of a $size-byte object from the store"
[ "$remote_bytes" -gt 0 ] || fail "nothing read from the store: $(cat "$T/explain.json")"
[ $((remote_bytes * 20)) -lt "$size" ] ||
	fail "a selective query read $remote_bytes bytes of a $size-byte object from the store"

# The same packets as tcpdump, through the CLI (from the cache now).
expect_rc 0 "$CAPVAULT" query --capture "$A" -w "$T/got.pcap" "$filter"
tcpdump -r "$T/a.pcap" -w "$T/want.pcap" "$filter" 2>/dev/null
check "selective query vs tcpdump" "$(dump "$T/want.pcap")" "$(dump "$T/got.pcap")"
explain
check "repeat query: bytes from the store" 0 "$(jq -r .bytes_remote "$T/explain.json")"
api "$U/metrics" >"$T/m"
hits=$(awk '$1 == "capvault_cache_hits_total" { print $2 }' "$T/m")
[ "${hits:-0}" -gt 0 ] || fail "no cache hits in the metrics"
grep -q '^capvault_remote_read_duration_seconds_count [1-9]' "$T/m" ||
	fail "no remote read latency in the metrics"
# Every block fetched was checked against what its move recorded.
check "blocks served unchecked" 0 "$(awk '$1 == "capvault_remote_unchecked_blocks_total" { print $2 }' "$T/m")"
check "blocks that failed their check" 0 "$(awk '$1 == "capvault_remote_corrupt_total" { print $2 }' "$T/m")"

# A filter the index does not narrow: every packet of b, still exact.
expect_rc 0 "$CAPVAULT" query --capture "$BID" --count --explain "tcp or udp or arp"
grep -q "sent by the object store" "$T/err" "$T/out" || fail "--explain: $(cat "$T/err")"
expect_rc 0 "$CAPVAULT" query --capture "$BID" -w "$T/gotb.pcap" "tcp or udp or arp"
tcpdump -r "$T/b.pcap" -w "$T/wantb.pcap" "tcp or udp or arp" 2>/dev/null
check "unnarrowed query vs tcpdump" "$(dump "$T/wantb.pcap")" "$(dump "$T/gotb.pcap")"

# The CloudShark readers of capture bytes, on tiered captures.
packets() { tcpdump -nn -tt -xx -r "$1" 2>/dev/null | sha256sum | cut -c1-16; }
check "merge of tiered b and c" 200 "$(curl -sS -o "$T/merge.json" -w '%{http_code}' -X POST \
	"$CSU/merge?capture_ids=$BID,$C&filename=bc.pcapng")"
curl -sS -o "$T/merged.pcapng" "$CSU/download/$(jq -r .id "$T/merge.json")"
mergecap -w "$T/ref.pcapng" "$T/b.pcap" "$T/c.pcap"
check "merge = mergecap" "$(packets "$T/ref.pcapng")" "$(packets "$T/merged.pcapng")"
check "annotated download of tiered b" 200 \
	"$(curl -sS -o "$T/ann.pcapng" -w '%{http_code}' "$CSU/download/$BID?annotations=1")"
check "annotated download: comments" "3:look here" \
	"$(tshark -r "$T/ann.pcapng" -Y frame.comment -T fields -e frame.number -e frame.comment \
		2>/dev/null | tr '\t' ':' | paste -sd' ')"
check "annotated download: same packets" "$(packets "$T/b.pcap")" "$(packets "$T/ann.pcapng")"
check "key log download of tiered c" 200 \
	"$(curl -sS -o "$T/keys.pcapng" -w '%{http_code}' "$CSU/download/$C?keylog=1")"
grep -q "CLIENT_RANDOM 00112233 44556677" "$T/keys.pcapng" || fail "no key log in the download"
check "key log download: same packets" "$(packets "$T/c.pcap")" "$(packets "$T/keys.pcapng")"

# The store fails: 503 naming the store and the capture; the daemon lives.
# (The local backend holds its folder open: its objects are moved away,
# and a file stands where each fan-out folder was, so reading them fails
# with ENOTDIR: a store that cannot answer, not one that says the object
# is missing, which is 502 object_missing, see remote_integrity.sh.)
store_down() {
	if [ -n "$RGW" ]; then rgw_down; return; fi
	mkdir -p "$T/away" && mv "$B"/objects/* "$T/away/"
	for d in "$T"/away/*; do : >"$B/objects/${d##*/}"; done
}
store_up() {
	if [ -n "$RGW" ]; then rgw_up; return; fi
	for d in "$T"/away/*; do rm -f "$B/objects/${d##*/}"; done
	mv "$T"/away/* "$B/objects/"
}
# expect_503 WHAT [CAPTURE] CURL-ARGS...: 503 naming the store and the
# capture ($BID unless given), within the 30 s guard (read_timeout is 2s).
expect_503() {
	local what=$1 id=$BID
	shift
	if [[ $1 =~ ^[0-9]+$ ]]; then id=$1; shift; fi
	check "$what: status" 503 "$(api --max-time 30 -o "$T/e.json" -w '%{http_code}' "$@")"
	echo "$what: $(jq -c '.message // .' "$T/e.json" 2>/dev/null || cat "$T/e.json")"
	grep -q "object store" "$T/e.json" || fail "$what: no object store named: $(cat "$T/e.json")"
	grep -q "capture $id" "$T/e.json" || fail "$what: no capture named: $(cat "$T/e.json")"
	# The store is named once (the backend's own message may start with it).
	local msg name
	msg=$(jq -r '.message // .exceptions[0] // empty' "$T/e.json" 2>/dev/null)
	name=${msg#*object store }
	name=${name%%: *}
	check "$what: the store named once" 1 "$(grep -oF -- "$name" <<<"$msg" | wc -l)"
}
fail_fast() {
	expect_503 "$1: query" -G --data-urlencode "filter=udp" --data "captures=$BID" "$U/v1/packets"
	expect_503 "$1: download" "$U/v1/captures/$BID/file"
	expect_503 "$1: merge" -X POST "$CSU/merge?capture_ids=$BID,$C"
	expect_503 "$1: annotated download" "$CSU/download/$BID?annotations=1"
	expect_503 "$1: key log download" "$C" "$CSU/download/$C?keylog=1"
	expect_rc 1 "$CAPVAULT" query --capture "$BID" -w "$T/x.pcap" udp
	grep -q "object store" "$T/err" || fail "$1: the CLI does not say why: $(cat "$T/err")"
	check "$1: health" 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/v1/health")"
}
# A query whose blocks are all in the cache (a's conversation, queried
# above; the rest of a is not cached) needs no store.
cached_query() {
	expect_rc 0 "$CAPVAULT" query --capture "$A" -w "$T/got3.pcap" "$filter"
	check "$1: the cached query" "$(dump "$T/want.pcap")" "$(dump "$T/got3.pcap")"
}
store_down
fail_fast "store down"
cached_query "store down"
store_up
if [ -n "$RGW" ]; then
	rgw_pause
	fail_fast "store frozen"
	cached_query "store frozen"
	rgw_resume
fi

# Downloads: the original's bytes; a second one comes from the cache.
api -o "$T/dl.pcap" "$U/v1/captures/$A/file"
check "download" "$(sha "$T/a.pcap")" "$(sha "$T/dl.pcap")"
store_down
api -o "$T/dl2.pcap" "$U/v1/captures/$A/file"
check "download from the cache, store down" "$(sha "$T/a.pcap")" "$(sha "$T/dl2.pcap")"
expect_rc 0 "$CAPVAULT" query --capture "$A" -w "$T/got2.pcap" "$filter"
check "query of a cached object, store down" "$(dump "$T/want.pcap")" "$(dump "$T/got2.pcap")"
store_up

stop_daemon
# Without the daemon, the CLI cannot read a tiered capture, and says so.
expect_rc 1 "$CAPVAULT" query --capture "$A" -w "$T/x.pcap" "$filter"
grep -q "object store" "$T/err" || fail "offline query: $(cat "$T/err")"
finish
