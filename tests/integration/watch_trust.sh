#!/bin/bash
# capvaultd's import folder against writers it should not trust blindly
# (issue #15, items 5-9), one daemon run:
# - 15.5: a file the daemon cannot read is retried a bounded number of
#   times, shows as retrying in /v1/imports, /metrics and `capvault
#   status` meanwhile, then as a failure ("gave up"), and is left in place;
# - 15.7: two malformed files of one name both land in .failed, each with
#   its .error note; two captures of one name both land in a move: folder;
# - 15.8: a writer that closes after the header and appends the packets
#   within settle_time gets the whole capture imported, not a header;
# - 15.6: a capture renamed over the name of one just imported, 0-12 ms
#   later, is imported too, never deleted unimported;
# - 15.6, the crash story: a file a killed daemon left claimed (in
#   .capvault-claim) is imported at the next start, under its own name;
# - 15.9: FIFOs and symlinks renamed over dropped captures, again and
#   again, block no worker: SIGTERM still stops the daemon, and the last
#   FIFO is still there.
# As root, the daemon runs as uid 65534 in group 64999 and the folders are
# setgid 2770 of that group; the unreadable file is owned by uid 64998
# (another user), the others by the daemon's user (whether the store links
# or copies another user's file is the store's business, tested there).
LIB_NO_STORE=1 # the daemon makes its store, as its own user
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

chmod 755 "$T"
IN=$T/in
IN2=$T/in2
DONE=$T/done
STAGE=$T/stage
mkdir -p "$IN" "$IN2" "$DONE" "$STAGE" "$T/store"
WRITER=
if [ "$(id -u)" = 0 ] && setpriv --reuid=65534 --regid=64999 --clear-groups true 2>/dev/null; then
	DAEMON_AS=(setpriv --reuid=65534 --regid=64999 --clear-groups --)
	WRITER=65534:64999
	chown 65534:64999 "$T/store" "$DONE"
	chown 0:64999 "$IN" "$IN2"
	chmod 2770 "$IN" "$IN2"
	chmod 2775 "$DONE"
else
	echo "not root: the daemon runs as $(id -un), files are its own"
fi

cat >"$T/d.yaml" <<YAML
store: $T/store
jobs: 2
log_level: info
import:
  - path: $IN
    settle_time: 1s
  - path: $IN2
    settle_time: 200ms
    after_import: move:$DONE
api:
  listen: []
YAML

# drop SRC DIR/NAME [MODE [OWNER]]: the writer's file, renamed into place.
drop() {
	local tmp owner=${4:-$WRITER}
	tmp=$(mktemp "$STAGE/drop.XXXXXX")
	cat "$1" >"$tmp"
	[ -z "$owner" ] || chown "$owner" "$tmp"
	chmod "${3:-0644}" "$tmp"
	mv -f "$tmp" "$2"
}
sha() { sha256sum "$1" | cut -c1-64; }
status_json() { "$CAPVAULT" status --json --store "$T/store" >"$T/st.json" 2>/dev/null; }
in_catalog() {
	"$CAPVAULT" ls --json --store "$T/store" 2>/dev/null | jq -e --arg s "$1" \
		'[.[] | select(.sha256 == $s)] | length == 1' >/dev/null
}
metrics() { curl -s --unix-socket "$T/store/capvault.sock" http://localhost/metrics; }
metric() { metrics | awk -v m="capvault_$1" '$1 == m { print $2 }'; }

# stop_within SECONDS: SIGTERM must stop the daemon in time.
stop_within() {
	local rc=0
	kill -TERM "$DPID"
	for _ in $(seq $(($1 * 20))); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DPID" 2>/dev/null; then
		fail "SIGTERM did not stop the daemon within $1 s: $(tail -5 "$T/d.log")"
		kill -9 "$DPID"
	fi
	wait "$DPID" || rc=$?
	DPID=
	check "daemon exit code after SIGTERM" 0 "$rc"
	if grep -qE "runtime error|Sanitizer" "$T/d.log"; then
		fail "sanitizer report: $(grep -A5 -E "runtime error|Sanitizer" "$T/d.log" | head -20)"
	fi
}

"$MKCAP" --packets 20 --seed 1 -o "$T/c1.pcap"
# What a daemon killed in the middle of an import leaves behind.
"$MKCAP" --packets 9 --seed 61 -o "$T/left.pcap"
mkdir -p "$IN/.capvault-claim/lab"
cp "$T/left.pcap" "$IN/.capvault-claim/lab/left.pcap"
[ -z "$WRITER" ] || chown -R 65534:64999 "$IN/.capvault-claim"
chmod 700 "$IN/.capvault-claim"
start_daemon

# --- 15.5: a file the daemon cannot read, first thing (it takes ~15 s to give up)
UNREAD_MODE=0600
[ -n "$WRITER" ] || UNREAD_MODE=0000
"$MKCAP" --packets 5 --seed 55 -o "$T/unread.pcap"
drop "$T/unread.pcap" "$IN/unread.pcap" "$UNREAD_MODE" "${WRITER:+64998:64999}"
if [ -z "$WRITER" ] && [ -r "$IN/unread.pcap" ]; then
	echo "15.5 skipped: mode 0000 does not stop this user reading"
	SKIP55=yes
else
	SKIP55=
	listed() { status_json && jq -e --arg p "$IN/unread.pcap" \
		'.imports.retrying | map(select(.path == $p and .attempts >= 1)) | length == 1' \
		"$T/st.json" >/dev/null; }
	wait_for "the unreadable file listed as retrying in /v1/imports" listed || true
	jq -r '.imports.retrying[0].error' "$T/st.json"
	check "retrying_count" 1 "$(jq '.imports.retrying_count' "$T/st.json")"
	[ "$(jq '.imports.totals.retried' "$T/st.json")" -ge 1 ] || fail "totals.retried is 0"
	check "metric import_retrying" 1 "$(metric import_retrying)"
	[ "$(metric import_retries_total)" -ge 1 ] || fail "import_retries_total is 0"
	"$CAPVAULT" status --store "$T/store" >"$T/status.txt"
	grep -q "^retrying:" "$T/status.txt" || fail "capvault status shows no retrying section"
	grep -qF "  $IN/unread.pcap  after " "$T/status.txt" ||
		fail "capvault status does not list the file: $(cat "$T/status.txt")"
fi

# --- 15.6, the crash story: the claim left by a killed run is finished
wait_for "the capture left claimed imported" in_catalog "$(sha "$T/left.pcap")" || true
check "its name" left.pcap "$("$CAPVAULT" ls --json --store "$T/store" |
	jq -r --arg s "$(sha "$T/left.pcap")" '.[] | select(.sha256 == $s) | .name')"
