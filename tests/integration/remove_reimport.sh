#!/bin/bash
# A capture whose object lives only in the object store is removed (rm,
# then prune) while the same bytes are uploaded again. The catalog unlinks
# an object's local file under its lock when the last capture goes; the
# removal must not unlink it once more after the lock: by then the upload
# may have published that file anew and committed a capture for it, which
# was then left without its object (201, then 500 on download, and fsck:
# "object ... is missing"). The shim (FAULTINJECT) holds every unlinkat in
# the store's objects/ for 3 s, so the upload lands in that window.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
: "${FAULTINJECT:?path to the faultinject shim}"
# The shim is not built with the sanitizers: let ASan start anyway.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$T/in"
"$MKCAP" --packets 300 --payload 1000 --seed 71 -o "$T/c.pcap"
write_config() {
	write_inbox_config "$S" "$1"
	cat >> "$T/d.yaml" <<YAML
retention:
  interval: 1h
  policies:
    - name: old
      tags: [old]
      max_age: 0
      allow_empty: true
YAML
}
on_exit() {
	[ "$failures" -gt 0 ] && tail -30 "$T/d.log" >&2
	return 0
}
start_daemon CAPVAULT_OBJSTORE_DIR="$B" LD_PRELOAD="$FAULTINJECT" \
	FAULT_UNLINK_DELAY_DIR="$S/objects" FAULT_UNLINK_DELAY_MS=3000
TOK=$("$CAPVAULT" token add t --scopes read,upload,delete 2>/dev/null)
auth="Authorization: Bearer $TOK"

# round MODE: one capture, remote only, removed by MODE (rm or prune) while
# the same bytes are uploaded; the upload's capture keeps its object.
round() {
	local mode=$1 id rc
	expect_rc 0 "$CAPVAULT" import "$T/c.pcap"
	id=$("$CAPVAULT" ls --json | jq -r '.[0].id')
	expect_rc 0 "$CAPVAULT" tier "$id"
	check "$mode: remote only" remote "$("$CAPVAULT" info "$id" --json | jq -r .location)"
	# Tagged for the policy only now: the run at start-up is over.
	[ "$mode" = prune ] && expect_rc 0 "$CAPVAULT" tag "$id" +old
	if [ "$mode" = rm ]; then
		curl -s -o "$T/rm.json" -X DELETE -H "$auth" "$U/v1/captures/$id" &
	else
		curl -s -o "$T/rm.json" -X POST -H "$auth" -d '{}' "$U/v1/prune" &
	fi
	rc=$!
	sleep 1
	check "$mode: upload" 201 "$(curl -s -o "$T/up.json" -w '%{http_code}' -X POST -H "$auth" \
		"$U/v1/captures?name=again.pcap" --data-binary @"$T/c.pcap")"
	wait "$rc" || fail "$mode: the removal request failed"
	local new
	new=$(jq -r .id "$T/up.json")
	check "$mode: a new capture" false "$(jq -r .duplicate "$T/up.json")"
	check "$mode: download of the new capture" 200 "$(curl -s -o "$T/dl" -w '%{http_code}' \
		-H "$auth" "$U/v1/captures/$new/file")"
	cmp -s "$T/dl" "$T/c.pcap" || fail "$mode: the new capture's bytes differ"
	# Clean up for the next round (no upload racing this one).
	curl -s -o /dev/null -X DELETE -H "$auth" "$U/v1/captures/$new"
}
round rm
round prune
stop_daemon
CAPVAULT_OBJSTORE_DIR="$B" "$CAPVAULT" fsck > "$T/fsck" 2>&1 || fail "fsck: $(cat "$T/fsck")"
finish
