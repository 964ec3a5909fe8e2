package metrics

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
)

// testDB is the Redis database of this package's tests.
const testDB = 13

var redisAddr string

func TestMain(m *testing.M) {
	redisAddr = os.Getenv("ASSETSCAN_TEST_REDIS_ADDR")
	if redisAddr == "" && os.Getenv("ASSETSCAN_SKIP_SERVICES") != "1" {
		fmt.Fprintln(os.Stderr, "metrics: ASSETSCAN_TEST_REDIS_ADDR is not set: run scripts/test.sh (or set ASSETSCAN_SKIP_SERVICES=1)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

var allSeries = []string{
	"assetscan_scans_submitted_total",
	"assetscan_scans_completed_total",
	"assetscan_check_duration_seconds",
	"assetscan_scan_duration_seconds",
	"assetscan_scanned_bytes_total",
	"assetscan_scan_retries_total",
	"assetscan_scan_errors_total",
	"assetscan_vulndb_age_seconds",
	"assetscan_vulndb_info",
	"assetscan_malware_engine_healthy",
}

func TestSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ScanSubmitted(assetscan.KindPackage)
	m.ScanSubmitted(assetscan.KindPackage)
	m.ScanSubmitted("floppy-disk")
	m.ScanCompleted(assetscan.KindContainerImage, assetscan.Fail)
	m.ObserveCheck(assetscan.CheckMalware, 1500*time.Millisecond)
	m.ObserveScan(assetscan.KindPackage, 3*time.Second)
	m.AddScannedBytes(assetscan.KindVMImage, 1<<30)
	m.ScanRetried(ReasonStorage)
	m.ScanError(ReasonTimeout)
	m.ScanError("Something Unexpected")
	m.SetMalwareEngineHealthy(true)
	updated := time.Date(2026, 8, 13, 9, 52, 58, 0, time.UTC)
	m.SetVulnDB(assetscan.DBRef{SchemaVersion: 2, UpdatedAt: updated, Digest: strings.Repeat("ab", 32)})

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range allSeries {
		if !have[name] {
			t.Errorf("series %s missing", name)
		}
	}

	expect := `
# HELP assetscan_scans_submitted_total Scans submitted (new scans; resubmissions of the same content are not counted), by asset kind.
# TYPE assetscan_scans_submitted_total counter
assetscan_scans_submitted_total{kind="container-image"} 0
assetscan_scans_submitted_total{kind="other"} 1
assetscan_scans_submitted_total{kind="package"} 2
assetscan_scans_submitted_total{kind="vm-image"} 0
# HELP assetscan_scan_errors_total Scan errors (failed attempts and error verdicts), by reason class.
# TYPE assetscan_scan_errors_total counter
assetscan_scan_errors_total{reason="malware_engine"} 0
assetscan_scan_errors_total{reason="not_ready"} 0
assetscan_scan_errors_total{reason="other"} 1
assetscan_scan_errors_total{reason="storage"} 0
assetscan_scan_errors_total{reason="timeout"} 1
assetscan_scan_errors_total{reason="vulndb"} 0
# HELP assetscan_malware_engine_healthy 1 if the malware engine (clamd) answered its last health check correctly, else 0.
# TYPE assetscan_malware_engine_healthy gauge
assetscan_malware_engine_healthy 1
# HELP assetscan_vulndb_info The vulnerability database in use (always 1): its build time (RFC 3339) and the hex SHA-256 of trivy.db.
# TYPE assetscan_vulndb_info gauge
assetscan_vulndb_info{digest="abababababababababababababababababababababababababababababababab",updated_at="2026-08-13T09:52:58Z"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect),
		"assetscan_scans_submitted_total", "assetscan_scan_errors_total", "assetscan_malware_engine_healthy", "assetscan_vulndb_info"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.completed.WithLabelValues("container-image", "fail")); got != 1 {
		t.Errorf("completed = %v", got)
	}
	if got := testutil.ToFloat64(m.scannedBytes.WithLabelValues("vm-image")); got != 1<<30 {
		t.Errorf("scanned bytes = %v", got)
	}
	if got := testutil.ToFloat64(m.retries.WithLabelValues("storage")); got != 1 {
		t.Errorf("retries = %v", got)
	}
	if n := testutil.CollectAndCount(m.checkDuration); n != 1 {
		t.Errorf("%d check histograms", n)
	}
	for _, mf := range mfs {
		if mf.GetName() == "assetscan_check_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != 1.5 || len(h.GetBucket()) != len(Buckets) {
				t.Errorf("histogram %v", h)
			}
			if b := h.GetBucket(); b[0].GetUpperBound() != 0.01 || b[len(b)-1].GetUpperBound() != 4*3600 {
				t.Errorf("buckets %v..%v, want 10ms..4h", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
			}
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestVulnDBAge(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	if n, _ := testutil.GatherAndCount(reg, "assetscan_vulndb_age_seconds", "assetscan_vulndb_info"); n != 0 {
		t.Errorf("%d vulndb series before a DB is set", n)
	}
	ref := assetscan.DBRef{UpdatedAt: time.Now().Add(-time.Hour), Digest: "d1"}
	m.SetVulnDBSource(func() assetscan.DBRef { return ref })
	age := testutil.ToFloat64(collectorOf(t, m.vulndb, "assetscan_vulndb_age_seconds"))
	if math.Abs(age-3600) > 5 {
		t.Errorf("age %v, want ~3600", age)
	}
	ref = assetscan.DBRef{UpdatedAt: time.Now().Add(-2 * time.Hour), Digest: "d2"} // swapped
	age = testutil.ToFloat64(collectorOf(t, m.vulndb, "assetscan_vulndb_age_seconds"))
	if math.Abs(age-7200) > 5 {
		t.Errorf("age after swap %v, want ~7200", age)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP assetscan_vulndb_info The vulnerability database in use (always 1): its build time (RFC 3339) and the hex SHA-256 of trivy.db.
# TYPE assetscan_vulndb_info gauge
assetscan_vulndb_info{digest="d2",updated_at="`+ref.UpdatedAt.UTC().Format(time.RFC3339)+`"} 1
`), "assetscan_vulndb_info"); err != nil {
		t.Error(err)
	}
}

