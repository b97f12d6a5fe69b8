#!/bin/bash
# The admin commands with capvaultd running: `capvault token add|ls|revoke`
# and `capvault backup` go through the daemon (its unix socket, or --url
# with an admin token) and print what they print offline; a token made
# through the daemon works over TCP at once and stops at once when
# revoked; a backup of the running store restores into a store that fsck
# passes and that answers queries the same; POST /v1/backup is refused
# over TCP; restore refuses the store a daemon serves; `capvault prune`
# through the daemon prints what the same rules print offline.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

STORE="$T/store"
mkdir -p "$T/in" "$T/src" "$T/dmn" "$T/off"

write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$1"]
  timeout: 10s
retention:
  interval: 1h
  policies:
    - name: scratch
      tags: [scratch]
      max_count: 1
YAML
}

# code METHOD URL [CURL ARGS...]: the HTTP status over TCP; body in $T/body.
code() {
	local m=$1 u=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$@" "$u"
}

"$MKCAP" --packets 200 --flows 20 --seed 1 -o "$T/src/a.pcap"
"$MKCAP" --packets 120 --seed 2 --format pcapng -o "$T/src/b.pcapng"
"$MKCAP" --packets 90 --seed 3 -o "$T/src/c.pcap"

start_daemon
SOCK="$STORE/capvault.sock"
U="http://127.0.0.1:$PORT"
expect_rc 0 "$CAPVAULT" import --tags lab "$T/src"
grep -q "in use" "$T/err" && fail "import did not go through the daemon"

# --- tokens through the daemon ---
cli_run "$T/dmn" add_reader token add reader --scopes read --tags t1,t2
READER=$(cat "$T/dmn/add_reader.out")
check "token add through the daemon" 0 "$(cat "$T/dmn/add_reader.rc")"
check "secret length" 64 "${#READER}"
grep -q "token 'reader' created; the secret above is shown only once" "$T/dmn/add_reader.err" ||
	fail "token add stderr: $(cat "$T/dmn/add_reader.err")"
ADMIN=$("$CAPVAULT" token add boss --scopes admin 2>/dev/null)
CS=$("$CAPVAULT" token add cs --scopes read,upload --cloudshark 2>/dev/null)
check "cloudshark secret length" 32 "${#CS}"
cli_run "$T/dmn" add_dup token add boss --scopes read
cli_run "$T/dmn" add_badscope token add x --scopes fly
cli_run "$T/dmn" add_badname token add 'bad name' --scopes read
cli_run "$T/dmn" add_badtag token add y --scopes read --tags 'a b'
check "duplicate name" 1 "$(cat "$T/dmn/add_dup.rc")"
grep -q "exists already" "$T/dmn/add_dup.err" || fail "duplicate: $(cat "$T/dmn/add_dup.err")"
check "bad scope is a usage error" 2 "$(cat "$T/dmn/add_badscope.rc")"

# The new token works over TCP at once, within its scope.
check "reader token reads" 200 "$(code GET "$U/v1/captures" -H "Authorization: Bearer $READER")"
check "reader lists 3" 3 "$(jq '.captures | length' "$T/body")"
check "reader cannot list tokens" 403 "$(code GET "$U/v1/tokens" -H "Authorization: Bearer $READER")"
check "no token: 401" 401 "$(code GET "$U/v1/tokens")"
check "admin lists tokens" 200 "$(code GET "$U/v1/tokens" -H "Authorization: Bearer $ADMIN")"
check "tokens listed" "boss cs reader" "$(jq -r '[.tokens[].name] | sort | join(" ")' "$T/body")"
check "no secret or hash listed" 0 "$(grep -c "$READER\|sha256\|secret" "$T/body" || true)"
check "scopes as an array" '["read"]' "$(jq -c '.tokens[] | select(.name == "reader") | .scopes' "$T/body")"
check "admin makes a token over TCP" 201 "$(code POST "$U/v1/tokens" -H "Authorization: Bearer $ADMIN" \
	-H 'Content-Type: application/json' --data '{"name": "tcp", "scopes": ["upload"], "tags": ["x"]}')"
