package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/auth"
	"github.com/assetscan/assetscan/storage"
)

// TestEmbeddedS3KeepsMultipartUploadsIntact: gofakes3 over plain HTTP
// stores multipart uploads with the aws-chunked framing in them; the
// embedded mode serves it over TLS, where a 20 MiB multipart upload must
// come back byte for byte.
func TestEmbeddedS3KeepsMultipartUploadsIntact(t *testing.T) {
	var cfg serviceConfig
	e, err := startEmbedded(t.Context(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	obj, err := storage.NewObjects(cfg.S3)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 20<<20)
	_, _ = rand.Read(data)
	_, err = obj.Client().PutObject(t.Context(), demoUploads, "big.bin", bytes.NewReader(data), -1,
		minio.PutObjectOptions{PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	got, err := obj.Get(t.Context(), demoUploads, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("multipart upload corrupted: %d bytes back, %d sent", len(got), len(data))
	}
}

// TestServeEmbedded runs the zero-setup demo: API, worker, in-process Redis
// and S3, and scans the demo packages through the API.
func TestServeEmbedded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	tok, hash := auth.NewKey()
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(keys, []byte("keys:\n  - name: ac\n    role: asset-center\n    key_sha256: "+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- cmdServe(ctx, []string{"--embedded", "--keys-file", keys, "--listen", "127.0.0.1:" + strconv.Itoa(port), "--log-level", "warn"}, &out, &errb)
	}()
	do := func(method, url string, body []byte) (*http.Response, error) {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		return http.DefaultClient.Do(req)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("embedded server not ready: %s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]assetscan.Outcome{
		"seller-1/clean-app.zip":      assetscan.Pass,
		"seller-1/vulnerable-app.zip": assetscan.Fail,
		"seller-1/bad name!.zip":      assetscan.Fail,
	}
	ids := map[string]string{}
	i := 0
	for key := range want {
		i++
		body, _ := json.Marshal(map[string]string{"asset_id": "a" + strconv.Itoa(i), "seller_id": "seller-1", "kind": "package", "bucket": demoUploads, "key": key})
		resp, err := do("POST", base+"/v1/scans", body)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			ScanID string `json:"scan_id"`
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &r) != nil {
			t.Fatalf("submit %s: %d %s", key, resp.StatusCode, b)
		}
		ids[key] = r.ScanID
	}
	for key, id := range ids {
		deadline := time.Now().Add(90 * time.Second)
		for {
			resp, err := do("GET", base+"/v1/scans/"+id, nil)
			if err != nil {
				t.Fatal(err)
			}
			var v assetscan.Verdict
			_ = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if v.Status == assetscan.StatusDone {
				if v.Verdict != want[key] {
					t.Errorf("%s: verdict %s (%s), want %s", key, v.Verdict, v.Reason, want[key])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not done; stderr:\n%s", key, errb.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Error("serve did not stop")
	}
	if !bytes.Contains(out.Bytes(), []byte("curl")) {
		t.Errorf("no usage help printed: %s", out.String())
	}
	// Without credentials nothing but health answers.
	resp, err := http.Get(base + "/v1/scans/" + ids["seller-1/clean-app.zip"])
	if err == nil {
		resp.Body.Close()
		t.Errorf("server still answering after stop: %d", resp.StatusCode)
	}
}
