// Package auth decides who may see and do what in assetscan's HTTP API.
//
// # Roles
//
// There are three roles (STANDARDS.md, "Who uses the system"):
//
//	asset-center    the marketplace backend: submits scans, reads every
//	                verdict, registers verdict callbacks
//	seller          bound to one seller_id: reads the scans of that seller's
//	                own assets, nothing else
//	security-staff  reads every verdict, reads and writes policies (allow-lists
//	                included), re-evaluates findings, looks at the queues
//
// The table of what each role may do is [Principal.Can]; reading one scan
// is [Principal.MayRead].
//
// # Credentials
//
// Every caller presents an API key, a bearer token:
//
//	Authorization: Bearer ask_3q2-7wJ0...    (preferred)
//	X-API-Key: ask_3q2-7wJ0...               (also accepted)
//
// Tokens are random: "ask_" followed by the unpadded base64url encoding of
// 32 random bytes (see [NewKey]). The operator hands the token to the caller
// and puts only its SHA-256 into the keys file (see [ParseKeys] for the
// format); the service never stores or logs a token. A SHA-256 is enough
// (no slow password hash): the tokens carry 256 bits of randomness, so the
// hash cannot be brute-forced back into a token.
//
// # Not found versus forbidden
//
// A seller asking for another seller's scan gets exactly the answer a
// non-existent scan gets: 404 with the same body. A 403 would tell the
// seller that the scan id exists, so ids could be probed. Handlers therefore
// check [Principal.MayRead] after loading the scan and, when it is false,
// take their own "not found" path — they must not write a different 404
// body (e.g. a generic one from this package), or the difference leaks.
//
// For an action a role may never perform (a seller calling a staff
// endpoint, a seller submitting a scan) 403 is right: it reveals nothing
// about any record. [Forbidden] writes it.
package auth

import (
	"context"
	"encoding/json"
	"net/http"
)

// Role is what a principal is.
type Role string

// The roles.
const (
	RoleAssetCenter Role = "asset-center"
	RoleSeller      Role = "seller"
	RoleStaff       Role = "security-staff"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleAssetCenter, RoleSeller, RoleStaff:
		return true
	}
	return false
}

// Action is something a principal may be allowed to do.
type Action string

// The actions the API checks.
const (
	// ActSubmit: submit a scan (POST /v1/scans).
	ActSubmit Action = "submit"
	// ActReadAny: read any seller's scans, verdicts and findings.
	ActReadAny Action = "read-any"
	// ActReadOwn: read the scans of the principal's own seller_id. Reading
	// one scan is decided by MayRead, which covers both read actions.
	ActReadOwn Action = "read-own"
	// ActPolicyRead: read policies (and their allow-lists).
	ActPolicyRead Action = "policy-read"
	// ActPolicyWrite: change policies, thresholds and allow-lists.
	ActPolicyWrite Action = "policy-write"
	// ActReevaluate: re-evaluate stored findings under a (draft) policy.
	ActReevaluate Action = "reevaluate"
	// ActQueueUI: look at queues, failed and archived tasks.
	ActQueueUI Action = "queue-ui"
	// ActCallbacks: register, list and remove verdict callbacks.
	ActCallbacks Action = "callbacks"
)

// Actions lists every action, for tables and tests.
var Actions = []Action{ActSubmit, ActReadAny, ActReadOwn, ActPolicyRead, ActPolicyWrite, ActReevaluate, ActQueueUI, ActCallbacks}

// grants is the role × action table. Anything not listed is denied.
var grants = map[Role]map[Action]bool{
	RoleAssetCenter: {ActSubmit: true, ActReadAny: true, ActCallbacks: true},
	RoleSeller:      {ActReadOwn: true},
	RoleStaff: {ActReadAny: true, ActPolicyRead: true, ActPolicyWrite: true,
		ActReevaluate: true, ActQueueUI: true},
}

// Principal is an authenticated caller.
type Principal struct {
	// Name is the key's name from the keys file; use it in logs and in
	// "created_by" fields.
	Name string
	Role Role
	// SellerID binds a seller to its own assets. Empty for other roles.
	SellerID string
}

// Can reports whether p may perform a. A principal with an unknown role
// (or the zero Principal) may do nothing; a seller without a seller id may
// do nothing.
func (p Principal) Can(a Action) bool {
	if p.Role == RoleSeller && p.SellerID == "" {
		return false
	}
	return grants[p.Role][a]
}

// MayRead reports whether p may read a scan (status, verdict, findings,
// reports) that belongs to sellerID: staff and the asset center read all,
// a seller only its own. When it is false, answer exactly as for a scan
// that does not exist (404, same body), never 403.
func (p Principal) MayRead(sellerID string) bool {
	if p.Can(ActReadAny) {
		return true
	}
	return p.Can(ActReadOwn) && sellerID != "" && sellerID == p.SellerID
}

type ctxKey struct{}

// NewContext returns ctx carrying p. Middleware does this; handlers'
// tests can use it to call a handler as a given principal.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal Middleware authenticated. ok is false
// on public paths and outside Middleware: treat that as unauthenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Forbidden writes 403 {"error":"forbidden: ..."} for an action the
// caller's role may never perform. Do not use it for records the caller
// may not read (see the package doc: those get the handler's own 404).
func Forbidden(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "forbidden: your API key's role may not do this")
}

// writeError writes {"error": msg} like the API's ErrorResponse.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
