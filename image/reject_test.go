package image_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/image"
)

func simpleLayer(t testing.TB) testLayer {
	return mkLayer(t, true, file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"))
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// build returns the package path; w is the work dir Open will use.
		build    func(t testing.TB, w work) string
		lim      func(*archive.Limits)
		rule     string
		msg      string
		findings []string // other rules expected
	}{
		{
			name: "garbage",
			build: func(t testing.TB, w work) string {
				return writeRaw(t, bytes.Repeat([]byte("not an image "), 1000))
			},
			rule: image.RuleUnreadable, msg: "not a tar",
		},
		{
			name:  "empty file",
			build: func(t testing.TB, w work) string { return writeRaw(t, nil) },
			rule:  image.RuleUnreadable, msg: "not a tar",
		},
		{
			name: "zip",
			build: func(t testing.TB, w work) string {
				p := filepath.Join(t.TempDir(), "x.zip")
				if err := archivetest.WriteZip(p, map[string][]byte{"manifest.json": []byte("[]")}); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule: image.RuleUnreadable, msg: "zip",
		},
		{
			name: "zstd package",
			build: func(t testing.TB, w work) string {
				return writeRaw(t, []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
			},
			rule: image.RuleUnreadable, msg: "zstd",
		},
		{
			name: "tar without image",
			build: func(t testing.TB, w work) string {
				return (&pkg{files: map[string][]byte{"README": []byte("hi")}}).write(t, false)
			},
			rule: image.RuleUnreadable, msg: "neither a manifest.json",
		},
		{
			name: "two images docker save",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, false, simpleLayer(t))
				q := dockerSave(t, false, mkLayer(t, false, file("x", "y")))
				for k, v := range q.files {
					p.files[k] = v
				}
				p.manifest = append(p.manifest, q.manifest...)
				return p.write(t, false)
			},
			rule: image.RuleMultipleImages, msg: "2 images",
		},
		{
			name: "two images oci",
			build: func(t testing.TB, w work) string {
				p := ociLayout(t, simpleLayer(t))
				d2 := p.ociImage(t, mkLayer(t, false, file("x", "y")))
				setIndex(t, p, indexDesc(t, p), d2)
				return p.write(t, true)
			},
			rule: image.RuleMultipleImages, msg: "2 images",
		},
		{
			name: "multi-platform index with both platforms present",
			build: func(t testing.TB, w work) string {
				p := ociLayout(t, simpleLayer(t))
				d1 := indexDesc(t, p)
				d2 := p.ociImage(t, mkLayer(t, false, file("x", "y")))
				nested := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{d1, d2}})
				p.files["blobs/sha256/"+hexOf(nested)] = nested
				setIndex(t, p, map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digestOf(nested), "size": len(nested)})
				return p.write(t, false)
			},
			rule: image.RuleMultipleImages, msg: "2 images",
		},
		{
			name: "layer path climbing out of the archive",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := dockerSave(t, true, l)
				// A valid blob where the traversal leads: reading it
				// would make Open succeed.
				outside := filepath.Join(w.base, "w", "sentinel", "layer.tar")
				if err := os.WriteFile(outside, l.blob, 0o644); err != nil {
					t.Fatal(err)
				}
				p.manifest[0]["Layers"] = []string{"../../sentinel/layer.tar"}
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a clean relative path",
		},
		{
			name: "absolute layer path",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.manifest[0]["Layers"] = []string{"/etc/passwd"}
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a clean relative path",
		},
		{
			name: "config path climbing out",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.manifest[0]["Config"] = "../../../../../../etc/passwd"
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a clean relative path",
		},
		{
			name: "dot-slash layer path",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, false, simpleLayer(t))
				p.manifest[0]["Layers"] = []string{"./" + p.manifest[0]["Layers"].([]string)[0]}
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a clean relative path",
		},
		{
			name: "missing layer blob",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := dockerSave(t, false, l)
				delete(p.files, "blobs/sha256/"+hexOf(l.blob))
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "missing",
		},
		{
			name: "missing oci layer blob",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := ociLayout(t, l)
				delete(p.files, "blobs/sha256/"+hexOf(l.blob))
				return p.write(t, true)
			},
			rule: image.RuleUnreadable, msg: "missing",
		},
		{
			name: "symlinked layer blob",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := dockerSave(t, true, l)
				name := p.manifest[0]["Layers"].([]string)[0]
				delete(p.files, name)
				p.files["real.tar"] = l.blob
				p.extra = append(p.extra, archivetest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: "../../real.tar"})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "outside the package; links leaving the package are never followed",
		},
		{
			name: "symlinked layer blob of another digest",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := dockerSave(t, true, l)
				name := p.manifest[0]["Layers"].([]string)[0]
				delete(p.files, name)
				p.files["other/layer.tar"] = append([]byte(nil), l.blob[:len(l.blob)-1]...)
				p.extra = append(p.extra, archivetest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: "../other/layer.tar"})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "is not the layer's diff id",
		},
		{
			name: "symlinked layer blob to a link loop",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := dockerSave(t, true, l)
				name := p.manifest[0]["Layers"].([]string)[0]
				delete(p.files, name)
				p.extra = append(p.extra, archivetest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: "../x/layer.tar"},
					archivetest.Entry{Name: "x/layer.tar", Type: tar.TypeSymlink, Linkname: "../" + name})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "chain of more than",
		},
		{
			name: "symlinked blob pointing outside",
			build: func(t testing.TB, w work) string {
				l := simpleLayer(t)
				p := dockerSave(t, true, l)
				name := p.manifest[0]["Layers"].([]string)[0]
				delete(p.files, name)
				p.extra = append(p.extra, archivetest.Entry{Name: name, Type: tar.TypeSymlink, Linkname: "/etc/passwd"})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "absolute path", findings: []string{archive.RuleLinkEscape},
		},
		{
			name: "hard-linked config",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				cfg := p.manifest[0]["Config"].(string)
				p.files["c"] = p.files[cfg]
				delete(p.files, cfg)
				p.extra = append(p.extra, archivetest.Entry{Name: cfg, Type: tar.TypeLink, Linkname: "c"})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "missing",
		},
		{
			name: "layer blob is a directory",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.manifest[0]["Layers"] = []string{strings.Repeat("a", 64)}
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a regular file",
		},
		{
			name: "garbled manifest.json",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.manifest = nil
				p.files["manifest.json"] = []byte(`[{"Config": "x.json", "Layers": [`)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not valid JSON",
		},
		{
			name: "manifest.json with duplicate names",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				m := mustJSON(t, p.manifest)
				p.manifest = nil
				p.files["manifest.json"] = bytes.Replace(m, []byte(`{`), []byte(`{"Config":"evil.json",`), 1)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "duplicate names",
		},
		{
			name: "manifest.json of the wrong shape",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.manifest = nil
				p.files["manifest.json"] = []byte(`{"Config": "x"}`)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a list",
		},
		{
			name: "empty manifest.json",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.manifest = nil
				p.files["manifest.json"] = []byte(`[]`)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "no image",
		},
		{
			name: "huge manifest.json",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				m := mustJSON(t, p.manifest)
				p.manifest = nil
				p.files["manifest.json"] = append(m, bytes.Repeat([]byte(" "), 17<<20)...)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "more than the 16777216 allowed",
		},
		{
			name: "config with fewer diff ids than layers",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, false, simpleLayer(t), mkLayer(t, false, file("b", "b")))
				cfg := configJSON(t, simpleLayer(t).diffID)
				p.files["cfg.json"] = cfg
				p.manifest[0]["Config"] = "cfg.json"
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "lists 1 layer diff ids",
		},
		{
			name: "config that is not a config",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, false, simpleLayer(t))
				p.files["cfg.json"] = []byte(`{"rootfs": {"diff_ids": ["sha256:zz"]}}`)
				p.manifest[0]["Config"] = "cfg.json"
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "cannot be parsed",
		},
		{
			name: "config altered (digest in its name)",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, false, simpleLayer(t))
				cfg := p.manifest[0]["Config"].(string)
				p.files[cfg] = bytes.Replace(p.files[cfg], []byte("amd64"), []byte("arm64"), 1)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "hashes to",
		},
		{
			name: "oci manifest altered",
			build: func(t testing.TB, w work) string {
				p := ociLayout(t, simpleLayer(t))
				d := indexDesc(t, p)
				name := "blobs/sha256/" + strings.TrimPrefix(d["digest"].(string), "sha256:")
				p.files[name] = bytes.Replace(p.files[name], []byte(`manifest.v1+json`), []byte(`manifest.v1+jsoN`), 1)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "hashes to",
		},
		{
			name: "oci layout without oci-layout file",
			build: func(t testing.TB, w work) string {
				p := ociLayout(t, simpleLayer(t))
				delete(p.files, "oci-layout")
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "no oci-layout",
		},
		{
			name: "oci index entry with a traversal digest",
			build: func(t testing.TB, w work) string {
				p := ociLayout(t, simpleLayer(t))
				setIndex(t, p, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:../../../../etc/passwd", "size": 10})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "not a sha256 digest",
		},
		{
			name: "oci index with only an artifact",
			build: func(t testing.TB, w work) string {
				p := ociLayout(t, simpleLayer(t))
				d := indexDesc(t, p)
				d["mediaType"] = "application/vnd.cncf.helm.chart.v1"
				setIndex(t, p, d)
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "no container image manifest",
		},
		{
			name: "zstd layer",
			build: func(t testing.TB, w work) string {
				l := testLayer{blob: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, make([]byte, 100)...), diffID: digestOf([]byte("x"))}
				return dockerSave(t, true, l).write(t, false)
			},
			rule: image.RuleUnreadable, msg: "zstd",
		},
		{
			name: "zstd oci layer by media type",
			build: func(t testing.TB, w work) string {
				p := &pkg{files: map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}}
				l := simpleLayer(t)
				cfg := configJSON(t, l.diffID)
				p.files["blobs/sha256/"+hexOf(cfg)] = cfg
				p.files["blobs/sha256/"+hexOf(l.blob)] = l.blob
				man := mustJSON(t, map[string]any{
					"schemaVersion": 2,
					"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)},
					"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digestOf(l.blob), "size": len(l.blob)}},
				})
				p.files["blobs/sha256/"+hexOf(man)] = man
				setIndex(t, p, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digestOf(man), "size": len(man)})
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "zstd",
		},
		{
			name: "package bomb",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.files["padding"] = make([]byte, 2<<20)
				return p.write(t, true)
			},
			lim:  func(l *archive.Limits) { l.MaxExpandedBytes = 1 << 20 },
			rule: image.RuleUnreadable, msg: "could not be unpacked completely", findings: []string{archive.RuleBomb},
		},
		{
			name: "traversal entry in the package",
			build: func(t testing.TB, w work) string {
				p := dockerSave(t, true, simpleLayer(t))
				p.extra = append(p.extra, file("../../sentinel/pwned", "x"))
				delete(p.files, p.manifest[0]["Layers"].([]string)[0])
				return p.write(t, false)
			},
			rule: image.RuleUnreadable, msg: "missing", findings: []string{archive.RuleTraversal},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWork(t)
			path := tc.build(t, w)
			lim := testLimits()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			img, fds := w.open(t, path, lim)
			if img != nil {
				t.Fatalf("Open returned an image: %+v", img)
			}
			var main []assetscan.Finding
			for _, f := range fds {
				if f.Rule == tc.rule {
					main = append(main, f)
				}
			}
			if len(main) != 1 || !strings.Contains(main[0].Message, tc.msg) || main[0].Check != assetscan.CheckFormat {
				t.Errorf("findings = %+v, want one %s saying %q", fds, tc.rule, tc.msg)
			}
			for _, r := range tc.findings {
				if !hasRule(fds, r) {
					t.Errorf("findings = %v, want %s too", rules(fds), r)
				}
			}
			if _, err := os.Stat(filepath.Join(w.base, "w", "sentinel", "pwned")); err == nil {
				t.Error("written outside")
			}
		})
	}
}

func writeRaw(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// indexDesc returns the first descriptor of p's index.json.
func indexDesc(t testing.TB, p *pkg) map[string]any {
	t.Helper()
	var idx struct{ Manifests []map[string]any }
	if err := jsonUnmarshal(p.files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	return idx.Manifests[0]
}

func setIndex(t testing.TB, p *pkg, descs ...map[string]any) {
	t.Helper()
	p.files["index.json"] = mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     descs,
	})
}
