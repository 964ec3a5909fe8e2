#!/usr/bin/env bash
# The whole pipeline against what a user would script, in one run on one
# machine, printed as one table (every figure with its ratio to the
# alternative):
#
#   1. N small packages (npm app + lock file, half with lodash 4.17.11;
#      Python dist-info and requirements; a jar with pom.properties; a Go
#      module; random blobs): the worker pipeline (assetscan serve + 1, then
#      2 workers; real Redis, MinIO, clamd; all submitted through the API)
#      vs the scripted alternative (per package: tar/unzip, `trivy fs`
#      vuln+secret offline on the same DB, `clamdscan --fdpass --multiscan`)
#      vs `assetscan scan DIR` (one process). Packages/s, CPU-s per package
#      (every process involved), verdicts checked against the expected ones.
#   2. Large packages (default 1 GB and 5 GB; many small files and three
#      large ones): wall time, CPU-s per GB by stage (from the worker's
#      JSON log), worker peak RSS (VmHWM), peak work disk / expanded size;
#      the scripted alternative on the first size.
#   3. Resubmission of identical content (reuse path): submit → verdict p50/p99.
#   4. Re-evaluation of stored verdicts (MinIO + Redis) under a new policy.
#   5. Submit → worker "scan started" p50/p99 with idle workers.
#
# Usage: bench/pipeline.sh [--quick | --release]
#   --quick    smoke run (about 2 minutes on an idle 2-core machine)
#   --release  adds a 20 GB package
# Sizes (env): BENCH_SMALL_N (100), BENCH_LARGE_BYTES ("1000000000 5000000000"),
#   BENCH_RESUB_N (50), BENCH_START_N (50), BENCH_REEVAL_N (10000),
#   BENCH_SCRIPT_JOBS (2: packages the scripted alternative runs at once,
#   like a worker's default --concurrency), BENCH_LARGE_ALT (first|all|none).
# Ports (env): BENCH_REDIS_PORT (16601), BENCH_MINIO_PORT (19601),
#   BENCH_API_PORT (18601); work dir BENCH_DIR (a new temp dir, removed at
#   the end unless BENCH_KEEP=1). The trivy CLI is built with
#   bench/trivy-cli.sh into $TRIVY_CLI (/tmp/assetscan-trivy-cli/trivy)
#   when missing; Redis, MinIO and clamd come from scripts/services.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
export GOEXPERIMENT=jsonv2
export PATH=$PATH:/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin

mode=full
case ${1:-} in
--quick) mode=quick ;;
--release) mode=release ;;
"") ;;
*) echo "usage: $0 [--quick|--release]" >&2; exit 2 ;;
esac
if [ $mode = quick ]; then
  small_n=${BENCH_SMALL_N:-20}; large_sizes=${BENCH_LARGE_BYTES:-200000000}
  resub_n=${BENCH_RESUB_N:-10}; start_n=${BENCH_START_N:-10}; reeval_n=${BENCH_REEVAL_N:-1000}
else
  small_n=${BENCH_SMALL_N:-100}; large_sizes=${BENCH_LARGE_BYTES:-"1000000000 5000000000"}
  resub_n=${BENCH_RESUB_N:-50}; start_n=${BENCH_START_N:-50}; reeval_n=${BENCH_REEVAL_N:-10000}
  [ $mode = release ] && large_sizes="$large_sizes 20000000000"
fi
jobs=${BENCH_SCRIPT_JOBS:-2}
large_alt=${BENCH_LARGE_ALT:-first}
redis_port=${BENCH_REDIS_PORT:-16601}
minio_port=${BENCH_MINIO_PORT:-19601}
api_port=${BENCH_API_PORT:-18601}
dir=${BENCH_DIR:-$(mktemp -d /tmp/assetscan-bench-pipeline.XXXXXX)}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
log() { echo "pipeline: $*" >&2; }

# ---- the machine, before anything runs
machine="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---- what it needs (Debian)
need=()
command -v jq >/dev/null || need+=(jq)
[ -x /usr/bin/time ] || need+=(time)
command -v unzip >/dev/null || need+=(unzip)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

