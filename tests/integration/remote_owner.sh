#!/usr/bin/env bash
# remote_owner.sh - two vaults given one bucket and prefix (issue 18):
# the first to write claims the prefix (its "capvault-vault" key names
# the vault's id); the second can neither tier into it nor, by fsck
# --remote --repair, remove the first's objects as orphans, and says why.
# A restore of the first vault's backup is the same vault and may. The
# object store is a store folder (CAPVAULT_OBJSTORE_DIR, the local backend).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S1=$CAPVAULT_STORE
S2=$T/store2
B=$T/bucket
mkdir -p "$T/in"
"$MKCAP" --packets 40 --seed 41 -o "$T/a.pcap"
"$MKCAP" --packets 40 --seed 42 -o "$T/b.pcap"
sha_a=$(sha256sum "$T/a.pcap" | cut -d' ' -f1)

# The first vault tiers a: it owns the prefix.
write_config() { write_inbox_config "$S1" "$1"; }
expect_rc 0 "$CAPVAULT" import "$T/a.pcap"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
expect_rc 0 "$CAPVAULT" tier 1
grep -qE '^vault [0-9a-f]{32}$' "$B/capvault-vault" ||
	fail "no owner key after the first move: $(cat "$B/capvault-vault" 2>&1)"
stop_daemon

# The second vault, on the same bucket.
export CAPVAULT_STORE=$S2
expect_rc 0 "$CAPVAULT" init
expect_rc 0 "$CAPVAULT" import "$T/b.pcap"
write_config() { write_inbox_config "$S2" "$1"; }
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
expect_rc 1 "$CAPVAULT" tier 1
grep -q "belongs to another vault" "$T/out" "$T/err" ||
	fail "second vault's tier: no reason given: $(cat "$T/out" "$T/err")"
check "second vault's capture stays local" local "$("$CAPVAULT" info --json 1 | jq -r .location)"
stop_daemon
CAPVAULT_OBJSTORE_DIR=$B expect_rc 1 "$CAPVAULT" fsck --remote --repair
grep -q "belongs to another vault" "$T/out" "$T/err" ||
	fail "second vault's fsck --repair: no reason given: $(cat "$T/out" "$T/err")"
[ -f "$B/objects/${sha_a:0:2}/$sha_a" ] || fail "the second vault removed the first's object"

# A restore of the first vault is the first vault.
export CAPVAULT_STORE=$S1
expect_rc 0 "$CAPVAULT" backup "$T/backup"
CAPVAULT_OBJSTORE_DIR=$B expect_rc 0 "$CAPVAULT" restore "$T/backup" --store "$T/store3"
export CAPVAULT_STORE=$T/store3
CAPVAULT_OBJSTORE_DIR=$B expect_rc 0 "$CAPVAULT" fsck --remote --repair
[ -f "$B/objects/${sha_a:0:2}/$sha_a" ] || fail "the restored vault removed its own object"

# The restored vault given another bucket (an empty folder), where none of
# the objects its catalog says it moved are: it claims nothing there and
# moves nothing there, and says what to check.
"$MKCAP" --packets 40 --seed 43 -o "$T/c.pcap"
expect_rc 0 "$CAPVAULT" import "$T/c.pcap"
id_c=$("$CAPVAULT" ls --json | jq -r '.[] | select(.name == "c.pcap") | .id')
mkdir "$T/bucket2"
write_config() { write_inbox_config "$T/store3" "$1"; }
start_daemon CAPVAULT_OBJSTORE_DIR="$T/bucket2"
expect_rc 1 "$CAPVAULT" tier "$id_c"
grep -q "has no capvault-vault key, nor object $sha_a .*is this the endpoint, bucket and prefix" "$T/out" "$T/err" ||
	fail "tier into another bucket: no reason given: $(cat "$T/out" "$T/err")"
[ -e "$T/bucket2/capvault-vault" ] && fail "the vault claimed a bucket without its objects"
[ -z "$(find "$T/bucket2" -type f)" ] || fail "something was written into the other bucket: $(find "$T/bucket2" -type f)"
check "capture stays local" local "$("$CAPVAULT" info --json "$id_c" | jq -r .location)"
stop_daemon

# A vault older than the owner key (no key, its objects there) claims as
# before.
rm "$B/capvault-vault"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
expect_rc 0 "$CAPVAULT" tier "$id_c"
grep -qE '^vault [0-9a-f]{32}$' "$B/capvault-vault" || fail "no owner key after a move by an older vault"
check "capture moved" remote "$("$CAPVAULT" info --json "$id_c" | jq -r .location)"
stop_daemon
finish
