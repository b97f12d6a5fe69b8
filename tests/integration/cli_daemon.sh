#!/bin/bash
# The capvault CLI with capvaultd running: every command that can goes
# through the daemon's unix socket (no "in use by another process"), and
# prints what the same command prints offline against the same store
# (timing lines aside). Then --url with a token over plain HTTP, and over
# HTTPS with `capvault cert selfsigned` and --cacert; `capvault status`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
mkdir -p "$T/in" "$T/src/site-a" "$T/src/site-b" "$T/off" "$T/dmn"

write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$1"]
  timeout: 10s
YAML
	if [ -n "${TLS:-}" ]; then
		printf '  tls:\n    cert: %s\n    key: %s\n' "$T/cert.pem" "$T/key.pem" >> "$T/d.yaml"
	fi
}

# run DIR NAME ARGS...: cli_run (daemon_lib.sh), then lines that time
# things left out, and the two that change by themselves: free space, and
# the index's files (RocksDB compacts them on close).
run() {
	cli_run "$@"
	sed -i -E '/^elapsed: /d; /"(free_bytes|elapsed_ms|index_sst_bytes)"/d; /^(free_bytes|index_sst_bytes) /d' \
		"$1/$2.out" "$1/$2.err"
}

# The same commands, into DIR: the daemon's run and the offline run.
commands() {
	local d=$1
	run "$d" ls ls
	run "$d" ls_json ls --json
	run "$d" ls_tag ls --tag site-b
	run "$d" info info 2
	run "$d" info_json info --json 3
	run "$d" info_sha info "$SHA1"
	run "$d" info_missing info 999
	run "$d" stats stats
	run "$d" stats_json stats --json
	run "$d" count query --count tcp
	run "$d" count_all query --count
	run "$d" count_tag query --count --tag site-a udp
	run "$d" count_cap query --count --capture 1 --capture 3 tcp port 80
	run "$d" count_time query --count --after 2023-11-14T22:13:20Z --before 1999999999 ip
	run "$d" explain query --count --explain tcp
	run "$d" badfilter query --count "tcp port (("
	run "$d" write query -w "$d/q.pcap" tcp
	run "$d" write_explain query --explain -w "$d/q2.pcap" --limit 5 udp
	run "$d" write_none query -w "$d/q3.pcap" "host 203.0.113.99"
}

"$MKCAP" --packets 200 --flows 20 --seed 1 -o "$T/src/site-a/a.pcap"
"$MKCAP" --packets 120 --seed 2 --format pcapng -o "$T/src/site-b/b.pcapng"
"$MKCAP" --packets 90 --seed 3 --zstd -o "$T/src/site-a/c.pcap.zst"
"$MKCAP" --packets 40 --seed 4 --truncate -o "$T/src/d.pcap"
echo "not a capture" > "$T/src/e.txt"
cp "$T/src/site-a/a.pcap" "$T/src/z-dup.pcap"
"$MKCAP" --packets 10 --seed 5 -o "$T/m1.pcap"
"$MKCAP" --packets 10 --seed 6 -o "$T/m2.pcap"
tar -C "$T/src" -cf "$T/t.tar" site-b/b.pcapng
"$MKCAP" --packets 33 --seed 7 -o "$T/tm.pcap"
tar -C "$T" -cf "$T/t2.tar" tm.pcap
TOKEN=$("$CAPVAULT" token add cli --scopes read,upload,delete 2>/dev/null)
ROTOKEN=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
check "token made" 64 "${#TOKEN}"

# The same import offline into a scratch store gives the reference lines.
"$CAPVAULT" init --store "$T/ref" >/dev/null
CAPVAULT_STORE="$T/ref" run "$T/off" import import --tags-from-path --tags lab "$T/src"
CAPVAULT_STORE="$T/ref" run "$T/off" import2 import --tar "$T/t2.tar" "$T/t.tar"

