#!/bin/bash
# Shell completion (tools/completion/): bash completes the commands and
# each command's options as `capvault --help` lists them, and zsh loads its
# script. Skipped where bash-completion is not installed.
. "$(dirname "$0")/lib.sh"
src="$(dirname "$0")/../../tools/completion"
[ -f /usr/share/bash-completion/bash_completion ] || { echo "no bash-completion"; exit 77; }

# complete WORD...: what bash offers for the last word.
complete_words() {
	bash -c '
		source /usr/share/bash-completion/bash_completion
		source "$0"
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_capvault
		printf "%s\n" "${COMPREPLY[@]}"' "$src/capvault.bash" "$CAPVAULT" "$@" | sort | tr '\n' ' '
}

commands=$("$CAPVAULT" --help 2>&1 | awk '$1 == "capvault" && $2 ~ /^[a-z]/ { print $2 }' | sort -u | tr '\n' ' ')
check "commands" "$commands" "$(complete_words "")"
check "a prefix" "query " "$(complete_words qu)"
for want in --count --explain --limit -w --after --before; do
	complete_words query - | grep -- " $want \|^$want " >/dev/null || fail "query - does not offer $want"
done
complete_words import --t | grep -- "--tags " >/dev/null || fail "import --t does not offer --tags"
check "token's subcommands" "add link ls revoke " "$(complete_words token "")"
check "token li" "link " "$(complete_words token li)"
touch "$T/out.pcap"
check "-w completes files" "$T/out.pcap " "$(complete_words query -w "$T/out.p")"
if command -v zsh >/dev/null; then
	zsh -n "$src/_capvault" || fail "zsh: _capvault does not parse"
fi
finish
