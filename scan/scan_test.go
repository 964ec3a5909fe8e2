package scan_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/scan"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/storage"
)

// fakeCheck is a check whose identity and findings the test sets.
type fakeCheck struct {
	name string
	mu   sync.Mutex
	id   assetscan.Identity
	// detect, when set, is a marker whose presence in any file gives a
	// finding (a signature the engine has).
	detect string
	runs   atomic.Int32
}

func (c *fakeCheck) Name() string { return c.name }

func (c *fakeCheck) Identity(context.Context) (assetscan.Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id, nil
}

func (c *fakeCheck) setIdentity(data string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id.Data = data
}

func (c *fakeCheck) setDetect(marker string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detect = marker
}

func (c *fakeCheck) Run(_ context.Context, t *scanner.Target) (scanner.Result, error) {
	c.runs.Add(1)
	c.mu.Lock()
	marker := c.detect
	c.mu.Unlock()
	var res scanner.Result
	cov := &assetscan.Coverage{}
	for _, f := range t.Files {
		b, err := os.ReadFile(f.DiskPath)
		if err != nil {
			return res, err
		}
		cov.Files++
		cov.Bytes += int64(len(b))
		if marker != "" && bytes.Contains(b, []byte(marker)) {
			res.Findings = append(res.Findings, assetscan.Finding{Check: c.name, Rule: "malware.detected", Path: f.Path,
				Malware: &assetscan.Malware{Signature: "Test.Marker", Engine: "fake"}})
		}
	}
	res.Coverage = cov
	return res, nil
}

// memRecords is an in-memory verdict store with a reuse index.
type memRecords struct {
	mu       sync.Mutex
	verdicts map[string]assetscan.Verdict
	findings map[string]assetscan.Findings
	reuse    map[string]string
}

func (m *memRecords) SaveVerdict(_ context.Context, sc storage.Scan, v assetscan.Verdict, f assetscan.Findings) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.verdicts[sc.ScanID]; ok {
		return storage.ErrAlreadyFinal
	}
	m.verdicts[sc.ScanID] = v
	m.findings[sc.ScanID] = f
	if v.ReuseKey != "" && !v.Reused && v.Verdict != assetscan.Error {
		m.reuse[v.ReuseKey] = sc.ScanID
	}
	return nil
}

func (m *memRecords) ByReuseKey(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.reuse[key]
	if !ok {
		return "", storage.ErrScanNotFound
	}
	return id, nil
}

func (m *memRecords) Findings(_ context.Context, id string) (assetscan.Findings, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.findings[id]
	if !ok {
		return assetscan.Findings{}, storage.ErrScanNotFound
	}
	return f, nil
}

// memObjects serves objects by bucket/key, with ETags, and can swap an
// object's bytes (an overwrite in an unversioned bucket).
type memObjects struct {
	mu   sync.Mutex
	objs map[string][]byte
	etag map[string]string
}

func (o *memObjects) put(key string, data []byte) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objs[key] = data
	o.etag[key] = scanTestDigest(data)[:16]
	return o.etag[key]
}

func (o *memObjects) Download(_ context.Context, pin storage.Pin, dst string, maxBytes int64) (string, int64, error) {
	o.mu.Lock()
	data, ok := o.objs[pin.Key]
	etag := o.etag[pin.Key]
	o.mu.Unlock()
	switch {
	case !ok:
		return "", 0, storage.ErrNotFound
	case pin.ETag != "" && pin.ETag != etag:
		return "", 0, storage.ErrChanged
	case maxBytes > 0 && int64(len(data)) > maxBytes:
		return "", maxBytes + 1, storage.ErrTooLarge
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		return "", 0, err
	}
	return scanTestDigest(data), int64(len(data)), nil
}

// policySource serves one policy per kind that the test can replace.
type policySource struct {
	mu sync.Mutex
	p  *policies.Policy
}

func (s *policySource) ForKind(context.Context, assetscan.Kind) (*policies.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p, nil
}

func (s *policySource) set(p *policies.Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p = p
}

