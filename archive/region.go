package archive

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// RegionName returns the name of the file a region of an archive is
// written to: `\region-0xSTART-0xEND` (lower-case hex byte offsets, END
// exclusive), in the directory the archive's members go to. Offsets are in
// the archive file for zip and gzip, in the decompressed tar stream for
// data after the end of a tar. No member can have this name: entry names
// are cleaned with backslashes taken as separators.
func RegionName(start, end int64) string {
	return fmt.Sprintf(`\region-0x%x-0x%x`, start, end)
}

// IsRegion reports whether the last element of a File.Path names a region
// (see RegionName) rather than an archive member.
func IsRegion(p string) bool {
	return strings.HasPrefix(path.Base(p), `\region-0x`)
}

// containerExts are the extensions of zip-based package formats whose
// files vulnerability analyzers (trivy's Java and Python analyzers, ...)
// read whole, or that engines scan better whole (Office Open XML).
var containerExts = map[string]bool{
	".jar": true, ".war": true, ".ear": true, ".par": true, ".sar": true, ".rar": false,
	".aar": true, ".apk": true, ".whl": true, ".egg": true, ".nupkg": true, ".snupkg": true,
	".vsix": true, ".xpi": true, ".crx": true, ".ipa": true, ".hpi": true, ".jpi": true,
	".docx": true, ".docm": true, ".xlsx": true, ".xlsm": true, ".pptx": true, ".pptm": true,
	".odt": true, ".ods": true, ".odp": true,
}

// ContainerName reports whether a zip named name is a package format kept
// on disk for the analyzers that read it whole (.jar, .war, .ear, .aar,
// .apk, .whl, .egg, .nupkg, .vsix, .xpi, .crx, Office Open XML, ...; case
// insensitive). Its members are extracted too (File.Container).
func ContainerName(name string) bool {
	return containerExts[strings.ToLower(path.Ext(name))]
}

// sigCounter counts zip local header and end record signatures in what is
// written through it, and whether it was all zero.
type sigCounter struct {
	carry   []byte
	locals  int
	ends    int
	nonZero bool
}

func (c *sigCounter) Write(p []byte) (int, error) {
	if !c.nonZero && !allZero(p) {
		c.nonZero = true
	}
	b := p
	if len(c.carry) > 0 {
		b = append(c.carry, p[:min(len(p), 3)]...)
		c.locals += bytes.Count(b, magicZipLocal)
		c.ends += bytes.Count(b, magicZipEnd)
		b = p
	}
	c.locals += bytes.Count(b, magicZipLocal)
	c.ends += bytes.Count(b, magicZipEnd)
	c.carry = append(c.carry[:0], p[max(0, len(p)-3):]...)
	return len(p), nil
}

// regionKind classifies a region by its first bytes; "" is hidden data.
type regionClass struct {
	rule string // RuleHiddenData, RulePrefixScript, RuleSFXStub, or "" (no finding)
	what string
}

// classifyPrefix says what the bytes before a zip's first entry are.
func classifyPrefix(head []byte) regionClass {
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		return regionClass{RulePrefixScript, "a launch script (as in a Spring Boot fully executable jar)"}
	case bytes.HasPrefix(head, []byte("MZ")), bytes.HasPrefix(head, []byte("\x7fELF")):
		return regionClass{RuleSFXStub, "an executable stub (a self-extracting archive)"}
	case bytes.HasPrefix(head, []byte("Cr24")):
		return regionClass{"", "a CRX header (a browser extension's signature)"}
	}
	return regionClass{RuleHiddenData, "data before the first entry"}
}

// writeRegion copies the bytes of a region read from r (start is its
// offset, for the name) to a region file in lv, reports it (class says
// how) and lists or queues it like any file.
// An all-zero region is padding: it is not kept and gives no finding.
func (e *extractor) writeRegion(lv *level, r io.Reader, start int64, arcPath string, class regionClass) (outcome, error) {
	tmp := RegionName(start, start)
	raw := join(lv.dir, tmp)
	out, err := lv.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return e.createFailed(err, raw)
	}
	sn := &e.sn
	sn.reset()
	var sc sigCounter
	// Region bytes are copied, not decompressed: no ratio applies.
	m := member{name: tmp, csize: -1, compressed: func() int64 { return math.MaxInt64 }}
	n, oc, err := e.copy(io.MultiWriter(out, &sc), r, &m, raw, sn)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", DisplayPath(raw), cerr)
	}
	if err != nil {
		return oc, err
	}
	if oc == stopped || !sc.nonZero {
		return oc, lv.root.Remove(tmp)
	}
	name := RegionName(start, start+n)
	if err := lv.root.Rename(tmp, name); err != nil {
		return stopped, fmt.Errorf("rename %s: %w", DisplayPath(raw), err)
	}
	full := join(lv.dir, name)
	if class.rule != "" {
		msg := fmt.Sprintf("bytes 0x%x-0x%x (%d bytes) of %s: %s, not an entry of the archive; they were written out as %s and scanned like any file",
			start, start+n, n, displayArc(arcPath), class.what, DisplayPath(path.Base(full)))
		if sc.locals > 0 || sc.ends > 0 {
			msg += fmt.Sprintf("; they hold %d zip local file header(s) and %d zip end record(s) the archive's directory does not name (another zip hidden in it)", sc.locals, sc.ends)
		}
		e.add(class.rule, arcPath, msg)
	}
	f := File{Path: full, DiskPath: filepath.Join(e.dest, filepath.FromSlash(full)), Size: n}
	if oc == corrupt {
		e.res.Files = append(e.res.Files, f)
		return oc, nil
	}
	e.sniffed(lv, name, f, sn)
	return oc, nil
}

func displayArc(arcPath string) string {
	if arcPath == "" {
		return "the package"
	}
	return DisplayPath(arcPath)
}

// zipRegions writes out every gap of a zip's layout as a region.
func (e *extractor) zipRegions(lv *level, src io.ReaderAt, zi *zipIndex, arcPath string) (outcome, error) {
	first := zi.size
	if len(zi.spans) > 0 {
		first = zi.spans[0].start
	}
	var lastEnd int64
	for _, sp := range zi.spans {
		lastEnd = max(lastEnd, sp.end)
	}
	for _, g := range zi.gaps {
		if e.stopped {
			return stopped, nil
		}
		var class regionClass
		switch {
		case g.start == 0 && g.end == first:
			head := make([]byte, min(8, g.end))
			_, _ = src.ReadAt(head, 0)
			class = classifyPrefix(head)
		case g.start >= lastEnd:
			class = regionClass{RuleHiddenData, "data after the end of the archive"}
		default:
			class = regionClass{RuleHiddenData, "data in a gap between entries"}
		}
		oc, err := e.writeRegion(lv, io.NewSectionReader(src, g.start, g.end-g.start), g.start, arcPath, class)
		if err != nil || oc == stopped {
			return oc, err
		}
	}
	return done, nil
}
