package policies

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/assetscan/assetscan"
)

// Rule ids the policy assigns to judged vulnerability and secret findings.
const (
	RuleVulnCVSS     = "vulnerability.cvss"     // CVSS v3 score at or above the threshold
	RuleVulnSeverity = "vulnerability.severity" // no CVSS score, severity in the fail list
	RuleVulnBelow    = "vulnerability.below_threshold"
)

// Subject is what a verdict is about, for scoped and expiring allow-list
// entries.
type Subject struct {
	SellerID string
	AssetID  string
	// At is the evaluation time: an allow entry applies while At is before
	// its expiry. Re-evaluating with the same At gives the same verdict.
	At time.Time
}

// Judgement is the outcome of evaluating findings under a policy.
type Judgement struct {
	Outcome     assetscan.Outcome
	Reason      string
	FailedRules []assetscan.FailedRule
	Findings    []assetscan.JudgedFinding
}

// Evaluate judges findings under p. The rules, in order:
//  1. every finding gets an action (fail, warn, info) from the policy;
//  2. any failing finding makes the outcome Fail — even if some check did
//     not run, because what was seen already rejects the asset;
//  3. otherwise, a required check that did not run to the end (missing, or
//     status error) makes the outcome Error — never Pass (fail closed);
//  4. otherwise Pass.
//
// A finding that would fail but is covered by an allow-list entry in scope
// and not expired gets action "allowed" and names the entry.
func Evaluate(p *Policy, f assetscan.Findings, s Subject) Judgement {
	var j Judgement
	counts := map[string]*assetscan.FailedRule{}
	all := append(p.factFindings(f.Facts), f.Findings...)
	if pf := p.pendingFixes(f.Findings); pf != nil {
		all = append(all, *pf)
	}
	for _, fd := range all {
		jf := p.judge(fd)
		if jf.Action == assetscan.ActionFail {
			if a := p.allowed(jf, s); a != nil {
				jf.Action = assetscan.ActionAllowed
				jf.AllowedBy = &assetscan.AllowRef{ID: a.ID, Reason: a.Reason, AddedBy: a.AddedBy, Expires: a.Expires}
			}
		}
		j.Findings = append(j.Findings, jf)
		if jf.Action != assetscan.ActionFail {
			continue
		}
		fr, ok := counts[jf.Rule]
		if !ok {
			ex := jf.Path
			if jf.Vulnerability != nil {
				ex = jf.Vulnerability.ID + " in " + jf.Vulnerability.Package + " " + jf.Vulnerability.InstalledVersion
				if jf.Path != "" {
					ex += " (" + jf.Path + ")"
				}
			} else if jf.Malware != nil {
				ex = jf.Malware.Signature + " in " + jf.Path
			}
			fr = &assetscan.FailedRule{Rule: jf.Rule, Example: ex}
			counts[jf.Rule] = fr
		}
		fr.Count++
	}
	for _, fr := range counts {
		j.FailedRules = append(j.FailedRules, *fr)
	}
	sort.Slice(j.FailedRules, func(a, b int) bool { return j.FailedRules[a].Rule < j.FailedRules[b].Rule })

	if len(j.FailedRules) > 0 {
		j.Outcome = assetscan.Fail
		return j
	}
	var missing []string
	for _, name := range p.RequiredChecks {
		idx := slices.IndexFunc(f.Checks, func(c assetscan.CheckRun) bool { return c.Name == name })
		switch {
		case idx < 0:
			missing = append(missing, name+": did not run")
		case f.Checks[idx].Status != assetscan.RunOK:
			r := f.Checks[idx].Reason
			if r == "" {
				r = f.Checks[idx].Status
			}
			missing = append(missing, name+": "+r)
		case !f.Checks[idx].Coverage.Complete():
			c := f.Checks[idx].Coverage
			r := fmt.Sprintf("%d part(s) of the asset not examined", c.NotExaminedCount)
			if len(c.NotExamined) > 0 {
				r += fmt.Sprintf(" (first: %s: %s)", c.NotExamined[0].Path, c.NotExamined[0].Reason)
			}
			missing = append(missing, name+": "+r)
		}
	}
	if len(missing) > 0 {
		j.Outcome = assetscan.Error
		j.Reason = "required check did not complete: " + strings.Join(missing, "; ")
		return j
	}
	j.Outcome = assetscan.Pass
	return j
}

