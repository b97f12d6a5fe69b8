#!/bin/bash
# Ground truth for queries: for generated captures (Ethernet with VLANs and
# ARP, raw IP, nanosecond pcap, pcapng) and, with $CAPVAULT_CORPUS, a sample
# of real captures, `capvault query` must return packet for packet what
# `tcpdump -r` returns (same bytes, same timestamps, same order), for
# planned filters, combinations, negations, time windows and filters the
# planner does not understand. Time windows are checked against editcap.
. "$(dirname "$0")/lib.sh"

# dump FILE: one line per packet (time, lengths and bytes), format-neutral.
dump() {
	{ tcpdump -r "$1" -tt -nn -x 2>/dev/null || echo "unreadable"; } | sha256sum | cut -c1-16
}
count() {
	capinfos -M -c -r -T "$1" 2>/dev/null | cut -f2 || echo 0
}

# compare ID FILE FILTER [WINDOW_ARGS...]: capvault vs tcpdump on one capture.
compare() {
	local id=$1 file=$2 filter=$3 src=$2
	shift 3
	checks=$((checks + 1))
	if ! tcpdump -r "$src" -w - "$filter" > /dev/null 2>&1; then
		# libpcap rejects the filter for this link type: so must we.
		if "$CAPVAULT" query --capture "$id" "$@" --count "$filter" >/dev/null 2>&1; then
			fail "'$filter' on $file: tcpdump refuses it, capvault answered"
		fi
		return 0
	fi
	if ! "$CAPVAULT" query --capture "$id" "$@" -w "$T/got.pcap" "$filter" 2>"$T/qerr"; then
		fail "query '$filter' on $file failed: $(cat "$T/qerr")"
		return
	fi
	if [ $# -gt 0 ]; then
		src="$T/window.pcap"
		editcap -F pcap $EDITCAP_WINDOW "$file" "$src" 2>/dev/null || editcap $EDITCAP_WINDOW "$file" "$src"
	fi
	tcpdump -r "$src" -w "$T/want.pcap" "$filter" 2>/dev/null || fail "tcpdump -r $src '$filter' failed"
	local got want
	got=$(dump "$T/got.pcap")
	want=$(dump "$T/want.pcap")
	if [ "$got" != "$want" ]; then
		fail "'$filter' $* on $file: $(count "$T/got.pcap") packets, tcpdump $(count "$T/want.pcap")"
	fi
}

"$MKCAP" --packets 20000 --hosts 50 --seed 11 --start 1700000000 -o "$T/eth.pcap"
"$MKCAP" --packets 5000 --hosts 30 --seed 12 --nsec --big-endian -o "$T/nsec.pcap"
"$MKCAP" --packets 5000 --hosts 30 --seed 13 --linktype 101 -o "$T/raw.pcap"
"$MKCAP" --format pcapng --packets 5000 --hosts 30 --seed 14 -o "$T/ng.pcapng"
expect_rc 0 "$CAPVAULT" import "$T/eth.pcap" "$T/nsec.pcap" "$T/raw.pcap" "$T/ng.pcapng"
# Imports may run in parallel: look the ids up by name.
"$CAPVAULT" ls --json > "$T/ls.json"
id_of() { jq -r --arg n "$1" '.[] | select(.name == $n) | .id' "$T/ls.json"; }
ETH=$(id_of eth.pcap) NSEC=$(id_of nsec.pcap) RAW=$(id_of raw.pcap) NG=$(id_of ng.pcapng)

# Hosts and ports that occur in the generated traffic.
host=$(tcpdump -r "$T/eth.pcap" -nn ip 2>/dev/null | awk 'NR == 100 { split($3, a, "."); print a[1] "." a[2] "." a[3] "." a[4]; exit }' || true)
host6=$(tcpdump -r "$T/eth.pcap" -nn ip6 2>/dev/null | awk 'NR == 10 { sub(/\.[0-9]+$/, "", $3); print $3; exit }' || true)
filters=(
	"" "tcp" "udp" "icmp" "icmp6" "ip" "ip6" "arp" "vlan" "not tcp" "sctp"
	"host $host" "src host $host" "dst host $host" "host $host and tcp"
	"host $host or udp port 53" "not host $host" "net ${host%.*}.0/24" "net ${host%%.*}.0.0.0 mask 255.0.0.0"
	"port 443" "tcp port 80" "udp port 53" "src port 443" "dst port 443" "portrange 1-1024"
	"tcp and (port 80 or port 443)" "ip proto 17" "proto 6" "ether proto 0x0806"
	"vlan and host $host" "tcp[13] & 2 != 0" "greater 1000" "len < 100"
	"host $host6" "ip6 and tcp" "host $host and not port 443"
)
for f in "${filters[@]}"; do
	compare "$ETH" "$T/eth.pcap" "$f"
done
for f in "" "tcp" "udp" "host $host" "udp port 53" "not tcp" "ip6"; do
	compare "$NSEC" "$T/nsec.pcap" "$f"
	compare "$RAW" "$T/raw.pcap" "$f"
	compare "$NG" "$T/ng.pcapng" "$f"
done

# A capture whose index the builder writes in many flushes (as it does
# past 64 MiB of pending index), split flows and all, answers the same.
"$MKCAP" --packets 30000 --hosts 200 --flows 3000 --seed 15 -o "$T/flushed.pcap"
"$CAPVAULT" init --store "$T/flush-store" >/dev/null
CAPVAULT_STORE="$T/flush-store" CAPVAULT_PINDEX_FLUSH_BYTES=200000 expect_rc 0 "$CAPVAULT" import "$T/flushed.pcap"
for f in "" "tcp" "udp port 53" "host $host" "port 443" "not tcp" "vlan"; do
	CAPVAULT_STORE="$T/flush-store" compare 1 "$T/flushed.pcap" "$f"
done
CAPVAULT_STORE="$T/flush-store" expect_rc 0 "$CAPVAULT" fsck

# Time windows: [after, before) as editcap -A/-B cut them.
after=1700000005.5
before=1700000011.25
EDITCAP_WINDOW="-A $after -B $before"
for f in "" "tcp" "host $host" "tcp[13] & 2 != 0"; do
	compare "$ETH" "$T/eth.pcap" "$f" --after "$after" --before "$before"
done
EDITCAP_WINDOW="-A 2023-11-14T22:13:25Z"
compare "$ETH" "$T/eth.pcap" "udp" --after "2023-11-14T22:13:25Z"
EDITCAP_WINDOW="-A 2023-11-14T22:13:25Z"
compare "$ETH" "$T/eth.pcap" "udp" --after "2023-11-14T23:13:25+01:00"

# --count with a filter that takes every packet counts the blocks of the
# time index wholly inside the window from the index, reading only the
# edges: still tcpdump's count. Blocks hold 4096 packets; this window holds
# several whole ones of eth.pcap (1000 packets a second).
after=1700000001.0005
before=1700000017.3
editcap -F pcap -A "$after" -B "$before" "$T/eth.pcap" "$T/w.pcap" 2>/dev/null
for f in "" "tcp" "ip or not ip"; do
	expect_rc 0 "$CAPVAULT" query --capture "$ETH" --count --explain --after "$after" \
		--before "$before" "$f"
	check "window count of '$f'" "$(tcpdump --count -r "$T/w.pcap" "$f" 2>/dev/null |
		awk '{ print $1 }')" "$(cat "$T/out")"
	checks=$((checks + 1))
	case "$f" in
	tcp) ! grep -q "counted from the time index" "$T/err" ||
		fail "'tcp' does not take every packet, yet was counted from the index" ;;
	*) grep -q "^matched packets: [0-9]* ([0-9]* counted from the time index, not read)" \
		"$T/err" || fail "'$f' window not counted from the index: $(cat "$T/err")" ;;
	esac
