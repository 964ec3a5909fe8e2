package image

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/assetscan/assetscan/archive"
)

// Legacy docker save (Docker 1.12 until the OCI-layout export) writes a
// layer that repeats an earlier one as <id>/layer.tar, a relative symlink
// to the identical <other-id>/layer.tar in the same archive.
// archive.Extract never creates links, so such a layer blob is missing
// from the unpacked archive. resolveLayerLink resolves it inside the
// archive only, to a regular file whose digest is the layer's diff id.

// pkgLink is a link entry of the package.
type pkgLink struct {
	target string
	hard   bool
}

const (
	maxLinkHops     = 8
	maxPkgHeaders   = 1 << 20
	maxLinkEntries  = 1 << 16
	maxLinkTargetSz = 4096
)

// resolveLayerLink returns the archive path a missing layer blob name
// links to. ok is false when name is present (nothing to resolve) or is no
// link (o.blob reports it missing), or after a finding was recorded: a
// link that leaves the archive, a chain of links, a target that is not a
// regular file of the archive, or a target whose content does not hash to
// diffID (or diffID unknown).
func (o *opener) resolveLayerLink(i int, name, diffID string) (target string, ok bool, err error) {
	if !fs.ValidPath(name) || name == "." {
		return "", false, nil // o.blob reports it
	}
	if _, err := o.root.Lstat(name); !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return "", false, nil
	}
	if o.links == nil {
		if o.links, err = readPkgLinks(o); err != nil {
			return "", false, err
		}
	}
	cur := name
	for hop := 0; ; hop++ {
		l, isLink := o.links[cur]
		if !isLink {
			if hop == 0 {
				return "", false, nil
			}
			break
		}
		if hop >= maxLinkHops {
			o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d blob %s is a chain of more than %d links; it was not read", i, quote(name), maxLinkHops))
			return "", false, nil
		}
		next := l.target
		if !l.hard { // a symlink is relative to its own directory; a hard link names an archive path
			if strings.HasPrefix(next, "/") {
				o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d blob %s is a link to the absolute path %s, outside the package; it was not read", i, quote(name), quote(l.target)))
				return "", false, nil
			}
			next = path.Join(path.Dir(cur), next)
		}
		next = path.Clean(strings.TrimPrefix(next, "./"))
		if next == ".." || strings.HasPrefix(next, "../") || next == "." || !fs.ValidPath(next) {
			o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d blob %s is a link to %s, outside the package; links leaving the package are never followed", i, quote(name), quote(l.target)))
			return "", false, nil
		}
		cur = next
	}
	fi, err := o.root.Lstat(cur)
	if err != nil || !fi.Mode().IsRegular() {
		o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d blob %s is a link to %s, which is not a regular file of the package", i, quote(name), quote(cur)))
		return "", false, nil
	}
	if diffID == "" {
		o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d blob %s is a link to %s, and the image config gives no diff id to verify it against", i, quote(name), quote(cur)))
		return "", false, nil
	}
	d, err := o.hashFile(cur)
	if err != nil {
		return "", false, err
	}
	if d != diffID {
		o.fail(RuleUnreadable, name, fmt.Sprintf("layer %d blob %s is a link to %s, whose digest %s is not the layer's diff id %s from the image config; it was not read",
			i, quote(name), quote(cur), d, diffID))
		return "", false, nil
	}
	return cur, true, nil
}

// readPkgLinks reads the package's tar headers (not its members' data)
// and returns its symlink and hard link entries by cleaned name.
func readPkgLinks(o *opener) (map[string]pkgLink, error) {
	f, err := os.Open(o.pkg)
	if err != nil {
		return nil, fmt.Errorf("read links: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if o.pkgFormat == archive.FormatTarGz {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return map[string]pkgLink{}, nil // Extract reported it
		}
		defer gz.Close()
		r = gz
	}
	links := map[string]pkgLink{}
	tr := tar.NewReader(r)
	for n := 0; n < maxPkgHeaders; n++ {
		if err := o.ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err != nil {
			break // end, or corrupt: Extract reported it
		}
		if h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeLink {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if len(h.Linkname) > maxLinkTargetSz || !fs.ValidPath(name) || len(links) >= maxLinkEntries {
			continue
		}
		if _, dup := links[name]; !dup {
			links[name] = pkgLink{target: h.Linkname, hard: h.Typeflag == tar.TypeLink}
		}
	}
	return links, nil
}
