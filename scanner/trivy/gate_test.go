package trivy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 10 item 10: a DB swap waiting for a long scan does not block new
// scans behind it (a sync.RWMutex would), and gives way to a quiet moment.
func TestGateSwapDoesNotBlockNewScans(t *testing.T) {
	t.Parallel()
	var g dbGate
	ctx := context.Background()
	if err := g.enter(ctx); err != nil { // the long scan
		t.Fatal(err)
	}
	swapped := make(chan error, 1)
	var ran atomic.Bool
	go func() {
		swapped <- g.swap(ctx, time.Hour, func() error { ran.Store(true); return nil })
	}()
	time.Sleep(20 * time.Millisecond) // the swap is waiting now
	// A new scan is admitted at once, its deadline is not spent waiting.
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := g.enter(sctx); err != nil {
		t.Fatalf("new scan blocked behind the waiting swap: %v", err)
	}
	if ran.Load() {
		t.Fatal("swapped while scans were inside")
	}
	g.leave()
	g.leave() // the long scan ends: a quiet moment
	if err := <-swapped; err != nil || !ran.Load() {
		t.Fatalf("swap: %v ran=%v", err, ran.Load())
	}
}

// A swap that has waited drainAfter stops admitting scans, so it cannot
// be starved; a scan waiting at the draining gate gives up at its deadline.
func TestGateDrainsAfterWaiting(t *testing.T) {
	t.Parallel()
	var g dbGate
	ctx := context.Background()
	if err := g.enter(ctx); err != nil {
		t.Fatal(err)
	}
	swapped := make(chan error, 1)
	go func() { swapped <- g.swap(ctx, 10*time.Millisecond, func() error { return nil }) }()
	time.Sleep(50 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := g.enter(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("enter at a draining gate: %v, want the scan's deadline", err)
	}
	g.leave()
	if err := <-swapped; err != nil {
		t.Fatal(err)
	}
	if err := g.enter(ctx); err != nil {
		t.Fatalf("enter after the swap: %v", err)
	}
	g.leave()
}
