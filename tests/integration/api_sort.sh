#!/bin/bash
# GET /v1/captures?sort= against the real capvaultd: every sort key in
# both directions, paged with a small limit, gives the order jq computes
# from the full listing (ties broken by id); a cursor stays correct while
# captures are added between pages; sort combines with a tag filter; an
# unknown key, a cursor of another order and a garbled cursor are 400
# with a JSON error. Every key with every filter (tags, name glob, packet
# time range, import time) pages as jq orders the filtered full listing;
# after a delete, a tag change, a rename and a duplicate merge, every
# sorted and filtered listing shows the change at once (the listings
# select from the catalog's in-memory summary, not the records).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"

write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$1"]
YAML
}

auth=(-H "Authorization: Bearer $("$CAPVAULT" token add s --store "$STORE" --scopes read,upload 2>/dev/null)")
admin=(-H "Authorization: Bearer $("$CAPVAULT" token add d --store "$STORE" --scopes read,upload,delete 2>/dev/null)")
mkdir -p "$T/in" "$T/a" "$T/b"
# Names in byte order differ from case-blind order; packet counts,
# first and last packet times tie in places, so the id must break ties.
i=0
for spec in "a/zeta.pcap 30 1000" "a/Alpha.pcap 10 5000" "b/alpha.pcap 10 3000" \
	"a/beta.pcap 50 1000" "b/zeta.pcap 20 9000" "a/Gamma.pcap 10 7000" "a/mid.pcap 40 2000"; do
	set -- $spec
	i=$((i + 1))
	"$MKCAP" --packets "$2" --start "$3" --interval-us 1000 --seed "$i" -o "$T/$1"
	"$CAPVAULT" import --quiet --store "$STORE" "$T/$1" > /dev/null
	expect_rc 0 "$CAPVAULT" tag --store "$STORE" "$i" "+$([ $((i % 2)) = 1 ] && echo odd || echo even)"
done
start_daemon

# get NAME QUERY: the body in $T/NAME, the status printed.
get() { curl -s -o "$T/$1" -w '%{http_code}' "${auth[@]}" "$U/v1/captures?$2" || true; }

