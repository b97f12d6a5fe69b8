#!/bin/bash
# A race harness for the import folder (issue #15): writers race the
# daemon's workers for ~15 s, each with its own names, while sha256 ground
# truth says what must come out:
# - rename-over: a capture renamed over the name of another 0-12 ms later
#   (the second must be imported, the first at most once);
# - FIFO and symlink swaps: a FIFO or a symlink (to a capture nobody
#   dropped) renamed over a dropped capture 0-5 ms later; they must be
#   neither imported nor deleted;
# - reopen to append: header, close, then the packets appended within
#   settle_time (the whole capture must be imported);
# - slow writers: the capture written in pieces over half a second on one
#   descriptor;
# - replaced mid-import: a large capture rewritten in place (O_TRUNC) by
#   another 20-40 ms after it was dropped (the second must be imported);
# - plain drops into a subfolder, and into a polled folder;
# - malformed files of one name (each must be in .failed with its .error);
# - a kill -9 in the middle of a burst, and a restart.
# Every capture must end up in the catalog exactly once (by sha256) or
# still wait in the folder, or be in .failed with a .error note; never
# lost. SIGTERM must stop the daemon within 20 s.
# As root, the daemon runs as uid 65534 in group 64999 in setgid 2770
# folders (tests/integration/watch_trust.sh has the details).
LIB_NO_STORE=1 # the daemon makes its store, as its own user
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

chmod 755 "$T"
IN=$T/in
POLL=$T/poll
STAGE=$T/stage
POOL=$T/pool
mkdir -p "$IN/sub" "$POLL" "$STAGE" "$POOL" "$T/store"
WRITER=
if [ "$(id -u)" = 0 ] && setpriv --reuid=65534 --regid=64999 --clear-groups true 2>/dev/null; then
	DAEMON_AS=(setpriv --reuid=65534 --regid=64999 --clear-groups --)
	WRITER=65534:64999
	chown 65534:64999 "$T/store"
	chown 0:64999 "$IN" "$IN/sub" "$POLL"
	chmod 2770 "$IN" "$IN/sub" "$POLL"
fi

cat >"$T/d.yaml" <<YAML
store: $T/store
jobs: 2
log_level: info
import:
  - path: $IN
    recursive: true
    settle_time: 1s
  - path: $POLL
    watch: poll
    poll_interval: 200ms
    settle_time: 300ms
api:
  listen: []
YAML

ROUNDS=${WATCH_RACE_ROUNDS:-10}
sha() { sha256sum "$1" | cut -c1-64; }
# cap NAME PACKETS: a capture of its own (seeded by a counter) in the pool.
seed=1000
cap() {
	seed=$((seed + 1))
	"$MKCAP" --packets "$2" --seed "$seed" -o "$POOL/$1"
}
# must/maybe/never FILE: the ground truth.
must() { echo "$(sha "$1") $1" >>"$T/must"; }
maybe() { echo "$(sha "$1") $1" >>"$T/maybe"; }
never() { echo "$(sha "$1") $1" >>"$T/never"; }
own() { [ -z "$WRITER" ] || chown "$WRITER" "$@"; }
# as_writer CMD...: runs CMD as the writer (files it creates are its own).
as_writer() {
	if [ -n "$WRITER" ]; then
		setpriv --reuid=65534 --regid=64999 --clear-groups -- "$@"
	else
		"$@"
	fi
}
# put SRC DST: the writer's copy of SRC renamed into place.
put() {
	local tmp
	tmp=$(mktemp "$STAGE/put.XXXXXX")
	cat "$1" >"$tmp"
	own "$tmp"
	mv -f "$tmp" "$2"
}
ms() { sleep "$(printf '0.%03d' "$1")"; }
: >"$T/must"
: >"$T/maybe"
: >"$T/never"

# The writers' material, made before the daemon starts.
for r in $(seq 1 "$ROUNDS"); do
	cap "ro_a$r" $((5 + r)); maybe "$POOL/ro_a$r"
	cap "ro_b$r" $((6 + r)); must "$POOL/ro_b$r"
	cap "sw_c$r" 8; maybe "$POOL/sw_c$r"
	cap "sl_c$r" 8; maybe "$POOL/sl_c$r"
	cap "sl_t$r" 9; never "$POOL/sl_t$r"
	cap "ap$r" 30; must "$POOL/ap$r"
	cap "slow$r" 40; must "$POOL/slow$r"
	cap "big$r" 2000; maybe "$POOL/big$r"
	cap "rep$r" 12; must "$POOL/rep$r"
	cap "sub$r" 10; must "$POOL/sub$r"
	cap "poll$r" 10; must "$POOL/poll$r"
done
for k in $(seq 1 20); do
	cap "crash$k" 2000; must "$POOL/crash$k"
done

