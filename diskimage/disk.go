package diskimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// Disk is a raw disk image opened read-only, with the file systems that
// could be read.
type Disk struct {
	f     *os.File
	cr    *countingReaderAt // d.f, counted: every read of the image goes through it
	exp   *exporter         // nil unless Options.ExportDir
	fss   []FileSystem
	mnts  []*safeFS
	root  int             // index into fss, -1 when none
	bad   map[string]bool // directories reported unreadable by Open (walk paths)
	files int
	bytes int64
	// windows: the root file system is a Windows installation (NTFS).
	windows bool
	// creds are the Windows credential findings (check account).
	creds []assetscan.Finding
	// walked lists, per file system, the regular files Open's walk found
	// readable, in walk order, so that Source need not list directories
	// again; nil when there were more than maxRemembered.
	walked [][]*entry
}

// maxRemembered bounds the file entries Open keeps for Source (a few
// hundred bytes each, with the inode; XFS entries hold the library's
// inode too); past it Source walks the directories again.
const maxRemembered = 200_000

// FileSystem is one readable file system of a disk.
type FileSystem struct {
	// Name is the partition, as Linux numbers them: "p1" (GPT entry or MBR
	// slot 1), "p5" (first MBR logical partition), or "disk" for a file
	// system on the whole disk.
	Name string
	// Type is "ext2", "ext3", "ext4" or "xfs".
	Type string
	// Label is the GPT partition name ("" for MBR).
	Label string
	// FS is the file system, read-only. It implements fs.ReadDirFS,
	// fs.StatFS and fs.ReadLinkFS; symlinks are followed inside the file
	// system (absolute targets start at its root, ".." stops there), at
	// most 40 hops (XFS: only targets stored in the inode, up to a few
	// hundred bytes, can be read; longer ones fail with an error wrapping
	// errors.ErrUnsupported). Errors caused by corrupt content wrap
	// ErrCorrupt. Safe for concurrent use (calls are serialised per file
	// system).
	FS fs.FS
}

