package image_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/image"
	"github.com/assetscan/assetscan/scanner"
)

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func hexOf(b []byte) string { return strings.TrimPrefix(digestOf(b), "sha256:") }

// testLayer is a layer blob with its diff id.
type testLayer struct {
	blob   []byte
	diffID string
}

// mkLayer builds a layer from tar entries, gzipped or not.
func mkLayer(t testing.TB, gz bool, entries ...archivetest.Entry) testLayer {
	t.Helper()
	tb, err := archivetest.Bytes(archive.FormatTar, entries)
	if err != nil {
		t.Fatal(err)
	}
	l := testLayer{blob: tb, diffID: digestOf(tb)}
	if gz {
		if l.blob, err = archivetest.Gzip(tb); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// file is a regular tar entry.
func file(name, body string) archivetest.Entry {
	return archivetest.Entry{Name: name, Body: []byte(body)}
}

func configJSON(t testing.TB, diffIDs ...string) []byte {
	t.Helper()
	if diffIDs == nil {
		diffIDs = []string{}
	}
	b, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func diffIDsOf(layers []testLayer) []string {
	var ids []string
	for _, l := range layers {
		ids = append(ids, l.diffID)
	}
	return ids
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkg is the outer archive of a fixture: member name -> content, plus extra
// raw entries (links, hostile names).
type pkg struct {
	files map[string][]byte
	extra []archivetest.Entry
	// manifest is docker save's manifest.json, written by write when set.
	manifest []map[string]any
}

// dockerSave builds a docker save archive holding one image made of
// layers: legacy (<n>/layer.tar, <hex>.json) or Docker 25+ (blobs/sha256).
func dockerSave(t testing.TB, legacy bool, layers ...testLayer) *pkg {
	t.Helper()
	p := &pkg{files: map[string][]byte{}}
	cfg := configJSON(t, diffIDsOf(layers)...)
	var cfgName string
	var names []string
	if legacy {
		cfgName = hexOf(cfg) + ".json"
		for i, l := range layers {
			n := strings.Repeat(string(rune('a'+i)), 64) + "/layer.tar"
			p.files[n] = l.blob
			names = append(names, n)
		}
	} else {
		cfgName = "blobs/sha256/" + hexOf(cfg)
		for _, l := range layers {
			n := "blobs/sha256/" + hexOf(l.blob)
			p.files[n] = l.blob
			names = append(names, n)
		}
	}
	p.files[cfgName] = cfg
	p.manifest = []map[string]any{{"Config": cfgName, "RepoTags": []string{"acme/app:1.0"}, "Layers": names}}
	return p
}

// ociLayout builds an OCI image layout holding one image made of layers.
func ociLayout(t testing.TB, layers ...testLayer) *pkg {
	t.Helper()
	p := &pkg{files: map[string][]byte{}}
	p.files["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	mdesc := p.ociImage(t, layers...)
	mdesc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": "1.0", "io.containerd.image.name": "docker.io/acme/app:1.0"}
	p.files["index.json"] = mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{mdesc},
	})
	return p
}

// ociImage adds the blobs of an image to p and returns its manifest's
// descriptor.
func (p *pkg) ociImage(t testing.TB, layers ...testLayer) map[string]any {
	t.Helper()
	cfg := configJSON(t, diffIDsOf(layers)...)
	p.files["blobs/sha256/"+hexOf(cfg)] = cfg
	var ldescs []any
	for _, l := range layers {
		mt := "application/vnd.oci.image.layer.v1.tar"
		if bytes.HasPrefix(l.blob, []byte{0x1f, 0x8b}) {
			mt += "+gzip"
		}
		p.files["blobs/sha256/"+hexOf(l.blob)] = l.blob
		ldescs = append(ldescs, map[string]any{"mediaType": mt, "digest": digestOf(l.blob), "size": len(l.blob)})
	}
	man := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
		"layers":        ldescs,
	})
	p.files["blobs/sha256/"+hexOf(man)] = man
	return map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digestOf(man), "size": len(man)}
}

// write writes the package to a file in a new temp dir, as a tar or a
// tar.gz.
func (p *pkg) write(t testing.TB, gz bool) string {
	t.Helper()
	files := p.files
	if p.manifest != nil {
		files = maps(files)
		files["manifest.json"] = mustJSON(t, p.manifest)
	}
	entries := append(archivetest.Files(files), p.extra...)
	f := archive.FormatTar
	name := "image.tar"
	if gz {
		f, name = archive.FormatTarGz, "image.tar.gz"
	}
	path := filepath.Join(t.TempDir(), name)
	if err := archivetest.Write(path, f, entries); err != nil {
		t.Fatal(err)
	}
	return path
}

func maps(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// work is a scan's work dir: a temp dir with a sentinel beside the work
// dir, so that writes escaping it can be seen.
type work struct {
	base, dir string
}

func newWork(t testing.TB) work {
	t.Helper()
	base := t.TempDir()
	w := work{base: base, dir: filepath.Join(base, "w", "scan")}
	if err := os.MkdirAll(filepath.Join(base, "w", "sentinel"), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// checkContained fails if anything but the work dir and the sentinel exists
// under base.
func (w work) checkContained(t testing.TB) {
	t.Helper()
	err := filepath.Walk(w.base, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case p == w.base, p == filepath.Join(w.base, "w"), p == filepath.Join(w.base, "w", "sentinel"):
			return nil
		case strings.HasPrefix(p, filepath.Join(w.base, "w", "sentinel")+string(filepath.Separator)):
			if filepath.Base(p) == "pwned" {
				t.Errorf("written outside the work dir: %s", p)
			}
			return nil
		case p == w.dir || strings.HasPrefix(p, w.dir+string(filepath.Separator)):
			if fi.Mode()&os.ModeSymlink != 0 {
				t.Errorf("symlink in the work dir: %s", p)
			}
			return nil
		}
		t.Errorf("written outside the work dir: %s", p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testLimits() archive.Limits {
	l := archive.DefaultLimits()
	l.MaxExpandedBytes = 256 << 20
	l.MaxEntries = 100_000
	return l
}

// open runs Open and checks what holds for any input.
func (w work) open(t testing.TB, path string, lim archive.Limits) (*image.Image, []assetscan.Finding) {
	t.Helper()
	img, fs, err := image.Open(context.Background(), path, w.dir, lim)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	w.checkContained(t)
	if img == nil && !hasRule(fs, image.RuleUnreadable) && !hasRule(fs, image.RuleMultipleImages) {
		t.Errorf("Open returned no image and no image finding: %v", fs)
	}
	for _, f := range fs {
		if f.Rule == "" || f.Check == "" || f.Message == "" {
			t.Errorf("incomplete finding %+v", f)
		}
	}
	return img, fs
}

// extract runs ExtractLayers and checks what holds for any input.
func (w work) extract(t testing.TB, img *image.Image, lim archive.Limits) ([]scanner.File, []assetscan.Finding) {
	t.Helper()
	files, fs, err := image.ExtractLayers(context.Background(), img, w.dir, lim)
	if err != nil {
		t.Fatalf("ExtractLayers: %v", err)
	}
	w.checkContained(t)
	return files, fs
}

func hasRule(fs []assetscan.Finding, rule string) bool {
	return slices.ContainsFunc(fs, func(f assetscan.Finding) bool { return f.Rule == rule })
}

func rules(fs []assetscan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

// fileMap maps Path -> Layer of files.
func fileMap(files []scanner.File) map[string]string {
	m := map[string]string{}
	for _, f := range files {
		m[f.Path] = f.Layer
	}
	return m
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
