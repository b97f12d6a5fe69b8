#!/bin/bash
# The CLI as a tcpdump user types it (#17): `capvault CMD --help` prints
# that command's usage on stdout and exits 0, for every command; a command
# that only works on a local store refuses --url (and $CAPVAULT_URL) with
# exit 2 instead of quietly opening one; rm, fsck and backup honour
# --json; output that cannot be written (a full disk) fails the command;
# and capvault(1) lists exactly the options each command's --help lists,
# so the two cannot drift.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

MAN=$(dirname "$0")/../../doc/capvault.1.scd
commands=$("$CAPVAULT" --help | sed -n 's/^  capvault \([a-z]*\).*/\1/p')
check "commands listed" "init import ls info stats query rm tag prune tier fsck backup restore token status cert" \
	"$(echo $commands)"

# --- 1. COMMAND --help and -h: usage on stdout, exit 0, nothing on stderr
for c in $commands; do
	for h in --help -h; do
		expect_rc 0 "$CAPVAULT" "$c" "$h"
		check "$c $h: usage on stdout" "usage: capvault $c" "$(head -1 "$T/out" | cut -d' ' -f1-3)"
		check "$c $h: quiet stderr" "" "$(cat "$T/err")"
	done
done
# Wherever --help comes; but -h after the id is tag's "remove the tag h".
expect_rc 0 "$CAPVAULT" import --tags x --help
check "import ... --help" "usage: capvault import" "$(head -1 "$T/out" | cut -d' ' -f1-3)"
expect_rc 0 "$CAPVAULT" query --count --help
check "query ... --help" "usage: capvault query" "$(head -1 "$T/out" | cut -d' ' -f1-3)"
# -h after a subcommand word (token add, cert selfsigned) is help too.
for args in "token add" "token ls" "token revoke" "token link" "cert selfsigned"; do
	expect_rc 0 "$CAPVAULT" $args -h
	check "$args -h" "usage: capvault ${args%% *}" "$(head -1 "$T/out" | cut -d' ' -f1-3)"
done

# `capvault -h` as `capvault --help`.
expect_rc 0 "$CAPVAULT" -h
check "capvault -h" "$("$CAPVAULT" --help)" "$(cat "$T/out")"

# --- 2. --url: refused (exit 2, clear message) by the local-only commands
url=http://127.0.0.1:9
for args in "init" "fsck" "restore $T/nobackup --store $T/new" "cert selfsigned --out $T/cert"; do
	expect_rc 2 "$CAPVAULT" --url "$url" $args
	check "--url $args refused" "1" "$(grep -c 'works on a local store only' "$T/err")"
	expect_rc 2 env CAPVAULT_URL="$url" "$CAPVAULT" $args
	check "\$CAPVAULT_URL $args refused" "1" "$(grep -c 'works on a local store only' "$T/err")"
done
check "nothing made by a refused restore" "absent" "$([ -e "$T/new" ] && echo there || echo absent)"
check "nothing made by a refused cert" "absent" "$([ -e "$T/cert" ] && echo there || echo absent)"

# --- 3. --json on rm, fsck and backup (the text output is kept without it)
"$MKCAP" --packets 50 --hosts 4 --seed 1 -o "$T/a.pcap"
"$MKCAP" --packets 50 --hosts 4 --seed 2 -o "$T/b.pcap"
expect_rc 0 "$CAPVAULT" import "$T/a.pcap"
expect_rc 0 "$CAPVAULT" import "$T/b.pcap"
expect_rc 0 "$CAPVAULT" fsck --json
check "fsck --json" "2 0 0 []" "$(jq -r '"\(.captures) \(.problems) \(.repaired) \(.items)"' "$T/out")"
expect_rc 0 "$CAPVAULT" fsck
check "fsck text" "1" "$(grep -c ' captures: 0 problems, 0 repaired$' "$T/out")"
expect_rc 0 "$CAPVAULT" backup --json "$T/bk"
check "backup --json" "$T/bk 2" "$(jq -r '"\(.dir) \(.objects)"' "$T/out")"
size=$(stat -c %s "$T/a.pcap")
expect_rc 0 "$CAPVAULT" rm --json 1
check "rm --json" "1 a.pcap $size" "$(jq -r '.[] | "\(.id) \(.name) \(.bytes_freed)"' "$T/out")"
check "rm --json: quiet stderr" "" "$(cat "$T/err")"
expect_rc 1 "$CAPVAULT" rm --json 1 2
check "rm --json, one missing" "2" "$(jq -r '[.[].id] | join(",")' "$T/out")"
check "rm --json, the missing one on stderr" "1" "$(grep -c '^capvault: 1: ' "$T/err")"
expect_rc 0 "$CAPVAULT" fsck --json
check "fsck --json after rm" "0 0" "$(jq -r '"\(.captures) \(.problems)"' "$T/out")"

