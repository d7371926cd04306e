# qcdvpn — see README.md. `make check` is the one command that runs every test.
GO ?= go
FUZZTIME ?= 5s

.PHONY: check deps vet test fuzz crossbuild build bench bench-net

check: deps vet build crossbuild test fuzz

deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...

build:
	$(GO) build -o build/qcdvpn ./cmd/qcdvpn

test:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

crossbuild:
	./scripts/crossbuild.sh

bench:
	./scripts/bench.sh

# Throughput through qcdvpn<->strongSwan and strongSwan<->strongSwan in one
# run (root, namespaces).
bench-net: deps
	QCDVPN_BENCH_NET=1 $(GO) test -count=1 -v -run '^TestNetThroughput$$' -timeout 10m ./internal/interop/
