#!/bin/bash
# The CloudShark API v1 as published clients call it, against a real
# capvaultd on loopback: PUT upload with query options, multipart with
# file/filename/additional_tags/comments/keylog, info in CloudShark's
# types (times read by Python's strptime), annotations (query and form
# POST, quiet, removal, the native routes) and a download carrying them
# as pcapng packet comments (read back by tshark), the key log as a
# Decryption Secrets Block, merge (the packets mergecap gives, in its
# order; duplicates=remove as editcap -d), search and search.json, an
# upper-case token, download, delete by path and by JSON body, 401 for an
# unknown token on any path, 405 and other errors in CloudShark's shape,
# a multipart body with an epilogue, gzip upload names, and url= uploads
# (off by default; an allowed prefix on a loopback server that names its
# address; a name resolving to loopback refused; a prefix not listed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

for tool in tshark mergecap editcap tcpdump python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done

STORE="$T/store"
URL_ALLOW=
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
api:
  listen: ["127.0.0.1:$1"]
  max_upload_size: 8MiB
YAML
	if [ -n "$URL_ALLOW" ]; then
		printf 'cloudshark:\n  url_upload_allow: [%s]\n' "$URL_ALLOW" >> "$T/d.yaml"
	fi
}

# A loopback web server for url= uploads, on a free port.
SPID=
on_exit() { [ -z "$SPID" ] || kill "$SPID" 2>/dev/null || true; }
start_web() {
	mkdir -p "$T/www/ok" "$T/www/other"
	for _ in 1 2 3 4 5 6 7 8; do
		SPORT=$((20000 + RANDOM % 20000))
		python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$SPORT" \
			>/dev/null 2>&1 &
		SPID=$!
		for _ in $(seq 100); do
			curl -s -o /dev/null "http://127.0.0.1:$SPORT/" && return 0
			kill -0 "$SPID" 2>/dev/null || break
			sleep 0.05
		done
		kill "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
		SPID=
	done
	fail "no web server"
	finish
	exit 1
}

# req NAME EXPECTED_STATUS CURL_ARGS...: body in $T/NAME, status checked.
req() {
	local name=$1 want=$2 code
	shift 2
	code=$(curl -s -o "$T/$name" -w '%{http_code}' "$@" || true)
	check "$name: HTTP status" "$want" "$code"
}

# Packets as tcpdump prints them (times, bytes): what two files must share.
packets() { tcpdump -nn -tt -xx -r "$1" 2>/dev/null; }

CS=$("$CAPVAULT" token add cs --store "$STORE" --scopes read,upload,delete --cloudshark 2>/dev/null)
RW=$("$CAPVAULT" token add rw --store "$STORE" --scopes read,upload 2>/dev/null)
start_daemon
CSU="$U/api/v1/$CS"

"$MKCAP" --packets 50 --seed 21 --start 1700000000 --interval-us 1000 -o "$T/a.pcap"
"$MKCAP" --packets 40 --seed 22 --start 1700000000 --interval-us 1500 -o "$T/b.pcap"
"$MKCAP" --packets 30 --seed 23 --gzip -o "$T/g.pcap.gz"

# --- uploads, as the clients send them ---
req put 200 -T "$T/a.pcap" "$CSU/upload?filename=a.pcap&additional_tags=t1,t2&comments=hello"
A=$(jq -r .id "$T/put")
check "PUT upload filename" a.pcap "$(jq -r .filename "$T/put")"
printf 'CLIENT_RANDOM 00112233 44556677\n' > "$T/keys.log"
req post 200 -F "file=@$T/b.pcap" -F "filename=b.pcap" -F "additional_tags=t1" \
	-F "comments=" -F "keylog=@$T/keys.log" "$CSU/upload"
B=$(jq -r .id "$T/post")
check "multipart upload filename" b.pcap "$(jq -r .filename "$T/post")"
req gz 200 -T "$T/g.pcap.gz" "$CSU/upload?filename=g.pcap.gz"
check "gzip upload keeps a name without .gz" g.pcap "$(jq -r .filename "$T/gz")"

# --- info: CloudShark's types ---
req info 200 "$CSU/info/$A"
for f in duration avg_packet_size avg_packet_rate data_byte_rate data_bit_rate; do
	jq -e ".$f | type == \"string\" and test(\"^[0-9]+\\\\.[0-9]{2}\$\")" "$T/info" >/dev/null ||
		fail "info $f is not a two-decimal string: $(jq -c ".$f" "$T/info")"
done
check "info truncated" '"No"' "$(jq -c .truncated "$T/info")"
check "info comments" '"hello"' "$(jq -c .comments "$T/info")"
check "info num_packets is a number" number "$(jq -r '.num_packets | type' "$T/info")"
check "info id is a string" string "$(jq -r '.id | type' "$T/info")"
req info_g 200 "$CSU/info/$(jq -r .id "$T/gz")"
check "info comments none" '""' "$(jq -c .comments "$T/info_g")"
python3 - "$T/info" <<'PY' || fail "info times do not parse with strptime"
import json, sys, datetime
o = json.load(open(sys.argv[1]))
for k in ("created_at", "start_time", "end_time"):
    datetime.datetime.strptime(o[k], "%Y-%m-%dT%H:%M:%S%z")
