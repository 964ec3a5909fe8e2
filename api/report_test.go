package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/auth"
	"github.com/assetscan/assetscan/report"
	"github.com/assetscan/assetscan/storage"
)

// reportFixture is an API over a real scan store (miniredis, in-memory
// S3) holding seller-a's scans: one finished with a failing finding whose
// names carry markup, one queued.
type reportFixture struct {
	h             http.Handler
	redis         *miniredis.Miniredis
	s3            *countingTransport
	tokens        map[string]string
	done, queued  string
	evilPath, pkg string
}

func newReportFixture(t *testing.T) reportFixture {
	t.Helper()
	ctx := context.Background()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s3 := httptest.NewUnstartedServer(gofakes3.New(s3mem.New()).Server())
	s3.StartTLS()
	t.Cleanup(s3.Close)
	ct := &countingTransport{next: s3.Client().Transport}
	obj, err := storage.NewObjects(storage.S3Config{Endpoint: s3.Listener.Addr().String(), AccessKey: "k", SecretKey: "secret-key",
		Secure: true, Transport: ct})
	if err != nil {
		t.Fatal(err)
	}
	if err := obj.EnsureBucket(ctx, "reports"); err != nil {
		t.Fatal(err)
	}
	store := storage.NewStore(rdb, obj, "reports", "t:")
	fx := reportFixture{evilPath: `app/<script>alert("p")</script>'.js`, pkg: `<img src=x onerror=alert(1)>`}
	queued := storage.Scan{ScanID: storage.NewScanID(), AssetID: "asset-q", SellerID: "seller-a", Kind: assetscan.KindPackage,
		Bucket: "uploads", Key: "seller-a/app.zip", Status: assetscan.StatusQueued, SubmittedAt: time.Now()}
	done := queued
	done.ScanID, done.AssetID = storage.NewScanID(), "asset-d"
	for _, sc := range []storage.Scan{queued, done} {
		if _, _, err := store.Create(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	score := 9.1
	v := assetscan.Verdict{ScanID: done.ScanID, AssetID: done.AssetID, SellerID: "seller-a", Kind: assetscan.KindPackage,
		Status: assetscan.StatusDone, Verdict: assetscan.Fail, SHA256: strings.Repeat("a", 64), CompletedAt: time.Now().UTC(),
		Object: assetscan.Object{Name: "app.zip", Size: 10},
		Findings: []assetscan.JudgedFinding{{Finding: assetscan.Finding{Check: "vulnerability", Rule: "vulnerability.cvss", Path: fx.evilPath,
			Message: "CVE-2019-10744 in " + fx.pkg,
			Vulnerability: &assetscan.Vulnerability{ID: "CVE-2019-10744", Package: fx.pkg, PackageType: "npm", InstalledVersion: "4.17.11",
				FixedVersion: "4.17.12", Severity: "CRITICAL", CVSSScore: &score, CVSSSource: "nvd"}}, Action: assetscan.ActionFail}},
		Checks:  []assetscan.CheckRun{{Name: "vulnerability", Status: "ok"}},
		Engines: map[string]string{"trivy": "v0.74.0"},
	}
	f := assetscan.Findings{Components: []assetscan.Component{{Name: fx.pkg, Version: "4.17.11", Type: "npm", Path: fx.evilPath}}}
	if err := store.SaveVerdict(ctx, done, v, f); err != nil {
		t.Fatal(err)
	}
	keys, tokens := reportTestKeys(t)
	srv := &Server{Scans: store, Keys: keys, Log: slog.New(slog.DiscardHandler)}
	fx.h, fx.tokens, fx.done, fx.queued, fx.redis, fx.s3 = srv.Handler(), tokens, done.ScanID, queued.ScanID, m, ct
	return fx
}

// reportTestKeys returns a keyring and tokens for asset-center, seller-a,
// seller-b and staff.
func reportTestKeys(t *testing.T) (*auth.Keyring, map[string]string) {
	t.Helper()
	tokens := map[string]string{}
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, e := range []struct{ name, role, seller string }{
		{"asset-center", "asset-center", ""}, {"seller-a", "seller", "seller-a"},
		{"seller-b", "seller", "seller-b"}, {"staff", "security-staff", ""},
	} {
		tok, hash := auth.NewKey()
		tokens[e.name] = tok
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    key_sha256: %s\n", e.name, e.role, hash)
		if e.seller != "" {
			fmt.Fprintf(&b, "    seller_id: %s\n", e.seller)
		}
	}
	k, err := auth.ParseKeys([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return k, tokens
}

func getReportAs(t *testing.T, h http.Handler, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestReportAccess: the report route answers like GET /v1/scans/{id}: the
// owner and readers of all scans get it, another seller gets exactly the
// not-found answer of a missing scan.
func TestReportAccess(t *testing.T) {
	t.Parallel()
	fx := newReportFixture(t)
	missing := getReportAs(t, fx.h, "/v1/scans/"+storage.NewScanID()+"/report?format=html", fx.tokens["seller-a"])
	if missing.Code != http.StatusNotFound {
		t.Fatalf("missing scan: %d %s", missing.Code, missing.Body)
	}
	tests := []struct {
		name, who, path string
		code            int
	}{
		{"owner", "seller-a", "/v1/scans/" + fx.done + "/report?format=html", http.StatusOK},
		{"asset center", "asset-center", "/v1/scans/" + fx.done + "/report?format=sarif", http.StatusOK},
		{"staff", "staff", "/v1/scans/" + fx.done + "/report?format=cyclonedx", http.StatusOK},
		{"owner json", "seller-a", "/v1/scans/" + fx.done + "/report?format=json", http.StatusOK},
		{"another seller", "seller-b", "/v1/scans/" + fx.done + "/report?format=html", http.StatusNotFound},
		{"another seller, queued scan", "seller-b", "/v1/scans/" + fx.queued + "/report?format=html", http.StatusNotFound},
		{"malformed id", "seller-a", "/v1/scans/nope/report?format=html", http.StatusNotFound},
		{"not finished", "seller-a", "/v1/scans/" + fx.queued + "/report?format=html", http.StatusConflict},
		{"no format", "seller-a", "/v1/scans/" + fx.done + "/report", http.StatusBadRequest},
		{"unknown format", "seller-a", "/v1/scans/" + fx.done + "/report?format=pdf", http.StatusBadRequest},
		{"no key", "", "/v1/scans/" + fx.done + "/report?format=html", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		rec := getReportAs(t, fx.h, tt.path, fx.tokens[tt.who])
		if rec.Code != tt.code {
			t.Errorf("%s: %d, want %d: %s", tt.name, rec.Code, tt.code, rec.Body)
			continue
		}
		if tt.code == http.StatusNotFound && rec.Body.String() != missing.Body.String() {
			t.Errorf("%s: body %q differs from a missing scan's %q", tt.name, rec.Body, missing.Body)
		}
	}
}

func TestReportFormats(t *testing.T) {
	t.Parallel()
	fx := newReportFixture(t)
	for _, format := range report.Formats() {
		rec := getReportAs(t, fx.h, "/v1/scans/"+fx.done+"/report?format="+format, fx.tokens["seller-a"])
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", format, rec.Code, rec.Body)
		}
		want, _ := report.ContentType(format)
		h := rec.Header()
		if h.Get("Content-Type") != want || h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Cache-Control"), "no-store") {
			t.Errorf("%s: headers %v", format, h)
		}
		if !strings.Contains(h.Get("Content-Disposition"), fx.done+report.FileExtension(format)) {
			t.Errorf("%s: Content-Disposition %q", format, h.Get("Content-Disposition"))
		}
		body := rec.Body.String()
		switch format {
		case report.FormatHTML:
			if got := h.Get("Content-Security-Policy"); got != "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" {
				t.Errorf("CSP %q", got)
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "<img") {
				t.Errorf("markup from the asset in the page")
			}
			if !strings.Contains(body, "&lt;script&gt;alert(&#34;p&#34;)&lt;/script&gt;&#39;.js") || !strings.Contains(body, ">FAIL<") {
				t.Errorf("page lacks the escaped path or the verdict")
			}
		case report.FormatCycloneDX:
			var bom struct {
				Components []struct{ Name, Purl string } `json:"components"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &bom); err != nil || len(bom.Components) != 1 || bom.Components[0].Name != fx.pkg {
				t.Errorf("SBOM without the stored inventory (%v): %s", err, body)
			}
		default:
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s: invalid JSON", format)
			}
		}
	}
}

// TestReportNotFoundPathsDoTheSameWork: another seller's report costs the
// Redis commands and object storage requests of a missing scan's, and
// answers the same bytes, so ids can be neither probed nor timed.
func TestReportNotFoundPathsDoTheSameWork(t *testing.T) {
	t.Parallel()
	fx := newReportFixture(t)
	type cost struct{ redis, s3 int64 }
	measure := func(path string) (cost, string) {
		r0, s0 := fx.redis.CommandCount(), fx.s3.n.Load()
		rec := getReportAs(t, fx.h, path, fx.tokens["seller-b"])
		if rec.Code != http.StatusNotFound {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return cost{int64(fx.redis.CommandCount() - r0), fx.s3.n.Load() - s0}, rec.Body.String()
	}
	for _, format := range []string{"html", "cyclonedx"} {
		missingCost, missingBody := measure("/v1/scans/" + storage.NewScanID() + "/report?format=" + format)
		for name, id := range map[string]string{"finished": fx.done, "queued": fx.queued, "malformed": "nope"} {
			c, body := measure("/v1/scans/" + id + "/report?format=" + format)
			if c != missingCost || body != missingBody {
				t.Errorf("%s %s: cost %+v body %q; a missing scan: %+v %q", format, name, c, body, missingCost, missingBody)
			}
		}
	}
}
