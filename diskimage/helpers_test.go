package diskimage

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/scanner"
)

var (
	fixtureDir string
	fixtures   struct {
		once    sync.Once
		files   map[string]string
		ext4    string // bare ext4 with MinimalDebianRoot
		gpt     string // GPT, one partition named "rootfs"
		failure string
	}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "diskimage-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// base returns the shared fixture images (built once).
func base(t *testing.T) (files map[string]string, ext4, gpt string) {
	t.Helper()
	fixtures.once.Do(func() {
		fixtures.failure = "fixture build failed"
		fixtures.files = disktest.MinimalDebianRoot()
		fixtures.files["usr/share/doc/big.bin"] = strings.Repeat("0123456789abcdef", 40000) // 640 KB, several extents' worth
		fixtures.ext4 = disktest.Ext4(t, fixtureDir, fixtures.files, "32M")
		fixtures.gpt = disktest.WithGPT(t, fixtures.ext4, "rootfs")
		fixtures.failure = ""
	})
	if fixtures.failure != "" {
		t.Fatal(fixtures.failure)
	}
	return fixtures.files, fixtures.ext4, fixtures.gpt
}

// qemuWrapper returns a qemu-img wrapper that logs each invocation's
// arguments to the returned log file, then runs body (default: the real
// qemu-img).
func qemuWrapper(t *testing.T, body string) (script, log string) {
	t.Helper()
	real := disktest.Tool(t, "qemu-img")
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	if body == "" {
		body = `exec ` + real + ` "$@"`
	}
	script = filepath.Join(dir, "qemu-img")
	src := "#!/bin/sh\necho \"$*\" >> " + log + "\nREAL=" + real + "\n" + body + "\n"
	if err := os.WriteFile(script, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func rules(fs []assetscan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule)
	}
	return out
}

func hasRule(fs []assetscan.Finding, rule, path, msgPart string) bool {
	for _, f := range fs {
		if f.Rule == rule && (path == "-" || f.Path == path) && strings.Contains(f.Message, msgPart) {
			return true
		}
	}
	return false
}

func mustOpen(t *testing.T, path string) (*Disk, []assetscan.Finding) {
	t.Helper()
	d, fl, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	for _, f := range fl {
		if f.Check != assetscan.CheckFormat {
			t.Errorf("finding %+v: check %q", f, f.Check)
		}
	}
	return d, fl
}

// walkAll reads every file of the source.
func walkAll(t *testing.T, src scanner.FileSource) map[string]string {
	t.Helper()
	got := map[string]string{}
	var order []string
	err := src.Walk(context.Background(), func(f scanner.File, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if int64(len(b)) != f.Size {
			return fmt.Errorf("%s: read %d bytes, size %d", f.Path, len(b), f.Size)
		}
		if f.DiskPath != "" {
			return fmt.Errorf("%s: DiskPath %q", f.Path, f.DiskPath)
		}
		got[f.Path] = string(b)
		order = append(order, f.Path)
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if !slices.IsSorted(order) {
		t.Errorf("walk order not sorted: %v", order)
	}
	return got
}

// checkDebian checks a disk holding the MinimalDebianRoot file system
// (plus big.bin), whose paths carry prefix.
func checkDebian(t *testing.T, d *Disk, files map[string]string, prefix string) {
	t.Helper()
	root := d.RootFS()
	if root == nil {
		t.Fatal("RootFS is nil")
	}
	b, err := fs.ReadFile(root, "etc/os-release") // a symlink to ../usr/lib/os-release
	if err != nil {
		t.Fatalf("read etc/os-release: %v", err)
	}
	if !strings.Contains(string(b), `VERSION_ID="12"`) {
		t.Errorf("os-release: %q", b)
	}
	if d.RootPrefix() != prefix {
		t.Errorf("RootPrefix %q, want %q", d.RootPrefix(), prefix)
	}
	got := walkAll(t, d.Source())
	want := map[string]string{}
	for _, p := range disktest.Files(files) {
		want[prefix+p] = files[p]
	}
	for p, c := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("Source did not walk %s", p)
		} else if g != c {
			t.Errorf("%s: content differs (%d bytes, want %d)", p, len(g), len(c))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok && !strings.Contains(p, "lost+found") {
			t.Errorf("Source walked unexpected %s", p)
		}
	}
	n, _ := d.Stats()
	if n != len(want) {
		t.Errorf("Stats: %d files, want %d", n, len(want))
	}
}

func prepare(t *testing.T, path string, cfg ConvertConfig) (string, string, []assetscan.Finding, string) {
	t.Helper()
	work := t.TempDir()
	start := time.Now()
	rp, format, fl, err := Prepare(context.Background(), path, work, cfg)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Logf("Prepare %s: %s in %v", filepath.Base(path), format, time.Since(start).Round(time.Millisecond))
	for _, f := range fl {
		if strings.Contains(f.Message, work) || strings.Contains(f.Message, filepath.Dir(path)) {
			t.Errorf("finding message leaks a host path: %q", f.Message)
		}
	}
	return rp, format, fl, work
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("du", "-k", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var kb int64
	fmt.Sscan(string(out), &kb)
	return kb << 10
}
