#!/bin/bash
# TLS on the API listener: only TLS 1.2 and 1.3, with AEAD suites
# (Mozilla's "intermediate" profile; RFC 8996 retired TLS 1.0 and 1.1);
# SIGHUP reloads the certificate and key without dropping the listener,
# applies max_upload_size at once, and names the settings that need a
# restart in the log and in `capvault status --json`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
command -v openssl >/dev/null || { echo "no openssl"; exit 77; }

STORE=$T/store
mkdir -p "$T/in" "$T/c1" "$T/c2"
"$CAPVAULT" cert selfsigned --out "$T/c1" --days 2 --cn one.test >/dev/null 2>&1
"$CAPVAULT" cert selfsigned --out "$T/c2" --days 2 --cn two.test >/dev/null 2>&1
cp "$T/c1/cert.pem" "$T/cert.pem"
cp "$T/c1/key.pem" "$T/key.pem"
TOKEN=$("$CAPVAULT" token add tls --store "$STORE" --scopes read,upload 2>/dev/null)
MAXUP=4MiB
MAXCONN=16
write_config() {
	cat >"$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$1"]
  tls: { cert: $T/cert.pem, key: $T/key.pem }
  max_upload_size: $MAXUP
  max_connections: $MAXCONN
YAML
}
start_daemon

# s_client ARGS...: "OK PROTOCOL CIPHER" when a handshake completes, else
# "refused". SECLEVEL=0 so that the client offers what it is told to and
# the refusal is the server's.
s_client() {
	local out
	out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername x \
		-cipher 'DEFAULT:@SECLEVEL=0' "$@" 2>&1 </dev/null) || true
	if grep -q "^ *Cipher is (NONE)\|^New, (NONE)" <<<"$out" ||
		! grep -q "^New, " <<<"$out"; then
		echo refused
	else
		echo "OK $(sed -n 's/^New, \([^,]*\), .*/\1/p' <<<"$out" | head -1)"
	fi
}
tls_check() {
	local want=$1 desc=$2
	shift 2
	local got
	got=$(s_client "$@")
	checks=$((checks + 1))
	case $got in $want*) ;; *) fail "$desc: expected '$want', got '$got'" ;; esac
}
tls_check refused "TLS 1.0" -tls1
tls_check refused "TLS 1.1" -tls1_1
tls_check "OK TLSv1.2" "TLS 1.2" -tls1_2
tls_check "OK TLSv1.3" "TLS 1.3" -tls1_3
tls_check refused "TLS 1.2 with a CBC/SHA1 suite" -tls1_2 -cipher 'ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:AES256-SHA:@SECLEVEL=0'
tls_check refused "TLS 1.2 with a CBC/SHA256 suite" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:AES128-SHA256:@SECLEVEL=0'
tls_check refused "TLS 1.2 with static RSA key exchange" -tls1_2 -cipher 'AES128-GCM-SHA256:AES256-GCM-SHA384:@SECLEVEL=0'
tls_check "OK TLSv1.2" "TLS 1.2 with ECDHE AES-GCM" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'
tls_check "OK TLSv1.2" "TLS 1.2 with ChaCha20-Poly1305" -tls1_2 -cipher 'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'
check "health over TLS" 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/c1/cert.pem" \
	--resolve "one.test:$PORT:127.0.0.1" "https://one.test:$PORT/v1/health")"

# --- SIGHUP: a new certificate (same listener), a lower max_upload_size
# (at once), a new max_connections (named: it needs a restart).
fingerprint() { openssl x509 -noout -fingerprint -sha256 | cut -d= -f2; }
served() {
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" 2>/dev/null </dev/null | fingerprint
}
upload() {
	curl -s -o "$T/body" -w '%{http_code}' --max-time 30 --cacert "$T/c1/cert.pem" -k \
		-H "Authorization: Bearer $TOKEN" --data-binary @"$1" "https://127.0.0.1:$PORT/v1/captures?name=$2"
}
reloads() { count_logged "configuration reloaded"; }
reload_daemon() {
	local n
	n=$(reloads)
	kill -HUP "$DPID"
	wait_for "reload" eval '[ "$(reloads)" -gt '"$n"' ]'
}
FP1=$(fingerprint <"$T/c1/cert.pem")
FP2=$(fingerprint <"$T/c2/cert.pem")
check "first certificate served" "$FP1" "$(served)"
"$MKCAP" --packets 4000 --size 3000000 --seed 7 -o "$T/big1.pcap"
"$MKCAP" --packets 4000 --size 3000000 --seed 8 -o "$T/big2.pcap"
check "3 MB upload under max_upload_size 4MiB" 201 "$(upload "$T/big1.pcap" big1)"
exec 7<>/dev/tcp/127.0.0.1/"$PORT" # a connection open across the reload

cp "$T/c2/cert.pem" "$T/cert.pem"
cp "$T/c2/key.pem" "$T/key.pem"
MAXUP=2MiB
MAXCONN=32
write_config "$PORT"
reload_daemon
check "new certificate served after SIGHUP" "$FP2" "$(served)"
check "new max_upload_size in force" 413 "$(upload "$T/big2.pcap" big2)"
checks=$((checks + 1))
logged "need a restart: api.max_connections" ||
	fail "restart-only setting not logged: $(grep reload "$T/d.log")"
expect_rc 0 "$CAPVAULT" status --json --store "$STORE"
check "status names what needs a restart" '["api.max_connections"]' \
	"$(jq -c .daemon.restart_needed "$T/out")"
expect_rc 0 "$CAPVAULT" status --store "$STORE"
grep -q "need a restart: api.max_connections" "$T/out" || fail "capvault status: $(cat "$T/out")"
exec 7>&-

# A certificate that does not load: the running one stays, and the log says so.
echo "not a certificate" >"$T/cert.pem"
reload_daemon
checks=$((checks + 1))
logged "previous certificate stays in use" || fail "bad certificate not logged: $(tail -5 "$T/d.log")"
check "certificate kept after a bad reload" "$FP2" "$(served)"

# Back to the settings it started with: nothing needs a restart.
cp "$T/c2/cert.pem" "$T/cert.pem"
MAXCONN=16
write_config "$PORT"
reload_daemon
expect_rc 0 "$CAPVAULT" status --json --store "$STORE"
check "nothing needs a restart once undone" '[]' "$(jq -c .daemon.restart_needed "$T/out")"

stop_daemon
finish
