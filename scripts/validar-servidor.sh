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
# With mutual TLS (the compose files' default) the probe speaks TLS as the
# central's health check does: it presents the central's own certificate
# (CERTS_DIR/central.pem and central-key.pem, mounted read-only with ca.pem),
# which names no agency, so the central lets it PING and nothing else. TLS=0
# probes a plaintext central.
#
# Environment (defaults match deployments/docker-compose.yaml, in the project
# make docker-compose-up starts):
#   COMPOSE_PROJECT_NAME  the compose project  (lottery)
#   NETWORK          compose network           (<project>_net)
#   SERVER_ADDRESS   the central, as seen there (server:12345)
#   SERVER_IMAGE     image holding /server      (lottery-server:latest)
#   VALIDAR_TIMEOUT  seconds                    (15)
#   TLS              1: mutual TLS, 0: plaintext (1)
#   CERTS_DIR        the certificates          (this repository's .certs)
set -uo pipefail

network=${NETWORK:-${COMPOSE_PROJECT_NAME:-lottery}_net}
address=${SERVER_ADDRESS:-server:12345}
image=${SERVER_IMAGE:-lottery-server:latest}
limit=${VALIDAR_TIMEOUT:-15}
name=validar-servidor-$$-$RANDOM
tls=${TLS:-1}
certs=${CERTS_DIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)/.certs}

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

# The probe gets no capability but DAC_READ_SEARCH, to read the key it does
# not own (mode 0600, owned by whoever ran make certs), as the compose files do.
args=(--rm --name "$name" --pull never --network "$network"
	--cap-drop ALL --cap-add DAC_READ_SEARCH --security-opt no-new-privileges:true)
if [ "$tls" != 0 ]; then
	certs=$(cd -- "$certs" 2>/dev/null && pwd -P) || {
		echo "validar-servidor: ${CERTS_DIR:-.certs} does not exist (make certs; TLS=0 for a plaintext central)" >&2
		result fail
	}
	for f in central.pem central-key.pem ca.pem; do
		if [ ! -f "$certs/$f" ]; then
			echo "validar-servidor: $certs/$f missing (make certs; TLS=0 for a plaintext central)" >&2
			result fail
		fi
		args+=(--mount "type=bind,source=$certs/$f,target=/certs/$f,readonly")
	done
	args+=(-e SERVER_TLS_CERT=/certs/central.pem -e SERVER_TLS_KEY=/certs/central-key.pem
		-e SERVER_TLS_CLIENT_CA=/certs/ca.pem)
fi

if timeout -k 2 "$limit" docker run "${args[@]}" "$image" health "$address" >&2; then
	result success
fi
result fail
