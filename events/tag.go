package events

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/tags"

	"github.com/assetscan/assetscan"
)

// VerdictTag is the object tag TagVerdict writes.
const VerdictTag = "assetscan-verdict"

// PendingValue is the VerdictTag value TagPending writes.
const PendingValue = "pending"

// TagVerdict sets the object tag assetscan-verdict=pass|fail|error on the
// object (the given version; "" is the latest), keeping its other tags.
// The read-modify-write is not atomic: a tag written by someone else in
// between is lost. S3 allows 10 tags per object; an object with 10 other
// tags cannot be tagged (error).
func TagVerdict(ctx context.Context, s3 *minio.Client, bucket, key, versionID string, verdict assetscan.Outcome) error {
	switch verdict {
	case assetscan.Pass, assetscan.Fail, assetscan.Error:
	default:
		return fmt.Errorf("tag verdict: unknown verdict %q", verdict)
	}
	_, err := setTag(ctx, s3, bucket, key, versionID, string(verdict), true)
	if err != nil {
		return fmt.Errorf("tag verdict %s/%s: %w", bucket, key, err)
	}
	return nil
}

// TagPending sets assetscan-verdict=pending unless the object already has
// an assetscan-verdict tag (a re-delivered event must not reset a verdict).
// It reports whether it wrote the tag.
func TagPending(ctx context.Context, s3 *minio.Client, bucket, key, versionID string) (bool, error) {
	return setTag(ctx, s3, bucket, key, versionID, PendingValue, false)
}

func setTag(ctx context.Context, s3 *minio.Client, bucket, key, versionID, value string, overwrite bool) (bool, error) {
	cur, err := s3.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{VersionID: versionID})
	if err != nil {
		return false, err
	}
	m := cur.ToMap()
	if old, ok := m[VerdictTag]; ok && (!overwrite || old == value) {
		return false, nil
	}
	m[VerdictTag] = value
	t, err := tags.NewTags(m, true)
	if err != nil {
		return false, err
	}
	if err := s3.PutObjectTagging(ctx, bucket, key, t, minio.PutObjectTaggingOptions{VersionID: versionID}); err != nil {
		return false, err
	}
	return true, nil
}
