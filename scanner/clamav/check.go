package clamav

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// Engine names recorded in Result.Engines.
const (
	// EngineName maps to clamd's VERSION reply ("ClamAV 1.4.6" or
	// "ClamAV 1.4.6/27500/Mon Nov 30 09:30:24 2026").
	EngineName = "clamav"
	// SignaturesEngineName maps to the digest of the signature files clamd
	// loads (DigestDir of CheckConfig.SignatureDir), or SignaturesUnknown.
	SignaturesEngineName = "clamav-signatures"
)

// Transfer modes (CheckConfig.Mode): how file contents reach clamd.
const (
	// ModeAuto: ModeFDPass on a unix socket, ModeInstream over TCP.
	ModeAuto = "auto"
	// ModeFDPass passes each file's descriptor over the unix socket
	// (FILDES, SCM_RIGHTS), pipelined in one IDSESSION connection: clamd
	// reads the file itself, no byte goes through the socket. Needs clamd
	// on the same host. Files larger than MaxStreamBytes and streamed
	// sources (Target.Sources) still go through INSTREAM.
	ModeFDPass = "fdpass"
	// ModeInstream copies every byte through the socket (INSTREAM), one
	// connection per stream. Works with a remote clamd.
	ModeInstream = "instream"
)

// Rules of the malware check.
const (
	// RuleDetected: the engine detected malware (or a test signature).
	RuleDetected = "malware.detected"
	// RuleUnscannable: the engine could not scan the content completely:
	// encrypted (Heuristics.Encrypted.*) or over its limits
	// (Heuristics.Limits.Exceeded.*).
	RuleUnscannable = "malware.unscannable"
)

// Defaults for CheckConfig.
const (
	// DefaultConcurrency is the INSTREAM default (each stream holds a clamd
	// thread and a temporary copy of up to MaxStreamBytes on clamd's side).
	// In ModeFDPass the default is twice clamd's MaxThreads (from STATS).
	DefaultConcurrency = 2
	// DefaultFDPassConcurrency is used when clamd's STATS cannot be read
	// (twice clamd's default MaxThreads).
	DefaultFDPassConcurrency = 20
	// DefaultMaxStreamBytes equals StreamMaxLength 2000M in the shipped
	// clamd.conf (clamd accepts exactly StreamMaxLength bytes).
	DefaultMaxStreamBytes int64 = 2000 << 20
	DefaultWindowOverlap  int64 = 1 << 20
)

// CheckConfig configures the malware check. Zero values mean the defaults.
type CheckConfig struct {
	// Mode is how files reach clamd: ModeAuto (default, also ""),
	// ModeFDPass or ModeInstream. ModeFDPass needs a unix socket address.
	Mode string
	// Concurrency is how many requests are in flight to clamd at once
	// during a scan. 0: in ModeFDPass twice clamd's MaxThreads (read with
	// STATS at each scan, DefaultFDPassConcurrency if unreadable): with
	// exactly MaxThreads in flight a clamd thread idles for every reply's
	// round trip, with twice as many each has the next file queued (clamd
	// queues them, its MaxQueue defaults to 100); in ModeInstream
	// DefaultConcurrency (2).
	Concurrency int
	// MaxStreamBytes is the longest stream sent to clamd; it must not exceed
	// clamd's StreamMaxLength (a longer stream fails with ErrSizeLimit).
	// A larger file is scanned in overlapping windows of this size, through
	// INSTREAM in every mode. Default 2000 MiB.
	MaxStreamBytes int64
	// WindowOverlap is how many bytes consecutive windows share, so that a
	// signature up to this long straddling a window boundary is still seen
	// whole. Default 1 MiB, but at most MaxStreamBytes/2.
	WindowOverlap int64
	// SignatureDir is clamd's DatabaseDirectory when this process can read
	// it (a private clamd, the shipped signatures, or a clamd on the same
	// host; see DatabaseDirectory). The digest of the files in it is the
	// signature part of the check's identity. Empty: the signatures are
	// unknown (Identity.Known false, Engines["clamav-signatures"] =
	// SignaturesUnknown), and verdicts must not be reused across scans.
	SignatureDir string
	// ProveLoaded makes the check prove that clamd has loaded the files in
	// SignatureDir, not merely that they are there: it keeps a generation
	// signature (GenerationFile) in SignatureDir derived from the digest
	// of the other files, sends RELOAD when they change, and reports the
	// signatures known only while clamd detects the current generation's
	// sample. It writes into SignatureDir: use it for a directory
	// assetscan manages (a private clamd). Without it, the identity names
	// the files in the directory, which clamd loads at its next RELOAD
	// (or SelfCheck); clamd's VERSION names the official database clamd
	// has loaded, but not custom signatures.
	ProveLoaded bool
	// SignatureDigest is ignored.
	//
	// Deprecated: a digest fixed at start-up is not what clamd runs (it
	// named the shipped set for any clamd); set SignatureDir.
	SignatureDigest string
}

