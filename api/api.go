// Package api is assetscan's HTTP API: the asset center submits scans,
// sellers and the asset center poll them.
//
//	POST /v1/scans                    submit a scan (202 new, 200 existing)
//	GET  /v1/scans/{scan_id}          status, and the verdict document when done
//	GET  /v1/assets/{asset_id}/scan   the latest scan of an asset
//	GET  /healthz                     alive
//	GET  /readyz                      Redis and object storage reachable
//
// and the policy and callback endpoints of Routes. The full contract is
// api/openapi.json, served at /openapi.json.
package api

import (
	"context"
	"encoding/json"
	jsonv2 "encoding/json/v2"
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
	"github.com/assetscan/assetscan/auth"
	"github.com/assetscan/assetscan/callbacks"
	"github.com/assetscan/assetscan/metrics"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/queue"
	"github.com/assetscan/assetscan/scanner/accounts"
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
	// ReportsBucket is pinged by /readyz. It holds verdicts, findings and
	// policies, so a submission may never point at it (see Scope).
	ReportsBucket string
	// Scope limits what a submission may point at; its zero value allows
	// every bucket but ReportsBucket and no key layout.
	Scope    Scope
	Policies Policies
	Reeval   Reevaluator
	// PolicyDir, optional, holds policy files POST /v1/policies/reload applies.
	PolicyDir string
	// Keys authenticates callers (required).
	Keys *auth.Keyring
	// Callbacks stores the asset center's callback subscribers.
	Callbacks *callbacks.Store
	// Mounts are extra handlers (the queue UI), each gated by an action.
	Mounts []Mount
	// Metrics, optional (nil-safe), counts submissions.
	Metrics *metrics.Metrics
	Log     *slog.Logger
}

// Route is one endpoint: its pattern, who may call it, and the handler.
type Route struct {
	Method, Path string
	// Action a caller needs; "" means any authenticated caller (scan reads
	// then check the seller themselves), and Public means no credentials.
	Action auth.Action
	Public bool
	handle http.HandlerFunc
}

// Routes lists every endpoint; the OpenAPI document must describe exactly
// these (a test checks it).
func (s *Server) Routes() []Route {
	return []Route{
		{Method: "GET", Path: "/healthz", Public: true, handle: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{Method: "GET", Path: "/readyz", Public: true, handle: s.ready},
		{Method: "GET", Path: "/openapi.json", handle: serveOpenAPI},
		{Method: "POST", Path: "/v1/scans", Action: auth.ActSubmit, handle: s.submit},
		{Method: "GET", Path: "/v1/scans/{scan_id}", handle: s.getScan},
		{Method: "GET", Path: "/v1/scans/{scan_id}/report", handle: s.getReport},
		{Method: "GET", Path: "/v1/assets/{asset_id}/scan", handle: s.latest},
		{Method: "GET", Path: "/v1/policies", Action: auth.ActPolicyRead, handle: s.listPolicies},
		{Method: "GET", Path: "/v1/policies/{id}", Action: auth.ActPolicyRead, handle: s.getPolicy},
		{Method: "PUT", Path: "/v1/policies/{id}", Action: auth.ActPolicyWrite, handle: s.putPolicy},
		{Method: "GET", Path: "/v1/policies/{id}/history", Action: auth.ActPolicyRead, handle: s.policyHistory},
		{Method: "POST", Path: "/v1/policies/{id}/evaluate", Action: auth.ActReevaluate, handle: s.evaluatePolicy},
		{Method: "POST", Path: "/v1/policies/reload", Action: auth.ActPolicyWrite, handle: s.reloadPolicies},
		{Method: "POST", Path: "/v1/callbacks", Action: auth.ActCallbacks, handle: s.addCallback},
		{Method: "GET", Path: "/v1/callbacks", Action: auth.ActCallbacks, handle: s.listCallbacks},
		{Method: "DELETE", Path: "/v1/callbacks/{id}", Action: auth.ActCallbacks, handle: s.removeCallback},
	}
}

// Handler returns the API: every route behind authentication (API keys)
// except health, each checked for its action.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	var public []string
	for _, rt := range s.Routes() {
		h := rt.handle
		if rt.Public {
			public = append(public, rt.Path)
		} else if rt.Action != "" {
			h = requireAction(rt.Action, h)
		}
		mux.HandleFunc(rt.Method+" "+rt.Path, h)
	}
	for _, m := range s.Mounts {
		mux.Handle(m.Prefix, requireAction(m.Action, m.Handler.ServeHTTP))
	}
	return auth.Middleware(s.Keys, public, mux)
}

