package image

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/assetscan/assetscan/scanner"
)

// RootFS returns the image's final file system, as a container started from
// it would see it: the layers unpacked by ExtractLayers(ctx, img, dir, ...)
// applied base first, with whiteouts respected (".wh.<name>" in a layer
// hides <name> of the layers below; ".wh..wh..opq" in a directory hides
// what the layers below have in it; a file hides a lower directory of the
// same path and vice versa). Paths are relative to "/" ("etc/passwd").
//
// Nothing is copied: each call resolves the path to the topmost layer
// directory that has it and is not hidden, and a directory lists the union
// of the layers that show it. The whiteout markers themselves are never
// visible. Because archive.Extract creates no links, symlinks and hard
// links of the image are absent (a symlinked /etc/shadow is missing);
// nested archives appear as "<name>!" directories; modes, owners and times
// are those of the unpacked copy, not the image's. Layers that were not
// unpacked (the budget ran out) are left out, so deletions they make are not
// applied.
//
// files (what ExtractLayers returned) is not consulted: it does not hold the
// whiteout markers and empty directories RootFS needs, which are on disk.
// The returned fs.FS also implements fs.StatFS and fs.ReadDirFS; it reads
// the disk on every call and is safe for concurrent use.
func RootFS(img *Image, files []scanner.File, dir string) fs.FS {
	_ = files
	r := &rootFS{}
	if img == nil {
		return r
	}
	base := filepath.Join(dir, "layers")
	for _, l := range img.Layers {
		d := filepath.Join(base, strconv.Itoa(l.Index))
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			r.layers = append(r.layers, d)
		}
	}
	return r
}

// rootFS is the union of layer directories, base first.
type rootFS struct {
	layers []string
}

var (
	_ fs.StatFS    = (*rootFS)(nil)
	_ fs.ReadDirFS = (*rootFS)(nil)
)

// view holds the layer roots open for one call.
type view struct {
	roots []*os.Root
}

func (r *rootFS) view() (*view, error) {
	v := &view{}
	for _, d := range r.layers {
		root, err := os.OpenRoot(d)
		if err != nil {
			v.close()
			return nil, err
		}
		v.roots = append(v.roots, root)
	}
	return v, nil
}

func (v *view) close() {
	for _, r := range v.roots {
		r.Close()
	}
}

// exists reports whether name exists in layer i.
func (v *view) exists(i int, name string) bool {
	_, err := v.roots[i].Lstat(name)
	return err == nil
}

func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG)
}

// lookup returns the layers in which name is visible, topmost first, and
// whether it is a directory. A file is visible in one layer only; a
// directory in every layer down to the first that hides what is below. No
// layers: name does not exist.
func (v *view) lookup(name string) ([]int, bool, error) {
	if name == "." {
		var st []int
		for i := len(v.roots) - 1; i >= 0; i-- {
			st = append(st, i)
			if v.exists(i, whiteoutOpaque) {
				break
			}
		}
		return st, true, nil
	}
	comps := strings.Split(name, "/")
	for _, c := range comps {
		if strings.HasPrefix(c, whiteoutPrefix) {
			return nil, false, nil
		}
	}
	var st []int
	for i := len(v.roots) - 1; i >= 0; i-- {
		present, isDir, hidden, err := v.probe(i, comps)
		if err != nil {
			return nil, false, err
		}
		if present {
			switch {
			case len(st) == 0 && !isDir:
				return []int{i}, false, nil
			case !isDir:
				// A directory above hides this file.
				return st, true, nil
			default:
				st = append(st, i)
			}
		}
		if hidden {
			break
		}
	}
	return st, len(st) > 0, nil
}

