#!/bin/bash
# capvault import --move never removes a file of the store. An object
# imported from the store (capvault import --move on the store, or on a
# folder holding it, such as /var/lib/capvault) is a duplicate of
# itself; --move then removed it: every capture lost its only copy.
# Offline and through a running daemon.
LIB_NO_STORE=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

export CAPVAULT_STORE=$T/vault/store
mkdir -p "$T/vault" "$T/in"
"$CAPVAULT" init >/dev/null
for s in 1 2 3; do "$MKCAP" --packets 20 --seed "$s" -o "$T/c$s.pcap"; done
expect_rc 0 "$CAPVAULT" import "$T/c1.pcap" "$T/c2.pcap"
objects() { find "$CAPVAULT_STORE/objects" -type f | wc -l; }

# Offline, the folder that holds the store.
expect_rc 1 "$CAPVAULT" import --move "$T/vault"
check "objects left after import --move of the store's parent" 2 "$(objects)"
check "objects said to be left" 2 "$(grep -c 'inside the store; not removed' "$T/err")"
expect_rc 0 "$CAPVAULT" fsck
# An object named through a symlink to the objects folder: the link goes,
# not the object.
ln -s "$CAPVAULT_STORE/objects" "$T/link"
obj=$(find "$T/link/" -type f | head -1)
expect_rc 0 "$CAPVAULT" import --move "$obj"
check "objects left after import --move through a symlinked folder" 2 "$(objects)"

# Through the daemon: the store as its status names it.
write_config() { write_inbox_config "$CAPVAULT_STORE" "$1"; }
start_daemon
expect_rc 1 "$CAPVAULT" import --move "$CAPVAULT_STORE"
check "objects left after import --move of the store, through the daemon" 2 "$(objects)"
# --move still removes what it imported.
expect_rc 0 "$CAPVAULT" import --move "$T/c3.pcap"
check "an ordinary source is still removed" no "$([ -e "$T/c3.pcap" ] && echo yes || echo no)"
stop_daemon
expect_rc 0 "$CAPVAULT" fsck
check "objects at the end" 3 "$(objects)"
finish