// Mount is an extra handler under a path prefix (the queue UI).
type Mount struct {
	Prefix  string
	Action  auth.Action
	Handler http.Handler
}

func requireAction(a auth.Action, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok || !p.Can(a) {
			auth.Forbidden(w)
			return
		}
		h(w, r)
	}
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
	// DeclaredPasswords are initial passwords the seller declares for an
	// image (accounts a buyer logs in with). They are checked against the
	// policy's complexity rule at submission and never stored or logged.
	DeclaredPasswords []DeclaredPassword `json:"declared_passwords,omitempty"`
}

// DeclaredPassword is one declared initial password.
type DeclaredPassword struct {
	Account  string `json:"account"`
	Password string `json:"password"`
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

// Scope is what a submission may point at. A submission outside it is
// refused with 403 before anything is read from storage.
type Scope struct {
	// Buckets are the buckets assets may be read from; empty means any
	// bucket except the reserved ones.
	Buckets []string
	// Reserved buckets are never allowed, even if listed in Buckets: the
	// reports bucket (always, from Server.ReportsBucket), the policy and
	// vulnerability DB buckets.
	Reserved []string
	// KeyLayout, optional, binds an object key to the submission: the key
	// must start with the layout with its placeholders filled in. See
	// ParseKeyLayout.
	KeyLayout KeyLayout
}

// KeyLayout is a parsed key layout template, e.g. "{seller_id}/" or
// "uploads/{seller_id}/{asset_id}/". The zero value binds nothing.
type KeyLayout struct{ tmpl string }

// Key layout placeholders.
var layoutFields = []string{"{seller_id}", "{asset_id}", "{kind}"}

// ParseKeyLayout checks a key layout template: literal text and the
// placeholders {seller_id}, {asset_id} and {kind}, containing {seller_id},
// ending with "/" (so seller "s1" cannot claim "s10/..."), at most 256
// bytes. "" is the empty layout (no binding).
func ParseKeyLayout(tmpl string) (KeyLayout, error) {
	if tmpl == "" {
		return KeyLayout{}, nil
	}
	rest := tmpl
	for _, f := range layoutFields {
		rest = strings.ReplaceAll(rest, f, "")
	}
	switch {
	case len(tmpl) > 256:
		return KeyLayout{}, errors.New("key layout: longer than 256 bytes")
	case strings.ContainsAny(rest, "{}"):
		return KeyLayout{}, fmt.Errorf("key layout %q: unknown placeholder (known: %s)", tmpl, strings.Join(layoutFields, ", "))
	case !strings.Contains(tmpl, "{seller_id}"):
		return KeyLayout{}, fmt.Errorf("key layout %q: must contain {seller_id}", tmpl)
	case !strings.HasSuffix(tmpl, "/"):
		return KeyLayout{}, fmt.Errorf("key layout %q: must end with /", tmpl)
	case strings.HasPrefix(tmpl, "/"):
		return KeyLayout{}, fmt.Errorf("key layout %q: must not start with /", tmpl)
	}
	return KeyLayout{tmpl: tmpl}, nil
}

// String returns the template.
func (l KeyLayout) String() string { return l.tmpl }

// Prefix is the key prefix the layout requires of r ("" when unbound).
func (l KeyLayout) Prefix(r SubmitRequest) string {
	if l.tmpl == "" {
		return ""
	}
	return strings.NewReplacer("{seller_id}", r.SellerID, "{asset_id}", r.AssetID, "{kind}", string(r.Kind)).Replace(l.tmpl)
}

// check returns a 403 SubmitError when r points outside the scope.
func (sc Scope) check(r SubmitRequest, reportsBucket string) error {
	if r.Bucket == reportsBucket || slices.Contains(sc.Reserved, r.Bucket) {
		return &SubmitError{Code: http.StatusForbidden, Message: "bucket not allowed",
			Fields: map[string]string{"bucket": fmt.Sprintf("bucket %q is reserved for the service's own data", r.Bucket)}}
	}
	if len(sc.Buckets) > 0 && !slices.Contains(sc.Buckets, r.Bucket) {
		return &SubmitError{Code: http.StatusForbidden, Message: "bucket not allowed",
			Fields: map[string]string{"bucket": fmt.Sprintf("bucket %q is not an asset bucket of this deployment", r.Bucket)}}
	}
	if p := sc.KeyLayout.Prefix(r); p != "" {
		if !strings.HasPrefix(r.Key, p) || hasDotSegment(r.Key) {
			return &SubmitError{Code: http.StatusForbidden, Message: "key outside the seller's area",
				Fields: map[string]string{"key": fmt.Sprintf("must start with %q (layout %q) and have no . or .. segments", p, sc.KeyLayout)}}
		}
	}
	return nil
}

// hasDotSegment reports "." or ".." path segments or empty ones ("a//b"),
// which some S3 services and proxies normalise away.
func hasDotSegment(key string) bool {
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." || seg == "" {
			return true
		}
	}
	return false
}

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
	if len(r.DeclaredPasswords) > 0 && r.Kind == assetscan.KindPackage {
		bad["declared_passwords"] = "only for container-image and vm-image assets"
	}
	if len(r.DeclaredPasswords) > 32 {
		bad["declared_passwords"] = "at most 32"
	}
	for _, d := range r.DeclaredPasswords {
		if d.Account == "" || len(d.Account) > 64 || len(d.Password) > 1024 {
			bad["declared_passwords"] = "each needs an account (at most 64 characters) and a password (at most 1024)"
		}
	}
	return bad
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req SubmitRequest
	if !decodeJSON(w, r, 64<<10, &req) {
		return
	}
	resp, created, err := s.Submit(ctx, req)
	var se *SubmitError
	switch {
	case errors.As(err, &se):
		writeJSON(w, se.Code, ErrorResponse{Error: se.Message, Fields: se.Fields})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "unavailable, retry later"})
	case !created:
		writeJSON(w, http.StatusOK, resp)
	default:
		w.Header().Set("Location", "/v1/scans/"+resp.ScanID)
		writeJSON(w, http.StatusAccepted, resp)
	}
}

