package archive

import (
	"archive/zip"
	"bufio"
	"cmp"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
)

// extractZip extracts a zip archive.
func (e *extractor) extractZip(lv *level, src *os.File, arcPath string) (outcome, error) {
	fi, err := src.Stat()
	if err != nil {
		return stopped, fmt.Errorf("stat %s: %w", DisplayPath(arcPath), err)
	}
	size := fi.Size()
	// archive/zip reads the whole central directory into memory before
	// anything else: look at its size first.
	remaining := e.lim.MaxEntries - e.res.Entries
	maxDirBytes := int64(min(remaining, 1<<40))*1024 + 1<<20
	dir, err := scanZipDirectory(src, size, remaining, maxDirBytes)
	if err != nil {
		return stopped, fmt.Errorf("read %s: %w", DisplayPath(arcPath), err)
	}
	switch {
	case dir.records > uint64(remaining) || dir.count > remaining:
		e.add(RuleTooManyEntries, arcPath, fmt.Sprintf(
			"the package has more than %d entries in total; extraction stopped", e.lim.MaxEntries))
		e.stopped = true
		return stopped, nil
	case dir.bytes > maxDirBytes:
		return e.bomb(arcPath, fmt.Sprintf(
			"the zip central directory is larger than %d bytes (metadata bomb); extraction stopped", maxDirBytes))
	}
	zr, err := zip.NewReader(src, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if lv.tentative {
			return notArchive, nil
		}
		var sig [4]byte
		if _, rerr := src.ReadAt(sig[:], 0); rerr == nil && binary.LittleEndian.Uint32(sig[:]) == zipLocalSig {
			return e.extractZipLocal(lv, src, size, arcPath)
		}
		return e.readFailed(err, arcPath)
	}
	if name, ok := zipOverlap(zr, size); ok {
		return e.bomb(join(lv.dir, name), "zip entries overlap each other (overlapping-entry zip bomb); extraction stopped")
	}
	zi, err := indexZip(src, size, remaining)
	if err != nil {
		if isIOError(err) {
			return stopped, fmt.Errorf("read %s: %w", DisplayPath(arcPath), err)
		}
		return e.readFailed(err, arcPath)
	}
	for _, zf := range zr.File {
		m := zipMember(zf)
		oc, err := e.entry(lv, &m, arcPath)
		if err != nil || oc != done {
			return oc, err
		}
	}
	if zi.overlaps > 0 {
		e.add(RuleHiddenData, arcPath, fmt.Sprintf(
			"%d structures of the zip (entries, central directory, end records) overlap others; what the overlapping bytes mean depends on the reader, rebuild the archive", zi.overlaps))
	}
	if oc, err := e.zipRegions(lv, src, zi, arcPath); err != nil || oc == stopped {
		return oc, err
	}
	if lv.depth == 1 {
		e.res.Coverage.AccountedBytes = size
	}
	return done, nil
}

func zipMember(zf *zip.File) member {
	csize := int64(min(zf.CompressedSize64, math.MaxInt64))
	m := member{
		name:       zf.Name,
		size:       int64(min(zf.UncompressedSize64, math.MaxInt64)),
		csize:      csize,
		compressed: func() int64 { return csize },
		open:       zf.Open,
		method:     zf.Method,
	}
	mode := zf.Mode()
	switch {
	case mode.IsDir():
		m.kind = kindDir
		if zf.UncompressedSize64 != 0 {
			m.kind = kindCorruptDir
		}
	case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		m.kind = kindSpecial
	case zf.Flags&0x1 != 0:
		m.kind = kindEncrypted
	case zf.Method != zip.Store && zf.Method != zip.Deflate:
		m.kind = kindUnsupported
	case mode&fs.ModeSymlink != 0:
		m.kind = kindSymlink
		m.linkInData = true
	default:
		m.kind = kindFile
	}
	return m
}

