// Package diskimage reads sellers' private VM disk images safely: it turns
// an uploaded disk (raw, qcow2, VMDK, VHD, VHDX, VDI) into a raw disk with
// qemu-img under strict rules ([Prepare]), then reads the raw disk's
// partition table and file systems in-process, read-only ([Open]).
//
// Every byte of an image is hostile. The rules that follow from it:
//
//   - The container format is detected here, from magic bytes, never by
//     qemu-img: qemu-img is always run with "-f <format>", and only on a
//     regular file named by an absolute path (so no "nbd:", "json:" or other
//     protocol prefix can be injected). Anything without a known container
//     magic is raw and is never handed to qemu-img.
//   - An image that refers to any other file is refused before qemu-img
//     ever opens it ([RuleExternalReference]): a qcow2 backing file or
//     external data file, a VMDK descriptor file or a sparse VMDK that
//     defers to its descriptor's extents or names a parent, a differencing
//     VHD, VHDX or VDI. Such a reference may name a file of the worker
//     itself. The header checks run first; "qemu-img info" is a second,
//     independent check.
//   - The virtual size is capped ([ConvertConfig].MaxVirtualSize), from our
//     own reading of the header and again from qemu-img info, before
//     anything is converted ([RuleTooLarge]).
//   - qemu-img runs with an empty environment, in a private directory, in
//     its own process group that a time-out kills as a whole, and (when
//     prlimit(1) is installed) with limits on address space, CPU time
//     (info), output file size (the virtual size) and no core dumps.
//   - File systems are read in-process, read-only, never mounted: ext2/3/4
//     by this package's own reader (by inode number, extent trees and block
//     maps walked within budgets), XFS by the library trivy uses
//     (github.com/masahiro331/go-xfs-filesystem) behind a guard that bounds
//     what it reads and refuses inodes it would over-allocate for. Only file
//     systems whose superblock passed our own sanity checks are read; every
//     reader call runs under recover(), serialised per file system;
//     symlinks are resolved here, confined to the file system, with a hop
//     limit; walks are bounded in entries and depth; files claiming more
//     bytes than their file system are not read.
//   - Partition tables: GPT, MBR with extended/logical partitions (every
//     EBR inside the extended partition and the disk, each visited once).
//     ext4 inline_data is read from the inode (i_block and system.data,
//     bounded by the inode); a directory reached twice (a cycle) is a
//     finding and is not walked again. NTFS is read by
//     www.velocidex.com/golang/go-ntfs under the same recover() and
//     budgets; a Windows installation counts as an OS root.
//   - The disk's content is read once: OpenWith's walk copies the files
//     package and secret scanners need (Wanted) into a directory of the
//     work dir, through an os.Root, and Source streams those from the
//     copies (BytesRead counts the image bytes read).
//
// Findings (check [assetscan.CheckFormat]) describe what could not be read;
// they never decide pass or fail, but every rule here means that some
// content was not inspected, so a policy should fail on all of them except
// perhaps [RulePartitionSkipped]. Errors mean the work itself could not run
// (qemu-img missing, disk full, time-out, context cancelled).
package diskimage

import (
	"errors"
	"strconv"
	"strings"

	"github.com/assetscan/assetscan"
)

// Rule ids of the findings this package reports. All have check
// assetscan.CheckFormat.
const (
	// RuleUnreadable: the image, a partition or a file system could not be
	// read, so its content was not inspected: unsupported or corrupt
	// container, encrypted image or partition (qcow2 encryption, LUKS),
	// LVM, software RAID, btrfs or any other unsupported file system,
	// corrupt partition table or file system, qemu-img conversion failure,
	// or no readable root file system at all.
	RuleUnreadable = "image.unreadable"
	// RuleExternalReference: the image refers to another file (backing
	// file, external data file, descriptor extents, parent disk). It is
	// refused without being opened by qemu-img.
	RuleExternalReference = "image.external_reference"
	// RuleTooLarge: the virtual size exceeds ConvertConfig.MaxVirtualSize.
	// Nothing is converted.
	RuleTooLarge = "image.too_large"
	// RulePartitionSkipped: a partition that holds no Linux file system by
	// design was not inspected: an EFI system partition (FAT), a BIOS boot
	// partition, swap. Path is the partition ("p15").
	RulePartitionSkipped = "image.partition_skipped"
)

// Format names, as qemu-img names them.
const (
	FormatRaw   = "raw"
	FormatQCOW2 = "qcow2"
	FormatVMDK  = "vmdk"
	FormatVHD   = "vpc" // Microsoft VHD (Virtual PC), fixed or dynamic
	FormatVHDX  = "vhdx"
	FormatVDI   = "vdi"

	// Recognised and refused.
	FormatVMDKDescriptor = "vmdk-descriptor" // a text descriptor naming other files
	FormatQCOW1          = "qcow"            // qcow version 1
	FormatISO            = "iso"             // ISO 9660 (installer media, not a disk)
)

var (
	// ErrNotRaw is returned by Open for a file that is a disk container
	// (qcow2, VMDK, ...) rather than a raw disk: pass it through Prepare
	// first.
	ErrNotRaw = errors.New("diskimage: not a raw disk image (use Prepare first)")
	// ErrQemuImg is returned by Prepare when an image needs converting and
	// qemu-img cannot be found.
	ErrQemuImg = errors.New("diskimage: qemu-img not available")
	// ErrTimeout is returned by Prepare when qemu-img did not finish within
	// ConvertConfig.Timeout. The process group was killed.
	ErrTimeout = errors.New("diskimage: qemu-img timed out")
	// ErrCorrupt is wrapped by errors from a FileSource walk and from the
	// fs.FS values when a file system turns out to be corrupt while being
	// read (a file's block map, a panic inside the reader).
	ErrCorrupt = errors.New("diskimage: corrupt file system")
	// ErrTooManyFiles is wrapped by walk errors when a file system holds
	// more than maxEntries entries or is nested deeper than maxDepth.
	ErrTooManyFiles = errors.New("diskimage: too many files or directories nested too deep")
)

func finding(rule, path, msg string) assetscan.Finding {
	return assetscan.Finding{Check: assetscan.CheckFormat, Rule: rule, Path: path, Message: msg}
}

// maxFindings caps the findings Open reports; the last one says how many
// more there were.
const maxFindings = 100

type findingList struct {
	list    []assetscan.Finding
	dropped int
}

func (l *findingList) add(f assetscan.Finding) {
	if len(l.list) >= maxFindings {
		l.dropped++
		return
	}
	l.list = append(l.list, f)
}

func (l *findingList) result() []assetscan.Finding {
	if l.dropped > 0 {
		l.list = append(l.list, finding(RuleUnreadable, "",
			"and "+strconv.Itoa(l.dropped)+" more unreadable parts (findings capped)"))
	}
	return l.list
}

// printable returns s with control characters replaced and at most max
// bytes, for messages built from image content.
func printable(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
