// Package assetscan holds the domain types shared by every part of the
// service: asset kinds, findings (the facts a scan found), and the verdict
// document (findings judged under a policy) that the API returns, the CLI
// prints and the verdict store keeps.
//
// The packages are laid out by responsibility:
//
//	archive/   safe, bounded extraction of hostile archives
//	scanner/   scan orchestration and the Check interface; scanner/trivy is
//	           the only package that imports trivy; scanner/clamav talks to clamd
//	policies/  policy files and the evaluation of findings into a verdict
//	vulndb/    the fixture vulnerability DB and DB metadata
//	storage/   object storage (MinIO) and the verdict store (S3 + Redis index)
//	queue/     asynq task types, enqueueing and the worker handler
//	api/       the HTTP API
//	cmd/assetscan  the single binary
package assetscan

import (
	"time"
)

// Kind is the kind of asset being scanned.
type Kind string

// Asset kinds, as named in STANDARDS.md.
const (
	KindPackage        Kind = "package"
	KindContainerImage Kind = "container-image"
	KindVMImage        Kind = "vm-image"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindPackage, KindContainerImage, KindVMImage:
		return true
	}
	return false
}

// Status is where a scan is in its life.
type Status string

// Scan statuses.
const (
	StatusQueued  Status = "queued"
	StatusRunning Status = "running"
	StatusDone    Status = "done"
)

// Outcome is the verdict of a finished scan.
type Outcome string

// Verdict outcomes. Error means a required check could not run; it never
// approves an asset.
const (
	Pass  Outcome = "pass"
	Fail  Outcome = "fail"
	Error Outcome = "error"
)

// Check names. A finding belongs to exactly one check.
const (
	CheckFormat        = "format"        // name rule, size, container format, digest
	CheckArchive       = "archive"       // safe extraction: bombs, traversal, links, ...
	CheckVulnerability = "vulnerability" // known vulnerabilities via trivy
	CheckSecret        = "secret"        // embedded secrets via trivy
	CheckMalware       = "malware"       // malware engine (clamd)
	CheckAccount       = "account"       // OS accounts, passwords, login keys (images)
)

// Finding is one fact a check found. It says nothing about pass or fail:
// the policy decides that (see policies.Evaluate).
type Finding struct {
	// Check is the check that produced the finding (CheckVulnerability, ...).
	Check string `json:"check"`
	// Rule is the rule id the finding is reported under, e.g.
	// "vulnerability.cvss", "archive.traversal", "secret.private-key".
	// Policies refer to findings by rule id.
	Rule string `json:"rule"`
	// Path is the file inside the asset, relative to the asset root, with
	// "!/" separating a nested archive from its members ("lib/a.zip!/x.js").
	Path string `json:"path,omitempty"`
	// Layer is the image layer (diff id) for container images.
	Layer string `json:"layer,omitempty"`
	// Message is a human explanation, safe to show the seller.
	Message string `json:"message,omitempty"`

	Vulnerability *Vulnerability `json:"vulnerability,omitempty"`
	Secret        *Secret        `json:"secret,omitempty"`
	Malware       *Malware       `json:"malware,omitempty"`
}

// Vulnerability is a known vulnerability in a component.
type Vulnerability struct {
	ID               string   `json:"id"`
	Package          string   `json:"package"`
	PackageType      string   `json:"package_type,omitempty"` // npm, jar, pip, gomod, debian, alpine, ...
	InstalledVersion string   `json:"installed_version"`
	FixedVersion     string   `json:"fixed_version,omitempty"`
	Severity         string   `json:"severity"`              // trivy's severity: LOW..CRITICAL, UNKNOWN
	CVSSScore        *float64 `json:"cvss_score,omitempty"`  // highest CVSS v3 base score across sources
	CVSSSource       string   `json:"cvss_source,omitempty"` // where that score came from (nvd, ghsa, ...)
	CVSSVector       string   `json:"cvss_vector,omitempty"`
	Title            string   `json:"title,omitempty"`
}

// Secret is an embedded secret. Match never holds the full secret.
type Secret struct {
	RuleID   string `json:"rule_id"`
	Category string `json:"category"`
	Title    string `json:"title,omitempty"`
	Severity string `json:"severity,omitempty"`
	Line     int    `json:"line,omitempty"`
	Match    string `json:"match,omitempty"` // masked
}

// Malware is a malware engine detection.
type Malware struct {
	Signature string `json:"signature"`
	Engine    string `json:"engine"`
}

