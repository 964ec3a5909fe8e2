package diskimage

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
)

// Options configure OpenWith.
type Options struct {
	// ExportDir, when set, is an empty directory (or one to create) into
	// which Open's single walk copies the files package and secret
	// scanners read (see Wanted), one directory per file system named
	// after its partition, laid out as that file system's root:
	// ExportDir/p2/var/lib/dpkg/status. Source then streams those files
	// from the copies, so every file's content is read from the disk
	// image once. All writes stay inside ExportDir (os.Root).
	ExportDir string
	// MaxExportBytes caps the bytes copied (default 4 GiB). Files past
	// the cap are not copied, and a RuleUnreadable finding says that
	// package and secret scanning did not see them.
	MaxExportBytes int64
}

// Export limits.
const (
	defaultMaxExport = 4 << 30
	// maxExportFile: larger files are not copied (jars, binaries up to it).
	maxExportFile = 256 << 20
	// maxSecretFile: text files copied only for the secret scanner.
	maxSecretFile = 1 << 20
)

// ExportStats describes what Open copied into Options.ExportDir.
type ExportStats struct {
	Files int
	Bytes int64
	// Skipped counts wanted files not copied because of the byte cap.
	Skipped int
}

// Wanted reports whether a regular file at p (slash-separated, relative to
// its file system's root) of size bytes and mode is copied out for the
// package and secret scanners:
//
//   - OS identification and package databases: etc/os-release,
//     usr/lib/os-release, etc/*-release, etc/*_version, etc/apk/*,
//     var/lib/dpkg/status, available, status.d/*, info/*.md5sums and
//     *.list, lib/apk/db/*, var/lib/rpm/*, usr/lib/sysimage/rpm/*,
//     var/lib/rpmmanifest/*;
//   - language manifests and lock files by name (package.json,
//     package-lock.json, yarn.lock, pnpm-lock.yaml, composer.lock,
//     installed.json, Gemfile.lock, *.gemspec, Pipfile.lock, poetry.lock,
//     uv.lock, requirements.txt, pyproject.toml, go.mod, go.sum,
//     Cargo.lock, pom.xml, *gradle.lockfile, packages.lock.json,
//     packages.config, *.deps.json, Podfile.lock, Package.resolved,
//     pubspec.lock, mix.lock, conan.lock, Manifest.toml, conda-meta/*.json),
//     python METADATA/PKG-INFO in *.dist-info and *.egg-info, Java
//     archives (*.jar, *.war, *.ear, *.par, *.jpi, *.hpi);
//   - executables (any x bit), for Go and Rust binaries;
//   - for secrets: every file up to 1 MiB, anywhere, and larger key or
//     credential files by name (id_rsa*, *.pem, *.key, .env, .netrc,
//     credentials, ...).
//
// Larger files that are none of the above (non-executable libraries,
// archives of the distribution, data files) are read by the malware check
// only: a secret hidden in one of them is not seen by the secret check
// (README, "Known limits"). Files over 256 MiB are never copied, nor is
// etc/hostname (trivy would name its results after the image's own
// hostname).
func Wanted(p string, size int64, mode fs.FileMode) bool {
	if size < 0 || size > maxExportFile || p == "etc/hostname" {
		return false
	}
	base := path.Base(p)
	dir := path.Dir(p)
	switch {
	case osFile(p, dir, base), langFile(dir, base):
		return true
	case mode&0o111 != 0:
		return true
	case size <= maxSecretFile:
		// The secret check applies to every text file of the image, the
		// distribution's own included (a key in /usr/share/app/ is a key).
		return true
	case secretFile(p, base):
		return true
	}
	return false
}

func osFile(p, dir, base string) bool {
	switch p {
	case "etc/os-release", "usr/lib/os-release", "etc/lsb-release", "var/lib/dpkg/status", "var/lib/dpkg/available":
		return true
	}
	switch dir {
	case "etc":
		return strings.HasSuffix(base, "-release") || strings.HasSuffix(base, "_version")
	case "var/lib/dpkg/status.d", "lib/apk/db", "etc/apk", "var/lib/rpm", "usr/lib/sysimage/rpm",
		"var/lib/rpmmanifest", "usr/lib/os.release.d":
		return true
	case "var/lib/dpkg/info":
		return strings.HasSuffix(base, ".md5sums") || strings.HasSuffix(base, ".list")
	}
	return false
}

