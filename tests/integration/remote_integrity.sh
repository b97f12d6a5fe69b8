#!/usr/bin/env bash
# remote_integrity.sh - downloads of tiered captures never hand over bytes
# that are not the capture's (adv18 F2, F4, F6). The object store is a
# second store folder through the local backend (CAPVAULT_OBJSTORE_DIR).
# - An object replaced in the store by other bytes of the same size: the
#   download ends short of its Content-Length (curl fails), the daemon logs
#   an error naming the capture and the store, remote_read_errors_total
#   counts it, and nothing is cached; once the object is right again the
#   download is whole.
# - A whole copy in the read-through cache that changed on disk: the
#   download fails the same way, the copy is removed, and the next
#   download (from the store) is whole; after a restart, a range read of
#   a changed block removes it too and is served from the store.
# - An object missing from the store: 502 object_missing naming the
#   capture and fsck --remote, not 503 (which says "retry later").
# - A merge (objread: read in order, hashed, checked at the end) of a
#   tiered capture whose object was replaced fails, and stores nothing.
# - Range reads (F3): a query or a range download of an object whose
#   block was replaced in the store fails (502 object_corrupt naming the
#   block; a short body) rather than serve it, while ranges of its good
#   blocks are served, checked against the digests recorded at tiering.
# - An object removed from the store (rm of its last capture) leaves
#   nothing of it in the read-through cache (F3).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$T/in"
"$MKCAP" --packets 300 --payload 1000 --seed 71 -o "$T/c1.pcap" # ~300 KiB: over the 64 KiB held back
"$MKCAP" --packets 30 --seed 72 -o "$T/c2.pcap"
"$MKCAP" --packets 40 --payload 500 --seed 73 -o "$T/c3.pcap"
"$MKCAP" --packets 20 --seed 74 -o "$T/c4.pcap"
"$MKCAP" --packets 400 --payload 1000 --seed 75 -o "$T/c5.pcap" # ~420 KiB: 7 blocks of 64 KiB
expect_rc 0 "$CAPVAULT" import "$T/c1.pcap" "$T/c2.pcap" "$T/c3.pcap" "$T/c4.pcap" "$T/c5.pcap"
sha() { sha256sum "$1" | cut -d' ' -f1; }
s1=$(sha "$T/c1.pcap") s2=$(sha "$T/c2.pcap") s3=$(sha "$T/c3.pcap") s5=$(sha "$T/c5.pcap")
remote() { echo "$B/objects/${1:0:2}/$1"; }
cached() { echo "$S/cache/${1:0:2}/$1.obj"; }
# flip FILE OFFSET: complements one byte (same size, other bytes).
flip() {
	chmod u+w "$1"
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf '%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

write_config() { write_inbox_config "$S" "$1"; }
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
api() { curl -sS -H "Authorization: Bearer $RO" "$@"; }
CS=$("$CAPVAULT" token add cs --scopes read,upload --cloudshark 2>/dev/null)
CSU="$U/api/v1/$CS"
expect_rc 0 "$CAPVAULT" tier 1 2 3 4 5
errors() { api "$U/metrics" | awk '$1 == "capvault_remote_read_errors_total" { print $2 }'; }

# F2: the object in the store replaced by other bytes of the same size.
flip "$(remote "$s1")" 5000
rc=0
api -o "$T/dl" -w '%{http_code}' "$U/v1/captures/1/file" >"$T/code" 2>"$T/curl.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a download of corrupt bytes succeeded (HTTP $(cat "$T/code"))"
# The replaced byte is in the first block, checked against its digest
# before it goes: not a byte of the body was sent.
check "bytes sent of a replaced first block" 0 "$(stat -c %s "$T/dl" 2>/dev/null || echo 0)"
wait_for "the corruption logged" logged "download of capture 1 cut short"
grep "cut short" "$T/d.log" | grep -q "bytes 0-65535 do not match the digest" ||
	fail "log: $(grep 'cut short' "$T/d.log")"
check "remote read errors" 1 "$(errors)"
gone "$(cached "$s1")" || fail "corrupt bytes were cached"
flip "$(remote "$s1")" 5000
api -o "$T/dl" "$U/v1/captures/1/file"
check "download once the object is right" "$s1" "$(sha "$T/dl")"
[ -e "$(cached "$s1")" ] || fail "the good download was not cached whole"

# F4: the cached whole copy changed on disk. In its first block: found
# before a byte went, so the download is served from the store instead
# (and the copy made again from it), and the log says so.
corrupt1=$(api "$U/metrics" | awk '$1 == "capvault_remote_corrupt_total" { print $2 }')
flip "$(cached "$s1")" 10000
api -o "$T/dl" "$U/v1/captures/1/file"
check "download of a copy bad in its first block" "$s1" "$(sha "$T/dl")"
check "the bad copy counted" $((corrupt1 + 1)) \
	"$(api "$U/metrics" | awk '$1 == "capvault_remote_corrupt_total" { print $2 }')"
wait_for "the mended copy logged" logged "served from the object store instead"
grep -F "served from the object store instead" "$T/d.log" | grep -qF "$s1" ||
	fail "the log line does not name the object: $(grep -F "instead" "$T/d.log")"
wait_for "the copy made again" test -e "$(cached "$s1")"
check "the copy made again" "$s1" "$(sha "$(cached "$s1")")"
# In its last block: the blocks before it went, so the download is cut
# short, the copy removed, and the next download whole.
flip "$(cached "$s1")" $(( $(stat -c %s "$T/c1.pcap") - 100 ))
rc=0
api -o "$T/dl" "$U/v1/captures/1/file" 2>"$T/curl.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a download of a corrupt cache copy succeeded"
[ "$(sha "$T/dl")" != "$s1" ] || fail "corrupt copy: the right bytes?"
wait_for "the cache's corruption logged" logged "cache file"
gone "$(cached "$s1")" || fail "the corrupt cache copy is still there"
api -o "$T/dl" "$U/v1/captures/1/file"
check "download after the bad copy went" "$s1" "$(sha "$T/dl")"
# A range download from the cached whole copy, changed on disk in the
# range's block while the daemon was stopped: a copy found at start is
# checked block by block as it is read, as the store's blocks are; the
# copy goes and the range comes from the store, never the changed bytes.
# (One this daemon cached was checked whole then, and is served as it is,
# as local objects are between scrubs.)
wait_for "the copy made again" test -e "$(cached "$s1")"
stop_daemon
flip "$(cached "$s1")" 200005
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
CSU="$U/api/v1/$CS"
api -o "$T/r" -r 199990-200020 "$U/v1/captures/1/file"
check "range from a copy changed on disk" "$(tail -c +199991 "$T/c1.pcap" | head -c 31 | sha256sum)" \
	"$(sha256sum <"$T/r")"
gone "$(cached "$s1")" || fail "the changed cache copy is still there after a range read"
grep -F "served from the object store instead" "$T/d.log" | grep -qF "bytes 196608-262143" ||
	fail "the range read's mended copy not logged: $(grep -F "cache file" "$T/d.log")"

# F6: the object gone from the store: 502 object_missing, not 503.
rm -f "$(remote "$s2")"
check "missing object: status" 502 "$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/captures/2/file")"
check "missing object: error" object_missing "$(jq -r .error "$T/e.json")"
grep -q "capture 2" "$T/e.json" || fail "no capture named: $(cat "$T/e.json")"
grep -q "fsck --remote" "$T/e.json" || fail "no fsck hint: $(cat "$T/e.json")"
check "missing object, query: status" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/packets?captures=2&filter=udp")"
check "missing object, query: error" object_missing "$(jq -r .error "$T/e.json")"
# The same from the paths that read the object in order (objread).
check "missing object, annotated download" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/captures/2/file?annotations=1")"
check "missing object, annotated download: error" object_missing "$(jq -r .error "$T/e.json")"
# A merge reading a replaced object: refused at its end, nothing stored.
flip "$(remote "$s3")" 3000
code=$(curl -sS -o "$T/m.json" -w '%{http_code}' -X POST "$CSU/merge?capture_ids=3,4")
check "a merge of a corrupt object: status (lost data, not 503)" 502 "$code"
echo "merge: $code $(cat "$T/m.json")"
grep -q "do not match the digest" "$T/m.json" || fail "merge: $(cat "$T/m.json")"
check "captures after the failed merge" 5 "$(api "$U/v1/captures" | jq '.captures | length')"
# F3, range reads: block 3 of capture 5's object replaced in the store.
metric() { api "$U/metrics" | awk -v m="capvault_$1" '$1 == m { print $2 }'; }
check "blocks fetched unchecked" 0 "$(metric remote_unchecked_blocks_total)"
corrupt0=$(metric remote_corrupt_total)
flip "$(remote "$s5")" 200000
check "count over a replaced block: status" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/packets?captures=5&filter=ip&count=1")"
check "count over a replaced block: error" object_corrupt "$(jq -r .error "$T/e.json")"
grep -q "capture 5.*bytes 196608-262143 do not match the digest" "$T/e.json" ||
	fail "count: $(cat "$T/e.json")"
