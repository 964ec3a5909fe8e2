package archive_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
)

// zipSeeds are the shapes of issue 9: concatenated zips, a prefix, a gap,
// a dropped directory record, a comment, ZIP64.
func zipSeeds(t testing.TB) [][]byte {
	a := zipOf(t, map[string][]byte{"a.txt": []byte("a")})
	b := zipOf(t, map[string][]byte{"b.txt": []byte("b"), "c/d.txt": []byte("d")})
	z64, err := archivetest.Zip64Bytes(archivetest.Files(map[string][]byte{"e": []byte("e")}))
	if err != nil {
		t.Fatal(err)
	}
	second := int(le32(b[cdOffsets(b)[1]+42:]))
	return [][]byte{
		a, slices.Concat(a, b), slices.Concat(a, b, a),
		append([]byte(springBootScript), a...),
		append([]byte("MZ\x90"), zipShift(a, 3)...),
		zipInsert(b, second, a), zipDropRecord(b, 0), z64, crx3(a),
		append(a, "trailing"...),
	}
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// FuzzZipIndex checks the zip index walker: spans and gaps stay inside the
// file, gaps are sorted and disjoint, spans and gaps account for every
// byte; then extraction (regions included) stays inside its sandbox.
func FuzzZipIndex(f *testing.F) {
	for _, s := range zipSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		size := int64(len(data))
		spans, gaps, _, accounted, err := archive.ZipLayout(bytes.NewReader(data), size, 1000)
		if err != nil {
			return
		}
		for _, s := range spans {
			if s[0] < 0 || s[1] > size || s[0] >= s[1] {
				t.Fatalf("span %v outside [0,%d)", s, size)
			}
		}
		var end, gapBytes int64
		for _, g := range gaps {
			if g[0] < end || g[1] > size || g[0] >= g[1] {
				t.Fatalf("gaps %v not sorted, disjoint and inside [0,%d)", gaps, size)
			}
			end = g[1]
			gapBytes += g[1] - g[0]
		}
		if accounted != size-gapBytes || accounted < 0 {
			t.Fatalf("accounted %d, gaps %d, size %d", accounted, gapBytes, size)
		}
		fuzzOne(t, data, archive.FormatZip)
	})
}

// FuzzTarIndex extracts data as a tar and, gzipped, as a tar.gz: the tar
// walk, the trailer and the gzip member walk write regions inside the
// sandbox only.
func FuzzTarIndex(f *testing.F) {
	t1 := tarOf(f, map[string][]byte{"a.txt": []byte("a")})
	z := zipOf(f, map[string][]byte{"z.txt": []byte("z")})
	for _, s := range [][]byte{t1, append(t1, z...), append(t1, "junk"...), slices.Concat(t1, t1), append(t1, make([]byte, 10240)...)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data, archive.FormatTar)
		g, err := archivetest.Gzip(data)
		if err != nil {
			t.Fatal(err)
		}
		fuzzOne(t, append(g, data...), archive.FormatTarGz)
	})
}

// FuzzSniff checks that the streaming sniffer, fed in any chunking,
// agrees with Sniff on the whole file, and that neither panics.
func FuzzSniff(f *testing.F) {
	for _, s := range zipSeeds(f) {
		f.Add(s, uint16(7), uint16(4096))
	}
	f.Add(tarOf(f, map[string][]byte{"a": nil}), uint16(1), uint16(512))
	f.Add([]byte{0x1f, 0x8b, 8, 0}, uint16(1), uint16(1))
	f.Add([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, uint16(1), uint16(1))
	f.Add([]byte("BZh91AY&SY"), uint16(1), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, c1, c2 uint16) {
		r := bytes.NewReader(data)
		want, err := archive.Sniff(r, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if got := archive.SnifferKind(data, []int{int(c1), int(c2)}, r); got != want {
			t.Fatalf("streaming sniffer says %s, Sniff says %s", got, want)
		}
		if h := archive.SniffHead(data[:min(len(data), archive.SniffLen)]); h != archive.KindPlain && h != want {
			t.Fatalf("SniffHead says %s, Sniff says %s", h, want)
		}
	})
}
