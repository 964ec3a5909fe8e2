package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/assetscan/assetscan"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixedTime replaces the "<time>" placeholders of the scan goldens.
const fixedTime = "2026-11-02T10:00:00Z"

// loadVerdict reads a verdict golden of `assetscan scan` (the shipped
// sample packages) from the repository's testdata/golden.
func loadVerdict(t testing.TB, name string) assetscan.Verdict {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte(`"<time>"`), []byte(`"`+fixedTime+`"`))
	var v assetscan.Verdict
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	v.ScanID, v.AssetID, v.SellerID, v.Revision = "scn_"+name, "asset-"+name, "acme", 1
	return v
}

// lodashFindings is the inventory the scan of lodash-app.zip stores.
func lodashFindings() assetscan.Findings {
	return assetscan.Findings{Components: []assetscan.Component{
		{Name: "lodash-app", Version: "1.0.0", Type: "npm", Path: "lodash-app/package-lock.json", Target: "lodash-app/package-lock.json"},
		{Name: "lodash", Version: "4.17.11", Type: "npm", Path: "lodash-app/package-lock.json", Target: "lodash-app/package-lock.json"},
	}}
}

func cleanFindings() assetscan.Findings {
	return assetscan.Findings{Components: []assetscan.Component{
		{Name: "clean-app", Version: "1.0.0", Type: "npm", Path: "clean-app/package-lock.json", Target: "clean-app/package-lock.json"},
		{Name: "left-pad", Version: "1.3.0", Type: "npm", Path: "clean-app/package-lock.json", Target: "clean-app/package-lock.json"},
	}}
}

// errorVerdict is clean-app's verdict had the malware engine been down.
func errorVerdict(t testing.TB) assetscan.Verdict {
	v := loadVerdict(t, "clean-app")
	v.ScanID, v.Verdict = "scn_error-app", assetscan.Error
	v.Reason = "required check did not complete: malware: clamd unreachable: dial tcp 127.0.0.1:3310: connection refused"
	for i := range v.Checks {
		if v.Checks[i].Name == assetscan.CheckMalware {
			v.Checks[i] = assetscan.CheckRun{Name: assetscan.CheckMalware, Status: assetscan.RunError, Reason: "clamd unreachable: dial tcp 127.0.0.1:3310: connection refused"}
		}
	}
	return v
}

