package clamav

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The signatures the project ships, for tests and the zero-setup mode
// (clamd will not start with an empty database directory and has no
// built-in EICAR detection). Every signature has a sample, see Samples.
//
//	assetscan-eicar.ndb       EICAR test string anywhere in a file (body, hex)
//	assetscan-test.hsb        ClamAV's own test file clam.exe (SHA-256); detects
//	                          all 44 files of Debian's clamav-testfiles
//	assetscan-fabricated.hdb  MD5 of FabricatedSample()
//	assetscan-marker.yara     YARA rule matching YARAMarkerSample()
//
//go:embed signatures/*
var signatureFS embed.FS

// ClamAVTestFile is where Debian's clamav-testfiles package puts ClamAV's
// test executable, the sample for assetscan-test.hsb.
const ClamAVTestFile = "/usr/share/clamav-testfiles/clam.exe"

// EICAR returns the 68-byte EICAR anti-virus test string. It is assembled
// from pieces so that no source file holds it whole.
func EICAR() []byte {
	parts := []string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-", "STANDARD-", "ANTIVIRUS-", "TEST-", "FILE!$H+H*"}
	return []byte(strings.Join(parts, ""))
}

// FabricatedSample returns the exact bytes whose MD5 assetscan-fabricated.hdb
// lists (a whole-file hash: the bytes inside a larger file do not match).
func FabricatedSample() []byte {
	return []byte("assetscan fabricated malware sample v1\n")
}

// YARAMarkerSample returns a small file holding the marker that
// assetscan-marker.yara matches anywhere in a file.
func YARAMarkerSample() []byte {
	return []byte("this file carries the " + "ASSETSCAN-YARA-" + "TEST-MARKER-7f3c9a" + " marker\n")
}

// Sample is a file one shipped signature detects.
type Sample struct {
	// File is the signature file in signatures/.
	File string
	// Signature is the name clamd reports without the ".UNOFFICIAL" suffix
	// it adds to custom signatures.
	Signature string
	// Data is the sample. Nil when Path names it instead.
	Data []byte
	// Path is a sample on disk (ClamAVTestFile), used when it exists.
	Path string
	// OtherNames allows another signature to report the sample (the official
	// database detects EICAR as Win.Test.EICAR_HDB-1).
	OtherNames bool
}

// Samples returns one sample per shipped signature.
func Samples() []Sample {
	return []Sample{
		{File: "assetscan-eicar.ndb", Signature: "Assetscan.Test.EICAR", Data: EICAR(), OtherNames: true},
		{File: "assetscan-fabricated.hdb", Signature: "Assetscan.Test.Fabricated", Data: FabricatedSample()},
		{File: "assetscan-marker.yara", Signature: "YARA.Assetscan_Test_Marker", Data: YARAMarkerSample()},
		{File: "assetscan-test.hsb", Signature: "ClamAV-Test-File", Path: ClamAVTestFile, OtherNames: true},
	}
}

// SignatureFiles returns the names of the shipped signature files, sorted.
func SignatureFiles() []string {
	entries, _ := fs.ReadDir(signatureFS, "signatures")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// WriteSignatures writes the shipped signature files into dir (created if
// missing), for clamd's DatabaseDirectory.
func WriteSignatures(dir string) error { return writeSignatures(dir, SignatureFiles()) }

func writeSignatures(dir string, names []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write signatures: %w", err)
	}
	for _, name := range names {
		b, err := signatureFS.ReadFile("signatures/" + name)
		if err != nil {
			return fmt.Errorf("write signatures: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write signatures: %w", err)
		}
	}
	return nil
}

// DigestDir returns "sha256:<hex>" over the regular files directly in dir
// (a clamd database directory), in name order: for each file its name, a
// NUL, its length in decimal, a NUL and its content. Subdirectories are
// ignored (clamd does not load them); symlinks are followed.
func DigestDir(dir string) (string, error) { return digestDir(dir, nil) }

// digestDir is DigestDir leaving out the files named in exclude.
func digestDir(dir string, exclude []string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("signature digest: %w", err)
	}
	h := sha256.New()
	n := 0
	for _, e := range entries { // ReadDir sorts by name
		if slices.Contains(exclude, e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("signature digest: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("signature digest: %w", err)
		}
		io.WriteString(h, e.Name()+"\x00"+strconv.FormatInt(st.Size(), 10)+"\x00")
		m, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("signature digest: %s: %w", p, err)
		}
		if m != st.Size() {
			return "", fmt.Errorf("signature digest: %s changed while hashing", p)
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("signature digest: no files in %s", dir)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// VerifySignatures scans one sample per shipped signature and requires each
// to be FOUND under the expected name. It catches a signature file clamd
// did not load (clamd drops a malformed YARA rule with only a warning). The
// ClamAV test file is checked only if ClamAVTestFile exists.
func VerifySignatures(ctx context.Context, c *Client) error {
	var errs []error
	for _, s := range Samples() {
		data := s.Data
		if data == nil {
			b, err := os.ReadFile(s.Path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.File, err))
				continue
			}
			data = b
		}
		reply, err := c.Scan(ctx, strings.NewReader(string(data)))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", s.File, err))
		case reply.Status != StatusFound:
			errs = append(errs, fmt.Errorf("%s: sample not detected (clamd replied %q)", s.File, reply.Raw))
		case !s.OtherNames && strings.TrimSuffix(reply.Signature, ".UNOFFICIAL") != s.Signature:
			errs = append(errs, fmt.Errorf("%s: sample detected as %q, want %q", s.File, reply.Signature, s.Signature))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("verify shipped signatures: %w", errors.Join(errs...))
	}
	return nil
}

// ShippedDigest is DigestDir of the shipped signature set, as WriteSignatures
// writes it. It says what was shipped, not what any clamd runs: never
// record it as an engine identity (see Check.Identity).
func ShippedDigest() (string, error) {
	entries, err := fs.ReadDir(signatureFS, "signatures")
	if err != nil {
		return "", fmt.Errorf("signature digest: %w", err)
	}
	h := sha256.New()
	for _, e := range entries { // sorted by name, like os.ReadDir
		b, err := fs.ReadFile(signatureFS, "signatures/"+e.Name())
		if err != nil {
			return "", fmt.Errorf("signature digest: %w", err)
		}
		io.WriteString(h, e.Name()+"\x00"+strconv.Itoa(len(b))+"\x00")
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