// finalized records what the finalizer was told.
type finalized struct {
	mu   sync.Mutex
	seen []assetscan.Verdict
}

func (f *finalized) Finalize(_ context.Context, _ storage.Scan, v assetscan.Verdict) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, v)
	return nil
}

// bundle is one test's scan service with its fakes.
type bundle struct {
	svc      *scan.Service
	malware  *fakeCheck
	vuln     *fakeCheck
	records  *memRecords
	objects  *memObjects
	policies *policySource
	final    *finalized
	db       *atomic.Pointer[assetscan.DBRef]
	n        int
}

func setup(t *testing.T) *bundle {
	t.Helper()
	pol, err := policies.Default(assetscan.KindPackage)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{
		malware:  &fakeCheck{name: assetscan.CheckMalware, id: assetscan.Identity{Check: assetscan.CheckMalware, Version: "1", Engine: "FakeAV 1.0", Data: "signatures sha256:aaa"}},
		records:  &memRecords{verdicts: map[string]assetscan.Verdict{}, findings: map[string]assetscan.Findings{}, reuse: map[string]string{}},
		objects:  &memObjects{objs: map[string][]byte{}, etag: map[string]string{}},
		policies: &policySource{p: pol},
		final:    &finalized{},
		db:       &atomic.Pointer[assetscan.DBRef]{},
	}
	b.vuln = &fakeCheck{name: "trivy", id: assetscan.Identity{Check: "trivy", Version: "1", Engine: "trivy v0", Data: "db sha256:bbb"}}
	b.db.Store(&assetscan.DBRef{SchemaVersion: 2, UpdatedAt: time.Now().Add(-time.Hour), Digest: "sha256:bbb"})
	b.svc = &scan.Service{
		Scanner:  &scanner.Scanner{Checks: []scanner.Check{b.malware, coverAll{b.vuln}}},
		Policies: b.policies, Fetcher: b.objects, Records: b.records, Reuse: b.records,
		DB: func() assetscan.DBRef { return *b.db.Load() }, Finalizer: b.final, WorkRoot: t.TempDir(),
	}
	return b
}

// coverAll makes a fake check stand for the vulnerability and secret
// checks, as trivy does.
type coverAll struct{ *fakeCheck }

func (coverAll) Covers() []string {
	return []string{assetscan.CheckVulnerability, assetscan.CheckSecret}
}

// submit uploads data under key and runs a scan of it for seller.
func (b *bundle) submit(t *testing.T, seller, key string, data []byte, declared ...assetscan.Finding) assetscan.Verdict {
	t.Helper()
	etag := b.objects.put(key, data)
	return b.run(t, b.scanRecord(seller, key, etag, declared...))
}

func (b *bundle) scanRecord(seller, key, etag string, declared ...assetscan.Finding) storage.Scan {
	b.n++
	return storage.Scan{ScanID: "scn_test_" + seller + "_" + strings.Repeat("x", b.n), AssetID: "asset-" + key, SellerID: seller,
		Kind: assetscan.KindPackage, Bucket: "uploads", Key: key, ETag: etag, Declared: declared,
		Status: assetscan.StatusQueued, SubmittedAt: time.Now().UTC()}
}

