package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/callbacks"
)

type policyDoc struct {
	ID       string `json:"id"`
	Version  int    `json:"version"`
	Document string `json:"document"`
}

func (s *stack) policy(id string) policyDoc {
	s.t.Helper()
	code, b := s.do("GET", "/v1/policies/"+id, s.tokens["staff"], nil)
	if code != http.StatusOK {
		s.t.Fatalf("GET policy: %d %s", code, b)
	}
	var p policyDoc
	_ = json.Unmarshal(b, &p)
	return p
}

// putPolicy replaces policy id with edit applied to its document and the
// version bumped.
func (s *stack) putPolicy(id string, edit func(string) string) (int, []byte) {
	s.t.Helper()
	p := s.policy(id)
	doc := strings.Replace(p.Document, "version: "+strconv.Itoa(p.Version), "version: "+strconv.Itoa(p.Version+1), 1)
	return s.do("PUT", "/v1/policies/"+id, s.tokens["staff"], []byte(edit(doc)), "If-Match", strconv.Itoa(p.Version))
}

// TestWhoMaySeeWhat: credentials, roles, sellers kept apart.
func TestWhoMaySeeWhat(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upload("s1/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")}))
	id := s.submit("a-s1", "s1/app.zip") // seller-1's asset
	s.wait(id, 2*time.Minute)

	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"no credentials", "GET", "/v1/scans/" + id, "", http.StatusUnauthorized},
		{"wrong key", "GET", "/v1/scans/" + id, "ask_wrong", http.StatusUnauthorized},
		{"health without credentials", "GET", "/healthz", "", http.StatusOK},
		{"openapi needs credentials", "GET", "/openapi.json", "", http.StatusUnauthorized},
		{"own seller reads", "GET", "/v1/scans/" + id, s.tokens["seller-1"], http.StatusOK},
		{"other seller gets 404, not 403", "GET", "/v1/scans/" + id, s.tokens["seller-2"], http.StatusNotFound},
		{"other seller, latest of asset", "GET", "/v1/assets/a-s1/scan", s.tokens["seller-2"], http.StatusNotFound},
		{"staff reads all", "GET", "/v1/scans/" + id, s.tokens["staff"], http.StatusOK},
		{"seller cannot submit", "POST", "/v1/scans", s.tokens["seller-1"], http.StatusForbidden},
		{"seller cannot read policies", "GET", "/v1/policies", s.tokens["seller-1"], http.StatusForbidden},
		{"asset center cannot change policies", "PUT", "/v1/policies/default-package", s.tokens["asset-center"], http.StatusForbidden},
		{"seller cannot see the queue UI", "GET", "/queues/", s.tokens["seller-1"], http.StatusForbidden},
		{"staff sees the queue UI", "GET", "/queues/", s.tokens["staff"], http.StatusOK},
	}
	for _, tt := range tests {
		code, b := s.do(tt.method, tt.path, tt.token, nil)
		if code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, b, tt.want)
		}
	}
	// The 404 for another seller's scan is byte-identical to a missing one.
	_, other := s.do("GET", "/v1/scans/"+id, s.tokens["seller-2"], nil)
	_, missing := s.do("GET", "/v1/scans/scn_0000000000000000000000000", s.tokens["seller-2"], nil)
	if string(other) != string(missing) {
		t.Errorf("probe-able 404: %s vs %s", other, missing)
	}
}

