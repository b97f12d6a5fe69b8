#!/usr/bin/env bash
# link_owner.sh - issue 15.5 and 15.4 end to end, as the documented
# deployment runs: a store owned by a non-root user, group members dropping
# files into a 2770 setgid folder. An import that gives up its source
# (--move) links only a file the store's user owns and nobody holds open
# for writing; a file another member owns is copied (it failed with EPERM
# before), and a file a writer still holds open is copied too, so the
# writer's later appends never reach the object. fsck passes after each.
# Needs root to create two users; skips (77) where that is impossible.
LIB_NO_STORE=1 # the store is the non-root user's, made below
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root to create users"; exit 77; }
command -v useradd >/dev/null && command -v setpriv >/dev/null || exit 77
G=cvg$$ A=cva$$ B=cvb$$
cleanup() {
	userdel "$A" 2>/dev/null || true
	userdel "$B" 2>/dev/null || true
	groupdel "$G" 2>/dev/null || true
	rm -rf "$T"
}
on_exit() { cleanup; }
trap 'daemon_exit' EXIT
groupadd "$G" 2>/dev/null && useradd -M -N -g "$G" "$A" 2>/dev/null &&
	useradd -M -N -g "$G" "$B" 2>/dev/null || { echo "cannot create users"; exit 77; }
# The binaries and $T must be reachable by the two users.
for d in "$(dirname "$CAPVAULT")" "$(dirname "$MKCAP")"; do
	setpriv --reuid "$A" --regid "$G" --init-groups test -x "$d" || {
		echo "build folder not reachable by other users"; exit 77; }
done
chmod 755 "$T"
as() { local u=$1; shift; setpriv --reuid "$u" --regid "$G" --init-groups "$@"; }

D=$T/drop S=$T/store
mkdir "$D" "$T/a" && chown "$A:$G" "$D" "$T/a" && chmod 2770 "$D"
mkdir "$S" && chown "$A:$G" "$S"
export CAPVAULT_STORE=$S
as "$A" "$CAPVAULT" init >/dev/null

# A member's file (mode 0640, group via setgid): copied, then removed.
as "$B" sh -c "umask 027; '$MKCAP' --packets 60 --seed 21 -o '$D/theirs.pcap'"
bsha=$(sha256sum "$D/theirs.pcap" | cut -d' ' -f1)
expect_rc 0 as "$A" "$CAPVAULT" import --move "$D/theirs.pcap"
grep -q '(linked)' "$T/out" && fail "another user's file was linked: $(cat "$T/out")"
[ -e "$D/theirs.pcap" ] && fail "--move left the member's file"
obj=$S/objects/${bsha:0:2}/$bsha
check "object owner" "$A" "$(stat -c %U "$obj")"
check "object mode" "444" "$(stat -c %a "$obj")"

# The store user's own file: linked.
as "$A" "$MKCAP" --packets 40 --seed 22 -o "$D/mine.pcap"
ino=$(stat -c %i "$D/mine.pcap")
msha=$(sha256sum "$D/mine.pcap" | cut -d' ' -f1)
expect_rc 0 as "$A" "$CAPVAULT" import --move "$D/mine.pcap"
grep -q '(linked)' "$T/out" || fail "own file not linked: $(cat "$T/out")"
check "linked inode" "$ino" "$(stat -c %i "$S/objects/${msha:0:2}/$msha")"

# Issue 15.4: the writer still holds an fd (the other one was closed, which
# the watcher sees as close-write): copied, and its appends stay its own.
as "$A" "$MKCAP" --packets 30 --seed 23 -o "$D/open.pcap"
osha=$(sha256sum "$D/open.pcap" | cut -d' ' -f1)
as "$A" sh -c "exec 3>>'$D/open.pcap'; '$CAPVAULT' import --move '$D/open.pcap' >'$T/a/open.out' 2>&1 || exit 9; printf 'appended after publish' >&3" ||
	fail "import of a file open for writing: $(cat "$T/a/open.out")"
grep -q '(linked)' "$T/a/open.out" && fail "a file open for writing was linked: $(cat "$T/a/open.out")"
check "object unchanged" "$osha" "$(sha256sum "$S/objects/${osha:0:2}/$osha" | cut -d' ' -f1)"

# capvaultd as the store's user: a member's file in delete mode is copied
# (it failed with EPERM and stayed before); in move mode even its own file
# is copied, so the moved file is not the object.
M=$T/moved
mkdir "$M" "$T/drop2" && chown "$A:$G" "$M" "$T/drop2" && chmod 2770 "$T/drop2"
write_config() {
	cat >"$T/d.yaml" <<EOC
store: $S
import:
  - path: $D
    settle_time: 0s
  - path: $T/drop2
    settle_time: 0s
    after_import: move:$M
api:
  listen: ["127.0.0.1:$1"]
scrub:
  interval: 0
EOC
}
DAEMON_AS=(setpriv --reuid "$A" --regid "$G" --init-groups --)
start_daemon
as "$B" sh -c "umask 027; '$MKCAP' --packets 80 --seed 25 -o '$D/d.tmp'"
as "$B" mv "$D/d.tmp" "$D/member.pcap"
wait_for "the member's file imported (delete mode)" gone "$D/member.pcap"
as "$A" "$MKCAP" --packets 90 --seed 26 -o "$T/drop2/own.tmp"
as "$A" mv "$T/drop2/own.tmp" "$T/drop2/own.pcap"
wait_for "its own file moved" test -e "$M/own.pcap"
stop_daemon
grep -q "failed .*member.pcap" "$T/d.log" && fail "member's file failed: $(grep member "$T/d.log")"
esha=$(sha256sum "$M/own.pcap" | cut -d' ' -f1)
[ "$(stat -c %i "$M/own.pcap")" = "$(stat -c %i "$S/objects/${esha:0:2}/$esha")" ] &&
	fail "move mode linked the object to the moved file"

expect_rc 0 as "$A" "$CAPVAULT" fsck --verify
grep -q " 0 problems" "$T/out" || fail "fsck: $(cat "$T/out")"
grep -q "^5 objects" "$T/out" || fail "fsck: 5 objects expected: $(cat "$T/out")"
finish
