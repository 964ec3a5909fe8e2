package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/storage"
)

// memRecords is an in-memory scan record store.
type memRecords struct {
	mu    sync.Mutex
	scans map[string]storage.Scan
}

func (m *memRecords) Get(_ context.Context, id string) (storage.Scan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.scans[id]
	if !ok {
		return storage.Scan{}, storage.ErrScanNotFound
	}
	return sc, nil
}

func (m *memRecords) Put(_ context.Context, sc storage.Scan) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scans[sc.ScanID] = sc
	return nil
}

func (m *memRecords) Pending(_ context.Context, cutoff time.Time, offset, n int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, sc := range m.scans {
		if sc.Status != assetscan.StatusDone && !sc.SubmittedAt.After(cutoff) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if offset >= len(ids) {
		return nil, nil
	}
	return ids[offset:min(len(ids), offset+n)], nil
}

func (m *memRecords) Unpend(context.Context, string) error { return nil }

func (m *memRecords) Reindex(context.Context, storage.Scan) error { return nil }

func (m *memRecords) Lock(context.Context, string, time.Duration) (bool, error) { return true, nil }

// memFinisher records the error verdicts the sweeper asks for.
type memFinisher struct {
	mu     sync.Mutex
	failed map[string]string
	rec    *memRecords
}

func (f *memFinisher) Fail(ctx context.Context, sc storage.Scan, reason string) (assetscan.Verdict, error) {
	f.mu.Lock()
	f.failed[sc.ScanID] = reason
	f.mu.Unlock()
	sc.Status, sc.Verdict = assetscan.StatusDone, assetscan.Error
	_ = f.rec.Put(ctx, sc)
	return assetscan.Verdict{ScanID: sc.ScanID, Verdict: assetscan.Error, Reason: reason}, nil
}

type sweepBundle struct {
	prefix   string // the deployment's queue prefix
	sweeper  *Sweeper
	records  *memRecords
	finisher *memFinisher
	insp     *asynq.Inspector
	rdb      redis.UniversalClient
	now      time.Time
}

// setupSweeper is a sweeper of a deployment whose queues carry prefix.
func setupSweeper(t *testing.T, prefix string) *sweepBundle {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	rec := &memRecords{scans: map[string]storage.Scan{}}
	b := &sweepBundle{prefix: prefix, records: rec, finisher: &memFinisher{failed: map[string]string{}, rec: rec},
		insp: asynq.NewInspectorFromRedisClient(rdb), rdb: rdb, now: time.Now()}
	b.sweeper = &Sweeper{Inspector: b.insp, Records: rec, Finisher: b.finisher,
		Enqueuer:   &Enqueuer{Client: asynq.NewClientFromRedisClient(rdb), MaxRetry: 2, QueuePrefix: prefix},
		StuckAfter: time.Minute, Deadline: time.Hour, Now: func() time.Time { return b.now }}
	return b
}

func (b *sweepBundle) record(t *testing.T, id string, age time.Duration, status assetscan.Status) storage.Scan {
	t.Helper()
	sc := storage.Scan{ScanID: id, AssetID: "a-" + id, SellerID: "s", Kind: assetscan.KindPackage, Bucket: "u", Key: id + ".zip",
		Size: 100, Status: status, SubmittedAt: b.now.Add(-age), TaskID: id}
	if err := b.records.Put(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

func (b *sweepBundle) queued(t *testing.T) []string {
	t.Helper()
	tasks, err := b.insp.ListPendingTasks(b.prefix + QueueSmall)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	var ids []string
	for _, ti := range tasks {
		ids = append(ids, ti.ID)
	}
	return ids
}

// A record whose task never reached the queue (a crash between Create and
// Enqueue), or whose task was deleted from the queue UI, is re-enqueued;
// one with a live task is left alone; one past the deadline ends in error.
func TestSweeperRequeuesScansWithoutTask(t *testing.T) {
	t.Parallel()
	for _, prefix := range queuePrefixes {
		t.Run("prefix="+prefix, func(t *testing.T) { testSweeperRequeuesScansWithoutTask(t, prefix) })
	}
}

// queuePrefixes: the default deployment and one sharing its Redis.
var queuePrefixes = []string{"", "tenant-a:"}

func testSweeperRequeuesScansWithoutTask(t *testing.T, prefix string) {
	b := setupSweeper(t, prefix)
	ctx := context.Background()
	b.record(t, "scn_lost", 5*time.Minute, assetscan.StatusQueued)
	live := b.record(t, "scn_live", 5*time.Minute, assetscan.StatusQueued)
	if err := b.sweeper.Enqueuer.Enqueue(ctx, JobOf(live)); err != nil {
		t.Fatal(err)
	}
	deleted := b.record(t, "scn_deleted", 5*time.Minute, assetscan.StatusQueued)
	if err := b.sweeper.Enqueuer.Enqueue(ctx, JobOf(deleted)); err != nil {
		t.Fatal(err)
	}
	if err := b.insp.DeleteTask(prefix+QueueSmall, "scn_deleted"); err != nil {
		t.Fatal(err)
	}
	b.record(t, "scn_fresh", 10*time.Second, assetscan.StatusQueued)
	b.record(t, "scn_ancient", 2*time.Hour, assetscan.StatusRunning)

	res, err := b.sweeper.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requeued != 2 || res.Failed != 1 {
		t.Errorf("sweep = %+v, want 2 requeued (lost, deleted), 1 failed (ancient)", res)
	}
	q := b.queued(t)
	if len(q) != 3 {
		t.Errorf("queue holds %v, want the live task and two re-enqueued ones", q)
	}
	for _, id := range []string{"scn_lost", "scn_deleted"} {
		sc, _ := b.records.Get(ctx, id)
		if sc.TaskID == id || sc.Status != assetscan.StatusQueued {
			t.Errorf("%s: task id %q status %s, want a new task id, queued", id, sc.TaskID, sc.Status)
		}
	}
	if r := b.finisher.failed["scn_ancient"]; r == "" {
		t.Error("the scan past its deadline got no error verdict")
	}
	// A second sweep finds every scan with a live task: nothing to do.
	if res, err := b.sweeper.Sweep(ctx); err != nil || res.Requeued+res.Failed != 0 {
		t.Errorf("second sweep = %+v %v", res, err)
	}
}

// A task archived after a not-ready answer on its last attempt (asynq
// archives before it asks IsFailure) is re-enqueued, not failed; a task
// archived after real failures is recorded as error.
func TestSweeperArchivedTasks(t *testing.T) {
	t.Parallel()
	for _, prefix := range queuePrefixes {
		t.Run("prefix="+prefix, func(t *testing.T) { testSweeperArchivedTasks(t, prefix) })
	}
}

func testSweeperArchivedTasks(t *testing.T, prefix string) {
	b := setupSweeper(t, prefix)
	ctx := context.Background()
	notReady := b.record(t, "scn_notready", time.Minute, assetscan.StatusQueued)
	broken := b.record(t, "scn_broken", time.Minute, assetscan.StatusRunning)
	enq := &Enqueuer{Client: asynq.NewClientFromRedisClient(b.rdb), MaxRetry: -1}
	for _, sc := range []storage.Scan{notReady, broken} {
		task := asynq.NewTask(TypeScan, mustJSON(t, JobOf(sc)), asynq.TaskID(sc.ScanID), asynq.Queue(prefix+QueueSmall), asynq.MaxRetry(0))
		if _, err := enq.Client.EnqueueContext(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{prefix + QueueSmall: 1},
		TaskCheckInterval: 10 * time.Millisecond, IsFailure: func(err error) bool { return !errors.Is(err, ErrNotReady) },
		LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeScan, func(_ context.Context, task *asynq.Task) error {
		if string(task.Payload()) != "" && containsID(task.Payload(), "scn_notready") {
			return fmt.Errorf("%w: malware engine unhealthy", ErrNotReady)
		}
		return errors.New("download: object storage unavailable")
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tasks, _ := b.insp.ListArchivedTasks(prefix + QueueSmall)
		if len(tasks) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tasks not archived: %d", len(tasks))
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Shutdown()
	res, err := b.sweeper.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requeued != 1 || res.Failed != 1 {
		t.Fatalf("sweep = %+v, want the not-ready task re-enqueued and the broken one failed", res)
	}
	if _, ok := b.finisher.failed["scn_notready"]; ok {
		t.Error("a scan handed back as not ready was recorded as error")
	}
	if r := b.finisher.failed["scn_broken"]; r == "" {
		t.Error("the broken scan got no error verdict")
	}
	if q := b.queued(t); len(q) != 1 {
		t.Errorf("queue = %v, want the re-enqueued not-ready scan", q)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containsID(payload []byte, id string) bool {
	return strings.Contains(string(payload), `"scan_id":"`+id+`"`)
}

// Review: a backlog of more than a page of old scans with live tasks must
// not hide a newer scan whose task was lost.
func TestSweeperLooksPastABacklog(t *testing.T) {
	t.Parallel()
	b := setupSweeper(t, "")
	ctx := context.Background()
	for i := range sweepPage + 20 {
		sc := b.record(t, fmt.Sprintf("scn_old_%04d", i), time.Hour/2, assetscan.StatusQueued)
		if err := b.sweeper.Enqueuer.Enqueue(ctx, JobOf(sc)); err != nil {
			t.Fatal(err)
		}
	}
	b.record(t, "scn_zzz_lost", 5*time.Minute, assetscan.StatusQueued)
	res, err := b.sweeper.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requeued != 1 {
		t.Fatalf("sweep = %+v, want the lost scan behind the backlog re-enqueued", res)
	}
	if sc, _ := b.records.Get(ctx, "scn_zzz_lost"); sc.TaskID == "scn_zzz_lost" {
		t.Error("the lost scan was not re-enqueued")
	}
}

// Two deployments share one Redis (a Redis Cluster has only database 0),
// each with its own queue prefix: jobs go to the deployment's queues, and
// one deployment's sweeper never takes or fails the other's tasks.
func TestQueuePrefixKeepsDeploymentsApart(t *testing.T) {
	t.Parallel()
	a := setupSweeper(t, "tenant-a:")
	ctx := context.Background()
	// Deployment b: same Redis, its own records and prefix.
	brec := &memRecords{scans: map[string]storage.Scan{}}
	bEnq := &Enqueuer{Client: asynq.NewClientFromRedisClient(a.rdb), MaxRetry: 2, QueuePrefix: "tenant-b:"}
	bsc := storage.Scan{ScanID: "scn_b", AssetID: "a-b", Kind: assetscan.KindPackage, Size: 100,
		Status: assetscan.StatusQueued, SubmittedAt: a.now.Add(-5 * time.Minute), TaskID: "scn_b"}
	if err := brec.Put(ctx, bsc); err != nil {
		t.Fatal(err)
	}
	if err := bEnq.Enqueue(ctx, JobOf(bsc)); err != nil {
		t.Fatal(err)
	}
	asc := a.record(t, "scn_a", 5*time.Minute, assetscan.StatusQueued)
	if err := a.sweeper.Enqueuer.Enqueue(ctx, JobOf(asc)); err != nil {
		t.Fatal(err)
	}
	pending := func(q string) []string {
		tasks, err := a.insp.ListPendingTasks(q)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		var ids []string
		for _, ti := range tasks {
			ids = append(ids, ti.ID)
		}
		return ids
	}
	tests := []struct {
		queue string
		want  []string
	}{
		{"tenant-a:" + QueueSmall, []string{"scn_a"}},
		{"tenant-b:" + QueueSmall, []string{"scn_b"}},
		{QueueSmall, nil},
	}
	for _, tt := range tests {
		if got := pending(tt.queue); !slices.Equal(got, tt.want) {
			t.Errorf("queue %q holds %v, want %v", tt.queue, got, tt.want)
		}
	}
	// a's sweeper sees its live task and nothing of b's.
	if res, err := a.sweeper.Sweep(ctx); err != nil || res.Requeued+res.Failed != 0 {
		t.Errorf("sweep of a = %+v %v, want nothing to do", res, err)
	}
	if got := pending("tenant-b:" + QueueSmall); !slices.Equal(got, []string{"scn_b"}) {
		t.Errorf("b's queue after a's sweep: %v", got)
	}
}
