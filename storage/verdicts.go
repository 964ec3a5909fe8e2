package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
)

// ErrScanNotFound: no scan with that id (or no scan for that asset).
var ErrScanNotFound = errors.New("scan not found")

// ErrAlreadyFinal: the scan already has its verdict; SaveVerdict wrote
// nothing (a late or duplicate delivery never overwrites a verdict).
var ErrAlreadyFinal = errors.New("scan already has a verdict")

// Scan is the scan record: the submission and where the scan is. It lives
// in Redis for fast polling; the verdict of record lives in object storage.
type Scan struct {
	ScanID         string            `json:"scan_id"`
	AssetID        string            `json:"asset_id"`
	SellerID       string            `json:"seller_id"`
	Kind           assetscan.Kind    `json:"kind"`
	Bucket         string            `json:"bucket"`
	Key            string            `json:"key"`
	VersionID      string            `json:"version_id,omitempty"`
	ExpectedSHA256 string            `json:"sha256,omitempty"`
	ETag           string            `json:"etag,omitempty"`
	Size           int64             `json:"size"`
	Status         assetscan.Status  `json:"status"`
	Verdict        assetscan.Outcome `json:"verdict,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	Attempts       int               `json:"attempts,omitempty"`
	// Declared are findings established at submission from the seller's
	// declared inputs (initial passwords judged under the policy); they
	// never contain the inputs themselves.
	Declared []assetscan.Finding `json:"declared,omitempty"`
	// DeclaredDigest identifies the declared inputs themselves (a keyed
	// digest, never the passwords), so that a resubmission with other
	// declared inputs is a new submission.
	DeclaredDigest string `json:"declared_digest,omitempty"`
	// TaskID is the queue's task id for the scan (the scan id, or a new
	// one after the sweeper re-enqueued it).
	TaskID      string    `json:"task_id,omitempty"`
	SubmittedAt time.Time `json:"submitted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Store keeps scan records and verdicts.
//
// Layout:
//
//	Redis  <prefix>scan:<id>          scan record (JSON)
//	Redis  <prefix>asset:<asset_id>   latest scan id of the asset
//	Redis  <prefix>dedup:<digest>     scan id for a (asset, object, content) submission
//	S3     <bucket>/verdicts/<id>.json        verdict document of record
//	S3     <bucket>/findings/<id>.json        findings (facts, policy-free)
//	S3     <bucket>/scans/<id>.json           scan record at completion
//	S3     <bucket>/assets/<asset_id>/latest.json  {"scan_id": ...}
//	S3     <bucket>/verdicts/<id>@<revision>.json every revision (immutable)
//	Redis  <prefix>{index}:asset-done:<asset_id> the asset's latest finished scan id
//	Redis  <prefix>{index}:latest:<kind> set: scan ids that are their asset's latest finished scan
//	Redis  <prefix>{index}:recent     sorted set: finished scan ids by completion time
//	Redis  <prefix>{index}:pending    sorted set: unfinished scan ids by submission time (the sweeper's work list)
//	Redis  <prefix>reuse:<reuse key>  scan id of the last finished, complete scan with that reuse key
//	Redis  <prefix>final:<id>         claim of the one writer of a scan's verdict
//	Redis  <prefix>lock:<name>        fleet-wide locks (Lock)
//
// Redis Cluster: the fleet-wide indexes share the hash tag {index}, so
// that a finished scan moves between them in one transaction (MULTI/EXEC
// must stay in one slot). Every other command touches one key; those keys
// carry no tag and spread over the cluster. With a prefix that holds a
// hash tag itself (e.g. "{assetscan}:"), every key lands in that one slot.
//
// If Redis loses its data, finished scans are still found in S3.
type Store struct {
	rdb    redis.UniversalClient
	obj    *Objects
	bucket string
	prefix string
	ttl    time.Duration
}

// NewStore returns a store. prefix namespaces the Redis keys ("assetscan:").
func NewStore(rdb redis.UniversalClient, obj *Objects, reportsBucket, prefix string) *Store {
	return &Store{rdb: rdb, obj: obj, bucket: reportsBucket, prefix: prefix, ttl: 30 * 24 * time.Hour}
}

// NewScanID returns a new, time-ordered scan id ("scn_" + 26 hex chars).
func NewScanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("scn_%010x%s", time.Now().UnixMilli(), hex.EncodeToString(b[:]))
}

