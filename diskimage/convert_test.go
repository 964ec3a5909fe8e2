package diskimage

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assetscan/assetscan/diskimage/disktest"
)

// Every container format is converted to a sparse raw disk that reads like
// the original.
func TestConvertFormats(t *testing.T) {
	files, _, gpt := base(t)
	for _, c := range []struct {
		name, format string
		opts         []string
		want         string
	}{
		{"qcow2", "qcow2", nil, FormatQCOW2},
		{"qcow2-compressed", "qcow2", []string{"-c"}, FormatQCOW2},
		{"vhdx", "vhdx", nil, FormatVHDX},
		{"vdi", "vdi", nil, FormatVDI},
		{"vhd-dynamic", "vpc", nil, FormatVHD},
		{"vhd-fixed", "vpc", []string{"-o", "subformat=fixed"}, FormatVHD},
		{"vmdk-streamOptimized", "vmdk", []string{"-o", "subformat=streamOptimized"}, FormatVMDK},
		{"vmdk-monolithicSparse", "vmdk", []string{"-o", "subformat=monolithicSparse"}, FormatVMDK},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := disktest.Convert(t, gpt, c.format, c.opts...)
			qemu, log := qemuWrapper(t, "")
			rp, format, fl, work := prepare(t, img, ConvertConfig{QemuImg: qemu})
			if format != c.want || len(fl) != 0 {
				t.Fatalf("Prepare = %q, %+v", format, fl)
			}
			if !strings.HasPrefix(rp, work+string(filepath.Separator)) {
				t.Fatalf("readPath %s not in the work dir", rp)
			}
			for _, call := range calls(t, log) {
				if !strings.Contains(call, " -f "+c.want+" ") {
					t.Errorf("qemu-img run without -f %s: %s", c.want, call)
				}
			}
			if n := len(calls(t, log)); n != 2 {
				t.Errorf("%d qemu-img runs, want 2 (info, convert)", n)
			}
			st, _ := os.Stat(rp)
			if a := allocated(t, rp); a > st.Size()/4 {
				t.Errorf("output not sparse: %d of %d bytes allocated", a, st.Size())
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(rp), "tmp")); !os.IsNotExist(err) {
				t.Errorf("private tmp dir left behind")
			}
			d, fl := mustOpen(t, rp)
			if len(fl) != 0 {
				t.Fatalf("findings: %+v", fl)
			}
			checkDebian(t, d, files, "")
		})
	}
}

func TestBackingFileRefused(t *testing.T) {
	sentinel := filepath.Join(t.TempDir(), "sentinel.raw")
	if err := os.WriteFile(sentinel, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(sentinel)
	for _, backing := range []string{sentinel, "/etc/hostname", "nbd://127.0.0.1:10809/x", "json:{\"driver\":\"file\",\"filename\":\"/etc/shadow\"}"} {
		t.Run(filepath.Base(backing), func(t *testing.T) {
			img := disktest.QCOW2WithBacking(t, backing)
			qemu, log := qemuWrapper(t, "")
			rp, format, fl, work := prepare(t, img, ConvertConfig{QemuImg: qemu})
			if rp != "" || format != FormatQCOW2 || !hasRule(fl, RuleExternalReference, "", "backing file") {
				t.Fatalf("Prepare = %q %q %+v", rp, format, fl)
			}
			if c := calls(t, log); len(c) != 0 {
				t.Errorf("qemu-img was run: %v", c)
			}
			if e := dirEntries(t, work); len(e) != 0 {
				t.Errorf("work dir not empty: %v", e)
			}
		})
	}
	after, _ := os.Stat(sentinel)
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Error("sentinel changed")
	}
}

func TestExternalDataFileRefused(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.raw")
	img := filepath.Join(dir, "df.qcow2")
	run(t, disktest.Tool(t, "qemu-img"), "create", "-q", "-f", "qcow2", "-o", "data_file="+data+",data_file_raw=on", img, "16M")
	qemu, log := qemuWrapper(t, "")
	rp, _, fl, _ := prepare(t, img, ConvertConfig{QemuImg: qemu})
	if rp != "" || !hasRule(fl, RuleExternalReference, "", "external data file") {
		t.Fatalf("Prepare = %q %+v", rp, fl)
	}
	if c := calls(t, log); len(c) != 0 {
		t.Errorf("qemu-img was run: %v", c)
	}
}

func TestEncryptedQCOW2(t *testing.T) {
	img := filepath.Join(t.TempDir(), "enc.qcow2")
	// qemu-img times its LUKS key derivation with the process's CPU time;
	// on a busy machine a short iter-time measures as zero ("Unable to get
	// accurate CPU usage"). Give it time to measure, and a few tries.
	var out []byte
	var err error
	for range 3 {
		out, err = exec.Command(disktest.Tool(t, "qemu-img"), "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=pw",
			"-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=200", img, "16M").CombinedOutput()
		if err == nil {
			break
		}
		_ = os.Remove(img)
	}
	if err != nil {
		t.Fatalf("qemu-img create (encrypted): %v\n%s", err, out)
	}
	rp, _, fl, _ := prepare(t, img, ConvertConfig{})
	if rp != "" || !hasRule(fl, RuleUnreadable, "", "encrypted") {
		t.Fatalf("Prepare = %q %+v", rp, fl)
	}
}

