package trivy

import (
	"archive/zip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// The AWS key pair of the handed example (a documentation key; it
// protects nothing), as PowerShell writes an ini file: CRLF.
const awsCredentials = "[default]\r\naws_access_key_id = AKIA" + "ZXCVBNMASDFGHJKL\r\naws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\r\nregion = eu-west-1\r\n"

// encodings the tests write text in.
var encodings = map[string]encoding.Encoding{
	"utf-16le-bom": unicode.UTF16(unicode.LittleEndian, unicode.UseBOM),
	"utf-16le":     unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM),
	"utf-16be-bom": unicode.UTF16(unicode.BigEndian, unicode.UseBOM),
	"utf-16be":     unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf-32le-bom": utf32.UTF32(utf32.LittleEndian, utf32.UseBOM),
	"utf-32le":     utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM),
	"utf-32be":     utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM),
}

func encodeAs(t *testing.T, enc, s string) string {
	t.Helper()
	if enc == "utf-8" {
		return s
	}
	e, ok := encodings[enc]
	if !ok {
		t.Fatalf("no encoding %q", enc)
	}
	out, err := e.NewEncoder().String(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// secretFacts is what a seller is told about each secret finding:
// path:line rule category; sorted.
func secretFacts(res scanner.Result) []string {
	var out []string
	for _, f := range res.Findings {
		if f.Check == assetscan.CheckSecret && f.Secret != nil {
			out = append(out, fmt.Sprintf("%s:%d %s %s %s", f.Path, f.Secret.Line, f.Secret.RuleID, f.Secret.Category, f.Secret.Severity))
		}
	}
	slices.Sort(out)
	return out
}

// TestSecretsInWideText: a key in UTF-16/32 text is found at the original
// path and line, exactly as the same text in UTF-8 is.
func TestSecretsInWideText(t *testing.T) {
	t.Parallel()
	// Key on line 7, after CRLF lines, some blank.
	line7 := "; deploy settings\r\n\r\n[profile ci]\r\nregion = eu-west-1\r\n\r\n# the key\r\naws_access_key_id = AKIA" +
		"ZXCVBNMASDFGHJKL\r\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY\r\n"
	tests := []struct {
		name  string
		enc   string
		files map[string]string
		// want are facts that must be among the findings.
		want []string
	}{
		{
			name: "handed example: utf-16le with BOM", enc: "utf-16le-bom",
			files: map[string]string{"config/credentials.ini": awsCredentials, "config/deploy_key.pem": testRSAKey},
			want: []string{
				"config/credentials.ini:2 aws-access-key-id AWS CRITICAL",
				"config/deploy_key.pem:2 private-key AsymmetricPrivateKey HIGH",
			},
		},
		{
			name: "utf-16be without BOM", enc: "utf-16be",
			files: map[string]string{"config/credentials.ini": awsCredentials, "config/deploy_key.pem": testRSAKey},
		},
		{
			name: "utf-16le without BOM", enc: "utf-16le",
			files: map[string]string{"etc/app.conf": awsCredentials},
		},
		{
			name: "utf-32le with BOM", enc: "utf-32le-bom",
			files: map[string]string{"config/credentials.ini": awsCredentials, "keys/id_rsa": testRSAKey},
		},
		{
			name: "utf-32be without BOM", enc: "utf-32be",
			files: map[string]string{"keys/id_rsa": testRSAKey},
		},
		{
			name: "crlf, key on line 7", enc: "utf-16le-bom",
			files: map[string]string{"deploy/settings.ini": line7},
			want:  []string{"deploy/settings.ini:7 aws-access-key-id AWS CRITICAL"},
		},
		{
			// Past trivy's 64 KiB streaming chunks (in the view) and
			// textenc's 4 KiB sniff.
			name: "long file, key on line 3002", enc: "utf-16le-bom",
			files: map[string]string{"conf/big.ini": strings.Repeat("; filler line of a long config file\r\n", 3000) + awsCredentials},
			want:  []string{"conf/big.ini:3002 aws-access-key-id AWS CRITICAL"},
		},
		{
			name: "in node_modules and test dirs", enc: "utf-16be-bom",
			files: map[string]string{"web/node_modules/x/creds.ini": awsCredentials, "src/test/resources/key.pem": testRSAKey},
		},
		{
			name: "in a jar member dir", enc: "utf-16le-bom",
			files: map[string]string{"lib/shop-core.jar!/application.properties": awsCredentials, "lib/shop-core.jar!/keys/signing.pem": testRSAKey},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wide, plain := map[string]string{}, map[string]string{}
			for p, body := range tt.files {
				wide[p] = encodeAs(t, tt.enc, body)
				plain[p] = body
			}
			got := scanFiles(t, wide)
			control := secretFacts(scanFiles(t, plain))
			if len(control) < len(tt.files) {
				t.Fatalf("the UTF-8 control finds too little: %v", control)
			}
			if facts := secretFacts(got); !slices.Equal(facts, control) {
				t.Errorf("%s findings:\n  %s\nUTF-8 control:\n  %s", tt.enc, strings.Join(facts, "\n  "), strings.Join(control, "\n  "))
			}
			for _, w := range tt.want {
				if !slices.Contains(control, w) {
					t.Errorf("missing %q in %v", w, control)
				}
			}
			for _, f := range got.Findings {
				for _, secret := range []string{"MIIBOgIBAAJBAKj34GkxFhD90", "ZXCVBNMASDFGHJKL", "wJalrXUtnFEMI"} {
					if f.Secret != nil && (strings.Contains(f.Secret.Match, secret) || strings.Contains(f.Message, secret)) {
						t.Errorf("secret not masked: %q", f.Secret.Match)
					}
				}
				if strings.Contains(f.Path, "pkg/") || strings.HasPrefix(f.Path, "/") {
					t.Errorf("path %q is not relative to the package root", f.Path)
				}
			}
			if !strings.Contains(got.Detail, fmt.Sprintf("%d UTF-16/32 text files", len(tt.files))) {
				t.Errorf("detail = %q", got.Detail)
			}
		})
	}
}

// TestWideTextControls: what must not give a finding or a UTF-8 view.
func TestWideTextControls(t *testing.T) {
	t.Parallel()
	// A binary with many NULs: a table of 32-bit integers, then a key in
	// plain ASCII. trivy skips binaries whole; so does the text pass.
	var tbl []byte
	for i := range 2048 {
		tbl = binary.LittleEndian.AppendUint32(tbl, uint32(i*i*37+i))
	}
	bin := string(tbl) + "\x00\x00" + awsCredentials + string(tbl)
	tests := []struct {
		name      string
		files     map[string]string
		wantFacts int
		// wantDetail is what res.Detail must say ("" nothing about
		// extra views).
		wantDetail string
	}{
		{"utf-16 without a secret", map[string]string{"conf/app.ini": encodeAs(t, "utf-16le-bom", "[app]\r\nname = shop\r\nport = 8080\r\n")}, 0, "1 UTF-16/32 text files"},
		{"binary with many NULs", map[string]string{"data/table.bin": bin}, 0, ""},
		{"utf-8 text", map[string]string{"conf/credentials": awsCredentials}, 1, ""},
		// trivy takes this text for a binary and skips it.
		{"utf-8 text with a control byte first", map[string]string{"conf/credentials": "\x01\x00" + awsCredentials}, 1, "1 text files with control bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := scanFiles(t, tt.files)
			if facts := secretFacts(res); len(facts) != tt.wantFacts {
				t.Errorf("facts = %v, want %d", facts, tt.wantFacts)
			}
			if extra := strings.Contains(res.Detail, "read as"); extra != (tt.wantDetail != "") || !strings.Contains(res.Detail, tt.wantDetail) {
				t.Errorf("detail = %q, want %q", res.Detail, tt.wantDetail)
			}
		})
	}
}

