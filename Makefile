# paperroute — the two commands a newcomer needs are `make run` and `make test`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# go-mail needs Go >= 1.26.10; the go.mod files say so and the go command
# fetches that toolchain through the module proxy.
export GOTOOLCHAIN := auto

BIN := $(CURDIR)/bin
MODULES := api platform services/subscriber services/digest services/sender cmd/paperroute deploy bench

# Pinned tool versions: installed with `go install` into ./bin, never downloaded
# as binaries.
BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
STATICCHECK_VERSION := v0.8.2
# kustomize renders deploy/k8s in the deploy module's tests (which check the
# version: keep deploy/manifests_test.go's kustomizeVersion in step);
# v5.8.x cannot be built from the module proxy (a kube-openapi version it
# needs is not served). promtool checks and unit-tests deploy/prometheus.
KUSTOMIZE_VERSION := v5.7.1
PROMTOOL_VERSION := v0.316.0

TOOLS := $(BIN)/.buf-$(BUF_VERSION) \
	$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
	$(BIN)/.grpcurl-$(GRPCURL_VERSION) \
	$(BIN)/.staticcheck-$(STATICCHECK_VERSION) \
	$(BIN)/.kustomize-$(KUSTOMIZE_VERSION) \
	$(BIN)/.promtool-$(PROMTOOL_VERSION)

# The deploy module's tests render the Kubernetes overlays with this binary.
export KUSTOMIZE := $(BIN)/kustomize

.PHONY: help
help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: run
run: $(BIN)/.grpcurl-$(GRPCURL_VERSION) ## Run everything locally (paperroute dev) and deliver a demo digest to ./var/mail.
	go build -o $(BIN)/paperroute ./cmd/paperroute
	$(BIN)/paperroute dev

.PHONY: test-deps
test-deps: ## Install redis-server and chromium through apt if missing (or say the command to run).
	@scripts/test-deps.sh

.PHONY: test
test: test-deps $(BIN)/.kustomize-$(KUSTOMIZE_VERSION) ## Test every module with the race detector (real redis-server and chromium).
	@for m in $(MODULES); do \
		echo "=== module $$m"; \
		(cd $$m && go test -race -count=1 ./...) || { echo "FAIL module $$m"; exit 1; }; \
		echo "PASS module $$m"; \
	done
	@echo "all $(words $(MODULES)) modules passed"

.PHONY: bench
bench: bench-go bench-sender ## Run every benchmark (results: docs/benchmarks.md).

.PHONY: bench-go
bench-go: ## Run the Go benchmarks of every module.
	@for m in $(MODULES); do \
		echo "=== module $$m"; \
		(cd $$m && go test -run '^$$' -bench . -benchmem ./...); \
	done

# BENCH_MESSAGES sets the bulk send's size (default 100000); BENCH_FLAGS
# passes more flags (e.g. -rounds 3, -bench throughput, -cpuprofile f).
.PHONY: bench-sender
bench-sender: ## Sender vs raw go-mail on smtp-sink, tx latency, Redis memory, a 20 ms relay (bench/).
	cd bench && go run ./cmd/senderbench $(BENCH_FLAGS)

.PHONY: tools
tools: $(TOOLS) ## Install the pinned tools into ./bin.

$(BIN)/.buf-$(BUF_VERSION):
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(BIN)/.grpcurl-$(GRPCURL_VERSION):
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $@
$(BIN)/.staticcheck-$(STATICCHECK_VERSION):
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@
$(BIN)/.kustomize-$(KUSTOMIZE_VERSION):
	GOBIN=$(BIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@touch $@
$(BIN)/.promtool-$(PROMTOOL_VERSION):
	GOBIN=$(BIN) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	@touch $@

.PHONY: generate
generate: $(TOOLS) ## Lint the protos and regenerate api/gen.
	cd api && $(BIN)/buf lint && $(BIN)/buf generate

.PHONY: check-generate
check-generate: generate ## Fail if regenerating api/gen changes anything.
	@if [ -n "$$(git status --porcelain -- api/gen)" ]; then \
		echo "api/gen is stale: run 'make generate' and commit the result"; \
		git status --porcelain -- api/gen; exit 1; \
	fi

.PHONY: breaking
breaking: $(TOOLS) ## Check the protos for breaking changes against origin/main (or main).
	@ref=$$(git rev-parse --verify -q origin/main || git rev-parse --verify -q main || true); \
	if [ -z "$$ref" ]; then echo "no main branch to compare with"; exit 0; fi; \
	$(BIN)/buf breaking api --against ".git#ref=$$ref,subdir=api"

.PHONY: lint
lint: $(TOOLS) ## gofmt, go vet and staticcheck on every module.
	@bad=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^api/gen/')); \
	if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./... && $(BIN)/staticcheck ./...) || exit 1; done

.PHONY: tidy
tidy: ## go mod tidy every module.
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

.PHONY: check-tidy
check-tidy: ## Fail if go mod tidy would change a module; build each module alone.
	@for m in $(MODULES); do \
		(cd $$m && GOWORK=off go mod tidy -diff && GOWORK=off go build ./...) || { echo "module $$m is not tidy or does not build alone"; exit 1; }; \
	done

.PHONY: check-deploy
check-deploy: $(BIN)/.promtool-$(PROMTOOL_VERSION) ## Static image binaries built as deploy/Dockerfile does; promtool on the alert rules.
	PROMTOOL=$(BIN)/promtool deploy/check

.PHONY: check
check: check-generate breaking check-tidy lint check-deploy ## Everything CI checks before the tests.
