// Package api is assetscan's HTTP API: the asset center submits scans,
// sellers and the asset center poll them.
//
//	POST /v1/scans                    submit a scan (202 new, 200 existing)
//	GET  /v1/scans/{scan_id}          status, and the verdict document when done
//	GET  /v1/assets/{asset_id}/scan   the latest scan of an asset
//	GET  /healthz                     alive
//	GET  /readyz                      Redis and object storage reachable
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/queue"
	"github.com/assetscan/assetscan/storage"
)

// Scans is the scan record store. *storage.Store implements it.
type Scans interface {
	Create(ctx context.Context, sc storage.Scan) (storage.Scan, bool, error)
	Forget(ctx context.Context, sc storage.Scan) error
	Get(ctx context.Context, id string) (storage.Scan, error)
	Latest(ctx context.Context, assetID string) (string, error)
	Verdict(ctx context.Context, id string) (assetscan.Verdict, error)
	PingRedis(ctx context.Context) error
}

// Objects looks up submitted objects. *storage.Objects implements it.
type Objects interface {
	Stat(ctx context.Context, bucket, key, versionID string) (storage.Info, error)
	Ping(ctx context.Context, bucket string) error
}

// Enqueuer queues scan jobs. *queue.Enqueuer implements it.
type Enqueuer interface {
	Enqueue(ctx context.Context, j queue.Job) error
}

// Server serves the API.
type Server struct {
	Scans    Scans
	Objects  Objects
	Enqueuer Enqueuer
	// Kinds are the asset kinds the workers handle; others get 400.
	Kinds []assetscan.Kind
	// ReportsBucket is pinged by /readyz.
	ReportsBucket string
	Policies      Policies
	Reeval        Reevaluator
	// PolicyDir, optional, holds policy files POST /v1/policies/reload applies.
	PolicyDir string
	Log       *slog.Logger
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/scans", s.submit)
	mux.HandleFunc("GET /v1/scans/{scan_id}", s.getScan)
	mux.HandleFunc("GET /v1/assets/{asset_id}/scan", s.latest)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /v1/policies", s.listPolicies)
	mux.HandleFunc("GET /v1/policies/{id}", s.getPolicy)
	mux.HandleFunc("PUT /v1/policies/{id}", s.putPolicy)
	mux.HandleFunc("GET /v1/policies/{id}/history", s.policyHistory)
	mux.HandleFunc("POST /v1/policies/{id}/evaluate", s.evaluatePolicy)
	mux.HandleFunc("POST /v1/policies/reload", s.reloadPolicies)
	return mux
}

// SubmitRequest is the body of POST /v1/scans.
type SubmitRequest struct {
	AssetID   string         `json:"asset_id"`
	SellerID  string         `json:"seller_id"`
	Kind      assetscan.Kind `json:"kind"`
	Bucket    string         `json:"bucket"`
	Key       string         `json:"key"`
	VersionID string         `json:"version_id,omitempty"`
	SHA256    string         `json:"sha256,omitempty"`
}

// SubmitResponse is the answer to POST /v1/scans.
type SubmitResponse struct {
	ScanID  string            `json:"scan_id"`
	Status  assetscan.Status  `json:"status"`
	Verdict assetscan.Outcome `json:"verdict,omitempty"`
	// Existing is true when the same asset and content was already
	// submitted and this is that scan.
	Existing bool `json:"existing,omitempty"`
}

// ErrorResponse is every error body.
type ErrorResponse struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

