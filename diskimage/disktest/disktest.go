// Package disktest builds small VM disk images for tests: a root file
// system from a map of files (mke2fs -d, mkfs.xfs -p), wrapped in a GPT or
// MBR partition table (sfdisk) and converted to other formats (qemu-img).
// Images are sparse; nothing is mounted and no loop device is used.
//
// The tools (qemu-img from qemu-utils, mke2fs from e2fsprogs, sfdisk from
// fdisk) must be installed: scripts/test.sh installs them. A missing tool
// fails the test, or skips it when ASSETSCAN_SKIP_SERVICES=1. mkfs.xfs
// (xfsprogs) is optional: XFS skips the test without it.
package disktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// symlinkMarker starts a file content that stands for a symlink.
const symlinkMarker = "\x00symlink:"

// Symlink returns a files-map value that makes the entry a symbolic link
// to target instead of a regular file.
func Symlink(target string) string { return symlinkMarker + target }

// Tool returns the path of an external tool, failing the test when it is
// missing (skipping it when ASSETSCAN_SKIP_SERVICES=1).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p
		}
	}
	if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
		t.Skipf("%s not installed (ASSETSCAN_SKIP_SERVICES=1)", name)
	}
	t.Fatalf("%s not installed: apt-get install qemu-utils e2fsprogs fdisk (scripts/test.sh does), or set ASSETSCAN_SKIP_SERVICES=1 to skip", name)
	return ""
}

// haveTool reports whether an external tool is installed.
func haveTool(name string) bool { return toolPath(name) != name }

// toolPath is the path of an installed tool (name itself when not found).
func toolPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p
		}
	}
	return name
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return runIn(t, "", nil, name, args...)
}

