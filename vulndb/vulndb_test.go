package vulndb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/types"
	javadb "github.com/aquasecurity/trivy-java-db/pkg/db"
	bolt "go.etcd.io/bbolt"

	"github.com/assetscan/assetscan"
)

var testTime = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func defaultFixtures(t *testing.T) *Fixtures {
	t.Helper()
	fx, err := DefaultFixtures()
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestFixtureSanity checks the embedded fixtures: every CVSS vector
// recomputes to its stated score, every advisory points at a vulnerability
// entry and a data source, and the cases other packages test are present.
func TestFixtureSanity(t *testing.T) {
	fx := defaultFixtures(t)
	if got, want := fx.UpdatedAt, testTime; !got.Equal(want) {
		t.Errorf("UpdatedAt = %v, want %v", got, want)
	}
	if n := len(fx.Vulnerabilities); n < 14 {
		t.Errorf("%d vulnerabilities, want at least 14", n)
	}

	for _, v := range fx.Vulnerabilities {
		if v.Title == "" || len(v.References) == 0 {
			t.Errorf("%s: title and references are required", v.ID)
		}
		if len(v.CVSS) == 0 {
			t.Errorf("%s: no CVSS from any source", v.ID)
		}
		for src, c := range v.CVSS {
			if c.V3Vector != "" {
				got, err := cvss3BaseScore(c.V3Vector)
				if err != nil {
					t.Errorf("%s %s: %v", v.ID, src, err)
				} else if got != c.V3Score {
					t.Errorf("%s %s: v3 vector %s scores %.1f, fixture says %.1f", v.ID, src, c.V3Vector, got, c.V3Score)
				}
				// The vendor's severity must match its score's rating.
				if s, ok := v.VendorSeverity[src]; ok && s != rating(c.V3Score) {
					t.Errorf("%s %s: severity %s, but v3 score %.1f rates %s", v.ID, src, s, c.V3Score, rating(c.V3Score))
				}
			}
			if c.V2Vector != "" {
				got, err := cvss2BaseScore(c.V2Vector)
				if err != nil {
					t.Errorf("%s %s: %v", v.ID, src, err)
				} else if got != c.V2Score {
					t.Errorf("%s %s: v2 vector %s scores %.1f, fixture says %.1f", v.ID, src, c.V2Vector, got, c.V2Score)
				}
			}
		}
	}

	ids := map[string]bool{}
	for _, v := range fx.Vulnerabilities {
		ids[v.ID] = true
	}
	buckets := map[string]bool{}
	for _, a := range fx.Advisories {
		if !ids[a.VulnerabilityID] {
			t.Errorf("advisory %s/%s refers to missing vulnerability %s", a.Bucket, a.Package, a.VulnerabilityID)
		}
		if _, ok := fx.DataSources[a.Bucket]; !ok {
			t.Errorf("advisory %s/%s: bucket has no data source", a.Bucket, a.Package)
		}
		buckets[a.Bucket] = true
	}
	for _, b := range []string{
		"npm::GitHub Security Advisory npm", "maven::GitHub Security Advisory Maven",
		"pip::GitHub Security Advisory pip", "go::GitHub Security Advisory Go",
		"go::The Go Vulnerability Database", "debian 12", "alpine 3.18", "alpine 3.19",
	} {
		if !buckets[b] {
			t.Errorf("no advisory in bucket %q", b)
		}
	}
	for id := range ids {
		used := slices.ContainsFunc(fx.Advisories, func(a Advisory) bool { return a.VulnerabilityID == id })
		if !used {
			t.Errorf("vulnerability %s has no advisory", id)
		}
	}

	// Cases the scanner and policy tests rely on.
	for _, c := range []struct {
		id     string
		score  float64 // highest v3; 0 = none
		source string
	}{
		{"CVE-2019-10744", 9.1, "nvd"},
		{"CVE-2020-28500", 5.3, "nvd"},
		{"CVE-2021-44228", 10.0, "nvd"},
		{"CVE-2018-18074", 9.8, "nvd"},   // GHSA says 7.5
		{"CVE-2024-6387", 8.1, "redhat"}, // vendor score only
		{"CVE-2014-0050", 0, ""},         // no v3 at all, HIGH
	} {
		v, ok := fx.Vulnerability(c.id)
		if !ok {
			t.Errorf("%s missing", c.id)
			continue
		}
		score, src, vec, ok := v.HighestV3()
		if score != c.score || src != c.source || ok != (c.score > 0) || (ok && vec == "") {
			t.Errorf("%s HighestV3 = %v %q %q %v, want %v %q", c.id, score, src, vec, ok, c.score, c.source)
		}
	}
	if v, _ := fx.Vulnerability("CVE-2014-0050"); v.VendorSeverity["nvd"] != "HIGH" {
		t.Errorf("CVE-2014-0050: want severity HIGH without a v3 score")
	}
	if v, _ := fx.Vulnerability("CVE-2018-18074"); v.CVSS["ghsa"].V3Score != 7.5 {
		t.Errorf("CVE-2018-18074: want a GHSA score different from NVD's")
	}
}

// rating is the CVSS v3 qualitative severity rating of a score.
func rating(score float64) string {
	switch {
	case score >= 9:
		return "CRITICAL"
	case score >= 7:
		return "HIGH"
	case score >= 4:
		return "MEDIUM"
	case score > 0:
		return "LOW"
	}
	return "NONE"
}

func TestLoadFixtures(t *testing.T) {
	fx, err := LoadFixtures("fixtures/advisories.yaml", "../testdata/vulndb/extra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := defaultFixtures(t)
	if len(fx.Advisories) != len(def.Advisories)+1 || len(fx.Vulnerabilities) != len(def.Vulnerabilities) {
		t.Errorf("merge: %d advisories, %d vulnerabilities", len(fx.Advisories), len(fx.Vulnerabilities))
	}
	if _, ok := fx.DataSources["debian 11"]; !ok {
		t.Error("merge: data source of debian 11 missing")
	}

	// The extra file alone refers to a vulnerability it does not define.
	if _, err := LoadFixtures("../testdata/vulndb/extra.yaml"); err == nil || !strings.Contains(err.Error(), "no vulnerability entry CVE-2023-4911") {
		t.Errorf("extra.yaml alone: err = %v", err)
	}
	_, err = LoadFixtures("../testdata/vulndb/dangling.yaml")
	if err == nil || !strings.Contains(err.Error(), "no vulnerability entry") || !strings.Contains(err.Error(), "no data source") {
		t.Errorf("dangling.yaml: err = %v", err)
	}
	if _, err := LoadFixtures(); err == nil {
		t.Error("no files: no error")
	}
	if _, err := LoadFixtures(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}

	bad := map[string]string{
		"unknown field": "vulnerabilities:\n  - id: CVE-1\n    titel: x\n",
		"empty range": `data_sources: {"npm::x": {id: ghsa, name: x}}
vulnerabilities: [{id: CVE-1}]
advisories: [{bucket: "npm::x", package: p, id: CVE-1, vulnerable_versions: [""]}]`,
		"bad severity":   "vulnerabilities: [{id: CVE-1, vendor_severity: {nvd: SEVERE}}]",
		"score w/o vec":  "vulnerabilities: [{id: CVE-1, cvss: {nvd: {v3_score: 5.0, v2_vector: 'AV:N/AC:L/Au:N/C:N/I:N/A:P', v2_score: 5.0}}}]",
		"duplicate vuln": "vulnerabilities: [{id: CVE-1}, {id: CVE-1}]",
		"os ranges": `data_sources: {"debian 12": {id: debian, name: x}}
vulnerabilities: [{id: CVE-1}]
advisories: [{bucket: "debian 12", package: p, id: CVE-1, patched_versions: ["1"]}]`,
		"bad status": `data_sources: {"debian 12": {id: debian, name: x}}
vulnerabilities: [{id: CVE-1}]
advisories: [{bucket: "debian 12", package: p, id: CVE-1, status: wontfix}]`,
	}
	for name, doc := range bad {
		p := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFixtures(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	// Conflicting updated_at across files.
	a := filepath.Join(t.TempDir(), "a.yaml")
	b := filepath.Join(t.TempDir(), "b.yaml")
	os.WriteFile(a, []byte("updated_at: 2026-01-01T00:00:00Z\n"), 0o644)
	os.WriteFile(b, []byte("updated_at: 2026-02-01T00:00:00Z\n"), 0o644)
	if _, err := LoadFixtures(a, b); err == nil {
		t.Error("conflicting updated_at: no error")
	}
}

// dump returns every key/value of a bbolt file as "bucket/.../key" -> value.
func dump(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o444, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			out[prefix+string(k)] = string(v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name)+"/", b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildLayout(t *testing.T) {
	dir := t.TempDir()
	if err := Build(dir, defaultFixtures(t), testTime); err != nil {
		t.Fatal(err)
	}
	kv := dump(t, filepath.Join(dir, "db", "trivy.db"))

	want := map[string]string{
		"data-source/npm::GitHub Security Advisory npm":                                            `{"ID":"ghsa","Name":"GitHub Security Advisory npm","URL":"https://github.com/advisories?query=type%3Areviewed+ecosystem%3Anpm"}`,
		"data-source/debian 12":                                                                    `{"ID":"debian","Name":"Debian Security Tracker","URL":"https://salsa.debian.org/security-tracker-team/security-tracker"}`,
		"npm::GitHub Security Advisory npm/lodash/CVE-2019-10744":                                  `{"VendorIDs":["GHSA-jf85-cpcp-j695"],"VulnerableVersions":["\u003c4.17.12"],"PatchedVersions":["4.17.12"]}`,
		"maven::GitHub Security Advisory Maven/org.apache.logging.log4j:log4j-core/CVE-2021-44228": `{"VendorIDs":["GHSA-jfh8-c2jp-5v3q"],"VulnerableVersions":["\u003e=2.13.0, \u003c2.15.0","\u003e=2.0-beta9, \u003c2.3.1","\u003e=2.4, \u003c2.12.2"],"PatchedVersions":["2.15.0","2.3.1","2.12.2"]}`,
		"debian 12/glibc/CVE-2023-4911":                                                            `{"VendorIDs":["DSA-5514-1"],"FixedVersion":"2.36-9+deb12u3"}`,
		"debian 12/zlib/CVE-2023-45853":                                                            `{"Status":5}`,
		"debian 12/apt/CVE-2011-3374":                                                              `{"Severity":1}`,
		"alpine 3.18/openssl/CVE-2023-5363":                                                        `{"FixedVersion":"3.1.4-r0"}`,
		"go::The Go Vulnerability Database/golang.org/x/text/CVE-2022-32149":                       `{"VendorIDs":["GO-2022-1059","GHSA-69ch-w2m2-3vjp"],"VulnerableVersions":["\u003c0.3.8"],"PatchedVersions":["0.3.8"]}`,
	}
	for k, w := range want {
		if got, ok := kv[k]; !ok {
			t.Errorf("missing %s", k)
		} else if !jsonEqual(t, got, w) {
			t.Errorf("%s =\n %s\nwant\n %s", k, got, w)
		}
	}

	var v types.Vulnerability
	if err := json.Unmarshal([]byte(kv["vulnerability/CVE-2018-18074"]), &v); err != nil {
		t.Fatal(err)
	}
	if v.CVSS["nvd"].V3Score != 9.8 || v.CVSS["ghsa"].V3Score != 7.5 ||
		v.VendorSeverity["ghsa"] != types.SeverityHigh || v.VendorSeverity["nvd"] != types.SeverityCritical ||
		v.Severity != "CRITICAL" || !strings.HasPrefix(v.Title, "requests:") {
		t.Errorf("CVE-2018-18074 = %+v", v)
	}
	v = types.Vulnerability{}
	json.Unmarshal([]byte(kv["vulnerability/CVE-2024-6387"]), &v)
	if v.Severity != "HIGH" || v.CVSS["redhat"].V3Score != 8.1 || len(v.CVSS) != 1 {
		t.Errorf("CVE-2024-6387 = %+v", v)
	}
	v = types.Vulnerability{}
	json.Unmarshal([]byte(kv["vulnerability/CVE-2014-0050"]), &v)
	if v.Severity != "HIGH" || v.CVSS["nvd"].V3Score != 0 || v.CVSS["nvd"].V2Score != 7.5 {
		t.Errorf("CVE-2014-0050 = %+v", v)
	}

	// Every advisory bucket has its data-source entry.
	for k := range kv {
		bucket, _, _ := strings.Cut(k, "/")
		if bucket == "data-source" || bucket == "vulnerability" {
			continue
		}
		if _, ok := kv["data-source/"+bucket]; !ok {
			t.Errorf("bucket %q has no data-source entry", bucket)
		}
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// TestBuildReadByTrivyDB reads the built DB with trivy-db's own reader
// (pkg/db, as trivy's detectors do): prefix look-up of language buckets,
// data sources, statuses, vulnerability details.
func TestBuildReadByTrivyDB(t *testing.T) {
	dir := t.TempDir()
	if err := Build(dir, defaultFixtures(t), testTime); err != nil {
		t.Fatal(err)
	}
	if err := trivydb.Init(DBDir(dir)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trivydb.Close() })
	dbc := trivydb.Config{}

	// trivy's library driver looks up "<eco>::" by prefix.
	advs, err := dbc.GetAdvisories("npm::", "lodash")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range advs {
		got = append(got, a.VulnerabilityID)
		if a.DataSource == nil || a.DataSource.ID != "ghsa" {
			t.Errorf("%s: data source %+v", a.VulnerabilityID, a.DataSource)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"CVE-2019-10744", "CVE-2020-28500"}) {
		t.Errorf("npm lodash advisories = %v", got)
	}
	advs, err = dbc.GetAdvisories("go::", "golang.org/x/text")
	if err != nil || len(advs) != 1 || advs[0].DataSource.ID != "govulndb" {
		t.Errorf("go x/text = %+v, %v", advs, err)
	}

	advs, err = dbc.GetAdvisories("debian 12", "zlib")
	if err != nil || len(advs) != 1 || advs[0].Status != types.StatusWillNotFix || advs[0].FixedVersion != "" {
		t.Errorf("debian zlib = %+v, %v", advs, err)
	}
	advs, err = dbc.GetAdvisories("alpine 3.19", "busybox")
	if err != nil || len(advs) != 1 || advs[0].FixedVersion != "1.36.1-r2" || advs[0].DataSource.ID != "alpine" {
		t.Errorf("alpine 3.19 busybox = %+v, %v", advs, err)
	}

	v, err := dbc.GetVulnerability("CVE-2021-44228")
	if err != nil || v.CVSS["nvd"].V3Score != 10.0 || v.VendorSeverity["ghsa"] != types.SeverityCritical {
		t.Errorf("CVE-2021-44228 = %+v, %v", v, err)
	}
}

func TestBuildReproducible(t *testing.T) {
	fx := defaultFixtures(t)
	a, b := t.TempDir(), t.TempDir()
	if err := Build(a, fx, testTime); err != nil {
		t.Fatal(err)
	}
	if err := Build(b, fx, testTime.In(time.FixedZone("X", 3600))); err != nil { // same instant, other zone
		t.Fatal(err)
	}
	ma, _ := os.ReadFile(filepath.Join(a, "db", "metadata.json"))
	mb, _ := os.ReadFile(filepath.Join(b, "db", "metadata.json"))
	want := `{"Version":2,"NextUpdate":"2026-11-02T00:00:00Z","UpdatedAt":"2026-11-01T00:00:00Z","DownloadedAt":"2026-11-01T00:00:00Z"}` + "\n"
	if string(ma) != want || !bytes.Equal(ma, mb) {
		t.Errorf("metadata.json:\n%s%s want\n%s", ma, mb, want)
	}
	// Same content; in fact the same bytes, so the same DBRef.Digest.
	fa, _ := os.ReadFile(filepath.Join(a, "db", "trivy.db"))
	fb, _ := os.ReadFile(filepath.Join(b, "db", "trivy.db"))
	if !bytes.Equal(fa, fb) {
		t.Error("trivy.db differs between identical builds")
	}
	da, db := dump(t, filepath.Join(a, "db", "trivy.db")), dump(t, filepath.Join(b, "db", "trivy.db"))
	if len(da) == 0 || len(da) != len(db) {
		t.Fatalf("dump sizes %d, %d", len(da), len(db))
	}
	for k, v := range da {
		if db[k] != v {
			t.Errorf("%s differs", k)
		}
	}

	// Rebuilding over an existing DB replaces it and leaves no temp files.
	if err := Build(a, fx, testTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(a, "db"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"metadata.json", "trivy.db"}) {
		t.Errorf("db dir holds %v", names)
	}
	ref, err := ReadMetadata(a)
	if err != nil || !ref.UpdatedAt.Equal(testTime.Add(time.Hour)) {
		t.Errorf("after rebuild: %+v, %v", ref, err)
	}
	if err := Build(t.TempDir(), fx, time.Time{}); err == nil {
		t.Error("zero updatedAt: no error")
	}
	if err := Build(t.TempDir(), nil, testTime); err == nil {
		t.Error("nil fixtures: no error")
	}
}

func TestReadMetadata(t *testing.T) {
	dir := t.TempDir()
	if err := Build(dir, defaultFixtures(t), testTime); err != nil {
		t.Fatal(err)
	}
	ref, err := ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "db", "trivy.db"))
	sum := sha256.Sum256(b)
	want := assetscan.DBRef{SchemaVersion: 2, UpdatedAt: testTime, DownloadedAt: testTime, Digest: hex.EncodeToString(sum[:])}
	if ref != want {
		t.Errorf("ReadMetadata = %+v, want %+v", ref, want)
	}

	// Missing cache dir, missing trivy.db, missing metadata.
	if _, err := ReadMetadata(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, ErrNoDB) {
		t.Errorf("missing dir: %v", err)
	}
	noDB := t.TempDir()
	os.MkdirAll(filepath.Join(noDB, "db"), 0o755)
	os.WriteFile(filepath.Join(noDB, "db", "metadata.json"), []byte(`{"Version":2}`), 0o644)
	if _, err := ReadMetadata(noDB); !errors.Is(err, ErrNoDB) {
		t.Errorf("missing trivy.db: %v", err)
	}
	os.Remove(filepath.Join(dir, "db", "metadata.json"))
	if _, err := ReadMetadata(dir); !errors.Is(err, ErrNoDB) {
		t.Errorf("missing metadata: %v", err)
	}
	// Unparsable metadata.
	os.WriteFile(filepath.Join(dir, "db", "metadata.json"), []byte(`{"Version":`), 0o644)
	if _, err := ReadMetadata(dir); !errors.Is(err, ErrNoDB) {
		t.Errorf("bad metadata: %v", err)
	}
	// Wrong schema, either way.
	for _, v := range []int{1, 3} {
		os.WriteFile(filepath.Join(dir, "db", "metadata.json"),
			fmt.Appendf(nil, `{"Version":%d,"UpdatedAt":"2026-11-01T00:00:00Z"}`, v), 0o644)
		if _, err := ReadMetadata(dir); !errors.Is(err, ErrSchema) || errors.Is(err, ErrNoDB) {
			t.Errorf("schema %d: %v", v, err)
		}
	}
}

func TestStale(t *testing.T) {
	ref := assetscan.DBRef{SchemaVersion: 2, UpdatedAt: testTime}
	day := 24 * time.Hour
	for _, c := range []struct {
		ref    assetscan.DBRef
		maxAge time.Duration
		now    time.Time
		want   bool
	}{
		{ref, 7 * day, testTime.Add(7 * day), false},
		{ref, 7 * day, testTime.Add(7*day + time.Second), true},
		{ref, 7 * day, testTime.Add(-time.Hour), false}, // clock behind the build
		{ref, 0, testTime.Add(1000 * day), false},       // no limit
		{assetscan.DBRef{}, 0, testTime, true},          // no build time
		{assetscan.DBRef{}, 7 * day, testTime, true},
	} {
		if got := Stale(c.ref, c.maxAge, c.now); got != c.want {
			t.Errorf("Stale(%v, %v, %v) = %v", c.ref.UpdatedAt, c.maxAge, c.now, got)
		}
	}
}

// TestBuildJavaDB checks the layout trivy v0.74.0's pkg/javadb expects:
// <cache>/java-db/metadata.json readable by trivy-java-db with schema 1
// (javadb.Update with skip=true only needs it to exist), and a
// trivy-java.db that trivy-java-db's queries run against without error.
func TestBuildJavaDB(t *testing.T) {
	cache := t.TempDir()
	if err := BuildJavaDB(cache, testTime); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "java-db")
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 || entries[0].Name() != "java-db" {
		t.Errorf("cache holds %v, want only java-db", entries)
	}
	meta := javadb.NewMetadata(dir)
	m, err := meta.Get()
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || JavaSchemaVersion != 1 || !m.UpdatedAt.Equal(testTime) ||
		!m.DownloadedAt.Equal(testTime) || !m.NextUpdate.Equal(testTime.Add(72*time.Hour)) {
		t.Errorf("java metadata = %+v", m)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
	if want := `{"Version":1,"NextUpdate":"2026-11-04T00:00:00Z","UpdatedAt":"2026-11-01T00:00:00Z","DownloadedAt":"2026-11-01T00:00:00Z"}` + "\n"; string(raw) != want {
		t.Errorf("java metadata.json = %s", raw)
	}

	jdb, err := javadb.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer jdb.Close()
	idx, err := jdb.SelectIndexBySha1("da39a3ee5e6b4b0d3255bfef95601890afd80709")
	if err != nil || idx.ArtifactID != "" {
		t.Errorf("SelectIndexBySha1 = %+v, %v", idx, err)
	}
	idx, err = jdb.SelectIndexByArtifactIDAndGroupID("log4j-core", "org.apache.logging.log4j")
	if err != nil || idx.ArtifactID != "" {
		t.Errorf("SelectIndexByArtifactIDAndGroupID = %+v, %v", idx, err)
	}
	idxs, err := jdb.SelectIndexesByArtifactIDAndFileType("log4j-core", "2.14.1", "jar")
	if err != nil || len(idxs) != 0 {
		t.Errorf("SelectIndexesByArtifactIDAndFileType = %+v, %v", idxs, err)
	}

	// Rebuilding replaces it.
	if err := BuildJavaDB(cache, testTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m, _ := meta.Get(); !m.UpdatedAt.Equal(testTime.Add(time.Hour)) {
		t.Errorf("after rebuild: %+v", m)
	}
}

func TestBuildDefault(t *testing.T) {
	dir := t.TempDir()
	if err := BuildDefault(dir); err != nil {
		t.Fatal(err)
	}
	ref, err := ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	fx := defaultFixtures(t)
	if !ref.UpdatedAt.Equal(fx.UpdatedAt) || ref.SchemaVersion != SchemaVersion || len(ref.Digest) != 64 {
		t.Errorf("default DB = %+v", ref)
	}
	for _, f := range []string{"db/trivy.db", "db/metadata.json", "java-db/trivy-java.db", "java-db/metadata.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	kv := dump(t, filepath.Join(dir, "db", "trivy.db"))
	n := 0
	for k := range kv {
		if strings.HasPrefix(k, "vulnerability/") {
			n++
		}
	}
	if n != len(fx.Vulnerabilities) {
		t.Errorf("%d vulnerabilities in DB, %d in fixtures", n, len(fx.Vulnerabilities))
	}
}
