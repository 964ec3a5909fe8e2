package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/metrics"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/storage"
	"github.com/assetscan/assetscan/vulndb"
)

// Records is the scan record and verdict store the handler writes to.
// *storage.Store implements it.
type Records interface {
	Get(ctx context.Context, id string) (storage.Scan, error)
	Put(ctx context.Context, sc storage.Scan) error
	SaveVerdict(ctx context.Context, sc storage.Scan, v assetscan.Verdict, f assetscan.Findings) error
	Verdict(ctx context.Context, id string) (assetscan.Verdict, error)
}

// Fetcher downloads the object to scan. *storage.Objects implements it.
type Fetcher interface {
	Download(ctx context.Context, bucket, key, versionID, dst string, maxBytes int64) (sha256 string, n int64, err error)
}

// Handler runs scan jobs. Its fields are required unless marked optional.
type Handler struct {
	Records Records
	Fetcher Fetcher
	Scanner *scanner.Scanner
	// Policy returns the policy in force for a kind.
	Policy func(context.Context, assetscan.Kind) (*policies.Policy, error)
	// Content, optional, finds a previous scan of the same content: its
	// findings are reused (and judged under the current policy) instead of
	// rescanning, when they were made with the DB in use (DB, required
	// with Content).
	Content Content
	// DB, optional, describes the DB in use; with a policy max_age a
	// stale DB makes the scan end in error (vulndb.stale).
	DB func() assetscan.DBRef
	// Notify, optional, is told of every final verdict ("verdict.final").
	Notify func(ctx context.Context, event string, v assetscan.Verdict) error
	// Metrics, optional (nil-safe).
	Metrics *metrics.Metrics
	// WorkRoot is the directory under which each scan gets its private
	// work dir (removed when the scan ends).
	WorkRoot string
	// Ready, optional, gates jobs on the worker's health (malware engine
	// canary, DB freshness): a job is handed back for retry while it
	// returns an error.
	Ready func(context.Context) error
	Log   *slog.Logger
}

// Content looks up stored scans by content. *storage.Store implements it.
type Content interface {
	ByContent(ctx context.Context, kind assetscan.Kind, sha, name string) (string, error)
	Findings(ctx context.Context, id string) (assetscan.Findings, error)
}

// RuleDeclaredPassword is the rule of a declared initial password that
// breaks the complexity rule (judged by the API at submission).
const RuleDeclaredPassword = "account.declared_password_weak"

// ErrNotReady is returned (and retried) while the worker is unhealthy.
var ErrNotReady = errors.New("worker not ready")

