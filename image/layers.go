package image

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/scanner"
)

// Whiteout marker names (OCI image spec, "Whiteouts"; docker save uses the
// same AUFS names).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Slack allowed, when a gzipped layer is hashed, for the tar stream beyond
// the bytes archive.Extract accounts for: headers (per entry) and the
// end-of-archive padding archive.Extract accepts (16 MiB).
const (
	tarHeaderSlack  = 8 << 10
	tarTrailerSlack = 32 << 20
)

// ExtractLayers unpacks every layer of img, base first, with
// archive.Extract (tar or tar.gz, sniffed) into dir/layers/<index>/ (which
// must not exist), and returns every regular file written as a
// scanner.File: Path is the file's path in the image ("usr/bin/x"; members
// of archives nested in a layer are "lib/a.tar!/x", see archive.Extract),
// Layer the layer's DiffID, DiskPath where it is. Files that a later layer
// deletes (whiteouts) are listed too, with the DiffID of the layer that
// shipped them: they were shipped, and the malware check must see them.
// Empty whiteout markers (".wh.<name>", ".wh..wh..opq") are not listed; a
// marker that carries data (no real tool writes one) is listed, since that
// data was shipped.
//
// lim is one budget for all layers together: each layer is given what the
// layers before it left of MaxExpandedBytes and MaxEntries (the data of
// entries a layer skips counts only within that layer). When the budget
// runs out (archive.RuleBomb, archive.RuleTooManyEntries), the layers
// above are not unpacked. The archive findings of a layer carry its DiffID
// in Layer, and Path relative to the layer root.
//
// Each layer unpacked to the end is then read once more to verify it: the
// uncompressed stream must hash to DiffID and the blob to Digest, else
// RuleLayerDigestMismatch. A layer that is not a tar or tar.gz (zip,
// garbage) gives RuleUnreadable and its blob is listed as a file (so that it
// is scanned as one). The error is operational (disk, ctx, dir).
func ExtractLayers(ctx context.Context, img *Image, dir string, lim archive.Limits) ([]scanner.File, []assetscan.Finding, error) {
	if img == nil {
		return nil, nil, errors.New("image: extract layers: nil image")
	}
	if err := lim.Validate(); err != nil {
		return nil, nil, fmt.Errorf("image: extract layers: %w", err)
	}
	base := filepath.Join(dir, "layers")
	if err := os.MkdirAll(base, 0o750); err != nil {
		return nil, nil, fmt.Errorf("image: extract layers: %w", err)
	}
	var (
		files       []scanner.File
		findings    []assetscan.Finding
		usedBytes   int64
		usedEntries int
	)
	for _, l := range img.Layers {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("image: extract layers: %w", err)
		}
		rel := blobRel(img, l)
		remBytes := lim.MaxExpandedBytes - usedBytes
		remEntries := lim.MaxEntries - usedEntries
		if remBytes <= 0 {
			findings = append(findings, layerArchiveFinding(archive.RuleBomb, l, fmt.Sprintf(
				"the image's layers expand to more than %d bytes in total; layer %d and those above it were not unpacked", lim.MaxExpandedBytes, l.Index)))
			break
		}
		if remEntries <= 0 {
			findings = append(findings, layerArchiveFinding(archive.RuleTooManyEntries, l, fmt.Sprintf(
				"the image's layers have more than %d entries in total; layer %d and those above it were not unpacked", lim.MaxEntries, l.Index)))
			break
		}
		dest := filepath.Join(base, strconv.Itoa(l.Index))
		if err := os.Mkdir(dest, 0o750); err != nil {
			return nil, nil, fmt.Errorf("image: extract layers: %w", err)
		}
		f, err := archive.Detect(l.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("image: layer %d: %w", l.Index, err)
		}
		if f != archive.FormatTar && f != archive.FormatTarGz {
			findings = append(findings, finding(RuleUnreadable, rel, l.DiffID, fmt.Sprintf(
				"layer %d is not a tar or gzipped tar; it was not unpacked (its blob is scanned as a file)", l.Index)))
			fi, err := os.Lstat(l.Path)
			if err != nil {
				return nil, nil, fmt.Errorf("image: layer %d: %w", l.Index, err)
			}
			files = append(files, scanner.File{Path: rel, DiskPath: l.Path, Size: fi.Size(), Layer: l.DiffID})
			continue
		}
		sub := lim
		sub.MaxExpandedBytes = remBytes
		sub.MaxEntries = remEntries
		res, err := archive.Extract(ctx, l.Path, f, dest, sub)
		if err != nil {
			return nil, nil, fmt.Errorf("image: layer %d: %w", l.Index, err)
		}
		usedBytes += res.ExpandedBytes
		usedEntries += res.Entries
		stopped := false
		for _, fd := range res.Findings {
			fd.Layer = l.DiffID
			switch fd.Rule {
			case archive.RuleBomb:
				stopped = true
				if strings.HasPrefix(fd.Message, "the package expands to more than") {
					fd.Message = fmt.Sprintf("the image's layers expand to more than %d bytes in total; extraction stopped", lim.MaxExpandedBytes)
				}
			case archive.RuleTooManyEntries:
				stopped = true
				if strings.HasPrefix(fd.Message, "the package has more than") {
					fd.Message = fmt.Sprintf("the image's layers have more than %d entries in total; extraction stopped", lim.MaxEntries)
				}
			}
			findings = append(findings, fd)
		}
		for _, af := range res.Files {
			if af.Size == 0 && isWhiteout(af.Path) {
				continue
			}
			files = append(files, scanner.File{Path: af.Path, DiskPath: af.DiskPath, Size: af.Size, Layer: l.DiffID})
		}
		if stopped {
			break
		}
		maxBytes := remBytes + int64(res.Entries)*tarHeaderSlack + tarTrailerSlack
		fds, err := verifyLayer(ctx, l, rel, f == archive.FormatTarGz, maxBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("image: layer %d: %w", l.Index, err)
		}
		findings = append(findings, fds...)
	}
	return files, findings, nil
}

