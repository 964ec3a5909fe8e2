package diskimage

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"
)

// extFS reads ext2, ext3 and ext4 by inode number: directories in one
// pass over their blocks (hash-tree directories read linearly, as their
// index blocks look like empty entries), file content through the extent
// tree or the block map, both with budgets. (The reader library trivy uses
// resolves every file by path from the root, listing every ancestor
// directory each time: quadratic in directory size, minutes for a cloud
// image.) The superblock was validated by checkExt before.
type extFS struct {
	r       io.ReaderAt // the partition
	size    int64       // of the partition
	bs      int64
	blocks  uint64
	inodes  uint64
	ipg     uint64
	isize   int64
	itables []uint64 // inode table block per group
	cache   map[uint64]*extInode
}

type extInode struct {
	mode  uint16
	size  int64
	mtime int64
	flags uint32
	block [60]byte
	// inline is the content of an inline_data inode (i_block followed by
	// the system.data extended attribute), nil otherwise; inlineErr says
	// why it could not be read.
	inline    []byte
	inlineErr error
}

const (
	extRootIno      = 2
	extFlagExtents  = 0x80000
	extFlagInline   = 0x10000000
	extMaxDirSize   = 256 << 20 // bytes of one directory
	extMaxExtents   = 1 << 20   // extents of one file
	extMaxNodes     = 1 << 16   // extent tree nodes of one file
	extInodeCache   = 1 << 12
	extExtentMagic  = 0xf30a
	extMaxTreeDepth = 5
)

func newExtFS(r io.ReaderAt, p partition) (*extFS, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, p.off+1024); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	x := &extFS{r: io.NewSectionReader(r, p.off, p.len), size: p.len, cache: map[uint64]*extInode{}}
	x.bs = 1024 << le.Uint32(sb[0x18:])
	x.blocks = uint64(le.Uint32(sb[0x4:]))
	incompat := le.Uint32(sb[0x60:])
	is64 := incompat&extIncompat64bit != 0
	if is64 {
		x.blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	x.inodes = uint64(le.Uint32(sb[0x0:]))
	x.ipg = uint64(le.Uint32(sb[0x28:]))
	x.isize = 128
	if le.Uint32(sb[0x4c:]) > 0 {
		x.isize = int64(le.Uint16(sb[0x58:]))
	}
	firstData := uint64(le.Uint32(sb[0x14:]))
	bpg := uint64(le.Uint32(sb[0x20:]))
	groups := (x.blocks - firstData + bpg - 1) / bpg
	descSize := int64(32)
	if is64 {
		descSize = 64
	}
	gdt := make([]byte, int64(groups)*descSize) // checkExt bounded groups by the partition size
	if _, err := x.r.ReadAt(gdt, int64(firstData+1)*x.bs); err != nil {
		return nil, fmt.Errorf("read group descriptors: %w", err)
	}
	x.itables = make([]uint64, groups)
	for g := range x.itables {
		d := gdt[int64(g)*descSize:]
		t := uint64(le.Uint32(d[8:]))
		if is64 {
			t |= uint64(le.Uint32(d[0x28:])) << 32
		}
		if t == 0 || t >= x.blocks {
			return nil, fmt.Errorf("group %d: inode table outside the file system", g)
		}
		x.itables[g] = t
	}
	return x, nil
}

func (x *extFS) inode(n uint64) (*extInode, error) {
	if in, ok := x.cache[n]; ok {
		return in, nil
	}
	if n < 1 || n > x.inodes {
		return nil, fmt.Errorf("inode %d out of range", n)
	}
	g, idx := (n-1)/x.ipg, (n-1)%x.ipg
	off := int64(x.itables[g])*x.bs + int64(idx)*x.isize
	b := make([]byte, x.isize) // checkExt: 128 <= isize <= block size
	if off < 0 || off+x.isize > x.size {
		return nil, fmt.Errorf("inode %d outside the partition", n)
	}
	if _, err := x.r.ReadAt(b, off); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	in := &extInode{
		mode:  le.Uint16(b[0:]),
		size:  int64(le.Uint32(b[4:])) | int64(le.Uint32(b[108:]))<<32,
		mtime: int64(le.Uint32(b[16:])),
		flags: le.Uint32(b[32:]),
	}
	copy(in.block[:], b[40:100])
	if in.flags&extFlagInline != 0 {
		in.inline, in.inlineErr = inlineData(b, in.size)
	}
	if len(x.cache) >= extInodeCache {
		clear(x.cache)
	}
	x.cache[n] = in
	return in, nil
}

