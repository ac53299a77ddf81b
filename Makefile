# onair — `make run` sets up and starts everything; `make test` sets up and runs the suite.
GO      ?= go
BIN     := bin/onair
PKGS    := ./...

.PHONY: all setup build run test race check bench clean

all: build

## setup: install redis-server / clickhouse-server / clickhouse-client when missing, fetch Go modules
setup:
	@bash scripts/setup.sh

## build: compile bin/onair
build:
	$(GO) build -o $(BIN) ./cmd/onair

## run: set up, build, then start the embedded stack with every role (Ctrl-C stops it)
run: setup build
	$(BIN) dev

## test: set up, then the whole suite against real Redis, ClickHouse and kfake
test: setup
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 6m $(PKGS)

## race: the concurrent packages under the race detector
race: setup
	$(GO) test -race -count=1 -timeout 6m ./aggregate ./api ./history ./ingest ./internal/redisbatch ./push

## check: formatting and static checks (staticcheck pinned; fetched through the module proxy)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## bench: short load tests of every scenario plus the hot-path Go benchmarks; writes BENCHMARKS.md
bench: setup build
	bash scripts/bench.sh

clean:
	rm -rf bin var