wait_for "its claim removed" gone "$IN/.capvault-claim/lab/left.pcap" || true
check "its source path" "$(realpath "$IN")/lab/left.pcap" "$("$CAPVAULT" ls --json --store "$T/store" |
	jq -r --arg s "$(sha "$T/left.pcap")" '.[] | select(.sha256 == $s) | .source_path')"

# --- 15.7: same-named failures never overwrite each other
printf 'not a capture, first\n' >"$T/bad1"
printf 'not a capture, second\n' >"$T/bad2"
drop "$T/bad1" "$IN/bad.pcap"
wait_for "first bad.pcap failed" test -f "$IN/.failed/bad.pcap.error" || true
drop "$T/bad2" "$IN/bad.pcap"
wait_for "second bad.pcap failed" test -f "$IN/.failed/bad.1.pcap.error" || true
check "first failed file kept" "$(sha "$T/bad1")" "$(sha "$IN/.failed/bad.pcap")"
check "second failed file kept" "$(sha "$T/bad2")" "$(sha "$IN/.failed/bad.1.pcap")"
"$MKCAP" --packets 7 --seed 71 -o "$T/m1.pcap"
"$MKCAP" --packets 7 --seed 72 -o "$T/m2.pcap"
drop "$T/m1.pcap" "$IN2/m.pcap"
wait_for "first m.pcap moved" test -f "$DONE/m.pcap" || true
drop "$T/m2.pcap" "$IN2/m.pcap"
wait_for "second m.pcap moved" test -f "$DONE/m.1.pcap" || true
check "first moved capture kept" "$(sha "$T/m1.pcap")" "$(sha "$DONE/m.pcap")"
check "second moved capture kept" "$(sha "$T/m2.pcap")" "$(sha "$DONE/m.1.pcap")"

# --- 15.8: header, close, then the packets appended within settle_time
"$MKCAP" --packets 20 --seed 81 -o "$T/grow.pcap"
# Written in place: a close after the header, then a reopen to append.
: >"$IN/grow.pcap"
[ -z "$WRITER" ] || chown "$WRITER" "$IN/grow.pcap" || true
head -c 24 "$T/grow.pcap" >>"$IN/grow.pcap"
sleep 0.2
tail -c +25 "$T/grow.pcap" >>"$IN/grow.pcap"
wait_for "the whole growing capture imported" in_catalog "$(sha "$T/grow.pcap")" || true
wait_for "grow.pcap removed after its import" gone "$IN/grow.pcap" || true
check "no header-only capture" "" "$("$CAPVAULT" ls --json --store "$T/store" |
	jq -r '.[] | select(.name == "grow.pcap" and .packets == 0) | .id')"
