package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/assetscan/assetscan"
)

// engineOf names the engine that runs a check: trivy finds vulnerabilities
// and secrets, clamav malware; assetscan's own code does the rest (format,
// archive, account, image, hygiene checks).
func engineOf(check string) string {
	switch check {
	case assetscan.CheckVulnerability, assetscan.CheckSecret:
		return "trivy"
	case assetscan.CheckMalware:
		return "clamav"
	}
	return "assetscan"
}

func engineURI(engine string) string {
	switch engine {
	case "trivy":
		return "https://github.com/aquasecurity/trivy"
	case "clamav":
		return "https://www.clamav.net"
	}
	return "https://github.com/assetscan/assetscan"
}

// Level is the SARIF result level of a policy action: fail → error,
// warn → warning, info and allowed → note.
func Level(a assetscan.Action) string {
	switch a {
	case assetscan.ActionFail:
		return "error"
	case assetscan.ActionWarn:
		return "warning"
	}
	return "note"
}

// SARIF writes v as a SARIF 2.1.0 log: one run per check engine
// (assetscan, trivy, clamav) with the engine's name and version from
// v.Engines, one result per judged finding (ruleId, level from the
// policy's action, the finding's message and its remediation), and each
// rule's title and remediation as tool.driver.rules[] metadata.
//
// Locations: artifactLocation.uri is the file inside the asset (the asset's
// own name when the finding has no path). A member of a nested archive
// ("lib/a.zip!/x.js") points at the outermost archive ("lib/a.zip") and
// names the full path in a logicalLocation (kind "member") and in the
// result property "assetscan/path"; an image layer is a logicalLocation of
// kind "layer". Engines with checks that did not complete get an
// invocation with executionSuccessful false and the reason as a
// notification.
func SARIF(w io.Writer, v assetscan.Verdict) error {
	log, err := sarif.New(sarif.Version210, true)
	if err != nil {
		return err
	}
	runs := map[string]*sarif.Run{}
	run := func(engine string) *sarif.Run {
		if r, ok := runs[engine]; ok {
			return r
		}
		d := sarif.NewDriver(engine).WithInformationURI(engineURI(engine))
		if ver := v.Engines[engine]; ver != "" {
			d = d.WithVersion(ver)
		}
		d.Rules = []*sarif.ReportingDescriptor{}
		tool := sarif.NewTool(d)
		for _, ext := range sortedKeys(v.Engines) {
			if base, _, ok := strings.Cut(ext, "-"); ok && base == engine {
				c := sarif.NewDriver(ext).WithVersion(v.Engines[ext])
				c.Rules = []*sarif.ReportingDescriptor{}
				tool.AddExtension(c)
			}
		}
		r := sarif.NewRun(*tool)
		r.Properties = sarif.Properties{
			"assetscan/scan_id": v.ScanID, "assetscan/asset_id": v.AssetID,
			"assetscan/verdict": string(v.Verdict), "assetscan/sha256": v.SHA256,
			"assetscan/policy": v.Policy,
		}
		if v.VulnDB != nil {
			r.Properties["assetscan/vulndb"] = v.VulnDB
		}
		runs[engine] = r
		return r
	}
	// Every engine that ran a check gets a run, even without results: a CI
	// system then shows "no problems" rather than "not analysed".
	invocations := map[string]*sarif.Invocation{}
	for _, c := range v.Checks {
		e := engineOf(c.Name)
		r := run(e)
		inv, ok := invocations[e]
		if !ok {
			inv = r.AddInvocation(true)
			if !v.CompletedAt.IsZero() {
				t := v.CompletedAt.UTC()
				inv.EndTimeUTC = &t
			}
			invocations[e] = inv
		}
		if c.Status != assetscan.RunOK {
			f := false
			inv.ExecutionSuccessful = &f
			msg := c.Name + " check " + c.Status
			if c.Reason != "" {
				msg += ": " + c.Reason
			}
			n := sarif.NewNotification().WithMessage(sarif.NewTextMessage(msg)).WithLevel("error")
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
		}
	}
	for _, jf := range v.Findings {
		r := run(engineOf(jf.Check))
		rule := jf.Rule
		if _, err := r.GetRuleById(rule); err != nil {
			d := sarif.NewRule(rule).WithName(ruleName(rule)).
				WithShortDescription(sarif.NewMultiformatMessageString(RuleTitle(rule))).
				WithHelp(sarif.NewMultiformatMessageString(RuleHelp(rule)))
			d.Properties = sarif.Properties{"check": jf.Check}
			r.Tool.Driver.AddRule(d)
		}
		msg := jf.Message
		if msg == "" {
			msg = RuleTitle(rule)
		}
		res := sarif.NewRuleResult(rule).WithLevel(Level(jf.Action)).
			WithMessage(sarif.NewTextMessage(msg + "\nFix: " + Remediation(jf.Finding)))
		res.RuleIndex = ruleIndex(r, rule)
		res.AddLocation(location(v, jf.Finding))
		props := sarif.Properties{"assetscan/action": string(jf.Action), "assetscan/remediation": Remediation(jf.Finding)}
		if jf.Path != "" {
			props["assetscan/path"] = jf.Path
		}
		if jf.Layer != "" {
			props["assetscan/layer"] = jf.Layer
		}
		if a := jf.AllowedBy; a != nil {
			props["assetscan/allowed_by"] = a
		}
		if vu := jf.Vulnerability; vu != nil {
			props["assetscan/vulnerability"] = vu
		}
		if m := jf.Malware; m != nil {
			props["assetscan/malware"] = m
		}
		res.Properties = props
		res.PartialFingerprints = map[string]any{"assetscanFinding/v1": fingerprint(jf.Finding)}
		r.AddResult(res)
	}
	for _, e := range slices.SortedFunc(maps.Keys(runs), func(a, b string) int { return cmp.Compare(engineOrder(a), engineOrder(b)) }) {
		log.AddRun(runs[e])
	}
	log.Runs = nonNil(log.Runs)
	return log.PrettyWrite(w)
}

