#!/usr/bin/env bash
# store_room_corrupt.sh - a compressed file that needs more than the room
# above min_free, and is corrupt: kept aside in .failed with the
# decompressor's offset, nothing pruned, never put off for a retry. The
# store is a 48 MiB tmpfs, retention.min_free 8MiB, six 4 MiB captures
# in it (about 7 MiB free above min_free, at most about 32 MiB with every
# capture pruned). The file: a 40 MiB capture, zstd'd, its compressed
# bytes garbled half way (about 20 MiB decompressed; zstd finds it there,
# where gzip's inflate may decode garbage up to the CRC at the end). Once
# the stream passes the room above min_free, the vault decompresses the
# file once to measure it, finds the corruption and fails it there, as
# the import would at the same offset, before retention prunes for it.
# It used to take the file as a stream of unknown length and write it
# until the file system was full ("cannot write …: No space left on
# device"), then put it off for a retry, again and again, never reported.
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

room_store 48m "  min_free: 8MiB"
room_captures 6
"$MKCAP" --size $((40 * MB)) --seed 30 --start 1700000000 -o "$T/src/big.pcap"
zstd -q -1 -c "$T/src/big.pcap" >"$T/src/big.pcap.zst"
size=$(stat -c %s "$T/src/big.pcap.zst")
python3 - "$T/src/big.pcap.zst" $((size / 2)) <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    f.write(bytes((i * 37 + 11) & 0xff for i in range(65536)))
PY
zstd -q -t "$T/src/big.pcap.zst" 2>/dev/null && fail "the garbled zstd file tests sound"

start_daemon
room_import 6
cp "$T/src/big.pcap.zst" "$T/in/"
wait_for "big.pcap.zst kept aside" test -e "$T/in/.failed/big.pcap.zst.error"
grep -q "offset [0-9]*: " "$T/in/.failed/big.pcap.zst.error" ||
	fail "the note names no offset: $(cat "$T/in/.failed/big.pcap.zst.error")"
test -e "$T/in/.failed/big.pcap.zst" || fail "the file is not kept in .failed"
logged "retrying $T/in/big.pcap.zst later" && fail "the corrupt file was put off for a retry"
check "six captures still" 6 "$(captures)"
check "nothing pruned" 0 "$(count_logged "pruned capture")"
stop_daemon
finish
