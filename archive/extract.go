package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/assetscan/assetscan"
)

// File is one regular file written by Extract.
type File struct {
	// Path is the path inside the package, "/"-separated, with "!/"
	// separating a nested archive from its members ("lib/a.zip!/x.js").
	// It is the real (cleaned) name and may hold any byte but NUL; see
	// DisplayPath.
	Path string
	// DiskPath is the absolute path of the file on disk, under dest. It is
	// always dest joined with Path.
	DiskPath string
	// Size is the number of bytes written.
	Size int64
	// Container is set for a zip-based package file a vulnerability
	// analyzer reads whole (.jar, .war, .whl, .nupkg, ...; see
	// ContainerName) that was kept on disk although its members were also
	// extracted, into Path+"!/". Checks that read the members (malware,
	// secrets) need not read it again.
	Container bool
}

// Result is what Extract did.
type Result struct {
	// Files lists every regular file written, in extraction order. Nested
	// archives that were unpacked completely are removed from disk and not
	// listed (their members are); nested archives that were not (too deep,
	// corrupt, extraction stopped) are listed as regular files.
	Files []File
	// Findings lists each hostile or unreadable condition met. At most 100
	// findings per rule are listed one by one; the rest are counted in one
	// more finding of that rule, with an empty Path.
	Findings []assetscan.Finding
	// Entries is the number of archive entries read, across all levels.
	Entries int
	// ExpandedBytes is the number of bytes written, across all levels.
	ExpandedBytes int64
	// Coverage says how much of the package the extraction accounted for
	// and what it left unexamined.
	Coverage Coverage
	// ReleasedBytes is how many bytes at the front of the package were
	// released from the file system as they were extracted (ReleaseSource).
	ReleasedBytes int64
}

// MaxUnexamined bounds Coverage.Unexamined.
const MaxUnexamined = 100

// Coverage is what an extraction covered.
//
// AccountedBytes == InputBytes when every byte of the package file was
// either part of an entry the archive's index names (header, data,
// descriptor), part of the index itself (central directory, end records
// and comment, tar headers and end blocks), zero padding, or written out
// as a region file (see RuleHiddenData). An entry that was accounted for
// but not extracted (encrypted, unsupported method, ...) is listed in
// Unexamined instead.
type Coverage struct {
	// InputBytes is the size of the package file, in bytes.
	InputBytes int64
	// AccountedBytes is how many bytes of the package file (top level
	// only; nested archives are accounted through their findings) were
	// read and accounted for, as above. Less than InputBytes when
	// extraction stopped early (a limit, a corrupt archive).
	AccountedBytes int64
	// Unexamined lists, in extraction order, at most MaxUnexamined things
	// whose content was not extracted and so not examined by the checks
	// that read files.
	Unexamined []Unexamined
	// UnexaminedCount is the number of such things, listed or not.
	UnexaminedCount int
}

// Unexamined is one thing an extraction did not examine.
type Unexamined struct {
	// Path is as in assetscan.Finding.Path (DisplayPath applied); "" for
	// the package as a whole.
	Path string
	// Rule is the rule id of the finding that says why (RuleUnscannable,
	// RuleUnsupported, RuleCorrupt, RuleBomb, ...).
	Rule string
	// Reason is that finding's message.
	Reason string
}

// leavesContent reports whether a finding of rule means some content was
// not extracted.
func leavesContent(rule string) bool {
	switch rule {
	case RuleLinkEscape, RuleSpecialFile, RuleHiddenData, RulePrefixScript, RuleSFXStub:
		return false
	}
	return true
}

// copyBufSize is the size of the buffer entries are copied through.
const copyBufSize = 256 << 10

