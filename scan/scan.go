// Package scan is the one flow of a scan, from a submitted record to a
// finalized verdict: the policy in force, the vulnerability DB's age, the
// download of the pinned object, the reuse of earlier findings, the checks
// (package scanner), the verdict (package policies), the conditional save
// of the record, and the finalization (object tag and callbacks). The CLI
// (`assetscan scan`), the asynq worker (package queue, a thin adapter) and
// the embedded mode all call Service.Run; the sweeper finalizes stuck scans
// through Service.Fail.
//
// A verdict is a proof of what was checked with what: it names the content
// digest, the policy, every check's identity (code version, engine version
// and data digest), and the reuse key, the digest of everything that
// decided the findings. Findings are reused only under an equal reuse key,
// never from a scan that ended in error, and never under a check identity
// that is unknown.
package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/storage"
	"github.com/assetscan/assetscan/vulndb"
)

// Errors callers branch on.
var (
	// ErrRetry: the scan could not run for a reason a later attempt may
	// not meet (storage unreachable, an engine down). The caller retries
	// the job, or calls Run again with Request.Last set.
	ErrRetry = errors.New("scan: retry later")
	// ErrAlreadyFinal: the scan already has a verdict (a duplicate
	// delivery); nothing was written.
	ErrAlreadyFinal = storage.ErrAlreadyFinal
	// ErrNoRoom: the work disk cannot hold this asset now; the job should
	// go back to the queue for a worker with room (not a failed attempt).
	ErrNoRoom = errors.New("scan: work disk too full for this asset")
)

// RuleDigestMismatch: the content digest differs from the one submitted.
const RuleDigestMismatch = "format.digest_mismatch"

// Policies gives the policy in force for a kind. *policies.Store
// implements it; Static serves one policy (the CLI).
type Policies interface {
	ForKind(ctx context.Context, k assetscan.Kind) (*policies.Policy, error)
}

// Static serves one policy for every kind (the CLI's --policy).
type Static struct{ Policy *policies.Policy }

// ForKind implements Policies.
func (s Static) ForKind(context.Context, assetscan.Kind) (*policies.Policy, error) {
	return s.Policy, nil
}

// Fetcher downloads a pinned object version into dst while hashing it.
// *storage.Objects implements it. It returns storage.ErrTooLarge past
// maxBytes, storage.ErrNotFound for a missing object, and
// storage.ErrChanged when the object no longer matches the pin.
type Fetcher interface {
	Download(ctx context.Context, pin storage.Pin, dst string, maxBytes int64) (sha256 string, n int64, err error)
}

// Records keeps scan records and verdicts. *storage.Store implements it.
type Records interface {
	// SaveVerdict writes the verdict of record once: storage.ErrAlreadyFinal
	// when the scan has a verdict already.
	SaveVerdict(ctx context.Context, sc storage.Scan, v assetscan.Verdict, f assetscan.Findings) error
}

// Reuse finds the findings of an earlier scan by reuse key. *storage.Store
// implements it.
type Reuse interface {
	ByReuseKey(ctx context.Context, key string) (scanID string, err error)
	Findings(ctx context.Context, id string) (assetscan.Findings, error)
}

// Finalizer is told of every recorded verdict: it tags the object (when
// it still is the version scanned) and notifies subscribers. Errors are
// logged, never fatal: the verdict of record is already saved.
type Finalizer interface {
	Finalize(ctx context.Context, sc storage.Scan, v assetscan.Verdict) error
}

// Service runs scans. Scanner and Policies are required; everything else
// is optional: without Fetcher, Request.LocalPath is scanned; without
// Records, nothing is saved (the CLI); without Reuse, nothing is reused;
// without DB, the DB age is not checked.
type Service struct {
	Scanner  *scanner.Scanner
	Policies Policies
	Fetcher  Fetcher
	Records  Records
	Reuse    Reuse
	// DB describes the vulnerability DB in use; a DB older than the
	// policy's vulndb.max_age ends the scan in error (vulndb.stale).
	DB        func() assetscan.DBRef
	Finalizer Finalizer
	// WorkRoot is where each scan gets its private work dir
	// ("scan-<scan id>-*", removed when the scan ends); default os.TempDir.
	WorkRoot string
	Log      *slog.Logger
	// RoomFactor: a scan starts only when the work disk has at least
	// RoomFactor × the object's size free (the download plus its
	// expansion); otherwise Run returns ErrNoRoom. 0 means 3. Negative:
	// no check.
	RoomFactor float64
	// FreeBytes, optional, reports the free bytes of the file system
	// holding dir (tests); statfs by default.
	FreeBytes func(dir string) (int64, error)
	// Now, optional, is the clock (tests).
	Now func() time.Time
}

