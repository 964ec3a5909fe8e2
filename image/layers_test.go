package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/image"
)

func TestExtractLayersFindings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		build func(t testing.TB) *pkg
		lim   func(*archive.Limits)
		// want maps a rule to the layer index its finding names (-1: any).
		want map[string]int
		// files that must be listed, path -> layer index.
		files map[string]int
		// notFiles must not be listed.
		notFiles []string
	}{
		{
			name: "diff id mismatch",
			build: func(t testing.TB) *pkg {
				real := mkLayer(t, true, file("usr/bin/x", "payload"))
				claimed := mkLayer(t, false, file("usr/bin/x", "harmless"))
				return dockerSave(t, false, testLayer{blob: real.blob, diffID: claimed.diffID})
			},
			want:  map[string]int{image.RuleLayerDigestMismatch: 0},
			files: map[string]int{"usr/bin/x": 0},
		},
		{
			name: "blob recompressed under its old digest",
			build: func(t testing.TB) *pkg {
				l := mkLayer(t, true, file("usr/bin/x", strings.Repeat("payload ", 100)))
				p := ociLayout(t, l)
				tb := gunzip(t, l.blob)
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
				zw.Write(tb)
				zw.Close()
				if bytes.Equal(buf.Bytes(), l.blob) {
					t.Fatal("same blob")
				}
				p.files["blobs/sha256/"+hexOf(l.blob)] = buf.Bytes()
				return p
			},
			want:  map[string]int{image.RuleLayerDigestMismatch: 0},
			files: map[string]int{"usr/bin/x": 0},
		},
		{
			name: "traversal in a layer",
			build: func(t testing.TB) *pkg {
				return dockerSave(t, true,
					mkLayer(t, false, file("etc/passwd", "p")),
					mkLayer(t, true, file("../../../../sentinel/pwned", "x"), file("/etc/cron.d/x", "x"), file("ok", "ok")))
			},
			want:  map[string]int{archive.RuleTraversal: 1},
			files: map[string]int{"etc/passwd": 0, "ok": 1},
		},
		{
			name: "link escaping a layer",
			build: func(t testing.TB) *pkg {
				return dockerSave(t, false, mkLayer(t, true,
					archivetest.Entry{Name: "etc/shadow", Type: tar.TypeSymlink, Linkname: "../../../../etc/shadow"},
					file("etc/passwd", "p")))
			},
			want:     map[string]int{archive.RuleLinkEscape: 0},
			files:    map[string]int{"etc/passwd": 0},
			notFiles: []string{"etc/shadow"},
		},
		{
			name: "layer that is a gzip bomb",
			build: func(t testing.TB) *pkg {
				return dockerSave(t, true,
					mkLayer(t, false, file("a", "a")),
					mkLayer(t, true, archivetest.Entry{Name: "zeros", Body: make([]byte, 8<<20)}),
					mkLayer(t, false, file("never", "n")))
			},
			lim:      func(l *archive.Limits) { l.MaxRatio = 100 },
			want:     map[string]int{archive.RuleBomb: 1},
			files:    map[string]int{"a": 0},
			notFiles: []string{"never", "zeros"},
		},
		{
			name: "zip bomb nested in a layer",
			build: func(t testing.TB) *pkg {
				zb, err := archivetest.Bytes(archive.FormatZip, []archivetest.Entry{{Name: "big", Body: make([]byte, 8<<20)}})
				if err != nil {
					t.Fatal(err)
				}
				return ociLayout(t, mkLayer(t, true, archivetest.Entry{Name: "opt/bomb.zip", Body: zb}))
			},
			lim:  func(l *archive.Limits) { l.MaxRatio = 100 },
			want: map[string]int{archive.RuleBomb: 0},
		},
		{
			name: "budget shared across layers",
			build: func(t testing.TB) *pkg {
				return dockerSave(t, false,
					mkLayer(t, true, archivetest.Entry{Name: "a", Body: bytes.Repeat([]byte("a"), 600<<10)}),
					mkLayer(t, true, archivetest.Entry{Name: "b", Body: bytes.Repeat([]byte("b"), 600<<10)}))
			},
			lim:      func(l *archive.Limits) { l.MaxExpandedBytes = 1 << 20 },
			want:     map[string]int{archive.RuleBomb: 1},
			files:    map[string]int{"a": 0},
			notFiles: []string{"b"},
		},
		{
			name: "entries shared across layers",
			build: func(t testing.TB) *pkg {
				return dockerSave(t, false,
					mkLayer(t, false, file("a1", "1"), file("a2", "2"), file("a3", "3")),
					mkLayer(t, false, file("b1", "1"), file("b2", "2")),
					mkLayer(t, false, file("c1", "1")))
			},
			lim:   func(l *archive.Limits) { l.MaxEntries = 5 },
			want:  map[string]int{archive.RuleTooManyEntries: 2},
			files: map[string]int{"a1": 0, "a2": 0, "a3": 0, "b1": 1, "b2": 1}, notFiles: []string{"c1"},
		},
		{
			name: "layer that is not a tar",
			build: func(t testing.TB) *pkg {
				junk := []byte("MZ this is no tar at all")
				return dockerSave(t, true, mkLayer(t, false, file("a", "a")), testLayer{blob: junk, diffID: digestOf(junk)})
			},
			want:  map[string]int{image.RuleUnreadable: 1},
			files: map[string]int{"a": 0, strings.Repeat("b", 64) + "/layer.tar": 1},
		},
		{
			name: "whiteout marker carrying data",
			build: func(t testing.TB) *pkg {
				return dockerSave(t, false,
					mkLayer(t, false, file("bin/sh", "sh")),
					mkLayer(t, true, file("bin/.wh.sh", "hidden payload"), file("bin/.wh.gone", "")))
			},
			files:    map[string]int{"bin/sh": 0, "bin/.wh.sh": 1},
			notFiles: []string{"bin/.wh.gone"},
		},
		{
			name: "nested archive in a layer",
			build: func(t testing.TB) *pkg {
				tb, err := archivetest.Bytes(archive.FormatTarGz, archivetest.Files(map[string][]byte{"x.js": []byte("x"), ".wh.y": nil}))
				if err != nil {
					t.Fatal(err)
				}
				return dockerSave(t, false, mkLayer(t, true, archivetest.Entry{Name: "app/lib.tgz", Body: tb}))
			},
			files: map[string]int{"app/lib.tgz!/x.js": 0, "app/lib.tgz!/.wh.y": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWork(t)
			lim := testLimits()
			if tc.lim != nil {
				tc.lim(&lim)
			}
			img, fds := w.open(t, tc.build(t).write(t, false), lim)
			if img == nil {
				t.Fatalf("Open: %v", fds)
			}
			files, fds := w.extract(t, img, lim)
			for rule, li := range tc.want {
				ok := slices.ContainsFunc(fds, func(f assetscan.Finding) bool {
					return f.Rule == rule && (li < 0 || f.Layer == img.Layers[li].DiffID)
				})
				if !ok {
					t.Errorf("findings = %+v, want %s in layer %d", fds, rule, li)
				}
			}
			for _, f := range fds {
				if _, ok := tc.want[f.Rule]; !ok {
					t.Errorf("unexpected finding %+v", f)
				}
				if f.Layer == "" || f.Message == "" {
					t.Errorf("finding without layer or message: %+v", f)
				}
				if f.Rule == archive.RuleBomb && tc.name == "budget shared across layers" && !strings.Contains(f.Message, "image's layers expand to more than 1048576") {
					t.Errorf("bomb message %q", f.Message)
				}
			}
			got := fileMap(files)
			for p, li := range tc.files {
				if l, ok := got[p]; !ok || l != img.Layers[li].DiffID {
					t.Errorf("file %s: layer %q, want layer %d; files %v", p, l, li, got)
				}
			}
			for _, p := range tc.notFiles {
				if _, ok := got[p]; ok {
					t.Errorf("file %s listed", p)
				}
			}
		})
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestMultiPlatformOnePresent(t *testing.T) {
	t.Parallel()
	// docker save from the containerd image store: index.json -> an image
	// index of two platforms (only one exported) and an attestation.
	l := simpleLayer(t)
	p := ociLayout(t, l)
	d1 := indexDesc(t, p)
	d1["platform"] = map[string]any{"architecture": "amd64", "os": "linux"}
	other := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + strings.Repeat("e", 64), "size": 100,
		"platform": map[string]any{"architecture": "arm64", "os": "linux"}}
	att := p.ociImage(t, mkLayer(t, false, file("sbom.json", "{}")))
	att["annotations"] = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	att["platform"] = map[string]any{"architecture": "unknown", "os": "unknown"}
	nested := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{d1, other, att}})
	p.files["blobs/sha256/"+hexOf(nested)] = nested
	setIndex(t, p, map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digestOf(nested), "size": len(nested),
		"annotations": map[string]string{"io.containerd.image.name": "docker.io/acme/app:2"}})
	w := newWork(t)
	img, fds := w.open(t, p.write(t, true), testLimits())
	if img == nil || len(fds) != 0 {
		t.Fatalf("Open: %v", fds)
	}
	if len(img.Layers) != 1 || img.Layers[0].DiffID != l.diffID || !slices.Equal(img.RepoTags, []string{"docker.io/acme/app:2"}) {
		t.Errorf("image %+v", img)
	}
}

