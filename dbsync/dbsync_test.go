package dbsync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/vulndb"
)

var s3 *minio.Client

func TestMain(m *testing.M) {
	ep := os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT")
	if ep == "" {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") != "1" {
			fmt.Fprintln(os.Stderr, "dbsync: ASSETSCAN_TEST_S3_* are not set: run scripts/test.sh (or set ASSETSCAN_SKIP_SERVICES=1)")
			os.Exit(1)
		}
		os.Exit(m.Run())
	}
	var err error
	s3, err = minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4(
		os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"), os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY"), "")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbsync: s3 client:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func newBucket(t *testing.T) string {
	t.Helper()
	if s3 == nil {
		t.Skip("ASSETSCAN_SKIP_SERVICES=1 and no MinIO")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "dbsync-" + hex.EncodeToString(b)
	if err := s3.MakeBucket(t.Context(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for o := range s3.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				_ = s3.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = s3.RemoveBucket(ctx, name)
	})
	return name
}

var (
	fxOnce sync.Once
	fx     *vulndb.Fixtures
	fxErr  error
)

// buildDB builds a trivy cache dir with the default fixtures, updated at
// the fixtures' time plus shift (shift 0: vulndb.BuildDefault, with the
// Java DB).
func buildDB(t *testing.T, shift time.Duration) (string, assetscan.DBRef) {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = vulndb.DefaultFixtures() })
	if fxErr != nil {
		t.Fatal(fxErr)
	}
	dir := t.TempDir()
	var err error
	if shift == 0 {
		err = vulndb.BuildDefault(dir)
	} else {
		err = vulndb.Build(dir, fx, fx.UpdatedAt.Add(shift))
	}
	if err != nil {
		t.Fatal(err)
	}
	ref, err := vulndb.ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ref
}

// swapper is a Poller's Current and Swap over an in-memory "engine".
type swapper struct {
	mu    sync.Mutex
	cur   assetscan.DBRef
	dirs  []string
	fail  error
	calls int
}

func (s *swapper) current() assetscan.DBRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *swapper) swap(_ context.Context, dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		return s.fail
	}
	ref, err := vulndb.ReadMetadata(dir)
	if err != nil {
		return err
	}
	s.cur = ref
	s.dirs = append(s.dirs, dir)
	return nil
}

