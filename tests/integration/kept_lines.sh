#!/bin/bash
# <store>/autoimport.kept (after_import: keep) is read in lines of at most
# 255 bytes (issue 15.12's siblings): the tail of a longer line must not
# be taken for a record. Here the tail of a 300-byte junk line names the
# dropped file exactly; the file must still be imported.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
    after_import: keep
api:
  listen: ["127.0.0.1:$1"]
YAML
}
mkdir -p "$T/in"
"$CAPVAULT" ls --store "$STORE" >/dev/null # creates the store
"$MKCAP" --packets 30 --seed 21 -o "$T/in/kept.pcap"
read -r dev ino size mtime < <(stat -c '%d %i %s %.9Y' "$T/in/kept.pcap")
junk=$(printf 'j%.0s' $(seq 1 255))
printf '%s%s %s %s %s\n' "$junk" "$dev" "$ino" "$size" "${mtime/./}" > "$STORE/autoimport.kept"
start_daemon
wait_for "the dropped file imported" logged "kept.pcap"
expect_rc 0 "$CAPVAULT" ls --json
check "captures in the store" 1 "$(jq length "$T/out")"
stop_daemon
finish
