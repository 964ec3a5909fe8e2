package diskimage

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/assetscan/assetscan/diskimage/disktest"
)

// logicalDisk builds an MBR disk with a primary p1 and an extended p2
// holding three logical partitions (p5, p6 empty; p7 the Debian root), and
// returns it with the sectors of the three EBRs.
func logicalDisk(t *testing.T) (disk string, ebrs []int64) {
	t.Helper()
	_, ext4, _ := base(t)
	st, _ := os.Stat(ext4)
	sectors := st.Size() / 512
	disk = filepath.Join(t.TempDir(), "logical3.raw")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate((20480 + sectors + 4096) * 512)
	f.Close()
	runSfdisk(t, disk, "label: dos\n"+
		"start=2048, size=2048, type=83\n"+
		"start=4096, size="+itoa64(sectors+16384)+", type=5\n"+
		"start=8192, size=2048, type=83\n"+
		"start=12288, size=2048, type=83\n"+
		"start=16384, size="+itoa64(sectors)+", type=83\n")
	copyInto(t, ext4, disk, 16384*512)
	// Follow the chain as written by sfdisk.
	raw, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	for ebr := int64(4096); ; {
		ebrs = append(ebrs, ebr)
		next := raw[ebr*512+mbrPartitionOff+16:]
		if next[4] == 0 || len(ebrs) > 3 {
			break
		}
		ebr = 4096 + int64(binary.LittleEndian.Uint32(next[8:]))
	}
	if len(ebrs) != 3 {
		t.Fatalf("sfdisk wrote %d EBRs", len(ebrs))
	}
	return disk, ebrs
}

// setNext points the EBR at sector ebr to the next EBR at rel sectors
// from the start of the extended partition.
func setNext(t *testing.T, disk string, ebr int64, rel uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], rel)
	disktest.WriteAt(t, disk, ebr*512+mbrPartitionOff+16+8, b[:])
}

// The root file system in the third of three logical partitions is found,
// and a chain that loops or points past the end of the disk is a specific
// finding on the extended partition, with the logicals before it kept.
func TestEBRChain(t *testing.T) {
	files, _, _ := base(t)
	disk, ebrs := logicalDisk(t)
	d, fl := mustOpen(t, disk)
	if len(fl) != 3 || !hasRule(fl, RuleUnreadable, "p1", "all zeros") || !hasRule(fl, RuleUnreadable, "p5", "") || !hasRule(fl, RuleUnreadable, "p6", "") {
		t.Errorf("findings: %+v", fl)
	}
	if fss := d.FileSystems(); len(fss) != 1 || fss[0].Name != "p7" {
		t.Fatalf("FileSystems: %+v", fss)
	}
	checkDebian(t, d, files, "")

	t.Run("qcow2", func(t *testing.T) {
		t.Parallel()
		q := disktest.Convert(t, disk, "qcow2")
		raw, _, pf, _ := prepare(t, q, ConvertConfig{})
		if len(pf) != 0 {
			t.Fatalf("prepare findings: %+v", pf)
		}
		d, _ := mustOpen(t, raw)
		if fss := d.FileSystems(); len(fss) != 1 || fss[0].Name != "p7" {
			t.Fatalf("FileSystems: %+v", fss)
		}
	})
	for _, c := range []struct {
		name string
		rel  uint32 // the second EBR's link
		msg  string
	}{
		{"loop", 0, "loops back to sector 4096"},
		{"loop-self", uint32(ebrs[1] - 4096), "loops back to sector " + itoa64(ebrs[1])},
		{"past-end", 1 << 31, "beyond the end of the disk"},
		{"outside-extended", uint32(1 << 20), "outside the extended partition"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bad := copyFile(t, disk)
			if c.name == "outside-extended" {
				// Grow the disk so the link stays inside it.
				os.Truncate(bad, (4096+1<<20+2048)*512)
			}
			setNext(t, bad, ebrs[1], c.rel)
			d, fl := mustOpen(t, bad)
			if !hasRule(fl, RuleUnreadable, "p2", c.msg) || !hasRule(fl, RuleUnreadable, "p2", "logical partitions after p6 were not inspected") {
				t.Errorf("findings: %+v", fl)
			}
			if len(d.FileSystems()) != 0 {
				t.Errorf("FileSystems: %+v", d.FileSystems())
			}
		})
	}
}

// FuzzEBRChain feeds arbitrary sectors to the EBR chain and MBR readers:
// no panic, a bounded number of partitions.
func FuzzEBRChain(f *testing.F) {
	ebr := func(typ byte, start, count uint32, next uint32) []byte {
		b := make([]byte, 512)
		e := b[mbrPartitionOff:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], count)
		if next != 0 {
			e[16+4] = mbrExtended
			binary.LittleEndian.PutUint32(e[16+8:], next)
			binary.LittleEndian.PutUint32(e[16+12:], 2)
		}
		b[510], b[511] = 0x55, 0xaa
		return b
	}
	chain := append(append(ebr(0x83, 1, 1, 2), ebr(0x83, 1, 1, 4)...), ebr(0x83, 1, 1, 0)...)
	f.Add(chain)
	f.Add(append(ebr(0x83, 1, 1, 2), ebr(0x83, 1, 1, 0xffffffff)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		var fl findingList
		size := int64(len(data))
		parts, err := readEBRs(bytes.NewReader(data), size, partition{name: "p2", off: 0, len: size / 512 * 512}, &fl)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) > maxLogical {
			t.Fatalf("%d logical partitions", len(parts))
		}
		for _, p := range parts {
			if p.off < 0 || p.off+p.len > size {
				t.Fatalf("partition %+v outside the disk", p)
			}
		}
		if len(data) >= 512 {
			mbr := make([]byte, 512)
			copy(mbr, data)
			_, _ = readMBR(bytes.NewReader(data), size, mbr, &fl)
		}
	})
}
