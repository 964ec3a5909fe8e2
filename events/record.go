package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Submitter creates a scan exactly like POST /v1/scans: same validation,
// stat of the object, dedup and enqueue. created is false when the same
// submission already had a scan (dedup). An error wrapping ErrPermanent
// means the request can never succeed (invalid ids or kind, object gone);
// any other error is transient and the event is retried.
type Submitter interface {
	Submit(ctx context.Context, req Request) (scanID string, created bool, err error)
}

// Request is one scan submission derived from an upload event. Key is the
// decoded object key; VersionID is empty for unversioned buckets.
type Request struct {
	AssetID, SellerID, Kind, Bucket, Key, VersionID string
}

// ErrPermanent from Submit (or HandleOne) means the event can never
// succeed: it is moved to the dead-letter list, not retried.
var ErrPermanent = errors.New("permanent")

// Metadata names read from the object's user metadata (case-insensitive).
const (
	MetaAssetID  = "X-Amz-Meta-Asset-Id"
	MetaSellerID = "X-Amz-Meta-Seller-Id"
	MetaKind     = "X-Amz-Meta-Asset-Kind"
)

// DefaultKind is the kind used when neither the metadata nor
// Mapping.DefaultKind names one.
const DefaultKind = "package"

// Mapping says where a scan's asset and seller ids come from (see the
// package documentation). At least one of FromMetadata and FromKeyLayout
// must be set.
type Mapping struct {
	// DefaultKind is the kind when the object has no X-Amz-Meta-Asset-Kind
	// ("" means "package").
	DefaultKind string
	// FromMetadata takes the ids from X-Amz-Meta-Asset-Id and
	// X-Amz-Meta-Seller-Id.
	FromMetadata bool
	// FromKeyLayout takes them from a key "<seller_id>/<asset_id>/<name>".
	FromKeyLayout bool
}

// Validate reports a mapping that can never produce ids.
func (m Mapping) Validate() error {
	if !m.FromMetadata && !m.FromKeyLayout {
		return errors.New("events: Mapping: set FromMetadata and/or FromKeyLayout")
	}
	return nil
}

// Record is the part of an S3 event record the consumer reads.
type Record struct {
	EventName string `json:"eventName"`
	EventTime string `json:"eventTime"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			// Key is URL-escaped (url.QueryEscape) as MinIO sends it.
			Key          string            `json:"key"`
			Size         int64             `json:"size"`
			ETag         string            `json:"eTag"`
			VersionID    string            `json:"versionId"`
			UserMetadata map[string]string `json:"userMetadata"`
			Sequencer    string            `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

// uploadEvents are the event names that start a scan. Other
// s3:ObjectCreated:* events (PutTagging, DeleteTagging, PutRetention,
// PutLegalHold) change no content.
var uploadEvents = map[string]bool{
	"s3:ObjectCreated:Put":                     true,
	"s3:ObjectCreated:Post":                    true,
	"s3:ObjectCreated:Copy":                    true,
	"s3:ObjectCreated:CompleteMultipartUpload": true,
}

// IsUpload reports whether an event name is one that starts a scan.
func IsUpload(eventName string) bool { return uploadEvents[eventName] }

// ParseEvent parses one list entry into its records. It accepts MinIO's
// access format ([{"Event":[...],"EventTime":...}, ...]), a single such
// object, and a plain S3 notification ({"Records":[...]}). A parse error
// wraps ErrPermanent.
func ParseEvent(raw string) ([]Record, error) {
	b := bytes.TrimSpace([]byte(raw))
	type envelope struct {
		Event   []Record `json:"Event"`
		Records []Record `json:"Records"`
	}
	var envs []envelope
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &envs); err != nil {
			return nil, fmt.Errorf("%w: malformed event: %v", ErrPermanent, err)
		}
	case len(b) > 0 && b[0] == '{':
		var e envelope
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%w: malformed event: %v", ErrPermanent, err)
		}
		envs = []envelope{e}
	default:
		return nil, fmt.Errorf("%w: malformed event: not a JSON array or object", ErrPermanent)
	}
	var recs []Record
	for _, e := range envs {
		recs = append(recs, e.Event...)
		recs = append(recs, e.Records...)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: malformed event: no records", ErrPermanent)
	}
	for i, r := range recs {
		if r.EventName == "" || r.S3.Bucket.Name == "" || r.S3.Object.Key == "" {
			return nil, fmt.Errorf("%w: malformed event: record %d lacks eventName, bucket or key", ErrPermanent, i)
		}
	}
	return recs, nil
}

// Key returns the record's object key, unescaped.
func (r Record) Key() (string, error) {
	k, err := url.QueryUnescape(r.S3.Object.Key)
	if err != nil {
		return "", fmt.Errorf("%w: bad object key %q: %v", ErrPermanent, r.S3.Object.Key, err)
	}
	return k, nil
}

// meta returns a user metadata value by name, case-insensitively, also
// accepting the name without its X-Amz-Meta- prefix.
func (r Record) meta(name string) string {
	short := strings.TrimPrefix(name, "X-Amz-Meta-")
	for k, v := range r.S3.Object.UserMetadata {
		if strings.EqualFold(k, name) || strings.EqualFold(k, short) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Request maps an upload record to a scan request. Errors wrap
// ErrPermanent.
func (m Mapping) Request(r Record) (Request, error) {
	if err := m.Validate(); err != nil {
		return Request{}, err
	}
	key, err := r.Key()
	if err != nil {
		return Request{}, err
	}
	req := Request{Bucket: r.S3.Bucket.Name, Key: key, VersionID: r.S3.Object.VersionID}

	var metaAsset, metaSeller, keyAsset, keySeller string
	if m.FromMetadata {
		metaAsset, metaSeller = r.meta(MetaAssetID), r.meta(MetaSellerID)
	}
	layoutErr := error(nil)
	if m.FromKeyLayout {
		keySeller, keyAsset, layoutErr = splitKey(key)
	}
	pick := func(field, fromMeta, fromKey string) (string, error) {
		switch {
		case fromMeta != "" && fromKey != "" && fromMeta != fromKey:
			return "", fmt.Errorf("%w: %s %q in metadata contradicts %q in key %q", ErrPermanent, field, fromMeta, fromKey, key)
		case fromMeta != "":
			return fromMeta, nil
		case fromKey != "":
			return fromKey, nil
		}
		var why []string
		if m.FromMetadata {
			why = append(why, "no "+map[string]string{"asset id": MetaAssetID, "seller id": MetaSellerID}[field]+" metadata")
		}
		if m.FromKeyLayout {
			why = append(why, layoutErr.Error())
		}
		return "", fmt.Errorf("%w: no %s for key %q: %s", ErrPermanent, field, key, strings.Join(why, ", "))
	}
	if req.AssetID, err = pick("asset id", metaAsset, keyAsset); err != nil {
		return Request{}, err
	}
	if req.SellerID, err = pick("seller id", metaSeller, keySeller); err != nil {
		return Request{}, err
	}
	req.Kind = r.meta(MetaKind)
	if req.Kind == "" {
		req.Kind = m.DefaultKind
	}
	if req.Kind == "" {
		req.Kind = DefaultKind
	}
	return req, nil
}

// splitKey parses "<seller_id>/<asset_id>/<file name>".
func splitKey(key string) (seller, asset string, err error) {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || strings.HasSuffix(parts[2], "/") {
		return "", "", errors.New(`key is not "<seller_id>/<asset_id>/<file name>"`)
	}
	return parts[0], parts[1], nil
}
