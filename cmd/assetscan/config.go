package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan/api"
	"github.com/assetscan/assetscan/callbacks"
	"github.com/assetscan/assetscan/internal/keyslot"
	"github.com/assetscan/assetscan/queue"
	"github.com/assetscan/assetscan/storage"
)

// serviceConfig is the configuration of `serve` and `worker`. Each field
// has a flag and an ASSETSCAN_* environment variable (the flag wins); the
// README's configuration table lists them. Validate is called at start.
type serviceConfig struct {
	// RedisAddr is host:port of Redis (ASSETSCAN_REDIS_ADDR); a
	// comma-separated list means Redis Cluster nodes, or Sentinels when
	// RedisMasterName is set. Production Redis must run with
	// maxmemory-policy noeviction.
	RedisAddr string
	// RedisMasterName selects Redis Sentinel failover with this master
	// name (ASSETSCAN_REDIS_MASTER_NAME).
	RedisMasterName string
	RedisPassword   string // ASSETSCAN_REDIS_PASSWORD
	// RedisDB is the database number (ASSETSCAN_REDIS_DB); a Redis Cluster
	// has only database 0.
	RedisDB int
	// KeyPrefix namespaces assetscan's own Redis keys (ASSETSCAN_REDIS_PREFIX).
	KeyPrefix string
	// QueuePrefix namespaces the asynq queues (ASSETSCAN_QUEUE_PREFIX):
	// "<prefix>scan-small", "<prefix>scan-large", "<prefix>callbacks".
	// Deployments sharing one Redis (a Cluster has only database 0) give
	// each its own KeyPrefix and QueuePrefix. Default empty.
	QueuePrefix string

	S3 storage.S3Config // ASSETSCAN_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _SECURE, _REGION
	// ReportsBucket holds verdicts, findings and the policies' record
	// (ASSETSCAN_REPORTS_BUCKET).
	ReportsBucket string
	// AssetBuckets lists the buckets submissions may point at
	// (ASSETSCAN_ASSET_BUCKETS, comma-separated). Default empty: any bucket
	// but the reserved ones (reports and DB buckets), which are never
	// allowed even when listed.
	AssetBuckets string
	// AssetKeyLayout binds object keys to submissions
	// (ASSETSCAN_ASSET_KEY_LAYOUT), e.g. "{seller_id}/": a key must start
	// with it, placeholders {seller_id}, {asset_id}, {kind} filled in.
	// Default empty: no binding.
	AssetKeyLayout string
	// CallbackAllow lists CIDR ranges, addresses and host names callbacks
	// may reach although the egress policy refuses them
	// (ASSETSCAN_CALLBACK_ALLOW, comma-separated; test setups). Default empty.
	CallbackAllow string
	// CallbackAllowHTTP permits http:// callback receivers
	// (ASSETSCAN_CALLBACK_ALLOW_HTTP). Default false: https only.
	CallbackAllowHTTP bool

	// Listen is the API's address (ASSETSCAN_LISTEN).
	Listen string
	// KeysFile lists the API keys (hashed) and their roles
	// (ASSETSCAN_KEYS_FILE); required for serve. Format: auth package doc.
	KeysFile string
	// EventsList, when set, makes serve consume MinIO's bucket events from
	// this Redis list and scan every upload (ASSETSCAN_EVENTS_LIST).
	EventsList string
	// EventsRedisAddr is the Redis MinIO's notification target writes to
	// (ASSETSCAN_EVENTS_REDIS_ADDR); default: --redis-addr.
	EventsRedisAddr string
	// EventsRedisDB is the Redis database MinIO's notification target
	// writes to (ASSETSCAN_EVENTS_REDIS_DB, default 0).
	EventsRedisDB int
	// EventsIDs says where an upload's asset and seller ids come from:
	// "metadata" (X-Amz-Meta-Asset-Id / -Seller-Id), "key"
	// (<seller>/<asset>/<file>), or "metadata,key" (ASSETSCAN_EVENTS_IDS).
	EventsIDs string
	// TagVerdicts tags every scanned object assetscan-verdict=pass|fail|error
	// (ASSETSCAN_TAG_VERDICTS).
	TagVerdicts bool
	// DBBucket, when set, makes workers poll it for DBs published with
	// `assetscan db publish` and swap them in (ASSETSCAN_DB_BUCKET).
	DBBucket string
	// DBPollInterval is how often workers look for a newer DB
	// (ASSETSCAN_DB_POLL_INTERVAL).
	DBPollInterval time.Duration
	// PolicyDir holds policy files applied by POST /v1/policies/reload and
	// at start when newer than the stored ones (ASSETSCAN_POLICY_DIR).
	PolicyDir string
	// QueueUIWritable lets security staff change the queue from asynqmon
	// at /queues/ (delete, archive, run tasks); default false: read-only
	// (ASSETSCAN_QUEUE_UI_WRITABLE).
	QueueUIWritable bool
	// HealthListen is the worker's /healthz and /readyz address
	// (ASSETSCAN_HEALTH_LISTEN); empty disables it.
	HealthListen string

	// WorkDir holds the per-scan work dirs (ASSETSCAN_WORK_DIR); it needs
	// room for the largest asset plus its expansion.
	WorkDir string
	// DBDir is the trivy cache dir (ASSETSCAN_DB_DIR); required for worker.
	DBDir string
	// Clamd is the clamd address (ASSETSCAN_CLAMD): unix:/path or tcp:host:port.
	Clamd string
	// ClamdConcurrency: files in flight to clamd per scan
	// (ASSETSCAN_CLAMD_CONCURRENCY); 0 (default): twice clamd's MaxThreads
	// with fd passing, 2 with INSTREAM.
	ClamdConcurrency int
	// ClamdMode: how files reach clamd (ASSETSCAN_CLAMD_MODE): auto
	// (default: fd passing over a unix socket, INSTREAM over TCP), fdpass,
	// instream. Verdicts name the mode in the malware check's detail.
	ClamdMode string
	// ClamdConf: the clamd.conf of the clamd at --clamd, when this process
	// can read it (ASSETSCAN_CLAMD_CONF): the digest of its
	// DatabaseDirectory is the malware check's identity. Without it the
	// signatures are "unknown" and findings are never reused.
	ClamdConf string
	// CanaryInterval: how often the malware canary runs (ASSETSCAN_CANARY_INTERVAL).
	CanaryInterval time.Duration

	// Concurrency: scans run at once by a worker (ASSETSCAN_CONCURRENCY).
	Concurrency int
	// Queues: queue=weight list served by a worker (ASSETSCAN_QUEUES),
	// e.g. "scan-small=6,scan-large=2" or "scan-large=1".
	Queues string
	// MaxRetry: retries after the first attempt (ASSETSCAN_MAX_RETRY).
	MaxRetry int
	// RetryBase: first retry delay, doubled each time (ASSETSCAN_RETRY_BASE).
	RetryBase time.Duration
	// ShutdownTimeout: how long SIGTERM waits for running scans before
	// handing them back to the queue (ASSETSCAN_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// SweepInterval: how often a worker runs the sweeper (one worker of
	// the fleet per round) that re-enqueues scans without a task and
	// records error for scans past their deadline
	// (ASSETSCAN_SWEEP_INTERVAL, default 30s).
	SweepInterval time.Duration
	// StuckAfter: an unfinished scan with no task in the queue for this
	// long is re-enqueued (ASSETSCAN_STUCK_AFTER, default 2m).
	StuckAfter time.Duration
	// ScanDeadline: a scan with no verdict this long after submission
	// ends in error, with a callback and a tag (ASSETSCAN_SCAN_DEADLINE,
	// default 24h; it must exceed the largest job's time-out, 8h).
	ScanDeadline time.Duration
	// NotReadyAlertAfter: a worker not ready (malware canary failing) for
	// this long logs at error level every minute and sets
	// assetscan_worker_ready 0 (ASSETSCAN_NOT_READY_ALERT_AFTER, default 2m).
	NotReadyAlertAfter time.Duration

	LogLevel string // ASSETSCAN_LOG_LEVEL: debug, info, warn, error

	envErrs []error // malformed ASSETSCAN_* values, reported by validate
}

