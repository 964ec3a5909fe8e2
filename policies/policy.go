// Package policies turns findings into verdicts. A policy is a YAML file
// (one default per asset kind lives beside this file and is embedded in the
// binary); Evaluate judges a scan's findings under a policy. Evaluation is
// pure: the same findings and policy always give the same verdict, which is
// what makes verdicts reproducible and re-evaluation possible without a
// rescan.
package policies

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/registry"
)

//go:embed *.yaml
var defaults embed.FS

// ErrInvalid is wrapped by every policy validation error.
var ErrInvalid = errors.New("invalid policy")

// Policy is a parsed, validated policy. Fields mirror the YAML keys; see
// policies/README.md for the meaning of each.
type Policy struct {
	ID             string            `yaml:"id"`
	Version        int               `yaml:"version"`
	Kind           assetscan.Kind    `yaml:"kind"`
	Description    string            `yaml:"description"`
	RequiredChecks []string          `yaml:"required_checks"`
	Vulns          VulnRules         `yaml:"vulnerabilities"`
	Secrets        SecretRules       `yaml:"secrets"`
	Format         FormatRules       `yaml:"format"`
	Archive        ArchiveLimits     `yaml:"archive"`
	Passwords      PasswordRules     `yaml:"passwords"`
	VulnDB         VulnDBRules       `yaml:"vulndb"`
	Rules          map[string]string `yaml:"rules"`
	Allow          []AllowEntry      `yaml:"allow"`

	digest string
	raw    []byte
}

// VulnRules decide on vulnerability findings.
type VulnRules struct {
	// CVSSThreshold: a vulnerability whose highest CVSS v3 base score is at
	// least this fails. Range 0–10.
	CVSSThreshold float64 `yaml:"cvss_threshold"`
	// FailSeveritiesWithoutCVSS: with no CVSS score, these severities fail.
	FailSeveritiesWithoutCVSS []string `yaml:"fail_severities_without_cvss"`
}

// SecretRules decide on secret findings.
type SecretRules struct {
	// FailCategories are trivy secret categories that fail the asset.
	FailCategories []string `yaml:"fail_categories"`
	// Other is the action for any other secret: warn (default), fail, info.
	Other string `yaml:"other"`
}

// FormatRules are the package format and name rules.
type FormatRules struct {
	MaxSizeBytes int64    `yaml:"max_size_bytes"`
	NamePattern  string   `yaml:"name_pattern"`
	Extensions   []string `yaml:"extensions"`

	nameRe *regexp.Regexp
}

// ArchiveLimits bound extraction of hostile archives.
type ArchiveLimits struct {
	MaxExpandedBytes int64   `yaml:"max_expanded_bytes"`
	MaxEntries       int     `yaml:"max_entries"`
	MaxDepth         int     `yaml:"max_depth"`
	MaxRatio         float64 `yaml:"max_ratio"`
}

// PasswordRules is the password complexity rule (declared initial
// passwords of images).
type PasswordRules struct {
	MinLength         int  `yaml:"min_length"`          // default 8
	MinClasses        int  `yaml:"min_classes"`         // of lower, upper, digit, special; default 2
	ForbidAccountName bool `yaml:"forbid_account_name"` // default true when the section is absent
}

// VulnDBRules bound the vulnerability DB a scan may use.
type VulnDBRules struct {
	// MaxAge: a DB built longer ago than this is stale; scans end in error
	// (vulndb.stale). Zero: no limit.
	MaxAge time.Duration `yaml:"max_age"`
}

// AllowEntry lets findings through that would fail, for a reason, for a
// while. Exactly one of Vulnerability or Rule is set.
type AllowEntry struct {
	ID string `yaml:"id"`
	// Vulnerability is a vulnerability id (CVE-…, GHSA-…); Package
	// narrows it to one package.
	Vulnerability string `yaml:"vulnerability"`
	Package       string `yaml:"package"`
	// Rule is a judged rule id (secret.aws, archive.link_escape, …); for
	// malware.detected a Signature is required.
	Rule      string `yaml:"rule"`
	Signature string `yaml:"signature"`
	// Scope: Seller or Asset narrows the entry; neither means all sellers.
	Seller  string    `yaml:"seller"`
	Asset   string    `yaml:"asset"`
	Reason  string    `yaml:"reason"`
	AddedBy string    `yaml:"added_by"`
	Expires time.Time `yaml:"expires"`
}

var validSeverities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// Parse parses and validates a policy document. Errors wrap ErrInvalid and
// name the field and, where known, its line.
func Parse(data []byte) (*Policy, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := p.validate(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			if line := lineOf(&root, strings.Split(fe.field, ".")); line > 0 {
				return nil, fmt.Errorf("%w: line %d: %s: %s", ErrInvalid, line, fe.field, fe.msg)
			}
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	sum := sha256.Sum256(data)
	p.digest = "sha256:" + hex.EncodeToString(sum[:])
	p.raw = slices.Clone(data)
	return &p, nil
}

// Load reads and parses a policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	return p, nil
}

