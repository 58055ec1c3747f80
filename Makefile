# Switchyard build, code generation, lint and test entry points.
# `make help` lists the targets. Every target that runs Go loops over the
# modules of go.work (the server module, sdk, terraform-provider, loadtest).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(CURDIR)
CACHE := $(ROOT)/.cache
BIN := $(CACHE)/bin
BUF := $(BIN)/buf
PROTOC_GEN_GO := $(BIN)/protoc-gen-go
PROTOC_GEN_CONNECT_GO := $(BIN)/protoc-gen-connect-go
PROTOVALIDATE_VERSION := v1.2.2
PROTOVALIDATE_LINK := $(CACHE)/proto/protovalidate
KAFKA := $(ROOT)/scripts/kafka.sh
TEST_LOG_DIR := $(CACHE)/test

# Modules of the workspace, from go.work (its Use[].DiskPath entries).
MODULES := $(shell go work edit -json | sed -n 's/^[[:space:]]*"DiskPath": "\(.*\)".*/\1/p')

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 10s
DEV_FLAGS ?=

.PHONY: help
help: ## Show this help
	@echo 'Usage: make <target>'
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-16s %s\n", $$1, $$2}'
	@echo
	@echo 'Workspace modules: $(MODULES)'

# ----------------------------------------------------------------- tools

.PHONY: tools
tools: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_CONNECT_GO) ## Build buf and the protoc plugins into .cache/bin (pinned by tools/*/go.mod)

# Each tool is rebuilt only when missing or older than the go.mod pinning it.
$(BUF): tools/buf/go.mod tools/buf/go.sum
	@echo '>> building buf into $(BIN)'
	@mkdir -p $(BIN)
	cd tools/buf && GOWORK=off GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf
	@touch $@

$(PROTOC_GEN_GO): tools/protoc/go.mod tools/protoc/go.sum
	@echo '>> building protoc-gen-go into $(BIN)'
	@mkdir -p $(BIN)
	cd tools/protoc && GOWORK=off GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go
	@touch $@

$(PROTOC_GEN_CONNECT_GO): tools/protoc/go.mod tools/protoc/go.sum
	@echo '>> building protoc-gen-connect-go into $(BIN)'
	@mkdir -p $(BIN)
	cd tools/protoc && GOWORK=off GOBIN=$(BIN) go install connectrpc.com/connect/cmd/protoc-gen-connect-go
	@touch $@

.PHONY: proto-deps
proto-deps: ## Link protovalidate's .proto files from the Go module cache into .cache/proto
	@mkdir -p $(CACHE)/proto
	@dir=$$(GOWORK=off go mod download -json github.com/bufbuild/protovalidate@$(PROTOVALIDATE_VERSION) | \
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$$/\1/p'); \
	if [ ! -f "$$dir/proto/protovalidate/buf/validate/validate.proto" ]; then \
		echo "protovalidate $(PROTOVALIDATE_VERSION) has no validate.proto under '$$dir'" >&2; exit 1; \
	fi; \
	ln -sfn "$$dir/proto/protovalidate" $(PROTOVALIDATE_LINK)

# ------------------------------------------------------------ generation

.PHONY: generate
generate: tools proto-deps ## Generate Go code from proto/ into sdk/api (offline)
	$(BUF) generate

.PHONY: check-generate
check-generate: generate ## Fail if the committed generated code differs from a fresh generate
	@git diff --exit-code --stat -- sdk/api || { \
		echo 'sdk/api differs from `make generate` output: run it and commit the result' >&2; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- sdk/api); \
	if [ -n "$$untracked" ]; then \
		echo "untracked generated files under sdk/api:" >&2; echo "$$untracked" >&2; exit 1; \
	fi
	@echo 'generated code is up to date'

# ------------------------------------------------------------------ lint

.PHONY: lint
lint: tools proto-deps ## buf lint + buf format, gofmt and go vet for every module
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard -- '*.go')); \
	if [ -n "$$unformatted" ]; then \
		echo 'gofmt would change:' >&2; echo "$$unformatted" >&2; exit 1; \
	fi
	@for m in $(MODULES); do \
		echo ">> go vet ($$m)"; \
		(cd $$m && go vet ./...) || exit 1; \
	done

