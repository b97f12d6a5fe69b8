#!/bin/bash
# The HTTP API end to end, with real curl against the real capvaultd on
# loopback (a random free port, IPv4 and IPv6) and on its unix socket:
# health, auth (401 without or with a bad or revoked token, 403 for a
# missing scope, the unix socket trusted), uploads (raw, gzip, chunked,
# multipart, duplicate, oversized 413, malformed), byte-identical
# downloads and Range, 404/405, packet queries equal to `capvault query`,
# bad BPF 400 with libpcap's message, stats and metrics, retention
# (GET /v1/retention; POST /v1/prune: scope delete, dry run = real run), and the
# CloudShark API as its clients use it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
SOCK="$STORE/capvault.sock"

# Writes the config for PORT; IPv6 loopback too when the host has it.
write_config() {
	local listen="\"127.0.0.1:$1\""
	[ -n "$HAVE_V6" ] && listen="$listen, \"[::1]:$1\""
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
retention:
  policies:
    - name: scratch
      tags: [scratch]
      max_age: 0
      allow_empty: true
import:
  - path: $T/in
api:
  listen: [$listen]
  max_upload_size: 1MiB
  timeout: 10s
YAML
	if [ -n "${TLS:-}" ]; then
		printf '  tls:\n    cert: %s\n    key: %s\n' "$T/cert.pem" "$T/key.pem" >> "$T/d.yaml"
	fi
}

# stop_daemon (daemon_lib.sh) then checks this too.
after_stop() {
	check "unix socket removed" no "$([ -e "$SOCK" ] && echo yes || echo no)"
}

# req NAME EXPECTED_STATUS CURL_ARGS...: body in $T/NAME, status checked.
req() {
	local name=$1 want=$2 code
	shift 2
	code=$(curl -s -o "$T/$name" -w '%{http_code}' "$@" || true)
	check "$name: HTTP status" "$want" "$code"
}

auth() { echo "Authorization: Bearer $1"; }

mkdir -p "$T/in"
# curl exits 7 (refused) when ::1 exists but nothing listens on port 1.
rc=0
curl -s -g --max-time 1 "http://[::1]:1/" >/dev/null 2>&1 || rc=$?
HAVE_V6=$([ "$rc" = 7 ] && echo 1 || true)
"$MKCAP" --packets 1000 --seed 1 -o "$T/a.pcap"
"$MKCAP" --packets 500 --seed 2 --gzip -o "$T/b.pcap.gz"
"$MKCAP" --packets 300 --seed 3 --format pcapng -o "$T/c.pcapng"
"$MKCAP" --packets 300 --seed 4 -o "$T/d.pcap"
"$MKCAP" --packets 4000 --size 2000000 --seed 5 -o "$T/big.pcap"
"$MKCAP" --packets 200 --seed 6 -o "$T/e.pcap"