func TestVMDKReferencesRefused(t *testing.T) {
	_, ext4, _ := base(t)
	dir := t.TempDir()
	// A descriptor file naming a flat extent.
	desc := filepath.Join(dir, "flat.vmdk")
	run(t, disktest.Tool(t, "qemu-img"), "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=monolithicFlat", ext4, desc)
	// A descriptor pointing at a host file, hand-written.
	evil := filepath.Join(dir, "evil.vmdk")
	os.WriteFile(evil, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n"), 0o644)
	// A sparse VMDK naming a parent.
	sparse := disktest.Convert(t, ext4, "vmdk", "-o", "subformat=monolithicSparse")
	withParent := copyFile(t, sparse)
	disktest.WriteAt(t, withParent, 0x200+0x150, []byte("parentFileNameHint=\"/etc/hostname\"\n"))
	// A sparse VMDK with capacity 0: qemu would follow its descriptor.
	noCap := copyFile(t, sparse)
	disktest.WriteAt(t, noCap, 12, make([]byte, 8))

	for name, c := range map[string]struct{ path, format string }{
		"descriptor": {desc, FormatVMDKDescriptor}, "evil descriptor": {evil, FormatVMDKDescriptor},
		"parent": {withParent, FormatVMDK}, "capacity 0": {noCap, FormatVMDK},
	} {
		t.Run(name, func(t *testing.T) {
			qemu, log := qemuWrapper(t, "")
			rp, format, fl, _ := prepare(t, c.path, ConvertConfig{QemuImg: qemu})
			if rp != "" || format != c.format || !hasRule(fl, RuleExternalReference, "", "") {
				t.Fatalf("Prepare = %q %q %+v", rp, format, fl)
			}
			if c := calls(t, log); len(c) != 0 {
				t.Errorf("qemu-img was run: %v", c)
			}
		})
	}
}

func TestDifferencingDisksRefused(t *testing.T) {
	_, ext4, _ := base(t)
	vhd := disktest.Convert(t, ext4, "vpc")
	disktest.WriteAt(t, vhd, 60, []byte{0, 0, 0, 4}) // disk type: differencing (the copy at 0)
	vdi := disktest.Convert(t, ext4, "vdi")
	disktest.WriteAt(t, vdi, 0x4c, []byte{4, 0, 0, 0})
	for _, p := range []string{vhd, vdi} {
		rp, _, fl, _ := prepare(t, p, ConvertConfig{})
		if rp != "" || !hasRule(fl, RuleExternalReference, "", "differencing") {
			t.Errorf("%s: Prepare = %q %+v", filepath.Base(p), rp, fl)
		}
	}
}

func TestTooLarge(t *testing.T) {
	img := filepath.Join(t.TempDir(), "big.qcow2")
	run(t, disktest.Tool(t, "qemu-img"), "create", "-q", "-f", "qcow2", img, "10T")
	qemu, log := qemuWrapper(t, "")
	rp, _, fl, work := prepare(t, img, ConvertConfig{QemuImg: qemu})
	if rp != "" || !hasRule(fl, RuleTooLarge, "", "10.0 TiB") {
		t.Fatalf("Prepare = %q %+v", rp, fl)
	}
	if c := calls(t, log); len(c) != 0 {
		t.Errorf("qemu-img was run: %v", c)
	}
	if e := dirEntries(t, work); len(e) != 0 {
		t.Errorf("work dir not empty: %v", e)
	}
	// A small cap applies to raw images and to qemu-img's view as well.
	_, ext4, _ := base(t)
	if _, _, fl, _ := prepare(t, ext4, ConvertConfig{MaxVirtualSize: 1 << 20}); !hasRule(fl, RuleTooLarge, "", "") {
		t.Errorf("raw over the cap: %+v", fl)
	}
}

// A conversion that runs too long is killed with its whole process group.
func TestConvertTimeout(t *testing.T) {
	_, ext4, _ := base(t)
	img := disktest.Convert(t, ext4, "qcow2")
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	qemu, _ := qemuWrapper(t, `case "$1" in
info) exec $REAL "$@";;
*) sleep 300 & echo $! > `+pidFile+`; wait;;
esac`)
	work := t.TempDir()
	start := time.Now()
	rp, _, fl, err := Prepare(context.Background(), img, work, ConvertConfig{QemuImg: qemu, Timeout: 2 * time.Second})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) || rp != "" || len(fl) != 0 {
		t.Fatalf("Prepare = %q %+v %v", rp, fl, err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if alive(pid) {
		t.Errorf("child %d of qemu-img still running", pid)
	}
	if e := dirEntries(t, work); len(e) != 0 {
		t.Errorf("work dir not empty: %v", e)
	}
	// A cancelled context stops it too, with the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, _, err := Prepare(ctx, img, work, ConvertConfig{QemuImg: qemu}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled: %v", err)
	}
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// A zombie waiting for a reaper is dead.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// A conversion failure is an unreadable finding whose message names no
// host path: qemu-img info failing (bad L1 table offset), and qemu-img
// convert failing (corrupt compressed clusters).
func TestConvertFailure(t *testing.T) {
	_, ext4, _ := base(t)
	badL1 := disktest.Convert(t, ext4, "qcow2")
	disktest.WriteAt(t, badL1, 40, []byte{0, 0, 0, 0, 0, 0, 0x12, 0x34})
	badData := disktest.Convert(t, ext4, "qcow2", "-c")
	st, _ := os.Stat(badData)
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	disktest.WriteAt(t, badData, st.Size()/2, junk)
	for name, img := range map[string]string{"info": badL1, "convert": badData} {
		t.Run(name, func(t *testing.T) {
			rp, format, fl, work := prepare(t, img, ConvertConfig{})
			if rp != "" || format != FormatQCOW2 || !hasRule(fl, RuleUnreadable, "", "qemu-img could not "+map[string]string{"info": "read", "convert": "convert"}[name]) {
				t.Fatalf("Prepare = %q %q %+v", rp, format, fl)
			}
			t.Logf("message: %s", fl[0].Message)
			if e := dirEntries(t, work); len(e) != 0 {
				t.Errorf("work dir not empty: %v", e)
			}
		})
	}
}

func TestISO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.iso")
	b := make([]byte, 64<<10)
	copy(b[0x8001:], "CD001")
	os.WriteFile(p, b, 0o644)
	rp, format, fl, _ := prepare(t, p, ConvertConfig{})
	if rp != "" || format != FormatISO || !hasRule(fl, RuleUnreadable, "", "ISO") {
		t.Fatalf("Prepare = %q %q %+v", rp, format, fl)
	}
}

// The second line of defence: qemu-img info's view.
func TestCheckInfo(t *testing.T) {
	const img = "/work/x.vmdk"
	for name, c := range map[string]struct {
		format, json, rule string
	}{
		"clean qcow2":  {"qcow2", `{"virtual-size":1,"format":"qcow2","format-specific":{"type":"qcow2","data":{"compat":"1.1"}}}`, ""},
		"backing":      {"qcow2", `{"virtual-size":1,"format":"qcow2","backing-filename":"/etc/shadow","full-backing-filename":"/etc/shadow"}`, RuleExternalReference},
		"data file":    {"qcow2", `{"virtual-size":1,"format":"qcow2","format-specific":{"type":"qcow2","data":{"data-file":"/dev/sda"}}}`, RuleExternalReference},
		"encrypted":    {"qcow2", `{"virtual-size":1,"format":"qcow2","encrypted":true}`, RuleUnreadable},
		"other format": {"qcow2", `{"virtual-size":1,"format":"raw"}`, RuleUnreadable},
		"clean vmdk":   {"vmdk", `{"virtual-size":1,"format":"vmdk","format-specific":{"type":"vmdk","data":{"create-type":"streamOptimized","extents":[{"filename":"/work/x.vmdk"}]}}}`, ""},
		"vmdk extent":  {"vmdk", `{"virtual-size":1,"format":"vmdk","format-specific":{"type":"vmdk","data":{"create-type":"monolithicSparse","extents":[{"filename":"/etc/shadow"}]}}}`, RuleExternalReference},
		"vmdk flat":    {"vmdk", `{"virtual-size":1,"format":"vmdk","format-specific":{"type":"vmdk","data":{"create-type":"monolithicFlat","extents":[{"filename":"/work/x.vmdk"}]}}}`, RuleUnreadable},
	} {
		var info qemuInfo
		if err := json.Unmarshal([]byte(c.json), &info); err != nil {
			t.Fatal(err)
		}
		fl := checkInfo(info, c.format, img)
		if c.rule == "" && len(fl) != 0 || c.rule != "" && !hasRule(fl, c.rule, "", "") {
			t.Errorf("%s: %+v", name, fl)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func TestNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Prepare(context.Background(), fifo, t.TempDir(), ConvertConfig{}); err == nil {
		t.Error("Prepare(fifo) succeeded")
	}
	if _, _, err := Open(context.Background(), fifo); err == nil {
		t.Error("Open(fifo) succeeded")
	}
	if _, _, _, err := Prepare(context.Background(), t.TempDir(), t.TempDir(), ConvertConfig{}); err == nil {
		t.Error("Prepare(dir) succeeded")
	}
}
