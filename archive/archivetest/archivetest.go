// Package archivetest builds archive fixtures for tests: plain zip, tar and
// tar.gz files, ZIP64 zips, chains of nested archives, and archives with
// hostile entries (traversal names, links, device files, encrypted or
// corrupt zip entries). Everything is built in memory; fixtures are meant to
// be small.
package archivetest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/assetscan/assetscan/archive"
)

// modTime is the modification time of every entry, so fixtures are
// reproducible.
func modTime() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }

// Entry is one entry of a fixture archive.
type Entry struct {
	// Name is written as is: it may be hostile ("../x", "/etc/x").
	Name string
	// Body is the entry's data (regular files; for zip symlinks, Linkname
	// is used instead).
	Body []byte
	// Type is the tar type flag; zero means a regular file. Zips support
	// tar.TypeReg, TypeDir, TypeSymlink, TypeChar, TypeBlock and TypeFifo
	// (as Unix mode bits); a zip directory's Name should end in "/".
	Type byte
	// Linkname is the target of a symlink or hardlink.
	Linkname string
	// Mode is the permission bits (and setuid etc.); 0o644 when zero.
	Mode int64
	// Size, when non-zero, overrides the tar header's size (for truncated
	// or lying entries). Tar only.
	Size int64
	// Raw, when set, writes a zip entry's Body as is (already compressed,
	// or not at all) with these header fields. Zip only.
	Raw *ZipRaw
}

// ZipRaw holds the header fields of a zip entry written raw: for encrypted
// entries, unsupported compression methods, or bad checksums.
type ZipRaw struct {
	Method           uint16
	Flags            uint16 // bit 0: encrypted
	CRC32            uint32
	UncompressedSize uint64
}

// Files returns the entries for a name → content map, sorted by name.
func Files(files map[string][]byte) []Entry {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	es := make([]Entry, len(names))
	for i, n := range names {
		es[i] = Entry{Name: n, Body: files[n]}
	}
	return es
}

// Bytes returns an archive of format f holding entries.
func Bytes(f archive.Format, entries []Entry) ([]byte, error) {
	switch f {
	case archive.FormatZip:
		return zipBytes(entries)
	case archive.FormatTar:
		return tarBytes(entries)
	case archive.FormatTarGz:
		t, err := tarBytes(entries)
		if err != nil {
			return nil, err
		}
		return Gzip(t)
	}
	return nil, fmt.Errorf("archivetest: unsupported format %q", f)
}

// Write writes an archive of format f holding entries to path.
func Write(path string, f archive.Format, entries []Entry) error {
	b, err := Bytes(f, entries)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// WriteZip writes a zip (deflated entries) holding files to path.
func WriteZip(path string, files map[string][]byte) error {
	return Write(path, archive.FormatZip, Files(files))
}

// WriteTar writes a tar holding files to path.
func WriteTar(path string, files map[string][]byte) error {
	return Write(path, archive.FormatTar, Files(files))
}

// WriteTarGz writes a gzipped tar holding files to path.
func WriteTarGz(path string, files map[string][]byte) error {
	return Write(path, archive.FormatTarGz, Files(files))
}

// Gzip compresses b with gzip (best compression).
func Gzip(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Nest writes to path a chain of nested archives, len(formats) levels deep:
// the archive at path has format formats[0] and holds one member of format
// formats[1] named "a.<ext>", which holds one member "b.<ext>" of format
// formats[2], and so on; the innermost archive holds files. It returns the
// paths of files inside the package as archive.Extract reports them, e.g.
// "a.tar.gz!/b.zip!/eicar.txt".
func Nest(path string, formats []archive.Format, files map[string][]byte) ([]string, error) {
	if len(formats) == 0 {
		return nil, fmt.Errorf("archivetest: no formats")
	}
	prefix := ""
	for i, f := range formats[1:] {
		prefix += fmt.Sprintf("%c.%s!/", 'a'+i%26, f)
	}
	entries := Files(files)
	paths := make([]string, len(entries))
	for i, e := range entries {
		paths[i] = prefix + e.Name
	}
	b, err := Bytes(formats[len(formats)-1], entries)
	if err != nil {
		return nil, err
	}
	for i := len(formats) - 2; i >= 0; i-- {
		name := fmt.Sprintf("%c.%s", 'a'+i%26, formats[i+1])
		b, err = Bytes(formats[i], []Entry{{Name: name, Body: b}})
		if err != nil {
			return nil, err
		}
	}
	return paths, os.WriteFile(path, b, 0o644)
}

func tarBytes(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:     e.Name,
			Typeflag: e.Type,
			Linkname: e.Linkname,
			Mode:     e.Mode,
			ModTime:  modTime(),
			Format:   tar.FormatPAX,
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
		case tar.TypeChar, tar.TypeBlock:
			h.Devmajor, h.Devminor = 1, 3
		default:
			h.Size = int64(len(e.Body))
		}
		if e.Size != 0 {
			h.Size = e.Size
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("archivetest: tar header %q: %w", e.Name, err)
		}
		if len(e.Body) > 0 {
			if _, err := tw.Write(e.Body); err != nil && e.Size == 0 {
				return nil, fmt.Errorf("archivetest: tar data %q: %w", e.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil && !hasSizeOverride(entries) {
		return nil, fmt.Errorf("archivetest: tar: %w", err)
	}
	return buf.Bytes(), nil
}

func hasSizeOverride(entries []Entry) bool {
	return slices.ContainsFunc(entries, func(e Entry) bool { return e.Size != 0 })
}

func zipBytes(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: zip.Deflate, Modified: modTime()}
		perm := fs.FileMode(e.Mode & 0o777)
		if perm == 0 {
			perm = 0o644
		}
		body := e.Body
		switch e.Type {
		case 0, tar.TypeReg:
			h.SetMode(perm)
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			body = []byte(e.Linkname)
		case tar.TypeChar:
			h.SetMode(fs.ModeDevice | fs.ModeCharDevice | perm)
		case tar.TypeBlock:
			h.SetMode(fs.ModeDevice | perm)
		case tar.TypeFifo:
			h.SetMode(fs.ModeNamedPipe | perm)
		default:
			return nil, fmt.Errorf("archivetest: zip cannot hold tar type %q (%q)", e.Type, e.Name)
		}
		if e.Raw != nil {
			h.Method = e.Raw.Method
			h.Flags |= e.Raw.Flags
			h.CRC32 = e.Raw.CRC32
			h.CompressedSize64 = uint64(len(body))
			h.UncompressedSize64 = e.Raw.UncompressedSize
			w, err := zw.CreateRaw(h)
			if err != nil {
				return nil, fmt.Errorf("archivetest: zip %q: %w", e.Name, err)
			}
			if _, err := w.Write(body); err != nil {
				return nil, fmt.Errorf("archivetest: zip %q: %w", e.Name, err)
			}
			continue
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("archivetest: zip %q: %w", e.Name, err)
		}
		if len(body) > 0 {
			if _, err := w.Write(body); err != nil {
				return nil, fmt.Errorf("archivetest: zip %q: %w", e.Name, err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("archivetest: zip: %w", err)
	}
	return buf.Bytes(), nil
}
