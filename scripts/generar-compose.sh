#!/usr/bin/env bash
# Writes a compose file with the central and N agencies (client1..clientN):
#
#   ./scripts/generar-compose.sh OUTPUT N
#   ./scripts/generar-compose.sh docker-compose-dev.yaml 5
#   TLS=0 ./scripts/generar-compose.sh docker-compose-dev.yaml 5    (plaintext)
#
# Mutual TLS is on: the central mounts .certs/central.pem, central-key.pem and
# ca.pem, and agency i only .certs/agency-i.pem, agency-i-key.pem and ca.pem, each
# read-only, with SERVER_TLS_* / CLI_TLS_* pointing at them (the central's
# certificate names `server`, the address the agencies dial). `make certs
# AGENCIES=N` writes them (make docker-compose-up does it for you). TLS=0 writes
# a plaintext file instead, for development: no certificate is mounted.
#
# The keys are mode 0600, owned by whoever ran `make certs`. The containers run
# as root with every capability dropped except DAC_READ_SEARCH, which lets them
# read a mounted file they do not own and nothing more (no writing to others'
# files, no chown, no setuid: no-new-privileges, a read-only root file system);
# the key files keep their mode and owner.
#
# The server is told to expect N agencies (SERVER_AGENCIES in `environment:`,
# overriding deployments/server.env). Its admin listener (the status page,
# /status.json, /metrics, /healthz) listens on port 9090 of the container and is
# published on the host's 127.0.0.1 only, at DOCKER_ADMIN_PORT (9091 when unset,
# beside `make run`'s 9090; 0 lets Docker pick a free port); the agencies' port
# is not published. Nothing names a container, the network or the volume: compose
# derives them from the project (COMPOSE_PROJECT_NAME: <project>_net,
# <project>_bets), so rounds under different project names run side by side.
#
# The file works wherever it is written: its paths (env files, agency CSVs,
# certificates) are relative to OUTPUT's directory when OUTPUT and they are
# inside this repository (compose resolves them against the file's directory),
# absolute otherwise.
# deployments/docker-compose.yaml is this script's output for N=5: regenerate
# it rather than editing it (`make test-docker` checks that they agree).
#
# Data: agency i reads DATA_DIR/agency-i.csv, mounted read-only; prepare it with
# `make data AGENCIES=N` (make docker-compose-up does it for you).
#
# Environment: TLS (1; 0 for plaintext), DATA_DIR (this repository's .data),
# CERTS_DIR (this repository's .certs).
set -euo pipefail

usage() {
	cat >&2 <<-EOF
		usage: $(basename "$0") OUTPUT N
		  OUTPUT  the compose file to write (its directory must exist)
		  N       number of agencies, a positive integer without leading zeros (at most 1000000)
		environment: TLS=1 (mutual TLS; 0: plaintext), DATA_DIR=.data, CERTS_DIR=.certs
	EOF
	exit 2
}

