#!/usr/bin/env bash
# store_room_tar.sh - a tar member is measured by its header's size before
# its first byte, as a file or an upload of announced length is. The
# store is a 48 MiB tmpfs, retention.min_free 8MiB, six 4 MiB captures in
# it: the most it could ever take is about 40 MiB.
# 1. `capvault import` (through the daemon) of a tar holding a 44 MiB
#    capture: it fails before its first byte ("even with every local
#    capture pruned"), and nothing is pruned for it. It used to stream as
#    a member of unknown length until the file system was full ("cannot
#    write …: No space left on device"), retention free to prune for
#    min_free meanwhile.
# 2. The same tar beside a small member: the small one is imported.
# 3. A tar cut in the middle of a member whose length was announced to
#    the daemon: that member fails, saying so, and the daemon lives.
# 4. Offline (no daemon, no min_free), the member fails before a byte is
#    written: "the capture needs 44MiB, the store has … free".
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

room_store 48m "  min_free: 8MiB"
room_captures 6
mkdir -p "$T/tar"
"$MKCAP" --size $((44 * MB)) --seed 20 --start 1700000000 -o "$T/tar/big.pcap"
"$MKCAP" --packets 5 --seed 21 --start 1700000500 -o "$T/tar/small.pcap"
tar -C "$T/tar" -cf "$T/src/big.tar" big.pcap
tar -C "$T/tar" -cf "$T/src/both.tar" big.pcap small.pcap
"$MKCAP" --size $((2 * MB)) --seed 22 --start 1700001000 -o "$T/tar/mid.pcap"
tar -C "$T/tar" -cf "$T/src/cut.tar" mid.pcap
head -c $((1 * MB)) "$T/src/cut.tar" >"$T/src/cut1.tar"

start_daemon
room_import 6
check "six captures" 6 "$(captures)"

# 1. through the daemon
rc=0
"$CAPVAULT" import "$T/src/big.tar" >"$T/i1.out" 2>"$T/i1.err" || rc=$?
check "44 MiB member: import fails" 1 "$rc"
grep -q "every local capture pruned" "$T/i1.out" "$T/i1.err" ||
	fail "44 MiB member: not refused as never fitting: $(cat "$T/i1.out" "$T/i1.err")"
sleep 2
check "44 MiB member: six captures still" 6 "$(captures)"
check "44 MiB member: nothing pruned" 0 "$(count_logged "pruned capture")"

# 2. beside a small member
rc=0
"$CAPVAULT" import "$T/src/both.tar" >"$T/i2.out" 2>"$T/i2.err" || rc=$?
check "both members: import fails (one member)" 1 "$rc"
check "both members: the small one stored" 7 "$(captures)"
check "both members: nothing pruned" 0 "$(count_logged "pruned capture")"

# 3. cut short
rc=0
"$CAPVAULT" import "$T/src/cut1.tar" >"$T/i4.out" 2>"$T/i4.err" || rc=$?
check "cut member: import fails" 1 "$rc"
grep -q "^FAILED .*cut1.tar!mid.pcap: .*[Tt]runcated" "$T/i4.out" ||
	fail "cut member: $(cat "$T/i4.out" "$T/i4.err")"
check "cut member: nothing stored" 7 "$(captures)"
kill -0 "$DPID" || fail "the daemon died"
stop_daemon

# 4. offline
before=$(du -sk "$S" | cut -f1)
rc=0
"$CAPVAULT" import "$T/src/big.tar" >"$T/i3.out" 2>"$T/i3.err" || rc=$?
check "offline: import fails" 1 "$rc"
grep -q "the capture needs 44MiB" "$T/i3.out" "$T/i3.err" ||
	fail "offline: not refused as never fitting: $(cat "$T/i3.out" "$T/i3.err")"
check "offline: seven captures still" 7 "$(captures)"
after=$(du -sk "$S" | cut -f1)
[ $((after - before)) -lt 4096 ] || fail "offline: the store grew by $((after - before)) KiB"
finish