var (
	idRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	sha256Re = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Validate returns field-level problems.
func (r SubmitRequest) Validate(kinds []assetscan.Kind) map[string]string {
	bad := map[string]string{}
	if !idRe.MatchString(r.AssetID) {
		bad["asset_id"] = "required; 1-128 characters of A-Z a-z 0-9 . _ : -"
	}
	if !idRe.MatchString(r.SellerID) {
		bad["seller_id"] = "required; 1-128 characters of A-Z a-z 0-9 . _ : -"
	}
	switch {
	case r.Kind == "":
		bad["kind"] = "required: package, container-image or vm-image"
	case !r.Kind.Valid():
		bad["kind"] = fmt.Sprintf("unknown kind %q: package, container-image or vm-image", r.Kind)
	case !slices.Contains(kinds, r.Kind):
		bad["kind"] = fmt.Sprintf("kind %q is not handled by this deployment", r.Kind)
	}
	if !bucketRe.MatchString(r.Bucket) {
		bad["bucket"] = "required; a valid S3 bucket name"
	}
	switch {
	case r.Key == "":
		bad["key"] = "required"
	case len(r.Key) > 1024 || strings.HasSuffix(r.Key, "/"):
		bad["key"] = "must be an object key of at most 1024 bytes, not a prefix"
	}
	if r.SHA256 != "" && !sha256Re.MatchString(r.SHA256) {
		bad["sha256"] = "must be 64 hex characters"
	}
	if len(r.VersionID) > 1024 {
		bad["version_id"] = "too long"
	}
	return bad
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req SubmitRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "invalid JSON body: " + err.Error()})
		return
	}
	if bad := req.Validate(s.Kinds); len(bad) > 0 {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "invalid request", Fields: bad})
		return
	}
	info, err := s.Objects.Stat(ctx, req.Bucket, req.Key, req.VersionID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeJSON(w, http.StatusUnprocessableEntity, ErrorResponse{Error: "object not found",
			Fields: map[string]string{"key": fmt.Sprintf("no object %q in bucket %q", req.Key, req.Bucket)}})
		return
	case err != nil:
		s.Log.ErrorContext(ctx, "stat object", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "object storage unavailable, retry later"})
		return
	}
	sc := storage.Scan{
		ScanID: storage.NewScanID(), AssetID: req.AssetID, SellerID: req.SellerID, Kind: req.Kind,
		Bucket: req.Bucket, Key: req.Key, VersionID: req.VersionID, ExpectedSHA256: strings.ToLower(req.SHA256),
		ETag: info.ETag, Size: info.Size, Status: assetscan.StatusQueued, SubmittedAt: time.Now().UTC(),
	}
	if sc.VersionID == "" {
		sc.VersionID = info.VersionID
	}
	got, created, err := s.Scans.Create(ctx, sc)
	if err != nil {
		s.Log.ErrorContext(ctx, "create scan", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "scan store unavailable, retry later"})
		return
	}
	if !created {
		writeJSON(w, http.StatusOK, SubmitResponse{ScanID: got.ScanID, Status: got.Status, Verdict: got.Verdict, Existing: true})
		return
	}
	job := queue.Job{ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind,
		Bucket: sc.Bucket, Key: sc.Key, VersionID: sc.VersionID, ExpectedSHA256: sc.ExpectedSHA256, Size: sc.Size}
	if err := s.Enqueuer.Enqueue(ctx, job); err != nil {
		s.Log.ErrorContext(ctx, "enqueue", "error", err, "scan_id", sc.ScanID)
		_ = s.Scans.Forget(context.WithoutCancel(ctx), sc)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "queue unavailable, retry later"})
		return
	}
	s.Log.InfoContext(ctx, "scan submitted", "scan_id", sc.ScanID, "asset_id", sc.AssetID,
		"seller_id", sc.SellerID, "kind", sc.Kind, "size", sc.Size)
	w.Header().Set("Location", "/v1/scans/"+sc.ScanID)
	writeJSON(w, http.StatusAccepted, SubmitResponse{ScanID: sc.ScanID, Status: assetscan.StatusQueued})
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request) {
	s.writeScan(w, r, r.PathValue("scan_id"))
}

func (s *Server) latest(w http.ResponseWriter, r *http.Request) {
	id, err := s.Scans.Latest(r.Context(), r.PathValue("asset_id"))
	if errors.Is(err, storage.ErrScanNotFound) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no scan for this asset"})
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "latest scan", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "scan store unavailable"})
		return
	}
	s.writeScan(w, r, id)
}

func (s *Server) writeScan(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	if !strings.HasPrefix(id, "scn_") || !idRe.MatchString(id) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "scan not found"})
		return
	}
	sc, err := s.Scans.Get(ctx, id)
	if errors.Is(err, storage.ErrScanNotFound) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "scan not found"})
		return
	}
	if err != nil {
		s.Log.ErrorContext(ctx, "get scan", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "scan store unavailable"})
		return
	}
	if sc.Status == assetscan.StatusDone {
		v, err := s.Scans.Verdict(ctx, id)
		if err == nil {
			writeJSON(w, http.StatusOK, v)
			return
		}
		s.Log.ErrorContext(ctx, "read verdict", "error", err, "scan_id", id)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "verdict store unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, assetscan.Verdict{
		ScanID: sc.ScanID, AssetID: sc.AssetID, SellerID: sc.SellerID, Kind: sc.Kind, Status: sc.Status,
		Object:      assetscan.Object{Bucket: sc.Bucket, Key: sc.Key, VersionID: sc.VersionID, Name: path.Base(sc.Key), Size: sc.Size},
		Findings:    []assetscan.JudgedFinding{},
		SubmittedAt: sc.SubmittedAt, Attempts: sc.Attempts,
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	if err := s.Scans.PingRedis(ctx); err != nil {
		checks["redis"], ok = err.Error(), false
	} else {
		checks["redis"] = "ok"
	}
	if err := s.Objects.Ping(ctx, s.ReportsBucket); err != nil {
		checks["storage"], ok = err.Error(), false
	} else {
		checks["storage"] = "ok"
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ok, "checks": checks})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// principalName names who made a change (the authenticated caller).
func principalName(ctx context.Context) string {
	return "anonymous"
}
