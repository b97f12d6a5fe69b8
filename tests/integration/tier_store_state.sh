#!/usr/bin/env bash
# tier_store_state.sh - the object store's state (adv18 F8/F10), with the
# local backend (CAPVAULT_OBJSTORE_DIR): capvaultd checks the store once at
# start, in the background, and logs the outcome; GET /v1/status shows it
# under tier.store, `capvault status` in one line, /metrics as
# capvault_tier_store_up and capvault_tier_store_state{state}. A store
# folder that cannot be made (its parent is missing) is "no_bucket" while
# the daemon runs and imports; once the folder can be made, the next
# request finds it and the state is "ok" again. tier_store_rgw.sh does the
# same against RGW (a misspelt bucket, a wrong key). A read-only store
# folder is "refused" (a read-only tmpfs as root).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
mkdir -p "$T/in"
"$MKCAP" --packets 20 --seed 71 -o "$T/c1.pcap"
"$MKCAP" --packets 30 --seed 72 -o "$T/c2.pcap"

write_config() {
	write_inbox_config "$S" "$1"
}
status_json() {
	curl -sS --unix-socket "$S/capvault.sock" http://localhost/v1/status
}
store_state() { status_json | jq -r '.tier.store.state'; }
state_is() { [ "$(store_state)" = "$1" ]; }
metrics() {
	curl -sS --unix-socket "$S/capvault.sock" http://localhost/metrics
}

# A store folder whose parent is missing: the daemon starts all the same.
B=$T/mnt/bucket
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
wait_for "the start's check" logged "tier: object store local store $B: no_bucket:"
grep -q "<4>.*tier: object store local store $B: no_bucket: .*/mnt.*imports go on locally" \
	"$T/d.log" || fail "start line: $(grep 'tier: object store' "$T/d.log")"
check "state" no_bucket "$(store_state)"
status_json >"$T/st.json"
jq -e '.tier.store.error | test("cannot open .*/mnt")' "$T/st.json" >/dev/null ||
	fail "error: $(jq -c .tier.store "$T/st.json")"
jq -e '(.tier.store.since | type) == "string" and (.tier.store.checked | type) == "string"' \
	"$T/st.json" >/dev/null || fail "times: $(jq -c .tier.store "$T/st.json")"
expect_rc 0 "$CAPVAULT" status
grep -q "^objstore: *no_bucket since .*: cannot open .*/mnt" "$T/out" ||
	fail "capvault status: $(cat "$T/out")"
metrics >"$T/m"
grep -qx "capvault_tier_store_up 0" "$T/m" || fail "store_up: $(grep store "$T/m")"
grep -qx 'capvault_tier_store_state{state="no_bucket"} 1' "$T/m" ||
	fail "state metric: $(grep store_state "$T/m")"
grep -qx 'capvault_tier_store_state{state="ok"} 0' "$T/m" ||
	fail "state metric: $(grep store_state "$T/m")"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/m" >"$T/promtool" 2>&1 || fail "promtool: $(cat "$T/promtool")"
fi

# Imports go on locally meanwhile.
cp "$T/c1.pcap" "$T/in/"
wait_for "import while the store is missing" no_files "$T/in"
expect_rc 0 "$CAPVAULT" info --json 1
check "location" local "$(jq -r .location "$T/out")"

# The folder's parent appears: the next request opens it, the state follows.
mkdir "$T/mnt"
expect_rc 0 "$CAPVAULT" tier 1
check "state once the folder can be made" ok "$(store_state)"
wait_for "the change logged" logged "tier: object store local store $B: ok again (was no_bucket)"
check "error once ok" null "$(status_json | jq -c .tier.store.error)"
stop_daemon

# A store folder that is there and writable: ok from the start.
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
wait_for "ok at start" state_is ok
ok_line() { grep -q "^<6>capvaultd: tier: object store local store $B: ok$" "$T/d.log"; }
wait_for "ok logged" ok_line
expect_rc 0 "$CAPVAULT" status
grep -q "^objstore: *ok since .*(last asked .*)$" "$T/out" || fail "capvault status: $(cat "$T/out")"
metrics >"$T/m"
grep -qx "capvault_tier_store_up 1" "$T/m" || fail "store_up 1: $(grep store "$T/m")"
stop_daemon