// Default returns the embedded default policy for a kind.
func Default(k assetscan.Kind) (*Policy, error) {
	data, err := defaults.ReadFile(string(k) + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("default policy for %q: %w", k, err)
	}
	return Parse(data)
}

// Ref names the policy for a verdict.
func (p *Policy) Ref() assetscan.PolicyRef {
	return assetscan.PolicyRef{ID: p.ID, Version: p.Version, Digest: p.digest}
}

// Raw returns the policy document as parsed.
func (p *Policy) Raw() []byte { return slices.Clone(p.raw) }

// NameAllowed applies the name rule to a package file name. It returns the
// matched extension, or ok=false with a reason.
func (p *Policy) NameAllowed(name string) (ext string, reason string, ok bool) {
	lower := strings.ToLower(name)
	// longest extension first so ".tar.gz" wins over ".gz"
	exts := slices.Clone(p.Format.Extensions)
	slices.SortFunc(exts, func(a, b string) int { return len(b) - len(a) })
	for _, e := range exts {
		if strings.HasSuffix(lower, strings.ToLower(e)) {
			ext = e
			break
		}
	}
	if ext == "" {
		return "", fmt.Sprintf("file name %q does not end in an accepted extension (%s)", name, strings.Join(p.Format.Extensions, ", ")), false
	}
	stem := name[:len(name)-len(ext)]
	if !p.Format.nameRe.MatchString(stem) {
		return ext, fmt.Sprintf("file name %q: only ASCII letters, digits, '-', '_', '(' and ')' are allowed before the extension", name), false
	}
	return ext, "", true
}

type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func ferr(field, format string, a ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, a...)}
}

func (p *Policy) validate() error {
	switch {
	case p.ID == "":
		return ferr("id", "required")
	case p.Version < 1:
		return ferr("version", "must be a positive integer")
	case !p.Kind.Valid():
		return ferr("kind", "must be package, container-image or vm-image, got %q", p.Kind)
	}
	// Checks and rules are validated against the registry: a policy
	// can neither require a check that does not exist nor leave out one
	// the rule book applies to its kind (a check that did not run would
	// then pass), nor name a rule no check emits (a typo would silently
	// do nothing).
	if len(p.RequiredChecks) == 0 {
		return ferr("required_checks", "required: list every check (%s)", strings.Join(registry.Mandatory(p.Kind), ", "))
	}
	for _, c := range p.RequiredChecks {
		if !registry.KnownCheck(c) {
			return ferr("required_checks", "unknown check %q (known: %s)", c, strings.Join(registry.Applicable(p.Kind), ", "))
		}
	}
	for _, c := range registry.Mandatory(p.Kind) {
		if !slices.Contains(p.RequiredChecks, c) {
			return ferr("required_checks", "check %q applies to every %s and must be required", c, p.Kind)
		}
	}
	if t := p.Vulns.CVSSThreshold; t <= 0 || t > 10 {
		return ferr("vulnerabilities.cvss_threshold", "must be in (0, 10], got %v", t)
	}
	for _, s := range p.Vulns.FailSeveritiesWithoutCVSS {
		if !slices.Contains(validSeverities, s) {
			return ferr("vulnerabilities.fail_severities_without_cvss", "unknown severity %q", s)
		}
	}
	if p.Secrets.Other == "" {
		p.Secrets.Other = string(assetscan.ActionWarn)
	}
	if !validAction(p.Secrets.Other) {
		return ferr("secrets.other", "must be fail, warn or info, got %q", p.Secrets.Other)
	}
	for _, c := range p.Secrets.FailCategories {
		if !slices.Contains(registry.SecretCategories(), c) {
			return ferr("secrets.fail_categories", "unknown secret category %q (categories are trivy's, case-sensitive: AWS, AsymmetricPrivateKey, GitHub, ...)", c)
		}
	}
	if p.Kind == assetscan.KindPackage {
		if p.Format.MaxSizeBytes <= 0 {
			return ferr("format.max_size_bytes", "must be positive")
		}
		if len(p.Format.Extensions) == 0 {
			return ferr("format.extensions", "at least one extension is required")
		}
		if p.Format.NamePattern == "" {
			return ferr("format.name_pattern", "required")
		}
	}
	if p.Format.NamePattern != "" {
		re, err := regexp.Compile(p.Format.NamePattern)
		if err != nil {
			return ferr("format.name_pattern", "%v", err)
		}
		p.Format.nameRe = re
	}
	a := p.Archive
	if p.Kind == assetscan.KindVMImage && a == (ArchiveLimits{}) {
		// Disk images are read through bounded file-system readers, not
		// extracted: the archive limits do not apply (see Limits).
		a = defaultArchiveLimits()
	}
	switch {
	case a.MaxExpandedBytes <= 0:
		return ferr("archive.max_expanded_bytes", "must be positive")
	case a.MaxEntries <= 0:
		return ferr("archive.max_entries", "must be positive")
	case a.MaxDepth <= 0:
		return ferr("archive.max_depth", "must be positive")
	case a.MaxRatio <= 1:
		return ferr("archive.max_ratio", "must be greater than 1")
	}
	if p.Passwords.MinLength == 0 && p.Passwords.MinClasses == 0 {
		p.Passwords = PasswordRules{MinLength: 8, MinClasses: 2, ForbidAccountName: true}
	}
	if p.Passwords.MinLength < 1 {
		return ferr("passwords.min_length", "must be positive")
	}
	if c := p.Passwords.MinClasses; c < 1 || c > 4 {
		return ferr("passwords.min_classes", "must be 1 to 4, got %d", c)
	}
	if p.VulnDB.MaxAge < 0 {
		return ferr("vulndb.max_age", "must not be negative")
	}
	ids := map[string]bool{}
	for i, a := range p.Allow {
		f := fmt.Sprintf("allow.%d", i)
		switch {
		case a.ID == "":
			return ferr(f+".id", "required")
		case ids[a.ID]:
			return ferr(f+".id", "duplicate allow entry id %q", a.ID)
		case (a.Vulnerability == "") == (a.Rule == ""):
			return ferr(f, "entry %q: set exactly one of vulnerability or rule", a.ID)
		case a.Package != "" && a.Vulnerability == "":
			return ferr(f+".package", "entry %q: package narrows a vulnerability entry only", a.ID)
		case a.Rule == "malware.detected" && a.Signature == "":
			return ferr(f+".signature", "entry %q: a malware.detected entry must name the signature", a.ID)
		case a.Signature != "" && !strings.HasPrefix(a.Rule, "malware."):
			return ferr(f+".signature", "entry %q: signature applies to malware rules only", a.ID)
		case a.Seller != "" && a.Asset != "":
			return ferr(f, "entry %q: scope is one seller or one asset, not both", a.ID)
		case strings.TrimSpace(a.Reason) == "":
			return ferr(f+".reason", "entry %q: a reason is required", a.ID)
		case a.AddedBy == "":
			return ferr(f+".added_by", "entry %q: who added it is required", a.ID)
		case a.Expires.IsZero():
			return ferr(f+".expires", "entry %q: an expiry is required", a.ID)
		}
		ids[a.ID] = true
	}
	for rule, act := range p.Rules {
		if !validAction(act) {
			return ferr("rules."+rule, "must be fail, warn or info, got %q", act)
		}
		if !registry.KnownRule(rule) {
			return ferr("rules."+rule, "no check emits rule %q (see README, \"Rules\")", rule)
		}
	}
	for i, a := range p.Allow {
		if a.Rule != "" && !registry.KnownRule(a.Rule) {
			return ferr(fmt.Sprintf("allow.%d.rule", i), "entry %q: no check emits rule %q", a.ID, a.Rule)
		}
	}
	return nil
}

