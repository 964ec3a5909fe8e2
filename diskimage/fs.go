package diskimage

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	ext4log "github.com/masahiro331/go-ext4-filesystem/log"
	xfslog "github.com/masahiro331/go-xfs-filesystem/log"
	"go.uber.org/zap"
)

// Bounds of the in-process readers.
const (
	// maxEntries bounds the entries (files, directories, links, ...)
	// walked per file system.
	maxEntries = 5_000_000
	// maxDepth bounds directory nesting (a directory loop in a corrupt
	// file system would otherwise never end).
	maxDepth = 256
	// maxSymlinkHops bounds symlink resolution (Linux: 40).
	maxSymlinkHops = 40
	// maxSymlinkLen bounds a symlink target.
	maxSymlinkLen = 4096
	// maxZeroReads bounds reads that return nothing and no error.
	maxZeroReads = 100
)

// backend reads one file system. Its methods are only called with the
// safeFS lock held and under recover().
type backend interface {
	// root is the root directory's entry.
	root() (*entry, error)
	// list returns the entries of directory dir, in any order, without
	// "." and "..", each with its path set to dir.path joined with its name.
	list(dir *entry) ([]*entry, error)
	// open returns a reader of regular file f's content; it is read
	// through file, which stops at f.size.
	open(f *entry) (io.Reader, error)
	// readlink returns symlink l's target.
	readlink(l *entry) (string, error)
}

// safeFS serves a backend as an fs.FS: every call is serialised and runs
// under recover(); symlinks are resolved here, inside the file system, with
// a hop limit; only snapshots of directory entries escape.
//
// It implements fs.FS, fs.ReadDirFS, fs.StatFS and fs.ReadLinkFS. Paths
// are slash-separated and relative to the file system's root (fs.ValidPath).
type safeFS struct {
	mu    sync.Mutex
	be    backend
	typ   string
	size  int64  // of the partition
	top   *entry // the root directory
	begin func() // called before each backend call (budgets)
}

var (
	_ fs.ReadDirFS  = (*safeFS)(nil)
	_ fs.StatFS     = (*safeFS)(nil)
	_ fs.ReadLinkFS = (*safeFS)(nil)
)

// mountFS opens the ext or XFS file system of partition p read-only and
// lists its root directory.
func mountFS(r io.ReaderAt, p partition, res probeResult) (*safeFS, error) {
	s := &safeFS{typ: res.fsType, size: p.len}
	err := s.call("mount", ".", func() error {
		var err error
		switch res.kind {
		case probeExt:
			s.be, err = newExtFS(r, p)
		case probeXFS:
			var x *xfsFS
			x, err = newXFS(r, p)
			s.be, s.begin = x, x.guard.reset
		case probeNTFS:
			s.be, err = newNTFS(r, p)
		default:
			err = errors.New("not a supported file system")
		}
		if err != nil {
			return err
		}
		s.top, err = s.be.root()
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.listAll(s.top); err != nil {
		return nil, err
	}
	return s, nil
}

// call runs f with the lock held, turning a panic of the reader into an
// ErrCorrupt error and any reader error into one.
func (s *safeFS) call(op, name string, f func() error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: reader crashed: %v", ErrCorrupt, r)}
		}
	}()
	if s.begin != nil {
		s.begin()
	}
	if err := f(); err != nil {
		if err == io.EOF || errors.Is(err, ErrCorrupt) || errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		return &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: %w", ErrCorrupt, err)}
	}
	return nil
}

// entry is a snapshot of a directory entry; it is both fs.DirEntry and
// fs.FileInfo.
type entry struct {
	name  string
	mode  fs.FileMode
	size  int64
	mtime time.Time
	path  string // real path from the root ("." for the root), no symlinks
	ino   uint64 // backend handle
	ref   any    // backend handle
}

