package diskimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"unicode/utf16"
)

// partition is one entry of a partition table (or the whole disk for a
// bare file system).
type partition struct {
	name  string // "p1", "p5" (MBR logical), or "disk"
	label string // GPT partition name
	// typ describes the partition type for messages: "MBR type 0x83",
	// "GPT type 0FC63DAF-...".
	typ      string
	mbrType  byte
	gptType  string // upper-case GUID
	off, len int64
}

func (p partition) describe() string {
	s := p.name
	if p.label != "" {
		s += " (" + printable(p.label, 36) + ")"
	}
	return s
}

// Partition types we recognise.
const (
	gptLVM      = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	gptRAID     = "A19D880F-05FC-4D3B-A006-743F0F84911E"
	gptSwap     = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
	gptESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	gptBIOSBoot = "21686148-6449-6E6F-744E-656564454649"
	gptMSR      = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
	gptLUKS     = "CA7D7CCB-63ED-4C53-861C-1742536059CC"

	mbrLVM      = 0x8e
	mbrRAID     = 0xfd
	mbrSwap     = 0x82
	mbrESP      = 0xef
	mbrGPT      = 0xee
	mbrExtended = 0x05
	mbrExtLBA   = 0x0f
	mbrExtLinux = 0x85
)

const (
	maxGPTEntries   = 1024
	maxLogical      = 128
	mbrPartitionOff = 446
)

// readPartitions reads the partition table of a raw disk: GPT (primary,
// else backup; 512- or 4096-byte sectors) or MBR with extended/logical
// partitions. ok is false when there is no partition table. Problems go to
// fl.
func readPartitions(r io.ReaderAt, size int64, fl *findingList) (parts []partition, ok bool, err error) {
	var mbr [512]byte
	if _, err := r.ReadAt(mbr[:], 0); err != nil && err != io.EOF {
		return nil, false, err
	}
	mbrValid := mbr[510] == 0x55 && mbr[511] == 0xaa
	protective := false
	if mbrValid {
		for i := range 4 {
			if mbr[mbrPartitionOff+16*i+4] == mbrGPT {
				protective = true
			}
		}
	}
	for _, ss := range []int64{512, 4096} {
		hdr := make([]byte, ss)
		if _, err := r.ReadAt(hdr, ss); err != nil && err != io.EOF {
			return nil, false, err
		}
		if !bytes.HasPrefix(hdr, []byte("EFI PART")) {
			continue
		}
		if mbrValid && !protective && mbrHasPartitions(mbr[:]) {
			break // a real MBR with a stale GPT signature: the kernel reads the MBR too
		}
		parts, err := readGPT(r, size, ss, hdr, fl)
		return parts, true, err
	}
	if protective {
		fl.add(finding(RuleUnreadable, "", "protective MBR but no readable GPT: the partition table is corrupt"))
		return nil, true, nil
	}
	if !mbrValid || !mbrHasPartitions(mbr[:]) {
		return nil, false, nil
	}
	parts, err = readMBR(r, size, mbr[:], fl)
	return parts, true, err
}

func mbrHasPartitions(mbr []byte) bool {
	for i := range 4 {
		e := mbr[mbrPartitionOff+16*i:]
		if e[0] != 0 && e[0] != 0x80 {
			return false // not a partition table (a boot sector of some file system)
		}
	}
	for i := range 4 {
		if mbr[mbrPartitionOff+16*i+4] != 0 {
			return true
		}
	}
	return false
}

func readMBR(r io.ReaderAt, size int64, mbr []byte, fl *findingList) ([]partition, error) {
	le := binary.LittleEndian
	var parts []partition
	add := func(name string, typ byte, start, count int64) {
		p := partition{name: name, mbrType: typ, typ: fmt.Sprintf("MBR type 0x%02x", typ), off: start * 512, len: count * 512}
		if count == 0 {
			return
		}
		if p.off+p.len > size {
			fl.add(finding(RuleUnreadable, name, fmt.Sprintf("partition %s extends beyond the end of the disk: its content was not inspected", name)))
			return
		}
		parts = append(parts, p)
	}
	for i := range 4 {
		e := mbr[mbrPartitionOff+16*i:]
		typ := e[4]
		start, count := int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		name := "p" + strconv.Itoa(i+1)
		switch typ {
		case 0:
			continue
		case mbrExtended, mbrExtLBA, mbrExtLinux:
			logical, err := readEBRs(r, size, partition{name: name, off: start * 512, len: count * 512}, fl)
			if err != nil {
				return nil, err
			}
			parts = append(parts, logical...)
		default:
			add(name, typ, start, count)
		}
	}
	return parts, nil
}

