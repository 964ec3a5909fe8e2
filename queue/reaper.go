package queue

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/storage"
)

// Reaper records verdict "error" for scans whose task asynq archived
// without the handler recording a verdict — e.g. the worker died on the
// last attempt and asynq's recoverer archived the orphaned task. Without
// it such a scan would stay "running" forever.
type Reaper struct {
	Inspector *asynq.Inspector
	Records   Records
	Policy    func(context.Context, assetscan.Kind) (*policies.Policy, error)
	Queues    []string
	Log       *slog.Logger
}

// Sweep runs once over the archived tasks of every queue.
func (r *Reaper) Sweep(ctx context.Context) (int, error) {
	n := 0
	for _, q := range r.Queues {
		tasks, err := r.Inspector.ListArchivedTasks(q, asynq.PageSize(100))
		if err != nil {
			if errors.Is(err, asynq.ErrQueueNotFound) {
				continue
			}
			return n, err
		}
		for _, t := range tasks {
			if t.Type != TypeScan {
				continue
			}
			var j Job
			if err := json.Unmarshal(t.Payload, &j); err != nil || j.ScanID == "" {
				r.Log.ErrorContext(ctx, "archived task with malformed payload deleted", "task_id", t.ID)
				_ = r.Inspector.DeleteTask(q, t.ID)
				continue
			}
			sc, err := r.Records.Get(ctx, j.ScanID)
			if errors.Is(err, storage.ErrScanNotFound) {
				sc = scanFromJob(j)
			} else if err != nil {
				return n, err
			}
			if sc.Status != assetscan.StatusDone {
				reason := "retries exhausted: " + t.LastErr
				if t.LastErr == "" {
					reason = "retries exhausted (worker lost)"
				}
				if err := RecordError(ctx, r.Records, r.Policy, sc, reason); err != nil {
					return n, err
				}
				n++
				r.Log.WarnContext(ctx, "archived scan recorded as error", "scan_id", j.ScanID, "reason", reason)
			}
			_ = r.Inspector.DeleteTask(q, t.ID)
		}
	}
	return n, nil
}

// Run sweeps every interval until ctx ends.
func (r *Reaper) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.Log.WarnContext(ctx, "reaper sweep", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
