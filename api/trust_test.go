package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/auth"
	"github.com/assetscan/assetscan/queue"
	"github.com/assetscan/assetscan/storage"
)

// fakeObjects answers Stat for every object (the scope must refuse before
// anything is read) and counts the calls.
type fakeObjects struct{ stats atomic.Int64 }

func (f *fakeObjects) Stat(context.Context, string, string, string) (storage.Info, error) {
	f.stats.Add(1)
	return storage.Info{Size: 10, ETag: "e"}, nil
}
func (f *fakeObjects) Ping(context.Context, string) error { return nil }

type memScans struct {
	mu    sync.Mutex
	scans map[string]storage.Scan
}

func (m *memScans) Create(_ context.Context, sc storage.Scan) (storage.Scan, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.scans == nil {
		m.scans = map[string]storage.Scan{}
	}
	m.scans[sc.ScanID] = sc
	return sc, true, nil
}
func (m *memScans) Forget(context.Context, storage.Scan) error { return nil }
func (m *memScans) Get(_ context.Context, id string) (storage.Scan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.scans[id]
	if !ok {
		return storage.Scan{}, storage.ErrScanNotFound
	}
	return sc, nil
}
func (m *memScans) Latest(context.Context, string) (string, error) {
	return "", storage.ErrScanNotFound
}
func (m *memScans) Verdict(context.Context, string) (assetscan.Verdict, error) {
	return assetscan.Verdict{}, storage.ErrScanNotFound
}
func (m *memScans) PingRedis(context.Context) error { return nil }

type fakeEnqueuer struct{ jobs []queue.Job }

func (f *fakeEnqueuer) Enqueue(_ context.Context, j queue.Job) error {
	f.jobs = append(f.jobs, j)
	return nil
}

// testKeys returns a keyring and tokens for asset-center, seller-a,
// seller-b and staff.
func testKeys(t *testing.T) (*auth.Keyring, map[string]string) {
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

func call(t *testing.T, h http.Handler, method, path, token string, body []byte) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestSubmitScope: a submission may only point at the configured asset
// buckets, never at the service's own buckets, and (with a key layout)
// only at keys under its seller's prefix; the check runs before the
// object is even looked up.
func TestSubmitScope(t *testing.T) {
	t.Parallel()
	layout, err := ParseKeyLayout("{seller_id}/")
	if err != nil {
		t.Fatal(err)
	}
	keys, tok := testKeys(t)
	tests := []struct {
		name  string
		scope Scope
		body  string
		want  int
		field string
	}{
		{"own key", Scope{Buckets: []string{"uploads"}, KeyLayout: layout},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"uploads","key":"seller-b/app.zip"}`, http.StatusAccepted, ""},
		{"another seller's key", Scope{Buckets: []string{"uploads"}, KeyLayout: layout},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"uploads","key":"seller-a/app.zip"}`, http.StatusForbidden, "key"},
		{"prefix of a longer seller id", Scope{KeyLayout: layout},
			`{"asset_id":"a1","seller_id":"seller","kind":"package","bucket":"uploads","key":"seller-b/app.zip"}`, http.StatusForbidden, "key"},
		{"dot-dot out of the prefix", Scope{KeyLayout: layout},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"uploads","key":"seller-b/../seller-a/app.zip"}`, http.StatusForbidden, "key"},
		{"the reports bucket", Scope{},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"assetscan-reports","key":"findings/scn_1.json"}`, http.StatusForbidden, "bucket"},
		{"the reports bucket, even if listed", Scope{Buckets: []string{"uploads", "assetscan-reports"}},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"assetscan-reports","key":"findings/scn_1.json"}`, http.StatusForbidden, "bucket"},
		{"a reserved bucket", Scope{Reserved: []string{"assetscan-db"}},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"assetscan-db","key":"db.tar.gz"}`, http.StatusForbidden, "bucket"},
		{"a bucket not listed", Scope{Buckets: []string{"uploads"}},
			`{"asset_id":"a1","seller_id":"seller-b","kind":"package","bucket":"other","key":"x.zip"}`, http.StatusForbidden, "bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := &fakeObjects{}
			s := &Server{Scans: &memScans{}, Objects: objs, Enqueuer: &fakeEnqueuer{}, Kinds: []assetscan.Kind{assetscan.KindPackage},
				ReportsBucket: "assetscan-reports", Scope: tt.scope, Keys: keys, Log: slog.New(slog.DiscardHandler)}
			code, body := call(t, s.Handler(), "POST", "/v1/scans", tok["asset-center"], []byte(tt.body))
			if code != tt.want {
				t.Fatalf("%d %s, want %d", code, body, tt.want)
			}
			if tt.field != "" {
				var e ErrorResponse
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Fields[tt.field] == "" {
					t.Errorf("no message for %s: %s", tt.field, body)
				}
				if objs.stats.Load() != 0 {
					t.Errorf("the object was looked up before the scope check")
				}
			}
		})
	}
}