// DedupKey identifies "the same submission": the asset id, the object's
// location and version, its content identity (ETag and size from storage,
// plus the submitted digest when given) and the declared inputs.
func DedupKey(s Scan) string {
	h := sha256.New()
	for _, p := range []string{s.AssetID, string(s.Kind), s.Bucket, s.Key, s.VersionID, s.ETag, fmt.Sprint(s.Size), strings.ToLower(s.ExpectedSHA256), s.DeclaredDigest} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FindingsDigest identifies declared inputs by what was judged of them
// (the findings, which never hold a password) and how many there were.
func FindingsDigest(fs []assetscan.Finding, n int) string {
	data, _ := json.Marshal(fs)
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", n)
	h.Write(data)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

// indexTag is the hash tag of the fleet-wide indexes (see Store).
const indexTag = "{index}"

// indexKey names a fleet-wide index: "latest:<kind>", "recent", "pending",
// and "asset-done:<asset_id>", written in the same transaction.
func (s *Store) indexKey(parts ...string) string {
	return s.key(append([]string{indexTag}, parts...)...)
}

// Create records a new scan unless the same submission exists; then it
// returns the existing scan and created=false.
func (s *Store) Create(ctx context.Context, sc Scan) (Scan, bool, error) {
	dk := s.key("dedup", DedupKey(sc))
	ok, err := s.rdb.SetNX(ctx, dk, sc.ScanID, s.ttl).Result()
	if err != nil {
		return Scan{}, false, fmt.Errorf("create scan: %w: %w", ErrUnavailable, err)
	}
	if !ok {
		id, err := s.rdb.Get(ctx, dk).Result()
		if err != nil {
			return Scan{}, false, fmt.Errorf("create scan: %w: %w", ErrUnavailable, err)
		}
		existing, err := s.Get(ctx, id)
		if err == nil && !(existing.Status == assetscan.StatusDone && existing.Verdict == assetscan.Error) {
			return existing, false, nil
		}
		if err != nil && !errors.Is(err, ErrScanNotFound) {
			return Scan{}, false, err
		}
		// The dedup key outlived its scan record, or the scan ended in
		// error (errors are never handed back: the cause may be fixed):
		// take it over.
		if err := s.rdb.Set(ctx, dk, sc.ScanID, s.ttl).Err(); err != nil {
			return Scan{}, false, fmt.Errorf("create scan: %w: %w", ErrUnavailable, err)
		}
	}
	if err := s.Put(ctx, sc); err != nil {
		return Scan{}, false, err
	}
	// The sweeper's work list first: should the next write fail, the
	// sweeper still finds the scan (the two keys lie in different slots
	// of a Redis Cluster, so they are not one transaction).
	if err := s.rdb.ZAdd(ctx, s.indexKey("pending"), redis.Z{Score: float64(sc.SubmittedAt.UnixMilli()), Member: sc.ScanID}).Err(); err != nil {
		return Scan{}, false, fmt.Errorf("create scan: %w: %w", ErrUnavailable, err)
	}
	if err := s.rdb.Set(ctx, s.key("asset", sc.AssetID), sc.ScanID, s.ttl).Err(); err != nil {
		return Scan{}, false, fmt.Errorf("create scan: %w: %w", ErrUnavailable, err)
	}
	return sc, true, nil
}

// Pending lists up to n unfinished scans submitted before cutoff, oldest
// first, skipping the first offset: the work list of the sweeper, which
// re-enqueues or finalizes scans whatever made them stick (a crash between
// record and enqueue, a task deleted from the queue UI, a lost worker).
func (s *Store) Pending(ctx context.Context, cutoff time.Time, offset, n int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.indexKey("pending"), &redis.ZRangeBy{
		Min: "-inf", Max: fmt.Sprint(cutoff.UnixMilli()), Offset: int64(offset), Count: int64(n)}).Result()
	if err != nil {
		return nil, fmt.Errorf("pending scans: %w: %w", ErrUnavailable, err)
	}
	return ids, nil
}

// Unpend removes a scan from the pending list (its record is gone).
func (s *Store) Unpend(ctx context.Context, id string) error {
	return s.rdb.ZRem(ctx, s.indexKey("pending"), id).Err()
}

// Reindex writes the Redis indexes of a finished scan again from its
// stored verdict and findings: what SaveVerdict's last step does. A writer
// whose index transaction failed after the record was final left them
// unwritten (the scan still listed as pending, not as its asset's latest),
// and its retry stops at ErrAlreadyFinal; the sweeper calls this when it
// finds a finished scan still pending. Idempotent.
func (s *Store) Reindex(ctx context.Context, sc Scan) error {
	v, err := s.Verdict(ctx, sc.ScanID)
	if err != nil {
		return fmt.Errorf("reindex %s: %w", sc.ScanID, err)
	}
	f, err := s.Findings(ctx, sc.ScanID)
	if err != nil {
		return fmt.Errorf("reindex %s: %w", sc.ScanID, err)
	}
	return s.index(ctx, sc, v, f)
}

// Forget removes a scan's dedup entry and record (used when enqueueing
// failed, so the submission can be retried). One DEL per key: they lie in
// different slots of a Redis Cluster.
func (s *Store) Forget(ctx context.Context, sc Scan) error {
	var errs []error
	for _, k := range []string{s.key("dedup", DedupKey(sc)), s.key("scan", sc.ScanID)} {
		if err := s.rdb.Del(ctx, k).Err(); err != nil {
			errs = append(errs, fmt.Errorf("forget scan: %w: %w", ErrUnavailable, err))
		}
	}
	return errors.Join(errs...)
}

// Put writes the scan record.
func (s *Store) Put(ctx context.Context, sc Scan) error {
	sc.UpdatedAt = time.Now().UTC()
	data, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("put scan: %w", err)
	}
	if err := s.rdb.Set(ctx, s.key("scan", sc.ScanID), data, s.ttl).Err(); err != nil {
		return fmt.Errorf("put scan: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Get returns the scan record, from Redis or, for a finished scan whose
// Redis record is gone, from object storage.
func (s *Store) Get(ctx context.Context, id string) (Scan, error) {
	data, err := s.rdb.Get(ctx, s.key("scan", id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		data, err = s.obj.Get(ctx, s.bucket, "scans/"+id+".json")
		if errors.Is(err, ErrNotFound) {
			return Scan{}, ErrScanNotFound
		}
		if err != nil {
			return Scan{}, fmt.Errorf("get scan: %w", err)
		}
	case err != nil:
		return Scan{}, fmt.Errorf("get scan: %w: %w", ErrUnavailable, err)
	}
	var sc Scan
	if err := json.Unmarshal(data, &sc); err != nil {
		return Scan{}, fmt.Errorf("get scan: %w", err)
	}
	return sc, nil
}

// Latest returns the latest scan id of an asset.
func (s *Store) Latest(ctx context.Context, assetID string) (string, error) {
	id, err := s.rdb.Get(ctx, s.key("asset", assetID)).Result()
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("latest scan: %w: %w", ErrUnavailable, err)
	}
	data, err := s.obj.Get(ctx, s.bucket, "assets/"+assetID+"/latest.json")
	if errors.Is(err, ErrNotFound) {
		return "", ErrScanNotFound
	}
	if err != nil {
		return "", fmt.Errorf("latest scan: %w", err)
	}
	var p struct {
		ScanID string `json:"scan_id"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.ScanID == "" {
		return "", fmt.Errorf("latest scan: bad pointer for asset %s", assetID)
	}
	return p.ScanID, nil
}

// SaveVerdict writes the verdict of record and the findings to object
// storage first (durable), then marks the scan done in Redis and updates
// the indexes (latest scan per asset and kind, recent scans, reuse).
//
// It writes once per scan. A scan whose record is done gives
// ErrAlreadyFinal. A writer that died half-way (after the verdict's first
// revision reached object storage, before Redis said done) left the
// verdict of record: SaveVerdict completes the record from it, writes
// nothing new, and returns a *RecoveredError (errors.Is ErrAlreadyFinal)
// carrying that verdict, so the caller can finalize it. While another
// writer holds the scan's claim (two minutes at most), it returns ErrBusy:
// retry later.
func (s *Store) SaveVerdict(ctx context.Context, sc Scan, v assetscan.Verdict, f assetscan.Findings) error {
	if v.Revision == 0 {
		v.Revision = 1
	}
	if cur, err := s.Get(ctx, sc.ScanID); err == nil && cur.Status == assetscan.StatusDone {
		return ErrAlreadyFinal
	}
	claim := s.key("final", sc.ScanID)
	token := NewScanID()
	ok, err := s.rdb.SetNX(ctx, claim, token, claimTTL).Result()
	if err != nil {
		return fmt.Errorf("save verdict: %w: %w", ErrUnavailable, err)
	}
	if !ok {
		return fmt.Errorf("save verdict %s: %w", sc.ScanID, ErrBusy)
	}
	defer func() {
		// Release the claim if it is still ours.
		rctx := context.WithoutCancel(ctx)
		if cur, err := s.rdb.Get(rctx, claim).Result(); err == nil && cur == token {
			s.rdb.Del(rctx, claim)
		}
	}()
	if stored, err := s.obj.Get(ctx, s.bucket, fmt.Sprintf("verdicts/%s@1.json", sc.ScanID)); err == nil {
		return s.recover(ctx, sc, stored)
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("save verdict: %w", err)
	}
	fdata, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("save verdict: %w", err)
	}
	if err := s.obj.Put(ctx, s.bucket, "findings/"+sc.ScanID+".json", fdata, "application/json"); err != nil {
		return fmt.Errorf("save findings: %w", err)
	}
	vdata, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("save verdict: %w", err)
	}
	// The first revision is the verdict of record: once it is written, a
	// later attempt completes the record from it (recover).
	if err := s.obj.Put(ctx, s.bucket, fmt.Sprintf("verdicts/%s@%d.json", sc.ScanID, v.Revision), vdata, "application/json"); err != nil {
		return fmt.Errorf("save verdict: %w", err)
	}
	if err := s.obj.Put(ctx, s.bucket, "verdicts/"+sc.ScanID+".json", vdata, "application/json"); err != nil {
		return fmt.Errorf("save verdict: %w", err)
	}
	return s.finish(ctx, sc, v, f)
}

// claimTTL bounds how long a dead writer's claim blocks the next one.
const claimTTL = 2 * time.Minute

// ErrBusy: another writer holds the scan's verdict claim; retry later.
var ErrBusy = errors.New("another writer is saving this verdict")

// RecoveredError is SaveVerdict's answer when the verdict of record was
// already in object storage (a writer died before finishing the record):
// the record is complete now, and Verdict is the verdict of record.
type RecoveredError struct{ Verdict assetscan.Verdict }

func (e *RecoveredError) Error() string {
	return "scan " + e.Verdict.ScanID + " already has a verdict (record completed from object storage)"
}

// Is makes a RecoveredError an ErrAlreadyFinal.
func (e *RecoveredError) Is(target error) bool { return target == ErrAlreadyFinal }

// recover completes the record of a scan whose first verdict revision is
// stored, without writing another verdict.
func (s *Store) recover(ctx context.Context, sc Scan, stored []byte) error {
	var v assetscan.Verdict
	if err := json.Unmarshal(stored, &v); err != nil {
		return fmt.Errorf("save verdict: stored verdict of %s: %w", sc.ScanID, err)
	}
	if _, err := s.obj.Get(ctx, s.bucket, "verdicts/"+sc.ScanID+".json"); errors.Is(err, ErrNotFound) {
		if err := s.obj.Put(ctx, s.bucket, "verdicts/"+sc.ScanID+".json", stored, "application/json"); err != nil {
			return fmt.Errorf("save verdict: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("save verdict: %w", err)
	}
	f, err := s.Findings(ctx, sc.ScanID)
	if err != nil && !errors.Is(err, ErrScanNotFound) {
		return fmt.Errorf("save verdict: %w", err)
	}
	if err := s.finish(ctx, sc, v, f); err != nil {
		return err
	}
	return &RecoveredError{Verdict: v}
}

// finish writes the scan record (object storage, then Redis) and the
// indexes of a saved verdict. Every step is idempotent.
func (s *Store) finish(ctx context.Context, sc Scan, v assetscan.Verdict, f assetscan.Findings) error {
	sc.Status = assetscan.StatusDone
	sc.Verdict = v.Verdict
	sc.Reason = v.Reason
	sc.UpdatedAt = time.Now().UTC()
	sdata, _ := json.Marshal(sc)
	if err := s.obj.Put(ctx, s.bucket, "scans/"+sc.ScanID+".json", sdata, "application/json"); err != nil {
		return fmt.Errorf("save scan record: %w", err)
	}
	if err := s.putLatest(ctx, sc); err != nil {
		return err
	}
	if err := s.Put(ctx, sc); err != nil {
		return err
	}
	return s.index(ctx, sc, v, f)
}

type latestPointer struct {
	ScanID      string    `json:"scan_id"`
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
}

// putLatest points the asset at sc unless a scan submitted later is
// already there: "latest" is by submission order, not by which scan
// finished last.
func (s *Store) putLatest(ctx context.Context, sc Scan) error {
	name := "assets/" + sc.AssetID + "/latest.json"
	if data, err := s.obj.Get(ctx, s.bucket, name); err == nil {
		var cur latestPointer
		if json.Unmarshal(data, &cur) == nil && cur.ScanID != sc.ScanID && cur.SubmittedAt.After(sc.SubmittedAt) {
			return nil
		}
	}
	ptr, _ := json.Marshal(latestPointer{ScanID: sc.ScanID, SubmittedAt: sc.SubmittedAt})
	if err := s.obj.Put(ctx, s.bucket, name, ptr, "application/json"); err != nil {
		return fmt.Errorf("save latest pointer: %w", err)
	}
	return nil
}

// index maintains the Redis indexes of finished scans in one transaction
// (all under the {index} hash tag, one slot of a Redis Cluster): the
// asset's latest finished scan (asset-done), the set of latest scans per
// kind, recent and pending; then the reuse key. A failure leaves all of
// them as they were, and the retry (or the sweeper) writes them again.
func (s *Store) index(ctx context.Context, sc Scan, v assetscan.Verdict, f assetscan.Findings) error {
	latestKey := s.indexKey("latest", string(sc.Kind))
	prevKey := s.indexKey("asset-done", sc.AssetID)
	// The asset's latest finished scan is the one submitted last.
	prev, err := s.rdb.Get(ctx, prevKey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("index verdict: %w: %w", ErrUnavailable, err)
	}
	newer := true
	if prev != "" && prev != sc.ScanID {
		if p, err := s.Get(ctx, prev); err == nil && p.SubmittedAt.After(sc.SubmittedAt) {
			newer = false
		}
	}
	pipe := s.rdb.TxPipeline()
	if newer {
		pipe.Set(ctx, prevKey, sc.ScanID, 0)
		if prev != "" && prev != sc.ScanID {
			pipe.SRem(ctx, latestKey, prev)
		}
		pipe.SAdd(ctx, latestKey, sc.ScanID)
	}
	pipe.ZAdd(ctx, s.indexKey("recent"), redis.Z{Score: float64(v.CompletedAt.UnixMilli()), Member: sc.ScanID})
	pipe.ZRem(ctx, s.indexKey("pending"), sc.ScanID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("index verdict: %w: %w", ErrUnavailable, err)
	}
	if v.ReuseKey != "" && !v.Reused && v.Verdict != assetscan.Error && complete(f) {
		if err := s.rdb.Set(ctx, s.key("reuse", v.ReuseKey), sc.ScanID, s.ttl).Err(); err != nil {
			return fmt.Errorf("index verdict: %w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// complete reports whether every check ran to the end and covered all.
func complete(f assetscan.Findings) bool {
	if len(f.Checks) == 0 {
		return false
	}
	for _, c := range f.Checks {
		if c.Status != assetscan.RunOK || !c.Coverage.Complete() {
			return false
		}
	}
	return true
}

// ByReuseKey returns the last finished, complete scan whose findings were
// made under the reuse key (package scan), or ErrScanNotFound.
func (s *Store) ByReuseKey(ctx context.Context, key string) (string, error) {
	id, err := s.rdb.Get(ctx, s.key("reuse", key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrScanNotFound
	}
	if err != nil {
		return "", fmt.Errorf("content index: %w: %w", ErrUnavailable, err)
	}
	return id, nil
}

// LatestOfKind lists the scans that are their asset's latest finished scan.
func (s *Store) LatestOfKind(ctx context.Context, kind assetscan.Kind) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.indexKey("latest", string(kind))).Result()
	if err != nil {
		return nil, fmt.Errorf("latest scans: %w: %w", ErrUnavailable, err)
	}
	return ids, nil
}

// Recent lists up to n finished scans, newest first.
func (s *Store) Recent(ctx context.Context, n int) ([]string, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.indexKey("recent"), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("recent scans: %w: %w", ErrUnavailable, err)
	}
	return ids, nil
}

// Supersede records a new revision of a finished scan's verdict (after a
// re-evaluation); v must carry Revision and Supersedes.
//
// It is a compare-and-set on the revision: when the current verdict is not
// revision v.Revision-1 (a concurrent re-evaluation wrote it), it returns
// ErrAlreadyFinal and writes nothing; while another writer holds that
// revision's claim, ErrBusy. A failed write leaves no claim behind.
func (s *Store) Supersede(ctx context.Context, v assetscan.Verdict) error {
	if cur, err := s.Verdict(ctx, v.ScanID); err == nil && cur.Revision != v.Revision-1 {
		return ErrAlreadyFinal
	}
	claim := s.key("final", fmt.Sprintf("%s@%d", v.ScanID, v.Revision))
	ok, err := s.rdb.SetNX(ctx, claim, "1", claimTTL).Result()
	if err != nil {
		return fmt.Errorf("supersede verdict: %w: %w", ErrUnavailable, err)
	}
	if !ok {
		return fmt.Errorf("supersede verdict %s@%d: %w", v.ScanID, v.Revision, ErrBusy)
	}
	// Released whatever happens: a failed write must not block the next
	// attempt at this revision, and a done one is guarded by the revision
	// check above.
	defer s.rdb.Del(context.WithoutCancel(ctx), claim)
	// Re-check under the claim: a writer that finished between the first
	// check and the claim wrote this revision.
	if cur, err := s.Verdict(ctx, v.ScanID); err == nil && cur.Revision != v.Revision-1 {
		return ErrAlreadyFinal
	}
	vdata, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("supersede verdict: %w", err)
	}
	if err := s.obj.Put(ctx, s.bucket, fmt.Sprintf("verdicts/%s@%d.json", v.ScanID, v.Revision), vdata, "application/json"); err != nil {
		return fmt.Errorf("supersede verdict: %w", err)
	}
	if err := s.obj.Put(ctx, s.bucket, "verdicts/"+v.ScanID+".json", vdata, "application/json"); err != nil {
		return fmt.Errorf("supersede verdict: %w", err)
	}
	sc, err := s.Get(ctx, v.ScanID)
	if err != nil {
		return err
	}
	sc.Verdict, sc.Reason = v.Verdict, v.Reason
	return s.Put(ctx, sc)
}

// Verdict reads the verdict document of a finished scan.
func (s *Store) Verdict(ctx context.Context, id string) (assetscan.Verdict, error) {
	data, err := s.obj.Get(ctx, s.bucket, "verdicts/"+id+".json")
	if errors.Is(err, ErrNotFound) {
		return assetscan.Verdict{}, ErrScanNotFound
	}
	if err != nil {
		return assetscan.Verdict{}, fmt.Errorf("read verdict: %w", err)
	}
	var v assetscan.Verdict
	if err := json.Unmarshal(data, &v); err != nil {
		return assetscan.Verdict{}, fmt.Errorf("read verdict: %w", err)
	}
	return v, nil
}

// Findings reads the stored findings of a finished scan.
func (s *Store) Findings(ctx context.Context, id string) (assetscan.Findings, error) {
	data, err := s.obj.Get(ctx, s.bucket, "findings/"+id+".json")
	if errors.Is(err, ErrNotFound) {
		return assetscan.Findings{}, ErrScanNotFound
	}
	if err != nil {
		return assetscan.Findings{}, fmt.Errorf("read findings: %w", err)
	}
	var f assetscan.Findings
	if err := json.Unmarshal(data, &f); err != nil {
		return assetscan.Findings{}, fmt.Errorf("read findings: %w", err)
	}
	return f, nil
}

// PingRedis checks Redis (readiness).
func (s *Store) PingRedis(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// PutFindings replaces the stored findings of a scan (after re-matching
// its inventory against a newer DB: the facts changed).
func (s *Store) PutFindings(ctx context.Context, id string, f assetscan.Findings) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("put findings: %w", err)
	}
	if err := s.obj.Put(ctx, s.bucket, "findings/"+id+".json", data, "application/json"); err != nil {
		return fmt.Errorf("put findings: %w", err)
	}
	return nil
}

// Lock takes a named lock for ttl (SET NX); it reports whether this caller
// got it. Used so that one worker of a fleet does fleet-wide work once.
func (s *Store) Lock(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.key("lock", name), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w: %w", name, ErrUnavailable, err)
	}
	return ok, nil
}
