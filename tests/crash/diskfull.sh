#!/bin/bash
# Disk full: the store on a 32 MiB tmpfs (SKIP when mounting is not
# permitted). `capvault import` of captures until one hits ENOSPC: it
# fails (exit 1) naming the error, its source stays, no partial object is
# left in objects/ or tmp/, fsck passes; after `capvault rm` frees space
# the same import works. Then capvaultd on the full store: a dropped file
# stays in its folder and is retried (logged), queries are still served,
# and once a DELETE frees space the file is imported.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.sh"

FS=$T/fs
MOUNTED=
on_exit() { [ -z "$MOUNTED" ] || umount "$FS" 2>/dev/null || umount -l "$FS"; }
mkdir -p "$FS" "$T/src" "$T/in"
if ! mount -t tmpfs -o size=32m tmpfs "$FS" 2>/dev/null; then
	echo "cannot mount a tmpfs here: skipped"
	exit 77
fi
MOUNTED=1
S=$FS/store
export CAPVAULT_STORE=$S
"$CAPVAULT" init >/dev/null

sha_of() { sha256sum <"$1" | cut -c1-64; }
objects() { find "$S/objects" -type f | wc -l; }

# --- the CLI: import ~1.5 MiB captures until the file system is full
full=
for i in $(seq 1 30); do
	"$MKCAP" --packets 1500 --size 1500000 --seed "$i" -o "$T/src/c$i.pcap"
	cp "$T/src/c$i.pcap" "$T/src/c$i.orig"
	rc=0
	"$CAPVAULT" import "$T/src/c$i.pcap" >"$T/out" 2>"$T/err" || rc=$?
	if [ "$rc" != 0 ]; then
		full=$i
		break
	fi
done
checks=$((checks + 1))
if [ -z "$full" ]; then
	fail "30 captures of 1.5 MiB fit in 32 MiB"
	finish
	exit 1
fi
echo "full at capture $full: $(df -h "$FS" | tail -1)"
check "exit code on ENOSPC" 1 "$rc"
grep -q "No space left on device" "$T/out" "$T/err" ||
	fail "ENOSPC named: $(cat "$T/out" "$T/err" | tail -3)"
cmp -s "$T/src/c$full.pcap" "$T/src/c$full.orig" || fail "source changed by the failed import"
check "tmp/ empty after ENOSPC" "" "$(ls -A "$S/tmp")"
expect_rc 0 "$CAPVAULT" ls --json
check "no partial object" "$(jq length "$T/out")" "$(objects)"
check "failed capture not recorded" 0 \
	"$(jq --arg s "$(sha_of "$T/src/c$full.pcap")" '[.[] | select(.sha256 == $s)] | length' "$T/out")"
expect_rc 0 "$CAPVAULT" fsck

# Space freed by hand: the same import now works.
expect_rc 0 "$CAPVAULT" rm 1 2
expect_rc 0 "$CAPVAULT" import "$T/src/c$full.pcap"
expect_rc 0 "$CAPVAULT" fsck

# --- the daemon on the full store
n=$full
rc=0
while [ "$rc" = 0 ] && [ "$n" -lt 60 ]; do
	n=$((n + 1))
	"$MKCAP" --packets 1500 --size 1500000 --seed "$n" -o "$T/src/c$n.pcap"
	"$CAPVAULT" import "$T/src/c$n.pcap" >/dev/null 2>&1 || rc=$?
done
check "store full again" 1 "$rc"
cat >"$T/d.yaml" <<YAML
store: $S
jobs: 1
import:
  - path: $T/in
    after_import: delete
    settle_time: 0
api:
  listen: []
YAML
api() { curl -s --max-time 10 --unix-socket "$S/capvault.sock" "$@"; }
start_daemon
cp "$T/src/c$n.pcap" "$T/in/drop.pcap"
wait_for "import refused for space, retried" logged "retrying $T/in/drop.pcap later"
grep "retrying $T/in/drop.pcap" "$T/d.log" | head -1 | grep -q "No space left on device" ||
	fail "retry line names ENOSPC: $(grep retrying "$T/d.log" | head -1)"
check "dropped file kept" yes "$([ -f "$T/in/drop.pcap" ] && echo yes)"
code=$(api -o "$T/q" -w '%{http_code}' "http://x/v1/packets?count=1" || true)
check "queries served on a full store" 200 "$code"; [ "$code" = 200 ] || cat "$T/q"
check "count answered" yes "$(jq -e '.count > 0' "$T/q" >/dev/null && echo yes)"
check "tmp/ empty while full" "" "$(ls -A "$S/tmp")"
id=$(api "http://x/v1/captures?limit=1" | jq -r '.captures[0].id')
code=$(api -o /dev/null -w '%{http_code}' -X DELETE "http://x/v1/captures/$id" || true)
check "DELETE on a full store" 200 "$code"
wait_for "dropped file imported once space is free" gone "$T/in/drop.pcap"
stop_daemon
expect_rc 0 "$CAPVAULT" ls --json
check "dropped capture stored" 1 \
	"$(jq --arg s "$(sha_of "$T/src/c$n.pcap")" '[.[] | select(.sha256 == $s)] | length' "$T/out")"
expect_rc 0 "$CAPVAULT" fsck
finish
