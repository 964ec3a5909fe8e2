package report

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/registry"
)

func TestRemediation(t *testing.T) {
	t.Parallel()
	score := 9.1
	tests := []struct {
		name string
		f    assetscan.Finding
		want string
	}{
		{"judged vulnerability", assetscan.Finding{Check: "vulnerability", Rule: "vulnerability.cvss", Path: "lodash-app/package-lock.json",
			Vulnerability: &assetscan.Vulnerability{ID: "CVE-2019-10744", Package: "lodash", InstalledVersion: "4.17.11", FixedVersion: "4.17.12", CVSSScore: &score}},
			"upgrade lodash to 4.17.12 or later"},
		{"raw vulnerability, several fixed versions", assetscan.Finding{Check: "vulnerability", Rule: "vulnerability",
			Vulnerability: &assetscan.Vulnerability{Package: "jackson-databind", FixedVersion: "2.9.10.8, 2.12.1"}},
			"upgrade jackson-databind to 2.9.10.8 or later"},
		{"no fix yet", assetscan.Finding{Rule: "vulnerability.severity", Vulnerability: &assetscan.Vulnerability{Package: "zlib"}},
			"no fixed version of zlib is known yet: replace zlib with another package, or remove it if it is not needed"},
		{"preset key", assetscan.Finding{Check: "account", Rule: "account.preset_key", Path: "root/.ssh/authorized_keys"},
			"remove root/.ssh/authorized_keys from the image: buyers add their own keys at first boot"},
		{"name rule", assetscan.Finding{Check: "format", Rule: "format.name", Path: "my app.zip"},
			"rename the file: only letters, digits, -, _ and ( ) before the extension (.zip, .tar, .tar.gz or .tgz)"},
		{"private key secret", assetscan.Finding{Check: "secret", Rule: "secret", Path: "certs/server.key",
			Secret: &assetscan.Secret{Category: "AsymmetricPrivateKey", Line: 1}},
			"remove the private key certs/server.key (line 1) from the package, revoke it, and load keys at run time from a secret store"},
		{"unknown secret category", assetscan.Finding{Rule: "secret.slack", Path: ".env", Secret: &assetscan.Secret{Category: "Slack", Line: 2}},
			"remove the secret from .env (line 2), revoke or rotate it, and load it at run time from a secret store"},
		{"malware", assetscan.Finding{Rule: "malware.detected", Path: "bin/x.exe", Malware: &assetscan.Malware{Signature: "Win.Trojan.X"}},
			"remove bin/x.exe (Win.Trojan.X) from the package, check the build machine, and rebuild from clean sources"},
		{"new hygiene rule", assetscan.Finding{Rule: "hygiene.something_new", Path: "etc/x"}, "clean etc/x before capturing the image"},
		{"unknown check", assetscan.Finding{Rule: "weird"}, "see the finding's message; fix it and submit again"},
	}
	for _, tt := range tests {
		if got := Remediation(tt.f); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	if got := RuleHelp("vulnerability.cvss"); got != "upgrade the package to the fixed version or later" {
		t.Errorf("RuleHelp: %q", got)
	}
	for id, rt := range rules() {
		if strings.Contains(RuleHelp(id), "{") || rt.Title == "" {
			t.Errorf("%s: help %q title %q", id, RuleHelp(id), rt.Title)
		}
	}
}

// TestEveryRuleHasText finds the rule ids the code emits (Rule* constants
// and Rule: "…" literals in non-test Go files of the module) and checks
// each has its own entry in the table, so a new rule is not shown with a
// generic text by accident. Rule ids that are policy keys, not findings,
// are not matched by the patterns.
func TestEveryRuleHasText(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`(?:\bRule\w*\s*=\s*|\bRule:\s*)"((?:format|archive|vulnerability|secret|malware|account|image|vulndb|hygiene)\.[a-z0-9_]+)"`)
	found := map[string]string{}
	root := ".."
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(data, -1) {
			found[string(m[1])] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 20 {
		t.Fatalf("found only %d rule ids: is the pattern stale? %v", len(found), found)
	}
	// Every rule of the registry too, but secret categories: they share the
	// "secret." text unless the table names them.
	for _, c := range registry.Checks() {
		for _, id := range c.Rules {
			if !strings.HasPrefix(id, "secret.") {
				found[id] = "registry"
			}
		}
	}
	table := rules()
	var missing []string
	for id, file := range found {
		if _, ok := table[id]; !ok {
			missing = append(missing, id+" ("+file+")")
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("rule %s has no remediation text: add it to report/remediation.go", m)
	}
	// The rules named in the issue, being added now by other checks.
	for _, id := range []string{"archive.hidden_data", "archive.prefix_script", "archive.sfx_stub", "hygiene.shell_history",
		"hygiene.ssh_password_auth", "hygiene.root_login", "hygiene.ssh_host_keys", "hygiene.eol_os", "hygiene.pending_security_fixes",
		"hygiene.log_files", "hygiene.machine_id", "hygiene.no_cloud_init", "hygiene.temp_credentials"} {
		if _, ok := table[id]; !ok {
			t.Errorf("no text for %s", id)
		}
	}
}