// Component is one package found in the asset (the inventory). It is kept
// with the findings so that a later DB can be matched without a rescan.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Type is the ecosystem (npm, jar, pip, gomod, …) or, for OS packages,
	// the OS family (debian, alpine, …).
	Type string `json:"type"`
	// OS marks an OS package; the source package fields below are what
	// distributions' advisories are keyed on.
	OS         bool   `json:"os,omitempty"`
	Release    string `json:"release,omitempty"`
	Epoch      int    `json:"epoch,omitempty"`
	Arch       string `json:"arch,omitempty"`
	SrcName    string `json:"src_name,omitempty"`
	SrcVersion string `json:"src_version,omitempty"`
	SrcRelease string `json:"src_release,omitempty"`
	SrcEpoch   int    `json:"src_epoch,omitempty"`
	Path       string `json:"path,omitempty"`
	// Target is where trivy found the package (lock file, image layer
	// list); packages of one target are re-matched together.
	Target string `json:"target,omitempty"`
}

// OSInfo is the operating system found in an image.
type OSInfo struct {
	Family string `json:"family"`
	Name   string `json:"name"`
	// EOSL is true when the release is past its vendor's end of life
	// (trivy's end-of-support data).
	EOSL bool `json:"eosl,omitempty"`
}

// CheckRun records whether a check ran. A check that did not run to the end
// makes the verdict Error (fail closed), unless findings already fail the
// asset.
type CheckRun struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "ok", "error", "skipped"
	Reason string `json:"reason,omitempty"`
	// Detail is engine-specific: files scanned, bytes, versions.
	Detail string `json:"detail,omitempty"`
	// Identity names the code and engine that ran the check (nil in
	// records written before identities existed).
	Identity *Identity `json:"identity,omitempty"`
	// Coverage says what the check examined and what it did not (nil when
	// the check does not report it).
	Coverage *Coverage `json:"coverage,omitempty"`
}

// Identity is what a check ran with: assetscan's own check code version,
// and the engine's version and data (vulnerability DB digest, signature
// set digest). Two runs with equal identities, on the same bytes and
// inputs, find the same facts; that is what makes reuse of findings safe.
type Identity struct {
	// Check is the check name (CheckMalware, ...).
	Check string `json:"check"`
	// Version is the version of assetscan's code for the check; it changes
	// whenever what the check can find changes.
	Version string `json:"version"`
	// Engine names the engine and its version ("trivy v0.74.0",
	// "ClamAV 1.4.6"); empty for checks that are assetscan's own code.
	Engine string `json:"engine,omitempty"`
	// Data names the engine's data: "db sha256:…", "signatures sha256:…".
	Data string `json:"data,omitempty"`
	// Unknown is true when the engine's state cannot be known from the
	// worker (a remote clamd whose signatures assetscan does not manage):
	// findings made under an unknown identity are never reused.
	Unknown bool `json:"unknown,omitempty"`
}

// String is the identity in one line, stable for hashing.
func (i Identity) String() string {
	s := i.Check + "@" + i.Version
	if i.Engine != "" {
		s += " engine=" + i.Engine
	}
	if i.Data != "" {
		s += " data=" + i.Data
	}
	if i.Unknown {
		s += " unknown"
	}
	return s
}

// Coverage is what one check examined. A required check whose coverage
// lists anything not examined cannot give a pass.
type Coverage struct {
	// Files and Bytes count the files and bytes the check read.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// NotExamined lists (at most MaxNotExamined) what the check did not
	// read, with why; NotExaminedCount is the total.
	NotExamined      []NotExamined `json:"not_examined,omitempty"`
	NotExaminedCount int           `json:"not_examined_count,omitempty"`
}

// MaxNotExamined bounds Coverage.NotExamined.
const MaxNotExamined = 100

// NotExamined is one part of the asset a check did not read.
type NotExamined struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes,omitempty"`
	Reason string `json:"reason"`
}

// Add records a part not examined, keeping the list bounded.
func (c *Coverage) Add(n NotExamined) {
	c.NotExaminedCount++
	if len(c.NotExamined) < MaxNotExamined {
		c.NotExamined = append(c.NotExamined, n)
	}
}

// Complete reports whether nothing was left unexamined.
func (c *Coverage) Complete() bool { return c == nil || c.NotExaminedCount == 0 }

// Facts are what a scan measured about the asset as a whole. Rules that
// depend on the policy (name, size, claimed format) are judged from them
// when a verdict is made, so that a re-evaluation under a new policy
// re-judges them without a rescan.
type Facts struct {
	// Name is the file name the name rule applies to.
	Name string `json:"name"`
	// Size is the object's size in bytes.
	Size int64 `json:"size"`
	// Format is the container format detected from the content (zip, tar,
	// tar.gz) for packages; empty when it is none of them.
	Format string `json:"format,omitempty"`
	// NotDownloaded is true when the object was larger than the policy's
	// size limit at scan time and was not read at all.
	NotDownloaded bool `json:"not_downloaded,omitempty"`
}

