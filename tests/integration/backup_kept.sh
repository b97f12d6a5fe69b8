#!/bin/bash
# A restored store remembers what its after_import: keep folders had
# imported: autoimport.kept (beside the index, outside the RocksDB
# checkpoint) goes into the backup and back out of it. Without it, a
# daemon on the restored store imported every kept file again: one whose
# capture had been removed (rm, or pruned) before the backup came back as
# a new capture, young again for max_age.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
mkdir -p "$T/in"
for i in 1 2 3; do "$MKCAP" --packets 5 --seed "$i" -o "$T/in/c$i.pcap" >/dev/null; done
ON=$S
write_config() {
	cat >"$T/d.yaml" <<EOC
store: $ON
import:
  - path: $T/in
    settle_time: 0s
    after_import: keep
api:
  listen: ["127.0.0.1:$1"]
scrub:
  interval: 0s
EOC
}
count() { "$CAPVAULT" ls --store "$1" --json | jq length; }
has() { [ "$(count "$1")" = "$2" ]; }
# All three kept files handled by this start of the daemon (its log is
# emptied before each start): skipped as kept, or imported again.
handled() { [ "$(grep -cE "(skipped|duplicate|imported) $T/in/c[123]\.pcap" "$T/d.log")" -ge 3 ]; }

start_daemon
wait_for "the three kept files imported" has "$S" 3
id=$("$CAPVAULT" ls --json | jq -r '.[] | select(.name == "c2.pcap") | .id')
expect_rc 0 "$CAPVAULT" rm "$id"
expect_rc 0 "$CAPVAULT" backup "$T/bk"
stop_daemon
[ -f "$T/bk/autoimport.kept" ] || fail "the backup holds no autoimport.kept"

# Offline backup as well.
expect_rc 0 "$CAPVAULT" backup "$T/bk-off"
[ -f "$T/bk-off/autoimport.kept" ] || fail "the offline backup holds no autoimport.kept"

for b in bk bk-off; do
	expect_rc 0 "$CAPVAULT" restore "$T/$b" --store "$T/r-$b"
	check "$b: restored captures" 2 "$(count "$T/r-$b")"
	ON=$T/r-$b
	: >"$T/d.log"
	start_daemon
	wait_for "$b: the daemon went through the keep folder" handled
	stop_daemon
	check "$b: nothing imported again on the restored store" 2 "$(count "$T/r-$b")"
	"$CAPVAULT" ls --store "$T/r-$b" --json | jq -r '.[].name' | grep -qx c2.pcap &&
		fail "$b: the removed capture came back"
	expect_rc 0 "$CAPVAULT" fsck --store "$T/r-$b"
done
finish
