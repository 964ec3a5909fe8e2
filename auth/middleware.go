package auth

import (
	"net/http"
	"slices"
	"strings"
)

// Middleware authenticates every request before next sees it. The token
// comes from "Authorization: Bearer <token>" or, failing that, from
// "X-API-Key: <token>". A request without credentials, or with a token that
// is not in k, gets 401 with a JSON body {"error": "..."} and a
// WWW-Authenticate: Bearer challenge (RFC 6750); an authenticated request
// reaches next with its Principal in the context (FromContext).
//
// Paths listed in public (exact matches on r.URL.Path, e.g. "/healthz",
// "/readyz") pass without credentials and without a principal.
//
// Middleware only authenticates; each handler authorizes with
// Principal.Can and Principal.MayRead.
func Middleware(k *Keyring, public []string, next http.Handler) http.Handler {
	public = slices.Clone(public)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(public, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		token, problem := credentials(r)
		if problem != "" {
			unauthorized(w, "", problem)
			return
		}
		p, ok := k.Authenticate(token)
		if !ok {
			unauthorized(w, "invalid_token", "invalid API key")
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
	})
}

// credentials extracts the token, or says what is wrong.
func credentials(r *http.Request) (token, problem string) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", "unsupported Authorization scheme: use \"Authorization: Bearer <API key>\""
		}
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return "", "empty bearer token"
		}
		return tok, ""
	}
	if tok := strings.TrimSpace(r.Header.Get("X-API-Key")); tok != "" {
		return tok, ""
	}
	return "", "authentication required: send \"Authorization: Bearer <API key>\""
}

func unauthorized(w http.ResponseWriter, code, msg string) {
	c := `Bearer realm="assetscan"`
	if code != "" {
		c += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", c)
	writeError(w, http.StatusUnauthorized, msg)
}
