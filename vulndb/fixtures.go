package vulndb

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Fixtures is the advisory fixture model: the YAML files under
// vulndb/fixtures/ (embedded) or testdata/vulndb/, merged and validated.
// See vulndb/fixtures/advisories.yaml for the format and provenance.
type Fixtures struct {
	// UpdatedAt is the fixture's stated build time (`updated_at:`), used by
	// BuildDefault as the DB's UpdatedAt. Zero if no file states one.
	UpdatedAt time.Time
	// DataSources maps an advisory bucket name ("npm::GitHub Security
	// Advisory npm", "debian 12", ...) to its data source. Every bucket an
	// advisory uses must have one.
	DataSources map[string]DataSource
	// Vulnerabilities are the entries of trivy-db's "vulnerability" bucket.
	Vulnerabilities []Vulnerability
	// Advisories are the per-package entries of the advisory buckets.
	Advisories []Advisory
}

// DataSource is an entry of trivy-db's "data-source" bucket.
type DataSource struct {
	ID   string `yaml:"id"`   // trivy-db source id: ghsa, govulndb, debian, alpine, ...
	Name string `yaml:"name"` // e.g. "GitHub Security Advisory npm"
	URL  string `yaml:"url"`
}

// Vulnerability is one entry of trivy-db's "vulnerability" bucket.
type Vulnerability struct {
	ID          string `yaml:"id"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	// Severity is trivy-db's deprecated top-level severity (LOW..CRITICAL,
	// UNKNOWN). Leave it empty: Build derives it like trivy-db does, from
	// the first source in trivy-db's precedence order (nvd, redhat, ...).
	Severity string `yaml:"severity"`
	// VendorSeverity maps a source id (nvd, ghsa, redhat, ...) to LOW,
	// MEDIUM, HIGH or CRITICAL.
	VendorSeverity map[string]string `yaml:"vendor_severity"`
	// CVSS maps a source id to its CVSS vectors and base scores.
	CVSS       map[string]CVSS `yaml:"cvss"`
	CweIDs     []string        `yaml:"cwe_ids"`
	References []string        `yaml:"references"`
	Published  *time.Time      `yaml:"published"`
}

// CVSS holds one source's CVSS v2 and v3 vectors with their base scores.
type CVSS struct {
	V2Vector string  `yaml:"v2_vector"`
	V2Score  float64 `yaml:"v2_score"`
	V3Vector string  `yaml:"v3_vector"`
	V3Score  float64 `yaml:"v3_score"`
}

// Advisory is one advisory: bucket / package / vulnerability id.
//
// Language buckets (name contains "::") carry VulnerableVersions and/or
// PatchedVersions in trivy-db's constraint syntax (">=2.0-beta9, <2.3.1");
// note that trivy matches PatchedVersions as exact versions. OS buckets
// ("debian 12", "alpine 3.18") carry FixedVersion, empty for an unfixed
// vulnerability, and are keyed by the SOURCE package name.
type Advisory struct {
	Bucket             string   `yaml:"bucket"`
	Package            string   `yaml:"package"`
	VulnerabilityID    string   `yaml:"id"`
	VendorIDs          []string `yaml:"vendor_ids"`
	VulnerableVersions []string `yaml:"vulnerable_versions"`
	PatchedVersions    []string `yaml:"patched_versions"`
	FixedVersion       string   `yaml:"fixed_version"`
	// Status is a trivy status name for an OS advisory without a fix:
	// affected, will_not_fix, fix_deferred, end_of_life, ... Empty means
	// unknown, which trivy reports as "affected" (or "fixed" when
	// FixedVersion is set).
	Status string `yaml:"status"`
	// Severity is a per-package severity (Debian urgency), which trivy
	// prefers over the vulnerability's severity for Debian findings.
	Severity string `yaml:"severity"`
}

// fixtureFile is the YAML layout of one fixture file.
type fixtureFile struct {
	UpdatedAt       time.Time             `yaml:"updated_at"`
	DataSources     map[string]DataSource `yaml:"data_sources"`
	Vulnerabilities []Vulnerability       `yaml:"vulnerabilities"`
	Advisories      []Advisory            `yaml:"advisories"`
}

//go:embed fixtures/*.yaml
var embedded embed.FS

// DefaultFixtures returns the fixtures embedded in the binary (all of
// vulndb/fixtures/*.yaml, in name order): the data of BuildDefault.
func DefaultFixtures() (*Fixtures, error) {
	entries, err := embedded.ReadDir("fixtures")
	if err != nil {
		return nil, fmt.Errorf("vulndb: embedded fixtures: %w", err)
	}
	fx := newFixtures()
	for _, e := range entries { // ReadDir returns entries sorted by name
		b, err := embedded.ReadFile("fixtures/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("vulndb: embedded fixtures: %w", err)
		}
		if err := fx.add("fixtures/"+e.Name(), b); err != nil {
			return nil, err
		}
	}
	if err := fx.validate(); err != nil {
		return nil, err
	}
	return fx, nil
}

// LoadFixtures reads and merges fixture YAML files and validates the
// result. Unknown YAML fields are errors (they are usually typos). It fails
// on a duplicate vulnerability or advisory, on an advisory whose
// vulnerability or bucket data source is missing, on an unknown severity or
// status name, on an empty version constraint (trivy would treat every
// version as vulnerable), and on files stating different updated_at times.
func LoadFixtures(paths ...string) (*Fixtures, error) {
	if len(paths) == 0 {
		return nil, errors.New("vulndb: no fixture files given")
	}
	fx := newFixtures()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("vulndb: %w", err)
		}
		if err := fx.add(p, b); err != nil {
			return nil, err
		}
	}
	if err := fx.validate(); err != nil {
		return nil, err
	}
	return fx, nil
}

// Vulnerability returns the vulnerability entry with the given id.
func (fx *Fixtures) Vulnerability(id string) (Vulnerability, bool) {
	for _, v := range fx.Vulnerabilities {
		if v.ID == id {
			return v, true
		}
	}
	return Vulnerability{}, false
}

// HighestV3 returns the highest CVSS v3 base score across the
// vulnerability's sources, with the source id and vector. Ties go to the
// source first in trivy-db's precedence order. ok is false when no source
// has a v3 score.
func (v Vulnerability) HighestV3() (score float64, source, vector string, ok bool) {
	for _, src := range orderedSources(v.CVSS) {
		c := v.CVSS[src]
		if c.V3Score > score {
			score, source, vector, ok = c.V3Score, src, c.V3Vector, true
		}
	}
	return score, source, vector, ok
}

func newFixtures() *Fixtures {
	return &Fixtures{DataSources: map[string]DataSource{}}
}

// add decodes one fixture file into fx.
func (fx *Fixtures) add(name string, b []byte) error {
	var f fixtureFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("vulndb: %s: %w", name, err)
	}
	if !f.UpdatedAt.IsZero() {
		if !fx.UpdatedAt.IsZero() && !fx.UpdatedAt.Equal(f.UpdatedAt) {
			return fmt.Errorf("vulndb: %s: updated_at %s conflicts with %s",
				name, f.UpdatedAt.Format(time.RFC3339), fx.UpdatedAt.Format(time.RFC3339))
		}
		fx.UpdatedAt = f.UpdatedAt.UTC()
	}
	for bucket, ds := range f.DataSources {
		if old, ok := fx.DataSources[bucket]; ok && old != ds {
			return fmt.Errorf("vulndb: %s: data source for bucket %q conflicts with an earlier file", name, bucket)
		}
		fx.DataSources[bucket] = ds
	}
	fx.Vulnerabilities = append(fx.Vulnerabilities, f.Vulnerabilities...)
	fx.Advisories = append(fx.Advisories, f.Advisories...)
	return nil
}

var severityNames = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// statusNames are trivy-db's status names (types.Statuses), index = value.
var statusNames = []string{"unknown", "not_affected", "affected", "fixed",
	"under_investigation", "will_not_fix", "fix_deferred", "end_of_life"}

// validate checks the merged fixtures for consistency.
func (fx *Fixtures) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	for bucket, ds := range fx.DataSources {
		if bucket == "" || ds.ID == "" || ds.Name == "" {
			bad("data source %q: bucket, id and name are required", bucket)
		}
	}
	vulns := map[string]bool{}
	for _, v := range fx.Vulnerabilities {
		switch {
		case v.ID == "":
			bad("vulnerability without id")
			continue
		case vulns[v.ID]:
			bad("vulnerability %s: duplicate", v.ID)
		}
		vulns[v.ID] = true
		if v.Severity != "" && !slices.Contains(severityNames, v.Severity) {
			bad("vulnerability %s: unknown severity %q", v.ID, v.Severity)
		}
		for src, s := range v.VendorSeverity {
			if !slices.Contains(severityNames[1:], s) {
				bad("vulnerability %s: vendor_severity %s: unknown severity %q", v.ID, src, s)
			}
		}
		for src, c := range v.CVSS {
			if c.V3Vector == "" && c.V2Vector == "" {
				bad("vulnerability %s: cvss %s: no vector", v.ID, src)
			}
			if (c.V3Vector == "") != (c.V3Score == 0) || c.V3Score < 0 || c.V3Score > 10 {
				bad("vulnerability %s: cvss %s: v3 vector and score (0-10] must be given together", v.ID, src)
			}
			if c.V3Vector != "" && !strings.HasPrefix(c.V3Vector, "CVSS:3.") {
				bad("vulnerability %s: cvss %s: v3 vector %q lacks the CVSS:3.x prefix", v.ID, src, c.V3Vector)
			}
			if (c.V2Vector == "") != (c.V2Score == 0) || c.V2Score < 0 || c.V2Score > 10 {
				bad("vulnerability %s: cvss %s: v2 vector and score (0-10] must be given together", v.ID, src)
			}
		}
	}

	type key struct{ bucket, pkg, id string }
	seen := map[key]bool{}
	for _, a := range fx.Advisories {
		k := key{a.Bucket, a.Package, a.VulnerabilityID}
		where := fmt.Sprintf("advisory %s/%s/%s", a.Bucket, a.Package, a.VulnerabilityID)
		if a.Bucket == "" || a.Package == "" || a.VulnerabilityID == "" {
			bad("%s: bucket, package and id are required", where)
			continue
		}
		if seen[k] {
			bad("%s: duplicate", where)
		}
		seen[k] = true
		if !vulns[a.VulnerabilityID] {
			bad("%s: no vulnerability entry %s", where, a.VulnerabilityID)
		}
		if _, ok := fx.DataSources[a.Bucket]; !ok {
			bad("%s: bucket has no data source", where)
		}
		if a.Status != "" && !slices.Contains(statusNames, a.Status) {
			bad("%s: unknown status %q", where, a.Status)
		}
		if a.Severity != "" && !slices.Contains(severityNames, a.Severity) {
			bad("%s: unknown severity %q", where, a.Severity)
		}
		if slices.Contains(a.VulnerableVersions, "") || slices.Contains(a.PatchedVersions, "") {
			bad("%s: empty version constraint (trivy would flag every version)", where)
		}
		if isLanguageBucket(a.Bucket) {
			if len(a.VulnerableVersions) == 0 && len(a.PatchedVersions) == 0 {
				bad("%s: language advisory needs vulnerable_versions or patched_versions", where)
			}
			if a.FixedVersion != "" {
				bad("%s: fixed_version is for OS buckets; use patched_versions", where)
			}
		} else if len(a.VulnerableVersions) != 0 || len(a.PatchedVersions) != 0 {
			bad("%s: OS advisory takes fixed_version, not version ranges", where)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vulndb: invalid fixtures: %w", err)
	}
	return nil
}

// isLanguageBucket reports whether an advisory bucket is a language
// ecosystem bucket ("npm::...") rather than an OS release bucket.
func isLanguageBucket(bucket string) bool { return strings.Contains(bucket, "::") }
