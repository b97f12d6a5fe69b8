#!/bin/bash
# The claim folder swapped after the daemon's last check of it: a writer
# of the import folder renames .capvault-claim aside and puts a symlink to
# another folder in its place just before after_import: delete removes
# the file imported (the fault-injection shim holds that unlink 3 s and
# marks when it starts). The daemon holds the claim's folder open from
# the claim on and removes the file through that descriptor: the file
# imported goes from where the writer moved it, and the other folder's
# file of that name stays. (watch_claim_swap.sh swaps earlier, before
# the check.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
: "${FAULTINJECT:?path to the faultinject shim}"

mkdir -p "$T/in" "$T/victim"
echo precious > "$T/victim/cap.pcap"
write_config() { write_inbox_config "$CAPVAULT_STORE" "$1"; }
"$MKCAP" --packets 200 --seed 7 -o "$T/cap.pcap"
start_daemon LD_PRELOAD="$FAULTINJECT" FAULT_UNLINK_DELAY_NAME=cap.pcap \
	FAULT_UNLINK_DELAY_MS=3000 FAULT_DELAY_MARK="$T/delayed" \
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
mv "$T/cap.pcap" "$T/in/cap.pcap"
wait_for "the removal held" test -e "$T/delayed"
mv "$T/in/.capvault-claim" "$T/in/.aside"
ln -s "$T/victim" "$T/in/.capvault-claim"
wait_for "the file imported removed" test ! -e "$T/in/.aside/cap.pcap"
check "the other folder's file stays" precious "$(cat "$T/victim/cap.pcap")"
stop_daemon
expect_rc 0 "$CAPVAULT" ls --json
check "the capture is stored" 1 "$(jq length "$T/out")"
finish
