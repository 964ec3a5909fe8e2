package diskimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/assetscan/assetscan"
)

// header is what sniff learnt from an image's own headers.
type header struct {
	format string
	// subformat is the VMDK create type ("monolithicSparse",
	// "streamOptimized") or the VHD disk type ("fixed", "dynamic").
	subformat string
	// virtualSize from the header, 0 when unknown (VHDX whose metadata we
	// could not read: qemu-img info tells).
	virtualSize int64
	// findings from the header checks; any finding means "do not convert".
	findings []assetscan.Finding
}

func (h *header) refuse(rule, msg string) {
	h.findings = append(h.findings, finding(rule, "", msg))
}

// sniffSize is how much of the start of an image sniff reads: enough for
// every header it parses (the VHDX region table lives at 192 KiB).
const sniffSize = 256 << 10

// sniff detects the container format of an image from magic bytes and
// checks the header for references to other files, encryption and the
// virtual size. It reads at most a few hundred KiB. An error means the file
// could not be read.
func sniff(r io.ReaderAt, size int64) (header, error) {
	head := make([]byte, min(size, sniffSize))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return header{}, fmt.Errorf("read image header: %w", err)
	}
	var tail []byte
	if size >= 512 {
		tail = make([]byte, 512)
		if _, err := r.ReadAt(tail, size-512); err != nil && err != io.EOF {
			return header{}, fmt.Errorf("read image footer: %w", err)
		}
	}

	var h header
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		h.qcow(r, head, size)
	case bytes.HasPrefix(head, []byte("KDMV")):
		h.vmdkSparse(r, head, size)
	case bytes.HasPrefix(head, []byte("COWD")):
		h.format = FormatVMDK
		h.refuse(RuleUnreadable, "ESX sparse (COWD) VMDK extents are not supported")
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		h.vhdx(r, size)
	case len(head) >= 0x50 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f:
		h.vdi(head)
	case bytes.HasPrefix(head, []byte("conectix")):
		h.vhd(head[:min(len(head), 512)])
	case tail != nil && bytes.HasPrefix(tail, []byte("conectix")):
		h.vhd(tail)
	case isVMDKDescriptor(head):
		h.format = FormatVMDKDescriptor
		h.refuse(RuleExternalReference, "VMDK descriptor file: the disk data lives in other files it names; upload a single-file image (monolithicSparse or streamOptimized VMDK, qcow2, raw)")
	case len(head) >= 0x8006 && string(head[0x8001:0x8006]) == "CD001":
		h.format = FormatISO
		h.refuse(RuleUnreadable, "ISO 9660 images are not supported: upload the installed system's disk")
	default:
		h.format = FormatRaw
		h.virtualSize = size
	}
	return h, nil
}

// isVMDKDescriptor reports whether head is a VMDK text descriptor (the
// extent data lives elsewhere).
func isVMDKDescriptor(head []byte) bool {
	b := head[:min(len(head), 4096)]
	if bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("# Disk DescriptorFile")) {
		return true
	}
	// Descriptors without the comment line: plain text with a createType.
	if bytes.IndexByte(b, 0) >= 0 && bytes.IndexByte(b, 0) < 64 {
		return false
	}
	return vmdkCreateType.Match(b) && (bytes.Contains(b, []byte("RW ")) || bytes.Contains(b, []byte("RDONLY ")))
}

var (
	vmdkCreateType = regexp.MustCompile(`(?m)^\s*createType\s*=\s*"?([A-Za-z0-9_]*)"?`)
	vmdkParentCID  = regexp.MustCompile(`(?m)^\s*parentCID\s*=\s*([0-9A-Fa-f]+)`)
)

// qcow2 header fields (big-endian).
const (
	qcowIncompatDataFile = 1 << 2
	qcowExtEnd           = 0x00000000
	qcowExtDataFile      = 0x44415441
	qcowExtCrypto        = 0x0537be77
)