// Open reads the partition table of the raw disk image at path (GPT, MBR
// with logical partitions, or a file system on the whole disk) and opens
// every ext2/3/4 and XFS file system in-process, read-only, then walks
// their directory trees once (names and sizes, no content) to find
// corruption early. Partition names (GPT labels) do not matter: every
// partition is probed by content. ext2/3/4 is read by this package's own
// reader (inode-based, bounded); XFS by the library trivy uses, behind a
// guard (see xfsFS).
//
// Everything that cannot be read becomes a finding with the partition as
// Path: LVM (type 0x8e, the GPT LVM type or a LABELONE label), LUKS,
// software RAID, btrfs, unknown or corrupt file systems, unsupported ext4
// features (encryption, compression, meta_bg, a journal needing recovery, ...),
// unreadable directories, more than 5,000,000 entries or 256 levels
// (RuleUnreadable), files claiming more bytes than their whole file system
// (RuleUnreadable; Source skips them); EFI system (FAT), BIOS boot and swap partitions
// (RulePartitionSkipped). A disk without a readable root file system
// (see RootFS) always gets a RuleUnreadable finding: an image is never
// passed because nothing could be read.
//
// The Disk is returned whenever err is nil, findings or not: the caller
// may still scan what was readable. Errors mean the file could not be
// read at all, is a container that needs Prepare (ErrNotRaw), or ctx
// ended. Close the Disk when done.
func Open(ctx context.Context, path string) (*Disk, []assetscan.Finding, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options: with opt.ExportDir, the same single walk
// also copies the files package and secret scanners need (see Options,
// Wanted); a wanted file that cannot be read is reported like any other.
// Errors also come from writing the export (disk full).
func OpenWith(ctx context.Context, path string, opt Options) (*Disk, []assetscan.Finding, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	d := &Disk{f: f, cr: &countingReaderAt{r: f}, root: -1, bad: map[string]bool{}}
	if d.exp, err = newExporter(opt); err != nil {
		f.Close()
		return nil, nil, err
	}
	fl, err := d.open(ctx, st.Size())
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, fl, nil
}

func (d *Disk) open(ctx context.Context, size int64) ([]assetscan.Finding, error) {
	h, err := sniff(d.cr, size)
	if err != nil {
		return nil, fmt.Errorf("diskimage: %w", err)
	}
	var fl findingList
	if h.format != FormatRaw {
		if len(h.findings) == 0 {
			return nil, fmt.Errorf("%w: %s", ErrNotRaw, h.format)
		}
		for _, x := range h.findings {
			fl.add(x)
		}
		fl.add(finding(RuleUnreadable, "", "no readable root file system: the image content was not inspected"))
		return fl.result(), nil
	}

	whole := partition{name: "disk", off: 0, len: size}
	res, err := probe(d.cr, whole)
	if err != nil {
		return nil, fmt.Errorf("diskimage: %w", err)
	}
	var parts []partition
	if res.kind == probeExt || res.kind == probeXFS || res.kind == probeNTFS || (res.kind == probeUnreadable && res.known()) {
		parts = []partition{whole}
	} else {
		var table bool
		parts, table, err = readPartitions(d.cr, size, &fl)
		if err != nil {
			return nil, fmt.Errorf("diskimage: read partition table: %w", err)
		}
		if !table {
			parts = nil
			if res.kind == probeSkip {
				fl.add(finding(RulePartitionSkipped, "disk", "whole disk: "+res.msg))
			} else {
				fl.add(finding(RuleUnreadable, "", "no partition table and no supported file system found"))
			}
		}
	}

	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res := res
		if p != whole {
			if res, err = probe(d.cr, p); err != nil {
				return nil, fmt.Errorf("diskimage: %w", err)
			}
		}
		switch res.kind {
		case probeSkip:
			fl.add(finding(RulePartitionSkipped, p.name, "partition "+p.describe()+": "+res.msg))
			continue
		case probeUnreadable:
			fl.add(finding(RuleUnreadable, p.name, "partition "+p.describe()+": "+res.msg))
			continue
		}
		s, err := mountFS(d.cr, p, res)
		if err != nil {
			if ioErr(err) {
				return nil, fmt.Errorf("diskimage: %w", err)
			}
			fl.add(finding(RuleUnreadable, p.name, "partition "+p.describe()+": corrupt "+res.fsType+" file system: its content was not inspected"))
			continue
		}
		d.fss = append(d.fss, FileSystem{Name: p.name, Type: res.fsType, Label: p.label, FS: s})
		d.mnts = append(d.mnts, s)
	}

	// One walk over the names: corruption, loops and absurd counts become
	// findings now rather than errors in the middle of a check.
	var winCands []winCandidate
	remembered := 0
	d.walked = make([][]*entry, len(d.mnts))
	for i, s := range d.mnts {
		prefix := d.prefix(i)
		where := "partition " + d.fss[i].Name
		if d.fss[i].Name == "disk" {
			where = "file system"
		}
		w := &walker{
			ctx: ctx, s: s,
			visit: func(e *entry) error {
				if !e.mode.IsRegular() {
					return nil
				}
				if s.tooBig(e) {
					fl.add(finding(RuleUnreadable, prefix+e.path, where+": file /"+printable(e.path, 200)+" claims "+humanBytes(e.size)+", more than its whole file system (corrupt, or a huge sparse file): not inspected"))
					return nil
				}
				// Map its blocks now (no content read): a corrupt block
				// map is a finding, and Source skips the file.
				f, err := s.openEntry(e)
				if err == nil && d.exp != nil {
					// The single read of this file's content when it is
					// wanted: Source streams the copy.
					err = d.exp.export(i, d.fss[i].Name, e, scanner.ContextReader(ctx, f))
					if err != nil && !errors.Is(err, ErrCorrupt) {
						return err
					}
				}
				if err != nil {
					d.bad[badKey(i, e.path)] = true
					fl.add(finding(RuleUnreadable, prefix+e.path, where+": file /"+printable(e.path, 200)+" cannot be read (corrupt file system"+reason(err)+"): not inspected"))
					return nil
				}
				d.files++
				d.bytes += e.size
				if d.walked != nil {
					if remembered++; remembered > maxRemembered {
						d.walked = nil
					} else {
						d.walked[i] = append(d.walked[i], e)
					}
				}
				if d.fss[i].Type == "ntfs" && len(winCands) < maxWinCandidates && windowsCandidate(e.path) {
					winCands = append(winCands, winCandidate{fs: i, path: e.path, size: e.size})
				}
				return nil
			},
			dirErr: func(dir *entry, err error) error {
				if ioErr(err) {
					return err
				}
				d.bad[badKey(i, dir.path)] = true
				msg := where + ": directory /" + printable(dir.path, 200) + " cannot be read (corrupt file system" + reason(err) + "): its content was not inspected"
				if errors.Is(err, ErrTooManyFiles) {
					msg = where + ": directories nested more than " + strconv.Itoa(maxDepth) + " levels deep (a loop?) at /" + printable(dir.path, 200) + ": not inspected further"
				}
				fl.add(finding(RuleUnreadable, prefix+dir.path, msg))
				return nil
			},
			anomaly: func(p, msg string) {
				fl.add(finding(RuleUnreadable, prefix+p, where+": "+msg+" (corrupt file system): not inspected"))
			},
		}
		if err := w.dir(s.top, 0); err != nil {
			if errors.Is(err, ErrTooManyFiles) {
				fl.add(finding(RuleUnreadable, d.fss[i].Name, where+": more than "+strconv.Itoa(maxEntries)+" files and directories: not all were inspected"))
				continue
			}
			return nil, fmt.Errorf("diskimage: %w", err)
		}
	}

	if x := d.exp; x != nil && x.stats.Skipped > 0 {
		fl.add(finding(RuleUnreadable, "", fmt.Sprintf("%d files (from %s on) were not copied out for package and secret scanning: more than %s of package metadata, executables and configuration; they were inspected for malware only",
			x.stats.Skipped, printable(x.skipped, 200), humanBytes(x.max))))
	}
	for i, s := range d.mnts {
		if s.isRegular("etc/os-release") || s.isRegular("usr/lib/os-release") || s.isRegular("etc/passwd") {
			d.root = i
			break
		}
	}
	if d.root < 0 {
		for i, s := range d.mnts {
			if d.fss[i].Type == "ntfs" && windowsInstalled(s) {
				d.root, d.windows = i, true
				break
			}
		}
	}
	switch {
	case len(d.mnts) == 0:
		fl.add(finding(RuleUnreadable, "", "no readable file system (ext2/3/4, XFS or NTFS) on the disk: the image content was not inspected"))
	case d.root < 0:
		fl.add(finding(RuleUnreadable, "", "no operating system root file system (with etc/os-release or etc/passwd, or a Windows installation with Windows/System32/config) on the disk: the image could not be inspected as a VM image"))
	}
	d.creds = d.windowsCredentials(winCands)
	return fl.result(), nil
}

