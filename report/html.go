package report

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/assetscan/assetscan"
)

// CSP is the Content-Security-Policy to serve the HTML report with: the
// page needs nothing but its inline style sheet.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// HTML writes v as one self-contained HTML page for the seller: the
// verdict in large type, then the findings that fail the asset (rule,
// file, component, what to do), the warnings, the informational and
// allow-listed findings, what each check covered, and the record (policy,
// vulnerability DB, engines, digest). No script, no external resources;
// every string from the asset is escaped by html/template.
func HTML(w io.Writer, v assetscan.Verdict) error {
	return pageTemplate().Execute(w, newPage(v))
}

type page struct {
	V         assetscan.Verdict
	Headline  string
	Class     string
	Summary   string
	Groups    []group
	Policy    string
	DB        string
	Engines   []string
	Completed string
	Submitted string
}

type group struct {
	ID, Title, Note string
	Class           string
	Rows            []row
}

type row struct {
	Rule, Title   string
	File, Layer   string
	Component     string
	Fixed         string
	Fix           string
	Message       string
	AllowedBy     string
	Severity      string
	ComponentType string
}

func newPage(v assetscan.Verdict) page {
	p := page{V: v, Policy: policyString(v.Policy), DB: dbString(v.VulnDB)}
	switch {
	case v.Status != assetscan.StatusDone:
		p.Headline, p.Class = "PENDING", "pending"
		p.Summary = fmt.Sprintf("The scan is %s. This page shows the verdict once it is done.", cmp.Or(string(v.Status), "not finished"))
	case v.Verdict == assetscan.Pass:
		p.Headline, p.Class = "PASS", "pass"
		p.Summary = "The asset meets the marketplace's security standard under the policy below."
	case v.Verdict == assetscan.Fail:
		p.Headline, p.Class = "FAIL", "fail"
		n := 0
		for _, fr := range v.FailedRules {
			n += fr.Count
		}
		p.Summary = fmt.Sprintf("%d %s the asset under %d %s. Fix the items under \"Must fix\" and submit again.",
			n, plural(n, "finding fails", "findings fail"), len(v.FailedRules), plural(len(v.FailedRules), "rule", "rules"))
	default:
		p.Headline, p.Class = "ERROR", "error"
		p.Summary = "The scan could not complete, so the asset is not approved."
		if v.Reason != "" {
			p.Summary += " Reason: " + v.Reason + "."
		}
	}
	groups := []group{
		{ID: "fail", Title: "Must fix", Class: "fail", Note: "These findings fail the asset."},
		{ID: "warn", Title: "Warnings", Class: "warn", Note: "These do not fail the asset today; fixing them is recommended."},
		{ID: "info", Title: "For information", Class: "info", Note: "Informational findings, and findings an allow-list entry of the policy lets through."},
	}
	for _, jf := range v.Findings {
		i := 2
		switch jf.Action {
		case assetscan.ActionFail:
			i = 0
		case assetscan.ActionWarn:
			i = 1
		}
		groups[i].Rows = append(groups[i].Rows, newRow(jf))
	}
	for _, g := range groups {
		if len(g.Rows) > 0 {
			slices.SortStableFunc(g.Rows, func(a, b row) int { return cmp.Compare(a.Rule, b.Rule) })
			p.Groups = append(p.Groups, g)
		}
	}
	for _, e := range sortedKeys(v.Engines) {
		p.Engines = append(p.Engines, e+" "+v.Engines[e])
	}
	if !v.CompletedAt.IsZero() {
		p.Completed = v.CompletedAt.UTC().Format(time.RFC3339)
	}
	if !v.SubmittedAt.IsZero() {
		p.Submitted = v.SubmittedAt.UTC().Format(time.RFC3339)
	}
	return p
}

