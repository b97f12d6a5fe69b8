#!/usr/bin/env bash
# store_room_many.sh - importing a plain file that fits reads none of
# the catalog's totals (the most the store could ever take is reckoned
# only once space is short): 2000 small captures in one offline
# `capvault import` take seconds, where reading the totals for each
# import made the run quadratic in the captures stored (about 90 s).
source "$(dirname "$0")/lib.sh"

mkdir -p "$T/many"
for i in $(seq 1 2000); do
	"$MKCAP" --packets 2 --seed "$i" --start $((1600000000 + i)) -o "$T/many/m$i.pcap"
done
start=$(date +%s)
expect_rc 0 timeout 120 "$CAPVAULT" import "$T/many"
took=$(($(date +%s) - start))
check "2000 captures" 2000 "$("$CAPVAULT" ls --json | jq length)"
[ "$took" -le 40 ] || fail "importing 2000 small captures took ${took}s (quadratic?)"
finish
