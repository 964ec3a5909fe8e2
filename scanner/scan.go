package scanner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
)

// Rules are the parts of a policy that shape what a scan reads: the size
// limit and the extraction limits. *policies.Policy implements it. (The
// name rule does not shape the scan: it is judged from the facts.)
type Rules interface {
	// MaxSize is the largest accepted asset in bytes.
	MaxSize() int64
	// Limits bounds archive extraction.
	Limits() archive.Limits
}

// Applier is implemented by a Check that applies to some asset kinds only
// (the OS account check: images). A check that does not apply is not run
// and not recorded.
type Applier interface {
	AppliesTo(kind assetscan.Kind) bool
}

// Coverer is implemented by a Check that performs several of the rule
// book's checks in one pass (trivy: vulnerabilities and secrets). The scan
// records one check run per covered name.
type Coverer interface {
	Covers() []string
}

// Preparer turns an image asset into a Target: it unpacks or converts the
// asset inside t.WorkDir and fills t.Asset (what trivy reads), t.Files,
// t.Sources, t.RootFS and t.DiskNames. Hostile or unreadable input is
// reported as findings; an error means the preparation itself failed.
// When it leaves t.Asset empty, nothing could be read and no check runs.
type Preparer interface {
	Prepare(ctx context.Context, asset string, t *Target, lim archive.Limits) ([]assetscan.Finding, error)
}

// Rule ids the scanner itself reports (check assetscan.CheckFormat). The
// name, size and claimed-format rules are judged from the facts by the
// policy (policies.RuleName, ...).
const (
	// RuleUnsupportedFormat: the content is not one of the accepted
	// package containers; nothing in it was read.
	RuleUnsupportedFormat = "format.unsupported"
)

// Scanner runs the checks over assets. It is safe for concurrent use.
type Scanner struct {
	Checks []Check
	// Preparers handle the image kinds; a kind without one is refused.
	Preparers map[assetscan.Kind]Preparer
	// OnCheck, optional, is told how long each check took.
	OnCheck func(check string, d time.Duration)
	// Progress, optional, is told what the scan is doing, for a person
	// watching a long scan (the CLI on a terminal).
	Progress func(msg string)
	Log      *slog.Logger
}

// Request is one asset to scan.
type Request struct {
	Kind assetscan.Kind
	// Path is the asset on local disk.
	Path string
	// Name is the asset's file name the name rule applies to (the object
	// key's base name); defaults to the base of Path.
	Name string
	// SHA256 is the hex digest of the asset when already known (computed
	// while downloading); computed here otherwise.
	SHA256 string
	// Findings established before the scan (declared password
	// complexity, judged at submission) are added to the report.
	Findings []assetscan.Finding
	// WorkDir is the scan's private scratch dir; it must exist and is left
	// for the caller to remove.
	WorkDir string
	Rules   Rules
	// Disposable says Path is the scan's own copy (a download): the
	// scanner frees its bytes as they are extracted (archive.ReleaseSource)
	// and removes it once extracted when nothing reads it any more. Never
	// set it for a caller's own file.
	Disposable bool
	// Identities, optional, are the check identities taken for this scan
	// (Scanner.Identities); taken here when nil.
	Identities []assetscan.Identity
}

// Report is the result of Scan.
type Report struct {
	Findings assetscan.Findings
	SHA256   string
	Size     int64
	// Transient is true when a check failed in a way a retry may fix.
	Transient bool
}

