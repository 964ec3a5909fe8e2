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
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
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
	Rules          map[string]string `yaml:"rules"`

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

var validSeverities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

var knownChecks = []string{
	assetscan.CheckFormat, assetscan.CheckArchive, assetscan.CheckVulnerability,
	assetscan.CheckSecret, assetscan.CheckMalware, assetscan.CheckAccount,
}

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
	for _, c := range p.RequiredChecks {
		if !slices.Contains(knownChecks, c) {
			return ferr("required_checks", "unknown check %q (known: %s)", c, strings.Join(knownChecks, ", "))
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
	for rule, act := range p.Rules {
		if !validAction(act) {
			return ferr("rules."+rule, "must be fail, warn or info, got %q", act)
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

// MaxSize is the largest accepted asset in bytes (scanner.Rules).
func (p *Policy) MaxSize() int64 { return p.Format.MaxSizeBytes }

// Limits are the archive extraction limits (scanner.Rules).
func (p *Policy) Limits() archive.Limits {
	l := archive.DefaultLimits()
	l.MaxExpandedBytes = p.Archive.MaxExpandedBytes
	l.MaxEntries = p.Archive.MaxEntries
	l.MaxDepth = p.Archive.MaxDepth
	l.MaxRatio = p.Archive.MaxRatio
	return l
}
