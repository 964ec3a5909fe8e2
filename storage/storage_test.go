package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
)

// services returns clients of the real Redis and MinIO the test script
// starts; Redis database 11 is this package's.
func services(t *testing.T) (*Objects, redis.UniversalClient) {
	t.Helper()
	if os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT") == "" {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			t.Skip("ASSETSCAN_SKIP_SERVICES=1")
		}
		t.Fatal("ASSETSCAN_TEST_S3_ENDPOINT not set: run scripts/test.sh")
	}
	obj, err := NewObjects(S3Config{Endpoint: os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY")})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("ASSETSCAN_TEST_REDIS_ADDR"), DB: 11})
	t.Cleanup(func() { rdb.Close() })
	return obj, rdb
}

func bucket(t *testing.T, obj *Objects) string {
	t.Helper()
	b := fmt.Sprintf("storage-test-%d", time.Now().UnixNano()%1e12)
	if err := obj.EnsureBucket(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDownloadHashesAndCaps(t *testing.T) {
	obj, _ := services(t)
	ctx := context.Background()
	b := bucket(t, obj)
	data := bytes.Repeat([]byte("assetscan"), 100000)
	if err := obj.Put(ctx, b, "k/app.zip", data, ""); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum, n, err := obj.Download(ctx, Pin{Bucket: b, Key: "k/app.zip"}, filepath.Join(dir, "a"), 0)
	want := sha256.Sum256(data)
	if err != nil || n != int64(len(data)) || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("Download = %s %d %v", sum, n, err)
	}
	if _, _, err := obj.Download(ctx, Pin{Bucket: b, Key: "k/app.zip"}, filepath.Join(dir, "b"), 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("cap: %v, want ErrTooLarge", err)
	}
	if _, _, err := obj.Download(ctx, Pin{Bucket: b, Key: "k/missing.zip"}, filepath.Join(dir, "c"), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
	// Pinned by ETag: the bytes submitted, or ErrChanged once the key was
	// overwritten (an unversioned bucket), never the new bytes.
	info, err := obj.Stat(ctx, b, "k/app.zip", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := obj.Download(ctx, Pin{Bucket: b, Key: "k/app.zip", ETag: info.ETag}, filepath.Join(dir, "d"), 0); err != nil {
		t.Fatalf("pinned download of the unchanged object: %v", err)
	}
	if err := obj.Put(ctx, b, "k/app.zip", []byte("swapped after submission"), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := obj.Download(ctx, Pin{Bucket: b, Key: "k/app.zip", ETag: info.ETag}, filepath.Join(dir, "e"), 0); !errors.Is(err, ErrChanged) {
		t.Errorf("pinned download after an overwrite: %v, want ErrChanged", err)
	}
	if _, err := obj.Stat(ctx, "no-such-bucket-xyz", "k", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing bucket: %v, want ErrNotFound", err)
	}
	dead, _ := NewObjects(S3Config{Endpoint: "127.0.0.1:1", AccessKey: "a", SecretKey: "b"})
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := dead.Stat(sctx, b, "k", ""); !errors.Is(err, ErrUnavailable) {
		t.Errorf("unreachable: %v, want ErrUnavailable", err)
	}
}

func TestStoreDedupAndDurability(t *testing.T) {
	obj, rdb := services(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("storagetest%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	s := NewStore(rdb, obj, bucket(t, obj), prefix)
	sc := Scan{ScanID: NewScanID(), AssetID: "a1", SellerID: "s1", Kind: assetscan.KindPackage, Bucket: "u", Key: "k",
		ETag: "e1", Size: 10, Status: assetscan.StatusQueued, SubmittedAt: time.Now().UTC()}
	got, created, err := s.Create(ctx, sc)
	if err != nil || !created || got.ScanID != sc.ScanID {
		t.Fatalf("Create = %v %v %v", got, created, err)
	}
	again := sc
	again.ScanID = NewScanID()
	got, created, err = s.Create(ctx, again)
	if err != nil || created || got.ScanID != sc.ScanID {
		t.Fatalf("same content: created=%v id=%s", created, got.ScanID)
	}
	changed := again
	changed.ETag = "e2"
	if _, created, _ := s.Create(ctx, changed); !created {
		t.Error("new content deduplicated")
	}
	v := assetscan.Verdict{ScanID: sc.ScanID, AssetID: "a1", SellerID: "s1", Kind: assetscan.KindPackage,
		Status: assetscan.StatusDone, Verdict: assetscan.Pass, SHA256: "ab", Object: assetscan.Object{Name: "k"}, CompletedAt: time.Now()}
	if err := s.SaveVerdict(ctx, sc, v, assetscan.Findings{Checks: []assetscan.CheckRun{{Name: "format", Status: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	// Redis forgets everything: the record, latest pointer and verdict are
	// still read from object storage.
	if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
	rec, err := s.Get(ctx, sc.ScanID)
	if err != nil || rec.Status != assetscan.StatusDone || rec.Verdict != assetscan.Pass {
		t.Fatalf("Get after Redis loss = %+v %v", rec, err)
	}
	if id, err := s.Latest(ctx, "a1"); err != nil || id != sc.ScanID {
		t.Fatalf("Latest after Redis loss = %s %v", id, err)
	}
	if got, err := s.Verdict(ctx, sc.ScanID); err != nil || got.Revision != 1 {
		t.Fatalf("Verdict = %+v %v", got, err)
	}
	if _, err := s.Get(ctx, "scn_nope"); !errors.Is(err, ErrScanNotFound) {
		t.Errorf("unknown scan: %v", err)
	}
}

var _ = minio.ToErrorResponse