// Scan runs the format rules, extracts the asset and runs every check. It
// returns an error only when the scan itself could not proceed (ctx
// cancelled, work dir unusable); a check that could not run is recorded as
// a check run with status error, which the policy turns into an Error
// verdict.
func (s *Scanner) Scan(ctx context.Context, req Request) (*Report, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if req.Name == "" {
		req.Name = filepath.Base(req.Path)
	}
	fi, err := os.Stat(req.Path)
	if err != nil {
		return nil, fmt.Errorf("stat asset: %w", err)
	}
	rep := &Report{Size: fi.Size(), SHA256: strings.ToLower(req.SHA256)}
	f := &rep.Findings
	f.Engines = map[string]string{}
	f.Findings = append(f.Findings, req.Findings...)
	if rep.SHA256 == "" {
		s.progress("hashing %d bytes", fi.Size())
		if rep.SHA256, err = FileSHA256(ctx, req.Path); err != nil {
			return nil, err
		}
	}

	// Format: facts about the asset as a whole (name, size, the container
	// format its content shows). The name, size and claimed-format rules
	// depend on the policy and are judged from these facts when the
	// verdict is made (policies.Evaluate), never here.
	facts := &assetscan.Facts{Name: req.Name, Size: fi.Size()}
	f.Facts = facts
	var format archive.Format
	if req.Kind == assetscan.KindPackage {
		detected, err := archive.Detect(req.Path)
		if err != nil {
			return nil, fmt.Errorf("detect format: %w", err)
		}
		facts.Format = string(detected)
		format = detected
	}
	formatRun := assetscan.CheckRun{Name: assetscan.CheckFormat, Status: assetscan.RunOK,
		Detail: fmt.Sprintf("%d bytes, sha256:%s", fi.Size(), rep.SHA256), Identity: &assetscan.Identity{Check: assetscan.CheckFormat, Version: Version}}
	if req.Kind == assetscan.KindPackage && format == archive.FormatUnknown {
		// Nothing further can be read from content that is not one of the
		// accepted containers.
		f.Findings = append(f.Findings, assetscan.Finding{Check: assetscan.CheckFormat, Rule: RuleUnsupportedFormat, Path: req.Name,
			Message: "content is not a zip, tar or tar.gz archive"})
		formatRun.Coverage = &assetscan.Coverage{}
		formatRun.Coverage.Add(assetscan.NotExamined{Path: req.Name, Bytes: fi.Size(), Reason: "not an accepted container format"})
		f.Checks = append(f.Checks, formatRun)
		return rep, nil
	}
	if max := req.Rules.MaxSize(); max > 0 && fi.Size() > max {
		// Larger than the policy accepts: it fails on its facts (the size
		// rule); reading it would only cost time.
		f.Checks = append(f.Checks, formatRun)
		return rep, nil
	}
	f.Checks = append(f.Checks, formatRun)

	t := &Target{Kind: req.Kind, Asset: req.Path, WorkDir: req.WorkDir}
	if req.Kind == assetscan.KindPackage {
		// Extract one level down (root/pkg): trivy skips top-level dev/,
		// proc/ and sys/ of the dir it scans, and the package may have
		// its own.
		t.Root = filepath.Join(req.WorkDir, "root", "pkg")
		if err := os.MkdirAll(t.Root, 0o750); err != nil {
			return nil, fmt.Errorf("create extraction dir: %w", err)
		}
		start := time.Now()
		s.progress("extracting %s", req.Name)
		var opts []archive.Option
		if req.Disposable {
			// Our own download: free its bytes as they are extracted, so
			// the work disk holds about the expanded size, not the
			// package plus its expansion.
			opts = append(opts, archive.ReleaseSource())
		}
		res, err := archive.Extract(ctx, req.Path, format, t.Root, req.Rules.Limits(), opts...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("extract: %w", ctx.Err())
			}
			f.Checks = append(f.Checks, assetscan.CheckRun{Name: assetscan.CheckArchive, Status: assetscan.RunError,
				Reason: "extraction failed: " + scrub(err.Error(), req.WorkDir)})
			return rep, nil
		}
		f.Findings = append(f.Findings, res.Findings...)
		for _, af := range res.Files {
			t.Files = append(t.Files, File{Path: af.Path, DiskPath: af.DiskPath, Size: af.Size, Container: af.Container})
		}
		if archive.SkippedContent(res.Findings) {
			// Members we could not unpack (unsupported method, encrypted,
			// corrupt): let engines that read archives themselves see the
			// package's own bytes too.
			t.Files = append(t.Files, File{Path: req.Name, DiskPath: req.Path, Size: fi.Size()})
		} else if req.Disposable {
			// Every byte is in the extracted files now and no check reads
			// the package itself: free what extraction did not release
			// already (a zip, the end of a tar).
			if err := os.Remove(req.Path); err != nil {
				log.WarnContext(ctx, "remove the extracted package", "error", err)
			}
		}
		f.Checks = append(f.Checks, assetscan.CheckRun{Name: assetscan.CheckArchive, Status: assetscan.RunOK,
			Detail:   fmt.Sprintf("%d entries, %d files, %d bytes expanded", res.Entries, len(res.Files), res.ExpandedBytes),
			Identity: &assetscan.Identity{Check: assetscan.CheckArchive, Version: archive.Version},
			Coverage: extractionCoverage(res)})
		s.progress("extracted %d files, %d bytes", len(res.Files), res.ExpandedBytes)
		log.InfoContext(ctx, "extracted", "files", len(res.Files), "bytes", res.ExpandedBytes,
			"findings", len(res.Findings), "released_bytes", res.ReleasedBytes, "duration", time.Since(start))
	}

	if req.Kind != assetscan.KindPackage {
		p := s.Preparers[req.Kind]
		if p == nil {
			f.Checks = append(f.Checks, assetscan.CheckRun{Name: assetscan.CheckArchive, Status: assetscan.RunError,
				Reason: fmt.Sprintf("this worker does not handle %s assets", req.Kind)})
			return rep, nil
		}
		t.Asset = ""
		dir := filepath.Join(req.WorkDir, "image")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create image dir: %w", err)
		}
		t.WorkDir = dir
		start := time.Now()
		defer func() {
			for _, c := range t.Cleanup {
				c()
			}
		}()
		s.progress("unpacking %s image", req.Kind)
		pf, err := p.Prepare(ctx, req.Path, t, req.Rules.Limits())
		t.WorkDir = req.WorkDir
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("prepare image: %w", ctx.Err())
			}
			f.Checks = append(f.Checks, assetscan.CheckRun{Name: assetscan.CheckArchive, Status: assetscan.RunError,
				Reason: "image could not be prepared: " + scrub(err.Error(), req.WorkDir)})
			return rep, nil
		}
		f.Findings = append(f.Findings, pf...)
		f.Checks = append(f.Checks, assetscan.CheckRun{Name: assetscan.CheckArchive, Status: assetscan.RunOK,
			Detail: fmt.Sprintf("%d files, %d streamed sources", len(t.Files), len(t.Sources))})
		log.InfoContext(ctx, "image prepared", "files", len(t.Files), "findings", len(pf), "duration", time.Since(start))
		if t.Asset == "" {
			// Nothing readable: the findings say why; no check can run.
			return rep, nil
		}
	}

	ids := req.Identities
	if ids == nil {
		if ids, err = s.Identities(ctx, req.Kind); err != nil {
			return nil, fmt.Errorf("check identities: %w", err)
		}
	}
	t.Identities = make(map[string]assetscan.Identity, len(ids))
	for _, id := range ids {
		t.Identities[id.Check] = id
	}
	s.runChecks(ctx, t, rep, log)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("scan: %w", ctx.Err())
	}
	return rep, nil
}