# An option of another maintenance command is refused, not ignored: rm
# --dry-run removed the capture, init --json printed text.
"$MKCAP" --packets 50 --hosts 4 --seed 3 -o "$T/c.pcap"
expect_rc 0 "$CAPVAULT" import "$T/c.pcap"
while IFS='|' read -r opt args; do
	expect_rc 2 "$CAPVAULT" $args </dev/null
	check "$args refused" "capvault: --$opt is not an option of ${args%% *}" "$(head -1 "$T/err")"
done <<EOF
dry-run|rm --dry-run 3
dry-run|rm -n 3
repair|rm -r 3
json|init --json
json|restore --json $T/bk --store $T/r2
dry-run|fsck --dry-run
config|backup --config x $T/bk2
verify|tag --verify 3 x
EOF
check "rm --dry-run removed nothing" "3" "$("$CAPVAULT" ls --json | jq -r '[.[].id] | join(",")')"

# rm --json and backup --json through the daemon (its unix socket): the
# same documents; fsck still refuses a running daemon's --url.
write_config() {
	printf 'store: %s\njobs: 1\napi:\n  listen: ["127.0.0.1:%s"]\n' "$CAPVAULT_STORE" "$1" >"$T/d.yaml"
}
start_daemon
size=$(stat -c %s "$T/c.pcap")
expect_rc 0 "$CAPVAULT" rm --json 3
check "rm --json via the daemon" "3 c.pcap $size" "$(jq -r '.[] | "\(.id) \(.name) \(.bytes_freed)"' "$T/out")"
check "rm --json via the daemon: quiet stderr" "" "$(cat "$T/err")"
expect_rc 1 "$CAPVAULT" rm --json 3
check "rm --json via the daemon, none removed" "[]" "$(cat "$T/out")"
expect_rc 0 "$CAPVAULT" backup --json "$T/bk3"
check "backup --json via the daemon" "$T/bk3 0" "$(jq -r '"\(.dir) \(.objects)"' "$T/out")"
expect_rc 2 "$CAPVAULT" --url "$U" fsck
check "fsck --url a running daemon" "1" "$(grep -c 'works on a local store only' "$T/err")"

# --- Output that cannot be written fails the command: `ls --json > file`
# on a full disk exited 0 with the file cut (here /dev/full). Through the
# daemon (the engine, and the front's query), then offline.
to_full() {
	local rc=0
	"$@" >/dev/full 2>"$T/err" || rc=$?
	check "$* > /dev/full: exit code" 1 "$rc"
	check "$* > /dev/full: said" 1 "$(grep -c '^capvault: writing standard output: No space left on device$' "$T/err")"
}
to_full "$CAPVAULT" ls --json
to_full "$CAPVAULT" status
to_full "$CAPVAULT" query --count
stop_daemon
to_full "$CAPVAULT" ls
to_full "$CAPVAULT" stats --json
to_full "$CAPVAULT" --version
rc=0
"$CAPVAULTD" --print-default-config >/dev/full 2>/dev/null || rc=$?
check "capvaultd --print-default-config > /dev/full: exit code" 1 "$rc"

# --- token link: the web viewer's login link for a token (#19)
sec=$(printf '%064d' 0 | tr 0 a)
expect_rc 0 "$CAPVAULT" token link "$sec"
check "token link" "http://127.0.0.1:8080/?token=$sec" "$(cat "$T/out")"
expect_rc 0 "$CAPVAULT" --url https://vault.example:8443/ token link - <<< "$sec"
check "token link - with --url" "https://vault.example:8443/?token=$sec" "$(cat "$T/out")"
expect_rc 2 "$CAPVAULT" token link not-a-secret
check "token link refuses a non-secret" "1" "$(grep -c 'not a token secret' "$T/err")"

# --- 4. capvault(1) lists each command's options, no more and no fewer:
# its synopsis line holds exactly the option words of --help, and its
# section names each of them. Option words: --long, -s, -AeK... (a
# single-dash word in capitals is a placeholder such as -TAG).
help_opts() {
	"$CAPVAULT" "$1" --help | grep -oE '(^|[][ |])--?[A-Za-z][A-Za-z-]*' |
		sed 's/^[][ |]//' | grep -vE '^-[A-Z]{2,}$' | sort -u
}
# man_section CMD [synopsis]: the command's section of COMMANDS, or its first line.
man_section() {
	awk -v c="$1" -v first="${2:-}" '
		/^# / { in_cmds = ($2 == "COMMANDS"); on = 0; next }
		in_cmds && /^\*[a-z]+\*/ { on = (index($0, "*" c "*") == 1); n = 0 }
		on && !(first && n++)' "$MAN"
}
man_opts() { man_section "$@" | grep -oE '\*--?[A-Za-z][A-Za-z-]*\*' | tr -d '*' | sort -u; }
for c in $commands; do
	h=$(help_opts "$c")
	[ -n "$h" ] || fail "$c --help lists no option"
	check "capvault(1) $c synopsis options = $c --help options" "$h" "$(man_opts "$c" synopsis)"
	check "capvault(1) $c section names each option" "" "$(comm -23 <(echo "$h") <(man_opts "$c"))"
done

finish
