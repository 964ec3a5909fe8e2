package image_test

import (
	"archive/tar"
	"testing"

	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/image"
)

// Legacy docker save writes a repeated layer as a relative symlink (or a
// hard link) to the identical layer.tar: it resolves inside the package to
// a blob whose digest is the layer's diff id, and reads like a copy.
func TestRepeatedLegacyLayerLink(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		gz   bool
		link func(first, name string) archivetest.Entry
	}{
		{"symlink", false, func(first, name string) archivetest.Entry {
			return archivetest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: "../" + first}
		}},
		{"symlink gzipped package", true, func(first, name string) archivetest.Entry {
			return archivetest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: "../" + first}
		}},
		{"hard link", false, func(first, name string) archivetest.Entry {
			return archivetest.Entry{Name: name, Type: tar.TypeLink, Linkname: first}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := mkLayer(t, false, file("etc/a", "a"))
			b := mkLayer(t, false, file("etc/b", "b"))
			p := dockerSave(t, true, a, b, a)
			names := p.manifest[0]["Layers"].([]string)
			delete(p.files, names[2])
			p.extra = append(p.extra, c.link(names[0], names[2]))
			w := newWork(t)
			img, fds := w.open(t, p.write(t, c.gz), testLimits())
			if img == nil {
				t.Fatalf("Open: no image: %+v", fds)
			}
			if len(img.Layers) != 3 || img.Layers[2].Digest != a.diffID {
				t.Fatalf("layers %+v", img.Layers)
			}
			files, fds2 := w.extract(t, img, testLimits())
			if hasRule(fds2, image.RuleLayerDigestMismatch) || hasRule(fds2, image.RuleUnreadable) {
				t.Errorf("findings %+v", fds2)
			}
			n := 0
			for _, f := range files {
				if f.Layer == a.diffID || f.Layer == img.Layers[2].DiffID {
					n++
				}
			}
			if got := fileMap(files); len(got) == 0 || n == 0 {
				t.Errorf("files %+v", files)
			}
		})
	}
}
