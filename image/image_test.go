package image_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/image"
)

// twoLayers is a base layer (gzipped) and a top layer (plain) that deletes
// usr/bin/evil, makes opt/data opaque and deletes var/old, a directory.
func twoLayers(t testing.TB) (base, top testLayer) {
	base = mkLayer(t, true,
		archivetest.Entry{Name: "usr/", Type: tar.TypeDir},
		archivetest.Entry{Name: "usr/bin/", Type: tar.TypeDir},
		file("usr/bin/evil", "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"),
		file("usr/bin/ok", "ok"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
		file("opt/data/a", "a"),
		file("opt/data/b", "b"),
		file("var/old/x", "x"),
		file("var/keep", "keep"),
		archivetest.Entry{Name: "bin", Type: tar.TypeSymlink, Linkname: "usr/bin"},
	)
	top = mkLayer(t, false,
		file("usr/bin/.wh.evil", ""),
		file("opt/data/.wh..wh..opq", ""),
		file("opt/data/c", "c"),
		file("var/.wh.old", ""),
		file("etc/shadow", "root:*:19000:0:99999:7:::\n"),
		file("home/alice/.ssh/authorized_keys", "ssh-ed25519 AAAA alice\n"),
	)
	return base, top
}

func TestImageFormats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		build   func(t testing.TB, layers ...testLayer) *pkg
		gz      bool
		format  string
		tags    []string
		blobDir string
	}{
		{"docker save legacy", func(t testing.TB, l ...testLayer) *pkg { return dockerSave(t, true, l...) }, false, image.FormatDockerSave, []string{"acme/app:1.0"}, ""},
		{"docker save legacy gzipped", func(t testing.TB, l ...testLayer) *pkg { return dockerSave(t, true, l...) }, true, image.FormatDockerSave, []string{"acme/app:1.0"}, ""},
		{"docker save blobs", func(t testing.TB, l ...testLayer) *pkg { return dockerSave(t, false, l...) }, false, image.FormatDockerSave, []string{"acme/app:1.0"}, "blobs/sha256/"},
		{"oci layout", ociLayout, false, image.FormatOCILayout, []string{"docker.io/acme/app:1.0"}, "blobs/sha256/"},
		{"oci layout gzipped", ociLayout, true, image.FormatOCILayout, []string{"docker.io/acme/app:1.0"}, "blobs/sha256/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, top := twoLayers(t)
			path := tc.build(t, base, top).write(t, tc.gz)
			w := newWork(t)
			img, fds := w.open(t, path, testLimits())
			if img == nil || len(fds) != 0 {
				t.Fatalf("Open: image %v, findings %v", img, fds)
			}
			if img.Format != tc.format || img.Manifests != 1 || !slices.Equal(img.RepoTags, tc.tags) {
				t.Errorf("image = %s, %d manifests, tags %q", img.Format, img.Manifests, img.RepoTags)
			}
			if len(img.Layers) != 2 {
				t.Fatalf("layers = %+v", img.Layers)
			}
			for i, want := range []testLayer{base, top} {
				l := img.Layers[i]
				if l.Index != i || l.DiffID != want.diffID || l.Digest != digestOf(want.blob) {
					t.Errorf("layer %d = %+v, want diff id %s digest %s", i, l, want.diffID, digestOf(want.blob))
				}
				if b, err := os.ReadFile(l.Path); err != nil || !bytes.Equal(b, want.blob) {
					t.Errorf("layer %d path %s: %v", i, l.Path, err)
				}
				if tc.blobDir != "" && !strings.Contains(filepath.ToSlash(l.Path), tc.blobDir) {
					t.Errorf("layer %d path %s", i, l.Path)
				}
			}
			if !strings.HasPrefix(img.ConfigPath, img.Dir+string(filepath.Separator)) || !strings.HasPrefix(img.Dir, w.dir) {
				t.Errorf("dir %s, config %s", img.Dir, img.ConfigPath)
			}
			for _, o := range img.Other {
				if o.Path == "" || slices.ContainsFunc(img.Layers, func(l image.Layer) bool { return l.Path == o.DiskPath }) {
					t.Errorf("other file %+v", o)
				}
			}
			checkTrivyLayout(t, img)

			files, fds := w.extract(t, img, testLimits())
			if len(fds) != 0 {
				t.Fatalf("ExtractLayers findings: %v", fds)
			}
			got := fileMap(files)
			want := map[string]string{
				"usr/bin/evil":                    base.diffID, // deleted above, but shipped
				"usr/bin/ok":                      base.diffID,
				"etc/passwd":                      base.diffID,
				"opt/data/a":                      base.diffID,
				"opt/data/b":                      base.diffID,
				"var/old/x":                       base.diffID,
				"var/keep":                        base.diffID,
				"opt/data/c":                      top.diffID,
				"etc/shadow":                      top.diffID,
				"home/alice/.ssh/authorized_keys": top.diffID,
			}
			if !mapsEqual(got, want) {
				t.Errorf("files = %v\nwant %v", got, want)
			}
			for _, f := range files {
				if b, err := os.ReadFile(f.DiskPath); err != nil || int64(len(b)) != f.Size {
					t.Errorf("file %+v: %v", f, err)
				}
			}

			root := image.RootFS(img, files, w.dir)
			for _, gone := range []string{"usr/bin/evil", "usr/bin/.wh.evil", "opt/data/a", "opt/data/b", "var/old", "var/old/x", "var/.wh.old", "opt/data/.wh..wh..opq", "bin"} {
				if _, err := fs.Stat(root, gone); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%s) = %v, want not exist", gone, err)
				}
			}
			if b, err := fs.ReadFile(root, "etc/passwd"); err != nil || !strings.HasPrefix(string(b), "root:x:0:0") {
				t.Errorf("etc/passwd = %q, %v", b, err)
			}
			checkDir(t, root, "opt/data", "c")
			checkDir(t, root, "usr/bin", "ok")
			checkDir(t, root, "var", "keep")
			checkDir(t, root, ".", "etc", "home", "opt", "usr", "var")
			if err := fstest.TestFS(root, "etc/passwd", "etc/shadow", "usr/bin/ok", "opt/data/c", "var/keep", "home/alice/.ssh/authorized_keys"); err != nil {
				t.Error(err)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func checkDir(t testing.TB, fsys fs.FS, dir string, want ...string) {
	t.Helper()
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		t.Errorf("ReadDir(%s): %v", dir, err)
		return
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("ReadDir(%s) = %q, want %q", dir, got, want)
	}
}

