#!/bin/bash
# capvault import --move leaves a file some program still writes: it was
# imported as far as it was written and removed, and what the writer
# wrote after (the rest of tcpdump's current file of a rotation, when a
# cron job moves the folder in) went into a removed file: lost. Now the
# file stays, the CLI says why, and once the writer is done it is
# imported whole and removed.
. "$(dirname "$0")/lib.sh"

"$MKCAP" --packets 40 --seed 5 -o "$T/src.pcap"
# The writer: the header and 20 packets, then the rest once told to.
python3 - "$T" <<'PY' &
import os, struct, sys, time
T = sys.argv[1]
d = open(T + "/src.pcap", "rb").read()
recs, off = [], 24
while off < len(d):
    cl = struct.unpack("<I", d[off + 8:off + 12])[0]
    recs.append(d[off:off + 16 + cl])
    off += 16 + cl
f = open(T + "/live.pcap", "wb", buffering=0)
f.write(d[:24] + b"".join(recs[:20]))
open(T + "/half", "w").close()
while not os.path.exists(T + "/go"):
    time.sleep(0.02)
f.write(b"".join(recs[20:]))
f.close()
PY
writer=$!
for _ in $(seq 500); do [ -e "$T/half" ] && break; sleep 0.02; done
expect_rc 0 "$CAPVAULT" import --move "$T/live.pcap"
grep -q "still open for writing; not removed" "$T/err" ||
	fail "the CLI does not say why it left the file: $(cat "$T/err")"
check "the file being written is still there" yes "$([ -f "$T/live.pcap" ] && echo yes)"
touch "$T/go"
wait "$writer"
check "the writer's file is whole" 0 "$(cmp -s "$T/live.pcap" "$T/src.pcap"; echo $?)"
expect_rc 0 "$CAPVAULT" import --move "$T/live.pcap"
check "removed once written" no "$([ -e "$T/live.pcap" ] && echo yes || echo no)"
expect_rc 0 "$CAPVAULT" ls --json
check "the whole capture is stored" 1 \
	"$(jq --arg s "$(sha256sum <"$T/src.pcap" | cut -c1-64)" '[.[] | select(.sha256 == $s)] | length' "$T/out")"
finish
