#!/bin/bash
# Backups killed part-way (SIGKILL at several points of a backup, a few
# rounds) are never taken for complete ones: restore either refuses them
# (exit 1, clear error, and what it left is not a store) or restores every
# capture, checked, and fsck then finds nothing wrong. A restore killed
# part-way never leaves a store that opens. A backup whose object was
# damaged or emptied after it was written is refused by restore.
. "$(dirname "$0")/lib.sh"

N=120
mkdir "$T/caps"
for i in $(seq $N); do "$MKCAP" --packets 12 --seed "$i" -o "$T/caps/c$i.pcap" >/dev/null; done
"$CAPVAULT" import --quiet "$T/caps" >/dev/null
check "captures" "$N" "$("$CAPVAULT" ls --json | jq length)"

# The backups go to another file system when there is one (copies, slower:
# more points to kill at), else beside the store (links).
B=$T
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	B=$(mktemp -d /dev/shm/capvault-bk.XXXXXX)
	trap 'rm -rf "$T" "$B"' EXIT
fi

start=$(date +%s%N)
expect_rc 0 "$CAPVAULT" backup "$B/full"
full_ms=$((($(date +%s%N) - start) / 1000000))
check "a finished backup is marked complete" "capvault-store 1" "$(cat "$B/full/capvault-store")"

# restored DIR NAME: restores DIR into $T/NAME and checks the outcome.
refused=0 restored=0
restored() {
	local rc=0
	"$CAPVAULT" restore "$1" --store "$B/$2" >"$T/rout" 2>"$T/rerr" || rc=$?
	checks=$((checks + 1))
	if [ "$rc" = 0 ]; then
		restored=$((restored + 1))
		expect_rc 0 "$CAPVAULT" fsck --store "$B/$2"
		grep -q " 0 problems" "$T/out" || fail "$2: fsck after a successful restore: $(tail -3 "$T/out")"
		check "$2: every capture restored" "$N" "$("$CAPVAULT" ls --store "$B/$2" --json | jq length)"
	else
		refused=$((refused + 1))
		[ "$rc" = 1 ] || fail "$2: restore exited $rc"
		grep -Eq "interrupted backup|not a capvault backup|bytes, its record says|hash to|No such file" \
			"$T/rerr" || fail "$2: restore refused without a clear reason: $(cat "$T/rerr")"
		grep -q "restored" "$T/rout" && fail "$2: a refused restore said 'restored'"
		if "$CAPVAULT" ls --store "$B/$2" >/dev/null 2>&1; then
			fail "$2: a refused restore left a store that opens"
		fi
	fi
}

restored "$B/full" r-full
check "the complete backup restored" 1 "$restored"

# Kill backups at points spread over a whole backup: by time (before and
# while the store opens, while the checkpoint is made), then by how many
# objects the backup holds already.
round=0
objects_in() { find "$1/objects" -type f 2>/dev/null | wc -l; }
for at in 0ms 5ms 30ms $((N / 20)) $((N / 5)) $((N * 2 / 5)) $((N * 3 / 5)) $((N * 4 / 5)) $((N * 19 / 20)); do
	round=$((round + 1))
	"$CAPVAULT" backup "$B/k$round" >/dev/null 2>&1 &
	pid=$!
	case $at in
	*ms) sleep "$(printf '0.%03d' "${at%ms}")" ;;
	*) while kill -0 "$pid" 2>/dev/null && [ "$(objects_in "$B/k$round")" -lt "$at" ]; do :; done ;;
	esac
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	if [ -e "$B/k$round" ]; then
		restored "$B/k$round" r-k$round
	fi
done
echo "killed backups: $refused refused, $((restored - 1)) complete"
# The store itself is untouched by all this.
expect_rc 0 "$CAPVAULT" fsck

# A restore killed part-way leaves a folder that no command opens.
"$CAPVAULT" restore "$B/full" --store "$B/rk" >/dev/null 2>&1 &
pid=$!
sleep "$(awk -v ms="$full_ms" 'BEGIN { printf "%.3f", ms / 4000 }')"
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ -e "$B/rk/capvault-store" ] && [ "$(cat "$B/rk/capvault-store")" != "capvault-store 1" ]; then
	expect_rc 1 "$CAPVAULT" ls --store "$B/rk"
	grep -q "interrupted restore" "$T/err" || fail "killed restore: $(cat "$T/err")"
fi

# Damage after the backup was written: an object emptied, one flipped, one
# gone. Each is refused, naming the object.
obj=$(find "$B/full/objects" -type f -print -quit)
for how in empty flip gone; do
	rm -rf "$B/d-$how"
	cp -a "$B/full" "$B/d-$how"
	o=$B/d-$how/${obj#"$B/full/"}
	chmod u+w "$o"
	case $how in
	empty) : >"$o" ;;
	flip) printf '\xff' | dd of="$o" bs=1 seek=100 conv=notrunc status=none ;;
	gone) rm -f "$o" ;;
	esac
	expect_rc 1 "$CAPVAULT" restore "$B/d-$how" --store "$B/rd-$how"
	grep -q "$(basename "$o")" "$T/err" || fail "$how: the object is not named: $(cat "$T/err")"
	expect_rc 1 "$CAPVAULT" ls --store "$B/rd-$how"
done
# A backup still marked in progress is refused before anything is written.
cp -a "$B/full" "$B/inprog" && echo "capvault-store 1 backup-in-progress" >"$B/inprog/capvault-store"
expect_rc 1 "$CAPVAULT" restore "$B/inprog" --store "$B/r-inprog"
grep -q "interrupted backup" "$T/err" || fail "in-progress backup: $(cat "$T/err")"
[ -e "$B/r-inprog" ] && fail "restore of an in-progress backup wrote something"
finish
