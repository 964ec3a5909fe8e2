package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Kind is what a file is, decided from its content alone (never its name).
type Kind string

// Kinds Sniff recognises. KindPlain is anything else: text, documents
// (PDF, OLE Office files), executables (PE, ELF) without an appended zip.
// Office Open XML files, jars, wheels and the like are KindZip.
const (
	KindPlain Kind = "plain"
	// KindZip: a zip archive, any flavour (ZIP64 included), starting with a
	// local file header or an end record, or with a prefix (a
	// self-extracting stub, a launch script, a CRX header) found through
	// the end of central directory record at the end of the file.
	KindZip Kind = "zip"
	// KindTar: a tar header (ustar, GNU or v7) with a valid checksum, or
	// the two zero blocks of an empty tar.
	KindTar   Kind = "tar"
	KindGzip  Kind = "gzip"
	KindBzip2 Kind = "bzip2"
	KindXz    Kind = "xz"
	KindZstd  Kind = "zstd"
	// Kind7z is recognised but not unpacked (RuleUnsupported).
	Kind7z Kind = "7z"
)

// SniffLen is how many leading bytes SniffHead looks at (a tar header
// block and a bit).
const SniffLen = 1024

// zipTailLen is how many trailing bytes are searched for a zip end record:
// the record (22 bytes) and the longest comment (65535 bytes), as
// archive/zip does.
const zipTailLen = 65 * 1024

// Magic numbers.
var (
	magicZipLocal = []byte("PK\x03\x04")
	magicZipEnd   = []byte("PK\x05\x06")
	magicZipSpan  = []byte("PK\x07\x08PK\x03\x04") // split-archive marker, then a local header
	magicGzip     = []byte{0x1f, 0x8b, 8}
	magicXz       = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicZstd     = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magic7z       = []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}
)

// SniffHead decides from head, the first bytes of a file (SniffLen is
// enough; fewer when the file is shorter), what the file is. It never
// answers KindZip for a zip with a prefix: that needs the end of the file,
// see Sniff.
func SniffHead(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, magicZipLocal), bytes.HasPrefix(head, magicZipSpan):
		return KindZip
	case bytes.HasPrefix(head, magicZipEnd) && len(head) >= zipDirEndLen:
		return KindZip
	case bytes.HasPrefix(head, magicGzip):
		return KindGzip
	case isBzip2(head):
		return KindBzip2
	case bytes.HasPrefix(head, magicXz):
		return KindXz
	case bytes.HasPrefix(head, magicZstd):
		return KindZstd
	case bytes.HasPrefix(head, magic7z):
		return Kind7z
	case len(head) >= 512 && !allZero(head[:512]) && isTarHeader(head):
		// Zeros are not taken for an empty tar: nothing to unpack.
		return KindTar
	}
	return KindPlain
}

// isBzip2 checks the stream header "BZh1".."BZh9" followed by a block
// header (the digits of pi) or the end-of-stream marker (sqrt pi).
func isBzip2(b []byte) bool {
	if len(b) < 10 || b[0] != 'B' || b[1] != 'Z' || b[2] != 'h' || b[3] < '1' || b[3] > '9' {
		return false
	}
	return bytes.Equal(b[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) ||
		bytes.Equal(b[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})
}

// Sniff decides what the size bytes of r are: SniffHead on the first
// SniffLen bytes, then, for what is still KindPlain, a search of the last
// 65 KiB for a zip end record that ends the file and points at a central
// directory (a zip with a prefix). An error is an I/O error.
func Sniff(r io.ReaderAt, size int64) (Kind, error) {
	head := make([]byte, min(size, SniffLen))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return KindPlain, fmt.Errorf("sniff: %w", err)
	}
	if k := SniffHead(head); k != KindPlain {
		return k, nil
	}
	n := min(size, zipTailLen)
	tail := make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return KindPlain, fmt.Errorf("sniff: %w", err)
	}
	if zipEndInTail(tail, size, r) {
		return KindZip, nil
	}
	return KindPlain, nil
}

// zipEndInTail reports whether tail, the last bytes of a file of the given
// size, holds a zip end record that points at a central directory. A
// record that ends the file (with its comment, exactly) has the
// directory's signature checked in tail when it lies there, else through r
// (when r is nil, the record alone decides). A record followed by other
// bytes counts only when its directory lies in tail.
func zipEndInTail(tail []byte, size int64, r io.ReaderAt) bool {
	le := binary.LittleEndian
	tailOff := size - int64(len(tail))
	// Candidates, found forwards (bytes.Index is vectorised, LastIndex is
	// not), tried from the last.
	var cands []int
	for i := 0; ; {
		j := bytes.Index(tail[i:], magicZipEnd)
		if j < 0 {
			break
		}
		cands = append(cands, i+j)
		i += j + 4
	}
	for c := len(cands) - 1; ; c-- {
		if c < 0 {
			return false
		}
		i := cands[c]
		if i+zipDirEndLen > len(tail) {
			continue
		}
		recEnd := i + zipDirEndLen + int(le.Uint16(tail[i+20:]))
		if recEnd > len(tail) {
			continue
		}
		exact := recEnd == len(tail)
		endOff := tailOff + int64(i)
		records := le.Uint16(tail[i+10:])
		dirSize := int64(le.Uint32(tail[i+12:]))
		if records == 0 {
			continue
		}
		if records == 0xffff || dirSize == 0xffffffff || le.Uint32(tail[i+16:]) == 0xffffffff {
			// ZIP64: a locator must precede the record.
			if i >= zipDir64LocLen && le.Uint32(tail[i-zipDir64LocLen:]) == zipDir64LocSig {
				return true
			}
			continue
		}
		dirStart := endOff - dirSize
		if dirStart < 0 {
			continue
		}
		var sig [4]byte
		switch {
		case dirStart >= tailOff:
			copy(sig[:], tail[dirStart-tailOff:])
		case !exact:
			continue
		case r == nil:
			return true
		default:
			if _, err := r.ReadAt(sig[:], dirStart); err != nil {
				continue
			}
		}
		if le.Uint32(sig[:]) == zipDirHeaderSig {
			return true
		}
	}
}

// sniffer captures the first SniffLen and the last zipTailLen bytes of a
// stream being copied, so that a file is recognised from the bytes already
// being written, without reading it again.
type sniffer struct {
	head []byte
	tail []byte // up to 2*zipTailLen; the last zipTailLen bytes count
	n    int64
}

// reset empties s, keeping its buffers.
func (s *sniffer) reset() {
	s.head, s.tail, s.n = s.head[:0], s.tail[:0], 0
}

func (s *sniffer) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if len(s.head) < SniffLen {
		k := min(SniffLen-len(s.head), len(p))
		s.head = append(s.head, p[:k]...)
	}
	if len(p) >= zipTailLen {
		s.tail = append(s.tail[:0], p[len(p)-zipTailLen:]...)
		return len(p), nil
	}
	if len(s.tail)+len(p) > 2*zipTailLen {
		keep := zipTailLen - len(p)
		s.tail = append(s.tail[:0], s.tail[len(s.tail)-keep:]...)
	}
	s.tail = append(s.tail, p...)
	return len(p), nil
}

// kind returns what the bytes written were. r, when not nil, reads them
// again to check a zip directory that lies before the captured tail.
func (s *sniffer) kind(r io.ReaderAt) Kind {
	if k := SniffHead(s.head); k != KindPlain {
		return k
	}
	tail := s.tail
	if len(tail) > zipTailLen {
		tail = tail[len(tail)-zipTailLen:]
	}
	if zipEndInTail(tail, s.n, r) {
		return KindZip
	}
	return KindPlain
}
