# A betting agency: a static Go binary (CGO_ENABLED=0) on an empty image.
# Build context: the repository root, after `make build` wrote bin/client:
#   docker build -f deployments/client.Dockerfile -t lottery-client:latest .
# (make docker-image does both). The agency's CSV is not baked in: the compose
# file mounts .data/agency-N.csv read-only and points CLI_DATA_PATH at it.
FROM scratch
LABEL org.opencontainers.image.title="lottery-client"
COPY bin/client /client
ENTRYPOINT ["/client"]
