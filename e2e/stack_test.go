// Package e2e tests the whole pipeline as a user sees it: the real
// assetscan binary (serve and worker processes) against the real Redis,
// MinIO and clamd that scripts/test.sh starts on loopback, driven through
// the HTTP API.
//
// Two setups: the default one (a single Redis, MinIO with one drive; each
// stack gets a private redis-server of its own), and the scale-out one of
// scripts/test.sh --scale-out (services.sh start-cluster): with several
// addresses in ASSETSCAN_TEST_REDIS_ADDR every stack runs on that Redis
// Cluster, kept apart from the others by its own --redis-prefix and
// --queue-prefix (a cluster has only database 0), and with several MinIO
// nodes in ASSETSCAN_TEST_S3_ENDPOINTS the API, each worker and the test
// client talk to different nodes. ASSETSCAN_E2E_WORKERS sets how many
// workers a stack starts (default 1; the scale-out run uses 2).
package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/auth"
	"github.com/assetscan/assetscan/internal/redistest"
)

// env is what scripts/test.sh exported.
type env struct {
	redisAddr, s3Endpoint, s3Key, s3Secret, clamd string
	// cluster: redisAddr lists the masters of a Redis Cluster.
	cluster bool
	// eventsRedisAddr is the Redis MinIO's notification target writes
	// to: redisAddr (database 0), or the standalone one of a cluster setup.
	eventsRedisAddr string
	// s3Endpoints are the MinIO nodes (one unless distributed).
	s3Endpoints []string
	// workers: workers a stack starts unless told otherwise.
	workers int
}

var (
	testEnv env
	binPath string // the assetscan binary under test
	dbDir   string // the fixture vulnerability DB
	nextDB  atomic.Int32
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		testEnv = env{
			redisAddr:  os.Getenv("ASSETSCAN_TEST_REDIS_ADDR"),
			s3Endpoint: os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT"),
			s3Key:      os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"),
			s3Secret:   os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY"),
			clamd:      os.Getenv("ASSETSCAN_TEST_CLAMD"),
		}
		testEnv.cluster = strings.Contains(testEnv.redisAddr, ",")
		testEnv.eventsRedisAddr = cmp.Or(os.Getenv("ASSETSCAN_TEST_EVENTS_REDIS_ADDR"), testEnv.redisAddr)
		for _, ep := range strings.Split(cmp.Or(os.Getenv("ASSETSCAN_TEST_S3_ENDPOINTS"), testEnv.s3Endpoint), ",") {
			if ep = strings.TrimSpace(ep); ep != "" {
				testEnv.s3Endpoints = append(testEnv.s3Endpoints, ep)
			}
		}
		testEnv.workers = 1
		if n, err := strconv.Atoi(os.Getenv("ASSETSCAN_E2E_WORKERS")); err == nil && n > 0 {
			testEnv.workers = n
		}
		if testEnv.redisAddr == "" || testEnv.s3Endpoint == "" || testEnv.clamd == "" {
			if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
				fmt.Println("e2e: skipped (ASSETSCAN_SKIP_SERVICES=1)")
				return 0
			}
			fmt.Fprintln(os.Stderr, "e2e: ASSETSCAN_TEST_REDIS_ADDR, ASSETSCAN_TEST_S3_* and ASSETSCAN_TEST_CLAMD are not set: run scripts/test.sh (or set ASSETSCAN_SKIP_SERVICES=1)")
			return 1
		}
		dir, err := os.MkdirTemp("", "assetscan-e2e-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "assetscan")
		build := exec.Command("go", "build", "-o", binPath, "./cmd/assetscan")
		build.Dir = ".."
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build assetscan:", err)
			return 1
		}
		dbDir = filepath.Join(dir, "db")
		if out, err := exec.Command(binPath, "db", "build-fixture", dbDir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build fixture DB: %v\n%s", err, out)
			return 1
		}
		if testEnv.cluster || len(testEnv.s3Endpoints) > 1 {
			fmt.Printf("e2e: scale-out setup: redis %s, events redis %s, minio %s, %d worker(s) per stack\n",
				testEnv.redisAddr, testEnv.eventsRedisAddr, strings.Join(testEnv.s3Endpoints, ","), testEnv.workers)
		}
		return m.Run()
	}())
}

// stack is one isolated deployment: its own Redis (a private server, or
// its own key and queue prefixes on the shared cluster, so its workers
// never take another test's jobs), its own buckets, an API process and
// worker processes.
type stack struct {
	t       *testing.T
	dir     string
	redisDB int // the stack's number
	// prefix and queuePrefix are the stack's --redis-prefix and
	// --queue-prefix.
	prefix, queuePrefix string
	uploads             string
	reports             string
	apiURL              string
	s3                  *minio.Client
	rdb                 redis.UniversalClient
	baseEnv             []string
	mu                  sync.Mutex
	procs               []*proc
	maxRetry            int
	redisAddr           string
	tokens              map[string]string // API keys by name: asset-center, seller-1, seller-2, staff
	token               string            // the key requests use unless told otherwise
}

