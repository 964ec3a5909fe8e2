package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/reeval"
	"github.com/assetscan/assetscan/storage"
)

type reevalResult struct {
	Seeded    int     `json:"seeded"`
	SeedS     float64 `json:"seed_s"`
	ApplyS    float64 `json:"apply_s"`
	Evaluated int     `json:"evaluated"`
	Changed   int     `json:"changed"`
	PerSecond float64 `json:"verdicts_per_s"`
}

// seedFindings are the findings of a scanned small package: the five
// package checks, four components and, when vulnerable, lodash's
// CVE-2019-10744 (CVSS 9.1).
func seedFindings(i int, vulnerable bool) assetscan.Findings {
	f := assetscan.Findings{
		Findings: []assetscan.Finding{},
		Components: []assetscan.Component{
			{Name: "lodash", Version: "4.17.21", Type: "npm"},
			{Name: "requests", Version: "2.32.3", Type: "pip"},
			{Name: "golang.org/x/text", Version: "v0.14.0", Type: "gomod"},
			{Name: "com.example:app-util", Version: "1.0.0", Type: "jar"},
		},
		Engines: map[string]string{"trivy": "v0.74.0", "clamav": "ClamAV 1.4.6"},
		Facts:   &assetscan.Facts{Name: fmt.Sprintf("app-%05d.tar.gz", i), Size: 300 << 10, Format: "tar.gz"},
	}
	for _, c := range []string{assetscan.CheckFormat, assetscan.CheckArchive, assetscan.CheckVulnerability, assetscan.CheckSecret, assetscan.CheckMalware} {
		f.Checks = append(f.Checks, assetscan.CheckRun{Name: c, Status: assetscan.RunOK, Detail: "seeded by bench"})
	}
	if vulnerable {
		f.Components[0].Version = "4.17.11"
		score := 9.1
		f.Findings = append(f.Findings, assetscan.Finding{Check: assetscan.CheckVulnerability, Rule: "vulnerability.cvss",
			Path: "app/package-lock.json", Message: "lodash 4.17.11: CVE-2019-10744",
			Vulnerability: &assetscan.Vulnerability{ID: "CVE-2019-10744", Package: "lodash", PackageType: "npm",
				InstalledVersion: "4.17.11", FixedVersion: "4.17.12", Severity: "CRITICAL", CVSSScore: &score, CVSSSource: "nvd"}})
	}
	return f
}

// cmdReeval seeds -n verdicts (half failing on a CVSS 9.1 vulnerability)
// with storage.Store.SaveVerdict into MinIO (ASSETSCAN_TEST_S3_*) and
// Redis, then times reeval.Evaluator.Apply — what PUT
// /v1/policies/default-package runs — under the default policy with
// cvss_threshold raised to 9.5, which turns every failing verdict to pass
// (a superseding revision each).
func cmdReeval(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("reeval", flag.ContinueOnError)
	redisAddr := fs.String("redis", "", "Redis host:port")
	bucket := fs.String("bucket", "bench-reeval-reports", "reports bucket (emptied first is up to you: use a new one)")
	prefix := fs.String("prefix", "bench-reeval:", "Redis key prefix")
	n := fs.Int("n", 10000, "verdicts to seed")
	workers := fs.Int("workers", 8, "concurrent seeders")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	obj, err := s3FromEnv()
	if err != nil {
		return nil, err
	}
	if err := obj.EnsureBucket(ctx, *bucket); err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer rdb.Close()
	store := storage.NewStore(rdb, obj, *bucket, *prefix)
	pol, err := policies.Default(assetscan.KindPackage)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, *workers)
	for range *workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n || ctx.Err() != nil {
					return
				}
				now := time.Now().UTC()
				sc := storage.Scan{ScanID: storage.NewScanID(), AssetID: fmt.Sprintf("reeval-asset-%05d", i), SellerID: "bench-seller",
					Kind: assetscan.KindPackage, Bucket: "bench-uploads", Key: fmt.Sprintf("app-%05d.tar.gz", i), Size: 300 << 10,
					Status: assetscan.StatusRunning, SubmittedAt: now}
				f := seedFindings(i, i%2 == 0)
				base := assetscan.Verdict{ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind,
					SHA256: fmt.Sprintf("%064x", i), Object: assetscan.Object{Bucket: sc.Bucket, Key: sc.Key, Name: sc.Key, Size: sc.Size},
					SubmittedAt: now, CompletedAt: now}
				if err := store.SaveVerdict(ctx, sc, policies.Verdict(pol, base, f), f); err != nil {
					errc <- fmt.Errorf("seed %d: %w", i, err)
					return
				}
				if d := done.Add(1); d%1000 == 0 {
					fmt.Fprintf(os.Stderr, "pipebench reeval: seeded %d/%d (%.0f/s)\n", d, *n, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	res := reevalResult{Seeded: int(done.Load()), SeedS: round(time.Since(start).Seconds(), 1)}

	raw := strings.Replace(string(pol.Raw()), "cvss_threshold: 7.0", "cvss_threshold: 9.5", 1)
	raw = strings.Replace(raw, "version: 1\n", "version: 2\n", 1)
	next2, err := policies.Parse([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("new policy: %w", err)
	}
	if next2.Vulns.CVSSThreshold != 9.5 {
		return nil, fmt.Errorf("new policy: threshold not changed (%v): the default policy's text changed", next2.Vulns.CVSSThreshold)
	}
	ev := &reeval.Evaluator{Verdicts: store}
	t0 := time.Now()
	r, err := ev.Apply(ctx, next2)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	res.ApplyS = round(time.Since(t0).Seconds(), 2)
	res.Evaluated, res.Changed = r.Evaluated, len(r.Changes)
	res.PerSecond = round(float64(r.Evaluated)/time.Since(t0).Seconds(), 0)
	return res, nil
}
