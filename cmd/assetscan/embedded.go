package main

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"

	"github.com/alicebob/miniredis/v2"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan/storage"
)

// embeddedServices are the in-process stand-ins of `serve --embedded`: a
// miniredis and a gofakes3 S3 served over TLS (over plain HTTP gofakes3
// stores multipart uploads with the aws-chunked framing still in them).
// They are for the zero-setup demo only; tests of the pipeline use a real
// Redis and a real MinIO.
type embeddedServices struct {
	tokens map[string]string // demo API keys by name
	dir    string
	redis  *miniredis.Miniredis
	s3     *httptest.Server
}

const (
	demoUploads = "uploads"
	demoKey     = "demo-access"
	demoSecret  = "demo-secret-key"
)

func startEmbedded(ctx context.Context, cfg *serviceConfig) (*embeddedServices, error) {
	dir, err := os.MkdirTemp("", "assetscan-embedded-")
	if err != nil {
		return nil, err
	}
	e := &embeddedServices{dir: dir}
	e.redis = miniredis.NewMiniRedis()
	if err := e.redis.Start(); err != nil {
		e.Close()
		return nil, fmt.Errorf("miniredis: %w", err)
	}
	faker := gofakes3.New(s3mem.New())
	e.s3 = httptest.NewUnstartedServer(faker.Server())
	e.s3.StartTLS()

	cfg.RedisAddr = e.redis.Addr()
	cfg.RedisPassword = ""
	cfg.S3 = storage.S3Config{
		Endpoint: e.s3.Listener.Addr().String(), AccessKey: demoKey, SecretKey: demoSecret,
		Secure: true, Transport: e.s3.Client().Transport,
	}
	cfg.WorkDir = dir
	if cfg.MaxRetry > 2 {
		cfg.MaxRetry = 2
	}
	obj, err := storage.NewObjects(cfg.S3)
	if err != nil {
		e.Close()
		return nil, err
	}
	if err := obj.EnsureBucket(ctx, demoUploads); err != nil {
		e.Close()
		return nil, err
	}
	for key, files := range demoPackages() {
		data, err := zipBytes(files)
		if err != nil {
			e.Close()
			return nil, err
		}
		if _, err := obj.Client().PutObject(ctx, demoUploads, key, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: "application/zip"}); err != nil {
			e.Close()
			return nil, fmt.Errorf("upload demo package: %w", err)
		}
	}
	return e, nil
}

func (e *embeddedServices) Close() {
	if e.s3 != nil {
		e.s3.Close()
	}
	if e.redis != nil {
		e.redis.Close()
	}
	_ = os.RemoveAll(e.dir)
}

func (e *embeddedServices) printHelp(w io.Writer, apiAddr string) {
	fmt.Fprintf(w, `assetscan embedded demo: API on http://%[1]s, in-process Redis and S3, one in-process worker.
Demo packages in bucket %[2]q: seller-1/clean-app.zip, seller-1/vulnerable-app.zip, seller-1/bad name!.zip
Throwaway API keys: asset center %[3]s, seller-1 %[4]s, security staff %[5]s

  curl -s -H 'Authorization: Bearer %[3]s' -XPOST http://%[1]s/v1/scans -d '{"asset_id":"a-1","seller_id":"seller-1","kind":"package","bucket":"%[2]s","key":"seller-1/vulnerable-app.zip"}'
  curl -s -H 'Authorization: Bearer %[4]s' http://%[1]s/v1/assets/a-1/scan
  curl -s -H 'Authorization: Bearer %[5]s' http://%[1]s/v1/policies

Stop with Ctrl-C.
`, apiAddr, demoUploads, e.tokens["asset-center"], e.tokens["seller-1"], e.tokens["staff"])
}

func demoPackages() map[string]map[string]string {
	lock := `{
  "name": "demo-app",
  "version": "1.0.0",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "lodash": {
      "version": "4.17.11",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.11.tgz",
      "integrity": "sha512-cQKh8igo5QUhZ7lg38DYWAxMvjSAKG0A8wGSVimP07SIUEK2UO+arSRKbRZWtelMtN5V0Hkwh5ryOto/SshYIg=="
    }
  }
}
`
	return map[string]map[string]string{
		"seller-1/clean-app.zip": {
			"clean-app/README.txt":   "a clean demo package\n",
			"clean-app/package.json": `{"name":"clean-app","version":"1.0.0"}` + "\n",
		},
		"seller-1/vulnerable-app.zip": {
			"demo-app/package.json":      `{"name":"demo-app","version":"1.0.0","dependencies":{"lodash":"4.17.11"}}` + "\n",
			"demo-app/package-lock.json": lock,
		},
		"seller-1/bad name!.zip": {
			"x/README.txt": "name breaks the rule\n",
		},
	}
}

func zipBytes(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
