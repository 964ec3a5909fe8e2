package textenc

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// BenchmarkDetect: the cost per file of the sniff (one 4 KiB head), for a
// UTF-8 text (rejected at the first check: no NUL byte), a binary with
// NULs (scored, rejected) and a UTF-16 text without BOM (scored, accepted).
func BenchmarkDetect(b *testing.B) {
	bins := binaries(b)
	cases := map[string][]byte{
		"utf-8":          []byte(strings.Repeat(credentials, 40))[:SniffSize],
		"binary":         bins["int32 table"][:SniffSize],
		"utf-16le-nobom": encode(strings.Repeat(credentials, 40), UTF16LE, false)[:SniffSize],
	}
	for name, head := range cases {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(head)))
			for b.Loop() {
				_ = Detect(head)
			}
		})
	}
}

// BenchmarkUTF8View: transcoding throughput (input bytes) against a plain
// copy of the same bytes.
func BenchmarkUTF8View(b *testing.B) {
	src := encode(strings.Repeat(credentials, 10000), UTF16LE, true)
	b.Run("utf-16le view", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			v, _ := NewUTF8Reader(bytes.NewReader(src), Detection{Encoding: UTF16LE, BOM: true})
			_, _ = io.Copy(io.Discard, v)
		}
	})
	b.Run("plain copy", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			_, _ = io.Copy(io.Discard, struct{ io.Reader }{bytes.NewReader(src)}) // 32 KiB buffer, as a file read
		}
	})
}
