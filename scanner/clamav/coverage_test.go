package clamav

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/scanner"
)

// Issue 9: the malware check's coverage is every byte the extraction wrote,
// for a mixed package (plain files, a nested tar.gz named like an image, a
// jar kept whole and unpacked, a zip appended after the package's own
// end record).
func TestCoverageSumsTheExtractedBytes(t *testing.T) {
	c := needClamd(t)
	k := newCheck(t, c, CheckConfig{})
	dir := t.TempDir()

	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{"lib/a.js": "console.log(1)", "lib/b.txt": "bbb"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	jar := zipBytes(t, map[string][]byte{"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\n"), "app.properties": []byte("x=1\n")})
	pkg := zipBytes(t, map[string][]byte{"README.md": []byte("hello"), "assets/logo.png": tgz.Bytes(),
		"lib/core.jar": jar, "bin/tool": bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 1000)})
	pkg = append(pkg, zipBytes(t, map[string][]byte{"hidden.txt": EICAR()})...)
	src := filepath.Join(dir, "pkg.zip")
	if err := os.WriteFile(src, pkg, 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	res, err := archive.Extract(context.Background(), src, archive.FormatZip, root, archive.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	target := &scanner.Target{Root: root, WorkDir: dir}
	var sum int64
	for _, f := range res.Files {
		target.Files = append(target.Files, scanner.File{Path: f.Path, DiskPath: f.DiskPath, Size: f.Size, Container: f.Container})
		sum += f.Size
	}
	out, err := k.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	cov := out.Coverage
	if cov == nil || cov.Files != int64(len(res.Files)) || cov.Bytes != sum {
		t.Fatalf("coverage %+v; extracted %d files, %d bytes (expanded %d)", cov, len(res.Files), sum, res.ExpandedBytes)
	}
	if !cov.Complete() || res.Coverage.UnexaminedCount != 0 || res.Coverage.AccountedBytes != res.Coverage.InputBytes {
		t.Errorf("incomplete: malware %+v, extraction %+v", cov, res.Coverage)
	}
	found := false
	for _, f := range out.Findings {
		found = found || f.Rule == RuleDetected
	}
	if !found {
		t.Error("EICAR in the appended zip was not found")
	}
}

func zipBytes(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for n, d := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(d)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
