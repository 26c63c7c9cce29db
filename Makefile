# ringmq: the two commands a new user runs are `make run` and `make test`.
GO       ?= go
GOFLAGS  ?= -buildvcs=false
export GOFLAGS
BIN      := bin
DATA     ?= ./data
# Fuzzing in `make test` is bounded by iterations, not seconds: a time-bounded run can end
# with a spurious "context deadline exceeded" while a worker is mid-input (seen in CI).
FUZZTIME ?= 2000x
# The peer broker of the side-by-side benchmark, installed with `go install` (pinned).
NATS_SERVER_VERSION := v2.12.15
NATS_SERVER := $(CURDIR)/$(BIN)/nats-server

# Packages whose tests run under the race detector: everything with goroutines that
# share state. The remaining packages run without it to keep `make test` short on
# two cores.
RACE_PKGS := ./flush/... ./engine/... ./netio/... ./perf/... ./iouring/... ./bpf/...

.PHONY: run build test test-deps vet unit race allocs fuzz fuzz-long compat bench bench-compare generate generate-deps clean

## run: build and start `ringmq dev` (name server + broker in one process, data in ./data),
## ready for a RocketMQ client at 127.0.0.1:9876.
run: build
	./$(BIN)/ringmq dev --data $(DATA)

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## test: install what the tests need, then vet and run every test (unit, race, fuzz
## seeds briefly, crash tests, compatibility with the official Go client).
test: test-deps vet unit race allocs fuzz compat

test-deps: $(NATS_SERVER)
	./tools/ci/install-test-deps.sh

$(NATS_SERVER):
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

vet:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd tools/compat && $(GO) vet ./...

unit:
	RINGMQ_NATS_SERVER=$(NATS_SERVER) $(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v -E '/(flush|engine|netio|perf|iouring|bpf)(/|$$)')

race:
	$(GO) test -count=1 -race -timeout 15m $(RACE_PKGS)

# The zero-allocation proofs skip under the race detector (it allocates), so the race
# packages' allocation tests run once more without it.
allocs:
	$(GO) test -count=1 -run 'Alloc' $(RACE_PKGS)

fuzz:
	FUZZTIME=$(FUZZTIME) ./tools/ci/fuzz.sh

compat:
	cd tools/compat && $(GO) test -count=1 -timeout 15m ./...

## fuzz-long: every fuzz target for a minute.
fuzz-long:
	FUZZTIME=60s ./tools/ci/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./flush/... ./engine/... ./netio/... ./perf/...

## generate: rebuild bpf/*/*_x86_bpfel.{o,go} from the C sources with bpf2go (pinned in
## go.mod's tool block). The output is committed, so a plain build needs no clang.
generate: generate-deps
	$(GO) generate ./bpf/...

## generate-deps: Debian's clang, llvm and libbpf-dev (needs root).
generate-deps:
	@command -v clang >/dev/null && [ -f /usr/include/bpf/bpf_helpers.h ] || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang llvm libbpf-dev)

## bench-compare: ringmq vs NATS JetStream (file store, sync_interval: always), A/B/A/B,
## one table with ratios. BENCH_ARGS=--quick for a sanity run; on a shared machine run it
## under `chrt -r 1` (root) so the generator and both servers get the CPU alike.
bench-compare: $(NATS_SERVER)
	$(GO) run ./tools/bench/compare --nats-server $(NATS_SERVER) $(BENCH_ARGS)

clean:
	rm -rf $(BIN)
