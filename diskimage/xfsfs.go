package diskimage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unsafe"

	"github.com/masahiro331/go-xfs-filesystem/xfs"
)

// xfsFS reads XFS with the reader library trivy uses
// (github.com/masahiro331/go-xfs-filesystem) for superblocks, inodes and
// directories, behind a guard on every byte it reads, and reads file
// content itself from the extent records the library parsed (the
// library's own Open lists the file's directory and every ancestor again
// for each file: quadratic). Symlink targets stored in the inode are read
// the same way; longer ones are not supported by the library.
type xfsFS struct {
	lib   *xfs.FileSystem
	r     io.ReaderAt // the partition, unguarded (content)
	size  int64
	guard *xfsGuard
	bs    int64
}

const (
	// xfsCallBudget bounds the bytes the library may read in one call
	// (one directory listing): it accumulates directory blocks in memory.
	xfsCallBudget = 256 << 20
	xfsInodeCache = 1 << 16
)

func newXFS(r io.ReaderAt, p partition) (*xfsFS, error) {
	var sb [512]byte
	if _, err := r.ReadAt(sb[:], p.off); err != nil {
		return nil, err
	}
	part := io.NewSectionReader(r, p.off, p.len)
	g := &xfsGuard{r: part, inodeSize: int64(binary.BigEndian.Uint16(sb[104:]))}
	g.reset()
	lib, err := xfs.NewFS(*io.NewSectionReader(g, 0, p.len), newLRU(xfsInodeCache))
	if err != nil {
		return nil, err
	}
	return &xfsFS{lib: lib, r: part, size: p.len, guard: g, bs: int64(lib.PrimaryAG.SuperBlock.BlockSize)}, nil
}

func (x *xfsFS) root() (*entry, error) {
	if _, err := x.lib.ReadDirInfo("/"); err != nil {
		return nil, err
	}
	return &entry{name: ".", path: ".", mode: fileMode(0x4000 | 0o755)}, nil
}

func (x *xfsFS) list(dir *entry) ([]*entry, error) {
	des, err := x.lib.ReadDir(dir.path)
	if err != nil {
		return nil, err
	}
	out := make([]*entry, 0, len(des))
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, &entry{
			name: de.Name(), path: joinRel(dir.path, de.Name()), ref: de,
			mode: info.Mode(), size: info.Size(), mtime: info.ModTime(),
		})
	}
	return out, nil
}

func (x *xfsFS) open(f *entry) (io.Reader, error) {
	in := xfsInode(f.ref)
	if in == nil {
		return nil, errors.New("xfs: no inode for the entry (reader library changed?)")
	}
	recs, ok := xfsRecs(in)
	if !ok {
		return nil, fmt.Errorf("%w: xfs inode format", errors.ErrUnsupported)
	}
	sb := x.lib.PrimaryAG.SuperBlock
	total := uint64(x.size / x.bs)
	m := make(extentMap, 0, len(recs))
	for _, rec := range recs {
		e := rec.Unpack()
		if e.State != 0 || e.BlockCount == 0 {
			continue // unwritten: reads as zeros
		}
		pb := uint64(sb.BlockToPhysicalOffset(e.StartBlock))
		if pb >= total || e.BlockCount > total-pb {
			return nil, errors.New("extent outside the file system")
		}
		m = append(m, extent{lb: e.StartOff, pb: pb, n: e.BlockCount})
	}
	if err := sortExtents(m); err != nil {
		return nil, err
	}
	return &blockReader{r: x.r, limit: x.size, bs: x.bs, size: f.size, m: m}, nil
}

func (x *xfsFS) readlink(l *entry) (string, error) {
	in := xfsInode(l.ref)
	if in == nil {
		return "", errors.New("xfs: no inode for the entry (reader library changed?)")
	}
	s, ok := xfsSymlink(in)
	if !ok {
		return "", fmt.Errorf("%w: xfs symlinks stored outside the inode", errors.ErrUnsupported)
	}
	return s, nil
}

// The XFS library keeps what we need in unexported fields: the inode of a
// directory entry, a file's extent records, a symlink's target. They are
// read with reflect; if the library's layout changes these return nil/false
// and TestXFS fails.

func xfsInode(de any) *xfs.Inode {
	v := reflect.ValueOf(de)
	if v.Kind() != reflect.Struct {
		return nil
	}
	fi := v.FieldByName("FileInfo")
	if !fi.IsValid() || fi.Kind() != reflect.Struct {
		return nil
	}
	in := fi.FieldByName("inode")
	if !in.IsValid() || in.Type() != reflect.TypeFor[*xfs.Inode]() || in.IsNil() {
		return nil
	}
	return (*xfs.Inode)(in.UnsafePointer())
}

// field returns the unexported field name of the struct *p points to.
func field[T any](p any, name string) (T, bool) {
	var zero T
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return zero, false
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeFor[T]() {
		return zero, false
	}
	return *(*T)(unsafe.Pointer(f.UnsafeAddr())), true
}

func xfsRecs(in *xfs.Inode) ([]xfs.BmbtRec, bool) {
	if re, ok := field[*xfs.RegularExtent](in, "regularExtent"); ok && re != nil {
		return field[[]xfs.BmbtRec](re, "bmbtRecs")
	}
	if bt, ok := field[*xfs.Btree](in, "regularBtree"); ok && bt != nil {
		return field[[]xfs.BmbtRec](bt, "bmbtRecs")
	}
	core, ok := field[xfs.InodeCore](in, "inodeCore")
	if ok && core.Nextents == 0 && core.Size == 0 {
		return nil, true // empty file
	}
	return nil, false
}

func xfsSymlink(in *xfs.Inode) (string, bool) {
	s, ok := field[*xfs.SymlinkString](in, "symlinkString")
	if !ok || s == nil {
		return "", false
	}
	return s.Name, true
}

// xfsGuard is the reader the XFS library reads through. It bounds the
// bytes read per call (reset before each), and makes the library refuse
// an inode whose in-inode ("local") data claims more bytes than an inode
// holds: the library allocates that many bytes before reading.
type xfsGuard struct {
	r         io.ReaderAt
	inodeSize int64
	budget    int64
}

var errXFSBudget = errors.New("xfs: directory too large to read")

func (g *xfsGuard) reset() { g.budget = xfsCallBudget }

func (g *xfsGuard) ReadAt(p []byte, off int64) (int, error) {
	if g.budget -= int64(len(p)); g.budget < 0 {
		return 0, errXFSBudget
	}
	n, err := g.r.ReadAt(p, off)
	if n >= 100 && p[0] == 'I' && p[1] == 'N' && p[4] >= 1 && p[4] <= 3 {
		format := p[5]
		size := binary.BigEndian.Uint64(p[56:])
		nextents := binary.BigEndian.Uint32(p[76:])
		const local, extents = 1, 2
		switch {
		case format == local && size > uint64(g.inodeSize),
			format == extents && int64(nextents) > g.inodeSize/16:
			p[0], p[1] = 0, 0 // not an inode any more: the library fails cleanly
		}
	}
	return n, err
}
