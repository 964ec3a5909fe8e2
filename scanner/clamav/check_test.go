package clamav

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

const testfilesDir = "/usr/share/clamav-testfiles"

func unofficial(sig string) string { return strings.TrimSuffix(sig, ".UNOFFICIAL") }

// filler returns n bytes of deterministic noise that no signature matches.
func filler(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return b
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	k := newCheck(t, newClient(t, Config{Addr: "unix:/x"}), CheckConfig{})
	if k.Name() != assetscan.CheckMalware {
		t.Errorf("Name = %q", k.Name())
	}
	want := CheckConfig{Mode: ModeAuto, MaxStreamBytes: 2000 << 20, WindowOverlap: 1 << 20}
	if k.Config() != want {
		t.Errorf("defaults = %+v, want %+v", k.Config(), want)
	}
	for _, tt := range []struct{ addr, mode, want string }{
		{"unix:/x", "", ModeFDPass},
		{"unix:/x", ModeAuto, ModeFDPass},
		{"unix:/x", ModeInstream, ModeInstream},
		{"tcp:127.0.0.1:3310", "", ModeInstream},
		{"tcp:127.0.0.1:3310", ModeAuto, ModeInstream},
	} {
		k := newCheck(t, newClient(t, Config{Addr: tt.addr}), CheckConfig{Mode: tt.mode})
		if k.Mode() != tt.want {
			t.Errorf("%s, Mode %q: resolved to %q, want %q", tt.addr, tt.mode, k.Mode(), tt.want)
		}
	}
	if _, err := NewCheck(newClient(t, Config{Addr: "tcp:127.0.0.1:3310"}), CheckConfig{Mode: ModeFDPass}); !errors.Is(err, ErrNoFDPass) {
		t.Errorf("fdpass over tcp: %v, want ErrNoFDPass", err)
	}
	for _, bad := range []CheckConfig{
		{Mode: "multiscan"},
		{Concurrency: -1}, {MaxStreamBytes: -1}, {WindowOverlap: -1},
		{MaxStreamBytes: 1},
		{MaxStreamBytes: 1000, WindowOverlap: 1000},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
	if got := (CheckConfig{MaxStreamBytes: 64 << 10}).withDefaults().WindowOverlap; got != 32<<10 {
		t.Errorf("default overlap for a 64 KiB window = %d, want half the window", got)
	}
}

func TestWindows(t *testing.T) {
	t.Parallel()
	if got := windows(0, 10, 3); len(got) != 1 || got[0] != [2]int64{0, 0} {
		t.Errorf("windows(0) = %v", got)
	}
	if got := windows(10, 10, 3); len(got) != 1 {
		t.Errorf("windows(10, 10) = %v", got)
	}
	want := [][2]int64{{0, 10}, {7, 10}, {14, 7}}
	if got := windows(21, 10, 3); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("windows(21, 10, 3) = %v, want %v", got, want)
	}
	for size := int64(0); size < 200; size++ {
		for _, wo := range [][2]int64{{10, 3}, {10, 0}, {7, 6}, {64, 1}} {
			ws := windows(size, wo[0], wo[1])
			// Every run of wo[1]+1 bytes lies whole inside some window (so
			// does every byte), and windows are in order and within bounds.
			for s := int64(0); s+wo[1]+1 <= max(size, wo[1]+1); s++ {
				e := min(s+wo[1]+1, size)
				ok := false
				for _, w := range ws {
					if w[0] <= s && e <= w[0]+w[1] {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("windows(%d, %v) = %v: bytes %d-%d not in one window", size, wo, ws, s, e)
				}
			}
			for i, w := range ws {
				if w[1] > wo[0] || w[0]+w[1] > size || (i > 0 && w[0] <= ws[i-1][0]) {
					t.Fatalf("windows(%d, %v) = %v: bad window %d", size, wo, ws, i)
				}
			}
		}
	}
}

// TestShippedSignatures proves every shipped signature is loaded and
// detects its sample, through the check as well.
func TestShippedSignatures(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	if err := VerifySignatures(ctxTimeout(t, time.Minute), c); err != nil {
		t.Fatal(err)
	}
	var files []tfile
	var want []string
	for _, s := range Samples() {
		if s.Data == nil {
			continue // clam.exe: TestCheckClamAVTestfiles
		}
		files = append(files, tfile{path: "samples/" + s.File, data: s.Data})
		want = append(want, s.Signature)
	}
	k := newCheck(t, c, CheckConfig{})
	res, err := k.Run(ctxTimeout(t, time.Minute), target(t, files...))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != len(want) {
		t.Fatalf("findings = %+v, want %d", res.Findings, len(want))
	}
	for i, f := range res.Findings {
		if f.Check != assetscan.CheckMalware || f.Rule != RuleDetected || f.Path != files[i].path ||
			f.Malware == nil || f.Malware.Engine != "clamav" || unofficial(f.Malware.Signature) != want[i] || f.Message == "" {
			t.Errorf("finding %d = %+v (%+v), want %s on %s", i, f, f.Malware, want[i], files[i].path)
		}
		t.Logf("%s: %s: %s", f.Path, f.Malware.Signature, f.Message)
	}
}

func TestSignatureFiles(t *testing.T) {
	t.Parallel()
	want := []string{"assetscan-eicar.ndb", "assetscan-fabricated.hdb", "assetscan-marker.yara", "assetscan-test.hsb"}
	if got := SignatureFiles(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SignatureFiles = %v, want %v", got, want)
	}
	for _, s := range Samples() {
		found := false
		for _, f := range want {
			found = found || f == s.File
		}
		if !found {
			t.Errorf("sample for unknown file %s", s.File)
		}
	}
	// No repository file may hold the samples whole: a real AV (or our own
	// rules, when assetscan scans its own source) would flag it.
	ents, _ := os.ReadDir(".")
	for _, e := range ents {
		b, _ := os.ReadFile(e.Name())
		for _, s := range [][]byte{EICAR(), YARAMarkerSample()[22:55]} {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds a test sample literally", e.Name())
			}
		}
	}
	sig, _ := os.ReadDir("signatures")
	for _, e := range sig {
		b, _ := os.ReadFile(filepath.Join("signatures", e.Name()))
		if bytes.Contains(b, EICAR()) || bytes.Contains(b, YARAMarkerSample()[22:55]) {
			t.Errorf("signatures/%s holds a test sample literally", e.Name())
		}
	}
	if string(YARAMarkerSample()[22:55]) != "ASSETSCAN-YARA-"+"TEST-MARKER-7f3c9a" || len(EICAR()) != 68 {
		t.Error("sample construction changed")
	}
}

