#!/usr/bin/env bash
# objstore_trust.sh - what the S3 backend trusts on its way to the store
# (adv15a), against small HTTP(S) servers answering an empty listing, so
# that `capvault fsck --remote` shows whether the request got through:
# - object_store.ca_file is the only trust for the endpoint's certificate:
#   libcurl also trusted its built-in CA folder (Debian's /etc/ssl/certs)
#   beside it, so a ca_file naming a private CA did not keep out a
#   certificate any CA there signed. The system's CA folder is replaced,
#   in a private mount namespace, by one holding the server's CA (skipped
#   where there is none to be had).
# - A plain-http endpoint (a store on this host) is never reached through
#   the proxy http_proxy or ALL_PROXY names, which would carry captures
#   off the host unencrypted.
# - fsck --remote with keys it cannot have says why, not that no object
#   store is configured; rm, that the remote copy's removal waits for
#   capvaultd's next start.
source "$(dirname "$0")/lib.sh"

mkdir "$T/server-ca" "$T/other-ca"
"$CAPVAULT" cert selfsigned --out "$T/server-ca" --days 2 --cn localhost >/dev/null 2>&1
"$CAPVAULT" cert selfsigned --out "$T/other-ca" --days 2 --cn other.test >/dev/null 2>&1
cat > "$T/s3.py" <<'EOP'
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'<?xml version="1.0"?><ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
if sys.argv[1] != "-":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(sys.argv[3] + ".tmp", sys.argv[3])
srv.serve_forever()
EOP
python3 "$T/s3.py" "$T/server-ca/cert.pem" "$T/server-ca/key.pem" "$T/port" </dev/null >"$T/s3.log" 2>&1 &
spid=$!
python3 "$T/s3.py" - - "$T/plain-port" </dev/null >"$T/plain.log" 2>&1 &
ppid=$!
trap 'kill "$spid" "$ppid" 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && [ -s "$T/plain-port" ] && break; sleep 0.05; done
[ -s "$T/port" ] && [ -s "$T/plain-port" ] ||
	{ echo "FAIL: the servers did not start: $(cat "$T/s3.log" "$T/plain.log")"; exit 1; }
export AWS_ACCESS_KEY_ID=AKIDCA AWS_SECRET_ACCESS_KEY=SECRETCA
# config NAME [CA_FILE]: $T/NAME.yaml for the server.
config() {
	{
		echo "store: $CAPVAULT_STORE"
		echo "object_store:"
		echo "  endpoint: https://127.0.0.1:$(cat "$T/port")"
		echo "  bucket: capvault"
		[ -z "${2:-}" ] || echo "  ca_file: $2"
	} > "$T/$1.yaml"
}
config right "$T/server-ca/cert.pem"
config wrong "$T/other-ca/cert.pem"
config none

expect_rc 0 "$CAPVAULT" fsck --remote --config "$T/right.yaml"
expect_rc 1 "$CAPVAULT" fsck --remote --config "$T/wrong.yaml"
grep -q "SSL certificate problem" "$T/err" || fail "wrong ca_file: $(cat "$T/err")"
expect_rc 1 "$CAPVAULT" fsck --remote --config "$T/none.yaml"

# The server's CA in the system's CA folder: taken without ca_file, and
# not beside a ca_file that names another CA.
mkdir "$T/system-ca"
cp "$T/server-ca/cert.pem" "$T/system-ca/$(openssl x509 -hash -noout -in "$T/server-ca/cert.pem").0"
cp "$T/server-ca/cert.pem" "$T/system-ca/ca-certificates.crt" # libcurl's bundle there too
rc=0
T=$T CAPVAULT=$CAPVAULT unshare -m bash -c '
	mount --bind "$T/system-ca" /etc/ssl/certs 2>/dev/null || exit 77
	"$CAPVAULT" fsck --remote --config "$T/none.yaml" > "$T/none.out" 2>&1 || exit 2
	"$CAPVAULT" fsck --remote --config "$T/wrong.yaml" > "$T/wrong.out" 2>&1 && exit 3
	exit 0' || rc=$?
if [ "$rc" = 77 ] || { [ "$rc" != 0 ] && [ ! -e "$T/none.out" ]; }; then
	echo "SKIP: the system's CA folder (no private mount namespace here)"
else
	checks=$((checks + 1))
	case $rc in
	0) ;;
	2) fail "the system's CA folder is not taken without ca_file: $(cat "$T/none.out")" ;;
	3) fail "a ca_file naming another CA let the system's CA folder in: $(cat "$T/wrong.out")" ;;
	*) fail "unshare: exit $rc" ;;
	esac
fi
# A plain-http endpoint is never reached through a proxy (here one that
# refuses connections: a request sent to it fails).
sed "s|https://127.0.0.1:$(cat "$T/port")|http://127.0.0.1:$(cat "$T/plain-port")|" "$T/none.yaml" \
	> "$T/plain.yaml"
expect_rc 0 "$CAPVAULT" fsck --remote --config "$T/plain.yaml"
closed=$((20000 + RANDOM % 20000))
expect_rc 0 env http_proxy="http://127.0.0.1:$closed" HTTP_PROXY="http://127.0.0.1:$closed" \
	ALL_PROXY="http://127.0.0.1:$closed" "$CAPVAULT" fsck --remote --config "$T/plain.yaml"

# Keys that cannot be had: fsck --remote says why, and not that no
# object store is configured (adv15a).
printf '[other]\naws_access_key_id = AKIDFILE\naws_secret_access_key = SECRETCA\n' > "$T/cred"
chmod 600 "$T/cred"
{ cat "$T/right.yaml"; echo "  credentials_file: $T/cred"; } > "$T/cred.yaml"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$CAPVAULT" fsck --remote \
	--config "$T/cred.yaml" > "$T/cred.out" 2>&1 && fail "fsck --remote without keys succeeded"
grep -q "no profile 'default'" "$T/cred.out" || fail "fsck --remote without keys: $(cat "$T/cred.out")"
! grep -q "no object store is configured" "$T/cred.out" ||
	fail "fsck --remote without keys: $(cat "$T/cred.out")"
checks=$((checks + 1))
# rm without them: the removal of the remote copy waits for capvaultd's
# next start (README), which the message says (not fsck --remote --repair).
"$MKCAP" --packets 5 --seed 7 -o "$T/c.pcap"
expect_rc 0 "$CAPVAULT" import "$T/c.pcap"
expect_rc 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$CAPVAULT" rm --config \
	"$T/cred.yaml" 1
grep -q "the removal of a remote copy waits for capvaultd's next start" "$T/err" ||
	fail "rm without keys: $(cat "$T/err")"
! grep -q SECRETCA "$T"/*.out "$T/err" "$T/out" || fail "the secret is shown"
finish