// fakeSource streams files as a VM disk reader does.
type fakeSource map[string]string

func (s fakeSource) Walk(ctx context.Context, fn func(f scanner.File, r io.Reader) error) error {
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for k := range s {
			if !yield(k) {
				return
			}
		}
	}) {
		if err := fn(scanner.File{Path: p, Size: int64(len(s[p]))}, strings.NewReader(s[p])); err != nil {
			return err
		}
	}
	return nil
}

// TestWideTextOfImageFiles: image layer files and streamed files are
// reported with their path in the image and their layer.
func TestWideTextOfImageFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	disk := filepath.Join(dir, "3", "creds")
	if err := os.MkdirAll(filepath.Dir(disk), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, []byte(encodeAs(t, "utf-16le-bom", awsCredentials)), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := &scanner.Target{
		Kind:    assetscan.KindContainerImage,
		Files:   []scanner.File{{Path: "root/.aws/credentials", DiskPath: disk, Size: 200, Layer: "sha256:abc"}},
		Sources: []scanner.FileSource{fakeSource{"home/u/.ssh/id_rsa": encodeAs(t, "utf-32be", testRSAKey), "etc/hostname": "box\n"}},
	}
	res, err := testEngine.addWideTextSecretsOfFiles(context.Background(), tg, scanner.Result{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range res.Findings {
		paths = append(paths, f.Path+"@"+f.Layer)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	want := []string{"home/u/.ssh/id_rsa@", "root/.aws/credentials@sha256:abc"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
}

// TestWideTextCancelled: a cancelled scan does not pass silently.
func TestWideTextCancelled(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{"a.ini": encodeAs(t, "utf-16le-bom", awsCredentials)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := testEngine.addWideTextSecrets(ctx, root, scanner.Result{}); err == nil {
		t.Fatal("no error from a cancelled scan")
	}
}

// TestTrivyDoesNotReadInsideJars records a fact the extractor relies on:
// trivy's secret scanner skips a jar as a binary, so a key in a member is
// not found unless the extractor unpacks the jar ("lib/x.jar!/...", see
// TestSecretsInWideText). If a trivy upgrade starts opening jars, this test
// fails and the double reporting must be looked at.
func TestTrivyDoesNotReadInsideJars(t *testing.T) {
	t.Parallel()
	jar := func(method uint16) string {
		var b strings.Builder
		zw := zip.NewWriter(&b)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "application.properties", Method: method})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, strings.ReplaceAll(awsCredentials, "\r\n", "\n"))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	res := scanFiles(t, map[string]string{"lib/deflated.jar": jar(zip.Deflate), "lib/stored.jar": jar(zip.Store)})
	var deflated, stored int
	for _, f := range res.Findings {
		switch {
		case f.Secret != nil && f.Path == "lib/deflated.jar":
			deflated++
		case f.Secret != nil && f.Path == "lib/stored.jar":
			stored++
		}
	}
	if deflated != 0 {
		t.Errorf("secrets in a deflated jar: %v", secretFacts(res))
	}
	t.Logf("secrets in a stored jar: %d", stored)
}

// BenchmarkWideTextPass: the cost of the text pass (sniff every file, read
// the UTF-16 ones through a view) against the whole ScanDir it is part of,
// on 2,000 small UTF-8 source files, 20 binaries of 256 KiB and 20 UTF-16
// files.
func BenchmarkWideTextPass(b *testing.B) {
	root := filepath.Join(b.TempDir(), "pkg")
	write := func(p string, body []byte) {
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	src := []byte(strings.Repeat("func f() int { return 42 } // some source\n", 50))
	bin := make([]byte, 256<<10)
	for i := range bin {
		bin[i] = byte(i * 7 % 251)
	}
	wide, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(strings.Repeat("name = value\r\n", 500)))
	for i := range 2000 {
		write(fmt.Sprintf("src/d%d/f%d.go", i%40, i), src)
	}
	for i := range 20 {
		write(fmt.Sprintf("bin/b%d.so", i), bin)
		write(fmt.Sprintf("conf/c%d.ini", i), wide)
	}
	ctx := context.Background()
	b.Run("ScanDir", func(b *testing.B) {
		for b.Loop() {
			if _, err := testEngine.ScanDir(ctx, root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("text pass alone", func(b *testing.B) {
		for b.Loop() {
			if _, err := testEngine.addWideTextSecrets(ctx, root, scanner.Result{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
