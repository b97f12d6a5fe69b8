#!/bin/bash
# Retention against changes that arrive while it runs, and duplicates that
# carry other tags, through the real capvaultd.
# 1. Duplicates by folder: x.pcap dropped into a folder tagged scratch,
#    the same bytes as important.pcap into a folder tagged keep (the
#    protect tag). The second is a duplicate and its source goes, so the
#    capture must now carry keep, list important.pcap and its source, and
#    survive a prune whose scratch policy deletes everything else.
# 2. Duplicates by upload: the same bytes uploaded with tags=scratch, then
#    with tags=scratch,keep: the answer says duplicate with the capture's
#    id, and the capture carries keep and survives a prune. `capvault info`
#    lists the other arrival; `capvault tag` edits the tags in place.
# 3. A prune of many captures while a client PATCHes the protect tag onto
#    some of them: a capture whose PATCH succeeded is never deleted, and
#    a capture whose PATCH found it gone (404) was reported deleted; the
#    prune reports the captures it kept, and deletes all the others.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
NRACE=${NRACE:-300}
POLICY=scratch # the tag the retention policy deletes (any age)

write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
log_level: info
import:
  - path: $T/scratch
    tags: [scratch]
    settle_time: 100ms
  - path: $T/keepin
    tags: [keep]
    settle_time: 100ms
retention:
  interval: 1h
  protect_tag: keep
  policies:
    - name: scratch
      tags: [$POLICY]
      max_age: 0
      allow_empty: true
api:
  listen: ["127.0.0.1:$1"]
  timeout: 30s
YAML
}

on_exit() {
	[ "$failures" -gt 0 ] && tail -30 "$T/d.log" >&2
	return 0
}

auth() { echo "Authorization: Bearer $1"; }
# status METHOD PATH [CURL_ARGS...]: prints the HTTP status, body in $T/body.
status() {
	local m=$1 p=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$m" -H "$(auth "$TOK")" "$@" "$U$p" || true
}

mkdir -p "$T/scratch" "$T/keepin" "$T/src" "$T/race"
TOK=$("$CAPVAULT" token add t --store "$STORE" --scopes read,upload,delete 2>/dev/null)
"$MKCAP" --packets 50 --seed 1 -o "$T/src/x.pcap"
cp "$T/src/x.pcap" "$T/src/important.pcap"
"$MKCAP" --packets 50 --seed 2 -o "$T/src/y.pcap"
"$MKCAP" --packets 50 --seed 3 -o "$T/src/z.pcap"

# --- 1. a duplicate by folder adds its tags, name and source ---
start_daemon
mv "$T/src/z.pcap" "$T/scratch/"
wait_for "z imported" gone "$T/scratch/z.pcap"
mv "$T/src/x.pcap" "$T/scratch/"
wait_for "x imported" gone "$T/scratch/x.pcap"
# The file leaves the folder before the line saying so is written.
wait_for "x's import logged" logged "imported $T/scratch/x.pcap: capture"
X=$(sed -n "s|.*imported $T/scratch/x.pcap: capture \([0-9]*\) .*|\1|p" "$T/d.log")
mv "$T/src/important.pcap" "$T/keepin/"
wait_for "important.pcap handled" gone "$T/keepin/important.pcap"
wait_for "duplicate logged" logged "duplicate $T/keepin/important.pcap"
check "x's capture" 200 "$(status GET "/v1/captures/$X")"
check "tags merged" '["keep","scratch"]' "$(jq -c '.tags | sort' "$T/body")"
check "other name" important.pcap "$(jq -r '.also_imported_as[0].name' "$T/body")"
check "other source" "$T/keepin/important.pcap" "$(jq -r '.also_imported_as[0].source_path' "$T/body")"
check "name kept" x.pcap "$(jq -r .name "$T/body")"

# --- 2. a duplicate by upload adds its tags ---
check "upload y" 201 "$(status POST "/v1/captures?name=y.pcap&tags=scratch" --data-binary @"$T/src/y.pcap")"
Y=$(jq -r .id "$T/body")
check "upload y again" 200 \
	"$(status POST "/v1/captures?name=y2.pcap&tags=scratch,keep" --data-binary @"$T/src/y.pcap")"
check "duplicate flag" true "$(jq -r .duplicate "$T/body")"
check "duplicate id" "$Y" "$(jq -r .id "$T/body")"
check "y's capture" 200 "$(status GET "/v1/captures/$Y")"
check "upload tags merged" '["keep","scratch"]' "$(jq -c '.tags | sort' "$T/body")"
check "upload name listed" y2.pcap "$(jq -r '.also_imported_as[0].name' "$T/body")"

