#!/bin/bash
# log_file: the daemon also appends its log, with UTC timestamps, to the
# configured file, and reopens it on SIGHUP so rotation loses no line.
. "$(dirname "$0")/lib.sh"
: "${CAPVAULTD:?path to capvaultd}"

mkdir -p "$T/in"
cat > "$T/c.yaml" <<EOC
store: $T/store
log_file: $T/capvaultd.log
import:
  - path: $T/in
api:
  listen: []
EOC
"$CAPVAULTD" --config "$T/c.yaml" 2> "$T/stderr" &
pid=$!
wait_log() { # PATTERN FILE
	for _ in $(seq 200); do grep -q -- "$1" "$2" 2>/dev/null && return 0; sleep 0.05; done
	fail "no '$1' in $2"
}
wait_log "started:" "$T/capvaultd.log"
grep -Eq '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z <6>capvaultd: started:' "$T/capvaultd.log" ||
	fail "log file lines carry a UTC timestamp: $(head -1 "$T/capvaultd.log")"
grep -q "started:" "$T/stderr" || fail "standard error still gets the log"

mv "$T/capvaultd.log" "$T/capvaultd.log.1"
kill -HUP "$pid"
wait_log "configuration reloaded" "$T/capvaultd.log"
"$MKCAP" --packets 10 -o "$T/x.pcap" && mv "$T/x.pcap" "$T/in/"
wait_log "imported $T/in/x.pcap" "$T/capvaultd.log"
kill "$pid"
rc=0
wait "$pid" || rc=$?
check "daemon exit code" 0 "$rc"
check "rotated file keeps its lines" 0 "$(grep -c 'imported' "$T/capvaultd.log.1" || true)"
check "new file has the stop" 1 "$(grep -c 'stopped;' "$T/capvaultd.log")"
finish
