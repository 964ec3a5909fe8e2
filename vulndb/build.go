package vulndb

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	javadb "github.com/aquasecurity/trivy-java-db/pkg/db"
	bolt "go.etcd.io/bbolt"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver the Java DB needs
)

// Layout of a trivy cache directory, as trivy v0.74.0 reads it.
const (
	// SchemaVersion is the trivy DB schema trivy v0.74.0 requires
	// (trivy-db's db.SchemaVersion).
	SchemaVersion = trivydb.SchemaVersion
	// JavaSchemaVersion is the Java DB schema trivy v0.74.0 requires
	// (trivy-java-db's db.SchemaVersion).
	JavaSchemaVersion = javadb.SchemaVersion

	dbFile       = "trivy.db"      // in DBDir
	metadataFile = "metadata.json" // in DBDir and JavaDBDir
	javaDBFile   = "trivy-java.db" // in JavaDBDir

	// nextUpdate intervals written to metadata.json, as the upstream
	// builders do (trivy-db: 24h, trivy-java-db: 72h).
	dbUpdateInterval     = 24 * time.Hour
	javaDBUpdateInterval = 72 * time.Hour
)

// trivy-db bucket names.
const (
	dataSourceBucket    = "data-source"
	vulnerabilityBucket = "vulnerability"
)

// DBDir is the trivy DB directory of a cache directory: <cacheDir>/db, the
// directory to pass to trivy-db's db.Init.
func DBDir(cacheDir string) string { return filepath.Join(cacheDir, "db") }

// JavaDBDir is the Java DB directory of a cache directory:
// <cacheDir>/java-db, where trivy's javadb.Init(cacheDir, ...) looks.
func JavaDBDir(cacheDir string) string { return filepath.Join(cacheDir, "java-db") }

// Build writes a trivy DB built from fx into the cache directory dir:
// <dir>/db/trivy.db (bbolt, trivy-db schema 2) and <dir>/db/metadata.json
// ({"Version":2,"NextUpdate":updatedAt+24h,"UpdatedAt":updatedAt,
// "DownloadedAt":updatedAt}).
//
// updatedAt is a parameter so that builds are reproducible: the same
// fixtures and time give byte-identical metadata.json and trivy.db (on
// machines with the same OS page size, which bbolt uses as its page size),
// hence the same DBRef.Digest.
//
// Both files are written to temporary names and renamed into place, so a
// reader never sees a half-written DB; a process that already has the old
// trivy.db open keeps reading the old file until it reopens it.
//
// Build writes the file with bbolt directly instead of trivy-db's db.Init,
// whose DB handle is a process-wide global that the scanner also uses.
func Build(dir string, fx *Fixtures, updatedAt time.Time) error {
	if fx == nil {
		return errors.New("vulndb: Build: nil fixtures")
	}
	if updatedAt.IsZero() {
		return errors.New("vulndb: Build: zero updatedAt")
	}
	if err := fx.validate(); err != nil {
		return err
	}
	updatedAt = updatedAt.UTC()
	dbDir := DBDir(dir)
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}

	tmp, err := os.CreateTemp(dbDir, dbFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // no-op once renamed

	if err := writeBolt(tmpPath, fx); err != nil {
		return fmt.Errorf("vulndb: write %s: %w", dbFile, err)
	}
	if err := os.Chmod(tmpPath, 0o644); err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	if err := os.Rename(tmpPath, filepath.Join(dbDir, dbFile)); err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	meta := metadata.Metadata{
		Version:      SchemaVersion,
		NextUpdate:   updatedAt.Add(dbUpdateInterval),
		UpdatedAt:    updatedAt,
		DownloadedAt: updatedAt, // non-zero: trivy treats a zero DownloadedAt as a corrupt DB
	}
	return writeJSONFile(filepath.Join(dbDir, metadataFile), &meta)
}

