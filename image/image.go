// Package image reads container image packages: an image exported with
// `docker save` (legacy `manifest.json` + `<id>/layer.tar`, or the
// `blobs/sha256/...` layout newer Docker writes) or an OCI image layout
// (`oci-layout`, `index.json`, `blobs/sha256/<digest>`), packed as a tar or a
// gzipped tar, with gzipped or plain layers.
//
// Every byte of the package is hostile. The outer archive and every layer
// are unpacked with [archive.Extract] (bounded, never writes outside the work
// dir, never creates links). The JSON documents are size-bounded (16 MiB)
// and parsed strictly: one JSON value, valid UTF-8, no duplicate member
// names, sha256 digests only, blob paths that stay inside the unpacked
// archive and name regular files (a layer blob that is a link, as legacy
// docker save writes for a repeated layer, is resolved inside the package
// only, to a regular file whose digest is the layer's diff id; see
// resolveLayerLink); manifest.json, index.json and manifests
// with exact (case-sensitive) member names, the image config with
// go-containerregistry's parser, the one trivy uses, so that both read the
// same diff ids. Blob digests are verified: manifests and config when they
// are read (Open), layers once they are unpacked (ExtractLayers).
//
// A scan of an image package is:
//
//	img, findings, err := image.Open(ctx, asset, workDir, lim)       // nil img: findings say why
//	files, more, err := image.ExtractLayers(ctx, img, workDir, lim)  // every file of every layer
//	root := image.RootFS(img, files, workDir)                         // the final file system
//	// trivy: pkg/fanal/image.NewArchiveImage(img.TrivyInput)
//
// Work dir layout (dir is the argument of Open and ExtractLayers, which may
// be the same directory):
//
//	dir/archive/       the outer archive, unpacked (Image.Dir)
//	dir/trivy/         an OCI image layout written by Open for trivy (Image.TrivyInput)
//	dir/layers/<i>/    layer i unpacked (ExtractLayers), 0 = base
//
// Findings have check [assetscan.CheckFormat] and the rule ids Rule*, or are
// the archive findings of [archive.Extract] (with Layer set for those found
// in a layer). Errors are operational only (disk, cancelled context, bad
// arguments).
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/scanner"
)

// Rule ids of the findings this package reports, all with check
// assetscan.CheckFormat.
const (
	// RuleUnreadable: the package is not a readable container image: not a
	// tar or tar.gz, no or garbled manifest.json / index.json / manifest /
	// config, a blob that is missing, not a regular file or outside the
	// archive (a layer link that leaves the package or names no blob with
	// the layer's diff id), a manifest or config whose digest
	// does not match, zstd-compressed layers (not supported), a layer that
	// is not a tar. Open returns a nil Image with it; ExtractLayers reports
	// it for a layer it cannot unpack.
	RuleUnreadable = "image.unreadable"
	// RuleMultipleImages: the package holds more than one image (several
	// manifest.json entries with different configs or layers, several
	// index.json manifests, or a multi-platform index with more than one
	// platform's image present). A marketplace asset is one image: Open
	// rejects it (nil Image) and says how many it found.
	RuleMultipleImages = "image.multiple_images"
	// RuleLayerDigestMismatch: a layer's content does not hash to the diff
	// id the image config gives for it (or its blob does not hash to the
	// digest it is stored under), or could not be hashed to the end
	// (corrupt). The layer's files are still listed, so they are scanned.
	RuleLayerDigestMismatch = "image.layer_digest_mismatch"
)

// Formats of Image.Format.
const (
	FormatDockerSave = "docker-save"
	FormatOCILayout  = "oci-layout"
)

// maxJSONSize bounds every JSON document read (manifest.json, index.json,
// manifests, configs).
const maxJSONSize = 16 << 20

