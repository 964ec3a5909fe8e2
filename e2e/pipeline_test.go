package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/scanner/clamav"
)

const lodashLock = `{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "lodash": {
      "version": "4.17.11",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.11.tgz",
      "integrity": "sha512-cQKh8igo5QUhZ7lg38DYWAxMvjSAKG0A8wGSVimP07SIUEK2UO+arSRKbRZWtelMtN5V0Hkwh5ryOto/SshYIg=="
    }
  }
}
`

// A throwaway key made for tests; it protects nothing.
const testRSAKey = "-----BEGIN RSA PRIVATE KEY-----\n" +
	"MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n" +
	"KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n" +
	"o3qGy0t6z09AIJtH+5OeRV1be+N4cDYJKffGzDa88vQENZiRm0GRq6a+HPGQMd2k\n" +
	"-----END RSA PRIVATE KEY-----\n"

func jar(t *testing.T, group, artifact, version string) []byte {
	t.Helper()
	b, err := archivetest.Bytes(archive.FormatZip, archivetest.Files(map[string][]byte{
		"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\r\n\r\n"),
		fmt.Sprintf("META-INF/maven/%s/%s/pom.properties", group, artifact): []byte(
			fmt.Sprintf("groupId=%s\nartifactId=%s\nversion=%s\n", group, artifact, version)),
		"org/example/Main.class": {0xca, 0xfe, 0xba, 0xbe},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pkg(t *testing.T, f archive.Format, files map[string][]byte) []byte {
	t.Helper()
	b, err := archivetest.Bytes(f, archivetest.Files(files))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entries(t *testing.T, f archive.Format, es []archivetest.Entry) []byte {
	t.Helper()
	b, err := archivetest.Bytes(f, es)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackages runs the cases through one stack: API → queue →
// worker → verdict → poll.
func TestPackages(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})

	zip64, err := archivetest.Zip64Bytes(archivetest.Files(map[string][]byte{"app/package-lock.json": []byte(lodashLock)}))
	if err != nil {
		t.Fatal(err)
	}
	// 256 MiB of zeros compress to ~250 KB: a bomb by ratio.
	bomb := entries(t, archive.FormatZip, []archivetest.Entry{{Name: "zeros.bin", Body: make([]byte, 256<<20)}})
	tgz := pkg(t, archive.FormatTarGz, map[string][]byte{"app/a.txt": bytes.Repeat([]byte("hello "), 10000)})
	truncated := tgz[:len(tgz)/2]

	tests := []struct {
		name    string
		key     string
		data    []byte
		verdict assetscan.Outcome
		rule    string
		check   func(t *testing.T, v assetscan.Verdict)
	}{
		{name: "clean zip", key: "s/clean-app.zip", verdict: assetscan.Pass,
			data: pkg(t, archive.FormatZip, map[string][]byte{"app/README.txt": []byte("hi\n"), "app/package-lock.json": []byte(strings.ReplaceAll(lodashLock, "4.17.11", "4.17.21"))})},
		{name: "clean tar.gz", key: "s/clean-app.tar.gz", verdict: assetscan.Pass, data: tgz},
		{name: "lodash lockfile", key: "s/lodash-app.zip", verdict: assetscan.Fail, rule: "vulnerability.cvss",
			data: pkg(t, archive.FormatZip, map[string][]byte{"app/package-lock.json": []byte(lodashLock)}),
			check: func(t *testing.T, v assetscan.Verdict) {
				f := findVuln(v, "CVE-2019-10744")
				if f == nil {
					t.Fatalf("CVE-2019-10744 not reported: %+v", v.Findings)
				}
				vv := f.Vulnerability
				if vv.Package != "lodash" || vv.InstalledVersion != "4.17.11" || vv.FixedVersion == "" ||
					vv.CVSSScore == nil || *vv.CVSSScore != 9.1 || vv.CVSSSource == "" || f.Path != "app/package-lock.json" {
					t.Errorf("finding = %+v / %+v", f, vv)
				}
				if f.Action != assetscan.ActionFail {
					t.Errorf("action = %s", f.Action)
				}
			}},
		{name: "vulnerable jar", key: "s/java-app.tar", verdict: assetscan.Fail, rule: "vulnerability.cvss",
			data: pkg(t, archive.FormatTar, map[string][]byte{"app/lib/log4j-core-2.14.1.jar": jar(t, "org.apache.logging.log4j", "log4j-core", "2.14.1")}),
			check: func(t *testing.T, v assetscan.Verdict) {
				f := findVuln(v, "CVE-2021-44228")
				if f == nil || f.Path != "app/lib/log4j-core-2.14.1.jar" {
					t.Fatalf("log4shell not reported at the jar: %+v", f)
				}
			}},
		{name: "rsa private key", key: "s/key-app.tgz", verdict: assetscan.Fail, rule: "secret.asymmetricprivatekey",
			data: pkg(t, archive.FormatTarGz, map[string][]byte{"app/tests/id_rsa": []byte(testRSAKey)}),
			check: func(t *testing.T, v assetscan.Verdict) {
				raw, _ := json.Marshal(v)
				if strings.Contains(string(raw), "MIIBOgIBAAJBAKj34GkxFhD90") {
					t.Error("verdict contains the secret")
				}
			}},
		{name: "bad file name", key: "s/my app v1.0.zip", verdict: assetscan.Fail, rule: "format.name",
			data: pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")})},
		{name: "not an archive", key: "s/fake.zip", verdict: assetscan.Fail, rule: "format.unsupported",
			data: []byte("this is not a zip file at all")},
		{name: "zip slip", key: "s/slip.zip", verdict: assetscan.Fail, rule: "archive.traversal",
			data: entries(t, archive.FormatZip, []archivetest.Entry{{Name: "../../../../evil-slip.txt", Body: []byte("pwned")}, {Name: "ok.txt", Body: []byte("ok")}})},
		{name: "symlink escape", key: "s/link.tar", verdict: assetscan.Fail, rule: "archive.link_escape",
			data: entries(t, archive.FormatTar, []archivetest.Entry{
				{Name: "app/etc", Type: tar.TypeSymlink, Linkname: "../../../../../../etc"},
				{Name: "app/etc/evil-link.txt", Body: []byte("pwned")},
			})},
		{name: "zip bomb", key: "s/bomb.zip", verdict: assetscan.Fail, rule: "archive.bomb", data: bomb},
		{name: "truncated gzip", key: "s/truncated.tar.gz", verdict: assetscan.Fail, rule: "archive.corrupt", data: truncated},
		{name: "zip64 with vulnerable component", key: "s/zip64-app.zip", verdict: assetscan.Fail, rule: "vulnerability.cvss", data: zip64,
			check: func(t *testing.T, v assetscan.Verdict) {
				if findVuln(v, "CVE-2019-10744") == nil {
					t.Errorf("zip64 member not scanned: %+v", v.Findings)
				}
			}},
		{name: "eicar in zip in tar.gz", key: "s/nested-eicar.tar.gz", verdict: assetscan.Fail, rule: "malware.detected",
			data: pkg(t, archive.FormatTarGz, map[string][]byte{"app/inner.zip": pkg(t, archive.FormatZip, map[string][]byte{"x/eicar.com": clamav.EICAR()})}),
			check: func(t *testing.T, v assetscan.Verdict) {
				for _, f := range v.Findings {
					if f.Malware != nil && f.Path == "app/inner.zip!/x/eicar.com" && strings.HasPrefix(f.Malware.Signature, "Assetscan.Test.EICAR") {
						return
					}
				}
				t.Errorf("eicar not reported at its nested path: %+v", v.Findings)
			}},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		s.upload(tt.key, tt.data)
		ids[i] = s.submit(fmt.Sprintf("asset-%d", i), tt.key)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := s.wait(ids[i], 3*time.Minute)
			if v.Verdict != tt.verdict {
				t.Fatalf("verdict = %s (%s), want %s; findings %+v", v.Verdict, v.Reason, tt.verdict, v.Findings)
			}
			if tt.rule != "" && !hasRule(v, tt.rule) {
				t.Errorf("failed rules = %s, want %s", ruleList(v), tt.rule)
			}
			if v.SHA256 == "" || v.Policy.ID == "" || v.Policy.Digest == "" {
				t.Errorf("verdict does not name content/policy: sha256=%q policy=%+v", v.SHA256, v.Policy)
			}
			if v.Verdict == assetscan.Pass && (v.VulnDB == nil || v.VulnDB.UpdatedAt.IsZero()) {
				t.Errorf("verdict does not name the DB: %+v", v.VulnDB)
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
	// Nothing written outside the work dirs: the hostile names above would
	// have landed somewhere under the stack's dir or /etc.
	_ = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "evil-") {
			t.Errorf("hostile entry written at %s", p)
		}
		return nil
	})
	for _, p := range []string{"/etc/evil-link.txt", "/evil-slip.txt", "/tmp/evil-slip.txt"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("hostile entry written at %s", p)
		}
	}
}

func findVuln(v assetscan.Verdict, id string) *assetscan.JudgedFinding {
	for i, f := range v.Findings {
		if f.Vulnerability != nil && f.Vulnerability.ID == id {
			return &v.Findings[i]
		}
	}
	return nil
}

func TestSubmissionRules(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	s.upload("s/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")}))

	t.Run("invalid request names fields", func(t *testing.T) {
		code, r := s.submitRaw(map[string]any{"asset_id": "", "seller_id": "s 1", "kind": "tarball", "bucket": s.uploads, "key": "s/app.zip", "sha256": "xyz"})
		if code != http.StatusBadRequest {
			t.Fatalf("code = %d", code)
		}
		for _, f := range []string{"asset_id", "seller_id", "kind", "sha256"} {
			if r.Fields[f] == "" {
				t.Errorf("no message for field %s: %+v", f, r.Fields)
			}
		}
	})
	t.Run("unknown key is refused up front", func(t *testing.T) {
		code, r := s.submitRaw(map[string]any{"asset_id": "a1", "seller_id": "s1", "kind": "package", "bucket": s.uploads, "key": "s/missing.zip"})
		if code != http.StatusUnprocessableEntity || r.Fields["key"] == "" {
			t.Fatalf("code = %d %+v", code, r)
		}
		if n := s.keys("asynq:{" + s.queuePrefix + "*}:pending"); len(n) > 0 {
			t.Errorf("a job was queued: %v", n)
		}
	})
	t.Run("unknown bucket is refused up front", func(t *testing.T) {
		code, _ := s.submitRaw(map[string]any{"asset_id": "a1", "seller_id": "s1", "kind": "package", "bucket": "no-such-bucket-x", "key": "s/app.zip"})
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("code = %d", code)
		}
	})
	t.Run("same asset and content is the same scan", func(t *testing.T) {
		req := map[string]any{"asset_id": "a-dup", "seller_id": "s1", "kind": "package", "bucket": s.uploads, "key": "s/app.zip"}
		c1, r1 := s.submitRaw(req)
		c2, r2 := s.submitRaw(req)
		if c1 != http.StatusAccepted || c2 != http.StatusOK || r1.ScanID != r2.ScanID || !r2.Existing {
			t.Fatalf("first %d %+v, second %d %+v", c1, r1, c2, r2)
		}
		// New content under the same key is a new scan.
		s.upload("s/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"b.txt": []byte("y")}))
		c3, r3 := s.submitRaw(req)
		if c3 != http.StatusAccepted || r3.ScanID == r1.ScanID {
			t.Fatalf("changed content: %d %+v", c3, r3)
		}
		code, b := s.get("/v1/assets/a-dup/scan")
		var v assetscan.Verdict
		_ = json.Unmarshal(b, &v)
		if code != http.StatusOK || v.ScanID != r3.ScanID || v.Status != assetscan.StatusQueued {
			t.Fatalf("latest = %d %s", code, b)
		}
	})
	t.Run("unknown scan is 404", func(t *testing.T) {
		if code, _ := s.get("/v1/scans/scn_doesnotexist"); code != http.StatusNotFound {
			t.Fatalf("code = %d", code)
		}
	})
}

