package image_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/assetscan/assetscan/image"
)

// FuzzOpen: whatever the package, Open, ExtractLayers and RootFS neither
// fail (errors are operational only), nor write outside the work dir.
func FuzzOpen(f *testing.F) {
	base, top := twoLayers(f)
	for _, p := range []string{
		dockerSave(f, true, base, top).write(f, false),
		dockerSave(f, false, base, top).write(f, true),
		ociLayout(f, base, top).write(f, false),
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lim := testLimits()
		lim.MaxExpandedBytes = 8 << 20
		lim.MaxEntries = 1000
		w := newWork(t)
		img, _ := w.open(t, path, lim)
		if img == nil {
			return
		}
		files, _, err := image.ExtractLayers(context.Background(), img, w.dir, lim)
		if err != nil {
			t.Fatalf("ExtractLayers: %v", err)
		}
		w.checkContained(t)
		root := image.RootFS(img, files, w.dir)
		if _, err := root.Open("."); err != nil {
			t.Fatal(err)
		}
	})
}
