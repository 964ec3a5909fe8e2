#!/usr/bin/env bash
# Builds the trivy CLI from the same module version the project uses, into
# a temp dir, and prints its path. Used by bench/compare.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GOEXPERIMENT=jsonv2
ver=$(go list -m -f '{{.Version}}' github.com/aquasecurity/trivy)
out=${1:-$(mktemp -d)/trivy}
mod=$(mktemp -d)
trap 'rm -rf "$mod"' EXIT
cd "$mod"
go mod init trivycli >/dev/null 2>&1
GOFLAGS=-mod=mod go get "github.com/aquasecurity/trivy@$ver" >/dev/null 2>&1
GOFLAGS=-mod=mod go build -o "$out" github.com/aquasecurity/trivy/cmd/trivy
echo "$out"
