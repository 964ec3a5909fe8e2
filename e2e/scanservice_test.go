package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/scanner/clamav"
)

// TestCLIAndWorkerAgree: `assetscan scan` and the worker run one scan
// service, so they give the same verdict (bar ids, timestamps and the
// object's location) for every shipped package.
func TestCLIAndWorkerAgree(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "packages", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no shipped packages: %v", err)
	}
	for _, p := range paths {
		name := filepath.Base(p)
		s.uploadFile("seller-1/"+name, p)
		worker := s.wait(s.submit("agree-"+name, "seller-1/"+name), 2*time.Minute)
		cmd := exec.Command(binPath, "scan", "--format", "json", "--db-dir", dbDir, "--clamd", testEnv.clamd,
			"--clamd-conf", os.Getenv("ASSETSCAN_TEST_CLAMD_CONF"), p)
		cmd.Env = append(os.Environ(), "TMPDIR="+s.dir)
		out, err := cmd.Output()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("%s: assetscan scan: %v", name, err)
		}
		var cli assetscan.Verdict
		if err := json.Unmarshal(out, &cli); err != nil {
			t.Fatalf("%s: decode CLI verdict: %v\n%s", name, err, out)
		}
		a, b := comparable(worker), comparable(cli)
		if !reflect.DeepEqual(a, b) {
			aj, _ := json.MarshalIndent(a, "", " ")
			bj, _ := json.MarshalIndent(b, "", " ")
			t.Errorf("%s: worker and CLI verdicts differ\nworker: %s\ncli:    %s", name, aj, bj)
		}
	}
}

// comparable drops what differs between two runs of the same scan by
// design: ids, times, where the object lives, attempts, reuse.
func comparable(v assetscan.Verdict) assetscan.Verdict {
	v.ScanID, v.AssetID, v.SellerID = "", "", ""
	v.SubmittedAt, v.CompletedAt = time.Time{}, time.Time{}
	v.Object.Bucket, v.Object.Key, v.Object.VersionID = "", "", ""
	v.Attempts, v.Revision, v.Reused = 0, 0, false
	if v.VulnDB != nil {
		db := *v.VulnDB
		db.DownloadedAt = time.Time{}
		v.VulnDB = &db
	}
	return v
}

// TestObjectSwappedAfterSubmission (issue 10 item 4): bytes written under
// the key after the submission are never scanned in its name, and the new
// object never carries a verdict tag of the old one.
func TestObjectSwappedAfterSubmission(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	clean := pkg(t, archive.FormatTar, map[string][]byte{"app/readme.txt": []byte("a clean package")})
	s.upload("seller-1/swap.tar", clean)
	id := s.submit("a-swap", "seller-1/swap.tar")
	evil := pkg(t, archive.FormatTar, map[string][]byte{"app/install.com": clamav.EICAR()})
	s.upload("seller-1/swap.tar", evil) // an unversioned bucket: same key, new bytes
	s.startWorker("ASSETSCAN_TAG_VERDICTS=true")
	v := s.wait(id, 2*time.Minute)
	if v.Verdict != assetscan.Error || !strings.Contains(v.Reason, "changed since submission") {
		t.Fatalf("verdict %s %q, want error: object changed", v.Verdict, v.Reason)
	}
	tags, err := s.s3.GetObjectTagging(context.Background(), s.uploads, "seller-1/swap.tar", minio.GetObjectTaggingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tags.ToMap()["assetscan-verdict"]; got == string(assetscan.Pass) {
		t.Errorf("the swapped object is tagged %q", got)
	}
	// Resubmitted, the new bytes are scanned for what they are.
	v2 := s.wait(s.submit("a-swap", "seller-1/swap.tar"), 2*time.Minute)
	if v2.Verdict != assetscan.Fail || !hasRule(v2, "malware.detected") {
		t.Errorf("resubmission: %s %s", v2.Verdict, ruleList(v2))
	}
}

// TestDeclaredPasswordIsANewSubmission (issue 10 item 2): the same asset
// and object with a declared weak password is scanned and judged anew.
func TestDeclaredPasswordIsANewSubmission(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	img := dockerSave(t, alpineBase("", "root:*:19000:0:99999:7:::\n"))
	s.upload("seller-1/img.tar", img)
	image := func(m map[string]any) { m["kind"] = "container-image" }
	first := s.wait(s.submit("a-decl", "seller-1/img.tar", image), 2*time.Minute)
	code, r := s.submitRaw(map[string]any{"asset_id": "a-decl", "seller_id": "seller-1", "kind": "container-image",
		"bucket": s.uploads, "key": "seller-1/img.tar",
		"declared_passwords": []map[string]string{{"account": "root", "password": "root"}}})
	if code != 202 || r.Existing || r.ScanID == first.ScanID {
		t.Fatalf("resubmission with a declared password: %d %+v, want a new scan", code, r)
	}
	v := s.wait(r.ScanID, 2*time.Minute)
	if v.Verdict != assetscan.Fail || !hasRule(v, "account.declared_password_weak") {
		t.Errorf("declared root/root: %s %s", v.Verdict, ruleList(v))
	}
}