func (b *bundle) run(t *testing.T, sc storage.Scan) assetscan.Verdict {
	t.Helper()
	v, _, err := b.svc.Run(context.Background(), scan.Request{Scan: sc})
	if err != nil {
		t.Fatalf("Run(%s): %v", sc.Key, err)
	}
	return v
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hasRule(v assetscan.Verdict, rule string) bool {
	for _, f := range v.Findings {
		if f.Rule == rule && f.Action == assetscan.ActionFail {
			return true
		}
	}
	return false
}

// Defect 1: a signature added to the engine changes its identity; the
// same bytes are scanned again, not judged from findings made without it.
func TestReuseCrossesNoEngineChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"bin/tool.sh": "echo MARKER-7731"})
	if v := b.submit(t, "seller-a", "a.zip", pkg); v.Verdict != assetscan.Pass {
		t.Fatalf("before the signature: %s %s", v.Verdict, v.Reason)
	}
	// The signature is added and clamd reloaded: its identity changes.
	b.malware.setDetect("MARKER-7731")
	b.malware.setIdentity("signatures sha256:ccc")
	v := b.submit(t, "seller-a", "a.zip", pkg)
	if v.Reused || v.Verdict != assetscan.Fail || !hasRule(v, "malware.detected") {
		t.Fatalf("after the signature: verdict %s reused %v, want a rescan that fails", v.Verdict, v.Reused)
	}
	// Unchanged identity, same bytes: reused, and says so.
	v = b.submit(t, "seller-a", "a.zip", pkg)
	if !v.Reused || v.Verdict != assetscan.Fail {
		t.Fatalf("same identity: reused %v verdict %s", v.Reused, v.Verdict)
	}
	if got := b.malware.runs.Load(); got != 2 {
		t.Errorf("malware check ran %d times, want 2", got)
	}
}

// An engine whose state cannot be known never lets findings be reused.
func TestReuseNeverUnderUnknownIdentity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.malware.mu.Lock()
	b.malware.id.Unknown = true
	b.malware.mu.Unlock()
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	for i := range 2 {
		if v := b.submit(t, "seller-a", "a.zip", pkg); v.Reused {
			t.Fatalf("scan %d reused findings under an unknown identity", i)
		}
	}
}

// Defect 2: declared inputs are part of what decided the result.
func TestReuseKeyedOnDeclaredInputs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	if v := b.submit(t, "seller-a", "a.zip", pkg); v.Verdict != assetscan.Pass {
		t.Fatalf("first: %s", v.Verdict)
	}
	weak := assetscan.Finding{Check: assetscan.CheckAccount, Rule: "account.declared_password_weak", Path: "root",
		Message: "the declared password for account root breaks the complexity rule"}
	b.policies.mu.Lock()
	p2 := mustPolicy(t, strings.Replace(string(b.policies.p.Raw()), "rules:\n", "rules:\n  account.declared_password_weak: fail\n", 1))
	b.policies.mu.Unlock()
	b.policies.set(p2)
	v := b.submit(t, "seller-a", "a.zip", pkg, weak)
	if v.Reused || v.Verdict != assetscan.Fail || !hasRule(v, "account.declared_password_weak") {
		t.Fatalf("with a weak declared password: verdict %s reused %v rules %v", v.Verdict, v.Reused, v.FailedRules)
	}
}

// Defect 3: the name rule is judged from facts under the policy in force
// (also for reused findings), and limits that shaped the extraction are
// part of the reuse key.
func TestPolicyShapedFindingsAreJudgedNotReused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	if v := b.submit(t, "seller-a", "My-App.zip", pkg); v.Verdict != assetscan.Pass {
		t.Fatalf("v1: %s %v", v.Verdict, v.FailedRules)
	}
	raw := string(b.policies.p.Raw())
	tight := mustPolicy(t, strings.Replace(strings.Replace(raw, "version: 1", "version: 4", 1),
		`name_pattern: '^[A-Za-z0-9_()-]+$'`, `name_pattern: '^[a-z0-9]+$'`, 1))
	b.policies.set(tight)
	v := b.submit(t, "seller-a", "My-App.zip", pkg)
	if !v.Reused {
		t.Errorf("the name rule does not shape what is read: findings should be reused")
	}
	if v.Verdict != assetscan.Fail || !hasRule(v, policies.RuleName) || v.Policy.Version != 4 {
		t.Fatalf("tightened name rule: verdict %s rules %v policy v%d", v.Verdict, v.FailedRules, v.Policy.Version)
	}
	// Re-evaluating the stored findings under the tight policy fails too.
	f := b.records.findings[v.ScanID]
	if rv := policies.Verdict(tight, assetscan.Verdict{}, f); rv.Verdict != assetscan.Fail {
		t.Errorf("re-evaluation of stored findings: %s", rv.Verdict)
	}
	// A tighter archive limit shapes the extraction: no reuse.
	lim := mustPolicy(t, strings.Replace(raw, "max_depth: 12", "max_depth: 3", 1))
	b.policies.set(lim)
	if v := b.submit(t, "seller-a", "My-App.zip", pkg); v.Reused {
		t.Errorf("findings reused across archive limits")
	}
}