// Validate reports whether c is usable.
func (c CheckConfig) Validate() error {
	if c.Concurrency < 0 {
		return errors.New("malware check config: Concurrency must not be negative")
	}
	if c.MaxStreamBytes < 0 {
		return errors.New("malware check config: MaxStreamBytes must not be negative")
	}
	if c.WindowOverlap < 0 {
		return errors.New("malware check config: WindowOverlap must not be negative")
	}
	switch c.Mode {
	case "", ModeAuto, ModeFDPass, ModeInstream:
	default:
		return fmt.Errorf("malware check config: Mode %q: want %q, %q or %q", c.Mode, ModeAuto, ModeFDPass, ModeInstream)
	}
	d := c.withDefaults()
	if d.MaxStreamBytes < 2 {
		return fmt.Errorf("malware check config: MaxStreamBytes %d too small", d.MaxStreamBytes)
	}
	if d.WindowOverlap >= d.MaxStreamBytes {
		return fmt.Errorf("malware check config: WindowOverlap %d must be smaller than MaxStreamBytes %d", d.WindowOverlap, d.MaxStreamBytes)
	}
	return nil
}

func (c CheckConfig) withDefaults() CheckConfig {
	if c.Mode == "" {
		c.Mode = ModeAuto
	}
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = DefaultMaxStreamBytes
	}
	if c.WindowOverlap == 0 {
		c.WindowOverlap = min(DefaultWindowOverlap, c.MaxStreamBytes/2)
	}
	return c
}

// Check is the malware check: it sends every file of the target to clamd.
type Check struct {
	client *Client
	cfg    CheckConfig
	mode   string // ModeFDPass or ModeInstream
	sigs   dirDigester
	gen    sync.Mutex // serialises generation marker updates
}

var _ scanner.Check = (*Check)(nil)