bin=$dir/bin
mkdir -p "$bin"
log "building assetscan and bench/cmd/pipebench (a cold build compiles trivy: 10-20 min)"
go build -o "$bin/assetscan" ./cmd/assetscan
go build -o "$bin/pipebench" ./bench/cmd/pipebench
trivy=${TRIVY_CLI:-/tmp/assetscan-trivy-cli/trivy}
if [ ! -x "$trivy" ]; then
  log "building the trivy CLI (same module version) into $trivy"
  mkdir -p "$(dirname "$trivy")"
  bench/trivy-cli.sh "$trivy" >/dev/null
fi
"$bin/assetscan" db build-fixture "$dir/db" >/dev/null

# ---- services: Redis, MinIO, clamd on our own ports
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ASSETSCAN_TEST_REDIS_PORT=$redis_port ASSETSCAN_TEST_MINIO_PORT=$minio_port scripts/services.sh stop "$dir/svc" >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP:-}" != 1 ]; then rm -rf "$dir"; else log "kept $dir"; fi
}
trap cleanup EXIT
ASSETSCAN_TEST_REDIS_PORT=$redis_port ASSETSCAN_TEST_MINIO_PORT=$minio_port scripts/services.sh start "$dir/svc"
# shellcheck disable=SC1091
. "$dir/svc/env"
redis_pid=$(cat "$dir/svc/redis/pid")
minio_pid=$(cat "$dir/svc/minio/pid")
clamd_pid=$(cat "$dir/svc/clamd/clamd.pid")
clamd_conf=$ASSETSCAN_TEST_CLAMD_CONF
eval "$("$bin/pipebench" keys -out "$dir/keys.yaml")" # TOKEN, STAFF_TOKEN
api=http://127.0.0.1:$api_port

svc_env=(
  ASSETSCAN_REDIS_ADDR="$ASSETSCAN_TEST_REDIS_ADDR"
  ASSETSCAN_S3_ENDPOINT="$ASSETSCAN_TEST_S3_ENDPOINT"
  ASSETSCAN_S3_ACCESS_KEY="$ASSETSCAN_TEST_S3_ACCESS_KEY"
  ASSETSCAN_S3_SECRET_KEY="$ASSETSCAN_TEST_S3_SECRET_KEY"
  ASSETSCAN_REPORTS_BUCKET=bench-reports
  ASSETSCAN_KEYS_FILE="$dir/keys.yaml"
  ASSETSCAN_DB_DIR="$dir/db"
  ASSETSCAN_CLAMD="$ASSETSCAN_TEST_CLAMD"
  ASSETSCAN_CLAMD_CONF="$ASSETSCAN_TEST_CLAMD_CONF" # signatures known: findings may be reused
  ASSETSCAN_LOG_LEVEL=info
)

wait_url() { # url, seconds
  for _ in $(seq $(($2 * 10))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  log "$1 not ready after $2 s"; return 1
}

env "${svc_env[@]}" ASSETSCAN_LISTEN=127.0.0.1:$api_port "$bin/assetscan" serve >"$dir/api.log" 2>&1 &
api_pid=$!; pids+=("$api_pid")
wait_url "$api/readyz" 60

nworkers=0
# start_worker: starts worker number $nworkers, waits for its /readyz (DB
# open, malware canary passing); sets worker_pid, worker_log, worker_work.
start_worker() {
  local n=$nworkers port=$((api_port + 1 + nworkers))
  nworkers=$((nworkers + 1))
  worker_work=$dir/work-$n
  worker_log=$dir/worker-$n.log
  mkdir -p "$worker_work"
  env "${svc_env[@]}" ASSETSCAN_WORK_DIR="$worker_work" ASSETSCAN_HEALTH_LISTEN=127.0.0.1:$port \
    "$bin/assetscan" worker >"$worker_log" 2>&1 &
  worker_pid=$!; pids+=("$worker_pid")
  wait_url "http://127.0.0.1:$port/readyz" 120
}
stop_worker() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }
cpu_of() { # pid -> utime+stime in seconds
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }; set -- $s
  awk -v u="${12}" -v k="${13}" 'BEGIN { printf "%.2f", (u + k) / 100 }'
}
svc_pids() { echo "api=$api_pid,redis=$redis_pid,minio=$minio_pid,clamd=$clamd_pid"; }
# restart_clamd: a clamd with an empty scan cache (it caches the verdicts
# of files by hash), for contenders that scan the same bytes in turn. Only
# while no worker runs.
restart_clamd() {
  scripts/clamd.sh stop "$dir/svc/clamd" >/dev/null
  scripts/clamd.sh start "$dir/svc/clamd" >/dev/null
  clamd_pid=$(cat "$dir/svc/clamd/clamd.pid")
}

