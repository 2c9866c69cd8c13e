# Docker targets, included from the Makefile. The images are FROM scratch and
# hold the static binaries that `make build` writes to bin/.
#
#   make docker-compose-up        data, certificates + images, then a fresh round
#                                 (the previous containers and bets volume removed),
#                                 detached; prints the status page's URL on this host;
#                                 RESUME=1 keeps the volume and continues its round
#   make docker-compose-logs      waits (bounded) for the agencies to finish, prints the
#                                 logs, the status page's URL and a verdict line: every
#                                 agency got its winners, or FAILED and why (exit 1)
#   make docker-compose-down      stop -t 1, then down; the bets volume is kept
#   make docker-compose-clean     down and remove the bets volume as well
#   make docker-image             only the two images
#   make test-docker              the Go tests against real containers
#                                 (server/docker_test.go, build tag docker)
#
# The compose files speak mutual TLS (scripts/generar-compose.sh; TLS=0 there
# writes a plaintext one): docker-compose-up runs `make certs` for the number of
# agencies the file expects, keeping the certificates that exist.
#
# COMPOSE_FILE=path selects another compose file, e.g. one written by
#   ./scripts/generar-compose.sh docker-compose-dev.yaml 10
#   make docker-compose-up COMPOSE_FILE=docker-compose-dev.yaml
# (the data is prepared for the number of agencies that file's server expects).
#
# Everything a round creates is named after its project (COMPOSE_PROJECT_NAME):
# its containers (compose names them), the network <project>_net and the bets
# volume <project>_bets. Two projects run side by side when each publishes its
# status page on its own port:
#   make docker-compose-up COMPOSE_PROJECT_NAME=lottery2 DOCKER_ADMIN_PORT=9092
# (DOCKER_ADMIN_PORT=0 lets Docker pick a free one; the printed URL says which).
# The bets volume belongs to the project, not to a compose file: RESUME=1 with
# other data than the stored round's makes the agencies find the central holding
# bets their files don't have.

COMPOSE_FILE         ?= deployments/docker-compose.yaml
COMPOSE_PROJECT_NAME ?= lottery
# The image names the compose files use.
SERVER_IMAGE         := lottery-server:latest
CLIENT_IMAGE         := lottery-client:latest
# How long docker-compose-logs waits for the agencies to exit before printing anyway.
LOGS_WAIT            ?= 120
# The host port, on 127.0.0.1 only, of the central's status page and metrics
# (the compose files publish the container's 9090 there): 9091, so that a round
# in Docker and `make run` (127.0.0.1:9090) can run at once; 0 picks a free one.
DOCKER_ADMIN_PORT    ?= 9091

# `docker compose` (v2) when it works, else `docker-compose` (v1.29); looked up
# once, and only by the targets that use it.
COMPOSE_CMD = $(eval COMPOSE_CMD := $$(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; fi))$(COMPOSE_CMD)
COMPOSE = $(COMPOSE_CMD) -p $(COMPOSE_PROJECT_NAME) -f $(COMPOSE_FILE)
# What the project owns, by compose's label; and the script that reads a round
# from its containers (the status page's URL, the verdict).
PROJECT_LABEL = label=com.docker.compose.project=$(COMPOSE_PROJECT_NAME)
COMPOSE_ROUND = COMPOSE_PROJECT_NAME=$(COMPOSE_PROJECT_NAME) ./scripts/compose-round.sh
# The logs target for this project, as docker-compose-up tells it.
LOGS_COMMAND = $(strip make docker-compose-logs $(if $(filter-out lottery,$(COMPOSE_PROJECT_NAME)),COMPOSE_PROJECT_NAME=$(COMPOSE_PROJECT_NAME)) \
	$(if $(filter-out deployments/docker-compose.yaml,$(COMPOSE_FILE)),COMPOSE_FILE=$(COMPOSE_FILE)))

# The number of agencies the compose file's server expects (AGENCIES if none is written).
COMPOSE_AGENCIES = $(or $(shell sed -n 's/^ *SERVER_AGENCIES: *"\{0,1\}\([0-9][0-9]*\)"\{0,1\} *$$/\1/p' $(COMPOSE_FILE) 2>/dev/null | head -n 1),$(AGENCIES))

.PHONY: docker-image docker-compose-up docker-compose-down docker-compose-clean docker-compose-logs \
	docker-compose-check test-docker

