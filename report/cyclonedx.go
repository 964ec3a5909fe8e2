package report

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"

	"github.com/assetscan/assetscan"
)

// assetRef is the bom-ref of the asset (the metadata component).
const assetRef = "asset"

// CycloneDX writes a CycloneDX 1.6 SBOM (JSON) of the scan: the asset as
// metadata.component with its SHA-256; every component of f's inventory
// with its purl, version, type and where it was found (properties
// assetscan:path and assetscan:target); the image's OS as an
// operating-system component; and every vulnerability finding of v with
// its ratings (CVSS source, score, vector, severity), the affected
// component, the remediation as recommendation and the policy's decision
// (property assetscan:action, plus analysis.detail for an allow-listed
// one). Components are sorted by purl and path, so the output is
// deterministic; serialNumber is derived from the scan id, the revision
// and the content digest.
func CycloneDX(w io.Writer, v assetscan.Verdict, f assetscan.Findings) error {
	bom := cdx.NewBOM()
	bom.SerialNumber = serialNumber(v)
	bom.Version = max(v.Revision, 1)

	asset := cdx.Component{
		BOMRef: assetRef, Type: assetType(v.Kind), Name: cmp.Or(v.Object.Name, v.AssetID, "asset"),
	}
	if v.SHA256 != "" {
		asset.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.ToLower(v.SHA256)}}
	}
	asset.Properties = props(
		"assetscan:scan_id", v.ScanID, "assetscan:asset_id", v.AssetID, "assetscan:seller_id", v.SellerID,
		"assetscan:kind", string(v.Kind), "assetscan:verdict", string(v.Verdict), "assetscan:reason", v.Reason,
		"assetscan:policy", policyString(v.Policy), "assetscan:vulndb", dbString(v.VulnDB),
		"assetscan:object", objectString(v.Object),
	)
	tools := []cdx.Component{}
	for _, e := range sortedKeys(v.Engines) {
		tools = append(tools, cdx.Component{Type: cdx.ComponentTypeApplication, Name: e, Version: v.Engines[e]})
	}
	bom.Metadata = &cdx.Metadata{Component: &asset}
	if len(tools) > 0 {
		bom.Metadata.Tools = &cdx.ToolsChoice{Components: &tools}
	}
	if !v.CompletedAt.IsZero() {
		bom.Metadata.Timestamp = v.CompletedAt.UTC().Format(time.RFC3339)
	}

	comps := slices.Clone(f.Components)
	slices.SortStableFunc(comps, func(a, b assetscan.Component) int {
		return cmp.Or(cmp.Compare(PackageURL(a, f.OS), PackageURL(b, f.OS)),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Target, b.Target))
	})
	var out []cdx.Component
	used := map[string]int{}
	refs := map[string]string{} // name\x00version\x00type -> first bom-ref
	var deps []string
	if f.OS != nil && f.OS.Family != "" {
		out = append(out, cdx.Component{BOMRef: "os", Type: cdx.ComponentTypeOS, Name: f.OS.Family, Version: f.OS.Name})
		deps = append(deps, "os")
	}
	for _, c := range comps {
		purl := PackageURL(c, f.OS)
		ref := cmp.Or(purl, "component:"+c.Type+"/"+c.Name+"@"+c.Version)
		used[ref]++
		if n := used[ref]; n > 1 {
			ref += "#" + strconv.Itoa(n)
		}
		key := c.Name + "\x00" + c.Version + "\x00" + c.Type
		if _, ok := refs[key]; !ok {
			refs[key] = ref
		}
		cc := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: c.Name, Version: fullVersion(c), PackageURL: purl}
		if g, a, ok := strings.Cut(c.Name, ":"); ok && isMaven(c.Type) {
			cc.Group, cc.Name = g, a
		}
		cc.Properties = props(
			"assetscan:path", c.Path, "assetscan:target", c.Target, "assetscan:type", c.Type,
			"assetscan:os_package", boolString(c.OS), "assetscan:src_name", c.SrcName,
			"assetscan:src_version", srcVersion(c),
		)
		out = append(out, cc)
		deps = append(deps, ref)
	}
	if len(out) > 0 {
		bom.Components = &out
		bom.Dependencies = &[]cdx.Dependency{{Ref: assetRef, Dependencies: &deps}}
	}

	var vulns []cdx.Vulnerability
	for i, jf := range v.Findings {
		vu := jf.Vulnerability
		if vu == nil {
			continue
		}
		ref, ok := refs[vu.Package+"\x00"+vu.InstalledVersion+"\x00"+vu.PackageType]
		if !ok {
			ref = assetRef
		}
		cv := cdx.Vulnerability{
			BOMRef: fmt.Sprintf("finding-%d", i), ID: vu.ID, Source: vulnSource(vu.ID),
			Description: vu.Title, Recommendation: Remediation(jf.Finding),
			Affects: &[]cdx.Affects{{Ref: ref, Range: &[]cdx.AffectedVersions{{Version: vu.InstalledVersion, Status: cdx.VulnerabilityStatusAffected}}}},
		}
		if r := ratings(vu); len(r) > 0 {
			cv.Ratings = &r
		}
		cv.Properties = props(
			"assetscan:action", string(jf.Action), "assetscan:rule", jf.Rule, "assetscan:path", jf.Path,
			"assetscan:layer", jf.Layer, "assetscan:fixed_version", vu.FixedVersion,
		)
		if a := jf.AllowedBy; a != nil {
			cv.Analysis = &cdx.VulnerabilityAnalysis{Detail: fmt.Sprintf("allowed by policy %s entry %s until %s: %s (added by %s)",
				v.Policy.ID, a.ID, a.Expires.UTC().Format(time.RFC3339), a.Reason, a.AddedBy)}
		}
		vulns = append(vulns, cv)
	}
	if len(vulns) > 0 {
		bom.Vulnerabilities = &vulns
	}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// PackageURL is the purl of an inventory component, or "" when its type
