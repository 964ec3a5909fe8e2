package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// apiScan is the part of GET /v1/scans/{id} the soak reads.
type apiScan struct {
	Status   string `json:"status"`
	Verdict  string `json:"verdict"`
	Reason   string `json:"reason"`
	Revision int    `json:"revision"`
}

func cmdWait(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	api := fs.String("api", "", "API base URL")
	tokenFile := fs.String("token", "", "file holding the asset center's API key")
	manifest := fs.String("manifest", "", "manifest written by submit")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up waiting after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	entries, err := readManifest(*manifest)
	if err != nil {
		return err
	}
	cl := &client{base: *api, token: tok, http: &http.Client{Timeout: 10 * time.Second}}
	var pending []string
	for _, e := range entries {
		if e.ScanID != "" {
			pending = append(pending, e.ScanID)
		}
	}
	start := time.Now()
	deadline := start.Add(*timeout)
	lastLog := time.Time{}
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, id := range pending {
			s, _, err := getScan(ctx, cl, id)
			if err != nil || s.Status != "done" {
				still = append(still, id)
			}
		}
		pending = still
		if time.Since(lastLog) >= 10*time.Second || len(pending) == 0 {
			lastLog = time.Now()
			fmt.Fprintf(stdout, "soak: waiting: %d of %d scans not done (%s)\n", len(pending), len(entries), time.Since(start).Round(time.Second))
		}
		if len(pending) > 0 {
			time.Sleep(2 * time.Second)
		}
	}
	return nil
}

func getScan(ctx context.Context, cl *client, id string) (apiScan, int, error) {
	code, b, err := cl.do(ctx, "GET", "/v1/scans/"+id, nil)
	if err != nil {
		return apiScan{}, 0, err
	}
	var s apiScan
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &s); err != nil {
			return apiScan{}, code, fmt.Errorf("scan %s: %w", id, err)
		}
	}
	return s, code, nil
}

// scanResult is what the soak found for one submitted scan.
type scanResult struct {
	ScanID string
	EICAR  bool
	// API is the scan as GET /v1/scans/{id} answers (APICode its status).
	API     apiScan
	APICode int
	// Stored is verdicts/<id>.json from the reports bucket; StoredOK
	// says whether it could be read.
	Stored   apiScan
	StoredOK bool
	// Writes counts the object versions of verdicts/<id>.json: each is
	// one write of the verdict of record.
	Writes int
	// Revisions lists the N of every verdicts/<id>@N.json version.
	Revisions []int
}

// summary is the soak's outcome; the fields printed are its counts.
type summary struct {
	Submitted, NotSubmitted int
	Pass, Fail, Error, Lost int
	// NotDone: scans whose verdict of record is stored but the API still
	// answers queued or running (Lost: no verdict of record at all).
	NotDone                   int
	EICAR, EICARPass          int
	MultiWrite, BadRevision   int
	Mismatch                  int
	WorkDirsLeft, WorkerKills int
	// MidScanKills: kills that left a work dir behind (the worker was
	// scanning); KilledWorkDirs: how many such dirs in all.
	MidScanKills, KilledWorkDirs int
	// WorkerExits: workers that exited by themselves and were restarted.
	WorkerExits   int
	RedisRestarts int
	MinIORestarts int
	Wall          time.Duration
	ErrorReasons  map[string]int
	Examples      []string // scan ids and what broke, at most a few per invariant
}

