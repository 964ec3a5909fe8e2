package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/report"
	"github.com/assetscan/assetscan/scan"
	"github.com/assetscan/assetscan/storage"
)

// cmdScan scans one local file in-process: the README's "main job on an
// embedded default". It returns the process exit code.
func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", envOr("ASSETSCAN_KIND", string(assetscan.KindPackage)), "asset kind: package, container-image or vm-image")
	dbDir := fs.String("db-dir", os.Getenv("ASSETSCAN_DB_DIR"), "trivy cache dir with db/trivy.db and db/metadata.json (default: the shipped fixture DB)")
	policyFile := fs.String("policy", os.Getenv("ASSETSCAN_POLICY"), "policy file (default: the embedded default policy for the kind)")
	format := fs.String("format", envOr("ASSETSCAN_FORMAT", "table"), "output format: "+strings.Join(outputFormats, ", ")+" (one asset); with several assets: table (a line each) or json (a verdict per line)")
	clamd := fs.String("clamd", os.Getenv("ASSETSCAN_CLAMD"), "clamd address, unix:/path/clamd.sock or tcp:host:port (default: start a private clamd with the shipped signatures if clamd is installed)")
	clamdConf := fs.String("clamd-conf", os.Getenv("ASSETSCAN_CLAMD_CONF"), "clamd.conf of the clamd at --clamd, when readable: its signature directory is hashed into the verdict")
	clamdMode := fs.String("clamd-mode", envOr("ASSETSCAN_CLAMD_MODE", "auto"), "how files reach clamd: auto, fdpass or instream")
	name := fs.String("name", "", "file name the name rule applies to (default: the base name of PATH; one asset only)")
	sha := fs.String("sha256", "", "expected SHA-256 of the file; a mismatch fails (one asset only)")
	jobs := fs.Int("jobs", 2, "assets scanned at once when several are given")
	logLevel := fs.String("log-level", envOr("ASSETSCAN_LOG_LEVEL", "warn"), "log level for stderr: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: assetscan scan [flags] PATH [PATH...]")
		fmt.Fprintln(stderr, "  PATH may be a directory: every regular file directly in it is scanned.")
		fmt.Fprintln(stderr, "  exit code: 0 all pass, 1 any fail, 2 any error (the worst verdict)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return exitError
	}
	if !slices.Contains(outputFormats, *format) {
		fmt.Fprintf(stderr, "assetscan scan: --format must be one of %s, got %q\n", strings.Join(outputFormats, ", "), *format)
		return exitError
	}
	k := assetscan.Kind(*kind)
	if !k.Valid() {
		fmt.Fprintf(stderr, "assetscan scan: --kind must be package, container-image or vm-image, got %q\n", *kind)
		return exitError
	}
	paths, err := assetPaths(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	if len(paths) > 1 && (*name != "" || *sha != "") {
		fmt.Fprintln(stderr, "assetscan scan: --name and --sha256 apply to one asset only")
		return exitError
	}
	if len(paths) > 1 && *format != "table" && *format != "json" {
		fmt.Fprintln(stderr, "assetscan scan: with several assets, --format is table or json")
		return exitError
	}
	if *jobs < 1 {
		fmt.Fprintln(stderr, "assetscan scan: --jobs must be at least 1")
		return exitError
	}
	log := newLogger(stderr, *logLevel)

	pol, err := loadPolicy(*policyFile, k)
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	work, err := os.MkdirTemp("", "assetscan-scan-")
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	defer os.RemoveAll(work)

	eng, err := openEngines(ctx, engineConfig{DBDir: *dbDir, Clamd: *clamd, ClamdConf: *clamdConf, ClamdMode: *clamdMode,
		PrivateDir: filepath.Join(work, "engines"), Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
		return exitError
	}
	defer eng.Close()
	// The same service the worker runs: policy, DB age, checks, verdict.
	svc := eng.service(scan.Static{Policy: pol}, filepath.Join(work, "scans"), log)

	var progress func(string)
	if *format == "table" && len(paths) == 1 && isTerminal(stderr) {
		// A person is watching: say what a long scan is doing.
		start := time.Now()
		var mu sync.Mutex
		progress = func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), msg)
		}
	}
	run := func(p string) (assetscan.Verdict, assetscan.Findings, error) {
		abs, _ := filepath.Abs(p)
		now := time.Now().UTC()
		return svc.Run(ctx, scan.Request{
			Scan:      storage.Scan{Kind: k, ExpectedSHA256: *sha, SubmittedAt: now},
			LocalPath: abs, Name: *name, Last: true, Progress: progress,
		})
	}
	if len(paths) == 1 {
		v, f, err := run(paths[0])
		if err != nil {
			fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
			return exitError
		}
		if err := writeVerdict(stdout, *format, v, f); err != nil {
			fmt.Fprintf(stderr, "assetscan scan: %v\n", err)
			return exitError
		}
		return exitCode(v.Verdict)
	}
	return scanMany(ctx, paths, *jobs, *format, run, stdout, stderr)
}