docker-compose-check:
	@if [ -z "$(COMPOSE_CMD)" ]; then echo "neither 'docker compose' nor 'docker-compose' is installed" >&2; exit 1; fi
	@if [ ! -f "$(COMPOSE_FILE)" ]; then echo "no compose file $(COMPOSE_FILE) (scripts/generar-compose.sh writes one)" >&2; exit 1; fi
	@if ! [[ "$(COMPOSE_PROJECT_NAME)" =~ ^[a-z0-9][a-z0-9_-]*$$ ]]; then \
		echo "COMPOSE_PROJECT_NAME=$(COMPOSE_PROJECT_NAME): want lower-case letters, digits, - and _ (compose's project names)" >&2; exit 1; fi
	@if ! [[ "$(DOCKER_ADMIN_PORT)" =~ ^[0-9]{1,5}$$ ]] || [ "$(DOCKER_ADMIN_PORT)" -gt 65535 ]; then \
		echo "DOCKER_ADMIN_PORT=$(DOCKER_ADMIN_PORT): want a port, 0..65535 (0: Docker picks a free one)" >&2; exit 1; fi

# Each image is built from a context holding only its Dockerfile and binary, with
# BuildKit when docker buildx is installed (scripts/build-image.sh). The images a
# rebuild untagged are pruned (only ours: the Dockerfiles label them); a prune
# that fails (the engine runs one prune at a time, and another make may be
# pruning) leaves them for the next build, and does not fail this one.
docker-image: build ## the two images (FROM scratch, the static binaries)
	@./scripts/build-image.sh deployments/server.Dockerfile $(BIN)/server $(SERVER_IMAGE)
	@./scripts/build-image.sh deployments/client.Dockerfile $(BIN)/client $(CLIENT_IMAGE)
	@docker image prune -f --filter label=org.opencontainers.image.title=lottery-server >/dev/null 2>&1 || true
	@docker image prune -f --filter label=org.opencontainers.image.title=lottery-client >/dev/null 2>&1 || true

# docker-compose v1 prints this notice on `up` when the engine is a swarm node
# (a swarm stack may run beside the compose project): it is dropped, nothing else.
SWARM_NOTICE := /^The Docker Engine you.re using is running in swarm mode/,/^$$/d; \
	/^Compose does not use swarm mode to deploy services/,/^$$/d; /^To deploy your application across the swarm/,/^$$/d

# A fresh round unless RESUME=1: whatever the project left (containers, the
# network, with RESUME unset the bets volume too) is removed first, quietly (its
# output is shown only if that fails), so `up` never starts a stale container
# or finds yesterday's bets. A central container that restarts while the round
# runs keeps the volume, and resumes from it. Certificates are made when the
# compose file mounts them (`make certs`, which keeps those that exist); a line
# says so only when some were created.
docker-compose-up: docker-compose-check docker-image ## data, certificates, images, then a fresh round detached (RESUME=1: continue the stored one)
	@$(MAKE) --no-print-directory -s data AGENCIES=$(COMPOSE_AGENCIES)
	@if grep -q '^ *SERVER_TLS_CERT:' "$(COMPOSE_FILE)"; then \
		if ! out=$$($(MAKE) --no-print-directory -s certs AGENCIES=$(COMPOSE_AGENCIES) 2>&1); then \
			echo "$$out" >&2; exit 1; \
		fi; \
		created=$$(sed -n 's/.*action: certs | result: success .*| creados: \([0-9]*\) .*/\1/p' <<<"$$out"); \
		[ "$${created:-0}" = 0 ] || echo "docker-compose-up: mutual TLS: $$created new certificate files in $(CERTS)/"; \
	fi
	@volume=$$(docker volume ls -q --filter $(PROJECT_LABEL)); \
	if [ "$(RESUME)" = 1 ]; then \
		echo "docker-compose-up: RESUME=1: continuing the round stored on $${volume:-a new volume}"; \
		down="down --remove-orphans -t 1"; \
	else \
		[ -z "$$volume" ] || echo "docker-compose-up: a fresh round: removing $$volume (RESUME=1 continues it)"; \
		down="down -v --remove-orphans -t 1"; \
	fi; \
	if [ -n "$$volume$$(docker ps -aq --filter $(PROJECT_LABEL))" ] && \
		! out=$$($(COMPOSE) $$down 2>&1); then \
		echo "$$out" >&2; exit 1; \
	fi
	@echo "DOCKER_ADMIN_PORT=$(DOCKER_ADMIN_PORT) $(COMPOSE) up -d"
	@if ! out=$$(DOCKER_ADMIN_PORT=$(DOCKER_ADMIN_PORT) $(COMPOSE) up -d 2>&1); then \
		sed "$(SWARM_NOTICE)" <<<"$$out" >&2; \
		if grep -q 'address already in use\|port is already allocated' <<<"$$out"; then \
			echo "docker-compose-up: 127.0.0.1:$(DOCKER_ADMIN_PORT), the status page's port, is taken (another round?):" \
				"DOCKER_ADMIN_PORT=... picks another, 0 a free one" >&2; \
		fi; \
		exit 1; \
	fi; \
	sed "$(SWARM_NOTICE)" <<<"$$out"
	@SAY=docker-compose-up $(COMPOSE_ROUND) url
	@echo "docker-compose-up: $(LOGS_COMMAND) waits for the agencies and says whether each got its winners"

