package trivy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusDirs writes n small packages: a lockfile, a go.mod, a dist-info, a
// jar, a private key in every tenth, and some source files.
func corpusDirs(b *testing.B, n int) []string {
	b.Helper()
	base := b.TempDir()
	var roots []string
	for i := range n {
		files := map[string]string{
			"app/package-lock.json": lodashLock,
			"app/go.mod":            "module example.com/app\n\ngo 1.21\n\nrequire golang.org/x/text v0.3.7\n",
			"app/site-packages/requests-2.19.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.1\n",
		}
		for j := range 20 {
			files[fmt.Sprintf("app/src/file%02d.js", j)] = strings.Repeat(fmt.Sprintf("function f%d() { return %d; }\n", j, i), 150)
		}
		if i%10 == 0 {
			files["app/keys/id_rsa"] = testRSAKey
		}
		root := filepath.Join(base, fmt.Sprintf("p%03d", i), "pkg")
		for name, body := range files {
			p := filepath.Join(root, name)
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		roots = append(roots, root)
	}
	return roots
}

// BenchmarkCorpus scans ~100 small packages through the library path and,
// in the same run, through the trivy CLI one process per package (what a
// user would script). Set TRIVY_CLI to a trivy binary built from the same
// module version (bench/trivy-cli.sh builds one); without it only the
// library half runs. bench/compare.sh runs both and prints the ratio.
func BenchmarkCorpus(b *testing.B) {
	roots := corpusDirs(b, 100)
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			for _, r := range roots {
				if _, err := testEngine.ScanDir(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(roots))/time.Since(start).Seconds(), "pkgs/s")
		}
	})
	cli := os.Getenv("TRIVY_CLI")
	if cli == "" {
		b.Log("TRIVY_CLI not set: CLI half skipped")
		return
	}
	cache := testEngine.cfg.CacheDir
	b.Run("cli", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			for _, r := range roots {
				cmd := exec.Command(cli, "fs", "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update",
					"--offline-scan", "--skip-version-check", "--disable-telemetry", "--scanners", "vuln,secret",
					"--format", "json", "--quiet", filepath.Dir(r))
				cmd.Env = append(os.Environ(), "TRIVY_NO_PROGRESS=true")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("trivy cli: %v\n%s", err, out)
				}
			}
			b.ReportMetric(float64(len(roots))/time.Since(start).Seconds(), "pkgs/s")
		}
	})
}
