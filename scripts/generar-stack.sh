#!/usr/bin/env bash
# Writes a Docker Swarm stack file (compose format 3.8) with the central and N
# agencies (client1..clientN), for `docker stack deploy`:
#
#   ./scripts/generar-stack.sh OUTPUT N
#   ./scripts/generar-stack.sh .run/lottery-swarm.yaml 5
#   docker stack deploy --resolve-image never -c .run/lottery-swarm.yaml lottery-swarm
#
# make swarm-up runs both; docs/swarm.md is the operator's guide.
#
# What the file says:
# - server: one replica, the bets on the stack's named volume `bets`, pinned to
#   the node labelled lottery.central=true (the volume is local to that node);
#   agencies reach it as server:12345 through endpoint_mode: dnsrr (the central
#   certificate carries the SAN `server`). Updates stop the old task before the
#   new one starts: two centrals must never share the bets file.
# - clientI: agency I, reading its bet file through a read-only bind mount.
#   Pinned to the node labelled lottery.agency=I when asked (PIN_AGENCIES below).
# - Mutual TLS: the CA certificate, the central's key pair and each agency's key
#   pair are swarm secrets, mounted under /run/secrets/; each agency gets the CA
#   and its own pair only. The CLI reads the files when it deploys: on a
#   multi-node swarm only the manager you deploy from needs CERTS_DIR.
# - Hardening as in compose: a read-only root file system and no capability at
#   all (the secrets are files of root, the user both images run as, so unlike
#   compose's bind mounts they need no DAC_READ_SEARCH). Compose's
#   no-new-privileges is left out: swarm services on Docker 20.10 cannot set it.
# - Restarts: on-failure only (an agency that exits 0 is done), at most
#   max_attempts restarts per task slot and service version, with no window:
#   swarm counts a window as a sliding one (restarts older than it are
#   forgotten), so a task failing slower than that would restart forever.
#
# Environment (all optional):
#   DATA_DIR      the agency files agency-I.csv (default: .data of this repository)
#   CERTS_DIR     make certs' output (default: .certs of this repository)
#   SERVER_IMAGE  the central's image (default lottery-server:latest)
#   CLIENT_IMAGE  the agencies' image (default lottery-client:latest)
#   PIN_AGENCIES  auto (default): pin agency I to a node labelled lottery.agency=I
#                 when the swarm this docker CLI talks to has one, else let it run
#                 anywhere (on a single node: there); all: pin every agency (a
#                 file for another swarm); none: pin no agency.
#
# Paths are relative to OUTPUT's directory when OUTPUT and the path are both
# inside this repository (docker stack deploy resolves them against the file's
# directory), absolute otherwise. A bind mount's source must exist on the node
# the agency runs on: on several hosts, put agency-I.csv at that same path on
# agency I's node (or point DATA_DIR at a path that exists there).
set -euo pipefail

usage() {
	cat >&2 <<-EOF
		usage: $(basename "$0") OUTPUT N
		  OUTPUT  the stack file to write (its directory must exist)
		  N       number of agencies, a positive integer without leading zeros (at most 100000)
		environment: DATA_DIR, CERTS_DIR, SERVER_IMAGE, CLIENT_IMAGE, PIN_AGENCIES=auto|all|none
	EOF
	exit 2
}

[ $# -eq 2 ] || usage
output=$1
agencies=$2
[ -n "$output" ] || usage
[[ $agencies =~ ^[1-9][0-9]{0,5}$ ]] && [ "$agencies" -le 100000 ] || usage
if [ -d "$output" ]; then
	echo "$(basename "$0"): $output is a directory" >&2
	usage
fi
pin=${PIN_AGENCIES:-auto}
case $pin in
auto | all | none) ;;
*)
	echo "$(basename "$0"): PIN_AGENCIES=$pin: want auto, all or none" >&2
	usage
	;;
esac
out_dir=$(dirname -- "$output")
if [ ! -d "$out_dir" ]; then
	echo "$(basename "$0"): directory $out_dir does not exist" >&2
	exit 2
fi
server_image=${SERVER_IMAGE:-lottery-server:latest}
client_image=${CLIENT_IMAGE:-lottery-client:latest}

root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
out_dir=$(cd -- "$out_dir" && pwd -P)

# shellcheck source=scripts/paths.sh
. "$root/scripts/paths.sh"

env_dir=$(place "$root/deployments")
data_dir=$(place "${DATA_DIR:-$root/.data}")
certs_dir=$(place "${CERTS_DIR:-$root/.certs}")

# The agencies to pin: every one (all), none, or those a node is labelled for (auto).
declare -A pinned=()
pin_note="no agency is pinned (PIN_AGENCIES=none)"
case $pin in
all)
	for ((i = 1; i <= agencies; i++)); do pinned[$i]=1; done
	pin_note="every agency is pinned to the node labelled lottery.agency=I (PIN_AGENCIES=all)"
	;;
