#!/usr/bin/env bash
# Starts (or stops) the real services the test suite talks to, on loopback
# ports of the project's own, so tests never touch another instance's data:
#
#   scripts/services.sh start DIR   install what is missing, start Redis,
#                                   MinIO and clamd under DIR, wait until
#                                   each is ready, write DIR/env (exports)
#   scripts/services.sh stop DIR    stop what start started
#
# Ports: ASSETSCAN_TEST_REDIS_PORT (default 16379), ASSETSCAN_TEST_MINIO_PORT
# (default 19000). MinIO is configured with a Redis notification target
# (id "assetscan", list key "assetscan:events", access format) for the
# scan-on-upload tests.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
redis_port=${ASSETSCAN_TEST_REDIS_PORT:-16379}
minio_port=${ASSETSCAN_TEST_MINIO_PORT:-19000}
minio_version=v0.0.0-20260212201848-7aac2a2c5b7c
minio_user=assetscan-test
minio_pass=assetscan-test-secret

log() { echo "services: $*" >&2; }

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { log "apt-get update"; apt-get update -qq; apt_updated=1; }
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  { [ -x /usr/sbin/clamd ] || command -v clamd >/dev/null; } || missing+=(clamav-daemon)
  command -v clamdscan >/dev/null || missing+=(clamdscan)
  [ -d /usr/share/clamav-testfiles ] || missing+=(clamav-testfiles)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  command -v mke2fs >/dev/null || missing+=(e2fsprogs)
  command -v sfdisk >/dev/null || missing+=(fdisk)
  command -v mkfs.xfs >/dev/null || missing+=(xfsprogs)
  command -v prlimit >/dev/null || missing+=(util-linux)
  command -v unzip >/dev/null || missing+=(unzip)
  command -v mkpasswd >/dev/null || missing+=(whois)
  command -v zip >/dev/null || missing+=(zip)
  command -v mkntfs >/dev/null || missing+=(ntfs-3g)          # NTFS (Windows) disk fixtures
  command -v chromium >/dev/null || missing+=(chromium)        # the HTML report rendered in a browser test
  command -v jq >/dev/null || missing+=(jq)
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

minio_bin() {
  local gobin
  gobin=$(go env GOPATH)/bin
  if command -v minio >/dev/null; then command -v minio; return; fi
  if [ -x "$gobin/minio" ]; then echo "$gobin/minio"; return; fi
  log "building MinIO $minio_version (a cold build takes 7-16 minutes)"
  (cd /tmp && GOFLAGS=-mod=mod go install "github.com/minio/minio@$minio_version") >&2
  echo "$gobin/minio"
}

wait_for() { # name, tries, command...
  local name=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$name did not become ready"; return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  for p in "$redis_port" "$minio_port"; do
    if port_busy "$p"; then
      log "port $p is already in use: another instance? set ASSETSCAN_TEST_REDIS_PORT / ASSETSCAN_TEST_MINIO_PORT"
      exit 1
    fi
  done
  ensure_packages
  # Redis: our own instance, AOF on so restart tests keep data.
  mkdir -p "$dir/redis"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --dir "$dir/redis" --logfile "$dir/redis/log" \
    --daemonize yes --pidfile "$dir/redis/pid"
  wait_for redis 100 redis-cli -p "$redis_port" ping

  # MinIO with the Redis notification target.
  local minio
  minio=$(minio_bin)
  mkdir -p "$dir/minio/data"
  MINIO_ROOT_USER=$minio_user MINIO_ROOT_PASSWORD=$minio_pass MINIO_BROWSER=off MINIO_UPDATE=off \
    MINIO_NOTIFY_REDIS_ENABLE_ASSETSCAN=on MINIO_NOTIFY_REDIS_ADDRESS_ASSETSCAN=127.0.0.1:$redis_port \
    MINIO_NOTIFY_REDIS_KEY_ASSETSCAN=assetscan:events MINIO_NOTIFY_REDIS_FORMAT_ASSETSCAN=access \
    nohup "$minio" server "$dir/minio/data" --address "127.0.0.1:$minio_port" --quiet \
    >"$dir/minio/log" 2>&1 &
  echo $! >"$dir/minio/pid"
  wait_for minio 300 curl -fsS "http://127.0.0.1:$minio_port/minio/health/ready"

  # clamd with the shipped signatures.
  local clamd_addr
  clamd_addr=$("$here/clamd.sh" start "$dir/clamd")

  cat >"$dir/env" <<ENV
export ASSETSCAN_TEST_REDIS_ADDR=127.0.0.1:$redis_port
export ASSETSCAN_TEST_S3_ENDPOINT=127.0.0.1:$minio_port
export ASSETSCAN_TEST_S3_ACCESS_KEY=$minio_user
export ASSETSCAN_TEST_S3_SECRET_KEY=$minio_pass
export ASSETSCAN_TEST_CLAMD=$clamd_addr
export ASSETSCAN_TEST_CLAMD_CONF=$dir/clamd/clamd.conf
export ASSETSCAN_TEST_MINIO_BIN=$minio
export ASSETSCAN_TEST_EVENTS_KEY=assetscan:events
ENV
  log "ready: redis 127.0.0.1:$redis_port, minio 127.0.0.1:$minio_port, clamd $clamd_addr"
}

stop() {
  "$here/clamd.sh" stop "$dir/clamd" 2>/dev/null || true
  if [ -f "$dir/minio/pid" ]; then kill -TERM "$(cat "$dir/minio/pid")" 2>/dev/null || true; rm -f "$dir/minio/pid"; fi
  if [ -f "$dir/redis/pid" ]; then
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$(cat "$dir/redis/pid")" 2>/dev/null || true
  fi
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