// zipOverlap reports an entry whose data overlaps another's. Well-formed
// zips never do; overlapping entries are how the densest zip bombs reuse
// one compressed stream many times.
func zipOverlap(zr *zip.Reader, size int64) (string, bool) {
	type span struct {
		start, end int64
		name       string
	}
	spans := make([]span, 0, len(zr.File))
	for _, f := range zr.File {
		if f.CompressedSize64 == 0 {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			continue // reading the entry reports it
		}
		end := size + 1
		if f.CompressedSize64 <= uint64(size) {
			end = off + int64(f.CompressedSize64)
		}
		spans = append(spans, span{off, end, f.Name})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var end int64
	for i, s := range spans {
		if i > 0 && s.start < end {
			return s.name, true
		}
		end = max(end, s.end)
	}
	return "", false
}

// zipDirectory describes a zip's central directory.
type zipDirectory struct {
	// records is the declared number of entries.
	records uint64
	// count and bytes are the number and size of the central directory
	// headers archive/zip would read (at most: it may stop earlier).
	count int
	bytes int64
}

// Zip record signatures and sizes.
const (
	zipDirHeaderSig  = 0x02014b50
	zipDirEndSig     = 0x06054b50
	zipDir64LocSig   = 0x07064b50
	zipDir64EndSig   = 0x06064b50
	zipDirHeaderLen  = 46
	zipDirEndLen     = 22
	zipDir64LocLen   = 20
	zipDir64EndLen   = 56
	zipEndSearchSize = 65 * 1024
)

// scanZipDirectory finds the central directory the way archive/zip does and
// counts its headers without keeping them, stopping once maxCount or
// maxBytes is exceeded. A file that is not a zip gives a zero
// zipDirectory: archive/zip then reports it. Errors are I/O errors.
func scanZipDirectory(r io.ReaderAt, size int64, maxCount int, maxBytes int64) (zipDirectory, error) {
	var zd zipDirectory
	// Find the end of central directory record, as archive/zip's
	// readDirectoryEnd does.
	var buf []byte
	var endOff int64
	for i, n := range []int64{1024, zipEndSearchSize} {
		n = min(n, size)
		buf = make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return zd, err
		}
		if p := findZipDirEnd(buf); p >= 0 {
			buf = buf[p:]
			endOff = size - n + int64(p)
			break
		}
		if i == 1 || n == size {
			return zd, nil
		}
	}
	le := binary.LittleEndian
	records := uint64(le.Uint16(buf[10:]))
	dirSize := uint64(le.Uint32(buf[12:]))
	dirOff := uint64(le.Uint32(buf[16:]))
	if records == 0xffff || dirSize == 0xffff || dirOff == 0xffffffff {
		if endOff >= zipDir64LocLen {
			loc := make([]byte, zipDir64LocLen)
			if _, err := r.ReadAt(loc, endOff-zipDir64LocLen); err != nil {
				return zd, nil
			}
			if le.Uint32(loc) == zipDir64LocSig && le.Uint32(loc[4:]) == 0 && le.Uint32(loc[16:]) == 1 {
				p := int64(le.Uint64(loc[8:]))
				end := make([]byte, zipDir64EndLen)
				if _, err := r.ReadAt(end, p); err != nil || le.Uint32(end) != zipDir64EndSig {
					return zd, nil
				}
				endOff = p
				records = le.Uint64(end[32:])
				dirSize = le.Uint64(end[40:])
				dirOff = le.Uint64(end[48:])
			}
		}
	}
	if dirSize > math.MaxInt64 || dirOff > math.MaxInt64 {
		return zd, nil
	}
	zd.records = records
	base := endOff - int64(dirSize) - int64(dirOff)
	start := base + int64(dirOff)
	if start < 0 || start >= size {
		return zd, nil
	}
	starts := []int64{start}
	if base > 0 {
		// archive/zip falls back to a zero base offset.
		starts = append(starts, int64(dirOff))
	}
	for _, s := range starts {
		count, n := countZipHeaders(r, s, size, maxCount, maxBytes)
		zd.count = max(zd.count, count)
		zd.bytes = max(zd.bytes, n)
	}
	return zd, nil
}

// findZipDirEnd is archive/zip's findSignatureInBlock.
func findZipDirEnd(b []byte) int {
	for i := len(b) - zipDirEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == zipDirEndSig {
			n := int(binary.LittleEndian.Uint16(b[i+zipDirEndLen-2:]))
			if n+zipDirEndLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}

// countZipHeaders counts the central directory headers from off on, until
// one is not a header or a limit is exceeded.
func countZipHeaders(r io.ReaderAt, off, size int64, maxCount int, maxBytes int64) (int, int64) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, size-off), 64<<10)
	var hdr [zipDirHeaderLen]byte
	var count int
	var n int64
	for count <= maxCount && n <= maxBytes {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		if binary.LittleEndian.Uint32(hdr[:]) != zipDirHeaderSig {
			break
		}
		rest := int(binary.LittleEndian.Uint16(hdr[28:])) +
			int(binary.LittleEndian.Uint16(hdr[30:])) +
			int(binary.LittleEndian.Uint16(hdr[32:]))
		if _, err := br.Discard(rest); err != nil {
			break
		}
		count++
		n += int64(zipDirHeaderLen + rest)
	}
	return count, n
}

