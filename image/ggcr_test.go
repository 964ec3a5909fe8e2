package image_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/image"
)

// ggcrImage builds an image with go-containerregistry from two layers.
func ggcrImage(t testing.TB, opts ...tarball.LayerOption) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for _, es := range [][]archivetest.Entry{
		{file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), file("usr/bin/evil", "evil")},
		{file("usr/bin/.wh.evil", ""), file("app/main", "main")},
	} {
		tb, err := archivetest.Bytes(archive.FormatTar, es)
		if err != nil {
			t.Fatal(err)
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil }, opts...)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tarDir packs the directory dir into a tar (gzipped or not).
func tarDir(t testing.TB, dir string, gz bool) string {
	t.Helper()
	var entries []archivetest.Entry
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			entries = append(entries, archivetest.Entry{Name: filepath.ToSlash(rel) + "/", Type: tar.TypeDir})
			return nil
		}
		b, err := os.ReadFile(p)
		entries = append(entries, archivetest.Entry{Name: filepath.ToSlash(rel), Body: b})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f := archive.FormatTar
	if gz {
		f = archive.FormatTarGz
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	if err := archivetest.Write(out, f, entries); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGGCRWritten reads packages written by go-containerregistry (the
// library trivy reads images with): its docker save tarball and its OCI
// layout.
func TestGGCRWritten(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		write  func(t testing.TB, img v1.Image) string
		format string
	}{
		{"tarball", func(t testing.TB, img v1.Image) string {
			p := filepath.Join(t.TempDir(), "image.tar")
			ref, err := name.ParseReference("example.com/acme/app:1")
			if err != nil {
				t.Fatal(err)
			}
			if err := tarball.WriteToFile(p, ref, img); err != nil {
				t.Fatal(err)
			}
			return p
		}, image.FormatDockerSave},
		{"layout gzipped", func(t testing.TB, img v1.Image) string {
			dir := t.TempDir()
			lp, err := layout.Write(dir, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := lp.AppendImage(img); err != nil {
				t.Fatal(err)
			}
			return tarDir(t, dir, true)
		}, image.FormatOCILayout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := ggcrImage(t)
			w := newWork(t)
			got, fds := w.open(t, tc.write(t, img), testLimits())
			if got == nil || len(fds) != 0 {
				t.Fatalf("Open: %v", fds)
			}
			if got.Format != tc.format || len(got.Layers) != 2 {
				t.Fatalf("image %+v", got)
			}
			ls, _ := img.Layers()
			for i, l := range ls {
				d, _ := l.Digest()
				diff, _ := l.DiffID()
				if got.Layers[i].Digest != d.String() || got.Layers[i].DiffID != diff.String() {
					t.Errorf("layer %d = %+v, want %s %s", i, got.Layers[i], d, diff)
				}
			}
			files, fds := w.extract(t, got, testLimits())
			if len(fds) != 0 {
				t.Fatalf("ExtractLayers: %v", fds)
			}
			if m := fileMap(files); m["usr/bin/evil"] != got.Layers[0].DiffID || m["app/main"] != got.Layers[1].DiffID {
				t.Errorf("files %v", m)
			}
			root := image.RootFS(got, files, w.dir)
			checkDir(t, root, "usr/bin")
			checkDir(t, root, ".", "app", "etc", "usr")

			// go-containerregistry reads the layout written for trivy
			// back to the same image.
			lp, err := layout.FromPath(got.TrivyInput)
			if err != nil {
				t.Fatal(err)
			}
			ii, err := lp.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			im, err := ii.IndexManifest()
			if err != nil || len(im.Manifests) != 1 {
				t.Fatalf("index %v %v", im, err)
			}
			back, err := ii.Image(im.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			wantCfg, _ := img.ConfigName()
			if gotCfg, err := back.ConfigName(); err != nil || gotCfg != wantCfg {
				t.Errorf("config %s %v, want %s", gotCfg, err, wantCfg)
			}
			bls, err := back.Layers()
			if err != nil || len(bls) != 2 {
				t.Fatalf("layers %v %v", bls, err)
			}
			for i, l := range bls {
				diff, err := l.DiffID()
				if err != nil || diff.String() != got.Layers[i].DiffID {
					t.Errorf("layer %d diff id %s %v", i, diff, err)
				}
				rc, err := l.Uncompressed()
				if err != nil {
					t.Fatal(err)
				}
				h, _, err := v1.SHA256(rc)
				rc.Close()
				if err != nil || h.String() != got.Layers[i].DiffID {
					t.Errorf("layer %d content hashes to %s %v", i, h, err)
				}
			}
		})
	}
}

// TestGGCRZstd: zstd layers written by go-containerregistry are reported as
// unsupported.
func TestGGCRZstd(t *testing.T) {
	t.Parallel()
	img := ggcrImage(t, tarball.WithCompression(compression.ZStd))
	p := filepath.Join(t.TempDir(), "image.tar")
	ref, _ := name.ParseReference("example.com/acme/app:1")
	if err := tarball.WriteToFile(p, ref, img); err != nil {
		t.Fatal(err)
	}
	w := newWork(t)
	got, fds := w.open(t, p, testLimits())
	if got != nil || !hasRule(fds, image.RuleUnreadable) {
		t.Fatalf("Open = %v, %v", got, fds)
	}
}