// Extract unpacks src, an archive of format f, into dest, which must be an
// existing, empty directory (not a symlink). Nested archives are unpacked
// up to lim.MaxDepth.
//
// Hostile or unreadable content gives findings, not errors: a skipped entry
// lets extraction continue, a corrupt archive stops that archive, and a
// limit (bomb, too many entries) stops the whole extraction; the Result then
// holds what was extracted so far. FormatUnknown gives a RuleUnsupported
// finding and extracts nothing.
//
// An error means the extraction could not run: invalid limits or format,
// dest unusable, src unreadable, a write failed (disk full) or ctx was
// cancelled. The Result is then nil and dest holds a partial extraction the
// caller should remove.
func Extract(ctx context.Context, src string, f Format, dest string, lim Limits, opts ...Option) (*Result, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	switch f {
	case FormatUnknown, FormatZip, FormatTar, FormatTarGz:
	default:
		return nil, fmt.Errorf("extract: unknown format %q", f)
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("extract: destination %s is not a directory", abs)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	if err := checkEmpty(root); err != nil {
		return nil, fmt.Errorf("extract: destination %s: %w", abs, err)
	}
	res := &Result{}
	if fi, err := os.Stat(src); err == nil {
		res.Coverage.InputBytes = fi.Size()
	}
	if f == FormatUnknown {
		res.Findings = append(res.Findings, finding(RuleUnsupported, "",
			"the package is not a zip, tar or tar.gz archive; pack it in one of these formats"))
		return res, nil
	}
	var sf *os.File
	var rel *releaser
	if o.releaseSource && f != FormatZip {
		// Punching holes needs a descriptor open for writing.
		sf, err = os.OpenFile(src, os.O_RDWR, 0)
		rel = &releaser{f: sf, step: releaseStep, lag: releaseLag}
		if o.step > 0 {
			rel.step, rel.lag = o.step, o.lag
		}
	} else {
		sf, err = os.Open(src)
	}
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	defer sf.Close()
	e := &extractor{
		ctx:     ctx,
		lim:     lim,
		dest:    abs,
		res:     res,
		buf:     make([]byte, copyBufSize),
		release: rel,
	}
	defer func() { res.ReleasedBytes = rel.released() }()
	kind := map[Format]Kind{FormatZip: KindZip, FormatTar: KindTar, FormatTarGz: KindGzip}[f]
	if _, err := e.extractLevel(&level{root: root, depth: 1}, kind, sf, ""); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	e.summarize()
	return res, nil
}

func checkEmpty(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if len(names) > 0 {
		return errors.New("not empty")
	}
	return nil
}

func finding(rule, p, msg string) assetscan.Finding {
	check := assetscan.CheckArchive
	if rule == RuleUnscannable {
		check = assetscan.CheckMalware
	}
	return assetscan.Finding{Check: check, Rule: rule, Path: DisplayPath(p), Message: msg}
}

// extractor holds the state of one Extract call.
type extractor struct {
	ctx  context.Context
	lim  Limits
	dest string
	res  *Result
	buf  []byte
	// release frees the front of the package as its tar stream is read
	// (nil: ReleaseSource not given, or a zip).
	release *releaser
	// sn is the sniffer of the file being written, reused from file to
	// file (its verdict is taken as soon as the file is written).
	sn sniffer
	// skipped counts the bytes of skipped tar entries that were
	// decompressed (not written) to reach the next entry.
	skipped int64
	// stopped is set when a global limit was hit: nothing more is extracted.
	stopped bool
	// listed counts the findings per rule, unlisted those left out (see
	// maxFindingsPerRule), unlistedOrder their rules in order.
	listed        map[string]int
	unlisted      map[string]int
	unlistedOrder []string
}

// budget is how many more bytes may be expanded.
func (e *extractor) budget() int64 {
	return e.lim.MaxExpandedBytes - e.res.ExpandedBytes - e.skipped
}

// level is one archive being extracted: the package itself or a nested
// archive.
type level struct {
	// root is the directory the archive's members are written into.
	root *os.Root
	// dir is that directory relative to dest ("" for the package itself,
	// "lib/a.zip!" for a nested archive).
	dir   string
	depth int
	// links maps the clean paths of skipped links to whether they escape.
	links map[string]bool
	// pending lists the members that look like nested archives, unpacked
	// once the archive itself is done.
	pending []pendingFile
	// tentative: this level is a zip found by its end record only.
	tentative bool
	// made holds the directories (clean, relative to root) this level
	// created or found: an archive lists many files per directory, and
	// MkdirAll walks and creates every component again each time.
	made map[string]bool
}

// mkdirAll creates dir (clean, relative to lv.root) and its parents.
// Entries never replace a directory (files are created O_EXCL, links are
// not created), so a directory made once stays one.
func (lv *level) mkdirAll(dir string) error {
	if lv.made[dir] {
		return nil
	}
	if err := lv.root.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if lv.made == nil {
		lv.made = map[string]bool{}
	}
	for d := dir; d != "." && !lv.made[d]; d = path.Dir(d) {
		lv.made[d] = true
	}
	return nil
}

// pendingFile is a member that may be a nested archive.
type pendingFile struct {
	name string // clean path relative to the level's root
	file File
	kind Kind
	// tentative: a zip found by its end record only (it has a prefix);
	// if it does not open, it is a plain file.
	tentative bool
}

// outcome is how extracting one archive ended.
type outcome int

const (
	done       outcome = iota // every entry was read
	corrupt                   // the archive is corrupt; a finding was added
	stopped                   // a global limit was hit; a finding was added
	notArchive                // a tentative zip that does not open; no finding
)

// memberKind is what an archive entry is.
type memberKind int

const (
	kindFile memberKind = iota
	kindDir
	kindSymlink
	kindHardlink
	kindSpecial
	kindEncrypted
	kindUnsupported // zip compression method
	kindMeta        // metadata without a path (tar global headers, volume labels)
	kindCorruptDir  // a zip directory entry carrying data
)

// member is one archive entry, format-independent.
type member struct {
	name string // as in the archive
	kind memberKind
	// link is the symlink or hardlink target.
	link string
	// linkInData says the symlink target is the entry's data (zip).
	linkInData bool
	// size is the declared uncompressed size.
	size int64
	// csize is the declared compressed size (zip), or -1.
	csize int64
	// compressed returns the compressed bytes spent on the entry so far
	// (declared for zip, measured while reading for tar and tar.gz).
	compressed func() int64
	// open opens the entry's data. For tar it is the tar reader itself.
	open func() (io.ReadCloser, error)
	// method is the zip compression method, for messages.
	method uint16
	// written, when set, is called each time a chunk of the entry's data
	// has been written to its file (ReleaseSource frees what it came from).
	written func()
}

// extractLevel extracts one archive or compressed stream, then the nested
// archives found in it.
func (e *extractor) extractLevel(lv *level, k Kind, src *os.File, arcPath string) (outcome, error) {
	var oc outcome
	var err error
	switch k {
	case KindZip:
		oc, err = e.extractZip(lv, src, arcPath)
	case KindTar:
		oc, err = e.extractTar(lv, src, arcPath)
	case KindGzip, KindBzip2, KindXz, KindZstd:
		oc, err = e.extractStream(lv, k, src, arcPath)
	default:
		return done, fmt.Errorf("extract %s: cannot unpack %s", DisplayPath(arcPath), k)
	}
	if err != nil {
		return oc, err
	}
	for _, p := range lv.pending {
		if e.stopped {
			// Keep what is on disk listed.
			e.res.Files = append(e.res.Files, p.file)
			continue
		}
		if err := e.nested(lv, p); err != nil {
			return oc, err
		}
	}
	lv.pending = nil
	return oc, nil
}

// nested unpacks the member p of lv, an archive or compressed stream
// recognised by its content (pf.kind), and lists it as a regular file when
// it is kept.
func (e *extractor) nested(lv *level, pf pendingFile) error {
	name, p := pf.name, pf.file
	keep := func() { e.res.Files = append(e.res.Files, p) }
	if pf.kind == Kind7z {
		e.add(RuleUnsupported, p.Path, "the member is a 7z archive, which is not unpacked; its content was not examined by every check, pack it as zip or tar.gz")
		keep()
		return nil
	}
	fh, err := lv.root.Open(name)
	if err != nil {
		return fmt.Errorf("open %s: %w", DisplayPath(p.Path), err)
	}
	defer fh.Close()
	if lv.depth+1 > e.lim.MaxDepth {
		e.add(RuleTooDeep, p.Path, fmt.Sprintf(
			"nested archive at depth %d, deeper than the %d levels unpacked; it was not unpacked, flatten the nesting", lv.depth+1, e.lim.MaxDepth))
		keep()
		return nil
	}
	dirName := name + "!"
	if err := lv.root.Mkdir(dirName, 0o750); err != nil {
		switch {
		case errors.Is(err, syscall.EEXIST):
			e.add(RuleDuplicate, p.Path+"!", "the package holds a path named like the directory this nested archive is unpacked into; it was not unpacked, rename one of them")
			keep()
			return nil
		case errors.Is(err, syscall.ENAMETOOLONG):
			e.add(RuleBadName, p.Path, "the nested archive's name is too long to unpack it; shorten it")
			keep()
			return nil
		}
		return fmt.Errorf("create %s: %w", DisplayPath(p.Path+"!"), err)
	}
	sub, err := lv.root.OpenRoot(dirName)
	if err != nil {
		return fmt.Errorf("open %s: %w", DisplayPath(p.Path+"!"), err)
	}
	defer sub.Close()
	child := &level{root: sub, dir: p.Path + "!", depth: lv.depth + 1, tentative: pf.tentative}
	before := len(e.res.Findings)
	oc, err := e.extractLevel(child, pf.kind, fh, p.Path)
	if err != nil {
		return err
	}
	if oc == notArchive {
		if err := lv.root.Remove(dirName); err != nil {
			return fmt.Errorf("remove %s: %w", DisplayPath(p.Path+"!"), err)
		}
		keep()
		return nil
	}
	if oc != done || SkippedContent(e.res.Findings[before:]) {
		// Some members were not unpacked (unsupported method, encrypted,
		// corrupt): keep the archive's own bytes so that engines that can
		// read it (clamd unpacks bzip2, deflate64, implode zips) still do.
		keep()
		return nil
	}
	if pf.kind == KindZip && ContainerName(name) {
		// A vulnerability analyzer reads it whole (trivy's Java analyzer
		// reads jars, nested ones too); its members were all extracted.
		p.Container = true
		keep()
		return nil
	}
	// Every byte of the nested archive was decompressed into its members:
	// they are scanned, the archive itself is not needed.
	fh.Close()
	if err := lv.root.Remove(name); err != nil {
		return fmt.Errorf("remove %s: %w", DisplayPath(p.Path), err)
	}
	return nil
}

// maxFindingsPerRule bounds the findings listed for one rule: a hostile
// archive could otherwise produce one per entry, a million of them.
const maxFindingsPerRule = 100

func (e *extractor) add(rule, p, msg string) {
	if leavesContent(rule) {
		cov := &e.res.Coverage
		cov.UnexaminedCount++
		if len(cov.Unexamined) < MaxUnexamined {
			cov.Unexamined = append(cov.Unexamined, Unexamined{Path: DisplayPath(p), Rule: rule, Reason: msg})
		}
	}
	if e.listed == nil {
		e.listed = make(map[string]int)
	}
	if e.listed[rule] >= maxFindingsPerRule {
		if e.unlisted[rule] == 0 {
			e.unlistedOrder = append(e.unlistedOrder, rule)
		}
		if e.unlisted == nil {
			e.unlisted = make(map[string]int)
		}
		e.unlisted[rule]++
		return
	}
	e.listed[rule]++
	e.res.Findings = append(e.res.Findings, finding(rule, p, msg))
}

// summarize adds one finding per rule for the findings not listed.
func (e *extractor) summarize() {
	for _, rule := range e.unlistedOrder {
		e.res.Findings = append(e.res.Findings, finding(rule, "", fmt.Sprintf(
			"%d more entries have the same problem; only the first %d are listed", e.unlisted[rule], maxFindingsPerRule)))
	}
}

// entry handles one archive entry. It returns done to go on with the next
// entry.
func (e *extractor) entry(lv *level, m *member, arcPath string) (outcome, error) {
	if err := e.ctx.Err(); err != nil {
		return stopped, err
	}
	e.res.Entries++
	if e.res.Entries > e.lim.MaxEntries {
		e.add(RuleTooManyEntries, arcPath, fmt.Sprintf(
			"the package has more than %d entries in total; extraction stopped", e.lim.MaxEntries))
		e.stopped = true
		return stopped, nil
	}
	if m.kind == kindMeta {
		return done, nil
	}
	raw := join(lv.dir, m.name)
	name, prob := cleanName(m.name)
	if prob != nil {
		e.add(prob.rule, raw, prob.msg)
		return done, nil
	}
	if name == "." {
		if m.kind != kindDir {
			e.add(RuleBadName, raw, "the entry has an empty name or names the package root; it was not extracted")
		}
		return done, nil
	}
	full := join(lv.dir, name)
	if len(e.dest)+1+len(full) >= maxNameLen {
		// DiskPath must stay usable by other programs (PATH_MAX).
		e.add(RuleBadName, raw, "the entry's path, with the names of the archives it is nested in, is too long to extract; shorten it")
		return done, nil
	}
	if ok := e.checkLinks(lv, name, raw); !ok {
		return done, nil
	}
	switch m.kind {
	case kindCorruptDir:
		e.add(RuleCorrupt, raw, "a directory entry carries data, which is not allowed; the archive was not read further")
		return corrupt, nil
	case kindDir:
		if err := lv.mkdirAll(name); err != nil {
			return e.createFailed(err, raw)
		}
		return done, nil
	case kindSpecial:
		e.add(RuleSpecialFile, raw, "device files, fifos and sockets are not allowed in a package; it was not extracted, remove it")
		return done, nil
	case kindEncrypted:
		e.add(RuleUnscannable, raw, "the entry is encrypted and cannot be scanned; it was not extracted, package it without encryption")
		return done, nil
	case kindUnsupported:
		e.add(RuleUnsupported, raw, fmt.Sprintf("the entry uses zip compression method %d, which is not supported; it was not extracted, use deflate or store", m.method))
		return done, nil
	case kindSymlink, kindHardlink:
		return e.link(lv, m, name, raw)
	}
	return e.file(lv, m, name, full, raw)
}

// checkLinks reports whether name may be created: it may not be the path
// of a skipped link, nor lie below one.
func (e *extractor) checkLinks(lv *level, name, raw string) bool {
	if len(lv.links) == 0 {
		return true
	}
	for p := name; ; {
		if esc, ok := lv.links[p]; ok {
			switch {
			case p == name:
				e.add(RuleDuplicate, raw, "the entry has the same path as a link earlier in the archive; it was not extracted")
			case esc:
				e.add(RuleLinkEscape, raw, "the entry would be written through a link that points outside the package root; it was not extracted")
			default:
				e.add(RuleDuplicate, raw, "the entry would be written through a link earlier in the archive; it was not extracted")
			}
			return false
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return true
		}
		p = p[:i]
	}
}

// link handles a symlink or hardlink: it is never created.
func (e *extractor) link(lv *level, m *member, name, raw string) (outcome, error) {
	target := m.link
	if m.linkInData {
		// A zip symlink's target is its data.
		rc, err := m.open()
		if err != nil {
			return e.readFailed(err, raw)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxNameLen+1))
		rc.Close()
		if err != nil {
			return e.readFailed(err, raw)
		}
		target = string(b)
	}
	if len(target) > maxNameLen {
		e.add(RuleBadName, raw, "the link target is longer than 4096 bytes; the link was not extracted")
		return done, nil
	}
	escapes := linkEscapes(name, target, m.kind == kindHardlink)
	if lv.links == nil {
		lv.links = make(map[string]bool)
	}
	// checkLinks made sure name is not a link yet.
	lv.links[name] = escapes
	if escapes {
		e.add(RuleLinkEscape, raw, fmt.Sprintf("the link points outside the package root (to %s); links are never followed, remove it",
			DisplayPath(target)))
		return done, nil
	}
	if _, err := lv.root.Lstat(name); err == nil {
		e.add(RuleDuplicate, raw, "the link has the same path as an earlier entry; it was not extracted")
	}
	// Links inside the package are skipped: whatever they point to is
	// extracted and scanned in its own right.
	return done, nil
}

