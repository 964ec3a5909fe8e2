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
	"github.com/assetscan/assetscan/storage"
)

// SweepRecords is what the sweeper reads. *storage.Store implements it.
type SweepRecords interface {
	Get(ctx context.Context, id string) (storage.Scan, error)
	Put(ctx context.Context, sc storage.Scan) error
	Pending(ctx context.Context, cutoff time.Time, offset, n int) ([]string, error)
	Unpend(ctx context.Context, id string) error
	Reindex(ctx context.Context, sc storage.Scan) error
	Lock(ctx context.Context, name string, ttl time.Duration) (bool, error)
}

// Finisher records an error verdict and finalizes it (tag, callbacks).
// *scan.Service implements it.
type Finisher interface {
	Fail(ctx context.Context, sc storage.Scan, reason string) (assetscan.Verdict, error)
}

// Sweeper is the fleet's maintenance of scans that would otherwise never
// get a verdict, whatever made them stick: a task archived after its
// retries (recorded as error) or after a not-ready answer on its last
// attempt (re-enqueued), a record whose task was never enqueued (a crash
// between the two) or was deleted (the queue UI), a scan unfinished past
// its deadline (recorded as error). One worker of the fleet sweeps at a
// time (a Redis lock per round). Its fields are required unless marked.
type Sweeper struct {
	Inspector *asynq.Inspector
	Records   SweepRecords
	Finisher  Finisher
	// Enqueuer re-enqueues; its QueuePrefix names the queues swept.
	Enqueuer *Enqueuer
	// StuckAfter: an unfinished scan with no task in the queue for this
	// long is re-enqueued. Default 2 minutes.
	StuckAfter time.Duration
	// Deadline: a scan unfinished this long after its submission ends in
	// error. Default 24 hours.
	Deadline time.Duration
	Log      *slog.Logger
	// Now, optional, is the clock (tests).
	Now func() time.Time
}

// Sweep paging: scans examined per page and per round.
const (
	sweepPage     = 500
	maxSweepScans = 100_000
)

// SweepResult counts what a sweep did.
type SweepResult struct {
	// Failed: error verdicts recorded (retries exhausted, deadline).
	Failed int
	// Requeued: scans put back on the queue.
	Requeued int
}

func (s *Sweeper) defaults() {
	if s.StuckAfter <= 0 {
		s.StuckAfter = 2 * time.Minute
	}
	if s.Deadline <= 0 {
		s.Deadline = 24 * time.Hour
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
}

// Sweep runs one round (when this worker holds the round's lock).
func (s *Sweeper) Sweep(ctx context.Context) (SweepResult, error) {
	s.defaults()
	var res SweepResult
	ok, err := s.Records.Lock(ctx, "sweep", s.StuckAfter/2)
	if err != nil || !ok {
		return res, err
	}
	if err := s.archived(ctx, &res); err != nil {
		return res, err
	}
	err = s.pending(ctx, &res)
	return res, err
}

// archived handles tasks asynq gave up on.
func (s *Sweeper) archived(ctx context.Context, res *SweepResult) error {
	for _, q := range s.queues(QueueSmall, QueueLarge) {
		tasks, err := s.Inspector.ListArchivedTasks(q, asynq.PageSize(100))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sweep: list archived: %w", err)
		}
		for _, t := range tasks {
			if t.Type != TypeScan {
				continue
			}
			var j Job
			if err := json.Unmarshal(t.Payload, &j); err != nil || j.ScanID == "" {
				s.Log.ErrorContext(ctx, "archived task with malformed payload deleted", "task_id", t.ID)
				_ = s.Inspector.DeleteTask(q, t.ID)
				continue
			}
			sc, err := s.Records.Get(ctx, j.ScanID)
			if errors.Is(err, storage.ErrScanNotFound) {
				sc = j.Scan()
			} else if err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
			if sc.Status != assetscan.StatusDone {
				notReady := strings.Contains(t.LastErr, ErrNotReady.Error())
				if notReady && s.Now().Sub(sc.SubmittedAt) < s.Deadline {
					// No attempt was spent on it: hand it to a healthy worker.
					if err := s.requeue(ctx, sc); err != nil {
						return err
					}
					res.Requeued++
				} else {
					reason := "retries exhausted: " + t.LastErr
					if t.LastErr == "" {
						reason = "retries exhausted (worker lost)"
					}
					if _, err := s.Finisher.Fail(ctx, sc, reason); err != nil && !errors.Is(err, storage.ErrAlreadyFinal) {
						// Busy or unreachable: the task stays archived,
						// the next round tries again.
						s.Log.WarnContext(ctx, "sweep: recording error verdict", "scan_id", j.ScanID, "error", err)
						continue
					}
					res.Failed++
					s.Log.WarnContext(ctx, "archived scan recorded as error", "scan_id", j.ScanID, "reason", reason)
				}
			}
			_ = s.Inspector.DeleteTask(q, t.ID)
		}
	}
	return nil
}

