package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/minio/minio-go/v7/pkg/tags"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	assetevents "github.com/assetscan/assetscan/events"
	"github.com/assetscan/assetscan/vulndb"
)

// eventsKey is the list of MinIO's Redis target (scripts/services.sh):
// database 0 of the test Redis, or the standalone events Redis of the
// cluster setup (testEnv.eventsRedisAddr).
const eventsKey = "assetscan:events"

// TestScanOnUpload: MinIO pushes upload events into Redis; a consumer that
// was down while sellers uploaded starts, and every upload is scanned once;
// a malformed event is set aside; verdicts are tagged on the objects.
func TestScanOnUpload(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	s.startWorker("ASSETSCAN_TAG_VERDICTS=true")
	ctx := context.Background()
	cfg := notification.Configuration{}
	q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "ASSETSCAN", "redis"))
	q.AddEvents(notification.ObjectCreatedAll)
	cfg.AddQueue(q)
	if err := s.s3.SetBucketNotification(ctx, s.uploads, cfg); err != nil {
		t.Fatal(err)
	}
	events := redis.NewClient(&redis.Options{Addr: testEnv.eventsRedisAddr})
	defer events.Close()

	// Consumer down: uploads pile up as events.
	keys := []string{"seller-1/asset-u1/app one(1).zip", "seller-1/asset-u2/app-two.tgz", "seller-2/asset-u3/app_3.tar"}
	datas := [][]byte{
		pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("1")}),
		pkg(t, archive.FormatTarGz, map[string][]byte{"app/package-lock.json": []byte(lodashLock)}),
		pkg(t, archive.FormatTar, map[string][]byte{"c.txt": []byte("3")}),
	}
	for i, k := range keys {
		if _, err := s.s3.PutObject(ctx, s.uploads, k, bytes.NewReader(datas[i]), int64(len(datas[i])),
			minio.PutObjectOptions{UserMetadata: map[string]string{"Asset-Id": strings.Split(k, "/")[1], "Seller-Id": strings.Split(k, "/")[0]}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := events.RPush(ctx, eventsKey, "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	// Consumer starts: a second API process with the events list.
	port := freePort(t)
	s.start("api-events", []string{"serve"}, "ASSETSCAN_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"ASSETSCAN_EVENTS_LIST="+eventsKey, "ASSETSCAN_EVENTS_IDS=metadata,key",
		"ASSETSCAN_EVENTS_REDIS_ADDR="+testEnv.eventsRedisAddr) // MinIO's notification target
	for _, k := range keys {
		asset := strings.Split(k, "/")[1]
		deadline := time.Now().Add(2 * time.Minute)
		for {
			code, b := s.get("/v1/assets/" + asset + "/scan")
			var v assetscan.Verdict
			_ = json.Unmarshal(b, &v)
			if code == http.StatusOK && v.Status == assetscan.StatusDone {
				if v.Object.Key != k {
					t.Errorf("%s: scanned key %q", asset, v.Object.Key)
				}
				want := assetscan.Pass
				if asset == "asset-u2" {
					want = assetscan.Fail
				}
				if asset == "asset-u1" {
					want = assetscan.Fail // the name "app one(1).zip" breaks the name rule
				}
				if v.Verdict != want {
					t.Errorf("%s: verdict %s (%s), want %s", asset, v.Verdict, ruleList(v), want)
				}
				tagDeadline := time.Now().Add(10 * time.Second)
				for {
					tg, err := s.s3.GetObjectTagging(ctx, s.uploads, k, minio.GetObjectTaggingOptions{})
					if err == nil && tg.ToMap()["assetscan-verdict"] == string(want) {
						break
					}
					if time.Now().After(tagDeadline) {
						t.Errorf("%s: object not tagged with its verdict: %v %v", asset, tg, err)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never scanned: %d %s", asset, code, b)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Each upload became exactly one scan.
	if ids := s.keys(s.prefix + "scan:*"); len(ids) != len(keys) {
		t.Errorf("%d scans for %d uploads", len(ids), len(keys))
	}
	dead := assetevents.SlotKey(eventsKey, "dead")
	if n, _ := events.LLen(ctx, dead).Result(); n < 1 {
		t.Error("malformed event not set aside")
	} else {
		events.LRem(ctx, dead, 0, "{not json")
	}
}

// TestTwoWorkersEachScanOnce: two worker processes share one queue; every
// scan runs exactly once.
func TestTwoWorkersEachScanOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	w1, w2 := s.startWorker(), s.startWorker()
	var ids []string
	for i := range 12 {
		key := fmt.Sprintf("s/app-%d.zip", i)
		s.upload(key, pkg(t, archive.FormatZip, map[string][]byte{"f.txt": []byte(strconv.Itoa(i))}))
		ids = append(ids, s.submit(fmt.Sprintf("a-%d", i), key))
	}
	for _, id := range ids {
		if v := s.wait(id, 3*time.Minute); v.Verdict != assetscan.Pass || v.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts", id, v.Verdict, v.Attempts)
		}
	}
	started := regexp.MustCompile(`"msg":"scan started","scan_id":"(scn_[0-9a-f]+)"`)
	runs := map[string]int{}
	perWorker := map[string]int{}
	for _, w := range []*proc{w1, w2} {
		b, _ := os.ReadFile(w.log)
		for _, m := range started.FindAllStringSubmatch(string(b), -1) {
			runs[m[1]]++
			perWorker[w.name]++
		}
	}
	for _, id := range ids {
		if runs[id] != 1 {
			t.Errorf("%s ran %d times", id, runs[id])
		}
	}
	t.Logf("scans per worker: %v", perWorker)
}

// TestVulnDBAcrossTheFleet: a DB older than the policy's max_age makes
// scans end in error (vulndb.stale); a DB published with `assetscan db
// publish` is picked up by the worker and named by the next verdict.
func TestVulnDBAcrossTheFleet(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	dbBucket := "vulndb-" + strconv.Itoa(s.redisDB) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
	s.startWorker("ASSETSCAN_DB_BUCKET="+dbBucket, "ASSETSCAN_DB_POLL_INTERVAL=1s")

	// A package that fails under the shipped DB (CVE-2019-10744); its
	// object is then deleted: a DB update must re-match its stored
	// inventory, not download it again.
	s.upload("s/lodash-app.zip", pkg(t, archive.FormatZip, map[string][]byte{"app/package-lock.json": []byte(lodashLock)}))
	lodashID := s.submit("a-lodash", "s/lodash-app.zip")
	if v := s.wait(lodashID, 2*time.Minute); v.Verdict != assetscan.Fail {
		t.Fatalf("lodash package: %s", v.Verdict)
	}
	if err := s.s3.RemoveObject(context.Background(), s.uploads, "s/lodash-app.zip", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// The fixture DB was built 2026-11-01: with max_age 24h it is stale.
	code, b := s.putPolicy("default-package", func(d string) string { return d + "\nvulndb:\n  max_age: 24h\n" })
	if code != http.StatusOK {
		t.Fatalf("PUT policy: %d %s", code, b)
	}
	s.upload("s/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")}))
	v := s.wait(s.submit("a-stale", "s/app.zip"), 2*time.Minute)
	if v.Verdict != assetscan.Error || !strings.Contains(v.Reason, "vulndb.stale") {
		t.Fatalf("stale DB: %s (%s)", v.Verdict, v.Reason)
	}

	// Publish a fresh DB in which the CVE-2019-10744 advisory was withdrawn.
	fx, err := vulndb.DefaultFixtures()
	if err != nil {
		t.Fatal(err)
	}
	kept := fx.Advisories[:0]
	for _, a := range fx.Advisories {
		if a.VulnerabilityID != "CVE-2019-10744" {
			kept = append(kept, a)
		}
	}
	fx.Advisories = kept
	fresh := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	dir := t.TempDir()
	if err := vulndb.Build(dir, fx, fresh); err != nil {
		t.Fatal(err)
	}
	pub := exec.Command(binPath, "db", "publish", dir)
	pub.Env = append(append([]string{}, s.baseEnv...), "ASSETSCAN_DB_BUCKET="+dbBucket)
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("db publish: %v\n%s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; ; i++ {
		key := fmt.Sprintf("s/app-%d.zip", i)
		s.upload(key, pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte(strconv.Itoa(i))}))
		v := s.wait(s.submit(fmt.Sprintf("a-fresh-%d", i), key), 2*time.Minute)
		if v.Verdict == assetscan.Pass && v.VulnDB != nil && v.VulnDB.UpdatedAt.Equal(fresh) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker never used the published DB: last verdict %s (%s), db %+v", v.Verdict, v.Reason, v.VulnDB)
		}
		time.Sleep(time.Second)
	}
	// The stored inventory of the lodash package was re-matched: its
	// verdict is superseded (only the MEDIUM CVE-2020-28500 is left).
	deadline = time.Now().Add(time.Minute)
	for {
		v := s.wait(lodashID, time.Second)
		if v.Revision == 2 {
			if v.Verdict != assetscan.Pass || v.Supersedes != lodashID+"@1" || v.VulnDB == nil || !v.VulnDB.UpdatedAt.Equal(fresh) {
				t.Fatalf("re-matched verdict: %s supersedes %q db %+v", v.Verdict, v.Supersedes, v.VulnDB)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DB update did not re-evaluate the stored inventory: revision %d", v.Revision)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestMetricsAndReadiness: /metrics exposes the named series; /readyz
// fails when Redis stops.
func TestMetricsAndReadiness(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{noWorker: true})
	hp := freePort(t)
	s.startWorker("ASSETSCAN_HEALTH_LISTEN=127.0.0.1:" + strconv.Itoa(hp))
	s.upload("s/app.zip", pkg(t, archive.FormatZip, map[string][]byte{"a.txt": []byte("x")}))
	s.wait(s.submit("a-m", "s/app.zip"), 2*time.Minute)

	code, b := s.do("GET", "/metrics", s.tokens["staff"], nil)
	if code != http.StatusOK {
		t.Fatalf("API /metrics: %d", code)
	}
	for _, series := range []string{"assetscan_scans_submitted_total", `assetscan_queue_size{queue="` + s.queuePrefix + `scan-small"`, "assetscan_queue_latency_seconds"} {
		if !strings.Contains(string(b), series) {
			t.Errorf("API /metrics lacks %s", series)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(hp) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var wb bytes.Buffer
	_, _ = wb.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, series := range []string{`assetscan_scans_completed_total{kind="package",verdict="pass"} 1`, "assetscan_check_duration_seconds_bucket",
		"assetscan_scan_duration_seconds", "assetscan_scanned_bytes_total", "assetscan_scan_retries_total", "assetscan_scan_errors_total",
		"assetscan_vulndb_age_seconds", "assetscan_malware_engine_healthy 1"} {
		if !strings.Contains(wb.String(), series) {
			t.Errorf("worker /metrics lacks %s", series)
		}
	}

	// A private Redis that we can stop.
	rport := freePort(t)
	rdir := t.TempDir()
	red := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(rport), "--save", "", "--appendonly", "no", "--dir", rdir)
	if err := red.Start(); err != nil {
		t.Fatal(err)
	}
	defer red.Process.Kill()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(rport)})
	defer rc.Close()
	for i := 0; rc.Ping(context.Background()).Err() != nil; i++ {
		if i > 100 {
			t.Fatal("private redis did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	aport := freePort(t)
	s.start("api-private-redis", []string{"serve"}, "ASSETSCAN_LISTEN=127.0.0.1:"+strconv.Itoa(aport),
		"ASSETSCAN_REDIS_ADDR=127.0.0.1:"+strconv.Itoa(rport))
	url := "http://127.0.0.1:" + strconv.Itoa(aport) + "/readyz"
	s.waitReady(url, 30*time.Second)
	_ = red.Process.Kill()
	_ = red.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body.String(), "redis") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz still ready with Redis stopped")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	_ = tags.NewTags
	_ = filepath.Join
)
