#!/bin/bash
# Packet times at and past both ends of the range, through import, info,
# query, -w output and retention (issue 16.6): pcap and pcapng, us and ns,
# a base-2 if_tsresol, if_tsoffset negative and positive, just below and
# above 1970, past 2106 (pcap's end), 2^62 us (year 146140) and the largest
# uint64 units. Every packet tcpdump reads is returned by an unfiltered
# query; counts match `tcpdump --count`; windows match tcpdump -tt where
# tcpdump can print the time (0 to 2^31 s), and the times the files were
# built with elsewhere; tshark, when present, checks that -w output holds
# every time as the source did.
. "$(dirname "$0")/lib.sh"
command -v tcpdump >/dev/null || { echo "tcpdump not installed"; exit 77; }
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }

cd "$T"
mk() { "$MKCAP" "$@" >/dev/null; }
# times given: u = us units, n = ns units; see mkcap.c
mk --format pcapng --packets 5 --tsoffset -100000 --units 0 --step 1000000 -o neg.pcapng
mk --format pcapng --packets 5 --tsoffset -50000 --units 0 --step 1000000 -o neg2.pcapng
mk --format pcapng --packets 5 --tsoffset -1 --units 999998 -o edge.pcapng      # -2us .. +2us
mk --format pcapng --packets 4 --tsresol 0x94 --tsoffset -1 --units 524288 --step 262144 \
	-o bin.pcapng                                                              # -0.5 .. 0.25 s
mk --format pcapng --packets 3 --units $((1 << 62)) -o sat.pcapng                # year 146140
mk --format pcapng --packets 5 --units 18446744073709551610 -o max.pcapng       # uint64 max us
mk --format pcapng --packets 2 --nsec --tsoffset -9223372036854775808 --units 5 -o min.pcapng
mk --format pcap --nsec --packets 3 --start 4294967290 -o p2106.pcap            # pcap's end
mk --format pcap --packets 200 --seed 3 -o plain.pcap
mk --format pcapng --nsec --packets 200 --seed 4 --tsoffset 100000 -o off.pcapng
mk --format pcap --packets 100 --seed 5 --start 2147483600 --interval-us 1000000 -o y2038.pcap

files="neg2.pcapng neg.pcapng edge.pcapng bin.pcapng sat.pcapng max.pcapng min.pcapng p2106.pcap
	plain.pcap off.pcapng y2038.pcap"
declare -A id
total=0
for f in $files; do
	expect_rc 0 "$CAPVAULT" import --json "$f"
	id[$f]=$(jq -r '.captures[0].id // .results[0].id // empty' "$T/out" 2>/dev/null || true)
	[ -n "${id[$f]}" ] || id[$f]=$("$CAPVAULT" ls --json | jq -r ".[] | select(.name == \"$f\") | .id")
	n=$(tcpdump -r "$f" --count 2>/dev/null | awk '{print $1}')
	total=$((total + n))
	check "$f: query --count = tcpdump --count" "$n" \
		"$("$CAPVAULT" query --capture "${id[$f]}" --count 2>&1)"
done

# --- every packet, whatever its time
check "unfiltered query --count = tcpdump" "$total" "$("$CAPVAULT" query --count 2>&1)"
check "stats packets" "$total" "$("$CAPVAULT" stats --json | jq -r .packets)"
expect_rc 0 "$CAPVAULT" query -w all.out
check "unfiltered -w output" "$total" "$(tcpdump -r all.out --count 2>/dev/null | awk '{print $1}')"
check "unfiltered ip" "$(for f in $files; do tcpdump -r "$f" -w - ip 2>/dev/null |
	tcpdump -r - --count 2>/dev/null | awk '{print $1}'; done | paste -sd+ | bc)" \
	"$("$CAPVAULT" query --count ip 2>&1)"

# --- windows from the times the files were built with
q() { "$CAPVAULT" query --count "$@" 2>&1; }
check "before 1 s" 21 "$(q --before 1)"  # neg 5 neg2 5 edge 5 bin 4 min 2
check "before the epoch" 16 "$(q --before 0)"
check "before -99998 s" 4 "$(q --before -99998)"
check "before 1969-12-31T10:00:00Z" 7 "$(q --before 1969-12-31T10:00:00Z)" # neg, min
check "last second before 1970" 4 "$(q --after -1 --before 0)"
check "around the epoch" 3 "$(q --after 1969-12-31T23:59:59.999999Z --before 1970-01-01T00:00:00.000001Z)"
check "within 2 us of the epoch" 4 "$(q --after -0.000002 --before 0.000002 --capture "${id[edge.pcapng]}")"
check "base-2 fractions" 1 "$(q --after -0.5 --before -0.25 --capture "${id[bin.pcapng]}" --capture "${id[edge.pcapng]}")"
check "past 2262" 8 "$(q --after 2262-04-11T23:47:16.854775807Z)"
check "past 2200" 8 "$(q --after 2200-01-01T00:00:00Z)"
check "before 1677" 2 "$(q --before 1677-09-21T00:12:43.145224193Z)"
check "2106" 3 "$(q --after 4294967290 --before 4294967291 --capture "${id[p2106.pcap]}")"
check "2038" 52 "$(q --after 2147483648 --capture "${id[y2038.pcap]}")"
check "nothing between" 0 "$(q --after 4294967300 --before 2200-01-01T00:00:00Z)"

