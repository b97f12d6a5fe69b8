#!/bin/bash
# The files a killed run left claimed (in <folder>/.capvault-claim) in a
# folder that is then dropped from the configuration used to stay hidden
# there for good: only configured folders' claims were looked at. The
# daemon keeps <store>/claim-folders, and at its next start hands such
# files back under their names, not imported (the folder is not its own
# any more). A name taken meanwhile, or a subfolder swapped for a symlink,
# keeps the file claimed, said in the log, and the folder listed for the
# next start. A reload that drops a folder only keeps it listed: its files
# may be in the workers' hands. A reload naming another store: keeps the
# list in the store the daemon runs on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
FOLDERS="b"
write_config() {
	{
		printf 'store: %s\nimport:\n' "$STORE"
		for f in $FOLDERS; do
			printf '  - path: %s\n    settle_time: 0s\n' "$T/$f"
		done
		printf 'api:\n  listen: ["127.0.0.1:%s"]\nscrub:\n  interval: 0s\n' "$1"
	} > "$T/d.yaml"
}
mkdir -p "$T/a" "$T/b/sub" "$T/elsewhere"
captures() { "$CAPVAULT" ls --json --store "$STORE" | jq length; }
listed() { grep -qxF "$T/$1" "$STORE/claim-folders"; }

FOLDERS="a b"
start_daemon
stop_daemon
listed a || fail "a not in claim-folders: $(cat "$STORE/claim-folders")"
listed b || fail "b not in claim-folders: $(cat "$STORE/claim-folders")"

# What a run killed while importing from b leaves; b/z.pcap is a new file
# of z's name, and b/link a subfolder since swapped for a symlink.
C="$T/b/.capvault-claim"
mkdir -p "$C/sub" "$C/link"
chmod 700 "$C"
"$MKCAP" --packets 10 --seed 1 -o "$C/sub/x.pcap"
"$MKCAP" --packets 10 --seed 2 -o "$C/y.pcap"
"$MKCAP" --packets 10 --seed 3 -o "$C/z.pcap"
"$MKCAP" --packets 10 --seed 4 -o "$C/link/w.pcap"
echo newer > "$T/b/z.pcap"
ln -s "$T/elsewhere" "$T/b/link"
x_sum=$(sha256sum < "$C/sub/x.pcap")
z_sum=$(sha256sum < "$C/z.pcap")

FOLDERS="a"
start_daemon
wait_for "the hand-back logged" logged "$T/b: no longer an import folder: 2 files"
stop_daemon
check "x handed back under its name" "$x_sum" "$(sha256sum < "$T/b/sub/x.pcap")"
[ -f "$T/b/y.pcap" ] || fail "y not handed back"
check "z's name kept its new file" newer "$(cat "$T/b/z.pcap")"
check "z stays claimed" "$z_sum" "$(sha256sum < "$C/z.pcap")"
logged "$C/z.pcap: cannot hand it back under its name" || fail "z's refusal not logged"
[ -f "$C/link/w.pcap" ] || fail "w left its claim through a symlinked subfolder"
[ -e "$T/elsewhere/w.pcap" ] && fail "w handed back through the symlink"
[ -e "$C/sub" ] && fail "the emptied claim subfolder was left"
check "nothing imported from a dropped folder" 0 "$(captures)"
listed b || fail "b dropped from claim-folders while z and w stay claimed"

# Once nothing stays claimed there, b is forgotten.
rm "$T/b/z.pcap" "$T/b/link"
mkdir "$T/b/link"
start_daemon
wait_for "the rest handed back" logged "$T/b: no longer an import folder: 2 files"
stop_daemon
[ -f "$T/b/z.pcap" ] && [ -f "$T/b/link/w.pcap" ] || fail "z and w not handed back"
[ -e "$C" ] && fail "the emptied claim folder was left: $(find "$C")"
listed b && fail "b still in claim-folders"

# A reload that drops a folder keeps it listed; the next start forgets it.
rm -rf "${T:?}/b"/*
FOLDERS="a b"
start_daemon
listed b || fail "b not listed after it came back"
FOLDERS="a"
write_config "${U##*:}"
kill -HUP "$DPID"
wait_for "reloaded" logged "configuration reloaded"
listed b || fail "a reload dropped b from claim-folders"
stop_daemon
start_daemon
stop_daemon
listed b && fail "b still listed at a start with nothing claimed there"
check "still nothing imported" 0 "$(captures)"

# A reload whose file names another store: (which needs a restart) keeps
# the list in the store the daemon runs on, not in the folder it names.
mkdir -p "$T/c" "$T/other"
FOLDERS="a"
start_daemon
reloads=$(count_logged "configuration reloaded")
FOLDERS="a c"
STORE="$T/other" write_config "${U##*:}"
kill -HUP "$DPID"
reloaded_again() { [ "$(count_logged "configuration reloaded")" -gt "$reloads" ]; }
wait_for "reloaded with another store" reloaded_again
logged "need a restart: store" || fail "the store change not named as needing a restart"
listed c || fail "c, added by the reload, not in the running store's claim-folders"
[ -e "$T/other/claim-folders" ] && fail "the reload wrote claim-folders into the new store: path"
logged "$T/other/claim-folders" && fail "the reload tried the new store: path: $(grep -F "$T/other" "$T/d.log")"
stop_daemon
finish
