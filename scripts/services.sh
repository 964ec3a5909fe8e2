#!/usr/bin/env bash
# Starts (or stops) the real services the test suite talks to, on loopback
# ports of the project's own, so tests never touch another instance's data:
#
#   scripts/services.sh start DIR   install what is missing, start Redis,
#                                   MinIO and clamd under DIR, wait until
#                                   each is ready, write DIR/env (exports)
#   scripts/services.sh start-cluster DIR
#                                   the scale-out setup, same DIR/env format:
#                                   a 3-master Redis Cluster, a standalone
#                                   Redis for MinIO's event list, a 4-node
#                                   distributed (erasure-coded) MinIO, clamd
#   scripts/services.sh stop DIR    stop what start or start-cluster started
#
# Ports: ASSETSCAN_TEST_REDIS_PORT (default 16379), ASSETSCAN_TEST_MINIO_PORT
# (default 19000); start-cluster: ASSETSCAN_TEST_CLUSTER_REDIS_PORT (default
# 16711: masters on 16711-16713, the events Redis on 16714) and
# ASSETSCAN_TEST_CLUSTER_MINIO_PORT (default 19711: nodes on 19711-19714).
# MinIO is configured with a Redis notification target (id "assetscan",
# list key "assetscan:events", access format) for the scan-on-upload tests;
# MinIO's target speaks to one Redis server, never a cluster, hence the
# events Redis of start-cluster.
set -euo pipefail