func TestDigestDir(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	if _, err := DigestDir(a); err == nil {
		t.Error("DigestDir of an empty dir = nil error")
	}
	if err := WriteSignatures(a); err != nil {
		t.Fatal(err)
	}
	if err := WriteSignatures(b); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(b, "subdir"), 0o755) // ignored
	da, err := DigestDir(a)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := DigestDir(b)
	if da != db || !strings.HasPrefix(da, "sha256:") || len(da) != 7+64 {
		t.Errorf("digests %q, %q", da, db)
	}
	os.WriteFile(filepath.Join(b, "assetscan-test.hsb"), []byte("changed\n"), 0o644)
	if dc, _ := DigestDir(b); dc == da {
		t.Error("digest did not change with content")
	}
	os.Rename(filepath.Join(a, "assetscan-test.hsb"), filepath.Join(a, "renamed.hsb"))
	if dd, _ := DigestDir(a); dd == da {
		t.Error("digest did not change with a name")
	}
}

// TestCheckClamAVTestfiles sends all 44 files of Debian's clamav-testfiles
// (PE packers, archives, mail, documents around clam.exe): clamd unpacks
// them itself and must find ClamAV-Test-File in each.
func TestCheckClamAVTestfiles(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	ents, err := os.ReadDir(testfilesDir)
	if err != nil {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			t.Skip(err)
		}
		t.Fatalf("%v (apt-get install clamav-testfiles)", err)
	}
	tg := &scanner.Target{Root: testfilesDir, WorkDir: t.TempDir()}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		tg.Files = append(tg.Files, scanner.File{Path: "testfiles/" + e.Name(), DiskPath: filepath.Join(testfilesDir, e.Name()), Size: fi.Size(), Layer: "sha256:layer"})
	}
	if len(tg.Files) != 44 {
		t.Errorf("%s has %d files, want 44", testfilesDir, len(tg.Files))
	}
	res, err := newCheck(t, c, CheckConfig{Concurrency: 4}).Run(ctxTimeout(t, 2*time.Minute), tg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range res.Findings {
		got[f.Path] = f.Malware.Signature
		if f.Rule != RuleDetected || f.Layer != "sha256:layer" {
			t.Errorf("finding %+v", f)
		}
	}
	for _, f := range tg.Files {
		if unofficial(got[f.Path]) != "ClamAV-Test-File" {
			t.Errorf("%s: got %q, want ClamAV-Test-File", f.Path, got[f.Path])
		}
	}
	if len(res.Findings) != len(tg.Files) {
		t.Errorf("%d findings for %d files", len(res.Findings), len(tg.Files))
	}
	if !strings.HasPrefix(res.Detail, fmt.Sprintf("%d files, ", len(tg.Files))) {
		t.Errorf("Detail = %q", res.Detail)
	}
	t.Logf("detail: %s", res.Detail)
}

