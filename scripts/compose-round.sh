#!/usr/bin/env bash
# A compose round seen from the host, for make docker-compose-up and -logs:
#
#   ./scripts/compose-round.sh url       where the status page answers on this host
#   ./scripts/compose-round.sh verdict   whether every agency got its winners
#
# The project is COMPOSE_PROJECT_NAME (lottery, the Makefile's default); its
# containers are found by compose's labels (service server and client1..clientN,
# as scripts/generar-compose.sh names them), whatever compose named them.
#
# url prints `status page and metrics at http://127.0.0.1:PORT/ (...)`: the
# port the central's admin listener (SERVER_ADMIN_ADDRESS, :9090 inside the
# container) is published on, on the host (DOCKER_ADMIN_PORT). The central's
# own log line names its address inside the container, which the host cannot
# reach. Exit 1 when the central does not run or publishes no admin port.
#
# verdict prints one line, last, like make run's: every agency got its winners,
# and the round's digest in the central's draw line (digesto_ronda) is the
# agencies' data files',
#   every agency got its winners (2,3,3,2,0 for agencies 1..5, as their data files say) and exited 0, and the round's digest HEX equals bin/dataset digest of their data files in DIR
# and exits 0; or `FAILED: ` and why, agency by agency (still running, exited
# non-zero, no container, no winners line, winners other than its data file
# gives), then the round (no draw line, no digest in it, another digest than
# the files'), and exits 1. The expected winners and digest are `bin/dataset
# winners -dir` and `bin/dataset digest -dir` on the directory of the data
# file each agency mounts: the files as they are on this host now. The
# agencies are 1..SERVER_AGENCIES of the central's container.
#
# Environment: COMPOSE_PROJECT_NAME (lottery), SAY (the prefix of every line:
# compose-round).
set -uo pipefail
cd "$(dirname "$0")/.."

project=${COMPOSE_PROJECT_NAME:-lottery}
who=${SAY:-compose-round}
say() { echo "$who: $*"; }

usage() {
	echo "usage: $(basename "$0") url|verdict" >&2
	exit 2
}
[ $# -eq 1 ] || usage

# The project's containers, by service: ids[server], ids[client1], ...
declare -A ids
while read -r service id; do
	[ -z "$service" ] || ids[$service]=$id
done < <(docker ps -a --filter "label=com.docker.compose.project=$project" \
	--format '{{.Label "com.docker.compose.service"}} {{.ID}}')

# describe ID: what a container is, in one docker inspect, one fact a line:
# "state STATUS EXITCODE", "env NAME=VALUE" and "mount DESTINATION<tab>SOURCE".
describe() {
	docker inspect -f '{{printf "state %s %d\n" .State.Status .State.ExitCode}}{{range .Config.Env}}{{printf "env %s\n" .}}{{end}}{{range .Mounts}}{{printf "mount %s\t%s\n" .Destination .Source}}{{end}}' "$1"
}

# state DESCRIPTION: "status exitcode".
state() { sed -n 's/^state //p' <<<"$1"; }

# env_of DESCRIPTION NAME: the value of NAME in the container's environment.
env_of() { sed -n "s/^env $2=//p" <<<"$1" | tail -n 1; }

# source_of DESCRIPTION DESTINATION: the host path mounted at DESTINATION.
source_of() { awk -F '\t' -v d="mount $2" '$1 == d { print $2 }' <<<"$1"; }

# field and round_digest: the round's digest in the draw line, checked.
# shellcheck source=scripts/round-digest.sh
. scripts/round-digest.sh # the working directory is the repository's root

url() {
	local server about admin port published status code
	server=${ids[server]:-}
	if [ -z "$server" ]; then
		say "project $project has no central container: no status page (make docker-compose-up)"
		return 1
	fi
	about=$(describe "$server")
	read -r status code <<<"$(state "$about")"
	case $status in
	running) ;;
	exited)
		say "the central has stopped (exited $code): no status page"
		return 1
		;;
	*)
		say "the central is $status: no status page"
		return 1
		;;
	esac
	admin=$(env_of "$about" SERVER_ADMIN_ADDRESS)
	port=${admin##*:}
	published=$(docker port "$server" "${port:-9090}/tcp" 2>/dev/null | head -n 1)
	if [ -z "$port" ] || [ -z "$published" ]; then
		say "the central publishes no admin port (a compose file written before scripts/generar-compose.sh published it? write it again)"
		return 1
	fi
	# docker prints 0.0.0.0:PORT for a port published on every interface.
	case $published in
	0.0.0.0:*) published=127.0.0.1:${published#0.0.0.0:} ;;
	"[::]:"*) published="[::1]:${published#"[::]:"}" ;;
	esac
	say "status page and metrics at http://$published/ (/status.json, /metrics, /healthz)"
}