// pending handles unfinished scans that have no live task.
func (s *Sweeper) pending(ctx context.Context, res *SweepResult) error {
	// Every unfinished scan is looked at, a page at a time (a backlog of
	// old scans with live tasks must not hide a stuck one behind it).
	var ids []string
	cutoff := s.Now().Add(-s.StuckAfter)
	for offset := 0; offset < maxSweepScans; offset += sweepPage {
		page, err := s.Records.Pending(ctx, cutoff, offset, sweepPage)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		ids = append(ids, page...)
		if len(page) < sweepPage {
			break
		}
	}
	for _, id := range ids {
		sc, err := s.Records.Get(ctx, id)
		if errors.Is(err, storage.ErrScanNotFound) {
			_ = s.Records.Unpend(ctx, id)
			continue
		}
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		if sc.Status == assetscan.StatusDone {
			// Finished, yet still pending: its writer's index transaction
			// failed (or is running now: the same writes twice).
			if err := s.Records.Reindex(ctx, sc); err != nil {
				s.Log.WarnContext(ctx, "sweep: re-indexing a finished scan", "scan_id", id, "error", err)
				_ = s.Records.Unpend(ctx, id)
			}
			continue
		}
		if s.Now().Sub(sc.SubmittedAt) >= s.Deadline {
			reason := fmt.Sprintf("no verdict within %s of submission (status %s, %d attempts)", s.Deadline, sc.Status, sc.Attempts)
			if _, err := s.Finisher.Fail(ctx, sc, reason); err != nil && !errors.Is(err, storage.ErrAlreadyFinal) {
				s.Log.WarnContext(ctx, "sweep: recording error verdict", "scan_id", id, "error", err)
				continue
			}
			res.Failed++
			s.Log.ErrorContext(ctx, "scan past its deadline recorded as error", "scan_id", id, "status", sc.Status)
			continue
		}
		live, err := s.hasTask(sc)
		if err != nil {
			return err
		}
		if !live {
			if err := s.requeue(ctx, sc); err != nil {
				return err
			}
			res.Requeued++
			s.Log.WarnContext(ctx, "scan without a queued task re-enqueued", "scan_id", id, "status", sc.Status)
		}
	}
	return nil
}

// hasTask reports whether the scan's task is in the queue in any state
// but archived or completed.
func (s *Sweeper) hasTask(sc storage.Scan) (bool, error) {
	id := sc.TaskID
	if id == "" {
		id = sc.ScanID
	}
	for _, q := range s.queues(QueueFor(sc.Size), QueueSmall, QueueLarge) {
		info, err := s.Inspector.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("sweep: task info: %w", err)
		}
		switch info.State {
		case asynq.TaskStateArchived, asynq.TaskStateCompleted:
			return false, nil
		}
		return true, nil
	}
	return false, nil
}

// queues names the deployment's queues (the Enqueuer's prefix).
func (s *Sweeper) queues(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = s.Enqueuer.QueuePrefix + n
	}
	return out
}

// requeue puts a scan back on the queue under a new task id (the old one
// may still be held by asynq's retention) with a fresh attempt budget.
func (s *Sweeper) requeue(ctx context.Context, sc storage.Scan) error {
	sc.TaskID = fmt.Sprintf("%s-r%d", sc.ScanID, s.Now().UnixMilli())
	sc.Status = assetscan.StatusQueued
	if err := s.Records.Put(ctx, sc); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if err := s.Enqueuer.Enqueue(ctx, JobOf(sc)); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

// Run sweeps every interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context, every time.Duration) {
	s.defaults()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if res, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.Log.WarnContext(ctx, "sweep", "error", err)
		} else if res.Failed+res.Requeued > 0 {
			s.Log.InfoContext(ctx, "sweep", "failed", res.Failed, "requeued", res.Requeued)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