# ----------------------------------------------------------------- tests

# with_kafka runs $(1) with SWITCHYARD_TEST_KAFKA_BROKERS set: to the broker
# it already names, or to one started with scripts/kafka.sh and stopped after.
define with_kafka
	@if [ -n "$${SWITCHYARD_TEST_KAFKA_BROKERS:-}" ]; then \
		echo ">> using Kafka at $$SWITCHYARD_TEST_KAFKA_BROKERS"; \
		$(1); \
	else \
		trap '$(KAFKA) stop || true' EXIT; \
		line=$$($(KAFKA) start | grep '^SWITCHYARD_TEST_KAFKA_BROKERS=' | tail -n 1); \
		if [ -z "$$line" ]; then echo 'scripts/kafka.sh start printed no broker address' >&2; exit 1; fi; \
		export "$$line"; \
		echo ">> started Kafka at $$SWITCHYARD_TEST_KAFKA_BROKERS"; \
		$(1); \
	fi
endef

.PHONY: test
test: ## Run every module's tests with -race, against real Postgres and a real Kafka broker
	$(call with_kafka,$(MAKE) test-modules TEST_FLAGS='-race -count=1')

.PHONY: test-short
test-short: ## Run every module's tests with -race -short, without Kafka
	@env -u SWITCHYARD_TEST_KAFKA_BROKERS $(MAKE) test-modules TEST_FLAGS='-race -count=1 -short'

# test-modules runs `go test $(TEST_FLAGS) -v ./...` in each module, shows the
# output without the === RUN/PAUSE/CONT noise, keeps the full log under
# .cache/test and closes with one "N passed, N failed, N skipped" line.
.PHONY: test-modules
test-modules:
	@mkdir -p $(TEST_LOG_DIR); log=$(TEST_LOG_DIR)/go-test.log; : >"$$log"; status=0; \
	for m in $(MODULES); do \
		echo ">> go test $(TEST_FLAGS) ./... ($$m)"; \
		set +e; \
		(cd $$m && go test $(TEST_FLAGS) -v ./... 2>&1) | tee -a "$$log" | \
			grep --line-buffered -vE '^[[:space:]]*=== (RUN|PAUSE|CONT|NAME)'; \
		rc=("$${PIPESTATUS[@]}"); set -e; \
		[ "$${rc[0]}" -eq 0 ] || status=1; \
	done; \
	passed=$$(grep -cE '^[[:space:]]*--- PASS: ' "$$log" || true); \
	failed=$$(grep -cE '^[[:space:]]*--- FAIL: |^FAIL[[:space:]].*\[(build|setup) failed\]' "$$log" || true); \
	skipped=$$(grep -cE '^[[:space:]]*--- SKIP: ' "$$log" || true); \
	if [ "$$status" -ne 0 ] && [ "$$failed" -eq 0 ]; then failed=1; fi; \
	echo "$$passed passed, $$failed failed, $$skipped skipped" | tee $(TEST_LOG_DIR)/summary; \
	exit $$status

.PHONY: bench
bench: ## Every module's Go benchmarks, then the full load test, on a real broker: writes docs/benchmarks/<date>.md, .json and -go.txt
	$(call with_kafka,$(MAKE) bench-go bench-load)

.PHONY: bench-go
bench-go: ## Run every module's Go benchmarks (no tests); the output goes to docs/benchmarks/<date>-go.txt too
	@out=docs/benchmarks/$(BENCH_DATE)-go.txt; mkdir -p docs/benchmarks; \
	{ echo "# go test -run '^$$' -bench . -benchmem ./... in every module, $$(date -u '+%Y-%m-%d %H:%M UTC')"; \
		echo "# Kafka: $${SWITCHYARD_TEST_KAFKA_BROKERS:-none (benchmarks needing a real broker skip)}"; } >"$$out"; \
	for m in $(MODULES); do \
		echo ">> go test -run '^$$' -bench . -benchmem ./... ($$m)" | tee -a "$$out"; \
		(cd $$m && go test -run '^$$' -bench . -benchmem ./... 2>&1) | tee -a "$$out" || exit 1; \
	done

