package registry

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
)

// Every rule id the code emits is in the registry: read every non-test Go
// file of the module for string literals shaped like rule ids.
func TestEveryEmittedRuleIsRegistered(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..")
	ruleLit := regexp.MustCompile(`"((?:archive|format|malware|account|image|hygiene|vulndb|vulnerability)\.[a-z_]+)"`)
	// Policy YAML keys and config field paths share the shape.
	notRules := map[string]bool{"archive.max_depth": true, "archive.max_entries": true, "archive.max_expanded_bytes": true,
		"archive.max_ratio": true, "format.extensions": true, "format.max_size_bytes": true, "format.name_pattern": true,
		"vulndb.max_age": true, "archive.link": true}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range ruleLit.FindAllStringSubmatch(string(b), -1) {
			if !notRules[m[1]] && !KnownRule(m[1]) {
				t.Errorf("%s emits rule %q, which the registry does not list", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMandatoryChecks(t *testing.T) {
	t.Parallel()
	for kind, want := range map[string]string{
		"package":         "format archive vulnerability secret malware",
		"container-image": "format archive vulnerability secret malware account",
		"vm-image":        "format archive vulnerability secret malware account",
	} {
		if got := strings.Join(Mandatory(assetKind(kind)), " "); got != want {
			t.Errorf("Mandatory(%s) = %s, want %s", kind, got, want)
		}
	}
}

func assetKind(s string) assetscan.Kind { return assetscan.Kind(s) }
