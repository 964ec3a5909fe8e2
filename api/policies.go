package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/reeval"
)

// Policies is the policy store. *policies.Store implements it.
type Policies interface {
	Get(ctx context.Context, id string) (*policies.Policy, error)
	ForKind(ctx context.Context, k assetscan.Kind) (*policies.Policy, error)
	List(ctx context.Context) ([]*policies.Policy, error)
	Put(ctx context.Context, id string, raw []byte, ifVersion int, author, source string) (*policies.Policy, error)
	History(ctx context.Context, id string) ([]policies.Change, error)
	LoadDir(ctx context.Context, dir string) ([]*policies.Policy, error)
}

// Reevaluator re-derives verdicts from stored findings.
// *reeval.Evaluator implements it.
type Reevaluator interface {
	WhatIf(ctx context.Context, draft *policies.Policy, ids []string, n int) (reeval.Result, error)
	Apply(ctx context.Context, p *policies.Policy) (reeval.Result, error)
}

// PolicyDoc is a policy as the API shows it.
type PolicyDoc struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	Digest  string `json:"digest"`
	// Document is the policy file (YAML).
	Document string `json:"document"`
}

func policyDoc(p *policies.Policy) PolicyDoc {
	r := p.Ref()
	return PolicyDoc{ID: r.ID, Version: r.Version, Kind: string(p.Kind), Digest: r.Digest, Document: string(p.Raw())}
}

// PutPolicyResponse is the answer to PUT /v1/policies/{id}.
type PutPolicyResponse struct {
	Policy PolicyDoc `json:"policy"`
	// Reevaluation lists the latest verdicts that changed under the new
	// policy (each now has a superseding revision).
	Reevaluation reeval.Result `json:"reevaluation"`
}

// EvaluateRequest is the body of POST /v1/policies/{id}/evaluate.
type EvaluateRequest struct {
	// Document is the draft policy (YAML).
	Document string `json:"document"`
	// ScanIDs to evaluate; when empty, the last Last finished scans of the
	// policy's kind (default 100).
	ScanIDs []string `json:"scan_ids,omitempty"`
	Last    int      `json:"last,omitempty"`
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Policies.List(r.Context())
	if err != nil {
		s.unavailable(w, r, "policy store", err)
		return
	}
	out := make([]PolicyDoc, 0, len(ps))
	for _, p := range ps {
		out = append(out, policyDoc(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.Policies.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, policies.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "policy not found"})
		return
	}
	if err != nil {
		s.unavailable(w, r, "policy store", err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(p.Version)))
	writeJSON(w, http.StatusOK, policyDoc(p))
}

// putPolicy replaces a policy. The body is the policy document (YAML);
// If-Match must carry the version the author read (optimistic
// concurrency); the document's version must be that + 1. The latest
// verdicts of the kind are then re-evaluated.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	ifMatch := strings.Trim(r.Header.Get("If-Match"), `"W/`)
	ver, err := strconv.Atoi(ifMatch)
	if err != nil {
		writeJSON(w, http.StatusPreconditionRequired, ErrorResponse{Error: "If-Match: the version you are replacing is required",
			Fields: map[string]string{"If-Match": "e.g. If-Match: \"1\""}})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "read body: " + err.Error()})
		return
	}
	p, err := s.Policies.Put(ctx, id, raw, ver, principalName(ctx), "api")
	switch {
	case errors.Is(err, policies.ErrConflict):
		writeJSON(w, http.StatusConflict, ErrorResponse{Error: err.Error()})
		return
	case errors.Is(err, policies.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error()})
		return
	case errors.Is(err, policies.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "policy not found"})
		return
	case err != nil:
		s.unavailable(w, r, "policy store", err)
		return
	}
	s.Log.InfoContext(ctx, "policy changed", "policy", id, "version", p.Version, "author", principalName(ctx))
	res, err := s.Reeval.Apply(ctx, p)
	if err != nil {
		s.Log.ErrorContext(ctx, "re-evaluation after policy change", "policy", id, "error", err)
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(p.Version)))
	writeJSON(w, http.StatusOK, PutPolicyResponse{Policy: policyDoc(p), Reevaluation: res})
}

func (s *Server) policyHistory(w http.ResponseWriter, r *http.Request) {
	h, err := s.Policies.History(r.Context(), r.PathValue("id"))
	if err != nil {
		s.unavailable(w, r, "policy store", err)
		return
	}
	if len(h) == 0 {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "policy not found"})
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// evaluatePolicy is the what-if: a draft judged against stored findings,
// nothing saved.
func (s *Server) evaluatePolicy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req EvaluateRequest
	if !decodeJSON(w, r, 2<<20, &req) {
		return
	}
	draft, err := policies.Parse([]byte(req.Document))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: err.Error(), Fields: map[string]string{"document": err.Error()}})
		return
	}
	if draft.ID != r.PathValue("id") {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "the draft's id does not match the path",
			Fields: map[string]string{"document": "id must be " + r.PathValue("id")}})
		return
	}
	if req.Last < 0 || req.Last > 100000 || len(req.ScanIDs) > 100000 {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "last and scan_ids are limited to 100000"})
		return
	}
	res, err := s.Reeval.WhatIf(ctx, draft, req.ScanIDs, req.Last)
	if err != nil {
		s.unavailable(w, r, "verdict store", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// reloadPolicies applies newer policy files from the configured directory.
func (s *Server) reloadPolicies(w http.ResponseWriter, r *http.Request) {
	if s.PolicyDir == "" {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no policy directory configured (--policy-dir)"})
		return
	}
	applied, err := s.Policies.LoadDir(r.Context(), s.PolicyDir)
	out := map[string]any{"applied": []PolicyDoc{}}
	var docs []PolicyDoc
	var results []reeval.Result
	for _, p := range applied {
		docs = append(docs, policyDoc(p))
		res, rerr := s.Reeval.Apply(r.Context(), p)
		if rerr != nil {
			s.Log.ErrorContext(r.Context(), "re-evaluation after reload", "policy", p.ID, "error", rerr)
		}
		results = append(results, res)
	}
	if docs != nil {
		out["applied"] = docs
		out["reevaluation"] = results
	}
	code := http.StatusOK
	if err != nil {
		out["errors"] = err.Error()
		code = http.StatusBadRequest
	}
	writeJSON(w, code, out)
}

func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.Log.ErrorContext(r.Context(), what, "error", err)
	writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: what + " unavailable"})
}