// Rule ids judged from the asset's facts (assetscan.Facts) under the
// policy's format rules, when the verdict is made.
const (
	RuleName     = "format.name"     // the package file name breaks the name rule
	RuleSize     = "format.size"     // the asset is larger than format.max_size_bytes
	RuleMismatch = "format.mismatch" // the name's extension claims another container than the content
)

// factFindings judges the facts of an asset under the format rules: the
// name rule and claimed format (packages) and the size limit (all kinds).
func (p *Policy) factFindings(facts *assetscan.Facts) []assetscan.Finding {
	if facts == nil {
		return nil
	}
	var out []assetscan.Finding
	add := func(rule, msg string) {
		out = append(out, assetscan.Finding{Check: assetscan.CheckFormat, Rule: rule, Path: facts.Name, Message: msg})
	}
	if max := p.MaxSize(); max > 0 && facts.Size > max {
		add(RuleSize, fmt.Sprintf("asset is %d bytes, larger than the %d bytes allowed", facts.Size, max))
	}
	if p.Kind != assetscan.KindPackage {
		return out
	}
	ext, reason, ok := p.NameAllowed(facts.Name)
	if !ok {
		add(RuleName, reason)
	}
	if ext != "" && facts.Format != "" {
		if claimed := claimedFormat(ext); claimed != "" && claimed != facts.Format {
			add(RuleMismatch, fmt.Sprintf("name says %s but content is %s", claimed, facts.Format))
		}
	}
	return out
}

// RulePendingFixes: an image holds fixable vulnerabilities below the
// failing threshold (one finding per verdict, counted per severity).
const RulePendingFixes = "hygiene.pending_security_fixes"

// pendingFixes judges, for images, the vulnerabilities below the policy's
// threshold that have a fixed version: the image was not updated before it
// was published (DigitalOcean's and Alibaba's image checks). It depends on
// the threshold, so it is derived when the verdict is made.
func (p *Policy) pendingFixes(fs []assetscan.Finding) *assetscan.Finding {
	if p.Kind == assetscan.KindPackage {
		return nil
	}
	per := map[string]int{}
	n := 0
	for _, f := range fs {
		v := f.Vulnerability
		if v == nil || v.FixedVersion == "" || p.judge(f).Rule != RuleVulnBelow {
			continue
		}
		per[v.Severity]++
		n++
	}
	if n == 0 {
		return nil
	}
	parts := make([]string, 0, len(per))
	for _, sev := range validSeverities {
		if per[sev] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", sev, per[sev]))
		}
	}
	return &assetscan.Finding{Check: "hygiene", Rule: RulePendingFixes,
		Message: fmt.Sprintf("%d fixable vulnerabilities below the failing threshold (%s): update the packages before publishing", n, strings.Join(parts, ", "))}
}

// claimedFormat is the container format an accepted extension names.
func claimedFormat(ext string) string {
	switch strings.ToLower(ext) {
	case ".tar.gz", ".tgz":
		return "tar.gz"
	case ".tar":
		return "tar"
	case ".zip":
		return "zip"
	}
	return ""
}

// ruleAliases maps a rule id onto the other name a policy may give it:
// SSH host keys are account.ssh_host_key (STANDARDS.md) and also
// hygiene.ssh_host_keys (issue 13's marketplace hygiene rules). A policy
// entry under the alias wins.
var ruleAliases = map[string]string{"account.ssh_host_key": "hygiene.ssh_host_keys"}

