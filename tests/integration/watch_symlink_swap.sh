#!/bin/bash
# A writer swaps a subfolder of an import folder for a symlink between
# dropping a file and the daemon taking it (settle_time gives seconds):
# the daemon followed the symlink, read whatever file of that name lay
# there and moved it into .failed (or imported and removed it). With the
# symlink pointing at the store's index/ and the file named CURRENT, the
# store no longer opened. Now a folder on the way that is a symlink is
# never followed: the file is left alone, in delete and in keep folders.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

mkdir -p "$T/in" "$T/keep" "$T/target" "$T/aside"
write_config() {
	cat >"$T/d.yaml" <<YAML
store: $CAPVAULT_STORE
import:
  - path: $T/in
    settle_time: 1s
  - path: $T/keep
    settle_time: 1s
    after_import: keep
api:
  listen: ["127.0.0.1:$1"]
scrub:
  interval: 0s
YAML
}
start_daemon
echo precious >"$T/target/victim.conf"
"$MKCAP" --packets 10 --seed 3 -o "$T/target/cap.pcap"
target_caps=$(sha256sum "$T/target/victim.conf" "$T/target/cap.pcap")

# swap FOLDER SUB NAME TARGET: FOLDER/SUB/NAME dropped, then, once the
# watcher has had time to see it (well within settle_time), SUB swapped for
# a symlink to TARGET.
n=0
swap() {
	n=$((n + 1))
	mkdir "$1/$2"
	echo junk >"$1/$2/$3"
	sleep 0.3
	mv "$1/$2" "$T/aside/$n"
	ln -s "$4" "$1/$2"
}
left_alone() { logged "$1: a folder on its path is a symlink" || logged "$1: not a regular file, left alone"; }
swap "$T/in" a victim.conf "$T/target"
swap "$T/in" b cap.pcap "$T/target"
swap "$T/keep" c victim.conf "$T/target"
swap "$T/keep" d cap.pcap "$T/target"
swap "$T/in" e CURRENT "$CAPVAULT_STORE/index"
# A watcher slowed down enough (a loaded machine) may not see a file
# before its folder is swapped, and then never hears of it: what must hold
# is below; that the daemon met at least one of them and said so shows
# the check ran.
said=0
for f in "$T/in/a/victim.conf" "$T/in/b/cap.pcap" "$T/keep/c/victim.conf" "$T/keep/d/cap.pcap" \
	"$T/in/e/CURRENT"; do
	if poll_until 10 left_alone "$f"; then said=$((said + 1)); fi
done
checks=$((checks + 1))
[ "$said" -ge 1 ] || fail "no swapped file was said to be left alone: $(tail -5 "$T/d.log")"
sleep 1
check "the symlinks' targets are untouched" "$target_caps" \
	"$(sha256sum "$T/target/victim.conf" "$T/target/cap.pcap" 2>&1)"
check "nothing moved into .failed" "" "$(find "$T/in/.failed" "$T/keep/.failed" -type f 2>/dev/null)"
check "the store's CURRENT is there" yes "$([ -f "$CAPVAULT_STORE/index/CURRENT" ] && echo yes)"
stop_daemon
expect_rc 0 "$CAPVAULT" ls --json
check "nothing imported" 0 "$(jq length "$T/out")"
finish
