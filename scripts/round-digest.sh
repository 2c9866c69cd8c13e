# The round's digest check shared by run-local.sh and compose-round.sh
# (sourced, not run): the central's draw line against bin/dataset digest of
# the agency files. Run from the repository's root, with bin/ built.

# field LINE KEY: the value of KEY in a log line ("... | KEY: value | ..."),
# or nothing: found by name, wherever the line puts it.
field() { sed -n "s/.*| $2: \([^|]*[^| ]\).*/\1/p" <<<"$1"; }

# round_digest SORTEO DIR AGENCIES LEVEL: the round's digest in SORTEO, the
# central's draw line (digesto_ronda, found by name), when `bin/dataset digest
# -dir DIR` gives the same, then the agencies left out of it, if any;
# otherwise why not, and status 1, or 2 when the central's log level, LEVEL,
# hides the line (its other checks still hold). What the central did not draw
# is left out: the agencies its operator excluded (excluidas, written as
# -exclude reads it) and files in DIR of agencies past the round's AGENCIES.
round_digest() {
	local round exclude digests ours n
	if [ -z "$1" ]; then
		case ${4^^} in
		WARN | WARNING | ERROR)
			echo "the round's digest is unchecked: SERVER_LOG_LEVEL=$4 hides the central's draw line, which gives it"
			return 2
			;;
		esac
		echo "the central logged no draw line (action: sorteo), which gives the round's digest"
		return 1
	fi
	round=$(field "$1" digesto_ronda)
	if [ -z "$round" ]; then
		echo "the central's draw line gives no round digest (digesto_ronda): $1"
		return 1
	fi
	exclude=$(field "$1" excluidas)
	if [[ $exclude == *...* ]]; then
		echo "the central's draw line lists the agencies it excluded cut short ($exclude): the round's digest cannot be recomputed"
		return 1
	fi
	if ! digests=$(./bin/dataset digest -dir "$2" 2>&1); then
		echo "bin/dataset digest -dir $2: $digests"
		return 1
	fi
	while read -r _ n _; do
		n=${n%:}
		if [ "$n" -gt "$3" ]; then exclude+=${exclude:+,}$n; fi
	done < <(grep '^agency ' <<<"$digests")
	if [ -n "$exclude" ] && ! digests=$(./bin/dataset digest -dir "$2" -exclude "$exclude" 2>&1); then
		echo "bin/dataset digest -dir $2 -exclude $exclude: $digests"
		return 1
	fi
	ours=$(sed -n 's/^round: //p' <<<"$digests")
	if [ "$round" != "$ours" ]; then
		echo "the central's round digest (digesto_ronda) is $round, but bin/dataset digest of the agency files in $2${exclude:+ without agencies $exclude} is ${ours:-none}: the bets it drew are not those files'"
		return 1
	fi
	echo "$round $exclude"
}
