package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/scanner"
)

// cmdScan scans one local file in-process: the README's "main job on an
// embedded default". It returns the process exit code.
func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", envOr("ASSETSCAN_KIND", string(assetscan.KindPackage)), "asset kind: package, container-image or vm-image")
	dbDir := fs.String("db-dir", os.Getenv("ASSETSCAN_DB_DIR"), "trivy cache dir with db/trivy.db and db/metadata.json (default: the shipped fixture DB)")
	policyFile := fs.String("policy", os.Getenv("ASSETSCAN_POLICY"), "policy file (default: the embedded default policy for the kind)")
	format := fs.String("format", envOr("ASSETSCAN_FORMAT", "table"), "output format: table or json")
	clamd := fs.String("clamd", os.Getenv("ASSETSCAN_CLAMD"), "clamd address, unix:/path/clamd.sock or tcp:host:port (default: start a private clamd with the shipped signatures if clamd is installed)")
	name := fs.String("name", "", "file name the name rule applies to (default: the base name of PATH)")
	sha := fs.String("sha256", "", "expected SHA-256 of the file; a mismatch fails")
	logLevel := fs.String("log-level", envOr("ASSETSCAN_LOG_LEVEL", "warn"), "log level for stderr: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: assetscan scan [flags] PATH")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "assetscan scan: --format must be table or json, got %q\n", *format)
		return exitError
	}
	k := assetscan.Kind(*kind)
	if !k.Valid() {
		fmt.Fprintf(stderr, "assetscan scan: --kind must be package, container-image or vm-image, got %q\n", *kind)
		return exitError
	}
	path := fs.Arg(0)
	log := newLogger(stderr, *logLevel)

	pol, err := loadPolicy(*policyFile, k)
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}

	work, err := os.MkdirTemp("", "assetscan-scan-")
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	defer os.RemoveAll(work)

	eng, err := openEngines(ctx, engineConfig{DBDir: *dbDir, Clamd: *clamd, PrivateDir: filepath.Join(work, "engines"), Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	defer eng.Close()

	scanWork := filepath.Join(work, "scan")
	if err := os.Mkdir(scanWork, 0o700); err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	abs, _ := filepath.Abs(path)
	s := &scanner.Scanner{Checks: eng.Checks, Preparers: eng.Preparers, Log: log}
	if *format != "json" && isTerminal(stderr) {
		// A person is watching: say what a long scan is doing.
		start := time.Now()
		var mu sync.Mutex
		s.Progress = func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), msg)
		}
	}
	start := time.Now()
	rep, err := s.Scan(ctx, scanner.Request{Kind: k, Path: abs, Name: *name, ExpectedSHA256: *sha, WorkDir: scanWork, Rules: pol})
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	base := assetscan.Verdict{Kind: k, SHA256: rep.SHA256,
		Object:      assetscan.Object{Name: nameOr(*name, filepath.Base(path)), Size: rep.Size},
		SubmittedAt: start.UTC(), CompletedAt: time.Now().UTC()}
	v := policies.Verdict(pol, base, rep.Findings)
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	} else {
		printTable(stdout, v)
	}
	switch v.Verdict {
	case assetscan.Pass:
		return exitPass
	case assetscan.Fail:
		return exitFail
	default:
		return exitError
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func nameOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func loadPolicy(file string, k assetscan.Kind) (*policies.Policy, error) {
	if file == "" {
		return policies.Default(k)
	}
	p, err := policies.Load(file)
	if err != nil {
		return nil, err
	}
	if p.Kind != k {
		return nil, fmt.Errorf("policy %s is for kind %q, not %q", file, p.Kind, k)
	}
	return p, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// printTable prints a verdict for a person.
func printTable(w io.Writer, v assetscan.Verdict) {
	fmt.Fprintf(w, "verdict:  %s\n", strings.ToUpper(string(v.Verdict)))
	if v.Reason != "" {
		fmt.Fprintf(w, "reason:   %s\n", v.Reason)
	}
	fmt.Fprintf(w, "asset:    %s (%s, %d bytes)\n", v.Object.Name, v.Kind, v.Object.Size)
	fmt.Fprintf(w, "sha256:   %s\n", v.SHA256)
	fmt.Fprintf(w, "policy:   %s v%d (%s)\n", v.Policy.ID, v.Policy.Version, v.Policy.Digest)
	if v.VulnDB != nil {
		fmt.Fprintf(w, "vuln DB:  schema %d, built %s\n", v.VulnDB.SchemaVersion, v.VulnDB.UpdatedAt.Format(time.RFC3339))
	}
	if len(v.Engines) > 0 {
		keys := make([]string, 0, len(v.Engines))
		for k := range v.Engines {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+" "+v.Engines[k])
		}
		fmt.Fprintf(w, "engines:  %s\n", strings.Join(parts, ", "))
	}
	parts := make([]string, 0, len(v.Checks))
	for _, c := range v.Checks {
		s := c.Name + " " + c.Status
		if c.Reason != "" {
			s += " (" + c.Reason + ")"
		}
		parts = append(parts, s)
	}
	fmt.Fprintf(w, "checks:   %s\n", strings.Join(parts, "; "))
	if len(v.Findings) == 0 {
		fmt.Fprintln(w, "findings: none")
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tRULE\tPATH\tDETAIL")
	for _, f := range v.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Action, f.Rule, f.Path, findingDetail(f.Finding))
	}
	_ = tw.Flush()
}

func findingDetail(f assetscan.Finding) string {
	switch {
	case f.Vulnerability != nil:
		v := f.Vulnerability
		s := fmt.Sprintf("%s %s %s", v.ID, v.Package, v.InstalledVersion)
		if v.FixedVersion != "" {
			s += " (fixed " + v.FixedVersion + ")"
		}
		if v.CVSSScore != nil {
			s += fmt.Sprintf(" CVSS %.1f/%s", *v.CVSSScore, v.CVSSSource)
		} else {
			s += " " + v.Severity
		}
		return s
	case f.Secret != nil:
		return fmt.Sprintf("%s line %d: %s", f.Secret.RuleID, f.Secret.Line, f.Secret.Match)
	case f.Malware != nil:
		return f.Malware.Signature
	}
	return f.Message
}