func runIn(t testing.TB, stdin string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// populate writes files under a new directory in dir.
func populate(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	root, err := os.MkdirTemp(dir, "root-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			continue // a directory
		}
		if target, ok := strings.CutPrefix(content, symlinkMarker); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		switch name {
		case "etc/shadow", "etc/gshadow":
			mode = 0o640
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func imageDir(t testing.TB, dir string) string {
	if dir == "" {
		return t.TempDir()
	}
	return dir
}

// Ext4 builds a raw ext4 file system image of the given size ("64M")
// holding files (path -> content; a path ending in "/" is an empty
// directory; Symlink(target) makes a link) with mke2fs -d, in dir
// (t.TempDir() when ""), and returns its path. ext4, 4 KiB blocks, 256-byte
// inodes, like real cloud images, unless mkfsArgs say otherwise ("-t",
// "ext2", "-b", "1024", ...).
func Ext4(t testing.TB, dir string, files map[string]string, size string, mkfsArgs ...string) string {
	t.Helper()
	dir = imageDir(t, dir)
	root := populate(t, dir, files)
	img := uniquePath(t, dir, "ext4", ".raw")
	args := []string{"-q", "-E", "root_owner=0:0", "-d", root, "-F"}
	for _, d := range [][2]string{{"-t", "ext4"}, {"-b", "4096"}, {"-I", "256"}} {
		if !slices.Contains(mkfsArgs, d[0]) {
			args = append(args, d[0], d[1])
		}
	}
	args = append(append(args, mkfsArgs...), img, size)
	run(t, "mke2fs", args...)
	return img
}

// XFS builds a raw XFS image (mkfs.xfs needs at least "300M"; the file is
// sparse) holding files, in dir. It skips the test when mkfs.xfs is not
// installed.
func XFS(t testing.TB, dir string, files map[string]string, size string) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.xfs"); err != nil && !isExec("/usr/sbin/mkfs.xfs") && !isExec("/sbin/mkfs.xfs") {
		t.Skip("mkfs.xfs not installed (apt-get install xfsprogs)")
	}
	dir = imageDir(t, dir)
	root := populate(t, dir, files)
	img := uniquePath(t, dir, "xfs", ".raw")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	n, err := parseSize(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	f.Close()
	proto := filepath.Join(dir, filepath.Base(img)+".proto")
	if err := os.WriteFile(proto, []byte(xfsProto(t, root)), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.xfs", "-q", "-f", "-p", proto, img)
	return img
}

// xfsProto writes a mkfs.xfs prototype file for the tree at root.
func xfsProto(t testing.TB, root string) string {
	var b strings.Builder
	b.WriteString("boot\n0 0\nd--755 0 0\n")
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		ind := strings.Repeat(" ", depth)
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.Type()&os.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				fmt.Fprintf(&b, "%s%s l--777 0 0 %s\n", ind, e.Name(), target)
			case e.IsDir():
				fmt.Fprintf(&b, "%s%s d--755 0 0\n", ind, e.Name())
				walk(p, depth+1)
				fmt.Fprintf(&b, "%s$\n", ind)
			default:
				fmt.Fprintf(&b, "%s%s ---644 0 0 %s\n", ind, e.Name(), p)
			}
		}
	}
	walk(root, 1)
	b.WriteString("$\n")
	return b.String()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// uniquePath returns a new file name in dir.
func uniquePath(t testing.TB, dir, stem, ext string) string {
	f, err := os.CreateTemp(dir, stem+"-*"+ext)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}

const (
	partStart = 1 << 20 // first partition at 1 MiB, as partitioning tools do
	tailRoom  = 1 << 20 // room for the backup GPT
)

// WithGPT returns a new raw disk (next to fsImage) with a GPT holding one
// Linux file system partition named partName ("root", "rootfs", ...)
// starting at 1 MiB, with the content of fsImage copied in (sparse).
func WithGPT(t testing.TB, fsImage string, partName string) string {
	t.Helper()
	return withTable(t, fsImage, "gpt", fmt.Sprintf(`type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="%s"`, partName))
}

// WithMBR returns a new raw disk with an MBR holding one primary partition
// of type typ ("83" Linux, "8e" LVM, ...) at 1 MiB with fsImage's content.
// For type "8e" an LVM physical volume label (LABELONE, LVM2 001) is also
// written at the partition's sector 1, as pvcreate does, on top of the
// file system (which is then unreadable to Linux).
func WithMBR(t testing.TB, fsImage string, typ string) string {
	t.Helper()
	disk := withTable(t, fsImage, "dos", "type="+typ)
	if strings.EqualFold(typ, "8e") {
		label := make([]byte, 32)
		copy(label, "LABELONE")
		copy(label[24:], "LVM2 001")
		WriteAt(t, disk, partStart+512, label)
	}
	return disk
}

func withTable(t testing.TB, fsImage, label, attrs string) string {
	t.Helper()
	st, err := os.Stat(fsImage)
	if err != nil {
		t.Fatal(err)
	}
	fsSize := (st.Size() + 511) &^ 511
	disk := uniquePath(t, filepath.Dir(fsImage), strings.TrimSuffix(filepath.Base(fsImage), ".raw")+"-"+label, ".raw")
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(partStart + fsSize + tailRoom); err != nil {
		t.Fatal(err)
	}
	f.Close()
	script := fmt.Sprintf("label: %s\nstart=%d, size=%d, %s\n", label, partStart/512, fsSize/512, attrs)
	runIn(t, script, []string{"LC_ALL=C"}, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	copySparse(t, fsImage, disk, partStart)
	return disk
}

// copySparse copies src into dst at offset off, skipping zero blocks so
// that dst stays sparse.
func copySparse(t testing.TB, src, dst string, off int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64<<10)
	var pos int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if !allZero(buf[:n]) {
				if _, err := out.WriteAt(buf[:n], off+pos); err != nil {
					t.Fatal(err)
				}
			}
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// WriteAt overwrites bytes of a file at offset off (to corrupt or stamp
// images).
func WriteAt(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// Convert converts a raw disk to format ("qcow2", "vmdk", "vhdx", "vdi",
// "vpc") with qemu-img; opts are extra arguments such as "-o",
// "subformat=streamOptimized". It returns the new image's path, next to
// raw.
func Convert(t testing.TB, raw, format string, opts ...string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(strings.Join(opts, "\x00")))
	ext := map[string]string{"vpc": ".vhd"}[format]
	if ext == "" {
		ext = "." + format
	}
	out := uniquePath(t, filepath.Dir(raw), strings.TrimSuffix(filepath.Base(raw), ".raw")+"-"+hex.EncodeToString(sum[:3]), ext)
	args := append([]string{"convert", "-q", "-f", "raw", "-O", format}, opts...)
	args = append(args, raw, out)
	run(t, "qemu-img", args...)
	return out
}

// QCOW2WithBacking creates a small qcow2 image in t.TempDir() whose backing
// file is backingPath (a raw host file), without opening it (-u).
func QCOW2WithBacking(t testing.TB, backingPath string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "backed.qcow2")
	run(t, "qemu-img", "create", "-q", "-u", "-f", "qcow2", "-b", backingPath, "-F", "raw", out, "16M")
	return out
}

// MinimalDebianRoot is the root file system of a minimal Debian 12
// (bookworm) installation: os-release (as Debian ships it, etc/os-release a
// symlink to ../usr/lib/os-release), debian_version, a dpkg status
// database listing openssh-server 1:9.2p1-2+deb12u2 (source openssh,
// CVE-2024-6387) and libc6 2.36-9+deb12u1 (source glibc, CVE-2023-4911),
// both in the fixture vulnerability DB, and accounts with locked
// passwords (root "*", debian "!") and no authorized_keys.
func MinimalDebianRoot() map[string]string {
	return map[string]string{
		"etc/os-release":     Symlink("../usr/lib/os-release"),
		"usr/lib/os-release": debianOSRelease,
		"etc/debian_version": "12.5\n",
		"etc/hostname":       "debian\n",
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\n" +
			"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
			"sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n" +
			"debian:x:1000:1000:Debian:/home/debian:/bin/bash\n",
		"etc/shadow": "root:*:19800:0:99999:7:::\n" +
			"daemon:*:19800:0:99999:7:::\n" +
			"sshd:!:19800::::::\n" +
			"debian:!:19800:0:99999:7:::\n",
		"etc/group":                          "root:x:0:\ndaemon:x:1:\nsudo:x:27:debian\nnogroup:x:65534:\ndebian:x:1000:\n",
		"etc/ssh/sshd_config":                "PermitRootLogin prohibit-password\nPasswordAuthentication no\n",
		"var/lib/dpkg/status":                debianDpkgStatus,
		"usr/sbin/sshd":                      "\x7fELF fake sshd\n",
		"usr/lib/x86_64-linux-gnu/libc.so.6": "\x7fELF fake libc\n",
		"root/":                              "",
		"home/debian/":                       "",
	}
}

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`

const debianDpkgStatus = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12985
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u1
Description: GNU C Library: Shared libraries

Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 1845
Maintainer: Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: openssh
Version: 1:9.2p1-2+deb12u2
Depends: libc6 (>= 2.36)
Description: secure shell (SSH) server, for secure access from remote machines

`

// Files lists a files map's regular file paths, sorted (symlinks and
// directories left out).
func Files(files map[string]string) []string {
	var out []string
	for p, c := range files {
		if strings.HasSuffix(p, "/") || strings.HasPrefix(c, symlinkMarker) {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// MinimalAlpineRoot is the root file system of a minimal Alpine 3.18:
// os-release, alpine-release and an apk database listing busybox 1.36.1-r0
// (CVE-2022-48174, fixed in 1.36.1-r1, in the fixture vulnerability DB).
func MinimalAlpineRoot() map[string]string {
	return map[string]string{
		"etc/os-release": "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\n" +
			"PRETTY_NAME=\"Alpine Linux v3.18\"\nHOME_URL=\"https://alpinelinux.org/\"\n",
		"etc/alpine-release": "3.18.4\n",
		"etc/passwd":         "root:x:0:0:root:/root:/bin/ash\n",
		"etc/shadow":         "root:*::0:::::\n",
		"lib/apk/db/installed": "C:Q1pKlHm8cPWsZvBGLSONhV2GLsqCk=\n" +
			"P:busybox\nV:1.36.1-r0\nA:x86_64\nS:509152\nI:958464\nT:Size optimized toolkit of many common UNIX utilities\n" +
			"U:https://busybox.net/\nL:GPL-2.0-only\no:busybox\nm:Sören Tempel <soeren+alpine@soeren-tempel.net>\n" +
			"t:1683300000\nc:1dbe6b1bd3d2a0d4fd2b4bc9f5b6ba1b9d0e3a7c\nD:so:libc.musl-x86_64.so.1\n" +
			"F:bin\nR:busybox\n\n",
		"bin/busybox": "\x7fELF fake busybox\n",
		"root/":       "",
	}
}

// WithLogical returns a new raw disk with an MBR holding a primary p1
// (1 MiB, empty), an extended p2 and in it three logical partitions: p5
// and p6 (1 MiB each, empty) and p7 with fsImage's content.
func WithLogical(t testing.TB, fsImage string) string {
	t.Helper()
	st, err := os.Stat(fsImage)
	if err != nil {
		t.Fatal(err)
	}
	sectors := (st.Size() + 511) / 512
	disk := uniquePath(t, filepath.Dir(fsImage), strings.TrimSuffix(filepath.Base(fsImage), ".raw")+"-logical", ".raw")
	if err := os.Truncate(disk, (16384+sectors+4096)*512); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("label: dos\nstart=2048, size=2048, type=83\nstart=4096, size=%d, type=5\n"+
		"start=6144, size=2048, type=83\nstart=10240, size=2048, type=83\nstart=16384, size=%d, type=83\n",
		sectors+12288, sectors)
	runIn(t, script, []string{"LC_ALL=C"}, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	copySparse(t, fsImage, disk, 16384*512)
	return disk
}

// NTFS builds a raw NTFS image of size ("32M") holding files (a files map
// as for Ext4; symlinks are not supported). It needs mkntfs and ntfs-3g
// (Debian ntfs-3g) and a FUSE mount; the test is skipped when either is
// missing or the mount is refused.
func NTFS(t testing.TB, dir string, files map[string]string, size string) string {
	t.Helper()
	for _, tool := range []string{"mkntfs", "ntfs-3g"} {
		if !haveTool(tool) {
			t.Skipf("%s not installed (apt-get install ntfs-3g)", tool)
		}
	}
	img := uniquePath(t, imageDir(t, dir), "ntfs", ".raw")
	n, err := parseSize(size)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, n); err != nil {
		t.Fatal(err)
	}
	run(t, "mkntfs", "-F", "-f", "-q", "-L", "win", img)
	mnt := t.TempDir()
	if out, err := exec.Command(toolPath("ntfs-3g"), img, mnt).CombinedOutput(); err != nil {
		t.Skipf("ntfs-3g mount refused (no FUSE?): %v: %s", err, out)
	}
	mounted := true
	unmount := func() error {
		if !mounted {
			return nil
		}
		out, err := exec.Command(toolPath("umount"), mnt).CombinedOutput()
		if err != nil {
			if out2, err2 := exec.Command(toolPath("fusermount"), "-u", mnt).CombinedOutput(); err2 != nil {
				return fmt.Errorf("%v: %s; fusermount: %v: %s", err, out, err2, out2)
			}
		}
		mounted = false
		return nil
	}
	// Registered after TempDir, so it runs before the mount point is
	// removed, even when the test fails while the image is mounted.
	t.Cleanup(func() { _ = unmount() })
	for name, body := range files {
		p := filepath.Join(mnt, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unmount(); err != nil {
		t.Fatalf("umount: %v", err)
	}
	return img
}
