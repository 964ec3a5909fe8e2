// Package reeval re-derives verdicts from stored findings, without
// downloading or re-extracting any asset: under a draft policy (what-if,
// nothing saved), or under a policy now in force (the verdicts that change
// get a new revision that names the one it supersedes, and subscribers are
// told).
package reeval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/storage"
)

// Verdicts is the verdict store. *storage.Store implements it.
type Verdicts interface {
	Verdict(ctx context.Context, id string) (assetscan.Verdict, error)
	Findings(ctx context.Context, id string) (assetscan.Findings, error)
	Supersede(ctx context.Context, v assetscan.Verdict) error
	LatestOfKind(ctx context.Context, kind assetscan.Kind) ([]string, error)
	Recent(ctx context.Context, n int) ([]string, error)
}

// Change is a verdict that differs under another policy.
type Change struct {
	ScanID     string            `json:"scan_id"`
	AssetID    string            `json:"asset_id"`
	SellerID   string            `json:"seller_id"`
	From       assetscan.Outcome `json:"from"`
	To         assetscan.Outcome `json:"to"`
	FromRules  []string          `json:"from_rules"`
	ToRules    []string          `json:"to_rules"`
	Revision   int               `json:"revision,omitempty"` // the new revision (Apply only)
	Supersedes string            `json:"supersedes,omitempty"`
	PolicyFrom string            `json:"policy_from"`
	PolicyTo   string            `json:"policy_to"`
}

// Result summarises a re-evaluation.
type Result struct {
	Evaluated int      `json:"evaluated"`
	Changes   []Change `json:"changes"`
}

// Evaluator re-evaluates stored findings.
type Evaluator struct {
	Verdicts Verdicts
	// Notify, optional, is told of every superseding verdict
	// (event "verdict.changed").
	Notify func(ctx context.Context, event string, v assetscan.Verdict) error
	// Now, optional, is the evaluation time (allow-list expiry).
	Now func() time.Time
	Log *slog.Logger
}

func (e *Evaluator) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// WhatIf evaluates draft against the stored findings of the given scans,
// or of the last n finished scans of the draft's kind when ids is empty,
// and returns the verdicts that would change. Nothing is saved.
func (e *Evaluator) WhatIf(ctx context.Context, draft *policies.Policy, ids []string, n int) (Result, error) {
	limit := 0
	if len(ids) == 0 {
		if n <= 0 {
			n = 100
		}
		limit = n
		recent, err := e.Verdicts.Recent(ctx, n*4) // scans of other kinds are skipped
		if err != nil {
			return Result{}, err
		}
		ids = recent
	}
	var res Result
	for _, id := range ids {
		if limit > 0 && res.Evaluated >= limit {
			break
		}
		ch, ok, err := e.evaluate(ctx, draft, id)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return res, err
		}
		res.Evaluated++
		if ok {
			res.Changes = append(res.Changes, ch.Change)
		}
	}
	sortChanges(res.Changes)
	return res, nil
}

// Apply re-evaluates the latest scan of every asset of p's kind under p and
// records a superseding verdict for each that changes.
func (e *Evaluator) Apply(ctx context.Context, p *policies.Policy) (Result, error) {
	ids, err := e.Verdicts.LatestOfKind(ctx, p.Kind)
	if err != nil {
		return Result{}, err
	}
	sort.Strings(ids)
	var res Result
	for _, id := range ids {
		ch, ok, err := e.evaluate(ctx, p, id)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return res, err
		}
		res.Evaluated++
		if !ok {
			continue
		}
		if err := e.Verdicts.Supersede(ctx, ch.next); err != nil {
			return res, fmt.Errorf("supersede %s: %w", id, err)
		}
		ch.Change.Revision = ch.next.Revision
		ch.Change.Supersedes = ch.next.Supersedes
		res.Changes = append(res.Changes, ch.Change)
		if e.Log != nil {
			e.Log.InfoContext(ctx, "verdict re-evaluated", "scan_id", id, "asset_id", ch.AssetID,
				"seller_id", ch.SellerID, "from", ch.From, "to", ch.To, "policy", ch.PolicyTo)
		}
		if e.Notify != nil {
			if err := e.Notify(ctx, "verdict.changed", ch.next); err != nil && e.Log != nil {
				e.Log.WarnContext(ctx, "notify verdict change", "scan_id", id, "error", err)
			}
		}
	}
	sortChanges(res.Changes)
	return res, nil
}

var errSkip = errors.New("skip")

type evaluated struct {
	Change
	next assetscan.Verdict
}

// evaluate judges the stored findings of scan id under p.
func (e *Evaluator) evaluate(ctx context.Context, p *policies.Policy, id string) (evaluated, bool, error) {
	cur, err := e.Verdicts.Verdict(ctx, id)
	if errors.Is(err, storage.ErrScanNotFound) {
		return evaluated{}, false, errSkip
	}
	if err != nil {
		return evaluated{}, false, err
	}
	if cur.Kind != p.Kind {
		return evaluated{}, false, errSkip
	}
	f, err := e.Verdicts.Findings(ctx, id)
	if errors.Is(err, storage.ErrScanNotFound) {
		return evaluated{}, false, errSkip
	}
	if err != nil {
		return evaluated{}, false, err
	}
	if len(f.Checks) == 0 {
		// An error verdict recorded without findings (retries
		// exhausted): nothing to re-derive from.
		return evaluated{}, false, errSkip
	}
	ch, changed := e.judge(p, cur, f)
	return ch, changed, nil
}

// judge re-derives cur's verdict from findings f under p, as the next
// revision, and says whether the outcome or the failed rules changed.
func (e *Evaluator) judge(p *policies.Policy, cur assetscan.Verdict, f assetscan.Findings) (evaluated, bool) {
	base := cur
	base.CompletedAt = e.now()
	next := policies.Verdict(p, base, f)
	next.Revision = max(cur.Revision, 1) + 1
	next.Supersedes = fmt.Sprintf("%s@%d", cur.ScanID, max(cur.Revision, 1))
	from, to := rules(cur), rules(next)
	ch := evaluated{
		Change: Change{ScanID: cur.ScanID, AssetID: cur.AssetID, SellerID: cur.SellerID, From: cur.Verdict, To: next.Verdict,
			FromRules: from, ToRules: to,
			PolicyFrom: fmt.Sprintf("%s v%d", cur.Policy.ID, cur.Policy.Version),
			PolicyTo:   fmt.Sprintf("%s v%d", p.ID, p.Version)},
		next: next,
	}
	return ch, cur.Verdict != next.Verdict || !slices.Equal(from, to)
}

func rules(v assetscan.Verdict) []string {
	out := make([]string, 0, len(v.FailedRules))
	for _, r := range v.FailedRules {
		out = append(out, r.Rule)
	}
	sort.Strings(out)
	return out
}

func sortChanges(cs []Change) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].ScanID < cs[j].ScanID })
}
