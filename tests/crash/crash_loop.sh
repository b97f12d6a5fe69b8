#!/bin/bash
# Crash consistency (DESIGN.md invariants 1, 2 and 4): CRASH_ROUNDS rounds
# (default 100) of capvaultd on one store, each fed folder drops (new
# captures and duplicates of earlier ones), HTTP uploads on the unix socket
# (some tagged for pruning by a retention policy that runs at every
# start-up), deletions, and then killed with SIGKILL at a random moment.
# After a last clean run and stop, every dropped file is either still in
# the folder or in the catalog, exactly once; every upload that was
# answered 200/201 is there unless deleted or pruned; every answered
# DELETE stuck; no record lacks its object and no object its record
# (capvault fsck); tmp/ is empty; and query counts equal tcpdump's over
# the stored objects. Bounded: small captures, short random waits.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.sh"

ROUNDS=${CRASH_ROUNDS:-100}
STORE=$T/store
SOCK=$STORE/capvault.sock
IN=$T/in
mkdir -p "$IN" "$T/pool" "$T/src"
: >"$T/drops"    # name sha256: every file moved into the folder
: >"$T/uploads"  # sha256 status: required | optional
: >"$T/deleted"  # sha256 of captures whose DELETE answered 200
: >"$T/delete_sent"  # sha256 of captures a DELETE was sent for, answered or not
: >"$T/ids"      # id sha256 of answered uploads, candidates for deletion

cat >"$T/d.yaml" <<YAML
store: $STORE
jobs: 2
log_level: info
import:
  - path: $IN
    after_import: delete
    settle_time: 0
api:
  listen: []
retention:
  interval: 1s
  policies:
    - name: scratch
      tags: [scratch]
      max_age: 0
      allow_empty: true
YAML

# rnd N: a random number in [0, N).
rnd() { echo $((RANDOM % $1)); }
# jitter MAX_MS: sleeps a random time up to MAX_MS milliseconds.
jitter() { sleep "0.$(printf '%03d' "$(rnd "$1")")"; }
sha_of() { sha256sum <"$1" | cut -c1-64; }

up() { curl -s --max-time 5 --unix-socket "$SOCK" "$@"; }

# drop ROUND K: a new capture (or a copy of an earlier one) moved in.
drop() {
	local name="r$1-$2.pcap" src
	if [ "$(rnd 4)" = 0 ] && [ -s "$T/drops" ]; then
		src=$(shuf -n1 "$T/drops" | cut -d' ' -f1)
		cp "$T/pool/$src" "$T/src/$name"
	else
		"$MKCAP" --packets $((20 + $(rnd 150))) --hosts 4 --seed $(($1 * 1000 + $2)) \
			-o "$T/src/$name"
	fi
	cp "$T/src/$name" "$T/pool/$name"
	echo "$name $(sha_of "$T/pool/$name")" >>"$T/drops"
	mv "$T/src/$name" "$IN/$name"
}

# upload ROUND K: an upload, tagged scratch one time in three (pruned).
upload() {
	local f="$T/up-$1-$2.pcap" tags=web code sha
	"$MKCAP" --packets $((20 + $(rnd 150))) --hosts 4 --seed $((500000 + $1 * 1000 + $2)) -o "$f"
	[ "$(rnd 3)" = 0 ] && tags=scratch
	sha=$(sha_of "$f")
	echo "$sha optional" >>"$T/uploads"
	code=$(up -o "$f.json" -w '%{http_code}' -X POST --data-binary @"$f" \
		"http://x/v1/captures?name=up-$1-$2.pcap&tags=$tags" 2>/dev/null || true)
	if [ "$code" = 201 ] || [ "$code" = 200 ]; then
		[ "$tags" = web ] && echo "$sha required" >>"$T/uploads"
		echo "$(jq -r .id "$f.json") $sha" >>"$T/ids"
	fi
	rm -f "$f" "$f.json"
}

