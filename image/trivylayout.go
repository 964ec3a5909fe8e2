package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// writeTrivyLayout writes, at dir (which must not exist), an OCI image
// layout that trivy's NewArchiveImage reads (through go-containerregistry's
// layout package): oci-layout, an index.json with one manifest, the
// manifest (ours: OCI media types, the blobs' real compression), and the
// config and layer blobs hard-linked from the unpacked archive (copied if
// linking fails). Nothing the seller wrote is read by trivy but the config
// and the layer blobs themselves.
func writeTrivyLayout(dir string, img *Image, configDigest string, configSize int64, layers []blobInfo) error {
	if err := os.Mkdir(dir, 0o750); err != nil {
		return err
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o750); err != nil {
		return err
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	man := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Config        desc   `json:"config"`
		Layers        []desc `json:"layers"`
	}{
		SchemaVersion: 2,
		MediaType:     mediaTypeOCIManifest,
		Config:        desc{MediaType: mediaTypeOCIConfig, Digest: configDigest, Size: configSize},
	}
	if err := linkBlob(img.ConfigPath, blobs, configDigest); err != nil {
		return err
	}
	for i, l := range img.Layers {
		man.Layers = append(man.Layers, desc{MediaType: layers[i].mediaType, Digest: l.Digest, Size: layers[i].size})
		if err := linkBlob(l.Path, blobs, l.Digest); err != nil {
			return err
		}
	}
	mb, err := json.Marshal(man)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(mb)
	mdigest := "sha256:" + hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(blobs, hex.EncodeToString(sum[:])), mb, 0o640); err != nil {
		return err
	}
	index := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{
		SchemaVersion: 2,
		MediaType:     mediaTypeOCIIndex,
		Manifests:     []desc{{MediaType: mediaTypeOCIManifest, Digest: mdigest, Size: int64(len(mb))}},
	}
	ib, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o640); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o640)
}

// linkBlob makes blobs/<hex of digest> the file src. The same digest may
// come twice (a blob used by two layers): the first link stays.
func linkBlob(src, blobs, digest string) error {
	h, ok := parseDigest(digest)
	if !ok {
		return fmt.Errorf("invalid digest %q", digest)
	}
	dst := filepath.Join(blobs, h)
	err := os.Link(src, dst)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrExist):
		return nil
	case errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EMLINK),
		errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
		return copyFile(src, dst)
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