// fingerprint identifies a finding across scans of new versions of the
// asset (what it is and where, not the message), so a CI system can tell
// new results from known ones.
func fingerprint(f assetscan.Finding) string {
	parts := []string{f.Rule, f.Path, f.Layer}
	if v := f.Vulnerability; v != nil {
		parts = append(parts, v.ID, v.Package, v.InstalledVersion)
	}
	if s := f.Secret; s != nil {
		parts = append(parts, s.RuleID, strconv.Itoa(s.Line))
	}
	if m := f.Malware; m != nil {
		parts = append(parts, m.Signature)
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// location is where a finding points, for a viewer: the outermost file
// inside the asset, with the nested member and the image layer as logical
// locations.
func location(v assetscan.Verdict, f assetscan.Finding) *sarif.Location {
	p := f.Path
	if p == "" {
		p = v.Object.Name
	}
	outer, _, nested := strings.Cut(p, "!/")
	loc := sarif.NewLocationWithPhysicalLocation(
		sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(fileURI(outer))))
	var logical []*sarif.LogicalLocation
	if nested {
		logical = append(logical, sarif.NewLogicalLocation().WithName(p[strings.LastIndex(p, "!/")+2:]).
			WithFullyQualifiedName(p).WithKind("member"))
	}
	if f.Layer != "" {
		logical = append(logical, sarif.NewLogicalLocation().WithName(f.Layer).WithKind("layer"))
	}
	if len(logical) > 0 {
		loc.WithLogicalLocations(logical)
	}
	return loc
}

// fileURI is a relative URI reference for a path inside the asset: each
// segment percent-encoded, never read as a scheme.
func fileURI(p string) string {
	p = strings.TrimLeft(p, "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := strings.Join(segs, "/")
	if u == "" {
		return "."
	}
	return u
}

// ruleName turns a rule id into the PascalCase name SARIF viewers show
// ("vulnerability.cvss" → "VulnerabilityCvss").
func ruleName(rule string) string {
	var b strings.Builder
	up := true
	for _, r := range rule {
		switch {
		case r == '.' || r == '_' || r == '-':
			up = true
		case up && r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			up = false
		default:
			b.WriteRune(r)
			up = false
		}
	}
	return b.String()
}

func ruleIndex(r *sarif.Run, rule string) *uint {
	for i, d := range r.Tool.Driver.Rules {
		if d.ID == rule {
			u := uint(i)
			return &u
		}
	}
	return nil
}

func engineOrder(e string) string {
	// assetscan first (format, archive: what the seller fixes first), then
	// the others by name.
	if e == "assetscan" {
		return ""
	}
	return e
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
