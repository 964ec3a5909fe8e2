package clamav

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/scanner"
)

// SignaturesUnknown is Identity.SignaturesDigest (and the value recorded as
// Engines["clamav-signatures"]) when the worker cannot know which
// signatures clamd runs: a remote clamd, no signature directory configured,
// or the directory unreadable. A verdict made under it must never be
// reused: two scans under "unknown" may have run different signatures.
const SignaturesUnknown = "unknown"

// ErrIdentityChanged: clamd's identity (VERSION or signature directory)
// changed while a scan ran, so the scan's results belong to neither
// identity. Transient: a retry scans under the new one.
var ErrIdentityChanged = fmt.Errorf("clamd signatures changed during the scan: %w", scanner.ErrTransient)

// Identity is what the running clamd actually runs, read from clamd itself
// (VERSION) and from the signature directory clamd loads, when the worker
// can read it.
type Identity struct {
	// Engine is always EngineName ("clamav").
	Engine string
	// Version is the engine version, e.g. "1.4.6".
	Version string
	// DBVersion is the official database (daily) version, e.g. "27500",
	// and DBDate its build date as clamd prints it ("Mon Nov 30 09:30:24
	// 2026"); both empty when clamd runs custom signatures only.
	DBVersion, DBDate string
	// SignaturesDigest is DigestDir of clamd's signature directory
	// ("sha256:<hex>"), or SignaturesUnknown.
	SignaturesDigest string
	// Known reports whether SignaturesDigest names the signature files; if
	// false, Unknown says why.
	Known   bool
	Unknown string
	// Raw is clamd's VERSION reply.
	Raw string
}

// String is a one-line form: "ClamAV 1.4.6/27500/<date> signatures sha256:…".
func (id Identity) String() string {
	return id.Raw + " signatures " + id.SignaturesDigest
}

// Equal reports whether two identities name the same engine and
// signatures. Identities with unknown signatures are never equal, not even
// to themselves: nothing can be proven about them.
func (id Identity) Equal(o Identity) bool {
	return id.Known && o.Known && id.Raw == o.Raw && id.SignaturesDigest == o.SignaturesDigest
}

// ParseVersion parses clamd's VERSION reply: "ClamAV 1.4.6" (custom
// signatures only) or "ClamAV 1.4.6/27500/Mon Nov 30 09:30:24 2026"
// (engine/daily version/daily date). The signature fields are left unknown.
func ParseVersion(reply string) (Identity, error) {
	id := Identity{Engine: EngineName, Raw: reply, SignaturesDigest: SignaturesUnknown, Unknown: "signature directory not read"}
	rest, ok := strings.CutPrefix(reply, "ClamAV ")
	if !ok || len(reply) > 256 || strings.ContainsAny(reply, "\x00\r\n") {
		return id, fmt.Errorf("clamd VERSION: %w: %q", ErrProtocol, reply)
	}
	parts := strings.SplitN(rest, "/", 3)
	id.Version = parts[0]
	if !validVersion(id.Version) {
		return id, fmt.Errorf("clamd VERSION: %w: engine version in %q", ErrProtocol, reply)
	}
	switch len(parts) {
	case 1:
	case 3:
		id.DBVersion, id.DBDate = parts[1], strings.TrimSpace(parts[2])
		if _, err := strconv.ParseUint(id.DBVersion, 10, 32); err != nil || id.DBDate == "" {
			return id, fmt.Errorf("clamd VERSION: %w: database version in %q", ErrProtocol, reply)
		}
	default:
		return id, fmt.Errorf("clamd VERSION: %w: %q", ErrProtocol, reply)
	}
	return id, nil
}

func validVersion(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' || r == '_' || r == '+' || r == '~') {
			return false
		}
	}
	return true
}