# Tokens are made with the CLI while the daemon is stopped.
RW=$("$CAPVAULT" token add rw --store "$STORE" --scopes read,upload 2>/dev/null)
RO=$("$CAPVAULT" token add ro --store "$STORE" --scopes read 2>/dev/null)
TAGGED=$("$CAPVAULT" token add tagger --store "$STORE" --scopes upload,read --tags from-token 2>/dev/null)
CS=$("$CAPVAULT" token add cs --store "$STORE" --scopes read,upload,delete --cloudshark 2>/dev/null)
check "token length" 64 "${#RW}"
check "cloudshark token length" 32 "${#CS}"
expect_rc 1 "$CAPVAULT" token add rw --store "$STORE" --scopes read
expect_rc 2 "$CAPVAULT" token add x --store "$STORE" --scopes fly
expect_rc 0 "$CAPVAULT" token ls --store "$STORE" --json
check "token ls" "cs ro rw tagger" "$(jq -r '.[].name' "$T/out" | sort | tr '\n' ' ' | sed 's/ $//')"
grep -q "$RW" "$STORE"/index/* 2>/dev/null && fail "the token secret is stored in clear"
PR=$("$CAPVAULT" token add pruner --store "$STORE" --scopes delete 2>/dev/null)

start_daemon

# --- server and auth ---
req health 200 "$U/v1/health"
check "health body" ok "$(jq -r .status "$T/health")"
if [ -n "$HAVE_V6" ]; then
	req health6 200 -g "http://[::1]:$PORT/v1/health"
fi
req health_unix 200 --unix-socket "$SOCK" http://localhost/v1/health
check "unix socket mode" 660 "$(stat -c %a "$SOCK")"
req noauth 401 "$U/v1/captures"
check "401 error code" missing_token "$(jq -r .error "$T/noauth")"
check "401 status field" 401 "$(jq -r .status "$T/noauth")"
req badauth 401 -H "$(auth nottoken)" "$U/v1/captures"
check "bad token code" bad_token "$(jq -r .error "$T/badauth")"
req scope 403 -H "$(auth "$RO")" --data-binary @"$T/a.pcap" "$U/v1/captures"
check "403 code" forbidden "$(jq -r .error "$T/scope")"
req unknown_route 404 -H "$(auth "$RO")" "$U/v1/nothing"
req method 405 -X PUT -H "$(auth "$RW")" "$U/v1/captures"
# Routing ignores the Host header.
req hosthdr 200 -H "Host: evil.example" -H "$(auth "$RO")" "$U/v1/captures"

# --- uploads ---
req up1 201 -H "$(auth "$RW")" --data-binary @"$T/a.pcap" "$U/v1/captures?name=a.pcap&tags=lab,web&comments=first"
ID_A=$(jq -r .id "$T/up1")
check "upload name" a.pcap "$(jq -r .name "$T/up1")"
check "upload tags" '["lab","web"]' "$(jq -c '.tags | sort' "$T/up1")"
check "upload comment" first "$(jq -r .comment "$T/up1")"
check "upload packets" 1000 "$(jq -r .packets "$T/up1")"
req dup 200 -H "$(auth "$RW")" --data-binary @"$T/a.pcap" "$U/v1/captures?name=again.pcap"
check "duplicate flag" true "$(jq -r .duplicate "$T/dup")"
check "duplicate id" "$ID_A" "$(jq -r .id "$T/dup")"
req up_gz 201 -H "$(auth "$RW")" --data-binary @"$T/b.pcap.gz" "$U/v1/captures?name=b.pcap.gz"
ID_B=$(jq -r .id "$T/up_gz")
check "gzip upload decompressed" gzip "$(jq -r .compression "$T/up_gz")"
req up_chunked 201 -H "$(auth "$RW")" -H "Transfer-Encoding: chunked" --data-binary @"$T/c.pcapng" "$U/v1/captures?name=c.pcapng"
ID_C=$(jq -r .id "$T/up_chunked")
req up_form 201 -H "$(auth "$RW")" -F "file=@$T/d.pcap" -F "tags=formtag" "$U/v1/captures"
check "multipart name from the part" d.pcap "$(jq -r .name "$T/up_form")"
check "multipart tags" '["formtag"]' "$(jq -c .tags "$T/up_form")"
req up_token_tags 201 -H "$(auth "$TAGGED")" --data-binary @"$T/e.pcap" "$U/v1/captures?name=e.pcap"
check "token default tags" '["from-token"]' "$(jq -c .tags "$T/up_token_tags")"
req big 413 -H "$(auth "$RW")" --data-binary @"$T/big.pcap" "$U/v1/captures"
check "413 code" too_large "$(jq -r .error "$T/big")"
req big_chunked 413 -H "$(auth "$RW")" -H "Transfer-Encoding: chunked" --data-binary @"$T/big.pcap" "$U/v1/captures"
req big_form 413 -H "$(auth "$RW")" -F "file=@$T/big.pcap" "$U/v1/captures"
echo "not a capture" > "$T/junk"
req junk 422 -H "$(auth "$RW")" --data-binary @"$T/junk" "$U/v1/captures"
grep -q "offset" "$T/junk" || fail "422 names the offset: $(cat "$T/junk")"
req empty 400 -H "$(auth "$RW")" -X POST "$U/v1/captures"
req badtag 400 -H "$(auth "$RW")" --data-binary @"$T/a.pcap" "$U/v1/captures?tags=bad%20tag"
# An answer decided before a small body is read goes out once the body is
# in, and the connection stays open: closing on unread bytes resets it,
# and the reset can reach the client before the answer does.
check "early answer to a small upload, then the connection reused" "400 1 200 0" \
	"$(curl -s -o /dev/null -w '%{http_code} %{num_connects} ' -H "$(auth "$RW")" \
		--data-binary @"$T/a.pcap" "$U/v1/captures?tags=bad%20tag" \
		--next -s -o /dev/null -w '%{http_code} %{num_connects}' "$U/v1/health")"
printf -- '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="x.pcap"\r\n\r\nabc' > "$T/badform"
req badform 400 -H "$(auth "$RW")" -H "Content-Type: multipart/form-data; boundary=XYZ" --data-binary @"$T/badform" "$U/v1/captures"
req noform 400 -H "$(auth "$RW")" -F "tags=x" "$U/v1/captures"
check "form without file" missing_file "$(jq -r .error "$T/noform")"

# --- reading ---
req get 200 -H "$(auth "$RO")" "$U/v1/captures/$ID_A"
check "get record" "$(jq -r .sha256 "$T/up1")" "$(jq -r .sha256 "$T/get")"
req get404 404 -H "$(auth "$RO")" "$U/v1/captures/999999"
check "404 code" not_found "$(jq -r .error "$T/get404")"
req file 200 -H "$(auth "$RO")" -D "$T/file.h" "$U/v1/captures/$ID_A/file"
cmp -s "$T/file" "$T/a.pcap" || fail "download differs from the upload"
grep -qi '^Content-Disposition: attachment; filename="a.pcap"' "$T/file.h" ||
	fail "Content-Disposition: $(grep -i disposition "$T/file.h")"
req file_gz 200 -H "$(auth "$RO")" "$U/v1/captures/$ID_B/file"
gunzip -c "$T/b.pcap.gz" | cmp -s - "$T/file_gz" || fail "gzip upload: download is not the decompressed capture"
req range 206 -H "$(auth "$RO")" -H "Range: bytes=100-1099" -D "$T/range.h" "$U/v1/captures/$ID_A/file"
cmp -s "$T/range" <(tail -c +101 "$T/a.pcap" | head -c 1000) || fail "Range bytes differ"
grep -qi "^Content-Range: bytes 100-1099/$(stat -c %s "$T/a.pcap")" "$T/range.h" ||
	fail "Content-Range: $(grep -i content-range "$T/range.h")"
req suffix 206 -H "$(auth "$RO")" -H "Range: bytes=-64" "$U/v1/captures/$ID_A/file"
cmp -s "$T/suffix" <(tail -c 64 "$T/a.pcap") || fail "suffix Range bytes differ"
req range416 416 -H "$(auth "$RO")" -H "Range: bytes=99999999-" "$U/v1/captures/$ID_A/file"
req file404 404 -H "$(auth "$RO")" "$U/v1/captures/424242/file"
req list 200 -H "$(auth "$RO")" "$U/v1/captures?limit=2"
check "list page size" 2 "$(jq '.captures | length' "$T/list")"
CURSOR=$(jq -r .next_cursor "$T/list")
req list2 200 -H "$(auth "$RO")" "$U/v1/captures?limit=100&cursor=$CURSOR"
check "list with cursor" 3 "$(jq '.captures | length' "$T/list2")"
check "cursor page ends" null "$(jq -r .next_cursor "$T/list2")"
req list_tag 200 -H "$(auth "$RO")" "$U/v1/captures?tag=lab"
check "list by tag" "$ID_A" "$(jq -r '.captures[].id' "$T/list_tag")"
req list_bad 400 -H "$(auth "$RO")" "$U/v1/captures?limit=x"
# Keep-alive: two GETs on one connection (libmicrohttpd closed it after
# every reply queued at once).
curl -sv -o /dev/null -o /dev/null -H "$(auth "$RO")" "$U/v1/captures?limit=1" \
	"$U/v1/captures/$ID_A" 2> "$T/keepalive" || true
checks=$((checks + 1))
grep -q "Re-using existing connection" "$T/keepalive" ||
	fail "two GETs did not share a connection: $(grep -iE '^< Connection|Closing' "$T/keepalive")"

# --- packets ---
req q_bad 400 -H "$(auth "$RO")" --get --data-urlencode "filter=tcp port" "$U/v1/packets"
check "bad filter code" bad_filter "$(jq -r .error "$T/q_bad")"
grep -q "syntax error" "$T/q_bad" || fail "bad BPF has libpcap's message: $(cat "$T/q_bad")"
req q_count 200 -H "$(auth "$RO")" --get --data-urlencode "filter=tcp" -d count=1 -d "captures=$ID_A,$ID_B" "$U/v1/packets"
# A flag's value that is neither true nor false is refused, not read as
# false (count=abc used to stream the packets).
req q_count_bad 400 -H "$(auth "$RO")" --get -d count=abc -d "captures=$ID_A" "$U/v1/packets"
grep -q "bad value for count" "$T/q_count_bad" || fail "count=abc: $(head -c 300 "$T/q_count_bad")"
req q_explain_bad 400 -H "$(auth "$RO")" --get -d explain=yes -d "captures=$ID_A" "$U/v1/packets"
req q_count_false 200 -H "$(auth "$RO")" --get -d count=false -d "captures=$ID_A" "$U/v1/packets"
check "count=false streams packets" "d4c3b2a1" "$(head -c 4 "$T/q_count_false" | od -An -tx1 | tr -d ' \n')"
req q_explain 200 -H "$(auth "$RO")" --get --data-urlencode "filter=tcp" -d explain=1 "$U/v1/packets"
jq -e '.plan | length > 0' "$T/q_explain" >/dev/null || fail "explain has a plan: $(cat "$T/q_explain")"
req q_tcp 200 -H "$(auth "$RO")" --get --data-urlencode "filter=tcp" -d "captures=$ID_A,$ID_B" "$U/v1/packets"
# pcap and pcapng captures together: a pcapng stream.
req q_all 200 --unix-socket "$SOCK" "http://localhost/v1/packets?captures=$ID_A,$ID_B,$ID_C"
req q_limit 200 -H "$(auth "$RO")" --get -d limit=10 -d "captures=$ID_A" "$U/v1/packets"
req q_unknown 404 -H "$(auth "$RO")" --get -d "captures=777777" "$U/v1/packets"
req q_time 400 -H "$(auth "$RO")" --get -d "after=yesterday" "$U/v1/packets"

# --- stats and metrics ---
req stats 200 -H "$(auth "$RO")" "$U/v1/stats"
check "stats captures" 5 "$(jq -r .captures "$T/stats")"
check "stats import counters" 1 "$(jq -r .imports.folders "$T/stats")"
req metrics 200 -H "$(auth "$RO")" "$U/metrics"
grep -q '^capvault_captures 5$' "$T/metrics" || fail "metrics: $(head -20 "$T/metrics")"
grep -q '^capvault_query_duration_seconds_count [1-9]' "$T/metrics" || fail "query histogram"
grep -q '^capvault_import_queue_length 0$' "$T/metrics" || fail "queue length metric"
grep -q '^capvault_index_block_cache_capacity_bytes 67108864$' "$T/metrics" || fail "block cache metric"
grep -q '^capvault_index_memtable_bytes [0-9]' "$T/metrics" || fail "memtable metric"
req metrics401 401 "$U/metrics"

# --- unix socket: admin without a token ---
"$MKCAP" --packets 100 --seed 7 -o "$T/f.pcap"
req unix_up 201 --unix-socket "$SOCK" --data-binary @"$T/f.pcap" "http://localhost/v1/captures?name=f.pcap"
req unix_list 200 --unix-socket "$SOCK" "http://localhost/v1/captures"

# --- retention: the rules in force; prune (scope delete) lists in a dry
# run exactly what the real run then deletes ---
req ret 200 -H "$(auth "$RO")" "$U/v1/retention"
check "retention policy" "scratch [\"scratch\"] 0" \
	"$(jq -r '.policies[0] | "\(.name) \(.tags | tojson) \(.max_age_seconds)"' "$T/ret")"
check "retention interval" 3600 "$(jq -r .interval_seconds "$T/ret")"
check "next run" true "$(jq -r '.next_run | test("^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' "$T/ret")"
"$MKCAP" --packets 50 --seed 21 -o "$T/s1.pcap"
"$MKCAP" --packets 50 --seed 22 -o "$T/s2.pcap"
req s1 201 -H "$(auth "$RW")" --data-binary @"$T/s1.pcap" "$U/v1/captures?name=s1.pcap&tags=scratch"
req s2 201 -H "$(auth "$RW")" --data-binary @"$T/s2.pcap" "$U/v1/captures?name=s2.pcap&tags=scratch"
S_IDS=$(jq -s -r '[.[].id] | sort | join(",")' "$T/s1" "$T/s2")
req prune_ro 403 -X POST -H "$(auth "$RO")" "$U/v1/prune?dry_run=1"
req prune_rw 403 -X POST -H "$(auth "$RW")" "$U/v1/prune?dry_run=1"
req prune_badq 400 -X POST -H "$(auth "$PR")" "$U/v1/prune?dry_run=maybe"
req prune_badb 422 -X POST -H "$(auth "$PR")" -d '{"dry_run": "yes"}' "$U/v1/prune"
req prune_dry 200 -X POST -H "$(auth "$PR")" "$U/v1/prune?dry_run=1"
check "dry run lists the scratch captures" "$S_IDS" "$(jq -r '[.captures[].id] | sort | join(",")' "$T/prune_dry")"
check "dry run" "true scratch" "$(jq -r '"\(.dry_run) \(.captures[0].policy)"' "$T/prune_dry")"
req prune_dry_body 200 -X POST -H "$(auth "$PR")" -d '{"dry_run": true}' "$U/v1/prune"
# (The reasons name the age, which grows between calls.)
check "dry run by body = by query" "$(jq -S -c 'del(.captures[].reason)' "$T/prune_dry")" \
	"$(jq -S -c 'del(.captures[].reason)' "$T/prune_dry_body")"
req prune_kept 200 -H "$(auth "$RO")" "$U/v1/captures/$(jq -r .id "$T/s1")"
req prune_real 200 -X POST -H "$(auth "$PR")" "$U/v1/prune"
check "real run = dry run" "$(jq -S -c '[.captures[] | del(.reason)]' "$T/prune_dry")" \
	"$(jq -S -c '[.captures[] | del(.deleted, .reason)]' "$T/prune_real")"
check "all deleted" "false true" "$(jq -r '"\(.dry_run) \([.captures[].deleted] | all)"' "$T/prune_real")"
req prune_gone 404 -H "$(auth "$RO")" "$U/v1/captures/$(jq -r .id "$T/s1")"
grep -q "pruned capture $(jq -r .id "$T/s1") s1.pcap sha256 .* policy scratch" "$T/d.log" ||
	fail "prune through the API logged: $(grep pruned "$T/d.log")"
req prune_none 200 -X POST --unix-socket "$SOCK" "http://localhost/v1/prune"
check "nothing left to prune" 0 "$(jq '.captures | length' "$T/prune_none")"

# --- every route in api/openapi.yaml answers (ids that do not exist, so
# nothing changes: a "no capture" 404 is an answer, "no such resource" is not) ---
OPENAPI="$(dirname "$0")/../../api/openapi.yaml"
if python3 -c 'import yaml' 2>/dev/null; then
	python3 -c '
import sys, yaml
for path, item in yaml.safe_load(open(sys.argv[1]))["paths"].items():
    for method in item:
        if method in ("get", "post", "put", "patch", "delete"):
            print(method.upper(), path.replace("{id}", "99999999").replace("{name}", "no-such-token"))
' "$OPENAPI" > "$T/routes"
	check "openapi routes found" yes "$([ "$(wc -l < "$T/routes")" -ge 10 ] && echo yes)"
	while read -r method path; do
		code=$(curl -s -o "$T/route" -w '%{http_code}' -X "$method" --unix-socket "$SOCK" \
			"http://localhost$path" || true)
		checks=$((checks + 1))
		if [ "$code" = 405 ] || grep -q "no such resource" "$T/route"; then
			fail "openapi route $method $path does not answer: $code $(cat "$T/route")"
		fi
	done < "$T/routes"
else
	echo "python3 yaml missing: openapi routes not checked"
fi

# --- CloudShark API, as its clients call it ---
CSU="$U/api/v1/$CS"
"$MKCAP" --packets 100 --seed 11 -o "$T/cs1.pcap"
"$MKCAP" --packets 100 --seed 12 -o "$T/cs2.pcap"
"$MKCAP" --packets 100 --seed 13 -o "$T/cs3.pcap"
req cs_up 200 -F "file=@$T/cs1.pcap" -F "additional_tags=cs,one" "$CSU/upload"
CS_ID=$(jq -r .id "$T/cs_up")
check "cloudshark upload filename" cs1.pcap "$(jq -r .filename "$T/cs_up")"
req cs_up2 200 -F "file=@$T/cs2.pcap" -F "filename=second.pcap" -F "additional_tags=cs" "$CSU/upload"
req cs_put 200 -T "$T/cs3.pcap" "$CSU/upload?filename=third.pcap&additional_tags=cs"
check "PUT upload name" third.pcap "$(jq -r .filename "$T/cs_put")"
req cs_info 200 "$CSU/info/$CS_ID"
for f in id filename size data_size num_packets duration start_time end_time avg_packet_size \
	avg_packet_rate data_byte_rate data_bit_rate encapsulation file_type truncated comments \
	tag_list created_at file_source; do
	jq -e "has(\"$f\")" "$T/cs_info" >/dev/null || fail "cloudshark info lacks $f"
done
check "cloudshark tag_list" "cs,one" "$(jq -r .tag_list "$T/cs_info")"
check "cloudshark num_packets" 100 "$(jq -r .num_packets "$T/cs_info")"
req cs_search 200 "$CSU/search?search%5Btags%5D%5B%5D=cs&limit=2&page=1"
check "search page 1" 2 "$(jq '.captures | length' "$T/cs_search")"
check "search total_pages" 2 "$(jq .total_pages "$T/cs_search")"
req cs_search2 200 "$CSU/search?search%5Btags%5D%5B%5D=cs&limit=2&page=2"
check "search page 2" "$CS_ID" "$(jq -r '.captures[0].id' "$T/cs_search2")"
TODAY=$(date -u +%-m/%-d/%Y)
req cs_date 200 "$CSU/search?search%5Bdate%5D=$TODAY-$TODAY&search%5Bfilename%5D=second"
check "search by date and filename" second.pcap "$(jq -r '.captures[0].filename' "$T/cs_date")"
req cs_baddate 400 "$CSU/search?search%5Bdate%5D=13/45/2024"
check "cloudshark error form" 400 "$(jq -r '.status' "$T/cs_baddate")"
jq -e '.exceptions | length == 1' "$T/cs_baddate" >/dev/null || fail "exceptions: $(cat "$T/cs_baddate")"
req cs_dl 200 "$CSU/download/$CS_ID"
cmp -s "$T/cs_dl" "$T/cs1.pcap" || fail "cloudshark download differs"
req cs_404 404 "$CSU/info/31337"
req cs_badtoken 401 "$U/api/v1/0123456789abcdef0123456789abcdef/info/$CS_ID"
jq -e '.exceptions' "$T/cs_badtoken" >/dev/null || fail "401 in cloudshark form"
req cs_scope 403 -F "file=@$T/cs1.pcap" "$U/api/v1/$RO/upload"
req cs_nofile 400 -F "additional_tags=x" "$CSU/upload"
req cs_del 200 -X POST "$CSU/delete/$CS_ID"
check "cloudshark delete" true "$(jq -r .deleted "$T/cs_del")"
req cs_del_gone 404 "$CSU/info/$CS_ID"
CS_ID3=$(jq -r .id "$T/cs_put")
req cs_del_body 200 -H "Content-Type: application/json" -d "{\"id\": \"$CS_ID3\"}" "$CSU/delete"
req cs_del_body_gone 404 "$CSU/download/$CS_ID3"
req cs_del_noid 400 -H "Content-Type: application/json" -d '{}' "$CSU/delete"

# --- delete and patch (native) ---
ID_E=$(jq -r .id "$T/up_token_tags")
req del403 403 -X DELETE -H "$(auth "$RW")" "$U/v1/captures/$ID_E"
req del 200 -X DELETE -H "$(auth "$CS")" "$U/v1/captures/$ID_E"
check "delete frees the object" "$(stat -c %s "$T/e.pcap")" "$(jq -r .freed_bytes "$T/del")"
req del_get 404 -H "$(auth "$RO")" "$U/v1/captures/$ID_E"
req del_again 404 -X DELETE -H "$(auth "$CS")" "$U/v1/captures/$ID_E"
req patch 200 -X PATCH -H "$(auth "$RW")" -d '{"name": "renamed.pcapng", "tags": ["p1", "p2"], "comment": "patched"}' "$U/v1/captures/$ID_C"
check "patched name" renamed.pcapng "$(jq -r .name "$T/patch")"
check "patched tags" '["p1","p2"]' "$(jq -c '.tags | sort' "$T/patch")"
check "patched comment" patched "$(jq -r .comment "$T/patch")"
req patch_list 200 -H "$(auth "$RO")" "$U/v1/captures?tag=p2"
check "patched tags are indexed" "$ID_C" "$(jq -r '.captures[].id' "$T/patch_list")"
req patch_clear 200 -X PATCH -H "$(auth "$RW")" -d '{"comment": null}' "$U/v1/captures/$ID_C"
check "comment cleared" null "$(jq -r .comment "$T/patch_clear")"
req patch_badjson 400 -X PATCH -H "$(auth "$RW")" -d '{"name": ' "$U/v1/captures/$ID_C"
req patch_badtype 422 -X PATCH -H "$(auth "$RW")" -d '{"tags": "x"}' "$U/v1/captures/$ID_C"
req patch_unknown 422 -X PATCH -H "$(auth "$RW")" -d '{"tag": ["p3"]}' "$U/v1/captures/$ID_C"
grep -q "unknown field 'tag'" "$T/patch_unknown" || fail "PATCH of an unknown field: $(cat "$T/patch_unknown")"
req patch_dupkey 400 -X PATCH -H "$(auth "$RW")" -d '{"name": "a.pcap", "name": "b.pcap"}' "$U/v1/captures/$ID_C"
grep -q "duplicate" "$T/patch_dupkey" || fail "PATCH with a key twice: $(cat "$T/patch_dupkey")"
req patch_noname 422 -X PATCH -H "$(auth "$RW")" -d '{"name": ""}' "$U/v1/captures/$ID_C"
grep -q "name is empty" "$T/patch_noname" || fail "PATCH of an empty name: $(cat "$T/patch_noname")"
req patch_badtag 400 -X PATCH -H "$(auth "$RW")" -d '{"tags": ["bad tag"]}' "$U/v1/captures/$ID_C"
req patch404 404 -X PATCH -H "$(auth "$RW")" -d '{}' "$U/v1/captures/88888"
# A capture holds at most 256 tags: one PATCH past it is refused whole,
# as is an add_tags that would pass it; under it, tags still come and go.
jq -nc '{tags: [range(257) | "t\(.)"]}' >"$T/tags257.json"
req patch_tags257 400 -X PATCH -H "$(auth "$RW")" -d @"$T/tags257.json" "$U/v1/captures/$ID_C"
grep -q "a capture holds at most 256" "$T/patch_tags257" || fail "257 tags: $(cat "$T/patch_tags257")"
jq -nc '{tags: [range(256) | "t\(.)"]}' >"$T/tags256.json"
req patch_tags256 200 -X PATCH -H "$(auth "$RW")" -d @"$T/tags256.json" "$U/v1/captures/$ID_C"
check "256 tags kept" 256 "$(jq '.tags | length' "$T/patch_tags256")"
req patch_tags_add 400 -X PATCH -H "$(auth "$RW")" -d '{"add_tags": ["one-more"]}' "$U/v1/captures/$ID_C"
req patch_tags_del 200 -X PATCH -H "$(auth "$RW")" -d '{"remove_tags": ["t0"], "add_tags": ["t256"]}' \
	"$U/v1/captures/$ID_C"
check "one out, one in" 256 "$(jq '.tags | length' "$T/patch_tags_del")"
tags257=$(jq -r '.tags | join(",")' "$T/tags257.json")
req upload_tags257 400 -H "$(auth "$RW")" --data-binary @"$T/e.pcap" \
	"$U/v1/captures?name=many.pcap&tags=$tags257"
grep -q "a capture holds at most 256" "$T/upload_tags257" || fail "upload with 257 tags: $(cat "$T/upload_tags257")"
req patch_tags_back 200 -X PATCH -H "$(auth "$RW")" -d '{"tags": ["p1", "p2"]}' "$U/v1/captures/$ID_C"

stop_daemon

# Packets over HTTP equal `capvault query` on the same store.
expect_rc 0 "$CAPVAULT" query --store "$STORE" --capture "$ID_A" --capture "$ID_B" -w "$T/cli_tcp" tcp
cmp -s "$T/cli_tcp" "$T/q_tcp" || fail "HTTP packets differ from capvault query (tcp)"
expect_rc 0 "$CAPVAULT" query --store "$STORE" --capture "$ID_A" --capture "$ID_B" --capture "$ID_C" -w "$T/cli_all"
cmp -s "$T/cli_all" "$T/q_all" || fail "HTTP packets differ from capvault query (all)"
expect_rc 0 "$CAPVAULT" query --store "$STORE" --capture "$ID_A" --capture "$ID_B" --count tcp
check "count=1 equals capvault query --count" "$(cat "$T/out")" "$(jq -r .count "$T/q_count")"
expect_rc 0 "$CAPVAULT" query --store "$STORE" --capture "$ID_A" --limit 10 -w "$T/cli_limit"
cmp -s "$T/cli_limit" "$T/q_limit" || fail "HTTP packets differ from capvault query (limit)"

# A revoked token stops working.
expect_rc 0 "$CAPVAULT" token revoke ro --store "$STORE"
start_daemon
req revoked 401 -H "$(auth "$RO")" "$U/v1/captures"
req still 200 -H "$(auth "$RW")" "$U/v1/captures"
stop_daemon

# TLS with a self-signed certificate; the unix socket stays plain.
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null; then
	TLS=1 start_daemon
	S="https://127.0.0.1:$PORT"
	req tls 200 --cacert "$T/cert.pem" -H "$(auth "$RW")" "$S/v1/captures/$ID_A"
	check "TLS record" "$ID_A" "$(jq -r .id "$T/tls")"
	req tls_dl 200 --cacert "$T/cert.pem" -H "$(auth "$RW")" "$S/v1/captures/$ID_A/file"
	cmp -s "$T/tls_dl" "$T/a.pcap" || fail "download over TLS differs"
	req tls_plain 000 "http://127.0.0.1:$PORT/v1/health"
	req tls_unverified 000 "$S/v1/health"
	req tls_unix 200 --unix-socket "$SOCK" http://localhost/v1/health
	stop_daemon
else
	echo "openssl cannot make a certificate here: TLS not tested"
fi

finish