# ---- the scripted alternative, one package: extract, trivy fs, clamdscan
cat >"$dir/script-one.sh" <<'SCRIPT'
#!/usr/bin/env bash
# What an operator would script for one package; prints "name<TAB>pass|fail".
set -uo pipefail
pkg=$1; trivy=$2; db=$3; conf=$4
t=$(mktemp -d); mkdir "$t/x"
case $pkg in
*.zip) unzip -q "$pkg" -d "$t/x" ;;
*.tar.gz|*.tgz) tar -xzf "$pkg" -C "$t/x" ;;
*) tar -xf "$pkg" -C "$t/x" ;;
esac
# --cache-backend memory: with the default fs cache, parallel runs wait on
# its lock.
TRIVY_NO_PROGRESS=true "$trivy" fs --cache-dir "$db" --cache-backend memory --skip-db-update --skip-java-db-update --offline-scan \
  --skip-version-check --disable-telemetry --scanners vuln,secret --format json --quiet -o "$t/r.json" "$t/x" || { echo "trivy failed on $pkg" >&2; }
clamdscan -c "$conf" --fdpass --multiscan --no-summary --quiet "$t/x" >/dev/null 2>&1; av=$?
bad=$(jq '[.Results[]? | (.Vulnerabilities[]?, .Secrets[]?) | select(.Severity == "HIGH" or .Severity == "CRITICAL")] | length' "$t/r.json" 2>/dev/null || echo err)
v=pass
{ [ "$bad" != 0 ] || [ "$av" != 0 ]; } && v=fail
printf '%s\t%s\n' "$(basename "$pkg")" "$v"
rm -rf "$t"
SCRIPT
chmod +x "$dir/script-one.sh"

# run_timed OUT CMD...: runs CMD with /usr/bin/time; OUT gets "wall user sys"
# (children included) and clamd's CPU over the run is added by the caller.
run_timed() {
  local out=$1 rc=0; shift
  /usr/bin/time -f '%e %U %S' -o "$out.raw" "$@" || rc=$?
  tail -1 "$out.raw" >"$out" # time adds "Command exited with non-zero status N" first
  return $rc
}
# check_verdicts FILE(name<TAB>verdict) EXPECTED -> "right/total"
check_verdicts() {
  awk -F'\t' 'NR==FNR { want[$1]=$2; next } { n++; if (want[$1]==$2) ok++ } END { printf "%d/%d", ok, n }' "$2" "$1"
}

# ============ 1. small packages
log "1. generating 4 sets of $small_n small packages"
# One set per contender, no file shared between sets: clamd caches the
# verdict of every file it has seen (by hash), so a contender scanning
# bytes another one scanned before would get them almost for free.
for set in 1 2 3 4; do
  "$bin/pipebench" gen-small -set $set -dir "$dir/small-$set" -expected "$dir/expected-$set.tsv" -n "$small_n" >"$dir/gen-small-$set.json"
done
sed 's/^/w1-/' "$dir/expected-1.tsv" >"$dir/expected-w1.tsv"
sed 's/^/w2-/' "$dir/expected-2.tsv" >"$dir/expected-w2.tsv"
"$bin/pipebench" upload -dir "$dir/small-1" -bucket bench-uploads -key-prefix w1- >/dev/null
"$bin/pipebench" upload -dir "$dir/small-2" -bucket bench-uploads -key-prefix w2- >/dev/null

start_worker; w1_pid=$worker_pid; w1_log=$worker_log
log "1a. pipeline, 1 worker"
"$bin/pipebench" batch -api "$api" -token "$TOKEN" -expected "$dir/expected-w1.tsv" -asset-prefix pipe1 -logs "$w1_log" \
  -pids "$(svc_pids),worker1=$w1_pid" >"$dir/r-pipe1.json"
start_worker; w2_pid=$worker_pid; w2_log=$worker_log
log "1b. pipeline, 2 workers"
"$bin/pipebench" batch -api "$api" -token "$TOKEN" -expected "$dir/expected-w2.tsv" -asset-prefix pipe2 -logs "$w1_log,$w2_log" \
  -pids "$(svc_pids),worker1=$w1_pid,worker2=$w2_pid" >"$dir/r-pipe2.json"

