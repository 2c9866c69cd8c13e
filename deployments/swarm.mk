# Docker Swarm targets, included from the Makefile: the same images and mutual
# TLS as compose, for agencies on other hosts (docs/swarm.md).
#
#   make swarm-up      certs, data, images, then a fresh round: the stack file
#                      written by scripts/generar-stack.sh to SWARM_STACK_FILE,
#                      deployed as SWARM_STACK (the previous round's stack and
#                      bets volume removed first)
#   make swarm-logs    waits (bounded) for the agencies to finish, prints the logs
#   make swarm-down    removes the stack (services, secrets, network) and its volume
#   make test-swarm    the stack on a single-node swarm: a clean round, then one
#                      whose central is restarted while the agencies send (a minute
#                      or two); one SKIPPED line when this engine cannot run a swarm
#
# swarm-up needs this engine to be a swarm manager (`docker swarm init`) and a
# node labelled lottery.central=true: on a single-node swarm it labels that node
# (and says so); on several nodes it tells you which command to run.

SWARM_STACK      ?= lottery-swarm
SWARM_AGENCIES   ?= $(AGENCIES)
SWARM_STACK_FILE ?= $(RUN_DIR)/$(SWARM_STACK).yaml
# How long swarm-logs waits for the agencies, and swarm-down for the stack's
# containers to go (the volume is in use until then).
SWARM_WAIT       ?= 180

SWARM_VOLUME     = $(SWARM_STACK)_bets
SWARM_LABEL      = label=com.docker.stack.namespace=$(SWARM_STACK)

.PHONY: swarm-check swarm-up swarm-logs swarm-down test-swarm

swarm-check:
	@if [ "$$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" != true ]; then \
		echo "swarm: this Docker engine is not a swarm manager: docker swarm init (docs/swarm.md)" >&2; exit 1; \
	fi

swarm-up: swarm-check docker-image ## certs, data, images, then a fresh round on Docker Swarm (SWARM_STACK, SWARM_AGENCIES)
	@$(MAKE) --no-print-directory -s certs AGENCIES=$(SWARM_AGENCIES) >/dev/null
	@$(MAKE) --no-print-directory -s data AGENCIES=$(SWARM_AGENCIES)
	@nodes=$$(docker node ls -q); \
	central=$$(for n in $$nodes; do \
		[ "$$(docker node inspect --format '{{index .Spec.Labels "lottery.central"}}' $$n)" = true ] && echo $$n; done || true); \
	if [ -z "$$central" ] && [ $$(echo $$nodes | wc -w) = 1 ]; then \
		echo "swarm-up: labelling the only node lottery.central=true (docker node update --label-rm lottery.central $$nodes undoes it)"; \
		docker node update --label-add lottery.central=true $$nodes >/dev/null; \
	elif [ -z "$$central" ]; then \
		echo "swarm-up: no node is labelled for the central: docker node update --label-add lottery.central=true NODE" >&2; exit 1; \
	fi
	@if docker stack ls --format '{{.Name}}' | grep -Fxq '$(SWARM_STACK)' || docker volume inspect $(SWARM_VOLUME) >/dev/null 2>&1; then \
		echo "swarm-up: a fresh round: removing the previous $(SWARM_STACK) stack and its volume"; \
		$(MAKE) --no-print-directory -s swarm-down >/dev/null; \
	fi
	@mkdir -p $(dir $(SWARM_STACK_FILE))
	./scripts/generar-stack.sh $(SWARM_STACK_FILE) $(SWARM_AGENCIES)
	docker stack deploy --detach=true --resolve-image never -c $(SWARM_STACK_FILE) $(SWARM_STACK)

# An agency's task leaves the running state when it exits (0: complete; else
# failed, and restarted up to its limit).
swarm-logs: swarm-check ## wait (SWARM_WAIT, 180 s at most) for the agencies, print every service's logs
	@deadline=$$((SECONDS + $(SWARM_WAIT))); \
	while running=$$(docker stack ps $(SWARM_STACK) --filter desired-state=running --format '{{.Name}}' | \
			grep -v '^$(SWARM_STACK)_server\.' || true); [ -n "$$running" ]; do \
		if [ $$SECONDS -ge $$deadline ]; then \
			echo "swarm-logs: agencies still running after $(SWARM_WAIT)s:" $$running >&2; break; \
		fi; \
		sleep 1; \
	done
	@for s in $$(docker stack services $(SWARM_STACK) --format '{{.Name}}' | sort -V); do \
		docker service logs --no-trunc $$s; \
	done
	@docker stack ps $(SWARM_STACK) --format '{{.Name}}\t{{.CurrentState}}\t{{.Error}}'

# docker stack rm removes the services, secrets and network at once; their
# tasks and containers go a little later (a task not yet started may still get
# its container first), and the volume can go only when they are gone. The
# volume lives on the central's node: run this there (or docker volume rm it there).
swarm-down: swarm-check ## remove the stack (services, secrets, network) and its bets volume
	@if docker stack ls --format '{{.Name}}' | grep -Fxq '$(SWARM_STACK)'; then docker stack rm $(SWARM_STACK); fi
	@deadline=$$((SECONDS + $(SWARM_WAIT))); \
	while [ -n "$$(docker stack ps -q $(SWARM_STACK) 2>/dev/null)$$(docker ps -aq --filter $(SWARM_LABEL))" ]; do \
		if [ $$SECONDS -ge $$deadline ]; then \
			echo "swarm-down: containers of $(SWARM_STACK) still there after $(SWARM_WAIT)s" >&2; exit 1; \
		fi; \
		sleep 1; \
	done
	@if docker volume inspect $(SWARM_VOLUME) >/dev/null 2>&1; then docker volume rm $(SWARM_VOLUME); \
	else echo "swarm-down: no volume $(SWARM_VOLUME) on this node (on several hosts it is on the central's node)"; fi

# The skip is decided here: no engine, or an engine that is a swarm worker (or a
# swarm pending, locked or in error). Otherwise the test initialises a
# single-node swarm when there is none and leaves it after.
test-swarm: ## the stack on a single-node swarm: a clean round, then the central restarted mid-round
	@if ! state=$$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null); then \
		echo "test-swarm: SKIPPED (no Docker engine)"; exit 0; \
	fi; \
	case "$$state" in \
	"inactive false" | "active true") ;; \
	*) echo "test-swarm: SKIPPED (this engine cannot run a single-node swarm: swarm state '$$state')"; exit 0 ;; \
	esac; \
	$(MAKE) --no-print-directory docker-image && \
	cd server && $(GO) test -tags swarm -count=1 -run '^TestSwarm$$' -v -timeout 20m .
