#!/bin/bash
# Only `capvault init` and capvaultd (on a missing or empty folder) create
# a store; every other command refuses a folder that is not one and
# touches nothing in it. Opening a store removes only capvault's own temp
# files from tmp/ and never fails on anything else there. A store made
# before the marker file existed still opens (and is marked). A backup
# into the store itself is refused, however the path is spelled.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

"$MKCAP" --packets 40 --seed 1 -o "$T/a.pcap" >/dev/null
"$MKCAP" --packets 40 --seed 2 -o "$T/b.pcap" >/dev/null
tree() { (cd "$1" && find . | sort && find . -type f -exec cat {} + | md5sum); }

# --- a folder that is not a store: every command refuses and touches nothing
D=$T/notastore
mkdir -p "$D/tmp"
echo important >"$D/tmp/important.txt"
before=$(tree "$D")
for cmd in "ls" "stats" "info 1" "query --count" "rm 1" "tag 1 +x" "fsck" \
	"fsck --repair" "prune --dry-run" "import $T/a.pcap" "backup $T/bk-none"; do
	# shellcheck disable=SC2086
	expect_rc 1 "$CAPVAULT" ${cmd%% *} --store "$D" ${cmd#"${cmd%% *}"}
	grep -q "not a capvault store" "$T/err" || fail "$cmd: no clear error: $(cat "$T/err")"
done
expect_rc 1 "$CAPVAULT" token ls --store "$D"
grep -q "not a capvault store" "$T/err" || fail "token ls: no clear error: $(cat "$T/err")"
check "nothing touched" "$before" "$(tree "$D")"
[ -e "$T/bk-none" ] && fail "a backup of a non-store was written"
# init refuses it too: it is not empty
expect_rc 1 "$CAPVAULT" init --store "$D"
grep -q "not empty" "$T/err" || fail "init on a full folder: $(cat "$T/err")"
check "nothing touched by init" "$before" "$(tree "$D")"

# --- a missing or empty folder is not a store either; import does not make one
expect_rc 1 "$CAPVAULT" import --store "$T/typo" "$T/a.pcap"
grep -q "capvault init --store" "$T/err" || fail "import into a missing store: $(cat "$T/err")"
[ -e "$T/typo" ] && fail "import created a store"
mkdir "$T/empty"
expect_rc 1 "$CAPVAULT" ls --store "$T/empty"
check "the empty folder stays empty" "" "$(ls -A "$T/empty")"
expect_rc 1 "$CAPVAULT" query --store "$T/typo" --count
[ -e "$T/typo" ] && fail "query created a store"

# --- init: on a missing folder, on an empty one, and again (a no-op)
expect_rc 0 "$CAPVAULT" init --store "$T/new"
check "init line" "created a capvault store in $T/new" "$(cat "$T/out")"
check "marker" "capvault-store 1" "$(cat "$T/new/capvault-store")"
expect_rc 0 "$CAPVAULT" init --store "$T/empty"
expect_rc 0 "$CAPVAULT" init --store "$T/new"
check "init twice" "$T/new: already a capvault store" "$(cat "$T/out")"
expect_rc 0 "$CAPVAULT" import --store "$T/new" "$T/a.pcap"
expect_rc 0 "$CAPVAULT" ls --store "$T/empty"

# --- tmp/: capvault's own leftovers go, anything else stays, the open succeeds
S=$T/new
echo half >"$S/tmp/obj-Ab12Cd"
echo half >"$S/tmp/upload-x9Y8z7"
echo mine >"$S/tmp/important.txt"
mkdir -p "$S/tmp/bkdir/sub" && echo x >"$S/tmp/bkdir/sub/f"
expect_rc 0 "$CAPVAULT" ls --store "$S"
check "capvault's leftovers removed" "bkdir important.txt" "$(ls "$S/tmp" | xargs)"
check "the person's file kept" "mine" "$(cat "$S/tmp/important.txt")"
expect_rc 1 "$CAPVAULT" fsck --repair --store "$S"
grep -q "tmp/important.txt: not made by capvault; left alone" "$T/out" || fail "fsck: $(cat "$T/out")"
check "fsck --repair keeps it" "mine" "$(cat "$S/tmp/important.txt")"
rm -rf "$S/tmp/important.txt" "$S/tmp/bkdir"

# --- stores that are not whole are refused, not rebuilt
cp -a "$S" "$T/noindex" && rm -rf "$T/noindex/index"
expect_rc 1 "$CAPVAULT" ls --store "$T/noindex"
grep -q "index is missing" "$T/err" || fail "store without index: $(cat "$T/err")"
check "its objects kept" "1" "$(find "$T/noindex/objects" -type f | wc -l)"
cp -a "$S" "$T/newer" && echo "capvault-store 2" >"$T/newer/capvault-store"
expect_rc 1 "$CAPVAULT" ls --store "$T/newer"
grep -q "newer capvault" "$T/err" || fail "newer format: $(cat "$T/err")"
mkdir "$T/half" && echo "capvault-store 1 creating" >"$T/half/capvault-store"
expect_rc 1 "$CAPVAULT" ls --store "$T/half"
grep -q "interrupted store creation" "$T/err" || fail "half-created: $(cat "$T/err")"
expect_rc 0 "$CAPVAULT" init --store "$T/half"
expect_rc 0 "$CAPVAULT" ls --store "$T/half"

# --- a store made before the marker: objects/, tmp/, index/ (our RocksDB)
cp -a "$S" "$T/legacy" && rm "$T/legacy/capvault-store"
expect_rc 0 "$CAPVAULT" ls --store "$T/legacy" --json
check "legacy store's capture" "1" "$(jq length "$T/out")"
check "legacy store marked" "capvault-store 1" "$(cat "$T/legacy/capvault-store")"
expect_rc 0 "$CAPVAULT" fsck --store "$T/legacy"

# --- a backup into the store itself, however spelled, is refused
ln -s "$S" "$T/alias"
for dst in "$S/tmp/bk" "$S/objects/bk" "$S/bk" "$T/alias/tmp/bk" "$S/tmp/../index/bk" "$S"; do
	expect_rc 1 "$CAPVAULT" backup --store "$S" "$dst"
	grep -Eq "inside the store|not empty" "$T/err" || fail "backup to $dst: $(cat "$T/err")"
done
[ -e "$S/tmp/bk" ] || [ -e "$S/bk" ] || [ -e "$S/objects/bk" ] && fail "a backup was written inside the store"
expect_rc 0 "$CAPVAULT" ls --store "$S"
expect_rc 0 "$CAPVAULT" fsck --store "$S"
expect_rc 0 "$CAPVAULT" backup --store "$S" "$T/bk-ok"

# --- capvaultd: creates its store on a missing or empty folder (the
# packaged layout: store and import folder side by side); refuses (and
# leaves) a folder holding anything else
mkdir -p "$T/pkg/store" "$T/pkg/autoimport" "$T/in"
write_config() {
	printf 'store: %s\nimport:\n  - path: %s\napi:\n  listen: ["127.0.0.1:%s"]\n' \
		"$DSTORE" "$DIN" "$1" >"$T/d.yaml"
}
DSTORE=$T/pkg/store DIN=$T/pkg/autoimport
start_daemon
check "daemon created its store" "capvault-store 1" "$(cat "$T/pkg/store/capvault-store")"
stop_daemon
DSTORE=$D DIN=$T/in
write_config 1
expect_rc 1 "$CAPVAULTD" -c "$T/d.yaml"
grep -q "refusing to turn it into one" "$T/err" || fail "daemon on a full folder: $(cat "$T/err")"
check "daemon touched nothing" "$before" "$(tree "$D")"
finish
