package image

import (
	"encoding/json/v2"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/assetscan/assetscan/archive"
)

// dockerEntry is one entry of docker save's manifest.json.
type dockerEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// dockerSave reads a docker save archive through its manifest.json. A nil
// Image and a nil error mean a finding was recorded.
func (o *opener) dockerSave() (*Image, error) {
	b, ok := o.readJSON("manifest.json", "manifest")
	if !ok {
		return nil, nil
	}
	var entries []dockerEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return o.fail(RuleUnreadable, "manifest.json", "manifest.json is not a list of {Config, RepoTags, Layers} entries: "+archive.DisplayPath(err.Error())), nil
	}
	// Entries with the same config and layers are one image with several
	// tags.
	var images []dockerEntry
	index := map[string]int{}
	for _, e := range entries {
		k := e.Config + "\x00" + strings.Join(e.Layers, "\x00")
		if i, ok := index[k]; ok {
			images[i].RepoTags = append(images[i].RepoTags, e.RepoTags...)
			continue
		}
		index[k] = len(images)
		images = append(images, dockerEntry{Config: e.Config, Layers: e.Layers, RepoTags: slices.Clone(e.RepoTags)})
	}
	switch {
	case len(images) == 0:
		return o.fail(RuleUnreadable, "manifest.json", "manifest.json lists no image"), nil
	case len(images) > 1:
		return o.fail(RuleMultipleImages, "manifest.json", fmt.Sprintf(
			"the package holds %d images (manifest.json entries with different configs or layers); a container image package must hold exactly one image: `docker save` a single image", len(images))), nil
	}
	e := images[0]
	if len(e.Layers) == 0 {
		return o.fail(RuleUnreadable, "manifest.json", "manifest.json lists an image without layers"), nil
	}
	img := &Image{Format: FormatDockerSave, Manifests: 1, RepoTags: e.RepoTags}
	want, _ := impliedDigest(e.Config)
	diffIDs, ok := o.config(e.Config, want, -1, len(e.Layers))
	if !ok {
		return nil, nil
	}
	img.ConfigPath = filepath.Join(o.dir, filepath.FromSlash(e.Config))
	for i, l := range e.Layers {
		layer := Layer{Index: i, DiffID: diffIDs[i], Path: filepath.Join(o.dir, filepath.FromSlash(l))}
		// Docker 25+ stores layers as blobs/sha256/<hex>; older ones as
		// <id>/layer.tar, whose digest Open computes.
		if h, ok := strings.CutPrefix(l, "blobs/sha256/"); ok && isHex64(h) {
			layer.Digest = "sha256:" + h
		}
		img.Layers = append(img.Layers, layer)
	}
	ok, err := o.layers(img, e.Layers)
	if err != nil || !ok {
		return nil, err
	}
	return img, nil
}
