#!/bin/bash
# The failed folder a writer planted: the default failed folder is
# <import folder>/.failed, a name any writer of the import folder can
# take first. Made a symlink to the store's tmp/, it had the daemon move
# a malformed file there, and the next start removed it (obj-XXXXXX is a
# name of the store's own leftovers): a file that could not be imported
# was deleted. Made a symlink to the folder itself, each .error note
# became a file that failed in turn, with a note of its own (40 files
# from one bad drop, until the names got too long). Now a .failed that
# is not a folder of the daemon's user is refused: the malformed file
# stays where it was, listed as failed; a real .failed works as before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

IN=$T/in
mkdir -p "$IN"
write_config() { write_inbox_config "$T/store" "$1"; }
start_daemon

# bad NAME: a malformed file dropped under NAME (written aside, renamed in).
bad() {
	printf 'precious, not a capture\n' >"$T/stage.tmp"
	mv "$T/stage.tmp" "$IN/$1"
}
# failed_logged NAME [N]: the log says N (1) times that NAME failed.
failed_logged() { [ "$(count_logged "failed $IN/$1:")" -ge "${2:-1}" ]; }

# 1. .failed -> the store's tmp/
ln -s ../store/tmp "$IN/.failed"
bad obj-AAAAAA
wait_for "obj-AAAAAA failed" failed_logged obj-AAAAAA
sleep 0.5
check "nothing moved into the store's tmp/" "" "$(ls "$T/store/tmp")"
check "the malformed file stays in its folder" yes "$([ -f "$IN/obj-AAAAAA" ] && echo yes)"
stop_daemon
start_daemon
wait_for "obj-AAAAAA failed again" failed_logged obj-AAAAAA 2
check "the malformed file survives a restart" yes "$([ -f "$IN/obj-AAAAAA" ] && echo yes)"

# 2. .failed -> the import folder itself: no chain of .error notes
rm "$IN/.failed"
ln -s . "$IN/.failed"
bad loop.pcap
wait_for "loop.pcap failed" failed_logged loop.pcap
sleep 1
check "no .error notes in the import folder" "" "$(find "$IN" -maxdepth 1 -name '*.error')"

# 3. a .failed folder of another user
if [ "$(id -u)" = 0 ]; then
	rm "$IN/.failed"
	mkdir "$IN/.failed"
	chown 64998 "$IN/.failed"
	bad other.pcap
	wait_for "other.pcap failed" failed_logged other.pcap
	sleep 0.5
	check "nothing moved into another user's .failed" "" "$(ls "$IN/.failed")"
	check "other.pcap stays in its folder" yes "$([ -f "$IN/other.pcap" ] && echo yes)"
fi

# 4. the daemon's own .failed, made by the daemon, works as before
rm -rf "$IN/.failed"
bad fine.pcap
wait_for "fine.pcap in .failed" test -f "$IN/.failed/fine.pcap"
check "fine.pcap's note" yes "$([ -f "$IN/.failed/fine.pcap.error" ] && echo yes)"
check ".failed is a real folder" yes "$([ -d "$IN/.failed" ] && [ ! -L "$IN/.failed" ] && echo yes)"
stop_daemon
finish