func TestOpenBadArguments(t *testing.T) {
	t.Parallel()
	path := dockerSave(t, true, simpleLayer(t)).write(t, false)
	ctx := context.Background()
	if _, _, err := image.Open(ctx, path, t.TempDir()+"/a:b", testLimits()); err == nil {
		t.Error("Open accepted a work dir with ':'")
	}
	if _, _, err := image.Open(ctx, path, t.TempDir(), archive.Limits{}); err == nil {
		t.Error("Open accepted zero limits")
	}
	dir := t.TempDir()
	if _, _, err := image.Open(ctx, path, dir, testLimits()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := image.Open(ctx, path, dir, testLimits()); err == nil {
		t.Error("Open reused a work dir")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := image.Open(cctx, path, t.TempDir(), testLimits()); err == nil {
		t.Error("Open ignored a cancelled context")
	}
	if _, _, err := image.ExtractLayers(ctx, nil, t.TempDir(), testLimits()); err == nil {
		t.Error("ExtractLayers accepted a nil image")
	}
}

func TestOtherFiles(t *testing.T) {
	t.Parallel()
	p := dockerSave(t, true, simpleLayer(t))
	p.files["tools/dropper.exe"] = []byte("MZ payload")
	w := newWork(t)
	img, fds := w.open(t, p.write(t, true), testLimits())
	if img == nil || len(fds) != 0 {
		t.Fatalf("Open: %v", fds)
	}
	var got []string
	for _, o := range img.Other {
		got = append(got, o.Path)
		if o.Layer != "" || o.Size == 0 {
			t.Errorf("other %+v", o)
		}
	}
	slices.Sort(got)
	want := []string{hexOf(configJSON(t, simpleLayer(t).diffID)) + ".json", "manifest.json", "tools/dropper.exe"}
	if !slices.Equal(got, want) {
		t.Errorf("Other = %q, want %q", got, want)
	}
}

func TestSameImageTwoTags(t *testing.T) {
	t.Parallel()
	p := dockerSave(t, true, simpleLayer(t))
	second := map[string]any{"Config": p.manifest[0]["Config"], "RepoTags": []string{"acme/app:latest"}, "Layers": p.manifest[0]["Layers"]}
	p.manifest = append(p.manifest, second)
	w := newWork(t)
	img, fds := w.open(t, p.write(t, false), testLimits())
	if img == nil || len(fds) != 0 {
		t.Fatalf("Open: %v", fds)
	}
	if img.Manifests != 1 || !slices.Equal(img.RepoTags, []string{"acme/app:1.0", "acme/app:latest"}) {
		t.Errorf("image %+v", img)
	}
}
