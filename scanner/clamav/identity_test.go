package clamav

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in                   string
		version, dbv, dbdate string
		bad                  bool
	}{
		{in: "ClamAV 1.4.6", version: "1.4.6"},
		{in: "ClamAV 1.4.6/27500/Mon Nov 30 09:30:24 2026", version: "1.4.6", dbv: "27500", dbdate: "Mon Nov 30 09:30:24 2026"},
		{in: "ClamAV 1.5.0-rc1/1/x", version: "1.5.0-rc1", dbv: "1", dbdate: "x"},
		{in: "ClamAV ", bad: true},
		{in: "ClamAV 1.4.6/", bad: true},
		{in: "ClamAV 1.4.6/27500", bad: true},
		{in: "ClamAV 1.4.6/abc/Mon", bad: true},
		{in: "ClamAV 1.4.6/27500/", bad: true},
		{in: "ClamAV 1.4 6", bad: true},
		{in: "PONG", bad: true},
		{in: "ClamAV 1.4.6\nx", bad: true},
		{in: "", bad: true},
	} {
		id, err := ParseVersion(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("ParseVersion(%q) = %+v, %v; want ErrProtocol", tt.in, id, err)
			}
			continue
		}
		if err != nil || id.Engine != EngineName || id.Version != tt.version || id.DBVersion != tt.dbv || id.DBDate != tt.dbdate ||
			id.Raw != tt.in || id.Known || id.SignaturesDigest != SignaturesUnknown {
			t.Errorf("ParseVersion(%q) = %+v, %v", tt.in, id, err)
		}
	}
}

func TestParseMaxThreads(t *testing.T) {
	t.Parallel()
	stats := "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live 1  idle 0 max 10 idle-timeout 30\nQUEUE: 0 items\n\tSTATS 0.000003 \n\nEND"
	if n, err := parseMaxThreads(stats); err != nil || n != 10 {
		t.Errorf("parseMaxThreads = %d, %v", n, err)
	}
	for _, bad := range []string{"", "THREADS: live 1 idle 0 max", "THREADS: max 0", "THREADS: max -3", "THREADS: max 99999", "END"} {
		if n, err := parseMaxThreads(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("parseMaxThreads(%q) = %d, %v", bad, n, err)
		}
	}
}

func TestIdentityEqual(t *testing.T) {
	t.Parallel()
	a := Identity{Raw: "ClamAV 1.4.6", SignaturesDigest: "sha256:aa", Known: true}
	b := a
	if !a.Equal(b) {
		t.Error("equal identities differ")
	}
	b.SignaturesDigest = "sha256:bb"
	if a.Equal(b) {
		t.Error("different digests are equal")
	}
	u := Identity{Raw: "ClamAV 1.4.6", SignaturesDigest: SignaturesUnknown}
	if u.Equal(u) {
		t.Error("an unknown identity equals itself: reuse could cross it")
	}
}

func TestDatabaseDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct{ conf, want string }{
		{"LocalSocket /x\nDatabaseDirectory /srv/clamav/db\n", "/srv/clamav/db"},
		{"# no setting\n", "/var/lib/clamav"},
		{"DatabaseDirectory \"/q d\"\n", "/q d"},
		{"DatabaseDirectory rel\n", ""},
	} {
		p := filepath.Join(dir, "c.conf")
		os.WriteFile(p, []byte(tt.conf), 0o644)
		got, err := DatabaseDirectory(p)
		if tt.want == "" {
			if err == nil {
				t.Errorf("DatabaseDirectory(%q) = %q, want an error", tt.conf, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("DatabaseDirectory(%q) = %q, %v; want %q", tt.conf, got, err, tt.want)
		}
	}
	if _, err := DatabaseDirectory(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing conf: no error")
	}
}

// TestDirDigestCache: the stat-keyed cache sees a file rewritten with the
// same size and mtime (ctime and inode change), a file added and removed.
func TestDirDigestCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteSignatures(dir); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, n := range SignatureFiles() {
		os.Chtimes(filepath.Join(dir, n), old, old)
	}
	d := dirDigester{settle: time.Nanosecond}
	first, err := d.digest(dir)
	if err != nil || first != testDigestOfShipped(t) {
		t.Fatalf("digest = %q, %v", first, err)
	}
	if again, _ := d.digest(dir); again != first {
		t.Fatalf("cached digest %q != %q", again, first)
	}
	if d.keys == "" {
		t.Fatal("digest not cached")
	}
	// Same size, same mtime, other content. (The pause lets the change
	// time move past the file system's timestamp granularity.)
	time.Sleep(50 * time.Millisecond)
	p := filepath.Join(dir, "assetscan-eicar.ndb")
	b, _ := os.ReadFile(p)
	b[len(b)-2] ^= 1
	os.WriteFile(p, b, 0o644)
	os.Chtimes(p, old, old)
	changed, err := d.digest(dir)
	if err != nil || changed == first {
		t.Fatalf("digest after an in-place rewrite = %q, %v; want a new digest", changed, err)
	}
	if want, _ := DigestDir(dir); changed != want {
		t.Fatalf("digest %q != DigestDir %q", changed, want)
	}
	os.WriteFile(filepath.Join(dir, "extra.ndb"), []byte("X:0:*:41414141\n"), 0o644)
	if added, _ := d.digest(dir); added == changed {
		t.Fatal("file added: same digest")
	}
	os.Remove(filepath.Join(dir, "extra.ndb"))
	if removed, _ := d.digest(dir); removed != changed {
		t.Fatalf("file removed: %q, want %q", removed, changed)
	}
	if _, err := d.digest(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing dir: no error")
	}
}

