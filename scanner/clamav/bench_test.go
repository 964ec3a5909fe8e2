package clamav

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assetscan/assetscan/scanner"
)

// The benchmarks scan a generated tree through Check.Run passing
// descriptors (fdpass, the default on a unix socket) and with `clamdscan
// --fdpass --multiscan`, head to head (each starting every other
// iteration, so that both see the same machine load), then through
// Check.Run streaming (instream) on its own. They report the medians of
// MB/s and files/s of each, the ratio of the check (fdpass) to clamdscan,
// and the CPU time per 1000 files of each client and of clamd (on 2 cores
// busy with clamd's threads, the client's CPU is taken from clamd). They
// use a private clamd with DisableCache yes: clamd caches clean results by
// MD5, which would make every iteration after the first a cache hit.
//
//	go test -run '^$' -bench 'ScanFiles|TinyFiles' -benchtime 15x ./scanner/clamav/
//	ASSETSCAN_BENCH_TINY_FILES=100000 go test -run '^$' -bench TinyFiles -benchtime 1x ./scanner/clamav/
//	ASSETSCAN_BENCH_CONCURRENCY=8 go test -run '^$' -bench TinyFiles -benchtime 15x ./scanner/clamav/

// BenchmarkScanFiles: 200 files, 100 MiB of noise.
func BenchmarkScanFiles(b *testing.B) {
	benchTree(b, 200, 100<<20/200)
}

// BenchmarkScanTinyFiles: 20 000 files of 100-600 bytes (the number is
// ASSETSCAN_BENCH_TINY_FILES when set): where per-file round trips, not
// bytes, decide the time.
func BenchmarkScanTinyFiles(b *testing.B) {
	n := 20000
	if v := os.Getenv("ASSETSCAN_BENCH_TINY_FILES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("ASSETSCAN_BENCH_TINY_FILES=%q", v)
		}
	}
	benchTree(b, n, 0)
}

// benchConcurrency is ASSETSCAN_BENCH_CONCURRENCY, the fd-passing check's
// requests in flight (0, the default: 2 × clamd's MaxThreads).
func benchConcurrency(b *testing.B) int {
	v := os.Getenv("ASSETSCAN_BENCH_CONCURRENCY")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("ASSETSCAN_BENCH_CONCURRENCY=%q", v)
	}
	return n
}

