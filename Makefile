# The two commands a new user needs: `make up` (the two-site demo) and `make test`
# (every test). Both run `make deps` first, which installs whatever is missing.
SHELL     := bash
.SHELLFLAGS := -o pipefail -c
GO        ?= go
BIN       := $(CURDIR)/.cache/bin
REPORTS   := $(CURDIR)/reports
GINKGO    := $(GO) tool ginkgo
# The acceptance suite's Ginkgo flags (the Ginkgo docs' CI recommendations).
GINKGO_FLAGS ?= -r -p --randomize-all --fail-on-pending --fail-on-empty --keep-going \
	--timeout=40m --poll-progress-after=120s --poll-progress-interval=60s \
	--junit-report=acceptance.xml --output-dir=$(REPORTS)

export MOSAIC_BIN_DIR := $(BIN)

.PHONY: all deps up test lint unit acceptance build clean
all: test

deps:
	@bash tools/deps.sh

## up: boot the two-site world in the foreground (Ctrl-C stops and removes it)
up: deps
	$(GO) run ./harness up

## test: lint, unit tests with -race, then the acceptance suite against real servers
test: deps lint unit acceptance

lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/golangci-lint run ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /acceptance)

acceptance: deps
	@mkdir -p $(REPORTS)
	@rc=0; $(GINKGO) $(GINKGO_FLAGS) ./acceptance 2>&1 | tee $(REPORTS)/acceptance.log || rc=$$?; \
	sed 's/\x1b\[[0-9;]*m//g' $(REPORTS)/acceptance.log | sed -n -E \
		's/.* ([0-9]+) Passed \| ([0-9]+) Failed \| [0-9]+ Pending \| ([0-9]+) Skipped.*/acceptance: \1 passed, \2 failed, \3 skipped/p'; \
	exit $$rc

build:
	$(GO) build -o $(BIN)/gateway ./gateway

clean:
	rm -rf $(REPORTS) $(BIN)/gateway
