# onair — `make run` sets up and starts everything; `make test` sets up and runs the suite.
GO      ?= go
BIN     := bin/onair
PKGS    := ./...

.PHONY: all setup build run test race fuzz check bench soak clean

all: build

## setup: install redis-server / clickhouse-server / clickhouse-client when missing, fetch Go modules
setup:
	@bash scripts/setup.sh

# VERSION is the release `onair version` and /healthz report: the tag of the
# checked-out commit when there is one, else internal/version.Default.
VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)
LDFLAGS := $(if $(VERSION),-X github.com/onair/onair/internal/version.release=$(VERSION)) \
	$(if $(COMMIT),-X github.com/onair/onair/internal/version.commit=$(COMMIT))

## build: compile bin/onair
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/onair

## run: set up, build, then start the embedded stack with every role (Ctrl-C stops it)
run: setup build
	$(BIN) dev

# HERMETIC runs a command without the caller's ONAIR_* variables (onair's flag
# defaults), keeping ONAIR_TEST_* (servers the suite may reuse). The test
# binaries clear them too (testenv.ClearOnairEnv, testenv.ChildEnv), so plain
# `go test ./...` is hermetic as well; this covers packages added later.
HERMETIC := env $(foreach v,$(filter ONAIR_%,$(.VARIABLES)),$(if $(filter ONAIR_TEST_%,$(v)),,-u $(v)))

## test: set up, then the whole suite against real Redis, ClickHouse and kfake
test: setup
	$(GO) vet $(PKGS)
	$(HERMETIC) $(GO) test -count=1 -timeout 6m $(PKGS)

## race: the whole suite under the race detector (CI runs it after `make test`;
## 482 s on 2 shared, busy cores)
race: setup
	$(HERMETIC) $(GO) test -race -count=1 -timeout 30m $(PKGS)

## fuzz: every fuzz target (func Fuzz* in any _test.go) for FUZZTIME each; the seed
## corpora are checked in under <package>/testdata/fuzz/<target>/ and also run in `make test`
FUZZTIME ?= 30s
fuzz: setup
	@set -e; for f in $$(git ls-files '*_test.go' | xargs grep -l '^func Fuzz'); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== ./$$(dirname $$f) $$name for $(FUZZTIME)"; \
	    $(HERMETIC) $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
	  done; \
	done

## check: formatting and static checks (staticcheck pinned; fetched through the module proxy)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## bench: short load tests of every scenario plus the hot-path Go benchmarks; writes BENCHMARKS.md
bench: setup build
	bash scripts/bench.sh

## soak: the whole stack under the mixed load for SOAK_DURATION (30m), memory sampled every
## minute; fails if memory keeps rising after the warm-up or on any 5xx (BENCHMARKS.md)
soak: setup
	bash scripts/soak.sh

## clean: remove bin/ and var/ (every event, row and offset of `onair dev`, and
## var/auth.secret: every token minted before stops working)
clean:
	rm -rf bin var /var/tmp/onair-postgres-*
