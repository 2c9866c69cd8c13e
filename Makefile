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
# make revoke, make reissue: the agency whose certificate is revoked.
AGENCY     ?=
# make run: RESUME=1 continues the round in RUN_DIR; HOLD=1 keeps the central
# and its status page up after the round, until Ctrl-C.
RESUME     ?=
HOLD       ?=
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

.PHONY: all help build test race-cc tidy-check fmt-check vet staticcheck deadcode binaries-check unit fuzz \
	fuzz-short chaos data run certs revoke reissue bench clean

all: build ## the same as build

# Every target with a "## what it does" line: HELP_FIRST, then the others in
# the order of the files (a target's first such line counts).
HELP_FIRST := run test build all data certs clean
help: ## this list
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed 's/^\([a-z-]*\):.*## /\1\t/' | \
		awk -F'\t' -v first='$(HELP_FIRST)' 'BEGIN { nf = split(first, f, " "); for (i = 1; i <= nf; i++) early[f[i]] = 1 } \
			seen[$$1]++ { next } $$1 in early { text[$$1] = $$2; next } { n++; rest[n] = $$1; text[$$1] = $$2 } \
			END { for (i = 1; i <= nf; i++) if (f[i] in text) printf "  make %-22s %s\n", f[i], text[f[i]]; \
				for (i = 1; i <= n; i++) printf "  make %-22s %s\n", rest[i], text[rest[i]] }'

# One go build for the three: it links only what changed.
build: ## static binaries in bin/: server, client, dataset
	@mkdir -p $(BIN)
	$(GO) build $(GOBUILD) -o $(BIN)/ ./server ./client ./lottery/cmd/dataset

test: race-cc tidy-check fmt-check vet staticcheck deadcode binaries-check unit fuzz-short ## checks a change: formatting, go vet and staticcheck, tidy go.mod files, no unreachable code, no compiled binary in git; then every test under the race detector (20 make runs among them) and a short fuzz

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

# A compiled program among the files git tracks (go build in a module's
# directory leaves one there): scripts/check-binaries.sh says which and fails.
binaries-check: ## no compiled binary among the files git tracks
	@./scripts/check-binaries.sh

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
	@failed=; for m in $(MODULES); do (cd $$m && $(GO) vet -tags $(TEST_TAGS) ./...) || failed="$$failed $$m"; done; \
	[ -z "$$failed" ] || { echo "vet: failed in$$failed" >&2; exit 1; }

# The build tags of the tests that need Docker, a swarm or a browser: vet and
# staticcheck read those files too, though make test does not run them.
TEST_TAGS := docker,swarm,ui

# Every module's packages, seen together through go.work.
PACKAGES := $(MODULES:%=./%/...)

staticcheck: ## staticcheck (pinned: STATICCHECK_VERSION), every module
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags $(TEST_TAGS) $(PACKAGES)

# Functions no binary reaches, tests aside, fail the build: code only a test
# runs is either dead or a test's own. Test-support packages (named for what
# they test with, like net/http/httptest: logtest) exist for tests only and
# are left out.
deadcode: ## fail on functions no binary reaches (pinned: DEADCODE_VERSION), every module
	@out=$$($(GO) run golang.org/x/tools/cmd/deadcode@$(DEADCODE_VERSION) $(PACKAGES) | grep -v '^[^:]*test/[^/:]*:' || true); \
	if [ -n "$$out" ]; then echo "$$out"; echo "deadcode: the functions above are reached by no binary: remove them, or move a test's helper into its test" >&2; exit 1; fi

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

# The crash test at length: 50 SIGKILLs of the central (make test runs 5), then
# every crash point of the ledger: a crash, and a failure, at each write and
# fsync of a round of the official dataset (make test visits a sample).
CHAOS_KILLS ?= 50
chaos: race-cc ## the crash test with CHAOS_KILLS (50) SIGKILLs of the central, and every crash point of the ledger
	cd server && CGO_ENABLED=1 CHAOS_KILLS=$(CHAOS_KILLS) $(GO) test -race -count=1 -run '^TestChaos$$' -v -timeout 30m .
	cd server && CGO_ENABLED=1 LEDGER_CRASH_POINTS=all $(GO) test -race -count=1 -run '^TestEvery(Crash|Failure)PointOfARound$$' -v -timeout 30m ./internal/ledger

