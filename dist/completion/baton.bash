# bash completion for baton(1), the Baton client. Installed as
# share/bash-completion/completions/baton; or source it from ~/.bashrc.
#
# Commands, their words and options come from `baton --help`. Session ids
# and machine names are asked of the relay (`baton sessions`, `baton
# machines`, with the --relay, --ca, --token and --insecure already on
# the line), for at most two seconds.

# _baton_ask PROG ARGS...: the first column of `baton ARGS` (its header
# left out), connecting as the command line being completed says.
_baton_ask()
{
	local prog=$1
	shift
	"$prog" "${_baton_conn[@]}" --timeout 2 "$@" 2>/dev/null |
		awk 'NR > 1 { print $1 }'
}

_baton()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	local prog=${COMP_WORDS[0]} cmd= word i npos=0 options=1
	local global="--relay --ca --insecure --token --json --timeout
		--log-level --help --version"
	local own=
	_baton_conn=()

	[ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# What is already on the line: the command, how many of its words,
	# and how to reach the relay.
	for ((i = 1; i < COMP_CWORD; i++)); do
		word=${COMP_WORDS[i]}
		if [ $options = 1 ] && [ "$word" = -- ]; then
			options=0
		elif [ $options = 1 ] && [[ $word == -* ]]; then
			case $word in
			--insecure) _baton_conn+=(--insecure) ;;
			--relay | --ca | --token)
				_baton_conn+=("$word" "${COMP_WORDS[i + 1]}") ;;
			esac
			# Skip an option's value.
			case $word in
			--relay | --ca | --token | --timeout | --log-level | \
			--machine | --dir | --agent | --cols | --rows | --from | \
			--to | --git | --ref)
				i=$((i + 1)) ;;
			esac
		elif [ -z "$cmd" ]; then
			cmd=$word
		else
			npos=$((npos + 1))
		fi
	done

	case $prev in
	--ca)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return ;;
	--dir)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return ;;
	--log-level)
		mapfile -t COMPREPLY < <(compgen -W "error warn info debug" \
			-- "$cur")
		return ;;
	--agent)
		mapfile -t COMPREPLY < <(compgen -W "shell claude codex" \
			-- "$cur")
		return ;;
	--to)
		mapfile -t COMPREPLY < <(compgen -W "sandbox $(_baton_ask \
			"$prog" machines)" -- "$cur")
		return ;;
	--machine)
		mapfile -t COMPREPLY < <(compgen -W "$(_baton_ask "$prog" \
			machines)" -- "$cur")
		return ;;
	--relay | --token | --timeout | --cols | --rows | --from | --git | \
	--ref)
		COMPREPLY=()
		return ;;
	esac

	case $cmd in
	start) own="--machine --dir --agent --cols --rows --sandbox --git
		--ref" ;;
	tail) own="--from --follow" ;;
	move) own="--to --wait" ;;
	login) own="--qr" ;;
	doctor) own="--dir" ;;
	esac
	if [ $options = 1 ] && [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$global $own" -- "$cur")
		return
	fi

	case $cmd/$npos in
	/*)
		mapfile -t COMPREPLY < <(compgen -W "machines sessions credits
			start status send tail attach move stop pair env
			workspace sync login setup-log doctor" -- "$cur") ;;
	status/0 | send/0 | tail/0 | attach/0 | move/0 | stop/0)
		mapfile -t COMPREPLY < <(compgen -W "$(_baton_ask "$prog" \
			sessions)" -- "$cur") ;;
	setup-log/0)
		mapfile -t COMPREPLY < <(compgen -W "$(_baton_ask "$prog" \
			machines)" -- "$cur") ;;
	pair/0)
		mapfile -t COMPREPLY < <(compgen -W "approve" -- "$cur") ;;
	env/0)
		mapfile -t COMPREPLY < <(compgen -W "set unset list" \
			-- "$cur") ;;
	sync/0)
		mapfile -t COMPREPLY < <(compgen -W "on off" -- "$cur") ;;
	workspace/0)
		mapfile -t COMPREPLY < <(compgen -W "setup clear-setup" \
			-- "$cur") ;;
	workspace/2)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
	*)
		COMPREPLY=() ;;
	esac
}

complete -F _baton baton
