package trivy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/diskimage"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/scanner"
)

// A Debian and an Alpine root on every common layout, read once by
// diskimage and scanned by ScanRootFS: each gives the CVE of its
// vulnerable package, named by partition and package database.
func TestScanRootFSLayouts(t *testing.T) {
	roots := []struct {
		name, cve, pkg, db string
		files              map[string]string
	}{
		{"debian", "CVE-2024-6387", "openssh-server", "var/lib/dpkg/status", disktest.MinimalDebianRoot()},
		{"alpine", "CVE-2022-48174", "busybox", "lib/apk/db/installed", disktest.MinimalAlpineRoot()},
	}
	layouts := []struct {
		name string
		part string
		disk func(t *testing.T, files map[string]string) string
	}{
		{"gpt", "p1", func(t *testing.T, f map[string]string) string {
			return disktest.WithGPT(t, disktest.Ext4(t, "", f, "16M"), "root")
		}},
		{"mbr-primary", "p1", func(t *testing.T, f map[string]string) string {
			return disktest.WithMBR(t, disktest.Ext4(t, "", f, "16M"), "83")
		}},
		{"mbr-logical-third", "p7", func(t *testing.T, f map[string]string) string {
			return disktest.WithLogical(t, disktest.Ext4(t, "", f, "16M"))
		}},
		{"ext4-inline-data", "disk", func(t *testing.T, f map[string]string) string {
			return disktest.Ext4(t, "", f, "16M", "-O", "inline_data", "-I", "1024")
		}},
		{"xfs", "disk", func(t *testing.T, f map[string]string) string {
			return disktest.XFS(t, "", f, "300M")
		}},
	}
	for _, r := range roots {
		for _, l := range layouts {
			t.Run(r.name+"/"+l.name, func(t *testing.T) {
				disk := l.disk(t, r.files)
				dir := filepath.Join(t.TempDir(), "rootfs")
				d, fl, err := diskimage.OpenWith(context.Background(), disk, diskimage.Options{ExportDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				for _, f := range fl {
					if f.Path != "p1" && f.Path != "p5" && f.Path != "p6" { // the empty partitions of the logical layout
						t.Errorf("finding %+v", f)
					}
				}
				res, err := testEngine.ScanRootFS(context.Background(), dir)
				if err != nil {
					t.Fatal(err)
				}
				v := findVuln(res, r.cve, r.pkg)
				if v == nil {
					t.Fatalf("no %s for %s: %+v", r.cve, r.pkg, res.Findings)
				}
				if want := l.part + ":/" + r.db; v.Path != want {
					t.Errorf("path %q, want %q", v.Path, want)
				}
				if res.OS == nil || res.OS.Family != r.name {
					t.Errorf("OS %+v", res.OS)
				}
				for _, f := range res.Findings {
					if strings.Contains(f.Path, "tmp") || strings.Contains(f.Path, "rootfs") {
						t.Errorf("worker path leaked: %q", f.Path)
					}
				}
			})
		}
	}
}

// The whole VM path: the diskimage Preparer converts a qcow2, reads it
// once and copies what trivy needs; the check scans that tree.
func TestVMCheckThroughPreparer(t *testing.T) {
	files := disktest.MinimalDebianRoot()
	files["opt/app/package-lock.json"] = lodashLock
	files["home/debian/.ssh/id_rsa"] = testRSAKey
	q := disktest.Convert(t, disktest.WithLogical(t, disktest.Ext4(t, "", files, "16M")), "qcow2")
	work := t.TempDir()
	tg := &scanner.Target{Kind: assetscan.KindVMImage, WorkDir: work}
	defer func() {
		for _, c := range tg.Cleanup {
			c()
		}
	}()
	fl, err := diskimage.Preparer{}.Prepare(context.Background(), q, tg, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Asset == "" || tg.Root == "" {
		t.Fatalf("not prepared: %+v", fl)
	}
	res, err := testEngine.Check().Run(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if v := findVuln(res, "CVE-2024-6387", "openssh-server"); v == nil || v.Path != "p7:/var/lib/dpkg/status" {
		t.Errorf("openssh: %+v", v)
	}
	if v := findVuln(res, "CVE-2019-10744", "lodash"); v == nil || v.Path != "p7:/opt/app/package-lock.json" {
		t.Errorf("lodash: %+v", v)
	}
	secret := false
	for _, f := range res.Findings {
		if f.Check == assetscan.CheckSecret && f.Path == "p7:/home/debian/.ssh/id_rsa" {
			secret = true
		}
	}
	if !secret {
		t.Errorf("no secret finding for the private key: %+v", res.Findings)
	}
}
