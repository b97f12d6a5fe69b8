#!/bin/bash
# capvault query as tcpdump users type it (issue #17): options after the
# filter, -c N, -n and tcpdump's print options, packets printed by tcpdump
# itself when there is no -w, -w - for a pipe, -w FILE kept whole or not
# at all, times as people write them, an answer of several link types
# named, and tag's options after its operands.
. "$(dirname "$0")/lib.sh"
command -v tcpdump >/dev/null || { echo "no tcpdump"; exit 77; }

"$MKCAP" --packets 60 --seed 4 -o "$T/a.pcap"
"$MKCAP" --packets 20 --seed 5 --linktype 101 -o "$T/raw.pcap"
expect_rc 0 "$CAPVAULT" import "$T/a.pcap" "$T/raw.pcap"
A=1

# Printed by tcpdump -nn, the same lines tcpdump prints from the file.
"$CAPVAULT" query --capture $A tcp -c 5 > "$T/printed" 2>/dev/null
tcpdump -r "$T/a.pcap" -nn -c 5 tcp > "$T/want" 2>/dev/null
check "printed like tcpdump -nn" "$(cat "$T/want")" "$(cat "$T/printed")"
check "five lines" 5 "$(wc -l < "$T/printed")"
"$CAPVAULT" query -n -c 2 --capture $A -v -e tcp > "$T/printed" 2>/dev/null
tcpdump -r "$T/a.pcap" -nn -c 2 -v -e tcp > "$T/want" 2>/dev/null
check "print options passed on" "$(cat "$T/want")" "$(cat "$T/printed")"
# -t is tcpdump's (no timestamps): it takes no argument, wherever it comes.
"$CAPVAULT" query --capture $A tcp -c 3 -t > "$T/printed" 2>/dev/null || true
tcpdump -r "$T/a.pcap" -nn -c 3 -t tcp > "$T/want" 2>/dev/null
check "-t after the filter" "$(cat "$T/want")" "$(cat "$T/printed")"
"$CAPVAULT" query -t -c 3 --capture $A tcp > "$T/printed" 2>/dev/null || true
check "-t before the filter" "$(cat "$T/want")" "$(cat "$T/printed")"
# --tag selects captures (it was taken for -t and ignored).
"$CAPVAULT" tag $A +only-a > /dev/null
check "--tag selects" "$(tcpdump -r "$T/a.pcap" --count udp 2>/dev/null | cut -d' ' -f1)" \
	"$("$CAPVAULT" query --count --tag only-a udp)"
check "--tag of no capture" 0 "$("$CAPVAULT" query --count --tag no-such-tag)"
"$CAPVAULT" tag $A -only-a > /dev/null
# -l (line-buffered) is tcpdump's too; -F FILE reads the filter, with
# tcpdump's # comments; -r is refused with a hint.
"$CAPVAULT" query -l -c 3 --capture $A tcp > "$T/printed" 2>/dev/null || true
tcpdump -r "$T/a.pcap" -nn -c 3 -l tcp > "$T/want" 2>/dev/null
check "-l is a print option" "$(cat "$T/want")" "$(cat "$T/printed")"
printf 'udp # not tcp\n  or icmp\n' > "$T/filter"
check "-F FILE" "$(tcpdump -r "$T/a.pcap" --count 'udp or icmp' 2>/dev/null | cut -d' ' -f1)" \
	"$("$CAPVAULT" query --count --capture $A -F "$T/filter")"
expect_rc 2 "$CAPVAULT" query -F "$T/filter" tcp
grep -q "and a filter expression: give one of them" "$T/err" || fail "-F with a filter: $(cat "$T/err")"
expect_rc 2 "$CAPVAULT" query -r "$T/a.pcap"
grep -q "capvault query reads the vault, not a file" "$T/err" || fail "-r: $(cat "$T/err")"
check "--limit still a limit" 2 "$("$CAPVAULT" query --capture $A --limit 2 -w - | tcpdump -r - 2>/dev/null | wc -l)"
"$CAPVAULT" query --capture $A | head -1 > "$T/one"
check "a printer that stops early ends the query: exit" 0 "${PIPESTATUS[0]}"

# Options after the filter; -c N at most N packets; -w - to a pipe.
expect_rc 0 "$CAPVAULT" query 'tcp or udp' --capture $A -w "$T/after.pcap" -c 7
check "-c 7 after the filter" 7 "$(tcpdump -r "$T/after.pcap" 2>/dev/null | wc -l)"
"$CAPVAULT" query --capture $A udp -w - > "$T/pipe.pcap"
check "-w - writes pcap" "$(tcpdump -r "$T/a.pcap" --count udp 2>/dev/null)" \
	"$(tcpdump -r "$T/pipe.pcap" --count 2>/dev/null)"
