package diskimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

type probeKind int

const (
	probeUnreadable probeKind = iota // content not inspected: RuleUnreadable
	probeSkip                        // not a Linux file system by design: RulePartitionSkipped
	probeExt
	probeXFS
	probeNTFS
)

type probeResult struct {
	kind   probeKind
	fsType string // "ext2", "ext3", "ext4", "xfs"
	msg    string // why unreadable or skipped
}

// probeSize covers every signature probe looks at (btrfs: 64 KiB + 64).
const probeSize = 0x11000

// probe classifies what a partition (or a whole disk) holds, from
// signatures and the partition type, and validates ext and XFS
// superblocks before any library parses them.
func probe(r io.ReaderAt, p partition) (probeResult, error) {
	head := make([]byte, min(p.len, probeSize))
	if _, err := r.ReadAt(head, p.off); err != nil && err != io.EOF {
		return probeResult{}, err
	}
	at := func(off int, sig string) bool {
		return off+len(sig) <= len(head) && string(head[off:off+len(sig)]) == sig
	}
	unreadable := func(msg string) (probeResult, error) {
		return probeResult{kind: probeUnreadable, msg: msg}, nil
	}
	skip := func(msg string) (probeResult, error) {
		return probeResult{kind: probeSkip, msg: msg}, nil
	}

	switch {
	case at(0, "LUKS\xba\xbe"), at(0, "SKUL\xba\xbe"), p.gptType == gptLUKS:
		return unreadable("LUKS-encrypted: its content cannot be inspected")
	case at(0, "LABELONE"), at(512, "LABELONE"), at(1024, "LABELONE"), at(1536, "LABELONE"),
		p.mbrType == mbrLVM, p.gptType == gptLVM:
		return unreadable("LVM physical volume: LVM is not supported, its logical volumes were not inspected")
	case le32(head, 4096) == 0xa92b4efc, le32(head, 0) == 0xa92b4efc, p.mbrType == mbrRAID, p.gptType == gptRAID:
		return unreadable("Linux software RAID member: not supported, its content was not inspected")
	case len(head) >= 1082 && head[1080] == 0x53 && head[1081] == 0xef:
		typ, msg := checkExt(head[1024:], p.len)
		if msg != "" {
			return unreadable(msg)
		}
		return probeResult{kind: probeExt, fsType: typ}, nil
	case at(0, "XFSB"):
		if msg := checkXFS(head, p.len); msg != "" {
			return unreadable(msg)
		}
		return probeResult{kind: probeXFS, fsType: "xfs"}, nil
	case at(0x10040, "_BHRfS_M"):
		return unreadable("btrfs is not supported: its content was not inspected")
	case at(4086, "SWAPSPACE2"), at(4086, "SWAP-SPACE"):
		return skip("swap space: not inspected")
	case p.gptType == gptSwap, p.mbrType == mbrSwap:
		return unreadable("swap partition without a swap signature: its content was not inspected")
	case isFAT(head):
		if p.gptType == gptESP || p.mbrType == mbrESP {
			return skip("EFI system partition (FAT): not inspected")
		}
		return skip("FAT file system: not inspected")
	case p.gptType == gptBIOSBoot:
		return skip("BIOS boot partition (boot loader code, no file system): not inspected")
	case p.gptType == gptMSR:
		return skip("Microsoft reserved partition: not inspected")
	case at(3, "NTFS    "):
		if msg := checkNTFS(head, p.len); msg != "" {
			return unreadable(msg)
		}
		return probeResult{kind: probeNTFS, fsType: "ntfs"}, nil
	case at(0, "hsqs"):
		return unreadable("squashfs is not supported: its content was not inspected")
	case at(0x8001, "CD001"):
		return unreadable("ISO 9660 is not supported: its content was not inspected")
	}
	if bytes.Count(head, []byte{0}) == len(head) {
		return unreadable(msgZeros)
	}
	return unreadable(msgNoFS)
}

const (
	msgZeros = "no file system found (the start is all zeros): its content was not inspected"
	msgNoFS  = "no supported file system found (ext2/3/4 and XFS are): its content was not inspected"
)

func le32(b []byte, off int) uint32 {
	if off+4 > len(b) {
		return 0
	}
	return binary.LittleEndian.Uint32(b[off:])
}

