package hygiene

// End-to-end-ish tests: the check over the root file system of a generated
// ext4 raw disk (mke2fs -d, read by diskimage) and of a docker save tarball
// (read by image), the way the scanner prepares them.

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/diskimage"
	"github.com/assetscan/assetscan/diskimage/disktest"
	"github.com/assetscan/assetscan/image"
	"github.com/assetscan/assetscan/scanner"
)

// dirtyFiles break every rule the check emits (on top of cleanImage).
func dirtyFiles() map[string]string {
	return map[string]string{
		"root/.bash_history":                       "sudo -i\n",
		"home/ubuntu/.python_history":              "import os\n",
		"etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n",
		"etc/ssh/sshd_config":                      "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nPasswordAuthentication no\n",
		"etc/shadow":                               "root:" + sha512Hash + ":19000:0:99999:7:::\nubuntu:!:19000::::::\n",
		"root/.ssh/authorized_keys":                pubKey + "\n",
		"var/log/cloud-init.log":                   "boot\n",
		"var/log/auth.log.1":                       "x\n",
		"var/log/wtmp":                             "\x07\x00\x00\x00" + strings.Repeat("\x00", 380),
		"etc/machine-id":                           "0123456789abcdef0123456789abcdef\n",
		"home/ubuntu/.git-credentials":             "https://u:" + secretToken + "@example.com\n",
		"root/.docker/config.json":                 `{"auths":{"r":{"auth":"dTpw"}}}`,
	}
}

var dirtyWant = []string{
	"hygiene.log_files var/log/auth.log.1",
	"hygiene.log_files var/log/cloud-init.log",
	"hygiene.log_files var/log/wtmp",
	"hygiene.machine_id etc/machine-id",
	"hygiene.root_login etc/shadow",
	"hygiene.root_login etc/ssh/sshd_config",
	"hygiene.root_login root/.ssh/authorized_keys",
	"hygiene.shell_history home/ubuntu/.python_history",
	"hygiene.shell_history root/.bash_history",
	"hygiene.ssh_password_auth etc/ssh/sshd_config.d/50-cloud-init.conf",
	"hygiene.temp_credentials home/ubuntu/.git-credentials",
	"hygiene.temp_credentials root/.docker/config.json",
}

func runCheck(t *testing.T, tg *scanner.Target) []string {
	t.Helper()
	res, err := New(Options{}).Run(context.Background(), tg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFindings(t, res.Findings)
	return summary(res.Findings)
}

func TestExt4Image(t *testing.T) {
	t.Parallel()
	dirty := cleanImage()
	maps.Copy(dirty, dirtyFiles())
	delete(dirty, "usr/bin/cloud-init")
	delete(dirty, "etc/cloud/cloud.cfg")
	clean := cleanImage()
	// .bash_history -> /dev/null keeps history empty; a link out of the
	// file system stays inside it.
	clean["root/.bash_history"] = disktest.Symlink("/dev/null")
	clean["root/.netrc"] = disktest.Symlink("../../../../../etc/hostname")
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"dirty", dirty, append(slices.Clone(dirtyWant), "hygiene.no_cloud_init etc/cloud/cloud.cfg")},
		{"clean", clean, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := disktest.Ext4(t, "", tc.files, "64M")
			tg := &scanner.Target{Kind: assetscan.KindVMImage, WorkDir: t.TempDir()}
			t.Cleanup(func() {
				for _, c := range tg.Cleanup {
					c()
				}
			})
			if _, err := (diskimage.Preparer{}).Prepare(context.Background(), img, tg, archive.DefaultLimits()); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if tg.RootFS == nil {
				t.Fatal("no root file system")
			}
			got := runCheck(t, tg)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// dockerSave writes a docker save tarball (legacy layout) of a one-layer
// image holding files, and returns its path.
func dockerSave(t *testing.T, files map[string]string) string {
	t.Helper()
	layerFiles := map[string][]byte{}
	for n, c := range files {
		if !strings.HasSuffix(n, "/") {
			layerFiles[n] = []byte(c)
		}
	}
	entries := archivetest.Files(layerFiles)
	entries = append(entries, archivetest.Entry{Name: "var/log/journal/", Type: tar.TypeDir, Mode: 0o755})
	layer, err := archivetest.Bytes(archive.FormatTar, entries)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/usr/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + sum(layer)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	layerName := strings.Repeat("a", 64) + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{"Config": sum(cfg) + ".json", "RepoTags": []string{"acme/app:1.0"}, "Layers": []string{layerName}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := archivetest.WriteTar(p, map[string][]byte{
		"manifest.json": manifest, sum(cfg) + ".json": cfg, layerName: layer,
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerSaveImage(t *testing.T) {
	t.Parallel()
	dirty := cleanImage()
	maps.Copy(dirty, dirtyFiles())
	delete(dirty, "usr/bin/cloud-init") // no agent: not a finding in a container image
	delete(dirty, "etc/cloud/cloud.cfg")
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"dirty", dirty, dirtyWant},
		{"clean", cleanImage(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tar := dockerSave(t, tc.files)
			tg := &scanner.Target{Kind: assetscan.KindContainerImage, WorkDir: t.TempDir()}
			if _, err := (image.Preparer{}).Prepare(context.Background(), tar, tg, archive.DefaultLimits()); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if tg.RootFS == nil {
				t.Fatal("no root file system")
			}
			got := runCheck(t, tg)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
