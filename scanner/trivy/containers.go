package trivy

import (
	"strings"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// javaContainers are the archive kinds trivy's Java analyzer reads whole
// (nested jars included). The extractor also unpacks them ("x.jar!/...")
// so that the malware and secret checks see their members; trivy then
// finds the same inventory twice, once from the kept jar and once from
// the unpacked tree (its jars and pom files).
var javaContainers = []string{".jar", ".war", ".ear", ".par", ".sar", ".hpi", ".jpi", ".kar", ".rar"}

// insideJavaContainer reports whether path lies in the unpacked directory
// of a Java archive ("lib/app.jar!/BOOT-INF/lib/x.jar").
func insideJavaContainer(path string) bool {
	for part := range strings.SplitSeq(path, "/") {
		name, ok := strings.CutSuffix(part, "!")
		if !ok {
			continue
		}
		lower := strings.ToLower(name)
		for _, ext := range javaContainers {
			if strings.HasSuffix(lower, ext) {
				return true
			}
		}
	}
	return false
}

// dropUnpackedJavaInventory removes the vulnerability findings and
// components trivy found inside unpacked Java archives: the kept archive
// itself gives them, with trivy's own nested-jar paths. Secret findings
// inside unpacked archives stay: that is what unpacking them is for. A
// wheel, a nupkg or any non-Java container is not touched: trivy does not
// read those whole, so their unpacked inventory is the only one.
func dropUnpackedJavaInventory(res scanner.Result) scanner.Result {
	keepF := res.Findings[:0:0]
	for _, f := range res.Findings {
		if f.Check == assetscan.CheckVulnerability && insideJavaContainer(f.Path) {
			continue
		}
		keepF = append(keepF, f)
	}
	keepC := res.Components[:0:0]
	for _, c := range res.Components {
		if !c.OS && (insideJavaContainer(c.Path) || insideJavaContainer(c.Target)) {
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