// Layer is one layer of the image.
type Layer struct {
	// Index is the layer's position, 0 = base.
	Index int
	// DiffID is the "sha256:..." digest of the uncompressed layer, as the
	// config's rootfs.diff_ids gives it (ExtractLayers verifies it).
	DiffID string
	// Digest is the "sha256:..." digest of the blob as stored: from the
	// OCI descriptor or the blobs/sha256/<hex> path it is stored at, or
	// computed by Open for docker-save's <id>/layer.tar (ExtractLayers
	// verifies it).
	Digest string
	// Path is the blob's path on disk, under Dir.
	Path string
}

// Image is an image package, unpacked by Open.
type Image struct {
	// Format is FormatDockerSave or FormatOCILayout. A docker save archive
	// from Docker 25+ holds both a manifest.json and an OCI index.json; it
	// is read through manifest.json (as trivy does) and is "docker-save".
	Format string
	// Dir is the directory the outer archive was unpacked into
	// (<dir>/archive).
	Dir string
	// Manifests is the number of images found in the archive. It is
	// always 1 for an Image Open returns: more is rejected with
	// RuleMultipleImages.
	Manifests int
	// RepoTags are the image's tags: docker-save's RepoTags, or for an OCI
	// layout the io.containerd.image.name annotation (full name) or else
	// org.opencontainers.image.ref.name of the index entry. Informational
	// only: hostile, unvalidated strings.
	RepoTags []string
	// Layers are the image's layers, base first.
	Layers []Layer
	// ConfigPath is the config blob's path on disk, under Dir.
	ConfigPath string
	// TrivyInput is the path to give trivy's
	// pkg/fanal/image.NewArchiveImage: an OCI image layout directory
	// (<dir>/trivy) written by Open whatever the input format, with an
	// index.json and a manifest of our own and the config and layer blobs
	// hard-linked (copied if linking fails) from Dir. trivy thus reads
	// exactly the blobs this package verified and extracts, never the
	// seller's index or manifests. NewArchiveImage splits its argument at
	// the first "@" or ":" (image reference syntax) before opening an OCI
	// layout, so Open refuses a dir whose absolute path contains either.
	// trivy reports no RepoTags for an OCI layout: take them from RepoTags.
	TrivyInput string
	// Other lists the files of the outer archive that are not layer blobs
	// (manifest.json, index.json, manifests, the config, and anything else
	// the seller put beside the image, which no container would ever see).
	// They were shipped: the malware check should scan them too.
	Other []scanner.File
}

