#!/bin/bash
# capvault import --move removes a source only while its name still
# holds the file imported. A capture renamed over the name while the
# import read the file before it (a writer's next capture under the same
# name) was removed unimported: lost. Now it stays, and the CLI says so.
# (A file the store links is checked by the store itself; a compressed
# file is copied, so it is the case tried here.)
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/src"
"$MKCAP" --packets 300000 --seed 1 --gzip -o "$T/src/cap.pcap.gz"
"$MKCAP" --packets 10 --seed 2 -o "$T/next.pcap"
next_sha=$(sha256sum <"$T/next.pcap" | cut -c1-64)

"$CAPVAULT" import --move "$T/src/cap.pcap.gz" >"$T/imp.out" 2>"$T/imp.err" &
pid=$!
# The rename lands once the import has the first file open.
opened() { ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$T/src/cap.pcap.gz"; }
for _ in $(seq 400); do opened && break; sleep 0.01; done
mv "$T/next.pcap" "$T/src/cap.pcap.gz"
rc=0
wait "$pid" || rc=$?
check "import exit code" 0 "$rc"
stored=$("$CAPVAULT" ls --json | jq -r '.[].sha256' | grep -c "$next_sha" || true)
on_disk=no
[ -f "$T/src/cap.pcap.gz" ] && [ "$(sha256sum <"$T/src/cap.pcap.gz" | cut -c1-64)" = "$next_sha" ] && on_disk=yes
checks=$((checks + 1))
[ "$stored" = 1 ] || [ "$on_disk" = yes ] ||
	fail "the capture renamed over the source is lost (stored: $stored, on disk: $on_disk); $(cat "$T/imp.err")"
if [ "$on_disk" = yes ]; then
	grep -q "its name holds another file by now, left alone" "$T/imp.err" ||
		fail "the CLI does not say why it left the file: $(cat "$T/imp.err")"
fi
finish