# A query that ends before its status goes out (its packets fit the
# buffer) is answered as it ended: 502, not 200 and a stream cut short.
check "query over a replaced block: status" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/packets?captures=5&filter=ip")"
check "query over a replaced block: error" object_corrupt "$(jq -r .error "$T/e.json")"
grep -q "capture 5.*bytes 196608-262143 do not match the digest" "$T/e.json" ||
	fail "query: $(cat "$T/e.json")"
wait_for "the query's corruption logged" logged "query failed: capture 5"
"$CAPVAULT" query --capture 5 -w "$T/q5.pcap" ip >"$T/cli.out" 2>&1 &&
	fail "capvault query over a replaced block exited 0"
grep -q "capture 5.*do not match the digest" "$T/cli.out" || fail "capvault query: $(cat "$T/cli.out")"
grep -q "query: query:" "$T/cli.out" && fail "capvault query says query twice: $(cat "$T/cli.out")"
rc=0
api -o "$T/dl" -r 190000-210000 "$U/v1/captures/5/file" 2>"$T/curl.err" || rc=$?
[ "$rc" -ne 0 ] || fail "a range download of a replaced block succeeded"
cmp -s "$T/dl" <(dd if="$T/c5.pcap" bs=1 skip=190000 count=20001 status=none) &&
	fail "the range's bytes, corrupt, went out whole"