func TestCheckClean(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("readme.txt")
	w.Write([]byte("nothing to see here\n"))
	zw.Close()
	tg := target(t,
		tfile{"empty", nil},
		tfile{"hello.txt", []byte("hello, world\n")},
		tfile{"near-miss.txt", EICAR()[:67]}, // one byte short
		tfile{"fabricated-plus-one.txt", append(FabricatedSample(), 'x')},
		tfile{"noise.bin", filler(3<<20, 1)},
		tfile{"clean.zip", zbuf.Bytes()},
	)
	k := newCheck(t, c, CheckConfig{SignatureDir: testDBDir})
	res, err := k.Run(ctxTimeout(t, time.Minute), tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 0 {
		t.Errorf("findings on clean files: %+v", res.Findings)
	}
	if !strings.HasPrefix(res.Detail, "6 files, ") || !strings.Contains(res.Detail, "6 streams") {
		t.Errorf("Detail = %q", res.Detail)
	}
	v := res.Engines["clamav"]
	if !strings.HasPrefix(v, "ClamAV ") {
		t.Errorf("Engines = %v", res.Engines)
	}
	want := testDigest
	if want == "" {
		want = SignaturesUnknown
	}
	if res.Engines["clamav-signatures"] != want {
		t.Errorf("Engines = %v, want clamav-signatures %s", res.Engines, want)
	}
	t.Logf("detail %q, engines %v", res.Detail, res.Engines)
}

func TestCheckNoFiles(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	res, err := newCheck(t, c, CheckConfig{}).Run(context.Background(), &scanner.Target{})
	if err != nil || len(res.Findings) != 0 || !strings.HasPrefix(res.Detail, "0 files; mode ") || res.Engines["clamav"] == "" {
		t.Errorf("Run(no files) = %+v, %v", res, err)
	}
	if _, err := newCheck(t, c, CheckConfig{}).Run(context.Background(), nil); err == nil {
		t.Error("Run(nil) = nil error")
	}
}

// TestCheckWindows proves that a file larger than the window is scanned
// whole: signatures at the start, across every kind of window boundary and
// at the very end are found by the real clamd.
func TestCheckWindows(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	const (
		W    = 64 << 10
		O    = 4 << 10
		step = W - O
		size = 1<<20 + 123
	)
	e := EICAR()
	L := len(e)
	place := func(off int) []byte {
		b := filler(size, uint64(off))
		copy(b[off:], e)
		return b
	}
	cases := []struct {
		name string
		off  int
	}{
		{"start", 0},
		{"across the end of window 1", W - L/2},
		{"ends at window 1's last byte", W - L},
		{"starts at window 2's first byte", step},
		{"across the end of window 2", step + W - L/2},
		{"across the overlap's start", 5*step - 10},
		{"across the end of window 9", 8*step + W - 1},
		{"at the very end", size - L},
	}
	var files []tfile
	for _, cs := range cases {
		files = append(files, tfile{cs.name, place(cs.off)})
	}
	files = append(files, tfile{"clean big", filler(size, 99)})
	files = append(files, tfile{"exactly one window", append(filler(W-L, 7), e...)})
	files = append(files, tfile{"one byte over the window", append(filler(W-L+1, 8), e...)})

	k := newCheck(t, c, CheckConfig{MaxStreamBytes: W, WindowOverlap: O})
	res, err := k.Run(ctxTimeout(t, time.Minute), target(t, files...))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]assetscan.Finding{}
	for _, f := range res.Findings {
		got[f.Path] = f
	}
	for _, f := range files {
		fd, ok := got[f.path]
		if f.path == "clean big" {
			if ok {
				t.Errorf("%s: unexpected finding %+v", f.path, fd)
			}
			continue
		}
		if !ok || unofficial(fd.Malware.Signature) != "Assetscan.Test.EICAR" || fd.Rule != RuleDetected {
			t.Errorf("%s: not found (%+v)", f.path, fd)
		}
	}
	if len(res.Findings) != len(files)-1 {
		t.Errorf("%d findings, want %d (one per file and signature): %+v", len(res.Findings), len(files)-1, res.Findings)
	}
	if !strings.Contains(res.Detail, "overlapping windows") {
		t.Errorf("Detail = %q", res.Detail)
	}
	t.Logf("detail: %s", res.Detail)

	// Without the overlap the straddling signature would be missed: neither
	// half on its own is detected.
	b := place(W - L/2)
	for _, part := range [][]byte{b[:W], b[W : 2*W]} {
		r, err := c.Scan(context.Background(), bytes.NewReader(part))
		if err != nil || r.Status != StatusOK {
			t.Errorf("half of a split signature: %+v, %v; want OK", r, err)
		}
	}
}

