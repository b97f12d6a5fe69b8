#!/bin/bash
# What a client sends is bounded as stored, and replies name no server
# path (issues 15.12, 15.14, 15.15): gzip and zstd bombs (small bodies,
# captures past api.max_upload_size once decompressed) get 413 and leave
# no record, object or tmp file, raw and multipart; a multipart upload is
# not spooled into the free space imports keep (retention.min_free); a
# bad multipart capture's 422 and a good one's record do not name the
# spool file; the CLI refuses a --from-list or --journal file without
# newlines instead of reading it whole, and capvaultd a TLS file of
# endless zeros.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
MIN_FREE=
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
api:
  listen: ["127.0.0.1:$1"]
  max_upload_size: 1MiB
YAML
	if [ -n "$MIN_FREE" ]; then
		printf 'retention:\n  min_free: %s\n' "$MIN_FREE" >> "$T/d.yaml"
	fi
}

# A pcap of N records of 256 KiB of zeros: N/4 MiB, compressing to little.
bomb() {
	python3 - "$1" <<'PY'
import struct, sys
n = int(sys.argv[1]); size = 262144
out = sys.stdout.buffer
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, size, 1))
for i in range(n):
    out.write(struct.pack('<IIII', 1700000000 + i, 0, size, size))
    out.write(bytes(size))
PY
}
bomb 80 > "$T/bomb.pcap"   # 20 MiB
gzip -9 -c "$T/bomb.pcap" > "$T/bomb.pcap.gz"
zstd -q -19 -c "$T/bomb.pcap" > "$T/bomb.pcap.zst"
"$MKCAP" --packets 200 --seed 5 -o "$T/ok.pcap"
head -c 5000 /dev/urandom > "$T/junk.pcap"

# --- the CLI bounds the lines it reads (15.12)
head -c 200000 /dev/zero > "$T/zeros"
expect_rc 1 "$CAPVAULT" import --store "$STORE" --from-list "$T/zeros"
grep -q "zeros: line 1 is over" "$T/err" || fail "--from-list without newlines: $(head -c 300 "$T/err")"
# /dev/full reads as endless zeros: refused at once, in bounded memory
# (the address-space cap guards against a regression; ASan cannot run
# under one)
vlimit=2000000
ldd "$CAPVAULT" 2>/dev/null | grep libasan >/dev/null && vlimit=unlimited
rc=0
(ulimit -v "$vlimit"; timeout -s KILL 60 "$CAPVAULT" import --store "$STORE" --journal /dev/full "$T/ok.pcap") \
	>"$T/out" 2>"$T/err" || rc=$?
check "--journal /dev/full: exit code" 1 "$rc"
grep -q "journal /dev/full: line 1 is over 8192 bytes" "$T/err" ||
	fail "--journal /dev/full: $(head -c 300 "$T/err")"

# capvaultd reads its TLS files whole: bounded too
cat > "$T/tls.yaml" <<YAML
store: $STORE
api:
  listen: ["127.0.0.1:1"]
  tls:
    cert: /dev/zero
    key: /dev/zero
YAML
rc=0
(ulimit -v "$vlimit"; timeout -s KILL 60 "$CAPVAULTD" --config "$T/tls.yaml") >"$T/out" 2>"$T/err" || rc=$?
check "capvaultd with a /dev/zero certificate: exit code" 1 "$rc"
grep -q "/dev/zero: over 1048576 bytes: not a PEM file" "$T/err" ||
	fail "TLS file bound: $(head -c 300 "$T/err")"

TOKEN=$("$CAPVAULT" token add up --store "$STORE" --scopes read,upload 2>/dev/null)
auth=(-H "Authorization: Bearer $TOKEN")
start_daemon

# req NAME EXPECTED_STATUS CURL_ARGS...: body in $T/NAME, status checked.
req() {
	local name=$1 want=$2 code
	shift 2
	code=$(curl -s -o "$T/$name" -w '%{http_code}' --max-time 60 "${auth[@]}" "$@" || true)
	check "$name: HTTP status" "$want" "$code"
}
ncaptures() { curl -s "${auth[@]}" "$U/v1/captures?limit=1000" > "$T/list"; jq ".captures | length" "$T/list"; }
nobjects() { find "$STORE/objects" -type f | wc -l; }
ntmp() { find "$STORE/tmp" -type f | wc -l; }

