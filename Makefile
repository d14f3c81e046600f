# The two commands a new user needs: `make up` (the two-site demo) and `make test`
# (every test). Both run `make deps` first, which installs whatever is missing (`make
# up` without the container images, which its process-backend demo does not use).
SHELL     := bash
.SHELLFLAGS := -o pipefail -c
GO        ?= go
BIN       := $(CURDIR)/.cache/bin
REPORTS   := $(CURDIR)/reports
GINKGO    := $(GO) tool ginkgo
# The acceptance suite's Ginkgo flags (the Ginkgo docs' CI recommendations). PROCS
# parallel processes, more than the 2 cores: the longest specs wait on clocks
# (certificates that live minutes; SpecPriority starts them first) and use no CPU
# meanwhile. On 2 cores a run took 407 s with 2 processes, 300 s with 4, 248 s with 6.
PROCS ?= 5
GINKGO_FLAGS ?= -r --procs=$(PROCS) --randomize-all --fail-on-pending --fail-on-empty --keep-going \
	--timeout=40m --poll-progress-after=120s --poll-progress-interval=60s \
	--junit-report=acceptance.xml --output-dir=$(REPORTS)

export MOSAIC_BIN_DIR := $(BIN)

.PHONY: all deps up test lint unit fuzz fuzz-quick acceptance acceptance-docker acceptance-docker-auto soak build docs clean images images-smoke compose compose-check
all: test

deps:
	@bash tools/deps.sh

## up: boot the two-site world in the foreground (Ctrl-C stops and removes it). The
## harness is built and exec'd, not `go run`: no wrapper process stands between the
## terminal's signals and it, and its exit 0 on Ctrl-C is make's.
up:
	@MOSAIC_NO_IMAGES=1 bash tools/deps.sh # the demo runs on the process backend: no images
	@$(GO) build -o $(BIN)/harness ./harness
	exec $(BIN)/harness up

## test: lint, unit tests with -race, every fuzz target briefly, then the acceptance
## suite against real servers on the process backend and, where a Docker engine
## answers, again on the docker backend (SPEC M7-9)
test: deps lint unit fuzz-quick acceptance acceptance-docker-auto

lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/golangci-lint run ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /acceptance)

## fuzz: every fuzz target in turn for FUZZTIME (one package and one target per run is
## all `go test -fuzz` takes); a crasher lands in the package's testdata/fuzz/, where it
## stays as a corpus entry beside its fix. fuzz-quick is the bounded run of `make test`:
## it counts executions rather than seconds, because Go 1.26's coordinator can report a
## bare "context deadline exceeded" at the end of a timed run with no crasher
## (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZ_TARGETS := scope:FuzzParse fedserver:FuzzFederationHandler fedserver:FuzzCheckCSR \
	localapi:FuzzLocalAPI redact:FuzzRedactor identity:FuzzFromCertificate config:FuzzLoad \
	store:FuzzCursor store:FuzzListFilters fedclient:FuzzPeerAnswer