log "1c. scripted alternative ($jobs at a time)"
c0=$(cpu_of "$clamd_pid")
run_timed "$dir/t-script" bash -c "ls '$dir'/small-3/* | xargs -P '$jobs' -I{} '$dir/script-one.sh' {} '$trivy' '$dir/db' '$clamd_conf' >'$dir/v-script.tsv'"
c1=$(cpu_of "$clamd_pid")
echo "$c0 $c1" >"$dir/t-script-clamd"

log "1d. assetscan scan DIR (one process, --jobs $jobs)"
c0=$(cpu_of "$clamd_pid")
rc=0
run_timed "$dir/t-cli" "$bin/assetscan" scan --jobs "$jobs" --db-dir "$dir/db" --clamd "$ASSETSCAN_TEST_CLAMD" --format json "$dir/small-4" \
  >"$dir/v-cli.json" 2>"$dir/cli.err" || rc=$?
c1=$(cpu_of "$clamd_pid")
echo "$c0 $c1" >"$dir/t-cli-clamd"
[ "$rc" -le 1 ] || { log "assetscan scan DIR exited $rc:"; tail -5 "$dir/cli.err" >&2; }
jq -r '[.object.name, .verdict] | @tsv' "$dir/v-cli.json" >"$dir/v-cli.tsv" 2>/dev/null || true

# ============ 3. resubmission of identical content (reuse), 5. start latency
log "3. $resub_n resubmissions of identical content"
reuse_key=w1-$(sed -n 2p "$dir/expected-1.tsv" | cut -f1)
"$bin/pipebench" seq -api "$api" -token "$TOKEN" -mode reuse -key "$reuse_key" -n "$resub_n" -asset-prefix resub \
  -logs "$w1_log,$w2_log" >"$dir/r-resub.json"
# The alternative has no reuse: it rescans. One package, 5 times, sequentially.
for i in 1 2 3 4 5; do
  s=$(date +%s%N); "$dir/script-one.sh" "$dir/small-1/${reuse_key#w1-}" "$trivy" "$dir/db" "$clamd_conf" >/dev/null; e=$(date +%s%N)
  echo $(((e - s) / 1000000))
done | sort -n >"$dir/t-script-one"
log "5. $start_n tiny packages one at a time (idle workers)"
"$bin/pipebench" seq -api "$api" -token "$TOKEN" -mode fresh -n "$start_n" -asset-prefix start \
  -logs "$w1_log,$w2_log" >"$dir/r-start.json"
stop_worker "$w1_pid"; stop_worker "$w2_pid"

# ============ 2. large packages, a fresh worker each (VmHWM is per process)
first=1
for size in $large_sizes; do
  log "2. a $size-byte package"
  pkg=$dir/large-$size.tar
  "$bin/pipebench" gen-large -out "$pkg" -bytes "$size" -seed "$size" >"$dir/gen-large-$size.json"
  restart_clamd
  start_worker
  "$bin/pipebench" large -api "$api" -token "$TOKEN" -file "$pkg" -work-dir "$worker_work" -log "$worker_log" \
    -pids "$(svc_pids),worker=$worker_pid" >"$dir/r-large-$size.json"
  stop_worker "$worker_pid"
  if [ "$large_alt" = all ] || { [ "$large_alt" = first ] && [ $first = 1 ]; }; then
    log "2. scripted alternative on the $size-byte package"
    restart_clamd
    c0=$(cpu_of "$clamd_pid")
    run_timed "$dir/t-large-alt-$size" "$dir/script-one.sh" "$pkg" "$trivy" "$dir/db" "$clamd_conf" >/dev/null
    c1=$(cpu_of "$clamd_pid")
    echo "$c0 $c1" >"$dir/t-large-alt-$size-clamd"
  fi
  first=0
  rm -f "$pkg"
  curl -fsS -o /dev/null "$api/healthz" || true
done

# ============ 4. re-evaluation of stored verdicts (real MinIO + Redis)
log "4. seeding $reeval_n verdicts and re-evaluating them"
"$bin/pipebench" reeval -redis "$ASSETSCAN_TEST_REDIS_ADDR" -n "$reeval_n" -bucket "bench-reeval-$$" \
  -prefix "bench-reeval-$$:" >"$dir/r-reeval.json"

