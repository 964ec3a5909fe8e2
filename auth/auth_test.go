package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCan(t *testing.T) {
	ac := Principal{Name: "ac", Role: RoleAssetCenter}
	seller := Principal{Name: "s", Role: RoleSeller, SellerID: "acme"}
	staff := Principal{Name: "alice", Role: RoleStaff}
	want := map[Action][3]bool{ // asset-center, seller, staff
		ActSubmit:      {true, false, false},
		ActReadAny:     {true, false, true},
		ActReadOwn:     {false, true, false},
		ActPolicyRead:  {false, false, true},
		ActPolicyWrite: {false, false, true},
		ActReevaluate:  {false, false, true},
		ActQueueUI:     {false, false, true},
		ActCallbacks:   {true, false, false},
	}
	if len(want) != len(Actions) {
		t.Fatalf("table covers %d actions, Actions has %d", len(want), len(Actions))
	}
	for _, a := range Actions {
		for i, p := range []Principal{ac, seller, staff} {
			if got := p.Can(a); got != want[a][i] {
				t.Errorf("%s.Can(%s) = %v, want %v", p.Role, a, got, want[a][i])
			}
		}
		for _, p := range []Principal{{}, {Role: "admin"}, {Role: RoleSeller}} {
			if p.Can(a) {
				t.Errorf("%+v.Can(%s) = true, want false", p, a)
			}
		}
	}
}

func TestMayRead(t *testing.T) {
	tests := []struct {
		p      Principal
		seller string
		want   bool
	}{
		{Principal{Role: RoleAssetCenter}, "acme", true},
		{Principal{Role: RoleStaff}, "acme", true},
		{Principal{Role: RoleSeller, SellerID: "acme"}, "acme", true},
		{Principal{Role: RoleSeller, SellerID: "acme"}, "globex", false},
		{Principal{Role: RoleSeller, SellerID: "acme"}, "ACME", false},
		{Principal{Role: RoleSeller, SellerID: "acme"}, "", false},
		{Principal{Role: RoleSeller}, "", false},
		{Principal{}, "acme", false},
		{Principal{Role: "admin"}, "acme", false},
	}
	for _, tt := range tests {
		if got := tt.p.MayRead(tt.seller); got != tt.want {
			t.Errorf("%+v.MayRead(%q) = %v, want %v", tt.p, tt.seller, got, tt.want)
		}
	}
}

const (
	hashA = "07ef25e50c4e8e67488cafb06a0cb18eea875c09834b987d4de2bea91fc6e52a"
	hashB = "131424c82d1d9dc97a2f9e2237a2dea0f8965855734b429707680f4859e50e6a"
)