// known reports whether the probe recognised a signature (as opposed to
// finding nothing it knows).
func (r probeResult) known() bool {
	return r.kind != probeUnreadable || (r.msg != msgNoFS && r.msg != msgZeros)
}

// ioErr reports whether err stops the work rather than describing the
// content. (Read errors of the disk file inside the reader libraries cannot
// be told apart from content errors: they become findings.)
func ioErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// reason names a specific corruption for a finding's message ("" when
// there is nothing more specific to say).
func reason(err error) string {
	switch {
	case errors.Is(err, errInlineTooBig):
		return ": its inline data is larger than its inode"
	case errors.Is(err, errBadInline):
		return ": its inline data attribute is malformed"
	}
	return ""
}

func badKey(fs int, p string) string { return strconv.Itoa(fs) + ":" + p }

// Close releases the disk file. The file systems cannot be read after.
func (d *Disk) Close() error {
	if d.exp != nil {
		_ = d.exp.root.Close()
	}
	return d.f.Close()
}

// FileSystems returns the readable file systems, in partition order.
func (d *Disk) FileSystems() []FileSystem {
	return append([]FileSystem(nil), d.fss...)
}

// RootFS returns the operating system's root file system: the first
// readable file system (in partition order) holding etc/os-release,
// usr/lib/os-release or etc/passwd as regular files (symlinks followed),
// else the first NTFS file system holding a Windows installation
// (Windows/System32/config/SYSTEM or SOFTWARE, any case; see Windows);
// nil when there is none.
func (d *Disk) RootFS() fs.FS {
	if d.root < 0 {
		return nil
	}
	return d.fss[d.root].FS
}

// Windows reports whether RootFS is a Windows installation (NTFS). Linux
// account checks find nothing there; WindowsCredentials has what was
// checked instead.
func (d *Disk) Windows() bool { return d.windows }

// WindowsCredentials returns the credential material found on the disk's
// NTFS file systems: setup answer files holding a password
// (RuleWindowsAnswerPassword, check account) and private key or
// certificate store files (RuleWindowsKeyFile, check secret), with
// Source's paths. The
// SAM and other registry hives are normal and not reported.
func (d *Disk) WindowsCredentials() []assetscan.Finding {
	return append([]assetscan.Finding(nil), d.creds...)
}

// RootPrefix is the prefix Source puts before paths of the root file
// system ("p2/", or "" when the disk has a single readable file system),
// for checks that report paths found through RootFS.
func (d *Disk) RootPrefix() string {
	if d.root < 0 {
		return ""
	}
	return d.prefix(d.root)
}

// Stats returns the regular files and their total size seen by Open's walk.
func (d *Disk) Stats() (files int, bytes int64) {
	return d.files, d.bytes
}

func (d *Disk) prefix(i int) string {
	if len(d.fss) <= 1 {
		return ""
	}
	return d.fss[i].Name + "/"
}