// runChecks runs the checks concurrently and records their runs in check
// order, so the report does not depend on timing.
func (s *Scanner) runChecks(ctx context.Context, t *Target, rep *Report, log *slog.Logger) {
	type outcome struct {
		res Result
		err error
		dur time.Duration
	}
	var checks []Check
	for _, c := range s.Checks {
		if a, ok := c.(Applier); ok && !a.AppliesTo(t.Kind) {
			continue
		}
		checks = append(checks, c)
	}
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.Name()
	}
	s.progress("running checks: %s", strings.Join(names, ", "))
	outs := make([]outcome, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			start := time.Now()
			res, err := c.Run(ctx, t)
			outs[i] = outcome{res: res, err: err, dur: time.Since(start)}
			if err != nil {
				s.progress("check %s did not complete (%s)", c.Name(), time.Since(start).Round(time.Millisecond))
			} else {
				s.progress("check %s done in %s: %d findings", c.Name(), time.Since(start).Round(time.Millisecond), len(res.Findings))
			}
		})
	}
	wg.Wait()
	f := &rep.Findings
	for i, c := range checks {
		o := outs[i]
		names := []string{c.Name()}
		if cv, ok := c.(Coverer); ok {
			names = cv.Covers()
		}
		if s.OnCheck != nil {
			s.OnCheck(c.Name(), o.dur)
		}
		run := assetscan.CheckRun{Status: assetscan.RunOK, Detail: o.res.Detail, Coverage: o.res.Coverage}

		if o.err != nil {
			run.Status = assetscan.RunError
			run.Reason = scrub(o.err.Error(), t.WorkDir)
			if errors.Is(o.err, ErrTransient) {
				rep.Transient = true
			}
			log.WarnContext(ctx, "check did not complete", "check", c.Name(), "error", o.err, "duration", o.dur)
		} else {
			f.Findings = append(f.Findings, o.res.Findings...)
			f.Components = append(f.Components, o.res.Components...)
			for k, v := range o.res.Engines {
				f.Engines[k] = v
			}
			if o.res.DB != nil {
				f.DB = o.res.DB
			}
			if o.res.OS != nil {
				f.OS = o.res.OS
			}
			log.InfoContext(ctx, "check done", "check", c.Name(), "findings", len(o.res.Findings), "duration", o.dur)
		}
		for _, n := range names {
			r := run
			r.Name = n
			if id, ok := t.Identities[n]; ok {
				r.Identity = &id
			}
			f.Checks = append(f.Checks, r)
		}
	}
}