func newRow(jf assetscan.JudgedFinding) row {
	r := row{Rule: jf.Rule, Title: RuleTitle(jf.Rule), File: jf.Path, Layer: jf.Layer, Fix: Remediation(jf.Finding), Message: jf.Message}
	if vu := jf.Vulnerability; vu != nil {
		r.Component = strings.TrimSpace(vu.Package + " " + vu.InstalledVersion)
		r.ComponentType = vu.PackageType
		r.Fixed = vu.FixedVersion
		r.Severity = vu.Severity
		if vu.CVSSScore != nil {
			r.Severity = fmt.Sprintf("%s, CVSS %.1f", vu.Severity, *vu.CVSSScore)
		}
	}
	if m := jf.Malware; m != nil {
		r.Component = m.Signature
	}
	if a := jf.AllowedBy; a != nil {
		r.AllowedBy = fmt.Sprintf("allowed by %s until %s: %s", a.ID, a.Expires.UTC().Format("2006-01-02"), a.Reason)
	}
	return r
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func pageTemplate() *template.Template {
	return template.Must(template.New("report").Parse(pageHTML))
}

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Headline}}: {{.V.Object.Name}} - assetscan report</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d232a;background:#f4f6f8;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px}
header.verdict{border-radius:10px;padding:20px 24px;margin-bottom:20px;color:#fff}
header.pass{background:#1a7f37}header.fail{background:#c62828}header.error{background:#8a5a00}header.pending{background:#4a5563}
.big{font-size:56px;font-weight:800;letter-spacing:2px;margin:0;line-height:1.1}
.asset{font-size:20px;margin:6px 0 8px;word-break:break-all}
.summary{font-size:16px;margin:0}
section{background:#fff;border-radius:10px;padding:16px 20px;margin-bottom:18px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{margin:0 0 4px;font-size:20px}
h2 .count{font-weight:400;color:#5b6570}
section.fail h2{color:#c62828}section.warn h2{color:#9a6700}section.info h2{color:#33507a}
p.note{margin:0 0 10px;color:#5b6570}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:8px;border-top:1px solid #e3e7eb;word-wrap:break-word;overflow-wrap:anywhere}
th{font-size:13px;color:#5b6570;font-weight:600;border-top:0}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f0f2f4;padding:1px 4px;border-radius:4px}
.fix{font-weight:600}
.msg,.small{color:#5b6570;font-size:13px}
header .small{color:#fff;opacity:.85}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}.skip{color:#9a6700;font-weight:600}
ul{margin:4px 0 0;padding-left:18px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dt{color:#5b6570}dd{margin:0;overflow-wrap:anywhere}
</style>
</head>
<body>
<main>
<header class="verdict {{.Class}}" id="verdict">
<p class="big" data-verdict="{{.V.Verdict}}">{{.Headline}}</p>
<p class="asset">{{.V.Object.Name}}{{if .V.Kind}} <span class="small">({{.V.Kind}})</span>{{end}}</p>
<p class="summary">{{.Summary}}</p>
</header>
{{range .Groups}}
<section class="{{.Class}}" id="{{.ID}}">
<h2>{{.Title}} <span class="count">({{len .Rows}})</span></h2>
<p class="note">{{.Note}}</p>
<table>
<colgroup><col style="width:22%"><col style="width:22%"><col style="width:18%"><col style="width:38%"></colgroup>
<thead><tr><th>Rule</th><th>File</th><th>Component</th><th>What to do</th></tr></thead>
<tbody>
{{range .Rows}}<tr>
<td>{{.Title}}<br><code>{{.Rule}}</code></td>
<td>{{if .File}}<code>{{.File}}</code>{{else}}<span class="small">the asset</span>{{end}}{{if .Layer}}<br><span class="small">layer <code>{{.Layer}}</code></span>{{end}}</td>
<td>{{if .Component}}{{.Component}}{{if .ComponentType}} <span class="small">({{.ComponentType}})</span>{{end}}{{end}}{{if .Fixed}}<br><span class="small">fixed in {{.Fixed}}</span>{{end}}{{if .Severity}}<br><span class="small">{{.Severity}}</span>{{end}}</td>
<td><span class="fix">{{.Fix}}</span>{{if .Message}}<br><span class="msg">{{.Message}}</span>{{end}}{{if .AllowedBy}}<br><span class="msg">{{.AllowedBy}}</span>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
</section>
{{else}}
{{if eq .Class "pass"}}<section class="info" id="nofindings"><h2>No findings</h2><p class="note">Nothing to fix.</p></section>{{end}}
{{end}}
<section id="checks">
<h2>What was checked</h2>
<table>
<colgroup><col style="width:18%"><col style="width:12%"><col style="width:70%"></colgroup>
<thead><tr><th>Check</th><th>Status</th><th>Covered</th></tr></thead>
<tbody>
{{range .V.Checks}}<tr><td>{{.Name}}</td><td class="{{if eq .Status "ok"}}ok{{else if eq .Status "skipped"}}skip{{else}}bad{{end}}">{{.Status}}</td><td>{{.Detail}}{{if .Reason}}{{if .Detail}}<br>{{end}}<span class="bad">{{.Reason}}</span>{{end}}{{with .Coverage}}<br><span class="small">{{.Files}} files, {{.Bytes}} bytes read{{if .NotExaminedCount}}; <span class="bad">{{.NotExaminedCount}} not examined</span>{{end}}</span>{{if .NotExamined}}<ul class="small">{{range .NotExamined}}<li><code>{{.Path}}</code>: {{.Reason}}</li>{{end}}</ul>{{end}}{{end}}{{with .Identity}}<br><span class="small">{{if .Engine}}{{.Engine}}{{else}}assetscan {{.Check}} {{.Version}}{{end}}{{if .Data}}, {{.Data}}{{end}}</span>{{end}}</td></tr>
{{else}}<tr><td colspan="3" class="small">no check ran</td></tr>
{{end}}</tbody>
</table>
</section>
<section id="record">
<h2>Record</h2>
<dl>
{{if .V.ScanID}}<dt>Scan</dt><dd><code>{{.V.ScanID}}</code>{{if .V.Revision}} revision {{.V.Revision}}{{end}}</dd>{{end}}
{{if .V.AssetID}}<dt>Asset</dt><dd><code>{{.V.AssetID}}</code></dd>{{end}}
{{if .V.SHA256}}<dt>Content SHA-256</dt><dd><code>{{.V.SHA256}}</code> <span class="small">({{.V.Object.Size}} bytes)</span></dd>{{end}}
{{if .Policy}}<dt>Policy</dt><dd>{{.Policy}}</dd>{{end}}
{{if .DB}}<dt>Vulnerability DB</dt><dd>{{.DB}}</dd>{{end}}
{{if .Engines}}<dt>Engines</dt><dd>{{range $i, $e := .Engines}}{{if $i}}; {{end}}{{$e}}{{end}}</dd>{{end}}
<dt>Components</dt><dd>{{.V.Components}}</dd>
{{if .Submitted}}<dt>Submitted</dt><dd>{{.Submitted}}</dd>{{end}}
{{if .Completed}}<dt>Completed</dt><dd>{{.Completed}}</dd>{{end}}
{{if .V.Supersedes}}<dt>Supersedes</dt><dd><code>{{.V.Supersedes}}</code></dd>{{end}}
{{if .V.Reused}}<dt>Findings</dt><dd>reused from an earlier scan of the same content with the same checks, judged under this policy</dd>{{end}}
</dl>
</section>
</main>
</body>
</html>
`
