package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json/v2"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/assetscan/assetscan/archive"
)

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform"`
}

// ociIndex is an OCI image index (index.json, or a nested index blob).
type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// ociManifest is an OCI (or Docker v2 schema 2) image manifest.
type ociManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// Index walk bounds.
const (
	maxIndexDepth       = 4
	maxIndexDescriptors = 1024
)

// Annotations read from index entries.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerd    = "io.containerd.image.name"
	annotationReferenceType = "vnd.docker.reference.type"
)

// candidate is an image manifest found in the index.
type candidate struct {
	desc descriptor
	path string
	m    ociManifest
	tags []string
}

type walkState struct {
	visited int
	cands   []*candidate
	byDesc  map[string]*candidate
	// indexes are the nested indexes walked already: each is read once.
	indexes map[string]bool
}

// ociLayout reads an OCI image layout through its index.json. A nil Image
// and a nil error mean a finding was recorded.
func (o *opener) ociLayout() (*Image, error) {
	if !o.isFile("oci-layout") {
		return o.fail(RuleUnreadable, "oci-layout", "the package has an index.json but no oci-layout file: it is neither a docker save archive nor an OCI image layout"), nil
	}
	b, ok := o.readJSON("oci-layout", "oci-layout file")
	if !ok {
		return nil, nil
	}
	var lay struct {
		ImageLayoutVersion string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &lay); err != nil || lay.ImageLayoutVersion == "" {
		return o.fail(RuleUnreadable, "oci-layout", "the oci-layout file does not give an imageLayoutVersion"), nil
	}
	b, ok = o.readJSON("index.json", "index")
	if !ok {
		return nil, nil
	}
	idx, ok := o.parseIndex(b, "index.json")
	if !ok {
		return nil, nil
	}
	st := &walkState{byDesc: map[string]*candidate{}, indexes: map[string]bool{}}
	if !o.walk(idx, 0, nil, st) {
		return nil, nil
	}
	switch {
	case len(st.cands) == 0:
		return o.fail(RuleUnreadable, "index.json", "index.json lists no container image manifest"), nil
	case len(st.cands) > 1:
		return o.fail(RuleMultipleImages, "index.json", fmt.Sprintf(
			"the package holds %d images (image manifests in index.json, including every platform of a multi-platform image); a container image package must hold exactly one image of one platform", len(st.cands))), nil
	}
	c := st.cands[0]
	m := c.m
	if len(m.Layers) == 0 {
		return o.fail(RuleUnreadable, c.path, "the image manifest lists no layers"), nil
	}
	img := &Image{Format: FormatOCILayout, Manifests: 1, RepoTags: c.tags}
	cfgHex, ok := parseDigest(m.Config.Digest)
	if !ok {
		return o.fail(RuleUnreadable, c.path, fmt.Sprintf("the image manifest's config digest %s is not a sha256 digest", quote(m.Config.Digest))), nil
	}
	cfgPath := "blobs/sha256/" + cfgHex
	diffIDs, ok := o.config(cfgPath, m.Config.Digest, m.Config.Size, len(m.Layers))
	if !ok {
		return nil, nil
	}
	img.ConfigPath = filepath.Join(o.dir, filepath.FromSlash(cfgPath))
	paths := make([]string, len(m.Layers))
	for i, d := range m.Layers {
		h, ok := parseDigest(d.Digest)
		if !ok {
			return o.fail(RuleUnreadable, c.path, fmt.Sprintf("layer %d's digest %s is not a sha256 digest", i, quote(d.Digest))), nil
		}
		if strings.Contains(d.MediaType, "zstd") {
			return o.fail(RuleUnreadable, c.path, fmt.Sprintf("layer %d is zstd-compressed (%s), which is not supported; export the image with gzip or uncompressed layers", i, quote(d.MediaType))), nil
		}
		paths[i] = "blobs/sha256/" + h
		img.Layers = append(img.Layers, Layer{
			Index:  i,
			DiffID: diffIDs[i],
			Digest: d.Digest,
			Path:   filepath.Join(o.dir, filepath.FromSlash(paths[i])),
		})
	}
	ok, err := o.layers(img, paths)
	if err != nil || !ok {
		return nil, err
	}
	return img, nil
}

func (o *opener) parseIndex(b []byte, name string) (ociIndex, bool) {
	var idx ociIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the image index %s cannot be parsed: %s", quote(name), archive.DisplayPath(err.Error())))
		return idx, false
	}
	if idx.SchemaVersion != 2 {
		o.fail(RuleUnreadable, name, fmt.Sprintf("the image index %s has schemaVersion %d, not 2", quote(name), idx.SchemaVersion))
		return idx, false
	}
	return idx, true
}