// SubmitError is a submission refused for a reason the caller must fix
// (Code 400 or 422), or a dependency down (503).
type SubmitError struct {
	Code    int
	Message string
	Fields  map[string]string
}

func (e *SubmitError) Error() string {
	parts := []string{e.Message}
	for k, v := range e.Fields {
		parts = append(parts, k+": "+v)
	}
	return strings.Join(parts, "; ")
}

// Permanent reports whether resubmitting cannot help.
func (e *SubmitError) Permanent() bool { return e.Code < 500 }

// Submit validates a submission, checks the object exists, and creates and
// enqueues the scan — or returns the existing scan of the same asset and
// content (created=false). It is the one path for the HTTP API and the
// scan-on-upload consumer.
func (s *Server) Submit(ctx context.Context, req SubmitRequest) (SubmitResponse, bool, error) {
	if bad := req.Validate(s.Kinds); len(bad) > 0 {
		return SubmitResponse{}, false, &SubmitError{Code: http.StatusBadRequest, Message: "invalid request", Fields: bad}
	}
	if err := s.Scope.check(req, s.ReportsBucket); err != nil {
		return SubmitResponse{}, false, err
	}
	info, err := s.Objects.Stat(ctx, req.Bucket, req.Key, req.VersionID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return SubmitResponse{}, false, &SubmitError{Code: http.StatusUnprocessableEntity, Message: "object not found",
			Fields: map[string]string{"key": fmt.Sprintf("no object %q in bucket %q", req.Key, req.Bucket)}}
	case err != nil:
		s.Log.ErrorContext(ctx, "stat object", "error", err)
		return SubmitResponse{}, false, &SubmitError{Code: http.StatusServiceUnavailable, Message: "object storage unavailable, retry later"}
	}
	sc := storage.Scan{
		ScanID: storage.NewScanID(), AssetID: req.AssetID, SellerID: req.SellerID, Kind: req.Kind,
		Bucket: req.Bucket, Key: req.Key, VersionID: req.VersionID, ExpectedSHA256: strings.ToLower(req.SHA256),
		ETag: info.ETag, Size: info.Size, Status: assetscan.StatusQueued, SubmittedAt: time.Now().UTC(),
	}
	if sc.VersionID == "" {
		sc.VersionID = info.VersionID
	}
	if len(req.DeclaredPasswords) > 0 {
		// Judged now, under the policy in force: only the findings travel
		// and are kept, never the passwords. They are part of the
		// submission's identity: other declared inputs, another scan.
		pol, err := s.Policies.ForKind(ctx, sc.Kind)
		if err != nil {
			s.Log.ErrorContext(ctx, "policy store", "error", err)
			return SubmitResponse{}, false, &SubmitError{Code: http.StatusServiceUnavailable, Message: "policy store unavailable, retry later"}
		}
		sc.Declared = declaredPasswordFindings(req.DeclaredPasswords, pol)
		sc.DeclaredDigest = storage.FindingsDigest(sc.Declared, len(req.DeclaredPasswords))
	}
	sc.TaskID = sc.ScanID
	got, created, err := s.Scans.Create(ctx, sc)
	if err != nil {
		s.Log.ErrorContext(ctx, "create scan", "error", err)
		return SubmitResponse{}, false, &SubmitError{Code: http.StatusServiceUnavailable, Message: "scan store unavailable, retry later"}
	}
	if !created {
		return SubmitResponse{ScanID: got.ScanID, Status: got.Status, Verdict: got.Verdict, Existing: true}, false, nil
	}
	// A crash between Create and Enqueue leaves the record pending with
	// no task: the sweeper (queue.Sweeper) re-enqueues it.
	job := queue.JobOf(sc)
	if err := s.Enqueuer.Enqueue(ctx, job); err != nil {
		s.Log.ErrorContext(ctx, "enqueue", "error", err, "scan_id", sc.ScanID)
		_ = s.Scans.Forget(context.WithoutCancel(ctx), sc)
		return SubmitResponse{}, false, &SubmitError{Code: http.StatusServiceUnavailable, Message: "queue unavailable, retry later"}
	}
	s.Metrics.ScanSubmitted(sc.Kind)
	s.Log.InfoContext(ctx, "scan submitted", "scan_id", sc.ScanID, "asset_id", sc.AssetID,
		"seller_id", sc.SellerID, "kind", sc.Kind, "size", sc.Size)
	return SubmitResponse{ScanID: sc.ScanID, Status: assetscan.StatusQueued}, true, nil
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request) {
	s.writeScan(w, r, r.PathValue("scan_id"), "scan not found")
}

