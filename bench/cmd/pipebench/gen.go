package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/assetscan/assetscan/auth"
)

const lockTemplate = `{
  "name": "app-%[1]d",
  "version": "1.0.0",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "lodash": {
      "version": "%[2]s",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-%[2]s.tgz"
    }
  }
}
`

// smallPackage returns the files of small package i of set set: an npm app with its
// lock file (lodash 4.17.11, vulnerable, when i is even; 4.17.21 when odd),
// 20 source files, Python dist-info and requirements, a jar with
// pom.properties, a Go module, and one or two 256 KiB random blobs. Only
// the vulnerable lodash fails under the default policy. Every file of one
// set differs from every file of another (clamd caches the verdicts of
// files it has seen by their hash: each contender gets its own set).
func smallPackage(set, i int, rnd *rand.Rand) map[string][]byte {
	lodash := "4.17.21"
	if i%2 == 0 {
		lodash = "4.17.11"
	}
	files := map[string][]byte{
		"app/package.json":      fmt.Appendf(nil, `{"name":"app-%d-%d","version":"1.0.0","dependencies":{"lodash":"%s"}}`+"\n", set, i, lodash),
		"app/package-lock.json": fmt.Appendf(nil, lockTemplate, set*100000+i, lodash),
		"app/requirements.txt":  fmt.Appendf(nil, "# set %d app %d\nrequests==2.32.3\nidna==3.7\n", set, i),
		"app/venv/lib/python3.11/site-packages/requests-2.32.3.dist-info/METADATA": fmt.Appendf(nil,
			"Metadata-Version: 2.1\nName: requests\nVersion: 2.32.3\nSummary: Python HTTP for Humans (set %d app %d).\nLicense: Apache 2.0\n", set, i),
		"app/lib/app-util-1.0.0.jar": jarBytes("com.example", "app-util", "1.0.0", fmt.Sprintf("%d-%d", set, i)),
		"app/go/go.mod":              fmt.Appendf(nil, "module example.com/app%d/m%d\n\ngo 1.22\n\nrequire golang.org/x/text v0.14.0\n", set, i),
		"app/go/go.sum": []byte("golang.org/x/text v0.14.0 h1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=\n" +
			"golang.org/x/text v0.14.0/go.mod h1:18ZOQIKpY8NJVqYksKHtTdi31H5itFRjB5/qKTNYzSU=\n"),
	}
	for j := range 20 {
		var b strings.Builder
		fmt.Fprintf(&b, "// module %d of app %d of set %d\n'use strict';\nconst _ = require('lodash');\n", j, i, set)
		for k := range 40 {
			fmt.Fprintf(&b, "function f%d_%d(xs) { return _.map(xs, (x) => x * %d + %d); }\n", j, k, rnd.IntN(1000), k)
		}
		fmt.Fprintf(&b, "module.exports = { f%d_0 };\n", j)
		files[fmt.Sprintf("app/src/m%02d.js", j)] = []byte(b.String())
	}
	for j := range 1 + i%2 {
		files[fmt.Sprintf("app/assets/blob%d.bin", j)] = randomBytes(rnd, 256<<10)
	}
	return files
}

func jarBytes(group, artifact, version, build string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nImplementation-Build: " + build + "\r\n\r\n"},
		{fmt.Sprintf("META-INF/maven/%s/%s/pom.properties", group, artifact), fmt.Sprintf("groupId=%s\nartifactId=%s\nversion=%s\n", group, artifact, version)},
		{"com/example/Main.class", "\xca\xfe\xba\xbe\x00\x00\x00\x34"},
	} {
		w, _ := zw.Create(f.name)
		_, _ = io.WriteString(w, f.body)
	}
	_ = zw.Close()
	return buf.Bytes()
}