// readEBRs follows the chain of extended boot records of the extended
// partition ext (its start and length in 512-byte sectors); logical
// partitions are named p5, p6, ... as Linux does. Every EBR must lie inside
// the extended partition and the disk, and each is visited once: a chain
// that loops, is longer than maxLogical, points outside the extended
// partition or past the end of the disk, or holds an invalid EBR ends the
// walk with a finding whose Path is the extended partition ("p2") and which
// names the problem; the logical partitions found before it are kept.
func readEBRs(r io.ReaderAt, size int64, ext partition, fl *findingList) ([]partition, error) {
	le := binary.LittleEndian
	extStart, extCount := ext.off/512, ext.len/512
	var parts []partition
	seen := map[int64]bool{}
	ebr := extStart
	stop := func(n int, why string) ([]partition, error) {
		after := "no logical partition was inspected"
		if n > 0 {
			after = "logical partitions after p" + strconv.Itoa(4+n) + " were not inspected"
		}
		fl.add(finding(RuleUnreadable, ext.name, "extended partition "+ext.name+": "+why+": the partition table is corrupt, "+after))
		return parts, nil
	}
	for n := 0; ; n++ {
		switch {
		case seen[ebr]:
			return stop(n, fmt.Sprintf("the chain of extended boot records loops back to sector %d", ebr))
		case n >= maxLogical:
			return stop(n, fmt.Sprintf("more than %d logical partitions", maxLogical))
		case ebr*512+512 > size:
			return stop(n, fmt.Sprintf("an extended boot record (sector %d) lies beyond the end of the disk (%d sectors)", ebr, size/512))
		case ebr < extStart || ebr >= extStart+extCount:
			return stop(n, fmt.Sprintf("an extended boot record (sector %d) lies outside the extended partition (sectors %d-%d)", ebr, extStart, extStart+extCount-1))
		}
		seen[ebr] = true
		var b [512]byte
		if _, err := r.ReadAt(b[:], ebr*512); err != nil && err != io.EOF {
			return nil, err
		}
		if b[510] != 0x55 || b[511] != 0xaa {
			return stop(n, fmt.Sprintf("the extended boot record at sector %d has no boot signature", ebr))
		}
		e0, e1 := b[mbrPartitionOff:], b[mbrPartitionOff+16:]
		name := "p" + strconv.Itoa(5+n)
		if typ := e0[4]; typ != 0 {
			start, count := ebr+int64(le.Uint32(e0[8:])), int64(le.Uint32(e0[12:]))
			if count > 0 {
				p := partition{name: name, mbrType: typ, typ: fmt.Sprintf("MBR type 0x%02x", typ), off: start * 512, len: count * 512}
				if p.off+p.len > size {
					fl.add(finding(RuleUnreadable, name, "partition "+name+" extends beyond the end of the disk: its content was not inspected"))
				} else {
					parts = append(parts, p)
				}
			}
		}
		switch e1[4] {
		case mbrExtended, mbrExtLBA, mbrExtLinux:
			ebr = extStart + int64(le.Uint32(e1[8:]))
		default:
			return parts, nil
		}
	}
}

func readGPT(r io.ReaderAt, size, ss int64, hdr []byte, fl *findingList) ([]partition, error) {
	parts, err := parseGPT(r, size, ss, hdr)
	if err == nil {
		return parts, nil
	}
	// The primary table is damaged: try the backup in the last sector.
	backup := make([]byte, ss)
	if size >= 2*ss {
		if _, rerr := r.ReadAt(backup, (size/ss-1)*ss); rerr != nil && rerr != io.EOF {
			return nil, rerr
		}
		if bytes.HasPrefix(backup, []byte("EFI PART")) {
			if parts, berr := parseGPT(r, size, ss, backup); berr == nil {
				return parts, nil
			}
		}
	}
	var ie ioError
	if errors.As(err, &ie) {
		return nil, ie.error
	}
	fl.add(finding(RuleUnreadable, "", "the GPT partition table is corrupt ("+err.Error()+"): no partition was inspected"))
	return nil, nil
}

// ioError marks a read error of the disk file itself (not a content
// problem).
type ioError struct{ error }

func parseGPT(r io.ReaderAt, size, ss int64, hdr []byte) ([]partition, error) {
	le := binary.LittleEndian
	hsize := int64(le.Uint32(hdr[12:]))
	if hsize < 92 || hsize > ss {
		return nil, fmt.Errorf("bad header size %d", hsize)
	}
	h := append([]byte(nil), hdr[:hsize]...)
	want := le.Uint32(h[16:])
	h[16], h[17], h[18], h[19] = 0, 0, 0, 0
	if crc32.ChecksumIEEE(h) != want {
		return nil, fmt.Errorf("header checksum mismatch")
	}
	entryLBA := int64(le.Uint64(hdr[72:]))
	n := int64(le.Uint32(hdr[80:]))
	esize := int64(le.Uint32(hdr[84:]))
	if n > maxGPTEntries || esize < 128 || esize > 1024 || esize%8 != 0 {
		return nil, fmt.Errorf("unsupported entry array (%d entries of %d bytes)", n, esize)
	}
	if entryLBA < 1 || entryLBA > size/ss || entryLBA*ss+n*esize > size {
		return nil, fmt.Errorf("entry array beyond the end of the disk")
	}
	arr := make([]byte, n*esize)
	if _, err := r.ReadAt(arr, entryLBA*ss); err != nil && err != io.EOF {
		return nil, ioError{err}
	}
	if crc32.ChecksumIEEE(arr) != le.Uint32(hdr[88:]) {
		return nil, fmt.Errorf("entry array checksum mismatch")
	}
	var parts []partition
	var zero [16]byte
	for i := range n {
		e := arr[i*esize : (i+1)*esize]
		if bytes.Equal(e[:16], zero[:]) {
			continue
		}
		first, last := int64(le.Uint64(e[32:])), int64(le.Uint64(e[40:]))
		name := "p" + strconv.FormatInt(i+1, 10)
		p := partition{name: name, label: utf16Name(e[56:128]), gptType: guidString(e[:16])}
		p.typ = "GPT type " + p.gptType
		if first < 0 || last < first || last >= size/ss {
			return nil, fmt.Errorf("partition %s lies outside the disk", name)
		}
		p.off, p.len = first*ss, (last-first+1)*ss
		parts = append(parts, p)
	}
	return parts, nil
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