func TestParseKeyLayout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		tmpl string
		ok   bool
	}{
		{"", true}, {"{seller_id}/", true}, {"uploads/{seller_id}/{asset_id}/", true}, {"{kind}/{seller_id}/", true},
		{"{seller_id}", false}, {"{asset_id}/", false}, {"{seller}/", false}, {"/{seller_id}/", false}, {"{seller_id}/{x}/", false},
	} {
		_, err := ParseKeyLayout(tt.tmpl)
		if (err == nil) != tt.ok {
			t.Errorf("ParseKeyLayout(%q) = %v, want ok=%v", tt.tmpl, err, tt.ok)
		}
	}
	l, _ := ParseKeyLayout("in/{seller_id}/{asset_id}/")
	if got := l.Prefix(SubmitRequest{SellerID: "s1", AssetID: "a1"}); got != "in/s1/a1/" {
		t.Errorf("Prefix = %q", got)
	}
}

// TestStrictJSONBodies: duplicate members, case-folded member names and
// unknown members are refused on every JSON body (encoding/json would
// take the last or the case-folded value).
func TestStrictJSONBodies(t *testing.T) {
	t.Parallel()
	keys, tok := testKeys(t)
	enq := &fakeEnqueuer{}
	s := &Server{Scans: &memScans{}, Objects: &fakeObjects{}, Enqueuer: enq, Kinds: []assetscan.Kind{assetscan.KindPackage},
		ReportsBucket: "assetscan-reports", Keys: keys, Log: slog.New(slog.DiscardHandler)}
	h := s.Handler()
	const base = `"asset_id":"a1","kind":"package","bucket":"uploads","key":"seller-a/app.zip"`
	for _, tt := range []struct {
		name, path, body, token string
		want                    int
	}{
		{"good", "/v1/scans", `{` + base + `,"seller_id":"seller-a"}`, "asset-center", http.StatusAccepted},
		{"duplicate seller_id", "/v1/scans", `{"seller_id":"seller-a",` + base + `,"seller_id":"seller-b"}`, "asset-center", http.StatusBadRequest},
		{"case-folded Seller_ID", "/v1/scans", `{` + base + `,"Seller_ID":"seller-b"}`, "asset-center", http.StatusBadRequest},
		{"case-folded next to the real one", "/v1/scans", `{` + base + `,"seller_id":"seller-a","SELLER_ID":"seller-b"}`, "asset-center", http.StatusBadRequest},
		{"unknown member", "/v1/scans", `{` + base + `,"seller_id":"seller-a","owner":"x"}`, "asset-center", http.StatusBadRequest},
		{"duplicate in a nested object", "/v1/scans", `{"asset_id":"a2","kind":"package","bucket":"uploads","key":"k.zip","seller_id":"s",` +
			`"declared_passwords":[{"account":"root","account":"admin","password":"x"}]}`, "asset-center", http.StatusBadRequest},
		{"trailing data", "/v1/scans", `{` + base + `,"seller_id":"seller-a"} {}`, "asset-center", http.StatusBadRequest},
		{"callback: duplicate url", "/v1/callbacks", `{"url":"https://a.example/","url":"https://b.example/"}`, "asset-center", http.StatusBadRequest},
		{"callback: case-folded URL", "/v1/callbacks", `{"URL":"https://a.example/"}`, "asset-center", http.StatusBadRequest},
		{"evaluate: case-folded Document", "/v1/policies/default-package/evaluate", `{"Document":"x"}`, "staff", http.StatusBadRequest},
	} {
		code, body := call(t, h, "POST", tt.path, tok[tt.token], []byte(tt.body))
		if code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
	}
	if len(enq.jobs) != 1 || enq.jobs[0].SellerID != "seller-a" {
		t.Errorf("jobs = %+v, want only the good one", enq.jobs)
	}
}