// ProcessTask implements asynq.Handler.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var j Job
	if err := json.Unmarshal(t.Payload(), &j); err != nil || j.ScanID == "" {
		h.Log.ErrorContext(ctx, "malformed scan task dropped", "error", err)
		return fmt.Errorf("decode job: %v: %w", err, asynq.SkipRetry)
	}
	log := h.Log.With("scan_id", j.ScanID, "asset_id", j.AssetID, "seller_id", j.SellerID, "kind", j.Kind)
	ctx = withLogger(ctx, log)
	started := time.Now()
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	last := retried >= maxRetry

	sc, err := h.Records.Get(ctx, j.ScanID)
	switch {
	case errors.Is(err, storage.ErrScanNotFound):
		sc = scanFromJob(j) // Redis lost the record: rebuild it from the payload
	case err != nil:
		return h.retryOrFail(ctx, j, storage.Scan{}, last, fmt.Errorf("read scan record: %w", err))
	}
	if sc.Status == assetscan.StatusDone {
		log.InfoContext(ctx, "scan already done, skipping", "verdict", sc.Verdict)
		return nil
	}
	if h.Ready != nil {
		if err := h.Ready(ctx); err != nil {
			// Not the scan's fault: hand the job back without using up an
			// attempt (ServerConfig's IsFailure), for a healthy worker.
			log.WarnContext(ctx, "worker not ready, handing the scan back", "error", err)
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	sc.Status = assetscan.StatusRunning
	sc.Attempts = retried + 1
	if err := h.Records.Put(ctx, sc); err != nil {
		return h.retryOrFail(ctx, j, sc, last, err)
	}
	log.InfoContext(ctx, "scan started", "attempt", sc.Attempts, "max_attempts", maxRetry+1, "size", j.Size)

	v, f, err := h.scan(ctx, j, sc)
	if rt := (errRetry{}); errors.As(err, &rt) && last {
		err = nil // out of retries: record the error verdict as it stands
	}
	if err != nil {
		return h.retryOrFail(ctx, j, sc, last, err)
	}
	if err := h.Records.SaveVerdict(ctx, sc, v, f); err != nil {
		return h.retryOrFail(ctx, j, sc, last, fmt.Errorf("save verdict: %w", err))
	}
	log.InfoContext(ctx, "scan done", "verdict", v.Verdict, "failed_rules", len(v.FailedRules), "reason", v.Reason)
	h.Metrics.ScanCompleted(j.Kind, v.Verdict)
	h.Metrics.ObserveScan(j.Kind, time.Since(started))
	h.Metrics.AddScannedBytes(j.Kind, v.Object.Size)
	if v.Verdict == assetscan.Error {
		h.Metrics.ScanError(reasonClass(errors.New(v.Reason)))
	}
	h.notify(ctx, v)
	return nil
}

// errRetry marks an outcome that should be retried rather than recorded.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

// scan downloads and scans one job. It returns a verdict to record, or an
// error that is either retried or, on the last attempt, recorded as an
// error verdict.
func (h *Handler) scan(ctx context.Context, j Job, sc storage.Scan) (assetscan.Verdict, assetscan.Findings, error) {
	log := loggerFrom(ctx)
	pol, err := h.Policy(ctx, j.Kind)
	if err != nil {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("policy: %w", err)
	}
	base := baseVerdict(sc)
	if h.DB != nil && pol.VulnDB.MaxAge > 0 {
		if ref := h.DB(); vulndb.Stale(ref, pol.VulnDB.MaxAge, time.Now()) {
			// Refuse to judge with an old DB: it would miss what a fresh one
			// knows. Not retried: a DB does not get fresher in seconds.
			f := assetscan.Findings{Checks: []assetscan.CheckRun{{Name: assetscan.CheckVulnerability, Status: assetscan.RunError,
				Reason: fmt.Sprintf("vulndb.stale: DB built %s, older than the policy's max_age %s", ref.UpdatedAt.Format(time.RFC3339), pol.VulnDB.MaxAge)}}}
			v := policies.Verdict(pol, base, f)
			v.VulnDB = &ref
			v.Reason = "vulndb.stale: the vulnerability DB (built " + ref.UpdatedAt.Format(time.RFC3339) + ") is older than the policy allows (" + pol.VulnDB.MaxAge.String() + ")"
			return v, f, nil
		}
	}
	if err := os.MkdirAll(h.WorkRoot, 0o750); err != nil {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("work root: %w", err)
	}
	work, err := os.MkdirTemp(h.WorkRoot, "scan-"+j.ScanID+"-")
	if err != nil {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("work dir: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			log.WarnContext(ctx, "remove work dir", "error", err)
		}
	}()

	name := filepath.Base(j.Key)
	asset := filepath.Join(work, "asset")
	start := time.Now()
	sum, n, err := h.Fetcher.Download(ctx, j.Bucket, j.Key, j.VersionID, asset, pol.MaxSize())
	switch {
	case errors.Is(err, storage.ErrTooLarge):
		f := assetscan.Findings{
			Findings: []assetscan.Finding{{Check: assetscan.CheckFormat, Rule: "format.size", Path: name,
				Message: fmt.Sprintf("asset is larger than the %d bytes allowed", pol.MaxSize())}},
			Checks: []assetscan.CheckRun{{Name: assetscan.CheckFormat, Status: assetscan.RunOK}},
		}
		base.Object.Size = n
		return policies.Verdict(pol, base, f), f, nil
	case errors.Is(err, storage.ErrNotFound):
		// Permanent: the object is gone. Record it, don't retry.
		f := assetscan.Findings{Checks: []assetscan.CheckRun{{Name: assetscan.CheckFormat, Status: assetscan.RunError,
			Reason: "object not found in storage"}}}
		v := policies.Verdict(pol, base, f)
		v.Verdict, v.Reason = assetscan.Error, "object not found in storage: "+j.Bucket+"/"+j.Key
		return v, f, nil
	case err != nil:
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("download: %w", err)
	}
	log.InfoContext(ctx, "downloaded", "bytes", n, "sha256", sum, "duration", time.Since(start))
	base.SHA256 = sum
	base.Object.Size = n
	if v, f, ok := h.reuse(ctx, j, sum, name, pol, base); ok {
		log.InfoContext(ctx, "same content scanned before with the same DB: findings reused", "reused_from", v.ReusedFrom)
		return v, f, nil
	}

	sc2 := *h.Scanner
	sc2.Log = log
	rep, err := sc2.Scan(ctx, scanner.Request{
		Kind: j.Kind, Path: asset, Name: name, SHA256: sum, ExpectedSHA256: j.ExpectedSHA256,
		WorkDir: work, Rules: pol, Findings: j.Findings,
	})
	if err != nil {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("scan: %w", err)
	}
	base.SHA256 = rep.SHA256
	base.Object.Size = rep.Size
	v := policies.Verdict(pol, base, rep.Findings)
	if v.Verdict == assetscan.Error && rep.Transient {
		return v, rep.Findings, errRetry{errors.New(v.Reason)}
	}
	return v, rep.Findings, nil
}

// retryOrFail returns err for asynq to retry, or, on the last attempt,
// records verdict "error" with the reason and stops.
func (h *Handler) retryOrFail(ctx context.Context, j Job, sc storage.Scan, last bool, err error) error {
	log := loggerFrom(ctx)
	if !last {
		log.WarnContext(ctx, "scan attempt failed, will retry", "error", err)
		h.Metrics.ScanRetried(reasonClass(err))
		return err
	}
	h.Metrics.ScanError(reasonClass(err))
	if sc.ScanID == "" {
		sc = scanFromJob(j)
	}
	// The handler's ctx may be cancelled (time-out); recording the verdict
	// must still happen.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := RecordError(wctx, h.Records, h.Policy, sc, "retries exhausted: "+err.Error()); serr != nil {
		log.ErrorContext(ctx, "recording error verdict failed", "error", serr, "cause", err)
		return fmt.Errorf("%w (recording error verdict: %w)", err, serr)
	}
	log.ErrorContext(ctx, "scan ended in error", "error", err)
	if h.Notify != nil {
		if v, verr := h.Records.Verdict(wctx, sc.ScanID); verr == nil {
			h.notify(wctx, v)
		}
	}
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}

