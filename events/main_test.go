package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan/internal/redistest"
)

// The service tests talk to the Redis and MinIO that scripts/test.sh
// starts. MinIO pushes its events into Redis database 0 (with a Redis
// Cluster: the standalone ASSETSCAN_TEST_EVENTS_REDIS_ADDR), list
// ASSETSCAN_TEST_EVENTS_KEY (default assetscan:events), which other tests
// may share: tests take only the records of their own bucket out of it
// (LRANGE + LREM) and replay them into a private list in database 13.
const (
	testDB   = 13
	eventARN = "arn:minio:sqs::ASSETSCAN:redis"
)

var svc struct {
	ok        bool
	s3        *minio.Client
	events    redis.UniversalClient // MinIO's list: database 0, or the events Redis of a cluster setup
	rdb       redis.UniversalClient // our keys: database 13, or the Redis Cluster
	eventsKey string
}

func TestMain(m *testing.M) {
	addr := os.Getenv("ASSETSCAN_TEST_REDIS_ADDR")
	ep := os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT")
	if addr == "" || ep == "" {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") != "1" {
			fmt.Fprintln(os.Stderr, "events: ASSETSCAN_TEST_REDIS_ADDR and ASSETSCAN_TEST_S3_* are not set: run scripts/test.sh (or set ASSETSCAN_SKIP_SERVICES=1)")
			os.Exit(1)
		}
		os.Exit(m.Run())
	}
	s3, err := minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4(
		os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"), os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY"), "")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "events: s3 client:", err)
		os.Exit(1)
	}
	svc.ok, svc.s3 = true, s3
	// MinIO's Redis target speaks to one server: with a Redis Cluster the
	// test script gives it a standalone events Redis.
	if ea := os.Getenv("ASSETSCAN_TEST_EVENTS_REDIS_ADDR"); ea != "" {
		svc.events = redis.NewClient(&redis.Options{Addr: ea})
	} else {
		svc.events = redistest.New(0)
	}
	svc.rdb = redistest.New(testDB)
	svc.eventsKey = os.Getenv("ASSETSCAN_TEST_EVENTS_KEY")
	if svc.eventsKey == "" {
		svc.eventsKey = "assetscan:events"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "events: redis:", err)
		os.Exit(1)
	}
	if _, err := s3.ListBuckets(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "events: minio:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func needServices(t *testing.T) {
	t.Helper()
	if !svc.ok {
		t.Skip("ASSETSCAN_SKIP_SERVICES=1 and no Redis/MinIO")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newBucket creates a bucket subscribed to the Redis target for events
// (all of s3:ObjectCreated:* when none are given) and removes it, its
// objects and any of its events left in the shared list at the end.
func newBucket(t *testing.T, versioned bool, evs ...notification.EventType) string {
	t.Helper()
	ctx := t.Context()
	b := "evt-" + strings.ToLower(randHex(6))
	if err := svc.s3.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = svc.s3.SetBucketNotification(ctx, b, notification.Configuration{})
		for o := range svc.s3.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
			if o.Err == nil {
				_ = svc.s3.RemoveObject(ctx, b, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID, ForceDelete: true})
			}
		}
		_ = svc.s3.RemoveBucket(ctx, b)
		takeEvents(context.Background(), b) // leave nothing of ours behind
	})
	if versioned {
		if err := svc.s3.EnableVersioning(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if len(evs) == 0 {
		evs = []notification.EventType{notification.ObjectCreatedAll}
	}
	arn, err := notification.NewArnFromString(eventARN)
	if err != nil {
		t.Fatal(err)
	}
	q := notification.NewConfig(arn)
	q.AddEvents(evs...)
	var cfg notification.Configuration
	cfg.AddQueue(q)
	if err := svc.s3.SetBucketNotification(ctx, b, cfg); err != nil {
		t.Fatalf("set bucket notification (is MinIO's Redis target %s configured?): %v", eventARN, err)
	}
	return b
}

// eventBucket returns the bucket an entry of the events list is about, ""
// if it cannot tell.
func eventBucket(raw string) string {
	recs, err := ParseEvent(raw)
	if err != nil || len(recs) == 0 {
		return ""
	}
	return recs[0].S3.Bucket.Name
}

// takeEvents removes the entries about bucket from the shared events list
// and returns them in list order. Other tests' entries are left alone.
func takeEvents(ctx context.Context, bucket string) []string {
	vals, err := svc.events.LRange(ctx, svc.eventsKey, 0, -1).Result()
	if err != nil {
		return nil
	}
	var mine []string
	for _, v := range vals {
		if eventBucket(v) != bucket {
			continue
		}
		if n, err := svc.events.LRem(ctx, svc.eventsKey, 1, v).Result(); err == nil && n == 1 {
			mine = append(mine, v)
		}
	}
	return mine
}

// waitEvents takes n entries about bucket out of the shared list, waiting
// up to 10 s for MinIO to deliver them.
func waitEvents(t *testing.T, bucket string, n int) []string {
	t.Helper()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		got = append(got, takeEvents(t.Context(), bucket)...)
		if len(got) < n {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(got) != n {
		t.Fatalf("got %d events for bucket %s, want %d: %q", len(got), bucket, n, got)
	}
	return got
}

// privateLists returns list keys in database 13 (or the cluster) for one
// consumer, in one hash slot as the Consumer's defaults are, deleted at
// the end of the test (one DEL: a cluster refuses it across slots).
func privateLists(t *testing.T) (list, processing, dead string) {
	p := "assetscan-test:events:" + randHex(6)
	list, processing, dead = p, SlotKey(p, "processing"), SlotKey(p, "dead")
	t.Cleanup(func() {
		if err := svc.rdb.Del(context.Background(), list, processing, dead).Err(); err != nil {
			t.Errorf("delete lists: %v", err)
		}
	})
	return
}

func put(t *testing.T, bucket, key string, meta map[string]string) minio.UploadInfo {
	t.Helper()
	body := "content of " + key
	info, err := svc.s3.PutObject(t.Context(), bucket, key, strings.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{UserMetadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// fakeSubmitter records calls. fail, if set, is consulted before each
// call; a non-nil result is returned instead of submitting.
type fakeSubmitter struct {
	mu    sync.Mutex
	calls []Request // every call
	done  []Request // successful calls
	fail  func(n int, req Request) error
}

func (f *fakeSubmitter) Submit(_ context.Context, req Request) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	if f.fail != nil {
		if err := f.fail(len(f.calls), req); err != nil {
			return "", false, err
		}
	}
	f.done = append(f.done, req)
	return fmt.Sprintf("scn_%d", len(f.done)), true, nil
}

func (f *fakeSubmitter) submitted() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.done)
}

func (f *fakeSubmitter) ncalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeSubmitter) waitFor(t *testing.T, n int) []Request {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got := f.submitted(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := f.submitted()
	t.Fatalf("%d submissions, want %d: %+v", len(got), n, got)
	return nil
}

// runConsumer runs c in the background until the test ends (or stop is
// called) and returns stop, which waits for Run to return.
func runConsumer(t *testing.T, c *Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