// has no purl type. Language ecosystems map to npm, pypi, maven (name
// "group:artifact"), golang, cargo, nuget, composer, gem, pub, hex, conda,
// swift, cocoapods, conan; OS packages to deb, apk or rpm with the
// distribution as namespace and qualifiers arch, epoch and distro
// ("<family>-<release>", from os).
func PackageURL(c assetscan.Component, os *assetscan.OSInfo) string {
	typ := purlType(c)
	if typ == "" || c.Name == "" {
		return ""
	}
	ns, name := "", c.Name
	var q packageurl.Qualifiers
	switch typ {
	case packageurl.TypeMaven:
		if g, a, ok := strings.Cut(c.Name, ":"); ok {
			ns, name = g, a
		}
	case packageurl.TypeNPM, packageurl.TypeGolang, packageurl.TypeComposer, packageurl.TypeSwift:
		if i := strings.LastIndexByte(c.Name, '/'); i > 0 {
			ns, name = c.Name[:i], c.Name[i+1:]
		}
	case packageurl.TypePyPi:
		name = strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(c.Name))
	case packageurl.TypeDebian, packageurl.TypeApk, packageurl.TypeRPM:
		ns = osNamespace(c.Type)
		if c.Arch != "" {
			q = append(q, packageurl.Qualifier{Key: "arch", Value: c.Arch})
		}
		if typ != packageurl.TypeApk && c.Epoch > 0 {
			q = append(q, packageurl.Qualifier{Key: "epoch", Value: strconv.Itoa(c.Epoch)})
		}
		if os != nil && os.Name != "" {
			q = append(q, packageurl.Qualifier{Key: "distro", Value: ns + "-" + os.Name})
		}
	}
	return packageurl.NewPackageURL(typ, ns, name, fullVersion(c), q, "").ToString()
}

func purlType(c assetscan.Component) string {
	switch c.Type {
	case "npm", "yarn", "pnpm", "bun", "node-pkg", "javascript":
		return packageurl.TypeNPM
	case "pip", "pipenv", "poetry", "uv", "python-pkg", "pypi":
		return packageurl.TypePyPi
	case "jar", "pom", "gradle", "sbt", "maven":
		return packageurl.TypeMaven
	case "gomod", "gobinary", "golang":
		return packageurl.TypeGolang
	case "cargo", "rust-binary", "rustbinary":
		return packageurl.TypeCargo
	case "nuget", "dotnet-core", "packages-props":
		return packageurl.TypeNuget
	case "composer", "composer-vendor":
		return packageurl.TypeComposer
	case "bundler", "gemspec", "gem":
		return packageurl.TypeGem
	case "pub":
		return packageurl.TypePub
	case "hex":
		return packageurl.TypeHex
	case "conda-pkg", "conda-environment":
		return packageurl.TypeConda
	case "swift":
		return packageurl.TypeSwift
	case "cocoapods":
		return packageurl.TypeCocoapods
	case "conan":
		return packageurl.TypeConan
	case "debian", "ubuntu":
		return packageurl.TypeDebian
	case "alpine", "wolfi", "chainguard", "minimos":
		return packageurl.TypeApk
	case "redhat", "centos", "rocky", "alma", "amazon", "oracle", "fedora", "opensuse", "opensuse.leap",
		"opensuse.tumbleweed", "sles", "suse", "photon", "azurelinux", "cbl-mariner", "echo":
		return packageurl.TypeRPM
	}
	return ""
}