func (s *Scanner) progress(format string, a ...any) {
	if s.Progress != nil {
		s.Progress(fmt.Sprintf(format, a...))
	}
}

// extractionCoverage is the archive check's coverage: the files and bytes
// written for the other checks, and what extraction could not examine
// (encrypted or unsupported members, corrupt or bomb-stopped archives,
// bytes of the package not accounted for).
func extractionCoverage(res *archive.Result) *assetscan.Coverage {
	c := &assetscan.Coverage{Files: int64(len(res.Files)), Bytes: res.ExpandedBytes}
	for _, u := range res.Coverage.Unexamined {
		c.Add(assetscan.NotExamined{Path: archive.DisplayPath(u.Path), Reason: u.Rule + ": " + u.Reason})
	}
	if extra := res.Coverage.UnexaminedCount - len(res.Coverage.Unexamined); extra > 0 {
		c.NotExaminedCount += extra
	}
	if gap := res.Coverage.InputBytes - res.Coverage.AccountedBytes; gap > 0 && c.NotExaminedCount == 0 {
		c.Add(assetscan.NotExamined{Path: "", Bytes: gap, Reason: fmt.Sprintf("%d bytes of the package were not accounted for by its entries", gap)})
	}
	return c
}

// scrub removes the worker's work dir from a message shown to sellers.
func scrub(msg, workDir string) string {
	if workDir == "" {
		return msg
	}
	return strings.ReplaceAll(msg, workDir, "<workdir>")
}

// FileSHA256 returns the hex SHA-256 of the file at path.
func FileSHA256(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash asset: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ContextReader(ctx, f)); err != nil {
		return "", fmt.Errorf("hash asset: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ContextReader returns a reader of r whose reads fail with ctx's error
// once ctx is done: long copies of hostile input (hashing, extracting,
// streaming a disk's files) stop when the scan is cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Identities returns the identity of every check that applies to kind, in
// check order, keyed by the names the check covers (trivy's identity is
// recorded for both "vulnerability" and "secret"). The format and archive
// identities are the scanner's own. A check that cannot tell its identity
// is recorded with Unknown set; an Identity error is returned only when
// ctx ended.
func (s *Scanner) Identities(ctx context.Context, kind assetscan.Kind) ([]assetscan.Identity, error) {
	ids := []assetscan.Identity{{Check: assetscan.CheckFormat, Version: Version}}
	if kind == assetscan.KindPackage {
		ids = append(ids, assetscan.Identity{Check: assetscan.CheckArchive, Version: archive.Version})
	} else if p, ok := s.Preparers[kind].(Identifier); ok {
		id, err := p.Identity(ctx)
		if err != nil {
			id = assetscan.Identity{Check: assetscan.CheckArchive, Unknown: true}
		}
		id.Check = assetscan.CheckArchive
		ids = append(ids, id)
	} else {
		ids = append(ids, assetscan.Identity{Check: assetscan.CheckArchive, Version: "preparer " + string(kind), Unknown: true})
	}
	for _, c := range s.Checks {
		if a, ok := c.(Applier); ok && !a.AppliesTo(kind) {
			continue
		}
		id := assetscan.Identity{Check: c.Name(), Unknown: true}
		if idr, ok := c.(Identifier); ok {
			got, err := idr.Identity(ctx)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err == nil {
				id = got
			} else {
				id.Data = "identity unavailable"
			}
		}
		names := []string{c.Name()}
		if cv, ok := c.(Coverer); ok {
			names = cv.Covers()
		}
		for _, n := range names {
			i := id
			i.Check = n
			ids = append(ids, i)
		}
		if len(names) > 1 || names[0] != c.Name() {
			// Also under the check's own name, for the runner's lookup.
			i := id
			i.Check = c.Name()
			ids = append(ids, i)
		}
	}
	return ids, nil
}