func newPoller(t *testing.T, bucket string, sw *swapper) *Poller {
	return &Poller{
		S3: s3, Bucket: bucket, Root: filepath.Join(t.TempDir(), "vulndb"), Interval: time.Hour,
		Current: sw.current, Swap: sw.swap,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func getObject(t *testing.T, bucket, key string) []byte {
	t.Helper()
	o, err := s3.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublishLayout(t *testing.T) {
	b := newBucket(t)
	dir, ref := buildDB(t, 0) // with java-db
	pub, err := Publish(t.Context(), s3, b, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantPath := "vulndb/" + ref.UpdatedAt.UTC().Format("20060102T150405Z") + "-" + ref.Digest[:12]
	if pub.Path != wantPath || pub.Digest != "sha256:"+ref.Digest || !pub.UpdatedAt.Equal(ref.UpdatedAt) || pub.SchemaVersion != 2 || pub.PublishedAt.IsZero() {
		t.Errorf("published %+v", pub)
	}
	var files []string
	for o := range s3.ListObjects(t.Context(), b, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		files = append(files, o.Key)
	}
	want := []string{wantPath + "/db/metadata.json", wantPath + "/db/trivy.db",
		wantPath + "/java-db/metadata.json", wantPath + "/java-db/trivy-java.db", "vulndb/latest.json"}
	if !slices.Equal(files, want) {
		t.Errorf("objects %q, want %q", files, want)
	}
	local, err := os.ReadFile(filepath.Join(dir, "db", "trivy.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(getObject(t, b, wantPath+"/db/trivy.db"), local) {
		t.Error("uploaded trivy.db differs")
	}
	var latest map[string]any
	if err := json.Unmarshal(getObject(t, b, LatestKey), &latest); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"path", "digest", "updated_at", "schema_version", "published_at", "files"} {
		if _, ok := latest[k]; !ok {
			t.Errorf("latest.json lacks %q: %v", k, latest)
		}
	}
	if latest["schema_version"] != float64(2) || latest["path"] != wantPath {
		t.Errorf("latest.json %v", latest)
	}
	if got, err := Latest(t.Context(), s3, b); err != nil || got.Path != pub.Path || len(got.Files) != 4 {
		t.Errorf("Latest: %+v %v", got, err)
	}
}

func TestPublishRefuses(t *testing.T) {
	b := newBucket(t)
	if _, err := Publish(t.Context(), s3, b, t.TempDir()); !errors.Is(err, vulndb.ErrNoDB) {
		t.Errorf("empty dir: %v, want ErrNoDB", err)
	}
	dir, _ := buildDB(t, 48*time.Hour)
	meta := filepath.Join(dir, "db", "metadata.json")
	good, _ := os.ReadFile(meta)
	if err := os.WriteFile(meta, bytes.Replace(good, []byte(`"Version":2`), []byte(`"Version":1`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(t.Context(), s3, b, dir); !errors.Is(err, vulndb.ErrSchema) {
		t.Errorf("schema 1: %v, want ErrSchema", err)
	}
	if err := os.WriteFile(meta, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(t.Context(), s3, b, dir); err != nil {
		t.Fatal(err)
	}
	older, _ := buildDB(t, 24*time.Hour)
	if _, err := Publish(t.Context(), s3, b, older); !errors.Is(err, ErrOlder) {
		t.Errorf("older DB: %v, want ErrOlder", err)
	}
	if _, err := Publish(t.Context(), s3, b, dir); err != nil {
		t.Errorf("republishing the same DB: %v", err)
	}
}

// TestPollerSwaps: a newer published DB is downloaded, verified and swapped
// in once; the same DB again is not.
func TestPollerSwaps(t *testing.T) {
	b := newBucket(t)
	_, oldRef := buildDB(t, 0)
	sw := &swapper{cur: oldRef}
	p := newPoller(t, b, sw)

	if swapped, err := p.CheckOnce(t.Context()); swapped || err != nil {
		t.Fatalf("nothing published: swapped=%v err=%v", swapped, err)
	}
	// The DB in use is published: no swap.
	oldDir, _ := buildDB(t, 0)
	if _, err := Publish(t.Context(), s3, b, oldDir); err != nil {
		t.Fatal(err)
	}
	if swapped, err := p.CheckOnce(t.Context()); swapped || err != nil || sw.calls != 0 {
		t.Fatalf("same DB: swapped=%v err=%v calls=%d", swapped, err, sw.calls)
	}

	newDir, newRef := buildDB(t, 24*time.Hour)
	if err := vulndb.BuildJavaDB(newDir, newRef.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	pub, err := Publish(t.Context(), s3, b, newDir)
	if err != nil {
		t.Fatal(err)
	}
	swapped, err := p.CheckOnce(t.Context())
	if err != nil || !swapped {
		t.Fatalf("newer DB: swapped=%v err=%v", swapped, err)
	}
	if sw.calls != 1 || len(sw.dirs) != 1 {
		t.Fatalf("%d swaps", sw.calls)
	}
	got, err := vulndb.ReadMetadata(sw.dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdatedAt.Equal(newRef.UpdatedAt) || got.Digest != newRef.Digest {
		t.Errorf("swapped to %+v, want %+v", got, newRef)
	}
	if want := filepath.Join(p.Root, filepath.Base(pub.Path)); sw.dirs[0] != want {
		t.Errorf("dir %s, want %s", sw.dirs[0], want)
	}
	for _, f := range []string{"java-db/trivy-java.db", "java-db/metadata.json"} {
		if _, err := os.Stat(filepath.Join(sw.dirs[0], f)); err != nil {
			t.Errorf("java DB not downloaded: %v", err)
		}
	}

	// Again, and after republishing the same DB: no swap.
	for i := range 2 {
		if swapped, err := p.CheckOnce(t.Context()); swapped || err != nil {
			t.Errorf("check %d: swapped=%v err=%v", i, swapped, err)
		}
		if _, err := Publish(t.Context(), s3, b, newDir); err != nil {
			t.Fatal(err)
		}
	}
	if sw.calls != 1 {
		t.Errorf("%d swaps, want 1", sw.calls)
	}
}

// TestPollerRejectsTampered: trivy.db replaced after publishing -> digest
// mismatch, error, no swap, nothing left under Root.
func TestPollerRejectsTampered(t *testing.T) {
	b := newBucket(t)
	_, oldRef := buildDB(t, 0)
	sw := &swapper{cur: oldRef}
	p := newPoller(t, b, sw)
	newDir, _ := buildDB(t, 24*time.Hour)
	pub, err := Publish(t.Context(), s3, b, newDir)
	if err != nil {
		t.Fatal(err)
	}
	orig := getObject(t, b, pub.Path+"/db/trivy.db")
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 0xff
	if _, err := s3.PutObject(t.Context(), b, pub.Path+"/db/trivy.db", bytes.NewReader(bad), int64(len(bad)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	swapped, err := p.CheckOnce(t.Context())
	if swapped || !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "trivy.db") {
		t.Fatalf("tampered: swapped=%v err=%v, want ErrVerify", swapped, err)
	}
	t.Log(err)
	if sw.calls != 0 {
		t.Errorf("Swap called %d times", sw.calls)
	}
	if entries, _ := os.ReadDir(p.Root); len(entries) != 0 {
		t.Errorf("left under Root: %v", entries)
	}
	// Truncated: also rejected.
	if _, err := s3.PutObject(t.Context(), b, pub.Path+"/db/trivy.db", bytes.NewReader(orig[:4096]), 4096, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if swapped, err := p.CheckOnce(t.Context()); swapped || !errors.Is(err, ErrVerify) {
		t.Errorf("truncated: swapped=%v err=%v", swapped, err)
	}
	// Repaired: swapped.
	if _, err := s3.PutObject(t.Context(), b, pub.Path+"/db/trivy.db", bytes.NewReader(orig), int64(len(orig)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if swapped, err := p.CheckOnce(t.Context()); !swapped || err != nil || sw.calls != 1 {
		t.Errorf("repaired: swapped=%v err=%v calls=%d", swapped, err, sw.calls)
	}
}

// TestPollerSwapFailsThenPrunes: a failed Swap keeps the verified download
// for the next check; successive DBs leave only the newest Keep dirs.
func TestPollerSwapFailsThenPrunes(t *testing.T) {
	b := newBucket(t)
	sw := &swapper{fail: errors.New("engine busy")}
	p := newPoller(t, b, sw)
	p.Current = nil // no DB yet
	d1, _ := buildDB(t, 24*time.Hour)
	pub1, err := Publish(t.Context(), s3, b, d1)
	if err != nil {
		t.Fatal(err)
	}
	if swapped, err := p.CheckOnce(t.Context()); swapped || err == nil || !strings.Contains(err.Error(), "engine busy") {
		t.Fatalf("failing swap: swapped=%v err=%v", swapped, err)
	}
	// The download stays; the next check reuses it, even with the bucket
	// copy gone.
	if err := s3.RemoveObject(t.Context(), b, pub1.Path+"/db/trivy.db", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	sw.fail = nil
	p.Current = sw.current
	if swapped, err := p.CheckOnce(t.Context()); !swapped || err != nil {
		t.Fatalf("after the failure: swapped=%v err=%v", swapped, err)
	}
	for i := 2; i <= 4; i++ {
		d, _ := buildDB(t, time.Duration(i)*24*time.Hour)
		if _, err := Publish(t.Context(), s3, b, d); err != nil {
			t.Fatal(err)
		}
		if swapped, err := p.CheckOnce(t.Context()); !swapped || err != nil {
			t.Fatalf("DB %d: swapped=%v err=%v", i, swapped, err)
		}
	}
	entries, err := os.ReadDir(p.Root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{filepath.Base(sw.dirs[len(sw.dirs)-2]), filepath.Base(sw.dirs[len(sw.dirs)-1])}
	if !slices.Equal(names, want) {
		t.Errorf("Root holds %q, want the newest two %q", names, want)
	}
}

func TestPollerRun(t *testing.T) {
	b := newBucket(t)
	_, oldRef := buildDB(t, 0)
	sw := &swapper{cur: oldRef}
	p := newPoller(t, b, sw)
	p.Interval = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	d, ref := buildDB(t, 24*time.Hour)
	if _, err := Publish(t.Context(), s3, b, d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sw.current().Digest != ref.Digest && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if sw.current().Digest != ref.Digest {
		t.Fatal("Run did not swap in the published DB")
	}
}

func TestLatestValidation(t *testing.T) {
	good := Published{Path: "vulndb/20260813T095258Z-0123456789ab", Digest: "sha256:" + strings.Repeat("a", 64),
		UpdatedAt: time.Now(), SchemaVersion: 2,
		Files: map[string]string{"db/trivy.db": "sha256:" + strings.Repeat("a", 64), "db/metadata.json": "sha256:" + strings.Repeat("b", 64)}}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Published){
		"traversal path": func(p *Published) { p.Path = "vulndb/../../etc" },
		"traversal file": func(p *Published) { p.Files["db/../../x"] = "" },
		"absolute file":  func(p *Published) { p.Files["/etc/passwd"] = "" },
		"other dir":      func(p *Published) { p.Files["bin/x"] = "" },
		"bad digest":     func(p *Published) { p.Digest = "md5:x" },
		"digest differs": func(p *Published) { p.Files["db/trivy.db"] = "sha256:" + strings.Repeat("c", 64) },
		"no metadata":    func(p *Published) { delete(p.Files, "db/metadata.json") },
		"no time":        func(p *Published) { p.UpdatedAt = time.Time{} },
	} {
		p := good
		p.Files = map[string]string{}
		for k, v := range good.Files {
			p.Files[k] = v
		}
		mut(&p)
		if err := p.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