# --- decompression bombs (15.14)
for f in bomb.pcap.gz bomb.pcap.zst; do
	req "raw_$f" 413 --data-binary @"$T/$f" "$U/v1/captures?name=$f"
	grep -q "once decompressed" "$T/raw_$f" || fail "raw $f: $(head -c 300 "$T/raw_$f")"
	req "form_$f" 413 -F "file=@$T/$f" "$U/v1/captures"
	grep -q "once decompressed" "$T/form_$f" || fail "multipart $f: $(head -c 300 "$T/form_$f")"
done
check "no record after the bombs" 0 "$(ncaptures)"
check "no object after the bombs" 0 "$(nobjects)"
wait_for "no tmp file after the bombs" eval '[ "$(ntmp)" = 0 ]'
# a capture under the limit is stored whole, compressed or not
gzip -c "$T/ok.pcap" > "$T/ok.pcap.gz"
req ok_gz 201 --data-binary @"$T/ok.pcap.gz" "$U/v1/captures?name=ok.pcap.gz"
check "small gzip upload stored" 200 "$(jq -r .packets "$T/ok_gz")"
# capvault import goes through the daemon's unix socket, where the limit
# is not applied: it imports what it imports offline (a 20 MiB capture).
expect_rc 0 "$CAPVAULT" import --store "$STORE" "$T/bomb.pcap.zst"
grep -q "^imported" "$T/out" || fail "import through the socket past max_upload_size: $(cat "$T/out" "$T/err")"
check "packets of the socket import" 80 "$("$CAPVAULT" info --store "$STORE" --json "$(sha256sum <"$T/bomb.pcap" | cut -c1-64)" | jq .packets)"

# --- replies and records name no server path (15.15)
req junk_form 422 -F "file=@$T/junk.pcap" "$U/v1/captures"
grep -q "junk.pcap" "$T/junk_form" || fail "422 does not name the upload: $(head -c 300 "$T/junk_form")"
if grep -qE "$STORE|/tmp/|upload-" "$T/junk_form"; then
	fail "422 names a server path: $(head -c 300 "$T/junk_form")"
fi
# a name longer than the message the path was in: cut, not overflowed
long=$(printf 'x%.0s' $(seq 1 3000))
req junk_long 422 -F "file=@$T/junk.pcap" -F "name=$long" "$U/v1/captures"
grep -q '"message":"not a valid capture: xxxx' "$T/junk_long" || fail "long name: $(head -c 200 "$T/junk_long")"
req junk_raw 422 --data-binary @"$T/junk.pcap" "$U/v1/captures?name=junk.pcap"
grep -qE "$STORE|/tmp/" "$T/junk_raw" && fail "raw 422 names a server path: $(head -c 300 "$T/junk_raw")"
"$MKCAP" --packets 100 --seed 6 -o "$T/form.pcap"
req form_ok 201 -F "file=@$T/form.pcap" "$U/v1/captures"
sp=$(jq -r '.source_path // ""' "$T/form_ok")
case $sp in *upload-* | *"$STORE"*) fail "multipart upload recorded its spool file as source_path: $sp" ;; esac
checks=$((checks + 1))
stop_daemon

# --- spooling keeps retention.min_free: asked for more than is free,
# a multipart upload is refused before it is spooled (retention prunes
# the other captures meanwhile, trying to reach that floor)
MIN_FREE=99%
start_daemon
"$MKCAP" --packets 300 --seed 7 -o "$T/spool.pcap"
req spool 507 -F "file=@$T/spool.pcap" "$U/v1/captures"
grep -q "no room to receive the upload" "$T/spool" || fail "spool refusal: $(head -c 300 "$T/spool")"
grep -qE "$STORE" "$T/spool" && fail "507 names a server path: $(head -c 300 "$T/spool")"
ncaptures >/dev/null
grep -q spool.pcap "$T/list" && fail "the refused upload was recorded"
checks=$((checks + 1))
wait_for "no spool file left" eval '[ "$(ntmp)" = 0 ]'
stop_daemon
finish
