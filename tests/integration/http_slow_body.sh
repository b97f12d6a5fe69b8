#!/bin/bash
# Slow request bodies (issue 15.11): uploads trickling a byte at a time
# from two addresses must neither hold their connections for ever nor
# starve a third address. api.body_timeout/api.body_min_rate cut the slow
# bodies; the share of api.max_connections kept for addresses holding
# none lets the third in meanwhile. The unix socket is exempt. Outcomes
# only, with generous bounds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE=$T/store
mkdir -p "$T/in"
TOKEN=$("$CAPVAULT" token add slow --store "$STORE" --scopes read,upload 2>/dev/null)
write_config() {
	cat >"$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$1"]
  max_connections: 8
  max_connections_per_ip: 8
  timeout: 60s
  body_timeout: 2s
  body_min_rate: 1KiB
YAML
}
start_daemon
"$MKCAP" --packets 50 --seed 3 -o "$T/a.pcap"

# 24 uploads from 127.0.0.2 and 127.0.0.3, each sending a byte every
# 0.5 s for up to 40 s; prints how many were still open at the end.
python3 - "$PORT" "$TOKEN" "$T/slow.ready" >"$T/slow" 2>&1 <<'PY' &
import select, socket, sys, time
port, token = int(sys.argv[1]), sys.argv[2].encode()
head = (b"POST /v1/captures?name=slow.pcap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
        token + b"\r\nContent-Length: 1000000\r\n\r\n")
socks = []
for i in range(24):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                     source_address=("127.0.0.%d" % (2 + i % 2), 0))
        s.sendall(head)
        socks.append(s)
    except OSError:
        pass
open(sys.argv[3], "w").close()
end = time.time() + 40
while socks and time.time() < end:
    for s in list(socks):
        try:
            r, _, _ = select.select([s], [], [], 0)
            if r and s.recv(4096) in (b"",):
                raise ConnectionResetError
            s.sendall(b"\0")
        except OSError:
            socks.remove(s)
            s.close()
    time.sleep(0.5)
print("open %d" % len(socks))
PY
slow=$!
# The same trickle on the unix socket (trusted, maybe a slow local
# source): not cut, three periods of body_timeout later.
python3 - "$STORE/capvault.sock" >"$T/local" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"POST /v1/captures?name=local.pcap HTTP/1.1\r\nHost: x\r\n"
          b"Content-Length: 1000000\r\n\r\n")
try:
    for i in range(12):
        time.sleep(0.5)
        s.sendall(b"\0")
    print("open")
except OSError as e:
    print("cut: %s" % e)
PY
lpid=$!
wait_for "the slow uploads" test -e "$T/slow.ready"
# While the slow ones trickle: other addresses are served, health and an upload.
check "health from another address during slow uploads" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$U/v1/health")"
check "upload from another address during slow uploads" 201 \
	"$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --interface 127.0.0.4 \
		-H "Authorization: Bearer $TOKEN" --data-binary @"$T/a.pcap" "$U/v1/captures?name=a.pcap")"
wait "$slow" || true
wait "$lpid" || true
check "a slow body on the unix socket is not cut" open "$(cat "$T/local")"
check "slow uploads all cut off" "open 0" "$(cat "$T/slow")"
checks=$((checks + 1))
logged "under 1024 bytes/s: connection closed" || fail "no slow body was cut: $(tail -5 "$T/d.log")"
check "daemon answers after" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$U/v1/health")"
check "no tmp file left" "" "$(ls -A "$STORE/tmp")"
stop_daemon
finish
