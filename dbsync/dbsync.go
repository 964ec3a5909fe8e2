// Package dbsync distributes the vulnerability database across the fleet
// through object storage: one machine builds or downloads a trivy DB and
// publishes it (Publish); every worker polls for a newer one, downloads
// and verifies it, and swaps it in between scans (Poller).
//
// Layout in the bucket:
//
//	vulndb/<updated_at>-<digest12>/db/trivy.db
//	vulndb/<updated_at>-<digest12>/db/metadata.json
//	vulndb/<updated_at>-<digest12>/java-db/...        (when the cache dir has a Java DB)
//	vulndb/latest.json
//
// where <updated_at> is the DB's build time in compact RFC 3339 UTC
// ("20260813T095258Z") and <digest12> the first 12 hex digits of trivy.db's
// SHA-256. latest.json is written last, so a reader never sees a pointer to
// a half-uploaded DB:
//
//	{"path": "vulndb/20260813T095258Z-0e0340a01b57",
//	 "digest": "sha256:<hex of trivy.db>",
//	 "updated_at": "2026-08-13T09:52:58Z",
//	 "schema_version": 2,
//	 "published_at": "2026-08-14T06:00:00Z",
//	 "files": {"db/trivy.db": "sha256:...", "db/metadata.json": "sha256:...", ...}}
//
// "files" lists every object of the DB with its SHA-256; the poller
// downloads exactly those and verifies each, so a tampered or truncated
// object is never swapped in.
//
// A worker's Root directory holds the downloaded DBs as
// <Root>/<updated_at>-<digest12>/ (a trivy cache dir: db/, java-db/) and
// in-progress downloads as <Root>/.download-*; one Poller per Root.
package dbsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/vulndb"
)

// Object names.
const (
	// Prefix is where published DBs live in the bucket.
	Prefix = "vulndb/"
	// LatestKey is the pointer to the newest published DB.
	LatestKey = Prefix + "latest.json"
)

// Errors callers branch on.
var (
	// ErrOlder: Publish was given a DB older than the one already published.
	ErrOlder = errors.New("dbsync: a newer vulnerability database is already published")
	// ErrVerify: a downloaded DB did not match latest.json (digest, size
	// or metadata). It is deleted and never swapped in.
	ErrVerify = errors.New("dbsync: downloaded vulnerability database failed verification")
)

// Published is the content of latest.json: one published DB.
type Published struct {
	// Path is the DB's prefix in the bucket, without a trailing slash.
	Path string `json:"path"`
	// Digest is "sha256:<hex>" of db/trivy.db.
	Digest        string    `json:"digest"`
	UpdatedAt     time.Time `json:"updated_at"`
	SchemaVersion int       `json:"schema_version"`
	PublishedAt   time.Time `json:"published_at"`
	// Files maps each file, relative to Path (and to the cache dir), to
	// "sha256:<hex>".
	Files map[string]string `json:"files"`
}

// Ref describes the published DB as a DBRef (Digest as hex).
func (p Published) Ref() assetscan.DBRef {
	return assetscan.DBRef{SchemaVersion: p.SchemaVersion, UpdatedAt: p.UpdatedAt, Digest: strings.TrimPrefix(p.Digest, "sha256:")}
}

const (
	trivyDB   = "db/trivy.db"
	dbMeta    = "db/metadata.json"
	javaDBDir = "java-db"
)

