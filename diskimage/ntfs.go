package diskimage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	ntfs "www.velocidex.com/golang/go-ntfs/parser"
)

// ntfsFS reads NTFS with www.velocidex.com/golang/go-ntfs (the parser of
// Velociraptor), by MFT entry: directories from their $I30 index, file
// content from the unnamed $DATA stream (resident, non-resident, sparse or
// compressed). Alternate data streams, reparse points (symlinks,
// junctions) and encrypted ($EFS) content are not read. The boot sector
// was validated by checkNTFS before; every call runs under safeFS's
// recover().
type ntfsFS struct {
	ctx  *ntfs.NTFSContext
	size int64
}

const (
	ntfsRootMFT = 5
	// ntfsPageSize and ntfsPages: the library's page cache (4 MiB).
	ntfsPageSize = 4096
	ntfsPages    = 1024
)

func newNTFS(r io.ReaderAt, p partition) (*ntfsFS, error) {
	pr, err := ntfs.NewPagedReader(io.NewSectionReader(r, p.off, p.len), ntfsPageSize, ntfsPages)
	if err != nil {
		return nil, err
	}
	c, err := ntfs.GetNTFSContext(pr, 0)
	if err != nil {
		return nil, err
	}
	return &ntfsFS{ctx: c, size: p.len}, nil
}

func (n *ntfsFS) root() (*entry, error) {
	if _, err := n.ctx.GetMFT(ntfsRootMFT); err != nil {
		return nil, err
	}
	return &entry{name: ".", path: ".", mode: fs.ModeDir | 0o755, ino: ntfsRootMFT}, nil
}

func (n *ntfsFS) list(dir *entry) ([]*entry, error) {
	m, err := n.ctx.GetMFT(int64(dir.ino))
	if err != nil {
		return nil, err
	}
	var out []*entry
	for _, fi := range ntfs.ListDir(n.ctx, m) {
		if fi == nil || fi.IsSlack || fi.Name == "" || fi.Name == "." || strings.Contains(fi.Name, ":") {
			continue // deleted entries, the root's own ".", alternate data streams
		}
		if dir.path == "." && strings.HasPrefix(fi.Name, "$") {
			continue // the file system's metadata files ($MFT, $LogFile, ...)
		}
		idx, _, _, _, err := ntfs.ParseMFTId(fi.MFTId)
		if err != nil || idx <= 0 {
			return nil, fmt.Errorf("entry %q: bad MFT id %q", fi.Name, fi.MFTId)
		}
		mode := fs.FileMode(0o644)
		if fi.IsDir {
			mode = fs.ModeDir | 0o755
		}
		out = append(out, &entry{name: fi.Name, path: joinRel(dir.path, fi.Name), mode: mode, size: fi.Size,
			mtime: fi.Mtime, ino: uint64(idx)})
		if len(out) > maxEntries {
			return nil, errors.New("directory has too many entries")
		}
	}
	return out, nil
}

func (n *ntfsFS) open(f *entry) (io.Reader, error) {
	m, err := n.ctx.GetMFT(int64(f.ino))
	if err != nil {
		return nil, err
	}
	rng, err := ntfs.OpenStream(n.ctx, m, ntfs.ATTR_TYPE_DATA, ntfs.WILDCARD_STREAM_ID, ntfs.WILDCARD_STREAM_NAME)
	if err != nil {
		if f.size == 0 {
			return strings.NewReader(""), nil
		}
		return nil, err
	}
	return io.NewSectionReader(rng, 0, f.size), nil
}

func (n *ntfsFS) readlink(*entry) (string, error) {
	return "", fmt.Errorf("%w: ntfs reparse points", errors.ErrUnsupported)
}