// TestDigestAndDurability: a submitted digest that does not match fails;
// verdicts survive the loss of Redis's data.
func TestDigestAndDurability(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	data := pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")})
	s.upload("s/app.zip", data)
	bad := s.submit("a-digest", "s/app.zip", func(m map[string]any) { m["sha256"] = strings.Repeat("ab", 32) })
	good := s.submit("a-good", "s/app.zip")
	v := s.wait(bad, 2*time.Minute)
	if v.Verdict != assetscan.Fail || !hasRule(v, "format.digest_mismatch") {
		t.Fatalf("digest mismatch: %s %s", v.Verdict, ruleList(v))
	}
	g := s.wait(good, 2*time.Minute)
	if g.Verdict != assetscan.Pass {
		t.Fatalf("good: %s %s", g.Verdict, g.Reason)
	}
	// Redis loses everything: the verdict of record is in object storage.
	s.loseRedis()
	again := s.wait(good, 10*time.Second)
	if again.Verdict != assetscan.Pass || again.SHA256 != g.SHA256 {
		t.Fatalf("after Redis loss: %+v", again)
	}
	code, b := s.get("/v1/assets/a-good/scan")
	if code != http.StatusOK || !strings.Contains(string(b), good) {
		t.Fatalf("latest after Redis loss: %d %s", code, b)
	}
}

