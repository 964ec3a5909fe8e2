// Package vulndb builds the vulnerability databases trivy scans against and
// reads their metadata.
//
// Nothing can be downloaded where assetscan runs its tests, so the project
// builds a small but real trivy DB (trivy-db schema v2, a bbolt file) from
// YAML fixtures of real, published advisories: vulndb/fixtures/*.yaml,
// embedded into the binary. testdata/vulndb/ holds only extra fixtures for
// tests. Never commit a built DB.
//
// A cache directory built here has trivy's layout:
//
//	<cache>/db/trivy.db           bbolt, trivy-db schema 2 (Build)
//	<cache>/db/metadata.json      {"Version":2,"NextUpdate","UpdatedAt","DownloadedAt"}
//	<cache>/java-db/trivy-java.db SQLite, trivy-java-db schema 1, empty (BuildJavaDB)
//	<cache>/java-db/metadata.json {"Version":1,...}
//
// Pass DBDir(cache) to trivy-db's db.Init and cache to trivy's javadb.Init.
//
// The trivy.db buckets are those trivy-db writes and trivy v0.74.0 reads:
//
//	data-source / <advisory bucket>            -> {ID, Name, URL}
//	vulnerability / <vuln id>                  -> {Title, Severity, VendorSeverity, CVSS, ...}
//	<eco>::<source> / <package> / <vuln id>    -> {VendorIDs, VulnerableVersions, PatchedVersions}
//	<os> <release> / <source package> / <id>   -> {FixedVersion, Status, Severity}
//
// trivy finds language advisories by bucket prefix ("npm::", "maven::",
// "pip::", "go::"), package names normalized (lower case except Go; Maven
// as groupId:artifactId), and OS advisories by exact bucket ("debian 12",
// "alpine 3.18") keyed by the source package. The data-source entry of a
// bucket is optional for detection but decides which vendor's severity
// trivy reports with severity source "auto", so Build requires one for
// every advisory bucket.
//
// The package does not import trivy itself, nor trivy-db's vulnsrc or
// vulndb packages (their init runs packages.Load("std"), which needs a Go
// toolchain at run time).
package vulndb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/metadata"

	"github.com/assetscan/assetscan"
)

var (
	// ErrNoDB means the directory holds no usable trivy DB: trivy.db or
	// metadata.json is missing, or metadata.json cannot be parsed.
	ErrNoDB = errors.New("no vulnerability database")
	// ErrSchema means the DB's schema version is not the one trivy
	// v0.74.0 needs (SchemaVersion, 2).
	ErrSchema = errors.New("unsupported vulnerability database schema")
)

// ReadMetadata reads the trivy DB of the cache directory dir
// (<dir>/db/metadata.json and <dir>/db/trivy.db) and describes it as an
// assetscan.DBRef: schema version, UpdatedAt and DownloadedAt (UTC), and
// Digest, the hex SHA-256 of trivy.db. Errors wrap ErrNoDB or ErrSchema.
func ReadMetadata(dir string) (assetscan.DBRef, error) {
	dbDir := DBDir(dir)
	dbPath := filepath.Join(dbDir, dbFile)
	metaPath := filepath.Join(dbDir, metadataFile)

	if st, err := os.Stat(dbPath); err != nil || !st.Mode().IsRegular() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return assetscan.DBRef{}, fmt.Errorf("vulndb: %w: %s is missing", ErrNoDB, dbPath)
		}
		return assetscan.DBRef{}, fmt.Errorf("vulndb: %w", err)
	}
	b, err := os.ReadFile(metaPath)
	if errors.Is(err, fs.ErrNotExist) {
		return assetscan.DBRef{}, fmt.Errorf("vulndb: %w: %s is missing", ErrNoDB, metaPath)
	} else if err != nil {
		return assetscan.DBRef{}, fmt.Errorf("vulndb: %w", err)
	}
	var meta metadata.Metadata
	if err := json.Unmarshal(b, &meta); err != nil {
		return assetscan.DBRef{}, fmt.Errorf("vulndb: %w: %s: %v", ErrNoDB, metaPath, err)
	}
	if meta.Version != SchemaVersion {
		return assetscan.DBRef{}, fmt.Errorf("vulndb: %w: %s has schema %d, trivy needs %d",
			ErrSchema, metaPath, meta.Version, SchemaVersion)
	}
	digest, err := FileSHA256(dbPath)
	if err != nil {
		return assetscan.DBRef{}, fmt.Errorf("vulndb: %w", err)
	}
	return assetscan.DBRef{
		SchemaVersion: meta.Version,
		UpdatedAt:     meta.UpdatedAt.UTC(),
		DownloadedAt:  meta.DownloadedAt.UTC(),
		Digest:        digest,
	}, nil
}

// Stale reports whether the DB described by ref is older than maxAge at
// now, by its build time (UpdatedAt). A DB without a build time is always
// stale; maxAge <= 0 sets no age limit. Note that the default DB
// (BuildDefault) has a fixed UpdatedAt, so it becomes stale by the clock.
func Stale(ref assetscan.DBRef, maxAge time.Duration, now time.Time) bool {
	if ref.UpdatedAt.IsZero() {
		return true
	}
	if maxAge <= 0 {
		return false
	}
	return now.Sub(ref.UpdatedAt) > maxAge
}

// FileSHA256 is the hex SHA-256 of a DB file, as DBRef.Digest and the
// published DB manifests (package dbsync) record it.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