verdict() {
	local server about agencies level id c status code logs line mount dir want winners=() problems=()
	local checked digested round exclude
	server=${ids[server]:-}
	if [ -z "$server" ]; then
		say "FAILED: project $project has no central container (make docker-compose-up)"
		return 1
	fi
	if [ ! -x bin/dataset ]; then
		say "FAILED: bin/dataset missing, which counts the expected winners: make build"
		return 1
	fi
	about=$(describe "$server")
	agencies=$(env_of "$about" SERVER_AGENCIES)
	agencies=${agencies:-5}
	level=$(env_of "$about" SERVER_LOG_LEVEL)
	read -r status code <<<"$(state "$about")"
	case $status in
	running) ;;
	exited) [ "$code" = 0 ] || problems+=("the central exited $code") ;;
	*) problems+=("the central is $status") ;;
	esac
	declare -A expected=() dirs=() # =(): set, so that set -u can count them when empty
	for ((id = 1; id <= agencies; id++)); do
		c=${ids[client$id]:-}
		if [ -z "$c" ]; then
			problems+=("agency $id has no container")
			continue
		fi
		about=$(describe "$c")
		read -r status code <<<"$(state "$about")"
		if [ "$status" != exited ]; then
			problems+=("agency $id is still $status")
			continue
		fi
		logs=$(docker logs "$c" 2>&1)
		line=$(grep -o 'action: consulta_ganadores | result: success | cant_ganadores: [0-9]*' <<<"$logs" | tail -n 1)
		if [ "$code" != 0 ]; then
			say "agency $id's last line: $(tail -n 1 <<<"$logs")"
			if [ -n "$line" ]; then
				problems+=("agency $id exited $code after its winners")
			else
				problems+=("agency $id exited $code without its winners")
			fi
			continue
		fi
		if [ -z "$line" ]; then
			problems+=("agency $id exited 0 without its winners")
			continue
		fi
		winners[id]=${line##* }
		# Its data file, as this host has it: counted with the others in its directory.
		mount=$(source_of "$about" "$(env_of "$about" CLI_DATA_PATH)")
		dir=$(dirname -- "${mount:-.}")
		if [ -z "$mount" ] || [ ! -f "$mount" ]; then
			problems+=("agency $id's data file ${mount:-(no mount)} is not on this host: its winners ${winners[id]} are unchecked")
			continue
		fi
		dirs[$dir]=1
		if [ -z "${expected[$dir]+set}" ]; then
			expected[$dir]=$(./bin/dataset winners -dir "$dir" 2>&1) || {
				problems+=("bin/dataset winners -dir $dir: ${expected[$dir]}")
				continue
			}
		fi
		want=$(sed -n "s/^agency $id: bets [0-9]* winners \([0-9]*\) .*/\1/p" <<<"${expected[$dir]}")
		if [ "$want" != "${winners[id]}" ]; then
			problems+=("agency $id got ${winners[id]} winners, but its data file $mount has ${want:-no} winners")
		fi
	done
	# The round's digest, in the central's draw line, against the data files
	# of the agencies that got theirs; one directory of them makes a round.
	digested=
	if [ ${#dirs[@]} -gt 1 ]; then
		problems+=("the agencies' data files are in several directories ($(
			IFS=' '
			echo "${!dirs[*]}"
		)): the round's digest is unchecked")
	elif [ ${#dirs[@]} -eq 1 ]; then
		dir=${!dirs[*]}
		line=$(docker logs "$server" 2>&1 | grep -E 'action: sorteo \| result: success( \||$)' | tail -n 1)
		checked=$(round_digest "$line" "$dir" "$agencies" "$level")
		case $? in
		0)
			read -r round exclude <<<"$checked"
			digested=", and the round's digest $round equals bin/dataset digest of their data files in $dir${exclude:+ without agencies $exclude}"
			;;
		2) digested="; $checked" ;;
		*) problems+=("$checked") ;;
		esac
	fi
	if [ ${#problems[@]} -gt 0 ]; then
		line=$(printf '%s; ' "${problems[@]}")
		say "FAILED: ${line%; }"
		return 1
	fi
	say "every agency got its winners ($(
		IFS=,
		echo "${winners[*]}"
	) for agencies 1..$agencies, as their data files say) and exited 0$digested"
}

case $1 in
url) url ;;
verdict) verdict ;;
*) usage ;;
esac
