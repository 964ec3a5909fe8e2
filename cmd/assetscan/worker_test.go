package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assetscan/assetscan/metrics"
)

type notReady struct{}

func (notReady) Ready(context.Context) error {
	return errors.New("malware engine unhealthy: canary EICAR not detected")
}

// records keeps the log records a test's logger saw.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) errorWith(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.got {
		if rec.Level == slog.LevelError && rec.Message == msg {
			return true
		}
	}
	return false
}

// Issue 12 item 8: a worker that stays not ready logs at error level with
// the reason and exports assetscan_worker_ready 0.
func TestNotReadyWorkerAlerts(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	met := metrics.New(reg)
	rec := &records{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchReadiness(ctx, notReady{}, met, 0, slog.New(rec))
	deadline := time.Now().Add(5 * time.Second)
	for !rec.errorWith("worker not ready: scans are handed back and stay queued") {
		if time.Now().After(deadline) {
			t.Fatal("no error-level log for a worker that stays not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "assetscan_worker_ready" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("assetscan_worker_ready = %v, want 0", v)
			}
			return
		}
	}
	t.Error("assetscan_worker_ready not exported")
}
