package archivetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
)

// WriteZip64 writes to path a ZIP64 zip holding files (stored, not
// compressed), without needing 4 GiB of data: every local and central
// header carries a ZIP64 extended information extra field with its sizes
// and offset (the 32-bit fields are 0xFFFFFFFF), and the archive ends with a
// ZIP64 end of central directory record and locator, the classic end record
// pointing at them with 0xFFFF/0xFFFFFFFF. `zipinfo -v` reports such a file
// as ZIP64, and archive/zip reads it through its ZIP64 code paths.
func WriteZip64(path string, files map[string][]byte) error {
	b, err := Zip64Bytes(Files(files))
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Zip64Bytes returns a ZIP64 zip holding the regular-file entries (see
// WriteZip64). Only Name and Body are used.
func Zip64Bytes(entries []Entry) ([]byte, error) {
	const (
		version   = 45 // 4.5: ZIP64
		madeBy    = 3<<8 | version
		max16     = 0xffff
		max32     = 0xffffffff
		utf8Flag  = 0x800
		dosTime   = 0x1883 // 03:04:06
		dosDate   = 0x5822 // 2024-01-02
		unixFile  = 0o100644 << 16
		zip64Type = 0x0001
	)
	var buf bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&buf, le, v) }
	type rec struct {
		name   string
		crc    uint32
		size   uint64
		offset uint64
	}
	recs := make([]rec, 0, len(entries))
	for _, e := range entries {
		if len(e.Name) > max16 {
			return nil, fmt.Errorf("archivetest: zip64: name too long: %q", e.Name[:64])
		}
		r := rec{name: e.Name, crc: crc32.ChecksumIEEE(e.Body), size: uint64(len(e.Body)), offset: uint64(buf.Len())}
		recs = append(recs, r)
		// Local file header.
		w(uint32(0x04034b50))
		w(uint16(version))
		w(uint16(utf8Flag))
		w(uint16(0)) // stored
		w(uint16(dosTime))
		w(uint16(dosDate))
		w(r.crc)
		w(uint32(max32)) // compressed size: see ZIP64 extra
		w(uint32(max32)) // uncompressed size: see ZIP64 extra
		w(uint16(len(r.name)))
		w(uint16(4 + 16))
		buf.WriteString(r.name)
		w(uint16(zip64Type))
		w(uint16(16))
		w(r.size) // uncompressed
		w(r.size) // compressed
		buf.Write(e.Body)
	}
	dirOff := uint64(buf.Len())
	for _, r := range recs {
		// Central directory header.
		w(uint32(0x02014b50))
		w(uint16(madeBy))
		w(uint16(version))
		w(uint16(utf8Flag))
		w(uint16(0)) // stored
		w(uint16(dosTime))
		w(uint16(dosDate))
		w(r.crc)
		w(uint32(max32))
		w(uint32(max32))
		w(uint16(len(r.name)))
		w(uint16(4 + 24))
		w(uint16(0))        // comment length
		w(uint16(0))        // disk number start
		w(uint16(0))        // internal attributes
		w(uint32(unixFile)) // external attributes
		w(uint32(max32))    // local header offset: see ZIP64 extra
		buf.WriteString(r.name)
		w(uint16(zip64Type))
		w(uint16(24))
		w(r.size)   // uncompressed
		w(r.size)   // compressed
		w(r.offset) // local header offset
	}
	dirSize := uint64(buf.Len()) - dirOff
	end64 := uint64(buf.Len())
	// ZIP64 end of central directory record.
	w(uint32(0x06064b50))
	w(uint64(44)) // size of the rest of this record
	w(uint16(madeBy))
	w(uint16(version))
	w(uint32(0)) // this disk
	w(uint32(0)) // disk with the central directory
	w(uint64(len(recs)))
	w(uint64(len(recs)))
	w(dirSize)
	w(dirOff)
	// ZIP64 end of central directory locator.
	w(uint32(0x07064b50))
	w(uint32(0)) // disk with the ZIP64 end record
	w(end64)
	w(uint32(1)) // total disks
	// End of central directory record, deferring to the ZIP64 record.
	w(uint32(0x06054b50))
	w(uint16(0))
	w(uint16(0))
	w(uint16(max16))
	w(uint16(max16))
	w(uint32(max32))
	w(uint32(max32))
	w(uint16(0)) // comment length
	return buf.Bytes(), nil
}
