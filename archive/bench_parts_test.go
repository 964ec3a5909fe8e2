package archive_test

import (
	"io"
	"os"
	"testing"

	"github.com/assetscan/assetscan/archive"
)

// BenchmarkExtractParts times the work issue 9 added to an extraction, on
// the package BenchmarkExtract uses, to give its share of the time:
// zip-index is the walk of the end record, central directory and every
// local header (once per zip level); sniff is the streaming sniffer over
// every byte written (head and tail capture, end-record search), in the
// 256 KiB chunks of the copy loop; read is reading the package once, for
// scale. MB/s is package bytes per second.
func BenchmarkExtractParts(b *testing.B) {
	src := benchPackage(b, benchBytes(b), true)
	fi, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("zip-index", func(b *testing.B) {
		b.SetBytes(fi.Size())
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		for b.Loop() {
			_, gaps, _, _, err := archive.ZipLayout(f, fi.Size(), archive.DefaultMaxEntries)
			if err != nil || len(gaps) != 0 {
				b.Fatalf("gaps %v, %v", gaps, err)
			}
		}
	})
	b.Run("sniff", func(b *testing.B) {
		b.SetBytes(fi.Size())
		buf := make([]byte, 256<<10)
		for b.Loop() {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			if k, err := archive.SniffStream(f, buf); err != nil || k != archive.KindZip {
				b.Fatalf("kind %s, %v", k, err)
			}
			f.Close()
		}
	})
	b.Run("read", func(b *testing.B) {
		b.SetBytes(fi.Size())
		buf := make([]byte, 256<<10)
		for b.Loop() {
			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