// Defect 4: bytes written under the key after submission are never
// scanned in the submission's name.
func TestObjectSwappedAfterSubmission(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clean := zipOf(t, map[string]string{"a.txt": "hello"})
	etag := b.objects.put("app.tar", clean)
	sc := b.scanRecord("seller-a", "app.tar", etag)
	b.objects.put("app.tar", zipOf(t, map[string]string{"evil.txt": "MARKER"}))
	v := b.run(t, sc)
	if v.Verdict != assetscan.Error || !strings.Contains(v.Reason, "changed since submission") {
		t.Fatalf("swapped object: verdict %s reason %q, want error naming the change", v.Verdict, v.Reason)
	}
	if len(b.final.seen) != 1 || b.final.seen[0].Verdict != assetscan.Error {
		t.Errorf("finalizer saw %d verdicts, want the error verdict", len(b.final.seen))
	}
}

// Defect 5: an error verdict is never reused.
func TestErrorsAreNotReused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	pol := mustPolicy(t, string(b.policies.p.Raw())+"\nvulndb:\n  max_age: 24h\n")
	b.policies.set(pol)
	b.db.Store(&assetscan.DBRef{SchemaVersion: 2, UpdatedAt: time.Now().Add(-72 * time.Hour), Digest: "sha256:bbb"})
	if v := b.submit(t, "seller-a", "a.zip", pkg); v.Verdict != assetscan.Error || !strings.Contains(v.Reason, "vulndb.stale") {
		t.Fatalf("stale DB: %s %q", v.Verdict, v.Reason)
	}
	b.db.Store(&assetscan.DBRef{SchemaVersion: 2, UpdatedAt: time.Now(), Digest: "sha256:bbb"})
	if v := b.submit(t, "seller-a", "a.zip", pkg); v.Verdict != assetscan.Pass || v.Reused {
		t.Fatalf("after the DB update: %s reused %v", v.Verdict, v.Reused)
	}
}

// Defect 7: a reused verdict names no other seller's scan, id or time.
func TestReuseNamesNoOtherSeller(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	first := b.submit(t, "seller-a", "a.zip", pkg)
	second := b.submit(t, "seller-b", "a.zip", pkg)
	if !second.Reused {
		t.Fatal("not reused")
	}
	doc, _ := json.Marshal(second)
	for _, leak := range []string{first.ScanID, "seller-a", first.CompletedAt.Format(time.RFC3339Nano)} {
		if bytes.Contains(doc, []byte(leak)) {
			t.Errorf("seller B's verdict names %q of seller A's scan: %s", leak, doc)
		}
	}
}

// Defect 8 (part): a second delivery of a finished job writes nothing.
func TestDuplicateDeliveryDoesNotOverwrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	etag := b.objects.put("a.zip", pkg)
	sc := b.scanRecord("seller-a", "a.zip", etag)
	b.run(t, sc)
	_, _, err := b.svc.Run(context.Background(), scan.Request{Scan: sc})
	if !errors.Is(err, scan.ErrAlreadyFinal) {
		t.Fatalf("second delivery: %v, want ErrAlreadyFinal", err)
	}
	if len(b.final.seen) != 1 {
		t.Errorf("finalized %d times, want once", len(b.final.seen))
	}
}