// fileMode converts a Unix mode to an fs.FileMode.
func fileMode(m uint16) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	switch m & 0xf000 {
	case 0x8000:
	case 0x4000:
		mode |= fs.ModeDir
	case 0xa000:
		mode |= fs.ModeSymlink
	case 0x2000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0x6000:
		mode |= fs.ModeDevice
	case 0x1000:
		mode |= fs.ModeNamedPipe
	case 0xc000:
		mode |= fs.ModeSocket
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

func (x *extFS) entry(name, path string, ino uint64) (*entry, error) {
	in, err := x.inode(ino)
	if err != nil {
		return nil, err
	}
	return &entry{name: name, path: path, ino: ino, ref: in, mode: fileMode(in.mode), size: in.size, mtime: time.Unix(in.mtime, 0)}, nil
}

// inodeOf returns e's inode, as read when e was listed (so that a file's
// inode is read from the disk once per walk), else from the disk.
func (x *extFS) inodeOf(e *entry) (*extInode, error) {
	if in, ok := e.ref.(*extInode); ok {
		return in, nil
	}
	return x.inode(e.ino)
}

func (x *extFS) root() (*entry, error) {
	e, err := x.entry(".", ".", extRootIno)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, errors.New("root inode is not a directory")
	}
	return e, nil
}