// NewCheck returns the malware check scanning through c.
func NewCheck(c *Client, cfg CheckConfig) (*Check, error) {
	if c == nil {
		return nil, errors.New("malware check: nil clamd client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ProveLoaded && cfg.SignatureDir == "" {
		return nil, errors.New("malware check config: ProveLoaded needs SignatureDir")
	}
	k := &Check{client: c, cfg: cfg.withDefaults(), mode: cfg.Mode}
	if cfg.ProveLoaded {
		k.sigs.exclude = generationFiles
	}
	switch k.cfg.Mode {
	case ModeAuto:
		k.mode = ModeInstream
		if c.network == "unix" && socketRights(0) != nil {
			k.mode = ModeFDPass
		}
	case ModeFDPass:
		if c.network != "unix" || socketRights(0) == nil {
			return nil, fmt.Errorf("malware check config: Mode %q: %w (clamd address %s)", ModeFDPass, ErrNoFDPass, c.cfg.Addr)
		}
	}
	return k, nil
}

// Mode returns the transfer mode the check uses: ModeFDPass or
// ModeInstream (ModeAuto resolved against the clamd address).
func (k *Check) Mode() string { return k.mode }

// Name returns assetscan.CheckMalware.
func (k *Check) Name() string { return assetscan.CheckMalware }

// Config returns the check's configuration with defaults applied.
func (k *Check) Config() CheckConfig { return k.cfg }

// unit is one stream: a whole file or one window of a large file.
type unit struct {
	file      int
	off, n    int64
	win, wins int
}

// Run scans every file in t.Files (and t.Sources). Any file clamd could
// not scan completely (error reply, transport failure, time-out, file
// unreadable, not a regular file, or not of the size in its scanner.File)
// makes Run return an error: there is no partial pass.
// Detections are findings; Run succeeds with them.
//
// Result.Engines records the check's Identity, read before the scan:
// Engines["clamav"] is clamd's VERSION reply and
// Engines["clamav-signatures"] the signature directory's digest or
// SignaturesUnknown. The identity is read again after the scan; if it
// changed (a reload, a signature file added), Run fails with
// ErrIdentityChanged (transient) rather than credit the results to either.
// Result.Detail names the transfer mode.
func (k *Check) Run(ctx context.Context, t *scanner.Target) (scanner.Result, error) {
	if t == nil {
		return scanner.Result{}, errors.New("malware check: nil target")
	}
	id, err := k.EngineIdentity(ctx)
	if err != nil {
		return scanner.Result{}, fmt.Errorf("malware check: %w", err)
	}
	engines := map[string]string{EngineName: id.Raw, SignaturesEngineName: id.SignaturesDigest}

	// Plan: split the large files into windows, by the size the
	// extraction wrote. Each file is checked when it is opened: a regular
	// file of exactly that size, or the scan fails (errChanged,
	// errNotRegular). There is no separate pass that stats every file:
	// on 20 000 tiny files it was 2% of the scan's time, with clamd idle.
	files := t.Files
	var units []unit
	var fileBytes, streamBytes int64
	windowed, windowCount := 0, 0
	for i, f := range files {
		if f.Size < 0 {
			return scanner.Result{}, fmt.Errorf("malware check: %q: negative size %d", f.Path, f.Size)
		}
		if f.Size > k.cfg.MaxStreamBytes { // rare: confirm before planning windows by it
			fh, err := openFile(f.DiskPath, f.Size)
			if err != nil {
				return scanner.Result{}, fmt.Errorf("malware check: %q: %w", f.Path, err)
			}
			fh.Close()
		}
		ws := windows(f.Size, k.cfg.MaxStreamBytes, k.cfg.WindowOverlap)
		if len(ws) > 1 {
			windowed++
			windowCount += len(ws)
		}
		for j, w := range ws {
			units = append(units, unit{file: i, off: w[0], n: w[1], win: j, wins: len(ws)})
			streamBytes += w[1]
		}
		fileBytes += f.Size
	}

	conc, concFrom := k.concurrency(ctx)
	replies := make([]Reply, len(units))
	var fdUnits, streamUnits []int
	for i, u := range units {
		if k.mode == ModeFDPass && u.wins == 1 {
			fdUnits = append(fdUnits, i)
		} else {
			streamUnits = append(streamUnits, i)
		}
	}
	if err := k.scanFDs(ctx, files, units, fdUnits, replies, conc); err != nil {
		return scanner.Result{}, err
	}
	streamConc := conc
	if k.mode == ModeFDPass {
		streamConc = min(conc, DefaultConcurrency) // windows of large files: bounded temp copies in clamd
	}
	if err := k.scanUnits(ctx, files, units, streamUnits, replies, streamConc); err != nil {
		return scanner.Result{}, err
	}
	for i, r := range replies { // belt and braces: every stream has its verdict
		if r.Status != StatusOK && r.Status != StatusFound {
			return scanner.Result{}, fmt.Errorf("malware check: %q: %w: no verdict from clamd", files[units[i].file].Path, ErrNoReply)
		}
	}

	// Findings, in file order, one per file and signature.
	type key struct {
		file int
		sig  string
	}
	seen := map[key]bool{}
	var findings []assetscan.Finding
	for i, u := range units {
		r := replies[i]
		if r.Status != StatusFound {
			continue
		}
		if seen[key{u.file, r.Signature}] {
			continue
		}
		seen[key{u.file, r.Signature}] = true
		findings = append(findings, finding(files[u.file], u, r.Signature))
	}

	srcFindings, srcFiles, srcBytes, err := k.scanSources(ctx, t.Sources)
	if err != nil {
		return scanner.Result{}, err
	}
	findings = append(findings, srcFindings...)

	after, err := k.EngineIdentity(ctx)
	if err != nil {
		return scanner.Result{}, fmt.Errorf("malware check: after the scan: %w", err)
	}
	if after.Raw != id.Raw || after.SignaturesDigest != id.SignaturesDigest {
		return scanner.Result{}, fmt.Errorf("malware check: %w: %s before, %s after", ErrIdentityChanged, id, after)
	}

	detail := fmt.Sprintf("%d files", len(t.Files))
	if len(t.Sources) > 0 {
		detail += fmt.Sprintf("; %d streamed files, %d bytes (%s)", srcFiles, srcBytes, humanBytes(srcBytes))
	}
	if len(t.Files) > 0 {
		detail += fmt.Sprintf(", %d bytes (%s), %d streams", fileBytes, humanBytes(fileBytes), len(units))
		if windowed > 0 {
			detail += fmt.Sprintf("; %d files larger than %s scanned in %d overlapping windows (overlap %s, %s streamed)",
				windowed, humanBytes(k.cfg.MaxStreamBytes), windowCount, humanBytes(k.cfg.WindowOverlap), humanBytes(streamBytes))
		}
	}
	detail += fmt.Sprintf("; mode %s, %d in flight (%s)", k.mode, conc, concFrom)
	if !id.Known {
		detail += "; signatures unknown: " + id.Unknown
	}
	cov := &assetscan.Coverage{Files: int64(len(t.Files)) + int64(srcFiles), Bytes: fileBytes + srcBytes}
	for _, f := range findings {
		if f.Rule == RuleUnscannable {
			cov.Add(assetscan.NotExamined{Path: f.Path, Reason: f.Message})
		}
	}
	return scanner.Result{Findings: findings, Detail: detail, Engines: engines, Coverage: cov}, nil
}

// concurrency resolves CheckConfig.Concurrency, and says where it came from.
func (k *Check) concurrency(ctx context.Context) (int, string) {
	if k.cfg.Concurrency > 0 {
		return k.cfg.Concurrency, "configured"
	}
	if k.mode != ModeFDPass {
		return DefaultConcurrency, "default"
	}
	n, err := k.client.MaxThreads(ctx)
	if err != nil {
		return DefaultFDPassConcurrency, "default; STATS unreadable"
	}
	return 2 * n, "2 × clamd MaxThreads"
}

// scanFDs scans the whole-file units idx by passing their descriptors in
// one pipelined IDSESSION connection, conc requests in flight. One
// connection is enough: the client opens and passes a file in about 10 µs,
// far less than clamd takes to scan one, and clamd reads each connection
// in one thread anyway. A second connection (and goroutine) cost CPU on a
// machine whose cores clamd's threads keep busy.
func (k *Check) scanFDs(ctx context.Context, files []scanner.File, units []unit, idx []int, replies []Reply, conc int) error {
	if len(idx) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var firstErr error
	fail := func(err error) { // the first error ends the session at once
		if firstErr == nil {
			firstErr = err
			cancel(err)
		}
	}
	s, err := k.client.OpenSession(ctx, conc, func(i int, r Reply, err error) {
		if err != nil {
			fail(fmt.Errorf("malware check: %q: %w", files[units[i].file].Path, err))
			return
		}
		replies[i] = r
	})
	if err != nil {
		return fmt.Errorf("malware check: %w", err)
	}
	for _, i := range idx {
		if firstErr != nil || ctx.Err() != nil {
			break
		}
		if err := k.sendFD(s, files[units[i].file], i); err != nil {
			fail(err)
		}
	}
	if err := s.Close(); err != nil {
		fail(fmt.Errorf("malware check: %w", err))
	}
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("malware check: %w", ctxError(ctx))
	}
	return nil
}