# down and clean act through compose while the project has containers; without
# any, compose would still try to remove the network and say it is not found,
# so whatever the project left (its network, with clean its volume) is removed
# by its label instead, and a line says what.
docker-compose-down: docker-compose-check ## stop -t 1, then down (the bets volume is kept)
	@if [ -n "$$(docker ps -aq --filter $(PROJECT_LABEL))" ]; then \
		echo "$(COMPOSE) stop -t 1"; $(COMPOSE) stop -t 1; \
		echo "$(COMPOSE) down --remove-orphans"; $(COMPOSE) down --remove-orphans; \
	else \
		echo "docker-compose-down: project $(COMPOSE_PROJECT_NAME) has no containers"; \
		$(call remove-left,network,docker-compose-down); \
	fi

docker-compose-clean: docker-compose-check ## down and remove the bets volume
	@if [ -n "$$(docker ps -aq --filter $(PROJECT_LABEL))" ]; then \
		echo "$(COMPOSE) down -v --remove-orphans -t 1"; $(COMPOSE) down -v --remove-orphans -t 1; \
	fi
	@out=$$($(call remove-left,network,docker-compose-clean); $(call remove-left,volume,docker-compose-clean)); \
	echo "$${out:-docker-compose-clean: nothing of project $(COMPOSE_PROJECT_NAME) is left}"

# remove-left KIND,TARGET: removes the project's objects of KIND (network,
# volume) by label, saying which.
remove-left = left=$$(docker $(1) ls -q --filter $(PROJECT_LABEL)); \
	if [ -n "$$left" ]; then \
		names=$$(docker $(1) inspect -f '{{.Name}}' $$left | xargs); \
		docker $(1) rm $$left >/dev/null; \
		echo "$(2): removed the $(1) $$names"; \
	fi

# The verdict is the last line: every agency got its winners (as many as its
# data file says), or FAILED and why; the target fails with it.
docker-compose-logs: docker-compose-check ## wait (LOGS_WAIT, 120 s at most) for the agencies, print the logs, the status page's URL and the verdict
	@agencies=$$(docker ps --filter $(PROJECT_LABEL) --filter status=running \
		--format '{{.ID}} {{.Label "com.docker.compose.service"}}' | awk '$$2 != "server" {print $$1}'); \
	if [ -n "$$agencies" ] && ! timeout $(LOGS_WAIT) docker wait $$agencies >/dev/null; then \
		echo "docker-compose-logs: agencies still running after $(LOGS_WAIT)s" >&2; \
	fi
	$(COMPOSE) logs --no-color
	@SAY=docker-compose-logs $(COMPOSE_ROUND) url || true
	@SAY=docker-compose-logs $(COMPOSE_ROUND) verdict

# The tests drive the compose command and these targets themselves, in the
# projects lottery-test, lottery-test-a and lottery-test-b, with status pages on
# ports Docker picks (a round of yours on 9091 may run meanwhile); they rewrite
# .data/agency-1..5.csv with the official dataset and add what .certs/ lacks for
# 5 agencies. -race costs only the compile: the work happens in the containers.
test-docker: race-cc docker-image ## Go tests against real containers (server/docker_test.go), a few minutes
	cd server && CGO_ENABLED=1 $(GO) test -tags docker -race -count=1 -run '^TestDocker$$' -v -timeout 30m .
