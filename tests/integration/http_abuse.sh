#!/bin/bash
# HTTP abuse against the real capvaultd (DESIGN.md invariant 6): missing
# and garbage tokens, path traversal in ids and names, an oversized
# header, slowloris clients (one silent for longer than api.timeout, one
# trickling header lines faster than that: cut off after
# api.header_timeout while others are served), more connections than
# api.max_connections and api.max_connections_per_ip (another address
# is still served), malformed chunked and multipart bodies, an
# upload cut off halfway (no record, no object, no tmp file), and capture
# names with newlines, quotes, unicode and 4 KiB that round-trip through
# JSON and Content-Disposition, and query arguments holding %00 or given
# twice (refused, not cut short or half read). The daemon answers health after each.
. "$(dirname "$0")/lib.sh"
: "${CAPVAULTD:?path to the capvaultd binary}"

DPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; rm -rf "$T"' EXIT
STORE=$T/store
SOCK=$STORE/capvault.sock
mkdir -p "$T/in"
TOKEN=$("$CAPVAULT" token add abuse --store "$STORE" --scopes read,upload,delete 2>/dev/null)

start_daemon() {
	local try i
	for try in 1 2 3 4 5 6; do
		PORT=$((20000 + RANDOM % 20000))
		cat >"$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$PORT"]
  max_upload_size: 1MiB
  max_connections: 4
  max_connections_per_ip: 2
  timeout: 2s
  header_timeout: 3s
YAML
		: >"$T/d.log"
		"$CAPVAULTD" --config "$T/d.yaml" 2>>"$T/d.log" &
		DPID=$!
		for i in $(seq 100); do
			grep -q started: "$T/d.log" && break
			kill -0 "$DPID" 2>/dev/null || break
			sleep 0.05
		done
		kill -0 "$DPID" 2>/dev/null && { U="http://127.0.0.1:$PORT"; return 0; }
		wait "$DPID" 2>/dev/null || true
		DPID=
	done
	fail "daemon did not start: $(cat "$T/d.log")"
	finish
	exit 1
}

# code ARGS...: the HTTP status curl gets (000 when cut off).
code() { curl -s -o "$T/body" -w '%{http_code}' --max-time 10 "$@" || true; }
auth=(-H "Authorization: Bearer $TOKEN")
alive() { check "daemon answers after $1" 200 "$(code "$U/v1/health")"; }
raw() { python3 - "$PORT" "$@"; }

start_daemon
"$MKCAP" --packets 50 --seed 1 -o "$T/a.pcap"
"$MKCAP" --packets 2000 --size 400000 --seed 2 -o "$T/b.pcap"

# --- tokens
check "no token" 401 "$(code "$U/v1/captures")"
check "garbage token" 401 "$(code -H "Authorization: Bearer $(head -c 300 /dev/urandom | base64 -w0)" "$U/v1/captures")"
check "wrong scheme" 401 "$(code -H "Authorization: Basic YTpi" "$U/v1/captures")"
check "token with a NUL" 401 "$(code -H "Authorization: Bearer ${TOKEN:0:10}%00" "$U/v1/captures")"

# --- path traversal in ids and names: never 2xx, never a file outside
for path in "/v1/captures/../../etc/passwd" "/v1/captures/..%2f..%2fetc%2fpasswd" \
	"/v1/captures/%2e%2e/file" "/v1/captures/1%00/file" "/v1/captures/-1" \
	"/v1/captures/99999999999999999999999" "/v1/captures/1/../../../etc/passwd" \
	"/api/v1/..%2f..%2f/info/1"; do
	c=$(code --path-as-is "${auth[@]}" "$U$path")
	checks=$((checks + 1))
	case $c in 400 | 401 | 404 | 405) ;; *) fail "GET $path: $c $(head -c 200 "$T/body")" ;; esac
	grep -q "root:" "$T/body" && fail "GET $path returned /etc/passwd"
done
c=$(code "${auth[@]}" --data-binary @"$T/a.pcap" "$U/v1/captures?name=..%2F..%2F..%2Fescaped.pcap")
check "upload named ../../../escaped.pcap" 201 "$c"
check "no file outside the store" "" "$(find / /tmp "$(dirname "$T")" -maxdepth 3 -name escaped.pcap 2>/dev/null | head -1)"
ID=$(jq -r .id "$T/body")
alive "traversal"

# --- an oversized header
c=$(code -H "X-Big: $(head -c 70000 /dev/zero | tr '\0' a)" "${auth[@]}" "$U/v1/captures")
checks=$((checks + 1))
case $c in 400 | 413 | 431 | 000) ;; *) fail "70 KB header: $c" ;; esac
alive "an oversized header"