# Not writable: a read-only file system (as root, where tmpfs can be
# mounted), or a read-only objects/ (as another user; root writes anyway).
MOUNTED=
on_exit() { [ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED"; }
if [ "$(id -u)" = 0 ] && mkdir "$T/ro" && mount -t tmpfs -o ro,size=1m tmpfs "$T/ro" 2>/dev/null; then
	MOUNTED=$T/ro
	start_daemon CAPVAULT_OBJSTORE_DIR="$T/ro/bucket"
	wait_for "refused at start (read-only file system)" state_is refused
	grep -q "<4>.*tier: object store local store $T/ro/bucket: refused: .*Read-only file system" \
		"$T/d.log" || fail "refused line: $(grep 'tier: object store' "$T/d.log")"
	cp "$T/c2.pcap" "$T/in/"
	wait_for "import while the store is read-only" no_files "$T/in"
	stop_daemon
elif [ "$(id -u)" != 0 ]; then
	chmod 0555 "$B/objects"
	start_daemon CAPVAULT_OBJSTORE_DIR="$B"
	wait_for "refused at start" state_is refused
	grep -q "tier: object store local store $B: refused: cannot write in $B/objects" \
		"$T/d.log" || fail "refused line: $(grep 'tier: object store' "$T/d.log")"
	cp "$T/c2.pcap" "$T/in/"
	wait_for "import while the store is read-only" no_files "$T/in"
	stop_daemon
	chmod 0755 "$B/objects"
else
	echo "cannot mount a tmpfs: the read-only case is not tried"
fi

# A store that fails as a whole holds the queue: one queued move tries it
# per hold (0.5 s, doubling to a minute), not every queued move on its own
# back-off (each would wait out request_timeout against a frozen store).
for i in $(seq 1 12); do
	"$MKCAP" --packets 5 --seed $((200 + i)) -o "$T/h$i.pcap"
	expect_rc 0 "$CAPVAULT" import --tags hold "$T/h$i.pcap"
done
write_config() {
	write_inbox_config "$S" "$1"
	printf 'retention:\n  policies:\n    - name: hold\n      tags: [hold]\n      tier_after: 0s\n' \
		>>"$T/d.yaml"
}
retries() { metrics | awk '$1 == "capvault_tier_retries_total" { print $2 }'; }
some_retry() { [ "$(retries)" -ge 1 ]; }
mv "$T/mnt" "$T/mnt.away" # the folder's parent gone again: no_bucket
start_daemon CAPVAULT_OBJSTORE_DIR="$B"
wait_for "a move failed" some_retry
sleep 4 # without the hold: 12 moves retried at 0.5, 1.5, 3.5 s, some 48 retries
n=$(retries)
checks=$((checks + 1))
[ "$n" -le 8 ] || fail "$n retries in 4 s with the store down: the queue was not held"
mv "$T/mnt.away" "$T/mnt"
all_remote() {
	curl -sS --unix-socket "$S/capvault.sock" "http://localhost/v1/captures?tag=hold&limit=100" |
		jq -e '[.captures[] | select(.location != "remote")] | length == 0' >/dev/null
}
wait_for "the held moves done once the store is back" all_remote
stop_daemon
write_config() {
	write_inbox_config "$S" "$1"
}

# No object store: the field is null, no state is 1 and there is no "up".
start_daemon
check "store without one" null "$(status_json | jq -c .tier.store)"
metrics >"$T/m"
check "states without a store" "5 0" \
	"$(grep -c '^capvault_tier_store_state{' "$T/m") $(grep -c '^capvault_tier_store_state{.*} 1$' "$T/m")"
if grep -q capvault_tier_store_up "$T/m"; then fail "store_up without a store"; fi
stop_daemon
finish
