#!/usr/bin/env bash
# Fault soak (issue 12): N small packages scanned by two worker processes
# against a real Redis (AOF, appendfsync everysec), MinIO and clamd on
# loopback, while a chaos loop SIGKILLs a random worker K times (restarting
# it each time), kills and restarts Redis twice (from its AOF) and MinIO
# once. One package in 10 holds the EICAR test file (built at run time).
# Afterwards every scan must have exactly one recorded verdict (the API
# answers done, and the versioned reports bucket holds exactly one write of
# verdicts/<id>.json and of verdicts/<id>@1.json, revision 1, the same
# outcome), no EICAR package may pass, and no work dir may be left under the
# workers' work roots after a final clean start/stop. It prints the counts
# and exits 1 when an invariant breaks (2 when the soak itself failed).
#
#   bench/soak.sh [--small] [--scans N] [--kills K] [--keep] [--dir DIR]
#
#   --small        CI size: 60 scans, 6 worker kills (ASSETSCAN_SOAK_SMALL=1)
#   --scans N      packages (ASSETSCAN_SOAK_SCANS, default 500)
#   --kills K      worker SIGKILLs (ASSETSCAN_SOAK_KILLS, default 50)
#   --dir DIR      keep everything (logs, manifest) under DIR (ASSETSCAN_SOAK_DIR;
#                  default a temp dir, removed after a passing run)
#   --keep         keep the temp dir even when the soak passes
#
# Other settings (environment): ASSETSCAN_SOAK_BIN (a prebuilt assetscan
# binary; default: build one), ASSETSCAN_SOAK_KILL_INTERVAL (seconds between
# chaos actions; default 6, 8 with --small), ASSETSCAN_SOAK_WAIT (seconds to
# wait for the last verdicts after the chaos; default 600, 150 with --small),
# ASSETSCAN_SOAK_SEED (chaos RNG seed), ASSETSCAN_TEST_REDIS_PORT (16701),
# ASSETSCAN_TEST_MINIO_PORT (19701), ASSETSCAN_SOAK_API_PORT (16702).
# Needs what scripts/services.sh needs (redis-server, clamd, a MinIO binary
# or the Go toolchain to build one).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
export GOEXPERIMENT=${GOEXPERIMENT:-jsonv2}
export PATH=$PATH:/usr/local/go/bin

small=${ASSETSCAN_SOAK_SMALL:-0}
scans=${ASSETSCAN_SOAK_SCANS:-}
kills=${ASSETSCAN_SOAK_KILLS:-}
dir=${ASSETSCAN_SOAK_DIR:-}
keep=0
while [ $# -gt 0 ]; do
  case $1 in
  --small) small=1 ;;
  --scans) scans=$2; shift ;;
  --kills) kills=$2; shift ;;
  --dir) dir=$2; shift ;;
  --keep) keep=1 ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$small" = 1 ]; then
  scans=${scans:-60}; kills=${kills:-6}
  interval=${ASSETSCAN_SOAK_KILL_INTERVAL:-8}; wait_s=${ASSETSCAN_SOAK_WAIT:-150}
else
  scans=${scans:-500}; kills=${kills:-50}
  interval=${ASSETSCAN_SOAK_KILL_INTERVAL:-6}; wait_s=${ASSETSCAN_SOAK_WAIT:-600}
fi
seed=${ASSETSCAN_SOAK_SEED:-$$}
RANDOM=$seed
export ASSETSCAN_TEST_REDIS_PORT=${ASSETSCAN_TEST_REDIS_PORT:-16701}
export ASSETSCAN_TEST_MINIO_PORT=${ASSETSCAN_TEST_MINIO_PORT:-19701}
api_port=${ASSETSCAN_SOAK_API_PORT:-16702}
api=http://127.0.0.1:$api_port

made_dir=0
if [ -z "$dir" ]; then dir=$(mktemp -d /tmp/assetscan-soak.XXXXXX); made_dir=1; fi
mkdir -p "$dir/logs" "$dir/tmp"
dir=$(cd "$dir" && pwd)
svc=$dir/svc
log() { echo "soak: $(date +%T) $*" >&2; }

