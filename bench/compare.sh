#!/usr/bin/env bash
# Measures assetscan against the tools a user would otherwise pick, in one
# run, and prints the figures:
#   1. trivy as a library (scanner/trivy) vs the trivy CLI, one process per
#      package, over 100 small packages;
#   2. the malware check vs `clamdscan --fdpass --multiscan` on the same
#      trees, 200 files (100 MiB in all) and 20 000 tiny files
#      (scanner/clamav BenchmarkScanFiles and BenchmarkScanTinyFiles, with a
#      private clamd; 15 head-to-head iterations each, about 5 minutes).
# Builds the trivy CLI from the project's trivy version first (cached in
# $TRIVY_CLI or /tmp/assetscan-trivy-cli/trivy).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GOEXPERIMENT=jsonv2
cli=${TRIVY_CLI:-/tmp/assetscan-trivy-cli/trivy}
[ -x "$cli" ] || bench/trivy-cli.sh "$cli" >/dev/null
echo "== trivy: library vs CLI (100 packages)"
TRIVY_CLI=$cli go test -run XXX -bench BenchmarkCorpus -benchtime 1x ./scanner/trivy/ | tee /tmp/assetscan-bench-trivy.txt
lib=$(awk '/BenchmarkCorpus\/library/ {for(i=1;i<=NF;i++) if($i=="pkgs/s") print $(i-1)}' /tmp/assetscan-bench-trivy.txt)
cl=$(awk '/BenchmarkCorpus\/cli/ {for(i=1;i<=NF;i++) if($i=="pkgs/s") print $(i-1)}' /tmp/assetscan-bench-trivy.txt)
[ -n "$lib" ] && [ -n "$cl" ] && awk -v a="$lib" -v b="$cl" 'BEGIN { printf "library %.1f pkgs/s, CLI %.1f pkgs/s, ratio %.1fx\n", a, b, a/b }'
echo "== clamd: pipeline vs clamdscan"
go test -run XXX -bench 'ScanFiles|TinyFiles' -benchtime 15x ./scanner/clamav/