// TestPolicyChangeReevaluatesWithoutDownload: a policy change re-derives
// the latest verdicts from stored findings (the object is deleted first:
// any download would fail), records a superseding verdict, and tells the
// asset center; the what-if before it saves nothing.
func TestPolicyChangeReevaluatesWithoutDownload(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})

	var mu sync.Mutex
	var got []callbacks.Message
	var secret string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := callbacks.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("callback signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m callbacks.Message
		_ = json.Unmarshal(body, &m)
		got = append(got, m)
	}))
	defer receiver.Close()
	code, b := s.do("POST", "/v1/callbacks", s.tokens["asset-center"], []byte(`{"url":"`+receiver.URL+`/hook"}`))
	if code != http.StatusCreated {
		t.Fatalf("register callback: %d %s", code, b)
	}
	var sub callbacks.Subscriber
	_ = json.Unmarshal(b, &sub)
	mu.Lock()
	secret = sub.Secret
	mu.Unlock()

	s.upload("s1/lodash-app.zip", pkg(t, archive.FormatZip, map[string][]byte{"app/package-lock.json": []byte(lodashLock)}))
	id := s.submit("a-lodash", "s1/lodash-app.zip")
	v1 := s.wait(id, 2*time.Minute)
	if v1.Verdict != assetscan.Fail {
		t.Fatalf("first verdict %s", v1.Verdict)
	}
	if err := s.s3.RemoveObject(context.Background(), s.uploads, "s1/lodash-app.zip", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	allow := func(doc string) string {
		return doc + `
allow:
  - id: lodash-backport
    vulnerability: CVE-2019-10744
    package: lodash
    seller: seller-1
    reason: fix backported by the seller, reviewed in ticket 42
    added_by: alice
    expires: 2099-01-01T00:00:00Z
`
	}
	// What-if first: the change is predicted, nothing is saved.
	draft := allow(strings.Replace(s.policy("default-package").Document, "version: 1", "version: 2", 1))
	body, _ := json.Marshal(map[string]any{"document": draft, "scan_ids": []string{id}})
	code, b = s.do("POST", "/v1/policies/default-package/evaluate", s.tokens["staff"], body)
	if code != http.StatusOK || !strings.Contains(string(b), `"to": "pass"`) || !strings.Contains(string(b), id) {
		t.Fatalf("what-if: %d %s", code, b)
	}
	// The CLI equivalent.
	draftFile := filepath.Join(t.TempDir(), "draft.yaml")
	if err := os.WriteFile(draftFile, []byte(draft), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binPath, "policy", "test", "--api", s.apiURL, "--key", s.tokens["staff"], "--scan", id, draftFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 verdicts evaluated, 1 would change") || !strings.Contains(string(out), id) {
		t.Fatalf("assetscan policy test: %v\n%s", err, out)
	}
	if v := s.wait(id, time.Second); v.Revision != 1 {
		t.Fatalf("what-if saved a verdict: revision %d", v.Revision)
	}

	// Stale If-Match is refused.
	code, _ = s.do("PUT", "/v1/policies/default-package", s.tokens["staff"], []byte(draft), "If-Match", "0")
	if code != http.StatusConflict {
		t.Fatalf("stale If-Match: %d", code)
	}
	// A malformed policy is refused with the field and line.
	code, b = s.putPolicy("default-package", func(d string) string { return strings.Replace(d, "cvss_threshold: 7.0", "cvss_threshold: 70", 1) })
	if code != http.StatusBadRequest || !strings.Contains(string(b), "cvss_threshold") || !strings.Contains(string(b), "line") {
		t.Fatalf("bad policy: %d %s", code, b)
	}
	code, b = s.putPolicy("default-package", allow)
	if code != http.StatusOK || !strings.Contains(string(b), id) {
		t.Fatalf("PUT policy: %d %s", code, b)
	}
	v2 := s.wait(id, time.Second)
	if v2.Verdict != assetscan.Pass || v2.Revision != 2 || v2.Supersedes != id+"@1" || v2.Policy.Version != 2 {
		t.Fatalf("superseding verdict: %s rev %d supersedes %q policy v%d", v2.Verdict, v2.Revision, v2.Supersedes, v2.Policy.Version)
	}
	if f := findVuln(v2, "CVE-2019-10744"); f == nil || f.Action != assetscan.ActionAllowed || f.AllowedBy == nil || f.AllowedBy.ID != "lodash-backport" {
		t.Errorf("allowed finding not marked: %+v", f)
	}
	// History keeps both versions with author and diff.
	code, b = s.do("GET", "/v1/policies/default-package/history", s.tokens["staff"], nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"author": "staff"`) || !strings.Contains(string(b), "lodash-backport") {
		t.Errorf("history: %d %s", code, b)
	}
	// The asset center heard of both verdicts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		events := map[string]bool{}
		for _, m := range got {
			events[m.Event+":"+string(m.Verdict.Verdict)] = true
		}
		mu.Unlock()
		if events["verdict.final:fail"] && events["verdict.changed:pass"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callbacks received: %v", events)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSameContentIsNotRescanned: the same bytes under another asset are
// judged from the stored findings.
func TestSameContentIsNotRescanned(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	data := pkg(t, archive.FormatZip, map[string][]byte{"app/package-lock.json": []byte(lodashLock)})
	s.upload("s1/dup-app.zip", data)
	first := s.wait(s.submit("a-dup-1", "s1/dup-app.zip"), 2*time.Minute)
	s.upload("s2/dup-app.zip", data)
	second := s.wait(s.submit("a-dup-2", "s2/dup-app.zip"), 2*time.Minute)
	if !second.Reused || second.ReuseKey != first.ReuseKey || second.Verdict != first.Verdict || !hasRule(second, "vulnerability.cvss") {
		t.Fatalf("second scan: reused %v key %q (first %q) verdict %s rules %s", second.Reused, second.ReuseKey, first.ReuseKey, second.Verdict, ruleList(second))
	}
	// The reused verdict names nothing of the first scan (issue 10 item 7).
	doc, _ := json.Marshal(second)
	if strings.Contains(string(doc), first.ScanID) {
		t.Errorf("the reused verdict names the earlier scan %s", first.ScanID)
	}
}
