# qcdvpn — see README.md. `make check` is the one command that runs every test.
GO ?= go
FUZZTIME ?= 5s

.PHONY: check deps vet test fuzz crossbuild build bench

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
	$(GO) test -run='^$$' -bench=. -benchmem ./ike/... ./esp/... 2>/dev/null | tee build/bench.txt
