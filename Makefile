# The two commands a newcomer needs: `make run` and `make test` (`make help` lists the rest).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES    := protocol lottery server client
BIN        := bin
GO         ?= go
# .data/ holds the official dataset (committed) and the agency files prepared from it.
DATA       := .data
DATASET    ?= .data/dataset.zip
# make run's working files: the bets file, its FINISH journal, each process's log.
RUN_DIR    ?= .run
# make certs: the CA and the key pairs of the central and of each agency.
CERTS      ?= .certs
# Mutual TLS for make run (TLS=0: plaintext, for development).
TLS        ?= 1
AGENCIES   ?= 5
BETS       ?= 20000
SEED       ?= 1
FUZZTIME   ?= 60s
# Linters, run through the module proxy at pinned versions (nothing to install).
STATICCHECK_VERSION ?= v0.8.2
DEADCODE_VERSION    ?= v0.52.0
# Static binaries: the images are FROM scratch. No symbol table or DWARF
# (-s -w): a third smaller, and a panic still names its functions.
export CGO_ENABLED := 0
GOBUILD    := -trimpath -ldflags='-s -w'

.PHONY: all help build test race-cc tidy-check fmt-check vet staticcheck deadcode unit fuzz fuzz-short \
	chaos data run certs bench clean

all: build

help: ## this list
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed 's/^\([a-z-]*\):.*## /\1\t/' | \
		awk -F'\t' '{printf "  make %-22s %s\n", $$1, $$2}'

build: ## static binaries in bin/: server, client, dataset
	@mkdir -p $(BIN)
	$(GO) build $(GOBUILD) -o $(BIN)/server ./server
	$(GO) build $(GOBUILD) -o $(BIN)/client ./client
	$(GO) build $(GOBUILD) -o $(BIN)/dataset ./lottery/cmd/dataset

test: race-cc tidy-check fmt-check vet staticcheck unit fuzz-short ## race-cc tidy-check fmt-check vet staticcheck unit fuzz-short

# go test -race needs cgo, and cgo a C compiler: installed when we may (root
# with apt-get), else one line says how to get it.
race-cc: ## a C compiler for -race (installs gcc when root)
	@cc=$$(CGO_ENABLED=1 $(GO) env CC); cc=$${cc%% *}; \
	if ! command -v "$$cc" >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "race-cc: no C compiler ($$cc) for go test -race: installing gcc with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null; \
	fi; \
	if ! command -v "$$cc" >/dev/null 2>&1; then \
		echo "race-cc: go test -race needs a C compiler ($$cc): install gcc (sudo apt-get install gcc) or set CC to one" >&2; \
		exit 1; \
	fi

# The module loops below go through every module, then fail naming those that failed.
tidy-check: ## every go.mod/go.sum as `go mod tidy` would write it
	@failed=; for m in $(MODULES); do \
		if ! out=$$(cd $$m && $(GO) mod tidy -diff 2>&1); then echo "$$out"; failed="$$failed $$m"; fi; \
	done; \
	for m in $$failed; do echo "tidy-check: $$m/go.mod or go.sum is not tidy: run (cd $$m && go mod tidy)" >&2; done; \
	[ -z "$$failed" ]

fmt-check: ## gofmt
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet, every module
	@failed=; for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || failed="$$failed $$m"; done; \
	[ -z "$$failed" ] || { echo "vet: failed in$$failed" >&2; exit 1; }

# Every module's packages, seen together through go.work.
PACKAGES := $(MODULES:%=./%/...)

staticcheck: ## staticcheck (pinned: STATICCHECK_VERSION), every module
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PACKAGES)

# Not part of test: it lists the functions that no binary reaches (those only tests
# use included), for a person to judge.
deadcode: ## functions no binary reaches (pinned: DEADCODE_VERSION), every module
	$(GO) run golang.org/x/tools/cmd/deadcode@$(DEADCODE_VERSION) $(PACKAGES)