PY

# --- request handling ---
req search 200 "$CSU/search?search%5Btags%5D%5B%5D=t1"
req search_json 200 "$CSU/search.json?search%5Btags%5D%5B%5D=t1"
check "search.json = search" "$(jq -c . "$T/search")" "$(jq -c . "$T/search_json")"
check "search count" 2 "$(jq .total_count "$T/search")"
UPPER=$(echo "$CS" | tr a-f A-F)
req upper 200 "$U/api/v1/$UPPER/info/$A"
req badtoken_unknown_call 401 "$U/api/v1/0123456789abcdef0123456789abcdef/annotations/$A"
req badtoken_no_call 401 "$U/api/v1/0123456789abcdef0123456789abcdef/nothing"
jq -e '.status == 401 and (.exceptions | length) == 1' "$T/badtoken_no_call" >/dev/null ||
	fail "401 not in CloudShark's shape: $(cat "$T/badtoken_no_call")"
req m405 405 "$CSU/upload"
jq -e '.status == 405 and (.exceptions | length) == 1' "$T/m405" >/dev/null ||
	fail "405 not in CloudShark's shape: $(cat "$T/m405")"
req cs404 404 "$CSU/nothing"
jq -e '.status == 404 and (.exceptions | length) == 1' "$T/cs404" >/dev/null ||
	fail "404 not in CloudShark's shape: $(cat "$T/cs404")"
# A multipart body with an epilogue after the closing boundary (RFC 2046).
{
	printf -- '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="e.pcap"\r\n'
	printf 'Content-Type: application/octet-stream\r\n\r\n'
	cat "$T/a.pcap"
	printf '\r\n--XyZ\r\nContent-Disposition: form-data; name="additional_tags"\r\n\r\nepi\r\n'
	printf -- '--XyZ--\r\n\r\nan epilogue\r\n'
} > "$T/epi.body"
req epilogue 200 -H "Content-Type: multipart/form-data; boundary=XyZ" \
	--data-binary "@$T/epi.body" "$CSU/upload"

# --- annotations ---
req ann1 200 -X POST "$CSU/annotations/$A?frame=2&text=look+here"
check "annotation answer" '[{"line":2,"capture_id":"'"$A"'","text":"look here","user":""}]' \
	"$(jq -c . "$T/ann1")"
req ann2 200 -X POST --data "frame=5" --data "text=second one" "$CSU/annotations/$A"
check "form annotation" 2 "$(jq length "$T/ann2")"
req ann_quiet 204 -X POST "$CSU/annotations/$A?frame=7&text=quiet&quiet=true"
check "quiet: no body" 0 "$(stat -c %s "$T/ann_quiet")"
req ann_del 200 -X POST "$CSU/annotations/$A?frame=7"
check "annotation removed" "2 5" "$(jq -r '[.[].line] | join(" ")' "$T/ann_del")"
req ann_get 200 "$CSU/annotations/$A"
check "GET annotations" "$(jq -c . "$T/ann_del")" "$(jq -c . "$T/ann_get")"
req ann_bad 400 -X POST "$CSU/annotations/$A?frame=0&text=x"
req ann_past 400 -X POST "$CSU/annotations/$A?frame=51&text=x"
req ann_404 404 -X POST "$CSU/annotations/31337?frame=1&text=x"
req native_post 200 -H "Authorization: Bearer $RW" -H "Content-Type: application/json" \
	-d '{"frame": 9, "text": "from the viewer"}' "$U/v1/captures/$A/annotations"
req native_get 200 -H "Authorization: Bearer $RW" "$U/v1/captures/$A/annotations"
check "native annotations" "2 5 9" "$(jq -r '[.annotations[].frame] | join(" ")' "$T/native_get")"
python3 - "$T/native_get" <<'PY' || fail "native created_at does not parse"
import json, sys, datetime
for a in json.load(open(sys.argv[1]))["annotations"]:
    datetime.datetime.strptime(a["created_at"], "%Y-%m-%dT%H:%M:%S%z")
PY

# --- downloads ---
req dl 200 "$CSU/download/$A"
cmp -s "$T/dl" "$T/a.pcap" || fail "plain download differs"
req dl_ann 200 -o "$T/dl_ann.pcapng" "$CSU/download/$A?annotations=1"
curl -s -o "$T/dl_ann.pcapng" "$CSU/download/$A?annotations=1"
check "annotated download: comments" "2:look here 5:second one 9:from the viewer" \
	"$(tshark -r "$T/dl_ann.pcapng" -Y frame.comment -T fields -e frame.number -e frame.comment \
		2>/dev/null | tr '\t' ':' | paste -sd' ')"
