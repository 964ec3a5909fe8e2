package diskimage

import (
	"context"
	"encoding/binary"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/scanner/accounts"
)

// debugfs runs debugfs on img (read-only unless write).
func debugfs(t *testing.T, img string, write bool, req string) string {
	t.Helper()
	args := []string{"-R", req, img}
	if write {
		args = append([]string{"-w"}, args...)
	}
	out, err := exec.Command(disktest.Tool(t, "debugfs"), args...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "make_link:") {
		t.Fatalf("debugfs %s: %v\n%s", req, err, out)
	}
	return string(out)
}

// inodeOffset returns the byte offset of path's inode in img.
func inodeOffset(t *testing.T, img, path string) int64 {
	t.Helper()
	out := debugfs(t, img, false, "imap "+path)
	m := regexp.MustCompile(`located at block (\d+), offset 0x([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("imap %s: %s", path, out)
	}
	blk, _ := strconv.ParseInt(m[1], 10, 64)
	off, _ := strconv.ParseInt(m[2], 16, 64)
	return blk*4096 + off
}

// inlineRoot is the Debian root plus an inline directory big enough to
// spill into the system.data attribute, on ext4 with inline_data and the
// Debian 12 mke2fs defaults (extents, flex_bg, 64bit, metadata_csum).
func inlineRoot(t *testing.T) (map[string]string, string) {
	files := disktest.MinimalDebianRoot()
	files["etc/shadow"] = "root:$6$salt$hash:19000:0:99999:7:::\n"
	files["etc/small.conf"] = strings.Repeat("x=1\n", 30) // 120 bytes: i_block + system.data
	for i := range 4 {                                    // 4 entries of 12 bytes fit i_block (mke2fs -d moves larger ones to a block)
		files["etc/inl/f"+strconv.Itoa(i)] = "v"
	}
	img := disktest.Ext4(t, "", files, "32M", "-O", "inline_data,metadata_csum,64bit,flex_bg,extents", "-I", "512")
	return files, img
}

func TestInlineData(t *testing.T) {
	files, img := inlineRoot(t)
	for p, want := range map[string]string{"/etc/shadow": "Size of inline data: 60", "/etc/small.conf": "Size of inline data: 120", "/etc/inl": "Size of inline data"} {
		if out := debugfs(t, img, false, "stat "+p); !strings.Contains(out, want) {
			t.Fatalf("%s is not stored inline as expected:\n%s", p, out)
		}
	}
	d, fl := mustOpen(t, img)
	if len(fl) != 0 {
		t.Fatalf("findings: %+v", fl)
	}
	checkDebian(t, d, files, "")
	t.Run("gpt-vhdx", func(t *testing.T) {
		t.Parallel()
		raw, _, pf, _ := prepare(t, disktest.Convert(t, disktest.WithGPT(t, img, "root"), "vhdx"), ConvertConfig{})
		if len(pf) != 0 {
			t.Fatalf("prepare findings: %+v", pf)
		}
		d, fl := mustOpen(t, raw)
		if len(fl) != 0 {
			t.Fatalf("findings: %+v", fl)
		}
		checkDebian(t, d, files, "")
	})
}

// An inline file claiming more bytes than its inode holds, and a
// directory cycle, are specific findings; the rest is read.
func TestInlineHostile(t *testing.T) {
	_, img := inlineRoot(t)
	t.Run("inline-too-big", func(t *testing.T) {
		t.Parallel()
		bad := copyFile(t, img)
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], 5000)
		disktest.WriteAt(t, bad, inodeOffset(t, bad, "/etc/shadow")+4, b[:])
		d, fl := mustOpen(t, bad)
		if len(fl) != 1 || !hasRule(fl, RuleUnreadable, "etc/shadow", "inline data is larger than its inode") {
			t.Errorf("findings: %+v", fl)
		}
		if d.RootFS() == nil {
			t.Fatal("no root")
		}
		got := walkAll(t, d.Source())
		if _, ok := got["etc/shadow"]; ok || got["etc/small.conf"] == "" {
			t.Errorf("walk: shadow %v, small.conf %q", ok, got["etc/small.conf"])
		}
	})
	t.Run("inline-dir-too-big", func(t *testing.T) {
		t.Parallel()
		bad := copyFile(t, img)
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], 4000)
		disktest.WriteAt(t, bad, inodeOffset(t, bad, "/etc/inl")+4, b[:])
		_, fl := mustOpen(t, bad)
		if len(fl) != 1 || !hasRule(fl, RuleUnreadable, "etc/inl", "inline data is larger than its inode") {
			t.Errorf("findings: %+v", fl)
		}
	})
	for _, c := range []struct{ name, dir, link string }{
		{"cycle-to-root", "/etc", "/"},
		{"cycle-to-parent", "/usr/lib", "/usr"},
		{"cycle-to-self", "/var/lib", "/var/lib"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bad := copyFile(t, img)
			debugfs(t, bad, true, "ln "+c.link+" "+c.dir+"/loop")
			d, fl := mustOpen(t, bad)
			p := strings.TrimPrefix(c.dir, "/") + "/loop"
			if len(fl) != 1 || !hasRule(fl, RuleUnreadable, p, "directory cycle") {
				t.Errorf("findings: %+v", fl)
			}
			got := walkAll(t, d.Source())
			for k := range got {
				if strings.Contains(k, "/loop/") {
					t.Errorf("walked into the cycle: %s", k)
					break
				}
			}
		})
	}
}

// FuzzInlineData: any inode bytes and size give content within the inode,
// or errInlineTooBig/errBadInline; never a panic.
func FuzzInlineData(f *testing.F) {
	inode := func(size int64, val []byte) []byte {
		b := make([]byte, 256)
		binary.LittleEndian.PutUint16(b[128:], 32)
		copy(b[40:100], strings.Repeat("i", 60))
		binary.LittleEndian.PutUint32(b[160:], extXattrMagic)
		e := b[164:]
		e[0], e[1] = 4, extXattrIndexSys
		binary.LittleEndian.PutUint16(e[2:], 24)
		binary.LittleEndian.PutUint32(e[8:], uint32(len(val)))
		copy(e[16:], "data")
		copy(e[24:], val)
		return b
	}
	f.Add(inode(70, []byte("0123456789")), int64(70))
	f.Add(inode(30, nil), int64(30))
	f.Add(inode(5000, []byte("0123456789")), int64(5000))
	f.Fuzz(func(t *testing.T, raw []byte, size int64) {
		if len(raw) > 4096 {
			return
		}
		b, err := inlineData(raw, size)
		if err != nil {
			if !errors.Is(err, errInlineTooBig) && !errors.Is(err, errBadInline) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if int64(len(b)) != size || len(b) > len(raw) {
			t.Fatalf("%d bytes for size %d from a %d-byte inode", len(b), size, len(raw))
		}
	})
}

// Issue 11 item 2: a root with a preset, weak password whose /etc/shadow
// is stored inline is named by the account check (it read nothing before).
func TestInlineShadowAccounts(t *testing.T) {
	files := disktest.MinimalDebianRoot()
	files["etc/shadow"] = "root:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/:19800:0:99999:7:::\n" +
		"debian:!:19800:0:99999:7:::\n"
	img := disktest.Ext4(t, "", files, "16M", "-O", "inline_data", "-I", "512")
	if out := debugfs(t, img, false, "stat /etc/shadow"); !strings.Contains(out, "Size of inline data") {
		t.Fatalf("/etc/shadow is not inline:\n%s", out)
	}
	tg := &scanner.Target{Kind: assetscan.KindVMImage, WorkDir: t.TempDir()}
	defer func() {
		for _, c := range tg.Cleanup {
			c()
		}
	}()
	if fl, err := (Preparer{}).Prepare(context.Background(), img, tg, archive.Limits{}); err != nil || len(fl) != 0 {
		t.Fatalf("Prepare: %v %+v", err, fl)
	}
	res, err := accounts.Check{}.Run(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{accounts.RulePresetPassword, accounts.RuleWeakPassword} {
		if !hasRule(res.Findings, r, "etc/shadow", "") {
			t.Errorf("no %s: %+v", r, res.Findings)
		}
	}
}
