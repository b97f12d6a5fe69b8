#!/bin/bash
# The API's unix socket is never taken from a live daemon (issue 16.7): a
# second capvaultd given the same unix_socket refuses to start and leaves
# the first one's socket alone; a socket left by a daemon that died is
# replaced; a path that is not a socket is refused; and a daemon that
# stops removes only the socket it made.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

SOCK=$T/shared.sock
mkdir -p "$T/in1" "$T/in2"
config() { # config N: store N, import folder N, the shared socket, no TCP
	cat >"$T/d$1.yaml" <<YAML
store: $T/store$1
jobs: 1
import:
  - path: $T/in$1
api:
  listen: []
  unix_socket: $SOCK
YAML
}
config 1
config 2
store_of() { # the store of the daemon answering on $SOCK
	curl -s --max-time 10 --unix-socket "$SOCK" http://x/v1/status | jq -r .store.path
}

cp "$T/d1.yaml" "$T/d.yaml"
start_daemon
PID1=$DPID
check "first daemon answers on the socket" "$T/store1" "$(store_of)"

# A second daemon on the same socket path: refused, exit code non-zero.
rc=0
timeout 30 "$CAPVAULTD" --config "$T/d2.yaml" 2>"$T/d2.log" || rc=$?
checks=$((checks + 1))
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "second daemon on a live socket: exit $rc"
grep -q "shared.sock: another process (capvaultd?) is serving on this socket" "$T/d2.log" ||
	fail "second daemon's error: $(cat "$T/d2.log")"
check "the first daemon keeps its socket" "$T/store1" "$(store_of)"

# The first one dies: its socket file stays, and is replaced by the next.
kill_daemon
check "a dead daemon's socket file stays" yes "$([ -S "$SOCK" ] && echo yes)"
cp "$T/d2.yaml" "$T/d.yaml"
start_daemon
check "a stale socket is replaced" "$T/store2" "$(store_of)"

# A daemon that stops removes only its own socket: here another one
# replaced it meanwhile.
python3 - "$SOCK" "$T/other.ready" <<'PY' &
import os, socket, sys, time
os.unlink(sys.argv[1])
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
open(sys.argv[2], "w").close()
time.sleep(3)
PY
other=$!
wait_for "the other socket" test -e "$T/other.ready"
stop_daemon
check "a socket that is not ours is left at stop" yes "$([ -S "$SOCK" ] && echo yes)"
wait "$other" || true
rm -f "$SOCK"

# A path that is not a socket is never replaced.
echo keep >"$SOCK"
rc=0
timeout 30 "$CAPVAULTD" --config "$T/d1.yaml" 2>"$T/d3.log" || rc=$?
checks=$((checks + 1))
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "daemon on a regular file's path: exit $rc"
grep -q "shared.sock: exists and is not a socket" "$T/d3.log" || fail "error: $(cat "$T/d3.log")"
check "the file is untouched" keep "$(cat "$SOCK")"
finish
