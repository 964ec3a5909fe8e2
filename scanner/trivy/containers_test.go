package trivy

import (
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

func TestDropUnpackedJavaInventory(t *testing.T) {
	t.Parallel()
	vuln := func(path, typ string) assetscan.Finding {
		return assetscan.Finding{Check: assetscan.CheckVulnerability, Path: path,
			Vulnerability: &assetscan.Vulnerability{ID: "CVE-X", PackageType: typ}}
	}
	tests := []struct {
		f    assetscan.Finding
		keep bool
	}{
		{vuln("lib/shop-app.jar", "jar"), true},                          // the kept jar
		{vuln("lib/shop-app.jar!/BOOT-INF/lib/log4j.jar", "jar"), false}, // its unpacked copy
		{vuln("a/b.WAR!/WEB-INF/lib/x.jar", "jar"), false},
		{vuln("a/b.war!/META-INF/maven/g/a/pom.xml", "pom"), false},
		{vuln("lib/tool.whl!/tool-1.0.dist-info/METADATA", "python-pkg"), true},
		// trivy does not read these whole: the unpacked tree is the only inventory.
		{vuln("plugins/x.hpi!/WEB-INF/lib/jackson-databind-2.9.0.jar", "jar"), true},
		{vuln("x.sar!/lib/y.jar", "jar"), true},
		{vuln("tool.whl!/lib/y.jar", "jar"), true},
		// Non-Java inventory inside a Java archive is found only unpacked.
		{vuln("app.war!/static/package-lock.json", "npm"), true},
		{vuln("app.jar!/bin/helper", "gobinary"), true},
		{assetscan.Finding{Check: assetscan.CheckSecret, Path: "lib/shop-app.jar!/application.properties"}, true},
	}
	in := scanner.Result{}
	for _, tt := range tests {
		in.Findings = append(in.Findings, tt.f)
	}
	in.Components = []assetscan.Component{
		{Name: "log4j", Type: "jar", Path: "lib/shop-app.jar"},
		{Name: "log4j", Type: "jar", Path: "lib/shop-app.jar!/BOOT-INF/lib/log4j.jar"},
		{Name: "pom", Type: "pom", Target: "lib/shop-app.jar!/META-INF/maven/x/pom.xml"},
		{Name: "lodash", Type: "npm", Path: "app.war!/static/package-lock.json"},
		{Name: "jackson", Type: "jar", Path: "plugins/x.hpi!/WEB-INF/lib/jackson.jar"},
	}
	out := dropUnpackedJavaInventory(in)
	kept := map[string]bool{}
	for _, f := range out.Findings {
		kept[f.Path] = true
	}
	for _, tt := range tests {
		if kept[tt.f.Path] != tt.keep {
			t.Errorf("%s (%s): kept %v, want %v", tt.f.Path, tt.f.Check, kept[tt.f.Path], tt.keep)
		}
	}
	var names []string
	for _, c := range out.Components {
		names = append(names, c.Name+"@"+c.Path)
	}
	if len(out.Components) != 3 || out.Components[0].Path != "lib/shop-app.jar" || out.Components[1].Name != "lodash" || out.Components[2].Name != "jackson" {
		t.Errorf("components %v", names)
	}
}