// Request is one scan to run.
type Request struct {
	// Scan is the submission record: asset, seller, kind, the pinned
	// object (bucket, key, version, ETag), the expected digest, the
	// declared findings.
	Scan storage.Scan
	// LocalPath, for the CLI, is the asset on local disk (Scan.Bucket and
	// Key are then empty); Name defaults to its base name.
	LocalPath string
	// Name is the file name the name rule applies to; default: the base
	// name of the object key or LocalPath.
	Name string
	// Last is true on the job's last attempt: what would be retried is
	// recorded as an error verdict instead.
	Last bool
	// Progress, optional, hears what a long scan is doing.
	Progress func(msg string)
}

// Run scans one asset and records its verdict. It returns the verdict,
// or an error wrapping ErrRetry (retry the job), ErrAlreadyFinal (a
// verdict exists), or ctx's error.
func (s *Service) Run(ctx context.Context, req Request) (assetscan.Verdict, assetscan.Findings, error) {
	log := s.logger().With("scan_id", req.Scan.ScanID, "kind", req.Scan.Kind)
	pol, err := s.Policies.ForKind(ctx, req.Scan.Kind)
	if err != nil {
		return s.retryOr(ctx, req, fmt.Errorf("policy: %w", err))
	}
	name := req.Name
	switch {
	case name != "":
	case req.LocalPath != "":
		name = filepath.Base(req.LocalPath)
	default:
		name = path.Base(req.Scan.Key)
	}
	base := s.base(req.Scan, name)

	if s.DB != nil && pol.VulnDB.MaxAge > 0 {
		if ref := s.DB(); vulndb.Stale(ref, pol.VulnDB.MaxAge, s.now()) {
			// Judging with an old DB would miss what a fresh one knows. Not
			// retried: a DB does not get fresher in seconds.
			reason := "vulndb.stale: the vulnerability DB (built " + ref.UpdatedAt.Format(time.RFC3339) + ") is older than the policy allows (" + pol.VulnDB.MaxAge.String() + ")"
			f := assetscan.Findings{Findings: []assetscan.Finding{}, Checks: []assetscan.CheckRun{{Name: assetscan.CheckVulnerability, Status: assetscan.RunError, Reason: reason}}}
			v := policies.Verdict(pol, base, f)
			v.VulnDB = &ref
			v.Verdict, v.Reason = assetscan.Error, reason
			return s.record(ctx, req.Scan, v, f)
		}
	}

	if err := s.checkRoom(req.Scan.Size); err != nil {
		log.WarnContext(ctx, "work disk too full: handing the scan back", "error", err)
		return assetscan.Verdict{}, assetscan.Findings{}, err
	}
	work, err := s.workDir(req.Scan.ScanID)
	if err != nil {
		return s.retryOr(ctx, req, err)
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			log.WarnContext(ctx, "remove work dir", "error", err)
		}
	}()

	asset := req.LocalPath
	var sum string
	if s.Fetcher != nil && req.LocalPath == "" {
		asset = filepath.Join(work, "asset")
		start := time.Now()
		pin := storage.Pin{Bucket: req.Scan.Bucket, Key: req.Scan.Key, VersionID: req.Scan.VersionID, ETag: req.Scan.ETag}
		var n int64
		sum, n, err = s.Fetcher.Download(ctx, pin, asset, pol.MaxSize())
		switch {
		case errors.Is(err, storage.ErrTooLarge):
			// Not read at all: the size rule judges the fact.
			f := assetscan.Findings{Findings: []assetscan.Finding{},
				Facts:  &assetscan.Facts{Name: name, Size: max(n, req.Scan.Size), NotDownloaded: true},
				Checks: []assetscan.CheckRun{{Name: assetscan.CheckFormat, Status: assetscan.RunOK, Detail: "not downloaded: larger than the policy's size limit"}}}
			base.Object.Size = max(n, req.Scan.Size)
			return s.record(ctx, req.Scan, policies.Verdict(pol, base, f), f)
		case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrChanged):
			// Permanent: the object scanned would not be the one submitted.
			reason := "object not found in storage: " + req.Scan.Bucket + "/" + req.Scan.Key
			if errors.Is(err, storage.ErrChanged) {
				reason = "object changed since submission (version or ETag differs): submit the new object again"
			}
			f := assetscan.Findings{Findings: []assetscan.Finding{}, Checks: []assetscan.CheckRun{{Name: assetscan.CheckFormat, Status: assetscan.RunError, Reason: reason}}}
			v := policies.Verdict(pol, base, f)
			v.Verdict, v.Reason = assetscan.Error, reason
			return s.record(ctx, req.Scan, v, f)
		case err != nil:
			return s.retryOr(ctx, req, fmt.Errorf("download: %w", err))
		}
		log.InfoContext(ctx, "downloaded", "bytes", n, "sha256", sum, "duration", time.Since(start))
	}

	ids, err := s.Scanner.Identities(ctx, req.Scan.Kind)
	if err != nil {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("scan: %w", err)
	}
	if sum == "" {
		if sum, err = scanner.FileSHA256(ctx, asset); err != nil {
			return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("scan: %w", err)
		}
	}
	base.SHA256 = sum
	key, reusable := ReuseKey(KeyInputs{SHA256: sum, Kind: req.Scan.Kind, Name: name,
		ExpectedSHA256: req.Scan.ExpectedSHA256, Declared: req.Scan.Declared, Shaping: pol.Shaping(), Identities: ids})
	base.ReuseKey = key
	if reusable {
		if f, ok := s.reuse(ctx, key); ok {
			log.InfoContext(ctx, "findings reused: same reuse key", "reuse_key", key)
			base.Reused = true
			if fi, err := os.Stat(asset); err == nil {
				base.Object.Size = fi.Size()
			}
			return s.record(ctx, req.Scan, policies.Verdict(pol, base, f), f)
		}
	}

	sc := *s.Scanner
	sc.Log = log
	sc.Progress = req.Progress
	findings := slices.Clone(req.Scan.Declared)
	rep, err := sc.Scan(ctx, scanner.Request{
		Kind: req.Scan.Kind, Path: asset, Name: name, SHA256: sum,
		WorkDir: work, Rules: pol, Findings: findings, Identities: ids,
		Disposable: asset != req.LocalPath,
	})
	if err != nil {
		if ctx.Err() != nil {
			return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("scan: %w", ctx.Err())
		}
		return s.retryOr(ctx, req, fmt.Errorf("scan: %w", err))
	}
	f := rep.Findings
	if e := strings.ToLower(req.Scan.ExpectedSHA256); e != "" && e != rep.SHA256 {
		f.Findings = append(f.Findings, assetscan.Finding{Check: assetscan.CheckFormat, Rule: RuleDigestMismatch, Path: name,
			Message: fmt.Sprintf("content digest sha256:%s does not match the submitted sha256:%s", rep.SHA256, e)})
	}
	base.SHA256 = rep.SHA256
	base.Object.Size = rep.Size
	v := policies.Verdict(pol, base, f)
	if v.Verdict == assetscan.Error && rep.Transient && !req.Last {
		log.WarnContext(ctx, "a check could not run; the scan will be retried", "reason", v.Reason)
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("%w: %s", ErrRetry, v.Reason)
	}
	return s.record(ctx, req.Scan, v, f)
}

