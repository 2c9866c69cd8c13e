# Docker targets, included from the Makefile. The images are FROM scratch and
# hold the static binaries that `make build` writes to bin/.
#
#   make docker-compose-up        data + images, then a fresh round (the previous
#                                 containers and bets volume removed), detached;
#                                 RESUME=1 keeps the volume and continues its round
#   make docker-compose-logs      waits (bounded) for the agencies to finish, prints the logs
#   make docker-compose-down      stop -t 1, then down; the bets volume is kept
#   make docker-compose-clean     down and remove the bets volume as well
#   make docker-image             only the two images
#   make test-docker              scripts/test-docker.sh against real containers
#
# COMPOSE_FILE=path selects another compose file, e.g. one written by
#   ./scripts/generar-compose.sh docker-compose-dev.yaml 10
#   make docker-compose-up COMPOSE_FILE=docker-compose-dev.yaml
# (the data is prepared for the number of agencies that file's server expects).
# The bets volume belongs to the project (COMPOSE_PROJECT_NAME), not to a compose
# file: RESUME=1 with other data than the stored round's makes the agencies find
# the central holding bets their files don't have.

COMPOSE_FILE         ?= deployments/docker-compose.yaml
COMPOSE_PROJECT_NAME ?= lottery
# The image names the compose files use.
SERVER_IMAGE         := lottery-server:latest
CLIENT_IMAGE         := lottery-client:latest
# How long docker-compose-logs waits for the agencies to exit before printing anyway.
LOGS_WAIT            ?= 120

# `docker compose` (v2) when it works, else `docker-compose` (v1.29); looked up
# once, and only by the targets that use it.
COMPOSE_CMD = $(eval COMPOSE_CMD := $$(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi))$(COMPOSE_CMD)
COMPOSE = $(COMPOSE_CMD) -p $(COMPOSE_PROJECT_NAME) -f $(COMPOSE_FILE)

# The number of agencies the compose file's server expects (AGENCIES if none is written).
COMPOSE_AGENCIES = $(or $(shell sed -n 's/^ *SERVER_AGENCIES: *"\{0,1\}\([0-9][0-9]*\)"\{0,1\} *$$/\1/p' $(COMPOSE_FILE) 2>/dev/null | head -n 1),$(AGENCIES))

.PHONY: docker-image docker-compose-up docker-compose-down docker-compose-clean docker-compose-logs \
	docker-compose-check test-docker

docker-compose-check:
	@if [ -z "$(COMPOSE_CMD)" ]; then echo "neither 'docker compose' nor 'docker-compose' is installed" >&2; exit 1; fi
	@if [ ! -f "$(COMPOSE_FILE)" ]; then echo "no compose file $(COMPOSE_FILE) (scripts/generar-compose.sh writes one)" >&2; exit 1; fi

# Each image is built from a context holding only its Dockerfile and binary, with
# BuildKit when docker buildx is installed (scripts/build-image.sh). The images a
# rebuild untagged are pruned (only ours: the Dockerfiles label them).
docker-image: build ## the two images (FROM scratch, the static binaries)
	@./scripts/build-image.sh deployments/server.Dockerfile $(BIN)/server $(SERVER_IMAGE)
	@./scripts/build-image.sh deployments/client.Dockerfile $(BIN)/client $(CLIENT_IMAGE)
	@docker image prune -f --filter label=org.opencontainers.image.title=lottery-server >/dev/null
	@docker image prune -f --filter label=org.opencontainers.image.title=lottery-client >/dev/null

# A fresh round unless RESUME=1: whatever the project left (containers, the
# network, with RESUME unset the bets volume too) is removed first, quietly (its
# output is shown only if that fails), so `up` never starts a stale container
# or finds yesterday's bets. A central container that restarts while the round
# runs keeps the volume, and resumes from it.
docker-compose-up: docker-compose-check docker-image ## data, images, then a fresh round detached (RESUME=1: continue the stored one)
	@$(MAKE) --no-print-directory -s data AGENCIES=$(COMPOSE_AGENCIES)
	@volume=$$(docker volume ls -q --filter label=com.docker.compose.project=$(COMPOSE_PROJECT_NAME)); \
	if [ "$(RESUME)" = 1 ]; then \
		echo "docker-compose-up: RESUME=1: continuing the round stored on $${volume:-a new volume}"; \
		down="down --remove-orphans -t 1"; \
	else \
		[ -z "$$volume" ] || echo "docker-compose-up: a fresh round: removing $$volume (RESUME=1 continues it)"; \
		down="down -v --remove-orphans -t 1"; \
	fi; \
	if [ -n "$$volume$$(docker ps -aq --filter label=com.docker.compose.project=$(COMPOSE_PROJECT_NAME))" ] && \
		! out=$$($(COMPOSE) $$down 2>&1); then \
		echo "$$out" >&2; exit 1; \
	fi
	$(COMPOSE) up -d

docker-compose-down: docker-compose-check ## stop -t 1, then down (the bets volume is kept)
	$(COMPOSE) stop -t 1
	$(COMPOSE) down --remove-orphans

docker-compose-clean: docker-compose-check ## down and remove the bets volume
	$(COMPOSE) down -v --remove-orphans -t 1

docker-compose-logs: docker-compose-check ## wait (LOGS_WAIT, 120 s at most) for the agencies, print the logs
	@deadline=$$((SECONDS + $(LOGS_WAIT))); \
	while running=$$(docker ps --filter label=com.docker.compose.project=$(COMPOSE_PROJECT_NAME) --filter status=running \
			--format '{{.Label "com.docker.compose.service"}}' | grep -v '^server$$' || true); [ -n "$$running" ]; do \
		if [ $$SECONDS -ge $$deadline ]; then \
			echo "docker-compose-logs: agencies still running after $(LOGS_WAIT)s:" $$running >&2; break; \
		fi; \
		sleep 1; \
	done
	$(COMPOSE) logs --no-color

test-docker: build docker-image ## scripts/test-docker.sh: real containers, a few minutes
	COMPOSE="$(COMPOSE_CMD)" SERVER_IMAGE=$(SERVER_IMAGE) CLIENT_IMAGE=$(CLIENT_IMAGE) DATASET=$(DATASET) \
		./scripts/test-docker.sh