func (h *Handler) notify(ctx context.Context, v assetscan.Verdict) {
	if h.Notify == nil {
		return
	}
	if err := h.Notify(ctx, "verdict.final", v); err != nil {
		loggerFrom(ctx).WarnContext(ctx, "notify subscribers", "error", err)
	}
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

// RecordError records a final "error" verdict for a scan.
func RecordError(ctx context.Context, r Records, policy func(context.Context, assetscan.Kind) (*policies.Policy, error), sc storage.Scan, reason string) error {
	v := baseVerdict(sc)
	v.Status = assetscan.StatusDone
	v.Verdict = assetscan.Error
	v.Reason = reason
	v.Findings = []assetscan.JudgedFinding{}
	if policy != nil {
		if p, err := policy(ctx, sc.Kind); err == nil {
			v.Policy = p.Ref()
		}
	}
	f := assetscan.Findings{Findings: []assetscan.Finding{}}
	return r.SaveVerdict(ctx, sc, v, f)
}

// reuse judges the findings of a previous scan of the same content (same
// digest, kind and file name) under the current policy, when they are
// complete and were made with the DB in use now.
func (h *Handler) reuse(ctx context.Context, j Job, sum, name string, pol *policies.Policy, base assetscan.Verdict) (assetscan.Verdict, assetscan.Findings, bool) {
	if h.Content == nil || h.DB == nil {
		return assetscan.Verdict{}, assetscan.Findings{}, false
	}
	prev, err := h.Content.ByContent(ctx, j.Kind, sum, name)
	if err != nil || prev == j.ScanID {
		return assetscan.Verdict{}, assetscan.Findings{}, false
	}
	f, err := h.Content.Findings(ctx, prev)
	if err != nil || f.DB == nil || f.DB.Digest == "" || f.DB.Digest != h.DB().Digest || len(f.Checks) == 0 {
		return assetscan.Verdict{}, assetscan.Findings{}, false
	}
	for _, c := range f.Checks {
		if c.Status != assetscan.RunOK {
			return assetscan.Verdict{}, assetscan.Findings{}, false
		}
	}
	// The submitted digest is this submission's: judge it afresh.
	kept := f.Findings[:0:0]
	for _, fd := range f.Findings {
		if fd.Rule != "format.digest_mismatch" && fd.Rule != RuleDeclaredPassword {
			kept = append(kept, fd)
		}
	}
	kept = append(kept, j.Findings...)
	if j.ExpectedSHA256 != "" && !strings.EqualFold(j.ExpectedSHA256, sum) {
		kept = append(kept, assetscan.Finding{Check: assetscan.CheckFormat, Rule: "format.digest_mismatch", Path: name,
			Message: fmt.Sprintf("content digest sha256:%s does not match the submitted sha256:%s", sum, strings.ToLower(j.ExpectedSHA256))})
	}
	f.Findings = kept
	base.ReusedFrom = prev
	return policies.Verdict(pol, base, f), f, true
}

func baseVerdict(sc storage.Scan) assetscan.Verdict {
	return assetscan.Verdict{
		ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind,
		Status: assetscan.StatusDone,
		Object: assetscan.Object{Bucket: sc.Bucket, Key: sc.Key, VersionID: sc.VersionID,
			Name: filepath.Base(sc.Key), Size: sc.Size},
		SubmittedAt: sc.SubmittedAt,
		CompletedAt: time.Now().UTC(),
		Attempts:    sc.Attempts,
	}
}

func scanFromJob(j Job) storage.Scan {
	return storage.Scan{
		ScanID: j.ScanID, AssetID: j.AssetID, SellerID: j.SellerID, Kind: j.Kind,
		Bucket: j.Bucket, Key: j.Key, VersionID: j.VersionID, ExpectedSHA256: j.ExpectedSHA256,
		Size: j.Size, Status: assetscan.StatusQueued, SubmittedAt: time.Now().UTC(),
	}
}

type logKey struct{}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, logKey{}, l)
}

func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(logKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
