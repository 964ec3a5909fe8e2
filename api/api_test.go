package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/assetscan/assetscan"
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
