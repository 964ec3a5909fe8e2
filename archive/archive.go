// Package archive extracts sellers' software packages (.zip, .tar,
// .tar.gz/.tgz) safely and within bounds, so that the other checks can read
// every byte of the package from disk.
//
// Every byte of a package is hostile. Extract never writes outside the
// destination directory (all writes go through an [os.Root], and entry names
// are checked before that), never creates links, device files or
// executable/setuid files, and stops at the configured [Limits]. Hostile or
// unreadable content is reported as findings (check [assetscan.CheckArchive],
// rule ids Rule*), never as errors: an error from Extract means the
// extraction itself could not run (context cancelled, disk full, destination
// unusable).
//
// What a member is, is decided by its content, never its name ([Sniff],
// [SniffHead], from the bytes captured while the member is written: a
// file is not read twice). Zips (ZIP64 and zips with a prefix included),
// tars, and gzip, bzip2, xz and zstd streams are unpacked at every depth,
// into a directory named after the member with a "!" appended, so that
// their members are reported as "lib/a.zip!/x.js". A compressed stream
// holding a tar is extracted as that tar ("a.tgz!/x.js"); holding anything
// else, it is decompressed to one file named after the stream without its
// compression suffix ("x.txt.gz!/x.txt", "logo.png!/logo.png"). 7z archives
// are recognised, not unpacked (RuleUnsupported). Documents and executables
// (PDF, OLE Office files, PE, ELF) are plain files, for engines that read
// them whole. Zip-based package formats analyzers read whole (.jar, .whl,
// ...: [ContainerName]) are kept on disk with File.Container set, and their
// members are extracted too.
//
// Every byte of a zip is accounted for: the end record, the central
// directory and the local header of every entry it names are walked, and
// what none of them covers (data before the first entry, in gaps, after
// the end record; an earlier zip concatenated in front; local entries the
// directory does not name) is written out as a region file
// ([RegionName]: `\region-0xSTART-0xEND`) that is scanned, and unpacked
// when it is itself an archive. The same holds for data after the end of a
// tar and after the last member of a gzip stream. [Result.Coverage] sums
// it up.
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Format is an archive container format.
type Format string

// Supported formats. FormatUnknown is anything else.
const (
	FormatUnknown Format = ""
	FormatZip     Format = "zip"
	FormatTar     Format = "tar"
	FormatTarGz   Format = "tar.gz"
)

// Rule ids of the findings Extract reports. All have Check
// assetscan.CheckArchive except RuleUnscannable (assetscan.CheckMalware).
const (
	// RuleTraversal: an entry name is absolute, has a drive letter, contains
	// NUL, or climbs out of the archive root with "..". The entry is skipped.
	RuleTraversal = "archive.traversal"
	// RuleLinkEscape: a symlink or hardlink points outside the archive root,
	// or an entry would be written through such a link. The entry is skipped.
	// Links that stay inside the root are skipped without a finding.
	RuleLinkEscape = "archive.link_escape"
	// RuleSpecialFile: a device node, fifo or socket. The entry is skipped.
	RuleSpecialFile = "archive.special_file"
	// RuleBomb: an entry or the whole package expands beyond the limits
	// (bytes, compression ratio), or zip entries overlap. Extraction stops.
	RuleBomb = "archive.bomb"
	// RuleTooManyEntries: more entries than Limits.MaxEntries. Extraction
	// stops.
	RuleTooManyEntries = "archive.too_many_entries"
	// RuleTooDeep: a nested archive deeper than Limits.MaxDepth. It is kept
	// as a regular file and not unpacked.
	RuleTooDeep = "archive.too_deep"
	// RuleCorrupt: a truncated or corrupt archive (bad header, checksum,
	// unexpected end, data after the end of a tar archive). That archive is
	// not read further; what was extracted stays.
	RuleCorrupt = "archive.corrupt"
	// RuleDuplicate: an entry maps to a path that already exists (twice the
	// same name, a file below a file, a name that collides with a nested
	// archive's directory). The later entry is skipped.
	RuleDuplicate = "archive.duplicate"
	// RuleUnsupported: the package is not a supported archive, or an entry
	// uses an unsupported zip compression method (the entry is skipped).
	RuleUnsupported = "archive.unsupported"
	// RuleBadName: an entry name longer than 4096 bytes, a path component
	// longer than 255 bytes, or a name that cannot be a file. The entry is
	// skipped.
	RuleBadName = "archive.bad_name"
	// RuleUnscannable (check assetscan.CheckMalware): an encrypted zip entry,
	// which nothing can inspect. The entry is skipped.
	RuleUnscannable = "malware.unscannable"
	// RuleHiddenData: bytes of an archive that no entry of its index
	// accounts for and that are not a recognised benign shape: data before
	// the first zip entry, in a gap between entries, after the end record
	// (an earlier concatenated zip, local entries the central directory
	// does not name), after the end of a tar or the last gzip member. The
	// message gives the byte offsets; the bytes are written out as a
	// region file (RegionName) and scanned, and unpacked if they are an
	// archive. Meant to fail under the default policy.
	RuleHiddenData = "archive.hidden_data"
	// RulePrefixScript (informational): a zip is preceded by a launch
	// script ("#!", a Spring Boot fully executable jar). The script is
	// written out as a region file and scanned.
	RulePrefixScript = "archive.prefix_script"
	// RuleSFXStub (informational): a zip is preceded by an executable stub
	// (PE or ELF: a self-extracting archive). The stub is written out as a
	// region file and scanned.
	RuleSFXStub = "archive.sfx_stub"
)