func (p *Policy) judge(f assetscan.Finding) assetscan.JudgedFinding {
	jf := assetscan.JudgedFinding{Finding: f}
	switch {
	case f.Vulnerability != nil:
		v := f.Vulnerability
		switch {
		case v.CVSSScore != nil && *v.CVSSScore >= p.Vulns.CVSSThreshold:
			jf.Rule, jf.Action = RuleVulnCVSS, assetscan.ActionFail
		case v.CVSSScore == nil && slices.Contains(p.Vulns.FailSeveritiesWithoutCVSS, v.Severity):
			jf.Rule, jf.Action = RuleVulnSeverity, assetscan.ActionFail
		default:
			jf.Rule, jf.Action = RuleVulnBelow, assetscan.ActionWarn
		}
	case f.Secret != nil:
		jf.Rule = "secret." + strings.ToLower(f.Secret.Category)
		if slices.Contains(p.Secrets.FailCategories, f.Secret.Category) {
			jf.Action = assetscan.ActionFail
		} else {
			jf.Action = assetscan.Action(p.Secrets.Other)
		}
	default:
		if a, ok := p.Rules[ruleAliases[f.Rule]]; ok {
			// The marketplace-wide name of the rule, when the policy uses it.
			jf.Action = assetscan.Action(a)
		} else if a, ok := p.Rules[f.Rule]; ok {
			jf.Action = assetscan.Action(a)
		} else {
			// A rule the policy does not know about fails: fail closed.
			jf.Action = assetscan.ActionFail
		}
	}
	return jf
}

// allowed returns the allow entry covering a failing finding, if any.
func (p *Policy) allowed(jf assetscan.JudgedFinding, s Subject) *AllowEntry {
	for i := range p.Allow {
		a := &p.Allow[i]
		if !s.At.Before(a.Expires) {
			continue
		}
		if (a.Seller != "" && a.Seller != s.SellerID) || (a.Asset != "" && a.Asset != s.AssetID) {
			continue
		}
		switch {
		case a.Vulnerability != "":
			if jf.Vulnerability != nil && jf.Vulnerability.ID == a.Vulnerability &&
				(a.Package == "" || a.Package == jf.Vulnerability.Package) {
				return a
			}
		case a.Rule == jf.Rule:
			if a.Signature == "" {
				return a
			}
			if jf.Malware != nil && strings.TrimSuffix(jf.Malware.Signature, ".UNOFFICIAL") == strings.TrimSuffix(a.Signature, ".UNOFFICIAL") {
				return a
			}
		}
	}
	return nil
}

// Verdict builds the verdict document of a finished scan: findings judged
// under p, stamped with the policy, DB and engines. Allow-list expiry is
// judged at base.CompletedAt (now when zero).
func Verdict(p *Policy, base assetscan.Verdict, f assetscan.Findings) assetscan.Verdict {
	at := base.CompletedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	j := Evaluate(p, f, Subject{SellerID: base.SellerID, AssetID: base.AssetID, At: at})
	v := base
	v.Status = assetscan.StatusDone
	v.Verdict = j.Outcome
	v.Reason = j.Reason
	v.FailedRules = j.FailedRules
	v.Findings = j.Findings
	if v.Findings == nil {
		v.Findings = []assetscan.JudgedFinding{}
	}
	v.Checks = f.Checks
	v.Engines = f.Engines
	v.VulnDB = f.DB
	v.Components = len(f.Components)
	v.Policy = p.Ref()
	if v.Verdict == assetscan.Fail && v.Reason == "" {
		parts := make([]string, 0, len(j.FailedRules))
		for _, r := range j.FailedRules {
			parts = append(parts, fmt.Sprintf("%s (%d)", r.Rule, r.Count))
		}
		v.Reason = "failed rules: " + strings.Join(parts, ", ")
	}
	return v
}
