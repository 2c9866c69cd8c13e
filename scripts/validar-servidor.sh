#!/usr/bin/env bash
# Checks that the central answers the protocol's health probe (PING/PONG) from
# inside the compose network: it runs the server image's own `health`
# subcommand in a throwaway container on that network, so no port is published
# and nothing is installed on the host.
#
#   ./scripts/validar-servidor.sh
#
# The last line on stdout is exactly `action: test_server | result: success`
# (exit 0) or `action: test_server | result: fail` (exit 1); the probe's own
# output goes to stderr. Bounded: a missing network, a stopped server or one
# that never answers fails within VALIDAR_TIMEOUT seconds.
#
# Environment (defaults match deployments/docker-compose.yaml):
#   NETWORK          compose network           (lottery_net)
#   SERVER_ADDRESS   the central, as seen there (server:12345)
#   SERVER_IMAGE     image holding /server      (lottery-server:latest)
#   VALIDAR_TIMEOUT  seconds                    (15)
set -uo pipefail

network=${NETWORK:-lottery_net}
address=${SERVER_ADDRESS:-server:12345}
image=${SERVER_IMAGE:-lottery-server:latest}
limit=${VALIDAR_TIMEOUT:-15}
name=validar-servidor-$$-$RANDOM

result() {
	echo "action: test_server | result: $1"
	[ "$1" = success ]
	exit
}

# The container is named so that it can be removed if the timeout fires (killing
# `docker run` does not stop the container it started).
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

if ! docker network inspect "$network" >/dev/null 2>&1; then
	echo "validar-servidor: network $network does not exist (is the compose project up?)" >&2
	result fail
fi

if timeout -k 2 "$limit" docker run --rm --name "$name" --pull never --network "$network" \
	"$image" health "$address" >&2; then
	result success
fi
result fail