# The status page in a real browser: headless Chromium driven through chromedp
# during a draw of the official dataset (server/internal/central/ui_test.go,
# build tag ui); it saves its screenshots in .run/ui/. Debian's chromium is
# installed when missing and we may (root with apt-get), as race-cc does gcc.
.PHONY: test-ui
test-ui: ## the status page in headless Chromium; screenshots in .run/ui/ (installs chromium when root)
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && \
		! command -v google-chrome >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "test-ui: no Chromium: installing Debian's chromium with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "test-ui: needs Chromium: install it (sudo apt-get install chromium)" >&2; \
			exit 1; \
		fi; \
	fi
	cd server && $(GO) test -tags ui -count=1 -run '^TestStatusPageInBrowser$$' -v ./internal/central/

# Benchmarks (not part of test), all `go test` benchmarks beside the code they measure:
# the micro-benchmarks of protocol/, lottery/ and the central, and what the machine charges
# for a page fault, a system call and a round trip to another process (server's
# BenchmarkMachine), BENCH_COUNT runs each, then
# BENCH_COUNT rounds of server/bench_test.go (the official dataset and BENCH_SCALE_AGENCIES
# agencies of BENCH_SCALE_BETS bets, each its floor, plaintext and mutual TLS), one round
# after another so that a slow spell of the machine hits every kind alike. benchstat
# (golang.org/x/perf, pinned) summarises BENCH_DIR/results.txt; server/cmd/bench writes its
# medians, ratios and targets into BENCHMARKS.md between its markers. BENCH_QUICK=1: small
# sizes, one round, printed only: BENCHMARKS.md is left alone. BASELINE=REV (a git revision):
# that revision's server and client too, built as the benchmarks build the tree's (a plain
# go build, CGO off; scripts/bench-baseline.sh,
# into BENCH_DIR/baseline/bin) and run in the same rounds, each just before the tree's of
# the same kind, so that a change shows its speed against REV on whatever machine runs it;
# the report then compares the two ("Against the baseline"). After the rounds, how cost grows:
# BENCH_GROWTH_COUNT runs (1; a run is long: 30M bets, 500 agency processes) of
# server/bench_growth_test.go, mutual TLS, 1M, 10M and 30M bets from 100 agencies and 10M from
# 10, 100 and 500; server/cmd/bench tabulates it and draws it with gonum's plot into BENCH_PLOT,
# an SVG that BENCHMARKS.md links (BENCH_QUICK=1: a hundredth of the bets, drawn under BENCH_DIR).
BENCHSTAT_VERSION    ?= v0.0.0-20260908200009-22c9c6c9d4da
BENCH_QUICK          ?=
BASELINE             ?=
bench_quick          := $(filter 1,$(BENCH_QUICK))
BENCH_COUNT          ?= $(if $(bench_quick),1,6)
BENCH_MICRO_TIME     ?= $(if $(bench_quick),100ms,1s)
BENCH_SCALE_AGENCIES ?= 100
BENCH_SCALE_BETS     ?= $(if $(bench_quick),10000,100000)
BENCH_DIR            ?= $(DATA)/bench
BENCH_REPORT         ?= $(if $(bench_quick),-,BENCHMARKS.md)
BENCH_GROWTH_COUNT   ?= 1
BENCH_GROWTH_DIVISOR ?= $(if $(bench_quick),100,1)
BENCH_PLOT           ?= $(if $(bench_quick),$(BENCH_DIR)/bench-growth.svg,docs/bench-growth.svg)
BENCHSTAT            := $(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
bench: ## benchmarks, medians of 6 runs, and how cost grows (docs/bench-growth.svg), into BENCHMARKS.md (BENCH_QUICK=1: small, once, prints only; BASELINE=REV: against REV too)
	@mkdir -p $(BENCH_DIR); \
	BENCH_BASELINE_BIN=; BENCH_BASELINE=; against=; \
	if [ -n "$(BASELINE)" ]; then \
		BENCH_BASELINE=$$(./scripts/bench-baseline.sh '$(BASELINE)' $(BENCH_DIR)/baseline/bin $(GO) build); \
		BENCH_BASELINE_BIN=$(abspath $(BENCH_DIR))/baseline/bin; against=" (the tree and the baseline $$BENCH_BASELINE)"; \
	fi; \
	export BENCH_BASELINE_BIN BENCH_BASELINE; \
	results=$(BENCH_DIR)/results.txt; : > $$results; \
	micro="-run ^$$ -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_MICRO_TIME)"; \
	(cd protocol && $(GO) test $$micro .) | tee -a $$results; \
	(cd lottery && $(GO) test $$micro .) | tee -a $$results; \
	(cd server && $(GO) test $$micro ./internal/central) | tee -a $$results; \
	(cd server && $(GO) test -run '^$$' -bench '^BenchmarkMachine$$' -count $(BENCH_COUNT) \
		-benchtime $(BENCH_MICRO_TIME) .) | tee -a $$results; \
	for i in $$(seq $(BENCH_COUNT)); do \
		echo "bench: end to end, round $$i of $(BENCH_COUNT)$$against"; \
		(cd server && BENCH_DIR=$(abspath $(BENCH_DIR)) BENCH_SCALE_AGENCIES=$(BENCH_SCALE_AGENCIES) \
			BENCH_SCALE_BETS=$(BENCH_SCALE_BETS) $(GO) test -run '^$$' -bench '^Benchmark(Official|ScaleSmall|Scale)$$' \
			-benchtime 1x -count 1 -timeout 60m .) | tee -a $$results; \
	done; \
	echo "bench: how cost grows, $(BENCH_GROWTH_COUNT) run(s) of each size"; \
	(cd server && BENCH_DIR=$(abspath $(BENCH_DIR)) BENCH_GROWTH_DIVISOR=$(BENCH_GROWTH_DIVISOR) $(GO) test -run '^$$' \
		-bench '^BenchmarkGrowth$$' -benchtime 1x -count $(BENCH_GROWTH_COUNT) -timeout $$((60 * $(BENCH_GROWTH_COUNT)))m .) | \
		tee -a $$results; \
	$(BENCHSTAT) $$results; \
	$(BENCHSTAT) -format csv $$results 2>/dev/null > $(BENCH_DIR)/stats.csv; \
	$(GO) run ./server/cmd/bench -stats $(BENCH_DIR)/stats.csv -runs $(BENCH_COUNT) -baseline "$$BENCH_BASELINE" \
		-growth-runs $(BENCH_GROWTH_COUNT) -plot $(BENCH_PLOT) -out $(BENCH_REPORT)
	@$(if $(bench_quick),echo "bench: a quick run: BENCHMARKS.md is left as it is; the plot is $(BENCH_PLOT)" >&2,echo "bench: wrote $(BENCH_REPORT) and $(BENCH_PLOT)")

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
run: build data certs ## one round: the central and AGENCIES (5) agencies as local processes, mutual TLS (TLS=0: plaintext; HOLD=1 keeps the status page up after; RESUME=1 continues a stopped round)
	@AGENCIES=$(AGENCIES) DATA_DIR=$(DATA) RUN_DIR=$(RUN_DIR) RESUME=$(RESUME) HOLD=$(HOLD) CERTS_DIR=$(CERTS) TLS=$(TLS) ./scripts/run-local.sh

# One line when nothing changes; otherwise one per certificate made, then that line.
certs: ## the CA and key pairs for mutual TLS into .certs/ (AGENCIES agencies; kept when present)
	@$(GO) run ./server/cmd/certs -dir $(CERTS) -agencies $(AGENCIES)

# A stolen key: agency AGENCY's current certificate onto CERTS/revoked.pem (a
# CRL the CA signs); reissue also gives the agency a new pair in place of its
# files, to hand over. A running central enforces the list once told:
# bin/server reload, or SIGHUP (docs/security.md).
revoke: ## revoke agency AGENCY's certificate (onto .certs/revoked.pem); then bin/server reload
	@$(if $(AGENCY),,$(error AGENCY=N: which agency's certificate? e.g. make revoke AGENCY=2))$(GO) run ./server/cmd/certs -dir $(CERTS) -revoke $(AGENCY)

reissue: ## revoke agency AGENCY's certificate and issue it a new pair; then bin/server reload
	@$(if $(AGENCY),,$(error AGENCY=N: which agency's certificate? e.g. make reissue AGENCY=2))$(GO) run ./server/cmd/certs -dir $(CERTS) -reissue $(AGENCY)

# Everything generated; the committed .data/dataset.zip stays.
clean: ## remove bin/, .run/, .certs/ and .data/ but its dataset.zip
	rm -rf $(BIN) $(RUN_DIR) $(CERTS)
	if [ -d $(DATA) ]; then find $(DATA) -mindepth 1 -maxdepth 1 ! -name dataset.zip -exec rm -rf {} +; fi

# Targets of deployments/*.mk that have no line of help there.
docker-compose-check: ## docker compose (or docker-compose) is installed and COMPOSE_FILE exists
swarm-check: ## this Docker engine is a swarm manager

# make's knobs: one with a value make does not know stops make before anything
# runs, saying what it accepts (make run TLS=maybe would otherwise run with TLS).
# Each check below is empty when the value is good, else "NAME=value: want ...;;".
digits_removed = $(subst 0,,$(subst 1,,$(subst 2,,$(subst 3,,$(subst 4,,$(subst 5,,$(subst 6,,$(subst 7,,$(subst 8,,$(subst 9,,$(1)))))))))))
one_word = $(filter 1,$(words $(1)))
comma := ,
# knob_in NAME,VALUES,WANT: NAME's value is one of VALUES (_ stands for empty).
knob_in = $(if $(and $(filter 0 1,$(words $($(1)))),$(filter $(2),$(or $($(1)),_))),,$(1)=$($(1)): want $(3);;)
# knob_whole NAME[,1]: a whole number (with 1: 1 or more).
knob_whole = $(if $(and $(call one_word,$($(1))),$(if $(call digits_removed,$($(1))),,ok),$(if $(2),$(subst 0,,$($(1))),ok)),, \
	$(1)=$($(1)): want a whole number$(if $(2),$(comma) 1 or more);;)
# knob_time NAME: go test's -fuzztime or -benchtime, a duration (60s, 1m30s) or a count (20000x).
time_units = $(subst .,,$(call digits_removed,$(1)))
time_ok = $(and $(call one_word,$(1)),$(call time_units,$(1)),$(filter-out $(1),$(call time_units,$(1))), \
	$(or $(filter x,$(call time_units,$(1))),$(if $(subst h,,$(subst m,,$(subst s,,$(subst n,,$(subst u,,$(subst µ,,$(call time_units,$(1)))))))),,ok)))
knob_time = $(if $(call time_ok,$($(1))),,$(1)=$($(1)): want a duration (60s, 2m) or a count of runs (20000x);;)
knob_errors := $(strip \
	$(call knob_in,TLS,0 1,0 or 1) \
	$(call knob_in,RESUME,_ 1,1 or nothing) \
	$(call knob_in,HOLD,_ 1,1 or nothing) \
	$(call knob_in,BENCH_QUICK,_ 1,1 or nothing) \
	$(call knob_whole,BENCH_GROWTH_COUNT,1) \
	$(call knob_whole,BENCH_GROWTH_DIVISOR,1) \
	$(if $(BASELINE),$(if $(call one_word,$(BASELINE)),,BASELINE=$(BASELINE): want one git revision;;)) \
	$(call knob_whole,AGENCIES,1) \
	$(if $(AGENCY),$(call knob_whole,AGENCY,1)) \
	$(call knob_whole,BETS) \
	$(call knob_whole,SEED) \
	$(call knob_whole,CHAOS_KILLS) \
	$(call knob_whole,BENCH_COUNT,1) \
	$(call knob_whole,BENCH_SCALE_AGENCIES,1) \
	$(call knob_whole,BENCH_SCALE_BETS,1) \
	$(call knob_time,FUZZTIME) \
	$(call knob_time,FUZZ_SHORT) \
	$(call knob_time,BENCH_MICRO_TIME))
ifneq ($(knob_errors),)
$(error $(patsubst %;;,%,$(subst ;; ,; ,$(knob_errors))))
endif

-include deployments/docker.mk
-include deployments/swarm.mk
