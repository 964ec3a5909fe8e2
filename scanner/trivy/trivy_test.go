package trivy

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/vulndb"
)

// The engine is process-wide (trivy's DB handle is a package variable), so
// the tests share one, opened on the fixture DB in TestMain.
var testEngine *Engine

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "assetscan-trivy-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		if err := vulndb.BuildDefault(dir); err != nil {
			fmt.Fprintln(os.Stderr, "build fixture DB:", err)
			return 1
		}
		testEngine, err = Open(context.Background(), Config{CacheDir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, "open engine:", err)
			return 1
		}
		defer CleanupTemp()
		defer testEngine.Close()
		return m.Run()
	}())
}

// writeTree writes files under dir/pkg and returns the package root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "pkg")
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// jarBytes builds a jar carrying Maven metadata, as real jars do.
func jarBytes(t *testing.T, group, artifact, version string) string {
	t.Helper()
	var b strings.Builder
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("META-INF/MANIFEST.MF")
	fmt.Fprintf(w, "Manifest-Version: 1.0\r\nImplementation-Title: %s\r\nImplementation-Version: %s\r\n\r\n", artifact, version)
	w, _ = zw.Create(fmt.Sprintf("META-INF/maven/%s/%s/pom.properties", group, artifact))
	fmt.Fprintf(w, "groupId=%s\nartifactId=%s\nversion=%s\n", group, artifact, version)
	w, _ = zw.Create("org/example/Main.class")
	_, _ = w.Write([]byte{0xca, 0xfe, 0xba, 0xbe})
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

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

// A throwaway RSA key generated for these tests; it protects nothing.
const testRSAKey = `-----BEGIN RSA PRIVATE KEY-----
MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu
KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm
o3qGy0t6z09AIJtH+5OeRV1be+N4cDYJKffGzDa88vQENZiRm0GRq6a+HPGQMd2k
TQIhAKMSvzIBnni7ot/OSie2TmJLY4SwTQAevXysE2RbFDYdAiEBCUEaRQnMnbp7
9mxDXDf6AU0cN/RPBjb9qSHDcWZHGzUCIG2Es59z8ugGrDY+pxLQnwfotadxd+Uy
v/Ow5T0q5gIJAiEAyS4RaI9YG8EWx/2w0T67ZUVAw8eOMB6BIUg0Xcu+3okCIBOs
/5OiPgoTdSy7bcF9IGpSE8ZgGKzgYQVZeN97YE00
-----END RSA PRIVATE KEY-----
`

func findVuln(res scanner.Result, id, pkg string) *assetscan.Finding {
	for i, f := range res.Findings {
		if f.Vulnerability != nil && f.Vulnerability.ID == id && f.Vulnerability.Package == pkg {
			return &res.Findings[i]
		}
	}
	return nil
}

func scanFiles(t *testing.T, files map[string]string) scanner.Result {
	t.Helper()
	res, err := testEngine.ScanDir(context.Background(), writeTree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestVulnerabilities is the adapter's guard against silent behaviour
// changes of trivy: each ecosystem's analyzer must still find its package
// and match it against the DB, with the score and path we report.
func TestVulnerabilities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		files     map[string]string
		id, pkg   string
		path      string
		wantScore float64
		source    string
	}{
		{
			name:  "npm lockfile",
			files: map[string]string{"app/package-lock.json": lodashLock},
			id:    "CVE-2019-10744", pkg: "lodash", path: "app/package-lock.json", wantScore: 9.1, source: "nvd",
		},
		{
			name:  "node_modules package.json",
			files: map[string]string{"app/node_modules/lodash/package.json": `{"name":"lodash","version":"4.17.11","license":"MIT"}`},
			id:    "CVE-2019-10744", pkg: "lodash", path: "app/node_modules/lodash/package.json", wantScore: 9.1, source: "nvd",
		},
		{
			name:  "jar with pom.properties",
			files: map[string]string{"lib/log4j-core-2.14.1.jar": jarBytes(t, "org.apache.logging.log4j", "log4j-core", "2.14.1")},
			id:    "CVE-2021-44228", pkg: "org.apache.logging.log4j:log4j-core", path: "lib/log4j-core-2.14.1.jar", wantScore: 10.0, source: "nvd",
		},
		{
			name: "python dist-info",
			files: map[string]string{
				"site-packages/requests-2.19.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.1\n",
			},
			id: "CVE-2018-18074", pkg: "requests", path: "site-packages/requests-2.19.1.dist-info/METADATA", wantScore: 9.8, source: "nvd",
		},
		{
			name: "go.mod",
			files: map[string]string{
				"src/go.mod": "module example.com/app\n\ngo 1.21\n\nrequire golang.org/x/text v0.3.7\n",
			},
			id: "CVE-2022-32149", pkg: "golang.org/x/text", path: "src/go.mod", wantScore: 7.5, source: "nvd",
		},
		{
			name:  "package's own dev/ dir is walked",
			files: map[string]string{"dev/package-lock.json": lodashLock},
			id:    "CVE-2019-10744", pkg: "lodash", path: "dev/package-lock.json", wantScore: 9.1, source: "nvd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := scanFiles(t, tt.files)
			f := findVuln(res, tt.id, tt.pkg)
			if f == nil {
				t.Fatalf("%s in %s not found; findings: %+v; components: %+v", tt.id, tt.pkg, res.Findings, res.Components)
			}
			v := f.Vulnerability
			if f.Path != tt.path {
				t.Errorf("path = %q, want %q", f.Path, tt.path)
			}
			if v.CVSSScore == nil || *v.CVSSScore != tt.wantScore {
				t.Errorf("cvss = %v, want %v", v.CVSSScore, tt.wantScore)
			}
			if v.CVSSSource == "" || v.CVSSVector == "" {
				t.Errorf("cvss source/vector missing: %+v", v)
			}
			if v.FixedVersion == "" {
				t.Errorf("fixed version missing: %+v", v)
			}
			if v.Severity == "" || v.Severity == "UNKNOWN" {
				t.Errorf("severity = %q (VulnSeveritySources not applied?)", v.Severity)
			}
			if len(res.Components) == 0 {
				t.Error("no components (PkgRelationships not set?)")
			}
			if res.DB == nil || res.DB.UpdatedAt.IsZero() {
				t.Error("result does not name the DB")
			}
		})
	}
}

