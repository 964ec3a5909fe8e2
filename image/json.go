package image

import (
	"encoding/json/jsontext"
	"strings"
)

// Media types.
const (
	mediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mediaTypeOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mediaTypeLayer          = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeLayerGzip      = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// validJSON reports whether b is exactly one JSON value, valid UTF-8, with
// no duplicate member names (RFC 7493), nothing but white space after it.
func validJSON(b []byte) bool {
	return jsontext.Value(b).IsValid()
}

// parseDigest returns the hex of a "sha256:<64 lower-case hex>" digest.
func parseDigest(d string) (string, bool) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || !isHex64(h) {
		return "", false
	}
	return h, true
}

func isHex64(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// impliedDigest returns the digest a blob path names, if it names one:
// "blobs/sha256/<hex>", "<hex>.json" (legacy docker save config),
// "sha256:<hex>" (go-containerregistry's tarball config).
func impliedDigest(p string) (string, bool) {
	if h, ok := strings.CutPrefix(p, "blobs/sha256/"); ok && isHex64(h) {
		return "sha256:" + h, true
	}
	if h, ok := strings.CutSuffix(p, ".json"); ok && isHex64(h) {
		return "sha256:" + h, true
	}
	if h, ok := parseDigest(p); ok {
		return "sha256:" + h, true
	}
	return "", false
}