unit: race-cc ## go test -race -count=1, every module (CGO_ENABLED=1)
	@failed=; for m in $(MODULES); do (cd $$m && CGO_ENABLED=1 $(GO) test -race -count=1 ./...) || failed="$$failed $$m"; done; \
	[ -z "$$failed" ] || { echo "unit: tests failed in$$failed" >&2; exit 1; }

# Every fuzz target of every module ("func FuzzX" in a _test.go file), FUZZTIME each.
fuzz: ## every fuzz target for FUZZTIME each (60s)
	@grep -rl --include='*_test.go' '^func Fuzz' $(MODULES) | sort | while read -r f; do \
		dir=$$(dirname "$$f"); mod=$${dir%%/*}; pkg=.$${dir#"$$mod"}; \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
			echo "fuzz $$dir $$t for $(FUZZTIME)"; \
			(cd "$$mod" && $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) "$$pkg") || exit 1; \
		done; \
	done

# A few seconds of each, on top of the seed corpus that `unit` already runs. Counted
# in executions, not seconds: with a duration, Go 1.26's fuzzing coordinator can fail
# a target with "context deadline exceeded" at the deadline on a busy machine
# (golang/go#75804, fixed in Go 1.27). FUZZTIME=100000x does the same for `fuzz`.
FUZZ_SHORT ?= 20000x
fuzz-short: ## every fuzz target for FUZZ_SHORT (20000x) executions
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SHORT)

# The crash test at length: 50 SIGKILLs of the central (make test runs 5).
CHAOS_KILLS ?= 50
chaos: race-cc ## the crash test with CHAOS_KILLS (50) SIGKILLs of the central
	cd server && CGO_ENABLED=1 CHAOS_KILLS=$(CHAOS_KILLS) $(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 30m .

# Benchmarks (not part of test): micro-benchmarks, the official dataset end to end, a
# 10,000,000-bet scale run and the loopback floor, medians of 5 runs; prints one table and
# rewrites BENCHMARKS.md. BENCH_FLAGS=-quick (or BENCH_QUICK=1) is a smoke run that only
# prints.
BENCH_FLAGS ?=
bench: build ## benchmarks; rewrites BENCHMARKS.md (BENCH_QUICK=1: a smoke run, prints only)
	$(GO) run ./server/cmd/bench -repo . $(BENCH_FLAGS)

# .data/agency-N.csv: the official dataset for 5 agencies, else AGENCIES generated files
# of BETS bets (DATASET= generates 5 too). The agency files already there are replaced.
data: build ## prepare .data/agency-N.csv (AGENCIES, BETS, SEED)
	@if [ -n "$(DATASET)" ] && [ "$(AGENCIES)" = 5 ]; then \
		echo "data: the official dataset $(DATASET) into $(DATA)/"; \
		./$(BIN)/dataset extract -zip "$(DATASET)" -out $(DATA); \
	else \
		echo "data: $(AGENCIES) generated agencies of $(BETS) bets (seed $(SEED)) into $(DATA)/"; \
		./$(BIN)/dataset generate -agencies $(AGENCIES) -bets $(BETS) -seed $(SEED) -out $(DATA); \
	fi

# The whole draw as local processes, no Docker; a fresh round every time (RESUME=1
# continues the one in RUN_DIR).
run: build data certs ## one round: the central and AGENCIES agencies as local processes, mutual TLS (TLS=0: plaintext)
	@AGENCIES=$(AGENCIES) DATA_DIR=$(DATA) RUN_DIR=$(RUN_DIR) RESUME=$(RESUME) CERTS_DIR=$(CERTS) TLS=$(TLS) ./scripts/run-local.sh

certs: ## the CA and key pairs for mutual TLS into .certs/ (AGENCIES agencies; kept when present)
	$(GO) run ./server/cmd/certs -dir $(CERTS) -agencies $(AGENCIES)

# Everything generated; the committed .data/dataset.zip stays.
clean: ## remove bin/, .run/, .certs/ and .data/ but its dataset.zip
	rm -rf $(BIN) $(RUN_DIR) $(CERTS)
	if [ -d $(DATA) ]; then find $(DATA) -mindepth 1 -maxdepth 1 ! -name dataset.zip -exec rm -rf {} +; fi

-include deployments/docker.mk
