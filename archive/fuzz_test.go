package archive_test

import (
	"archive/tar"
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

// fuzzLimits keep fuzzing iterations small.
func fuzzLimits() archive.Limits {
	return archive.Limits{MaxExpandedBytes: 8 << 20, MaxEntries: 1000, MaxDepth: 4, MaxRatio: 1000, MaxEntryBytes: 4 << 20}
}

// seedEntries are hostile entry lists, for both zip and tar.
func seedEntries(t testing.TB) [][]entry {
	in := mustBytes(t, archive.FormatZip, []entry{file("x.txt", "x")})
	inTgz := mustBytes(t, archive.FormatTarGz, []entry{file("y.txt", "y")})
	return [][]entry{
		{file("ok.txt", "ok"), file("dir/a.js", "a")},
		{file("../../evil", "x"), file("/abs", "x"), file(`..\..\win`, "x")},
		{{Name: "link", Type: tar.TypeSymlink, Linkname: "../../etc/passwd"}, file("link/x", "x")},
		{{Name: "a.zip", Body: in}, {Name: "b.tgz", Body: inTgz}, file("a.zip!/z", "z")},
		{file("a", "1"), file("a", "2"), file("a/b", "3"), {Name: "d/", Type: tar.TypeDir}},
		{{Name: "p", Type: tar.TypeFifo}, {Name: "c", Type: tar.TypeChar}},
	}
}

func fuzzOne(t *testing.T, data []byte, f archive.Format) {
	src := filepath.Join(t.TempDir(), "pkg")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSandbox(t)
	// Every loop honours ctx: a hang shows up as an error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Release the package as it is read (as a worker does with its
	// download), a page at a time, so that every input exercises it.
	res, err := archive.Extract(ctx, src, f, s.dest, fuzzLimits(), archive.ReleaseEvery(4096, 0))
	if err != nil {
		t.Fatalf("Extract(%s): %v", f, err)
	}
	s.check(t, res)
	if res.ReleasedBytes < 0 || res.ReleasedBytes > int64(len(data)) {
		t.Fatalf("released %d bytes of %d", res.ReleasedBytes, len(data))
	}
}

func FuzzExtractZip(f *testing.F) {
	for _, es := range seedEntries(f) {
		if b, err := archivetest.Bytes(archive.FormatZip, es); err == nil {
			f.Add(b)
		}
	}
	z64, err := archivetest.Zip64Bytes(archivetest.Files(map[string][]byte{"a": []byte("a"), "b/c": []byte("c")}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(z64)
	f.Add(mustBytes(f, archive.FormatZip, []entry{
		{Name: "enc", Body: []byte("xxxxxxxxxxxx"), Raw: &archivetest.ZipRaw{Method: zip.Store, Flags: 1, UncompressedSize: 12}},
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data, archive.FormatZip)
	})
}

func FuzzExtractTar(f *testing.F) {
	for _, es := range seedEntries(f) {
		for _, format := range []archive.Format{archive.FormatTar, archive.FormatTarGz} {
			if b, err := archivetest.Bytes(format, es); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data, archive.FormatTar)
		fuzzOne(t, data, archive.FormatTarGz)
	})
}