func (h *header) qcow(r io.ReaderAt, head []byte, size int64) {
	be := binary.BigEndian
	if len(head) < 72 {
		h.format = FormatQCOW2
		h.refuse(RuleUnreadable, "truncated qcow2 header")
		return
	}
	version := be.Uint32(head[4:])
	if version == 1 {
		h.format = FormatQCOW1
		h.refuse(RuleUnreadable, "qcow version 1 images are not supported: convert to qcow2 or raw")
		return
	}
	h.format = FormatQCOW2
	if version != 2 && version != 3 {
		h.refuse(RuleUnreadable, fmt.Sprintf("unsupported qcow2 version %d", version))
		return
	}
	if be.Uint64(head[8:]) != 0 || be.Uint32(head[16:]) != 0 {
		h.refuse(RuleExternalReference, "qcow2 image has a backing file: only self-contained images are accepted (qemu-img convert it to a standalone image first)")
	}
	if be.Uint32(head[32:]) != 0 {
		h.refuse(RuleUnreadable, "qcow2 image is encrypted: its content cannot be inspected")
	}
	h.virtualSize = int64(be.Uint64(head[24:]))
	if h.virtualSize < 0 {
		h.refuse(RuleUnreadable, "qcow2 header has an invalid virtual size")
		return
	}
	clusterBits := be.Uint32(head[20:])
	extStart, extEnd := 72, 0
	if version == 3 {
		if len(head) < 104 {
			h.refuse(RuleUnreadable, "truncated qcow2 header")
			return
		}
		if be.Uint64(head[72:])&qcowIncompatDataFile != 0 {
			h.refuse(RuleExternalReference, "qcow2 image keeps its data in an external data file: only self-contained images are accepted")
		}
		extStart = int(be.Uint32(head[100:]))
	}
	// Header extensions live in the first cluster.
	if clusterBits < 9 || clusterBits > 21 {
		h.refuse(RuleUnreadable, "qcow2 header has an invalid cluster size")
		return
	}
	extEnd = min(1<<clusterBits, len(head))
	for i := 0; i < 1024 && extStart >= 72 && extStart+8 <= extEnd; i++ {
		typ := be.Uint32(head[extStart:])
		n := int(be.Uint32(head[extStart+4:]))
		switch typ {
		case qcowExtEnd:
			return
		case qcowExtDataFile:
			h.refuse(RuleExternalReference, "qcow2 image names an external data file: only self-contained images are accepted")
		case qcowExtCrypto:
			h.refuse(RuleUnreadable, "qcow2 image is encrypted: its content cannot be inspected")
		}
		if n < 0 || n > extEnd {
			return
		}
		extStart += 8 + (n+7)&^7
	}
}

// VMDK sparse extent header (little-endian).
const (
	vmdkFlagCompressed = 1 << 16
	vmdkFlagMarkers    = 1 << 17
	// qemu reads a sparse VMDK's parent (parentFileNameHint) from the
	// descriptor it expects at sector 1, whatever the header says.
	vmdkQemuDescOffset = 0x200
	vmdkQemuDescSize   = 20 << 9
)

func (h *header) vmdkSparse(r io.ReaderAt, head []byte, size int64) {
	le := binary.LittleEndian
	h.format = FormatVMDK
	if len(head) < 80 {
		h.refuse(RuleUnreadable, "truncated VMDK header")
		return
	}
	flags := le.Uint32(head[8:])
	capacity := le.Uint64(head[12:])
	descOff := le.Uint64(head[28:])
	descSize := le.Uint64(head[36:])
	if capacity == 0 {
		// qemu then opens the embedded descriptor and its extents, which
		// may be any file.
		h.refuse(RuleExternalReference, "sparse VMDK without a capacity defers to its descriptor's extents, which name other files")
		return
	}
	if capacity >= 1<<54 {
		h.refuse(RuleTooLarge, "VMDK capacity is absurdly large")
		return
	}
	h.virtualSize = int64(capacity) * 512
	h.subformat = "monolithicSparse"
	if flags&(vmdkFlagCompressed|vmdkFlagMarkers) != 0 {
		h.subformat = "streamOptimized"
	}

	var texts [][]byte
	if descOff > 0 && descSize > 0 && descOff < 1<<40 && descSize < 1<<40 {
		off, n := int64(descOff)*512, min(int64(descSize)*512, 64<<10)
		if off < size {
			buf := make([]byte, min(n, size-off))
			if _, err := r.ReadAt(buf, off); err == nil || err == io.EOF {
				texts = append(texts, buf)
			}
		}
	}
	if len(head) > vmdkQemuDescOffset {
		texts = append(texts, head[vmdkQemuDescOffset:min(len(head), vmdkQemuDescOffset+vmdkQemuDescSize)])
	}
	for i, t := range texts {
		t = bytes.TrimRight(t, "\x00")
		if bytes.Contains(t, []byte("parentFileNameHint")) {
			h.refuse(RuleExternalReference, "VMDK names a parent disk (parentFileNameHint): only self-contained images are accepted")
			return
		}
		if m := vmdkParentCID.FindSubmatch(t); m != nil && !strings.EqualFold(string(m[1]), "ffffffff") {
			h.refuse(RuleExternalReference, "VMDK is a child of another disk (parentCID set): only self-contained images are accepted")
			return
		}
		if i > 0 {
			continue // qemu's view of sector 1 only matters for the parent
		}
		if m := vmdkCreateType.FindSubmatch(t); m != nil {
			switch ct := string(m[1]); ct {
			case "monolithicSparse", "streamOptimized":
				h.subformat = ct
			default:
				h.refuse(RuleUnreadable, "VMDK create type "+printable(ct, 40)+" is not a single-file disk: upload a monolithicSparse or streamOptimized VMDK")
				return
			}
		}
	}
}

// VHD footer (big-endian).
const (
	vhdFixed        = 2
	vhdDynamic      = 3
	vhdDifferencing = 4
)