// TestDBMissing: a worker without a usable DB never passes.
func TestDBMissing(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true, maxRetry: 1})
	s.startWorker("ASSETSCAN_DB_DIR=" + t.TempDir())
	s.upload("s/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")}))
	id := s.submit("a1", "s/app.zip")
	v := s.wait(id, 2*time.Minute)
	if v.Verdict != assetscan.Error || !strings.Contains(v.Reason, "vulnerability database") {
		t.Fatalf("verdict = %s (%s)", v.Verdict, v.Reason)
	}
	if v.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (retried once)", v.Attempts)
	}
}

// TestStorageUnreachable: the worker cannot download the object (its
// requests for the uploads bucket are dropped); the scan is retried, then
// ends in error — never pass.
func TestStorageUnreachable(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true, maxRetry: 1})
	target, _ := url.Parse("http://" + testEnv.s3Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/"+s.uploads+"/") {
			hj, ok := w.(http.Hijacker)
			if ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close() // connection dropped: storage unreachable
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = proxy.Serve(ln) }()
	t.Cleanup(func() { proxy.Close() })
	s.startWorker("ASSETSCAN_S3_ENDPOINT=" + ln.Addr().String())
	s.upload("s/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")}))
	id := s.submit("a1", "s/app.zip")
	v := s.wait(id, 4*time.Minute)
	if v.Verdict != assetscan.Error || !strings.Contains(v.Reason, "unavailable") {
		t.Fatalf("verdict = %s (%s)", v.Verdict, v.Reason)
	}
	if v.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", v.Attempts)
	}
}