// encryptedZip returns a zip whose one entry has the "encrypted" flag set
// (general purpose bit 0), in the local header and the central directory.
func encryptedZip(t testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "secret.txt", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("pretend this is ciphertext\n"))
	zw.Close()
	b := buf.Bytes()
	set := func(sig []byte, flagOff int) {
		i := bytes.Index(b, sig)
		if i < 0 {
			t.Fatalf("no %x in zip", sig)
		}
		f := binary.LittleEndian.Uint16(b[i+flagOff:])
		binary.LittleEndian.PutUint16(b[i+flagOff:], f|1)
	}
	set([]byte("PK\x03\x04"), 6)
	set([]byte("PK\x01\x02"), 8)
	return b
}

func TestCheckEncryptedZip(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	res, err := newCheck(t, c, CheckConfig{}).Run(ctxTimeout(t, time.Minute),
		target(t, tfile{"pkg/locked.zip", encryptedZip(t)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("findings = %+v", res.Findings)
	}
	f := res.Findings[0]
	if f.Rule != RuleUnscannable || f.Malware.Signature != "Heuristics.Encrypted.Zip" || f.Path != "pkg/locked.zip" {
		t.Errorf("finding = %+v %+v", f, f.Malware)
	}
	t.Logf("%s: %s", f.Malware.Signature, f.Message)
}

// TestLimits runs a clamd with tiny limits (StreamMaxLength 1M, MaxFileSize
// 1M): a window larger than StreamMaxLength must fail with ErrSizeLimit,
// never pass, and content over MaxFileSize must be unscannable.
func TestLimits(t *testing.T) {
	t.Parallel()
	d := startPrivate(t, Setting{"StreamMaxLength", "1M"}, Setting{"MaxFileSize", "1M"})
	c := newClient(t, Config{Addr: d.Addr()})

	t.Run("size limit", func(t *testing.T) {
		t.Parallel()
		k := newCheck(t, c, CheckConfig{MaxStreamBytes: 2 << 20, Mode: ModeInstream})
		tg := target(t, tfile{"small", []byte("fine")}, tfile{"big", filler(1<<20+1, 3)})
		res, err := k.Run(ctxTimeout(t, time.Minute), tg)
		if !errors.Is(err, ErrSizeLimit) || isTransient(err) {
			t.Fatalf("Run = %+v, %v; want ErrSizeLimit, final", res, err)
		}
		t.Logf("error: %v", err)
		// Passing descriptors, StreamMaxLength does not apply but
		// MaxFileSize does: the file is reported unscannable, never clean.
		k = newCheck(t, c, CheckConfig{MaxStreamBytes: 2 << 20, Mode: ModeFDPass})
		res, err = k.Run(ctxTimeout(t, time.Minute), tg)
		if err != nil || len(res.Findings) != 1 || res.Findings[0].Rule != RuleUnscannable || res.Findings[0].Path != "big" {
			t.Fatalf("Run (fdpass) = %+v, %v; want big unscannable", res, err)
		}
		// Many chunks before clamd notices: it closes the socket while we
		// still write, and we must still read its reply.
		r, err := c.Scan(context.Background(), bytes.NewReader(make([]byte, 8<<20)))
		if !errors.Is(err, ErrSizeLimit) || r.Raw != "INSTREAM size limit exceeded. ERROR" {
			t.Errorf("Scan(8 MiB) = %+v, %v", r, err)
		}
		// Exactly StreamMaxLength is accepted and scanned to its last byte.
		full := append(filler(1<<20-68, 4), EICAR()...)
		r, err = c.Scan(context.Background(), bytes.NewReader(full))
		if err != nil || r.Status != StatusFound {
			t.Errorf("Scan(exactly 1 MiB, EICAR at the end) = %+v, %v", r, err)
		}
		// The same through the check, with windows that fit.
		k = newCheck(t, c, CheckConfig{MaxStreamBytes: 1 << 20, WindowOverlap: 64 << 10})
		res, err = k.Run(ctxTimeout(t, time.Minute), target(t, tfile{"big", append(filler(3<<20, 5), EICAR()...)}))
		if err != nil || len(res.Findings) != 1 {
			t.Errorf("Run with fitting windows = %+v, %v", res, err)
		}
	})

	t.Run("max file size", func(t *testing.T) {
		t.Parallel()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(bytes.Repeat([]byte("compressible line\n"), 200000)) // 3.4 MiB inside
		zw.Close()
		res, err := newCheck(t, c, CheckConfig{}).Run(ctxTimeout(t, time.Minute), target(t, tfile{"data.gz", gz.Bytes()}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Findings) != 1 || res.Findings[0].Rule != RuleUnscannable ||
			res.Findings[0].Malware.Signature != "Heuristics.Limits.Exceeded.MaxFileSize" {
			t.Fatalf("findings = %+v", res.Findings)
		}
		t.Logf("%s", res.Findings[0].Message)
	})

	// A known clamd blind spot, kept as a test so a change is noticed: a zip
	// member larger than MaxFileSize is skipped without any alert, even with
	// AlertExceedsMax. This is why the check sends the extracted files, not
	// the archives.
	t.Run("zip member over MaxFileSize is silently OK", func(t *testing.T) {
		t.Parallel()
		var zbuf bytes.Buffer
		zw := zip.NewWriter(&zbuf)
		w, _ := zw.Create("big.bin")
		w.Write(make([]byte, 3<<20))
		w.Write(EICAR())
		zw.Close()
		r, err := c.Scan(context.Background(), bytes.NewReader(zbuf.Bytes()))
		t.Logf("clamd replied %q, %v", r.Raw, err)
		if err != nil || r.Status != StatusOK {
			t.Logf("clamd no longer skips big zip members silently: good, but update the notes")
		}
	})
}

// TestCheckDaemonDown: clamd stopped before or killed during a run gives an
// error that the queue retries, never an empty pass.
func TestCheckDaemonDown(t *testing.T) {
	t.Parallel()
	t.Run("stopped", func(t *testing.T) {
		t.Parallel()
		d := startPrivate(t)
		c := newClient(t, Config{Addr: d.Addr()})
		k := newCheck(t, c, CheckConfig{})
		tg := target(t, tfile{"a", []byte("a")})
		if _, err := k.Run(context.Background(), tg); err != nil {
			t.Fatalf("Run before stop: %v", err)
		}
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
		res, err := k.Run(context.Background(), tg)
		if err == nil || !isTransient(err) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Run with clamd stopped = %+v, %v; want a transient ErrUnavailable", res, err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("killed mid-stream", func(t *testing.T) {
		t.Parallel()
		d := startPrivate(t)
		c := newClient(t, Config{Addr: d.Addr()})
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 2<<20))
			d.kill()
			pw.Write(make([]byte, 2<<20)) // fails or not: the stream is cut
			pw.Close()
		}()
		r, err := c.Scan(ctxTimeout(t, time.Minute), pr)
		pr.Close()
		if err == nil || !isTransient(err) || r.Status == StatusOK {
			t.Fatalf("Scan with clamd killed = %+v, %v; want a transient error", r, err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("killed while scanning", func(t *testing.T) {
		t.Parallel()
		d := startPrivate(t)
		c := newClient(t, Config{Addr: d.Addr()})
		k := newCheck(t, c, CheckConfig{Concurrency: 1})
		var files []tfile
		for i := range 40 {
			files = append(files, tfile{fmt.Sprintf("f%d", i), filler(1<<20, uint64(i))})
		}
		tg := target(t, files...)
		go func() { time.Sleep(150 * time.Millisecond); d.kill() }()
		res, err := k.Run(ctxTimeout(t, time.Minute), tg)
		if err == nil || !isTransient(err) {
			t.Fatalf("Run with clamd killed = %+v, %v; want a transient error", res, err)
		}
		t.Logf("error: %v", err)
	})
}

// TestCheckFailsClosed: a bad reply for any one file fails the whole run.
func TestCheckFailsClosed(t *testing.T) {
	t.Parallel()
	n := 0
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	addr := fakeClamd(t, func(c net.Conn) {
		cmd, _ := readCommand(c)
		if cmd == "zVERSION" {
			io.WriteString(c, "ClamAV 9.9.9\x00")
			return
		}
		readStream(c)
		<-ch
		n++
		if n == 3 {
			io.WriteString(c, "stream: something odd\x00")
		} else {
			io.WriteString(c, "stream: OK\x00")
		}
		ch <- struct{}{}
	})
	var files []tfile
	for i := range 6 {
		files = append(files, tfile{fmt.Sprintf("f%d", i), []byte("x")})
	}
	res, err := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{}).Run(context.Background(), target(t, files...))
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Run = %+v, %v; want ErrProtocol", res, err)
	}

	// A file that vanished or is not a regular file is an error too.
	ok := fakeClamd(t, replyAfterStream("stream: OK\x00"))
	k := newCheck(t, newClient(t, Config{Addr: ok}), CheckConfig{})
	tg := target(t, tfile{"a", []byte("a")})
	tg.Files = append(tg.Files, scanner.File{Path: "gone", DiskPath: filepath.Join(tg.Root, "gone")})
	if _, err := k.Run(context.Background(), tg); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("Run with a missing file = %v", err)
	}
	tg = target(t, tfile{"a", []byte("a")}, tfile{"b", []byte("bb")})
	tg.Files[1].Size = 1
	if _, err := k.Run(context.Background(), tg); !errors.Is(err, errChanged) {
		t.Errorf("Run with a file not of the size extracted = %v", err)
	}
	tg = target(t, tfile{"a", []byte("a")})
	os.Symlink("/etc/passwd", filepath.Join(tg.Root, "link"))
	tg.Files = append(tg.Files, scanner.File{Path: "link", DiskPath: filepath.Join(tg.Root, "link")})
	if _, err := k.Run(context.Background(), tg); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Run with a symlink = %v", err)
	}
	// clamd gone for VERSION already.
	gone := newClient(t, Config{Addr: "unix:/nonexistent/clamd.sock"})
	if _, err := newCheck(t, gone, CheckConfig{}).Run(context.Background(), &scanner.Target{}); !isTransient(err) {
		t.Errorf("Run without clamd = %v, want transient", err)
	}
}

func TestShippedDigestMatchesWrittenSignatures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteSignatures(dir); err != nil {
		t.Fatal(err)
	}
	want, err := DigestDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ShippedDigest()
	if err != nil || got != want {
		t.Fatalf("ShippedDigest = %q, %v; DigestDir = %q", got, err, want)
	}
}