// benchDir is a directory for the tree, on tmpfs (/dev/shm) where there
// is one: both contenders read the tree from memory either way, but on a
// disk the machine writes the fresh tree back during the first runs, which
// slowed whichever contender it met by up to several times.
func benchDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "assetscan-bench-")
	if err != nil {
		return b.TempDir()
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time (user + system, all threads) process pid has
// used, from /proc/<pid>/stat (0 where there is no /proc).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is
	// field 3, utime and stime fields 14 and 15, in clock ticks (100/s).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// benchTree writes nfiles files of size bytes (0: 100 + i%501 bytes) in
// 100 directories and scans them.
func benchTree(b *testing.B, nfiles, size int) {
	d := startPrivate(b, Setting{"DisableCache", "yes"})
	root := benchDir(b)
	tg := &scanner.Target{Root: root, WorkDir: b.TempDir()}
	var total int64
	for i := range nfiles {
		sub := filepath.Join(root, fmt.Sprintf("d%02d", i%100))
		os.MkdirAll(sub, 0o755)
		p := filepath.Join(sub, fmt.Sprintf("f%06d.bin", i))
		n := size
		if n == 0 {
			n = 100 + i%501
		}
		if err := os.WriteFile(p, filler(n, uint64(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		tg.Files = append(tg.Files, scanner.File{Path: rel, DiskPath: p, Size: int64(n)})
		total += int64(n)
	}
	c := newClient(b, Config{Addr: d.Addr()})
	checks := []struct {
		name string
		k    *Check
	}{
		{"fdpass", newCheck(b, c, CheckConfig{Mode: ModeFDPass, SignatureDir: d.SignatureDir(), Concurrency: benchConcurrency(b)})},
		{"instream", newCheck(b, c, CheckConfig{Mode: ModeInstream, SignatureDir: d.SignatureDir()})},
	}
	clamdscan, _ := exec.LookPath("clamdscan")
	// The contenders: the checks, then clamdscan. The check passing
	// descriptors and clamdscan go head to head, each iteration starting
	// with the other one; the streaming check runs after them, on its own
	// (clamd is still deleting its temporary files after it, which slowed
	// whichever contender came next).
	var detail string
	run := []func(){}
	for i, ck := range checks {
		run = append(run, func() {
			res, err := ck.k.Run(context.Background(), tg)
			if err != nil || len(res.Findings) != 0 {
				b.Fatalf("%s: Run = %+v, %v", ck.name, res, err)
			}
			if i == 0 {
				detail = res.Detail
			}
		})
	}
	// CPU time of each contender's client and of clamd, per iteration.
	var clientCPU, clamdCPU []time.Duration
	if clamdscan != "" {
		run = append(run, func() {
			cmd := exec.Command(clamdscan, "-c", d.ConfigPath(), "--multiscan", "--fdpass", "--infected", "--no-summary", root)
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("clamdscan: %v\n%s", err, out)
			}
			clientCPU[len(run)-1] += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		})
	}
	clientCPU = make([]time.Duration, len(run))
	clamdCPU = make([]time.Duration, len(run))
	// One untimed round first: right after the tree is written (and the
	// previous run's tree deleted) the machine is busy writing back for a
	// while; consecutive runs of this benchmark alternated between normal
	// speed and several times slower for every contender without it.
	for _, f := range run {
		f()
	}
	// Every iteration's time of each contender: the figures are medians.
	// A contender that meets one of the machine's write-back stalls in an
	// iteration would otherwise carry it in a sum; the mean-based ratio is
	// printed beside them.
	el := make([][]time.Duration, len(run))
	clear(clientCPU) // the untimed round's
	clear(clamdCPU)
	timed := func(i int) {
		self0, clamd0 := selfCPU(), processCPU(d.PID())
		start := time.Now()
		run[i]()
		el[i] = append(el[i], time.Since(start))
		clamdCPU[i] += processCPU(d.PID()) - clamd0
		if i < len(checks) {
			clientCPU[i] += selfCPU() - self0
		}
	}
	heads := []int{0} // the fd-passing check ...
	if clamdscan != "" {
		heads = append(heads, len(checks)) // ... against clamdscan
	}
	b.ResetTimer()
	for iter := 0; b.Loop(); iter++ {
		for k := range heads {
			timed(heads[(iter+k)%len(heads)])
		}
	}
	b.StopTimer()
	for range b.N {
		timed(1) // streaming
	}
	med := func(d []time.Duration) time.Duration { return slices.Sorted(slices.Values(d))[len(d)/2] }
	sum := func(d []time.Duration) (t time.Duration) {
		for _, x := range d {
			t += x
		}
		return t
	}
	mbs := func(e time.Duration) float64 { return float64(total) / 1e6 / e.Seconds() }
	fps := func(e time.Duration) float64 { return float64(nfiles) / e.Seconds() }
	line := fmt.Sprintf("%d files, %.1f MB, medians of %d iterations:", nfiles, float64(total)/1e6, b.N)
	for i, ck := range checks {
		b.ReportMetric(mbs(med(el[i])), ck.name+"-MB/s")
		b.ReportMetric(fps(med(el[i])), ck.name+"-files/s")
		line += fmt.Sprintf(" check %s %.1f MB/s %.0f files/s;", ck.name, mbs(med(el[i])), fps(med(el[i])))
	}
	if clamdscan != "" {
		ce := med(el[len(checks)])
		b.ReportMetric(mbs(ce), "clamdscan-MB/s")
		b.ReportMetric(fps(ce), "clamdscan-files/s")
		b.ReportMetric(ce.Seconds()/med(el[0]).Seconds(), "fdpass/clamdscan")
		wins := 0 // iterations in which the check was the faster of the two
		for i := range el[0] {
			if el[0][i] < el[len(checks)][i] {
				wins++
			}
		}
		line += fmt.Sprintf(" clamdscan --fdpass --multiscan %.1f MB/s %.0f files/s; check fdpass = %.2fx clamdscan, instream = %.2fx (from the means: fdpass %.2fx; fdpass faster in %d of %d iterations)",
			mbs(ce), fps(ce), ce.Seconds()/med(el[0]).Seconds(), ce.Seconds()/med(el[1]).Seconds(),
			sum(el[len(checks)]).Seconds()/sum(el[0]).Seconds(), wins, len(el[0]))
	}
	// CPU per 1000 files, from the sums over the iterations: on a machine
	// whose cores clamd's threads keep busy, the client's CPU is taken
	// from clamd.
	perK := func(d time.Duration, n int) float64 { return d.Seconds() * 1000 / float64(n) / float64(nfiles) * 1000 }
	line += "\nCPU-ms per 1000 files (client + clamd):"
	for i := range run {
		name := "clamdscan"
		if i < len(checks) {
			name = "check " + checks[i].name
		}
		line += fmt.Sprintf(" %s %.1f + %.1f;", name, perK(clientCPU[i], len(el[i])), perK(clamdCPU[i], len(el[i])))
	}
	b.Logf("%s\n(%s)", line, detail)
}
