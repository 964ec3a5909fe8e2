package trivy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy/pkg/cache"
	vmart "github.com/aquasecurity/trivy/pkg/fanal/artifact/vm"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"

	"github.com/assetscan/assetscan/diskimage"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/scanner"
)

// BenchmarkVMImageScan compares the whole vm-image read on a 4 GiB sparse
// ext4 disk (GPT) holding a Debian root and 50,000 small files:
//
//   - after: diskimage reads the disk once (OpenWith exporting what trivy
//     reads, then Source streaming every file, as the malware check does),
//     and trivy scans the exported tree (ScanRootFS);
//   - before: diskimage Open + Source as before, plus trivy's own VM walker
//     reading the raw disk a second time (the removed ScanVM path).
//
// Run each alone to see its peak RSS (VmHWM is per process):
//
//	ASSETSCAN_VM_BENCH=1 go test -run '^$' -bench 'VMImageScan/after' -benchtime 1x ./scanner/trivy/
//	ASSETSCAN_VM_BENCH=1 go test -run '^$' -bench 'VMImageScan/before' -benchtime 1x ./scanner/trivy/
//
// It prints wall time, bytes read from the image by diskimage (the
// "before" variant adds trivy's own reads, not counted) and the peak RSS.
func BenchmarkVMImageScan(b *testing.B) {
	if os.Getenv("ASSETSCAN_VM_BENCH") == "" {
		b.Skip("set ASSETSCAN_VM_BENCH=1: builds a 4 GiB sparse disk with 50,000 files")
	}
	n := 50_000
	if v, err := strconv.Atoi(os.Getenv("ASSETSCAN_VM_BENCH_FILES")); err == nil {
		n = v
	}
	files := disktest.MinimalDebianRoot()
	for i := range n {
		files[fmt.Sprintf("srv/data/d%03d/f%05d.txt", i/500, i)] = strings.Repeat("x", 100+i%900)
	}
	start := time.Now()
	disk := disktest.WithGPT(b, disktest.Ext4(b, "", files, "4G"), "root")
	b.Logf("built the disk in %s", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	drain := func(d *diskimage.Disk) (int, int64) {
		var nf int
		var nb int64
		err := d.Source().Walk(ctx, func(f scanner.File, r io.Reader) error {
			k, err := io.Copy(io.Discard, r)
			nf++
			nb += k
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return nf, nb
	}
	b.Run("after", func(b *testing.B) {
		for range b.N {
			start := time.Now()
			dir := filepath.Join(b.TempDir(), "rootfs")
			d, _, err := diskimage.OpenWith(ctx, disk, diskimage.Options{ExportDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			nf, nb := drain(d)
			res, err := testEngine.ScanRootFS(ctx, dir)
			if err != nil {
				b.Fatal(err)
			}
			st := d.Export()
			b.Logf("after: %s, %d files (%d bytes) streamed, %d exported (%d bytes), image bytes read %d (%.2f× the file bytes), %d findings, peak RSS %s",
				time.Since(start).Round(time.Millisecond), nf, nb, st.Files, st.Bytes, d.BytesRead(), float64(d.BytesRead())/float64(nb), len(res.Findings), peakRSS())
			d.Close()
		}
	})
	b.Run("before", func(b *testing.B) {
		for range b.N {
			start := time.Now()
			d, _, err := diskimage.Open(ctx, disk)
			if err != nil {
				b.Fatal(err)
			}
			nf, nb := drain(d)
			walker.AppendPermitDiskName("root") // as the removed ScanVM did with the disk's GPT names
			if err := testEngine.gate.enter(ctx); err != nil {
				b.Fatal(err)
			}
			c := cache.NewMemoryCache()
			art, err := vmart.NewArtifact(disk, c, walker.NewVM(), testEngine.artifactOption())
			if err != nil {
				testEngine.gate.leave()
				b.Fatal(err)
			}
			res, err := testEngine.run(ctx, c, art, func(p string) string { return p })
			testEngine.gate.leave()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("before: %s, %d files (%d bytes) streamed, image bytes read by diskimage %d (+ trivy's own walk), %d findings, peak RSS %s",
				time.Since(start).Round(time.Millisecond), nf, nb, d.BytesRead(), len(res.Findings), peakRSS())
			d.Close()
		}
	})
}

// peakRSS is this process's VmHWM.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