// Errors of a file that is not what the extraction wrote.
var (
	// errChanged: the file's size is not the size planned.
	errChanged = errors.New("file changed during the scan")
	// errNotRegular: the path is not a regular file.
	errNotRegular = errors.New("not a regular file")
)

// sendFD opens a planned file, checks it is a regular file of the planned
// size, and passes its descriptor to clamd.
func (k *Check) sendFD(s *Session, f scanner.File, tag int) error {
	fd, err := openPlanned(f.DiskPath, f.Size)
	if err != nil {
		return fmt.Errorf("malware check: %q: %w", f.Path, err)
	}
	defer closeFD(fd)
	if err := s.SendFD(tag, fd); err != nil {
		return fmt.Errorf("malware check: %q: %w", f.Path, err)
	}
	return nil
}

// scanSources streams every file of each source (files inside VM disk
// images) to clamd, one at a time. A streamed file cannot be re-read for
// overlapping windows, so one larger than MaxStreamBytes is reported as not
// fully scanned (malware.unscannable), never as clean.
func (k *Check) scanSources(ctx context.Context, srcs []scanner.FileSource) ([]assetscan.Finding, int, int64, error) {
	var findings []assetscan.Finding
	n, total := 0, int64(0)
	for _, src := range srcs {
		err := src.Walk(ctx, func(f scanner.File, r io.Reader) error {
			n++
			if f.Size > k.cfg.MaxStreamBytes {
				findings = append(findings, assetscan.Finding{Check: assetscan.CheckMalware, Rule: RuleUnscannable, Path: f.Path, Layer: f.Layer,
					Message: fmt.Sprintf("file of %s inside the image is larger than the %s the malware engine scans in one stream; it was not fully scanned", humanBytes(f.Size), humanBytes(k.cfg.MaxStreamBytes))})
				return nil
			}
			cr := &countingReader{r: r}
			reply, err := k.client.Scan(ctx, cr)
			if err != nil {
				return fmt.Errorf("malware check: %q: %w", f.Path, err)
			}
			if cr.n != f.Size && f.Size > 0 {
				return fmt.Errorf("malware check: %q: read %d of %d bytes", f.Path, cr.n, f.Size)
			}
			total += cr.n
			if reply.Status == StatusFound {
				findings = append(findings, finding(f, unit{wins: 1}, reply.Signature))
			}
			return nil
		})
		if err != nil {
			return nil, n, total, err
		}
	}
	return findings, n, total, nil
}

