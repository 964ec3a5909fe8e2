package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/assetscan/assetscan/archive"
)

// config reads the config blob at name (relative to the archive root) and
// returns its diff ids, one per layer. want is the digest the config must
// have ("" when nothing names it), wantSize its size (-1: unknown). The
// config is parsed with go-containerregistry's own parser, the one trivy
// uses, so both read the same diff ids. ok is false after a finding was
// recorded.
func (o *opener) config(name, want string, wantSize int64, nLayers int) ([]string, bool) {
	b, ok := o.readJSON(name, "image config")
	if !ok {
		return nil, false
	}
	sum := sha256.Sum256(b)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if want != "" && got != want {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the image config %s hashes to %s, not to the %s it is named by; the image was altered", quote(name), got, want))
		return nil, false
	}
	if wantSize >= 0 && int64(len(b)) != wantSize {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the image config %s is %d bytes, not the %d its manifest says", quote(name), len(b), wantSize))
		return nil, false
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(b))
	if err != nil {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the image config %s cannot be parsed: %s", quote(name), archive.DisplayPath(err.Error())))
		return nil, false
	}
	ids := cf.RootFS.DiffIDs
	if len(ids) != nLayers {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the image config lists %d layer diff ids (rootfs.diff_ids) but the manifest lists %d layers", len(ids), nLayers))
		return nil, false
	}
	out := make([]string, len(ids))
	for i, h := range ids {
		s := h.String()
		if _, ok := parseDigest(s); !ok {
			o.fail(RuleUnreadable, name, fmt.Sprintf("the image config's diff id %d, %s, is not a sha256 digest", i, quote(s)))
			return nil, false
		}
		out[i] = s
	}
	o.configDigest = got
	o.configBytes = int64(len(b))
	return out, true
}