func isFAT(b []byte) bool {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xaa {
		return false
	}
	return string(b[3:11]) == "EXFAT   " ||
		bytes.HasPrefix(b[54:62], []byte("FAT")) || bytes.HasPrefix(b[82:90], []byte("FAT"))
}

// ext feature flags.
const (
	extCompatJournal     = 0x4
	extIncompatCompress  = 0x1
	extIncompatFiletype  = 0x2
	extIncompatRecover   = 0x4
	extIncompatJournDev  = 0x8
	extIncompatMetaBG    = 0x10
	extIncompatExtents   = 0x40
	extIncompat64bit     = 0x80
	extIncompatMMP       = 0x100
	extIncompatFlexBG    = 0x200
	extIncompatEAInode   = 0x400
	extIncompatDirData   = 0x1000
	extIncompatCsumSeed  = 0x2000
	extIncompatLargeDir  = 0x4000
	extIncompatInline    = 0x8000
	extIncompatEncrypt   = 0x10000
	extIncompatCasefold  = 0x20000
	extIncompatSupported = extIncompatFiletype | extIncompatRecover | extIncompatExtents | extIncompat64bit |
		extIncompatMMP | extIncompatFlexBG | extIncompatEAInode | extIncompatCsumSeed | extIncompatLargeDir |
		extIncompatCasefold | extIncompatInline
)

