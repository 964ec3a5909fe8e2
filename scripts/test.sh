#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a warm one:
# installs what is missing (apt packages, MinIO), starts Redis, MinIO and
# clamd on loopback under a temp dir, runs every Go test against them
# (including the race detector on the trivy adapter), runs the small fault
# soak (bench/soak.sh --small, its own services on other ports), and stops
# them.
#
#   scripts/test.sh            everything
#   scripts/test.sh ./api/...  only these packages (services still started)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export GOEXPERIMENT=jsonv2   # trivy needs it to build
export GOFLAGS=-mod=readonly
export PATH=$PATH:/usr/local/go/bin
export PATH=$PATH:$(go env GOPATH)/bin

svc=$(mktemp -d /tmp/assetscan-svc.XXXXXX)
cleanup() { scripts/services.sh stop "$svc" || true; rm -rf "$svc"; }
trap cleanup EXIT
scripts/services.sh start "$svc"
# shellcheck disable=SC1091
source "$svc/env"

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

echo "== go vet"
go vet "${pkgs[@]}"
echo "== go test"
go test -count=1 -timeout 60m "${pkgs[@]}"
if [ $# -eq 0 ]; then
  echo "== go test -race (the trivy adapter: concurrent scans in one process)"
  CGO_ENABLED=1 go test -count=1 -race -timeout 30m ./scanner/trivy/
  echo "== fault soak, small (bench/soak.sh --small: 60 scans, 6 worker kills, Redis and MinIO restarts)"
  # A passing run ends as soon as every scan is done; the wait only bounds
  # a failing one (a SIGKILLed task comes back after asynq's ~90 s lease).
  ASSETSCAN_SOAK_WAIT=300 timeout 900 bench/soak.sh --small
fi