start_daemon
run "$T/dmn" import import --tags-from-path --tags lab "$T/src"
run "$T/dmn" import2 import --tar "$T/t2.tar" "$T/t.tar"
for f in import import2; do
	sed -i "s#$T/ref#STORE#g" "$T/off/$f.out" "$T/off/$f.err"
	sed -i "s#$STORE#STORE#g" "$T/dmn/$f.out" "$T/dmn/$f.err"
done
compare import import2
grep -q "in use" "$T/dmn/import.err" && fail "import did not go through the daemon"
check "import: FAILED line" 1 "$(grep -c '^FAILED .*e.txt' "$T/dmn/import.out")"
check "import: duplicate line" 1 "$(grep -c '^duplicate .*z-dup.pcap' "$T/dmn/import.out")"
run "$T/dmn" ls_pre ls
SHA1=$(awk '$1 == 1 { print $2 }' "$T/dmn/ls_pre.out")
check "sha of capture 1" 12 "${#SHA1}"
commands "$T/dmn"
stop_daemon
commands "$T/off"
compare ls ls_json ls_tag info info_json info_sha info_missing stats stats_json count count_all \
	count_tag count_cap count_time explain badfilter write write_explain write_none
for q in q q2 q3; do
	[ -e "$T/off/$q.pcap" ] || fail "offline query wrote no $q.pcap"
	cmp -s "$T/off/$q.pcap" "$T/dmn/$q.pcap" || fail "$q.pcap: daemon query differs from offline"
done
expect_rc 1 "$CAPVAULT" status
grep -q "not running" "$T/err" || fail "status without a daemon: $(cat "$T/err")"

start_daemon
# status, and the API's imports: a bad file dropped into the watched folder.
echo "junk" > "$T/in/bad.pcap"
wait_for "the daemon to fail bad.pcap" grep -q "failed .*bad.pcap" "$T/d.log"
expect_rc 0 "$CAPVAULT" status
grep -q "^capvaultd: *[0-9]" "$T/out" || fail "status: no version line: $(cat "$T/out")"
grep -q "^store: *$STORE" "$T/out" || fail "status: no store line"
grep -q "$T/in  watch=inotify after_import=delete recursive" "$T/out" ||
	fail "status: no folder line: $(cat "$T/out")"
grep -q "bad.pcap" "$T/out" || fail "status: the failure is not listed: $(cat "$T/out")"
expect_rc 0 "$CAPVAULT" status --json
check "status --json captures" "$(jq .captures "$T/dmn/stats_json.out")" "$(jq .captures "$T/out")"
check "status --json failures" 1 "$(jq '.imports.recent_failures | length' "$T/out")"

# GET /v1/captures filters: name glob, packet time range, import time.
SOCK="$STORE/capvault.sock"
ids() { curl -s --unix-socket "$SOCK" "http://localhost/v1/captures?$1" | jq -c '[.captures[].id]'; }
check "name glob" "[2,3]" "$(ids 'name=%5Ba-c%5D.pcap*&tag=site-a')"
check "name glob, no match" "[]" "$(ids 'name=nothing*')"
check "packets after the end" "[]" "$(ids 'from=2030-01-01T00:00:00Z')"
check "packets in range" 5 "$(ids 'from=2023-11-14T22:00:00Z&to=2023-11-14T23:00:00Z' | jq length)"
check "imported after now" "[]" "$(ids "imported_after=$(($(date +%s) + 60))")"
check "bad time" 400 "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" 'http://localhost/v1/captures?from=yesterday')"

# --url: no token 401, a read-only token cannot delete, the right one can.
U="http://127.0.0.1:$PORT"
expect_rc 1 "$CAPVAULT" --url "$U" ls
grep -q "token" "$T/err" || fail "--url without a token: $(cat "$T/err")"
run "$T/dmn" url_ls --url "$U" --token "$TOKEN" ls
diff -u "$T/dmn/ls.out" "$T/dmn/url_ls.out" >&2 || fail "ls over --url differs"
CAPVAULT_TOKEN=$ROTOKEN run "$T/dmn" url_count --url="$U" query --count tcp
diff -u "$T/dmn/count.out" "$T/dmn/url_count.out" >&2 || fail "query --count over --url differs"
CAPVAULT_TOKEN=$TOKEN run "$T/dmn" url_write --url "$U" query -w "$T/dmn/url.pcap" tcp
cmp -s "$T/dmn/q.pcap" "$T/dmn/url.pcap" || fail "query -w over --url differs"
expect_rc 1 "$CAPVAULT" --url "$U" --token "$ROTOKEN" rm 5
grep -q "delete" "$T/err" || fail "read-only rm: $(cat "$T/err")"

