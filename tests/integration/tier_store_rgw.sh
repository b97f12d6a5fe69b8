#!/usr/bin/env bash
# tier_store_rgw.sh - the object store's state against a real Ceph RGW
# (adv18 F8/F10): capvaultd checks the bucket and the keys at start, before
# any move, so a misspelt bucket is "no_bucket" and a wrong secret
# "refused" (with the store's reason) in the start's log line and in GET
# /v1/status, while imports go on; a good configuration is "ok"; a
# credentials file changed into one that is refused (mode 0644) makes the
# state "refused" with the file's reason, although the older keys still
# work. One RGW for the whole script; skipped (77) without Ceph.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/rgw_lib.sh"
rgw_start

S=$CAPVAULT_STORE
mkdir -p "$T/in"
"$MKCAP" --packets 20 --seed 91 -o "$T/c1.pcap"
"$MKCAP" --packets 30 --seed 92 -o "$T/c2.pcap"
expect_rc 0 "$CAPVAULT" import "$T/c1.pcap"

# Keys from a file of the test's own (the environment's would win).
install -m 0600 "$CAPVAULT_S3_CREDENTIALS" "$T/cred"
BUCKET=$CAPVAULT_S3_BUCKET
write_config() {
	write_inbox_config "$S" "$1"
	rgw_object_store_config connect_timeout=2s request_timeout=5s
	sed -i -e "s|^  bucket: .*|  bucket: $BUCKET|" \
		-e "s|^  credentials_file: .*|  credentials_file: $T/cred|" "$T/d.yaml"
}
run() { start_daemon -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY; }
status_json() {
	curl -sS --unix-socket "$S/capvault.sock" http://localhost/v1/status
}
state_is() { [ "$(status_json | jq -r .tier.store.state)" = "$1" ]; }
desc="s3://$CAPVAULT_S3_BUCKET/ at $CAPVAULT_S3_ENDPOINT"

# A misspelt bucket: found at start, no move asked for.
BUCKET=nosuchbucket-$RANDOM
run
wait_for "no_bucket at start" state_is no_bucket
status_json >"$T/st.json"
jq -e --arg b "$BUCKET" '.tier.store.error | contains("NoSuchBucket") and contains($b)' \
	"$T/st.json" >/dev/null || fail "no_bucket error: $(jq -c .tier.store "$T/st.json")"
check "moves" 0 "$(jq .tier.tiered_objects "$T/st.json")"
grep -q "<4>.*tier: object store s3://$BUCKET/ at .*: no_bucket: .*HTTP 404 NoSuchBucket" \
	"$T/d.log" || fail "start line: $(grep 'tier: object store' "$T/d.log")"
if grep -q "tiering capture\|tiered object" "$T/d.log"; then
	fail "a move was made: $(grep tier "$T/d.log")"
fi
cp "$T/c2.pcap" "$T/in/"
wait_for "an import with the bucket missing" no_files "$T/in"
expect_rc 0 "$CAPVAULT" status
grep -q "^objstore: *no_bucket since .*NoSuchBucket" "$T/out" || fail "status: $(cat "$T/out")"
stop_daemon
BUCKET=$CAPVAULT_S3_BUCKET

# A wrong secret: refused at start, with the store's reason.
cp "$T/cred" "$T/cred.good"
sed -i "s/^\(aws_secret_access_key *= *\).*/\1wrong-secret-0123456789abcdefghijklmnopq/" "$T/cred"
cmp -s "$T/cred" "$T/cred.good" && fail "the secret was not changed"
run
wait_for "refused at start" state_is refused
status_json >"$T/st.json"
jq -e '.tier.store.error | test("HTTP 403")' "$T/st.json" >/dev/null ||
	fail "refused error: $(jq -c .tier.store "$T/st.json")"
grep -q "<4>.*tier: object store $desc: refused: .*HTTP 403" "$T/d.log" ||
	fail "start line: $(grep 'tier: object store' "$T/d.log")"
secret=$(sed -n 's/^aws_secret_access_key *= *//p' "$T/cred.good")
for f in "$T/st.json" "$T/d.log"; do
	if grep -qF -- "$secret" "$f"; then fail "the secret in $f"; fi
done
stop_daemon

# Good keys: ok, then a rotated file that is refused (others may read it)
# while the older keys go on working: refused, with the file's reason.
install -m 0600 "$T/cred.good" "$T/cred"
run
wait_for "ok at start" state_is ok
check "error when ok" null "$(status_json | jq -c .tier.store.error)"
grep -q "<6>capvaultd: tier: object store $desc: ok$" "$T/d.log" ||
	fail "ok line: $(grep 'tier: object store' "$T/d.log")"
cp "$T/cred.good" "$T/cred.new"
chmod 0644 "$T/cred.new"
mv "$T/cred.new" "$T/cred"
# The file is looked at by a request, at most every 10 s, once it settled
# for a second: the move of capture 2 after that sees it.
sleep 11
expect_rc 0 "$CAPVAULT" tier 2
check "state with a refused file" refused "$(status_json | jq -r .tier.store.state)"
status_json >"$T/st.json"
jq -e '.tier.store.error | test("mode 0644") and test("still in use")' "$T/st.json" >/dev/null ||
	fail "file's reason: $(jq -c .tier.store "$T/st.json")"
check "the move with the older keys" remote "$("$CAPVAULT" info --json 2 | jq -r .location)"
wait_for "the change logged" logged "tier: object store $desc: refused (was ok): "
stop_daemon
finish