usage() { echo "usage: $0 start|start-cluster|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
redis_port=${ASSETSCAN_TEST_REDIS_PORT:-16379}
minio_port=${ASSETSCAN_TEST_MINIO_PORT:-19000}
cluster_redis_port=${ASSETSCAN_TEST_CLUSTER_REDIS_PORT:-16711}
cluster_minio_port=${ASSETSCAN_TEST_CLUSTER_MINIO_PORT:-19711}
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

ports_free() { # hint, ports...
  local hint=$1; shift
  for p in "$@"; do
    if port_busy "$p"; then
      log "port $p is already in use: another instance? set $hint"
      exit 1
    fi
  done
}

# start_redis NAME PORT [ARGS...]: a Redis of ours under $dir/NAME, AOF on
# so restart tests keep data; its port is kept for stop.
start_redis() {
  local name=$1 port=$2; shift 2
  mkdir -p "$dir/$name"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --dir "$dir/$name" --logfile "$dir/$name/log" \
    --daemonize yes --pidfile "$dir/$name/pid" "$@"
  echo "$port" >"$dir/$name/port"
  wait_for "redis $name" 100 redis-cli -p "$port" ping
}

# MinIO's Redis notification target (@REDIS@: the Redis it writes to).
notify_env=(MINIO_NOTIFY_REDIS_ENABLE_ASSETSCAN=on MINIO_NOTIFY_REDIS_ADDRESS_ASSETSCAN=@REDIS@
  MINIO_NOTIFY_REDIS_KEY_ASSETSCAN=assetscan:events MINIO_NOTIFY_REDIS_FORMAT_ASSETSCAN=access)
minio_env=(MINIO_ROOT_USER=$minio_user MINIO_ROOT_PASSWORD=$minio_pass MINIO_BROWSER=off MINIO_UPDATE=off)


# write_env REDIS_ADDR S3_ENDPOINT CLAMD_ADDR [LINE...]: DIR/env, what the
# tests and scripts source; extra lines are appended as given.
write_env() {
  {
    cat <<ENV
export ASSETSCAN_TEST_REDIS_ADDR=$1
export ASSETSCAN_TEST_S3_ENDPOINT=$2
export ASSETSCAN_TEST_S3_ACCESS_KEY=$minio_user
export ASSETSCAN_TEST_S3_SECRET_KEY=$minio_pass
export ASSETSCAN_TEST_CLAMD=$3
export ASSETSCAN_TEST_CLAMD_CONF=$dir/clamd/clamd.conf
export ASSETSCAN_TEST_MINIO_BIN=$minio
export ASSETSCAN_TEST_EVENTS_KEY=assetscan:events
ENV
    shift 3
    [ $# -eq 0 ] || printf '%s\n' "$@"
  } >"$dir/env"
}
start() {
  ports_free "ASSETSCAN_TEST_REDIS_PORT / ASSETSCAN_TEST_MINIO_PORT" "$redis_port" "$minio_port"
  ensure_packages
  start_redis redis "$redis_port"

  # MinIO with the Redis notification target.
  local minio
  minio=$(minio_bin)
  mkdir -p "$dir/minio/data"
  env "${minio_env[@]}" "${notify_env[@]/@REDIS@/127.0.0.1:$redis_port}" \
    nohup "$minio" server "$dir/minio/data" --address "127.0.0.1:$minio_port" --quiet \
    >"$dir/minio/log" 2>&1 &
  echo $! >"$dir/minio/pid"
  wait_for minio 300 curl -fsS "http://127.0.0.1:$minio_port/minio/health/ready"

  # clamd with the shipped signatures.
  local clamd_addr
  clamd_addr=$("$here/clamd.sh" start "$dir/clamd")

  write_env "127.0.0.1:$redis_port" "127.0.0.1:$minio_port" "$clamd_addr"
  log "ready: redis 127.0.0.1:$redis_port, minio 127.0.0.1:$minio_port, clamd $clamd_addr"
}

# start_cluster: the scale-out setup on loopback. Redis Cluster: three
# masters, no replicas, slots spread by redis-cli --cluster create. MinIO:
# four server processes, one drive each, all given the same four
# endpoints: one erasure set (EC:2, write quorum 3).
start_cluster() {
  local rp=$cluster_redis_port mp=$cluster_minio_port
  local rports=("$rp" $((rp + 1)) $((rp + 2))) events_port=$((rp + 3))
  local mports=("$mp" $((mp + 1)) $((mp + 2)) $((mp + 3)))
  ports_free "ASSETSCAN_TEST_CLUSTER_REDIS_PORT / ASSETSCAN_TEST_CLUSTER_MINIO_PORT" \
    "${rports[@]}" "$events_port" "${mports[@]}"
  ensure_packages
  local i nodes=()
  for i in 0 1 2; do
    start_redis "redis-$i" "${rports[$i]}" --cluster-enabled yes \
      --cluster-config-file "$dir/redis-$i/nodes.conf" --cluster-node-timeout 5000
    nodes+=("127.0.0.1:${rports[$i]}")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/cluster-create.log" 2>&1 || {
    cat "$dir/cluster-create.log" >&2; log "redis-cli --cluster create failed"; return 1; }
  cluster_ok() { for p in "${rports[@]}"; do redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || return 1; done; }
  wait_for "redis cluster" 150 cluster_ok
  # MinIO's notification target cannot follow a cluster's redirections.
  start_redis redis-events "$events_port"

  local minio eps=()
  minio=$(minio_bin)
  for i in 0 1 2 3; do
    mkdir -p "$dir/minio-$i/data"
    eps+=("http://127.0.0.1:${mports[$i]}$dir/minio-$i/data")
  done
  for i in 0 1 2 3; do
    # /.dockerenv makes MinIO wait for 127.0.0.1 to "resolve to a valid IP";
    # _MINIO_SERVER_LOCAL names the node's own endpoint (it is not compared
    # across nodes). MINIO_CI_CD=on: drives on the root disk are accepted.
    env "${minio_env[@]}" "${notify_env[@]/@REDIS@/127.0.0.1:$events_port}" MINIO_CI_CD=on \
      _MINIO_SERVER_LOCAL="127.0.0.1:${mports[$i]}" \
      nohup "$minio" server "${eps[@]}" --address "127.0.0.1:${mports[$i]}" --quiet \
      >"$dir/minio-$i/log" 2>&1 &
    echo $! >"$dir/minio-$i/pid"
  done
  for i in 0 1 2 3; do
    wait_for "minio node $i" 600 curl -fsS "http://127.0.0.1:${mports[$i]}/minio/health/cluster"
  done

  local clamd_addr
  clamd_addr=$("$here/clamd.sh" start "$dir/clamd")
  local IFS=,
  write_env "${nodes[*]}" "127.0.0.1:${mports[0]}" "$clamd_addr" \
    "export ASSETSCAN_TEST_EVENTS_REDIS_ADDR=127.0.0.1:$events_port" \
    "export ASSETSCAN_TEST_S3_ENDPOINTS=${mports[*]/#/127.0.0.1:}"
  log "ready: redis cluster ${nodes[*]} (events redis 127.0.0.1:$events_port), minio ${mports[*]/#/127.0.0.1:}, clamd $clamd_addr"
}

# stop: whatever start or start-cluster left pid files for under DIR.
stop() {
  "$here/clamd.sh" stop "$dir/clamd" 2>/dev/null || true
  local d pids=()
  for d in "$dir"/minio "$dir"/minio-*; do
    if [ -f "$d/pid" ]; then
      pids+=("$(cat "$d/pid")")
      kill -TERM "${pids[-1]}" 2>/dev/null || true
      rm -f "$d/pid"
    fi
  done
  # Wait (up to 10 s) until MinIO has let go of its port and files: the
  # next run, or rm -rf of the dir, must not race with it.
  local p i
  for p in "${pids[@]}"; do
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for d in "$dir"/redis "$dir"/redis-*; do
    [ -f "$d/pid" ] || continue
    local port=$redis_port
    [ -f "$d/port" ] && port=$(cat "$d/port")
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill -TERM "$(cat "$d/pid")" 2>/dev/null || true
  done
}

case $cmd in
start) start ;;
start-cluster) start_cluster ;;
stop) stop ;;
*) usage ;;
esac