// hostile is a container image verdict with every kind of finding, and
// names an attacker chose: markup, quotes, nested archives, layers.
func hostile() (assetscan.Verdict, assetscan.Findings) {
	score := 7.5
	at := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	evil := `<script>alert("x")</script>'"&.js`
	v := assetscan.Verdict{
		ScanID: "scn_hostile", AssetID: "img-1", SellerID: "acme", Kind: assetscan.KindContainerImage,
		Status: assetscan.StatusDone, Verdict: assetscan.Fail, Revision: 2, Supersedes: "scn_hostile@1",
		Reason:      "failed rules: account.preset_key (1), malware.detected (1), vulnerability.cvss (1)",
		FailedRules: []assetscan.FailedRule{{Rule: "account.preset_key", Count: 1}, {Rule: "malware.detected", Count: 1}, {Rule: "vulnerability.cvss", Count: 1}},
		SHA256:      strings.Repeat("ab", 32),
		Object:      assetscan.Object{Bucket: "uploads", Key: "acme/<img>\".tar", Name: `<img src=x onerror=alert(1)>".tar`, Size: 123456},
		Policy:      assetscan.PolicyRef{ID: "default-container-image", Version: 3, Digest: "sha256:" + strings.Repeat("cd", 32)},
		Findings: []assetscan.JudgedFinding{
			{Finding: assetscan.Finding{Check: "vulnerability", Rule: "vulnerability.cvss", Path: "app/lib/vendor.zip!/" + evil + "!/package.json",
				Layer: "sha256:" + strings.Repeat("1", 64), Message: "pkg " + evil + " 1.0.0 CVE-2024-0001",
				Vulnerability: &assetscan.Vulnerability{ID: "CVE-2024-0001", Package: evil, PackageType: "npm", InstalledVersion: "1.0.0", FixedVersion: "1.0.1, 2.0.1",
					Severity: "HIGH", CVSSScore: &score, CVSSSource: "ghsa", CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", Title: evil}},
				Action: assetscan.ActionFail},
			{Finding: assetscan.Finding{Check: "vulnerability", Rule: "vulnerability.severity", Path: "usr/lib/os-release", Message: "openssl 3.0.11-1~deb12u1 CVE-2024-0002",
				Vulnerability: &assetscan.Vulnerability{ID: "CVE-2024-0002", Package: "openssl", PackageType: "debian", InstalledVersion: "3.0.11-1~deb12u1", Severity: "CRITICAL"}},
				Action:    assetscan.ActionAllowed,
				AllowedBy: &assetscan.AllowRef{ID: "allow-7", Reason: "vendor backport <b>verified</b>", AddedBy: "alice", Expires: at.AddDate(0, 1, 0)}},
			{Finding: assetscan.Finding{Check: "account", Rule: "account.preset_key", Path: "root/.ssh/authorized_keys", Layer: "sha256:" + strings.Repeat("2", 64),
				Message: "account root: 1 key in root/.ssh/authorized_keys"}, Action: assetscan.ActionFail},
			{Finding: assetscan.Finding{Check: "malware", Rule: "malware.detected", Path: "opt/" + evil, Message: "Eicar-Signature found",
				Malware: &assetscan.Malware{Signature: "Eicar-Signature", Engine: "clamav"}}, Action: assetscan.ActionFail},
			{Finding: assetscan.Finding{Check: "secret", Rule: "secret.github", Path: "app/.env", Message: "GitHub personal access token",
				Secret: &assetscan.Secret{RuleID: "github-pat", Category: "GitHub", Title: "GitHub Personal Access Token", Severity: "CRITICAL", Line: 3, Match: "GITHUB_TOKEN=****"}},
				Action: assetscan.ActionWarn},
			{Finding: assetscan.Finding{Check: "archive", Rule: "archive.link", Path: "app/current", Message: "symlink to releases/1"}, Action: assetscan.ActionInfo},
		},
		Checks: []assetscan.CheckRun{
			{Name: "format", Status: "ok", Detail: "123456 bytes"},
			{Name: "archive", Status: "ok", Detail: "2 layers, 1000 files", Coverage: &assetscan.Coverage{Files: 1000, Bytes: 5 << 20, NotExaminedCount: 1,
				NotExamined: []assetscan.NotExamined{{Path: "app/" + evil + ".7z", Bytes: 10, Reason: "7z is not read"}}}},
			{Name: "vulnerability", Status: "ok", Detail: "3 components"},
			{Name: "secret", Status: "ok", Detail: "1000 files"},
			{Name: "malware", Status: "ok", Detail: "1000 files"},
			{Name: "account", Status: "ok", Detail: "passwd, shadow, 2 homes " + evil},
		},
		Engines:     map[string]string{"trivy": "v0.74.0", "clamav": "ClamAV 1.4.2/27000", "clamav-signatures": "sha256:" + strings.Repeat("ef", 32)},
		VulnDB:      &assetscan.DBRef{SchemaVersion: 2, UpdatedAt: at.Add(-24 * time.Hour), Digest: strings.Repeat("01", 32)},
		Components:  3,
		SubmittedAt: at.Add(-time.Minute), CompletedAt: at,
	}
	f := assetscan.Findings{
		OS: &assetscan.OSInfo{Family: "debian", Name: "12.5"},
		Components: []assetscan.Component{
			{Name: evil, Version: "1.0.0", Type: "npm", Path: "app/lib/vendor.zip!/" + evil + "!/package.json"},
			{Name: "openssl", Version: "3.0.11", Release: "1~deb12u1", Epoch: 1, Arch: "amd64", Type: "debian", OS: true, SrcName: "openssl", SrcVersion: "3.0.11", SrcRelease: "1~deb12u1", Target: "debian 12.5"},
			{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", Type: "jar", Path: "app/lib/log4j-core-2.14.1.jar"},
			{Name: "github.com/gin-gonic/gin", Version: "v1.9.0", Type: "gobinary", Path: "app/bin/server"},
			{Name: "Django_Rest", Version: "3.14.0", Type: "pip", Path: "app/requirements.txt"},
			{Name: "@babel/core", Version: "7.0.0", Type: "npm", Path: "app/package-lock.json"},
			{Name: "@babel/core", Version: "7.0.0", Type: "npm", Path: "app/other/package-lock.json"},
			{Name: "mystery", Version: "1", Type: "unknown-ecosystem", Path: "x"},
		},
	}
	return v, f
}

type sample struct {
	name string
	v    assetscan.Verdict
	f    assetscan.Findings
}

func samples(t testing.TB) []sample {
	hv, hf := hostile()
	return []sample{
		{"lodash-app", loadVerdict(t, "lodash-app"), lodashFindings()},
		{"clean-app", loadVerdict(t, "clean-app"), cleanFindings()},
		{"error-app", errorVerdict(t), cleanFindings()},
		{"hostile-image", hv, hf},
	}
}

func render(t testing.TB, format string, s sample) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, format, s.v, s.f); err != nil {
		t.Fatalf("%s %s: %v", s.name, format, err)
	}
	return b.Bytes()
}

// TestGolden compares every format of every sample with its golden file
// (testdata/golden/<sample><ext>); -update rewrites them.
func TestGolden(t *testing.T) {
	for _, s := range samples(t) {
		for _, format := range []string{FormatSARIF, FormatCycloneDX, FormatHTML} {
			t.Run(s.name+"/"+format, func(t *testing.T) {
				got := render(t, format, s)
				golden := filepath.Join("testdata", "golden", s.name+FileExtension(format))
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./report -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s; run go test ./report -update after a deliberate change:\n%s", format, golden, got)
				}
				// Deterministic: a second rendering gives the same bytes.
				if again := render(t, format, s); !bytes.Equal(again, got) {
					t.Errorf("two renderings differ")
				}
			})
		}
	}
}