check "prune" 200 "$(status POST /v1/prune -d '{}')"
check "only z pruned" z.pcap "$(jq -r '[.captures[] | select(.deleted) | .name] | join(",")' "$T/body")"
check "x kept" 200 "$(status GET "/v1/captures/$X")"
check "y kept" 200 "$(status GET "/v1/captures/$Y")"
echo "upload arrival: $(jq -c '.also_imported_as' "$T/body")"
# The CLI through the daemon: info lists the other arrival; tag edits the
# tags as they are in the daemon (add_tags/remove_tags), not a copy.
expect_rc 0 "$CAPVAULT" info "$X"
check "info lists the other arrival" 1 \
	"$(grep -c "^also_imported_as *important.pcap from $T/keepin/important.pcap at 20" "$T/out")"
expect_rc 0 "$CAPVAULT" tag "$X" +case:1 -scratch +gone -gone
check "tag through the daemon" "$X: keep case:1" "$(cat "$T/out")"
stop_daemon

# --- 3. PATCHes of the protect tag racing a prune ---
# Many small captures, tagged "race" for now: no policy touches them.
for i in $(seq 1 "$NRACE"); do
	"$MKCAP" --packets 2 --seed $((1000 + i)) --start $((1600000000 + i)) -o "$T/race/r$i.pcap"
done
expect_rc 0 "$CAPVAULT" import --store "$STORE" --tags race "$T/race"
# The captures as id list, oldest first (the order the prune goes in).
"$CAPVAULT" ls --store "$STORE" --tag race --json | jq -r '.[].id' > "$T/ids"
check "race captures" "$NRACE" "$(wc -l < "$T/ids")"
# The policy comes with a reload once the run at start-up is over (its
# next run an hour away): that run would prune them all.
first_run_done() {
	[ "$(status GET /v1/retention)" = 200 ] &&
		[ "$(jq -r .next_run_unix "$T/body")" -gt $(($(date +%s) + 1800)) ]
}
start_daemon
wait_for "the run at start-up" first_run_done
POLICY=race
write_config "$PORT"
kill -HUP "$DPID"
wait_for "reload" logged "configuration reloaded"
# Every 4th of the second half, newest first: the prune reaches them last.
awk -v n="$NRACE" 'NR > n / 2 && NR % 4 == 0' "$T/ids" | tac > "$T/targets"
curl -s -o "$T/prune.json" -X POST -H "$(auth "$TOK")" -d '{}' "$U/v1/prune" &
PRUNE=$!
# The PATCHes start as the prune starts; one curl sends them all on one
# connection, and prints "id status" for each.
curl_args=()
while read -r id; do
	curl_args+=(-s -o /dev/null -w "$id %{http_code}\n" -X PATCH -H "$(auth "$TOK")"
		-H 'Content-Type: application/json' -d '{"tags":["race","keep"]}'
		"$U/v1/captures/$id" --next)
done < "$T/targets"
unset 'curl_args[${#curl_args[@]}-1]'
curl "${curl_args[@]}" > "$T/patches" || true
wait "$PRUNE" || fail "prune request failed"
check "every PATCH answered" "$(wc -l < "$T/targets")" "$(wc -l < "$T/patches")"
jq -r '.captures[] | "\(.id) \(.deleted) \(.kept // "")"' "$T/prune.json" > "$T/report"
awk '$2 == "true" { print $1 }' "$T/report" | sort > "$T/deleted"
awk '$2 == 200 { print $1 }' "$T/patches" | sort > "$T/protected"
awk '$2 == 404 { print $1 }' "$T/patches" | sort > "$T/too_late"
check "other PATCH answers" 0 "$(awk '$2 != 200 && $2 != 404' "$T/patches" | wc -l)"
check "protected captures reported deleted" "" "$(comm -12 "$T/deleted" "$T/protected" | head -5 | paste -sd, -)"
check "PATCH 404 for a capture not deleted" "" "$(comm -23 "$T/too_late" "$T/deleted" | head -5 | paste -sd, -)"
# Every protected capture is still there; every deleted one is gone.
missing=0
while read -r id; do
	[ "$(status GET "/v1/captures/$id")" = 200 ] || missing=$((missing + 1))
	jq -e '.tags | index("keep")' "$T/body" >/dev/null || missing=$((missing + 1))
done < "$T/protected"
check "protected captures still there" 0 "$missing"
left=$("$CAPVAULT" ls --tag race --json 2>/dev/null | jq length || true)
[ -n "$left" ] || left=$(status GET "/v1/captures?tag=race&limit=10000" >/dev/null; jq '.captures | length' "$T/body")
check "what is left is what was protected" "$(wc -l < "$T/protected")" "$left"
kept=$(awk '$3 != ""' "$T/report" | wc -l)
echo "$NRACE captures; $(wc -l < "$T/protected") protected in time, $(wc -l < "$T/too_late") too late," \
	"$kept kept by the prune after its plan"
check "the prune ran" "$NRACE" "$(($(wc -l < "$T/report") + $(wc -l < "$T/protected") - kept))"
check "kept ones were protected" "" \
	"$(awk '$3 != "" { print $1 }' "$T/report" | sort | comm -23 - "$T/protected" | head -5 | paste -sd, -)"
stop_daemon
finish