renamer() {
	for r in $(seq 1 "$ROUNDS"); do
		put "$POOL/ro_a$r" "$IN/ro$r.pcap"
		ms $((RANDOM % 13))
		put "$POOL/ro_b$r" "$IN/ro$r.pcap"
		ms 100
	done
}
swapper() {
	for r in $(seq 1 "$ROUNDS"); do
		put "$POOL/sw_c$r" "$IN/sw$r.pcap"
		ms $((RANDOM % 6))
		mkfifo "$STAGE/fifo$r"
		own "$STAGE/fifo$r"
		mv -f "$STAGE/fifo$r" "$IN/sw$r.pcap"
		put "$POOL/sl_c$r" "$IN/sl$r.pcap"
		ms $((RANDOM % 6))
		ln -s "$POOL/sl_t$r" "$STAGE/link$r"
		mv -f "$STAGE/link$r" "$IN/sl$r.pcap"
		ms 80
	done
}
appender() {
	for r in $(seq 1 "$ROUNDS"); do
		: >"$IN/ap$r.pcap"
		own "$IN/ap$r.pcap" || { echo "FAIL: ap$r.pcap gone before its first write" >&2; exit 1; }
		head -c 24 "$POOL/ap$r" >>"$IN/ap$r.pcap"
		ms $((RANDOM % 150))
		tail -c +25 "$POOL/ap$r" >>"$IN/ap$r.pcap"
		ms 50
	done
}
slow() {
	for r in $(seq 1 "$ROUNDS"); do
		: >"$IN/slow$r.pcap"
		own "$IN/slow$r.pcap" || { echo "FAIL: slow$r.pcap gone before its first write" >&2; exit 1; }
		{
			for off in 0 1 2 3 4; do
				dd if="$POOL/slow$r" bs=1k skip=$off count=1 status=none
				ms 100
			done
			dd if="$POOL/slow$r" bs=1k skip=5 status=none
		} >>"$IN/slow$r.pcap"
	done
}
replacer() {
	for r in $(seq 1 "$ROUNDS"); do
		put "$POOL/big$r" "$IN/rep$r.pcap"
		ms $((20 + RANDOM % 21))
		as_writer sh -c 'cat "$1" >"$2"' - "$POOL/rep$r" "$IN/rep$r.pcap" ||
			{ echo "FAIL: rep$r.pcap could not be rewritten (made read-only?)" >&2; exit 1; }
		ms 100
	done
}
plain() {
	for r in $(seq 1 "$ROUNDS"); do
		put "$POOL/sub$r" "$IN/sub/s$r.pcap"
		put "$POOL/poll$r" "$POLL/p$r.pcap"
		printf 'not a capture %s\n' "$r" >"$STAGE/bad"
		own "$STAGE/bad"
		mv -f "$STAGE/bad" "$IN/bad.pcap"
		ms 300
	done
}

echo "material made in $SECONDS s"
start_daemon
start_s=$(date +%s)
pids=()
for w in renamer swapper appender slow replacer plain; do
	"$w" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "writer $p failed"; done
echo "writers done in $(($(date +%s) - start_s)) s"

# A burst, then a crash in the middle of it, and a restart.
for k in $(seq 1 20); do put "$POOL/crash$k" "$IN/crash$k.pcap"; done
ms $((RANDOM % 80))
kill_daemon
claimed=$(find "$IN/.capvault-claim" -type f 2>/dev/null | wc -l || true)
echo "killed with $claimed files claimed"
start_daemon
echo "restarted at $SECONDS s"

imported() {
	"$CAPVAULT" ls --json --store "$T/store" 2>/dev/null | jq -r '.[].sha256' | sort >"$T/cat.sha"
	[ -z "$(cut -d' ' -f1 "$T/must" | sort | comm -23 - "$T/cat.sha")" ]
}
deadline=$((SECONDS + 40))
until imported || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.2; done
echo "imported at $SECONDS s"
sleep 1.5 # what is still settling

# SIGTERM completes.
kill -TERM "$DPID"
for _ in $(seq 400); do
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.05
done
if kill -0 "$DPID" 2>/dev/null; then
	fail "SIGTERM did not stop the daemon within 20 s: $(tail -5 "$T/d.log")"
	kill -9 "$DPID"
fi
rc=0
wait "$DPID" || rc=$?
DPID=
check "exit code after SIGTERM" 0 "$rc"
if grep -qE "runtime error|Sanitizer" "$T/d.log"; then
	fail "sanitizer report: $(grep -A5 -E "runtime error|Sanitizer" "$T/d.log" | head -20)"
fi

"$CAPVAULT" ls --json --store "$T/store" | jq -r '.[].sha256' | sort >"$T/cat.sha"
check "one record per sha256" "" "$(uniq -d "$T/cat.sha" | head -3)"
# What still waits in the folders or failed, by content.
find "$IN" "$POLL" -type f ! -name '*.error' -print0 | xargs -0 -r sha256sum | cut -c1-64 |
	sort >"$T/left.sha"
lost=0
while read -r s f; do
	if ! grep -qx "$s" "$T/cat.sha" && ! grep -qx "$s" "$T/left.sha"; then
		fail "lost: $f"
		lost=$((lost + 1))
	fi
done <"$T/must"
check "captures lost" 0 "$lost"
while read -r s f; do
	grep -qx "$s" "$T/cat.sha" && fail "imported through a symlink: $f"
done <"$T/never"
check "FIFOs neither imported nor deleted" "$ROUNDS" "$(find "$IN" -type p | wc -l)"
check "symlinks neither imported nor deleted" "$ROUNDS" "$(find "$IN" -type l | wc -l)"
check "malformed files each in .failed" "$ROUNDS" \
	"$(find "$IN/.failed" -maxdepth 1 -type f -name 'bad*.pcap' | wc -l)"
for f in $(find "$IN/.failed" "$POLL/.failed" -type f ! -name '*.error' 2>/dev/null); do
	[ -f "$f.error" ] || fail "$f has no .error note"
done
check "no claim left" "" "$(find "$IN/.capvault-claim" "$POLL/.capvault-claim" ! -type d 2>/dev/null)"
waiting=$(find "$IN" "$POLL" -path '*/.failed' -prune -o -type f -print | wc -l)
echo "$(wc -l <"$T/cat.sha") captures imported, $waiting files waiting, $claimed claimed at the kill"
finish