check "secret in the 201" 64 "$(jq -r .secret "$T/body" | tr -d '\n' | wc -c)"
check "bad body" 400 "$(code POST "$U/v1/tokens" -H "Authorization: Bearer $ADMIN" --data '{"name": 3}')"
check "revoke unknown" 404 "$(code DELETE "$U/v1/tokens/nobody" -H "Authorization: Bearer $ADMIN")"
check "revoke over TCP" 200 "$(code DELETE "$U/v1/tokens/tcp" -H "Authorization: Bearer $ADMIN")"
cli_run "$T/dmn" url_ls --url "$U" --token "$ADMIN" token ls

cli_run "$T/dmn" ls token ls
cli_run "$T/dmn" ls_json token ls --json
diff -u "$T/dmn/ls.out" "$T/dmn/url_ls.out" >&2 || fail "token ls over --url differs"
check "ls --json names" "boss cs reader" "$(jq -r '[.[].name] | sort | join(" ")' "$T/dmn/ls_json.out")"
check "ls --json reader" '"read" ["t1","t2"] false' \
	"$(jq -c '.[] | select(.name == "reader") | [.scopes, .tags, .cloudshark]' "$T/dmn/ls_json.out" | jq -r '"\"\(.[0])\" \(.[1] | tojson) \(.[2])"')"

# Used just before: the daemon's token cache must not let it in after.
check "reader before revoke: 200" 200 "$(code GET "$U/v1/captures" -H "Authorization: Bearer $READER")"
cli_run "$T/dmn" revoke token revoke reader
check "revoke through the daemon" 0 "$(cat "$T/dmn/revoke.rc")"
check "revoked token: 401" 401 "$(code GET "$U/v1/captures" -H "Authorization: Bearer $READER")"
cli_run "$T/dmn" revoke_again token revoke reader
check "revoke again" 1 "$(cat "$T/dmn/revoke_again.rc")"
cli_run "$T/dmn" ls_after token ls

# --- backup of the running store ---
COUNT=$("$CAPVAULT" query --count tcp)
cli_run "$T/dmn" backup backup "$T/bk"
check "backup through the daemon" 0 "$(cat "$T/dmn/backup.rc")"
grep -q "in use" "$T/dmn/backup.err" && fail "backup did not go through the daemon"
check "backup line" "backed up the index and 3 objects to $T/bk" "$(cat "$T/dmn/backup.out")"
(cd "$T" && "$CAPVAULT" backup bk-rel > "$T/rel.out" 2>&1) || fail "relative backup: $(cat "$T/rel.out")"
[ -e "$T/bk-rel/index/CURRENT" ] || fail "relative backup: not under the caller's folder"
cli_run "$T/dmn" backup_again backup "$T/bk"
grep -q "not empty" "$T/dmn/backup_again.err" || fail "backup into a full folder: $(cat "$T/dmn/backup_again.err")"
check "backup over TCP: 403" 403 "$(code POST "$U/v1/backup" -H "Authorization: Bearer $ADMIN" \
	--data "{\"dir\": \"$T/bk-tcp\"}")"
[ -e "$T/bk-tcp" ] && fail "a backup was written for a TCP caller"
# A backup into the store's own tmp/ (16.4) is refused, through the socket
# and through the CLI, and the store still opens afterwards.
check "backup into the store: 400" 400 "$(curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$SOCK" \
	--data "{\"dir\": \"$STORE/tmp/bk\"}" http://localhost/v1/backup)"
grep -q "inside the store" "$T/body" || fail "backup into the store: $(cat "$T/body")"
cli_run "$T/dmn" backup_inside backup "$STORE/tmp/bk2"
grep -q "inside the store" "$T/dmn/backup_inside.err" || fail "CLI backup into the store: $(cat "$T/dmn/backup_inside.err")"
[ -e "$STORE/tmp/bk" ] || [ -e "$STORE/tmp/bk2" ] && fail "a backup was written into the store's tmp/"
# A backup into one of the daemon's import folders is refused too: the
# watcher would import its objects (duplicates, then removed) and claim or
# fail the rest, leaving a backup that is no longer one (adv15c).
cli_run "$T/dmn" backup_inbox backup "$T/in/bk"
check "backup into an import folder" 1 "$(cat "$T/dmn/backup_inbox.rc")"
grep -q "inside the import folder $T/in" "$T/dmn/backup_inbox.err" ||
	fail "backup into an import folder: $(cat "$T/dmn/backup_inbox.err")"
