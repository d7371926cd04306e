# qcdvpn — see README.md. `make check` is the one command that runs every test.
GO ?= go
FUZZTIME ?= 5s

.PHONY: check deps vet lint test fuzz crossbuild build bench bench-net mobile mobile-test flood desktop desktop-test desktop-screenshot desktop-package fuzz-long soak soak-short

check: deps lint build crossbuild test flood mobile mobile-test desktop-test fuzz soak-short

deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...

# vet + staticcheck + govulncheck (offline: the vulnerability database comes
# from a pinned golang.org/x/vulndb module through the Go module proxy).
lint:
	./scripts/lint.sh

build:
	$(GO) build -o build/qcdvpn ./cmd/qcdvpn

test:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Every fuzz target for 10 minutes (hours in all; not part of check).
fuzz-long:
	FUZZTIME=10m ./scripts/fuzz.sh

crossbuild:
	./scripts/crossbuild.sh

# Micro-benchmarks, then (as root) every tunnel measured in one run into
# docs/BENCHMARKS.md and docs/throughput.png (internal/interop TestNetBench).
bench: deps
	./scripts/bench.sh

# Throughput through qcdvpn<->strongSwan and strongSwan<->strongSwan in one
# run (root, namespaces).
bench-net: deps
	QCDVPN_BENCH_NET=1 $(GO) test -count=1 -v -run '^TestNetThroughput$$' -timeout 10m ./internal/interop/

# The QCD flood test once more without the race detector, where its
# CPU bound (< 1 core at >= 20,000 forged messages/s) is asserted.
flood:
	$(GO) test -count=1 -run '^TestQCDFlood$$' ./internal/e2e/

# Java and Objective-C bindings of ./mobile into build/mobile; the go.mod keeps
# the generated Go package out of ./... (vet, crossbuild, test).
mobile:
	rm -rf build/mobile
	$(GO) tool gobind -lang=go,java,objc -javapkg=org.qcdvpn -prefix=QCD -outdir=build/mobile ./mobile
	printf 'module gobind\n' > build/mobile/src/gobind/go.mod

# The Java binding on the host JVM against a qcdvpn gateway on loopback.
mobile-test:
	./scripts/mobile-test.sh

# The desktop app (Fyne, cgo: needs the GL/X11 headers from install-deps).
desktop:
	$(GO) build -o build/qcdvpn-desktop ./desktop/cmd/qcdvpn-desktop

# The desktop app under Xvfb against a live tunnel in namespaces (root):
# checks the window says connected and its screenshot is not blank.
desktop-test:
	QCDVPN_DESKTOP_XVFB=1 $(GO) test -count=1 -v -run '^TestDesktopXvfb$$' -timeout 15m ./desktop/


# The same run, writing its screenshot to docs/desktop.png for the README.
desktop-screenshot:
	QCDVPN_DESKTOP_XVFB=1 QCDVPN_UPDATE_SCREENSHOT=1 $(GO) test -count=1 -v -run '^TestDesktopXvfb$$' -timeout 15m ./desktop/

# build/qcdvpn-desktop-linux.tar.xz via `fyne package` (slow: a release build).
desktop-package:
	./scripts/desktop-package.sh

# The soak (root, namespaces): qcdvpn up behind a NAT against a primary and
# a backup qcdvpn gateway, 10 % loss, the primary killed every 30 s, NAT
# flushed, backup coming and going, rekeys every 20 s; recovery, duplicates,
# goroutines and RSS checked. soak-short is the CI version (make check).
soak:
	QCDVPN_SOAK=30m $(GO) test -count=1 -v -run '^TestSoak$$' -timeout 40m ./internal/interop/

soak-short:
	QCDVPN_SOAK=5m $(GO) test -count=1 -v -run '^TestSoak$$' -timeout 12m ./internal/interop/