func validAction(a string) bool {
	switch assetscan.Action(a) {
	case assetscan.ActionFail, assetscan.ActionWarn, assetscan.ActionInfo:
		return true
	}
	return false
}

// lineOf finds the line of a dotted key path in a YAML document.
func lineOf(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, key := range path {
		if n.Kind == yaml.SequenceNode {
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
			continue
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// Shaping is the canonical text of the policy's limits that shape what a
// scan reads and so what it finds: the size limit and the archive limits.
// It is part of every reuse key (package scan): findings made under other
// limits are never reused. The name rule and the thresholds are not in
// it: they judge facts and findings when the verdict is made.
func (p *Policy) Shaping() string {
	l := p.Limits()
	return fmt.Sprintf("max_size=%d max_expanded=%d max_entries=%d max_depth=%d max_ratio=%g max_entry=%d",
		p.MaxSize(), l.MaxExpandedBytes, l.MaxEntries, l.MaxDepth, l.MaxRatio, l.MaxEntryBytes)
}

// MaxSize is the largest accepted asset in bytes (scanner.Rules).
func (p *Policy) MaxSize() int64 { return p.Format.MaxSizeBytes }

func defaultArchiveLimits() ArchiveLimits {
	l := archive.DefaultLimits()
	return ArchiveLimits{MaxExpandedBytes: l.MaxExpandedBytes, MaxEntries: l.MaxEntries, MaxDepth: l.MaxDepth, MaxRatio: l.MaxRatio}
}

// Limits are the archive extraction limits (scanner.Rules); the defaults
// for a disk-image policy without an archive section.
func (p *Policy) Limits() archive.Limits {
	if p.Archive == (ArchiveLimits{}) {
		return archive.DefaultLimits()
	}
	l := archive.DefaultLimits()
	l.MaxExpandedBytes = p.Archive.MaxExpandedBytes
	l.MaxEntries = p.Archive.MaxEntries
	l.MaxDepth = p.Archive.MaxDepth
	l.MaxRatio = p.Archive.MaxRatio
	return l
}
