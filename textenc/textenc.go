// Package textenc recognises text stored as UTF-16 or UTF-32 (either byte
// order, with or without a byte-order mark) from a file's first bytes, and
// transcodes it to UTF-8 as a stream, so that checks written for UTF-8
// (trivy's secret scanner) see what a Windows tool such as PowerShell's `>`
// wrote.
//
// Lines are preserved: the UTF-8 view holds exactly one '\n' for each
// U+000A code unit of the original and no other '\n' (invalid code units
// become U+FFFD, a BOM is dropped, CR stays CR), so line N of the view is
// line N of the original. A finding's line number needs no mapping.
//
// Detection without a BOM is a bounded heuristic over at most SniffSize
// bytes: it looks for the zero bytes that ASCII characters leave in one
// byte position of every 2- or 4-byte code unit, and requires the decoded
// head to read as text. UTF-8 text never holds a zero byte, so it is never
// taken for UTF-16/32; binaries (ELF, PE, zip, images, compressed data)
// fail the text test.
package textenc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
	"golang.org/x/text/transform"
)

// SniffSize is how many leading bytes Detect looks at (more are ignored).
const SniffSize = 4096

// ErrNotWide is returned by NewUTF8Reader for a Detection that is not
// UTF-16 or UTF-32 text.
var ErrNotWide = errors.New("not UTF-16 or UTF-32 text")

// Encoding is the encoding form Detect recognised.
type Encoding uint8

const (
	// Other is anything that is not UTF-16/32 text: UTF-8 or ASCII text,
	// another charset, binary data, or too little data to tell.
	Other Encoding = iota
	UTF16LE
	UTF16BE
	UTF32LE
	UTF32BE
)

func (e Encoding) String() string {
	switch e {
	case UTF16LE:
		return "UTF-16LE"
	case UTF16BE:
		return "UTF-16BE"
	case UTF32LE:
		return "UTF-32LE"
	case UTF32BE:
		return "UTF-32BE"
	default:
		return "other"
	}
}

// Detection is what Detect found.
type Detection struct {
	Encoding Encoding
	// BOM is true when the text starts with a byte-order mark (2 bytes for
	// UTF-16, 4 for UTF-32); the UTF-8 view drops it.
	BOM bool
}

// Wide reports whether the text is UTF-16 or UTF-32 (and so needs a UTF-8
// view).
func (d Detection) Wide() bool { return d.Encoding != Other }

func (d Detection) String() string {
	if d.BOM {
		return d.Encoding.String() + " with BOM"
	}
	return d.Encoding.String()
}

// Heuristic thresholds for text without a BOM, over the code units of the
// head.
const (
	// minASCII is the fewest ASCII code units (each with its zero
	// byte(s)) in runs of at least minRun the head must hold.
	minASCII = 4
	// asciiShare: at least 1/asciiShare of the code units are ASCII in
	// runs of at least minRun ("words"). Random and compressed bytes give
	// almost none, tables of small integers give short runs; text that is
	// mostly CJK without a BOM may fall below and is not recognised.
	asciiShare = 8
	// badShare: at most 1/badShare of the code units may be NUL, controls,
	// lone surrogates, non-characters or out of range. A few such units
	// sprinkled into a text do not hide it; the zero runs and small
	// integers of binary headers, tables and tar headers exceed it.
	badShare = 10
)

// Detect tells from the first bytes of a file (at most SniffSize are used;
// pass fewer for a short file) whether it is UTF-16 or UTF-32 text. A BOM
// decides on its own (UTF-32's is checked first: FF FE 00 00 is the UTF-32LE
// BOM). Without one, UTF-32 is tried before UTF-16 (UTF-32LE ASCII reads as
// UTF-16LE with NULs in between), and of the two UTF-16 byte orders the one
// with more ASCII code units wins.
func Detect(head []byte) Detection {
	if len(head) > SniffSize {
		head = head[:SniffSize]
	}
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE, 0, 0}):
		return Detection{Encoding: UTF32LE, BOM: true}
	case bytes.HasPrefix(head, []byte{0, 0, 0xFE, 0xFF}):
		return Detection{Encoding: UTF32BE, BOM: true}
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		return Detection{Encoding: UTF16LE, BOM: true}
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return Detection{Encoding: UTF16BE, BOM: true}
	}
	if !bytes.ContainsRune(head, 0) {
		// Every UTF-16/32 ASCII character holds a zero byte.
		return Detection{}
	}
	if looksText(score32(head, false)) {
		return Detection{Encoding: UTF32LE}
	}
	if looksText(score32(head, true)) {
		return Detection{Encoding: UTF32BE}
	}
	le, be := score16(head, false), score16(head, true)
	okLE, okBE := looksText(le), looksText(be)
	switch {
	case okLE && (!okBE || le.inRuns >= be.inRuns):
		return Detection{Encoding: UTF16LE}
	case okBE:
		return Detection{Encoding: UTF16BE}
	}
	return Detection{}
}

// score counts the code units of a head by class.
type score struct {
	units, nul, ascii, bad int
	// run is the length of the current run of ASCII units; inRuns counts
	// the ASCII units in runs of at least minRun (words, not the odd small
	// integer of a binary table).
	run, inRuns int
}

