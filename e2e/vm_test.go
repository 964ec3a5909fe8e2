package e2e

import (
	"crypto/sha256"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/scanner/clamav"
)

// TestVMImages: private VM disk images through the API — formats read
// directly or converted safely, host vulnerabilities, preset accounts,
// malware inside the file system, and the layouts we refuse.
func TestVMImages(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	dir := t.TempDir()

	debian := disktest.MinimalDebianRoot()
	clean := maps.Clone(debian)
	clean["var/lib/dpkg/status"] = strings.NewReplacer("9.2p1-2+deb12u2", "9.2p1-2+deb12u3", "2.36-9+deb12u1", "2.36-9+deb12u3").Replace(debian["var/lib/dpkg/status"])
	if clean["var/lib/dpkg/status"] == debian["var/lib/dpkg/status"] {
		t.Fatal("fixture: package versions not replaced")
	}
	preset := maps.Clone(clean)
	preset["etc/shadow"] = "root:" + rootPresetHash + ":19800:0:99999:7:::\ndebian:!:19800:0:99999:7:::\n"
	preset["root/.ssh/authorized_keys"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMx seller@laptop\n"
	infected := maps.Clone(clean)
	infected["opt/app/helper.bin"] = string(clamav.EICAR())

	vulnRaw := disktest.Ext4(t, dir, debian, "16M")
	cleanRaw := disktest.Ext4(t, dir, clean, "16M")
	sentinel := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(sentinel, []byte("worker's own file"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := sha256.Sum256([]byte("worker's own file"))

	cases := []struct {
		name, key, path string
		want            assetscan.Outcome
		rules           []string
	}{
		{"raw ext4 with vulnerable packages", "vm/vuln.raw", vulnRaw, assetscan.Fail, []string{"vulnerability.cvss"}},
		{"GPT partition named rootfs (trivy skips such names)", "vm/gpt.raw", disktest.WithGPT(t, vulnRaw, "rootfs"), assetscan.Fail, []string{"vulnerability.cvss"}},
		{"MBR partition", "vm/mbr.raw", disktest.WithMBR(t, vulnRaw, "83"), assetscan.Fail, []string{"vulnerability.cvss"}},
		{"clean qcow2", "vm/clean.qcow2", disktest.Convert(t, cleanRaw, "qcow2"), assetscan.Pass, nil},
		{"clean streamOptimized VMDK", "vm/clean.vmdk", disktest.Convert(t, cleanRaw, "vmdk", "-o", "subformat=streamOptimized"), assetscan.Pass, nil},
		{"clean VHDX", "vm/clean.vhdx", disktest.Convert(t, cleanRaw, "vhdx"), assetscan.Pass, nil},
		{"clean VDI", "vm/clean.vdi", disktest.Convert(t, cleanRaw, "vdi"), assetscan.Pass, nil},
		{"preset root password and login key", "vm/preset.raw", disktest.Ext4(t, dir, preset, "16M"), assetscan.Fail,
			[]string{"account.preset_password", "account.weak_password", "account.preset_key"}},
		{"malware in the file system", "vm/infected.qcow2", disktest.Convert(t, disktest.Ext4(t, dir, infected, "16M"), "qcow2"), assetscan.Fail, []string{"malware.detected"}},
		{"qcow2 with a backing file on the worker's disk", "vm/backing.qcow2", disktest.QCOW2WithBacking(t, sentinel), assetscan.Fail, []string{"image.external_reference"}},
		{"LVM", "vm/lvm.raw", disktest.WithMBR(t, cleanRaw, "8e"), assetscan.Fail, []string{"image.unreadable"}},
		{"no file system", "vm/garbage.raw", writeGarbage(t, dir), assetscan.Fail, []string{"image.unreadable"}},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		s.uploadFile(c.key, c.path)
		code, r := s.submitRaw(map[string]any{"asset_id": "vm-" + strings.TrimSuffix(filepath.Base(c.key), filepath.Ext(c.key)) + "-" + filepath.Ext(c.key)[1:],
			"seller_id": "seller-1", "kind": "vm-image", "bucket": s.uploads, "key": c.key})
		if code != 202 {
			t.Fatalf("submit %s: %d %+v", c.key, code, r)
		}
		ids[i] = r.ScanID
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := s.wait(ids[i], 4*time.Minute)
			if v.Verdict != c.want {
				t.Fatalf("verdict %s (%s), want %s; findings %+v", v.Verdict, v.Reason, c.want, v.Findings)
			}
			for _, r := range c.rules {
				if !hasRule(v, r) {
					t.Errorf("rule %s missing: %s", r, ruleList(v))
				}
			}
			if c.want == assetscan.Fail && strings.HasPrefix(c.key, "vm/vuln") {
				if findVuln(v, "CVE-2023-4911") == nil {
					t.Errorf("glibc host vulnerability not reported")
				}
			}
		})
	}
	after, _ := os.ReadFile(sentinel)
	if sha256.Sum256(after) != before {
		t.Error("the backing file on the worker's disk changed")
	}
}

func writeGarbage(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "garbage.raw")
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