// blobRel is the layer blob's path inside the outer archive, for findings.
func blobRel(img *Image, l Layer) string {
	if r, err := filepath.Rel(img.Dir, l.Path); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return ""
}

func layerArchiveFinding(rule string, l Layer, msg string) assetscan.Finding {
	return assetscan.Finding{Check: assetscan.CheckArchive, Rule: rule, Layer: l.DiffID, Message: msg}
}

// isWhiteout reports whether p, a path archive.Extract reported for a
// layer, is a whiteout marker: a ".wh." name that is not inside a nested
// archive.
func isWhiteout(p string) bool {
	return !strings.Contains(p, "!/") && strings.HasPrefix(path.Base(p), whiteoutPrefix)
}

// verifyLayer hashes the layer blob (Digest) and its uncompressed stream
// (DiffID), reading at most maxBytes uncompressed bytes.
func verifyLayer(ctx context.Context, l Layer, rel string, gz bool, maxBytes int64) ([]assetscan.Finding, error) {
	f, err := os.Open(l.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blobHash := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(f, blobHash), 64<<10)
	diffHash := sha256.New()
	problem := ""
	var r io.Reader = br
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			if isIOError(err) {
				return nil, err
			}
			problem = fmt.Sprintf("its gzip stream is corrupt (%v)", err)
		} else {
			defer zr.Close()
			r = zr
		}
	}
	if problem == "" {
		n, err := copyCtx(ctx, diffHash, io.LimitReader(r, maxBytes+1))
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && isIOError(err):
			return nil, err
		case err != nil:
			problem = fmt.Sprintf("its data is corrupt (%v)", err)
		case n > maxBytes:
			problem = fmt.Sprintf("it decompresses to more than %d bytes, far more than its files account for", maxBytes)
		}
	}
	// The rest of the blob, for its digest.
	if _, err := copyCtx(ctx, io.Discard, br); err != nil {
		return nil, err
	}
	if problem != "" {
		return []assetscan.Finding{finding(RuleLayerDigestMismatch, rel, l.DiffID, fmt.Sprintf(
			"layer %d could not be verified against its diff id %s: %s", l.Index, l.DiffID, problem))}, nil
	}
	var out []assetscan.Finding
	if got := "sha256:" + hex.EncodeToString(diffHash.Sum(nil)); got != l.DiffID {
		out = append(out, finding(RuleLayerDigestMismatch, rel, l.DiffID, fmt.Sprintf(
			"layer %d's content hashes to %s, but the image config gives its diff id as %s; the layer was altered or does not belong to this image", l.Index, got, l.DiffID)))
	}
	if got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil)); got != l.Digest {
		out = append(out, finding(RuleLayerDigestMismatch, rel, l.DiffID, fmt.Sprintf(
			"layer %d's blob hashes to %s, but it is stored as %s; the layer was altered", l.Index, got, l.Digest)))
	}
	return out, nil
}

// isIOError reports whether err is an operating system error rather than a
// complaint about the data.
func isIOError(err error) bool {
	var errno syscall.Errno
	return errors.As(err, &errno)
}
