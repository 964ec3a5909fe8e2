package diskimage

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/scanner/accounts"
)

// windowsRoot is a tiny Windows installation: registry hives (the SAM is
// normal), a setup answer file with the administrator's password, one
// without a password, a certificate store and a program.
func windowsRoot() map[string]string {
	return map[string]string{
		"Windows/System32/config/SYSTEM":   "regf system hive",
		"Windows/System32/config/SAM":      "regf sam hive",
		"Windows/System32/config/SOFTWARE": "regf software hive",
		"Windows/Panther/Unattend.xml": `<?xml version="1.0"?><unattend xmlns="urn:schemas-microsoft-com:unattend">
<settings pass="oobeSystem"><component name="Microsoft-Windows-Shell-Setup"><UserAccounts>
<AdministratorPassword><Value>UABhAHMAcwB3AG8AcgBkAA==</Value><PlainText>false</PlainText></AdministratorPassword>
</UserAccounts></component></settings></unattend>`,
		"Windows/System32/Sysprep/unattend.xml":  `<unattend><UserAccounts><AdministratorPassword><Value></Value></AdministratorPassword></UserAccounts></unattend>`,
		"Users/Administrator/Desktop/server.pfx": "0\x82\x0a\x00 pkcs12",
		"Program Files/App/app.exe":              "MZ\x90\x00 a program",
		"Program Files/App/readme.txt":           "hello",
	}
}

func TestNTFSWindows(t *testing.T) {
	files := windowsRoot()
	img := disktest.NTFS(t, "", files, "16M")
	disk := disktest.WithGPT(t, img, "Basic data partition")
	d, fl := mustOpen(t, disk)
	if len(fl) != 0 {
		t.Fatalf("findings: %+v", fl)
	}
	if !d.Windows() || d.RootFS() == nil {
		t.Fatalf("Windows %v", d.Windows())
	}
	if fss := d.FileSystems(); len(fss) != 1 || fss[0].Type != "ntfs" || fss[0].Name != "p1" {
		t.Fatalf("FileSystems %+v", fss)
	}
	got := walkAll(t, d.Source())
	for p, want := range files {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	for p := range got {
		if _, ok := files[p]; !ok {
			t.Errorf("walked unexpected %s", p)
		}
	}
	creds := d.WindowsCredentials()
	want := map[string]string{
		"Windows/Panther/Unattend.xml":           RuleWindowsAnswerPassword,
		"Users/Administrator/Desktop/server.pfx": RuleWindowsKeyFile,
	}
	if len(creds) != len(want) {
		t.Errorf("credentials: %+v", creds)
	}
	for _, f := range creds {
		if want[f.Path] != f.Rule || (f.Check != assetscan.CheckAccount && f.Secret == nil) {
			t.Errorf("credential finding %+v", f)
		}
	}
}

// NTFS without a Windows installation (a data disk) is not an OS image.
func TestNTFSWithoutWindows(t *testing.T) {
	img := disktest.NTFS(t, "", map[string]string{"data/a.txt": "a"}, "16M")
	d, fl := mustOpen(t, img)
	if d.RootFS() != nil || !hasRule(fl, RuleUnreadable, "", "no operating system root") {
		t.Errorf("findings: %+v", fl)
	}
}

// Random damage to the MFT and the boot sector never crashes or hangs.
func TestCorruptNTFSNoPanic(t *testing.T) {
	img := disktest.NTFS(t, "", windowsRoot(), "16M")
	b := make([]byte, 512)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(b, 0)
	f.Close()
	cluster := int64(binary.LittleEndian.Uint16(b[11:])) * int64(b[13])
	mft := int64(binary.LittleEndian.Uint64(b[48:])) * cluster
	fuzzImage(t, img, [][2]int64{{0, 512}, {mft, 64 << 10}, {mft, 1 << 20}}, 200)
}

// A Windows image in a VHDX through the Preparer: the credential findings
// come with the preparation, every file is streamed, and the Linux account
// check runs on the Windows root without error (and finds nothing).
func TestNTFSWindowsPreparer(t *testing.T) {
	files := windowsRoot()
	vhdx := disktest.Convert(t, disktest.WithGPT(t, disktest.NTFS(t, "", files, "16M"), "Basic data partition"), "vhdx")
	tg := &scanner.Target{Kind: assetscan.KindVMImage, WorkDir: t.TempDir()}
	defer func() {
		for _, c := range tg.Cleanup {
			c()
		}
	}()
	fl, err := Preparer{}.Prepare(context.Background(), vhdx, tg, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Asset == "" || tg.RootFS == nil || tg.Root == "" || len(tg.Sources) != 1 {
		t.Fatalf("not prepared: %+v", fl)
	}
	if len(fl) != 2 || !hasRule(fl, RuleWindowsAnswerPassword, "Windows/Panther/Unattend.xml", "") {
		t.Errorf("findings: %+v", fl)
	}
	if got := walkAll(t, tg.Sources[0]); len(got) != len(files) {
		t.Errorf("walked %d files, want %d", len(got), len(files))
	}
	res, err := accounts.Check{}.Run(context.Background(), tg)
	if err != nil || len(res.Findings) != 0 {
		t.Errorf("accounts on Windows: %v, %+v", err, res.Findings)
	}
}