[ -e "$T/in/bk" ] && fail "a backup was written into an import folder"
check "relative dir: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
	--data '{"dir": "rel"}' http://localhost/v1/backup)"

expect_rc 1 "$CAPVAULT" restore "$T/bk" --store "$STORE"
grep -q "offline" "$T/err" || fail "restore onto the daemon's store: $(cat "$T/err")"
expect_rc 0 "$CAPVAULT" restore "$T/bk" --store "$T/restored"
check "restore line" "restored 3 captures and 3 objects into $T/restored" "$(cat "$T/out")"
expect_rc 0 "$CAPVAULT" fsck --store "$T/restored"
grep -q " 0 problems" "$T/out" || fail "fsck of the restore: $(cat "$T/out")"
check "query --count of the restore" "$COUNT" "$(CAPVAULT_STORE=$T/restored "$CAPVAULT" query --count tcp)"
check "ls of the restore" "$("$CAPVAULT" ls | cut -c1-40)" "$(CAPVAULT_STORE=$T/restored "$CAPVAULT" ls | cut -c1-40)"

# --- prune through the daemon (its rules in force: keep 1 scratch capture);
# offline, the same rules on a restored copy of the same store ---
"$MKCAP" --packets 30 --seed 8 -o "$T/s1.pcap"
"$MKCAP" --packets 30 --seed 9 -o "$T/s2.pcap"
expect_rc 0 "$CAPVAULT" import --tags scratch "$T/s1.pcap" "$T/s2.pcap"
expect_rc 0 "$CAPVAULT" backup "$T/bk-prune"
cli_run "$T/dmn" prune_dry prune --dry-run
# Other rules than the daemon's cannot be previewed through it: refused,
# not answered with the daemon's own rules.
cat > "$T/other-rules.yaml" <<EOC
store: $STORE
retention:
  policies:
    - name: everything
      max_count: 0
      allow_empty: true
EOC
cli_run "$T/dmn" prune_other prune --config "$T/other-rules.yaml" --dry-run
check "prune --config with a daemon running: refused" 2 "$(cat "$T/dmn/prune_other.rc")"
grep -q "rules of its own configuration" "$T/dmn/prune_other.err" ||
	fail "prune --config with a daemon: $(cat "$T/dmn/prune_other.err")"
cli_run "$T/dmn" prune_json prune --dry-run --json
cli_run "$T/dmn" prune prune
cli_run "$T/dmn" prune_none prune --json
grep -q "in use" "$T/dmn/prune.err" && fail "prune did not go through the daemon"
check "prune through the daemon" "deleted 4" "$(head -1 "$T/dmn/prune.out" | cut -d' ' -f1,2)"
grep -q "pruned capture 4 s1.pcap" "$T/d.log" || fail "the daemon did not log the deletion"
stop_daemon

# --- the same commands offline print the same ---
cli_run "$T/off" ls_after token ls
cli_run "$T/off" revoke_again token revoke reader
cli_run "$T/off" add_dup token add boss --scopes read
cli_run "$T/off" add_badscope token add x --scopes fly
cli_run "$T/off" add_badname token add 'bad name' --scopes read
cli_run "$T/off" add_badtag token add y --scopes read --tags 'a b'
cli_run "$T/off" backup backup "$T/bk-off"
check "offline backup line" "backed up the index and 4 objects to $T/bk-off" "$(cat "$T/off/backup.out")"
sed -i "s#$T/bk-off#$T/bk#; s/and 4 objects/and 3 objects/" "$T/off/backup.out"
cli_run "$T/off" backup_again backup "$T/bk"
expect_rc 0 "$CAPVAULT" restore "$T/bk-prune" --store "$T/off-prune"
for p in "prune_dry --dry-run" "prune_json --dry-run --json" "prune" "prune_none --json"; do
	set -- $p
	cli_run "$T/off" "$1" prune --config "$T/d.yaml" --store "$T/off-prune" "${@:2}"
done
compare ls_after revoke_again add_dup add_badscope add_badname add_badtag backup backup_again \
	prune_dry prune_json prune prune_none
expect_rc 0 "$CAPVAULT" fsck --store "$T/bk-off"

finish
