package archive_test

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/assetscan/assetscan/archive"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

const bombSize = 200 << 20

func writeZipBomb(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "zeros.bin", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(w, zeros{}, bombSize); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeTarGzBomb(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros.bin", Mode: 0o644, Size: bombSize}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeros{}, bombSize); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBomb extracts 200 MiB of deflated zeros (ratio about 1029) with the
// default limits. It is not parallel: it measures memory.
func TestBomb(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		f     archive.Format
		write func(*testing.T, string)
	}{
		{"bomb.zip", archive.FormatZip, writeZipBomb},
		{"bomb.tar.gz", archive.FormatTarGz, writeTarGzBomb},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := filepath.Join(dir, c.name)
			c.write(t, src)
			fi, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes", c.name, fi.Size())
			s := newSandbox(t)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := s.extract(t, src, c.f, archive.DefaultLimits())
			runtime.ReadMemStats(&after)
			if got := rules(res); len(got) != 1 || got[0] != "archive.bomb zeros.bin" {
				t.Errorf("findings %q", got)
			}
			const bound = 64 << 20
			if res.ExpandedBytes > bound {
				t.Errorf("ExpandedBytes = %d", res.ExpandedBytes)
			}
			var onDisk int64
			_ = filepath.WalkDir(s.dest, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if fi, err := d.Info(); err == nil {
						onDisk += fi.Size()
					}
				}
				return nil
			})
			if onDisk > bound {
				t.Errorf("%d bytes on disk", onDisk)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > bound {
				t.Errorf("allocated %d bytes", alloc)
			}
			if after.HeapInuse > before.HeapInuse+bound {
				t.Errorf("heap in use grew from %d to %d", before.HeapInuse, after.HeapInuse)
			}
			t.Logf("expanded %d bytes, %d on disk, allocated %d bytes", res.ExpandedBytes, onDisk, after.TotalAlloc-before.TotalAlloc)
		})
	}
}