# --- slowloris: a client that sends its headers slower than api.timeout
# (2 s) is cut off.
raw <<'PY' >"$T/slow" || true
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
start = time.time()
try:
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    for i in range(6):
        time.sleep(3)
        s.sendall(b"X-Slow-%d: y\r\n" % i)
    print("never cut off")
except (BrokenPipeError, ConnectionResetError, socket.timeout):
    print("cut off after %.0f s" % (time.time() - start))
PY
grep -q "cut off after [1-9] s" "$T/slow" || fail "slowloris: $(cat "$T/slow")"
alive "slowloris"

# --- slowloris within the idle timeout: a header line every second never
# trips api.timeout (2 s); api.header_timeout (3 s) cuts it off, while a
# normal client is served meanwhile.
raw <<'PY' >"$T/trickle" &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(1)
start = time.time()
s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
try:
    for i in range(12):
        try:
            if s.recv(100) == b"":
                raise ConnectionResetError
        except socket.timeout:
            pass
        s.sendall(b"X-Slow-%d: y\r\n" % i)
    print("never cut off")
except (BrokenPipeError, ConnectionResetError):
    print("cut off after %.1f s" % (time.time() - start))
PY
trickle=$!
sleep 1
check "served during a trickling slowloris" 200 "$(code "$U/v1/health")"
wait "$trickle" || true
checks=$((checks + 1))
grep -qE "cut off after [3-5]\.[0-9] s" "$T/trickle" || fail "trickling slowloris: $(cat "$T/trickle")"
alive "a trickling slowloris"

# --- more connections than max_connections_per_ip (2) from one address:
# another address (127.0.0.2, same loopback) is still served.
raw <<'PY' >"$T/hog" &
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) for i in range(4)]
time.sleep(2)
PY
hog=$!
sleep 0.5
check "another address served while one holds its limit" 200 \
	"$(code --interface 127.0.0.2 "$U/v1/health")"
wait "$hog" || true
alive "one address at its limit"

# --- more connections than max_connections (4): 20 idle ones, then health
raw <<'PY' >"$T/flood" &
import socket, sys, time
socks = []
for i in range(20):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        pass
time.sleep(4)
print(len(socks))
PY
flood=$!
sleep 0.5
c=$(code --max-time 8 "$U/v1/health")
wait "$flood" || true
checks=$((checks + 1))
case $c in 200 | 000 | 503) ;; *) fail "health during a flood: $c" ;; esac
alive "a connection flood"

# --- malformed chunked and multipart bodies
raw "${TOKEN}" <<'PY' >"$T/chunked"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /v1/captures HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + sys.argv[2].encode() +
          b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
try:
    print(s.recv(200).split(b"\r\n")[0].decode() or "closed")
except OSError:
    print("closed")
PY
grep -qE "HTTP/1.1 4[0-9][0-9]|closed" "$T/chunked" || fail "bad chunk size: $(cat "$T/chunked")"
printf -- '--B\r\nContent-Disposition: form-data; name="file"; filename="x.pcap"\r\n' >"$T/form1"
printf -- '--B\r\nContent-Disposition: form-data; name="file"\r\n\r\n%s\r\n--B--\r\n' "garbage" >"$T/form2"
printf -- '--B\r\n\r\n\r\n--B--\r\n' >"$T/form3"
for f in form1 form2 form3; do
	c=$(code "${auth[@]}" -H "Content-Type: multipart/form-data; boundary=B" --data-binary @"$T/$f" "$U/v1/captures")
	checks=$((checks + 1))
	case $c in 400 | 415 | 422) ;; *) fail "malformed multipart $f: $c $(head -c 200 "$T/body")" ;; esac
done
c=$(code "${auth[@]}" -H "Content-Type: multipart/form-data" --data-binary @"$T/form2" "$U/v1/captures")
checks=$((checks + 1))
case $c in 400 | 415) ;; *) fail "multipart without a boundary: $c" ;; esac
alive "malformed bodies"