wait_for "the range's corruption logged" logged "download of capture 5 cut short"
check "corrupt blocks counted" $((corrupt0 + 4)) "$(metric remote_corrupt_total)"
# An annotated download reads the object in order (objread): it stops
# at the replaced block.
rc=0
api -o "$T/ann" "$U/v1/captures/5/file?annotations=1" 2>"$T/curl.err" || rc=$?
[ "$rc" -ne 0 ] || fail "an annotated download over a replaced block ended well"
n=$({ tcpdump -nr "$T/ann" 2>/dev/null || true; } | wc -l)
[ "$n" -lt 200 ] || fail "the annotated download went past the replaced block: $n packets"
check "the annotated download's block counted" $((corrupt0 + 5)) "$(metric remote_corrupt_total)"
# A range of good blocks is served, and not cached (a long range must not
# flush what queries use).
files0=$(metric cache_files)
api -o "$T/dl" -r 0-99999 "$U/v1/captures/5/file"
cmp "$T/dl" <(head -c 100000 "$T/c5.pcap") || fail "a range of good blocks"
sleep 0.3 # the cache's writer thread
check "cache files after a range download" "$files0" "$(metric cache_files)"
flip "$(remote "$s5")" 200000 # right again: nothing bad was cached
api -o "$T/dl" -r 150000-250000 "$U/v1/captures/5/file"
cmp "$T/dl" <(dd if="$T/c5.pcap" bs=1 skip=150000 count=100001 status=none) ||
	fail "the range once the object is right"
api -o "$T/q.pcap" "$U/v1/packets?captures=5"
check "query once the object is right" 400 "$(tcpdump -nr "$T/q.pcap" 2>/dev/null | wc -l)"

# F3: once an object is removed from the store, nothing cached of it is
# served again (a later object of the same bytes is fetched afresh).
expect_rc 0 "$CAPVAULT" query --capture 1 -w "$T/q1.pcap"
cached_of() { compgen -G "$S/cache/${1:0:2}/$1.*" >/dev/null; }
wait_for "capture 1's blocks cached" cached_of "$s1"
sleep 0.5 # the cache's writer thread finishes the query's blocks
expect_rc 0 "$CAPVAULT" rm 1
wait_for "capture 1's remote object removed" gone "$(remote "$s1")"
not_cached_of() { ! cached_of "$1"; }
wait_for "capture 1's cached blocks forgotten" not_cached_of "$s1"
# An object of another size in the store: lost data, 502 object_corrupt
# on a download and a range as on a query, not 503 ("retry later").
s4=$(sha "$T/c4.pcap")
chmod u+w "$(remote "$s4")"
echo extra >>"$(remote "$s4")"
check "object of another size: download" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/captures/4/file")"
check "object of another size: error" object_corrupt "$(jq -r .error "$T/e.json")"
grep -q "capture 4.*bytes, not" "$T/e.json" || fail "another size: $(cat "$T/e.json")"
check "object of another size: range" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' -r 0-99 "$U/v1/captures/4/file")"
check "object of another size: query" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/packets?captures=4&filter=udp")"
check "object of another size: query error" object_corrupt "$(jq -r .error "$T/e.json")"
check "object of another size: annotated download" 502 \
	"$(api -o "$T/e.json" -w '%{http_code}' "$U/v1/captures/4/file?keylog=1")"
check "object of another size: annotated download: error" object_corrupt "$(jq -r .error "$T/e.json")"
check "health" 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$U/v1/health")"
finish
