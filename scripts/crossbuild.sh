#!/usr/bin/env bash
# Builds every package except the desktop app for each target OS without cgo.
# iOS executables need cgo to link, so for iOS only the libraries are built.
set -euo pipefail
all=$(go list ./... | grep -v '/desktop' || true)
libs=$(go list -f '{{if ne .Name "main"}}{{.ImportPath}}{{end}}' ./... | grep -v '/desktop' || true)
for target in linux/amd64 linux/arm64 darwin/arm64 windows/amd64 android/arm64 ios/arm64; do
	pkgs=$all
	[ "${target%/*}" = ios ] && pkgs=$libs
	echo "crossbuild: $target"
	GOOS=${target%/*} GOARCH=${target#*/} CGO_ENABLED=0 go build $pkgs
done
