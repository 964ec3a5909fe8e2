package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/policies"
)

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+path)
		}
	}
	for _, r := range (&Server{}).Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.json and the routes differ:\ndocumented %v\nserved     %v", documented, served)
	}
}

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	kinds := []assetscan.Kind{assetscan.KindPackage, assetscan.KindVMImage}
	good := SubmitRequest{AssetID: "a-1", SellerID: "s1", Kind: "package", Bucket: "uploads", Key: "s1/app.zip"}
	tests := []struct {
		name  string
		edit  func(*SubmitRequest)
		field string
	}{
		{"ok", func(*SubmitRequest) {}, ""},
		{"asset id missing", func(r *SubmitRequest) { r.AssetID = "" }, "asset_id"},
		{"seller id with space", func(r *SubmitRequest) { r.SellerID = "s 1" }, "seller_id"},
		{"unknown kind", func(r *SubmitRequest) { r.Kind = "rpm" }, "kind"},
		{"kind not handled here", func(r *SubmitRequest) { r.Kind = "container-image" }, "kind"},
		{"bad bucket", func(r *SubmitRequest) { r.Bucket = "Up_Loads" }, "bucket"},
		{"key is a prefix", func(r *SubmitRequest) { r.Key = "s1/" }, "key"},
		{"bad sha256", func(r *SubmitRequest) { r.SHA256 = "abc" }, "sha256"},
		{"password on a package", func(r *SubmitRequest) { r.DeclaredPasswords = []DeclaredPassword{{"root", "x"}} }, "declared_passwords"},
	}
	for _, tt := range tests {
		r := good
		tt.edit(&r)
		bad := r.Validate(kinds)
		if tt.field == "" && len(bad) != 0 {
			t.Errorf("%s: %v", tt.name, bad)
		}
		if tt.field != "" && bad[tt.field] == "" {
			t.Errorf("%s: no message for %s: %v", tt.name, tt.field, bad)
		}
	}
}

// TestDeclaredPasswordFindingsRevealNothing: a finding about a declared
// password never contains it and never says which part of the rule it
// broke (equal to the account name would give it away, directly or by
// elimination): every broken password of an account gets the same text.
func TestDeclaredPasswordFindingsRevealNothing(t *testing.T) {
	t.Parallel()
	pol, err := policies.Default(assetscan.KindVMImage)
	if err != nil {
		t.Fatal(err)
	}
	cases := []DeclaredPassword{
		{"Administrator9", "Administrator9"}, // long, 3 classes: only the name rule
		{"Administrator9", "administrator9"}, // the name, case-folded
		{"Administrator9", "abc"},            // short, one class
		{"Administrator9", "abcdefghijkl"},   // one class
		{"Administrator9", "Ab1"},            // short
	}
	var first string
	for _, d := range cases {
		fs := declaredPasswordFindings([]DeclaredPassword{d}, pol)
		if len(fs) != 1 {
			t.Fatalf("%q: %d findings, want 1", d.Password, len(fs))
		}
		m := fs[0].Message
		if strings.Contains(m, d.Password) && d.Password != d.Account {
			t.Errorf("%q: message contains the password: %s", d.Password, m)
		}
		for _, leak := range []string{"equal to", "shorter than", "uses 1 of", "uses 2 of", "fewer than"} {
			if strings.Contains(m, leak) {
				t.Errorf("%q: message says which part broke (%q): %s", d.Password, leak, m)
			}
		}
		if first == "" {
			first = m
		} else if m != first {
			t.Errorf("messages differ by password:\n%s\n%s", first, m)
		}
	}
	if got := declaredPasswordFindings([]DeclaredPassword{{"root", "Str0ng-Passw0rd"}}, pol); len(got) != 0 {
		t.Errorf("strong password: %v", got)
	}
}
