# A betting agency: a static Go binary (CGO_ENABLED=0) on an empty image.
# `make docker-image` builds it after `make build` wrote bin/client, through
# scripts/build-image.sh (a context of only this file and the binary; BuildKit
# when docker buildx is installed). By hand, from the repository root:
#   docker build -f deployments/client.Dockerfile -t lottery-client:latest .
# The agency's CSV is not baked in: the compose file mounts .data/agency-N.csv
# read-only and points CLI_DATA_PATH at it.
FROM scratch
LABEL org.opencontainers.image.title="lottery-client"
COPY bin/client /client
ENTRYPOINT ["/client"]
