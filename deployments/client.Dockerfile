# A betting agency: a static Go binary (CGO_ENABLED=0) on an empty image.
# `make docker-image` builds it after `make build` wrote bin/client, through
# scripts/build-image.sh (a context of only this file and the binary; BuildKit
# when docker buildx is installed). By hand, from the repository root:
#   docker build -f deployments/client.Dockerfile -t lottery-client:latest .
# The agency's CSV is not baked in: the compose file mounts .data/agency-N.csv
# read-only and points CLI_DATA_PATH at it.
# Its certificate, key and the CA are mounted read-only the same way (mutual
# TLS, CLI_TLS_*). No USER: the key (mode 0600) belongs to whoever ran `make
# certs`; the compose files run the agency as root without any capability but
# DAC_READ_SEARCH, which reads it (scripts/generar-compose.sh).
FROM scratch
LABEL org.opencontainers.image.title="lottery-client"
COPY bin/client /client
ENTRYPOINT ["/client"]