check "annotated download: same packets" "$(packets "$T/a.pcap")" "$(packets "$T/dl_ann.pcapng")"
req native_ann 200 -H "Authorization: Bearer $RW" "$U/v1/captures/$A/file?annotations=1"
cmp -s "$T/native_ann" "$T/dl_ann.pcapng" || fail "native annotated download differs"
req dl_keys 200 "$CSU/download/$B?keylog=1"
grep -q "CLIENT_RANDOM 00112233 44556677" "$T/dl_keys" || fail "no key log in the download"
check "keylog download: same packets" "$(packets "$T/b.pcap")" "$(packets "$T/dl_keys")"
python3 - "$T/dl_keys" <<'PY' || fail "no Decryption Secrets Block of type TLS"
import struct, sys
d = open(sys.argv[1], "rb").read()
off = 0
while off + 12 <= len(d):
    t, n = struct.unpack_from("<II", d, off)
    if t == 0x0A and struct.unpack_from("<I", d, off + 8)[0] == 0x544c534b:
        sys.exit(0)
    off += n
sys.exit(1)
PY

# --- merge ---
req merge 200 -X POST "$CSU/merge?capture_ids=$A,$B&filename=ab.pcapng&additional_tags=merged"
M=$(jq -r .id "$T/merge")
check "merge filename" ab.pcapng "$(jq -r .filename "$T/merge")"
req merged 200 "$CSU/download/$M"
mergecap -w "$T/ref.pcapng" "$T/a.pcap" "$T/b.pcap"
check "merge = mergecap" "$(packets "$T/ref.pcapng")" "$(packets "$T/merged")"
req merged_info 200 "$CSU/info/$M"
check "merged tags" merged "$(jq -r .tag_list "$T/merged_info")"
check "merged packets" 90 "$(jq -r .num_packets "$T/merged_info")"
req merge_dup 200 -X POST "$CSU/merge?capture_ids=$A,$B,$A&duplicates=remove"
req merged_dup 200 "$CSU/download/$(jq -r .id "$T/merge_dup")"
mergecap -w "$T/ref3.pcapng" "$T/a.pcap" "$T/b.pcap" "$T/a.pcap"
editcap -d "$T/ref3.pcapng" "$T/ref3d.pcapng" >/dev/null 2>&1
check "duplicates=remove = editcap -d" "$(packets "$T/ref3d.pcapng")" "$(packets "$T/merged_dup")"
check "default merge name" "merged $A-$B-$A" "$(jq -r .filename "$T/merge_dup")"
req merge_404 404 -X POST "$CSU/merge?capture_ids=$A,31337"
req merge_none 400 -X POST "$CSU/merge"

# --- delete: by path id, by JSON body; annotations go with the capture ---
req del_path 200 -X POST "$CSU/delete/$A"
req del_gone 404 "$CSU/annotations/$A"
req del_body 200 -H "Content-Type: application/json" -d "{\"id\": \"$B\"}" "$CSU/delete"
req del_body_gone 404 "$CSU/info/$B"

# --- upload by url= : off by default, then only under an allowed prefix,
# and never to a loopback/private address the prefix does not name ---
start_web
cp "$T/a.pcap" "$T/www/ok/a.pcap"
cp "$T/a.pcap" "$T/www/other/a.pcap"
head -c 9000000 /dev/zero > "$T/www/ok/big.pcap"
req url_off 403 -X POST "$CSU/upload?url=http://127.0.0.1:$SPORT/ok/a.pcap"
jq -e '.exceptions' "$T/url_off" >/dev/null || fail "url= off: $(cat "$T/url_off")"
stop_daemon
URL_ALLOW="\"http://127.0.0.1:$SPORT/ok/\", \"http://localhost:$SPORT/ok/\""
start_daemon
CSU="$U/api/v1/$CS"
req url_ok 200 -X POST "$CSU/upload?url=http://127.0.0.1:$SPORT/ok/a.pcap&additional_tags=fromurl"
check "url= name" a.pcap "$(jq -r .filename "$T/url_ok")"
req url_dl 200 "$CSU/download/$(jq -r .id "$T/url_ok")"
cmp -s "$T/url_dl" "$T/a.pcap" || fail "url= upload differs"
req url_private 403 -X POST "$CSU/upload?url=http://localhost:$SPORT/ok/a.pcap"
grep -q "loopback, link-local or private" "$T/url_private" ||
	fail "url= by name to loopback: $(cat "$T/url_private")"
req url_unlisted 403 -X POST "$CSU/upload?url=http://127.0.0.1:$SPORT/other/a.pcap"
req url_userinfo 403 -X POST "$CSU/upload?url=http://127.0.0.1:$SPORT@evil.example/ok/a.pcap"
req url_missing 502 -X POST "$CSU/upload?url=http://127.0.0.1:$SPORT/ok/none.pcap"
req url_big 413 -X POST "$CSU/upload?url=http://127.0.0.1:$SPORT/ok/big.pcap"
check "no spool left" "" "$(ls "$STORE/tmp")"

stop_daemon
finish
