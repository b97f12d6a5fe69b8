#!/bin/bash
# A nearly full disk (issue 15.14): the store on a 24 MiB tmpfs (SKIP
# when mounting is not permitted) filled to ~7 MiB free. A multipart
# upload of 4 MiB would leave less than the 4 MiB the store keeps for its
# index: it is refused with 507 before it is spooled (it used to fill the
# file system to a few KiB), nothing is left in tmp/, and the daemon
# still stores a small upload. Then, with less free than a copy needs,
# re-importing a capture that is already stored works (it needs no
# space; it used to fail with ENOSPC) while a new one still fails.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.sh"

FS=$T/fs
MOUNTED=
on_exit() { [ -z "$MOUNTED" ] || umount "$FS" 2>/dev/null || umount -l "$FS"; }
mkdir -p "$FS"
if ! mount -t tmpfs -o size=24m tmpfs "$FS" 2>/dev/null; then
	echo "cannot mount a tmpfs here: skipped"
	exit 77
fi
MOUNTED=1
STORE=$FS/store
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
api:
  listen: ["127.0.0.1:$1"]
  max_upload_size: 64MiB
YAML
}
free_kib() { df -k --output=avail "$FS" | tail -1 | tr -d ' '; }

"$MKCAP" --packets 100000 --size 2000000 --seed 13 -o "$T/dup.pcap"
"$MKCAP" --packets 100000 --size 2000000 --seed 14 -o "$T/new.pcap"
expect_rc 0 "$CAPVAULT" init --store "$STORE"
expect_rc 0 "$CAPVAULT" import --store "$STORE" "$T/dup.pcap"
TOKEN=$("$CAPVAULT" token add up --store "$STORE" --scopes read,upload 2>/dev/null)
auth=(-H "Authorization: Bearer $TOKEN")
start_daemon
"$MKCAP" --packets 100000 --size 4000000 --seed 11 -o "$T/big.pcap"
"$MKCAP" --packets 20 --seed 12 -o "$T/small.pcap"
# Fill the file system to about 7 MiB free, beside the store.
dd if=/dev/zero of="$FS/filler" bs=1M count=$(( $(free_kib) / 1024 - 7 )) status=none

code=$(curl -s -o "$T/big" -w '%{http_code}' --max-time 60 "${auth[@]}" -F "file=@$T/big.pcap" "$U/v1/captures" || true)
check "4 MiB upload on 7 MiB free: HTTP status" 507 "$code"
grep -q "no room to receive the upload" "$T/big" || fail "refusal: $(head -c 300 "$T/big")"
checks=$((checks + 1))
[ "$(free_kib)" -ge 4096 ] || fail "the file system was filled to $(free_kib) KiB free"
wait_for "tmp/ empty" eval '[ -z "$(ls -A "$STORE/tmp")" ]'

# A raw upload is not spooled: the store refuses it, and the 507 names
# no server path (api_error hides the store's folders from remote clients).
code=$(curl -s -o "$T/raw" -w '%{http_code}' --max-time 60 "${auth[@]}" --data-binary @"$T/big.pcap" "$U/v1/captures" || true)
check "raw 4 MiB upload on 7 MiB free: HTTP status" 507 "$code"
grep -q "No space left on device" "$T/raw" || fail "raw refusal: $(head -c 300 "$T/raw")"
grep -q "$FS" "$T/raw" && fail "507 names the store's path: $(head -c 300 "$T/raw")"
wait_for "tmp/ empty after the raw upload" eval '[ -z "$(ls -A "$STORE/tmp")" ]'

code=$(curl -s -o "$T/small" -w '%{http_code}' --max-time 60 "${auth[@]}" -F "file=@$T/small.pcap" "$U/v1/captures" || true)
check "small upload still stored" 201 "$code"
stop_daemon

# Less free than a 2 MB copy and the 4 MiB reserve need.
dd if=/dev/zero of="$FS/filler2" bs=1M count=$(( $(free_kib) / 1024 - 5 )) status=none
expect_rc 0 "$CAPVAULT" import --store "$STORE" "$T/dup.pcap"
grep -q "0 imported, 1 duplicate," "$T/out" "$T/err" || fail "re-import on a full disk: $(cat "$T/out" "$T/err" | tail -3)"
expect_rc 1 "$CAPVAULT" import --store "$STORE" "$T/new.pcap"
grep -q "No space left on device" "$T/out" "$T/err" || fail "new capture: $(tail -3 "$T/out" "$T/err")"
check "tmp/ empty after ENOSPC" "" "$(ls -A "$STORE/tmp")"
expect_rc 0 "$CAPVAULT" fsck --store "$STORE"
finish