# pages QUERY LIMIT: every id of the listing, following next_cursor.
pages() {
	local q=$1 limit=$2 cursor= ids= n=0 more=
	while :; do
		local c
		c=$(get page "$q&limit=$limit${cursor:+&cursor=$cursor}")
		[ "$c" = 200 ] || { fail "$q page $n: HTTP $c $(head -c 200 "$T/page")"; return; }
		{ read -r cursor; read -r more; } < <(jq -r '(.next_cursor // ""),
			([.captures[].id] | join(" "))' "$T/page")
		ids="$ids $more"
		n=$((n + 1))
		[ -n "$cursor" ] && [ "$n" -lt 50 ] || break
	done
	echo $ids
}

# expected FIELD DESC [JQ_SELECT]: ids in that order, from the full listing
# (expected_in: from the one in $T/all).
expected() {
	get all "limit=1000" > /dev/null
	expected_in "$@"
}
expected_in() {
	local rev=$([ "$2" = 1 ] && echo '| reverse' || true)
	jq -r "[.captures[] ${3:-} ] | sort_by(.$1, .id) $rev | map(.id) | join(\" \")" "$T/all"
}

for key in id:id imported:import_time_ns first_packet:earliest_packet_time_ns \
	last_packet:latest_packet_time_ns name:name size:file_size packets:packets; do
	for limit in 1 3 1000; do
		check "sort=${key%%:*} limit=$limit" "$(expected "${key#*:}" 0)" \
			"$(pages "sort=${key%%:*}" "$limit")"
		check "sort=-${key%%:*} limit=$limit" "$(expected "${key#*:}" 1)" \
			"$(pages "sort=-${key%%:*}" "$limit")"
	done
done
check "default order is sort=id" "$(pages "sort=id" 2)" "$(pages "" 2)"
check "default cursor is an id" 2 "$(get p "limit=2" > /dev/null; jq -r .next_cursor "$T/p")"

# Sort with a filter: the tag's captures only, in that order.
check "tag=odd&sort=-packets" "$(expected packets 1 '| select(.tags | index("odd"))')" \
	"$(pages "tag=odd&sort=-packets" 2)"
check "name glob with sort=name" "$(expected name 0 '| select(.name | test("^[a-z]"))')" \
	"$(pages "name=%5Ba-z%5D%2A&sort=name" 1)"

# Captures added between pages: the rest follows the cursor, skipping
# and repeating nothing, and a new one after the cursor is listed.
check "page 1 of sort=name" 200 "$(get p1 "sort=name&limit=3")"
first=$(jq -r '[.captures[].id] | join(" ")' "$T/p1")
last=$(jq -r '.captures[-1].id' "$T/p1")
cursor=$(jq -r .next_cursor "$T/p1")
"$MKCAP" --packets 5 --seed 100 -o "$T/AAA.pcap"
"$MKCAP" --packets 5 --seed 101 -o "$T/zzz.pcap"
for f in AAA zzz; do
	c=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" --data-binary @"$T/$f.pcap" "$U/v1/captures?name=$f.pcap")
	check "upload $f between pages" 201 "$c"
done
rest=$(ids=; while :; do
	get page "sort=name&limit=2&cursor=$cursor" > /dev/null
	ids="$ids $(jq -r '[.captures[].id] | join(" ")' "$T/page")"
	cursor=$(jq -r '.next_cursor // empty' "$T/page")
	[ -n "$cursor" ] || break
done; echo $ids)
want=$(expected name 0 | tr ' ' '\n' | sed -n "/^$last\$/,\$p" | tail -n +2 | tr '\n' ' ')
check "pages after the additions" "$first ${want% }" "$first $rest"
check "zzz.pcap listed last" zzz.pcap "$(jq -r '.captures[-1].name' "$T/page")"

# Every key in both directions with each filter, paged at 3.
keys="id:id imported:import_time_ns first_packet:earliest_packet_time_ns
	last_packet:latest_packet_time_ns name:name size:file_size packets:packets"
# sorted_filters LABEL DIRS N: every key in the directions DIRS (0
# ascending, 1 descending) with each of the first N filters, against its
# jq select.
sorted_filters() {
	local imported
	imported=$(jq -r '[.captures[].import_time_ns] | sort | .[length / 2 | floor]' "$T/all")
	local filters=(
		"tag=odd|select(.tags | index(\"odd\"))"
		"tag=odd&tag=extra|select((.tags | index(\"odd\")) and (.tags | index(\"extra\")))"
		"any_tag=even,extra|select((.tags | index(\"even\")) or (.tags | index(\"extra\")))"
		"name=%2Aeta%2A|select(.name | test(\"eta\"))"
		"name=%5BA-Z%5D%2A|select(.name | test(\"^[A-Z]\"))"
		"from=2000&to=6000|select(.packets > 0 and .latest_packet_time_ns >= 2000000000000 and .earliest_packet_time_ns < 6000000000000)"
		"imported_after=$((imported / 1000000000))|select(.import_time_ns >= $((imported / 1000000000 * 1000000000)))")
	for f in "${filters[@]:0:$3}"; do
		for key in $keys; do
			for dir in $2; do
				local minus=$([ "$dir" = 1 ] && echo - || true)
				check "${f%%|*}&sort=$minus${key%%:*} ($1)" \
					"$(expected_in "${key#*:}" "$dir" "| ${f#*|}")" \
					"$(pages "${f%%|*}&sort=$minus${key%%:*}" 3)"
			done
		done
	done
}
# A third tag on some, so that an all-tags filter differs from one tag.
for id in 1 2 5; do
	c=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X PATCH \
		-d '{"add_tags":["extra"]}' "$U/v1/captures/$id")
	check "tag $id extra" 200 "$c"
done
get all "limit=1000" > /dev/null
sorted_filters "as imported" "0 1" 7

# Changes show at once: a delete, a tag change, a rename, a duplicate.
ids_of() { get q "$1&limit=1000" > /dev/null; jq -r '[.captures[].id] | join(" ")' "$T/q"; }
c=$(curl -s -o /dev/null -w '%{http_code}' "${admin[@]}" -X DELETE "$U/v1/captures/4")
check "delete 4" 200 "$c"
check "deleted: gone from sort=-packets" "" "$(ids_of "sort=-packets" | tr ' ' '\n' | grep -x 4)"
check "deleted: gone from name=beta*" "" "$(ids_of "name=beta%2A&sort=name")"
c=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X PATCH \
	-d '{"tags":["even","moved"]}' "$U/v1/captures/3")
check "retag 3" 200 "$c"
check "retagged: tag=moved" 3 "$(ids_of "tag=moved&sort=-size")"
check "retagged: gone from tag=odd" "" "$(ids_of "tag=odd&sort=name" | tr ' ' '\n' | grep -x 3)"
c=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X PATCH \
	-d '{"name":"0first.pcap"}' "$U/v1/captures/7")
check "rename 7" 200 "$c"
check "renamed: first by name" 7 "$(ids_of "sort=name" | cut -d' ' -f1)"
check "renamed: found by its new name" 7 "$(ids_of "name=0%2A&sort=-first_packet")"
c=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" --data-binary @"$T/b/zeta.pcap" \
	"$U/v1/captures?name=again.pcap&tags=merged")
case $c in 200|201) ;; *) fail "duplicate upload: HTTP $c";; esac
check "merged: its tag lists the original" 5 "$(ids_of "tag=merged&sort=-imported")"
check "merged: in any_tag" 5 "$(ids_of "any_tag=merged,none&sort=packets")"
get all "limit=1000" > /dev/null
sorted_filters "after the changes" 1 4

# Errors.
check "unknown sort key" 400 "$(get bad "sort=colour")"
check "unknown sort key: JSON status" 400 "$(jq -r .status "$T/bad")"
check "unknown sort key: code" bad_sort "$(jq -r .error "$T/bad")"
grep -q "first_packet" "$T/bad" || fail "the error lists the keys: $(cat "$T/bad")"
check "double minus" 400 "$(get bad "sort=--size")"
check "empty sort" 400 "$(get bad "sort=")"
get p "sort=size&limit=1" > /dev/null
size_cursor=$(jq -r .next_cursor "$T/p")
check "cursor of another order" 400 "$(get bad "sort=name&cursor=$size_cursor")"
check "cursor of the other direction" 400 "$(get bad "sort=-size&cursor=$size_cursor")"
check "id cursor with sort=size" 400 "$(get bad "sort=size&cursor=3")"
check "sorted cursor without sort" 400 "$(get bad "cursor=$size_cursor")"
check "garbled cursor" 400 "$(get bad "sort=size&cursor=size:x:1")"
check "odd hex name cursor" 400 "$(get bad "sort=name&cursor=name:abc:1")"
check "cursor error is JSON" bad_request "$(jq -r .error "$T/bad")"

stop_daemon
finish