// checkExt validates an ext2/3/4 superblock (sb starts at the superblock)
// against what the reader library handles and against the partition size,
// so that the library never sizes an allocation from an absurd field. It
// returns the file system type, or a message saying why it cannot be read.
func checkExt(sb []byte, partLen int64) (typ, msg string) {
	if len(sb) < 1024 {
		return "", "ext file system truncated"
	}
	le := binary.LittleEndian
	inodes := int64(le.Uint32(sb[0x0:]))
	blocks := int64(le.Uint32(sb[0x4:]))
	firstData := int64(le.Uint32(sb[0x14:]))
	logBlock := le.Uint32(sb[0x18:])
	bpg := int64(le.Uint32(sb[0x20:]))
	ipg := int64(le.Uint32(sb[0x28:]))
	rev := le.Uint32(sb[0x4c:])
	inodeSize := int64(le.Uint16(sb[0x58:]))
	compat := le.Uint32(sb[0x5c:])
	incompat := le.Uint32(sb[0x60:])
	descSize := int64(le.Uint16(sb[0xfe:]))

	typ = "ext2"
	if compat&extCompatJournal != 0 {
		typ = "ext3"
	}
	if incompat&(extIncompatExtents|extIncompat64bit|extIncompatFlexBG) != 0 {
		typ = "ext4"
	}
	corrupt := func(why string) (string, string) {
		return typ, "corrupt " + typ + " file system (" + why + "): its content was not inspected"
	}
	if logBlock > 6 {
		return corrupt("block size")
	}
	bs := int64(1024) << logBlock
	if incompat&extIncompat64bit != 0 {
		blocks |= int64(le.Uint32(sb[0x150:])) << 32
		if descSize != 64 {
			return typ, typ + " with " + fmt.Sprint(descSize) + "-byte group descriptors is not supported: its content was not inspected"
		}
	}
	if rev == 0 {
		inodeSize = 128
	}
	switch {
	case bpg < 256 || bpg > 8*bs || bpg%8 != 0:
		return corrupt("blocks per group")
	case ipg <= 0 || ipg > 8*bs:
		return corrupt("inodes per group")
	case inodeSize < 128 || inodeSize > bs || inodeSize&(inodeSize-1) != 0:
		return corrupt("inode size")
	case blocks <= firstData || firstData > 1:
		return corrupt("block count")
	case blocks > partLen/bs:
		return typ, typ + " file system is larger than its partition (truncated image?): its content was not inspected"
	}
	groups := (blocks - firstData + bpg - 1) / bpg
	if inodes <= 0 || (inodes+ipg-1)/ipg != groups {
		return corrupt("inode count")
	}
	if groups*64 > 64<<20 {
		return corrupt("too many block groups")
	}
	if unsup := incompat &^ extIncompatSupported; unsup != 0 {
		var names []string
		for bit, name := range map[uint32]string{
			extIncompatCompress: "compression", extIncompatJournDev: "external journal device",
			extIncompatMetaBG: "meta_bg", extIncompatDirData: "dirdata", extIncompatInline: "inline_data",
			extIncompatEncrypt: "encryption",
		} {
			if unsup&bit != 0 {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			names = append(names, fmt.Sprintf("flags 0x%x", unsup))
		}
		slices.Sort(names)
		return typ, typ + " feature " + strings.Join(names, ", ") + " is not supported: its content was not inspected"
	}
	if incompat&extIncompatRecover != 0 {
		return typ, typ + " journal holds changes not yet written to the file system (not cleanly unmounted): they cannot be inspected; shut the VM down cleanly or run e2fsck on the image"
	}
	return typ, ""
}

// XFS incompatible features the reader copes with: ftype, sparse inodes,
// meta uuid, bigtime.
const xfsIncompatSupported = 0x1 | 0x2 | 0x4 | 0x8

func checkXFS(sb []byte, partLen int64) string {
	if len(sb) < 512 {
		return "xfs file system truncated"
	}
	be := binary.BigEndian
	bs := int64(be.Uint32(sb[4:]))
	dblocks := be.Uint64(sb[8:])
	rblocks := be.Uint64(sb[16:])
	agblocks := int64(be.Uint32(sb[84:]))
	agcount := int64(be.Uint32(sb[88:]))
	version := be.Uint16(sb[100:]) & 0xf
	sect := int64(be.Uint16(sb[102:]))
	inodeSize := int64(be.Uint16(sb[104:]))
	inprogress := sb[126]
	incompat := be.Uint32(sb[216:])
	pow2 := func(n, lo, hi int64) bool { return n >= lo && n <= hi && n&(n-1) == 0 }
	corrupt := func(why string) string {
		return "corrupt xfs file system (" + why + "): its content was not inspected"
	}
	switch {
	case version != 4 && version != 5:
		return fmt.Sprintf("xfs version %d is not supported: its content was not inspected", version)
	case !pow2(bs, 512, 65536):
		return corrupt("block size")
	case !pow2(sect, 512, 32768):
		return corrupt("sector size")
	case !pow2(inodeSize, 256, 2048):
		return corrupt("inode size")
	case agcount < 1 || agcount > 1<<20 || agblocks < 1:
		return corrupt("allocation groups")
	case dblocks == 0 || dblocks > uint64(partLen/bs) || dblocks > uint64(agcount*agblocks):
		if dblocks > uint64(partLen/bs) {
			return "xfs file system is larger than its partition (truncated image?): its content was not inspected"
		}
		return corrupt("block count")
	case inprogress != 0:
		return corrupt("mkfs did not finish")
	case rblocks != 0:
		return "xfs realtime volumes are not supported: its content was not inspected"
	case version == 5 && incompat&0x10 != 0:
		return "xfs file system needs repair (xfs_repair): its content was not inspected"
	case version == 5 && incompat&^xfsIncompatSupported != 0:
		return fmt.Sprintf("xfs features 0x%x are not supported: its content was not inspected", incompat&^xfsIncompatSupported)
	}
	return ""
}

// checkNTFS validates an NTFS boot sector against the partition before the
// reader library parses it.
func checkNTFS(b []byte, partLen int64) string {
	if len(b) < 512 {
		return "ntfs file system truncated"
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(b[11:]))
	spc := int64(b[13])
	if spc > 0x80 { // 2^(256-n) sectors per cluster
		spc = 1 << (256 - spc)
	}
	total := int64(le.Uint64(b[40:]))
	mft := int64(le.Uint64(b[48:]))
	pow2 := func(n, lo, hi int64) bool { return n >= lo && n <= hi && n&(n-1) == 0 }
	corrupt := func(why string) string {
		return "corrupt ntfs file system (" + why + "): its content was not inspected"
	}
	switch {
	case b[510] != 0x55 || b[511] != 0xaa:
		return corrupt("boot sector signature")
	case !pow2(bps, 256, 4096):
		return corrupt("sector size")
	case !pow2(spc, 1, 1<<12) || bps*spc > 1<<21:
		return corrupt("cluster size")
	case total <= 0 || total > partLen/bps:
		if total > 0 {
			return "ntfs file system is larger than its partition (truncated image?): its content was not inspected"
		}
		return corrupt("sector count")
	case mft <= 0 || mft > total/spc:
		return corrupt("MFT location")
	}
	return ""
}
