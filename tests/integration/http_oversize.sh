#!/bin/bash
# Over-long request heads against the real capvaultd: a 100,000-byte
# filter in the query string of /v1/packets and /v1/decode/list gets 414,
# a 100,000-byte header gets 431, each with the API's JSON error (the
# CloudShark routes' {"status","exceptions"} under /api/), not
# libmicrohttpd's HTML page; a head beyond even the connection's memory
# is still refused (414/431 from libmicrohttpd); the daemon answers
# health after each, on the same keep-alive connection too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
mkdir -p "$T/in"
write_config() { write_inbox_config "$STORE" "$1"; }
TOKEN=$("$CAPVAULT" token add big --store "$STORE" --scopes read 2>/dev/null)
start_daemon

# code ARGS...: the status curl gets (000 when cut off); the body in $T/body.
code() { curl -g -s -o "$T/body" -w '%{http_code}' --max-time 20 "$@" || true; }
auth=(-H "Authorization: Bearer $TOKEN")
alive() { check "health after $1" 200 "$(code "$U/v1/health")"; }
# json_error WHAT STATUS CODE: the body is our JSON error with that status and code.
json_error() {
	check "$1: status field" "$2" "$(jq -r .status "$T/body" 2>/dev/null)"
	check "$1: error code" "$3" "$(jq -r .error "$T/body" 2>/dev/null)"
}
long() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }

F=$(long 100000)
for route in /v1/packets /v1/decode/list; do
	check "GET $route with a 100,000-byte filter" 414 "$(code "${auth[@]}" "$U$route?filter=$F")"
	json_error "$route 100,000-byte filter" 414 uri_too_long
	alive "$route with a 100,000-byte filter"
done
# Unknown routes and requests without a token are refused the same way,
# before any route or token is looked at.
check "unknown route, long query" 414 "$(code "$U/v1/nowhere?x=$F")"
json_error "unknown route, long query" 414 uri_too_long
check "long path" 414 "$(code "$U/v1/captures/$(long 100000 1)")"
json_error "long path" 414 uri_too_long

check "100,000-byte header" 431 "$(code -H "X-Big: $(long 100000)" "${auth[@]}" "$U/v1/captures")"
json_error "100,000-byte header" 431 headers_too_large
check "many headers, 40 KiB in all" 431 \
	"$(code $(for i in $(seq 40); do printf -- "-H X-H$i:%s " "$(long 1000)"; done) "$U/v1/health")"
json_error "many headers" 431 headers_too_large
alive "a 100,000-byte header"

# A POST's body is not read: refused at the head, the connection closed.
check "POST with a 100,000-byte query" 414 \
	"$(code "${auth[@]}" --data-binary "x" "$U/v1/captures?name=$F")"
json_error "POST with a long query" 414 uri_too_long

# CloudShark routes answer in their own shape.
check "CloudShark search, long query" 414 "$(code "$U/api/v1/$TOKEN/search?search[filter]=$F")"
check "CloudShark shape: status" 414 "$(jq -r .status "$T/body" 2>/dev/null)"
check "CloudShark shape: exceptions" string "$(jq -r '.exceptions[0] | type' "$T/body" 2>/dev/null)"
check "CloudShark shape: no error key" null "$(jq -r .error "$T/body" 2>/dev/null)"

# Within the limits all is as before.
check "a 3,000-byte query" 200 "$(code "${auth[@]}" "$U/v1/packets?filter=$(printf '%%20%.0s' $(seq 1000))tcp")"

# Beyond the connection's memory libmicrohttpd itself refuses (status
# only: its body is its own), and the daemon stays up.
# raw_status query|header N: the status of a GET with an N-byte filter or
# header, sent over a socket (curl's arguments cannot be that long); 000
# when cut off.
raw_status() {
	python3 - "$PORT" "$1" "$2" <<'PY'
import socket, sys
n = int(sys.argv[3])
big = b"a" * n
query, header = (big, b"1") if sys.argv[2] == "query" else (b"", big)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
try:
    s.sendall(b"GET /v1/packets?filter=%s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % (query, header))
    print(s.recv(100).split(b" ")[1].decode())
except (OSError, IndexError):
    print("000")
PY
}
checks=$((checks + 1))
c=$(raw_status query 400000)
case $c in 414 | 000) ;; *) fail "400,000-byte query: $c" ;; esac
checks=$((checks + 1))
c=$(raw_status header 400000)
case $c in 431 | 000) ;; *) fail "400,000-byte header: $c" ;; esac
alive "heads beyond the connection's memory"

# Keep-alive: a refused GET leaves the connection usable.
curl -s -o /dev/null -o "$T/h2" -w '%{http_code} ' "$U/v1/packets?filter=$F" "$U/v1/health" \
	> "$T/seq" || true
check "414 then health on one connection" "414 200 " "$(cat "$T/seq")"

stop_daemon
finish
