package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/internal/keyslot"
	"github.com/assetscan/assetscan/internal/redistest"
)

// services returns clients of the real Redis and MinIO the test script
// starts; Redis database 11 is this package's (on a Redis Cluster,
// database 0 and the tests' own key prefixes).
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
	return obj, redistest.Client(t, 11)
}

// loseKeys deletes every key under prefix: Redis losing a store's data.
func loseKeys(t *testing.T, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	if _, err := redistest.Delete(context.Background(), rdb, prefix+"*"); err != nil {
		t.Fatal(err)
	}
}

// storeBundle is what a Store test works with: a Store on the real Redis
// and MinIO, in a bucket and under a key prefix of its own (its keys are
// deleted when the test ends).
type storeBundle struct {
	s      *Store
	obj    *Objects
	rdb    redis.UniversalClient
	bucket string
	prefix string
}

// setup returns a storeBundle whose key prefix starts with name.
func setup(t *testing.T, name string) storeBundle {
	t.Helper()
	obj, rdb := services(t)
	prefix := fmt.Sprintf("%s%d:", name, time.Now().UnixNano())
	t.Cleanup(func() { loseKeys(t, rdb, prefix) })
	b := bucket(t, obj)
	return storeBundle{s: NewStore(rdb, obj, b, prefix), obj: obj, rdb: rdb, bucket: b, prefix: prefix}
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
	tb := setup(t, "storagetest")
	s, ctx := tb.s, context.Background()
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
	// A submission whose enqueue failed is forgotten: record and dedup
	// entry (two keys, two slots of a cluster) are gone, so a retry is new.
	if err := s.Forget(ctx, changed); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if _, err := s.Get(ctx, changed.ScanID); !errors.Is(err, ErrScanNotFound) {
		t.Errorf("record after Forget: %v, want ErrScanNotFound", err)
	}
	if _, created, err := s.Create(ctx, changed); err != nil || !created {
		t.Errorf("resubmission after Forget: created=%v err=%v, want a new scan", created, err)
	}
	v := assetscan.Verdict{ScanID: sc.ScanID, AssetID: "a1", SellerID: "s1", Kind: assetscan.KindPackage,
		Status: assetscan.StatusDone, Verdict: assetscan.Pass, SHA256: "ab", Object: assetscan.Object{Name: "k"}, CompletedAt: time.Now()}
	if err := s.SaveVerdict(ctx, sc, v, assetscan.Findings{Checks: []assetscan.CheckRun{{Name: "format", Status: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	// Redis forgets everything: the record, latest pointer and verdict are
	// still read from object storage.
	loseKeys(t, tb.rdb, tb.prefix)
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

// TestIndexKeysShareASlot: the fleet-wide indexes that one transaction
// updates (index: latest, recent, pending) lie in one Redis Cluster slot
// whatever the prefix; a prefix with a hash tag of its own puts every key
// in its slot.
func TestIndexKeysShareASlot(t *testing.T) {
	for _, prefix := range []string{"assetscan:", "e2e-7-1a2b:", "", "{tenant-a}:"} {
		t.Run(prefix, func(t *testing.T) {
			s := NewStore(nil, nil, "reports", prefix)
			together := []string{s.indexKey("pending"), s.indexKey("recent")}
			for _, k := range []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage} {
				together = append(together, s.indexKey("latest", string(k)))
			}
			if !keyslot.Same(together...) {
				t.Errorf("index keys in different slots: %q", together)
			}
			if tag := keyslot.Tag(s.indexKey("recent")); prefix != "{tenant-a}:" && tag != "index" {
				t.Errorf("hash tag of %s = %q, want index", s.indexKey("recent"), tag)
			}
			if prefix == "{tenant-a}:" && !keyslot.Same(s.indexKey("recent"), s.key("scan", "scn_1"), s.key("dedup", "d")) {
				t.Error("a prefix's own hash tag does not hold every key")
			}
		})
	}
}

// Issue 10 items 5 and 8: errors are not handed back on resubmission; a
// verdict is written once; "latest" follows submission order; declared
// inputs are part of the submission; the reuse index never points at an
// error or an incomplete scan; unfinished scans are listed for the sweeper.
func TestStoreRecordsAreConditional(t *testing.T) {
	tb := setup(t, "storagecas")
	s, ctx := tb.s, context.Background()
	t0 := time.Now().UTC().Add(-time.Hour)
	mk := func(asset string, at time.Time) Scan {
		return Scan{ScanID: NewScanID(), AssetID: asset, SellerID: "s1", Kind: assetscan.KindPackage, Bucket: "u", Key: asset + ".zip",
			ETag: "e1", Size: 10, Status: assetscan.StatusQueued, SubmittedAt: at}
	}
	ok := assetscan.Findings{Checks: []assetscan.CheckRun{{Name: "format", Status: "ok"}}}
	verdict := func(sc Scan, o assetscan.Outcome, key string) assetscan.Verdict {
		return assetscan.Verdict{ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind, Status: assetscan.StatusDone,
			Verdict: o, SHA256: "ab", ReuseKey: key, Object: assetscan.Object{Name: sc.Key}, SubmittedAt: sc.SubmittedAt, CompletedAt: time.Now()}
	}

	// An error is not sticky: the same submission after it creates a new scan.
	first := mk("errasset", t0)
	if _, created, err := s.Create(ctx, first); err != nil || !created {
		t.Fatal(created, err)
	}
	if pend, _ := s.Pending(ctx, time.Now(), 0, 10); !contains(pend, first.ScanID) {
		t.Errorf("pending %v lacks the new scan", pend)
	}
	if err := s.SaveVerdict(ctx, first, verdict(first, assetscan.Error, "sha256:err"), ok); err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.Pending(ctx, time.Now(), 0, 10); contains(pend, first.ScanID) {
		t.Errorf("a finished scan is still pending")
	}
	again := mk("errasset", t0)
	if got, created, err := s.Create(ctx, again); err != nil || !created || got.ScanID != again.ScanID {
		t.Fatalf("resubmission after error: created=%v id=%s err=%v, want a new scan", created, got.ScanID, err)
	}
	if _, err := s.ByReuseKey(ctx, "sha256:err"); !errors.Is(err, ErrScanNotFound) {
		t.Errorf("an error verdict was indexed for reuse: %v", err)
	}

	// Declared inputs make another submission.
	withDecl := mk("errasset", t0)
	withDecl.DeclaredDigest = FindingsDigest([]assetscan.Finding{{Rule: "account.declared_password_weak", Path: "root"}}, 1)
	if _, created, _ := s.Create(ctx, withDecl); !created {
		t.Error("a submission with declared passwords was deduplicated into one without")
	}

	// Written once: a late duplicate delivery cannot overwrite.
	a := mk("casasset", t0)
	if _, _, err := s.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveVerdict(ctx, a, verdict(a, assetscan.Pass, "sha256:k1"), ok); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveVerdict(ctx, a, verdict(a, assetscan.Fail, "sha256:k1"), ok); !errors.Is(err, ErrAlreadyFinal) {
		t.Fatalf("second SaveVerdict: %v, want ErrAlreadyFinal", err)
	}
	if v, _ := s.Verdict(ctx, a.ScanID); v.Verdict != assetscan.Pass {
		t.Errorf("verdict overwritten: %s", v.Verdict)
	}
	if id, err := s.ByReuseKey(ctx, "sha256:k1"); err != nil || id != a.ScanID {
		t.Errorf("reuse index = %s %v", id, err)
	}
	// Supersede is a compare-and-set on the revision.
	v2 := verdict(a, assetscan.Fail, "sha256:k1")
	v2.Revision = 2
	if err := s.Supersede(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if err := s.Supersede(ctx, v2); !errors.Is(err, ErrAlreadyFinal) {
		t.Errorf("second revision 2: %v, want ErrAlreadyFinal", err)
	}
	// A failed attempt at a revision (here: another writer's claim) leaves
	// nothing behind: the next attempt writes it.
	v3 := v2
	v3.Revision = 3
	claim := tb.prefix + "final:" + a.ScanID + "@3"
	tb.rdb.Set(ctx, claim, "other", time.Minute)
	if err := s.Supersede(ctx, v3); !errors.Is(err, ErrBusy) {
		t.Errorf("revision 3 while claimed: %v, want ErrBusy", err)
	}
	tb.rdb.Del(ctx, claim)
	if err := s.Supersede(ctx, v3); err != nil {
		t.Errorf("revision 3 after the claim: %v", err)
	}
	if n, _ := tb.rdb.Exists(ctx, claim).Result(); n != 0 {
		t.Error("revision 3's claim was left behind")
	}

	// Latest by submission order: the earlier submission finishing last
	// does not become the asset's latest.
	older, newer := mk("ordasset", t0), mk("ordasset", t0.Add(time.Minute))
	newer.ETag = "e2"
	for _, sc := range []Scan{older, newer} {
		if _, _, err := s.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveVerdict(ctx, newer, verdict(newer, assetscan.Fail, ""), ok); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveVerdict(ctx, older, verdict(older, assetscan.Pass, ""), ok); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.Latest(ctx, "ordasset"); id != newer.ScanID {
		t.Errorf("latest = %s, want the scan submitted last %s", id, newer.ScanID)
	}
	loseKeys(t, tb.rdb, tb.prefix) // Redis loses its data: object storage decides
	if id, _ := s.Latest(ctx, "ordasset"); id != newer.ScanID {
		t.Errorf("latest after Redis loss = %s, want %s", id, newer.ScanID)
	}
	if err := s.SaveVerdict(ctx, a, verdict(a, assetscan.Fail, ""), ok); !errors.Is(err, ErrAlreadyFinal) {
		t.Errorf("SaveVerdict after Redis loss: %v, want ErrAlreadyFinal (object storage has it)", err)
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// The fault soak's finding: a writer killed inside SaveVerdict (after the
// verdict of record reached object storage, before Redis said done) must
// not leave the scan without a verdict, and a later attempt must not write
// a second verdict.
func TestSaveVerdictRecoversAHalfWrittenRecord(t *testing.T) {
	tb := setup(t, "storagerec")
	s, ctx := tb.s, context.Background()
	sc := Scan{ScanID: NewScanID(), AssetID: "rec", SellerID: "s1", Kind: assetscan.KindPackage, Bucket: "u", Key: "k",
		Status: assetscan.StatusRunning, SubmittedAt: time.Now().UTC()}
	if _, _, err := s.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	first := assetscan.Verdict{ScanID: sc.ScanID, AssetID: "rec", Kind: sc.Kind, Status: assetscan.StatusDone, Verdict: assetscan.Fail, Revision: 1}
	data, _ := json.Marshal(first)
	// The dead writer got as far as the first revision.
	if err := tb.obj.Put(ctx, tb.bucket, "verdicts/"+sc.ScanID+"@1.json", data, "application/json"); err != nil {
		t.Fatal(err)
	}
	// A claim it held (until the TTL) makes the next writer wait, not give up.
	if err := tb.rdb.Set(ctx, tb.prefix+"final:"+sc.ScanID, "dead-writer", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	again := assetscan.Verdict{ScanID: sc.ScanID, Verdict: assetscan.Pass}
	if err := s.SaveVerdict(ctx, sc, again, assetscan.Findings{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("while the dead writer's claim lasts: %v, want ErrBusy", err)
	}
	tb.rdb.Del(ctx, tb.prefix+"final:"+sc.ScanID) // the claim expired
	err := s.SaveVerdict(ctx, sc, again, assetscan.Findings{})
	var rec *RecoveredError
	if !errors.As(err, &rec) || !errors.Is(err, ErrAlreadyFinal) || rec.Verdict.Verdict != assetscan.Fail {
		t.Fatalf("after the claim expired: %v, want the recovered first verdict", err)
	}
	if rec, err := s.Get(ctx, sc.ScanID); err != nil || rec.Status != assetscan.StatusDone || rec.Verdict != assetscan.Fail {
		t.Fatalf("record = %+v %v, want done/fail", rec, err)
	}
	if v, err := s.Verdict(ctx, sc.ScanID); err != nil || v.Verdict != assetscan.Fail {
		t.Errorf("verdict of record = %s %v, want the first (fail)", v.Verdict, err)
	}
}

// TestReindexRepairsAFailedIndex: a finished scan whose index transaction
// never ran (the writer failed after the record was final) is indexed from
// its stored verdict and findings by Reindex, as SaveVerdict would have.
func TestReindexRepairsAFailedIndex(t *testing.T) {
	tb := setup(t, "storagereidx")
	s, ctx := tb.s, context.Background()
	sc := Scan{ScanID: NewScanID(), AssetID: "reidx", SellerID: "s1", Kind: assetscan.KindPackage, Bucket: "u", Key: "k",
		Status: assetscan.StatusRunning, SubmittedAt: time.Now().UTC()}
	if _, _, err := s.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	v := assetscan.Verdict{ScanID: sc.ScanID, AssetID: sc.AssetID, Kind: sc.Kind, Status: assetscan.StatusDone,
		Verdict: assetscan.Pass, CompletedAt: time.Now().UTC()}
	if err := s.SaveVerdict(ctx, sc, v, assetscan.Findings{}); err != nil {
		t.Fatal(err)
	}
	// Undo the index transaction, as if it had failed.
	pipe := tb.rdb.TxPipeline()
	pipe.SRem(ctx, s.indexKey("latest", string(sc.Kind)), sc.ScanID)
	pipe.Del(ctx, s.indexKey("asset-done", sc.AssetID))
	pipe.ZRem(ctx, s.indexKey("recent"), sc.ScanID)
	pipe.ZAdd(ctx, s.indexKey("pending"), redis.Z{Score: float64(sc.SubmittedAt.UnixMilli()), Member: sc.ScanID})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	state := func() (latest, pending, recent bool) {
		ids, _ := s.LatestOfKind(ctx, sc.Kind)
		p, _ := s.Pending(ctx, time.Now().Add(time.Hour), 0, 100)
		r, _ := s.Recent(ctx, 100)
		return slices.Contains(ids, sc.ScanID), slices.Contains(p, sc.ScanID), slices.Contains(r, sc.ScanID)
	}
	if l, p, r := state(); l || !p || r {
		t.Fatalf("before: latest %v pending %v recent %v", l, p, r)
	}
	if err := s.Reindex(ctx, mustGet(t, s, sc.ScanID)); err != nil {
		t.Fatal(err)
	}
	if l, p, r := state(); !l || p || !r {
		t.Fatalf("after Reindex: latest %v pending %v recent %v; want latest, recent, not pending", l, p, r)
	}
	if err := s.Reindex(ctx, mustGet(t, s, sc.ScanID)); err != nil { // idempotent
		t.Fatal(err)
	}
	if l, p, r := state(); !l || p || !r {
		t.Fatalf("after a second Reindex: latest %v pending %v recent %v", l, p, r)
	}
}

func mustGet(t *testing.T, s *Store, id string) Scan {
	t.Helper()
	sc, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
