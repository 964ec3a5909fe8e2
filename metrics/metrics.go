// Package metrics is assetscan's Prometheus instrumentation. Metrics are
// registered on a registry the caller owns (never the global default one),
// and served by Handler.
//
// Series (all labels have small, fixed value sets):
//
//	assetscan_scans_submitted_total{kind}            counter: scans accepted (new, not dedup hits)
//	assetscan_scans_completed_total{kind,verdict}    counter: scans finished; verdict pass|fail|error
//	assetscan_check_duration_seconds{check}          histogram: one check's run time (format, archive,
//	                                                 vulnerability, secret, malware, account)
//	assetscan_scan_duration_seconds{kind}            histogram: a scan attempt, download to verdict
//	assetscan_scanned_bytes_total{kind}              counter: bytes of objects scanned
//	assetscan_scan_retries_total{reason}             counter: attempts handed back for a retry
//	assetscan_scan_errors_total{reason}              counter: failed attempts / error verdicts
//	assetscan_vulndb_age_seconds                     gauge: now - the vulnerability DB's UpdatedAt
//	assetscan_vulndb_info{updated_at,digest}         gauge, always 1: the DB in use
//	assetscan_malware_engine_healthy                 gauge: 1 healthy, 0 not
//	assetscan_worker_ready                           gauge: 1 taking jobs, 0 handing them back
//	assetscan_worker_not_ready_seconds               gauge: how long the worker has been not ready (0 when ready)
//	assetscan_queue_size{queue,state}                gauge: tasks per asynq queue and state
//	                                                 (pending, active, scheduled, retry, archived,
//	                                                 completed, aggregating); QueueCollector
//	assetscan_queue_latency_seconds{queue}           gauge: age of the oldest pending task; QueueCollector
//
// kind is package|container-image|vm-image; any other value is counted as
// "other". reason is one of Reasons ("storage", "malware_engine",
// "vulndb", "timeout", "not_ready", "other"); anything else is counted as
// "other", so a typo cannot explode the series count. Counters for the
// known kinds, verdicts and reasons start at 0, so rate() and absent()
// work from the first scrape.
//
// The histograms' buckets run from 10 ms to 4 h (Buckets).
//
// The vulnerability DB series appear once SetVulnDB or SetVulnDBSource
// has been called; alert on absent(assetscan_vulndb_age_seconds) as well
// as on its value. Process and Go runtime metrics are not registered here:
// add collectors.NewGoCollector() and collectors.NewProcessCollector(...)
// to the registry if wanted.
//
// Every method is safe on a nil *Metrics (it does nothing), so code paths
// without metrics need no checks.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assetscan/assetscan"
)

// Reason classes for assetscan_scan_retries_total and
// assetscan_scan_errors_total.
const (
	ReasonStorage       = "storage"        // object storage or the scan store unavailable
	ReasonMalwareEngine = "malware_engine" // clamd unreachable or failing
	ReasonVulnDB        = "vulndb"         // vulnerability DB missing or failing
	ReasonTimeout       = "timeout"        // the task or a check ran out of time
	ReasonNotReady      = "not_ready"      // the worker was not ready (ErrNotReady)
	ReasonOther         = "other"
)

// Reasons are the reason label values; others are counted as "other".
var Reasons = []string{ReasonStorage, ReasonMalwareEngine, ReasonVulnDB, ReasonTimeout, ReasonNotReady, ReasonOther}

// Buckets are the duration histograms' buckets, in seconds: 10 ms to 4 h.
var Buckets = []float64{
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
	120, 300, 600, 1200, 1800, 3600, 7200, 14400,
}

var (
	kinds    = []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage}
	verdicts = []assetscan.Outcome{assetscan.Pass, assetscan.Fail, assetscan.Error}
)

// Metrics holds assetscan's metrics. Create it with New.
type Metrics struct {
	submitted     *prometheus.CounterVec
	completed     *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	scanDuration  *prometheus.HistogramVec
	scannedBytes  *prometheus.CounterVec
	retries       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	malware       prometheus.Gauge
	ready         prometheus.Gauge
	notReadyFor   prometheus.Gauge
	vulndb        *vulndbCollector
}

// New creates the metrics and registers them on reg. It panics if they are
// already registered there (one Metrics per registry).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assetscan_scans_submitted_total",
			Help: "Scans submitted (new scans; resubmissions of the same content are not counted), by asset kind.",
		}, []string{"kind"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assetscan_scans_completed_total",
			Help: "Scans completed with a verdict, by asset kind and verdict (pass, fail, error).",
		}, []string{"kind", "verdict"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "assetscan_check_duration_seconds",
			Help:    "Run time of one check of a scan, by check.",
			Buckets: Buckets,
		}, []string{"check"}),
		scanDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "assetscan_scan_duration_seconds",
			Help:    "Run time of one scan attempt, download to verdict, by asset kind.",
			Buckets: Buckets,
		}, []string{"kind"}),
		scannedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assetscan_scanned_bytes_total",
			Help: "Bytes of objects scanned, by asset kind.",
		}, []string{"kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assetscan_scan_retries_total",
			Help: "Scan attempts handed back to the queue for a retry, by reason class.",
		}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "assetscan_scan_errors_total",
			Help: "Scan errors (failed attempts and error verdicts), by reason class.",
		}, []string{"reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assetscan_worker_ready",
			Help: "1 if the worker takes scan jobs, 0 while it hands them back (not ready: see /readyz). Alert on 0 for minutes.",
		}),
		notReadyFor: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assetscan_worker_not_ready_seconds",
			Help: "Seconds the worker has been not ready; 0 when ready.",
		}),
		malware: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "assetscan_malware_engine_healthy",
			Help: "1 if the malware engine (clamd) answered its last health check correctly, else 0.",
		}),
		vulndb: newVulnDBCollector(),
	}
	reg.MustRegister(m.submitted, m.completed, m.checkDuration, m.scanDuration, m.scannedBytes,
		m.retries, m.errors, m.malware, m.vulndb, m.ready, m.notReadyFor)
	for _, k := range kinds {
		m.submitted.WithLabelValues(string(k))
		m.scannedBytes.WithLabelValues(string(k))
		for _, v := range verdicts {
			m.completed.WithLabelValues(string(k), string(v))
		}
	}
	for _, r := range Reasons {
		m.retries.WithLabelValues(r)
		m.errors.WithLabelValues(r)
	}
	return m
}