func (h *header) vhd(footer []byte) {
	h.format = FormatVHD
	if len(footer) < 72 {
		h.refuse(RuleUnreadable, "truncated VHD footer")
		return
	}
	be := binary.BigEndian
	switch be.Uint32(footer[60:]) {
	case vhdFixed:
		h.subformat = "fixed"
	case vhdDynamic:
		h.subformat = "dynamic"
	case vhdDifferencing:
		h.refuse(RuleExternalReference, "differencing VHD: its data depends on a parent disk; upload a fixed or dynamic VHD")
		return
	default:
		h.refuse(RuleUnreadable, "unknown VHD disk type")
		return
	}
	h.virtualSize = int64(be.Uint64(footer[48:]))
	if h.virtualSize <= 0 {
		h.refuse(RuleUnreadable, "VHD footer has an invalid size")
	}
}

// VDI header (little-endian).
const (
	vdiNormal = 1
	vdiFixed  = 2
	vdiUndo   = 3
	vdiDiff   = 4
)

func (h *header) vdi(head []byte) {
	le := binary.LittleEndian
	h.format = FormatVDI
	if len(head) < 0x180 {
		h.refuse(RuleUnreadable, "truncated VDI header")
		return
	}
	switch le.Uint32(head[0x4c:]) {
	case vdiNormal, vdiFixed:
	case vdiUndo, vdiDiff:
		h.refuse(RuleExternalReference, "differencing VDI: its data depends on a parent disk; upload a normal or fixed VDI")
		return
	default:
		h.refuse(RuleUnreadable, "unknown VDI image type")
		return
	}
	if le.Uint32(head[0x44:]) == 0x00010001 {
		h.virtualSize = int64(le.Uint64(head[0x170:]))
		if h.virtualSize <= 0 {
			h.refuse(RuleUnreadable, "VDI header has an invalid disk size")
		}
	}
}

// VHDX: region table at 192 KiB, metadata region with the virtual disk
// size and the file parameters (HasParent).
var (
	vhdxMetadataRegion = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxFileParameters = guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	vhdxVirtualSize    = guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	vhdxParentLocator  = guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

func (h *header) vhdx(r io.ReaderAt, size int64) {
	h.format = FormatVHDX
	le := binary.LittleEndian
	rt := make([]byte, 64<<10)
	if _, err := r.ReadAt(rt, 192<<10); err != nil && err != io.EOF {
		return // qemu-img info decides
	}
	if string(rt[:4]) != "regi" {
		return
	}
	count := min(int(le.Uint32(rt[8:])), 2047)
	var mdOff, mdLen int64
	for i := 0; i < count; i++ {
		e := rt[16+32*i : 16+32*(i+1)]
		if bytes.Equal(e[:16], vhdxMetadataRegion[:]) {
			mdOff, mdLen = int64(le.Uint64(e[16:])), int64(le.Uint32(e[24:]))
		}
	}
	if mdOff <= 0 || mdLen < 32 || mdOff >= size {
		return
	}
	md := make([]byte, min(mdLen, 1<<20, size-mdOff))
	if _, err := r.ReadAt(md, mdOff); err != nil && err != io.EOF {
		return
	}
	if len(md) < 32 || string(md[:8]) != "metadata" {
		return
	}
	n := min(int(le.Uint16(md[10:])), 2047)
	item := func(off, length uint32) []byte {
		if int64(off)+int64(length) > int64(len(md)) {
			return nil
		}
		return md[off : off+length]
	}
	for i := 0; i < n && 32+32*(i+1) <= len(md); i++ {
		e := md[32+32*i : 32+32*(i+1)]
		id, off, length := e[:16], le.Uint32(e[16:]), le.Uint32(e[20:])
		switch {
		case bytes.Equal(id, vhdxParentLocator[:]):
			h.refuse(RuleExternalReference, "differencing VHDX: it names a parent disk; upload a self-contained VHDX")
			return
		case bytes.Equal(id, vhdxFileParameters[:]):
			if b := item(off, length); len(b) >= 8 && le.Uint32(b[4:])&2 != 0 {
				h.refuse(RuleExternalReference, "differencing VHDX: it has a parent disk; upload a self-contained VHDX")
				return
			}
		case bytes.Equal(id, vhdxVirtualSize[:]):
			if b := item(off, length); len(b) >= 8 {
				h.virtualSize = int64(le.Uint64(b))
			}
		}
	}
}

// guid encodes a GUID string the way it is stored on disk (first three
// fields little-endian).
func guid(s string) (g [16]byte) {
	var raw []byte
	for _, part := range strings.Split(s, "-") {
		for i := 0; i+1 < len(part); i += 2 {
			var v byte
			fmt.Sscanf(part[i:i+2], "%02x", &v)
			raw = append(raw, v)
		}
	}
	if len(raw) != 16 {
		panic("bad guid " + s)
	}
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

// guidString is the inverse of guid.
func guidString(b []byte) string {
	return fmt.Sprintf("%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
}