// minRun is the shortest run of consecutive ASCII code units that counts
// as a word.
const minRun = 4

func looksText(s score) bool {
	s.endRun()
	return s.inRuns >= minASCII && s.inRuns*asciiShare >= s.units && (s.bad+s.nul)*badShare <= s.units
}

func (s *score) endRun() {
	if s.run >= minRun {
		s.inRuns += s.run
	}
	s.run = 0
}

// classify adds one code point (or lone surrogate, or out-of-range value)
// to s.
func (s *score) classify(r uint32) {
	s.units++
	if r == '\t' || r == '\n' || r == '\r' || r == '\f' || (r >= 0x20 && r < 0x7F) {
		s.ascii++
		s.run++
		return
	}
	s.endRun()
	switch {
	case r == 0:
		s.nul++
	case r < 0x20 || (r >= 0x7F && r < 0xA0): // C0 and C1 controls, DEL
		s.bad++
	case r >= 0xD800 && r <= 0xDFFF: // lone surrogate
		s.bad++
	case r > 0x10FFFF || r&0xFFFE == 0xFFFE || (r >= 0xFDD0 && r <= 0xFDEF): // non-characters
		s.bad++
	}
}

func score16(b []byte, bigEndian bool) score {
	var s score
	n := len(b) / 2
	unit := func(i int) uint32 {
		if bigEndian {
			return uint32(b[2*i])<<8 | uint32(b[2*i+1])
		}
		return uint32(b[2*i+1])<<8 | uint32(b[2*i])
	}
	for i := 0; i < n; i++ {
		u := unit(i)
		if utf16.IsSurrogate(rune(u)) && u < 0xDC00 {
			if i+1 < n {
				if v := unit(i + 1); v >= 0xDC00 && v <= 0xDFFF {
					s.classify(uint32(utf16.DecodeRune(rune(u), rune(v))))
					i++
					continue
				}
			} else {
				break // a pair cut by the end of the head
			}
		}
		s.classify(u)
	}
	return s
}

func score32(b []byte, bigEndian bool) score {
	var s score
	for i := 0; i+4 <= len(b); i += 4 {
		var u uint32
		if bigEndian {
			u = uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		} else {
			u = uint32(b[i+3])<<24 | uint32(b[i+2])<<16 | uint32(b[i+1])<<8 | uint32(b[i])
		}
		s.classify(u)
	}
	return s
}

// Sniff reads up to SniffSize bytes from r and detects their encoding. The
// returned reader yields every byte of r from the start (the sniffed head,
// then the rest), so the caller reads the file once. An error is a read
// error other than a short file.
func Sniff(r io.Reader) (Detection, io.Reader, error) {
	head := make([]byte, SniffSize)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Detection{}, nil, fmt.Errorf("textenc: sniff: %w", err)
	}
	head = head[:n]
	return Detect(head), io.MultiReader(bytes.NewReader(head), r), nil
}

// NewUTF8Reader returns a reader of the UTF-8 view of r, which must start
// at the beginning of the text (BOM included if d.BOM). It transcodes as it
// reads, in constant memory; invalid code units become U+FFFD. It fails
// with ErrNotWide if d is not UTF-16/32.
func NewUTF8Reader(r io.Reader, d Detection) (io.Reader, error) {
	enc, err := d.encoding()
	if err != nil {
		return nil, err
	}
	return transform.NewReader(r, enc.NewDecoder()), nil
}

func (d Detection) encoding() (encoding.Encoding, error) {
	bom16, bom32 := unicode.IgnoreBOM, utf32.IgnoreBOM
	if d.BOM {
		bom16, bom32 = unicode.ExpectBOM, utf32.ExpectBOM
	}
	switch d.Encoding {
	case UTF16LE:
		return unicode.UTF16(unicode.LittleEndian, bom16), nil
	case UTF16BE:
		return unicode.UTF16(unicode.BigEndian, bom16), nil
	case UTF32LE:
		return utf32.UTF32(utf32.LittleEndian, bom32), nil
	case UTF32BE:
		return utf32.UTF32(utf32.BigEndian, bom32), nil
	}
	return nil, fmt.Errorf("textenc: %s: %w", d.Encoding, ErrNotWide)
}

// MostlyText reports whether head (a file's first bytes; at most SniffSize
// are used) is UTF-8 or ASCII text that may hold a few stray NUL or control
// bytes or invalid sequences: at most 1/10 of its bytes are such, and at
// least 4 are printable ASCII. Tools that take any control byte near the
// start for the mark of a binary (trivy's secret scanner skips such files
// whole) can be given such a file as text. A rune cut by the end of the
// head does not count against it. UTF-16/32 text is not MostlyText (its
// NUL bytes are half or more of it); use Detect first.
func MostlyText(head []byte) bool {
	if len(head) > SniffSize {
		head = head[:SniffSize]
	}
	bad, ascii := 0, 0
	for i := 0; i < len(head); {
		c := head[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\t' || c == '\n' || c == '\r' || c == '\f' || (c >= 0x20 && c < 0x7F):
				ascii++
			default:
				bad++
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n <= 1 {
			if !utf8.FullRune(head[i:]) {
				break // cut by the end of the head
			}
			bad++
			n = 1
		}
		i += n
	}
	return ascii >= minASCII && bad*badShare <= len(head)
}