// Fail records an error verdict for a scan that could not run (retries
// exhausted, stuck in the queue past its deadline), and finalizes it.
func (s *Service) Fail(ctx context.Context, sc storage.Scan, reason string) (assetscan.Verdict, error) {
	v := s.base(sc, path.Base(sc.Key))
	v.Verdict = assetscan.Error
	v.Reason = reason
	v.Findings = []assetscan.JudgedFinding{}
	if p, err := s.Policies.ForKind(ctx, sc.Kind); err == nil {
		v.Policy = p.Ref()
	}
	v, _, err := s.record(ctx, sc, v, assetscan.Findings{Findings: []assetscan.Finding{}})
	return v, err
}

// retryOr returns ErrRetry, or on the last attempt records an error
// verdict with the cause.
func (s *Service) retryOr(ctx context.Context, req Request, cause error) (assetscan.Verdict, assetscan.Findings, error) {
	if ctx.Err() != nil {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("scan: %w", ctx.Err())
	}
	if !req.Last {
		return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("%w: %w", ErrRetry, cause)
	}
	v, err := s.Fail(ctx, req.Scan, "retries exhausted: "+cause.Error())
	return v, assetscan.Findings{}, err
}

// record saves the verdict (once) and finalizes it.
func (s *Service) record(ctx context.Context, sc storage.Scan, v assetscan.Verdict, f assetscan.Findings) (assetscan.Verdict, assetscan.Findings, error) {
	// Completed is when the verdict was made, not when the scan began
	// (allow-list expiry was judged at the start, a bound of minutes).
	v.CompletedAt = s.now().UTC()
	if s.Records == nil {
		return v, f, nil
	}
	// Recording must happen even when the job's time ran out.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.Records.SaveVerdict(wctx, sc, v, f); err != nil {
		var rec *storage.RecoveredError
		switch {
		case errors.As(err, &rec):
			// An earlier attempt saved the verdict of record and died before
			// finishing: the record is complete now; finalize that verdict
			// (the tag and callbacks may never have gone out).
			v = rec.Verdict
		case errors.Is(err, storage.ErrAlreadyFinal):
			return v, f, err
		default:
			return assetscan.Verdict{}, assetscan.Findings{}, fmt.Errorf("%w: save verdict: %w", ErrRetry, err)
		}
	}
	if s.Finalizer != nil {
		if err := s.Finalizer.Finalize(wctx, sc, v); err != nil {
			s.logger().WarnContext(ctx, "finalize verdict", "scan_id", sc.ScanID, "error", err)
		}
	}
	return v, f, nil
}

