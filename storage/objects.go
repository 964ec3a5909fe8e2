// Package storage is assetscan's access to object storage (any S3-compatible
// service; MinIO in tests and production) and its verdict store (verdict
// documents of record in object storage, status and indexes in Redis).
package storage

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: the bucket, object or version does not exist. Permanent.
	ErrNotFound = errors.New("object not found")
	// ErrTooLarge: the object is larger than the caller's cap. Permanent.
	ErrTooLarge = errors.New("object too large")
	// ErrChanged: the object no longer matches its pin (another version
	// or ETag under the key). Permanent for that submission.
	ErrChanged = errors.New("object changed since submission")
	// ErrUnavailable: storage could not be reached or answered with a
	// server error. Transient: retry.
	ErrUnavailable = errors.New("object storage unavailable")
)

// S3Config configures the S3 client. Every field is documented in the
// README's configuration table (ASSETSCAN_S3_*).
type S3Config struct {
	// Endpoint is host:port of the S3 service, e.g. 127.0.0.1:9000.
	Endpoint string
	// AccessKey and SecretKey are the credentials.
	AccessKey string
	SecretKey string
	// Secure uses HTTPS.
	Secure bool
	// Region, optional.
	Region string
	// Transport overrides the HTTP transport (tests, custom CAs).
	Transport http.RoundTripper
	// InsecureSkipVerify skips TLS verification (embedded demo only).
	InsecureSkipVerify bool
}

// Validate reports configuration errors with the field's name.
func (c S3Config) Validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("s3 endpoint (ASSETSCAN_S3_ENDPOINT) is required")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("s3 endpoint %q must be host:port without a scheme (use ASSETSCAN_S3_SECURE for https)", c.Endpoint)
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("s3 access key and secret key (ASSETSCAN_S3_ACCESS_KEY, ASSETSCAN_S3_SECRET_KEY) are required")
	}
	return nil
}

// Objects reads sellers' objects and writes reports.
type Objects struct {
	c *minio.Client
}

// NewObjects connects (lazily) to the S3 service.
func NewObjects(cfg S3Config) (*Objects, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := cfg.Transport
	if tr == nil {
		t := &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
		}
		if cfg.InsecureSkipVerify {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // embedded demo only
		}
		tr = t
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return &Objects{c: c}, nil
}

// Client exposes the underlying client for setup tasks (bucket creation,
// notifications) done by commands and tests.
func (o *Objects) Client() *minio.Client { return o.c }

// Info describes an object.
type Info struct {
	Size      int64
	ETag      string
	VersionID string
	Metadata  map[string]string
}

// Stat returns the object's size and ETag. ErrNotFound if missing.
func (o *Objects) Stat(ctx context.Context, bucket, key, versionID string) (Info, error) {
	st, err := o.c.StatObject(ctx, bucket, key, minio.StatObjectOptions{VersionID: versionID})
	if err != nil {
		return Info{}, classify("stat object", err)
	}
	md := map[string]string{}
	for k, v := range st.UserMetadata {
		md[strings.ToLower(k)] = v
	}
	return Info{Size: st.Size, ETag: st.ETag, VersionID: st.VersionID, Metadata: md}, nil
}

// Pin names one exact object: a version when the bucket is versioned,
// and the ETag recorded at submission, so that bytes written under the key
// after the submission are never scanned (or tagged) in its name.
type Pin struct {
	Bucket, Key string
	// VersionID, optional, selects the version.
	VersionID string
	// ETag, optional, must match the object's (If-Match): ErrChanged
	// otherwise.
	ETag string
}

// Download streams the pinned object into dst (created, must not exist)
// while hashing it. It never holds the object in memory and stops with
// ErrTooLarge as soon as more than maxBytes arrive (maxBytes <= 0: no cap).
// It returns the hex SHA-256 and the byte count; ErrChanged when the
// object no longer matches the pin's ETag.
func (o *Objects) Download(ctx context.Context, pin Pin, dst string, maxBytes int64) (string, int64, error) {
	opts := minio.GetObjectOptions{VersionID: pin.VersionID}
	if pin.ETag != "" {
		if err := opts.SetMatchETag(strings.Trim(pin.ETag, `"`)); err != nil {
			return "", 0, fmt.Errorf("download object: %w", err)
		}
	}
	obj, err := o.c.GetObject(ctx, pin.Bucket, pin.Key, opts)
	if err != nil {
		return "", 0, classify("download object", err)
	}
	defer obj.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("download object: %w", err)
	}
	defer out.Close()
	h := sha256.New()
	var src io.Reader = obj
	if maxBytes > 0 {
		src = io.LimitReader(obj, maxBytes+1)
	}
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(io.MultiWriter(out, h), src, buf)
	if err != nil {
		return "", n, classify("download object", err)
	}
	if maxBytes > 0 && n > maxBytes {
		return "", n, fmt.Errorf("download object: %w: more than %d bytes", ErrTooLarge, maxBytes)
	}
	if err := out.Close(); err != nil {
		return "", n, fmt.Errorf("download object: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Put writes a small object (reports, verdicts).
func (o *Objects) Put(ctx context.Context, bucket, key string, data []byte, contentType string) error {
	_, err := o.c.PutObject(ctx, bucket, key, strings.NewReader(string(data)), int64(len(data)),
		minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return classify("put object", err)
	}
	return nil
}

// Get reads a small object fully (reports, verdicts), at most 64 MiB.
func (o *Objects) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	obj, err := o.c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, classify("get object", err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, 64<<20))
	if err != nil {
		return nil, classify("get object", err)
	}
	return data, nil
}

// EnsureBucket creates a bucket if it does not exist.
func (o *Objects) EnsureBucket(ctx context.Context, bucket string) error {
	ok, err := o.c.BucketExists(ctx, bucket)
	if err != nil {
		return classify("bucket exists", err)
	}
	if ok {
		return nil
	}
	if err := o.c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return classify("make bucket", err)
	}
	return nil
}

// Ping checks that storage answers (readiness).
func (o *Objects) Ping(ctx context.Context, bucket string) error {
	_, err := o.c.BucketExists(ctx, bucket)
	if err != nil {
		return classify("ping storage", err)
	}
	return nil
}

// classify maps S3 errors onto the sentinels.
func classify(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" {
		return fmt.Errorf("%s: %w", op, ErrChanged)
	}
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound":
		return fmt.Errorf("%s: %w: %s", op, ErrNotFound, resp.Message)
	case "InvalidArgument", "InvalidBucketName", "XMinioInvalidObjectName":
		return fmt.Errorf("%s: %w: %s", op, ErrNotFound, resp.Message)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}
