# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULES    := protocol lottery server client
BIN        := bin
GO         ?= go
DATA       := .data
DATASET    ?= ../shared/datasets/dataset.zip
AGENCIES   ?= 5
BETS       ?= 20000
SEED       ?= 1
FUZZTIME   ?= 60s
# Static binaries: the images are FROM scratch. No symbol table or DWARF
# (-s -w): a third smaller, and a panic still names its functions.
export CGO_ENABLED := 0
GOBUILD    := -trimpath -ldflags='-s -w'

.PHONY: all build test fmt-check vet unit fuzz fuzz-short chaos data run bench clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(GOBUILD) -o $(BIN)/server ./server
	$(GO) build $(GOBUILD) -o $(BIN)/client ./client
	$(GO) build $(GOBUILD) -o $(BIN)/dataset ./lottery/cmd/dataset

test: fmt-check vet unit fuzz-short

fmt-check:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

# -race needs cgo.
unit:
	@for m in $(MODULES); do (cd $$m && CGO_ENABLED=1 $(GO) test -race -count=1 ./...) || exit 1; done

FUZZ_TARGETS = $(shell grep -ho '^func Fuzz[A-Za-z0-9_]*' protocol/*_test.go | cut -d' ' -f2)

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=60s).
fuzz:
	@for t in $(FUZZ_TARGETS); do echo "fuzz $$t for $(FUZZTIME)"; (cd protocol && $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) .) || exit 1; done

# A few seconds of each, on top of the seed corpus that `unit` already runs.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2s

# The crash test at length: 50 SIGKILLs of the central (make test runs 5).
CHAOS_KILLS ?= 50
chaos:
	cd server && CGO_ENABLED=1 CHAOS_KILLS=$(CHAOS_KILLS) $(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 30m .

# Benchmarks (not part of test): micro-benchmarks, the official dataset end to end, a
# 10,000,000-bet scale run and the loopback floor, medians of 5 runs; prints one table and
# writes BENCHMARKS.md. BENCH_FLAGS=-quick (or BENCH_QUICK=1) for a smoke run.
BENCH_FLAGS ?=
bench: build
	$(GO) run ./server/cmd/bench -repo . $(BENCH_FLAGS)

# .data/: the official dataset when it is beside the repo, else a generated one.
data:
	@if [ -f "$(DATASET)" ] && [ "$(AGENCIES)" = 5 ]; then \
		$(GO) run ./lottery/cmd/dataset extract -zip "$(DATASET)" -out $(DATA); \
	else \
		$(GO) run ./lottery/cmd/dataset generate -agencies $(AGENCIES) -bets $(BETS) -seed $(SEED) -out $(DATA); \
	fi

# The whole draw as local processes, no Docker.
run: build data
	AGENCIES=$(AGENCIES) ./scripts/run-local.sh

clean:
	rm -rf $(BIN) $(DATA)

-include deployments/docker.mk