func TestParseKeysValidation(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error; nil: valid
	}{
		{"valid", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hashA + `}
  - {name: seller-acme, role: seller, seller_id: acme, key_sha256: ` + strings.ToUpper(hashB) + `}
`, nil},
		{"json", `{"keys": [{"name": "ac", "role": "asset-center", "key_sha256": "` + hashA + `"}]}`, nil},
		{"unknown role", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hashA + `}
  - {name: root, role: admin, key_sha256: ` + hashB + `}
`, []string{`keys[1].role: unknown role "admin"`}},
		{"missing role", `
keys:
  - {name: ac, key_sha256: ` + hashA + `}
`, []string{`keys[0].role: required`}},
		{"seller without seller_id", `
keys:
  - {name: s, role: seller, key_sha256: ` + hashA + `}
`, []string{`keys[0].seller_id: required for role seller`}},
		{"bad seller_id", `
keys:
  - {name: s, role: seller, seller_id: "a b", key_sha256: ` + hashA + `}
`, []string{`keys[0].seller_id: "a b"`}},
		{"staff with seller_id", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hashA + `}
  - {name: alice, role: security-staff, seller_id: acme, key_sha256: ` + hashB + `}
`, []string{`keys[1].seller_id: only sellers have a seller_id, not role "security-staff"`}},
		{"bad hash", `
keys:
  - {name: ac, role: asset-center, key_sha256: abc123}
`, []string{`keys[0].key_sha256: want 64 hex digits`}},
		{"non-hex hash", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + strings.Repeat("g", 64) + `}
`, []string{`keys[0].key_sha256: want 64 hex digits`}},
		{"missing hash", `
keys:
  - {name: ac, role: asset-center}
`, []string{`keys[0].key_sha256: required`}},
		{"duplicate name", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hashA + `}
  - {name: ac, role: security-staff, key_sha256: ` + hashB + `}
`, []string{`keys[1].name: "ac" is also the name of keys[0]`}},
		{"duplicate hash", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hashA + `}
  - {name: alice, role: security-staff, key_sha256: ` + hashA + `}
`, []string{`keys[1].key_sha256: same key as keys[0]`}},
		{"missing name", `
keys:
  - {role: asset-center, key_sha256: ` + hashA + `}
`, []string{`keys[0].name: required`}},
		{"plaintext key", `
keys:
  - {name: ac, role: asset-center, key: ask_secret}
`, []string{`keys[0].key: plaintext keys are not accepted`, `keys[0].key_sha256: required`}},
		{"unknown field", `
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hashA + `, sellerid: x}
`, []string{`field sellerid not found`}},
		{"several problems at once", `
keys:
  - {name: s, role: seller, key_sha256: xyz}
  - {name: t, role: boss, key_sha256: ` + hashA + `}
`, []string{`keys[0].seller_id: required`, `keys[0].key_sha256: want 64 hex`, `keys[1].role: unknown role "boss"`}},
		{"empty file", ``, []string{`empty keys file`}},
		{"no keys", `keys: []`, []string{`no keys`}},
		{"not yaml", `keys: [`, []string{`parse:`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeys([]byte(tt.file))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if k.Len() == 0 {
					t.Fatal("no keys loaded")
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(path, []byte("keys:\n  - {name: ac, role: asset-center, key_sha256: bad}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKeys(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "keys[0].key_sha256") {
		t.Fatalf("error %v: want the path and the field", err)
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file: no error")
	}
}

func TestNewKeyAndAuthenticate(t *testing.T) {
	acTok, acHash := NewKey()
	sTok, sHash := NewKey()
	if !strings.HasPrefix(acTok, TokenPrefix) || len(acTok) != len(TokenPrefix)+43 {
		t.Fatalf("token %q: want %s + 43 base64url characters", acTok, TokenPrefix)
	}
	if acTok == sTok {
		t.Fatal("two NewKey calls gave the same token")
	}
	if HashKey(acTok) != acHash || len(acHash) != 64 {
		t.Fatalf("hash %q does not match HashKey", acHash)
	}
	// The documented shell equivalent: printf %s "$TOKEN" | sha256sum
	if got := HashKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashKey(abc) = %s", got)
	}
	k, err := ParseKeys([]byte(`
keys:
  - {name: ac, role: asset-center, key_sha256: ` + acHash + `}
  - {name: seller-acme, role: seller, seller_id: acme, key_sha256: ` + strings.ToUpper(sHash) + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		token string
		want  Principal
		ok    bool
	}{
		{acTok, Principal{Name: "ac", Role: RoleAssetCenter}, true},
		{sTok, Principal{Name: "seller-acme", Role: RoleSeller, SellerID: "acme"}, true}, // upper-case hash in the file
		{acTok + "x", Principal{}, false},
		{acTok[:len(acTok)-1], Principal{}, false},
		{acHash, Principal{}, false}, // the hash is not the key
		{"", Principal{}, false},
	}
	for _, tt := range tests {
		p, ok := k.Authenticate(tt.token)
		if ok != tt.ok || p != tt.want {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tt.token, p, ok, tt.want, tt.ok)
		}
	}
	var nilRing *Keyring
	if _, ok := nilRing.Authenticate(acTok); ok {
		t.Error("nil keyring authenticated")
	}
}

func TestMiddleware(t *testing.T) {
	tok, hash := NewKey()
	sTok, sHash := NewKey()
	k, err := ParseKeys([]byte(`
keys:
  - {name: ac, role: asset-center, key_sha256: ` + hash + `}
  - {name: seller-acme, role: seller, seller_id: acme, key_sha256: ` + sHash + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got *Principal
	reached := 0
	h := Middleware(k, []string{"/healthz", "/readyz"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		got = nil
		if p, ok := FromContext(r.Context()); ok {
			got = &p
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		code    int
		want    *Principal
		errSub  string
		invalid bool // WWW-Authenticate carries error="invalid_token"
	}{
		{name: "no credentials", path: "/v1/scans/scn_1", code: 401, errSub: "authentication required"},
		{name: "wrong token", path: "/v1/scans/scn_1", headers: map[string]string{"Authorization": "Bearer ask_wrong"}, code: 401, errSub: "invalid API key", invalid: true},
		{name: "wrong X-API-Key", path: "/v1/scans/scn_1", headers: map[string]string{"X-API-Key": "ask_wrong"}, code: 401, errSub: "invalid API key", invalid: true},
		{name: "basic auth", path: "/v1/scans/scn_1", headers: map[string]string{"Authorization": "Basic " + tok}, code: 401, errSub: "unsupported Authorization scheme"},
		{name: "empty bearer", path: "/v1/scans/scn_1", headers: map[string]string{"Authorization": "Bearer "}, code: 401, errSub: "empty bearer token"},
		{name: "bearer wins over a valid X-API-Key", path: "/v1/scans/scn_1", headers: map[string]string{"Authorization": "Bearer ask_wrong", "X-API-Key": tok}, code: 401, invalid: true},
		{name: "public path", path: "/healthz", code: 204},
		{name: "public path is exact", path: "/healthz/x", code: 401},
		{name: "public path with a wrong token still passes", path: "/readyz", headers: map[string]string{"Authorization": "Bearer nope"}, code: 204},
		{name: "bearer", path: "/v1/scans/scn_1", headers: map[string]string{"Authorization": "Bearer " + tok}, code: 204,
			want: &Principal{Name: "ac", Role: RoleAssetCenter}},
		{name: "bearer scheme is case-insensitive", path: "/v1/scans/scn_1", headers: map[string]string{"Authorization": "bearer " + tok}, code: 204,
			want: &Principal{Name: "ac", Role: RoleAssetCenter}},
		{name: "X-API-Key", path: "/v1/scans/scn_1", headers: map[string]string{"X-API-Key": sTok}, code: 204,
			want: &Principal{Name: "seller-acme", Role: RoleSeller, SellerID: "acme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached, got = 0, nil
			r := httptest.NewRequest("GET", tt.path, nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tt.code, w.Body)
			}
			if tt.code != 401 {
				if reached != 1 {
					t.Fatalf("handler reached %d times", reached)
				}
				if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
					t.Fatalf("principal %+v, want %+v", got, tt.want)
				}
				return
			}
			if reached != 0 {
				t.Fatal("handler reached without authentication")
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			c := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(c, `Bearer realm="assetscan"`) || strings.Contains(c, "invalid_token") != tt.invalid {
				t.Errorf("WWW-Authenticate %q", c)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("body %q: want {\"error\": ...} (%v)", w.Body, err)
			}
			if !strings.Contains(body.Error, tt.errSub) {
				t.Errorf("error %q does not contain %q", body.Error, tt.errSub)
			}
			if strings.Contains(w.Body.String(), tok) {
				t.Error("response echoes a token")
			}
		})
	}
}

func TestForbiddenAndContext(t *testing.T) {
	w := httptest.NewRecorder()
	Forbidden(w)
	if w.Code != 403 || !strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("Forbidden: %d %s", w.Code, w.Body)
	}
	if _, ok := FromContext(t.Context()); ok {
		t.Fatal("principal in a bare context")
	}
	p := Principal{Name: "alice", Role: RoleStaff}
	if got, ok := FromContext(NewContext(t.Context(), p)); !ok || got != p {
		t.Fatalf("FromContext(NewContext(p)) = %+v, %v", got, ok)
	}
}
