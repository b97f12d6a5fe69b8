#!/usr/bin/env bash
# tier_kill.sh - invariant 7 under kill -9 (issue 18): capvaultd is killed
# at every point of a move, 100 rounds: after the put was confirmed
# (CAPVAULT_TIER_KILL=put), after "both" was recorded (both), after
# "remote" was recorded and the local copy removed (remote), and after a
# random short delay (anywhere, the upload itself included). After each
# kill every capture's bytes are where the catalog says they are
# (local/both: the local object hashes to its name; remote/both: the
# remote one does); after each restart the capture of the last round
# downloads to its original bytes, and interrupted moves
# are finished. At the end every download equals its original, fsck is clean and fsck --remote
# --repair removes the orphans (uploads whose move was cut before "both").
# The object store is a second store folder through the local backend
# (CAPVAULT_OBJSTORE_DIR).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
B=$T/bucket
N=110
ROUNDS=${TIER_KILL_ROUNDS:-100}
mkdir -p "$T/in" "$T/caps"
for i in $(seq $N); do
	"$MKCAP" --packets $((2 + i % 5)) --seed $((100 + i)) -o "$T/caps/c$i.pcap"
done
expect_rc 0 "$CAPVAULT" import "$T/caps"
check "imported" $N "$("$CAPVAULT" ls --json | jq length)"
sha256sum "$T"/caps/*.pcap | awk '{ print $1 }' | sort >"$T/originals"

write_config() {
	write_inbox_config "$S" "$1"
}

# Every capture's bytes are where the catalog says: one sha256sum -c over
# the copies it names.
# The catalog from the running daemon (one request), else from the store.
list_captures() {
	if alive && curl -sS --unix-socket "$S/capvault.sock" -o "$T/list.json" \
		"http://localhost/v1/captures?limit=1000" 2>/dev/null &&
		jq -e .captures "$T/list.json" >/dev/null 2>&1; then
		jq .captures "$T/list.json" >"$T/ls.json"
		return 0
	fi
	"$CAPVAULT" ls --json >"$T/ls.json" 2>"$T/ls.err" && return 0
	# The daemon reached its kill point while asked: offline, once it is gone.
	poll_until 10 dead || return 1
	"$CAPVAULT" ls --json >"$T/ls.json" 2>"$T/ls.err"
}
dead() { ! alive; }

check_placed() {
	if ! list_captures; then
		fail "round $1 ($2): capvault ls: $(cat "$T/ls.err")"
		return
	fi
	jq -r --arg s "$S" --arg b "$B" '.[] |
		(if .location != "remote" then "\(.sha256)  \($s)/objects/\(.sha256[0:2])/\(.sha256)" else empty end),
		(if .location != "local" then "\(.sha256)  \($b)/objects/\(.sha256[0:2])/\(.sha256)" else empty end)' \
		"$T/ls.json" >"$T/placed"
	checks=$((checks + 1))
	sha256sum -c --quiet "$T/placed" >"$T/placed.out" 2>&1 ||
		fail "round $1 ($2): a copy the catalog names is missing or wrong: $(head -5 "$T/placed.out")"
}

# start_daemon, except that the daemon may die while starting: its kill
# point is reached while it finishes the move the last kill cut.
# A start still going after 30 s is shown (its log and stacks); only one
# that neither started nor died in 120 s fails. Twice in CI under ASan a
# start passed 30 s, with nothing to show why; here none came near it in
# thousands of starts.
launch() {
	local starts
	touch "$T/d.log"
	starts=$(count_logged started:)
	PORT=$((20000 + RANDOM % 20000))
	write_config "$PORT"
	env "$@" "$CAPVAULTD" --config "$T/d.yaml" 2>>"$T/d.log" &
	DPID=$!
	checks=$((checks + 1))
	poll_until 30 up_or_dead "$starts" && return 0
	echo "round $round: capvaultd $DPID has not started after 30 s; what it is doing:" >&2
	hung_daemon
	if poll_until 90 up_or_dead "$starts"; then
		echo "round $round: capvaultd $DPID went on after all" >&2
		return 0
	fi
	fail "round $round: capvaultd neither started nor died in 120 s"
	hung_daemon
	return 1
}

# read_ok ID...: each capture downloads (through the daemon, from the
# bucket for a remote one) to bytes that hash to its sha256.
# A daemon killed by its hook after its start (finishing a cut move) is
# not asked: only one that still runs.
alive() { [ -n "$DPID" ] && [ -e "/proc/$DPID" ] && ! grep -q '^State:.*Z' "/proc/$DPID/status" 2>/dev/null; }
read_ok() {
	local id want
	for id in "$@"; do
		want=$(jq -r --argjson id "$id" '.[] | select(.id == $id) | .sha256' "$T/ls.json")
		if ! curl -sS --unix-socket "$S/capvault.sock" -o "$T/dl" \
			"http://localhost/v1/captures/$id/file" 2>"$T/dl.err"; then
			alive && fail "capture $id: download failed: $(cat "$T/dl.err")"
			continue
		fi
		alive || continue
		check "capture $id reads back" "$want" "$(sha256sum <"$T/dl" | cut -d' ' -f1)"
	done
}

# POST /v1/tier over the unix socket (what `capvault tier` sends; curl
# starts faster than the CLI, which matters under ASan).
tier_req() {
	local ids
	ids=$(printf '"%s",' "$@")
	curl -sS --max-time 20 --unix-socket "$S/capvault.sock" -o /dev/null -X POST \
		-H 'Content-Type: application/json' -d "{\"captures\": [${ids%,}]}" \
		http://localhost/v1/tier 2>/dev/null
}

points=(put both remote delay)
DPID=
check_placed 0 start
for round in $(seq "$ROUNDS"); do
	point=${points[$((round % 4))]}
	id=$(( (round - 1) % N + 1 ))
	prev=$(( (round + N - 2) % N + 1 ))
	if [ "$point" = delay ]; then
		launch CAPVAULT_OBJSTORE_DIR="$B"
	else
		launch CAPVAULT_OBJSTORE_DIR="$B" CAPVAULT_TIER_KILL="$point:1"
	fi
	# After the restart (or the kill while starting): every copy the
	# catalog names is whole, and the last round's capture reads back.
	check_placed "$round" "$point"
	alive && read_ok "$prev"
	if [ "$point" = delay ]; then
		tier_req "$id" $((id % N + 1)) $(((id + 1) % N + 1)) &
		cli=$!
		sleep "0.0$((RANDOM % 30))"
		kill -9 "$DPID" 2>/dev/null || true
		wait "$cli" 2>/dev/null || true
	else
		tier_req "$id" || true
		# Already remote (an earlier round moved it): nothing to kill at.
		kill -9 "$DPID" 2>/dev/null || true
	fi
	wait "$DPID" 2>/dev/null || true
	DPID=
done
# Right after the last kill, before any restart.
check_placed last kill

# The last start finishes what the last kill cut; then everything reads.
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
no_both() { [ "$("$CAPVAULT" ls --json | jq '[.[] | select(.location == "both")] | length')" = 0 ]; }
wait_for "interrupted moves finished" no_both
check_placed end resumed
moved=$("$CAPVAULT" ls --json | jq '[.[] | select(.location == "remote")] | length')
[ "$moved" -ge 20 ] || fail "only $moved captures were moved in $ROUNDS rounds"
# Every capture downloads as it was imported, local or remote.
for id in $("$CAPVAULT" ls --json | jq -r '.[].id'); do
	curl -sS --unix-socket "$S/capvault.sock" "http://localhost/v1/captures/$id/file" | sha256sum
done | awk '{ print $1 }' | sort >"$T/downloads"
check "downloads = originals" "$(cat "$T/originals")" "$(cat "$T/downloads")"
stop_daemon
expect_rc 0 "$CAPVAULT" fsck
export CAPVAULT_OBJSTORE_DIR=$B
expect_rc 0 "$CAPVAULT" fsck --remote --repair
expect_rc 0 "$CAPVAULT" fsck --remote --verify
grep -q ": 0 problems" "$T/out" || fail "fsck --remote after repair: $(cat "$T/out")"
check "remote objects = remote captures" "$moved" \
	"$(find "$B/objects" -type f | wc -l)"
finish
