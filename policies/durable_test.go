package policies

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/internal/redistest"
	"github.com/assetscan/assetscan/storage"
)

// durableEnv is a Redis and an object store for one test: the real ones
// when ASSETSCAN_TEST_REDIS_ADDR and ASSETSCAN_TEST_S3_* are set, else
// miniredis and gofakes3 (over TLS: over plain HTTP it mangles uploads).
type durableEnv struct {
	rdb    redis.UniversalClient
	mini   *miniredis.Miniredis
	obj    *storage.Objects
	bucket string
	prefix string
}

func newDurableEnv(t *testing.T) *durableEnv {
	t.Helper()
	ctx := context.Background()
	e := &durableEnv{prefix: fmt.Sprintf("policytest:%s:%d:", t.Name(), time.Now().UnixNano())}
	if len(redistest.Addrs()) > 0 {
		e.rdb = redistest.New(12) // database 12, or the Redis Cluster
	} else {
		e.mini = miniredis.RunT(t)
		e.rdb = redis.NewClient(&redis.Options{Addr: e.mini.Addr()})
	}
	t.Cleanup(func() { e.loseRedis(t); e.rdb.Close() })
	var err error
	if ep := os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT"); ep != "" {
		e.obj, err = storage.NewObjects(storage.S3Config{Endpoint: ep,
			AccessKey: os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY")})
	} else {
		srv := httptest.NewUnstartedServer(gofakes3.New(s3mem.New()).Server())
		srv.StartTLS()
		t.Cleanup(srv.Close)
		e.obj, err = storage.NewObjects(storage.S3Config{Endpoint: srv.Listener.Addr().String(), AccessKey: "k",
			SecretKey: "secret-key", Secure: true, Transport: srv.Client().Transport})
	}
	if err != nil {
		t.Fatal(err)
	}
	e.bucket = fmt.Sprintf("policies-test-%d", time.Now().UnixNano()%1e12)
	if err := e.obj.EnsureBucket(ctx, e.bucket); err != nil {
		t.Fatal(err)
	}
	return e
}

// store is a fresh Store, as a process (re)starting would make it.
func (e *durableEnv) store() *Store {
	return NewStore(e.rdb, e.prefix).WithObjects(e.obj, e.bucket)
}

// loseRedis drops Redis's data: FLUSHALL on miniredis; on a shared real
// Redis, every key of this test (flushing all would hit other tests).
func (e *durableEnv) loseRedis(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if e.mini != nil {
		e.mini.FlushAll()
		return
	}
	if _, err := redistest.Delete(ctx, e.rdb, e.prefix+"*"); err != nil {
		t.Fatal(err)
	}
}

func tighten(t *testing.T, s *Store) *Policy {
	t.Helper()
	ctx := context.Background()
	p, err := s.ForKind(ctx, assetscan.KindPackage)
	if err != nil || p.Version != 1 || p.Vulns.CVSSThreshold != 7.0 {
		t.Fatalf("ForKind = %+v, %v; want the shipped v1", p, err)
	}
	raw := bump(bump(p.Raw(), "version: 1", "version: 2"), "cvss_threshold: 7.0", "cvss_threshold: 4.0")
	p2, err := s.Put(ctx, p.ID, raw, 1, "alice", "api")
	if err != nil || p2.Vulns.CVSSThreshold != 4.0 {
		t.Fatalf("Put = %+v, %v", p2, err)
	}
	return p2
}

func wantTightened(t *testing.T, s *Store, what string) {
	t.Helper()
	ctx := context.Background()
	p, err := s.ForKind(ctx, assetscan.KindPackage)
	if err != nil {
		t.Fatalf("%s: ForKind: %v", what, err)
	}
	if p.Version != 2 || p.Vulns.CVSSThreshold != 4.0 {
		t.Fatalf("%s: policy in force is v%d with CVSS %.1f, want the tightened v2 with 4.0", what, p.Version, p.Vulns.CVSSThreshold)
	}
	h, err := s.History(ctx, p.ID)
	if err != nil || len(h) != 2 || h[0].Source != "default" || h[1].Author != "alice" || !strings.Contains(h[1].Diff, "cvss_threshold: 4.0") {
		t.Fatalf("%s: history = %+v, %v; want the default and alice's change", what, h, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("%s: List = %d policies, %v", what, len(list), err)
	}
}

// TestPoliciesSurviveRedisLoss: a tightened policy (CVSS 4.0, v2) and its
// history come back after Redis loses its data, both on restart (Seed)
// and in a running process; the shipped 7.0 does not.
func TestPoliciesSurviveRedisLoss(t *testing.T) {
	e := newDurableEnv(t)
	ctx := context.Background()
	s := e.store()
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	tighten(t, s)

	e.loseRedis(t)
	restarted := e.store()
	if err := restarted.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	wantTightened(t, restarted, "after restart")

	e.loseRedis(t) // while running: no restart
	wantTightened(t, e.store(), "in a running process")

	// Redis restored from an old snapshot (the shipped v1): the newer
	// record wins at start.
	e.loseRedis(t)
	old := NewStore(e.rdb, e.prefix) // Redis only: seeds v1
	if err := old.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.store().Seed(ctx); err != nil {
		t.Fatal(err)
	}
	wantTightened(t, e.store(), "after Redis went back to v1")
}

// TestPoliciesMigrateToObjectStorage: a deployment whose policies lived
// only in Redis writes them to object storage at its first start with
// object storage, without replacing them.
func TestPoliciesMigrateToObjectStorage(t *testing.T) {
	e := newDurableEnv(t)
	ctx := context.Background()
	legacy := NewStore(e.rdb, e.prefix)
	if err := legacy.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	tighten(t, legacy)
	if err := e.store().Seed(ctx); err != nil {
		t.Fatal(err)
	}
	wantTightened(t, e.store(), "after the first durable start")
	e.loseRedis(t)
	s := e.store()
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	wantTightened(t, s, "after Redis loss")
}

// failingObjects is object storage that is down.
type failingObjects struct{}

func (failingObjects) Put(context.Context, string, string, []byte, string) error {
	return fmt.Errorf("put: %w", storage.ErrUnavailable)
}
func (failingObjects) Get(context.Context, string, string) ([]byte, error) {
	return nil, fmt.Errorf("get: %w", storage.ErrUnavailable)
}

// TestSeedDoesNotSeedWhatItCannotSee: with object storage down and Redis
// empty, Seed fails rather than installing the shipped defaults; and a
// change is refused (not half-made) while object storage is down.
func TestSeedDoesNotSeedWhatItCannotSee(t *testing.T) {
	e := newDurableEnv(t)
	ctx := context.Background()
	down := NewStore(e.rdb, e.prefix).WithObjects(failingObjects{}, e.bucket)
	if err := down.Seed(ctx); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Seed with storage down = %v, want ErrUnavailable", err)
	}
	if n, _ := e.rdb.Exists(ctx, down.key("policy", "default-package")).Result(); n != 0 {
		t.Fatal("the shipped default was seeded while object storage was down")
	}
	s := e.store()
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := s.ForKind(ctx, assetscan.KindPackage)
	raw := bump(p.Raw(), "version: 1", "version: 2")
	if _, err := down.Put(ctx, p.ID, raw, 1, "alice", "api"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Put with storage down = %v", err)
	}
	if cur, _ := s.Get(ctx, p.ID); cur.Version != 1 {
		t.Fatalf("a change not recorded in object storage is in force: v%d", cur.Version)
	}
}

// TestPutAfterRedisLoss: a change made right after Redis lost its data
// builds on the recorded version (not a 404, not the default), and is
// recorded in turn.
func TestPutAfterRedisLoss(t *testing.T) {
	e := newDurableEnv(t)
	ctx := context.Background()
	s := e.store()
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	p2 := tighten(t, s)
	e.loseRedis(t)
	raw3 := bump(bump(p2.Raw(), "version: 2", "version: 3"), "cvss_threshold: 4.0", "cvss_threshold: 5.0")
	if _, err := s.Put(ctx, p2.ID, raw3, 2, "bob", "api"); err != nil {
		t.Fatalf("Put after Redis loss: %v", err)
	}
	e.loseRedis(t)
	fresh := e.store()
	p, err := fresh.ForKind(ctx, assetscan.KindPackage)
	if err != nil || p.Version != 3 || p.Vulns.CVSSThreshold != 5.0 {
		t.Fatalf("ForKind = %+v, %v; want v3 with 5.0", p, err)
	}
	h, err := fresh.History(ctx, p.ID)
	if err != nil || len(h) != 3 || h[1].Author != "alice" || h[2].Author != "bob" {
		t.Fatalf("history = %+v, %v", h, err)
	}
	// Every version's document is kept.
	for v, want := range map[int]string{1: "cvss_threshold: 7.0", 2: "cvss_threshold: 4.0", 3: "cvss_threshold: 5.0"} {
		doc, err := e.obj.Get(ctx, e.bucket, fmt.Sprintf("policies/%s/v%d.yaml", p.ID, v))
		if err != nil || !strings.Contains(string(doc), want) {
			t.Errorf("v%d document: %v, %.60q", v, err, doc)
		}
	}
}