func (s *Server) latest(w http.ResponseWriter, r *http.Request) {
	id, err := s.Scans.Latest(r.Context(), r.PathValue("asset_id"))
	if errors.Is(err, storage.ErrScanNotFound) {
		// An asset of another seller costs Latest (a Redis hit), Get (a
		// Redis hit) and a verdict miss in object storage (writeScan);
		// a missing asset costs Latest (a Redis miss, then an object
		// storage miss): one Redis round trip more evens them.
		_ = s.Scans.PingRedis(r.Context())
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: "no scan for this asset"})
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "latest scan", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "scan store unavailable"})
		return
	}
	s.writeScan(w, r, id, "no scan for this asset")
}

// decoyScanID is a well-formed scan id that is never issued (its time
// part is 0): reading it costs what reading a missing scan costs.
const decoyScanID = "scn_00000000000000000000000000"

// readableScan returns the scan record id names when the caller may read
// it, and storage.ErrScanNotFound both when it is missing and when it is
// another seller's, after the same work, so ids can neither be probed nor
// timed (writeScan and getReport answer through it):
//
//   - a missing scan: Get misses in Redis, then misses in object storage;
//   - another seller's scan: Get hits in Redis, then a verdict read of
//     decoyScanID misses in object storage;
//   - a malformed id: Get of decoyScanID (a Redis miss and an object
//     storage miss), as for a missing scan.
//
// The remaining difference is a Redis hit against a Redis miss. A scan
// whose record has left Redis (older than its TTL) costs one object
// storage read more; its existence is then old news.
func (s *Server) readableScan(ctx context.Context, id string) (storage.Scan, error) {
	lookup := id
	if !strings.HasPrefix(id, "scn_") || !idRe.MatchString(id) {
		lookup = decoyScanID
	}
	sc, err := s.Scans.Get(ctx, lookup)
	if err == nil && (lookup != id || !mayRead(ctx, sc.SellerID)) {
		_, _ = s.Scans.Verdict(ctx, decoyScanID)
		return storage.Scan{}, storage.ErrScanNotFound
	}
	return sc, err
}

