package policies

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
)

func mustDefault(t *testing.T) *Policy {
	t.Helper()
	p, err := Default(assetscan.KindPackage)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultPackagePolicyUsesTheRuleBookNumbers(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	if p.Vulns.CVSSThreshold != 7.0 {
		t.Errorf("cvss threshold = %v, want 7.0", p.Vulns.CVSSThreshold)
	}
	if got := strings.Join(p.Vulns.FailSeveritiesWithoutCVSS, ","); got != "HIGH,CRITICAL" {
		t.Errorf("severity fallback = %s", got)
	}
	if p.Format.MaxSizeBytes != 20<<30 {
		t.Errorf("max size = %d, want 20 GiB", p.Format.MaxSizeBytes)
	}
	for _, c := range []string{"format", "archive", "vulnerability", "secret", "malware"} {
		found := false
		for _, r := range p.RequiredChecks {
			found = found || r == c
		}
		if !found {
			t.Errorf("check %q not required", c)
		}
	}
	if !strings.HasPrefix(p.Ref().Digest, "sha256:") || p.Ref().ID != "default-package" || p.Ref().Version != 1 {
		t.Errorf("ref = %+v", p.Ref())
	}
}

func TestNameRule(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		name string
		ok   bool
		ext  string
	}{
		{"my-app_1(2).zip", true, ".zip"},
		{"App.TAR.GZ", true, ".tar.gz"},
		{"app.tgz", true, ".tgz"},
		{"app.tar", true, ".tar"},
		{"app.1.0.zip", false, ".zip"}, // '.' is not allowed in the name
		{"my app.zip", false, ".zip"},
		{"app!.zip", false, ".zip"},
		{"приложение.zip", false, ".zip"},
		{"app（1）.zip", false, ".zip"}, // full-width parentheses are not ASCII
		{".zip", false, ".zip"},
		{"app.rar", false, ""},
		{"app.gz", false, ""},
		{"app", false, ""},
	}
	for _, tt := range tests {
		ext, reason, ok := p.NameAllowed(tt.name)
		if ok != tt.ok || ext != tt.ext {
			t.Errorf("NameAllowed(%q) = %q, %v (%s); want %q, %v", tt.name, ext, ok, reason, tt.ext, tt.ok)
		}
		if !ok && reason == "" {
			t.Errorf("NameAllowed(%q): no reason", tt.name)
		}
	}
}

