#!/bin/bash
# The test object store (tools/rgw-test, through rgw_lib.sh): a real Ceph
# RGW on loopback that checks SigV4 signatures, over HTTP and over TLS with
# a certificate from `capvault cert selfsigned`; RGW down and up again with
# its objects, frozen and thawed, refusing the user (403) and accepting it
# again; and no Ceph daemon left after stop, nor
# after a start that fails half-way.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rgw_lib.sh"

rgw_start --tls

# left DIR: the Ceph daemons still running on DIR's config.
left() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -F "$1/ceph.conf" >/dev/null && echo "${p#/proc/}"
	done
	true
}

head -c 3000000 /dev/urandom >"$T/obj"
url=$CAPVAULT_S3_ENDPOINT/$CAPVAULT_S3_BUCKET
tls=$CAPVAULT_S3_TLS_ENDPOINT/$CAPVAULT_S3_BUCKET
check "PUT over HTTP" 200 "$(s3 -o /dev/null -w '%{http_code}' -T "$T/obj" "$url/a/obj")"
s3 -o "$T/got" "$url/a/obj" || true
check "GET over HTTP gives the bytes" "$(sha256sum <"$T/obj")" "$(sha256sum <"$T/got")"

check "PUT over TLS" 200 \
	"$(s3 --cacert "$CAPVAULT_S3_CA_FILE" -o /dev/null -w '%{http_code}' -T "$T/obj" "$tls/b/obj")"
rm -f "$T/got"
s3 --cacert "$CAPVAULT_S3_CA_FILE" -o "$T/got" "$tls/b/obj" || true
check "GET over TLS gives the bytes" "$(sha256sum <"$T/obj")" "$(sha256sum <"$T/got")"
rc=0
s3 -o /dev/null "$tls/b/obj" || rc=$?
check "TLS is refused with the system CAs only (curl 60: not verified)" 60 "$rc"

check "a bad signature gets 403" 403 "$(curl -s -o /dev/null -w '%{http_code}' \
	--aws-sigv4 "aws:amz:$CAPVAULT_S3_REGION:s3" --user "$AWS_ACCESS_KEY_ID:wrong$AWS_SECRET_ACCESS_KEY" \
	-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$url/a/obj")"
check "an unsigned GET gets 403" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$url/a/obj")"
creds=$(sed -n 's/^aws_secret_access_key = //p' "$CAPVAULT_S3_CREDENTIALS")
check "the credentials file holds the secret" "$AWS_SECRET_ACCESS_KEY" "$creds"

# RGW down: connections refused; up again: the objects are still there.
rgw_down
rc=0
s3 -o /dev/null --max-time 5 "$url/a/obj" || rc=$?
check "RGW down refuses connections (curl 7)" 7 "$rc"
rgw_up
check "RGW up again keeps the objects" 200 "$(s3 -o /dev/null -w '%{http_code}' "$url/a/obj")"

# RGW frozen: a request times out; thawed: it answers.
rgw_pause
rc=0
s3 -o /dev/null --max-time 1 "$url/a/obj" || rc=$?
check "RGW frozen times out (curl 28)" 28 "$rc"
rgw_resume
check "RGW thawed answers" 200 "$(s3 -o /dev/null -w '%{http_code}' "$url/a/obj")"

# The user refused (403), then accepted again.
rgw_refuse
check "a refused user gets 403" 403 "$(s3 -o /dev/null -w '%{http_code}' "$url/a/obj")"
rgw_accept
check "an accepted user gets 200" 200 "$(s3 -o /dev/null -w '%{http_code}' "$url/a/obj")"

rgw_stop
check "no Ceph daemon left after stop" "" "$(left "$RGW_DIR")"
expect_rc 0 "$RGW_TEST" stop "$RGW_DIR"

# A start whose RGW dies at once fails, and leaves no mon or OSD behind.
mkdir -p "$T/fakebin"
printf '#!/bin/sh\nexit 1\n' >"$T/fakebin/radosgw"
chmod +x "$T/fakebin/radosgw"
PATH=$T/fakebin:$PATH expect_rc 1 "$RGW_TEST" start "$T/rgw2"
check "a failed start names radosgw" 1 "$(grep -c "radosgw did not" "$T/err" || true)"
check "no Ceph daemon left after a failed start" "" "$(left "$T/rgw2")"
finish