# delete: DELETE one answered upload; a 200 means it must stay gone.
delete_one() {
	[ -s "$T/ids" ] || return 0
	local line id sha code
	line=$(shuf -n1 "$T/ids")
	id=${line% *}
	sha=${line#* }
	# A DELETE the kill cut off before its answer may or may not have
	# happened: that capture is no longer required to be there.
	echo "$sha" >>"$T/delete_sent"
	code=$(up -o /dev/null -w '%{http_code}' -X DELETE "http://x/v1/captures/$id" 2>/dev/null || true)
	[ "$code" = 200 ] && echo "$sha" >>"$T/deleted"
	grep -v "^$id " "$T/ids" >"$T/ids.new" || true
	mv "$T/ids.new" "$T/ids"
}

# One round's traffic, until the daemon dies under it.
feed() {
	local r=$1 k
	for k in $(seq 1 $((2 + $(rnd 4)))); do
		case $(rnd 5) in
		0 | 1 | 2) drop "$r" "$k" ;;
		3) upload "$r" "$k" ;;
		4) delete_one ;;
		esac
		jitter 60
	done
}

start_s=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
	start_daemon
	feed "$r" &
	feeder=$!
	jitter 400
	kill_daemon
	wait "$feeder" || true
done
echo "$ROUNDS rounds in $(($(date +%s) - start_s)) s"

# A last run imports what is left, then a clean stop.
start_daemon
for i in $(seq 300); do
	no_files "$IN" && break
	sleep 0.1
done
stop_daemon
check "nothing failed" "" "$(ls -A "$IN/.failed" 2>/dev/null)"

expect_rc 0 "$CAPVAULT" ls --json --store "$STORE"
jq -r '.[].sha256' "$T/out" | sort >"$T/cat.sha"
check "one record per sha256" "" "$(uniq -d "$T/cat.sha" | head -3)"

# Every dropped file: still in the folder, or imported.
lost=0
while read -r name sha; do
	[ -e "$IN/$name" ] && continue
	grep -qx "$sha" "$T/cat.sha" || { lost=$((lost + 1)); echo "lost: $name $sha" >&2; }
done <"$T/drops"
check "dropped files lost" 0 "$lost"
check "drops made" yes "$([ "$(wc -l <"$T/drops")" -ge "$ROUNDS" ] && echo yes)"

# Answered uploads are there unless deleted; answered deletes stuck.
missing=0
while read -r sha status; do
	[ "$status" = required ] || continue
	grep -qx "$sha" "$T/delete_sent" 2>/dev/null && continue
	grep -qx "$sha" "$T/cat.sha" || { missing=$((missing + 1)); echo "upload lost: $sha" >&2; }
done <"$T/uploads"
check "answered uploads lost" 0 "$missing"
back=0
while read -r sha; do
	grep -qx "$sha" "$T/cat.sha" && back=$((back + 1))
done <"$T/deleted"
check "deleted captures back" 0 "$back"
check "no scratch capture survives pruning" 0 \
	"$(jq '[.[] | select(.tags | index("scratch"))] | length' "$T/out")"
# Nothing in the catalog that was never fed in.
stray=0
while read -r sha; do
	grep -q " $sha\$" "$T/drops" || grep -q "^$sha " "$T/uploads" || stray=$((stray + 1))
done <"$T/cat.sha"
check "records of unknown origin" 0 "$stray"

# The store: objects = records, tmp/ empty, fsck clean.
check "objects = distinct records" "$(uniq "$T/cat.sha" | wc -l)" \
	"$(find "$STORE/objects" -type f | wc -l)"
check "tmp/ empty" "" "$(ls -A "$STORE/tmp")"
expect_rc 0 "$CAPVAULT" fsck --store "$STORE"

# Queries answer like tcpdump over the stored objects.
for filter in "tcp" "udp and port 53"; do
	want=0
	for f in $(find "$STORE/objects" -type f); do
		n=$(tcpdump --count -nr "$f" "$filter" 2>/dev/null | awk '{ print $1 }')
		want=$((want + n))
	done
	expect_rc 0 "$CAPVAULT" query --store "$STORE" --count "$filter"
	check "query --count '$filter' = tcpdump" "$want" "$(cat "$T/out")"
done
echo "$(wc -l <"$T/drops") drops, $(grep -c required "$T/uploads") answered uploads," \
	"$(wc -l <"$T/deleted") deletes, $(wc -l <"$T/cat.sha") records"
finish
