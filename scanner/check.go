// Package scanner orchestrates a scan: it applies the format rules, extracts
// the asset safely (package archive), runs every configured Check over the
// result and gathers the findings. It never decides pass or fail: that is
// the policy's job (package policies).
package scanner

import (
	"context"
	"errors"
	"io"
	"io/fs"

	"github.com/assetscan/assetscan"
)

// File is one regular file of the asset, as extracted on disk.
type File struct {
	// Path is the path inside the asset ("lib/a.zip!/x.js").
	Path string
	// DiskPath is where the bytes are on disk, inside the scan's work dir:
	// a regular file this process wrote (the extractor creates nothing
	// else), never a path an upload named. The malware check opens it
	// before it checks its type.
	DiskPath string
	// Size in bytes: what the extraction wrote. The malware check opens
	// each file expecting exactly this size and fails the scan otherwise
	// (files of Target.Files; a FileSource's files are streamed).
	Size int64
	// Layer is the image layer the file came from (container images only).
	Layer string
	// Container is true for a zip-based package file (jar, whl, ...) kept
	// whole for the vulnerability analyzers although its members were
	// also extracted (under Path + "!/") and are listed as files too.
	Container bool
}

// Target is what the checks look at. Checks must treat everything under it
// as hostile and must not write outside the scan's work dir.
type Target struct {
	Kind assetscan.Kind
	// Asset is the downloaded asset file (archive, image tarball, disk image).
	Asset string
	// Root is the directory holding the extracted asset (packages), or,
	// for VM images, the tree diskimage copied out for trivy's analyzers
	// (one directory per file system: "p2/var/lib/dpkg/status"); "" for
	// container images (scanned from their layout). Paths in findings are
	// relative to Root.
	Root string
	// Files lists every regular file extracted under Root, nested archives
	// unpacked. For images it lists the files the image readers extracted.
	Files []File
	// WorkDir is the scan's private scratch directory.
	WorkDir string
	// Sources stream files that are not extracted to disk, such as the
	// files inside a VM disk image. Checks that read every file (malware)
	// read these as well as Files.
	Sources []FileSource
	// RootFS is the image's final file system (container images: layers
	// applied with whiteouts; VM images: the root file system), for checks
	// that look at OS configuration. Nil for packages.
	RootFS fs.FS
	// DiskNames are the partition names of a VM disk (for readers that
	// only read partitions they know by name).
	DiskNames []string
	// Cleanup functions run when the scan ends (open disk images).
	Cleanup []func()
	// Findings are facts established before the checks ran (declared
	// password complexity, unreadable layouts); the scan reports them.
	Findings []assetscan.Finding
	// Identities are the identities of the checks for this scan, by check
	// name (Check.Name), taken once before the checks run.
	Identities map[string]assetscan.Identity
}

// FileSource streams files that are not on disk as such.
type FileSource interface {
	// Walk calls fn for every regular file, in a stable order; r is valid
	// only during the call. An error from fn stops the walk and is
	// returned.
	Walk(ctx context.Context, fn func(f File, r io.Reader) error) error
}

// Result is what one check found.
type Result struct {
	Findings   []assetscan.Finding
	Components []assetscan.Component
	// Detail is a one-line summary for the check run record
	// ("1234 files, 56 MiB").
	Detail string
	// Engines maps engine name to version, recorded on the verdict.
	Engines map[string]string
	// DB is the vulnerability DB matched against, if the check used one.
	DB *assetscan.DBRef
	// OS is the operating system found (images).
	OS *assetscan.OSInfo
	// Coverage, optional, is what the check examined and what not.
	Coverage *assetscan.Coverage
}

// Check is one check run over a target. Run returns an error when the check
// could not run to the end (engine unreachable, DB missing, time-out): the
// scan then never passes. Errors wrapping ErrTransient are retried by the
// queue; others are final.
type Check interface {
	// Name is the check name recorded in the verdict (assetscan.Check*).
	Name() string
	// Run inspects t. It must honour ctx cancellation.
	Run(ctx context.Context, t *Target) (Result, error)
}

// Identifier is implemented by a Check that can say what it runs with:
// its code version, its engine's version and data. Identity is called once
// per scan, before the check runs, and must be cheap (a version round trip
// to an engine at most). A check that does not implement it has an
// unknown identity, and findings made with it are never reused.
type Identifier interface {
	Identity(ctx context.Context) (assetscan.Identity, error)
}

// Version is the version of the scan orchestration code (the format
// facts), recorded in the format check's identity.
const Version = "2"

// ErrTransient marks an error that may go away on retry (an engine or
// service unreachable). Wrap it: fmt.Errorf("dial clamd: %w: %w", ErrTransient, err).
var ErrTransient = errors.New("transient")