# --- windows against tcpdump -tt, where it prints the time
# tt_count FILE AFTER BEFORE: packets with AFTER <= t < BEFORE (s.us strings)
tt_count() {
	tcpdump -r "$1" -tt -nn 2>/dev/null | awk -v a="$2" -v b="$3" '
		function le(x, y,  xs, ys) { split(x, xs, "."); split(y, ys, ".");
			return xs[1] + 0 < ys[1] + 0 || (xs[1] == ys[1] && xs[2] + 0 <= ys[2] + 0) }
		$1 ~ /^[0-9]+\.[0-9]+$/ && le(a, $1) && !le(b, $1) { n++ }
		END { print n + 0 }'
}
for f in plain.pcap off.pcapng y2038.pcap; do
	first=$(tcpdump -r "$f" -tt -nn -c 1 2>/dev/null | awk '{print $1}')
	sec=${first%.*}
	for w in "$sec.000000 $((sec + 10)).000000" "$sec.050000 $sec.150000" "$((sec + 40)).500000 $((sec + 47)).000000"; do
		set -- $w
		check "$f [$1, $2) = tcpdump -tt" "$(tt_count "$f" "$1" "$2")" \
			"$(q --after "$1" --before "$2" --capture "${id[$f]}")"
	done
done

# --- info: honest times and order
info() { "$CAPVAULT" info --json "${id[$1]}" | jq -r "$2"; }
check "neg first packet" "1969-12-30T20:13:20.000000000Z" "$(info neg.pcapng .first_packet_time)"
check "neg last packet epoch" "-99996.000000000" "$(info neg.pcapng .last_packet_time_epoch)"
check "neg in order" "true" "$(info neg.pcapng .time_ordered)"
check "neg not saturated" "0 false" "$(info neg.pcapng '"\(.time_saturated) \(.first_packet_time_saturated)"')"
check "bin earliest" "1969-12-31T23:59:59.500000000Z" "$(info bin.pcapng .earliest_packet_time)"
check "sat saturated" "3 true" "$(info sat.pcapng '"\(.time_saturated) \(.latest_packet_time_saturated)"')"
check "sat order unknown" "false" "$(info sat.pcapng .time_ordered)"
check "min saturated low" "1677-09-21T00:12:43.145224192Z true" \
	"$(info min.pcapng '"\(.earliest_packet_time) \(.earliest_packet_time_saturated)"')"
check "2106 pcap" "2106-02-07T06:28:10.000000000Z" "$(info p2106.pcap .first_packet_time)"

# --- -w output keeps every time (tshark reads what tcpdump -tt cannot print)
odd="neg.pcapng bin.pcapng sat.pcapng max.pcapng min.pcapng p2106.pcap"
sel=()
for f in $odd; do sel+=(--capture "${id[$f]}"); done
expect_rc 0 "$CAPVAULT" query "${sel[@]}" -w odd.out
check "odd -w count" 22 "$(tcpdump -r odd.out --count 2>/dev/null | awk '{print $1}')"
if command -v tshark >/dev/null; then
	check "-w output keeps every time" \
		"$(for f in $odd; do tshark -r "$f" -T fields -e frame.time_epoch 2>/dev/null; done | sort)" \
		"$(tshark -r odd.out -T fields -e frame.time_epoch 2>/dev/null | sort)"
fi

# --- bounds: strict dates, the option named as typed, the range
expect_rc 2 "$CAPVAULT" query --count --after 2024-02-31T00:00:00Z
check "--after: why" "capvault: query: '2024-02-31T00:00:00Z': day 31 does not exist in February 2024 (29 days)" "$(sed -n 1p "$T/err")"
check "--after named" "capvault: query: bad value '2024-02-31T00:00:00Z' for --after" "$(sed -n 2p "$T/err")"
expect_rc 2 "$CAPVAULT" query --count -b 2023-02-29T12:00:00Z
check "-b: why" "capvault: query: '2023-02-29T12:00:00Z': day 29 does not exist in February 2023 (28 days)" "$(sed -n 1p "$T/err")"
check "-b named" "capvault: query: bad value '2023-02-29T12:00:00Z' for -b" "$(sed -n 2p "$T/err")"
expect_rc 2 "$CAPVAULT" query --count --before 1600-01-01T00:00:00Z
check "outside the range" "outside" "$(grep -o outside "$T/err")"
expect_rc 2 "$CAPVAULT" query --count --after 2024-01-01T24:00:00Z
check "hour 24" "hour 24" "$(grep -o 'hour 24' "$T/err")"

# --- retention by last packet: ages and order from the true times
cat >cfg.yaml <<EOF
store: $CAPVAULT_STORE
retention:
  policies:
    - name: newest-negative
      tags: [r]
      max_count: 1
      age_by: last_packet
EOF
expect_rc 0 "$CAPVAULT" tag "${id[neg2.pcapng]}" r
expect_rc 0 "$CAPVAULT" tag "${id[neg.pcapng]}" r
expect_rc 0 "$CAPVAULT" prune --config cfg.yaml --dry-run --json
# neg2's packets (-50000 s) are newer than neg's (-100000 s); neg has the
# higher id, which decided when both were clamped to the epoch
check "prune keeps the newest by true time" "${id[neg.pcapng]}" "$(jq -r '[.captures[].id] | join(",")' "$T/out")"

finish
