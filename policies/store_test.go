package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/internal/keyslot"
	"github.com/assetscan/assetscan/internal/redistest"
)

// testRedises returns the clients TestStore runs against: the real Redis
// of the test script (database 12, or the Redis Cluster) when
// ASSETSCAN_TEST_REDIS_ADDR is set, else an in-process miniredis; and, in
// every run, a go-redis cluster client over a miniredis: go-redis's
// cluster code path (routing, WATCH on the slot's node). miniredis does
// not check slots; TestKeysShareASlot does, and so does the scale-out run
// on a real Redis Cluster (scripts/test.sh --scale-out).
func testRedises(t *testing.T) []namedRedis {
	t.Helper()
	var out []namedRedis
	if len(redistest.Addrs()) > 0 {
		out = append(out, namedRedis{"real", redistest.Client(t, 12)})
	} else {
		m := miniredis.RunT(t)
		out = append(out, namedRedis{"miniredis", redis.NewClient(&redis.Options{Addr: m.Addr()})})
	}
	m := miniredis.RunT(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{m.Addr()}})
	t.Cleanup(func() { cc.Close() })
	return append(out, namedRedis{"cluster-client", cc})
}

type namedRedis struct {
	name string
	rdb  redis.UniversalClient
}

func bump(raw []byte, from, to string) []byte {
	return []byte(strings.Replace(string(raw), from, to, 1))
}

func TestStore(t *testing.T) {
	for _, r := range testRedises(t) {
		t.Run(r.name, func(t *testing.T) { testStore(t, r.rdb) })
	}
}

func testStore(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	prefix := "policytest:" + t.Name() + ":"
	t.Cleanup(func() {
		if _, err := redistest.Delete(ctx, rdb, prefix+"*"); err != nil {
			t.Error(err)
		}
	})
	s := NewStore(rdb, prefix)
	if err := s.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := s.ForKind(ctx, assetscan.KindPackage)
	if err != nil || p.Version != 1 {
		t.Fatalf("ForKind = %v, %v", p, err)
	}
	raw2 := bump(bump(p.Raw(), "version: 1", "version: 2"), "cvss_threshold: 7.0", "cvss_threshold: 9.0")

	if _, err := s.Put(ctx, p.ID, raw2, 0, "alice", "api"); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale If-Match: err = %v, want ErrConflict", err)
	}
	if _, err := s.Put(ctx, p.ID, bump(raw2, "version: 2", "version: 3"), 1, "alice", "api"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("skipped version: err = %v, want ErrInvalid", err)
	}
	if _, err := s.Put(ctx, p.ID, bump(raw2, "cvss_threshold: 9.0", "cvss_threshold: 99"), 1, "alice", "api"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid policy: err = %v", err)
	}
	p2, err := s.Put(ctx, p.ID, raw2, 1, "alice", "api")
	if err != nil || p2.Version != 2 || p2.Vulns.CVSSThreshold != 9 {
		t.Fatalf("Put = %+v, %v", p2, err)
	}
	// A malformed file changes nothing; a newer valid one applies.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("id: default-package\nversion: 9\nkind: nope\n"), 0o644)
	raw3 := bump(raw2, "version: 2", "version: 3")
	os.WriteFile(filepath.Join(dir, "package.yaml"), raw3, 0o644)
	applied, err := s.LoadDir(ctx, dir)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), "kind") {
		t.Errorf("LoadDir error = %v, want the bad file named", err)
	}
	if len(applied) != 1 || applied[0].Version != 3 {
		t.Fatalf("applied = %v", applied)
	}
	h, err := s.History(ctx, p.ID)
	if err != nil || len(h) != 3 {
		t.Fatalf("history = %+v, %v", h, err)
	}
	if h[1].Author != "alice" || !strings.Contains(h[1].Diff, "- ") || !strings.Contains(h[1].Diff, "+   cvss_threshold: 9.0") {
		t.Errorf("change = %+v", h[1])
	}
	if h[2].Source != "file:package.yaml" {
		t.Errorf("file change source = %q", h[2].Source)
	}
	cur, _ := s.Get(ctx, p.ID)
	if cur.Version != 3 {
		t.Errorf("current version %d", cur.Version)
	}
}

// TestKeysShareASlot: a policy change is one WATCH/MULTI transaction over
// the document, its history and the kind's mapping; on a Redis Cluster
// they must hash to one slot, whatever the prefix.
func TestKeysShareASlot(t *testing.T) {
	for _, prefix := range []string{"assetscan:", "e2e-3-9f:", ""} {
		s := NewStore(nil, prefix)
		keys := []string{s.key("policy", "default-package"), s.key("policy", "default-package", "history"),
			s.key("policy", "custom-vm"), s.key("policy-kind", string(assetscan.KindPackage)), s.key("policy-kind", string(assetscan.KindVMImage))}
		if !keyslot.Same(keys...) {
			t.Errorf("prefix %q: keys in different slots: %q", prefix, keys)
		}
	}
}

func TestDefaultsForEveryKind(t *testing.T) {
	t.Parallel()
	for _, k := range []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage} {
		p, err := Default(k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if p.Kind != k || p.Vulns.CVSSThreshold != 7.0 || p.Passwords.MinLength != 8 || p.Passwords.MinClasses != 2 {
			t.Errorf("%s: %+v", k, p)
		}
	}
}