// TestIdentityWhatClamdRuns: a clamd loaded with 2 of the 4 shipped
// signature files does not claim the shipped set; adding a signature and
// reloading changes the identity (and clamd detects the new sample);
// without a readable directory the signatures are unknown.
func TestIdentityWhatClamdRuns(t *testing.T) {
	t.Parallel()
	two := SignatureFiles()[:2]
	d := startPrivateWith(t, two)
	c := newClient(t, Config{Addr: d.Addr()})
	ctx := ctxTimeout(t, 2*time.Minute)

	k := newCheck(t, c, CheckConfig{SignatureDir: d.SignatureDir()})
	id, err := k.EngineIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shipped, _ := ShippedDigest()
	want, _ := DigestDir(d.SignatureDir())
	if !id.Known || id.SignaturesDigest != want || id.SignaturesDigest == shipped || id.Engine != "clamav" || !strings.HasPrefix(id.Raw, "ClamAV ") || id.Version == "" {
		t.Fatalf("identity of a clamd with %v = %+v; want digest %s (shipped set: %s)", two, id, want, shipped)
	}
	t.Logf("2 of 4: %s", id)

	// The check records the same identity.
	res, err := k.Run(ctx, target(t, tfile{"a", []byte("a")}))
	if err != nil || res.Engines[EngineName] != id.Raw || res.Engines[SignaturesEngineName] != id.SignaturesDigest {
		t.Fatalf("Run = %+v, %v; want engines of %+v", res, err, id)
	}

	// Add a signature, RELOAD: the identity changes at once, and clamd
	// detects the new sample once it has loaded it.
	sample := []byte("assetscan reload test marker 5d1c\n")
	ndb := "Assetscan.Test.Reload:0:*:" + hexOf("reload test marker 5d1c") + "\n"
	if err := os.WriteFile(filepath.Join(d.SignatureDir(), "assetscan-reload.ndb"), []byte(ndb), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	id2, err := k.EngineIdentity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id2.Equal(id) || !id2.Known || id2.SignaturesDigest == id.SignaturesDigest {
		t.Fatalf("identity after a new signature and RELOAD = %+v, before %+v", id2, id)
	}
	for {
		r, err := c.Scan(ctx, strings.NewReader(string(sample)))
		if err == nil && r.Status == StatusFound {
			if unofficial(r.Signature) != "Assetscan.Test.Reload" {
				t.Fatalf("detected as %q", r.Signature)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("clamd never detected the reloaded signature: %+v, %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// No directory, or one that cannot be read: unknown, never the
	// shipped digest.
	for _, dir := range []string{"", filepath.Join(t.TempDir(), "missing")} {
		u, err := newCheck(t, c, CheckConfig{SignatureDir: dir}).EngineIdentity(ctx)
		if err != nil || u.Known || u.SignaturesDigest != SignaturesUnknown || u.Unknown == "" || u.Raw != id.Raw {
			t.Errorf("identity with SignatureDir %q = %+v, %v; want unknown signatures", dir, u, err)
		}
	}
}

// TestCheckIdentityChangedDuringScan: a signature file added while a scan
// runs fails the scan (transient) instead of crediting it to either set.
func TestCheckIdentityChangedDuringScan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteSignatures(dir); err != nil {
		t.Fatal(err)
	}
	addr := fakeClamd(t, func(c net.Conn) {
		cmd, err := readCommand(c)
		if err != nil {
			return
		}
		switch cmd {
		case "zVERSION":
			io.WriteString(c, "ClamAV 9.9.9\x00")
			return
		}
		readStream(c)
		os.WriteFile(filepath.Join(dir, "late.ndb"), []byte("Late:0:*:41414141\n"), 0o644)
		io.WriteString(c, "stream: OK\x00")
	})
	k := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{SignatureDir: dir})
	res, err := k.Run(context.Background(), target(t, tfile{"a", []byte("a")}))
	if !errors.Is(err, ErrIdentityChanged) || !isTransient(err) {
		t.Fatalf("Run = %+v, %v; want ErrIdentityChanged", res, err)
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := range len(s) {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"ClamAV 1.4.6", "ClamAV 1.4.6/27500/Mon Nov 30 09:30:24 2026", "ClamAV /1/2", "ClamAV 1/2/3/4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseVersion(s)
		if err != nil {
			return
		}
		if id.Known || id.Version == "" || !strings.HasPrefix(s, "ClamAV "+id.Version) || (id.DBVersion == "") != (id.DBDate == "") {
			t.Fatalf("ParseVersion(%q) = %+v", s, id)
		}
	})
}

func FuzzParseFDReply(f *testing.F) {
	for _, s := range []string{"fd[11]: OK", "fd[11]: Eicar.UNOFFICIAL FOUND", "fd[3]: lstat() failed. ERROR", "fd[x]: OK", "stream: OK", "fd[1]: a b FOUND"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseFDReply(s)
		if err != nil {
			if r.Status != StatusError {
				t.Fatalf("parseFDReply(%q) = %+v with error %v", s, r, err)
			}
			return
		}
		switch r.Status {
		case StatusOK:
			if !strings.HasSuffix(s, ": OK") {
				t.Fatalf("parseFDReply(%q) = OK", s)
			}
		case StatusFound:
			if r.Signature == "" || !strings.HasSuffix(s, " FOUND") {
				t.Fatalf("parseFDReply(%q) = %+v", s, r)
			}
		default:
			t.Fatalf("parseFDReply(%q) = %+v, nil error", s, r)
		}
	})
}

func FuzzParseMaxThreads(f *testing.F) {
	f.Add("THREADS: live 1  idle 0 max 10 idle-timeout 30\n")
	f.Add("POOLS: 1\nTHREADS: max 4096\nEND")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseMaxThreads(s)
		if err == nil && (n < 1 || n > 4096) {
			t.Fatalf("parseMaxThreads(%q) = %d", s, n)
		}
	})
}

