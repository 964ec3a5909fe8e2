package trivy

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// dbGate guards trivy's process-wide vulnerability DB (one package-level
// handle: two generations cannot be open at once). Scans enter and leave;
// a swap needs a moment with no scan inside.
//
// Unlike a sync.RWMutex, a waiting swap does not make new scans queue
// behind the longest running one: scans keep entering while the swap
// waits for a quiet moment. Only after the swap has waited drainAfter
// does the gate stop admitting (draining), so a busy worker cannot starve
// a DB update forever; scans that wait at a draining gate give up at
// their own deadline. The swap itself (close, open) takes milliseconds.
type dbGate struct {
	mu       sync.Mutex
	inside   int
	swapping bool
	draining bool
	// changed is closed (and replaced) on every state change.
	changed chan struct{}
}

func (g *dbGate) init() {
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
}

func (g *dbGate) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// enter admits a scan, waiting while a swap runs or drains; it fails with
// ctx's error.
func (g *dbGate) enter(ctx context.Context) error {
	g.mu.Lock()
	g.init()
	for g.swapping || g.draining {
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("trivy: waiting for a DB swap: %w", ctx.Err())
		case <-ch:
		}
		g.mu.Lock()
	}
	g.inside++
	g.mu.Unlock()
	return nil
}

// leave ends a scan.
func (g *dbGate) leave() {
	g.mu.Lock()
	g.init()
	g.inside--
	if g.inside == 0 {
		g.notify()
	}
	g.mu.Unlock()
}

// swap runs fn with no scan inside. It waits for a quiet moment; after
// drainAfter it stops admitting new scans until the running ones end.
func (g *dbGate) swap(ctx context.Context, drainAfter time.Duration, fn func() error) error {
	start := time.Now()
	timer := time.NewTimer(drainAfter)
	defer timer.Stop()
	g.mu.Lock()
	g.init()
	for g.inside > 0 || g.swapping {
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			g.mu.Lock()
			if g.draining {
				g.draining = false
				g.notify()
			}
			g.mu.Unlock()
			return fmt.Errorf("trivy: DB swap waited %s: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-timer.C:
			g.mu.Lock()
			g.draining = true
			g.mu.Unlock()
		case <-ch:
		}
		g.mu.Lock()
	}
	g.swapping = true
	g.mu.Unlock()
	err := fn()
	g.mu.Lock()
	g.swapping, g.draining = false, false
	g.notify()
	g.mu.Unlock()
	return err
}
