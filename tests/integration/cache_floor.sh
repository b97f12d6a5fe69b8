#!/usr/bin/env bash
# cache_floor.sh - the object store's read-through cache gives way before
# captures do (adv18 F9). The store is a 40 MiB tmpfs mounted by the test,
# the object store a folder outside it (CAPVAULT_OBJSTORE_DIR), the cache's
# bound the default 10 GiB (far past the tmpfs), retention.min_free 6MiB:
# the cache keeps max(6 MiB, 5% of 40 MiB) + 4 MiB = 10 MiB free.
# 1. Downloads and range reads of 12 tiered captures (36 MiB, more than
#    the file system) fill the cache only down to that floor: the free
#    space never goes below it, the cache holds a good part of the file
#    system, capvault_cache_limit_bytes says how much it may hold, and
#    nothing is pruned.
# 2. A filler file takes the free space below min_free: the next
#    retention pass (the daemon looks every second) trims the cache
#    rather than prune the local captures. An import that needs the room
#    the cache holds gets it. A reload that changes min_free changes the
#    cache's floor.
# 3. The same without a daemon: `capvault prune` evicts cache bytes first
#    and prunes no capture.
# Skips (77) without root or when mounting a tmpfs is not permitted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

mount_test_fs 40m
S=$FS/store
B=$T/bucket
export CAPVAULT_STORE=$S
MB=$((1024 * 1024))
FLOOR=$((10 * MB))
MIN_FREE=$((6 * MB))
mkdir -p "$T/in" "$T/src"
write_config() {
	write_inbox_config "$S" "$1"
	cat >>"$T/d.yaml" <<EOC
retention:
  interval: 1h
  min_free: $MIN_FREE_CFG
EOC
}
MIN_FREE_CFG=6MiB
free_bytes() { echo $(($(stat -f -c '%a * %S' "$FS"))); }
LOW=$((40 * MB))
# note_free: the least free space seen so far, in LOW.
note_free() {
	local f
	f=$(free_bytes)
	[ "$f" -lt "$LOW" ] && LOW=$f
	return 0
}
for i in $(seq 1 14); do
	"$MKCAP" --size $((3 * MB)) --hosts 8 --seed "$i" --start $((1600000000 + i * 100)) \
		-o "$T/src/c$i.pcap"
	sha256sum <"$T/src/c$i.pcap" | cut -d' ' -f1 >"$T/src/c$i.sha"
done

start_daemon CAPVAULT_OBJSTORE_DIR="$B"
RO=$("$CAPVAULT" token add ro --scopes read 2>/dev/null)
api() { curl -sS -H "Authorization: Bearer $RO" "$@"; }
metric() { api "$U/metrics" | awk -v m="capvault_$1" '$1 == m { print $2 }'; }
location() { [ "$("$CAPVAULT" info --json "$1" | jq -r .location)" = "$2" ]; }
# Twelve captures in, four at a time (each batch tiered before the next:
# the tmpfs holds only so many local copies).
for batch in 0 1 2; do
	for j in 1 2 3 4; do
		i=$((batch * 4 + j))
		mv "$T/src/c$i.pcap" "$T/in/"
		wait_for "c$i.pcap imported" logged "imported $T/in/c$i.pcap:" || break 2
	done
	ids=$(seq $((batch * 4 + 1)) $((batch * 4 + 4)))
	# shellcheck disable=SC2086
	expect_rc 0 "$CAPVAULT" tier $ids
	for id in $ids; do wait_for "capture $id remote" location "$id" remote; done
done
# Two captures stay local: the ones min_free would prune.
for i in 13 14; do
	mv "$T/src/c$i.pcap" "$T/in/"
	wait_for "c$i.pcap imported" logged "imported $T/in/c$i.pcap:"
done

# --- 1. reads of tiered captures fill the cache down to the floor only
for id in $(seq 1 12); do
	if [ $((id % 2)) = 0 ]; then
		api -o "$T/dl" "$U/v1/captures/$id/file"
		check "capture $id downloaded whole" "$(cat "$T/src/c$id.sha")" \
			"$(sha256sum <"$T/dl" | cut -d' ' -f1)"
	else
		# A query caches the blocks it reads (a Range download does not).
		api -o "$T/q.pcap" "$U/v1/packets?captures=$id"
		[ "$(stat -c %s "$T/q.pcap")" -gt 2000000 ] || fail "capture $id: a query"
	fi
	note_free
