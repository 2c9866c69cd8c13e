#!/usr/bin/env bash
# Writes a compose file with the central and N agencies (client1..clientN):
#
#   ./scripts/generar-compose.sh OUTPUT N
#   ./scripts/generar-compose.sh docker-compose-dev.yaml 5
#
# The server is told to expect N agencies (SERVER_AGENCIES in `environment:`,
# overriding deployments/server.env). The file works wherever it is written:
# its paths (env files, agency CSVs under .data/) are relative to OUTPUT's
# directory when OUTPUT is inside this repository (compose resolves them
# against the file's directory), absolute when it is outside.
# deployments/docker-compose.yaml is this script's output for N=5: regenerate
# it rather than editing it (`make test-docker` checks that they agree).
#
# Data: agency i reads .data/agency-i.csv, mounted read-only; prepare it with
# `make data AGENCIES=N` (make docker-compose-up does it for you).
set -euo pipefail

usage() {
	cat >&2 <<-EOF
		usage: $(basename "$0") OUTPUT N
		  OUTPUT  the compose file to write (its directory must exist)
		  N       number of agencies, a positive integer without leading zeros (at most 1000000)
	EOF
	exit 2
}

[ $# -eq 2 ] || usage
output=$1
agencies=$2
[ -n "$output" ] || usage
[[ $agencies =~ ^[1-9][0-9]{0,6}$ ]] && [ "$agencies" -le 1000000 ] || usage
if [ -d "$output" ]; then
	echo "$(basename "$0"): $output is a directory" >&2
	usage
fi
out_dir=$(dirname -- "$output")
if [ ! -d "$out_dir" ]; then
	echo "$(basename "$0"): directory $out_dir does not exist" >&2
	exit 2
fi

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
out_dir=$(cd -- "$out_dir" && pwd -P)

# relpath FROM TO: the path of TO relative to FROM (both absolute, canonical),
# always starting with "." so that compose reads it as a path, not a volume name.
relpath() {
	local from=$1 to=$2 common=$1 up="" rest
	while [ "$to" != "$common" ] && [ "${to#"$common"/}" = "$to" ]; do
		[ "$common" = / ] && break
		common=$(dirname -- "$common")
		up="../$up"
	done
	if [ "$to" = "$common" ]; then
		rest=""
	elif [ "$common" = / ]; then
		rest=${to#/}
	else
		rest=${to#"$common"/}
	fi
	local rel="$up$rest"
	rel=${rel%/}
	case $rel in
	"") echo . ;;
	../* | ..) echo "$rel" ;;
	*) echo "./$rel" ;;
	esac
}

# Inside the repository the paths are relative (the committed file is the same
# on every machine); a file written elsewhere (/tmp) gets absolute ones.
if [ "$out_dir" = "$root" ] || [ "${out_dir#"$root"/}" != "$out_dir" ]; then
	env_dir=$(relpath "$out_dir" "$root/deployments")
	data_dir=$(relpath "$out_dir" "$root/.data")
else
	env_dir=$root/deployments
	data_dir=$root/.data
fi

tmp=$(mktemp "$out_dir/.generar-compose.XXXXXX")
trap 'rm -f "$tmp"' EXIT

{
	cat <<-EOF
		# The lottery central and $agencies agencies. Written by scripts/generar-compose.sh:
		# change the generator, not this file. Relative paths are from this file's directory.
		# Images: make docker-image. Data: make data AGENCIES=$agencies. Run: make docker-compose-up
		# (a fresh round: the bets volume is emptied first; RESUME=1 continues the stored round).
		services:
		  server:
		    container_name: server
		    image: lottery-server:latest
		    env_file: $env_dir/server.env
		    environment:
		      SERVER_AGENCIES: "$agencies"
		    volumes:
		      - bets:/var/lib/lottery
		    networks:
		      - lottery_net
		    healthcheck:
		      test: ["CMD", "/server", "health"]
		      interval: 2s
		      timeout: 5s
		      retries: 15
		    stop_grace_period: 3s
	EOF
	for ((i = 1; i <= agencies; i++)); do
		cat <<-EOF

			  client$i:
			    container_name: client$i
			    image: lottery-client:latest
			    env_file: $env_dir/client.env
			    environment:
			      CLI_ID: "$i"
			      CLI_DATA_PATH: /data/agency-$i.csv
			    volumes:
			      - $data_dir/agency-$i.csv:/data/agency-$i.csv:ro
			    networks:
			      - lottery_net
			    depends_on:
			      server:
			        condition: service_healthy
			    stop_grace_period: 3s
		EOF
	done
	cat <<-EOF

		networks:
		  lottery_net:
		    name: lottery_net
		    driver: bridge

		volumes:
		  bets:
	EOF
} >"$tmp"

chmod 644 "$tmp"
mv -f -- "$tmp" "$output"
trap - EXIT