// Source returns a FileSource over every regular file of every readable
// file system, in partition order and then by path, names sorted.
//
// Paths are relative to the file system's root ("usr/bin/x") when the disk
// has a single readable file system, and prefixed with the partition name
// ("p1/usr/bin/x") when it has several, so that the same path never names
// two files. File.DiskPath is empty: content is streamed from the disk
// image (bounded memory), and the reader honours ctx. Symlinks, devices,
// fifos and sockets are not walked. Directories Open reported unreadable
// and files Open reported unreadable are skipped; any other read failure
// stops the walk with an error wrapping ErrCorrupt (or ErrTooManyFiles,
// errors.ErrUnsupported).
func (d *Disk) Source() scanner.FileSource {
	return source{d}
}

type source struct{ d *Disk }

func (s source) Walk(ctx context.Context, fn func(f scanner.File, r io.Reader) error) error {
	d := s.d
	for i, m := range d.mnts {
		prefix := d.prefix(i)
		visit := func(e *entry) error {
			if !e.mode.IsRegular() || m.tooBig(e) || d.bad[badKey(i, e.path)] {
				return nil // reported by Open
			}
			if d.exp != nil {
				if name, ok := d.exp.copies[badKey(i, e.path)]; ok {
					c, err := d.exp.root.Open(name)
					if err != nil {
						return fmt.Errorf("diskimage: %s%s: exported copy: %w", prefix, e.path, err)
					}
					defer c.Close()
					return fn(scanner.File{Path: prefix + e.path, Size: e.size}, scanner.ContextReader(ctx, c))
				}
			}
			f, err := m.openEntry(e)
			if err != nil {
				return fmt.Errorf("diskimage: %s%s: %w", prefix, e.path, err)
			}
			return fn(scanner.File{Path: prefix + e.path, Size: e.size}, scanner.ContextReader(ctx, f))
		}
		if d.walked != nil {
			// The files Open's walk found, in the same order: no directory
			// or inode is read again.
			for _, e := range d.walked[i] {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := visit(e); err != nil {
					return err
				}
			}
			continue
		}
		w := &walker{
			ctx: ctx, s: m, visit: visit,
			dirErr: func(dir *entry, err error) error {
				if d.bad[badKey(i, dir.path)] {
					return nil
				}
				return fmt.Errorf("diskimage: %s%s: %w", prefix, dir.path, err)
			},
		}
		if err := w.dir(m.top, 0); err != nil {
			return err
		}
	}
	return nil
}

// walker walks one file system depth-first, names sorted, without
// following symlinks, within maxEntries and maxDepth.
type walker struct {
	ctx     context.Context
	s       *safeFS
	entries int
	visit   func(e *entry) error
	// dirErr decides about a directory that cannot be listed (or is too
	// deep): nil skips it.
	dirErr func(dir *entry, err error) error
	// anomaly reports invalid or duplicate names and directory cycles
	// (nil: ignore).
	anomaly func(p, msg string)
	// dirs holds the inode numbers of the directories walked (readers that
	// know them: ext): a directory reached twice is a cycle (or a hard
	// link to a directory, which ext does not allow) and is not walked
	// again.
	dirs map[uint64]bool
}

func (w *walker) dir(dir *entry, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if depth > maxDepth {
		return w.dirErr(dir, fmt.Errorf("%w: deeper than %d levels", ErrTooManyFiles, maxDepth))
	}
	if dir.ino != 0 {
		if w.dirs == nil {
			w.dirs = map[uint64]bool{}
		}
		w.dirs[dir.ino] = true
	}
	list, err := w.s.listAll(dir)
	if err != nil {
		return w.dirErr(dir, err)
	}
	prev := ""
	for _, e := range list {
		if !validName(e.name) {
			if w.anomaly != nil {
				w.anomaly(dir.path, "directory /"+printable(dir.path, 200)+" has an entry with an invalid name")
			}
			continue
		}
		if e.name == prev {
			if w.anomaly != nil {
				w.anomaly(e.path, "directory /"+printable(dir.path, 200)+" lists "+printable(e.name, 100)+" twice")
			}
			continue
		}
		prev = e.name
		if w.entries++; w.entries > maxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooManyFiles, maxEntries)
		}
		if e.IsDir() {
			if e.ino != 0 && w.dirs[e.ino] {
				if w.anomaly != nil {
					w.anomaly(e.path, "directory /"+printable(e.path, 200)+" is a directory already walked (inode "+
						strconv.FormatUint(e.ino, 10)+"): a directory cycle")
				}
				continue
			}
			if err := w.dir(e, depth+1); err != nil {
				return err
			}
			continue
		}
		if err := w.visit(e); err != nil {
			return err
		}
	}
	return nil
}