// Check run statuses.
const (
	RunOK      = "ok"
	RunError   = "error"
	RunSkipped = "skipped"
)

// Object names the object in storage that was scanned.
type Object struct {
	Bucket    string `json:"bucket,omitempty"`
	Key       string `json:"key,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	Name      string `json:"name"` // the file name the name rule is applied to
	Size      int64  `json:"size"`
}

// PolicyRef names the policy a verdict was judged under.
type PolicyRef struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Digest  string `json:"digest"` // sha256 of the policy's canonical content
}

// DBRef names the vulnerability database a scan matched against.
type DBRef struct {
	SchemaVersion int       `json:"schema_version"`
	UpdatedAt     time.Time `json:"updated_at"` // the DB's build time
	DownloadedAt  time.Time `json:"downloaded_at,omitzero"`
	Digest        string    `json:"digest,omitempty"` // sha256 of trivy.db
}

// FailedRule is one rule that made a verdict fail, with how many findings
// triggered it.
type FailedRule struct {
	Rule    string `json:"rule"`
	Count   int    `json:"count"`
	Example string `json:"example,omitempty"` // the first finding's path or id
}

// Findings is everything a scan found: the facts, independent of policy.
type Findings struct {
	Findings   []Finding   `json:"findings"`
	Components []Component `json:"components,omitempty"`
	Checks     []CheckRun  `json:"checks"`
	// Engines maps an engine to its version ("trivy" -> "v0.74.0").
	Engines map[string]string `json:"engines,omitempty"`
	DB      *DBRef            `json:"vulndb,omitempty"`
	// OS is the operating system of an image, for re-matching its packages.
	OS *OSInfo `json:"os,omitempty"`
	// Facts about the asset as a whole, judged under the policy.
	Facts *Facts `json:"facts,omitempty"`
}

// Verdict is the verdict document: the record of a finished scan, as the API
// returns it and `assetscan scan --format json` prints it.
type Verdict struct {
	ScanID   string  `json:"scan_id,omitempty"`
	AssetID  string  `json:"asset_id,omitempty"`
	SellerID string  `json:"seller_id,omitempty"`
	Kind     Kind    `json:"kind"`
	Status   Status  `json:"status"`
	Verdict  Outcome `json:"verdict,omitempty"`
	// Reason explains an Error verdict (e.g. "malware engine unreachable").
	Reason      string       `json:"reason,omitempty"`
	FailedRules []FailedRule `json:"failed_rules,omitempty"`
	// SHA256 is the hex digest of the exact bytes scanned.
	SHA256 string    `json:"sha256,omitempty"`
	Object Object    `json:"object"`
	Policy PolicyRef `json:"policy"`
	// Findings with the policy's decision on each.
	Findings   []JudgedFinding   `json:"findings"`
	Checks     []CheckRun        `json:"checks"`
	Engines    map[string]string `json:"engines,omitempty"`
	VulnDB     *DBRef            `json:"vulndb,omitempty"`
	Components int               `json:"components"`
	// Revision counts verdicts of this scan: 1 for the scan's own, +1 for
	// each re-evaluation that changed it.
	Revision int `json:"revision,omitempty"`
	// Supersedes names the verdict revision this one replaces
	// ("<scan_id>@<revision>"), after a re-evaluation.
	Supersedes string `json:"supersedes,omitempty"`
	// ReuseKey is the digest of everything that decided the findings: the
	// content digest, kind, name, declared inputs, the identity of every
	// check and the policy limits that shaped what was read (see package
	// scan). Equal keys mean equal findings.
	ReuseKey string `json:"reuse_key,omitempty"`
	// Reused is true when the findings were not made by this scan but
	// taken from an earlier scan with the same ReuseKey (whose seller,
	// id and time are never named), then judged under this verdict's
	// policy.
	Reused      bool      `json:"reused,omitempty"`
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	Attempts    int       `json:"attempts,omitempty"`
}

// Action is what a policy does with a finding.
type Action string

// Policy actions.
const (
	ActionFail Action = "fail"
	ActionWarn Action = "warn"
	ActionInfo Action = "info"
	// ActionAllowed: the finding would fail but an allow-list entry of the
	// policy covers it; it stays in the report with the entry.
	ActionAllowed Action = "allowed"
)

// JudgedFinding is a finding with the policy's decision.
type JudgedFinding struct {
	Finding
	Action Action `json:"action"`
	// AllowedBy names the allow-list entry that covers the finding.
	AllowedBy *AllowRef `json:"allowed_by,omitempty"`
}

// AllowRef names the allow-list entry that let a finding through.
type AllowRef struct {
	ID      string    `json:"id"`
	Reason  string    `json:"reason"`
	AddedBy string    `json:"added_by"`
	Expires time.Time `json:"expires"`
}