func TestCleanTreeHasNoFindings(t *testing.T) {
	t.Parallel()
	res := scanFiles(t, map[string]string{
		"app/package-lock.json": strings.ReplaceAll(lodashLock, "4.17.11", "4.17.21"),
		"app/README.md":         "nothing to see\n",
	})
	if len(res.Findings) != 0 {
		t.Fatalf("findings: %+v", res.Findings)
	}
	if len(res.Components) != 1 || res.Components[0].Name != "lodash" {
		t.Errorf("components = %+v", res.Components)
	}
}

// TestSecretsWithoutTrivySkips: trivy skips tests/, examples/, markdown and
// node_modules by default; a seller could hide a key there.
func TestSecretsWithoutTrivySkips(t *testing.T) {
	t.Parallel()
	awsLine := "aws_access_key_id = AKIA" + "ZXCVBNMASDFGHJKL\naws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\n"
	tests := []struct {
		name, path, body, category string
	}{
		{"rsa key at top", "id_rsa", testRSAKey, "AsymmetricPrivateKey"},
		{"rsa key in tests", "src/tests/fixtures/server.key", testRSAKey, "AsymmetricPrivateKey"},
		{"rsa key in examples", "examples/deploy.pem", testRSAKey, "AsymmetricPrivateKey"},
		{"rsa key in markdown", "docs/README.md", "# setup\n\n" + testRSAKey, "AsymmetricPrivateKey"},
		{"rsa key in node_modules", "node_modules/x/key.pem", testRSAKey, "AsymmetricPrivateKey"},
		{"aws keys in vendor", "vendor/conf/credentials", awsLine, "AWS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := scanFiles(t, map[string]string{tt.path: tt.body})
			var got *assetscan.Finding
			for i, f := range res.Findings {
				if f.Secret != nil && f.Secret.Category == tt.category {
					got = &res.Findings[i]
				}
			}
			if got == nil {
				t.Fatalf("no %s secret found in %s: %+v", tt.category, tt.path, res.Findings)
			}
			if got.Path != tt.path {
				t.Errorf("path = %q, want %q", got.Path, tt.path)
			}
			// The secret itself must be masked.
			for _, secret := range []string{"MIIBOgIBAAJBAKj34GkxFhD90", "ZXCVBNMASDFGHJKL", "wJalrXUtnFEMI"} {
				if strings.Contains(got.Secret.Match, secret) || strings.Contains(got.Message, secret) {
					t.Errorf("secret not masked: %q", got.Secret.Match)
				}
			}
		})
	}
}