func (x *extFS) list(dir *entry) ([]*entry, error) {
	in, err := x.inodeOf(dir)
	if err != nil {
		return nil, err
	}
	if in.mode&0xf000 != 0x4000 {
		return nil, errors.New("not a directory")
	}
	if in.size < 0 || in.size > extMaxDirSize {
		return nil, fmt.Errorf("directory of %d bytes", in.size)
	}
	var out []*entry
	if in.flags&extFlagInline != 0 {
		if in.inlineErr != nil {
			return nil, in.inlineErr
		}
		// An inline directory: the parent's inode number, then entries in
		// the rest of i_block and in the system.data attribute.
		if len(in.inline) < 4 {
			return nil, fmt.Errorf("%w: inline directory shorter than its header", errBadInline)
		}
		if err := x.dirents(dir, in.inline[4:min(60, len(in.inline))], &out); err != nil {
			return nil, err
		}
		if len(in.inline) > 60 {
			if err := x.dirents(dir, in.inline[60:], &out); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	m, err := x.mapper(in)
	if err != nil {
		return nil, err
	}
	blk := make([]byte, x.bs)
	for lb := uint64(0); int64(lb)*x.bs < in.size; lb++ {
		pb, _, ok, err := m.lookup(lb)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // a hole
		}
		if err := x.readBlock(blk, pb); err != nil {
			return nil, err
		}
		if err := x.dirents(dir, blk, &out); err != nil {
			return nil, fmt.Errorf("directory block %d: %w", lb, err)
		}
	}
	return out, nil
}

// dirents appends the entries of one buffer of directory entries (a
// directory block, or a part of an inline directory) to out.
func (x *extFS) dirents(dir *entry, blk []byte, out *[]*entry) error {
	le := binary.LittleEndian
	n := int64(len(blk))
	for off := int64(0); off+8 <= n; {
		ino := uint64(le.Uint32(blk[off:]))
		recLen := int64(le.Uint16(blk[off+4:]))
		nameLen := int64(blk[off+6])
		if recLen < 8 || recLen%4 != 0 || off+recLen > n || nameLen+8 > recLen {
			return fmt.Errorf("bad entry at %d", off)
		}
		if ino != 0 && nameLen > 0 {
			name := string(blk[off+8 : off+8+nameLen])
			if name != "." && name != ".." {
				e, err := x.entry(name, joinRel(dir.path, name), ino)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				*out = append(*out, e)
				if len(*out) > maxEntries {
					return errors.New("directory has too many entries")
				}
			}
		}
		off += recLen
	}
	return nil
}

func (x *extFS) readBlock(b []byte, pb uint64) error {
	if pb >= x.blocks || int64(pb)*x.bs+x.bs > x.size {
		return fmt.Errorf("block %d outside the file system", pb)
	}
	_, err := x.r.ReadAt(b, int64(pb)*x.bs)
	return err
}

func (x *extFS) open(f *entry) (io.Reader, error) {
	in, err := x.inodeOf(f)
	if err != nil {
		return nil, err
	}
	if in.mode&0xf000 != 0x8000 {
		return nil, errors.New("not a regular file")
	}
	if in.flags&extFlagInline != 0 {
		if in.inlineErr != nil {
			return nil, in.inlineErr
		}
		return bytes.NewReader(in.inline), nil
	}
	m, err := x.mapper(in)
	if err != nil {
		return nil, err
	}
	return &blockReader{r: x.r, limit: x.size, bs: x.bs, size: in.size, m: m}, nil
}

func (x *extFS) readlink(l *entry) (string, error) {
	in, err := x.inodeOf(l)
	if err != nil {
		return "", err
	}
	if in.mode&0xf000 != 0xa000 {
		return "", errors.New("not a symlink")
	}
	if in.size < 0 || in.size > maxSymlinkLen {
		return "", errors.New("symlink target too long")
	}
	if in.flags&extFlagInline != 0 {
		if in.inlineErr != nil {
			return "", in.inlineErr
		}
		return string(in.inline), nil
	}
	if in.size < 60 && in.flags&extFlagExtents == 0 {
		// A fast symlink: the target is stored in the inode.
		return string(in.block[:in.size]), nil
	}
	m, err := x.mapper(in)
	if err != nil {
		return "", err
	}
	b := make([]byte, in.size)
	if _, err := io.ReadFull(&blockReader{r: x.r, limit: x.size, bs: x.bs, size: in.size, m: m}, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// blockMapper maps a file's logical blocks to physical ones.
type blockMapper interface {
	// lookup returns the physical block of logical block lb and how many
	// blocks from there are contiguous (or, for a hole, how many blocks
	// the hole spans at least); ok is false for a hole.
	lookup(lb uint64) (pb, run uint64, ok bool, err error)
}

func (x *extFS) mapper(in *extInode) (blockMapper, error) {
	switch {
	case in.flags&extFlagInline != 0:
		return nil, fmt.Errorf("%w: inline data", errors.ErrUnsupported)
	case in.flags&extFlagExtents != 0:
		exts, err := x.extents(in)
		if err != nil {
			return nil, err
		}
		return extentMap(exts), nil
	default:
		return &indirectMap{x: x, block: in.block, cache: map[uint64][]byte{}}, nil
	}
}

// extent is a run of blocks of a file.
type extent struct {
	lb, pb, n uint64
}

// extentMap is sorted by lb, without unwritten extents (read as zeros).
type extentMap []extent

func (m extentMap) lookup(lb uint64) (uint64, uint64, bool, error) {
	i, _ := slices.BinarySearchFunc(m, lb, func(e extent, lb uint64) int {
		switch {
		case e.lb+e.n <= lb:
			return -1
		case e.lb > lb:
			return 1
		}
		return 0
	})
	if i < len(m) && m[i].lb <= lb && lb < m[i].lb+m[i].n {
		return m[i].pb + (lb - m[i].lb), m[i].lb + m[i].n - lb, true, nil
	}
	if i < len(m) {
		return 0, m[i].lb - lb, false, nil
	}
	return 0, 1 << 32, false, nil
}

// extents reads an inode's extent tree, depth-first, within budgets.
func (x *extFS) extents(in *extInode) (extentMap, error) {
	var out extentMap
	nodes := 0
	var walk func(b []byte, depth int) error
	walk = func(b []byte, depth int) error {
		if nodes++; nodes > extMaxNodes {
			return errors.New("extent tree too large")
		}
		le := binary.LittleEndian
		if len(b) < 12 || le.Uint16(b) != extExtentMagic {
			return errors.New("bad extent header")
		}
		n, max, d := int(le.Uint16(b[2:])), int(le.Uint16(b[4:])), int(le.Uint16(b[6:]))
		if n > max || 12+12*n > len(b) || d > extMaxTreeDepth || (depth >= 0 && d != depth) {
			return errors.New("bad extent header")
		}
		for i := range n {
			e := b[12+12*i:]
			if d == 0 {
				l := uint64(le.Uint16(e[4:]))
				uninit := l > 32768
				if uninit {
					l -= 32768
				}
				pb := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
				if l == 0 || uninit {
					continue
				}
				if pb+l > x.blocks {
					return errors.New("extent outside the file system")
				}
				if len(out) >= extMaxExtents {
					return errors.New("too many extents")
				}
				out = append(out, extent{lb: uint64(le.Uint32(e)), pb: pb, n: l})
				continue
			}
			child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
			blk := make([]byte, x.bs)
			if err := x.readBlock(blk, child); err != nil {
				return err
			}
			if err := walk(blk, d-1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(in.block[:], -1); err != nil {
		return nil, err
	}
	if err := sortExtents(out); err != nil {
		return nil, err
	}
	return out, nil
}

// indirectMap maps blocks of ext2/ext3 files (12 direct pointers, then
// single, double and triple indirect blocks), reading pointer blocks on
// demand.
type indirectMap struct {
	x     *extFS
	block [60]byte
	cache map[uint64][]byte
}

func (m *indirectMap) ptr(blk uint64, i uint64) (uint64, error) {
	if blk == 0 {
		return 0, nil
	}
	b, ok := m.cache[blk]
	if !ok {
		b = make([]byte, m.x.bs)
		if err := m.x.readBlock(b, blk); err != nil {
			return 0, err
		}
		if len(m.cache) >= 8 {
			clear(m.cache)
		}
		m.cache[blk] = b
	}
	return uint64(binary.LittleEndian.Uint32(b[4*i:])), nil
}

func (m *indirectMap) lookup(lb uint64) (uint64, uint64, bool, error) {
	le := binary.LittleEndian
	per := uint64(m.x.bs / 4)
	var pb uint64
	var err error
	switch {
	case lb < 12:
		pb = uint64(le.Uint32(m.block[4*lb:]))
	case lb-12 < per:
		pb, err = m.ptr(uint64(le.Uint32(m.block[48:])), lb-12)
	case lb-12-per < per*per:
		i := lb - 12 - per
		var l1 uint64
		if l1, err = m.ptr(uint64(le.Uint32(m.block[52:])), i/per); err == nil {
			pb, err = m.ptr(l1, i%per)
		}
	case lb-12-per-per*per < per*per*per:
		i := lb - 12 - per - per*per
		var l1, l2 uint64
		if l1, err = m.ptr(uint64(le.Uint32(m.block[56:])), i/(per*per)); err == nil {
			if l2, err = m.ptr(l1, i/per%per); err == nil {
				pb, err = m.ptr(l2, i%per)
			}
		}
	default:
		return 0, 0, false, errors.New("block beyond the triple indirect map")
	}
	if err != nil {
		return 0, 0, false, err
	}
	if pb == 0 {
		return 0, 1, false, nil
	}
	if pb >= m.x.blocks {
		return 0, 0, false, fmt.Errorf("block %d outside the file system", pb)
	}
	return pb, 1, true, nil
}

// blockReader reads size bytes of a file through its block map; holes
// read as zeros.
type blockReader struct {
	r     io.ReaderAt
	limit int64 // partition size
	bs    int64
	size  int64
	pos   int64
	m     blockMapper
}

func (b *blockReader) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	lb := uint64(b.pos / b.bs)
	off := b.pos % b.bs
	pb, run, ok, err := b.m.lookup(lb)
	if err != nil {
		return 0, err
	}
	if run == 0 {
		run = 1
	}
	n := int64(len(p))
	if avail := int64(min(run, 1<<20))*b.bs - off; n > avail {
		n = avail
	}
	if rest := b.size - b.pos; n > rest {
		n = rest
	}
	if !ok {
		clear(p[:n])
	} else {
		at := int64(pb)*b.bs + off
		if at+n > b.limit {
			return 0, errors.New("data outside the partition")
		}
		if _, err := b.r.ReadAt(p[:n], at); err != nil {
			return 0, err
		}
	}
	b.pos += n
	return int(n), nil
}

// sortExtents orders a file's extents by logical block and refuses
// overlapping ones (a hostile file system could map a block twice).
func sortExtents(m []extent) error {
	slices.SortFunc(m, func(a, b extent) int { return cmp.Compare(a.lb, b.lb) })
	for i := 1; i < len(m); i++ {
		if m[i].lb < m[i-1].lb+m[i-1].n {
			return errors.New("overlapping extents")
		}
	}
	return nil
}

// Inline data (ext4 inline_data): a small file's or directory's content
// is stored in the inode itself: the 60 bytes of i_block, continued in the
// value of the "system.data" extended attribute stored in the inode's
// extra space (after i_extra_isize).
var (
	// errInlineTooBig: the inode claims more inline bytes than it holds.
	errInlineTooBig = errors.New("inline data larger than its inode")
	// errBadInline: the in-inode extended attributes are malformed.
	errBadInline = errors.New("malformed inline data")
)

const (
	extXattrMagic      = 0xea020000
	extXattrIndexSys   = 7 // "system."
	extInodeGoodOldLen = 128
)

// inlineData returns the size bytes of content of the inline_data inode
// raw (the whole on-disk inode, i_extra_isize included). It fails with
// errInlineTooBig when size exceeds i_block plus the system.data value,
// and with errBadInline when the attributes cannot be parsed. It never
// reads outside raw and allocates at most len(raw) bytes.
func inlineData(raw []byte, size int64) ([]byte, error) {
	if len(raw) < extInodeGoodOldLen {
		return nil, fmt.Errorf("%w: inode of %d bytes", errBadInline, len(raw))
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size", errBadInline)
	}
	block := raw[40:100]
	if size <= int64(len(block)) {
		return append([]byte(nil), block[:size]...), nil
	}
	val, err := systemData(raw)
	if err != nil {
		return nil, err
	}
	if have := int64(len(block) + len(val)); size > have {
		return nil, fmt.Errorf("%w: %d bytes claimed, %d stored", errInlineTooBig, size, have)
	}
	out := make([]byte, 0, size)
	out = append(out, block...)
	return append(out, val[:size-int64(len(block))]...), nil
}

// systemData finds the value of the system.data attribute among the
// in-inode extended attributes of raw; nil when there is none.
func systemData(raw []byte) ([]byte, error) {
	le := binary.LittleEndian
	if len(raw) < extInodeGoodOldLen+4 {
		return nil, nil
	}
	extra := int(le.Uint16(raw[extInodeGoodOldLen:]))
	hdr := extInodeGoodOldLen + extra
	if extra%4 != 0 || hdr+4 > len(raw) {
		return nil, fmt.Errorf("%w: i_extra_isize %d", errBadInline, extra)
	}
	if le.Uint32(raw[hdr:]) != extXattrMagic {
		return nil, nil
	}
	base := hdr + 4 // value offsets count from the first entry
	region := raw[base:]
	for off := 0; off+4 <= len(region); {
		if le.Uint32(region[off:]) == 0 {
			return nil, nil // end of the entries
		}
		if off+16 > len(region) {
			return nil, fmt.Errorf("%w: attribute entry past the inode", errBadInline)
		}
		nameLen := int(region[off])
		index := region[off+1]
		voff := int(le.Uint16(region[off+2:]))
		vino := le.Uint32(region[off+4:])
		vsize := int(le.Uint32(region[off+8:]))
		if off+16+nameLen > len(region) {
			return nil, fmt.Errorf("%w: attribute name past the inode", errBadInline)
		}
		name := string(region[off+16 : off+16+nameLen])
		if index == extXattrIndexSys && name == "data" {
			if vino != 0 {
				return nil, fmt.Errorf("%w: system.data stored in another inode", errBadInline)
			}
			if vsize < 0 || voff > len(region) || vsize > len(region)-voff {
				return nil, fmt.Errorf("%w: system.data value of %d bytes at %d", errInlineTooBig, vsize, voff)
			}
			return region[voff : voff+vsize], nil
		}
		off += (16 + nameLen + 3) &^ 3
	}
	return nil, nil
}