# --- an upload cut off halfway: no record, no object, no tmp file
before=$(code "${auth[@]}" "$U/v1/captures?limit=1000" >/dev/null; jq '.captures | length' "$T/body")
objs=$(find "$STORE/objects" -type f | wc -l)
raw "${TOKEN}" "$T/b.pcap" <<'PY'
import socket, sys
data = open(sys.argv[3], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /v1/captures?name=cut.pcap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          sys.argv[2].encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(data))
s.sendall(data[: len(data) // 2])
s.close()
PY
for i in $(seq 50); do [ -z "$(ls -A "$STORE/tmp")" ] && break; sleep 0.1; done
check "tmp/ empty after a cut upload" "" "$(ls -A "$STORE/tmp")"
code "${auth[@]}" "$U/v1/captures?limit=1000" >/dev/null
check "no record from a cut upload" "$before" "$(jq '.captures | length' "$T/body")"
check "no object from a cut upload" "$objs" "$(find "$STORE/objects" -type f | wc -l)"
alive "a cut upload"

# --- names: newline, quotes, unicode, 4 KiB
long=$(head -c 4096 /dev/zero | tr '\0' n)
i=10
for name in $'two\nlines.pcap' 'quo"te\s.pcap' 'ünï cødé ✓.pcap' "$long"; do
	i=$((i + 1))
	"$MKCAP" --packets 20 --seed "$i" -o "$T/n.pcap"
	enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$name")
	c=$(code "${auth[@]}" --data-binary @"$T/n.pcap" "$U/v1/captures?name=$enc")
	checks=$((checks + 1))
	if [ "$c" = 400 ]; then
		[ "$(jq -r .status "$T/body")" = 400 ] || fail "name refused without a JSON error: $(head -c 200 "$T/body")"
		continue
	fi
	[ "$c" = 201 ] || { fail "upload named ${name:0:40}: $c"; continue; }
	id=$(jq -r .id "$T/body")
	code "${auth[@]}" "$U/v1/captures/$id" >/dev/null
	# JSON shows the escaped form (common/textesc.h): these names are UTF-8,
	# so only a backslash is escaped, doubled.
	check "name round-trips through JSON (${#name} chars)" "$name" \
		"$(jq -r .name "$T/body" | sed 's/\\\\/\\/g')"
	curl -s -D "$T/h" -o "$T/dl" "${auth[@]}" "$U/v1/captures/$id/file"
	cmp -s "$T/dl" "$T/n.pcap" || fail "download of ${name:0:40} differs"
	cd_line=$(grep -ci '^Content-Disposition:' "$T/h" || true)
	check "one Content-Disposition line" 1 "$cd_line"
	grep -qi '^X-' "$T/h" && fail "a name injected a header: $(cat "$T/h")"
done
alive "odd names"

# A %00 in a query argument: every lookup would cut the value at its NUL
# ("tcp%00udp" run as the filter "tcp", "a%00b" stored as the name "a").
# Refused whole, 400 in the API's shape; nothing is stored.
check "a filter holding %00: 400" 400 \
	"$(code "${auth[@]}" "$U/v1/packets?count=1&filter=tcp%00udp")"
check "its error code" bad_parameter "$(jq -r .error "$T/body")"
check "the plain filter still answers" 200 "$(code "${auth[@]}" "$U/v1/packets?count=1&filter=tcp")"
before=$(curl -s "${auth[@]}" "$U/v1/captures?limit=1000" | jq '.captures | length')
"$MKCAP" --packets 3 --seed 77 -o "$T/nul.pcap"
check "an upload named with %00: 400" 400 \
	"$(code "${auth[@]}" --data-binary @"$T/nul.pcap" "$U/v1/captures?name=a%00b.pcap")"
check "the upload stored nothing" "$before" \
	"$(curl -s "${auth[@]}" "$U/v1/captures?limit=1000" | jq '.captures | length')"
check "a %00 in an argument's name: 400" 400 "$(code "${auth[@]}" "$U/v1/captures?na%00me=x")"
alive "arguments holding %00"

# A parameter given twice: a lookup sees only the first, so
# captures=1&captures=2 queried capture 1 alone and tags=a&tags=b matched
# tag a alone, answering 200. Refused; a comma-separated list answers,
# and the listing's tag (all of them) may still come several times.
check "captures given twice: 400" 400 \
	"$(code "${auth[@]}" "$U/v1/packets?count=1&captures=1&captures=2")"
check "its error code" bad_parameter "$(jq -r .error "$T/body")"
check "captures as a list: 200" 200 "$(code "${auth[@]}" "$U/v1/packets?count=1&captures=1,2")"
check "tags given twice: 400" 400 "$(code "${auth[@]}" "$U/v1/packets?count=1&tags=a&tags=b")"
check "filter given twice: 400" 400 \
	"$(code "${auth[@]}" "$U/v1/packets?count=1&filter=tcp&filter=udp")"
check "decode/list capture given twice: 400" 400 \
	"$(code "${auth[@]}" "$U/v1/decode/list?capture=1&capture=2")"
check "listing limit given twice: 400" 400 "$(code "${auth[@]}" "$U/v1/captures?limit=1&limit=2")"
check "listing tag given twice: 200" 200 "$(code "${auth[@]}" "$U/v1/captures?tag=a&tag=b")"
alive "parameters given twice"

kill -TERM "$DPID"
rc=0
wait "$DPID" || rc=$?
DPID=
check "daemon exit code" 0 "$rc"
if grep -qE "runtime error|Sanitizer" "$T/d.log"; then
	fail "sanitizer report: $(grep -A5 -E "runtime error|Sanitizer" "$T/d.log" | head -20)"
fi
expect_rc 0 "$CAPVAULT" fsck --store "$STORE"
finish