// TestConcurrentScans is run under -race by scripts/test.sh: one engine,
// many scans at once.
func TestConcurrentScans(t *testing.T) {
	t.Parallel()
	var roots []string
	for i := range 8 {
		files := map[string]string{"app/package-lock.json": lodashLock}
		if i%2 == 0 {
			files["keys/id_rsa"] = testRSAKey
			files["lib/log4j.jar"] = jarBytes(t, "org.apache.logging.log4j", "log4j-core", "2.14.1")
		}
		roots = append(roots, writeTree(t, files))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(roots))
	results := make([]scanner.Result, len(roots))
	for i, root := range roots {
		wg.Go(func() {
			results[i], errs[i] = testEngine.ScanDir(context.Background(), root)
		})
	}
	wg.Wait()
	for i := range roots {
		if errs[i] != nil {
			t.Fatalf("scan %d: %v", i, errs[i])
		}
		if findVuln(results[i], "CVE-2019-10744", "lodash") == nil {
			t.Errorf("scan %d: lodash CVE missing", i)
		}
		want := 1
		if i%2 == 0 {
			want = 3 // lodash, log4j, private key
		}
		if len(results[i].Findings) < want {
			t.Errorf("scan %d: %d findings, want at least %d", i, len(results[i].Findings), want)
		}
	}
}

func TestOpenWithoutDBFails(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), Config{CacheDir: t.TempDir()})
	if !errors.Is(err, ErrNoDB) {
		t.Fatalf("err = %v, want ErrNoDB", err)
	}
}

func TestHighestV3(t *testing.T) {
	t.Parallel()
	m := dbtypes.VendorCVSS{
		"ghsa":   {V3Score: 7.5, V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"},
		"nvd":    {V3Score: 9.8, V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
		"redhat": {V2Score: 10},
	}
	score, src, vec, ok := highestV3(m)
	if !ok || score != 9.8 || src != "nvd" || !strings.HasSuffix(vec, "A:H") {
		t.Fatalf("highestV3 = %v %q %q %v", score, src, vec, ok)
	}
	if _, _, _, ok := highestV3(dbtypes.VendorCVSS{"nvd": {V2Score: 7.5}}); ok {
		t.Error("a v2-only score counted as v3")
	}
}

// TestRematchGivesTheScansVulnerabilities: matching a stored inventory
// against the DB finds what the scan found, at the same paths.
func TestRematchGivesTheScansVulnerabilities(t *testing.T) {
	t.Parallel()
	res := scanFiles(t, map[string]string{
		"app/package-lock.json":     lodashLock,
		"lib/log4j-core-2.14.1.jar": jarBytes(t, "org.apache.logging.log4j", "log4j-core", "2.14.1"),
	})
	re, err := testEngine.Rematch(context.Background(), res.Components, res.OS)
	if err != nil {
		t.Fatal(err)
	}
	key := func(f assetscan.Finding) string {
		return f.Vulnerability.ID + " " + f.Vulnerability.Package + " " + f.Path
	}
	want := map[string]bool{}
	for _, f := range res.Findings {
		if f.Vulnerability != nil {
			want[key(f)] = true
		}
	}
	got := map[string]bool{}
	for _, f := range re.Findings {
		got[key(f)] = true
	}
	if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("rematch = %v, scan = %v", got, want)
	}
}

// TestDownloadDBFromAnUnreachableMirror: the OCI download path runs (no
// registry can be reached from here) and fails cleanly, leaving no DB.
func TestDownloadDBFromAnUnreachableMirror(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/aquasecurity/trivy-db:2"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := DownloadDB(ctx, dir, []string{repo}, true); err == nil {
		t.Fatal("download from a registry that has nothing succeeded")
	}
	if _, err := Open(context.Background(), Config{CacheDir: dir}); !errors.Is(err, ErrNoDB) {
		t.Fatalf("a failed download left a usable DB: %v", err)
	}
}