// writeBolt fills a new bbolt file with fx in trivy-db's layout:
//
//	data-source / <bucket>                   -> types.DataSource
//	vulnerability / <vuln id>                -> types.Vulnerability
//	<bucket> / <package> / <vuln id>         -> types.Advisory
//
// Each transaction touches a single bucket path, in sorted order: bbolt
// spills the buckets changed in one transaction in Go map order, so writing
// several at once would make page allocation, and so the file's bytes and
// digest, vary from build to build.
func writeBolt(path string, fx *Fixtures) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: true})
	if err != nil {
		return err
	}
	update := func(fn func(tx *bolt.Tx) error) {
		if err == nil {
			err = db.Update(fn)
		}
	}
	update(func(tx *bolt.Tx) error {
		for _, bucket := range sortedKeys(fx.DataSources) {
			ds := fx.DataSources[bucket]
			err := put(tx, []string{dataSourceBucket}, bucket, types.DataSource{
				ID: types.SourceID(ds.ID), Name: ds.Name, URL: ds.URL,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	update(func(tx *bolt.Tx) error {
		for _, v := range fx.Vulnerabilities {
			if err := put(tx, []string{vulnerabilityBucket}, v.ID, toTrivyVulnerability(v)); err != nil {
				return err
			}
		}
		return nil
	})
	advisories := slices.Clone(fx.Advisories)
	slices.SortStableFunc(advisories, func(a, b Advisory) int {
		return cmp.Or(cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.Package, b.Package))
	})
	for len(advisories) > 0 {
		n := 1 // advisories[:n] share bucket and package
		for n < len(advisories) && advisories[n].Bucket == advisories[0].Bucket &&
			advisories[n].Package == advisories[0].Package {
			n++
		}
		group := advisories[:n]
		advisories = advisories[n:]
		update(func(tx *bolt.Tx) error {
			for _, a := range group {
				adv := toTrivyAdvisory(a)
				// A pointer, so that Advisory.MarshalJSON stores Status as
				// an integer, as trivy-db does.
				if err := put(tx, []string{a.Bucket, a.Package}, a.VulnerabilityID, &adv); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err == nil {
		err = db.Sync() // NoSync above: one fsync at the end
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// put stores JSON(value) under key in the nested buckets, creating them.
func put(tx *bolt.Tx, buckets []string, key string, value any) error {
	b, err := tx.CreateBucketIfNotExists([]byte(buckets[0]))
	if err != nil {
		return fmt.Errorf("bucket %q: %w", buckets[0], err)
	}
	for _, name := range buckets[1:] {
		if b, err = b.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("bucket %q: %w", name, err)
		}
	}
	v, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("%v/%s: %w", buckets, key, err)
	}
	return b.Put([]byte(key), v)
}

func toTrivyVulnerability(v Vulnerability) types.Vulnerability {
	out := types.Vulnerability{
		Title:         v.Title,
		Description:   v.Description,
		Severity:      v.Severity,
		CweIDs:        v.CweIDs,
		References:    v.References,
		PublishedDate: v.Published,
	}
	if len(v.VendorSeverity) > 0 {
		out.VendorSeverity = types.VendorSeverity{}
		for src, s := range v.VendorSeverity {
			out.VendorSeverity[types.SourceID(src)] = severity(s)
		}
	}
	if len(v.CVSS) > 0 {
		out.CVSS = types.VendorCVSS{}
		for src, c := range v.CVSS {
			out.CVSS[types.SourceID(src)] = types.CVSS{
				V2Vector: c.V2Vector, V2Score: c.V2Score,
				V3Vector: c.V3Vector, V3Score: c.V3Score,
			}
		}
	}
	if out.Severity == "" {
		// As trivy-db's vulnerability.Normalize: the first source in
		// precedence order that has a severity, else UNKNOWN.
		out.Severity = "UNKNOWN"
		if srcs := orderedSources(v.VendorSeverity); len(srcs) > 0 {
			out.Severity = v.VendorSeverity[srcs[0]]
		}
	}
	return out
}

func toTrivyAdvisory(a Advisory) types.Advisory {
	return types.Advisory{
		VendorIDs:          a.VendorIDs,
		VulnerableVersions: a.VulnerableVersions,
		PatchedVersions:    a.PatchedVersions,
		FixedVersion:       a.FixedVersion,
		Status:             types.Status(max(0, slices.Index(statusNames, a.Status))),
		Severity:           severity(a.Severity),
	}
}

// severity converts a severity name (validated) to trivy-db's value.
func severity(name string) types.Severity {
	return types.Severity(max(0, slices.Index(severityNames, name)))
}

// sourcePrecedence is trivy-db's AllSourceIDs order
// (pkg/vulnsrc/vulnerability), copied because that package must not be
// imported here.
var sourcePrecedence = []string{
	"nvd", "redhat", "redhat-oval", "debian", "ubuntu", "alpine", "amazon",
	"oracle-oval", "suse-cvrf", "photon", "arch-linux", "alma", "rocky",
	"cbl-mariner", "azure", "ruby-advisory-db", "php-security-advisories",
	"nodejs-security-wg", "ghsa", "glad", "aqua", "osv", "k8s", "wolfi",
	"chainguard", "bitnami", "govulndb", "julia", "bottlerocket", "echo",
	"minimos", "rootio", "rapidfort",
}

// orderedSources returns m's keys in trivy-db precedence order; unknown
// sources follow, sorted by name.
func orderedSources[V any](m map[string]V) []string {
	keys := sortedKeys(m)
	rank := func(s string) int {
		if i := slices.Index(sourcePrecedence, s); i >= 0 {
			return i
		}
		return len(sourcePrecedence)
	}
	sort.SliceStable(keys, func(i, j int) bool { return rank(keys[i]) < rank(keys[j]) })
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// writeJSONFile writes v as the upstream metadata clients do
// (json.Encoder, trailing newline), through a temporary file and a rename.
func writeJSONFile(path string, v any) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	err = json.NewEncoder(tmp).Encode(v)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("vulndb: write %s: %w", path, err)
	}
	return nil
}

// BuildJavaDB writes an empty trivy Java DB into the cache directory:
// <cacheDir>/java-db/trivy-java.db (SQLite with trivy-java-db's tables and
// indexes, no rows) and <cacheDir>/java-db/metadata.json
// ({"Version":1,"NextUpdate":updatedAt+72h,"UpdatedAt":updatedAt,
// "DownloadedAt":updatedAt}).
//
// trivy v0.74.0 fails every scan containing a .jar/.war/.ear when no Java
// DB exists. With this empty DB and javadb.Init(cacheDir, nil, true, ...)
// (skip update), trivy identifies jars by their
// META-INF/maven/**/pom.properties; look-ups by SHA-1 or artifactId find
// nothing, so jars without pom.properties stay unidentified.
func BuildJavaDB(cacheDir string, updatedAt time.Time) error {
	if updatedAt.IsZero() {
		return errors.New("vulndb: BuildJavaDB: zero updatedAt")
	}
	updatedAt = updatedAt.UTC()
	dir := JavaDBDir(cacheDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	// Build in a scratch directory next to it (trivy-java-db's file name is
	// fixed), then rename the file into place.
	scratch, err := os.MkdirTemp(cacheDir, "java-db.tmp-*")
	if err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	defer os.RemoveAll(scratch)

	jdb, err := javadb.New(scratch)
	if err != nil {
		return fmt.Errorf("vulndb: java db: %w", err)
	}
	err = jdb.Init()
	if cerr := jdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vulndb: java db: %w", err)
	}
	if err := os.Chmod(filepath.Join(scratch, javaDBFile), 0o644); err != nil {
		return fmt.Errorf("vulndb: java db: %w", err)
	}
	if err := os.Rename(filepath.Join(scratch, javaDBFile), filepath.Join(dir, javaDBFile)); err != nil {
		return fmt.Errorf("vulndb: java db: %w", err)
	}
	meta := javadb.Metadata{
		Version:      JavaSchemaVersion,
		NextUpdate:   updatedAt.Add(javaDBUpdateInterval),
		UpdatedAt:    updatedAt,
		DownloadedAt: updatedAt,
	}
	return writeJSONFile(filepath.Join(dir, metadataFile), &meta)
}

// BuildDefault builds the default databases into the cache directory dir
// from the fixtures embedded in the binary: the trivy DB (Build) and the
// empty Java DB (BuildJavaDB), both with UpdatedAt set to the fixtures'
// stated updated_at, so that verdicts made against it are reproducible.
// This is the zero-setup path of `assetscan scan`: it needs no files and
// no network.
func BuildDefault(dir string) error {
	fx, err := DefaultFixtures()
	if err != nil {
		return err
	}
	if fx.UpdatedAt.IsZero() {
		return errors.New("vulndb: embedded fixtures state no updated_at")
	}
	if err := Build(dir, fx, fx.UpdatedAt); err != nil {
		return err
	}
	return BuildJavaDB(dir, fx.UpdatedAt)
}