func randomBytes(rnd *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rnd.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func sortedNames(files map[string][]byte) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func writeTarGz(path string, files map[string][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	mt := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range sortedNames(files) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

func writeZip(path string, files map[string][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, n := range sortedNames(files) {
		w, err := zw.Create(n)
		if err != nil {
			return err
		}
		if _, err := w.Write(files[n]); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

type genResult struct {
	Packages int   `json:"packages"`
	Bytes    int64 `json:"bytes"`
	Fail     int   `json:"expected_fail"`
	Pass     int   `json:"expected_pass"`
}

// cmdGenSmall writes n small packages (three in four .tar.gz, one in four
// .zip) into -dir and -expected: "name<TAB>pass|fail" per package.
func cmdGenSmall(_ context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("gen-small", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory")
	expected := fs.String("expected", "", "expected verdicts file to write (outside -dir)")
	n := fs.Int("n", 100, "packages")
	set := fs.Int("set", 1, "set number: sets share no file content")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *dir == "" || *expected == "" {
		return nil, fmt.Errorf("-dir and -expected are required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return nil, err
	}
	rnd := rand.New(rand.NewPCG(1, uint64(*set)))
	var res genResult
	var exp strings.Builder
	for i := range *n {
		files := smallPackage(*set, i, rnd)
		name := fmt.Sprintf("app-%03d.tar.gz", i)
		write := writeTarGz
		if i%4 == 3 {
			name, write = fmt.Sprintf("app-%03d.zip", i), writeZip
		}
		p := filepath.Join(*dir, name)
		if err := write(p, files); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		res.Packages++
		res.Bytes += fi.Size()
		want := "pass"
		if i%2 == 0 {
			want = "fail"
			res.Fail++
		} else {
			res.Pass++
		}
		fmt.Fprintf(&exp, "%s\t%s\n", name, want)
	}
	return res, os.WriteFile(*expected, []byte(exp.String()), 0o644)
}

type largeGen struct {
	Bytes      int64 `json:"bytes"`
	Expanded   int64 `json:"expanded_bytes"`
	SmallFiles int   `json:"small_files"`
	LargeFiles int   `json:"large_files"`
}

// cmdGenLarge writes an uncompressed tar of about -bytes: a quarter in
// small files (1–64 KiB, half source-like text, half random), the rest in
// three large random files, plus a clean package-lock.json. It passes
// under the default policy.
func cmdGenLarge(_ context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("gen-large", flag.ContinueOnError)
	out := fs.String("out", "", "output .tar")
	size := fs.Int64("bytes", 1<<30, "approximate size in bytes")
	seed := fs.Uint64("seed", 4, "random seed (another seed: other bytes)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *out == "" {
		return nil, fmt.Errorf("-out is required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rnd := rand.New(rand.NewPCG(3, *seed))
	mt := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var g largeGen
	put := func(name string, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		g.Expanded += int64(len(body))
		return err
	}
	if err := put("big/app/package-lock.json", fmt.Appendf(nil, lockTemplate, 0, "4.17.21")); err != nil {
		return nil, err
	}
	smallBudget := *size / 4
	var text strings.Builder
	for text.Len() < 64<<10 {
		fmt.Fprintf(&text, "export function handler%d(req, res) { return res.json({ ok: true, n: %d }); }\n", text.Len(), rnd.IntN(1e6))
	}
	for done := int64(0); done < smallBudget; g.SmallFiles++ {
		n := 1<<10 + rnd.IntN(63<<10)
		var body []byte
		if g.SmallFiles%2 == 0 {
			body = []byte(text.String()[:n])
		} else {
			body = randomBytes(rnd, n)
		}
		if err := put(fmt.Sprintf("big/src/d%03d/f%06d.dat", g.SmallFiles/500, g.SmallFiles), body); err != nil {
			return nil, err
		}
		done += int64(n)
	}
	largeEach := (*size - smallBudget) / 3
	chunk := make([]byte, 1<<20)
	for k := range 3 {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("big/data/blob%d.bin", k), Mode: 0o644, Size: largeEach, ModTime: mt, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		for left := largeEach; left > 0; {
			c := chunk[:min(int64(len(chunk)), left)]
			for i := 0; i+8 <= len(c); i += 8 {
				v := rnd.Uint64()
				for b := range 8 {
					c[i+b] = byte(v >> (8 * b))
				}
			}
			if _, err := tw.Write(c); err != nil {
				return nil, err
			}
			left -= int64(len(c))
		}
		g.Expanded += largeEach
		g.LargeFiles++
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(*out)
	if err != nil {
		return nil, err
	}
	g.Bytes = fi.Size()
	return g, nil
}

// cmdKeys writes a keys file with an asset-center key and a
// security-staff key and prints them as shell assignments.
func cmdKeys(_ context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	out := fs.String("out", "", "keys file to write")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	tok, hash := auth.NewKey()
	staff, staffHash := auth.NewKey()
	doc := fmt.Sprintf("keys:\n  - name: bench-center\n    role: asset-center\n    key_sha256: %s\n  - name: bench-staff\n    role: security-staff\n    key_sha256: %s\n", hash, staffHash)
	if err := os.WriteFile(*out, []byte(doc), 0o600); err != nil {
		return nil, err
	}
	fmt.Printf("TOKEN=%s\nSTAFF_TOKEN=%s\n", tok, staff)
	return nil, nil
}
