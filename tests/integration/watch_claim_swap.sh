#!/bin/bash
# The claim folder swapped while a file is imported from it: a writer of
# the import folder can rename <folder>/.capvault-claim within it (to a
# dotfile name, which the watcher ignores) and put a symlink in its
# place. After the import, after_import: delete removed the claim's path,
# which now reached the symlink's target: with the symlink pointing at
# the store's index/ and the file named CURRENT, the store no longer
# opened. Now the daemon checks that the claim's path still reaches the
# file imported, in a claim folder of its own, before it removes, moves
# or hands back anything: the file is left where the writer moved it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

mkdir -p "$T/in"
write_config() { write_inbox_config "$CAPVAULT_STORE" "$1"; }
# Compressed, so it is copied (a linked file is checked by the store) and
# takes a few seconds.
"$MKCAP" --packets 600000 --seed 1 --gzip -o "$T/big.gz"
start_daemon
mv "$T/big.gz" "$T/in/CURRENT"
wait_for "the file claimed" test -e "$T/in/.capvault-claim/CURRENT"
mv "$T/in/.capvault-claim" "$T/in/.aside"
ln -s "$CAPVAULT_STORE/index" "$T/in/.capvault-claim"
wait_for "the import done" logged "imported $T/in/CURRENT"
wait_for "the swap noticed" logged "its claim folder was moved or replaced meanwhile" || true
check "the store's CURRENT is there" yes "$([ -f "$CAPVAULT_STORE/index/CURRENT" ] && echo yes)"
check "the imported file is where the writer moved it" yes \
	"$([ -f "$T/in/.aside/CURRENT" ] && echo yes)"
stop_daemon
expect_rc 0 "$CAPVAULT" ls --json
check "the capture is stored" 1 "$(jq length "$T/out")"
finish