expect_rc 2 "$CAPVAULT" query -c -1 tcp

# -w FILE: a failed query leaves the file that was there.
echo precious > "$T/keep.pcap"
expect_rc 2 "$CAPVAULT" query 'tcp port ((' -w "$T/keep.pcap"
check "failed query keeps -w's file" precious "$(cat "$T/keep.pcap")"
check "no temporary file left" "" "$(ls "$T" | grep capvault- || true)"

# -w FILE that is not a regular file is written where it is, never
# renamed over: -w /dev/null replaced the device node with a file.
udp_count=$(tcpdump -r "$T/a.pcap" --count udp 2>/dev/null)
mkfifo "$T/fifo"
timeout 20 cat "$T/fifo" > "$T/from_fifo" &
reader=$!
expect_rc 0 "$CAPVAULT" query --capture $A udp -w "$T/fifo"
wait "$reader" || true
[ -p "$T/fifo" ] || fail "-w FIFO: the FIFO was replaced"
check "-w FIFO: the reader got the packets" "$udp_count" \
	"$(tcpdump -r "$T/from_fifo" --count 2>/dev/null)"
echo old > "$T/real.pcap"
chmod 0600 "$T/real.pcap"
ln -s real.pcap "$T/link.pcap"
expect_rc 0 "$CAPVAULT" query --capture $A udp -w "$T/link.pcap"
[ -L "$T/link.pcap" ] || fail "-w symlink: the link was replaced"
check "-w symlink: written through the link" "$udp_count" \
	"$(tcpdump -r "$T/real.pcap" --count 2>/dev/null)"
echo old > "$T/mode.pcap"
chmod 0600 "$T/mode.pcap"
expect_rc 0 "$CAPVAULT" query --capture $A udp -w "$T/mode.pcap"
check "-w FILE replaced keeps its mode" 600 "$(stat -c %a "$T/mode.pcap")"
if [ "$(id -u)" = 0 ]; then
	mknod -m 666 "$T/null" c 1 3
	expect_rc 0 "$CAPVAULT" query --capture $A udp -w "$T/null"
	[ -c "$T/null" ] || fail "-w a device: the device node was replaced"
fi
check "no temporary file left by -w" "" "$(ls "$T" | grep capvault- || true)"

# Times: a bare date (midnight UTC), a time ago, now-DURATION.
all=$("$CAPVAULT" query --count --capture $A)
check "--after a bare date" "$all" "$("$CAPVAULT" query --count --capture $A --after 2023-11-14)"
check "--after a later bare date" 0 "$("$CAPVAULT" query --count --capture $A --after 2023-11-15)"
check "--after -1h" 0 "$("$CAPVAULT" query --count --capture $A --after -1h)"
check "--after 15m" 0 "$("$CAPVAULT" query --count --capture $A --after 15m)"
check "--before now-1h" "$all" "$("$CAPVAULT" query --count --capture $A --before now-1h)"
expect_rc 2 "$CAPVAULT" query --count --after now-soon
grep -q -- "--after" "$T/err" || fail "the error names --after as typed: $(cat "$T/err")"
expect_rc 2 "$CAPVAULT" query --count -a 2024-02-31
grep -q -- "-a" "$T/err" || fail "the error names -a as typed: $(cat "$T/err")"

# Several link types: written as pcapng, and the tcpdump user is told.
expect_rc 0 "$CAPVAULT" query -w "$T/mixed.pcapng"
grep -q "2 link types" "$T/err" || fail "several link types not named: $(cat "$T/err")"
"$CAPVAULT" query > /dev/null 2> "$T/err" || true
grep -q "2 link types" "$T/err" || fail "printer: several link types not named: $(cat "$T/err")"

# tag: options after the operands, and -TAG still a removal.
mkdir "$T/elsewhere"
(cd "$T/elsewhere" && CAPVAULT_STORE= "$CAPVAULT" tag $A +y +z --store "$T/store" > "$T/tag.out") ||
	fail "tag with --store last"
check "tag --store after the operands" "$A: y z" "$(cat "$T/tag.out")"
check "tag -y --json" '{"id":1,"tags":["z"]}' "$("$CAPVAULT" tag $A -y --json --store "$T/store")"
finish
