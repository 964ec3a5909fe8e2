package trivy

import (
	"slices"
	"strings"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// javaArchives are the archive kinds trivy's Java analyzer reads whole,
// nested jars included (requiredExtensions of its jar analyzer), and that
// the extractor keeps on disk although it also unpacks them ("x.jar!/...",
// so that the malware and secret checks see their members). trivy then
// finds the same Java inventory twice: from the kept archive and from the
// unpacked tree (its jars and pom files).
var javaArchives = []string{".jar", ".war", ".ear", ".par"}

// javaTypes are trivy's package types of Java inventory.
var javaTypes = []string{"jar", "pom", "gradle", "sbt"}

// insideJavaArchive reports whether path lies in the unpacked directory of
// a Java archive that trivy reads whole: the outermost unpacked archive of
// the path ("lib/app.war!/WEB-INF/lib/x.jar" is inside app.war; in
// "tool.whl!/x.jar!/..." the outermost is a wheel, which trivy does not
// read whole, so it is not).
func insideJavaArchive(path string) bool {
	for part := range strings.SplitSeq(path, "/") {
		name, ok := strings.CutSuffix(part, "!")
		if !ok {
			continue
		}
		lower := strings.ToLower(name)
		for _, ext := range javaArchives {
			if strings.HasSuffix(lower, ext) {
				return true
			}
		}
		return false // the outermost unpacked archive decides
	}
	return false
}

// dropUnpackedJavaInventory removes the Java vulnerability findings and
// components trivy found inside unpacked Java archives: the kept archive
// itself gives them, with trivy's own nested-jar paths. Everything else
// found there stays: secrets (what unpacking is for), and non-Java
// inventory (a package-lock.json or a Go binary bundled in a war is seen
// only in the unpacked tree). A wheel, a Jenkins plugin (.hpi) or any
// archive trivy does not read whole is not touched either.
func dropUnpackedJavaInventory(res scanner.Result) scanner.Result {
	keepF := res.Findings[:0:0]
	for _, f := range res.Findings {
		if f.Check == assetscan.CheckVulnerability && f.Vulnerability != nil &&
			slices.Contains(javaTypes, f.Vulnerability.PackageType) && insideJavaArchive(f.Path) {
			continue
		}
		keepF = append(keepF, f)
	}
	keepC := res.Components[:0:0]
	for _, c := range res.Components {
		if !c.OS && slices.Contains(javaTypes, c.Type) && (insideJavaArchive(c.Path) || insideJavaArchive(c.Target)) {
			continue
		}
		keepC = append(keepC, c)
	}
	res.Findings, res.Components = keepF, keepC
	return res
}

// treeCoverage is what trivy's walk of an extracted package read: every
// extracted file (its analyzers pick lock files, manifests and archives by
// name and content; its secret scanner reads every text file of 10 bytes
// or more, UTF-16/32 through textenc). Binary files are walked but hold no
// text for the secret rules; that is not a gap, so it is not listed.
func treeCoverage(files []scanner.File) *assetscan.Coverage {
	c := &assetscan.Coverage{}
	for _, f := range files {
		c.Files++
		c.Bytes += f.Size
	}
	return c
}