// do sends a request with an API key ("" = none).
func (s *stack) do(method, path, token string, body []byte, hdr ...string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.apiURL+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

type stackOpts struct {
	maxRetry  int           // default 2
	retryBase time.Duration // default 1s
	noWorker  bool
}

func newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	db := int(nextDB.Add(1))
	if o.maxRetry == 0 {
		o.maxRetry = 2
	}
	if o.retryBase == 0 {
		o.retryBase = time.Second
	}
	s := &stack{t: t, dir: t.TempDir(), redisDB: db, maxRetry: o.maxRetry, prefix: "assetscan:",
		uploads: fmt.Sprintf("uploads-%d-%d", db, time.Now().UnixNano()%1e9),
		reports: fmt.Sprintf("reports-%d-%d", db, time.Now().UnixNano()%1e9)}
	var err error
	// The test client talks to the last MinIO node, the API to the first,
	// workers to the ones between (startWorker): on a distributed MinIO an
	// object is written through one node and read through another.
	s.s3, err = minio.New(testEnv.s3Endpoints[len(testEnv.s3Endpoints)-1], &minio.Options{Creds: credentials.NewStaticV4(testEnv.s3Key, testEnv.s3Secret, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.s3.MakeBucket(ctx, s.uploads, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if testEnv.cluster {
		// The shared Redis Cluster: the stack's own key and queue prefixes.
		s.prefix = fmt.Sprintf("e2e-%d-%x:", db, time.Now().UnixNano()%1e6)
		s.queuePrefix = s.prefix
		s.redisAddr = testEnv.redisAddr
		s.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(testEnv.redisAddr, ",")})
	} else {
		// A private redis-server (ready in well under a second).
		s.redisAddr = startRedis(t)
		s.rdb = redis.NewClient(&redis.Options{Addr: s.redisAddr})
	}
	s.loseRedis()
	s.tokens = map[string]string{}
	var keys strings.Builder
	keys.WriteString("keys:\n")
	for _, k := range []struct{ name, role, seller string }{
		{"asset-center", "asset-center", ""}, {"seller-1", "seller", "seller-1"},
		{"seller-2", "seller", "seller-2"}, {"staff", "security-staff", ""},
	} {
		tok, hash := auth.NewKey()
		s.tokens[k.name] = tok
		fmt.Fprintf(&keys, "  - name: %s\n    role: %s\n    key_sha256: %s\n", k.name, k.role, hash)
		if k.seller != "" {
			fmt.Fprintf(&keys, "    seller_id: %s\n", k.seller)
		}
	}
	keysFile := filepath.Join(s.dir, "keys.yaml")
	if err := os.WriteFile(keysFile, []byte(keys.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.token = s.tokens["asset-center"]
	s.baseEnv = []string{
		"ASSETSCAN_KEYS_FILE=" + keysFile,
		"ASSETSCAN_REDIS_ADDR=" + s.redisAddr,
		"ASSETSCAN_REDIS_PREFIX=" + s.prefix,
		"ASSETSCAN_QUEUE_PREFIX=" + s.queuePrefix,
		"ASSETSCAN_S3_ENDPOINT=" + testEnv.s3Endpoints[0],
		"ASSETSCAN_S3_ACCESS_KEY=" + testEnv.s3Key,
		"ASSETSCAN_S3_SECRET_KEY=" + testEnv.s3Secret,
		"ASSETSCAN_REPORTS_BUCKET=" + s.reports,
		"ASSETSCAN_DB_DIR=" + dbDir,
		"ASSETSCAN_CLAMD=" + testEnv.clamd,
		"ASSETSCAN_CLAMD_CONF=" + os.Getenv("ASSETSCAN_TEST_CLAMD_CONF"),
		"ASSETSCAN_MAX_RETRY=" + strconv.Itoa(o.maxRetry),
		"ASSETSCAN_RETRY_BASE=" + o.retryBase.String(),
		"ASSETSCAN_LOG_LEVEL=info",
		"ASSETSCAN_CANARY_INTERVAL=30s",
		// The tests' callback receivers are httptest servers on 127.0.0.1
		// over plain http: the egress policy refuses both by default.
		"ASSETSCAN_CALLBACK_ALLOW=127.0.0.0/8",
		"ASSETSCAN_CALLBACK_ALLOW_HTTP=true",
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + s.dir,
	}
	port := freePort(t)
	s.apiURL = "http://127.0.0.1:" + strconv.Itoa(port)
	s.start("api", []string{"serve"}, "ASSETSCAN_LISTEN=127.0.0.1:"+strconv.Itoa(port))
	s.waitReady(s.apiURL+"/readyz", 60*time.Second)
	if !o.noWorker {
		for range testEnv.workers {
			s.startWorker()
		}
	}
	t.Cleanup(s.stop)
	return s
}

// loseRedis deletes everything the stack keeps in Redis: a FLUSHDB of its
// private server, or on the shared cluster every key under its prefix and
// every asynq key of its queues.
func (s *stack) loseRedis() {
	s.t.Helper()
	ctx := context.Background()
	if !testEnv.cluster {
		if err := s.rdb.FlushDB(ctx).Err(); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	for _, pattern := range []string{s.prefix + "*", "asynq:{" + s.queuePrefix + "*"} {
		if _, err := redistest.Delete(ctx, s.rdb, pattern); err != nil {
			s.t.Fatal(err)
		}
	}
}

// keys lists the stack's Redis keys matching pattern (on every master of
// a cluster).
func (s *stack) keys(pattern string) []string {
	s.t.Helper()
	keys, err := redistest.Keys(context.Background(), s.rdb, pattern)
	if err != nil {
		s.t.Fatal(err)
	}
	return keys
}

// startRedis runs a private redis-server on a free loopback port for the
// test and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i > 200 {
			t.Fatal("private redis-server did not start")
		}
		time.Sleep(25 * time.Millisecond)
	}
	return addr
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startWorker starts a worker process; env entries override the stack's.
// On a distributed MinIO, workers take the nodes after the API's in turn.
func (s *stack) startWorker(env ...string) *proc {
	s.mu.Lock()
	n := len(s.procs)
	s.mu.Unlock()
	ep := testEnv.s3Endpoints[n%len(testEnv.s3Endpoints)]
	return s.start(fmt.Sprintf("worker-%d", n), []string{"worker"},
		append([]string{"ASSETSCAN_WORK_DIR=" + filepath.Join(s.dir, fmt.Sprintf("work-%d", n)), "ASSETSCAN_S3_ENDPOINT=" + ep}, env...)...)
}

func (s *stack) start(name string, args []string, env ...string) *proc {
	s.t.Helper()
	logPath := filepath.Join(s.dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(append([]string{}, s.baseEnv...), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.done) }()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p
}

func (p *proc) signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (s *stack) stop() {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if !p.wait(20 * time.Second) {
			p.signal(syscall.SIGKILL)
			p.wait(5 * time.Second)
		}
	}
	if s.t.Failed() {
		for _, p := range procs {
			b, _ := os.ReadFile(p.log)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			s.t.Logf("---- %s log (tail) ----\n%s", p.name, b)
		}
	}
	s.loseRedis()
	_ = s.rdb.Close()
}

func (s *stack) waitReady(url string, d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s not ready after %s", url, d)
}

func (s *stack) upload(key string, data []byte) {
	s.t.Helper()
	_, err := s.s3.PutObject(context.Background(), s.uploads, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) uploadFile(key, path string) {
	s.t.Helper()
	if _, err := s.s3.FPutObject(context.Background(), s.uploads, key, path, minio.PutObjectOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

type submitResp struct {
	ScanID   string            `json:"scan_id"`
	Status   string            `json:"status"`
	Existing bool              `json:"existing"`
	Error    string            `json:"error"`
	Fields   map[string]string `json:"fields"`
}

func (s *stack) submitRaw(body any) (int, submitResp) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	code, data := s.do("POST", "/v1/scans", s.token, b)
	var r submitResp
	if err := json.Unmarshal(data, &r); err != nil {
		s.t.Fatalf("decode %s: %v", data, err)
	}
	return code, r
}

// submit submits a package scan of key and returns the scan id.
func (s *stack) submit(assetID, key string, extra ...func(map[string]any)) string {
	s.t.Helper()
	req := map[string]any{"asset_id": assetID, "seller_id": "seller-1", "kind": "package", "bucket": s.uploads, "key": key}
	for _, f := range extra {
		f(req)
	}
	code, r := s.submitRaw(req)
	if code != http.StatusAccepted {
		s.t.Fatalf("submit %s: %d %+v", key, code, r)
	}
	return r.ScanID
}

func (s *stack) get(path string) (int, []byte) {
	s.t.Helper()
	return s.do("GET", path, s.token, nil)
}

// wait polls the scan until it is done.
func (s *stack) wait(id string, d time.Duration) assetscan.Verdict {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, b := s.get("/v1/scans/" + id)
		if code != http.StatusOK {
			s.t.Fatalf("GET scan %s: %d %s", id, code, b)
		}
		var v assetscan.Verdict
		if err := json.Unmarshal(b, &v); err != nil {
			s.t.Fatal(err)
		}
		if v.Status == assetscan.StatusDone {
			return v
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("scan %s not done after %s: %s", id, d, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *stack) status(id string) assetscan.Status {
	_, b := s.get("/v1/scans/" + id)
	var v assetscan.Verdict
	_ = json.Unmarshal(b, &v)
	return v.Status
}

func hasRule(v assetscan.Verdict, rule string) bool {
	for _, r := range v.FailedRules {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

func ruleList(v assetscan.Verdict) string {
	var s []string
	for _, r := range v.FailedRules {
		s = append(s, r.Rule)
	}
	return strings.Join(s, ",")
}
