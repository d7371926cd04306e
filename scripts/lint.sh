#!/usr/bin/env bash
# go vet, staticcheck and govulncheck over the module, offline except for the
# Go module proxy. Both tools are `tool` lines in go.mod. govulncheck cannot
# reach its usual database site, so it reads the Go vulnerability database's
# OSV entries (data/osv/GO-*.json) from a pinned golang.org/x/vulndb module
# version, fetched from the proxy like any module; govulncheck's file:// source
# accepts such a flat directory of OSV entries.
set -euo pipefail
cd "$(dirname "$0")/.."
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}

echo "lint: go vet"
go vet ./...

echo "lint: staticcheck"
go tool staticcheck ./...

echo "lint: govulncheck (golang.org/x/vulndb@$VULNDB_VERSION)"
dir=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/data/osv" ]; then
	echo "lint: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv directory" >&2
	exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
go tool govulncheck -db "file://$dir/data/osv" ./... >"$out" 2>&1 || rc=$?
cat "$out"
case $rc in
0) exit 0 ;;
3) ;; # vulnerabilities found: sorted out below
*) echo "lint: govulncheck failed (exit $rc)" >&2; exit $rc ;;
esac

# Findings in the standard library of the machine's Go that are fixed only in
# a newer Go than the project may use yet are listed with their reason in
# scripts/govulncheck-stdlib.allow; they are reported, not failed. Any other
# finding (any module, or an unlisted standard library one) fails.
allow=scripts/govulncheck-stdlib.allow
fail=0
while read -r id found; do
	case $found in
	*@go[0-9]*) # standard library
		if grep -q "^$id " "$allow"; then
			echo "lint: govulncheck: $id in $found allowed: $(grep "^$id " "$allow" | cut -d' ' -f2-)"
			continue
		fi ;;
	esac
	echo "lint: govulncheck: $id in $found is not allowed" >&2
	fail=1
done < <(awk '/^Vulnerability #[0-9]+: /{id=$3} /^ *Found in: /{if(id!=""){print id, $3; id=""}}' "$out")
exit $fail
