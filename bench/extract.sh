#!/usr/bin/env bash
# Extraction throughput before and after issue 9 (content recognition, the
# zip local-header walk, regions), on one generated package:
#   ASSETSCAN_BENCH_BYTES  package size in bytes (default 1 GiB here)
#   BEFORE                 the git revision to compare with (default: the
#                          parent of the first issue-9 commit of archive/)
# Runs archive's BenchmarkExtract on the working tree and on BEFORE (the
# same benchmark file copied into a `git archive` export of that revision),
# then BenchmarkExtractParts for the share of the new work. Two packages:
# "plain" (no jars: both versions write the same files) and "jars" (the
# new code also unpacks the jars: more files written and scanned). The package is
# generated once and kept in $ASSETSCAN_BENCH_DIR (default
# /tmp/assetscan-bench-extract); extraction needs about 2.5x its size free.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GOEXPERIMENT=jsonv2
export ASSETSCAN_BENCH_BYTES=${ASSETSCAN_BENCH_BYTES:-1073741824}
export ASSETSCAN_BENCH_DIR=${ASSETSCAN_BENCH_DIR:-/tmp/assetscan-bench-extract}
first=$(git log --reverse --format=%H --grep 'issue 9' -- archive/ | head -1)
before=${BEFORE:-${first}^}
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git archive "$before" go.mod go.sum $(git ls-tree --name-only "$before" | grep '\.go$') archive | tar -x -C "$old"
cp archive/bench_extract_test.go "$old/archive/"
echo "== before ($(git rev-parse --short "$before"))"
(cd "$old" && go test -run XXX -bench '^BenchmarkExtract$/' -benchtime 1x ./archive/) | grep Benchmark
echo "== after (working tree)"
go test -run XXX -bench '^BenchmarkExtract$/' -benchtime 1x ./archive/ | grep Benchmark
echo "== after: the new work alone"
go test -run XXX -bench '^BenchmarkExtractParts$' -benchtime 3x ./archive/ | grep Benchmark
