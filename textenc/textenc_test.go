package textenc

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"go/build"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// encode writes s in the given encoding, with a BOM if bom.
func encode(s string, e Encoding, bom bool) []byte {
	var b []byte
	put := func(r rune) {
		switch e {
		case UTF16LE:
			for _, u := range utf16.Encode([]rune{r}) {
				b = binary.LittleEndian.AppendUint16(b, u)
			}
		case UTF16BE:
			for _, u := range utf16.Encode([]rune{r}) {
				b = binary.BigEndian.AppendUint16(b, u)
			}
		case UTF32LE:
			b = binary.LittleEndian.AppendUint32(b, uint32(r))
		case UTF32BE:
			b = binary.BigEndian.AppendUint32(b, uint32(r))
		}
	}
	if bom {
		put(0xFEFF)
	}
	for _, r := range s {
		put(r)
	}
	return b
}

const credentials = "[default]\r\naws_access_key_id = AKIAZXCVBNMASDFGHJKL\r\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\r\n"

func TestDetectText(t *testing.T) {
	t.Parallel()
	cjk := "配置文件：部署密钥。" + strings.Repeat("数据库连接字符串，服务器。", 3) + "\n"
	cjkASCII := "# 配置文件：部署密钥\n" + strings.Repeat("数据库连接字符串 = 服务器\n", 3) + "key = value\n"
	for _, e := range []Encoding{UTF16LE, UTF16BE, UTF32LE, UTF32BE} {
		for _, bom := range []bool{true, false} {
			want := Detection{Encoding: e, BOM: bom}
			tests := []struct {
				name string
				text string
				want Detection
			}{
				{"credentials", credentials, want},
				{"short", "a=b\nc=d\n", want},
				// Mostly Chinese: without a BOM, too few ASCII units to be
				// sure; with one, the BOM decides.
				{"cjk", cjk, map[bool]Detection{true: want, false: {}}[bom]},
				{"cjk with some ascii", cjkASCII, want},
				{"latin-1 and emoji", "café = ☕ 🍰\nnaïve=1\n", want},
				// A long 4 KB run of text cut mid surrogate pair.
				{"long", strings.Repeat("🔑 key=value\n", 400), want},
			}
			for _, tt := range tests {
				t.Run(want.String()+"/"+tt.name, func(t *testing.T) {
					t.Parallel()
					if got := Detect(encode(tt.text, e, bom)); got != tt.want {
						t.Errorf("Detect = %v, want %v", got, tt.want)
					}
				})
			}
		}
	}
}

// TestDetectTolerant: a few NULs or control characters sprinkled into a
// UTF-16 text (to make it look binary) do not hide it.
func TestDetectTolerant(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("x", 20) + "\x00\x01\x02" + credentials + "\x00\x00\x00\x00\x00\x00\x00\x00"
	if got := Detect(encode(text, UTF16LE, false)); got.Encoding != UTF16LE {
		t.Errorf("Detect = %v, want UTF-16LE", got)
	}
	if got := Detect(encode(text, UTF32BE, false)); got.Encoding != UTF32BE {
		t.Errorf("Detect = %v, want UTF-32BE", got)
	}
}