// Open unpacks the image package at path (a tar or gzipped tar) into
// dir/archive with archive.Extract and lim (dir is created if needed;
// dir/archive and dir/trivy must not exist), parses and checks its manifest.json or
// index.json, manifest and config, and writes the OCI layout for trivy
// (Image.TrivyInput). Layers are not unpacked (see ExtractLayers), but their
// blobs must be present, regular files inside the archive, and not zstd.
//
// Hostile or unreadable content gives findings (the archive findings of the
// outer archive, RuleUnreadable, RuleMultipleImages) and a nil Image when no
// single readable image could be found; nested archives in the outer archive
// are not unpacked (layer blobs are read as layers instead). The error is
// operational: dir unusable, disk full, ctx cancelled. Whatever happens,
// what was written under dir is the caller's to remove.
func Open(ctx context.Context, path, dir string, lim archive.Limits) (*Image, []assetscan.Finding, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	trivyDir := filepath.Join(absDir, "trivy")
	if strings.ContainsAny(trivyDir, ":@") {
		return nil, nil, fmt.Errorf("image: work dir %s contains ':' or '@', which trivy's archive reader takes for an image reference", absDir)
	}
	if err := lim.Validate(); err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	if err := os.MkdirAll(absDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	archDir := filepath.Join(absDir, "archive")
	if err := os.Mkdir(archDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}

	var findings []assetscan.Finding
	unreadable := func(p, msg string) (*Image, []assetscan.Finding, error) {
		return nil, append(findings, finding(RuleUnreadable, p, "", msg)), nil
	}

	f, err := archive.Detect(path)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	switch f {
	case archive.FormatTar, archive.FormatTarGz:
	case archive.FormatZip:
		return unreadable("", "the package is a zip archive; a container image package must be a tar or tar.gz made by `docker save` (or an OCI image layout)")
	default:
		if isZstdFile(path) {
			return unreadable("", "the package is zstd-compressed, which is not supported; export it with `docker save` as a plain tar or gzip it")
		}
		return unreadable("", "the package is not a tar or tar.gz archive; export the image with `docker save`")
	}

	// Nested archives are not unpacked: layer blobs (<id>/layer.tar,
	// <hex>.tar.gz) must stay blobs. Their "too deep" findings are
	// expected and dropped.
	outer := lim
	outer.MaxDepth = 1
	res, err := archive.Extract(ctx, path, f, archDir, outer)
	if err != nil {
		return nil, nil, fmt.Errorf("image: unpack: %w", err)
	}
	stopped := false
	for _, fd := range res.Findings {
		switch fd.Rule {
		case archive.RuleTooDeep:
			continue
		case archive.RuleBomb, archive.RuleTooManyEntries:
			stopped = true
		}
		findings = append(findings, fd)
	}
	if stopped {
		return unreadable("", "the image package could not be unpacked completely (see the archive findings); it was not read")
	}

	root, err := os.OpenRoot(archDir)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	defer root.Close()

	o := &opener{ctx: ctx, root: root, dir: archDir, pkg: path, pkgFormat: f}
	var img *Image
	switch {
	case o.isFile("manifest.json"):
		img, err = o.dockerSave()
	case o.isFile("index.json"):
		img, err = o.ociLayout()
	default:
		return unreadable("", "the package holds neither a manifest.json (docker save) nor an index.json (OCI image layout) at its root; export the image with `docker save`")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	if o.finding != nil {
		return nil, append(findings, *o.finding), nil
	}
	img.Dir = archDir

	isLayer := make(map[string]bool, len(img.Layers))
	for _, l := range img.Layers {
		isLayer[l.Path] = true
	}
	for _, af := range res.Files {
		if !isLayer[af.DiskPath] {
			img.Other = append(img.Other, scanner.File{Path: af.Path, DiskPath: af.DiskPath, Size: af.Size})
		}
	}

	if err := writeTrivyLayout(trivyDir, img, o.configDigest, o.configBytes, o.layerInfo); err != nil {
		return nil, nil, fmt.Errorf("image: trivy layout: %w", err)
	}
	img.TrivyInput = trivyDir
	return img, findings, nil
}

func finding(rule, p, layer, msg string) assetscan.Finding {
	return assetscan.Finding{
		Check:   assetscan.CheckFormat,
		Rule:    rule,
		Path:    archive.DisplayPath(p),
		Layer:   layer,
		Message: msg,
	}
}

// quote shows a hostile string in a message: bounded, control characters
// escaped.
func quote(s string) string {
	return `"` + archive.DisplayPath(s) + `"`
}

// opener holds the state of one Open call while the image's documents are
// read.
type opener struct {
	ctx  context.Context
	root *os.Root
	dir  string
	// pkg is the package file and pkgFormat its format (tar or tar.gz),
	// read again for its link entries only when a layer blob is missing
	// (see resolveLayerLink).
	pkg       string
	pkgFormat archive.Format
	links     map[string]pkgLink
	// finding, when set, is why the image is unreadable.
	finding *assetscan.Finding

	configDigest string
	configBytes  int64
	// layerInfo is, per layer, the media type for trivy's manifest and the
	// blob size.
	layerInfo []blobInfo
}

type blobInfo struct {
	mediaType string
	size      int64
}

// fail records why the image is unreadable (the first reason wins) and
// returns a nil Image for the caller to return.
func (o *opener) fail(rule, p, msg string) *Image {
	if o.finding == nil {
		f := finding(rule, p, "", msg)
		o.finding = &f
	}
	return nil
}

// isFile reports whether name is a regular file in the archive.
func (o *opener) isFile(name string) bool {
	fi, err := o.root.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}

// blob checks that name (a path from a manifest, "/"-separated, relative
// to the archive root) is a clean relative path naming a regular file in
// the archive, and returns its size. what names the blob in messages.
// ok is false after a finding was recorded.
func (o *opener) blob(name, what string) (size int64, ok bool) {
	if !fs.ValidPath(name) || name == "." || strings.Contains(name, `\`) {
		o.fail(RuleUnreadable, "", fmt.Sprintf("the %s path %s is not a clean relative path inside the package (absolute, \"..\", \"./\" or empty parts); it was not read", what, quote(name)))
		return 0, false
	}
	fi, err := o.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s is missing from the package (links are never followed)", what, quote(name)))
		return 0, false
	case err != nil:
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s cannot be read", what, quote(name)))
		return 0, false
	case !fi.Mode().IsRegular():
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s is not a regular file", what, quote(name)))
		return 0, false
	}
	return fi.Size(), true
}

// readJSON reads name, which must be a regular file of at most
// maxJSONSize bytes holding exactly one valid JSON value (UTF-8, unique
// member names). ok is false after a finding was recorded.
func (o *opener) readJSON(name, what string) ([]byte, bool) {
	size, ok := o.blob(name, what)
	if !ok {
		return nil, false
	}
	if size > maxJSONSize {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s is %d bytes, more than the %d allowed", what, quote(name), size, maxJSONSize))
		return nil, false
	}
	f, err := o.root.Open(name)
	if err != nil {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s cannot be read", what, quote(name)))
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJSONSize+1))
	if err != nil || len(b) > maxJSONSize {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s cannot be read", what, quote(name)))
		return nil, false
	}
	if !validJSON(b) {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the %s %s is not valid JSON (one value, UTF-8, no duplicate names)", what, quote(name)))
		return nil, false
	}
	return b, true
}

// hashFile returns the "sha256:<hex>" digest of the archive file name.
func (o *opener) hashFile(name string) (string, error) {
	f, err := o.root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := copyCtx(o.ctx, h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", archive.DisplayPath(name), err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// magic returns the first bytes of the archive file name.
func (o *opener) magic(name string) ([]byte, error) {
	f, err := o.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 4)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

func isZstdFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 4)
	_, err = io.ReadFull(f, b)
	return err == nil && string(b) == string(zstdMagic)
}

// layers checks the layer blobs (present, regular, not zstd), fills in the
// digests Open must compute, and records what trivy's manifest needs.
// ok is false after a finding was recorded.
func (o *opener) layers(img *Image, rel []string) (bool, error) {
	o.layerInfo = make([]blobInfo, len(rel))
	for i, name := range rel {
		if target, ok, err := o.resolveLayerLink(i, name, img.Layers[i].DiffID); err != nil {
			return false, err
		} else if ok {
			name = target
			img.Layers[i].Path = filepath.Join(o.dir, filepath.FromSlash(target))
		} else if o.finding != nil {
			return false, nil
		}
		size, ok := o.blob(name, fmt.Sprintf("layer %d blob", i))
		if !ok {
			return false, nil
		}
		m, err := o.magic(name)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", archive.DisplayPath(name), err)
		}
		mt := mediaTypeLayer
		switch {
		case len(m) >= 4 && string(m[:4]) == string(zstdMagic):
			o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d (%s) is zstd-compressed, which is not supported; export the image with gzip or uncompressed layers", i, quote(name)))
			return false, nil
		case len(m) >= 2 && string(m[:2]) == string(gzipMagic):
			mt = mediaTypeLayerGzip
		}
		o.layerInfo[i] = blobInfo{mediaType: mt, size: size}
		if img.Layers[i].Digest == "" {
			d, err := o.hashFile(name)
			if err != nil {
				return false, err
			}
			img.Layers[i].Digest = d
		}
	}
	return true, nil
}

// copyCtx copies src to dst, checking ctx between chunks.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
