#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time (FUZZTIME, default 5s).
set -euo pipefail
fuzztime=${FUZZTIME:-5s}
fail=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
	for t in $targets; do
		echo "fuzz: $pkg $t ($fuzztime)"
		if ! go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/fuzz-$t.log 2>&1; then
			cat /tmp/fuzz-$t.log
			fail=1
		fi
	done
done
exit $fail
