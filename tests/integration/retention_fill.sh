#!/bin/bash
# min_free through the daemon on a small file system: a 64 MiB tmpfs,
# mounted by the test, is the store, with min_free 24MiB.
# 1. Unprotected captures dropped one by one fill it: once below the
#    floor, the daemon prunes the oldest first (policy min_free) and the
#    import goes on; nothing dropped is lost (each file imported once, the
#    folder empties).
# 2. Captures tagged keep (the protect tag) fill it further: pruning
#    removes the last unprotected captures, then cannot help; imports are
#    refused with the clear error (the store below min_free, or a capture
#    that fits only once protected captures go), and the files waiting in the import
#    folder are still there. Removing captures (capvault rm, daemon
#    stopped) lets them in.
# Skips (77) without root or when mounting a tmpfs is not permitted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

mount_test_fs 64m
S=$FS/store

mkdir -p "$T/in" "$T/prot" "$T/src"
cat >"$T/d.yaml" <<YAML
store: $S
jobs: 2
log_level: info
import:
  - path: $T/in
    settle_time: 200ms
  - path: $T/prot
    tags: [keep]
    settle_time: 200ms
api:
  listen: []
retention:
  interval: 1h
  protect_tag: keep
  min_free: 24MiB
YAML

MB=$((1024 * 1024))
# 3 MiB captures, each different.
for i in $(seq 1 30); do
	"$MKCAP" --size $((3 * MB)) --hosts 16 --seed $i --start $((1600000000 + i)) -o "$T/src/u$i.pcap"
done
for i in $(seq 1 20); do
	"$MKCAP" --size $((3 * MB)) --hosts 16 --seed $((100 + i)) -o "$T/src/k$i.pcap"
done
free_mb() { echo $(($(stat -f -c '%a * %S' "$FS") / MB)); }
# The files of the protected folder not imported yet: in it, or claimed
# (.capvault-claim/) by an import under way.
waiting_files() { find "$T/prot" "$T/prot/.capvault-claim" -maxdepth 1 -name '*.pcap' 2>/dev/null | sort; }

# --- 1. unprotected: pruning keeps the imports going
start_daemon
for i in $(seq 1 20); do
	mv "$T/src/u$i.pcap" "$T/in/"
	wait_for "u$i.pcap imported" logged "imported $T/in/u$i.pcap:" || break
done
wait_for "pruning logged" logged "policy min_free"
echo "after 20 unprotected captures: $(free_mb) MiB free"
pruned=$(grep -o 'pruned capture [0-9]*' "$T/d.log" | awk '{print $3}' | paste -sd, -)
echo "pruned: $pruned"
n_pruned=$(grep -c 'pruned capture [0-9]*' "$T/d.log")
[ "$n_pruned" -ge 1 ] || fail "nothing pruned"
check "oldest first" "$(seq -s, 1 "$n_pruned")" "$pruned"
check "every pruning by min_free" "$n_pruned" "$(grep 'pruned capture' "$T/d.log" | grep -c 'policy min_free')"
check "each file imported once" 20 "$(grep -o "imported $T/in/u[0-9]*.pcap:" "$T/d.log" | sort -u | wc -l)"
check "no file imported twice" 20 "$(grep -c "imported $T/in/u[0-9]*.pcap:" "$T/d.log")"

# --- 2. protected: pruning cannot help, imports are refused, files wait
# Each file goes in once pruning made room for it; stop when pruning
# says it cannot help any more.
# Pruning cannot help: said once the store went below min_free, or, as a
# capture is refused before it takes the store below (the room only the
# protected captures hold is no room retention can make), for the file.
cannot_help="store still below min_free after pruning: imports are refused"
waits="waiting, as retention prunes nothing for it"
helpless() { logged "$cannot_help" || logged "$waits"; }
for i in $(seq 1 16); do
	mv "$T/src/k$i.pcap" "$T/prot/"
	for _ in $(seq 300); do
		logged "imported $T/prot/k$i.pcap:" && break
		helpless && break
		sleep 0.1
	done
	helpless && break
done
wait_for "pruning cannot help logged" helpless
[ "$(grep -cF "$cannot_help" "$T/d.log")" -le 1 ] || fail "said more than once: $cannot_help"
wait_for "k$i.pcap refused" logged "retrying $T/prot/k$i.pcap"
refused=$(grep -F "retrying $T/prot/k$i.pcap" "$T/d.log" | tail -1)
echo "refused: $refused"
case $refused in
*"store below min_free ("*" free < "*"): import refused"*) ;;
*"even with every local capture pruned but the protected ones"*"$waits"*) ;;
*) fail "clear error in the log: $refused" ;;
esac
waiting=$(waiting_files)
check "a file waits in the import folder" 1 "$(echo "$waiting" | grep -c .)"
# Drop a few more: they wait too, none is lost or moved to .failed.
for i in $(seq $((i + 1)) $((i + 3))); do mv "$T/src/k$i.pcap" "$T/prot/"; done
sleep 3
check "files still waiting" 4 "$(waiting_files | wc -l)"
check "nothing failed" "" "$(ls "$T/prot/.failed" 2>/dev/null)"
stop_daemon
expect_rc 0 "$CAPVAULT" ls --json --store "$S"
check "no unprotected capture left" 0 "$(jq '[.[] | select(.tags | index("keep") | not)] | length' "$T/out")"
nkeep=$(jq '[.[] | select(.tags | index("keep"))] | length' "$T/out")
check "protected captures all kept" "$(grep -c "imported $T/prot/" "$T/d.log")" "$nkeep"
grep -q "pruned capture .* policy min_free" "$T/d.log" || fail "no pruning"
grep -q 'pruned capture [0-9]* k[0-9]*\.pcap' "$T/d.log" && fail "a protected capture was pruned"
expect_rc 0 "$CAPVAULT" fsck --store "$S"

# Room made by hand (the protected ones deleted): the waiting files go in.
for id in $("$CAPVAULT" ls --json --store "$S" | jq -r '.[].id'); do expect_rc 0 "$CAPVAULT" rm --store "$S" "$id"; done
start_daemon
wait_for "waiting files imported" eval '[ -z "$(waiting_files)" ]'
stop_daemon
expect_rc 0 "$CAPVAULT" fsck --store "$S"

finish
