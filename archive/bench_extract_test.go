package archive_test

// Extraction throughput on a generated package. Uses only the public API
// (Extract, DefaultLimits), so the same file also runs against older
// versions of the package (bench/extract.sh compares).
//
//	ASSETSCAN_BENCH_BYTES=1073741824 go test -run XXX -bench BenchmarkExtract -benchtime 1x ./archive/

import (
	"archive/zip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/assetscan/assetscan/archive"
)

// benchBytes is the package size: ASSETSCAN_BENCH_BYTES, default 64 MiB.
func benchBytes(b *testing.B) int64 {
	if s := os.Getenv("ASSETSCAN_BENCH_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1<<20 {
			b.Fatalf("ASSETSCAN_BENCH_BYTES=%q: want a number of bytes >= 1 MiB", s)
		}
		return n
	}
	return 64 << 20
}

// benchPackage writes (once; it is kept in ASSETSCAN_BENCH_DIR or the
// system temp dir, by size) a zip of about size bytes: half in large
// stored random files (32 MiB at most), half in 4 KiB deflated text files;
// with jars, every tenth member is instead a stored .jar of 100 such files.
func benchPackage(b *testing.B, size int64, jars bool) string {
	dir := os.Getenv("ASSETSCAN_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "assetscan-bench-extract")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("pkg-%d-jars-%t.zip", size, jars))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	f, err := os.Create(p + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(uint64(size), 9))
	zw := zip.NewWriter(f)
	words := []string{"config", "value", "import", "return", "func", "class", "public", "static", "string", "int", "\n", "{", "}", "=", ";"}
	small := func(i int) []byte {
		var buf []byte
		for len(buf) < 4096 {
			buf = append(buf, words[rng.IntN(len(words))]...)
			buf = append(buf, ' ')
			if rng.IntN(8) == 0 {
				buf = strconv.AppendUint(buf, rng.Uint64(), 36)
			}
		}
		return buf[:4096]
	}
	var written int64
	large := min(32<<20, max(size/16, 1<<20))
	for i := 0; written < size/2; i++ {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("data/large-%03d.bin", i), Method: zip.Store})
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for n := int64(0); n < large; n += int64(len(buf)) {
			for j := 0; j < len(buf); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		written += large
	}
	for i := 0; ; i++ {
		if err := zw.Flush(); err != nil {
			b.Fatal(err)
		}
		if fi, _ := f.Stat(); fi.Size() >= size {
			break
		}
		if jars && i%10 == 9 {
			// A jar of 100 small files.
			w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("lib/m%06d.jar", i), Method: zip.Store})
			if err != nil {
				b.Fatal(err)
			}
			jw := zip.NewWriter(w)
			for j := range 100 {
				jf, _ := jw.Create(fmt.Sprintf("com/x/C%03d.class", j))
				jf.Write(small(j))
			}
			if err := jw.Close(); err != nil {
				b.Fatal(err)
			}
			continue
		}
		w, err := zw.Create(fmt.Sprintf("src/%03d/f%06d.txt", i%1000, i))
		if err != nil {
			b.Fatal(err)
		}
		w.Write(small(i))
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkExtract extracts the generated package; MB/s is package bytes
// per second. "plain" has no jars: every version writes the same files,
// so it measures the cost of the work itself; "jars" has jars, which newer
// versions also unpack (more files written, more content examined).
func BenchmarkExtract(b *testing.B) {
	for _, jars := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "jars"}[jars]
		b.Run(name, func(b *testing.B) { benchExtract(b, benchPackage(b, benchBytes(b), jars)) })
	}
}

func benchExtract(b *testing.B, src string) {
	fi, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		b.StopTimer()
		dest := filepath.Join(b.TempDir(), "x")
		if err := os.Mkdir(dest, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := archive.Extract(context.Background(), src, archive.FormatZip, dest, archive.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(res.Findings) != 0 {
			b.Fatalf("findings: %v", res.Findings)
		}
		b.ReportMetric(float64(len(res.Files)), "files")
		b.ReportMetric(float64(res.ExpandedBytes)/1e6, "MBexpanded")
		if err := os.RemoveAll(dest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