// file writes a regular file.
func (e *extractor) file(lv *level, m *member, name, full, raw string) (outcome, error) {
	switch {
	case m.size > e.lim.MaxEntryBytes:
		return e.bomb(raw, fmt.Sprintf("the entry is %d bytes, more than the %d bytes allowed for one file; extraction stopped",
			m.size, e.lim.MaxEntryBytes))
	case m.size > e.budget():
		return e.bomb(raw, fmt.Sprintf("the package expands to more than %d bytes; extraction stopped", e.lim.MaxExpandedBytes))
	case m.csize >= 0 && m.size > ratioFloor && e.ratioExceeded(m.size, m.csize):
		// Zip readers never return more than the declared size, so a
		// declared ratio over the limit is a bomb or a lie.
		return e.bomb(raw, e.ratioMsg(m.size, m.csize))
	}
	if dir := path.Dir(name); dir != "." {
		if err := lv.mkdirAll(dir); err != nil {
			return e.createFailed(err, raw)
		}
	}
	rc, err := m.open()
	if err != nil {
		return e.readFailed(err, raw)
	}
	defer rc.Close()
	out, err := lv.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return e.createFailed(err, raw)
	}
	sn := &e.sn
	sn.reset()
	n, oc, err := e.copy(out, rc, m, raw, sn)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", DisplayPath(full), cerr)
	}
	if err != nil {
		return oc, err
	}
	f := File{Path: full, DiskPath: filepath.Join(e.dest, filepath.FromSlash(full)), Size: n}
	switch oc {
	case stopped:
		// A bomb: the partial file is useless, free the disk.
		if err := lv.root.Remove(name); err != nil {
			return oc, fmt.Errorf("remove %s: %w", DisplayPath(full), err)
		}
	case corrupt:
		// Keep the readable part: it is scanned like any file.
		e.res.Files = append(e.res.Files, f)
	default:
		e.sniffed(lv, name, f, sn)
	}
	return oc, nil
}

