package trivy

import (
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

func TestDropUnpackedJavaInventory(t *testing.T) {
	t.Parallel()
	vuln := func(path string) assetscan.Finding {
		return assetscan.Finding{Check: assetscan.CheckVulnerability, Path: path, Vulnerability: &assetscan.Vulnerability{ID: "CVE-2021-44228"}}
	}
	in := scanner.Result{
		Findings: []assetscan.Finding{
			vuln("lib/shop-app.jar"),                         // the kept jar: stays
			vuln("lib/shop-app.jar!/BOOT-INF/lib/log4j.jar"), // its unpacked copy: dropped
			vuln("lib/tool.whl!/tool-1.0.dist-info/METADATA"),
			vuln("a/b.WAR!/WEB-INF/lib/x.jar"),
			{Check: assetscan.CheckSecret, Path: "lib/shop-app.jar!/application.properties"}, // stays
		},
		Components: []assetscan.Component{
			{Name: "log4j", Path: "lib/shop-app.jar"},
			{Name: "log4j", Path: "lib/shop-app.jar!/BOOT-INF/lib/log4j.jar"},
			{Name: "pom", Target: "lib/shop-app.jar!/META-INF/maven/x/pom.xml"},
			{Name: "requests", Path: "lib/tool.whl!/requests-2.0.dist-info/METADATA"},
		},
	}
	out := dropUnpackedJavaInventory(in)
	var paths []string
	for _, f := range out.Findings {
		paths = append(paths, f.Path)
	}
	want := []string{"lib/shop-app.jar", "lib/tool.whl!/tool-1.0.dist-info/METADATA", "lib/shop-app.jar!/application.properties"}
	if len(paths) != len(want) {
		t.Fatalf("findings %v, want %v", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Errorf("finding %d = %s, want %s", i, paths[i], want[i])
		}
	}
	if len(out.Components) != 2 || out.Components[0].Path != "lib/shop-app.jar" || out.Components[1].Name != "requests" {
		t.Errorf("components %+v", out.Components)
	}
}
