package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// zstdMaxWindow bounds the memory a zstd frame may ask for.
const zstdMaxWindow = 128 << 20

// gzipMembers reads concatenated gzip members as one stream, like gzip(1).
// Bytes after the last member that do not start another member are not an
// error: trailing reports where they start (an offset in the compressed
// input) so that they are written out and scanned as a region.
type gzipMembers struct {
	cr       *countReader
	zr       *gzip.Reader
	trailing int64 // -1 until trailing bytes are found
}

func newGzipMembers(cr *countReader) (*gzipMembers, error) {
	zr, err := gzip.NewReader(cr)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return &gzipMembers{cr: cr, zr: zr, trailing: -1}, nil
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if !errors.Is(err, io.EOF) {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		next, perr := g.cr.r.Peek(3)
		if len(next) == 0 && errors.Is(perr, io.EOF) {
			return 0, io.EOF
		}
		if !bytes.Equal(next, magicGzip) {
			g.trailing = g.cr.n
			return 0, io.EOF
		}
		if err := g.zr.Reset(g.cr); err != nil {
			return 0, err
		}
		g.zr.Multistream(false)
	}
}

func (g *gzipMembers) Close() error { return g.zr.Close() }

// decompress returns a reader of the decompressed stream of kind k read
// from cr. Close releases decoder resources.
func decompress(k Kind, cr *countReader) (io.ReadCloser, error) {
	switch k {
	case KindGzip:
		return newGzipMembers(cr)
	case KindBzip2:
		return io.NopCloser(bzip2.NewReader(cr)), nil
	case KindXz:
		xr, err := xz.NewReader(cr)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(xr), nil
	case KindZstd:
		zr, err := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("not a compressed stream: %s", k)
}

// streamSuffixes are the name suffixes stripped to name a decompressed
// stream, and what replaces them.
var streamSuffixes = []struct{ suffix, repl string }{
	{".tgz", ".tar"}, {".tbz2", ".tar"}, {".tbz", ".tar"}, {".txz", ".tar"}, {".tzst", ".tar"},
	{".gz", ""}, {".gzip", ""}, {".bz2", ""}, {".xz", ""}, {".zst", ""}, {".zstd", ""},
}

// streamName is the name of the file a compressed stream named name
// decompresses to: the name without its compression suffix ("a.txt.gz" →
// "a.txt", "a.tgz" → "a.tar"), or the name itself when it has none
// ("logo.png" → "logo.png"); "data" for the package itself.
func streamName(name string) string {
	if name == "" {
		return "data" // the package itself
	}
	base := path.Base(name)
	l := strings.ToLower(base)
	for _, s := range streamSuffixes {
		if strings.HasSuffix(l, s.suffix) && len(base) > len(s.suffix) {
			return base[:len(base)-len(s.suffix)] + s.repl
		}
	}
	return base
}

// extractStream decompresses a gzip, bzip2, xz or zstd stream: a tar
// inside is extracted into lv, anything else is written to lv as one file
// named streamName(arcPath). Bytes after the last gzip member are written
// out as a region.
func (e *extractor) extractStream(lv *level, k Kind, src *os.File, arcPath string) (outcome, error) {
	cr := &countReader{r: bufio.NewReaderSize(src, 64<<10)}
	dr, err := decompress(k, cr)
	if err != nil {
		if isIOError(err) {
			return stopped, fmt.Errorf("read %s: %w", DisplayPath(arcPath), err)
		}
		return e.readFailed(err, arcPath)
	}
	defer dr.Close()
	br := bufio.NewReaderSize(dr, 64<<10)
	head, err := br.Peek(1024)
	if err != nil && !errors.Is(err, io.EOF) {
		return e.readFailed(err, arcPath)
	}
	var oc outcome
	if isTarHeader(head) {
		oc, err = e.tarEntries(lv, br, cr, arcPath)
	} else {
		m := member{name: streamName(arcPath), kind: kindFile, csize: -1,
			compressed: func() int64 { return cr.n },
			open:       func() (io.ReadCloser, error) { return io.NopCloser(br), nil }}
		oc, err = e.entry(lv, &m, arcPath)
	}
	if err != nil || oc != done {
		return oc, err
	}
	if g, ok := dr.(*gzipMembers); ok && g.trailing >= 0 {
		oc, err := e.writeRegion(lv, cr, g.trailing, arcPath, regionClass{RuleHiddenData, "data after the last gzip member"})
		if err != nil || oc != done {
			return oc, err
		}
	}
	if lv.depth == 1 {
		e.res.Coverage.AccountedBytes = cr.n
	}
	return done, nil
}