FUZZTIME ?= 1m
FUZZMINTIME ?= 10s
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=./gateway/internal/$${t%%:*}; name=$${t##*:}; \
		out=$$($(GO) test -short -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg 2>&1) || { \
			echo "$$out"; echo "fuzz: $$name failed: its input is in $$pkg/testdata/fuzz/$$name/; fix it and commit both"; exit 1; }; \
		echo "fuzz: $$name ($$pkg): $$(echo "$$out" | sed -n -E 's/.*execs: ([0-9]+).*/\1/p' | tail -1) execs (budget $(FUZZTIME))"; \
	done

fuzz-quick:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3000x FUZZMINTIME=200x

acceptance: deps
	@mkdir -p $(REPORTS)
	@rc=0; $(GINKGO) $(GINKGO_FLAGS) ./acceptance 2>&1 | tee $(REPORTS)/acceptance.log || rc=$$?; \
	sed 's/\x1b\[[0-9;]*m//g' $(REPORTS)/acceptance.log | sed -n -E \
		's/.* ([0-9]+) Passed \| ([0-9]+) Failed \| [0-9]+ Pending \| ([0-9]+) Skipped.*/acceptance: \1 passed, \2 failed, \3 skipped/p'; \
	exit $$rc

## soak: the acceptance soak (M7-7) alone for SOAK (default 10m) instead of the 60 s it
## runs inside `make acceptance`: two users' steady requests while work's gateway is
## restarted and the home→work link cut and restored once a minute. Its figures
## (requests by status, p99, goroutines and fds before → after) are the spec's report
## entry, printed at its end and kept in reports/soak.xml. SOAK is a Go duration of at
## least 10s; the 2 h timeout covers a soak of an hour and the world's boot.
SOAK ?= 10m
soak: deps
	@mkdir -p $(REPORTS)
	MOSAIC_SOAK=$(SOAK) $(GINKGO) -v --focus 'M7-7' --timeout=2h \
		--junit-report=soak.xml --output-dir=$(REPORTS) ./acceptance 2>&1 | tee $(REPORTS)/soak.log

## acceptance-docker: the whole suite on the docker backend (images from `make
## images`); DOCKER_FOCUS, a Ginkgo --focus, narrows it (`DOCKER_FOCUS='M3-'`)
DOCKER_FOCUS ?= .
acceptance-docker: deps images
	@mkdir -p $(REPORTS)
	@rc=0; MOSAIC_BACKEND=docker $(GINKGO) $(GINKGO_FLAGS) --junit-report=acceptance-docker.xml --focus '$(DOCKER_FOCUS)' \
		./acceptance 2>&1 | tee $(REPORTS)/acceptance-docker.log || rc=$$?; \
	sed 's/\x1b\[[0-9;]*m//g' $(REPORTS)/acceptance-docker.log | sed -n -E \
		's/.* ([0-9]+) Passed \| ([0-9]+) Failed \| [0-9]+ Pending \| ([0-9]+) Skipped.*/acceptance (docker backend): \1 passed, \2 failed, \3 skipped/p'; \
	exit $$rc

## acceptance-docker-auto: acceptance-docker where a Docker engine answers, else says so
acceptance-docker-auto:
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory acceptance-docker; \
	else echo "acceptance (docker backend): no Docker engine answers here: not run"; fi

## docs: regenerate docs/ADMIN-CLI.md from the command tree (a unit test fails when it is stale)
docs:
	$(GO) test ./gateway/internal/cli -run TestReferenceIsCurrent -count=1 -update

build:
	$(GO) build -o $(BIN)/gateway ./gateway

## images: the container images for an engine without a registry (deploy/images/build.sh):
## built once each, tagged by a hash of their inputs, tags in .cache/images/images.env
images:
	@bash deploy/images/build.sh

## images-smoke: run the local images as the official ones are used and check their contract
images-smoke:
	@bash deploy/images/smoke.sh

## compose: Compose v2 from tools/compose into .cache/bin/docker-compose, built only when
## missing or its pin changed (run it directly, or as the docker CLI plugin of that name)
COMPOSE := $(BIN)/docker-compose
compose:
	@want=$$(cat tools/compose/go.mod tools/compose/go.sum | sha256sum | cut -c1-16); \
	if [ ! -x $(COMPOSE) ] || [ "$$(cat $(BIN)/.compose.stamp 2>/dev/null)" != "$$want" ]; then \
		echo "compose: building Compose v2 from tools/compose (first time: several minutes)"; \
		cd tools/compose && v=$$($(GO) list -m -f '{{.Version}}' github.com/docker/compose/v2) && \
		CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$$v" \
			-o $(COMPOSE) github.com/docker/compose/v2/cmd && echo "$$want" >$(BIN)/.compose.stamp; \
	fi

## compose-check: the compose world end to end with the local images (deploy/compose/check.sh):
## up --wait timed, home lists work's rows via source=federated:work, a second up keeps
## every volume's state, down -v leaves nothing
compose-check: images compose
	@bash deploy/compose/check.sh

clean:
	rm -rf $(REPORTS) $(BIN)/gateway