func compileSchema(t testing.TB, main string, extra ...string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range append([]string{main}, extra...) {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			id, _ = doc.(map[string]any)["id"].(string)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == main {
			main = id
		}
	}
	sch, err := c.Compile(main)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, doc []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("schema: %v", err)
	}
}

func TestSARIFSchema(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t, "sarif-schema-2.1.0.json")
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			doc := render(t, FormatSARIF, s)
			validate(t, sch, doc)
			var log struct {
				Version string `json:"version"`
				Runs    []struct {
					Tool struct {
						Driver struct {
							Name    string `json:"name"`
							Version string `json:"version"`
							Rules   []struct {
								ID   string                `json:"id"`
								Help struct{ Text string } `json:"help"`
							} `json:"rules"`
						} `json:"driver"`
					} `json:"tool"`
					Results []struct {
						RuleID string `json:"ruleId"`
						Level  string `json:"level"`
					} `json:"results"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(doc, &log); err != nil {
				t.Fatal(err)
			}
			results := 0
			for _, r := range log.Runs {
				results += len(r.Results)
				for _, rule := range r.Tool.Driver.Rules {
					if rule.Help.Text == "" {
						t.Errorf("rule %s has no help text", rule.ID)
					}
				}
				if r.Tool.Driver.Name == "trivy" && r.Tool.Driver.Version != s.v.Engines["trivy"] {
					t.Errorf("trivy driver version %q, want %q", r.Tool.Driver.Version, s.v.Engines["trivy"])
				}
			}
			if results != len(s.v.Findings) {
				t.Errorf("%d results for %d findings", results, len(s.v.Findings))
			}
		})
	}
}

func TestSARIFLevelsAndLocations(t *testing.T) {
	t.Parallel()
	v, _ := hostile()
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					Physical struct {
						Artifact struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
					Logical []struct{ Kind, Name, FullyQualifiedName string } `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	var b bytes.Buffer
	if err := SARIF(&b, v); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	levels := map[string]string{}
	for _, r := range log.Runs {
		for _, res := range r.Results {
			levels[res.RuleID] = res.Level
			if res.RuleID == "vulnerability.cvss" {
				loc := res.Locations[0]
				if loc.Physical.Artifact.URI != "app/lib/vendor.zip" {
					t.Errorf("nested member: uri %q, want the outer archive", loc.Physical.Artifact.URI)
				}
				kinds := map[string]string{}
				for _, l := range loc.Logical {
					kinds[l.Kind] = l.Name + "|" + l.FullyQualifiedName
				}
				if !strings.HasSuffix(kinds["member"], "|"+v.Findings[0].Path) || !strings.HasPrefix(kinds["layer"], "sha256:1111") {
					t.Errorf("logical locations %v", kinds)
				}
			}
		}
	}
	want := map[string]string{"vulnerability.cvss": "error", "vulnerability.severity": "note", "account.preset_key": "error",
		"malware.detected": "error", "secret.github": "warning", "archive.link": "note"}
	for rule, lvl := range want {
		if levels[rule] != lvl {
			t.Errorf("%s: level %q, want %q", rule, levels[rule], lvl)
		}
	}
}

func TestCycloneDXSchema(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t, "bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json")
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			validate(t, sch, render(t, FormatCycloneDX, s))
		})
	}
}