# ------------------------------------------------------------- load tests
#
# Both run loadtest/cmd/switchyard-load against real processes and a real
# Kafka broker: the one in SWITCHYARD_TEST_KAFKA_BROKERS when set, else the
# repository's (scripts/kafka.sh start; stopped afterwards if it was not
# running). See docs/loadtest.md.

LOADTEST := cd loadtest && go run ./cmd/switchyard-load
LOADTEST_BROKERS = $${SWITCHYARD_TEST_KAFKA_BROKERS:+--kafka-brokers "$$SWITCHYARD_TEST_KAFKA_BROKERS"}
LOADTEST_CI_FLAGS ?= --duration 15s --capacity-events 3000 --progress 5s
BENCH_DATE ?= $(shell date -u +%Y-%m-%d)
BENCH_LOAD_FLAGS ?=

.PHONY: loadtest-ci
loadtest-ci: ## Short load test (under 2 minutes): fails on any lost event or unexpected dead letter
	$(LOADTEST) --scenario ci $(LOADTEST_CI_FLAGS) $(LOADTEST_BROKERS) \
		--out ../.cache/loadtest --name ci --reproduce 'make loadtest-ci'

.PHONY: bench-load
bench-load: ## Full load test, every scenario (about 8 minutes): writes docs/benchmarks/<date>.md and .json
	$(LOADTEST) --scenario all --duration 45s --capacity-events 20000 $(BENCH_LOAD_FLAGS) $(LOADTEST_BROKERS) \
		--out ../docs/benchmarks --name $(BENCH_DATE) --reproduce 'make bench-load'
	@{ echo '# Load-test reports'; echo; \
		echo 'Written by `make bench` (or `make bench-load`, without the Go benchmarks), newest first; [../loadtest.md](../loadtest.md) explains them.'; echo; \
		for f in $$(ls -1 docs/benchmarks/*.md | grep -v '/README.md$$' | sort -r); do \
			n=$$(basename "$$f" .md); go=""; \
			if [ -f "docs/benchmarks/$$n-go.txt" ]; then go=", [Go benchmarks]($$n-go.txt)"; fi; \
			echo "- [$$n]($$n.md) ([JSON]($$n.json)$$go)"; \
		done; } > docs/benchmarks/README.md

.PHONY: fuzz
fuzz: ## Fuzz each Fuzz target for FUZZTIME (default 10s)
	@found=0; \
	for f in $$(git ls-files --cached --others --exclude-standard -- '*_test.go'); do \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			found=1; dir=$$(dirname "$$f"); mod=$$dir; \
			while [ ! -f "$$mod/go.mod" ]; do mod=$$(dirname "$$mod"); done; \
			if [ "$$mod" = . ]; then pkg="./$$dir"; elif [ "$$mod" = "$$dir" ]; then pkg=.; else pkg="./$${dir#$$mod/}"; fi; \
			echo ">> fuzz $$name in ./$$dir for $(FUZZTIME)"; \
			(cd "$$mod" && go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg") || exit 1; \
		done; \
	done; \
	if [ "$$found" -eq 0 ]; then echo 'no Fuzz targets found'; fi

# ------------------------------------------------------------------- run

.PHONY: build
build: ## Build bin/switchyard
	@mkdir -p bin
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/switchyard ./cmd/switchyard

.PHONY: dev
# Built, then exec'd rather than `go run`, so that Ctrl-C reaches the binary
# alone and a clean shutdown exits 0.
dev: build ## Run everything in one process: Postgres, control plane (:8080), data plane (:8081), embedded Kafka (state in ./.switchyard)
	exec bin/switchyard dev $(DEV_FLAGS)

.PHONY: kafka-start
kafka-start: ## Start a local Kafka broker for tests (prints SWITCHYARD_TEST_KAFKA_BROKERS=...)
	@$(KAFKA) start

.PHONY: kafka-stop
kafka-stop: ## Stop the local Kafka broker
	@$(KAFKA) stop

.PHONY: clean
clean: ## Remove build output and test logs (keeps tools, Kafka jars and ./.switchyard)
	rm -rf bin $(TEST_LOG_DIR)