// TestWorkerKilledMidScan: a worker SIGKILLed while scanning loses its
// job only until asynq's recoverer hands it to another worker.
func TestWorkerKilledMidScan(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true, maxRetry: 3})
	// A tar with 400 MiB of random data keeps clamd busy for seconds.
	path := filepath.Join(t.TempDir(), "big-app.tar")
	writeRandomTar(t, path, 400<<20)
	s.uploadFile("s/big-app.tar", path)
	w1 := s.startWorker()
	id := s.submit("a-big", "s/big-app.tar")
	deadline := time.Now().Add(2 * time.Minute)
	for s.status(id) != assetscan.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatal("scan never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	w1.signal(syscall.SIGKILL)
	w1.wait(10 * time.Second)
	if st := s.status(id); st == assetscan.StatusDone {
		t.Fatal("scan finished before the kill; make the package bigger")
	}
	s.startWorker()
	// asynq: 30 s lease + recoverer every minute + retry delay.
	v := s.wait(id, 4*time.Minute)
	if v.Verdict != assetscan.Pass {
		t.Fatalf("verdict = %s (%s)", v.Verdict, v.Reason)
	}
	if v.Attempts < 2 {
		t.Errorf("attempts = %d, want >= 2", v.Attempts)
	}
}

// TestWorkerSIGTERMFinishesItsScan: graceful shutdown lets the running scan
// finish (or hands it back) — it is never lost.
func TestWorkerSIGTERMFinishesItsScan(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	path := filepath.Join(t.TempDir(), "mid-app.tar")
	writeRandomTar(t, path, 100<<20)
	s.uploadFile("s/mid-app.tar", path)
	w := s.startWorker("ASSETSCAN_SHUTDOWN_TIMEOUT=2m")
	id := s.submit("a-mid", "s/mid-app.tar")
	deadline := time.Now().Add(2 * time.Minute)
	for s.status(id) != assetscan.StatusRunning {
		if time.Now().After(deadline) {
			t.Fatal("scan never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.signal(syscall.SIGTERM)
	if !w.wait(3 * time.Minute) {
		t.Fatal("worker did not exit after SIGTERM")
	}
	v := s.wait(id, 5*time.Second)
	if v.Verdict != assetscan.Pass {
		t.Fatalf("verdict = %s (%s)", v.Verdict, v.Reason)
	}
}

func writeRandomTar(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: "app/blob.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

var _ = gzip.NewWriter