func (c *serviceConfig) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisAddr, "redis-addr", envOr("ASSETSCAN_REDIS_ADDR", "127.0.0.1:6379"), "Redis host:port")
	fs.StringVar(&c.RedisMasterName, "redis-master-name", os.Getenv("ASSETSCAN_REDIS_MASTER_NAME"), "Redis Sentinel master name (then --redis-addr lists the Sentinels)")
	fs.StringVar(&c.RedisPassword, "redis-password", os.Getenv("ASSETSCAN_REDIS_PASSWORD"), "Redis password")
	fs.IntVar(&c.RedisDB, "redis-db", c.envInt("ASSETSCAN_REDIS_DB", 0), "Redis database number")
	fs.StringVar(&c.KeyPrefix, "redis-prefix", envOr("ASSETSCAN_REDIS_PREFIX", defaultKeyPrefix), "prefix of assetscan's Redis keys")
	fs.StringVar(&c.QueuePrefix, "queue-prefix", os.Getenv("ASSETSCAN_QUEUE_PREFIX"), "prefix of the asynq queue names (deployments sharing one Redis)")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", os.Getenv("ASSETSCAN_S3_ENDPOINT"), "S3 endpoint host:port")
	fs.StringVar(&c.S3.AccessKey, "s3-access-key", os.Getenv("ASSETSCAN_S3_ACCESS_KEY"), "S3 access key")
	fs.StringVar(&c.S3.SecretKey, "s3-secret-key", os.Getenv("ASSETSCAN_S3_SECRET_KEY"), "S3 secret key")
	fs.BoolVar(&c.S3.Secure, "s3-secure", c.envBool("ASSETSCAN_S3_SECURE", false), "use HTTPS for S3")
	fs.StringVar(&c.S3.Region, "s3-region", os.Getenv("ASSETSCAN_S3_REGION"), "S3 region")
	fs.StringVar(&c.ReportsBucket, "reports-bucket", envOr("ASSETSCAN_REPORTS_BUCKET", "assetscan-reports"), "bucket for verdicts and findings")
	fs.StringVar(&c.AssetBuckets, "asset-buckets", os.Getenv("ASSETSCAN_ASSET_BUCKETS"), "buckets submissions may point at, comma-separated; empty: any but the reserved ones")
	fs.StringVar(&c.AssetKeyLayout, "asset-key-layout", os.Getenv("ASSETSCAN_ASSET_KEY_LAYOUT"), "key prefix a submission's key must start with, e.g. {seller_id}/; empty: none")
	fs.StringVar(&c.CallbackAllow, "callback-allow", os.Getenv("ASSETSCAN_CALLBACK_ALLOW"), "CIDR ranges, addresses and host names callbacks may reach although non-public (test setups)")
	fs.BoolVar(&c.CallbackAllowHTTP, "callback-allow-http", c.envBool("ASSETSCAN_CALLBACK_ALLOW_HTTP", false), "permit http:// callback receivers")
	fs.StringVar(&c.Listen, "listen", envOr("ASSETSCAN_LISTEN", "127.0.0.1:8080"), "API listen address")
	fs.StringVar(&c.KeysFile, "keys-file", os.Getenv("ASSETSCAN_KEYS_FILE"), "API keys file (hashed keys and roles)")
	fs.StringVar(&c.EventsList, "events-list", os.Getenv("ASSETSCAN_EVENTS_LIST"), "Redis list of MinIO bucket events to scan on upload; empty: off")
	fs.StringVar(&c.EventsRedisAddr, "events-redis-addr", os.Getenv("ASSETSCAN_EVENTS_REDIS_ADDR"), "Redis of the events list (default: --redis-addr)")
	fs.IntVar(&c.EventsRedisDB, "events-redis-db", c.envInt("ASSETSCAN_EVENTS_REDIS_DB", 0), "Redis database of the events list")
	fs.StringVar(&c.EventsIDs, "events-ids", envOr("ASSETSCAN_EVENTS_IDS", "metadata,key"), "where upload events take asset and seller ids from: metadata, key, or both")
	fs.BoolVar(&c.TagVerdicts, "tag-verdicts", c.envBool("ASSETSCAN_TAG_VERDICTS", false), "tag scanned objects assetscan-verdict=pass|fail|error")
	fs.StringVar(&c.DBBucket, "db-bucket", os.Getenv("ASSETSCAN_DB_BUCKET"), "bucket workers poll for published vulnerability DBs; empty: off")
	fs.DurationVar(&c.DBPollInterval, "db-poll-interval", c.envDuration("ASSETSCAN_DB_POLL_INTERVAL", 10*time.Minute), "how often workers look for a newer DB")
	fs.StringVar(&c.PolicyDir, "policy-dir", os.Getenv("ASSETSCAN_POLICY_DIR"), "directory of policy files (*.yaml) to apply when newer")
	fs.BoolVar(&c.QueueUIWritable, "queue-ui-writable", c.envBool("ASSETSCAN_QUEUE_UI_WRITABLE", false), "let staff change the queue from the UI at /queues/ (default read-only)")
	fs.StringVar(&c.HealthListen, "health-listen", os.Getenv("ASSETSCAN_HEALTH_LISTEN"), "worker health endpoint address (/healthz, /readyz); empty: off")
	fs.StringVar(&c.WorkDir, "work-dir", envOr("ASSETSCAN_WORK_DIR", filepath.Join(os.TempDir(), "assetscan")), "directory for per-scan work dirs")
	fs.StringVar(&c.DBDir, "db-dir", os.Getenv("ASSETSCAN_DB_DIR"), "trivy cache dir (db/trivy.db, db/metadata.json)")
	fs.StringVar(&c.Clamd, "clamd", os.Getenv("ASSETSCAN_CLAMD"), "clamd address: unix:/path/clamd.sock or tcp:host:port")
	fs.IntVar(&c.ClamdConcurrency, "clamd-concurrency", c.envInt("ASSETSCAN_CLAMD_CONCURRENCY", 0), "files in flight to clamd per scan (0: twice clamd's MaxThreads with fd passing, 2 with INSTREAM)")
	fs.StringVar(&c.ClamdMode, "clamd-mode", envOr("ASSETSCAN_CLAMD_MODE", "auto"), "how files reach clamd: auto, fdpass or instream")
	fs.StringVar(&c.ClamdConf, "clamd-conf", os.Getenv("ASSETSCAN_CLAMD_CONF"), "clamd.conf of the clamd at --clamd (its DatabaseDirectory is hashed into verdicts)")
	fs.DurationVar(&c.CanaryInterval, "canary-interval", c.envDuration("ASSETSCAN_CANARY_INTERVAL", 5*time.Minute), "malware engine canary interval")
	fs.IntVar(&c.Concurrency, "concurrency", c.envInt("ASSETSCAN_CONCURRENCY", 2), "scans run at once")
	fs.StringVar(&c.Queues, "queues", envOr("ASSETSCAN_QUEUES", queue.QueueSmall+"=6,"+queue.QueueLarge+"=2"), "queues served, name=weight,...")
	fs.IntVar(&c.MaxRetry, "max-retry", c.envInt("ASSETSCAN_MAX_RETRY", 5), "retries after the first attempt")
	fs.DurationVar(&c.RetryBase, "retry-base", c.envDuration("ASSETSCAN_RETRY_BASE", 10*time.Second), "first retry delay (doubles per retry)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.envDuration("ASSETSCAN_SHUTDOWN_TIMEOUT", 30*time.Second), "grace period for running scans on SIGTERM")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.envDuration("ASSETSCAN_SWEEP_INTERVAL", 30*time.Second), "how often the sweeper looks for stuck scans")
	fs.DurationVar(&c.StuckAfter, "stuck-after", c.envDuration("ASSETSCAN_STUCK_AFTER", 2*time.Minute), "re-enqueue an unfinished scan that has had no task this long")
	fs.DurationVar(&c.ScanDeadline, "scan-deadline", c.envDuration("ASSETSCAN_SCAN_DEADLINE", 24*time.Hour), "record error for a scan without a verdict this long after submission")
	fs.DurationVar(&c.NotReadyAlertAfter, "not-ready-alert-after", c.envDuration("ASSETSCAN_NOT_READY_ALERT_AFTER", 2*time.Minute), "log at error level when the worker stays not ready this long")
	fs.StringVar(&c.LogLevel, "log-level", envOr("ASSETSCAN_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
}

// defaultKeyPrefix is --redis-prefix's default.
const defaultKeyPrefix = "assetscan:"

// validate checks the configuration; worker says whether worker-only
// settings apply.
func (c *serviceConfig) validate(worker bool) error {
	errs := append([]error(nil), c.envErrs...)
	if c.RedisAddr == "" {
		errs = append(errs, errors.New("--redis-addr (ASSETSCAN_REDIS_ADDR) is required"))
	}
	if c.redisCluster() && c.RedisDB != 0 {
		errs = append(errs, fmt.Errorf("--redis-db %d: a Redis Cluster (several --redis-addr) has only database 0; keep deployments apart with --redis-prefix and --queue-prefix", c.RedisDB))
	}
	if c.redisCluster() && c.EventsList != "" && c.EventsRedisAddr == "" {
		// The consumer would work on a cluster (its keys share a slot), but
		// MinIO's Redis notification target talks to one server and cannot
		// follow MOVED redirections: no upload would ever be scanned.
		errs = append(errs, errors.New("--events-list on a Redis Cluster needs --events-redis-addr: MinIO's Redis notification target cannot write to a cluster; give it a standalone Redis"))
	}
	if c.redisCluster() && (c.KeyPrefix != defaultKeyPrefix) != (c.QueuePrefix != "") {
		// Deployments sharing a cluster share database 0: with only one of
		// the two prefixes changed they share either the queues (one's
		// workers take the other's scans) or the sweeper's work list (one
		// re-enqueues the other's scans on its own queues).
		errs = append(errs, fmt.Errorf("--redis-prefix %q and --queue-prefix %q: on a Redis Cluster set both or neither (deployments sharing it must differ in both)", c.KeyPrefix, c.QueuePrefix))
	}
	for _, tag := range []string{"{index}", "{policies}"} {
		// Keys written in one transaction carry one hash tag; a prefix
		// with an empty tag ("{}") makes Redis hash each whole key, which
		// splits them over slots.
		if a, b := c.KeyPrefix+tag+":a", c.KeyPrefix+tag+":b"; !keyslot.Same(a, b) {
			errs = append(errs, fmt.Errorf("--redis-prefix %q: keys under %s%s would not share a hash slot (an empty hash tag {} in the prefix makes Redis hash each whole key)", c.KeyPrefix, c.KeyPrefix, tag))
			break
		}
	}
	if err := queue.ValidateQueuePrefix(c.QueuePrefix); err != nil {
		errs = append(errs, fmt.Errorf("--queue-prefix: %w", err))
	}
	if err := c.S3.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ReportsBucket == "" {
		errs = append(errs, errors.New("--reports-bucket (ASSETSCAN_REPORTS_BUCKET) is required"))
	}
	if worker {
		if c.Concurrency < 1 {
			errs = append(errs, fmt.Errorf("--concurrency must be at least 1, got %d", c.Concurrency))
		}
		if c.MaxRetry < 0 {
			errs = append(errs, fmt.Errorf("--max-retry must not be negative, got %d", c.MaxRetry))
		}
		if _, err := c.queueWeights(); err != nil {
			errs = append(errs, err)
		}
		if c.SweepInterval <= 0 || c.StuckAfter <= 0 || c.NotReadyAlertAfter <= 0 {
			errs = append(errs, errors.New("--sweep-interval, --stuck-after and --not-ready-alert-after must be positive"))
		}
		if c.ScanDeadline <= 8*time.Hour {
			errs = append(errs, fmt.Errorf("--scan-deadline must exceed the largest job time-out (8h), got %s", c.ScanDeadline))
		}
	}
	if _, err := api.ParseKeyLayout(c.AssetKeyLayout); err != nil {
		errs = append(errs, fmt.Errorf("--asset-key-layout: %w", err))
	}
	if _, _, err := callbacks.ParseAllowList(c.CallbackAllow); err != nil {
		errs = append(errs, fmt.Errorf("--callback-allow: %w", err))
	}
	switch c.ClamdMode {
	case "auto", "fdpass", "instream":
	default:
		errs = append(errs, fmt.Errorf("--clamd-mode must be auto, fdpass or instream, got %q", c.ClamdMode))
	}
	if c.ClamdConcurrency < 0 {
		errs = append(errs, fmt.Errorf("--clamd-concurrency must not be negative, got %d", c.ClamdConcurrency))
	}
	var lv levelCheck
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	return errors.Join(errs...)
}

// submitScope is what submissions may point at (validated by validate).
func (c *serviceConfig) submitScope() api.Scope {
	var sc api.Scope
	for _, b := range strings.Split(c.AssetBuckets, ",") {
		if b = strings.TrimSpace(b); b != "" {
			sc.Buckets = append(sc.Buckets, b)
		}
	}
	if c.DBBucket != "" {
		sc.Reserved = append(sc.Reserved, c.DBBucket)
	}
	sc.KeyLayout, _ = api.ParseKeyLayout(c.AssetKeyLayout)
	return sc
}

// callbackEgress is the callbacks' egress policy (validated by validate).
func (c *serviceConfig) callbackEgress() *callbacks.Egress {
	allow, hosts, _ := callbacks.ParseAllowList(c.CallbackAllow)
	return &callbacks.Egress{AllowHTTP: c.CallbackAllowHTTP, Allow: allow, AllowHosts: hosts}
}

func (c *serviceConfig) queueWeights() (map[string]int, error) {
	m := map[string]int{}
	for _, part := range strings.Split(c.Queues, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil {
			return nil, fmt.Errorf("--queues: %q is not name=weight", part)
		}
		m[name] = n
	}
	cfg := queue.ServerConfig{Queues: m}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("--queues: %w", err)
	}
	return m, nil
}

// redisClient connects to a single Redis, a Sentinel-managed master
// (RedisMasterName) or a Cluster (several addresses): configuration only,
// every part of assetscan takes a redis.UniversalClient.
func (c *serviceConfig) redisClient() redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{Addrs: c.redisAddrs(), MasterName: c.RedisMasterName,
		Password: c.RedisPassword, DB: c.RedisDB})
}