// extractZipLocal reads a zip that has no usable central directory (a
// region holding local entries no directory names, a zip cut short) the
// way streaming readers such as Java's ZipInputStream do: local header
// after local header from the start. Entries whose size is known only
// from a data descriptor are read when they are deflated (the stream ends
// itself); a stored one ends the walk. What follows the last entry is
// written out as a region.
func (e *extractor) extractZipLocal(lv *level, src *os.File, size int64, arcPath string) (outcome, error) {
	e.add(RuleCorrupt, arcPath, "the zip has no readable central directory; its entries were read from their local headers, as streaming readers do")
	le := binary.LittleEndian
	var hdr [zipLocalLen]byte
	off := int64(0)
	for off+zipLocalLen <= size && !e.stopped {
		if _, err := src.ReadAt(hdr[:], off); err != nil {
			return e.readFailed(err, arcPath)
		}
		if le.Uint32(hdr[:]) != zipLocalSig {
			break
		}
		flags, method := le.Uint16(hdr[6:]), le.Uint16(hdr[8:])
		csize, usize := uint64(le.Uint32(hdr[18:])), uint64(le.Uint32(hdr[22:]))
		nameLen, extraLen := int64(le.Uint16(hdr[26:])), int64(le.Uint16(hdr[28:]))
		if off+zipLocalLen+nameLen+extraLen > size {
			break
		}
		ne := make([]byte, nameLen+extraLen)
		if _, err := src.ReadAt(ne, off+zipLocalLen); err != nil {
			return e.readFailed(err, arcPath)
		}
		for x := ne[nameLen:]; len(x) >= 4; {
			id, sz := le.Uint16(x), int(le.Uint16(x[2:]))
			if 4+sz > len(x) {
				break
			}
			if f := x[4 : 4+sz]; id == zipExtraZip64 {
				for _, p := range []*uint64{&usize, &csize} {
					if *p == 0xffffffff && len(f) >= 8 {
						*p = le.Uint64(f)
						f = f[8:]
					}
				}
			}
			x = x[4+sz:]
		}
		name := string(ne[:nameLen])
		data := off + zipLocalLen + nameLen + extraLen
		streamed := flags&zipFlagDesc != 0 && csize == 0
		if streamed && method != zip.Deflate {
			break
		}
		if !streamed && csize > uint64(size-data) {
			break
		}
		n := int64(csize)
		if streamed {
			n = size - data
		}
		cr := &countReader{r: bufio.NewReaderSize(io.NewSectionReader(src, data, n), 64<<10)}
		var rd io.Reader = cr
		if method == zip.Deflate {
			rd = flate.NewReader(cr)
		}
		m := member{name: name, size: int64(min(usize, math.MaxInt64)), csize: -1,
			compressed: func() int64 { return cr.n }, method: method,
			open: func() (io.ReadCloser, error) { return io.NopCloser(rd), nil }}
		switch {
		case strings.HasSuffix(name, "/"):
			m.kind = kindDir
		case flags&0x1 != 0:
			m.kind = kindEncrypted
		case method != zip.Store && method != zip.Deflate:
			m.kind = kindUnsupported
		default:
			m.kind = kindFile
		}
		if streamed {
			m.size = 0
		}
		oc, err := e.entry(lv, &m, arcPath)
		if err != nil || oc != done {
			return oc, err
		}
		if streamed {
			// Reach the end of the deflate stream even if the entry was
			// skipped, to find the next header.
			if oc, err := e.discard(rd, &m, join(lv.dir, name)); err != nil || oc != done {
				return oc, err
			}
			off = data + cr.n
			var d [4]byte
			desc := int64(12)
			if _, err := src.ReadAt(d[:], off); err == nil && le.Uint32(d[:]) == zipDescSig {
				desc = 16
			}
			off += desc
		} else {
			off = data + n
		}
	}
	if off < size && !e.stopped {
		return e.writeRegion(lv, io.NewSectionReader(src, off, size-off), off, arcPath,
			regionClass{RuleHiddenData, "data after the last local entry of a zip without a central directory"})
	}
	return done, nil
}