// checkTrivyLayout checks that TrivyInput is an OCI layout whose blobs are
// the image's own files.
func checkTrivyLayout(t testing.TB, img *image.Image) {
	t.Helper()
	if img.TrivyInput == "" || strings.ContainsAny(img.TrivyInput, ":@") {
		t.Fatalf("TrivyInput = %q", img.TrivyInput)
	}
	for _, n := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(img.TrivyInput, n)); err != nil {
			t.Error(err)
		}
	}
	for _, l := range img.Layers {
		a, err := os.Stat(l.Path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(img.TrivyInput, "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Errorf("layer %d: trivy blob is not a hard link of %s", l.Index, l.Path)
		}
	}
}

func TestRootFSWhiteouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		layers  [][]archivetest.Entry
		present map[string]string // path -> content ("" for a directory)
		absent  []string
		dirs    map[string][]string
	}{
		{
			name: "whiteout then re-add in a later layer",
			layers: [][]archivetest.Entry{
				{file("etc/shadow", "old")},
				{file("etc/.wh.shadow", "")},
				{file("etc/shadow", "new")},
			},
			present: map[string]string{"etc/shadow": "new"},
		},
		{
			name: "whiteout and file in the same layer: the file stays",
			layers: [][]archivetest.Entry{
				{file("etc/shadow", "old")},
				{file("etc/.wh.shadow", ""), file("etc/shadow", "same-layer")},
			},
			present: map[string]string{"etc/shadow": "same-layer"},
		},
		{
			name: "opaque directory hides lower content, keeps its own and upper",
			layers: [][]archivetest.Entry{
				{file("root/.ssh/authorized_keys", "k"), file("root/.bashrc", "b")},
				{file("root/.wh..wh..opq", ""), file("root/.profile", "p")},
				{file("root/.ssh/id_rsa", "key")},
			},
			present: map[string]string{"root/.profile": "p", "root/.ssh/id_rsa": "key"},
			absent:  []string{"root/.bashrc", "root/.ssh/authorized_keys"},
			dirs:    map[string][]string{"root": {".profile", ".ssh"}, "root/.ssh": {"id_rsa"}},
		},
		{
			name: "deleted directory",
			layers: [][]archivetest.Entry{
				{file("home/bob/.ssh/authorized_keys", "k"), file("home/alice/x", "x")},
				{file("home/.wh.bob", "")},
			},
			present: map[string]string{"home/alice/x": "x"},
			absent:  []string{"home/bob", "home/bob/.ssh/authorized_keys"},
			dirs:    map[string][]string{"home": {"alice"}},
		},
		{
			name: "file replaces a directory, and a directory a file",
			layers: [][]archivetest.Entry{
				{file("etc/ssh/sshd_config", "c"), file("srv", "a file")},
				{file("etc/ssh", "now a file"), file("srv/www/index.html", "hi")},
			},
			present: map[string]string{"etc/ssh": "now a file", "srv/www/index.html": "hi"},
			absent:  []string{"etc/ssh/sshd_config"},
		},
		{
			name: "root opaque marker",
			layers: [][]archivetest.Entry{
				{file("etc/passwd", "p")},
				{file(".wh..wh..opq", ""), file("app/x", "x")},
			},
			present: map[string]string{"app/x": "x"},
			absent:  []string{"etc/passwd", "etc"},
			dirs:    map[string][]string{".": {"app"}},
		},
		{
			name: "whiteout of a parent in a middle layer, re-created above",
			layers: [][]archivetest.Entry{
				{file("opt/a/old", "o")},
				{file(".wh.opt", "")},
				{file("opt/a/new", "n")},
			},
			present: map[string]string{"opt/a/new": "n"},
			absent:  []string{"opt/a/old"},
			dirs:    map[string][]string{"opt/a": {"new"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var layers []testLayer
			for i, es := range tc.layers {
				layers = append(layers, mkLayer(t, i%2 == 0, es...))
			}
			w := newWork(t)
			img, fds := w.open(t, dockerSave(t, false, layers...).write(t, false), testLimits())
			if img == nil {
				t.Fatalf("Open: %v", fds)
			}
			files, fds := w.extract(t, img, testLimits())
			if len(fds) != 0 {
				t.Fatalf("findings %v", fds)
			}
			root := image.RootFS(img, files, w.dir)
			var check []string
			for p, want := range tc.present {
				b, err := fs.ReadFile(root, p)
				if err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", p, b, err, want)
				}
				check = append(check, p)
			}
			for _, p := range tc.absent {
				if _, err := fs.Stat(root, p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%s) = %v, want not exist", p, err)
				}
				if _, err := root.Open(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Open(%s) = %v, want not exist", p, err)
				}
			}
			for d, want := range tc.dirs {
				checkDir(t, root, d, want...)
			}
			if err := fstest.TestFS(root, check...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestRootFSEmpty(t *testing.T) {
	t.Parallel()
	root := image.RootFS(nil, nil, t.TempDir())
	if err := fstest.TestFS(root); err != nil {
		t.Error(err)
	}
	if _, err := root.Open("../x"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(../x) = %v", err)
	}
}
