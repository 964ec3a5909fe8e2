package reeval

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/storage"
)

// memVerdicts is an in-memory verdict store for unit tests; the e2e tests
// run the same flow on the real store.
type memVerdicts struct {
	mu       sync.Mutex
	verdicts map[string]assetscan.Verdict
	findings map[string]assetscan.Findings
	order    []string
	saved    int
}

func (m *memVerdicts) Verdict(_ context.Context, id string) (assetscan.Verdict, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.verdicts[id]
	if !ok {
		return v, storage.ErrScanNotFound
	}
	return v, nil
}
func (m *memVerdicts) Findings(_ context.Context, id string) (assetscan.Findings, error) {
	return m.findings[id], nil
}
func (m *memVerdicts) Supersede(_ context.Context, v assetscan.Verdict) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.verdicts[v.ScanID] = v
	m.saved++
	return nil
}
func (m *memVerdicts) LatestOfKind(context.Context, assetscan.Kind) ([]string, error) {
	return m.order, nil
}
func (m *memVerdicts) Recent(_ context.Context, n int) ([]string, error) {
	return m.order[:min(n, len(m.order))], nil
}

func okChecks() []assetscan.CheckRun {
	var r []assetscan.CheckRun
	for _, c := range []string{"format", "archive", "vulnerability", "secret", "malware"} {
		r = append(r, assetscan.CheckRun{Name: c, Status: assetscan.RunOK})
	}
	return r
}

// corpus makes n scans: every third has a CVSS 8.0 finding, every fifth a
// CVSS 9.5 one, the rest are clean.
func corpus(t testing.TB, n int) (*memVerdicts, *policies.Policy) {
	p, err := policies.Default(assetscan.KindPackage)
	if err != nil {
		t.Fatal(err)
	}
	m := &memVerdicts{verdicts: map[string]assetscan.Verdict{}, findings: map[string]assetscan.Findings{}}
	for i := range n {
		id := fmt.Sprintf("scn_%06d", i)
		f := assetscan.Findings{Checks: okChecks()}
		add := func(score float64) {
			s := score
			f.Findings = append(f.Findings, assetscan.Finding{Check: "vulnerability", Rule: "vulnerability", Path: "package-lock.json",
				Vulnerability: &assetscan.Vulnerability{ID: fmt.Sprintf("CVE-%d", i), Package: "p", InstalledVersion: "1", Severity: "HIGH", CVSSScore: &s}})
		}
		if i%3 == 0 {
			add(8.0)
		}
		if i%5 == 0 {
			add(9.5)
		}
		base := assetscan.Verdict{ScanID: id, AssetID: "a" + id, SellerID: "s1", Kind: assetscan.KindPackage, CompletedAt: time.Now()}
		m.verdicts[id] = policies.Verdict(p, base, f)
		m.findings[id] = f
		m.order = append(m.order, id)
	}
	return m, p
}

func raise(t testing.TB, p *policies.Policy, threshold string) *policies.Policy {
	raw := strings.Replace(string(p.Raw()), "cvss_threshold: 7.0", "cvss_threshold: "+threshold, 1)
	raw = strings.Replace(raw, "version: 1", "version: 2", 1)
	np, err := policies.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return np
}

func TestWhatIfReturnsExactlyTheChangedVerdicts(t *testing.T) {
	t.Parallel()
	m, p := corpus(t, 30)
	draft := raise(t, p, "9.0") // CVSS 8.0 alone no longer fails
	e := &Evaluator{Verdicts: m}
	res, err := e.WhatIf(context.Background(), draft, nil, 30)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 30 {
		if i%3 == 0 && i%5 != 0 {
			want = append(want, fmt.Sprintf("scn_%06d", i))
		}
	}
	var got []string
	for _, c := range res.Changes {
		got = append(got, c.ScanID)
		if c.From != assetscan.Fail || c.To != assetscan.Pass {
			t.Errorf("%s: %s -> %s", c.ScanID, c.From, c.To)
		}
	}
	if res.Evaluated != 30 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("evaluated %d, changes %v, want %v", res.Evaluated, got, want)
	}
	if m.saved != 0 {
		t.Fatal("what-if saved verdicts")
	}
	// A given set of scans.
	res, _ = e.WhatIf(context.Background(), draft, []string{"scn_000003", "scn_000005"}, 0)
	if res.Evaluated != 2 || len(res.Changes) != 1 || res.Changes[0].ScanID != "scn_000003" {
		t.Fatalf("given set: %+v", res)
	}
}

func TestApplyRecordsSupersedingVerdicts(t *testing.T) {
	t.Parallel()
	m, p := corpus(t, 15)
	var notified []string
	e := &Evaluator{Verdicts: m, Notify: func(_ context.Context, ev string, v assetscan.Verdict) error {
		notified = append(notified, ev+":"+v.ScanID)
		return nil
	}}
	res, err := e.Apply(context.Background(), raise(t, p, "9.0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 4 || m.saved != 4 || len(notified) != 4 {
		t.Fatalf("changes %d saved %d notified %d", len(res.Changes), m.saved, len(notified))
	}
	v := m.verdicts["scn_000003"]
	if v.Verdict != assetscan.Pass || v.Revision != 2 || v.Supersedes != "scn_000003@1" || v.Policy.Version != 2 {
		t.Fatalf("superseding verdict = %+v", v)
	}
	// Applying the same policy again changes nothing.
	res, _ = e.Apply(context.Background(), raise(t, p, "9.0"))
	if len(res.Changes) != 0 {
		t.Fatalf("second apply changed %d", len(res.Changes))
	}
}

// BenchmarkReevaluate10k: re-evaluating 10 000 stored findings sets under a
// new policy (in memory: the cost of the evaluation itself).
func BenchmarkReevaluate10k(b *testing.B) {
	m, p := corpus(b, 10000)
	draft := raise(b, p, "9.0")
	e := &Evaluator{Verdicts: m}
	b.ResetTimer()
	for b.Loop() {
		res, err := e.WhatIf(context.Background(), draft, m.order, 0)
		if err != nil || res.Evaluated != 10000 {
			b.Fatal(err, res.Evaluated)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
}