// scanUnits streams the units idx with INSTREAM, conc at once.
func (k *Check) scanUnits(ctx context.Context, files []scanner.File, units []unit, idx []int, replies []Reply, conc int) error {
	if len(idx) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel(err)
		}
	}
	next := make(chan int)
	for range min(conc, len(idx)) {
		wg.Go(func() {
			for i := range next {
				r, err := k.scanUnit(ctx, files[units[i].file], units[i])
				if err != nil {
					fail(err)
					continue
				}
				replies[i] = r
			}
		})
	}
feed:
	for _, i := range idx {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("malware check: %w", ctxError(ctx))
	}
	return nil
}

func (k *Check) scanUnit(ctx context.Context, file scanner.File, u unit) (Reply, error) {
	where := fmt.Sprintf("%q", file.Path)
	if u.wins > 1 {
		where += fmt.Sprintf(" (window %d/%d, bytes %d-%d)", u.win+1, u.wins, u.off, u.off+u.n)
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, fmt.Errorf("malware check: %s: %w", where, ctxError(ctx))
	}
	f, err := openFile(file.DiskPath, file.Size)
	if err != nil {
		return Reply{}, fmt.Errorf("malware check: %s: %w", where, err)
	}
	defer f.Close()
	cr := &countingReader{r: io.NewSectionReader(f, u.off, u.n)}
	reply, err := k.client.Scan(ctx, cr)
	if err != nil {
		return reply, fmt.Errorf("malware check: %s: %w", where, err)
	}
	if cr.n != u.n {
		return Reply{}, fmt.Errorf("malware check: %s: read %d of %d bytes (file changed during the scan)", where, cr.n, u.n)
	}
	return reply, nil
}

func finding(f scanner.File, u unit, sig string) assetscan.Finding {
	fd := assetscan.Finding{
		Check:   assetscan.CheckMalware,
		Rule:    RuleDetected,
		Path:    f.Path,
		Layer:   f.Layer,
		Malware: &assetscan.Malware{Signature: sig, Engine: EngineName},
	}
	switch {
	case strings.HasPrefix(sig, "Heuristics.Encrypted"):
		fd.Rule = RuleUnscannable
		fd.Message = fmt.Sprintf("the file is encrypted, so the malware engine could not scan its content (clamav: %s)", sig)
	case strings.HasPrefix(sig, "Heuristics.Limits.Exceeded"):
		fd.Rule = RuleUnscannable
		fd.Message = fmt.Sprintf("the file exceeds the malware engine's scan limits and was not scanned completely (clamav: %s)", sig)
	default:
		fd.Message = fmt.Sprintf("the malware engine detected %s", sig)
	}
	if u.wins > 1 {
		fd.Message += fmt.Sprintf(" in bytes %d-%d", u.off, u.off+u.n)
	}
	return fd
}

// windows splits size bytes into windows of at most w bytes, consecutive
// windows sharing overlap bytes, covering every byte. A file of at most w
// bytes (an empty file too) is one window. Requires 0 <= overlap < w.
func windows(size, w, overlap int64) [][2]int64 {
	if size <= w {
		return [][2]int64{{0, size}}
	}
	var out [][2]int64
	for start := int64(0); ; {
		end := min(start+w, size)
		out = append(out, [2]int64{start, end - start})
		if end == size {
			return out
		}
		start = end - overlap
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
