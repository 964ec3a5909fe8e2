package diskimage

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Open's walk copies what the package and secret scanners read, under
// the partition's name; Source then streams those files from the copies,
// so exporting reads no byte of the image more than scanning alone.
func TestExport(t *testing.T) {
	files, ext4, gpt := base(t)
	for _, c := range []struct{ name, img, fs string }{{"gpt", gpt, "p1"}, {"bare", ext4, "disk"}} {
		t.Run(c.name, func(t *testing.T) {
			plain, _ := mustOpen(t, c.img)
			walkAll(t, plain.Source())
			dir := filepath.Join(t.TempDir(), "rootfs")
			d, fl, err := OpenWith(context.Background(), c.img, Options{ExportDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if len(fl) != 0 {
				t.Fatalf("findings: %+v", fl)
			}
			for _, p := range []string{"var/lib/dpkg/status", "usr/lib/os-release", "etc/passwd", "etc/shadow", "etc/ssh/sshd_config", "etc/debian_version"} {
				b, err := os.ReadFile(filepath.Join(dir, c.fs, p))
				if err != nil || string(b) != files[p] {
					t.Errorf("export %s: %v (%d bytes)", p, err, len(b))
				}
			}
			// Every file up to 1 MiB is copied for the secret check, the
			// distribution's own included.
			if _, err := os.Stat(filepath.Join(dir, c.fs, "usr/share/doc/big.bin")); err != nil {
				t.Errorf("big.bin not exported for the secret check: %v", err)
			}
			afterOpen := d.BytesRead()
			got := walkAll(t, d.Source())
			for p, want := range files {
				if g, ok := got[p]; ok && g != want {
					t.Errorf("%s: content differs", p)
				}
			}
			read := d.BytesRead()
			checkDebian(t, d, files, "")
			st := d.Export()
			var total int64
			fs.WalkDir(os.DirFS(dir), ".", func(p string, e fs.DirEntry, err error) error {
				if err == nil && e.Type().IsRegular() {
					i, _ := e.Info()
					total += i.Size()
				}
				return nil
			})
			if st.Files == 0 || st.Bytes != total || st.Skipped != 0 {
				t.Errorf("stats %+v, %d bytes on disk", st, total)
			}
			_, fileBytes := d.Stats()
			t.Logf("files %d bytes; read from the image: %d without export, %d with (%d by Open, exported %d files, %d bytes)",
				fileBytes, plain.BytesRead(), read, afterOpen, st.Files, st.Bytes)
			// After Open, each file's content is read once and nothing else:
			// Source streams the exported files from their copies and the
			// others from the image, without listing a directory again.
			if read-afterOpen != fileBytes-st.Bytes {
				t.Errorf("Source read %d bytes of the image, want the %d content bytes not exported", read-afterOpen, fileBytes-st.Bytes)
			}
			if read > plain.BytesRead() {
				t.Errorf("export made the scan read more of the image: %d > %d", read, plain.BytesRead())
			}
		})
	}
}

// The byte cap is a finding that names the first file not copied.
func TestExportCap(t *testing.T) {
	_, _, gpt := base(t)
	d, fl, err := OpenWith(context.Background(), gpt, Options{ExportDir: t.TempDir(), MaxExportBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(fl) != 1 || !hasRule(fl, RuleUnreadable, "", "not copied out for package and secret scanning") {
		t.Errorf("findings: %+v", fl)
	}
	if st := d.Export(); st.Skipped == 0 || st.Bytes > 1000 {
		t.Errorf("stats %+v", st)
	}
}

func TestWanted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    string
		size int64
		mode fs.FileMode
		want bool
	}{
		{"var/lib/dpkg/status", 1 << 20, 0o644, true},
		{"var/lib/dpkg/status.d/base", 100, 0o644, true},
		{"var/lib/dpkg/info/libc6.md5sums", 100, 0o644, true},
		{"var/lib/dpkg/info/libc6.postinst", 100, 0o644, true}, // every small file, for the secret check
		{"lib/apk/db/installed", 100, 0o644, true},
		{"usr/lib/sysimage/rpm/rpmdb.sqlite", 50 << 20, 0o644, true},
		{"etc/alpine-release", 10, 0o644, true},
		{"srv/app/package-lock.json", 2 << 20, 0o644, true},
		{"usr/lib/python3/dist-packages/requests-2.0.dist-info/METADATA", 100, 0o644, true},
		{"opt/app/lib/log4j-core-2.14.jar", 2 << 20, 0o644, true},
		{"usr/local/bin/app", 30 << 20, 0o755, true},
		{"usr/share/doc/x/README", 100, 0o644, true},
		{"usr/lib/x86_64-linux-gnu/libc.so.6", 2 << 20, 0o644, false},
		{"home/u/.ssh/id_ed25519", 400, 0o600, true},
		{"usr/share/x/server.key", 400, 0o644, true},
		{"etc/big.conf", 2 << 20, 0o644, false},
		{"etc/hostname", 10, 0o644, false},
		{"var/cache/apt/pkgcache.bin", 100, 0o644, true},
		{"usr/share/app/data.bin", 2 << 20, 0o644, false}, // large, not executable, not a key by name
		{"opt/huge.jar", 300 << 20, 0o644, false},
	} {
		if got := Wanted(c.p, c.size, c.mode); got != c.want {
			t.Errorf("Wanted(%s, %d, %v) = %v", c.p, c.size, c.mode, got)
		}
	}
}