// TestIdentityProveLoaded: with ProveLoaded the signatures are known only
// once clamd has loaded the directory's current files: a signature file
// added without any RELOAD from outside is reported unknown until clamd
// detects the new generation, and from then on clamd detects the new
// signature's sample too.
func TestIdentityProveLoaded(t *testing.T) {
	t.Parallel()
	d := startPrivate(t)
	c := newClient(t, Config{Addr: d.Addr()})
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := NewCheck(c, CheckConfig{ProveLoaded: true}); err == nil {
		t.Fatal("ProveLoaded without SignatureDir accepted")
	}
	k := newCheck(t, c, CheckConfig{SignatureDir: d.SignatureDir(), ProveLoaded: true})
	waitKnown := func() Identity {
		t.Helper()
		for {
			id, err := k.EngineIdentity(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if id.Known {
				return id
			}
			if ctx.Err() != nil {
				t.Fatalf("signatures never known: %+v", id)
			}
			t.Logf("not yet: %s", id.Unknown)
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := waitKnown()
	if shipped, _ := ShippedDigest(); first.SignaturesDigest != shipped {
		t.Fatalf("digest %s, want the shipped set %s (the marker file is left out)", first.SignaturesDigest, shipped)
	}
	if _, err := os.Stat(filepath.Join(d.SignatureDir(), GenerationFile)); err != nil {
		t.Fatal(err)
	}

	sample := "assetscan prove-loaded marker 91ab\n"
	ndb := "Assetscan.Test.ProveLoaded:0:*:" + hexOf("prove-loaded marker 91ab") + "\n"
	if err := os.WriteFile(filepath.Join(d.SignatureDir(), "assetscan-prove.ndb"), []byte(ndb), 0o644); err != nil {
		t.Fatal(err)
	}
	second := waitKnown()
	if second.SignaturesDigest == first.SignaturesDigest {
		t.Fatal("digest unchanged after adding a signature file")
	}
	// Known means loaded: the new signature works now, without waiting.
	r, err := c.Scan(ctx, strings.NewReader(sample))
	if err != nil || r.Status != StatusFound || unofficial(r.Signature) != "Assetscan.Test.ProveLoaded" {
		t.Fatalf("identity %s known, but the new signature's sample: %+v, %v", second, r, err)
	}
}