// EngineIdentity returns what clamd runs now: its VERSION reply parsed, and the
// digest of the signature directory (CheckConfig.SignatureDir) when one is
// configured and readable. It costs one VERSION round trip and a stat of
// every signature file: files are re-hashed only when their name, size,
// modification time, inode or change time differ from the last call.
// A signature directory that cannot be read is not an error: the identity
// says the signatures are unknown (Known false, Unknown the reason). The
// error is clamd's (unreachable, time-out, unexpected reply).
func (k *Check) EngineIdentity(ctx context.Context) (Identity, error) {
	v, err := k.client.Version(ctx)
	if err != nil {
		return Identity{}, err
	}
	id, err := ParseVersion(v)
	if err != nil {
		return Identity{}, err
	}
	if k.cfg.SignatureDir == "" {
		id.Unknown = "no signature directory configured (remote clamd or a directory assetscan does not manage)"
		return id, nil
	}
	dg, err := k.sigs.digest(k.cfg.SignatureDir)
	if err != nil {
		id.Unknown = err.Error()
		return id, nil
	}
	if k.cfg.ProveLoaded {
		loaded, err := k.proveGeneration(ctx, dg)
		if err != nil {
			return Identity{}, err
		}
		if !loaded {
			id.Unknown = "clamd has not loaded the signature directory's current files yet (reload pending)"
			return id, nil
		}
	}
	id.SignaturesDigest, id.Known, id.Unknown = dg, true, ""
	return id, nil
}

// GenerationFile is the signature file a check with ProveLoaded keeps in
// SignatureDir: one body signature, named after the digest of the other
// files, whose sample (GenerationSample) clamd detects only once it has
// loaded them.
const GenerationFile = "assetscan-generation.ndb"

const generationTmp = ".assetscan-generation.tmp"

// generationFiles are left out of the digest of a directory with a
// generation marker.
var generationFiles = []string{GenerationFile, generationTmp}

// generationName is the signature name for digest dg ("sha256:<hex>").
func generationName(dg string) string {
	h := strings.TrimPrefix(dg, "sha256:")
	return "Assetscan.Generation." + h[:min(32, len(h))]
}

// GenerationSample returns the bytes the generation signature of digest
// dg detects.
func GenerationSample(dg string) []byte {
	return []byte("assetscan signature generation marker " + generationName(dg) + " end\n")
}

// proveGeneration makes sure the generation marker in SignatureDir names
// dg (writing it and sending RELOAD if not) and reports whether clamd
// detects its sample under that name. The error is clamd's or the
// marker's write.
func (k *Check) proveGeneration(ctx context.Context, dg string) (bool, error) {
	k.gen.Lock()
	defer k.gen.Unlock()
	name := generationName(dg)
	sample := GenerationSample(dg)
	line := name + ":0:*:" + hex.EncodeToString(sample) + "\n"
	dir := k.cfg.SignatureDir
	cur, err := os.ReadFile(filepath.Join(dir, GenerationFile))
	if err != nil || string(cur) != line {
		tmp := filepath.Join(dir, generationTmp)
		if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
			return false, fmt.Errorf("signature generation: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, GenerationFile)); err != nil {
			os.Remove(tmp)
			return false, fmt.Errorf("signature generation: %w", err)
		}
		if err := k.client.Reload(ctx); err != nil {
			return false, fmt.Errorf("signature generation: %w", err)
		}
	}
	r, err := k.client.Scan(ctx, bytes.NewReader(sample))
	if err != nil {
		return false, fmt.Errorf("signature generation: %w", err)
	}
	return r.Status == StatusFound && strings.TrimSuffix(r.Signature, ".UNOFFICIAL") == name, nil
}

// dirDigester caches DigestDir by the stat of every file in the directory.
type dirDigester struct {
	// settle: files changed less than this long ago are not cached (a
	// rewrite within the file system's timestamp granularity could keep
	// the stat key). Zero means 2 s.
	settle time.Duration

	// exclude names files left out of the digest (the generation marker).
	exclude []string

	mu   sync.Mutex
	keys string // the stat key of the last digest
	dg   string
}

// digest returns DigestDir(dir), re-hashing only when a file's stat key
// changed. Files are stat'ed before and after hashing; if they changed in
// between, the digest is not cached.
func (d *dirDigester) digest(dir string) (string, error) {
	before, err := statKeys(dir, d.exclude)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if before == d.keys && d.dg != "" {
		return d.dg, nil
	}
	dg, err := digestDir(dir, d.exclude)
	if err != nil {
		return "", err
	}
	after, err := statKeys(dir, d.exclude)
	if err != nil {
		return "", err
	}
	if after != before {
		return "", fmt.Errorf("signature digest: %s changed while hashing", dir)
	}
	// A file modified within the file system's timestamp granularity of
	// the hash could keep its key: cache only files older than that.
	settle := d.settle
	if settle == 0 {
		settle = 2 * time.Second
	}
	if !recent(dir, settle) {
		d.keys, d.dg = before, dg
	}
	return dg, nil
}

