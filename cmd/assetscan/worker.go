package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/events"
	"github.com/assetscan/assetscan/metrics"
	"github.com/assetscan/assetscan/storage"
)

// finalizer tags the scanned object with its verdict (when the object
// still is the one scanned) and notifies the callback subscribers. It is
// the scan service's Finalizer for the worker and the sweeper alike.
type finalizer struct {
	obj    *storage.Objects
	tag    bool
	notify func(ctx context.Context, event string, v assetscan.Verdict) error
	log    *slog.Logger
}

// Finalize implements scan.Finalizer.
func (f *finalizer) Finalize(ctx context.Context, sc storage.Scan, v assetscan.Verdict) error {
	var errs []error
	if f.tag && sc.Bucket != "" {
		if err := f.tagPinned(ctx, sc, v.Verdict); err != nil {
			errs = append(errs, err)
		}
	}
	if f.notify != nil {
		if err := f.notify(ctx, "verdict.final", v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tagPinned tags the object version scanned. In an unversioned bucket
// the key may hold other bytes by now: the tag is written only while the
// object's ETag is the one pinned at submission, so new bytes never carry
// the old bytes' verdict. (Between the check and the tag S3 offers no
// condition; the window is one round trip, and an overwrite resets the
// object's tags anyway.)
func (f *finalizer) tagPinned(ctx context.Context, sc storage.Scan, o assetscan.Outcome) error {
	info, err := f.obj.Stat(ctx, sc.Bucket, sc.Key, sc.VersionID)
	if err != nil {
		return err
	}
	if sc.ETag != "" && strings.Trim(info.ETag, `"`) != strings.Trim(sc.ETag, `"`) {
		f.log.WarnContext(ctx, "object changed since it was scanned: verdict tag not written",
			"scan_id", sc.ScanID, "bucket", sc.Bucket, "key", sc.Key)
		return nil
	}
	return events.TagVerdict(ctx, f.obj.Client(), sc.Bucket, sc.Key, sc.VersionID, o)
}

// readiness is what watchReadiness polls (*engines implements it).
type readiness interface {
	Ready(ctx context.Context) error
}

// watchReadiness exports the worker's readiness every 5 s and, once the
// worker has been not ready for alertAfter, logs at error level every
// minute with the reason: a worker that hands every job back is an outage
// for its queues, not a warning.
func watchReadiness(ctx context.Context, r readiness, met *metrics.Metrics, alertAfter time.Duration, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	var since, lastAlert time.Time
	for {
		err := r.Ready(ctx)
		now := time.Now()
		switch {
		case err == nil:
			if !since.IsZero() {
				log.Info("worker ready again", "not_ready_for", now.Sub(since).Round(time.Second))
			}
			since = time.Time{}
			met.SetWorkerReady(true, 0)
		default:
			if since.IsZero() {
				since = now
			}
			met.SetWorkerReady(false, now.Sub(since))
			if now.Sub(since) >= alertAfter && now.Sub(lastAlert) >= time.Minute {
				lastAlert = now
				log.Error("worker not ready: scans are handed back and stay queued", "not_ready_for", now.Sub(since).Round(time.Second), "reason", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startRetryFor bounds how long a starting worker waits for Redis and
// object storage (a whole stack restarting) before it gives up.
const startRetryFor = 5 * time.Minute

// retryStart runs f until it succeeds, ctx ends or startRetryFor passes,
// backing off from 1 s to 30 s and logging each failure: a worker started
// while object storage or Redis is still coming up waits instead of
// exiting (the fault soak saw workers exit on MinIO restarts).
func retryStart(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	deadline := time.Now().Add(startRetryFor)
	wait := time.Second
	for {
		err := f(ctx)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		log.WarnContext(ctx, "start: waiting for a dependency", "step", what, "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