// DirName is the name of a DB's directory, in the bucket and under a
// poller's Root: "<updated_at compact>-<first 12 hex of digest>".
func DirName(updatedAt time.Time, hexDigest string) string {
	d := strings.TrimPrefix(hexDigest, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return updatedAt.UTC().Format("20060102T150405Z") + "-" + d
}

var (
	dirNameRe = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$`)
	digestRe  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// Publish uploads the trivy cache directory dir (db/trivy.db,
// db/metadata.json and, if present, the files of java-db/) to bucket under
// "vulndb/<updated_at>-<digest12>/" and then points vulndb/latest.json at
// it. dir must pass vulndb.ReadMetadata. Publishing the DB that is already
// published rewrites it (harmless); publishing one older than the
// published one fails with ErrOlder. Files are streamed, never held in
// memory, and each is hashed from the same open file it is uploaded from.
func Publish(ctx context.Context, s3 *minio.Client, bucket, dir string) (Published, error) {
	ref, err := vulndb.ReadMetadata(dir)
	if err != nil {
		return Published{}, fmt.Errorf("dbsync: refusing to publish %s: %w", dir, err)
	}
	if cur, err := Latest(ctx, s3, bucket); err == nil {
		if cur.UpdatedAt.After(ref.UpdatedAt) {
			return Published{}, fmt.Errorf("%w: published %s (updated %s), this one updated %s",
				ErrOlder, cur.Path, cur.UpdatedAt.Format(time.RFC3339), ref.UpdatedAt.Format(time.RFC3339))
		}
	} else if !errors.Is(err, ErrNotPublished) {
		return Published{}, err
	}

	files := []string{trivyDB}
	entries, err := os.ReadDir(filepath.Join(dir, javaDBDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Published{}, fmt.Errorf("dbsync: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.Contains(e.Name(), ".tmp-") {
			files = append(files, javaDBDir+"/"+e.Name())
		}
	}
	files = append(files, dbMeta) // metadata last: a DB dir is complete once it is there

	pub := Published{
		Path:          Prefix + DirName(ref.UpdatedAt, ref.Digest),
		Digest:        "sha256:" + ref.Digest,
		UpdatedAt:     ref.UpdatedAt,
		SchemaVersion: ref.SchemaVersion,
		Files:         map[string]string{},
	}
	for _, rel := range files {
		sum, err := uploadFile(ctx, s3, bucket, pub.Path+"/"+rel, filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return Published{}, err
		}
		pub.Files[rel] = "sha256:" + sum
	}
	if pub.Files[trivyDB] != pub.Digest {
		return Published{}, fmt.Errorf("dbsync: %s changed while publishing (%s, metadata read %s)", trivyDB, pub.Files[trivyDB], pub.Digest)
	}
	pub.PublishedAt = time.Now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(pub, "", "  ")
	if err != nil {
		return Published{}, fmt.Errorf("dbsync: %w", err)
	}
	data = append(data, '\n')
	if _, err := s3.PutObject(ctx, bucket, LatestKey, strings.NewReader(string(data)), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/json", CacheControl: "no-cache"}); err != nil {
		return Published{}, fmt.Errorf("dbsync: put %s: %w", LatestKey, err)
	}
	return pub, nil
}

// uploadFile hashes the file, then uploads it from the same open file (a
// file replaced by rename meanwhile does not mix in), and returns the hex
// SHA-256.
func uploadFile(ctx context.Context, s3 *minio.Client, bucket, key, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("dbsync: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("dbsync: hash %s: %w", file, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("dbsync: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	_, err = s3.PutObject(ctx, bucket, key, io.LimitReader(f, n), n, minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		UserMetadata: map[string]string{"Sha256": sum},
		PartSize:     64 << 20,
	})
	if err != nil {
		return "", fmt.Errorf("dbsync: put %s: %w", key, err)
	}
	return sum, nil
}

// ErrNotPublished: the bucket has no vulndb/latest.json.
var ErrNotPublished = errors.New("dbsync: no vulnerability database published")

// Latest reads and validates vulndb/latest.json.
func Latest(ctx context.Context, s3 *minio.Client, bucket string) (Published, error) {
	obj, err := s3.GetObject(ctx, bucket, LatestKey, minio.GetObjectOptions{})
	if err != nil {
		return Published{}, notFound(err, fmt.Errorf("dbsync: get %s: %w", LatestKey, err))
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, 1<<20))
	if err != nil {
		return Published{}, notFound(err, fmt.Errorf("dbsync: get %s: %w", LatestKey, err))
	}
	var p Published
	if err := json.Unmarshal(data, &p); err != nil {
		return Published{}, fmt.Errorf("dbsync: %s: %w", LatestKey, err)
	}
	if err := p.validate(); err != nil {
		return Published{}, fmt.Errorf("dbsync: %s: %w", LatestKey, err)
	}
	return p, nil
}

func notFound(err, wrapped error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return ErrNotPublished
	}
	return wrapped
}

// validate checks what the poller will trust: names it turns into local
// paths and digests it verifies against.
func (p *Published) validate() error {
	switch {
	case p.UpdatedAt.IsZero():
		return errors.New("no updated_at")
	case !digestRe.MatchString(p.Digest):
		return fmt.Errorf("bad digest %q", p.Digest)
	case !strings.HasPrefix(p.Path, Prefix) || !dirNameRe.MatchString(strings.TrimPrefix(p.Path, Prefix)):
		return fmt.Errorf("bad path %q", p.Path)
	}
	if len(p.Files) == 0 {
		// Written by something that lists no files: take the two that
		// matter, trivy.db verified by the digest.
		p.Files = map[string]string{trivyDB: p.Digest, dbMeta: ""}
	}
	if p.Files[trivyDB] != p.Digest {
		return fmt.Errorf("files[%s] = %q, digest %q", trivyDB, p.Files[trivyDB], p.Digest)
	}
	if _, ok := p.Files[dbMeta]; !ok {
		return fmt.Errorf("files lacks %s", dbMeta)
	}
	for rel, sum := range p.Files {
		clean := path.Clean(rel)
		if clean != rel || !filepath.IsLocal(rel) || !(strings.HasPrefix(rel, "db/") || strings.HasPrefix(rel, javaDBDir+"/")) {
			return fmt.Errorf("bad file name %q", rel)
		}
		if sum != "" && !digestRe.MatchString(sum) {
			return fmt.Errorf("bad digest %q for %s", sum, rel)
		}
	}
	return nil
}

// sortedFiles returns the file names, metadata.json last.
func (p Published) sortedFiles() []string {
	var names []string
	for rel := range p.Files {
		if rel != dbMeta {
			names = append(names, rel)
		}
	}
	sort.Strings(names)
	return append(names, dbMeta)
}
