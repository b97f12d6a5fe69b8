#!/usr/bin/env bash
# store_room_upload.sh - an upload's announced length asks retention for
# no room. The store is a 48 MiB tmpfs, retention.min_free 8MiB, six
# 4 MiB captures in it (about 7 MiB free above min_free).
# 1. A raw POST /v1/captures announcing 24 MiB (Content-Length) that
#    sends a pcap header and stops: nothing is pruned for it (it used to
#    ask retention for its 24 MiB at once: one 24-byte request pruned
#    five captures; a client that went away was never coming back for it).
# 2. A 10 MiB upload, more than the room above min_free, less than the
#    free space: stored (201), retention pruning for min_free as its
#    bytes arrive, rather than 507 and a room made for a retry that an
#    upload client may never make.
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

room_store 48m "  min_free: 8MiB"
room_captures 6
"$MKCAP" --packets 1 -o "$T/src/h.pcap"
"$MKCAP" --size $((10 * MB)) --seed 10 --start 1700000000 -o "$T/src/u.pcap"

start_daemon
room_import 6
check "six captures" 6 "$(captures)"
UP=$("$CAPVAULT" token add up --scopes upload 2>/dev/null)

# 1. 24 MiB announced, 24 bytes sent
python3 - "${U##*:}" "$UP" "$T/src/h.pcap" <<'PY' || fail "the announcing request"
import socket, sys
port, tok, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /v1/captures?name=x.pcap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          tok.encode() + b"\r\nContent-Length: %d\r\n\r\n" % (24 * 1024 * 1024) +
          open(path, "rb").read()[:24])
s.settimeout(2)
try:
    s.recv(4096)
except OSError:
    pass
s.close()
PY
sleep 3
check "announced upload: six captures still" 6 "$(captures)"
check "announced upload: nothing pruned" 0 "$(count_logged "pruned capture")"

# 2. more than the room above min_free, less than the free space
code=$(curl -sS -o "$T/up.json" -w '%{http_code}' -H "Authorization: Bearer $UP" \
	--data-binary "@$T/src/u.pcap" "$U/v1/captures?name=u.pcap")
check "10 MiB upload: HTTP status" 201 "$code"
[ "$code" = 201 ] || cat "$T/up.json" >&2
stop_daemon
finish
