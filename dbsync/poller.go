package dbsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/vulndb"
)

// Poller keeps a worker's vulnerability DB up to date with the published
// one.
type Poller struct {
	S3     *minio.Client
	Bucket string
	// Root is the directory the DBs are downloaded into, one subdirectory
	// each; the poller owns it (one Poller per Root).
	Root string
	// Interval between checks. Default 10 min; each wait gets up to 10%
	// jitter so a fleet does not poll in step.
	Interval time.Duration
	// Current returns the DB in use; a DB is only swapped in if its
	// UpdatedAt is after Current's. nil means no DB yet.
	Current func() assetscan.DBRef
	// Swap switches the scanner to the trivy cache dir dir (e.g. the trivy
	// engine's SwapDB). The dir stays as it is until a later swap makes it
	// one of the old ones.
	Swap func(ctx context.Context, dir string) error
	// Log defaults to discarding.
	Log *slog.Logger
}

// Keep is how many DB directories (newest by name, the one just swapped in
// among them) a poller leaves under Root.
const Keep = 2

func (p *Poller) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Run checks now and then every Interval until ctx is done. Failures are
// logged and retried at the next check.
func (p *Poller) Run(ctx context.Context) {
	every := p.Interval
	if every <= 0 {
		every = 10 * time.Minute
	}
	for {
		swapped, err := p.CheckOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.log().ErrorContext(ctx, "vulnerability DB update failed, retrying at the next check", "error", err, "next_check_in", every)
		case swapped:
			// CheckOnce logged it.
		}
		wait := every + time.Duration(rand.Int64N(int64(every)/10+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// CheckOnce reads latest.json and, when it names a DB newer than
// Current(), downloads it into a new directory under Root, verifies every
// file's SHA-256 and the DB's metadata, calls Swap, and then removes old
// directories beyond the newest Keep. Nothing published yet is not an
// error (false, nil). A failed verification returns an error wrapping
// ErrVerify and never swaps. A failed Swap returns its error; the verified
// directory is kept and reused by the next check.
func (p *Poller) CheckOnce(ctx context.Context) (bool, error) {
	if p.S3 == nil || p.Bucket == "" || p.Root == "" || p.Swap == nil {
		return false, errors.New("dbsync: Poller needs S3, Bucket, Root and Swap")
	}
	log := p.log()
	pub, err := Latest(ctx, p.S3, p.Bucket)
	if errors.Is(err, ErrNotPublished) {
		log.DebugContext(ctx, "no vulnerability DB published yet", "bucket", p.Bucket)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if pub.SchemaVersion != vulndb.SchemaVersion {
		return false, fmt.Errorf("dbsync: published DB %s has schema %d, this build needs %d", pub.Path, pub.SchemaVersion, vulndb.SchemaVersion)
	}
	var cur assetscan.DBRef
	if p.Current != nil {
		cur = p.Current()
	}
	want := pub.Ref()
	if !want.UpdatedAt.After(cur.UpdatedAt) {
		log.DebugContext(ctx, "vulnerability DB is current", "current_updated_at", cur.UpdatedAt, "published_updated_at", want.UpdatedAt)
		return false, nil
	}

	if err := os.MkdirAll(p.Root, 0o755); err != nil {
		return false, fmt.Errorf("dbsync: %w", err)
	}
	final := filepath.Join(p.Root, DirName(pub.UpdatedAt, want.Digest))
	if _, err := os.Stat(final); err == nil {
		// Downloaded before (the swap failed, or the process stopped in
		// between): reuse it if it still verifies.
		if verr := verifyDir(final, pub); verr != nil {
			log.WarnContext(ctx, "discarding a previously downloaded vulnerability DB", "dir", final, "error", verr)
			if err := os.RemoveAll(final); err != nil {
				return false, fmt.Errorf("dbsync: %w", err)
			}
		}
	}
	if _, err := os.Stat(final); err != nil {
		start := time.Now()
		if err := p.download(ctx, pub, final); err != nil {
			return false, err
		}
		log.InfoContext(ctx, "vulnerability DB downloaded", "path", pub.Path, "dir", final, "took", time.Since(start).Round(time.Millisecond))
	}
	if err := p.Swap(ctx, final); err != nil {
		return false, fmt.Errorf("dbsync: swap to %s: %w", final, err)
	}
	log.InfoContext(ctx, "vulnerability DB swapped", "dir", final, "updated_at", pub.UpdatedAt,
		"digest", pub.Digest, "previous_updated_at", cur.UpdatedAt)
	p.prune(ctx, final)
	return true, nil
}

// download fetches pub into a scratch directory under Root, verifies it,
// and renames it to final.
func (p *Poller) download(ctx context.Context, pub Published, final string) error {
	p.removeScratch(ctx)
	tmp, err := os.MkdirTemp(p.Root, ".download-")
	if err != nil {
		return fmt.Errorf("dbsync: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, rel := range pub.sortedFiles() {
		sum, err := p.fetch(ctx, pub.Path+"/"+rel, filepath.Join(tmp, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		if want := pub.Files[rel]; want != "" && "sha256:"+sum != want {
			return fmt.Errorf("%w: %s/%s has sha256:%s, latest.json says %s", ErrVerify, pub.Path, rel, sum, want)
		}
	}
	if err := checkMetadata(tmp, pub); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("dbsync: %w", err)
	}
	ok = true
	return nil
}

// fetch streams one object into file and returns its hex SHA-256.
func (p *Poller) fetch(ctx context.Context, key, file string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", fmt.Errorf("dbsync: %w", err)
	}
	obj, err := p.S3.GetObject(ctx, p.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", fmt.Errorf("dbsync: get %s: %w", key, err)
	}
	defer obj.Close()
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("dbsync: %w", err)
	}
	defer out.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(out, h), obj, make([]byte, 1<<20)); err != nil {
		return "", fmt.Errorf("dbsync: get %s: %w", key, err)
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("dbsync: %w", err)
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("dbsync: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkMetadata checks that dir holds the DB latest.json describes, by
// trivy's own metadata.
func checkMetadata(dir string, pub Published) error {
	ref, err := vulndb.ReadMetadata(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrVerify, err)
	}
	want := pub.Ref()
	if ref.Digest != want.Digest || !ref.UpdatedAt.Equal(want.UpdatedAt) {
		return fmt.Errorf("%w: metadata says updated %s digest %s, latest.json says updated %s digest %s",
			ErrVerify, ref.UpdatedAt.Format(time.RFC3339), ref.Digest, want.UpdatedAt.Format(time.RFC3339), want.Digest)
	}
	return nil
}

// verifyDir re-checks a directory downloaded earlier against pub.
func verifyDir(dir string, pub Published) error {
	for rel, want := range pub.Files {
		if want == "" {
			continue
		}
		sum, err := vulndb.FileSHA256(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		if "sha256:"+sum != want {
			return fmt.Errorf("%w: %s has sha256:%s, want %s", ErrVerify, rel, sum, want)
		}
	}
	return checkMetadata(dir, pub)
}

// removeScratch removes downloads a previous run left unfinished.
func (p *Poller) removeScratch(ctx context.Context) {
	entries, _ := os.ReadDir(p.Root)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".download-") {
			if err := os.RemoveAll(filepath.Join(p.Root, e.Name())); err != nil {
				p.log().WarnContext(ctx, "removing an unfinished download", "error", err)
			}
		}
	}
}

// prune removes DB directories under Root beyond the newest Keep (by name,
// which sorts by UpdatedAt), never the one just swapped in.
func (p *Poller) prune(ctx context.Context, current string) {
	entries, err := os.ReadDir(p.Root)
	if err != nil {
		p.log().WarnContext(ctx, "listing old vulnerability DBs", "error", err)
		return
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && dirNameRe.MatchString(e.Name()) {
			dirs = append(dirs, e.Name())
		}
	}
	sort.Strings(dirs)
	if len(dirs) <= Keep {
		return
	}
	for _, name := range dirs[:len(dirs)-Keep] {
		dir := filepath.Join(p.Root, name)
		if dir == current {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			p.log().WarnContext(ctx, "removing an old vulnerability DB", "dir", dir, "error", err)
			continue
		}
		p.log().InfoContext(ctx, "old vulnerability DB removed", "dir", dir)
	}
}