// redisCluster reports whether the configuration names a Redis Cluster:
// several addresses and no Sentinel master name.
func (c *serviceConfig) redisCluster() bool {
	return len(c.redisAddrs()) > 1 && c.RedisMasterName == ""
}

// queueNames are the deployment's asynq queues (the metrics' queue label).
func (c *serviceConfig) queueNames() []string {
	return []string{c.QueuePrefix + queue.QueueSmall, c.QueuePrefix + queue.QueueLarge, c.QueuePrefix + callbacks.Queue}
}

func (c *serviceConfig) redisAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.RedisAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// asynqRedis is the same connection as asynq options (the queue UI).
func (c *serviceConfig) asynqRedis() asynq.RedisConnOpt {
	addrs := c.redisAddrs()
	switch {
	case c.RedisMasterName != "":
		return asynq.RedisFailoverClientOpt{MasterName: c.RedisMasterName, SentinelAddrs: addrs, Password: c.RedisPassword, DB: c.RedisDB}
	case len(addrs) > 1:
		return asynq.RedisClusterClientOpt{Addrs: addrs, Password: c.RedisPassword}
	default:
		return asynq.RedisClientOpt{Addr: c.RedisAddr, Password: c.RedisPassword, DB: c.RedisDB}
	}
}

type levelCheck struct{ v int }

func (l *levelCheck) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("unknown level %q (debug, info, warn, error)", b)
}

func (c *serviceConfig) envInt(key string, def int) int {
	if v := os.Getenv(key); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not an integer", key, v))
		}
		return n
	}
	return def
}

func (c *serviceConfig) envBool(key string, def bool) bool {
	if v := os.Getenv(key); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not a boolean", key, v))
		}
		return b
	}
	return def
}

func (c *serviceConfig) envDuration(key string, def time.Duration) time.Duration {
	if v := os.Getenv(key); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not a duration (e.g. 30s, 5m)", key, v))
		}
		return d
	}
	return def
}