// osNamespace is the purl namespace of an OS family (trivy's names to the
// purl spec's vendor names).
func osNamespace(family string) string {
	switch family {
	case "opensuse.leap", "opensuse.tumbleweed", "sles", "suse":
		return "opensuse"
	case "alma":
		return "almalinux"
	case "rocky":
		return "rocky"
	case "cbl-mariner":
		return "mariner"
	}
	return family
}

func isMaven(t string) bool { return purlType(assetscan.Component{Type: t}) == packageurl.TypeMaven }

// fullVersion is version-release for OS packages that split them (trivy
// stores the Debian revision and the RPM release apart).
func fullVersion(c assetscan.Component) string {
	if c.Release != "" {
		return c.Version + "-" + c.Release
	}
	return c.Version
}

func srcVersion(c assetscan.Component) string {
	if c.SrcRelease != "" {
		return c.SrcVersion + "-" + c.SrcRelease
	}
	return c.SrcVersion
}

func assetType(k assetscan.Kind) cdx.ComponentType {
	switch k {
	case assetscan.KindContainerImage:
		return cdx.ComponentTypeContainer
	case assetscan.KindVMImage:
		// A disk image holding a whole operating system.
		return cdx.ComponentTypeOS
	}
	return cdx.ComponentTypeApplication
}

func ratings(vu *assetscan.Vulnerability) []cdx.VulnerabilityRating {
	sev := cdx.Severity(strings.ToLower(vu.Severity))
	switch sev {
	case cdx.SeverityCritical, cdx.SeverityHigh, cdx.SeverityMedium, cdx.SeverityLow, cdx.SeverityInfo, cdx.SeverityNone:
	default:
		sev = cdx.SeverityUnknown
	}
	var out []cdx.VulnerabilityRating
	if vu.CVSSScore != nil {
		score := *vu.CVSSScore
		r := cdx.VulnerabilityRating{Score: &score, Severity: cvssSeverity(score), Vector: vu.CVSSVector, Method: cvssMethod(vu.CVSSVector)}
		if vu.CVSSSource != "" {
			r.Source = &cdx.Source{Name: vu.CVSSSource}
		}
		out = append(out, r)
	}
	if vu.Severity != "" {
		// trivy's own severity (the vendor's, or its pick across sources).
		out = append(out, cdx.VulnerabilityRating{Source: &cdx.Source{Name: "trivy"}, Severity: sev, Method: cdx.ScoringMethodOther})
	}
	return out
}

// cvssSeverity is the CVSS v3 qualitative rating of a base score.
func cvssSeverity(s float64) cdx.Severity {
	switch {
	case s >= 9:
		return cdx.SeverityCritical
	case s >= 7:
		return cdx.SeverityHigh
	case s >= 4:
		return cdx.SeverityMedium
	case s > 0:
		return cdx.SeverityLow
	}
	return cdx.SeverityNone
}

func cvssMethod(vector string) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		return cdx.ScoringMethodCVSSv3
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		return cdx.ScoringMethodCVSSv4
	case strings.HasPrefix(vector, "AV:"):
		return cdx.ScoringMethodCVSSv2
	}
	// Our CVSSScore is a CVSS v3 base score.
	return cdx.ScoringMethodCVSSv3
}

func vulnSource(id string) *cdx.Source {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return &cdx.Source{Name: "GitHub", URL: "https://github.com/advisories/" + id}
	}
	return nil
}

// serialNumber is a urn:uuid derived from what identifies this document
// (RFC 9562 version 8, name-based on SHA-256), so the same verdict gives
// the same SBOM.
func serialNumber(v assetscan.Verdict) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("assetscan-sbom\x00%s\x00%d\x00%s", v.ScanID, v.Revision, v.SHA256)))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// props builds a property list from key, value pairs, leaving out empty
// values; nil when all are empty.
func props(kv ...string) *[]cdx.Property {
	var out []cdx.Property
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, cdx.Property{Name: kv[i], Value: kv[i+1]})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &out
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return ""
}

func policyString(p assetscan.PolicyRef) string {
	if p.ID == "" {
		return ""
	}
	return fmt.Sprintf("%s v%d (%s)", p.ID, p.Version, p.Digest)
}

func dbString(db *assetscan.DBRef) string {
	if db == nil {
		return ""
	}
	s := fmt.Sprintf("schema %d, built %s", db.SchemaVersion, db.UpdatedAt.UTC().Format(time.RFC3339))
	if db.Digest != "" {
		s += ", sha256:" + db.Digest
	}
	return s
}

func objectString(o assetscan.Object) string {
	if o.Bucket == "" && o.Key == "" {
		return ""
	}
	s := o.Bucket + "/" + o.Key
	if o.VersionID != "" {
		s += "?versionId=" + o.VersionID
	}
	return s
}
