package diskimage

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/scanner"
)

// Preparer is the scanner.Preparer of VM disk images: it converts the
// image to a sparse raw file when needed (safely, see Prepare), opens its
// partitions and file systems, and sets up the Target. The disk is read
// once: Open's walk copies the files package and secret scanners need
// (see Wanted) to t.WorkDir/rootfs/<partition>/..., which becomes t.Root
// (trivy scans each partition's tree there as a root file system, see
// scanner/trivy Engine.ScanRootFS); the malware check streams every file
// of every readable file system (t.Sources, the copied ones from their
// copies); the account check reads the OS root file system (t.RootFS).
// An image that cannot be converted or read leaves t.Asset empty: its
// findings fail it.
type Preparer struct {
	Config ConvertConfig
	// MaxExportBytes caps the bytes copied for package and secret
	// scanning (default 4 GiB; see Options).
	MaxExportBytes int64
}

var _ scanner.Preparer = Preparer{}

// Prepare implements scanner.Preparer.
func (p Preparer) Prepare(ctx context.Context, asset string, t *scanner.Target, _ archive.Limits) ([]assetscan.Finding, error) {
	readPath, _, findings, err := Prepare(ctx, asset, t.WorkDir, p.Config)
	if err != nil || readPath == "" {
		return findings, err
	}
	exportDir := filepath.Join(t.WorkDir, "rootfs")
	d, f2, err := OpenWith(ctx, readPath, Options{ExportDir: exportDir, MaxExportBytes: p.MaxExportBytes})
	findings = append(findings, f2...)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return findings, nil
		}
		return findings, err
	}
	t.Cleanup = append(t.Cleanup, func() { _ = d.Close() })
	if d.RootFS() == nil || len(d.FileSystems()) == 0 {
		return findings, nil // reported as image.unreadable
	}
	findings = append(findings, d.WindowsCredentials()...)
	t.RootFS = d.RootFS()
	t.Sources = append(t.Sources, d.Source())
	for _, fs := range d.FileSystems() {
		if fs.Label != "" {
			t.DiskNames = append(t.DiskNames, fs.Label)
		}
	}
	t.Root = exportDir
	t.Asset = readPath
	return findings, nil
}