// collectorOf narrows a multi-metric collector to one metric name, for
// testutil.ToFloat64.
func collectorOf(t *testing.T, c prometheus.Collector, name string) prometheus.Collector {
	t.Helper()
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		mc := make(chan prometheus.Metric, 10)
		c.Collect(mc)
		close(mc)
		for m := range mc {
			if strings.Contains(m.Desc().String(), `"`+name+`"`) {
				ch <- m
			}
		}
	})
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ScanSubmitted(assetscan.KindPackage)
	m.ScanCompleted(assetscan.KindPackage, assetscan.Pass)
	m.ObserveCheck("format", time.Second)
	m.ObserveScan(assetscan.KindPackage, time.Second)
	m.AddScannedBytes(assetscan.KindPackage, 1)
	m.ScanRetried(ReasonOther)
	m.ScanError(ReasonOther)
	m.SetMalwareEngineHealthy(false)
	m.SetVulnDB(assetscan.DBRef{})
	m.SetVulnDBSource(nil)
}

func needRedis(t *testing.T) *redis.Client {
	t.Helper()
	if redisAddr == "" {
		t.Skip("ASSETSCAN_SKIP_SERVICES=1 and no Redis")
	}
	if strings.Contains(redisAddr, ",") {
		// The test empties the shared queues scan-small and scan-large.
		t.Skip("ASSETSCAN_TEST_REDIS_ADDR is a Redis Cluster (database 0 shared by every package): run on a single Redis")
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, DB: testDB})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis %s: %v", redisAddr, err)
	}
	return rdb
}

// TestQueueCollector enqueues 3 tasks into scan-small in the real Redis
// (database 13) and scrapes the queue series; scan-large does not exist.
func TestQueueCollector(t *testing.T) {
	rdb := needRedis(t)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	queues := []string{"scan-small", "scan-large"}
	clear := func() {
		for _, q := range queues {
			_ = insp.DeleteQueue(q, true) // may not exist
		}
	}
	clear()
	t.Cleanup(clear)

	reg := prometheus.NewRegistry()
	reg.MustRegister(QueueCollector(insp, queues))
	zeros := func(q string) string {
		var b strings.Builder
		for _, s := range QueueStates {
			fmt.Fprintf(&b, "assetscan_queue_size{queue=%q,state=%q} 0\n", q, s)
		}
		return b.String()
	}
	header := `# HELP assetscan_queue_size Tasks in an asynq queue, by queue and state (pending, active, scheduled, retry, archived, completed, aggregating).
# TYPE assetscan_queue_size gauge
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(header+zeros("scan-large")+zeros("scan-small")), "assetscan_queue_size"); err != nil {
		t.Errorf("before any task: %v", err)
	}

	cl := asynq.NewClientFromRedisClient(rdb)
	for i := range 3 {
		if _, err := cl.EnqueueContext(t.Context(), asynq.NewTask("assetscan:scan", fmt.Appendf(nil, `{"n":%d}`, i)), asynq.Queue("scan-small")); err != nil {
			t.Fatal(err)
		}
	}
	want := strings.Replace(zeros("scan-small"), `state="pending"} 0`, `state="pending"} 3`, 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(header+zeros("scan-large")+want), "assetscan_queue_size"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "assetscan_queue_latency_seconds" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			q, v := mm.GetLabel()[0].GetValue(), mm.GetGauge().GetValue()
			if (q == "scan-small" && (v < 0 || v > 60)) || (q == "scan-large" && v != 0) {
				t.Errorf("latency %s = %v", q, v)
			}
		}
	}

	// Through the HTTP handler, with the exposition format a scraper sees.
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	body := get(t, srv.URL)
	if !strings.Contains(body, `assetscan_queue_size{queue="scan-small",state="pending"} 3`) {
		t.Errorf("scrape lacks the pending count:\n%s", body)
	}
}

// TestQueueCollectorRedisDown: a failing queue collector does not take the
// other metrics down with it.
func TestQueueCollectorRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.SetMalwareEngineHealthy(true)
	reg.MustRegister(QueueCollector(asynq.NewInspectorFromRedisClient(rdb), []string{"scan-small"}))
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	body := get(t, srv.URL)
	if !strings.Contains(body, "assetscan_malware_engine_healthy 1") || strings.Contains(body, "assetscan_queue_size{") {
		t.Errorf("scrape with Redis down:\n%s", body)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d\n%s", url, resp.StatusCode, b)
	}
	return string(b)
}