// reuse loads the findings stored under key, when they are complete.
func (s *Service) reuse(ctx context.Context, key string) (assetscan.Findings, bool) {
	if s.Reuse == nil {
		return assetscan.Findings{}, false
	}
	id, err := s.Reuse.ByReuseKey(ctx, key)
	if err != nil || id == "" {
		return assetscan.Findings{}, false
	}
	f, err := s.Reuse.Findings(ctx, id)
	if err != nil || len(f.Checks) == 0 {
		return assetscan.Findings{}, false
	}
	for _, c := range f.Checks {
		if c.Status != assetscan.RunOK {
			return assetscan.Findings{}, false
		}
	}
	return f, true
}

func (s *Service) base(sc storage.Scan, name string) assetscan.Verdict {
	return assetscan.Verdict{
		ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind,
		Status: assetscan.StatusDone,
		Object: assetscan.Object{Bucket: sc.Bucket, Key: sc.Key, VersionID: sc.VersionID,
			Name: name, Size: sc.Size},
		SubmittedAt: sc.SubmittedAt,
		CompletedAt: s.now().UTC(),
		Attempts:    sc.Attempts,
	}
}

func (s *Service) workDir(scanID string) (string, error) {
	root := s.WorkRoot
	if root == "" {
		root = os.TempDir()
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return "", fmt.Errorf("work root: %w", err)
	}
	id := scanID
	if id == "" {
		id = "local"
	}
	dir, err := os.MkdirTemp(root, WorkDirPrefix+id+"-")
	if err != nil {
		return "", fmt.Errorf("work dir: %w", err)
	}
	return dir, nil
}

// WorkDirPrefix starts the name of every scan's work dir under WorkRoot;
// CleanWorkRoot removes what a killed worker left with it.
const WorkDirPrefix = "scan-"

// CleanWorkRoot removes the work dirs a previous, killed process left
// under root (only entries named WorkDirPrefix*; nothing else is touched).
// Call it at worker start, before taking jobs. It returns how many it
// removed.
func CleanWorkRoot(root string) (int, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("clean work root: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), WorkDirPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// checkRoom returns ErrNoRoom when the work disk lacks room for an
// object of size bytes and its expansion.
func (s *Service) checkRoom(size int64) error {
	f := s.RoomFactor
	if f < 0 || size <= 0 {
		return nil
	}
	if f == 0 {
		f = 3
	}
	root := s.WorkRoot
	if root == "" {
		root = os.TempDir()
	}
	free := s.FreeBytes
	if free == nil {
		free = freeBytes
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("work root: %w", err)
	}
	n, err := free(root)
	if err != nil {
		return fmt.Errorf("work root: %w", err)
	}
	if need := int64(float64(size) * f); n < need {
		return fmt.Errorf("%w: %d bytes free under %s, %d needed (%.1f × %d)", ErrNoRoom, n, root, need, f, size)
	}
	return nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// KeyInputs are everything that decides a scan's findings.
type KeyInputs struct {
	SHA256 string
	Kind   assetscan.Kind
	// Name matters: name-dependent facts and paths in findings.
	Name string
	// ExpectedSHA256 and Declared are the submission's declared inputs.
	ExpectedSHA256 string
	Declared       []assetscan.Finding
	// Shaping is the policy's text of the limits that shape what is read
	// (policies.Policy.Shaping).
	Shaping string
	// Identities of every check that applies.
	Identities []assetscan.Identity
}

// ReuseKey is the digest of in ("sha256:<hex>"), and whether findings
// may be reused under it at all: not when any identity is unknown.
func ReuseKey(in KeyInputs) (string, bool) {
	ids := make([]string, 0, len(in.Identities))
	reusable := true
	for _, id := range in.Identities {
		ids = append(ids, id.String())
		if id.Unknown {
			reusable = false
		}
	}
	slices.Sort(ids)
	declared, _ := json.Marshal(in.Declared)
	h := sha256.New()
	for _, part := range []string{"assetscan reuse v1", strings.ToLower(in.SHA256), string(in.Kind), in.Name,
		strings.ToLower(in.ExpectedSHA256), string(declared), in.Shaping, strings.Join(ids, "\n")} {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), reusable
}