func TestParseRejectsMalformedPolicies(t *testing.T) {
	t.Parallel()
	base := string(mustDefault(t).Raw())
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown field", "description:", "descripton:", "field descripton not found"},
		{"threshold too high", "cvss_threshold: 7.0", "cvss_threshold: 11", "line 14: vulnerabilities.cvss_threshold: must be in (0, 10]"},
		{"threshold zero", "cvss_threshold: 7.0", "cvss_threshold: 0", "vulnerabilities.cvss_threshold"},
		{"bad severity", "[HIGH, CRITICAL]", "[HIGH, SEVERE]", `unknown severity "SEVERE"`},
		{"bad kind", "kind: package", "kind: pkg", `kind: must be package, container-image or vm-image`},
		{"no id", "id: default-package", "id: ''", "id: required"},
		{"version zero", "version: 1", "version: 0", "version: must be a positive integer"},
		{"unknown check", "required_checks: [format,", "required_checks: [formats,", `unknown check "formats"`},
		{"bad regexp", `'^[A-Za-z0-9_()-]+$'`, `'^[A-Z'`, "format.name_pattern"},
		{"bad action", "malware.detected: fail", "malware.detected: ignore", `rules.malware.detected: must be fail, warn or info`},
		// Issue 10 item 9: gaps that turned errors into passes.
		{"empty required checks", "required_checks: [format, archive, vulnerability, secret, malware]", "required_checks: []", "required_checks: required"},
		{"partial required checks", "required_checks: [format, archive, vulnerability, secret, malware]", "required_checks: [format, archive, vulnerability, secret]", `check "malware" applies to every package and must be required`},
		{"unknown rule", "malware.detected: fail", "archive.link: info", `no check emits rule "archive.link"`},
		{"misspelt rule", "malware.detected: fail", "malware.detcted: fail", `no check emits rule "malware.detcted"`},
		{"unknown secret category", "- AWS ", "- Aws ", `unknown secret category "Aws"`},
		{"ratio", "max_ratio: 1000", "max_ratio: 1", "archive.max_ratio"},
		{"not yaml", "id: default-package", "id: [unclosed", "invalid policy"},
		{"wrong type", "max_entries: 1000000", "max_entries: lots", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := strings.Replace(base, tt.from, tt.to, 1)
			if doc == base {
				t.Fatalf("fixture edit %q not applied", tt.from)
			}
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func score(f float64) *float64 { return &f }

func vuln(id string, cvss *float64, sev string) assetscan.Finding {
	return assetscan.Finding{Check: assetscan.CheckVulnerability, Rule: "vulnerability", Path: "package-lock.json",
		Vulnerability: &assetscan.Vulnerability{ID: id, Package: "p", InstalledVersion: "1", Severity: sev, CVSSScore: cvss}}
}

func allChecksOK() []assetscan.CheckRun {
	var runs []assetscan.CheckRun
	for _, c := range []string{"format", "archive", "vulnerability", "secret", "malware"} {
		runs = append(runs, assetscan.CheckRun{Name: c, Status: assetscan.RunOK})
	}
	return runs
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	brokenMalware := allChecksOK()
	brokenMalware[4] = assetscan.CheckRun{Name: "malware", Status: assetscan.RunError, Reason: "clamd unreachable"}
	tests := []struct {
		name     string
		findings []assetscan.Finding
		checks   []assetscan.CheckRun
		want     assetscan.Outcome
		rules    string
	}{
		{"clean", nil, allChecksOK(), assetscan.Pass, ""},
		{"cvss 7.0 fails", []assetscan.Finding{vuln("CVE-1", score(7.0), "HIGH")}, allChecksOK(), assetscan.Fail, RuleVulnCVSS},
		{"cvss 6.9 warns even if HIGH", []assetscan.Finding{vuln("CVE-1", score(6.9), "HIGH")}, allChecksOK(), assetscan.Pass, ""},
		{"no cvss HIGH fails", []assetscan.Finding{vuln("CVE-1", nil, "HIGH")}, allChecksOK(), assetscan.Fail, RuleVulnSeverity},
		{"no cvss CRITICAL fails", []assetscan.Finding{vuln("CVE-1", nil, "CRITICAL")}, allChecksOK(), assetscan.Fail, RuleVulnSeverity},
		{"no cvss MEDIUM warns", []assetscan.Finding{vuln("CVE-1", nil, "MEDIUM")}, allChecksOK(), assetscan.Pass, ""},
		{"private key fails", []assetscan.Finding{{Check: "secret", Rule: "secret", Secret: &assetscan.Secret{RuleID: "private-key", Category: "AsymmetricPrivateKey"}}}, allChecksOK(), assetscan.Fail, "secret.asymmetricprivatekey"},
		{"aws key fails", []assetscan.Finding{{Check: "secret", Rule: "secret", Secret: &assetscan.Secret{RuleID: "aws-access-key-id", Category: "AWS"}}}, allChecksOK(), assetscan.Fail, "secret.aws"},
		{"slack token warns", []assetscan.Finding{{Check: "secret", Rule: "secret", Secret: &assetscan.Secret{RuleID: "slack-web-hook", Category: "Slack"}}}, allChecksOK(), assetscan.Pass, ""},
		{"archive traversal fails", []assetscan.Finding{{Check: "archive", Rule: "archive.traversal", Path: "../x"}}, allChecksOK(), assetscan.Fail, "archive.traversal"},
		{"prefix script is info", []assetscan.Finding{{Check: "archive", Rule: "archive.prefix_script", Path: "a.jar"}}, allChecksOK(), assetscan.Pass, ""},
		{"unknown rule fails closed", []assetscan.Finding{{Check: "archive", Rule: "archive.something_new"}}, allChecksOK(), assetscan.Fail, "archive.something_new"},
		{"check not run is error", nil, allChecksOK()[:4], assetscan.Error, ""},
		{"check errored is error", nil, brokenMalware, assetscan.Error, ""},
		{"fail beats error", []assetscan.Finding{vuln("CVE-1", score(9.8), "CRITICAL")}, brokenMalware, assetscan.Fail, RuleVulnCVSS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := Evaluate(p, assetscan.Findings{Findings: tt.findings, Checks: tt.checks}, Subject{At: time.Now()})
			if j.Outcome != tt.want {
				t.Fatalf("outcome = %s (%s), want %s", j.Outcome, j.Reason, tt.want)
			}
			var rules []string
			for _, r := range j.FailedRules {
				rules = append(rules, r.Rule)
			}
			if got := strings.Join(rules, ","); got != tt.rules {
				t.Errorf("failed rules = %q, want %q", got, tt.rules)
			}
			if j.Outcome == assetscan.Error && !strings.Contains(j.Reason, "malware") {
				t.Errorf("error reason %q does not name the check", j.Reason)
			}
		})
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	f := assetscan.Findings{Checks: allChecksOK(), Findings: []assetscan.Finding{
		vuln("CVE-2", score(9.8), "CRITICAL"), {Check: "archive", Rule: "archive.bomb"}, vuln("CVE-1", nil, "HIGH"),
	}}
	a := Evaluate(p, f, Subject{At: time.Now()})
	for range 20 {
		b := Evaluate(p, f, Subject{At: time.Now()})
		if len(a.FailedRules) != len(b.FailedRules) {
			t.Fatal("different failed rules")
		}
		for i := range a.FailedRules {
			if a.FailedRules[i] != b.FailedRules[i] {
				t.Fatalf("rule %d differs: %+v vs %+v", i, a.FailedRules[i], b.FailedRules[i])
			}
		}
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	doc := string(mustDefault(t).Raw()) + `
allow:
  - id: lodash-s1
    vulnerability: CVE-2019-10744
    package: lodash
    seller: s1
    reason: vendor patch backported, see ticket 42
    added_by: alice
    expires: 2026-12-31T00:00:00Z
  - id: old-log4j
    vulnerability: CVE-2021-44228
    reason: expired yesterday
    added_by: bob
    expires: 2026-11-26T12:00:00Z
  - id: asset-key
    rule: secret.asymmetricprivatekey
    asset: a-7
    reason: test key documented as such
    added_by: carol
    expires: 2027-01-01T00:00:00Z
`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	lodash := vuln("CVE-2019-10744", score(9.1), "CRITICAL")
	lodash.Vulnerability.Package = "lodash"
	log4j := vuln("CVE-2021-44228", score(10), "CRITICAL")
	key := assetscan.Finding{Check: "secret", Rule: "secret", Secret: &assetscan.Secret{Category: "AsymmetricPrivateKey"}}
	tests := []struct {
		name    string
		f       assetscan.Finding
		subject Subject
		want    assetscan.Outcome
		by      string
	}{
		{"seller-scoped entry applies to its seller", lodash, Subject{SellerID: "s1", At: now}, assetscan.Pass, "lodash-s1"},
		{"seller-scoped entry does not help another seller", lodash, Subject{SellerID: "s2", At: now}, assetscan.Fail, ""},
		{"entry expired yesterday no longer suppresses", log4j, Subject{SellerID: "s1", At: now}, assetscan.Fail, ""},
		{"asset-scoped rule entry", key, Subject{SellerID: "s9", AssetID: "a-7", At: now}, assetscan.Pass, "asset-key"},
		{"asset-scoped rule entry, other asset", key, Subject{SellerID: "s9", AssetID: "a-8", At: now}, assetscan.Fail, ""},
		{"entry stops applying at its expiry", lodash, Subject{SellerID: "s1", At: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}, assetscan.Fail, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			j := Evaluate(p, assetscan.Findings{Findings: []assetscan.Finding{tt.f}, Checks: allChecksOK()}, tt.subject)
			if j.Outcome != tt.want {
				t.Fatalf("outcome = %s, want %s", j.Outcome, tt.want)
			}
			jf := j.Findings[0]
			if tt.by == "" {
				if jf.AllowedBy != nil {
					t.Errorf("allowed by %+v", jf.AllowedBy)
				}
				return
			}
			if jf.Action != assetscan.ActionAllowed || jf.AllowedBy == nil || jf.AllowedBy.ID != tt.by || jf.AllowedBy.Reason == "" {
				t.Errorf("finding = %+v / %+v, want allowed by %s and still reported", jf, jf.AllowedBy, tt.by)
			}
		})
	}
}

func TestAllowListValidation(t *testing.T) {
	t.Parallel()
	base := string(mustDefault(t).Raw())
	entry := func(body string) string { return base + "\nallow:\n  - id: e1\n" + body }
	tests := []struct{ name, doc, want string }{
		{"no expiry", entry("    vulnerability: CVE-1\n    reason: r\n    added_by: a\n"), "allow.0.expires"},
		{"no reason", entry("    vulnerability: CVE-1\n    added_by: a\n    expires: 2027-01-01T00:00:00Z\n"), "a reason is required"},
		{"both kinds", entry("    vulnerability: CVE-1\n    rule: secret.aws\n    reason: r\n    added_by: a\n    expires: 2027-01-01T00:00:00Z\n"), "exactly one of vulnerability or rule"},
		{"malware without signature", entry("    rule: malware.detected\n    reason: r\n    added_by: a\n    expires: 2027-01-01T00:00:00Z\n"), "must name the signature"},
		{"seller and asset", entry("    rule: secret.aws\n    seller: s\n    asset: a\n    reason: r\n    added_by: a\n    expires: 2027-01-01T00:00:00Z\n"), "not both"},
		{"duplicate id", base + "\nallow:\n  - {id: e1, rule: secret.aws, reason: r, added_by: a, expires: 2027-01-01T00:00:00Z}\n  - {id: e1, rule: secret.gcp, reason: r, added_by: a, expires: 2027-01-01T00:00:00Z}\n", `duplicate allow entry id "e1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error does not name the line: %v", err)
			}
		})
	}
}

// The name, size and claimed-format rules are judged from the facts under
// the policy in force, so re-evaluation re-judges them (issue 10 item 3).
func TestFactsAreJudged(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		name  string
		facts assetscan.Facts
		want  []string
	}{
		{"clean", assetscan.Facts{Name: "app-1.zip", Size: 10, Format: "zip"}, nil},
		{"bad name", assetscan.Facts{Name: "my app.zip", Size: 10, Format: "zip"}, []string{RuleName}},
		{"too large", assetscan.Facts{Name: "app.zip", Size: 21474836481, Format: "zip", NotDownloaded: true}, []string{RuleSize}},
		{"claims zip, is tar", assetscan.Facts{Name: "app.zip", Size: 10, Format: "tar"}, []string{RuleMismatch}},
		{"tgz is tar.gz", assetscan.Facts{Name: "app.tgz", Size: 10, Format: "tar.gz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			facts := tt.facts
			var got []string
			for _, f := range p.factFindings(&facts) {
				got = append(got, f.Rule)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("rules = %v, want %v", got, tt.want)
			}
		})
	}
}

// Images: fixable vulnerabilities below the threshold are one
// hygiene.pending_security_fixes finding, counted per severity.
func TestPendingSecurityFixes(t *testing.T) {
	t.Parallel()
	p, err := Default(assetscan.KindVMImage)
	if err != nil {
		t.Fatal(err)
	}
	low := vuln("CVE-L", score(3.1), "LOW")
	low.Vulnerability.FixedVersion = "1.2"
	med := vuln("CVE-M", score(5.0), "MEDIUM")
	med.Vulnerability.FixedVersion = "2.0"
	unfixed := vuln("CVE-U", score(5.0), "MEDIUM")
	f := p.pendingFixes([]assetscan.Finding{low, med, unfixed, vuln("CVE-H", score(9.8), "CRITICAL")})
	if f == nil || f.Rule != RulePendingFixes || !strings.Contains(f.Message, "2 fixable") || !strings.Contains(f.Message, "LOW 1, MEDIUM 1") {
		t.Fatalf("pendingFixes = %+v", f)
	}
	if jf := p.judge(*f); jf.Action != assetscan.ActionInfo {
		t.Errorf("default action %s, want info", jf.Action)
	}
	if pkg := mustDefault(t); pkg.pendingFixes([]assetscan.Finding{low}) != nil {
		t.Error("packages have no pending-fixes rule")
	}
}
