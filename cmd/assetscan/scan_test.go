package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assetscan/assetscan/scanner/trivy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestScanGolden runs `assetscan scan` on the shipped demo packages and
// compares the reports with the golden files in testdata/golden (volatile
// fields — times, the clamd version line — normalised). Run with -update
// after a deliberate change of the report.
func TestScanGolden(t *testing.T) {
	clamd := os.Getenv("ASSETSCAN_TEST_CLAMD")
	if clamd == "" {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			t.Skip("ASSETSCAN_SKIP_SERVICES=1")
		}
		t.Fatal("ASSETSCAN_TEST_CLAMD not set: run scripts/test.sh")
	}
	tests := []struct {
		pkg, format string
		exit        int
	}{
		{"lodash-app.zip", "json", exitFail},
		{"lodash-app.zip", "table", exitFail},
		{"clean-app.zip", "json", exitPass},
	}
	for _, tt := range tests {
		t.Run(tt.pkg+"/"+tt.format, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"scan", "--clamd", clamd, "--clamd-conf", os.Getenv("ASSETSCAN_TEST_CLAMD_CONF"), "--format", tt.format,
				filepath.Join("..", "..", "testdata", "packages", tt.pkg)}, &out, &errb)
			if code != tt.exit {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nstdout:\n%s", code, tt.exit, errb.String(), out.String())
			}
			got := normalise(out.Bytes())
			if tt.format == "json" {
				var v map[string]any
				if err := json.Unmarshal(out.Bytes(), &v); err != nil {
					t.Fatalf("not one JSON document: %v", err)
				}
				if _, ok := v["verdict"].(string); !ok {
					t.Fatal(`no top-level "verdict"`)
				}
			}
			golden := filepath.Join("..", "..", "testdata", "golden", strings.TrimSuffix(tt.pkg, ".zip")+"."+tt.format)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("report differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`"(submitted_at|completed_at)": "[^"]*"`), `"$1": "<time>"`},
	{regexp.MustCompile(`ClamAV [0-9.]+(/[^"\n,]*)?`), `ClamAV <version>`},
	{regexp.MustCompile(`"clamav-signatures": "[^"]*"`), `"clamav-signatures": "<digest>"`},
	{regexp.MustCompile(`clamav-signatures sha256:[0-9a-f]+`), `clamav-signatures <digest>`},
	{regexp.MustCompile(`signatures sha256:[0-9a-f]+`), `signatures <digest>`},
	{regexp.MustCompile(`db sha256:[0-9a-f]+ built [0-9TZ:-]+`), `db <digest> built <time>`},
	{regexp.MustCompile(`java-db sha256:[0-9a-f]+`), `java-db <digest>`},
	{regexp.MustCompile(`"reuse_key": "sha256:[0-9a-f]{64}"`), `"reuse_key": "<reuse key>"`},
	{regexp.MustCompile(`reuse:    sha256:[0-9a-f]{64}`), `reuse:    <reuse key>`},
	{regexp.MustCompile(`mode (fdpass|instream), [0-9]+ in flight[^"\n]*`), `mode <mode>`},
	{regexp.MustCompile(`"detail": "[0-9]+ files, [^"]*"`), `"detail": "<files>"`},
}

func normalise(b []byte) []byte {
	for _, v := range volatile {
		b = v.re.ReplaceAll(b, []byte(v.repl))
	}
	return b
}

func TestScanUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"scan"}, "usage: assetscan scan"},
		{[]string{"scan", "--format", "xml", "x.zip"}, "--format must be one of"},
		{[]string{"scan", "--kind", "rpm", "x.zip"}, "--kind must be package"},
		{[]string{"scan", "--clamd", "localhost:3310", "../../testdata/packages/clean-app.zip"}, "clamd address"},
		{[]string{"scan", "no-such-file.zip"}, "no such file"},
		{[]string{"scan", "--name", "x.zip", "../../testdata/packages/clean-app.zip", "../../testdata/packages/lodash-app.zip"}, "one asset only"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := run(tt.args, &out, &errb); code != exitError {
			t.Errorf("%v: exit %d, want %d", tt.args, code, exitError)
		}
		if !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v: stderr %q does not contain %q", tt.args, errb.String(), tt.want)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	trivy.CleanupTemp()
	os.Exit(code)
}