// scanMany scans several assets in one process, jobs at a time, printing
// one line (table) or one verdict (json) per asset as each finishes, and
// returns the exit code of the worst verdict.
func scanMany(ctx context.Context, paths []string, jobs int, format string,
	run func(string) (assetscan.Verdict, assetscan.Findings, error), stdout, stderr io.Writer) int {
	type result struct {
		path string
		v    assetscan.Verdict
		err  error
	}
	in := make(chan string)
	out := make(chan result)
	var wg sync.WaitGroup
	for range min(jobs, len(paths)) {
		wg.Go(func() {
			for p := range in {
				v, _, err := run(p)
				out <- result{p, v, err}
			}
		})
	}
	go func() {
		defer close(in)
		for _, p := range paths {
			select {
			case in <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	worst := exitPass
	counts := map[assetscan.Outcome]int{}
	enc := json.NewEncoder(stdout)
	for r := range out {
		code := exitError
		if r.err == nil {
			code = exitCode(r.v.Verdict)
			counts[r.v.Verdict]++
		} else {
			counts[assetscan.Error]++
		}
		worst = max(worst, code)
		switch {
		case r.err != nil:
			fmt.Fprintf(stdout, "%-5s  %s  %v\n", "ERROR", r.path, r.err)
		case format == "json":
			_ = enc.Encode(r.v)
		default:
			detail := r.v.Reason
			fmt.Fprintf(stdout, "%-5s  %s  sha256:%s  %s\n", strings.ToUpper(string(r.v.Verdict)), r.path, r.v.SHA256, detail)
		}
	}
	fmt.Fprintf(stderr, "%d assets: %d pass, %d fail, %d error\n", len(paths), counts[assetscan.Pass], counts[assetscan.Fail], counts[assetscan.Error])
	return worst
}

// assetPaths expands the arguments: a directory stands for the regular
// files directly in it (sorted); anything else must be a regular file.
func assetPaths(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				out = append(out, filepath.Join(a, e.Name()))
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no files to scan")
	}
	return out, nil
}

// exitCode maps a verdict onto the CLI's exit code.
func exitCode(o assetscan.Outcome) int {
	switch o {
	case assetscan.Pass:
		return exitPass
	case assetscan.Fail:
		return exitFail
	}
	return exitError
}

// outputFormats are the --format values: the terminal table and the
// report formats (json, sarif, cyclonedx, html: package report, the same
// documents the API serves).
var outputFormats = append([]string{"table"}, report.Formats()...)

// writeVerdict prints one verdict in format.
func writeVerdict(w io.Writer, format string, v assetscan.Verdict, f assetscan.Findings) error {
	if format == "table" {
		printTable(w, v)
		return nil
	}
	return report.Write(w, format, v, f)
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
	fmt.Fprintln(w, "checks:")
	for _, c := range v.Checks {
		line := "  " + c.Name + " " + c.Status
		if c.Reason != "" {
			line += " (" + c.Reason + ")"
		}
		if c.Identity != nil {
			id := c.Identity.Version
			if c.Identity.Engine != "" {
				id += ", " + c.Identity.Engine
			}
			if c.Identity.Data != "" {
				id += ", " + c.Identity.Data
			}
			if c.Identity.Unknown {
				id += ", identity unknown"
			}
			line += " [" + id + "]"
		}
		if cv := c.Coverage; cv != nil {
			line += fmt.Sprintf(" covered %d files, %d bytes", cv.Files, cv.Bytes)
			if cv.NotExaminedCount > 0 {
				line += fmt.Sprintf("; NOT examined: %d", cv.NotExaminedCount)
				for i, n := range cv.NotExamined {
					if i == 3 {
						line += ", ..."
						break
					}
					line += fmt.Sprintf("; %s (%s)", n.Path, n.Reason)
				}
			}
		}
		fmt.Fprintln(w, line)
	}
	if v.ReuseKey != "" {
		reused := ""
		if v.Reused {
			reused = " (findings reused from an earlier scan with this key)"
		}
		fmt.Fprintf(w, "reuse:    %s%s\n", v.ReuseKey, reused)
	}
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
	// What to do, once per distinct remediation, for what fails.
	var fixes []string
	for _, f := range v.Findings {
		if f.Action != assetscan.ActionFail {
			continue
		}
		if r := report.Remediation(f.Finding); r != "" && !slices.Contains(fixes, r) {
			fixes = append(fixes, r)
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintln(w, "\nto fix:")
		for _, r := range fixes {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
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