// sniffed lists a file just written, or queues it for unpacking when its
// content (captured by sn while it was written) is an archive or a
// compressed stream.
func (e *extractor) sniffed(lv *level, name string, f File, sn *sniffer) {
	k := sn.kind(nil)
	if k == KindPlain {
		e.res.Files = append(e.res.Files, f)
		return
	}
	lv.pending = append(lv.pending, pendingFile{name: name, file: f, kind: k,
		tentative: k == KindZip && SniffHead(sn.head) != KindZip})
}

// copy copies an entry's data in chunks, enforcing the limits on the bytes
// actually read.
func (e *extractor) copy(w io.Writer, r io.Reader, m *member, raw string, sn *sniffer) (int64, outcome, error) {
	var n int64
	for {
		if err := e.ctx.Err(); err != nil {
			return n, stopped, err
		}
		k, rerr := r.Read(e.buf)
		if k > 0 {
			switch {
			case n+int64(k) > e.lim.MaxEntryBytes:
				oc, _ := e.bomb(raw, fmt.Sprintf("the entry expands to more than the %d bytes allowed for one file; extraction stopped", e.lim.MaxEntryBytes))
				return n, oc, nil
			case int64(k) > e.budget():
				oc, _ := e.bomb(raw, fmt.Sprintf("the package expands to more than %d bytes; extraction stopped", e.lim.MaxExpandedBytes))
				return n, oc, nil
			}
			if _, err := w.Write(e.buf[:k]); err != nil {
				return n, stopped, fmt.Errorf("write %s: %w", DisplayPath(raw), err)
			}
			if sn != nil {
				_, _ = sn.Write(e.buf[:k])
			}
			n += int64(k)
			e.res.ExpandedBytes += int64(k)
			if m.written != nil {
				m.written()
			}
			if n > ratioFloor {
				if c := m.compressed(); e.ratioExceeded(n, c) {
					oc, _ := e.bomb(raw, e.ratioMsg(n, c))
					return n, oc, nil
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return n, done, nil
		}
		if rerr != nil {
			oc, err := e.readFailed(rerr, raw)
			return n, oc, err
		}
	}
}

func (e *extractor) ratioExceeded(size, compressed int64) bool {
	return float64(size)/float64(max(compressed, 1)) > e.lim.MaxRatio
}

func (e *extractor) ratioMsg(size, compressed int64) string {
	return fmt.Sprintf("the entry expands %.0f times (%d bytes from %d), more than the %.0f allowed (compression bomb); extraction stopped",
		float64(size)/float64(max(compressed, 1)), size, compressed, e.lim.MaxRatio)
}

// bomb records a bomb finding and stops the extraction.
func (e *extractor) bomb(p, msg string) (outcome, error) {
	e.add(RuleBomb, p, msg)
	e.stopped = true
	return stopped, nil
}

// readFailed classifies an error reading archive data: a file system error
// is operational, anything else means the archive is corrupt.
func (e *extractor) readFailed(err error, p string) (outcome, error) {
	if isIOError(err) {
		return stopped, fmt.Errorf("read %s: %w", DisplayPath(p), err)
	}
	e.add(RuleCorrupt, p, fmt.Sprintf("the archive is corrupt or truncated (%v); it was not read further", err))
	return corrupt, nil
}

// createFailed classifies an error creating a file or directory: a clash
// with an existing path is a duplicate, a name the file system refuses is a
// bad name, anything else is operational.
func (e *extractor) createFailed(err error, p string) (outcome, error) {
	switch {
	case errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		e.add(RuleDuplicate, p, "the entry's path, or a directory above it, is already used by an earlier entry; it was not extracted")
		return done, nil
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EILSEQ):
		e.add(RuleBadName, p, "the file system refuses the entry's name; it was not extracted, rename it")
		return done, nil
	}
	return stopped, fmt.Errorf("create %s: %w", DisplayPath(p), err)
}

// SkippedContent reports whether findings say some member content was left
// unread (unsupported method, corrupt, encrypted): the archive's own bytes
// should then still go to engines that unpack archives themselves.
func SkippedContent(fs []assetscan.Finding) bool {
	for _, f := range fs {
		switch f.Rule {
		case RuleUnsupported, RuleCorrupt, RuleUnscannable:
			return true
		}
	}
	return false
}
