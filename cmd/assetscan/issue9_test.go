package main

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner/clamav"
)

// Issue 9's handed examples through `assetscan scan`: each once gave
// pass; each must fail, naming the rule and the path.
func TestIssue9HandedExamples(t *testing.T) {
	clamd := os.Getenv("ASSETSCAN_TEST_CLAMD")
	if clamd == "" {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			t.Skip("ASSETSCAN_SKIP_SERVICES=1")
		}
		t.Fatal("ASSETSCAN_TEST_CLAMD not set: run scripts/test.sh")
	}
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	aws := "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLQ\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEQ\n"
	utf16le := func(s string) []byte {
		var b bytes.Buffer
		for _, u := range utf16.Encode([]rune("\ufeff" + s)) {
			b.WriteByte(byte(u))
			b.WriteByte(byte(u >> 8))
		}
		return b.Bytes()
	}
	zip64 := filepath.Join(dir, "sample.zip64")
	if _, err := exec.LookPath("zip"); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "eicar.com"), clamav.EICAR(), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("zip", "-q", "-fz", zip64, "eicar.com")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("zip -fz: %v %s", err, out)
		}
	}
	zip64Bytes, _ := os.ReadFile(zip64)
	tests := []struct {
		name string
		pkg  []byte
		rule string
		path string
	}{
		{"concatenated zips", append(zipOf(t, map[string][]byte{"setup/install.com": clamav.EICAR()}),
			zipOf(t, map[string][]byte{"README.md": []byte("hello"), "run.sh": []byte("#!/bin/sh\necho hi\n")})...),
			"malware.detected", "setup/install.com"},
		{"zip64 not named like an archive", zipOf(t, map[string][]byte{"sample.zip64": zip64Bytes}), "malware.detected", "sample.zip64!/eicar.com"},
		{"UTF-16LE secrets", zipOf(t, map[string][]byte{"config/credentials.ini": utf16le(aws), "config/deploy_key.pem": utf16le(keyPEM)}),
			"secret.aws", "config/credentials.ini"},
		{"UTF-16LE private key", zipOf(t, map[string][]byte{"config/deploy_key.pem": utf16le(keyPEM)}),
			"secret.asymmetricprivatekey", "config/deploy_key.pem"},
		{"secrets inside a jar", zipOf(t, map[string][]byte{"lib/shop-core.jar": zipOf(t, map[string][]byte{
			"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\n"), "application.properties": []byte(aws), "keys/signing.pem": []byte(keyPEM)})}),
			"secret.aws", "lib/shop-core.jar!/application.properties"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "zip64 not named like an archive" && len(zip64Bytes) == 0 {
				t.Skip("zip is not installed")
			}
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".zip")
			if err := os.WriteFile(p, tt.pkg, 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"scan", "--clamd", clamd, "--clamd-conf", os.Getenv("ASSETSCAN_TEST_CLAMD_CONF"), "--format", "json", p}, &out, &errb)
			var v assetscan.Verdict
			if err := json.Unmarshal(out.Bytes(), &v); err != nil {
				t.Fatalf("exit %d, no verdict: %v\n%s", code, err, errb.String())
			}
			if code != exitFail || v.Verdict != assetscan.Fail {
				t.Fatalf("exit %d verdict %s (%s), want fail", code, v.Verdict, v.Reason)
			}
			for _, f := range v.Findings {
				if f.Rule == tt.rule && f.Action == assetscan.ActionFail && strings.HasSuffix(f.Path, tt.path) {
					return
				}
			}
			t.Errorf("no failing %s at %s; findings: %+v", tt.rule, tt.path, v.Findings)
		})
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for n, d := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