// walk collects the image manifests of idx and of the indexes nested in
// it. tags are the tags of the top-level entry being walked (nil at the
// top). Attestation manifests and non-image artifacts are skipped; so are
// the manifests of a nested index whose blobs are absent (the platforms
// docker save did not export). Entries of index.json itself must be
// present. It returns false after a finding was recorded.
func (o *opener) walk(idx ociIndex, depth int, tags []string, st *walkState) bool {
	top := depth == 0
	for _, d := range idx.Manifests {
		st.visited++
		if st.visited > maxIndexDescriptors {
			o.fail(RuleUnreadable, "index.json", fmt.Sprintf("the image index lists more than %d manifests", maxIndexDescriptors))
			return false
		}
		if d.Annotations[annotationReferenceType] == "attestation-manifest" ||
			d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown" {
			continue
		}
		h, ok := parseDigest(d.Digest)
		if !ok {
			o.fail(RuleUnreadable, "index.json", fmt.Sprintf("an image index entry's digest %s is not a sha256 digest", quote(d.Digest)))
			return false
		}
		p := "blobs/sha256/" + h
		entryTags := tags
		if top {
			entryTags = entryTagsOf(d)
		}
		switch d.MediaType {
		case mediaTypeOCIIndex, mediaTypeDockerList:
			if depth+1 >= maxIndexDepth {
				o.fail(RuleUnreadable, p, fmt.Sprintf("image indexes are nested more than %d deep", maxIndexDepth))
				return false
			}
			if st.indexes[d.Digest] || !top && !o.isFile(p) {
				continue
			}
			st.indexes[d.Digest] = true
			b, ok := o.readBlobJSON(d, p, "image index")
			if !ok {
				return false
			}
			child, ok := o.parseIndex(b, p)
			if !ok {
				return false
			}
			if !o.walk(child, depth+1, entryTags, st) {
				return false
			}
		case mediaTypeOCIManifest, mediaTypeDockerManifest, "":
			if !top && !o.isFile(p) {
				continue
			}
			if c, ok := st.byDesc[d.Digest]; ok {
				c.tags = appendNew(c.tags, entryTags...)
				continue
			}
			b, ok := o.readBlobJSON(d, p, "image manifest")
			if !ok {
				return false
			}
			var m ociManifest
			if err := json.Unmarshal(b, &m); err != nil {
				o.fail(RuleUnreadable, p, "the image manifest cannot be parsed: "+archive.DisplayPath(err.Error()))
				return false
			}
			if m.SchemaVersion != 2 {
				o.fail(RuleUnreadable, p, fmt.Sprintf("the image manifest has schemaVersion %d, not 2", m.SchemaVersion))
				return false
			}
			switch m.Config.MediaType {
			case mediaTypeOCIConfig, mediaTypeDockerConfig:
			default:
				continue // an artifact, not a container image
			}
			c := &candidate{desc: d, path: p, m: m, tags: slices.Clone(entryTags)}
			st.byDesc[d.Digest] = c
			st.cands = append(st.cands, c)
		}
	}
	return true
}

// entryTagsOf returns the tags an index.json entry names.
func entryTagsOf(d descriptor) []string {
	if n := d.Annotations[annotationContainerd]; n != "" {
		return []string{n}
	}
	if n := d.Annotations[annotationRefName]; n != "" {
		return []string{n}
	}
	return nil
}

func appendNew(s []string, add ...string) []string {
	for _, a := range add {
		if !slices.Contains(s, a) {
			s = append(s, a)
		}
	}
	return s
}

// readBlobJSON reads the JSON blob d describes, at p, and checks its size
// and digest. It returns false after a finding was recorded.
func (o *opener) readBlobJSON(d descriptor, p, what string) ([]byte, bool) {
	b, ok := o.readJSON(p, what)
	if !ok {
		return nil, false
	}
	if int64(len(b)) != d.Size {
		o.fail(RuleUnreadable, p, fmt.Sprintf("the %s %s is %d bytes, not the %d its descriptor says", what, quote(p), len(b), d.Size))
		return nil, false
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest {
		o.fail(RuleUnreadable, p, fmt.Sprintf("the %s %s hashes to %s, not to its digest %s; the image was altered", what, quote(p), got, d.Digest))
		return nil, false
	}
	return b, true
}
