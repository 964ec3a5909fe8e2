package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxTrailer is how much zero padding may follow the end of a tar archive
// (tar pads to its record size, 10 KiB by default).
const maxTrailer = 16 << 20

// countReader counts the bytes consumed from a buffered file. It is an
// io.ByteReader, so a gzip reader on top of it reads only what it decodes
// (no read-ahead buffer of its own): the compressed size of an entry is
// measured exactly.
type countReader struct {
	r *bufio.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// extractTar extracts a tar archive, streaming.
func (e *extractor) extractTar(lv *level, src *os.File, arcPath string) (outcome, error) {
	cr := &countReader{r: bufio.NewReaderSize(src, 64<<10)}
	oc, err := e.tarEntries(lv, cr, cr, arcPath)
	if err == nil && oc == done && lv.depth == 1 {
		e.res.Coverage.AccountedBytes = cr.n
	}
	return oc, err
}

// offsetReader counts the bytes read through it.
type offsetReader struct {
	r io.Reader
	n int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.n += int64(n)
	return n, err
}

// tarEntries extracts the tar archive read from src (the file itself, or
// a decompressed stream); cr counts the bytes read from the file, for
// compression ratios.
func (e *extractor) tarEntries(lv *level, src io.Reader, cr *countReader, arcPath string) (outcome, error) {
	r := &offsetReader{r: src}
	tr := tar.NewReader(r)
	for {
		if err := e.ctx.Err(); err != nil {
			return stopped, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return e.tarTrailer(lv, r, arcPath)
		}
		if err != nil {
			return e.readFailed(err, arcPath)
		}
		start := cr.n
		m := tarMember(hdr)
		m.compressed = func() int64 { return cr.n - start }
		m.open = func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }
		if lv.depth == 1 && e.release != nil {
			// Every byte read so far is on disk once a chunk is written:
			// a 1 GB member must not wait for its end to free its source.
			m.written = func() { e.release.upTo(cr.n) }
		}
		oc, err := e.entry(lv, &m, arcPath)
		if err != nil || oc != done {
			return oc, err
		}
		// The data of a skipped entry is still decompressed to reach the
		// next header: bound that work like extraction.
		if oc, err := e.discard(tr, &m, join(lv.dir, m.name)); err != nil || oc != done {
			return oc, err
		}
		if lv.depth == 1 {
			// Every byte read so far belongs to an entry that is done:
			// written out, or refused with a finding.
			e.release.upTo(cr.n)
		}
	}
}

func tarMember(hdr *tar.Header) member {
	m := member{name: hdr.Name, size: hdr.Size, csize: -1, link: hdr.Linkname}
	switch hdr.Typeflag {
	case tar.TypeDir, 'D': // 'D': GNU dump directory
		m.kind = kindDir
	case tar.TypeSymlink:
		m.kind = kindSymlink
	case tar.TypeLink:
		m.kind = kindHardlink
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		m.kind = kindSpecial
	case tar.TypeXGlobalHeader, 'V': // 'V': GNU volume label
		m.kind = kindMeta
	default:
		// Regular files, contiguous files, GNU sparse files, and (as POSIX
		// asks) unknown types: their data is extracted and scanned.
		m.kind = kindFile
	}
	return m
}

// discard reads what is left of an entry's data, bounded by the limits.
func (e *extractor) discard(r io.Reader, m *member, raw string) (outcome, error) {
	var n int64
	for {
		if err := e.ctx.Err(); err != nil {
			return stopped, err
		}
		k, rerr := r.Read(e.buf)
		n += int64(k)
		e.skipped += int64(k)
		switch {
		case n > e.lim.MaxEntryBytes:
			return e.bomb(raw, fmt.Sprintf("the entry expands to more than the %d bytes allowed for one file; extraction stopped", e.lim.MaxEntryBytes))
		case e.budget() < 0:
			return e.bomb(raw, fmt.Sprintf("the package expands to more than %d bytes; extraction stopped", e.lim.MaxExpandedBytes))
		case n > ratioFloor && e.ratioExceeded(n, m.compressed()):
			return e.bomb(raw, e.ratioMsg(n, m.compressed()))
		}
		if errors.Is(rerr, io.EOF) {
			return done, nil
		}
		if rerr != nil {
			return e.readFailed(rerr, raw)
		}
	}
}

// tarTrailer reads what follows the end of a tar archive: zero padding is
// fine, anything else (another archive, hidden data) is written out as a
// region (RuleHiddenData) from the first non-zero chunk on. Reading to the
// end also verifies the gzip checksum.
func (e *extractor) tarTrailer(lv *level, r *offsetReader, arcPath string) (outcome, error) {
	trailer := r.n
	for {
		if err := e.ctx.Err(); err != nil {
			return stopped, err
		}
		start := r.n
		k, rerr := r.Read(e.buf)
		if !allZero(e.buf[:k]) {
			first := bytes.Clone(e.buf[:k])
			var rest io.Reader = r
			if rerr != nil {
				rest = eofReader{rerr}
			}
			return e.writeRegion(lv, io.MultiReader(bytes.NewReader(first), rest), start, arcPath,
				regionClass{RuleHiddenData, "data after the end of the tar archive (offsets in the tar stream)"})
		}
		if r.n-trailer > maxTrailer {
			// A bounded stretch of zeros: what may follow is read as a region.
			return e.writeRegion(lv, r, r.n, arcPath,
				regionClass{RuleHiddenData, "data after the end of the tar archive (offsets in the tar stream)"})
		}
		if errors.Is(rerr, io.EOF) {
			return done, nil
		}
		if rerr != nil {
			return e.readFailed(rerr, arcPath)
		}
	}
}

// eofReader returns err (io.EOF, or the error that ended a read).
type eofReader struct{ err error }

func (r eofReader) Read([]byte) (int, error) { return 0, r.err }
