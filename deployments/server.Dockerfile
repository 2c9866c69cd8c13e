# The lottery central: a static Go binary (CGO_ENABLED=0) on an empty image.
# `make docker-image` builds it after `make build` wrote bin/server, through
# scripts/build-image.sh (a context of only this file and the binary; BuildKit
# when docker buildx is installed). By hand, from the repository root:
#   docker build -f deployments/server.Dockerfile -t lottery-server:latest .
# No shell inside: the health check is the binary's own `health` subcommand,
# declared in the compose file.
# No USER: the key it is given (mode 0600) belongs to whoever ran `make certs`,
# and the bets volume to root. The compose files run it as root without any
# capability but DAC_READ_SEARCH (read a mounted file it does not own), with
# no-new-privileges and a read-only root file system (scripts/generar-compose.sh).
FROM scratch
LABEL org.opencontainers.image.title="lottery-server"
COPY bin/server /server
# scratch has no directories: this one holds the bets file (./bets.csv by
# default, SERVER_STORAGE_PATH in deployments/server.env); compose mounts a
# named volume over it so the bets outlive the container.
WORKDIR /var/lib/lottery
EXPOSE 12345
ENTRYPOINT ["/server"]
