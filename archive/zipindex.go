package archive

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"slices"
)

// Local header and data descriptor signatures and sizes.
const (
	zipLocalSig    = 0x04034b50
	zipLocalLen    = 30
	zipDescSig     = 0x08074b50
	zipFlagDesc    = 0x8
	zipExtraZip64  = 0x0001
	maxZipIndexErr = 16
)

// zipSpan is a byte range [start, end) of a zip file that the zip's own
// index accounts for: an entry (local header, data, data descriptor), the
// central directory, the ZIP64 end record and locator, or the end record
// with its comment.
type zipSpan struct {
	start, end int64
	what       string
	// desc lists the possible lengths of a data descriptor that follows
	// end (entries with flag bit 3); resolved by indexZip.
	desc []int64
}

// zipRegion is a range of a zip file that no index structure accounts for.
type zipRegion struct {
	start, end int64
}

// zipIndex is the layout of a zip file as its last end record describes
// it.
type zipIndex struct {
	size int64
	// base is the offset the directory's offsets are relative to (the
	// length of a prefix that was prepended without adjusting them).
	base int64
	// entries is the number of central directory records read.
	entries int
	// spans are sorted by start; overlapping ones are merged into
	// overlaps.
	spans []zipSpan
	// gaps are the regions between and around the spans, sorted.
	gaps []zipRegion
	// overlaps counts spans that overlap an earlier one.
	overlaps int
}

// errNoZipEnd: no end of central directory record was found.
var errNoZipEnd = errors.New("no zip end record")

// indexZip walks a zip's end record, its central directory and the local
// header of every entry it names, the way archive/zip finds them, and
// returns which bytes of the file they account for. At most maxEntries
// directory records are read. Any error is errNoZipEnd or an I/O error
// from r; a malformed directory just ends the walk (what is not accounted
// for is a gap).
func indexZip(r io.ReaderAt, size int64, maxEntries int) (*zipIndex, error) {
	zi := &zipIndex{size: size}
	le := binary.LittleEndian
	var buf []byte
	var endOff int64 = -1
	for i, n := range []int64{1024, zipEndSearchSize} {
		n = min(n, size)
		buf = make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if p := findZipDirEnd(buf); p >= 0 {
			buf = buf[p:]
			endOff = size - n + int64(p)
			break
		}
		if i == 1 || n == size {
			return nil, errNoZipEnd
		}
	}
	if len(buf) < zipDirEndLen {
		return nil, errNoZipEnd
	}
	commentLen := int64(le.Uint16(buf[20:]))
	zi.add(endOff, endOff+zipDirEndLen+commentLen, "end record")
	records := uint64(le.Uint16(buf[10:]))
	dirSize := uint64(le.Uint32(buf[12:]))
	dirOff := uint64(le.Uint32(buf[16:]))
	dirEnd := endOff
	if records == 0xffff || dirSize == 0xffff || dirOff == 0xffffffff {
		if endOff >= zipDir64LocLen {
			loc := make([]byte, zipDir64LocLen)
			if _, err := r.ReadAt(loc, endOff-zipDir64LocLen); err == nil &&
				le.Uint32(loc) == zipDir64LocSig && le.Uint32(loc[4:]) == 0 && le.Uint32(loc[16:]) == 1 {
				p := le.Uint64(loc[8:])
				end := make([]byte, zipDir64EndLen)
				if p < uint64(size) {
					if _, err := r.ReadAt(end, int64(p)); err == nil && le.Uint32(end) == zipDir64EndSig {
						zi.add(endOff-zipDir64LocLen, endOff, "ZIP64 end locator")
						recLen := le.Uint64(end[4:])
						if recLen < uint64(size) {
							zi.add(int64(p), int64(p)+12+int64(recLen), "ZIP64 end record")
						}
						endOff = int64(p)
						dirEnd = endOff
						records = le.Uint64(end[32:])
						dirSize = le.Uint64(end[40:])
						dirOff = le.Uint64(end[48:])
					}
				}
			}
		}
	}
	// As archive/zip's readDirectoryEnd: the offsets are relative to a
	// base (a prefix prepended without adjusting them), unless a directory
	// header is found at the unadjusted offset.
	if dirSize > uint64(size) || dirOff > 1<<62 {
		zi.finish()
		return zi, nil
	}
	start := endOff - int64(dirSize)
	zi.base = start - int64(dirOff)
	if start < 0 || start >= size {
		zi.finish()
		return zi, nil
	}
	if zi.base > 0 && zi.sigAt(r, int64(dirOff), zipDirHeaderSig) {
		zi.base = 0
		start = int64(dirOff)
	}
	n, err := zi.walkDirectory(r, start, dirEnd, min(records, uint64(maxEntries)))
	if err != nil {
		return nil, err
	}
	if n > 0 {
		zi.add(start, start+n, "central directory")
	}
	zi.finish()
	return zi, nil
}

