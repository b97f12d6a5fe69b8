#!/usr/bin/env bash
# cache_symlinks.sh - the read-through cache's start (capvaultd, and the
# CLI commands that open it) empties cache/tmp and removes what is not a
# cache file from the fan-out folders cache/NN: a symlink in the place of
# either must not be followed, or the folder it names is emptied (the
# daemon's user could have a root-run `capvault prune` delete the files
# of any folder). The symlink goes, the folder it names is untouched, and
# the cache still works. The same for cache itself (its tmp/ and NN/
# emptied), cache/state.tmp (written over) and cache/state (a FIFO hung
# the start).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
B=$T/bucket
mkdir -p "$T/in"
write_config() { write_inbox_config "$S" "$1"; }
"$MKCAP" --packets 300 --payload 1000 --seed 5 -o "$T/c1.pcap"
expect_rc 0 "$CAPVAULT" import "$T/c1.pcap"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
stop_daemon
mkdir -p "$T/victim1" "$T/victim2"
plant() {
	for i in 1 2 3; do echo precious >"$T/victim1/file$i"; echo precious >"$T/victim2/file$i"; done
	rm -rf "$S/cache/tmp" "$S/cache/00"
	ln -s "$T/victim1" "$S/cache/tmp"
	ln -s "$T/victim2" "$S/cache/00"
}
plant
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
check "files of the folder cache/tmp linked to" 3 "$(ls "$T/victim1" | wc -l)"
check "files of the folder cache/00 linked to" 3 "$(ls "$T/victim2" | wc -l)"
[ -d "$S/cache/tmp" ] && [ ! -L "$S/cache/tmp" ] || fail "cache/tmp is not a folder again"
[ ! -L "$S/cache/00" ] || fail "the symlink cache/00 is still there"
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
expect_rc 0 "$CAPVAULT" tier 1
curl -sS -H "Authorization: Bearer $RO" -o "$T/dl" "$U/v1/captures/1/file"
cmp "$T/dl" "$T/c1.pcap" || fail "download through the cache"
stop_daemon
# The CLI opens the cache too (prune without a daemon).
plant
CAPVAULT_OBJSTORE_DIR="$B" "$CAPVAULT" prune --dry-run >/dev/null 2>&1 || true
check "files of the folder cache/tmp linked to, after prune" 3 "$(ls "$T/victim1" | wc -l)"
check "files of the folder cache/00 linked to, after prune" 3 "$(ls "$T/victim2" | wc -l)"
# cache/state.tmp, written at every open and close: a symlink there must
# not have the file it names written over; a FIFO as cache/state must
# not hang the start (it reads as untrusted: the cache starts empty).
echo "precious line" >"$T/victim"
ln -s "$T/victim" "$S/cache/state.tmp"
CAPVAULT_OBJSTORE_DIR="$B" "$CAPVAULT" prune --dry-run >/dev/null 2>&1 || true
check "the file cache/state.tmp linked to, after prune" "precious line" "$(cat "$T/victim")"
rm -f "$S/cache/state.tmp"
ln -s "$T/victim" "$S/cache/state.tmp"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
stop_daemon
check "the file cache/state.tmp linked to, after capvaultd" "precious line" "$(cat "$T/victim")"
rm -f "$S/cache/state"
mkfifo "$S/cache/state"
rc=0
CAPVAULT_OBJSTORE_DIR="$B" timeout 20 "$CAPVAULT" prune --dry-run >/dev/null 2>&1 || rc=$?
[ "$rc" != 124 ] || fail "capvault prune hangs on a FIFO as cache/state"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
stop_daemon
[ -f "$S/cache/state" ] && [ ! -p "$S/cache/state" ] || fail "cache/state is not a file again"
# The cache folder itself a symlink: not followed either (its tmp/ and
# NN/ folders would be emptied, a file named state written over).
mkdir -p "$T/victim3/tmp" "$T/victim3/00" "$T/victim3/ab"
for d in tmp 00 ab; do echo precious >"$T/victim3/$d/file"; done
echo "precious line" >"$T/victim3/state"
rm -rf "$S/cache"
ln -s "$T/victim3" "$S/cache"
CAPVAULT_OBJSTORE_DIR="$B" "$CAPVAULT" prune --dry-run >/dev/null 2>&1 || true
check "files of the folder cache linked to, after prune" 3 "$(cat "$T"/victim3/*/file | grep -c precious)"
check "the file state of the folder cache linked to" "precious line" "$(cat "$T/victim3/state")"
[ -d "$S/cache" ] && [ ! -L "$S/cache" ] || fail "cache is not a folder again after prune"
rm -rf "$S/cache"
ln -s "$T/victim3" "$S/cache"
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
stop_daemon
check "files of the folder cache linked to, after capvaultd" 3 "$(cat "$T"/victim3/*/file | grep -c precious)"
[ -d "$S/cache" ] && [ ! -L "$S/cache" ] || fail "cache is not a folder again after capvaultd"
finish
