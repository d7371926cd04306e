#!/usr/bin/env bash
# make bench: micro-benchmarks, and the ESP framing overhead as a ratio
# against the raw cipher measured in the same run.
set -euo pipefail
mkdir -p build
go test -run='^$' -bench=. -benchmem -count=1 ./esp/ ./ike/... ./dataplane/ | tee build/bench.txt
echo
echo "ESP seal/open of 1400-byte packets vs the raw cipher (same run; ratio = ESP MB/s / raw MB/s):"
printf "%-22s %12s %12s %12s %10s %10s %8s\n" "suite" "seal MB/s" "open MB/s" "raw MB/s" "seal/raw" "open/raw" "allocs"
awk '
/^Benchmark(Seal|Open|RawAEAD)\// {
	split($1, a, "/"); kind = a[1]; sub(/^Benchmark/, "", kind); suite = a[2]; sub(/-[0-9]+$/, "", suite)
	for (i = 2; i <= NF; i++) if ($(i+1) == "MB/s") mbs = $i; else if ($(i+1) == "allocs/op") allocs = $i
	v[kind, suite] = mbs; al[kind, suite] = allocs; suites[suite] = 1
}
END {
	for (s in suites) if (v["RawAEAD", s] > 0)
		printf "%-22s %12.0f %12.0f %12.0f %10.2f %10.2f %8s\n", s, v["Seal", s], v["Open", s], v["RawAEAD", s], v["Seal", s] / v["RawAEAD", s], v["Open", s] / v["RawAEAD", s], al["Seal", s] "/" al["Open", s]
}' build/bench.txt | sort

echo
echo "QCD token verification and tickets (0 allocs/op expected for Check):"
go test -run='^$' -bench='Check|Parse|Issue|Open' -benchmem -count=1 ./qcd/ ./resume/ | grep -E '^Benchmark' | tee -a build/bench.txt

echo
echo "Gateway CPU per full handshake vs per resumption (gateway in its own process, same run):"
go test -run='^TestGatewayCPUFullVsResume$' -count=1 -v ./internal/e2e/ | grep -E 'cpu|ratio|PASS|FAIL' | tee -a build/bench.txt

echo
echo "Failover after a gateway crash, resumed vs full exchange (one drill each, same run):"
go test -run='^$' -bench='^BenchmarkFailover$' -benchtime=1x -count=1 ./cmd/qcdvpn/ | grep -E '^Benchmark' | tee -a build/bench.txt

echo
echo "Memory of one mobile tunnel over netstack, gateway in another process (live heap = HeapInuse after GC; RSS = VmRSS):"
QCDVPN_MEMORY_REPORT=1 go test -run='^TestMemoryReport$' -count=1 -v ./mobile/ | grep -E 'memory |PASS|FAIL' | sed -E "s/^ *memory_test.go:[0-9]+: //" | tee -a build/bench.txt

echo
echo "Connect with and without ML-KEM-768 (RFC 9370 hybrid), in-process gateway on loopback, same run:"
go test -run='^$' -bench='^BenchmarkConnectHybrid$' -benchtime=200x -count=1 ./internal/e2e/ | grep -E '^Benchmark' | tee build/bench-pq.txt | tee -a build/bench.txt
awk '
/^BenchmarkConnectHybrid\// {
	split($1, a, "/"); k = a[2]; sub(/-[0-9]+$/, "", k)
	for (i = 2; i <= NF; i++) { if ($(i+1) == "ms/connect") ms[k] = $i; if ($(i+1) == "ike_bytes/connect") by[k] = $i }
}
END {
	if (ms["x25519"] > 0 && by["x25519"] > 0)
		printf "hybrid/classical: connect time x%.2f (%.3f vs %.3f ms), IKE bytes x%.2f (%d vs %d)\n",
			ms["x25519+mlkem768"] / ms["x25519"], ms["x25519+mlkem768"], ms["x25519"],
			by["x25519+mlkem768"] / by["x25519"], by["x25519+mlkem768"], by["x25519"]
}' build/bench-pq.txt | tee -a build/bench.txt

echo
# The tunnels, back to back in one run (root, namespaces): raw veth,
# wireguard-go, qcdvpn (AES-256-GCM, ChaCha20-Poly1305), strongSwan and
# qcdvpn->strongSwan; writes docs/BENCHMARKS.md and docs/throughput.png,
# with the esp figures of build/bench.txt above.
if [ "$(id -u)" -ne 0 ]; then
	echo "Network benchmark skipped: needs root (namespaces); docs/BENCHMARKS.md not rewritten."
	exit 0
fi
echo "Network benchmark (iperf3, ping, RSS, connect time; ratios against wireguard-go in the same run):"
QCDVPN_BENCH_REPORT="$PWD/docs" QCDVPN_BENCH_MICRO="$PWD/build/bench.txt" \
	go test -count=1 -v -run '^TestNetBench$' -timeout 15m ./internal/interop/ | tee build/bench-net.txt
echo "wrote docs/BENCHMARKS.md and docs/throughput.png"