check "nothing of grow.pcap failed" "" "$(ls "$IN/.failed" | grep grow || true)"

# --- 15.6: a capture renamed over the name of one just imported, 0-12 ms
# after it (the original lost it in 1 round of 15: the name was unlinked
# after the first import)
ROUNDS=40
for r in $(seq 1 $ROUNDS); do
	"$MKCAP" --packets 3 --seed $((600 + r)) -o "$STAGE/a$r"
	"$MKCAP" --packets 4 --seed $((700 + r)) -o "$STAGE/over$r.pcap"
done
for r in $(seq 1 $ROUNDS); do
	drop "$STAGE/a$r" "$IN/r$r.pcap"
	sleep "0.0$(printf %02d $((RANDOM % 13)))"
	drop "$STAGE/over$r.pcap" "$IN/r$r.pcap"
	sleep 0.03
done
all_over() {
	"$CAPVAULT" ls --json --store "$T/store" 2>/dev/null | jq -r '.[].sha256' | sort >"$T/cat.sha"
	for r in $(seq 1 $ROUNDS); do
		grep -qx "$(sha "$STAGE/over$r.pcap")" "$T/cat.sha" || return 1
	done
}
wait_for "every capture renamed over another imported" all_over || true
for r in $(seq 1 $ROUNDS); do
	grep -qx "$(sha "$STAGE/over$r.pcap")" "$T/cat.sha" || [ -f "$IN/r$r.pcap" ] ||
		fail "round $r: the capture renamed over was lost"
done
check "source path of a claimed file" "$(realpath "$IN")/r1.pcap" "$("$CAPVAULT" ls --json --store "$T/store" |
	jq -r --arg s "$(sha "$STAGE/over1.pcap")" '.[] | select(.sha256 == $s) | .source_path')"
wait_for "the rename-over files are gone" eval '[ -z "$(ls "$IN" | grep "^r[0-9]")" ]' || true

# --- 15.9: FIFOs and symlinks renamed over dropped captures: each must
# survive (never opened, never deleted), and no worker may block
for k in $(seq 1 100); do
	drop "$T/c1.pcap" "$IN/flip$k.pcap"
	mkfifo "$STAGE/fifo"
	mv -f "$STAGE/fifo" "$IN/flip$k.pcap"
	if [ $((k % 10)) = 0 ]; then
		drop "$T/c1.pcap" "$IN/link$k.pcap"
		ln -s "$T/c1.pcap" "$STAGE/link"
		mv -f "$STAGE/link" "$IN/link$k.pcap"
	fi
done
# One name flipped between a capture and a FIFO as fast as we can, for 2 s.
end=$((SECONDS + 2))
while [ "$SECONDS" -lt "$end" ]; do
	cp "$T/c1.pcap" "$STAGE/flipc"
	[ -z "$WRITER" ] || chown "$WRITER" "$STAGE/flipc"
	mv -f "$STAGE/flipc" "$IN/flip.pcap"
	mkfifo "$STAGE/fifo"
	mv -f "$STAGE/fifo" "$IN/flip.pcap"
done
sleep 1.5
check "every FIFO still there" 100 "$(find "$IN" -maxdepth 1 -name 'flip[0-9]*.pcap' -type p | wc -l)"
check "the last FIFO still there" yes "$([ -p "$IN/flip.pcap" ] && echo yes)"
check "every symlink still there" 10 "$(find "$IN" -maxdepth 1 -name 'link*.pcap' -type l | wc -l)"
check "no FIFO or symlink in .failed" "" "$(find "$IN/.failed" ! -type f ! -type d)"

# --- 15.5, the end: given up, listed as failed, left in place
if [ -z "$SKIP55" ]; then
	failed_listed() { status_json && jq -e --arg p "$IN/unread.pcap" \
		'.imports.recent_failures | map(select(.path == $p and (.error | test("gave up")))) | length == 1' \
		"$T/st.json" >/dev/null; }
	for _ in 1 2 3; do failed_listed && break; sleep 10; done
	wait_for "the unreadable file given up and listed as failed" failed_listed || true
	check "no longer retrying" 0 "$(jq '.imports.retrying_count' "$T/st.json")"
	check "left in place" yes "$([ -f "$IN/unread.pcap" ] && echo yes)"
	"$CAPVAULT" status --store "$T/store" | grep -F "$IN/unread.pcap: " | grep "gave up" >/dev/null ||
		fail "capvault status does not list the failure"
fi

stop_within 20
check "no claim left" "" "$(find "$IN/.capvault-claim" "$IN2/.capvault-claim" -type f 2>/dev/null)"
finish