# ============ the table
ended_load=$(cut -d' ' -f1-3 /proc/loadavg)
j() { jq -r "$2" "$dir/$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f×", a / b; else print "—" }'; }
alt_cpu() { # timefile clamdfile -> cpu seconds (children + clamd)
  read -r _ u s <"$1"; read -r c0 c1 <"$2"
  awk -v u="$u" -v s="$s" -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", u + s + b - a }'
}
n=$small_n
sw=$(cut -d' ' -f1 "$dir/t-script"); scpu=$(alt_cpu "$dir/t-script" "$dir/t-script-clamd")
s_rate=$(awk -v n="$n" -v w="$sw" 'BEGIN { printf "%.2f", n / w }'); s_cpp=$(awk -v n="$n" -v c="$scpu" 'BEGIN { printf "%.3f", c / n }')
cw=$(cut -d' ' -f1 "$dir/t-cli"); ccpu=$(alt_cpu "$dir/t-cli" "$dir/t-cli-clamd")
c_rate=$(awk -v n="$n" -v w="$cw" 'BEGIN { printf "%.2f", n / w }'); c_cpp=$(awk -v n="$n" -v c="$ccpu" 'BEGIN { printf "%.3f", c / n }')
p1_rate=$(j r-pipe1.json .pkgs_per_s); p1_cpp=$(j r-pipe1.json .cpu_s_per_pkg)
p2_rate=$(j r-pipe2.json .pkgs_per_s); p2_cpp=$(j r-pipe2.json .cpu_s_per_pkg)
p1_ok="$(j r-pipe1.json '"\(.packages - .wrong)/\(.packages)"')"
p2_ok="$(j r-pipe2.json '"\(.packages - .wrong)/\(.packages)"')"
s_ok=$(check_verdicts "$dir/v-script.tsv" "$dir/expected-3.tsv")
c_ok=$(check_verdicts "$dir/v-cli.tsv" "$dir/expected-4.tsv")
one_p50=$(sed -n "$(( ($(wc -l <"$dir/t-script-one") + 1) / 2 ))p" "$dir/t-script-one")

echo
echo "## bench/pipeline.sh ($mode) — $started_at"
echo
echo "Machine: $machine; load average at the end $ended_load."
echo "Scripted alternative: tar/unzip + trivy CLI ($("$trivy" --version 2>/dev/null | head -1)) fs vuln+secret offline + clamdscan --fdpass --multiscan, $jobs packages at a time."
echo
echo "| # | what | assetscan | alternative | ratio |"
echo "|---|---|---|---|---|"
printf '| 1 | %d small packages, pipeline 1 worker (API+Redis+MinIO+clamd) | **%s pkg/s**, %s CPU-s/pkg, verdicts %s right | script: %s pkg/s, %s CPU-s/pkg, %s right | %s speed, %s CPU |\n' \
  "$n" "$p1_rate" "$p1_cpp" "$p1_ok" "$s_rate" "$s_cpp" "$s_ok" "$(ratio "$p1_rate" "$s_rate")" "$(ratio "$s_cpp" "$p1_cpp")"
printf '| 1 | same, pipeline 2 workers | **%s pkg/s**, %s CPU-s/pkg, %s right | script: %s pkg/s | %s speed, %s CPU |\n' \
  "$p2_rate" "$p2_cpp" "$p2_ok" "$s_rate" "$(ratio "$p2_rate" "$s_rate")" "$(ratio "$s_cpp" "$p2_cpp")"
printf '| 1 | same, `assetscan scan DIR --jobs %s` (one process) | **%s pkg/s**, %s CPU-s/pkg, %s right | script: %s pkg/s | %s speed, %s CPU |\n' \
  "$jobs" "$c_rate" "$c_cpp" "$c_ok" "$s_rate" "$(ratio "$c_rate" "$s_rate")" "$(ratio "$s_cpp" "$c_cpp")"
