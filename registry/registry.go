// Package registry is the one list of the checks assetscan runs: for each,
// its name, the asset kinds it applies to, and every rule id it can emit.
// Policies are validated against it (package policies): a rule, a check or
// a secret category the registry does not know is a policy error, and a
// policy must require every check that applies to its kind. A test reads
// the source tree and fails when code emits a rule id that is not listed
// here, so the list cannot drift from the code.
//
// Check code versions and engine identities are not listed here: they are
// taken at scan time from the checks themselves (scanner.Identifier) and
// recorded in every verdict.
package registry

import (
	"slices"
	"strings"

	"github.com/assetscan/assetscan"
)

// Check is one check of the rule book.
type Check struct {
	// Name is the check name recorded in verdicts (assetscan.Check*).
	Name string
	// Kinds are the asset kinds it applies to.
	Kinds []assetscan.Kind
	// Rules are the rule ids its findings carry (or that the policy
	// assigns to them when it judges them).
	Rules []string
	// Doc says in a line what the check reads.
	Doc string
}

var allKinds = []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage}
var imageKinds = []assetscan.Kind{assetscan.KindContainerImage, assetscan.KindVMImage}

// Checks returns the registry (a fresh copy).
func Checks() []Check {
	return []Check{
		{Name: assetscan.CheckFormat, Kinds: allKinds, Doc: "content digest, size, name and container format of the asset",
			Rules: []string{"format.unsupported", "format.name", "format.size", "format.mismatch", "format.digest_mismatch"}},
		{Name: assetscan.CheckArchive, Kinds: allKinds, Doc: "safe, bounded extraction of packages and images; every byte accounted",
			Rules: []string{"archive.traversal", "archive.link_escape", "archive.special_file", "archive.bomb",
				"archive.too_many_entries", "archive.too_deep", "archive.corrupt", "archive.duplicate",
				"archive.unsupported", "archive.bad_name", "archive.hidden_data", "archive.prefix_script", "archive.sfx_stub",
				"image.unreadable", "image.external_reference", "image.layer_digest_mismatch", "image.multiple_images",
				"image.partition_skipped", "image.too_large", "image.windows_credentials"}},
		{Name: assetscan.CheckVulnerability, Kinds: allKinds, Doc: "known vulnerabilities of OS and language packages (trivy)",
			Rules: []string{"vulnerability.cvss", "vulnerability.severity", "vulnerability.below_threshold", "vulndb.stale"}},
		{Name: assetscan.CheckSecret, Kinds: allKinds, Doc: "embedded secrets (trivy's secret rules, every text encoding)",
			Rules: secretRules()},
		{Name: assetscan.CheckMalware, Kinds: allKinds, Doc: "every file, nested archives included, by clamd",
			Rules: []string{"malware.detected", "malware.unscannable"}},
		{Name: assetscan.CheckAccount, Kinds: imageKinds, Doc: "preset OS accounts, passwords and login keys; declared passwords",
			Rules: []string{"account.preset_password", "account.empty_password", "account.weak_password",
				"account.weak_password_unchecked", "account.unsupported_hash", "account.preset_key", "account.login_private_key",
				"account.ssh_host_key", "account.cloud_init_password", "account.unreadable", "account.root_key_disabled",
				"account.declared_password_weak"}},
		{Name: CheckHygiene, Kinds: imageKinds, Doc: "image hygiene rules of the major marketplaces",
			Rules: []string{"hygiene.shell_history", "hygiene.ssh_password_auth", "hygiene.root_login", "hygiene.ssh_host_keys",
				"hygiene.eol_os", "hygiene.pending_security_fixes", "hygiene.log_files", "hygiene.machine_id",
				"hygiene.no_cloud_init", "hygiene.temp_credentials", "hygiene.unreadable"}},
	}
}

// CheckHygiene is the image hygiene check's name.
const CheckHygiene = "hygiene"

// SecretCategories are trivy v0.74's built-in secret rule categories; a
// secret finding is judged under rule "secret." + lower-case category.
func SecretCategories() []string {
	return []string{"AWS", "Adobe", "Age", "Alibaba", "Asana", "AsymmetricPrivateKey", "Atlassian", "Azure", "Beamer",
		"Bitbucket", "Clojars", "ContentfulDelivery", "Databricks", "Discord", "Docker", "Doppler", "Dropbox", "Duffel",
		"Dynatrace", "Easypost", "Facebook", "Fastly", "Finicity", "Flutterwave", "Frameio", "GitHub", "GitLab",
		"GoCardless", "Google", "Grafana", "HashiCorp", "Heroku", "HubSpot", "HuggingFace", "Intercom", "Ionic", "JWT",
		"Linear", "LinkedIn", "Lob", "Mailchimp", "Mailgun", "Mapbox", "Maven", "MessageBird", "NewRelic", "Npm",
		"OpenAI", "Planetscale", "Postman", "Private Packagist", "Pulumi", "PyPI", "RubyGems", "SendGrid", "Sendinblue",
		"Shippo", "Shopify", "Slack", "Stripe", "Symfony", "Twilio", "Twitch", "Twitter", "Typeform"}
}

func secretRules() []string {
	cats := SecretCategories()
	out := make([]string, 0, len(cats))
	for _, c := range cats {
		out = append(out, SecretRule(c))
	}
	return out
}

// SecretRule is the rule id of a secret category.
func SecretRule(category string) string { return "secret." + strings.ToLower(category) }

// KnownRule reports whether any check can emit rule.
func KnownRule(rule string) bool {
	for _, c := range Checks() {
		if slices.Contains(c.Rules, rule) {
			return true
		}
	}
	return false
}

// KnownCheck reports whether name is a check of the registry.
func KnownCheck(name string) bool {
	return slices.ContainsFunc(Checks(), func(c Check) bool { return c.Name == name })
}

// Applicable lists the checks that apply to kind, in registry order. The
// hygiene check is advisory (its rules warn by default) and not listed
// among the checks a policy must require.
func Applicable(kind assetscan.Kind) []string {
	var out []string
	for _, c := range Checks() {
		if slices.Contains(c.Kinds, kind) {
			out = append(out, c.Name)
		}
	}
	return out
}

// Mandatory lists the checks a policy for kind must require: the rule
// book's checks that apply to it (STANDARDS.md), so that no policy can
// turn a check that did not run into a pass.
func Mandatory(kind assetscan.Kind) []string {
	return slices.DeleteFunc(Applicable(kind), func(n string) bool { return n == CheckHygiene })
}