done
# The cache's writer thread writes the last blocks after the answers (on
# a loaded machine, well after): the free space settles once it is done,
# else its evictions would undo the filler below.
settle() {
	local a b=-1 same=0
	for _ in $(seq 100); do
		a=$(free_bytes)
		if [ "$a" = "$b" ]; then same=$((same + 1)); else same=0; fi
		[ "$same" -ge 3 ] && return 0
		b=$a
		sleep 0.2
	done
	fail "the free space never settled"
}
settle
note_free
echo "least free space: $LOW bytes (floor $FLOOR); cache $(metric cache_bytes) bytes"
[ "$LOW" -ge "$FLOOR" ] || fail "the cache took the free space down to $LOW bytes, below $FLOOR"
cache_bytes=$(metric cache_bytes)
[ "$cache_bytes" -ge $((12 * MB)) ] || fail "the cache holds only $cache_bytes bytes"
check "keep_free metric" "$FLOOR" "$(metric cache_keep_free_bytes)"
limit=$(metric cache_limit_bytes)
[ "$limit" -lt $((40 * MB)) ] && [ "$limit" -ge "$cache_bytes" ] ||
	fail "cache_limit_bytes $limit (cache_bytes $cache_bytes)"
[ "$(metric cache_evictions_total)" -gt 0 ] || fail "nothing evicted"
check "cache_max_bytes: the configured bound" $((10 * 1024 * MB)) "$(metric cache_max_bytes)"
grep -q "pruned capture" "$T/d.log" && fail "a capture was pruned: $(grep 'pruned capture' "$T/d.log")"

# --- 2. less free space: retention trims the cache, prunes nothing
fill=$(($(free_bytes) - MIN_FREE + 2 * MB))
head -c "$fill" /dev/zero >"$FS/filler"
# (Not "free space is below min_free now": the daemon may have given it
# back already, as it should, before the shell looks; a slow ASan run did.)
check "the filler written whole" "$fill" "$(stat -c %s "$FS/filler")"
wait_for "retention trimmed the cache" logged "retention: evicted"
[ "$(free_bytes)" -ge "$MIN_FREE" ] || fail "still below min_free: $(free_bytes) bytes"
grep -q "pruned capture" "$T/d.log" && fail "a capture was pruned: $(grep 'pruned capture' "$T/d.log")"
check "captures kept" 14 "$("$CAPVAULT" ls --json | jq length)"
for id in 13 14; do location "$id" local || fail "capture $id is not local any more"; done
# An import that needs the room the cache holds gets it: 8 MiB with 10
# MiB free (the store keeps 4 MiB for the index on top of a copy).
rm -f "$FS/filler"
fill=$(($(free_bytes) - FLOOR))
[ "$fill" -le 0 ] || head -c "$fill" /dev/zero >"$FS/filler"
"$MKCAP" --size $((8 * MB)) --hosts 8 --seed 15 -o "$T/in/c15.pcap"
wait_for "c15.pcap imported" logged "imported $T/in/c15.pcap:"
check "captures after the big import" 15 "$("$CAPVAULT" ls --json | jq length)"
grep -q "pruned capture" "$T/d.log" && fail "a capture was pruned: $(grep 'pruned capture' "$T/d.log")"
# A reload that raises min_free raises the cache's floor with it; back.
keep_free_is() { [ "$(metric cache_keep_free_bytes)" = "$1" ]; }
MIN_FREE_CFG=8MiB
write_config "$PORT"
kill -HUP "$DPID"
wait_for "the floor after a reload" keep_free_is $((12 * MB))
MIN_FREE_CFG=6MiB
write_config "$PORT"
kill -HUP "$DPID"
wait_for "the floor after a second reload" keep_free_is "$FLOOR"
# The cache fills again, down to its floor (blocks of queries: a whole
# copy may take only a quarter of what the cache may hold).
rm -f "$FS/filler"
for id in 1 2 3 4; do api -o "$T/q.pcap" "$U/v1/packets?captures=$id"; done
sleep 0.5
[ "$(metric cache_bytes)" -ge $((4 * MB)) ] || fail "the cache did not fill again: $(metric cache_bytes)"
stop_daemon

# --- 3. without a daemon, prune trims the cache first
fill=$(($(free_bytes) - MIN_FREE + 2 * MB))
head -c "$fill" /dev/zero >"$FS/filler"
expect_rc 0 "$CAPVAULT" prune --dry-run --json --config "$T/d.yaml"
check "dry run: no capture to prune" 0 "$(jq '.captures | length' "$T/out")"
check "dry run: nothing evicted" 0 "$(grep -c evicted "$T/err" || true)"
expect_rc 0 "$CAPVAULT" prune --json --config "$T/d.yaml"
check "prune: no capture pruned" 0 "$(jq '.captures | length' "$T/out")"
grep -q "evicted .* bytes of the object store cache" "$T/err" || fail "prune: $(cat "$T/err")"
[ "$(free_bytes)" -ge "$MIN_FREE" ] || fail "prune left the store below min_free"
check "captures kept by prune" 15 "$("$CAPVAULT" ls --json | jq length)"
rm -f "$FS/filler"
expect_rc 0 "$CAPVAULT" fsck
finish
