// Package queue carries scan jobs from the API to the workers over asynq
// (Redis): the task type and payload, enqueueing with timeouts sized to the
// object, and the worker's handler that downloads, scans and records the
// verdict.
//
// Delivery is at-least-once (asynq re-runs a task whose worker died), so
// the handler is idempotent: a scan that is already done is not redone.
// Every scan ends with a verdict: transient failures are retried with
// backoff, and the last attempt (or the Reaper, for tasks archived without
// running the handler) records verdict "error" with the reason. Nothing
// that could not be checked is ever "pass".
package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/hibiken/asynq"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/storage"
)

// TypeScan is the asynq task type of a scan job.
const TypeScan = "assetscan:scan"

// Queue names. Jobs go to a queue by object size so one 20 GB image does
// not hold back a hundred small packages; give each queue its own
// concurrency with separate workers (assetscan worker --queues).
const (
	QueueSmall = "scan-small"
	QueueLarge = "scan-large"
	// LargeThreshold: objects at or above this size go to QueueLarge.
	LargeThreshold int64 = 256 << 20
)

// Job is the task payload: everything a worker needs, so a job can run
// even if the scan record had to be rebuilt.
type Job struct {
	ScanID         string         `json:"scan_id"`
	AssetID        string         `json:"asset_id"`
	SellerID       string         `json:"seller_id"`
	Kind           assetscan.Kind `json:"kind"`
	Bucket         string         `json:"bucket"`
	Key            string         `json:"key"`
	VersionID      string         `json:"version_id,omitempty"`
	ExpectedSHA256 string         `json:"sha256,omitempty"`
	// ETag pins the object's content as it was at submission.
	ETag string `json:"etag,omitempty"`
	Size int64  `json:"size"`
	// Findings judged at submission (declared password complexity). The
	// declared password itself is never in the job.
	Findings []assetscan.Finding `json:"findings,omitempty"`
	// TaskID is the asynq task id; empty means the scan id. A scan that
	// the sweeper re-enqueues gets a new one.
	TaskID string `json:"task_id,omitempty"`
}

// JobOf is the job of a scan record.
func JobOf(sc storage.Scan) Job {
	return Job{ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind,
		Bucket: sc.Bucket, Key: sc.Key, VersionID: sc.VersionID, ExpectedSHA256: sc.ExpectedSHA256,
		ETag: sc.ETag, Size: sc.Size, Findings: sc.Declared, TaskID: sc.TaskID}
}

// Scan rebuilds a scan record from the job (when Redis lost the record).
func (j Job) Scan() storage.Scan {
	return storage.Scan{
		ScanID: j.ScanID, AssetID: j.AssetID, SellerID: j.SellerID, Kind: j.Kind,
		Bucket: j.Bucket, Key: j.Key, VersionID: j.VersionID, ExpectedSHA256: j.ExpectedSHA256,
		ETag: j.ETag, Size: j.Size, Declared: j.Findings, TaskID: j.TaskID,
		Status: assetscan.StatusQueued, SubmittedAt: time.Now().UTC(),
	}
}

// ValidateQueuePrefix checks a queue name prefix (assetscan's
// --queue-prefix). Deployments that share one Redis give each its own
// prefix (a Redis Cluster has only database 0): asynq's queues are global
// to a database. asynq writes a queue name as the hash tag of its keys
// (asynq:{<queue>}:pending), so a prefix holds no braces, nor white space.
func ValidateQueuePrefix(p string) error {
	if len(p) > 64 {
		return fmt.Errorf("queue prefix %q: longer than 64 bytes", p)
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return r == '{' || r == '}' || unicode.IsSpace(r) || !unicode.IsPrint(r) }); i >= 0 {
		return fmt.Errorf("queue prefix %q: no braces, spaces or control characters (asynq puts queue names in a hash tag)", p)
	}
	return nil
}

// QueueFor returns the queue for an object size.
func QueueFor(size int64) string {
	if size >= LargeThreshold {
		return QueueLarge
	}
	return QueueSmall
}

// Timeout sizes a job's time limit to its object: 10 minutes plus one
// minute per 100 MiB (a 1 MB package gets ~10 min, a 20 GB one ~3.6 h),
// capped at 8 h. Measured throughput (README) is far above 100 MiB/min.
func Timeout(size int64) time.Duration {
	d := 10*time.Minute + time.Duration(size/(100<<20))*time.Minute
	return min(d, 8*time.Hour)
}

// Enqueuer puts scan jobs on the queue.
type Enqueuer struct {
	Client *asynq.Client
	// QueuePrefix is prepended to the queue names (QueueFor): the
	// deployment's --queue-prefix, "" by default. See ValidateQueuePrefix.
	QueuePrefix string
	// MaxRetry is the number of retries after the first attempt. Default 5.
	MaxRetry int
	// Retention keeps finished task info in Redis for inspection. Default 24h.
	Retention time.Duration
}

// Enqueue submits a job. The task id is the scan id, so enqueueing the same
// scan twice is a no-op (asynq.ErrTaskIDConflict is not an error here).
func (e *Enqueuer) Enqueue(ctx context.Context, j Job) error {
	payload, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("enqueue scan: %w", err)
	}
	maxRetry := e.MaxRetry
	if maxRetry <= 0 {
		maxRetry = 5
	}
	ret := e.Retention
	if ret <= 0 {
		ret = 24 * time.Hour
	}
	t := asynq.NewTask(TypeScan, payload,
		asynq.TaskID(cmp.Or(j.TaskID, j.ScanID)),
		asynq.Queue(e.QueuePrefix+QueueFor(j.Size)),
		asynq.Timeout(Timeout(j.Size)),
		asynq.MaxRetry(maxRetry),
		asynq.Retention(ret),
	)
	if _, err := e.Client.EnqueueContext(ctx, t); err != nil {
		if err == asynq.ErrTaskIDConflict {
			return nil
		}
		return fmt.Errorf("enqueue scan: %w", err)
	}
	return nil
}

// RetryDelay is the backoff between attempts: 10 s, 20 s, 40 s, ... capped
// at 10 min.
func RetryDelay(base time.Duration) asynq.RetryDelayFunc {
	if base <= 0 {
		base = 10 * time.Second
	}
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := base << min(n, 10)
		return min(d, 10*time.Minute)
	}
}
