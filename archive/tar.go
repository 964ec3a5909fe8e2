package archive

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
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

// extractTar extracts a tar or tar.gz archive, streaming.
func (e *extractor) extractTar(lv *level, src *os.File, gz bool, arcPath string) (outcome, error) {
	cr := &countReader{r: bufio.NewReaderSize(src, 64<<10)}
	var r io.Reader = cr
	if gz {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return e.readFailed(err, arcPath)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		if err := e.ctx.Err(); err != nil {
			return stopped, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return e.tarTrailer(r, arcPath)
		}
		if err != nil {
			return e.readFailed(err, arcPath)
		}
		start := cr.n
		m := tarMember(hdr)
		m.compressed = func() int64 { return cr.n - start }
		m.open = func() (io.ReadCloser, error) { return io.NopCloser(tr), nil }
		oc, err := e.entry(lv, &m, arcPath)
		if err != nil || oc != done {
			return oc, err
		}
		// The data of a skipped entry is still decompressed to reach the
		// next header: bound that work like extraction.
		if oc, err := e.discard(tr, &m, join(lv.dir, m.name)); err != nil || oc != done {
			return oc, err
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
// fine, anything else (another archive, hidden data) is not extracted and
// so is reported. Reading to the end also verifies the gzip checksum.
func (e *extractor) tarTrailer(r io.Reader, arcPath string) (outcome, error) {
	var n int64
	for {
		if err := e.ctx.Err(); err != nil {
			return stopped, err
		}
		k, rerr := r.Read(e.buf)
		if !allZero(e.buf[:k]) {
			e.add(RuleCorrupt, arcPath, "there is data after the end of the tar archive, which is not extracted; remove it")
			return corrupt, nil
		}
		n += int64(k)
		if n > maxTrailer {
			e.add(RuleCorrupt, arcPath, fmt.Sprintf("there are more than %d bytes after the end of the tar archive, which are not extracted; remove them", maxTrailer))
			return corrupt, nil
		}
		if errors.Is(rerr, io.EOF) {
			return done, nil
		}
		if rerr != nil {
			return e.readFailed(rerr, arcPath)
		}
	}
}