auto)
	pin_note="no node is labelled lottery.agency: the agencies run on any node (PIN_AGENCIES=auto)"
	if nodes=$(docker node ls -q 2>/dev/null) && [ -n "$nodes" ]; then
		# shellcheck disable=SC2086 # one argument per node ID
		for label in $(docker node inspect --format '{{index .Spec.Labels "lottery.agency"}}' $nodes); do
			if [[ $label =~ ^[1-9][0-9]*$ ]] && [ "$label" -le "$agencies" ]; then pinned[$label]=1; fi
		done
		if [ ${#pinned[@]} -gt 0 ]; then
			pin_note="pinned to their lottery.agency node: $(printf '%s\n' "${!pinned[@]}" | sort -n | paste -sd, -) (PIN_AGENCIES=auto)"
		fi
	else
		pin_note="no swarm manager answered: no agency is pinned (PIN_AGENCIES=auto)"
	fi
	;;
esac

tmp=$(mktemp "$out_dir/.generar-stack.XXXXXX")
trap 'rm -f "$tmp"' EXIT

{
	cat <<-EOF
		# The lottery central and $agencies agencies on Docker Swarm. Written by
		# scripts/generar-stack.sh: change the generator, not this file. Relative paths
		# are from this file's directory.
		# Agencies: $pin_note.
		# Run: make swarm-up (or docker stack deploy --resolve-image never -c FILE NAME).
		version: "3.8"

		services:
		  server:
		    image: $server_image
		    env_file: $env_dir/server.env
		    environment:
		      SERVER_AGENCIES: "$agencies"
		      SERVER_TLS_CERT: /run/secrets/central.pem
		      SERVER_TLS_KEY: /run/secrets/central-key.pem
		      SERVER_TLS_CLIENT_CA: /run/secrets/ca.pem
		    volumes:
		      - bets:/var/lib/lottery
		    networks:
		      - lottery
		    secrets:
		      - source: ca
		        target: ca.pem
		      - source: central_cert
		        target: central.pem
		      - source: central_key
		        target: central-key.pem
		        mode: 0400
		    healthcheck:
		      test: ["CMD", "/server", "health"]
		      interval: 2s
		      timeout: 5s
		      retries: 15
		    stop_grace_period: 10s
		    read_only: true
		    cap_drop: [ALL]
		    deploy:
		      replicas: 1
		      endpoint_mode: dnsrr
		      placement:
		        constraints:
		          - node.labels.lottery.central == true
		      restart_policy:
		        condition: on-failure
		        delay: 2s
		        max_attempts: 5
		      update_config:
		        parallelism: 1
		        order: stop-first
	EOF
	for ((i = 1; i <= agencies; i++)); do
		cat <<-EOF

			  client$i:
			    image: $client_image
			    env_file: $env_dir/client.env
			    environment:
			      CLI_ID: "$i"
			      CLI_DATA_PATH: /data/agency-$i.csv
			      CLI_TLS_CERT: /run/secrets/agency-$i.pem
			      CLI_TLS_KEY: /run/secrets/agency-$i-key.pem
			      CLI_TLS_CA: /run/secrets/ca.pem
			    volumes:
			      - type: bind
			        source: $data_dir/agency-$i.csv
			        target: /data/agency-$i.csv
			        read_only: true
			    networks:
			      - lottery
			    secrets:
			      - source: ca
			        target: ca.pem
			      - source: agency_${i}_cert
			        target: agency-$i.pem
			      - source: agency_${i}_key
			        target: agency-$i-key.pem
			        mode: 0400
			    stop_grace_period: 3s
			    read_only: true
			    cap_drop: [ALL]
			    deploy:
			      replicas: 1
		EOF
		if [ -n "${pinned[$i]:-}" ]; then
			cat <<-EOF
				      placement:
				        constraints:
				          - node.labels.lottery.agency == $i
			EOF
		fi
		cat <<-EOF
			      restart_policy:
			        condition: on-failure
			        delay: 5s
			        max_attempts: 3
		EOF
	done
	cat <<-EOF

		networks:
		  lottery:
		    driver: overlay

		volumes:
		  bets:

		secrets:
		  ca:
		    file: $certs_dir/ca.pem
		  central_cert:
		    file: $certs_dir/central.pem
		  central_key:
		    file: $certs_dir/central-key.pem
	EOF
	for ((i = 1; i <= agencies; i++)); do
		cat <<-EOF
			  agency_${i}_cert:
			    file: $certs_dir/agency-$i.pem
			  agency_${i}_key:
			    file: $certs_dir/agency-$i-key.pem
		EOF
	done
} >"$tmp"

chmod 644 "$tmp"
mv -f -- "$tmp" "$output"
trap - EXIT
