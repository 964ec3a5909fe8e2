package clamav

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetscan/assetscan/scanner"
)

// BenchmarkScanFiles scans a generated tree of 200 files / 100 MiB through
// Check.Run and reports MB/s; if clamdscan is installed it also scans the
// same tree with `clamdscan --multiscan --fdpass` and reports its MB/s.
// It uses a private clamd with DisableCache yes: clamd caches clean results
// by MD5, which would make every iteration after the first a cache hit.
//
//	go test -run '^$' -bench ScanFiles -benchtime 3x ./scanner/clamav/
func BenchmarkScanFiles(b *testing.B) {
	const (
		nfiles = 200
		total  = 100 << 20
	)
	d := startPrivate(b, Setting{"DisableCache", "yes"})
	root := b.TempDir()
	tg := &scanner.Target{Root: root, WorkDir: b.TempDir()}
	for i := range nfiles {
		sub := filepath.Join(root, fmt.Sprintf("d%02d", i%10))
		os.MkdirAll(sub, 0o755)
		p := filepath.Join(sub, fmt.Sprintf("f%03d.bin", i))
		if err := os.WriteFile(p, filler(total/nfiles, uint64(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		tg.Files = append(tg.Files, scanner.File{Path: rel, DiskPath: p, Size: total / nfiles})
	}
	k := newCheck(b, newClient(b, Config{Addr: d.Addr()}), CheckConfig{})
	b.SetBytes(total)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res, err := k.Run(context.Background(), tg)
		if err != nil || len(res.Findings) != 0 {
			b.Fatalf("Run = %+v, %v", res, err)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(total)*float64(b.N)/1e6/el.Seconds(), "MB/s")

	if _, err := exec.LookPath("clamdscan"); err != nil {
		return
	}
	n := max(b.N, 1)
	start = time.Now()
	for range n {
		out, err := exec.Command("clamdscan", "-c", d.ConfigPath(), "--multiscan", "--fdpass", "--no-summary", root).CombinedOutput()
		if err != nil {
			b.Fatalf("clamdscan: %v\n%s", err, out)
		}
	}
	el = time.Since(start)
	b.ReportMetric(float64(total)*float64(n)/1e6/el.Seconds(), "clamdscan-MB/s")
}