[ $# -eq 2 ] || usage
output=$1
agencies=$2
[ -n "$output" ] || usage
[[ $agencies =~ ^[1-9][0-9]{0,6}$ ]] && [ "$agencies" -le 1000000 ] || usage
tls=${TLS:-1}
if [ "$tls" != 0 ] && [ "$tls" != 1 ]; then
	echo "$(basename "$0"): TLS=$tls: want 1 (mutual TLS) or 0 (plaintext)" >&2
	usage
fi
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

# shellcheck source=scripts/paths.sh
. "$root/scripts/paths.sh"

env_dir=$(place "$root/deployments")
data_dir=$(place "${DATA_DIR:-$root/.data}")
certs_dir=$(place "${CERTS_DIR:-$root/.certs}")

# bind SOURCE TARGET: a read-only bind mount, in the long syntax: a missing
# SOURCE is an error, where the short one would create a directory there.
bind() {
	cat <<-EOF
		      - type: bind
		        source: $1
		        target: $2
		        read_only: true
	EOF
}

# The hardening every service gets (see the header).
hardening() {
	cat <<-EOF
		    read_only: true
		    cap_drop: [ALL]
		    cap_add: [DAC_READ_SEARCH]
		    security_opt: ["no-new-privileges:true"]
	EOF
}

tmp=$(mktemp "$out_dir/.generar-compose.XXXXXX")
trap 'rm -f "$tmp"' EXIT

{
	if [ "$tls" = 1 ]; then
		mode="mutual TLS: make certs AGENCIES=$agencies"
	else
		mode="plaintext (TLS=0): bets and winners travel unauthenticated"
	fi
	cat <<-EOF
		# The lottery central and $agencies agencies. Written by scripts/generar-compose.sh:
		# change the generator, not this file. Relative paths are from this file's directory.
		# Images: make docker-image. Data: make data AGENCIES=$agencies. Certificates: $mode.
		# Run: make docker-compose-up (a fresh round: the bets volume is emptied first;
		# RESUME=1 continues the stored round). The status page is published on the
		# host at http://127.0.0.1:\${DOCKER_ADMIN_PORT:-9091}/ (make docker-compose-up prints it).
		services:
		  server:
		    image: lottery-server:latest
		    env_file: $env_dir/server.env
		    environment:
		      SERVER_AGENCIES: "$agencies"
		      SERVER_ADMIN_ADDRESS: ":9090"
	EOF
	if [ "$tls" = 1 ]; then
		cat <<-EOF
			      SERVER_TLS_CERT: /certs/central.pem
			      SERVER_TLS_KEY: /certs/central-key.pem
			      SERVER_TLS_CLIENT_CA: /certs/ca.pem
		EOF
	fi
	cat <<-EOF
		    volumes:
		      - bets:/var/lib/lottery
	EOF
	if [ "$tls" = 1 ]; then
		bind "$certs_dir/central.pem" /certs/central.pem
		bind "$certs_dir/central-key.pem" /certs/central-key.pem
		bind "$certs_dir/ca.pem" /certs/ca.pem
	fi
	cat <<-EOF
		    ports:
		      - "127.0.0.1:\${DOCKER_ADMIN_PORT:-9091}:9090"
		    networks:
		      - net
		    healthcheck:
		      test: ["CMD", "/server", "health"]
		      interval: 2s
		      timeout: 5s
		      retries: 15
		    stop_grace_period: 3s
	EOF
	hardening
	for ((i = 1; i <= agencies; i++)); do
		cat <<-EOF

			  client$i:
			    image: lottery-client:latest
			    env_file: $env_dir/client.env
			    environment:
			      CLI_ID: "$i"
			      CLI_DATA_PATH: /data/agency-$i.csv
		EOF
		if [ "$tls" = 1 ]; then
			cat <<-EOF
				      CLI_TLS_CERT: /certs/agency-$i.pem
				      CLI_TLS_KEY: /certs/agency-$i-key.pem
				      CLI_TLS_CA: /certs/ca.pem
			EOF
		fi
		echo "    volumes:"
		bind "$data_dir/agency-$i.csv" "/data/agency-$i.csv"
		if [ "$tls" = 1 ]; then
			bind "$certs_dir/agency-$i.pem" "/certs/agency-$i.pem"
			bind "$certs_dir/agency-$i-key.pem" "/certs/agency-$i-key.pem"
			bind "$certs_dir/ca.pem" /certs/ca.pem
		fi
		cat <<-EOF
			    networks:
			      - net
			    depends_on:
			      server:
			        condition: service_healthy
			    stop_grace_period: 3s
		EOF
		hardening
	done
	cat <<-EOF

		networks:
		  net:
		    driver: bridge

		volumes:
		  bets:
	EOF
} >"$tmp"

chmod 644 "$tmp"
mv -f -- "$tmp" "$output"
trap - EXIT
