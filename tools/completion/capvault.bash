# bash completion for capvault(1) and capvaultd(8).
#
# Commands and their options are read from `capvault --help` at completion
# time, so they never drift from the program; files and folders complete
# where an option takes one.

_capvault_help_words()
{
	# The usage lines of command $1 (continuation lines included): its options.
	"$1" --help 2>&1 | awk -v cmd="$2" '
		$1 == "capvault" && $2 != "" { cur = $2 }
		/^ *capvault / || /^          *\[/ { if (cur == cmd) print }
	' | grep -oE -- '--?[A-Za-z][A-Za-z0-9-]*' | sort -u
}

_capvault()
{
	local cur prev words cword
	_init_completion || return
	local prog=${words[0]} cmd="" i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--url | --token | --cacert | --socket) ((i++)) ;;
		-*) ;;
		*) cmd=${words[i]}; break ;;
		esac
	done
	case $prev in
	--store | --out | -o) _filedir -d; return ;;
	-w | --journal | --from-list | --tar | --config | --cacert | --socket) _filedir; return ;;
	--url | --token | --tags | --tag | --after | --before | --limit | --scopes | --jobs | \
	--days | --cn | --capture | -c | --block-size) return ;;
	esac
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--version --help --url --token --cacert --socket' -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$("$prog" --help 2>&1 |
				awk '$1 == "capvault" && $2 ~ /^[a-z]/ { print $2 }' | sort -u)" -- "$cur"))
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_capvault_help_words "$prog" "$cmd") --help" -- "$cur"))
		return
	fi
	case $cmd in
	import | restore | backup) _filedir ;;
	token)
		# The subcommand, when no word after "token" is one yet.
		local j sub=""
		for ((j = i + 1; j < cword; j++)); do
			[[ ${words[j]} == -* || ${words[j - 1]} == --store || ${words[j - 1]} == --scopes ||
				${words[j - 1]} == --tags ]] || { sub=${words[j]}; break; }
		done
		[[ -n $sub ]] || COMPREPLY=($(compgen -W 'add ls revoke link' -- "$cur")) ;;
	esac
}
complete -F _capvault capvault

_capvaultd()
{
	local cur prev words cword
	_init_completion || return
	case $prev in
	--config | -c | --check-config) _filedir '@(yaml|yml)'; return ;;
	esac
	COMPREPLY=($(compgen -W '--config --check-config --print-default-config --version --help' -- "$cur"))
}
complete -F _capvaultd capvaultd