func (zi *zipIndex) add(start, end int64, what string) {
	start = max(0, min(start, zi.size))
	end = max(start, min(end, zi.size))
	if end > start {
		zi.spans = append(zi.spans, zipSpan{start: start, end: end, what: what})
	}
}

func (zi *zipIndex) sigAt(r io.ReaderAt, off int64, sig uint32) bool {
	var b [4]byte
	if off < 0 || off+4 > zi.size {
		return false
	}
	if _, err := r.ReadAt(b[:], off); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[:]) == sig
}

// walkDirectory reads at most records central directory headers from off
// on (not beyond limit) and adds a span for every entry whose local header
// is where the record says. It returns the bytes of directory read.
func (zi *zipIndex) walkDirectory(r io.ReaderAt, off, limit int64, records uint64) (int64, error) {
	le := binary.LittleEndian
	if limit <= off {
		limit = zi.size
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, off, limit-off), 64<<10)
	var hdr [zipDirHeaderLen]byte
	var n int64
	var local [zipLocalLen]byte
	var extra []byte
	for i := uint64(0); i < records; i++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			break
		}
		if le.Uint32(hdr[:]) != zipDirHeaderSig {
			break
		}
		flags := le.Uint16(hdr[8:])
		csize := uint64(le.Uint32(hdr[20:]))
		usize := uint64(le.Uint32(hdr[24:]))
		nameLen := int(le.Uint16(hdr[28:]))
		extraLen := int(le.Uint16(hdr[30:]))
		commentLen := int(le.Uint16(hdr[32:]))
		lh := uint64(le.Uint32(hdr[42:]))
		if _, err := br.Discard(nameLen); err != nil {
			break
		}
		extra = slices.Grow(extra[:0], extraLen)[:extraLen]
		if _, err := io.ReadFull(br, extra); err != nil {
			break
		}
		if _, err := br.Discard(commentLen); err != nil {
			break
		}
		n += int64(zipDirHeaderLen + nameLen + extraLen + commentLen)
		zi.entries++
		zip64 := false
		for e := extra; len(e) >= 4; {
			id, sz := le.Uint16(e), int(le.Uint16(e[2:]))
			if 4+sz > len(e) {
				break
			}
			f := e[4 : 4+sz]
			if id == zipExtraZip64 {
				zip64 = true
				for _, p := range []*uint64{&usize, &csize, &lh} {
					if *p == 0xffffffff && len(f) >= 8 {
						*p = le.Uint64(f)
						f = f[8:]
					}
				}
			}
			e = e[4+sz:]
		}
		if lh > uint64(zi.size) || csize > uint64(zi.size) {
			continue
		}
		start := zi.base + int64(lh)
		if start < 0 || start+zipLocalLen > zi.size {
			continue
		}
		if _, err := r.ReadAt(local[:], start); err != nil {
			if isIOError(err) {
				return n, err
			}
			continue
		}
		if le.Uint32(local[:]) != zipLocalSig {
			continue
		}
		dataEnd := start + zipLocalLen + int64(le.Uint16(local[26:])) + int64(le.Uint16(local[28:])) + int64(csize)
		sp := zipSpan{start: start, end: min(dataEnd, zi.size), what: "entry"}
		if flags&zipFlagDesc != 0 {
			// A data descriptor: with or without its signature, with 32
			// or (ZIP64) 64-bit sizes.
			if zi.sigAt(r, sp.end, zipDescSig) {
				sp.desc = []int64{16, 24}
			} else {
				sp.desc = []int64{12, 20}
			}
			if zip64 {
				sp.desc[0], sp.desc[1] = sp.desc[1], sp.desc[0]
			}
		}
		if sp.end > sp.start {
			zi.spans = append(zi.spans, sp)
		}
	}
	return n, nil
}

// finish sorts the spans, resolves data descriptor lengths (the one that
// reaches the next span exactly, else the first guess), counts overlaps
// and computes the gaps.
func (zi *zipIndex) finish() {
	slices.SortStableFunc(zi.spans, func(a, b zipSpan) int { return cmp.Compare(a.start, b.start) })
	for i := range zi.spans {
		sp := &zi.spans[i]
		if len(sp.desc) == 0 {
			continue
		}
		next := zi.size
		if i+1 < len(zi.spans) {
			next = zi.spans[i+1].start
		}
		d := sp.desc[0]
		for _, c := range sp.desc {
			if sp.end+c == next {
				d = c
				break
			}
		}
		sp.end = min(sp.end+d, zi.size)
		sp.desc = nil
	}
	var end int64
	for i, sp := range zi.spans {
		if i > 0 && sp.start < end {
			zi.overlaps++
		}
		if sp.start > end {
			zi.gaps = append(zi.gaps, zipRegion{end, sp.start})
		}
		end = max(end, sp.end)
	}
	if end < zi.size {
		zi.gaps = append(zi.gaps, zipRegion{end, zi.size})
	}
}

// accounted is the number of bytes the spans cover.
func (zi *zipIndex) accounted() int64 {
	var gaps int64
	for _, g := range zi.gaps {
		gaps += g.end - g.start
	}
	return zi.size - gaps
}