done
for id in "$ETH" "$NSEC" "$RAW" "$NG"; do
	name=$(jq -r --argjson i "$id" '.[] | select(.id == $i) | .name' "$T/ls.json")
	expect_rc 0 "$CAPVAULT" query --capture "$id" --count
	check "count of every packet of $name" "$(tcpdump --count -r "$T/$name" 2>/dev/null |
		awk '{ print $1 }')" "$(cat "$T/out")"
done

# Several captures at once: the concatenation in order of first packet.
"$CAPVAULT" query --count "udp" > "$T/n"
check "count over all captures" \
	"$(for f in eth.pcap nsec.pcap raw.pcap ng.pcapng; do
		tcpdump -r "$T/$f" -w "$T/u.pcap" udp 2>/dev/null; count "$T/u.pcap"
	   done | awk '{ n += $1 } END { print n }')" "$(cat "$T/n")"

# Overlapping captures are merged by time: the output's times never go
# back (each generated capture is in time order), and nothing is lost.
# (Ethernet captures only: libpcap reads no pcapng mixing link types.)
ether=(--capture "$ETH" --capture "$NSEC" --capture "$NG")
expect_rc 0 "$CAPVAULT" query "${ether[@]}" -w "$T/merged.pcapng" "udp or arp"
tcpdump -r "$T/merged.pcapng" -tt -nn 2>/dev/null | awk '$1 ~ /^[0-9]+[.][0-9]+$/ { print $1 }' > "$T/times"
check "merged output in time order" "" \
	"$(awk 'NR > 1 && $1 < prev { print "at line " NR ": " $1 " < " prev; exit } { prev = $1 }' "$T/times")"
check "merged output complete" \
	"$(for f in eth.pcap nsec.pcap ng.pcapng; do
		tcpdump -r "$T/$f" -w "$T/u.pcap" "udp or arp" 2>/dev/null; count "$T/u.pcap"
	   done | awk '{ n += $1 } END { print n }')" "$(count "$T/merged.pcapng")"
