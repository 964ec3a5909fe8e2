package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan/scanner/clamav"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// isEICAR says whether package i of a run holds the EICAR test file: one
// in every `every` packages (none when every <= 0).
func isEICAR(i, every int) bool { return every > 0 && i%every == every/2 }

// packageKey is package i's object key; even packages are .zip, odd ones
// .tar.gz. The first segment is the seller id, so a "{seller_id}/" key
// layout binding accepts it.
func packageKey(seller string, i int) string {
	if i%2 == 0 {
		return fmt.Sprintf("%s/soak-pkg-%05d.zip", seller, i)
	}
	return fmt.Sprintf("%s/soak-pkg-%05d.tar.gz", seller, i)
}

// buildPackage returns package i: a small application tree unique to i (so
// no scan reuses another's verdict), plus the EICAR test file when eicar.
func buildPackage(i int, eicar bool) ([]byte, error) {
	rng := rand.New(rand.NewPCG(uint64(i), 0x50a4))
	filler := make([]byte, 1024+rng.IntN(7*1024))
	for j := range filler {
		filler[j] = byte('a' + rng.IntN(26))
	}
	files := []struct {
		name string
		data []byte
	}{
		{"app/README.txt", fmt.Appendf(nil, "soak package %d\n", i)},
		{"app/main.py", fmt.Appendf(nil, "print('soak package %d')\n", i)},
		{"app/data/filler.txt", filler},
	}
	if eicar {
		files = append(files, struct {
			name string
			data []byte
		}{"app/bin/tool.com", clamav.EICAR()})
	}
	var buf bytes.Buffer
	if i%2 == 0 {
		zw := zip.NewWriter(&buf)
		for _, f := range files {
			w, err := zw.Create(f.name)
			if err != nil {
				return nil, err
			}
			if _, err := w.Write(f.data); err != nil {
				return nil, err
			}
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg,
			ModTime: time.Unix(1700000000, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func cmdSubmit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	api := fs.String("api", "", "API base URL")
	tokenFile := fs.String("token", "", "file holding the asset center's API key")
	uploads := fs.String("uploads", "soak-uploads", "bucket to upload to")
	seller := fs.String("seller", "seller-1", "seller id of the packages")
	n := fs.Int("n", 500, "packages to submit")
	every := fs.Int("eicar-every", 10, "one package in this many holds EICAR")
	interval := fs.Duration("interval", 200*time.Millisecond, "pace: package i is submitted no earlier than start + i*interval")
	giveUp := fs.Duration("give-up", 4*time.Minute, "stop retrying one package's upload or submission after this long")
	manifest := fs.String("manifest", "", "JSON-lines file to append the scans to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	c, err := s3Client()
	if err != nil {
		return err
	}
	mf, err := os.OpenFile(*manifest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	defer mf.Close()
	cl := &client{base: *api, token: tok, http: &http.Client{Timeout: 15 * time.Second}}
	start := time.Now()
	var rejected int
	for i := range *n {
		if d := time.Until(start.Add(time.Duration(i) * *interval)); d > 0 {
			time.Sleep(d)
		}
		e := manifestEntry{Index: i, Key: packageKey(*seller, i), EICAR: isEICAR(i, *every)}
		data, err := buildPackage(i, e.EICAR)
		if err != nil {
			return fmt.Errorf("package %d: %w", i, err)
		}
		if err := retry(ctx, *giveUp, func() (bool, error) {
			_, err := c.PutObject(ctx, *uploads, e.Key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
			return false, err
		}); err != nil {
			e.Rejected = "upload: " + err.Error()
		} else {
			body, _ := json.Marshal(map[string]any{"asset_id": fmt.Sprintf("soak-asset-%05d", i), "seller_id": *seller,
				"kind": "package", "bucket": *uploads, "key": e.Key})
			err = retry(ctx, *giveUp, func() (bool, error) {
				e.Attempts++
				code, resp, err := cl.do(ctx, "POST", "/v1/scans", body)
				switch {
				case err != nil:
					return false, err
				case code == http.StatusAccepted || code == http.StatusOK:
					var r struct {
						ScanID   string `json:"scan_id"`
						Existing bool   `json:"existing"`
					}
					if err := json.Unmarshal(resp, &r); err != nil || r.ScanID == "" {
						return true, fmt.Errorf("submit answered %d without a scan id: %s", code, resp)
					}
					e.ScanID, e.Existing = r.ScanID, r.Existing
					return false, nil
				case code == http.StatusTooManyRequests || code >= 500:
					return false, fmt.Errorf("submit: %d %s", code, bytes.TrimSpace(resp))
				default:
					return true, fmt.Errorf("submit: %d %s", code, bytes.TrimSpace(resp))
				}
			})
			if err != nil {
				e.Rejected = err.Error()
			}
		}
		if e.Rejected != "" {
			rejected++
			fmt.Fprintf(stdout, "soak: package %d not submitted: %s\n", i, e.Rejected)
		}
		line, _ := json.Marshal(e)
		if _, err := mf.Write(append(line, '\n')); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if (i+1)%50 == 0 || i+1 == *n {
			fmt.Fprintf(stdout, "soak: submitted %d/%d (%s)\n", i+1, *n, time.Since(start).Round(time.Second))
		}
	}
	if rejected > 0 {
		fmt.Fprintf(stdout, "soak: %d packages were not submitted\n", rejected)
	}
	return nil
}

// retry runs f until it succeeds, says its error is permanent, or giveUp
// passes; the delay grows from 250 ms to 4 s.
func retry(ctx context.Context, giveUp time.Duration, f func() (permanent bool, err error)) error {
	deadline := time.Now().Add(giveUp)
	delay := 250 * time.Millisecond
	for {
		permanent, err := f()
		if err == nil || permanent || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 4*time.Second)
	}
}

// client calls the API with the asset center's key.
type client struct {
	base, token string
	http        *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, b, err
}
