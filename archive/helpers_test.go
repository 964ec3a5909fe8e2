package archive_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

// sandbox is an extraction destination with a sentinel beside it, two
// levels below a temp dir, so that writes escaping dest can be seen.
type sandbox struct {
	base, dest, sentinel string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	work := filepath.Join(base, "w1", "w2")
	s := sandbox{base: base, dest: filepath.Join(work, "dest"), sentinel: filepath.Join(work, "sentinel")}
	for _, d := range []string{s.dest, s.sentinel} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.sentinel, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// extract runs Extract and checks the invariants that hold for any input.
func (s sandbox) extract(t testing.TB, src string, f archive.Format, lim archive.Limits) *archive.Result {
	t.Helper()
	res, err := archive.Extract(context.Background(), src, f, s.dest, lim)
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	s.check(t, res)
	return res
}

// check asserts that nothing exists outside dest but the sentinel, that
// dest holds only plain directories and non-executable regular files, and
// that res.Files lists exactly the files on disk.
func (s sandbox) check(t testing.TB, res *archive.Result) {
	t.Helper()
	allowed := map[string]bool{
		s.base:                            true,
		filepath.Join(s.base, "w1"):       true,
		filepath.Dir(s.dest):              true,
		s.sentinel:                        true,
		filepath.Join(s.sentinel, "keep"): true,
	}
	onDisk := map[string]int64{}
	err := filepath.WalkDir(s.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != s.dest && !strings.HasPrefix(p, s.dest+string(filepath.Separator)) {
			if !allowed[p] {
				t.Errorf("created outside dest: %s", p)
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode().IsDir():
		case fi.Mode().IsRegular():
			if fi.Mode()&(0o111|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s: mode %v", p, fi.Mode())
			}
			onDisk[p] = fi.Size()
		default:
			t.Errorf("%s: not a regular file or directory: %v", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.sentinel, "keep")); err != nil || string(b) != "keep" {
		t.Errorf("sentinel changed: %q, %v", b, err)
	}
	if res == nil {
		return
	}
	listed := map[string]bool{}
	for _, f := range res.Files {
		if want := filepath.Join(s.dest, filepath.FromSlash(f.Path)); f.DiskPath != want {
			t.Errorf("File %q: DiskPath %q, want %q", f.Path, f.DiskPath, want)
		}
		size, ok := onDisk[f.DiskPath]
		switch {
		case !ok:
			t.Errorf("File %q is not on disk", f.Path)
		case size != f.Size:
			t.Errorf("File %q: size %d, on disk %d", f.Path, f.Size, size)
		}
		if listed[f.DiskPath] {
			t.Errorf("File %q listed twice", f.Path)
		}
		listed[f.DiskPath] = true
	}
	for p := range onDisk {
		if !listed[p] {
			t.Errorf("file on disk not in Files: %s", p)
		}
	}
	for _, f := range res.Findings {
		want := assetscan.CheckArchive
		if f.Rule == archive.RuleUnscannable {
			want = assetscan.CheckMalware
		}
		if f.Check != want || f.Message == "" {
			t.Errorf("bad finding %+v", f)
		}
	}
}

// write writes an archive fixture into its own temp dir.
func write(t testing.TB, name string, f archive.Format, entries []archivetest.Entry) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := archivetest.Write(p, f, entries); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeBytes(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustBytes(t testing.TB, f archive.Format, entries []archivetest.Entry) []byte {
	t.Helper()
	b, err := archivetest.Bytes(f, entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func paths(res *archive.Result) []string {
	var ps []string
	for _, f := range res.Files {
		ps = append(ps, f.Path)
	}
	slices.Sort(ps)
	return ps
}

// rules returns "rule path" for each finding, sorted.
func rules(res *archive.Result) []string {
	var rs []string
	for _, f := range res.Findings {
		rs = append(rs, f.Rule+" "+f.Path)
	}
	slices.Sort(rs)
	return rs
}

func lim(mod func(*archive.Limits)) archive.Limits {
	l := archive.DefaultLimits()
	if mod != nil {
		mod(&l)
	}
	return l
}