# ---- build ----------------------------------------------------------------
bin=${ASSETSCAN_SOAK_BIN:-}
if [ -z "$bin" ]; then
  log "building assetscan (links trivy: minutes on a cold cache)"
  (cd "$root" && go build -o "$dir/assetscan" ./cmd/assetscan)
  bin=$dir/assetscan
fi
(cd "$root" && go build -o "$dir/soak" ./bench/cmd/soak)
client=$dir/soak

# ---- processes --------------------------------------------------------------
alive() { # pid: running and not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}
wait_gone() { # pid, tries of 0.1 s
  local i
  for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.1; done
  return 1
}

cleanup_done=0
cleanup() {
  [ "$cleanup_done" = 1 ] && return
  cleanup_done=1
  [ -n "${chaos_pid:-}" ] && kill "$chaos_pid" 2>/dev/null || true
  [ -n "${supervise_pid:-}" ] && kill "$supervise_pid" 2>/dev/null || true
  local f
  for f in "$dir"/worker-*.pid "$dir"/serve.pid; do
    [ -f "$f" ] || continue
    kill -KILL "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  "$root/scripts/services.sh" stop "$svc" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 2' INT TERM

t0=$(date +%s)
log "dir $dir: $scans scans, $kills worker kills every ${interval}s, seed $seed"
"$root/scripts/services.sh" start "$svc" >"$dir/logs/services.log" 2>&1 || {
  cat "$dir/logs/services.log" >&2; exit 2; }
# shellcheck disable=SC1091
. "$svc/env"
"$bin" db build-fixture "$dir/db" >"$dir/logs/fixture.log" 2>&1 || { cat "$dir/logs/fixture.log" >&2; exit 2; }
"$client" keys "$dir"
"$client" prepare -uploads soak-uploads -reports soak-reports

export ASSETSCAN_REDIS_ADDR=$ASSETSCAN_TEST_REDIS_ADDR
export ASSETSCAN_S3_ENDPOINT=$ASSETSCAN_TEST_S3_ENDPOINT
export ASSETSCAN_S3_ACCESS_KEY=$ASSETSCAN_TEST_S3_ACCESS_KEY
export ASSETSCAN_S3_SECRET_KEY=$ASSETSCAN_TEST_S3_SECRET_KEY
export ASSETSCAN_REPORTS_BUCKET=soak-reports
export ASSETSCAN_DB_DIR=$dir/db
export ASSETSCAN_CLAMD=$ASSETSCAN_TEST_CLAMD
export ASSETSCAN_KEYS_FILE=$dir/keys.yaml
export ASSETSCAN_LISTEN=127.0.0.1:$api_port
export ASSETSCAN_RETRY_BASE=1s ASSETSCAN_SWEEP_INTERVAL=2s ASSETSCAN_STUCK_AFTER=10s
export ASSETSCAN_MAX_RETRY=8 ASSETSCAN_SHUTDOWN_TIMEOUT=5s ASSETSCAN_LOG_LEVEL=info
export TMPDIR=$dir/tmp

"$bin" serve >>"$dir/logs/serve.log" 2>&1 &
echo $! >"$dir/serve.pid"
disown $!
for _ in $(seq 300); do curl -fsS "$api/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "$api/readyz" >/dev/null || { log "serve not ready"; tail -30 "$dir/logs/serve.log" >&2; exit 2; }

start_worker() { # index
  echo "=== soak: start at $(date +%T.%N)" >>"$dir/logs/worker-$1.log"
  ASSETSCAN_WORK_DIR=$dir/work-$1 "$bin" worker >>"$dir/logs/worker-$1.log" 2>&1 &
  echo $! >"$dir/worker-$1.pid"
  disown $!
}
kill_worker() { # index, signal
  local pid
  pid=$(cat "$dir/worker-$1.pid")
  kill "-$2" "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 300; then kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 50 || true; fi
}
worker_started() { # index: the last start logged "worker started"
  awk '/^=== soak: start/ {ok=0} /worker started/ {ok=1} END {exit !ok}' "$dir/logs/worker-$1.log"
}
start_worker 0
start_worker 1

restart_redis() {
  local rdir=$svc/redis
  kill -KILL "$(cat "$rdir/pid")" 2>/dev/null || true
  wait_gone "$(cat "$rdir/pid")" 100 || true
  sleep 1
  redis-server --bind 127.0.0.1 --port "$ASSETSCAN_TEST_REDIS_PORT" --save '' --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --dir "$rdir" --logfile "$rdir/log" --daemonize yes --pidfile "$rdir/pid"
  for _ in $(seq 100); do redis-cli -p "$ASSETSCAN_TEST_REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
restart_minio() {
  local mdir=$svc/minio
  kill -KILL "$(cat "$mdir/pid")" 2>/dev/null || true
  wait_gone "$(cat "$mdir/pid")" 100 || true
  sleep 1
  MINIO_ROOT_USER=$ASSETSCAN_TEST_S3_ACCESS_KEY MINIO_ROOT_PASSWORD=$ASSETSCAN_TEST_S3_SECRET_KEY MINIO_BROWSER=off MINIO_UPDATE=off \
    MINIO_NOTIFY_REDIS_ENABLE_ASSETSCAN=on MINIO_NOTIFY_REDIS_ADDRESS_ASSETSCAN=127.0.0.1:$ASSETSCAN_TEST_REDIS_PORT \
    MINIO_NOTIFY_REDIS_KEY_ASSETSCAN=assetscan:events MINIO_NOTIFY_REDIS_FORMAT_ASSETSCAN=access \
    nohup "$ASSETSCAN_TEST_MINIO_BIN" server "$mdir/data" --address "$ASSETSCAN_TEST_S3_ENDPOINT" --quiet \
    >>"$mdir/log" 2>&1 &
  echo $! >"$mdir/pid"
  for _ in $(seq 300); do curl -fsS "http://$ASSETSCAN_TEST_S3_ENDPOINT/minio/health/ready" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

# ---- chaos ------------------------------------------------------------------
# A supervisor restarts a worker that exited by itself (as systemd or
# Kubernetes would), a second later; $dir/exits counts those exits.
supervise() {
  local i pid n=0
  while :; do
    for i in 0 1; do
      [ -f "$dir/worker-$i.chaos" ] && continue
      pid=$(cat "$dir/worker-$i.pid" 2>/dev/null) || continue
      alive "$pid" && continue
      sleep 1
      [ -f "$dir/worker-$i.chaos" ] && continue
      n=$((n + 1)); echo "$n" >"$dir/exits"
      echo "$(date +%T) worker $i exited by itself; restarted" >>"$dir/logs/chaos.log"
      start_worker "$i"
    done
    sleep 0.5
  done
}

# wait_scan_start index seconds: returns once worker index logs "scan
# started" (so the kill lands mid-scan), or after seconds.
wait_scan_start() {
  timeout "$2" grep -m1 -q '"scan started"' <(timeout "$(($2 + 5))" tail -n0 -F "$dir/logs/worker-$1.log" 2>/dev/null) || true
}

# Every kill: pick a random worker, wait (up to $interval s) until it starts
# a scan, SIGKILL it a few ms later, count the work dirs it left, restart it.
# At a third and two thirds of the kills also SIGKILL Redis and restart it
# from its AOF, at half MinIO. Counters go to $dir/chaos.
chaos() {
  local k=0 w=0 redis=0 minio=0 mid=0 left=0 n
  RANDOM=$seed # a subshell reseeds RANDOM
  local r1=$(( (kills + 2) / 3 )) r2=$(( (2 * kills + 2) / 3 )) m1=$(( (kills + 1) / 2 ))
  [ "$r2" -eq "$r1" ] && r2=$((r1 + 1))
  for ((k = 1; k <= kills; k++)); do
    sleep "$(( (interval + 1) / 2 ))"
    w=$((RANDOM % 2))
    wait_scan_start "$w" "$interval"
    sleep "0.0$((RANDOM % 5))"
    touch "$dir/worker-$w.chaos"
    kill_worker "$w" KILL
    n=0
    [ -d "$dir/work-$w/scans" ] && n=$(find "$dir/work-$w/scans" -mindepth 1 -maxdepth 1 -name 'scan-*' | wc -l)
    [ "$n" -gt 0 ] && mid=$((mid + 1)) && left=$((left + n))
    start_worker "$w"
    rm -f "$dir/worker-$w.chaos"
    echo "$(date +%T) kill $k: worker $w, $n work dirs left" >>"$dir/logs/chaos.log"
    if [ "$k" -eq "$r1" ] || [ "$k" -eq "$r2" ]; then
      restart_redis || { echo "redis did not come back" >>"$dir/logs/chaos.log"; echo "failed" >"$dir/chaos.failed"; }
      redis=$((redis + 1)); echo "$(date +%T) redis restart $redis" >>"$dir/logs/chaos.log"
    fi
    if [ "$k" -eq "$m1" ]; then
      restart_minio || { echo "minio did not come back" >>"$dir/logs/chaos.log"; echo "failed" >"$dir/chaos.failed"; }
      minio=$((minio + 1)); echo "$(date +%T) minio restart $minio" >>"$dir/logs/chaos.log"
    fi
    echo "$k $redis $minio $mid $left" >"$dir/chaos"
  done
}
echo "0 0 0 0 0" >"$dir/chaos"
echo 0 >"$dir/exits"
supervise &
supervise_pid=$!
chaos &
chaos_pid=$!

# Submissions are spread over the chaos window, so kills hit queued and
# running scans alike.
pace_ms=$(( kills * interval * 1000 / scans ))
"$client" submit -api "$api" -token "$dir/token" -uploads soak-uploads -n "$scans" -eicar-every 10 \
  -interval "${pace_ms}ms" -manifest "$dir/manifest.jsonl" 2>&1 | sed -u 's/^/  /' >&2
wait "$chaos_pid" || true
chaos_pid=
read -r n_kills n_redis n_minio n_mid n_left <"$dir/chaos"
log "chaos over: $n_kills worker kills ($n_mid mid-scan, leaving $n_left work dirs), $n_redis Redis restarts, $n_minio MinIO restarts, $(cat "$dir/exits") worker exits restarted"
[ -f "$dir/chaos.failed" ] && { log "a service did not come back"; exit 2; }

"$client" wait -api "$api" -token "$dir/token" -manifest "$dir/manifest.jsonl" -timeout "${wait_s}s" 2>&1 | sed -u 's/^/  /' >&2

# ---- work dirs --------------------------------------------------------------
count_workdirs() {
  local n=0 i
  for i in 0 1; do
    [ -d "$dir/work-$i/scans" ] || continue
    n=$((n + $(find "$dir/work-$i/scans" -mindepth 1 -maxdepth 1 -name 'scan-*' | wc -l)))
  done
  echo "$n"
}
kill "$supervise_pid" 2>/dev/null || true
wait "$supervise_pid" 2>/dev/null || true
supervise_pid=
n_exits=$(cat "$dir/exits")
for i in 0 1; do kill_worker "$i" TERM; done
left_at_end=$(count_workdirs)
# A final clean start/stop: each worker removes what a killed run left.
for i in 0 1; do
  start_worker "$i"
  for _ in $(seq 300); do worker_started "$i" && break; sleep 0.2; done
  worker_started "$i" || log "worker $i did not log 'worker started' within 60 s"
  kill_worker "$i" TERM
  rm -f "$dir/worker-$i.pid"
done
workdirs_left=$(count_workdirs)
log "work dirs: $left_at_end after the final SIGTERM, $workdirs_left after a clean start/stop"

rc=0
"$client" report -api "$api" -token "$dir/token" -manifest "$dir/manifest.jsonl" -reports soak-reports \
  -workdirs-left "$workdirs_left" -worker-kills "$n_kills" -midscan-kills "$n_mid" -killed-workdirs "$n_left" \
  -worker-exits "$n_exits" -redis-restarts "$n_redis" -minio-restarts "$n_minio" \
  -wall "$(( $(date +%s) - t0 ))s" || rc=$?
if [ "$rc" -ne 0 ] || [ "$keep" = 1 ] || [ "$made_dir" = 0 ]; then
  log "logs and manifest kept in $dir"
else
  cleanup
  rm -rf "$dir"
fi
exit "$rc"
