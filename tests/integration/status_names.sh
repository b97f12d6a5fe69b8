#!/bin/bash
# capvault status shows the paths of recent failures (and retrying files)
# as ls shows names: one line each, no control character. A malformed
# file named "a<LF>FORGED<ESC>[31m.pcap" printed its newline and escape
# sequence to the terminal raw.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

IN=$T/in
mkdir -p "$IN"
write_config() { write_inbox_config "$T/store" "$1"; }
start_daemon
export CAPVAULT_SOCKET=$T/store/capvault.sock
name=$'a\nFORGED\e[31m\xff.pcap'
printf 'not a capture' >"$T/stage"
mv "$T/stage" "$IN/$name"
wait_for "the malformed file failed" test -f "$IN/.failed/$name.error"
expect_rc 0 "$CAPVAULT" status
sed -n '/^recent failures:/,/^[a-z]/p' "$T/out" > "$T/failures"
check "one line for the failure" 1 "$(grep -c '^  ' "$T/failures")"
checks=$((checks + 1))
LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f\x80-\xff]' "$T/out" &&
	fail "capvault status printed a control or non-UTF-8 byte: $(cat -A "$T/out")"
grep -qF 'a\x0aFORGED\x1b[31m\xff.pcap' "$T/failures" ||
	fail "the name is not shown escaped: $(cat "$T/failures")"
stop_daemon
finish