// binaries are real shapes that must not be taken for UTF-16/32 text.
func binaries(t testing.TB) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 0, 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	m["png"] = bytes.Clone(b.Bytes())
	b.Reset()
	_ = jpeg.Encode(&b, img, nil)
	m["jpeg"] = bytes.Clone(b.Bytes())
	b.Reset()
	_ = gif.Encode(&b, img, nil)
	m["gif"] = bytes.Clone(b.Bytes())
	b.Reset()
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("a/b.txt")
	_, _ = w.Write([]byte(credentials))
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "stored.txt", Method: zip.Store})
	_, _ = w.Write([]byte("stored text\n"))
	_ = zw.Close()
	m["zip"] = bytes.Clone(b.Bytes())
	b.Reset()
	gw := gzip.NewWriter(&b)
	_, _ = gw.Write(bytes.Repeat([]byte(credentials), 50))
	_ = gw.Close()
	m["gzip"] = bytes.Clone(b.Bytes())

	// A minimal PE: DOS header and stub, PE signature, COFF and optional
	// headers, one section header, zero padding.
	pe := make([]byte, 1024)
	copy(pe, "MZ")
	pe[2], pe[4], pe[8] = 0x90, 3, 4
	binary.LittleEndian.PutUint32(pe[0x3c:], 0x80)
	copy(pe[0x40:], "\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21This program cannot be run in DOS mode.\r\r\n$")
	copy(pe[0x80:], "PE\x00\x00\x64\x86\x01\x00")
	binary.LittleEndian.PutUint16(pe[0x94:], 0xf0)
	binary.LittleEndian.PutUint16(pe[0x96:], 0x22)
	binary.LittleEndian.PutUint16(pe[0x98:], 0x20b)
	copy(pe[0x188:], ".text\x00\x00\x00")
	m["pe"] = pe

	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, SniffSize)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	m["random"] = random
	m["zeros"] = make([]byte, SniffSize)

	// Many NULs: a table of little-endian 32-bit integers and offsets, as
	// in object files and databases.
	var tbl []byte
	for i := range 1024 {
		tbl = binary.LittleEndian.AppendUint32(tbl, uint32(i*i*37+i))
	}
	m["int32 table"] = tbl
	// A gettext .mo file: magic, then (length, offset) pairs of 32-bit
	// integers, many of them in the ASCII range.
	mo := binary.LittleEndian.AppendUint32(nil, 0x950412de)
	for i := range 1000 {
		mo = binary.LittleEndian.AppendUint32(mo, uint32(20+i%90))
		mo = binary.LittleEndian.AppendUint32(mo, uint32(0x1c+i*60))
	}
	m["gettext mo"] = mo
	// UTF-16 "words" of small integers with zero high bytes, as int16
	// tables: short runs.
	var i16 []byte
	for i := range 2048 {
		i16 = binary.LittleEndian.AppendUint16(i16, uint16(i%7*100+i%3))
	}
	m["int16 table"] = i16
	// Sparse data: mostly zeros with a few bytes set.
	sparse := make([]byte, SniffSize)
	for i := 0; i < len(sparse); i += 97 {
		sparse[i] = byte(i)
	}
	m["sparse"] = sparse

	// The test binary itself (ELF on Linux, Mach-O, PE).
	if exe, err := os.Executable(); err == nil {
		if f, err := os.Open(exe); err == nil {
			head := make([]byte, 64<<10)
			n, _ := io.ReadFull(f, head)
			f.Close()
			m["test executable"] = head[:n]
			for off := SniffSize; off+SniffSize <= n; off += 3 * SniffSize {
				m["test executable @"+strings.Repeat("+", off/SniffSize)] = head[off:]
			}
		}
	}
	// UTF-8 text of every kind.
	m["utf-8 ascii"] = []byte(credentials)
	m["utf-8 cjk"] = []byte("数据库连接字符串 = 服务器\n配置文件\n")
	m["utf-8 odd length"] = []byte("abc")
	return m
}

func TestDetectBinaries(t *testing.T) {
	t.Parallel()
	for name, b := range binaries(t) {
		if got := Detect(b); got.Wide() {
			t.Errorf("%s: Detect = %v, want other", name, got)
		}
	}
}

// TestDetectGoRootTestdata runs Detect over the binary test files the Go
// distribution ships (ELF, PE, Mach-O, archives, images), when present.
func TestDetectGoRootTestdata(t *testing.T) {
	t.Parallel()
	dirs := []string{"debug/elf/testdata", "debug/pe/testdata", "debug/macho/testdata", "archive/zip/testdata",
		"archive/tar/testdata", "image/testdata", "compress/testdata", "image/png/testdata/pngsuite"}
	n := 0
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(build.Default.GOROOT, "src", d, "*"))
		for _, p := range files {
			b, err := readHead(p)
			if err != nil || len(b) == 0 {
				continue
			}
			n++
			if got := Detect(b); got.Wide() && !strings.Contains(p, "utf16") {
				t.Errorf("%s: Detect = %v", p, got)
			}
		}
	}
	if n == 0 {
		t.Skip("no Go source tree found")
	}
	t.Logf("%d files checked", n)
}

func readHead(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, err
	}
	b := make([]byte, SniffSize)
	n, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:n], err
}

func TestUTF8View(t *testing.T) {
	t.Parallel()
	text := "line1\r\nline2 café\r\n\r\n🔑 key\nlast"
	for _, e := range []Encoding{UTF16LE, UTF16BE, UTF32LE, UTF32BE} {
		for _, bom := range []bool{true, false} {
			d := Detection{Encoding: e, BOM: bom}
			t.Run(d.String(), func(t *testing.T) {
				t.Parallel()
				src := encode(text, e, bom)
				got, r, err := Sniff(bytes.NewReader(src))
				if err != nil || got != d {
					t.Fatalf("Sniff = %v, %v; want %v", got, err, d)
				}
				v, err := NewUTF8Reader(r, got)
				if err != nil {
					t.Fatal(err)
				}
				out, err := io.ReadAll(v)
				if err != nil {
					t.Fatal(err)
				}
				if string(out) != text {
					t.Errorf("view = %q, want %q", out, text)
				}
			})
		}
	}
}