expect_rc 0 "$CAPVAULT" query "${ether[@]}" --limit 10 -w "$T/first10.pcapng" "udp or arp"
check "limit over merged captures: the 10 earliest" \
	"$(head -10 "$T/times" | tr '\n' ' ')" \
	"$(tcpdump -r "$T/first10.pcapng" -tt -nn 2>/dev/null | awk '$1 ~ /^[0-9]+[.][0-9]+$/ { print $1 }' | tr '\n' ' ')"

# --limit, --explain, errors.
expect_rc 0 "$CAPVAULT" query --capture "$ETH" --limit 7 -w "$T/lim.pcap" tcp
check "limit" 7 "$(count "$T/lim.pcap")"
expect_rc 0 "$CAPVAULT" query --capture "$ETH" --count --explain "host $host and tcp port 443"
grep -q "^plan: " "$T/err" || fail "explain prints the plan"
grep -q "^candidate packets: " "$T/err" || fail "explain prints candidates"
expect_rc 2 "$CAPVAULT" query --count "host and and"
grep -q "syntax error" "$T/err" || fail "bad filter shows libpcap's message: $(cat "$T/err")"
expect_rc 1 "$CAPVAULT" query --count --capture 99 tcp
grep -q "no capture with id 99" "$T/err" || fail "unknown capture id: $(cat "$T/err")"
expect_rc 2 "$CAPVAULT" query --count --after yesterday tcp
# Counts are whole numbers: a negative one is refused, not wrapped.
for bad in -1 -5 +3 " 4" 1x ""; do
	expect_rc 2 "$CAPVAULT" query --count --limit "$bad" tcp
	grep -q -- "--limit" "$T/err" || fail "--limit '$bad' is named in the error: $(cat "$T/err")"
	expect_rc 2 "$CAPVAULT" query --count --capture "$bad" tcp
done
expect_rc 0 "$CAPVAULT" query --capture "$ETH" --limit 0 -w "$T/lim0.pcap" tcp
expect_rc 0 "$CAPVAULT" query --capture "$ETH" -w "$T/nolim.pcap" tcp
check "limit 0 means no limit" "$(count "$T/nolim.pcap")" "$(count "$T/lim0.pcap")"

# -w of one pcap keeps the header's FCS bits above the link type, as
# tcpdump -w does (0x30000008: link type 8 with an FCS length).
"$MKCAP" --linktype $((0x30000008)) --packets 5 -o "$T/fcs.pcap"
fcs_id=$("$CAPVAULT" import "$T/fcs.pcap" | awk '$1 == "imported" { print $2 }')
expect_rc 0 "$CAPVAULT" query --capture "$fcs_id" -w "$T/fcs-out.pcap"
check "FCS bits kept" "$(od -An -tx4 -j20 -N4 "$T/fcs.pcap")" "$(od -An -tx4 -j20 -N4 "$T/fcs-out.pcap")"
check "FCS capture's packets" 5 "$(count "$T/fcs-out.pcap")"

# A link type libpcap does not know (tcpdump -r refuses the file too): the
# query is refused with libpcap's reason; without a filter it said
# "filter does not apply", naming nothing.
"$MKCAP" --linktype 290 --packets 5 -o "$T/lt290.pcap"
lt_id=$("$CAPVAULT" import "$T/lt290.pcap" | awk '$1 == "imported" { print $2 }')
expect_rc 2 "$CAPVAULT" query --capture "$lt_id" --count
check "unknown link type, no filter: libpcap's reason" 1 \
	"$(grep -c '^capvault: query: libpcap cannot read the link types selected (link type 290: unknown data link type 290' "$T/err")"
expect_rc 2 "$CAPVAULT" query --capture "$lt_id" --count tcp
check "unknown link type, a filter: libpcap's reason" 1 \
	"$(grep -c '^capvault: query: filter does not apply to the link types selected (link type 290: unknown data link type 290' "$T/err")"

# A sample of the real corpus: every 25th capture tcpdump can read.
if [ -n "${CAPVAULT_CORPUS:-}" ] && [ -f "$CAPVAULT_CORPUS/manifest.tsv" ]; then
	export CAPVAULT_STORE="$T/corpus-store"
	"$CAPVAULT" init >/dev/null
	awk -F'\t' 'NR > 1 && $2 != "" && NR % 25 == 0 && $44 == "0" && $3 < 5000000 && $5 == "none" { print $1 }' \
		"$CAPVAULT_CORPUS/manifest.tsv" > "$T/sample"
	while read -r rel; do
		out=$("$CAPVAULT" import "$CAPVAULT_CORPUS/$rel" | sed -n 1p)
		id=$(echo "$out" | awk '$1 == "imported" || $1 == "duplicate" { print $2 }')
		[ -n "$id" ] || { fail "import $rel: $out"; continue; }
		for f in "" "tcp" "udp" "ip6" "not ip" "port 80 or port 53"; do
			compare "$id" "$CAPVAULT_CORPUS/$rel" "$f"
		done
	done < "$T/sample"
	echo "corpus sample: $(wc -l < "$T/sample") captures"
fi

finish
