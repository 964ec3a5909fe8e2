package policies

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/assetscan/assetscan"
)

// Rule ids the policy assigns to judged vulnerability and secret findings.
const (
	RuleVulnCVSS     = "vulnerability.cvss"     // CVSS v3 score at or above the threshold
	RuleVulnSeverity = "vulnerability.severity" // no CVSS score, severity in the fail list
	RuleVulnBelow    = "vulnerability.below_threshold"
)

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
func Evaluate(p *Policy, f assetscan.Findings) Judgement {
	var j Judgement
	counts := map[string]*assetscan.FailedRule{}
	for _, fd := range f.Findings {
		jf := p.judge(fd)
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
		if a, ok := p.Rules[f.Rule]; ok {
			jf.Action = assetscan.Action(a)
		} else {
			// A rule the policy does not know about fails: fail closed.
			jf.Action = assetscan.ActionFail
		}
	}
	return jf
}

// Verdict builds the verdict document of a finished scan: findings judged
// under p, stamped with the policy, DB and engines.
func Verdict(p *Policy, base assetscan.Verdict, f assetscan.Findings) assetscan.Verdict {
	j := Evaluate(p, f)
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