// tally counts the results; notSubmitted is the number of packages the
// API never accepted.
func tally(results []scanResult, notSubmitted int) summary {
	s := summary{Submitted: len(results), NotSubmitted: notSubmitted, ErrorReasons: map[string]int{}}
	seen := map[string]int{}
	example := func(kind, id, what string) {
		if seen[kind] < 3 {
			seen[kind]++
			s.Examples = append(s.Examples, fmt.Sprintf("%s: %s: %s", kind, id, what))
		}
	}
	for _, r := range results {
		if r.EICAR {
			s.EICAR++
		}
		done := r.APICode == http.StatusOK && r.API.Status == "done"
		switch {
		case !r.StoredOK:
			s.Lost++
			example("lost", r.ScanID, fmt.Sprintf("no verdicts/%s.json; api %d status %q", r.ScanID, r.APICode, r.API.Status))
		case !done:
			s.NotDone++
			example("not-done", r.ScanID, fmt.Sprintf("verdicts/%s.json holds %q but the api answers %d status %q", r.ScanID, r.Stored.Verdict, r.APICode, r.API.Status))
		}
		if done {
			switch r.API.Verdict {
			case "pass":
				s.Pass++
			case "fail":
				s.Fail++
			case "error":
				s.Error++
				s.ErrorReasons[r.API.Reason]++
			}
		}
		if r.EICAR && (r.API.Verdict == "pass" || r.Stored.Verdict == "pass") {
			s.EICARPass++
			example("eicar-pass", r.ScanID, "an EICAR package passed")
		}
		if r.Writes > 1 || len(r.Revisions) > 1 {
			s.MultiWrite++
			example("multi-write", r.ScanID, fmt.Sprintf("verdict of record written %d times, revision objects %v", r.Writes, r.Revisions))
		}
		if (done && r.API.Revision != 1) || (r.StoredOK && r.Stored.Revision != 1) || slices.ContainsFunc(r.Revisions, func(n int) bool { return n != 1 }) {
			s.BadRevision++
			example("revision", r.ScanID, fmt.Sprintf("api revision %d, stored %d, revision objects %v", r.API.Revision, r.Stored.Revision, r.Revisions))
		}
		if done && r.StoredOK && r.API.Verdict != r.Stored.Verdict {
			s.Mismatch++
			example("mismatch", r.ScanID, fmt.Sprintf("api says %q, the reports bucket %q", r.API.Verdict, r.Stored.Verdict))
		}
	}
	return s
}

