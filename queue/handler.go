package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/metrics"
	"github.com/assetscan/assetscan/scan"
	"github.com/assetscan/assetscan/storage"
)

// Records is the scan record store the handler reads and marks running.
// *storage.Store implements it.
type Records interface {
	Get(ctx context.Context, id string) (storage.Scan, error)
	Put(ctx context.Context, sc storage.Scan) error
}

// Handler is the asynq adapter of the scan service: it decodes a job,
// gates it on the worker's readiness, marks the record running, calls
// scan.Service.Run and maps the outcome onto asynq's retry semantics.
// Everything a scan does lives in package scan.
type Handler struct {
	Service *scan.Service
	Records Records
	// Ready, optional, gates jobs on the worker's health (malware engine
	// canary): while it returns an error, jobs are handed back without
	// using up an attempt (ErrNotReady, ServerConfig's IsFailure).
	Ready func(context.Context) error
	// Metrics, optional (nil-safe).
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// RuleDeclaredPassword is the rule of a declared initial password that
// breaks the complexity rule (judged by the API at submission).
const RuleDeclaredPassword = "account.declared_password_weak"

// ErrNotReady is returned (and retried without using up an attempt) while
// the worker is unhealthy. A not-ready answer on the job's last attempt
// makes asynq archive the task; the sweeper re-enqueues such tasks.
var ErrNotReady = errors.New("worker not ready")

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var j Job
	if err := json.Unmarshal(t.Payload(), &j); err != nil || j.ScanID == "" {
		h.Log.ErrorContext(ctx, "malformed scan task dropped", "error", err)
		return fmt.Errorf("decode job: %v: %w", err, asynq.SkipRetry)
	}
	log := h.Log.With("scan_id", j.ScanID, "asset_id", j.AssetID, "seller_id", j.SellerID, "kind", j.Kind)
	started := time.Now()
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	last := retried >= maxRetry

	sc, err := h.Records.Get(ctx, j.ScanID)
	switch {
	case errors.Is(err, storage.ErrScanNotFound):
		sc = j.Scan() // Redis lost the record: rebuild it from the payload
	case err != nil:
		h.Metrics.ScanRetried(reasonClass(err))
		return fmt.Errorf("read scan record: %w", err)
	}
	if sc.Status == assetscan.StatusDone {
		log.InfoContext(ctx, "scan already done, skipping", "verdict", sc.Verdict)
		return nil
	}
	if h.Ready != nil {
		if err := h.Ready(ctx); err != nil {
			log.WarnContext(ctx, "worker not ready, handing the scan back", "error", err)
			h.Metrics.ScanRetried(metrics.ReasonNotReady)
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	if len(sc.Declared) == 0 {
		sc.Declared = j.Findings
	}
	sc.Status = assetscan.StatusRunning
	sc.Attempts = retried + 1
	if err := h.Records.Put(ctx, sc); err != nil {
		h.Metrics.ScanRetried(reasonClass(err))
		return fmt.Errorf("mark running: %w", err)
	}
	log.InfoContext(ctx, "scan started", "attempt", sc.Attempts, "max_attempts", maxRetry+1, "size", sc.Size)

	v, _, err := h.Service.Run(ctx, scan.Request{Scan: sc, Last: last})
	switch {
	case errors.Is(err, scan.ErrAlreadyFinal):
		log.InfoContext(ctx, "verdict already recorded by another delivery")
		return nil
	case errors.Is(err, scan.ErrNoRoom):
		// Not the scan's fault: back to the queue for a worker with room,
		// without using up an attempt.
		log.WarnContext(ctx, "work disk too full, handing the scan back", "error", err)
		h.Metrics.ScanRetried(metrics.ReasonNotReady)
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	case errors.Is(err, scan.ErrRetry):
		log.WarnContext(ctx, "scan attempt failed, will retry", "error", err)
		h.Metrics.ScanRetried(reasonClass(err))
		return err
	case err != nil:
		log.WarnContext(ctx, "scan attempt ended", "error", err)
		h.Metrics.ScanRetried(reasonClass(err))
		return err
	}
	log.InfoContext(ctx, "scan done", "verdict", v.Verdict, "failed_rules", len(v.FailedRules), "reason", v.Reason, "reused", v.Reused)
	h.Metrics.ScanCompleted(sc.Kind, v.Verdict)
	h.Metrics.ObserveScan(sc.Kind, time.Since(started))
	h.Metrics.AddScannedBytes(sc.Kind, v.Object.Size)
	if v.Verdict == assetscan.Error {
		h.Metrics.ScanError(reasonClass(errors.New(v.Reason)))
	}
	return nil
}

// reasonClass sorts an error into the metrics' reason classes.
func reasonClass(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, ErrNotReady):
		return metrics.ReasonNotReady
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded"):
		return metrics.ReasonTimeout
	case errors.Is(err, storage.ErrUnavailable) || strings.Contains(msg, "object storage"):
		return metrics.ReasonStorage
	case strings.Contains(msg, "malware") || strings.Contains(msg, "clamd"):
		return metrics.ReasonMalwareEngine
	case strings.Contains(msg, "vulnerability database") || strings.Contains(msg, "vulndb"):
		return metrics.ReasonVulnDB
	}
	return metrics.ReasonOther
}
