package clamav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrCanary: clamd answered, but did not detect a sample it must detect (an
// empty or broken database, the wrong daemon, a proxy answering OK).
var ErrCanary = errors.New("clamd canary not detected")

// Canary scans the EICAR test string, and each file in extra, and requires
// every one to be FOUND. It returns an error wrapping ErrCanary that names
// each sample that was not detected, or the transport error if clamd could
// not be asked.
func (c *Client) Canary(ctx context.Context, extra ...string) error {
	type sample struct {
		name string
		data []byte
	}
	samples := []sample{{"EICAR test string", EICAR()}}
	for _, p := range extra {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("clamd canary: %w", err)
		}
		samples = append(samples, sample{p, b})
	}
	var missed []string
	for _, s := range samples {
		reply, err := c.Scan(ctx, bytes.NewReader(s.data))
		if err != nil {
			return fmt.Errorf("clamd canary (%s): %w", s.name, err)
		}
		if reply.Status != StatusFound {
			missed = append(missed, fmt.Sprintf("%s (clamd replied %q)", s.name, reply.Raw))
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("%w: %v", ErrCanary, missed)
	}
	return nil
}

// DefaultMonitorInterval is how often a Monitor runs the canary.
const DefaultMonitorInterval = 5 * time.Minute

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// Interval between canary runs. Default 5 min.
	Interval time.Duration
	// Timeout bounds one canary run. Default 1 min.
	Timeout time.Duration
	// CanaryFiles are extra samples that must be detected (e.g.
	// ClamAVTestFile, or a sample of the production signature set).
	CanaryFiles []string
}

// Monitor runs the canary when started and then every interval, and
// reports whether the last run passed. It has no package-level state; its
// goroutine stops when the context passed to Start is done.
type Monitor struct {
	client *Client
	cfg    MonitorConfig

	mu      sync.Mutex
	healthy bool
	reason  string
	checked time.Time
	done    chan struct{}
}

// NewMonitor returns a monitor of c. It reports unhealthy until the first
// canary has passed.
func NewMonitor(c *Client, cfg MonitorConfig) *Monitor {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultMonitorInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	return &Monitor{client: c, cfg: cfg, reason: "clamd canary has not run yet", done: make(chan struct{})}
}

// Start runs the canary now and every interval in a goroutine, until ctx
// is done. Call it once.
func (m *Monitor) Start(ctx context.Context) {
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.cfg.Interval)
		defer t.Stop()
		for {
			m.CheckNow(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Done is closed when the goroutine started by Start has returned.
func (m *Monitor) Done() <-chan struct{} { return m.done }

// CheckNow runs the canary once, records and returns its outcome.
func (m *Monitor) CheckNow(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	err := m.client.Canary(cctx, m.cfg.CanaryFiles...)
	if ctx.Err() != nil {
		return err // shutting down: keep the last real outcome
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checked = time.Now()
	if err != nil {
		m.healthy, m.reason = false, err.Error()
	} else {
		m.healthy, m.reason = true, "clamd canary detected"
	}
	return err
}

// Healthy reports whether the last canary passed, with a reason and the
// time of the check. A result older than two intervals (the monitor stopped
// or hangs) is unhealthy.
func (m *Monitor) Healthy() (bool, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.checked.IsZero() {
		return m.healthy, m.reason
	}
	at := m.checked.UTC().Format(time.RFC3339)
	if age := time.Since(m.checked); age > 2*m.cfg.Interval+m.cfg.Timeout {
		return false, fmt.Sprintf("clamd canary result is stale (last checked %s)", at)
	}
	return m.healthy, fmt.Sprintf("%s (checked %s)", m.reason, at)
}