// FormatFromName returns the format an allowed file name claims (.zip,
// .tar, .tar.gz, .tgz; case-insensitive), or FormatUnknown.
func FormatFromName(name string) Format {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return FormatTarGz
	case strings.HasSuffix(n, ".tar"):
		return FormatTar
	case strings.HasSuffix(n, ".zip"):
		return FormatZip
	}
	return FormatUnknown
}

// Detect sniffs the format of the file at path from its content: a zip
// (as Sniff finds it, a zip with a prefix included), a gzip stream holding
// a tar archive, or a tar header (ustar, GNU or v7) with a valid checksum.
// The file name is not looked at. Content that is none of these is
// FormatUnknown; an error means the file could not be read.
func Detect(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return FormatUnknown, fmt.Errorf("detect: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return FormatUnknown, fmt.Errorf("detect: %w", err)
	}
	k, err := Sniff(f, fi.Size())
	if err != nil {
		return FormatUnknown, fmt.Errorf("detect: %w", err)
	}
	if k == KindZip {
		return FormatZip, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return FormatUnknown, fmt.Errorf("detect: %w", err)
	}
	return detect(f)
}

// detectLimit bounds how much compressed input Detect reads to find the
// first tar header inside a gzip stream.
const detectLimit = 1 << 20

func detect(r io.Reader) (Format, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, detectLimit), 4096)
	head, err := br.Peek(1024)
	if err != nil && !errors.Is(err, io.EOF) {
		return FormatUnknown, fmt.Errorf("detect: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return FormatZip, nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b, 8}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			if isIOError(err) {
				return FormatUnknown, fmt.Errorf("detect: %w", err)
			}
			return FormatUnknown, nil
		}
		var blk [1024]byte
		n, err := io.ReadFull(zr, blk[:])
		if err != nil && isIOError(err) {
			return FormatUnknown, fmt.Errorf("detect: %w", err)
		}
		if isTarHeader(blk[:n]) {
			return FormatTarGz, nil
		}
		return FormatUnknown, nil
	case isTarHeader(head):
		return FormatTar, nil
	}
	return FormatUnknown, nil
}

// isTarHeader reports whether b starts with a tar header block with a valid
// checksum, or with the two zero blocks of an empty tar archive.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	blk := b[:512]
	if allZero(blk) {
		return len(b) >= 1024 && allZero(b[512:1024])
	}
	field := strings.Trim(string(blk[148:156]), " \x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil || field == "" {
		return false
	}
	// The checksum is the sum of the header bytes with the checksum field
	// taken as spaces; some old tars summed signed bytes.
	var unsigned, signed int64
	for i, c := range blk {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// isIOError reports whether err is an operating system error (EIO, ...)
// rather than a complaint about the content of an archive. (Not every
// *fs.PathError is: reading at a negative offset, which a hostile zip
// can ask for, is one too.)
func isIOError(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}

// Limits bound an extraction. They apply to the whole package: bytes and
// entries are summed across all nesting levels. Every field must be
// positive; start from DefaultLimits.
type Limits struct {
	// MaxExpandedBytes is the most bytes written to disk in total, across
	// all levels (a nested archive's own bytes count, and so do its
	// members'). The data of skipped tar entries, which is decompressed
	// but not written, counts too.
	MaxExpandedBytes int64
	// MaxEntries is the most archive entries (files, directories, links,
	// ...) in total, across all levels.
	MaxEntries int
	// MaxDepth is the deepest nested archive that is unpacked; the package
	// itself is depth 1.
	MaxDepth int
	// MaxRatio is the largest uncompressed/compressed ratio of one entry,
	// applied to entries that expand beyond 1 MiB.
	MaxRatio float64
	// MaxEntryBytes is the largest size of one extracted file.
	MaxEntryBytes int64
}

// Default limits.
const (
	DefaultMaxExpandedBytes = 64 << 30
	DefaultMaxEntries       = 1_000_000
	DefaultMaxDepth         = 12
	DefaultMaxRatio         = 1000
	DefaultMaxEntryBytes    = 64 << 30
)

// ratioFloor is the size above which MaxRatio applies.
const ratioFloor = 1 << 20

// DefaultLimits returns the default limits: 64 GiB expanded, 1,000,000
// entries, depth 12, ratio 1000, 64 GiB per file.
func DefaultLimits() Limits {
	return Limits{
		MaxExpandedBytes: DefaultMaxExpandedBytes,
		MaxEntries:       DefaultMaxEntries,
		MaxDepth:         DefaultMaxDepth,
		MaxRatio:         DefaultMaxRatio,
		MaxEntryBytes:    DefaultMaxEntryBytes,
	}
}

// Validate reports every limit that is not usable: all must be positive and
// MaxRatio must be a finite number of at least 1.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxExpandedBytes <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxExpandedBytes must be positive, got %d", l.MaxExpandedBytes))
	}
	if l.MaxEntries <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxEntries must be positive, got %d", l.MaxEntries))
	}
	if l.MaxDepth <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxDepth must be positive, got %d", l.MaxDepth))
	}
	if !(l.MaxRatio >= 1) || math.IsInf(l.MaxRatio, 1) {
		errs = append(errs, fmt.Errorf("limits: MaxRatio must be a finite number >= 1, got %v", l.MaxRatio))
	}
	if l.MaxEntryBytes <= 0 {
		errs = append(errs, fmt.Errorf("limits: MaxEntryBytes must be positive, got %d", l.MaxEntryBytes))
	}
	return errors.Join(errs...)
}
