package clamav

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCanary(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	extra := []string{}
	if _, err := os.Stat(ClamAVTestFile); err == nil {
		extra = append(extra, ClamAVTestFile)
	}
	if err := c.Canary(ctxTimeout(t, time.Minute), extra...); err != nil {
		t.Fatalf("Canary: %v", err)
	}
	// A clean extra sample is "not detected".
	clean := filepath.Join(t.TempDir(), "clean.txt")
	os.WriteFile(clean, []byte("clean\n"), 0o644)
	err := c.Canary(ctxTimeout(t, time.Minute), clean)
	if !errors.Is(err, ErrCanary) || !strings.Contains(err.Error(), clean) {
		t.Errorf("Canary(clean extra) = %v, want ErrCanary naming %s", err, clean)
	}

	m := NewMonitor(c, MonitorConfig{Interval: time.Hour})
	if ok, why := m.Healthy(); ok || why == "" {
		t.Errorf("Healthy before the first canary = %v, %q", ok, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.Start(ctx)
	waitHealth(t, m, true)
	cancel()
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Error("monitor did not stop with its context")
	}
}

// TestCanaryFails: something that answers OK to everything is not a
// malware engine.
func TestCanaryFails(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{Addr: fakeClamd(t, replyAfterStream("stream: OK\x00"))})
	err := c.Canary(context.Background())
	if !errors.Is(err, ErrCanary) || !strings.Contains(err.Error(), "EICAR") {
		t.Fatalf("Canary = %v, want ErrCanary naming EICAR", err)
	}
	t.Logf("error: %v", err)
	if err := VerifySignatures(context.Background(), c); err == nil {
		t.Error("VerifySignatures against an OK-to-everything server = nil")
	} else {
		t.Logf("VerifySignatures: %v", err)
	}

	m := NewMonitor(c, MonitorConfig{Interval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Start(ctx)
	why := waitHealth(t, m, false)
	if !strings.Contains(why, "canary") {
		t.Errorf("reason %q", why)
	}

	// An engine that is down is unhealthy too.
	down := NewMonitor(newClient(t, Config{Addr: "unix:/nonexistent/clamd.sock"}), MonitorConfig{})
	if err := down.CheckNow(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("CheckNow = %v", err)
	}
	if ok, why := down.Healthy(); ok || !strings.Contains(why, "unavailable") {
		t.Errorf("Healthy = %v, %q", ok, why)
	}
}

func waitHealth(t *testing.T, m *Monitor, want bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, why := m.Healthy()
		if ok == want && !strings.Contains(why, "not run yet") {
			t.Logf("Healthy = %v, %q", ok, why)
			return why
		}
		if time.Now().After(deadline) {
			t.Fatalf("Healthy = %v, %q; want %v", ok, why, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