// probe looks up comps in layer i: whether it is there (a directory or a
// regular file), and whether layer i hides it in the layers below (a
// whiteout of it or of a parent, an opaque parent or opaque itself, a
// parent that is not a directory).
func (v *view) probe(i int, comps []string) (present, isDir, hidden bool, err error) {
	cur := "."
	for k, c := range comps {
		if v.exists(i, path.Join(cur, whiteoutOpaque)) || v.exists(i, path.Join(cur, whiteoutPrefix+c)) {
			hidden = true
		}
		next := path.Join(cur, c)
		fi, err := v.roots[i].Lstat(next)
		if err != nil {
			if notExist(err) {
				return false, false, hidden, nil
			}
			return false, false, false, err
		}
		if k < len(comps)-1 {
			if !fi.IsDir() {
				return false, false, true, nil
			}
			cur = next
			continue
		}
		switch {
		case fi.IsDir():
			if v.exists(i, path.Join(next, whiteoutOpaque)) {
				hidden = true
			}
			return true, true, hidden, nil
		case fi.Mode().IsRegular():
			return true, false, true, nil
		}
		// Nothing else is ever unpacked; treat it as a hiding non-entry.
		return false, false, true, nil
	}
	return false, false, hidden, nil
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open implements fs.FS.
func (r *rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("open", name, fs.ErrInvalid)
	}
	v, err := r.view()
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	defer v.close()
	st, isDir, err := v.lookup(name)
	switch {
	case err != nil:
		return nil, pathErr("open", name, err)
	case len(st) == 0 && name == ".":
		return &dirFile{fsys: r, name: name, info: emptyDirInfo{}}, nil
	case len(st) == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	if isDir {
		fi, err := v.roots[st[0]].Lstat(name)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		return &dirFile{fsys: r, name: name, info: namedInfo{fi, path.Base(name)}}, nil
	}
	f, err := v.roots[st[0]].OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return f, nil
}

// Stat implements fs.StatFS.
func (r *rootFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("stat", name, fs.ErrInvalid)
	}
	v, err := r.view()
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	defer v.close()
	st, _, err := v.lookup(name)
	switch {
	case err != nil:
		return nil, pathErr("stat", name, err)
	case len(st) == 0 && name == ".":
		return emptyDirInfo{}, nil
	case len(st) == 0:
		return nil, pathErr("stat", name, fs.ErrNotExist)
	}
	fi, err := v.roots[st[0]].Lstat(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return namedInfo{fi, path.Base(name)}, nil
}

// ReadDir implements fs.ReadDirFS: the union of the directory's entries in
// the layers that show it, each from the topmost layer that has it, minus
// whiteouts and markers, sorted by name.
func (r *rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, pathErr("readdir", name, fs.ErrInvalid)
	}
	v, err := r.view()
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	defer v.close()
	st, isDir, err := v.lookup(name)
	switch {
	case err != nil:
		return nil, pathErr("readdir", name, err)
	case len(st) == 0 && name == ".":
		return nil, nil
	case len(st) == 0:
		return nil, pathErr("readdir", name, fs.ErrNotExist)
	case !isDir:
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	seen := map[string]bool{}
	hidden := map[string]bool{}
	var out []fs.DirEntry
	for _, i := range st {
		ents, err := readDirIn(v.roots[i], name)
		if err != nil {
			return nil, pathErr("readdir", name, err)
		}
		var wh []string
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, whiteoutPrefix) {
				if n != whiteoutOpaque {
					wh = append(wh, strings.TrimPrefix(n, whiteoutPrefix))
				}
				continue
			}
			if seen[n] || hidden[n] {
				continue
			}
			if !e.IsDir() && !e.Type().IsRegular() {
				continue
			}
			seen[n] = true
			out = append(out, e)
		}
		// A layer's whiteouts hide the entries of the layers below only.
		for _, n := range wh {
			hidden[n] = true
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func readDirIn(root *os.Root, name string) ([]os.DirEntry, error) {
	d, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// namedInfo is a FileInfo named as in the merged file system.
type namedInfo struct {
	fs.FileInfo
	name string
}

func (n namedInfo) Name() string { return n.name }

// emptyDirInfo is the root of an image without unpacked layers.
type emptyDirInfo struct{}

func (emptyDirInfo) Name() string       { return "." }
func (emptyDirInfo) Size() int64        { return 0 }
func (emptyDirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o555 }
func (emptyDirInfo) ModTime() time.Time { return time.Time{} }
func (emptyDirInfo) IsDir() bool        { return true }
func (emptyDirInfo) Sys() any           { return nil }

// dirFile is an open directory of the merged file system.
type dirFile struct {
	fsys    *rootFS
	name    string
	info    fs.FileInfo
	entries []fs.DirEntry
	loaded  bool
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, pathErr("read", d.name, syscall.EISDIR)
}

func (d *dirFile) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.loaded {
		ents, err := d.fsys.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.entries, d.loaded = ents, true
	}
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}
