package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium returns the headless browser, or skips the test. Debian's
// package is "chromium" (scripts/services.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (apt-get install -y chromium)")
	return ""
}

// runChromium loads file in headless Chromium with one action flag
// (--dump-dom, --screenshot=…) and returns stdout and the console lines
// Chromium logged. The time-out only bounds a hung browser; nothing is
// asserted about time.
func runChromium(t *testing.T, bin, file string, action ...string) (stdout string, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1200,1600", "--enable-logging=stderr", "--v=0"}, action...)
	args = append(args, "file://"+file)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", action, err, errb.String())
	}
	for _, line := range strings.Split(errb.String(), "\n") {
		// Page console messages (errors, CSP violations, failed loads) are
		// logged as "...:INFO:CONSOLE:<line>] "message", source: ...".
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, line)
		}
	}
	return out.String(), console
}

// TestHTMLInChromium renders the HTML report of each verdict kind in
// headless Chromium: the page loads with no console message (no CSP
// violation: it needs nothing outside itself), the verdict is in the DOM,
// and a screenshot is written to a temporary directory (kept when
// ASSETSCAN_REPORT_SCREENSHOTS names a directory, never in git).
func TestHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	keep := os.Getenv("ASSETSCAN_REPORT_SCREENSHOTS")
	all := samples(t)
	for _, tt := range []struct {
		sample, verdict, headline string
	}{
		{"clean-app", "pass", "PASS"},
		{"lodash-app", "fail", "FAIL"},
		{"error-app", "error", "ERROR"},
		{"hostile-image", "fail", "FAIL"},
	} {
		t.Run(tt.verdict+"/"+tt.sample, func(t *testing.T) {
			var s sample
			for _, x := range all {
				if x.name == tt.sample {
					s = x
				}
			}
			dir := t.TempDir()
			file := filepath.Join(dir, tt.sample+".html")
			if err := os.WriteFile(file, render(t, FormatHTML, s), 0o644); err != nil {
				t.Fatal(err)
			}
			dom, console := runChromium(t, bin, file, "--dump-dom")
			if len(console) > 0 {
				t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
			}
			if !strings.Contains(dom, `data-verdict="`+tt.verdict+`"`) || !strings.Contains(dom, ">"+tt.headline+"</p>") {
				t.Errorf("verdict %s not in the DOM:\n%s", tt.headline, dom)
			}
			if strings.Contains(strings.ToLower(dom), "<script") {
				t.Errorf("a script element in the DOM")
			}
			png := filepath.Join(dir, tt.sample+".png")
			if keep != "" {
				png = filepath.Join(keep, tt.verdict+"-"+tt.sample+".png")
			}
			_, console = runChromium(t, bin, file, "--screenshot="+png)
			if len(console) > 0 {
				t.Errorf("console messages:\n%s", strings.Join(console, "\n"))
			}
			img, err := os.ReadFile(png)
			if err != nil || !bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) {
				t.Fatalf("no PNG screenshot at %s: %v", png, err)
			}
			t.Logf("screenshot %s (%d bytes)", png, len(img))
		})
	}
	// The console check is not vacuous: a page that reaches outside itself
	// is reported.
	t.Run("control", func(t *testing.T) {
		page := strings.Replace(string(render(t, FormatHTML, all[0])), "</main>", `<img src="https://example.invalid/x.png"></main>`, 1)
		file := filepath.Join(t.TempDir(), "control.html")
		if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, console := runChromium(t, bin, file, "--dump-dom"); len(console) == 0 {
			t.Errorf("an external image gave no console message: the check cannot see CSP violations")
		}
	})
}
