#!/usr/bin/env bash
# The main job on an embedded default: scan a package in-process with the
# shipped fixture vulnerability DB and a private clamd running the shipped
# signatures. Installs clamav-daemon first if it is missing (without clamd
# the malware check cannot run and the verdict is "error", never "pass").
#
#   scripts/demo.sh [assetscan scan flags] [PATH]   default PATH: testdata/packages/lodash-app.zip
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GOEXPERIMENT=jsonv2 # trivy needs it to build
export PATH=$PATH:/usr/local/go/bin
if ! { [ -x /usr/sbin/clamd ] || command -v clamd >/dev/null; }; then
  echo "demo: installing clamav-daemon (apt-get)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon >/dev/null
fi
[ $# -gt 0 ] || set -- testdata/packages/lodash-app.zip
# go run would turn every non-zero exit into 1; build, then run, so the
# exit code is the verdict's: 0 pass, 1 fail, 2 error.
bin=$(mktemp -d)/assetscan
go build -o "$bin" ./cmd/assetscan
exec "$bin" scan "$@"