// countingTransport counts requests to object storage and adds latency.
type countingTransport struct {
	next    http.RoundTripper
	n       atomic.Int64
	latency time.Duration
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	time.Sleep(c.latency)
	return c.next.RoundTrip(r)
}

// TestNotFoundPathsDoTheSameWork: a seller reading another seller's scan
// and a scan that does not exist (or a malformed id) causes the same
// number of Redis commands and object storage requests, against the real
// storage.Store (miniredis and gofakes3). The medians of both paths are
// printed, not asserted (timing on a shared machine is noise).
func TestNotFoundPathsDoTheSameWork(t *testing.T) {
	t.Parallel()
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
	// seller-a's scans: one queued (record in Redis), one finished.
	queued := storage.Scan{ScanID: storage.NewScanID(), AssetID: "asset-a", SellerID: "seller-a", Kind: assetscan.KindPackage,
		Bucket: "uploads", Key: "seller-a/app.zip", Status: assetscan.StatusQueued, SubmittedAt: time.Now()}
	if _, _, err := store.Create(ctx, queued); err != nil {
		t.Fatal(err)
	}
	done := queued
	done.ScanID, done.AssetID = storage.NewScanID(), "asset-a2"
	if _, _, err := store.Create(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveVerdict(ctx, done, assetscan.Verdict{ScanID: done.ScanID, AssetID: done.AssetID, SellerID: "seller-a",
		Status: assetscan.StatusDone, Verdict: assetscan.Pass, CompletedAt: time.Now()}, assetscan.Findings{}); err != nil {
		t.Fatal(err)
	}
	keys, tok := testKeys(t)
	srv := &Server{Scans: store, Objects: obj, Keys: keys, Log: slog.New(slog.DiscardHandler)}
	h := srv.Handler()

	type cost struct{ redis, s3 int64 }
	measure := func(path string) (cost, int, string) {
		r0, s0 := m.CommandCount(), ct.n.Load()
		code, body := call(t, h, "GET", path, tok["seller-b"], nil)
		return cost{int64(m.CommandCount() - r0), ct.n.Load() - s0}, code, body
	}
	paths := map[string]string{
		"another seller's queued scan":   "/v1/scans/" + queued.ScanID,
		"another seller's finished scan": "/v1/scans/" + done.ScanID,
		"missing scan":                   "/v1/scans/" + storage.NewScanID(),
		"malformed id":                   "/v1/scans/nope",
		"another seller's asset":         "/v1/assets/asset-a/scan",
		"missing asset":                  "/v1/assets/asset-zzz/scan",
	}
	costs := map[string]cost{}
	bodies := map[string]string{}
	for name, p := range paths {
		c, code, body := measure(p)
		if code != http.StatusNotFound {
			t.Fatalf("%s: %d %s", name, code, body)
		}
		costs[name], bodies[name] = c, body
	}
	for _, pair := range [][2]string{
		{"another seller's queued scan", "missing scan"},
		{"another seller's finished scan", "missing scan"},
		{"malformed id", "missing scan"},
		{"another seller's asset", "missing asset"},
	} {
		a, b := costs[pair[0]], costs[pair[1]]
		if a != b {
			t.Errorf("%s costs %+v, %s costs %+v: the work differs", pair[0], a, pair[1], b)
		}
		if bodies[pair[0]] != bodies[pair[1]] {
			t.Errorf("bodies differ: %s vs %s", bodies[pair[0]], bodies[pair[1]])
		}
	}
	// Medians with 1 ms per object storage request (printed only).
	ct.latency = time.Millisecond
	median := func(path string) time.Duration {
		var ds []time.Duration
		for range 31 {
			t0 := time.Now()
			call(t, h, "GET", path, tok["seller-b"], nil)
			ds = append(ds, time.Since(t0))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	t.Logf("median of 31, 1 ms per S3 request: another seller's scan %s, missing scan %s; another seller's asset %s, missing asset %s",
		median(paths["another seller's queued scan"]), median(paths["missing scan"]),
		median(paths["another seller's asset"]), median(paths["missing asset"]))
}
