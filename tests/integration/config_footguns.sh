#!/bin/bash
# Configuration footguns (issue #15, item 2): folders that are each fine
# alone but destroy data together are refused by --check-config, by a
# start and by a SIGHUP reload, and nothing in them is touched.
LIB_NO_STORE=1
. "$(dirname "$0")/lib.sh"
: "${CAPVAULTD:?path to capvaultd}"

mkdir -p "$T/store" "$T/in" "$T/in2"
echo precious > "$T/store/notes.txt"
echo precious > "$T/in/notes.txt"

# refused NAME YAML-BODY PATTERN: --check-config and a start both fail,
# name the problem with file:line:col, and leave both folders as they were.
refused() {
	local name=$1 body=$2 pattern=$3
	printf '%s\n' "$body" > "$T/$name.yaml"
	expect_rc 1 "$CAPVAULTD" --check-config "$T/$name.yaml"
	grep -Eq "^$T/$name.yaml:[0-9]+:[0-9]+: .*$pattern" "$T/err" ||
		fail "$name: --check-config says: $(cat "$T/err")"
	local rc=0
	timeout 20 "$CAPVAULTD" --config "$T/$name.yaml" > "$T/$name.out" 2>&1 || rc=$?
	checks=$((checks + 1))
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$name: the daemon started (rc $rc)"
	check "$name: store untouched" "notes.txt" "$(ls -A "$T/store")"
	check "$name: import folder untouched" "notes.txt" "$(ls -A "$T/in")"
}

refused same "store: $T/store
import:
  - path: $T/store" "import folder '.*' is the store"
refused inside "store: $T/store
import:
  - path: $T/store/objects/.." "is the store"
refused contains "store: $T/store
import:
  - path: $T" "contains the store"
ln -s in "$T/in-link"
refused symlink "store: $T/store
import:
  - path: $T/in
  - path: $T/in-link" "is also import folder"
refused root "store: /
import:
  - path: $T/in" "system folder"
refused failed "store: $T/store
import:
  - path: $T/in
    failed_folder: $T/in" "the failed folder '.*' is the import folder"
refused failed-other "store: $T/store
import:
  - path: $T/in
  - path: $T/in2
    failed_folder: $T/in/failed" "which would import from it"
refused move "store: $T/store
import:
  - path: $T/in
    after_import: move:$T/store/done" "is inside the store"
# One listen address twice passed the check, then the start failed with
# "Address already in use" as if another program held the port.
lport=$((20000 + RANDOM % 20000))
refused listen-twice "store: $T/store
api:
  listen: [\"127.0.0.1:$lport\", \"[::1]:$lport\", \"[0:0::1]:$lport\"]" "listen address '\\[0:0::1\\]:$lport' is listed twice"
# A move: or failed folder on another mount: rename cannot reach it, so
# every file would fail and stay (as root, where a tmpfs can be mounted).
mkdir "$T/othermount"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$T/othermount" 2>/dev/null; then
	trap 'umount "$T/othermount" 2>/dev/null || umount -l "$T/othermount"; rm -rf "$T"' EXIT
	refused move-mount "store: $T/store
import:
  - path: $T/in
    after_import: move:$T/othermount/done" "is on another mount than the import folder"
	refused failed-mount "store: $T/store
import:
  - path: $T/in
    failed_folder: $T/othermount" "is on another mount than the import folder"
else
	echo "cannot mount a tmpfs: the other-mount cases are not tried"
fi

# A reload with such a file is refused and the daemon goes on with the old
# configuration: the import folder keeps its file, the store its objects.
cat > "$T/good.yaml" <<EOC
store: $T/vault
import:
  - path: $T/in2
api:
  listen: []
EOC
"$CAPVAULTD" --config "$T/good.yaml" 2> "$T/d.log" &
pid=$!
for _ in $(seq 200); do grep -q "started:" "$T/d.log" && break; sleep 0.05; done
cat > "$T/good.yaml" <<EOC
store: $T/vault
import:
  - path: $T/vault
api:
  listen: []
EOC
kill -HUP "$pid"
for _ in $(seq 200); do grep -q "is the store" "$T/d.log" && break; sleep 0.05; done
grep -q "is the store" "$T/d.log" || fail "reload names the problem: $(tail -3 "$T/d.log")"
kill -0 "$pid" 2>/dev/null || fail "the daemon died on a bad reload"
[ -d "$T/vault/index" ] || fail "the store's index is still there"
[ -z "$(ls -A "$T/vault/.failed" 2>/dev/null)" ] || fail "the store's files were moved to .failed"
kill "$pid"
wait "$pid" || true

# object_store's credentials: what a start refuses, --check-config refuses
# too, saying why (no request goes to the endpoint, a closed port here).
printf '[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cr3tKEYd0ntLOG\n' >"$T/cred"
creds() {
	printf 'store: %s/cstore\napi:\n  listen: []\nobject_store:\n  endpoint: http://127.0.0.1:9\n  bucket: vault\n  region: us-east-1\n  credentials_file: %s/cred\n%s\n' \
		"$T" "$T" "$1" >"$T/creds.yaml"
}
creds ""
chmod 0644 "$T/cred"
expect_rc 1 "$CAPVAULTD" --check-config "$T/creds.yaml"
grep -q "^$T/creds.yaml: object_store: credentials file $T/cred: others may read" "$T/err" ||
	fail "--check-config of a credentials file others may read: $(cat "$T/err")"
chmod 0600 "$T/cred"
expect_rc 0 "$CAPVAULTD" --check-config "$T/creds.yaml"
creds "  profile: nope"
expect_rc 1 "$CAPVAULTD" --check-config "$T/creds.yaml"
grep -q "no profile 'nope'" "$T/err" || fail "--check-config of a missing profile: $(cat "$T/err")"
grep -q "s3cr3t" "$T/out" "$T/err" && fail "--check-config showed the secret key"
finish