// TestLinesPreserved: the view has a '\n' exactly where the original has
// U+000A, also around invalid code units, so line numbers carry over.
func TestLinesPreserved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    Detection
		src  []byte
	}{
		{"lone high surrogate before LF", Detection{Encoding: UTF16LE}, []byte{'a', 0, 0x00, 0xD8, '\n', 0, 'b', 0, '\n', 0}},
		{"lone low surrogate pair", Detection{Encoding: UTF16BE}, []byte{0xDC, 0, 0xDC, 0, 0, '\n', 0, 'x', 0, '\n'}},
		{"odd trailing byte", Detection{Encoding: UTF16LE}, []byte{'\n', 0, '\n', 0, 'x'}},
		{"out of range and surrogate", Detection{Encoding: UTF32LE}, []byte{0, 0, 0x11, 0, '\n', 0, 0, 0, 0, 0xD8, 0, 0, '\n', 0, 0, 0, 1, 2}},
		{"crlf", Detection{Encoding: UTF16LE, BOM: true}, encode("\r\n\r\n\r\nx\r\n", UTF16LE, true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewUTF8Reader(bytes.NewReader(tt.src), tt.d)
			if err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(v)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := bytes.Count(out, []byte{'\n'}), countLF(tt.src, tt.d); got != want {
				t.Errorf("view %q has %d LF, original %d", out, got, want)
			}
			if !utf8.Valid(out) {
				t.Errorf("view %q is not UTF-8", out)
			}
		})
	}
}

func TestNotWide(t *testing.T) {
	t.Parallel()
	if _, err := NewUTF8Reader(strings.NewReader("x"), Detection{}); err == nil {
		t.Fatal("no error for a non-wide detection")
	}
}

// countLF counts U+000A code units at aligned positions, independently of
// the decoder.
func countLF(b []byte, d Detection) int {
	size := 2
	if d.Encoding == UTF32LE || d.Encoding == UTF32BE {
		size = 4
	}
	start := 0
	if d.BOM {
		start = size
	}
	n := 0
	for i := start; i+size <= len(b); i += size {
		var u uint32
		switch d.Encoding {
		case UTF16LE:
			u = uint32(binary.LittleEndian.Uint16(b[i:]))
		case UTF16BE:
			u = uint32(binary.BigEndian.Uint16(b[i:]))
		case UTF32LE:
			u = binary.LittleEndian.Uint32(b[i:])
		case UTF32BE:
			u = binary.BigEndian.Uint32(b[i:])
		}
		if u == '\n' {
			n++
		}
	}
	return n
}

// FuzzTranscode: Detect never panics; every encoding's view of any bytes
// is valid UTF-8, bounded in size, and has as many lines as the original.
func FuzzTranscode(f *testing.F) {
	f.Add(encode(credentials, UTF16LE, true))
	f.Add(encode(credentials, UTF32BE, false))
	f.Add([]byte{0xFF, 0xFE, 0, 0, '\n'})
	f.Add([]byte{0, 0xD8, '\n', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Detect(b)
		_ = MostlyText(b)
		if d.BOM && !d.Wide() {
			t.Fatalf("BOM without an encoding: %v", d)
		}
		for _, e := range []Encoding{UTF16LE, UTF16BE, UTF32LE, UTF32BE} {
			for _, bom := range []bool{false, true} {
				dd := Detection{Encoding: e, BOM: bom}
				if bom && Detect(b) != dd {
					continue // ExpectBOM with no BOM in front may switch byte order
				}
				v, err := NewUTF8Reader(bytes.NewReader(b), dd)
				if err != nil {
					t.Fatal(err)
				}
				out, err := io.ReadAll(v)
				if err != nil {
					t.Fatalf("%v: %v", dd, err)
				}
				if !utf8.Valid(out) {
					t.Fatalf("%v: view not UTF-8", dd)
				}
				if len(out) > 2*len(b)+3 {
					t.Fatalf("%v: view of %d bytes has %d", dd, len(b), len(out))
				}
				if got, want := bytes.Count(out, []byte{'\n'}), countLF(b, dd); got != want {
					t.Fatalf("%v: view has %d LF, original %d", dd, got, want)
				}
			}
		}
	})
}

func TestMostlyText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"ascii", []byte(credentials), true},
		{"control byte first", []byte("\x01\x00" + credentials), true},
		{"utf-8 cjk", []byte("数据库连接字符串 = 服务器\nkey = value\n"), true},
		{"latin-1 accents", []byte("caf\xe9 = cr\xe8me br\xfbl\xe9e, a longer line of text\n"), true},
		{"cut rune at the end", append([]byte("text text text "), "数"[:2]...), true},
		{"utf-16le", encode(credentials, UTF16LE, true), false},
		{"too short", []byte("\x01ab"), false},
	}
	for name, b := range binaries(t) {
		if !strings.HasPrefix(name, "utf-8") {
			tests = append(tests, struct {
				name string
				b    []byte
				want bool
			}{name, b, false})
		}
	}
	for _, tt := range tests {
		if got := MostlyText(tt.b); got != tt.want {
			t.Errorf("%s: MostlyText = %v, want %v", tt.name, got, tt.want)
		}
	}
}