// statKeys lists (name, size, mtime, inode, ctime) of every regular file
// directly in dir, the files DigestDir hashes.
func statKeys(dir string, exclude []string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("signature digest: %w", err)
	}
	var b strings.Builder
	for _, e := range entries {
		if slices.Contains(exclude, e.Name()) {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", fmt.Errorf("signature digest: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		fmt.Fprintf(&b, "%q %d %d %s\n", e.Name(), st.Size(), st.ModTime().UnixNano(), statExtra(st))
	}
	return b.String(), nil
}

// recent reports whether any file in dir changed within the last settle
// (or its time cannot be read).
func recent(dir string, settle time.Duration) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			return true
		}
		if time.Since(st.ModTime()) < settle || time.Since(changeTime(st)) < settle {
			return true
		}
	}
	return false
}

// DatabaseDirectory returns the DatabaseDirectory setting of a clamd.conf
// (clamd's default, /var/lib/clamav, when the file does not set it), for
// CheckConfig.SignatureDir when the worker shares the host with a clamd
// it can read the configuration of.
func DatabaseDirectory(confPath string) (string, error) {
	f, err := os.Open(confPath)
	if err != nil {
		return "", fmt.Errorf("clamd config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return "", fmt.Errorf("clamd config: %w", err)
	}
	dir := "/var/lib/clamav"
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		key, val, ok := strings.Cut(line, " ")
		if !ok || key != "DatabaseDirectory" {
			continue
		}
		dir = strings.Trim(strings.TrimSpace(val), `"`)
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("clamd config: %s: DatabaseDirectory %q is not absolute", confPath, dir)
	}
	return dir, nil
}

// Reload asks clamd to reload its signature database (RELOAD). clamd
// answers RELOADING at once and loads the new database in the background;
// scans go on with the old one until it is loaded.
func (c *Client) Reload(ctx context.Context) error {
	reply, err := c.command(ctx, "RELOAD")
	if err != nil {
		return fmt.Errorf("clamd RELOAD: %w", err)
	}
	if reply != "RELOADING" {
		return fmt.Errorf("clamd RELOAD: %w: %q", ErrProtocol, reply)
	}
	return nil
}

// MaxThreads returns clamd's MaxThreads, read from its STATS reply
// ("THREADS: live 1  idle 0 max 10 idle-timeout 30").
func (c *Client) MaxThreads(ctx context.Context) (int, error) {
	reply, err := c.command(ctx, "STATS")
	if err != nil {
		return 0, fmt.Errorf("clamd STATS: %w", err)
	}
	n, err := parseMaxThreads(reply)
	if err != nil {
		return 0, fmt.Errorf("clamd STATS: %w", err)
	}
	return n, nil
}

func parseMaxThreads(stats string) (int, error) {
	for _, line := range strings.Split(stats, "\n") {
		rest, ok := strings.CutPrefix(line, "THREADS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "max" {
				n, err := strconv.Atoi(f[i+1])
				if err != nil || n < 1 || n > 4096 {
					return 0, fmt.Errorf("%w: THREADS line %q", ErrProtocol, line)
				}
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: no THREADS max in STATS", ErrProtocol)
}

// CheckVersion is the version of this check's code (what it sends to
// clamd, how it reads replies, which files it reads). Bump it whenever a
// change can make the same input give other findings.
const CheckVersion = "2"

// Identity implements scanner.Identifier: the verdict records, and reuse
// keys on, what clamd runs now (EngineIdentity). Signatures the worker
// cannot see are Unknown, and findings made under them are never reused.
func (k *Check) Identity(ctx context.Context) (assetscan.Identity, error) {
	id, err := k.EngineIdentity(ctx)
	if err != nil {
		return assetscan.Identity{}, err
	}
	out := assetscan.Identity{Check: k.Name(), Version: CheckVersion, Engine: id.Raw,
		Data: "signatures " + id.SignaturesDigest, Unknown: !id.Known}
	if !id.Known && id.Unknown != "" {
		out.Data += " (" + id.Unknown + ")"
	}
	return out, nil
}
