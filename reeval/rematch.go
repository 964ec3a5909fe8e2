package reeval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/storage"
)

// Matcher matches a stored inventory against the vulnerability DB in use
// (the trivy engine's Rematch).
type Matcher func(ctx context.Context, comps []assetscan.Component, os *assetscan.OSInfo) ([]assetscan.Finding, *assetscan.DBRef, error)

// Inventories is the store RematchDB needs besides Verdicts.
// *storage.Store implements it.
type Inventories interface {
	Verdicts
	PutFindings(ctx context.Context, id string, f assetscan.Findings) error
}

// RematchDB re-matches the stored package inventories of every asset's
// latest scan against the DB now in use — the way Anchore and Clair handle
// DB updates, without downloading or re-extracting any asset — updates the
// stored facts, and records a superseding verdict (judged under the policy
// in force) for each verdict that changes.
func (e *Evaluator) RematchDB(ctx context.Context, store Inventories, match Matcher,
	policy func(context.Context, assetscan.Kind) (*policies.Policy, error)) (Result, error) {
	var res Result
	for _, kind := range []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage} {
		p, err := policy(ctx, kind)
		if err != nil {
			return res, err
		}
		ids, err := store.LatestOfKind(ctx, kind)
		if err != nil {
			return res, err
		}
		sort.Strings(ids)
		for _, id := range ids {
			ch, changed, err := e.rematchOne(ctx, store, match, p, id)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return res, fmt.Errorf("rematch %s: %w", id, err)
			}
			res.Evaluated++
			if changed {
				res.Changes = append(res.Changes, ch)
			}
		}
	}
	sortChanges(res.Changes)
	return res, nil
}

func (e *Evaluator) rematchOne(ctx context.Context, store Inventories, match Matcher, p *policies.Policy, id string) (Change, bool, error) {
	cur, err := store.Verdict(ctx, id)
	if err != nil {
		return Change{}, false, errSkip
	}
	f, err := store.Findings(ctx, id)
	if err != nil || len(f.Checks) == 0 {
		return Change{}, false, errSkip
	}
	vulnRan := slices.ContainsFunc(f.Checks, func(c assetscan.CheckRun) bool {
		return c.Name == assetscan.CheckVulnerability && c.Status == assetscan.RunOK
	})
	if !vulnRan {
		return Change{}, false, errSkip
	}
	vulns, db, err := match(ctx, f.Components, f.OS)
	if err != nil {
		return Change{}, false, err
	}
	if db != nil && f.DB != nil && db.Digest == f.DB.Digest && db.UpdatedAt.Equal(f.DB.UpdatedAt) {
		return Change{}, false, errSkip // already matched against this DB
	}
	nf := f
	nf.Findings = nil
	for _, fd := range f.Findings {
		if fd.Check != assetscan.CheckVulnerability {
			nf.Findings = append(nf.Findings, fd)
		}
	}
	nf.Findings = append(nf.Findings, vulns...)
	nf.DB = db
	if err := store.PutFindings(ctx, id, nf); err != nil {
		return Change{}, false, err
	}
	// The findings are stored already: the verdict must follow them even
	// when another writer (a policy re-evaluation) moved the revision on
	// meanwhile, so judge the current revision again and retry.
	var ev evaluated
	var next assetscan.Verdict
	for attempt := 0; ; attempt++ {
		var changed bool
		ev, changed = e.judge(p, cur, nf)
		if !changed {
			return Change{}, false, nil
		}
		next = ev.next
		err := store.Supersede(ctx, next)
		if err == nil {
			break
		}
		if attempt == 4 || !(errors.Is(err, storage.ErrAlreadyFinal) || errors.Is(err, storage.ErrBusy)) {
			return Change{}, false, err
		}
		select {
		case <-ctx.Done():
			return Change{}, false, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
		if cur, err = store.Verdict(ctx, id); err != nil {
			return Change{}, false, err
		}
	}
	if e.Log != nil {
		e.Log.InfoContext(ctx, "verdict re-evaluated after DB update", "scan_id", id, "asset_id", cur.AssetID,
			"seller_id", cur.SellerID, "from", cur.Verdict, "to", next.Verdict)
	}
	if e.Notify != nil {
		if err := e.Notify(ctx, "verdict.changed", next); err != nil && e.Log != nil {
			e.Log.WarnContext(ctx, "notify verdict change", "scan_id", id, "error", err)
		}
	}
	ev.Change.Revision, ev.Change.Supersedes = next.Revision, next.Supersedes
	return ev.Change, true, nil
}