# Changes through the daemon: --move, tag, rm; then the same reads offline.
run "$T/dmn" move import --move "$T/m1.pcap"
MID=$(awk '/^imported/ { print $2 }' "$T/dmn/move.out")
grep -q "^imported   $MID .* 10 packets  $T/m1.pcap" "$T/dmn/move.out" ||
	fail "import --move: $(cat "$T/dmn/move.out" "$T/dmn/move.err")"
[ -e "$T/m1.pcap" ] && fail "import --move left the source"
expect_rc 0 "$CAPVAULT" tag 2 +extra -lab
check "tag through the daemon" "2: site-a extra" "$(cat "$T/out")"
expect_rc 0 "$CAPVAULT" --url "$U" --token "$TOKEN" rm "$MID"
grep -q "^removed $MID m1.pcap" "$T/out" || fail "rm over --url: $(cat "$T/out" "$T/err")"
run "$T/dmn" rm_again rm "$MID"
run "$T/dmn" tag_bad tag 2 +bad,tag
run "$T/dmn" after_ls ls
run "$T/dmn" after_info info 2
stop_daemon
run "$T/off" rm_again rm "$MID"
run "$T/off" tag_bad tag 2 +bad,tag
run "$T/off" after_ls ls
run "$T/off" after_info info 2
compare rm_again tag_bad after_ls after_info

# HTTPS: capvault cert selfsigned, verified with --cacert; refused without.
expect_rc 0 "$CAPVAULT" cert selfsigned --out "$T" --days 2 --cn capvault.test
check "key mode" 600 "$(stat -c %a "$T/key.pem")"
expect_rc 1 "$CAPVAULT" cert selfsigned --out "$T"
# A missing folder is made (0700), a missing parent is an error.
expect_rc 0 "$CAPVAULT" cert selfsigned --out "$T/newcert"
check "made cert folder mode" 700 "$(stat -c %a "$T/newcert")"
[ -s "$T/newcert/cert.pem" ] || fail "no cert.pem in the made folder"
expect_rc 1 "$CAPVAULT" cert selfsigned --out "$T/nosuch/dir"
grep -q "cannot make the folder $T/nosuch/dir: No such file" "$T/err" || fail "cert into a missing parent: $(cat "$T/err")"
TLS=1 start_daemon
S="https://127.0.0.1:$PORT"
run "$T/dmn" tls_ls --url "$S" --cacert "$T/cert.pem" --token "$TOKEN" ls
diff -u "$T/off/after_ls.out" "$T/dmn/tls_ls.out" >&2 || fail "ls over https differs"
CAPVAULT_TOKEN=$TOKEN run "$T/dmn" tls_write --url "$S" --cacert "$T/cert.pem" query -w "$T/dmn/tls.pcap" tcp
cmp -s "$T/off/q.pcap" "$T/dmn/tls.pcap" || fail "query over https differs"
run "$T/dmn" tls_import --url "$S" --cacert "$T/cert.pem" --token "$TOKEN" import "$T/m2.pcap"
grep -q "^imported   [0-9]* .* 10 packets  $T/m2.pcap" "$T/dmn/tls_import.out" ||
	fail "import over https: $(cat "$T/dmn/tls_import.out" "$T/dmn/tls_import.err")"
expect_rc 1 "$CAPVAULT" --url "$S" --token "$TOKEN" ls
grep -q "certificate verify\|verification failed" "$T/err" || fail "unverified https: $(cat "$T/err")"
expect_rc 1 "$CAPVAULT" --url "http://127.0.0.1:$PORT" --token "$TOKEN" ls
stop_daemon

finish