first=1
for size in $large_sizes; do
  f=r-large-$size.json
  gb=$(j "$f" '.bytes/1e9*10|round/10')
  stages=$(jq -r '[.stages | to_entries[] | select(.key != "queue") | "\(.key) \(.value.wall_s) s / \(.value.cpu_s_per_gb) CPU-s/GB"] | join("; ")' "$dir/$f")
  clamd_share=$(jq -r '.stages.checks.cpu_by_process.clamd // 0' "$dir/$f")
  alt="—"; rt="—"
  if [ -f "$dir/t-large-alt-$size" ]; then
    aw=$(cut -d' ' -f1 "$dir/t-large-alt-$size"); acpu=$(alt_cpu "$dir/t-large-alt-$size" "$dir/t-large-alt-$size-clamd")
    alt="script: $aw s, $(awk -v c="$acpu" -v g="$gb" 'BEGIN { printf "%.1f", c / g }') CPU-s/GB"
    rt="$(ratio "$aw" "$(j "$f" .wall_s)") speed"
  fi
  printf '| 2 | %s GB package (%s files; %s): %s | **%s s** submit→verdict (worker busy %s s), %s CPU-s/GB (clamd %s CPU-s in checks); %s; worker peak RSS **%s MiB**; peak work disk **%s× expanded** | %s | %s |\n' \
    "$gb" "$(jq -r '"\(.small_files) small + \(.large_files) large"' "$dir/gen-large-$size.json")" "tar" "$(j "$f" .verdict)" \
    "$(j "$f" '.verdict_s // .wall_s')" "$(j "$f" .wall_s)" "$(j "$f" .cpu_s_per_gb)" "$clamd_share" "$stages" "$(j "$f" '.worker_peak_rss_bytes/1048576|round')" \
    "$(j "$f" .peak_work_disk_over_expanded)" "$alt" "$rt"
done
printf '| 3 | resubmission of identical content, %s times (reuse: same bytes, new asset ids) | submit→verdict **p50 %s ms, p99 %s ms** (%s of %s reused) | script rescans: %s ms (median of 5) | %s |\n' \
  "$resub_n" "$(j r-resub.json .verdict_p50_ms)" "$(j r-resub.json .verdict_p99_ms)" "$(j r-resub.json .reused)" "$resub_n" "$one_p50" "$(ratio "$one_p50" "$(j r-resub.json .verdict_p50_ms)")"
printf '| 4 | re-evaluate %s stored verdicts under a new policy (MinIO + Redis, `reeval.Evaluator.Apply`) | **%s s** (%s verdicts/s, %s changed) | rescanning them at the 2-worker rate: %s s | %s |\n' \
  "$(j r-reeval.json .seeded)" "$(j r-reeval.json .apply_s)" "$(j r-reeval.json .verdicts_per_s)" "$(j r-reeval.json .changed)" \
  "$(awk -v n="$(j r-reeval.json .seeded)" -v r="$p2_rate" 'BEGIN { printf "%.0f", n / r }')" \
  "$(ratio "$(awk -v n="$(j r-reeval.json .seeded)" -v r="$p2_rate" 'BEGIN { print n / r }')" "$(j r-reeval.json .apply_s)")"
printf '| 5 | submit → worker "scan started", idle workers, %s tiny packages | **p50 %s ms, p99 %s ms** (submit→verdict p50 %s ms, p99 %s ms) | — (a script has no queue) | — |\n' \
  "$start_n" "$(j r-start.json .start_p50_ms)" "$(j r-start.json .start_p99_ms)" "$(j r-start.json .verdict_p50_ms)" "$(j r-start.json .verdict_p99_ms)"
echo
echo "CPU-s count every process involved: API, workers, Redis, MinIO and clamd for the pipeline; the script's"
echo "children (tar, trivy, clamdscan, jq) and clamd for the alternative; the CLI and clamd for assetscan scan."
for f in r-pipe1.json r-pipe2.json; do
  echo "$f CPU by process: $(jq -c .cpu_by_process "$dir/$f")"
done
for size in $large_sizes; do echo "large $size: $(jq -c '{stages: .stages, checks: .check_wall_s, cpu: .cpu_by_process, upload_s}' "$dir/r-large-$size.json")"; done
bad=$(jq -s '[.[] | .wrong] | add' "$dir/r-pipe1.json" "$dir/r-pipe2.json")
if [ "$bad" != 0 ] || [ "$s_ok" != "$n/$n" ] || [ "$c_ok" != "$n/$n" ]; then
  echo "WARNING: some verdicts differ from the expected ones:"; jq -c '.wrong_sample // empty' "$dir/r-pipe1.json" "$dir/r-pipe2.json"
fi
