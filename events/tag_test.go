package events

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
)

func objectTags(t *testing.T, bucket, key, versionID string) map[string]string {
	t.Helper()
	tg, err := svc.s3.GetObjectTagging(t.Context(), bucket, key, minio.GetObjectTaggingOptions{VersionID: versionID})
	if err != nil {
		t.Fatal(err)
	}
	return tg.ToMap()
}

func TestTagVerdict(t *testing.T) {
	needServices(t)
	ctx := t.Context()
	b := newBucket(t, true)
	key := "s/a/tagged.zip"
	body := "v1"
	v1, err := svc.s3.PutObject(ctx, b, key, strings.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{UserTags: map[string]string{"owner": "seller-1", "stage": "upload"}})
	if err != nil {
		t.Fatal(err)
	}
	v2 := put(t, b, key, nil)

	if err := TagVerdict(ctx, svc.s3, b, key, v1.VersionID, assetscan.Pass); err != nil {
		t.Fatal(err)
	}
	if got, want := objectTags(t, b, key, v1.VersionID), map[string]string{"owner": "seller-1", "stage": "upload", VerdictTag: "pass"}; !maps.Equal(got, want) {
		t.Errorf("v1 tags %v, want %v (merged)", got, want)
	}
	if got := objectTags(t, b, key, v2.VersionID); len(got) != 0 {
		t.Errorf("v2 tags %v, want none (only v1 was tagged)", got)
	}
	if err := TagVerdict(ctx, svc.s3, b, key, v1.VersionID, assetscan.Fail); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, b, key, v1.VersionID); got[VerdictTag] != "fail" || got["owner"] != "seller-1" || len(got) != 3 {
		t.Errorf("v1 tags %v after fail", got)
	}
	// "" tags the latest version.
	if err := TagVerdict(ctx, svc.s3, b, key, "", assetscan.Error); err != nil {
		t.Fatal(err)
	}
	if got := objectTags(t, b, key, v2.VersionID); !maps.Equal(got, map[string]string{VerdictTag: "error"}) {
		t.Errorf("latest tags %v", got)
	}
	if err := TagVerdict(ctx, svc.s3, b, key, "", "maybe"); err == nil {
		t.Error("TagVerdict accepted verdict \"maybe\"")
	}
	if err := TagVerdict(ctx, svc.s3, b, "s/a/missing.zip", "", assetscan.Pass); err == nil {
		t.Error("TagVerdict of a missing object succeeded")
	}

	// TagPending never replaces a verdict.
	if wrote, err := TagPending(ctx, svc.s3, b, key, v1.VersionID); err != nil || wrote {
		t.Errorf("TagPending on a judged object: wrote=%v err=%v", wrote, err)
	}
	k2 := "s/a/new.zip"
	put(t, b, k2, nil)
	if wrote, err := TagPending(ctx, svc.s3, b, k2, ""); err != nil || !wrote {
		t.Errorf("TagPending on a new object: wrote=%v err=%v", wrote, err)
	}
	if got := objectTags(t, b, k2, ""); got[VerdictTag] != "pending" {
		t.Errorf("tags %v", got)
	}
}

// docPolicy extracts the example bucket policy from the package
// documentation (doc.go), the text the README copies.
func docPolicy(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	for _, l := range strings.Split(string(src), "\n") {
		l = strings.TrimPrefix(l, "//")
		if strings.TrimSpace(l) == "{" && strings.HasPrefix(l, "\t{") {
			in = true
		}
		if in {
			lines = append(lines, strings.TrimPrefix(l, "\t"))
			if strings.HasPrefix(l, "\t}") {
				break
			}
		}
	}
	p := strings.Join(lines, "\n")
	if !json.Valid([]byte(p)) {
		t.Fatalf("policy in doc.go is not valid JSON:\n%s", p)
	}
	return p
}

// TestVerdictPolicy applies the documented policy to a bucket and checks,
// with anonymous requests (the ones MinIO judges by bucket policy), that
// only objects tagged pass can be downloaded.
func TestVerdictPolicy(t *testing.T) {
	needServices(t)
	ctx := t.Context()
	b := newBucket(t, false)
	pol := strings.ReplaceAll(docPolicy(t), "arn:aws:s3:::uploads/", "arn:aws:s3:::"+b+"/")
	var doc map[string]any
	if err := json.Unmarshal([]byte(pol), &doc); err != nil {
		t.Fatal(err)
	}
	// The documented policy only denies; allow anonymous reads so that the
	// deny is the only thing deciding.
	doc["Statement"] = append(doc["Statement"].([]any), map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": []string{"*"}},
		"Action": []string{"s3:GetObject"}, "Resource": []string{"arn:aws:s3:::" + b + "/*"},
	})
	full, _ := json.Marshal(doc)
	if err := svc.s3.SetBucketPolicy(ctx, b, string(full)); err != nil {
		t.Fatalf("MinIO refused the documented policy: %v\n%s", err, full)
	}
	for _, k := range []string{"pass", "fail", "error", "pending", "untagged"} {
		put(t, b, k, nil)
		if k == "pending" {
			if _, err := TagPending(ctx, svc.s3, b, k, ""); err != nil {
				t.Fatal(err)
			}
		} else if k != "untagged" {
			if err := TagVerdict(ctx, svc.s3, b, k, "", assetscan.Outcome(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	get := func(k string, hdr map[string]string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc.s3.EndpointURL().String()+"/"+b+"/"+k, nil)
		for h, v := range hdr {
			req.Header.Set(h, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for k, want := range map[string]int{"pass": 200, "fail": 403, "error": 403, "pending": 403, "untagged": 403} {
		if got := get(k, nil); got != want {
			t.Errorf("anonymous GET %s: %d, want %d", k, got, want)
		}
	}
	// The documented MinIO caveat: an untagged object is judged by the
	// request's own X-Amz-Tagging header; a tagged one is not.
	forged := map[string]string{"X-Amz-Tagging": "assetscan-verdict=pass"}
	if got := get("pending", forged); got != 403 {
		t.Errorf("forged header on a pending object: %d, want 403", got)
	}
	t.Logf("forged header on an untagged object: %d (MinIO lets it through: tag uploads pending)", get("untagged", forged))
}