func TestCycloneDXContent(t *testing.T) {
	t.Parallel()
	v, f := hostile()
	var b bytes.Buffer
	if err := CycloneDX(&b, v, f); err != nil {
		t.Fatal(err)
	}
	var bom struct {
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component struct {
				Hashes []struct{ Alg, Content string } `json:"hashes"`
			} `json:"component"`
		} `json:"metadata"`
		Components []struct {
			BOMRef     string `json:"bom-ref"`
			Name       string `json:"name"`
			Group      string `json:"group"`
			Purl       string `json:"purl"`
			Properties []struct{ Name, Value string }
		} `json:"components"`
		Vulnerabilities []struct {
			ID      string `json:"id"`
			Ratings []struct {
				Source struct{ Name string }
				Score  float64
				Method string
			}
			Affects    []struct{ Ref string }
			Analysis   struct{ Detail string }
			Properties []struct{ Name, Value string }
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(b.Bytes(), &bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != "1.6" {
		t.Errorf("specVersion %s", bom.SpecVersion)
	}
	if h := bom.Metadata.Component.Hashes; len(h) != 1 || h[0].Content != v.SHA256 {
		t.Errorf("asset hash %v", h)
	}
	purls := map[string]bool{}
	refs := map[string]bool{}
	for _, c := range bom.Components {
		purls[c.Purl] = true
		if refs[c.BOMRef] {
			t.Errorf("duplicate bom-ref %s", c.BOMRef)
		}
		refs[c.BOMRef] = true
		if c.Name != "debian" {
			found := false
			for _, p := range c.Properties {
				found = found || p.Name == "assetscan:path" || p.Name == "assetscan:target"
			}
			if !found {
				t.Errorf("component %s without where it was found", c.Name)
			}
		}
	}
	for _, want := range []string{
		"pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=amd64&distro=debian-12.5&epoch=1",
		"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
		"pkg:golang/github.com/gin-gonic/gin@v1.9.0",
		"pkg:pypi/django-rest@3.14.0",
		"pkg:npm/%40babel/core@7.0.0",
	} {
		if !purls[want] {
			t.Errorf("no component with purl %s; have %v", want, purls)
		}
	}
	if len(bom.Vulnerabilities) != 2 {
		t.Fatalf("%d vulnerabilities, want 2", len(bom.Vulnerabilities))
	}
	v0 := bom.Vulnerabilities[0]
	if len(v0.Ratings) == 0 || v0.Ratings[0].Score != 7.5 || v0.Ratings[0].Source.Name != "ghsa" || v0.Ratings[0].Method != "CVSSv31" {
		t.Errorf("ratings %+v", v0.Ratings)
	}
	if len(v0.Affects) != 1 || !refs[v0.Affects[0].Ref] || v0.Affects[0].Ref == assetRef {
		t.Errorf("affects %+v does not name the component", v0.Affects)
	}
	action := func(i int) string {
		for _, p := range bom.Vulnerabilities[i].Properties {
			if p.Name == "assetscan:action" {
				return p.Value
			}
		}
		return ""
	}
	if action(0) != "fail" || action(1) != "allowed" || !strings.Contains(bom.Vulnerabilities[1].Analysis.Detail, "allow-7") {
		t.Errorf("policy decisions: %q %q %q", action(0), action(1), bom.Vulnerabilities[1].Analysis.Detail)
	}
}

func TestPackageURL(t *testing.T) {
	t.Parallel()
	deb := &assetscan.OSInfo{Family: "debian", Name: "12.5"}
	alp := &assetscan.OSInfo{Family: "alpine", Name: "3.19.1"}
	el := &assetscan.OSInfo{Family: "redhat", Name: "9.3"}
	tests := []struct {
		c    assetscan.Component
		os   *assetscan.OSInfo
		want string
	}{
		{assetscan.Component{Name: "lodash", Version: "4.17.11", Type: "npm"}, nil, "pkg:npm/lodash@4.17.11"},
		{assetscan.Component{Name: "@types/node", Version: "20.1.0", Type: "yarn"}, nil, "pkg:npm/%40types/node@20.1.0"},
		{assetscan.Component{Name: "PyYAML", Version: "5.3", Type: "pip"}, nil, "pkg:pypi/pyyaml@5.3"},
		{assetscan.Component{Name: "com.fasterxml.jackson.core:jackson-databind", Version: "2.9.8", Type: "jar"}, nil, "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.8"},
		{assetscan.Component{Name: "golang.org/x/net", Version: "v0.1.0", Type: "gomod"}, nil, "pkg:golang/golang.org/x/net@v0.1.0"},
		{assetscan.Component{Name: "serde", Version: "1.0.0", Type: "cargo"}, nil, "pkg:cargo/serde@1.0.0"},
		{assetscan.Component{Name: "Newtonsoft.Json", Version: "12.0.1", Type: "nuget"}, nil, "pkg:nuget/Newtonsoft.Json@12.0.1"},
		{assetscan.Component{Name: "guzzlehttp/guzzle", Version: "7.0.0", Type: "composer"}, nil, "pkg:composer/guzzlehttp/guzzle@7.0.0"},
		{assetscan.Component{Name: "rails", Version: "6.0.0", Type: "bundler"}, nil, "pkg:gem/rails@6.0.0"},
		{assetscan.Component{Name: "bash", Version: "5.2.15", Release: "2+b2", Arch: "amd64", Type: "debian", OS: true}, deb, "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12.5"},
		{assetscan.Component{Name: "musl", Version: "1.2.4-r2", Arch: "x86_64", Type: "alpine", OS: true}, alp, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"},
		{assetscan.Component{Name: "openssl", Version: "3.0.7", Release: "25.el9", Epoch: 1, Arch: "x86_64", Type: "redhat", OS: true}, el, "pkg:rpm/redhat/openssl@3.0.7-25.el9?arch=x86_64&distro=redhat-9.3&epoch=1"},
		{assetscan.Component{Name: "thing", Version: "1", Type: "made-up"}, nil, ""},
	}
	for _, tt := range tests {
		if got := PackageURL(tt.c, tt.os); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.c.Type, tt.c.Name, got, tt.want)
		}
	}
}

// TestHTMLEscaping: names from the asset (file, package, message, asset
// name, allow reason) never come out as markup.
func TestHTMLEscaping(t *testing.T) {
	t.Parallel()
	v, _ := hostile()
	var b bytes.Buffer
	if err := HTML(&b, v); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	low := strings.ToLower(out)
	for _, bad := range []string{"<script", "<img", "<b>", `alert("x")`} {
		if strings.Contains(low, bad) {
			t.Errorf("unescaped %q in the page", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;&#34;&amp;.js", "&lt;img src=x onerror=alert(1)&gt;&#34;.tar", "&lt;b&gt;verified&lt;/b&gt;"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks the escaped %q", want)
		}
	}
	// Failed rules come first, then warnings, then information.
	iFail, iWarn, iInfo := strings.Index(out, `id="fail"`), strings.Index(out, `id="warn"`), strings.Index(out, `id="info"`)
	if iFail < 0 || iWarn < iFail || iInfo < iWarn {
		t.Errorf("section order: fail %d, warn %d, info %d", iFail, iWarn, iInfo)
	}
	for _, want := range []string{"upgrade &lt;script&gt;", "remove root/.ssh/authorized_keys from the image", "FAIL", "default-container-image v3", "What was checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	t.Parallel()
	err := Write(&bytes.Buffer{}, "pdf", assetscan.Verdict{}, assetscan.Findings{})
	if err == nil || !strings.Contains(err.Error(), ErrUnknownFormat.Error()) {
		t.Fatalf("got %v", err)
	}
	for _, f := range Formats() {
		if ct, err := ContentType(f); err != nil || ct == "" || FileExtension(f) == "" {
			t.Errorf("%s: %q %v", f, ct, err)
		}
	}
}

// FuzzReports renders a verdict whose attacker-controlled strings are
// fuzzed: no panic, JSON formats stay valid JSON, the page stays inert.
func FuzzReports(f *testing.F) {
	f.Add("lodash-app/package-lock.json", "lodash", "4.17.11", "4.17.12", "msg")
	f.Add("a.zip!/b.tar!/<script>.js", `"><svg onload=x>`, "1.0", "", "\x00\xff")
	f.Fuzz(func(t *testing.T, path, pkg, installed, fixed, msg string) {
		score := 9.8
		v := assetscan.Verdict{Status: assetscan.StatusDone, Verdict: assetscan.Fail, Object: assetscan.Object{Name: pkg + ".zip"},
			Findings: []assetscan.JudgedFinding{
				{Finding: assetscan.Finding{Check: "vulnerability", Rule: "vulnerability.cvss", Path: path, Layer: msg, Message: msg,
					Vulnerability: &assetscan.Vulnerability{ID: msg, Package: pkg, PackageType: "npm", InstalledVersion: installed, FixedVersion: fixed, CVSSScore: &score, CVSSVector: msg}}, Action: assetscan.ActionFail},
				{Finding: assetscan.Finding{Check: msg, Rule: msg, Path: path, Message: msg}, Action: assetscan.Action(msg)},
			},
			Checks: []assetscan.CheckRun{{Name: msg, Status: msg, Detail: path}}, Engines: map[string]string{msg: pkg}}
		fs := assetscan.Findings{Components: []assetscan.Component{{Name: pkg, Version: installed, Type: "npm", Path: path},
			{Name: pkg, Version: installed, Type: "debian", Release: fixed, OS: true}}, OS: &assetscan.OSInfo{Family: msg, Name: installed}}
		for _, format := range Formats() {
			var b bytes.Buffer
			if err := Write(&b, format, v, fs); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			switch format {
			case FormatHTML:
				if strings.Contains(strings.ToLower(b.String()), "<script") || strings.Contains(b.String(), "<svg") {
					t.Fatalf("markup from the asset in the page")
				}
			default:
				if !json.Valid(b.Bytes()) {
					t.Fatalf("%s: invalid JSON", format)
				}
			}
		}
	})
}