// A transient failure is retried, and recorded as error on the last
// attempt (with a finalization), never as pass.
func TestTransientThenLastAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc.Scanner.Checks = []scanner.Check{downCheck{}, coverAll{b.vuln}}
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	etag := b.objects.put("a.zip", pkg)
	sc := b.scanRecord("seller-a", "a.zip", etag)
	if _, _, err := b.svc.Run(context.Background(), scan.Request{Scan: sc}); !errors.Is(err, scan.ErrRetry) {
		t.Fatalf("first attempt: %v, want ErrRetry", err)
	}
	v, _, err := b.svc.Run(context.Background(), scan.Request{Scan: sc, Last: true})
	if err != nil || v.Verdict != assetscan.Error {
		t.Fatalf("last attempt: %s %v", v.Verdict, err)
	}
	if len(b.final.seen) != 1 {
		t.Errorf("finalized %d times", len(b.final.seen))
	}
}

type downCheck struct{}

func (downCheck) Name() string { return assetscan.CheckMalware }
func (downCheck) Run(context.Context, *scanner.Target) (scanner.Result, error) {
	return scanner.Result{}, errors.Join(scanner.ErrTransient, errors.New("engine unreachable"))
}

// Every verdict names each check's identity and its reuse key; the CLI
// path (no storage) gives the same verdict as the worker path.
func TestVerdictNamesIdentitiesAndCLIAgrees(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pkg := zipOf(t, map[string]string{"a.txt": "hello"})
	v := b.submit(t, "seller-a", "a.zip", pkg)
	for _, c := range v.Checks {
		if c.Identity == nil || c.Identity.Version == "" {
			t.Errorf("check %s has no identity", c.Name)
		}
	}
	if !strings.HasPrefix(v.ReuseKey, "sha256:") {
		t.Errorf("reuse key %q", v.ReuseKey)
	}
	local := filepath.Join(t.TempDir(), "a.zip")
	if err := os.WriteFile(local, pkg, 0o600); err != nil {
		t.Fatal(err)
	}
	cli := &scan.Service{Scanner: b.svc.Scanner, Policies: b.policies, DB: b.svc.DB, WorkRoot: t.TempDir()}
	cv, _, err := cli.Run(context.Background(), scan.Request{Scan: storage.Scan{Kind: assetscan.KindPackage}, LocalPath: local, Last: true})
	if err != nil {
		t.Fatal(err)
	}
	if cv.Verdict != v.Verdict || cv.ReuseKey != v.ReuseKey || cv.SHA256 != v.SHA256 || len(cv.Findings) != len(v.Findings) {
		t.Errorf("CLI verdict %s key %s differs from the worker's %s key %s", cv.Verdict, cv.ReuseKey, v.Verdict, v.ReuseKey)
	}
}

func TestCleanWorkRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"scan-scn_1-123", "scan-scn_2-456", "keep-me"} {
		if err := os.MkdirAll(filepath.Join(root, d, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	n, err := scan.CleanWorkRoot(root)
	if err != nil || n != 2 {
		t.Fatalf("CleanWorkRoot = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(root, "keep-me")); err != nil {
		t.Errorf("removed what is not a scan work dir: %v", err)
	}
}

func mustPolicy(t *testing.T, doc string) *policies.Policy {
	t.Helper()
	p, err := policies.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func scanTestDigest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Issue 12 item 6: a worker whose work disk cannot hold the asset hands
// the job back (ErrNoRoom) instead of failing it or filling the disk.
func TestNoRoomHandsTheJobBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc.FreeBytes = func(string) (int64, error) { return 10, nil }
	pkg := zipOf(t, map[string]string{"a.txt": strings.Repeat("x", 2000)})
	etag := b.objects.put("big.zip", pkg)
	sc := b.scanRecord("seller-a", "big.zip", etag)
	sc.Size = int64(len(pkg))
	_, _, err := b.svc.Run(context.Background(), scan.Request{Scan: sc, Last: true})
	if !errors.Is(err, scan.ErrNoRoom) {
		t.Fatalf("Run = %v, want ErrNoRoom", err)
	}
	if len(b.final.seen) != 0 {
		t.Error("a verdict was recorded for a scan handed back")
	}
	b.svc.FreeBytes = func(string) (int64, error) { return 1 << 30, nil }
	if v := b.run(t, sc); v.Verdict != assetscan.Pass {
		t.Errorf("with room: %s %s", v.Verdict, v.Reason)
	}
}