// violations lists the invariants that broke.
func (s summary) violations() []string {
	var v []string
	for _, c := range []struct {
		n    int
		what string
	}{
		{s.NotSubmitted, "packages never accepted by the API"},
		{s.Lost, "scans without a recorded verdict"},
		{s.NotDone, "scans whose verdict is stored but the API does not answer done"},
		{s.EICARPass, "EICAR packages passed"},
		{s.MultiWrite, "scans whose verdict was written more than once"},
		{s.BadRevision, "scans whose verdict is not revision 1"},
		{s.Mismatch, "scans whose API verdict differs from the reports bucket"},
		{s.WorkDirsLeft, "work dirs left behind"},
	} {
		if c.n > 0 {
			v = append(v, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return v
}

func (s summary) print(w io.Writer) {
	fmt.Fprintln(w, "soak results")
	for _, kv := range []struct {
		k string
		v any
	}{
		{"submitted", s.Submitted}, {"not_submitted", s.NotSubmitted},
		{"pass", s.Pass}, {"fail", s.Fail}, {"error", s.Error}, {"lost", s.Lost}, {"not_done", s.NotDone},
		{"eicar", s.EICAR}, {"eicar_pass", s.EICARPass},
		{"multi_write", s.MultiWrite}, {"bad_revision", s.BadRevision}, {"api_s3_mismatch", s.Mismatch},
		{"workdirs_left", s.WorkDirsLeft}, {"worker_kills", s.WorkerKills},
		{"midscan_kills", s.MidScanKills}, {"killed_workdirs", s.KilledWorkDirs}, {"worker_exits", s.WorkerExits},
		{"redis_restarts", s.RedisRestarts}, {"minio_restarts", s.MinIORestarts},
		{"wall_time", s.Wall.Round(time.Second)},
	} {
		fmt.Fprintf(w, "  %-16s %v\n", kv.k, kv.v)
	}
	reasons := make([]string, 0, len(s.ErrorReasons))
	for r := range s.ErrorReasons {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int { return s.ErrorReasons[b] - s.ErrorReasons[a] })
	for _, r := range reasons {
		fmt.Fprintf(w, "  error reason     %d × %q\n", s.ErrorReasons[r], r)
	}
	for _, e := range s.Examples {
		fmt.Fprintf(w, "  example          %s\n", e)
	}
}

// invariantError is a soak that ran and broke an invariant (exit 1).
type invariantError struct{ broken []string }

func (e *invariantError) Error() string { return strings.Join(e.broken, "; ") }

func cmdReport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	api := fs.String("api", "", "API base URL")
	tokenFile := fs.String("token", "", "file holding the asset center's API key")
	manifest := fs.String("manifest", "", "manifest written by submit")
	reports := fs.String("reports", "soak-reports", "the service's reports bucket")
	var s summary
	fs.IntVar(&s.WorkDirsLeft, "workdirs-left", 0, "work dirs found after the final worker start/stop")
	fs.IntVar(&s.WorkerKills, "worker-kills", 0, "workers SIGKILLed by the chaos loop")
	fs.IntVar(&s.MidScanKills, "midscan-kills", 0, "kills that left a work dir (the worker was scanning)")
	fs.IntVar(&s.KilledWorkDirs, "killed-workdirs", 0, "work dirs the kills left behind")
	fs.IntVar(&s.WorkerExits, "worker-exits", 0, "workers that exited by themselves and were restarted")
	fs.IntVar(&s.RedisRestarts, "redis-restarts", 0, "Redis restarts by the chaos loop")
	fs.IntVar(&s.MinIORestarts, "minio-restarts", 0, "MinIO restarts by the chaos loop")
	fs.DurationVar(&s.Wall, "wall", 0, "wall time of the soak")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	entries, err := readManifest(*manifest)
	if err != nil {
		return err
	}
	c, err := s3Client()
	if err != nil {
		return err
	}
	cl := &client{base: *api, token: tok, http: &http.Client{Timeout: 10 * time.Second}}
	var results []scanResult
	notSubmitted := 0
	for _, e := range entries {
		if e.ScanID == "" {
			notSubmitted++
			continue
		}
		r := scanResult{ScanID: e.ScanID, EICAR: e.EICAR}
		if r.API, r.APICode, err = getScan(ctx, cl, e.ScanID); err != nil {
			return err
		}
		if err := readStored(ctx, c, *reports, &r); err != nil {
			return err
		}
		results = append(results, r)
	}
	extra := s
	s = tally(results, notSubmitted)
	s.WorkDirsLeft, s.WorkerKills, s.MidScanKills, s.KilledWorkDirs = extra.WorkDirsLeft, extra.WorkerKills, extra.MidScanKills, extra.KilledWorkDirs
	s.WorkerExits, s.RedisRestarts, s.MinIORestarts, s.Wall = extra.WorkerExits, extra.RedisRestarts, extra.MinIORestarts, extra.Wall
	s.print(stdout)
	if v := s.violations(); len(v) > 0 {
		return &invariantError{broken: v}
	}
	fmt.Fprintln(stdout, "soak: all invariants held")
	return nil
}

// readStored fills r's view of the reports bucket: every version of the
// verdict objects of r.ScanID and the current verdict of record.
func readStored(ctx context.Context, c *minio.Client, bucket string, r *scanResult) error {
	prefix := "verdicts/" + r.ScanID
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, o.Err)
		}
		if o.IsDeleteMarker {
			continue
		}
		rest := strings.TrimPrefix(o.Key, prefix)
		switch {
		case rest == ".json":
			r.Writes++
		case strings.HasPrefix(rest, "@") && strings.HasSuffix(rest, ".json"):
			n, err := strconv.Atoi(strings.TrimSuffix(rest[1:], ".json"))
			if err != nil {
				n = -1
			}
			r.Revisions = append(r.Revisions, n)
		}
	}
	obj, err := c.GetObject(ctx, bucket, prefix+".json", minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("get %s.json: %w", prefix, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, 64<<20))
	var er minio.ErrorResponse
	switch {
	case errors.As(err, &er) && er.Code == "NoSuchKey":
		return nil
	case err != nil:
		return fmt.Errorf("get %s.json: %w", prefix, err)
	}
	if err := json.Unmarshal(b, &r.Stored); err != nil {
		return fmt.Errorf("verdict of record %s: %w", r.ScanID, err)
	}
	r.StoredOK = true
	return nil
}