func (e *entry) Name() string               { return e.name }
func (e *entry) IsDir() bool                { return e.mode.IsDir() }
func (e *entry) Type() fs.FileMode          { return e.mode.Type() }
func (e *entry) Info() (fs.FileInfo, error) { return e, nil }
func (e *entry) Size() int64                { return e.size }
func (e *entry) Mode() fs.FileMode          { return e.mode }
func (e *entry) ModTime() time.Time         { return e.mtime }
func (e *entry) Sys() any                   { return nil }

// listAll lists directory dir as the backend sees it, sorted by name
// (stable), invalid names and duplicates included.
func (s *safeFS) listAll(dir *entry) ([]*entry, error) {
	var out []*entry
	err := s.call("readdir", dir.path, func() error {
		var err error
		out, err = s.be.list(dir)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// validName reports whether a directory entry name can be a path element.
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= 255 && !strings.ContainsAny(n, "/\x00")
}

// list is listAll without invalid names and later duplicates.
func (s *safeFS) list(dir *entry) ([]*entry, error) {
	all, err := s.listAll(dir)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if !validName(e.name) || (len(out) > 0 && out[len(out)-1].name == e.name) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func lookup(list []*entry, name string) *entry {
	i, ok := slices.BinarySearchFunc(list, name, func(e *entry, n string) int { return strings.Compare(e.name, n) })
	if !ok {
		return nil
	}
	return list[i]
}

func joinRel(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// resolve walks name from the root, following symlinks (the last one too
// when follow) inside the file system: ".." stops at the root and absolute
// targets start again from the root, as with chroot.
func (s *safeFS) resolve(op, name string, follow bool) (*entry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	todo := splitPath(name)
	stack := []*entry{s.top} // directories from the root to the current one
	hops := 0
	var last *entry // the entry reached, when it is not a directory
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if last != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("not a directory")}
		}
		if c == ".." {
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		list, err := s.list(stack[len(stack)-1])
		if err != nil {
			return nil, err
		}
		found := lookup(list, c)
		if found == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if found.mode&fs.ModeSymlink != 0 && (len(todo) > 0 || follow) {
			if hops++; hops > maxSymlinkHops {
				return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target, err := s.readLinkEntry(found)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			todo = append(splitPath(target), todo...)
			if len(todo) > maxSymlinkLen {
				return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("symbolic link target too long")}
			}
			continue
		}
		if found.IsDir() {
			stack = append(stack, found)
		} else {
			last = found
		}
	}
	if last != nil {
		return last, nil
	}
	return stack[len(stack)-1], nil
}

func (s *safeFS) readLinkEntry(e *entry) (string, error) {
	if e.size > maxSymlinkLen {
		return "", &fs.PathError{Op: "readlink", Path: e.path, Err: fmt.Errorf("%w: symbolic link target too long", ErrCorrupt)}
	}
	var t string
	err := s.call("readlink", e.path, func() error {
		var err error
		t, err = s.be.readlink(e)
		return err
	})
	if err != nil {
		return "", err
	}
	if len(t) > maxSymlinkLen {
		return "", &fs.PathError{Op: "readlink", Path: e.path, Err: fmt.Errorf("%w: symbolic link target too long", ErrCorrupt)}
	}
	return t, nil
}

// Open opens a regular file or a directory, following symlinks.
func (s *safeFS) Open(name string) (fs.File, error) {
	e, err := s.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	if e.IsDir() {
		return &dirFile{s: s, e: e}, nil
	}
	if !e.mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	if s.tooBig(e) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: file larger than its file system", ErrCorrupt)}
	}
	return s.openEntry(e)
}

// openEntry opens regular file e.
func (s *safeFS) openEntry(e *entry) (*file, error) {
	var r io.Reader
	err := s.call("open", e.path, func() error {
		var err error
		r, err = s.be.open(e)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &file{s: s, r: r, e: e, left: e.size}, nil
}

// ReadDir lists a directory, following symlinks, sorted by name.
func (s *safeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := s.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	list, err := s.list(e)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(list))
	for i, e := range list {
		out[i] = e
	}
	return out, nil
}

// Stat describes a file, following symlinks.
func (s *safeFS) Stat(name string) (fs.FileInfo, error) {
	return s.resolve("stat", name, true)
}

// Lstat describes a file without following a final symlink.
func (s *safeFS) Lstat(name string) (fs.FileInfo, error) {
	return s.resolve("lstat", name, false)
}

// ReadLink returns a symlink's target as stored (not resolved).
func (s *safeFS) ReadLink(name string) (string, error) {
	e, err := s.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if e.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return s.readLinkEntry(e)
}

// tooBig reports whether a regular file claims more bytes than its whole
// file system holds: a corrupt size, or a huge sparse file whose holes
// would be read as zeros, byte by byte. Neither is read.
func (s *safeFS) tooBig(e *entry) bool {
	return e.size > s.size || e.size < 0
}

// isRegular reports whether name exists and is (resolves to) a regular file.
func (s *safeFS) isRegular(name string) bool {
	fi, err := s.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}

// file is an open regular file. Reads are serialised with the file
// system's other calls and stop at the size in the directory entry.
type file struct {
	s     *safeFS
	r     io.Reader
	e     *entry
	left  int64
	zeros int
}

func (f *file) Stat() (fs.FileInfo, error) { return f.e, nil }
func (f *file) Close() error               { return nil }

func (f *file) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	var n int
	err := f.s.call("read", f.e.path, func() error {
		var err error
		n, err = f.r.Read(p)
		return err
	})
	if n < 0 || n > len(p) {
		return 0, &fs.PathError{Op: "read", Path: f.e.path, Err: fmt.Errorf("%w: bad read count", ErrCorrupt)}
	}
	f.left -= int64(n)
	if err == io.EOF && f.left > 0 {
		err = &fs.PathError{Op: "read", Path: f.e.path, Err: fmt.Errorf("%w: file shorter than its size", ErrCorrupt)}
	}
	if n == 0 && err == nil {
		if f.zeros++; f.zeros > maxZeroReads {
			return 0, &fs.PathError{Op: "read", Path: f.e.path, Err: fmt.Errorf("%w: reader makes no progress", ErrCorrupt)}
		}
	} else {
		f.zeros = 0
	}
	return n, err
}

// dirFile is an open directory.
type dirFile struct {
	s      *safeFS
	e      *entry
	list   []*entry
	loaded bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.e, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.e.path, Err: errors.New("is a directory")}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.loaded {
		list, err := d.s.list(d.e)
		if err != nil {
			return nil, err
		}
		d.list, d.loaded = list, true
	}
	k := len(d.list)
	if n > 0 && n < k {
		k = n
	}
	if n > 0 && k == 0 {
		return nil, io.EOF
	}
	out := make([]fs.DirEntry, k)
	for i := range k {
		out[i] = d.list[i]
	}
	d.list = d.list[k:]
	return out, nil
}

// lru is a small LRU cache (the XFS library's inode cache).
type lru struct {
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type lruItem struct {
	key string
	val any
}

func newLRU(max int) *lru {
	return &lru{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) Add(key string, val any) bool {
	if el, ok := c.items[key]; ok {
		el.Value.(*lruItem).val = val
		c.ll.MoveToFront(el)
		return false
	}
	c.items[key] = c.ll.PushFront(&lruItem{key, val})
	if c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruItem).key)
		return true
	}
	return false
}

func (c *lru) Get(key string) (any, bool) {
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*lruItem).val, true
}

// The reader libraries log at debug level to stderr, hex dumps of hostile
// blocks included. Importing this package silences them, process-wide
// (trivy's VM walker uses the same libraries and benefits too). Done in
// init so that it happens before any reader runs.
func init() {
	ext4log.SetLogger(zap.NewNop().Sugar())
	xfslog.SetLogger(zap.NewNop().Sugar())
}