var langNames = map[string]bool{
	"package.json": true, "package-lock.json": true, "npm-shrinkwrap.json": true, "yarn.lock": true,
	"pnpm-lock.yaml": true, "bun.lock": true, "composer.lock": true, "composer.json": true, "installed.json": true,
	"Gemfile.lock": true, "Pipfile.lock": true, "poetry.lock": true, "uv.lock": true, "requirements.txt": true,
	"pyproject.toml": true, "go.mod": true, "go.sum": true, "Cargo.lock": true, "pom.xml": true,
	"packages.lock.json": true, "packages.config": true, "Directory.Packages.props": true, "Podfile.lock": true,
	"Package.resolved": true, "pubspec.lock": true, "mix.lock": true, "conan.lock": true, "Manifest.toml": true,
	"build.sbt.lock": true,
}

func langFile(dir, base string) bool {
	if langNames[base] {
		return true
	}
	ext := path.Ext(base)
	switch ext {
	case ".jar", ".war", ".ear", ".par", ".jpi", ".hpi", ".gemspec":
		return true
	case ".json":
		if strings.HasSuffix(base, ".deps.json") || path.Base(dir) == "conda-meta" {
			return true
		}
	}
	if strings.HasSuffix(base, "gradle.lockfile") || strings.HasSuffix(base, ".egg-info") {
		return true
	}
	d := path.Base(dir)
	return (base == "METADATA" && strings.HasSuffix(d, ".dist-info")) ||
		(base == "PKG-INFO" && strings.HasSuffix(d, ".egg-info"))
}

func secretFile(p, base string) bool {
	switch {
	case strings.HasPrefix(base, "id_rsa"), strings.HasPrefix(base, "id_dsa"), strings.HasPrefix(base, "id_ecdsa"),
		strings.HasPrefix(base, "id_ed25519"), strings.HasSuffix(base, ".pem"), strings.HasSuffix(base, ".key"),
		base == ".env", strings.HasSuffix(base, ".env"), base == ".netrc", base == ".pgpass", base == "credentials",
		base == ".git-credentials", base == ".npmrc", base == ".pypirc", base == ".dockercfg":
		return true
	}
	return false
}

// exporter copies wanted files during Open's walk.
type exporter struct {
	root    *os.Root
	max     int64
	stats   ExportStats
	copies  map[string]string // badKey -> path under root
	skipped string            // first file past the cap
}

func newExporter(opt Options) (*exporter, error) {
	if opt.ExportDir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(opt.ExportDir, 0o750); err != nil {
		return nil, fmt.Errorf("diskimage: export dir: %w", err)
	}
	r, err := os.OpenRoot(opt.ExportDir)
	if err != nil {
		return nil, fmt.Errorf("diskimage: export dir: %w", err)
	}
	max := opt.MaxExportBytes
	if max <= 0 {
		max = defaultMaxExport
	}
	return &exporter{root: r, max: max, copies: map[string]string{}}, nil
}

// export copies file e of file system fsName (index i) from f, if wanted
// and within the cap. Errors are of the export dir (disk full), or wrap
// ErrCorrupt when the file could not be read.
func (x *exporter) export(i int, fsName string, e *entry, f io.Reader) error {
	if !Wanted(e.path, e.size, e.mode) {
		return nil
	}
	if x.stats.Bytes+e.size > x.max {
		if x.stats.Skipped == 0 {
			x.skipped = fsName + ":/" + e.path
		}
		x.stats.Skipped++
		return nil
	}
	name := fsName + "/" + e.path
	if err := x.root.MkdirAll(path.Dir(name), 0o750); err != nil {
		return fmt.Errorf("diskimage: export: %w", err)
	}
	perm := fs.FileMode(0o640)
	if e.mode&0o111 != 0 {
		perm = 0o750
	}
	out, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("diskimage: export: %w", err)
	}
	n, err := io.Copy(out, f)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("diskimage: export: %w", cerr)
	}
	if err != nil {
		_ = x.root.Remove(name)
		return err
	}
	x.stats.Files++
	x.stats.Bytes += n
	x.copies[badKey(i, e.path)] = name
	return nil
}

// countingReaderAt counts the bytes read from the disk image.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// BytesRead returns the bytes read from the disk image file so far (by
// Open and by every read through the Disk since): with Source, about the
// bytes of all files once plus the file systems' metadata once (twice for
// disks of more than 200,000 files, whose Source lists directories again).
func (d *Disk) BytesRead() int64 { return d.cr.n.Load() }

// Export returns what Open copied into Options.ExportDir.
func (d *Disk) Export() ExportStats {
	if d.exp == nil {
		return ExportStats{}
	}
	return d.exp.stats
}