func kindLabel(k assetscan.Kind) string {
	if k.Valid() {
		return string(k)
	}
	return "other"
}

func reasonLabel(r string) string {
	for _, known := range Reasons {
		if r == known {
			return r
		}
	}
	return ReasonOther
}

func verdictLabel(v assetscan.Outcome) string {
	switch v {
	case assetscan.Pass, assetscan.Fail, assetscan.Error:
		return string(v)
	}
	return "other"
}

// ScanSubmitted counts a new scan.
func (m *Metrics) ScanSubmitted(kind assetscan.Kind) {
	if m == nil {
		return
	}
	m.submitted.WithLabelValues(kindLabel(kind)).Inc()
}

// ScanCompleted counts a scan that ended with a verdict.
func (m *Metrics) ScanCompleted(kind assetscan.Kind, verdict assetscan.Outcome) {
	if m == nil {
		return
	}
	m.completed.WithLabelValues(kindLabel(kind), verdictLabel(verdict)).Inc()
}

// ObserveCheck records how long one check ran. check is one of the
// assetscan.Check* names.
func (m *Metrics) ObserveCheck(check string, d time.Duration) {
	if m == nil {
		return
	}
	m.checkDuration.WithLabelValues(check).Observe(d.Seconds())
}

// ObserveScan records how long one scan attempt ran.
func (m *Metrics) ObserveScan(kind assetscan.Kind, d time.Duration) {
	if m == nil {
		return
	}
	m.scanDuration.WithLabelValues(kindLabel(kind)).Observe(d.Seconds())
}

// AddScannedBytes counts the bytes of a scanned object.
func (m *Metrics) AddScannedBytes(kind assetscan.Kind, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.scannedBytes.WithLabelValues(kindLabel(kind)).Add(float64(n))
}

// ScanRetried counts an attempt handed back for a retry. reason is one of
// Reasons.
func (m *Metrics) ScanRetried(reason string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(reasonLabel(reason)).Inc()
}

// ScanError counts a scan error. reason is one of Reasons.
func (m *Metrics) ScanError(reason string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(reasonLabel(reason)).Inc()
}

// SetMalwareEngineHealthy sets assetscan_malware_engine_healthy.
func (m *Metrics) SetMalwareEngineHealthy(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.malware.Set(1)
	} else {
		m.malware.Set(0)
	}
}

// SetWorkerReady sets assetscan_worker_ready and, when not ready, how
// long it has been so (assetscan_worker_not_ready_seconds).
func (m *Metrics) SetWorkerReady(ok bool, notReadyFor time.Duration) {
	if m == nil {
		return
	}
	if ok {
		m.ready.Set(1)
		m.notReadyFor.Set(0)
		return
	}
	m.ready.Set(0)
	m.notReadyFor.Set(notReadyFor.Seconds())
}

// SetVulnDB records the vulnerability DB in use (after loading or
// swapping one). The age is computed at scrape time.
func (m *Metrics) SetVulnDB(ref assetscan.DBRef) {
	if m == nil {
		return
	}
	m.vulndb.set(func() assetscan.DBRef { return ref })
}

// SetVulnDBSource makes the vulnerability DB series read the DB in use
// from current at every scrape (e.g. the trivy engine's current DBRef),
// replacing SetVulnDB's value. A zero DBRef (no DB) emits no series.
func (m *Metrics) SetVulnDBSource(current func() assetscan.DBRef) {
	if m == nil {
		return
	}
	m.vulndb.set(current)
}

// vulndbCollector emits assetscan_vulndb_age_seconds and
// assetscan_vulndb_info from the current DBRef at scrape time.
type vulndbCollector struct {
	age, info *prometheus.Desc
	now       func() time.Time
	mu        sync.Mutex
	current   func() assetscan.DBRef
}

func newVulnDBCollector() *vulndbCollector {
	return &vulndbCollector{
		age: prometheus.NewDesc("assetscan_vulndb_age_seconds",
			"Age of the vulnerability database in use: now minus its build time (UpdatedAt).", nil, nil),
		info: prometheus.NewDesc("assetscan_vulndb_info",
			"The vulnerability database in use (always 1): its build time (RFC 3339) and the hex SHA-256 of trivy.db.",
			[]string{"updated_at", "digest"}, nil),
		now: time.Now,
	}
}

func (c *vulndbCollector) set(f func() assetscan.DBRef) {
	c.mu.Lock()
	c.current = f
	c.mu.Unlock()
}

func (c *vulndbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.age
	ch <- c.info
}

func (c *vulndbCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.current
	c.mu.Unlock()
	if f == nil {
		return
	}
	ref := f()
	if ref.UpdatedAt.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, c.now().Sub(ref.UpdatedAt).Seconds())
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
		ref.UpdatedAt.UTC().Format(time.RFC3339), ref.Digest)
}

// Handler serves the registry's metrics. A collector that fails (e.g. the
// queue collector while Redis is down) drops only its own series; the rest
// are still served.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
}