// writeScan answers with a scan the caller may read (readableScan); a
// scan of another seller gets exactly the notFound answer of a missing one.
func (s *Server) writeScan(w http.ResponseWriter, r *http.Request, id, notFound string) {
	ctx := r.Context()
	sc, err := s.readableScan(ctx, id)
	if errors.Is(err, storage.ErrScanNotFound) {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: notFound})
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

// decodeJSON reads a JSON request body of at most limit bytes into v,
// strictly: unknown members, duplicate member names, member names that
// differ from the field names only by case ("Seller_ID"), invalid UTF-8
// and trailing data are refused. On failure it answers 400 and returns
// false. (encoding/json matches names case-insensitively and lets the
// last duplicate win, so {"seller_id":"a","Seller_ID":"b"} would be "b".)
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	err := jsonv2.UnmarshalRead(http.MaxBytesReader(w, r.Body, limit), v,
		jsonv2.RejectUnknownMembers(true), jsonv2.MatchCaseInsensitiveNames(false))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: "invalid JSON body: " + err.Error()})
		return false
	}
	return true
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
	if p, ok := auth.FromContext(ctx); ok {
		return p.Name
	}
	return "anonymous"
}

func mayRead(ctx context.Context, sellerID string) bool {
	p, ok := auth.FromContext(ctx)
	return ok && p.MayRead(sellerID)
}

// declaredPasswordFindings judges declared initial passwords under the
// policy's complexity rule. A finding names the account and states the
// whole rule, never which part of it the password broke: "equal to the
// account name" would reveal the password, and naming only the other
// parts would reveal it by elimination (a finding that names no part
// would mean "it is the account name"). The message is therefore the same
// for every broken password of an account under a policy; the seller,
// who knows the password, can check it against the rule.
func declaredPasswordFindings(ds []DeclaredPassword, p *policies.Policy) []assetscan.Finding {
	c := accounts.Complexity{MinLength: p.Passwords.MinLength, MinClasses: p.Passwords.MinClasses,
		ForbidAccountName: p.Passwords.ForbidAccountName}
	rule := fmt.Sprintf("at least %d characters and at least %d of the 4 character classes (lower-case, upper-case, digits, special characters)",
		c.MinLength, c.MinClasses)
	if c.ForbidAccountName {
		rule += ", and not the account name"
	}
	var out []assetscan.Finding
	for _, d := range ds {
		if ok, _ := accounts.CheckComplexity(d.Account, d.Password, c); !ok {
			out = append(out, assetscan.Finding{Check: assetscan.CheckAccount, Rule: queue.RuleDeclaredPassword,
				Message: fmt.Sprintf("the declared initial password of account %q breaks the password complexity rule: %s",
					d.Account, rule)})
		}
	}
	return out
}
