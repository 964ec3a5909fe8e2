#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine or a warm one:
# installs what is missing (apt packages, MinIO), starts Redis, MinIO and
# clamd on loopback under a temp dir, runs every Go test against them
# (including the race detector on the trivy adapter), runs the small fault
# soak (bench/soak.sh --small, its own services on other ports), then the
# scale-out run, and stops them.
#
#   scripts/test.sh              everything
#   scripts/test.sh ./api/...    only these packages (services still started)
#   scripts/test.sh --scale-out  only the scale-out run, compared with the
#                                single-node run of e2e TestScaleOut
#
# The scale-out run (services.sh start-cluster: a 3-master Redis Cluster, a
# 4-node distributed MinIO, clamd) runs the Redis packages' tests and the
# whole e2e suite against it, two workers per stack, and fails unless
# TestScaleOut's verdicts are the single-node run's, line for line.
# ASSETSCAN_SCALE_OUT=0 leaves it out of the full run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export GOEXPERIMENT=jsonv2   # trivy needs it to build
export GOFLAGS=-mod=readonly
export PATH=$PATH:/usr/local/go/bin
export PATH=$PATH:$(go env GOPATH)/bin

only_scale_out=
if [ "${1:-}" = --scale-out ]; then
  only_scale_out=1
  shift
  [ $# -eq 0 ] || { echo "usage: $0 [--scale-out | PACKAGES...]" >&2; exit 2; }
fi

svc=$(mktemp -d /tmp/assetscan-svc.XXXXXX)
cluster=
cleanup() {
  # Never stop half-way: a service left running holds its port for the
  # next run.
  if [ -n "$cluster" ]; then scripts/services.sh stop "$cluster" || true; rm -rf "$cluster" || true; fi
  scripts/services.sh stop "$svc" || true
  rm -rf "$svc" || true
}
trap cleanup EXIT
scripts/services.sh start "$svc"
# shellcheck disable=SC1091
source "$svc/env"

# e2e TestScaleOut writes its verdicts here; the scale-out run compares.
single_verdicts=$svc/verdicts-single.txt

# scale_out: the e2e suite (and the packages with Redis code) against the
# cluster setup, in a subshell so its env does not leak.
scale_out() {
  local t0=$SECONDS
  cluster=$(mktemp -d /tmp/assetscan-cluster.XXXXXX)
  scripts/services.sh start-cluster "$cluster"
  (
    # shellcheck disable=SC1091
    source "$cluster/env"
    echo "== scale-out: Redis code against the 3-master Redis Cluster"
    go test -count=1 ./internal/... ./storage/... ./policies/... ./events/... ./queue/...
    echo "== scale-out: the e2e suite on the Redis Cluster and the 4-node MinIO, two workers per stack"
    ASSETSCAN_E2E_WORKERS=2 ASSETSCAN_E2E_VERDICTS=$cluster/verdicts.txt go test -count=1 -timeout 30m ./e2e/
  )
  echo "== scale-out: TestScaleOut, single node: $(cat "$single_verdicts.summary")"
  echo "== scale-out: TestScaleOut, scale-out:   $(cat "$cluster/verdicts.txt.summary")"
  if ! diff -u "$single_verdicts" "$cluster/verdicts.txt"; then
    echo "scale-out: verdicts differ from the single-node run (diff above)" >&2
    return 1
  fi
  echo "== scale-out: same verdicts as the single-node run; $((SECONDS - t0)) s"
}

if [ -n "$only_scale_out" ]; then
  echo "== single-node reference: e2e TestScaleOut"
  ASSETSCAN_E2E_VERDICTS=$single_verdicts go test -count=1 -run '^TestScaleOut$' ./e2e/
  scale_out
  exit 0
fi

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

echo "== go vet"
go vet "${pkgs[@]}"
echo "== go test"
ASSETSCAN_E2E_VERDICTS=$single_verdicts go test -count=1 -timeout 60m "${pkgs[@]}"
if [ $# -eq 0 ]; then
  echo "== go test -race (the trivy adapter: concurrent scans in one process)"
  CGO_ENABLED=1 go test -count=1 -race -timeout 30m ./scanner/trivy/
  echo "== fault soak, small (bench/soak.sh --small: 60 scans, 6 worker kills, Redis and MinIO restarts)"
  # A passing run ends as soon as every scan is done; the wait only bounds
  # a failing one (a SIGKILLed task comes back after asynq's ~90 s lease).
  ASSETSCAN_SOAK_WAIT=300 timeout 900 bench/soak.sh --small
  if [ "${ASSETSCAN_SCALE_OUT:-1}" != 0 ]; then
    scale_out
  fi
fi
