# The lottery central: a static Go binary (CGO_ENABLED=0) on an empty image.
# Build context: the repository root, after `make build` wrote bin/server:
#   docker build -f deployments/server.Dockerfile -t lottery-server:latest .
# (make docker-image does both). No shell inside: the health check is the
# binary's own `health` subcommand, declared in the compose file.
FROM scratch
LABEL org.opencontainers.image.title="lottery-server"
COPY bin/server /server
# scratch has no directories: this one holds the bets file (./bets.csv by
# default, SERVER_STORAGE_PATH in deployments/server.env); compose mounts a
# named volume over it so the bets outlive the container.
WORKDIR /var/lib/lottery
EXPOSE 12345
ENTRYPOINT ["/server"]
