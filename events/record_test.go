package events

import (
	"errors"
	"strings"
	"testing"
)

// minioPut is an entry MinIO (the project's build, access format) pushed
// for an upload of "seller-1/asset-9/my (1)+x%y&z=ü.zip" with user
// metadata; see TestUploadEventFromMinIO for the live check.
const minioPut = `[{"Event":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-11-27T11:50:34.619Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"assetscan-test"},"requestParameters":{"principalId":"assetscan-test","region":"","sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-id-2":"470a0afc0f6fdbebb6a8e14ece29122784c0656e19563387135a7c8e02feb163","x-amz-request-id":"18EBE49BE2C53AFD","x-minio-deployment-id":"b1955273-9bbc-4215-90ee-127df9def456","x-minio-origin-endpoint":"http://127.0.0.1:19000"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"explore-1795780234593465531","ownerIdentity":{"principalId":"assetscan-test"},"arn":"arn:aws:s3:::explore-1795780234593465531"},"object":{"key":"seller-1%2Fasset-9%2Fmy+%281%29%2Bx%25y%26z%3D%C3%BC.zip","size":5,"eTag":"5d41402abc4b2a76b9719d911017c592","contentType":"application/octet-stream","userMetadata":{"X-Amz-Meta-Asset-Id":"a-1","X-Amz-Meta-Asset-Kind":"container-image","X-Amz-Meta-Seller-Id":"S-2","content-type":"application/octet-stream"},"sequencer":"18EBE49BE3139142"}},"source":{"host":"127.0.0.1","port":"","userAgent":"MinIO (linux; amd64) minio-go/v7.4.1"}}],"EventTime":"2026-11-27T11:50:34.619Z"}]`

func TestParseEventMinIO(t *testing.T) {
	recs, err := ParseEvent(minioPut)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	key, err := r.Key()
	if err != nil {
		t.Fatal(err)
	}
	if want := "seller-1/asset-9/my (1)+x%y&z=ü.zip"; key != want {
		t.Errorf("key %q, want %q", key, want)
	}
	if !IsUpload(r.EventName) || r.S3.Bucket.Name != "explore-1795780234593465531" {
		t.Errorf("record %+v", r)
	}
	for _, m := range []Mapping{{FromMetadata: true}, {FromMetadata: true, FromKeyLayout: false, DefaultKind: "vm-image"}} {
		req, err := m.Request(r)
		if err != nil {
			t.Fatal(err)
		}
		want := Request{AssetID: "a-1", SellerID: "S-2", Kind: "container-image", Bucket: r.S3.Bucket.Name, Key: key}
		if req != want {
			t.Errorf("%+v: got %+v, want %+v", m, req, want)
		}
	}
	req, err := Mapping{FromKeyLayout: true}.Request(r)
	if err != nil {
		t.Fatal(err)
	}
	if req.AssetID != "asset-9" || req.SellerID != "seller-1" || req.Kind != "container-image" {
		t.Errorf("key layout: %+v", req)
	}
	// Both: metadata and key disagree -> permanent.
	if _, err := (Mapping{FromMetadata: true, FromKeyLayout: true}).Request(r); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "contradicts") {
		t.Errorf("conflict: %v", err)
	}
}

func rec(name, key string, meta map[string]string) Record {
	var r Record
	r.EventName = name
	r.S3.Bucket.Name = "uploads"
	r.S3.Object.Key = key
	r.S3.Object.UserMetadata = meta
	return r
}

func TestMapping(t *testing.T) {
	both := Mapping{FromMetadata: true, FromKeyLayout: true, DefaultKind: "vm-image"}
	cases := []struct {
		name string
		m    Mapping
		r    Record
		want Request
		err  string
	}{
		{"layout", Mapping{FromKeyLayout: true}, rec("s3:ObjectCreated:Put", "s1%2Fa1%2Fdir%2Ff.zip", nil),
			Request{SellerID: "s1", AssetID: "a1", Kind: "package", Bucket: "uploads", Key: "s1/a1/dir/f.zip"}, ""},
		{"layout too short", Mapping{FromKeyLayout: true}, rec("s3:ObjectCreated:Put", "s1%2Ff.zip", nil), Request{}, "no asset id"},
		{"layout empty segment", Mapping{FromKeyLayout: true}, rec("s3:ObjectCreated:Put", "s1%2F%2Ff.zip", nil), Request{}, "no asset id"},
		{"metadata missing", Mapping{FromMetadata: true}, rec("s3:ObjectCreated:Put", "s1%2Fa1%2Ff.zip", nil), Request{}, "X-Amz-Meta-Asset-Id"},
		{"metadata lower case", Mapping{FromMetadata: true}, rec("s3:ObjectCreated:Put", "f.zip",
			map[string]string{"x-amz-meta-asset-id": "A", "x-amz-meta-seller-id": "S", "x-amz-meta-asset-kind": "vm-image"}),
			Request{SellerID: "S", AssetID: "A", Kind: "vm-image", Bucket: "uploads", Key: "f.zip"}, ""},
		{"both, metadata only", both, rec("s3:ObjectCreated:Put", "f.zip",
			map[string]string{"X-Amz-Meta-Asset-Id": "A", "X-Amz-Meta-Seller-Id": "S"}),
			Request{SellerID: "S", AssetID: "A", Kind: "vm-image", Bucket: "uploads", Key: "f.zip"}, ""},
		{"both, key fills the gap", both, rec("s3:ObjectCreated:Put", "s1%2Fa1%2Ff.zip",
			map[string]string{"X-Amz-Meta-Asset-Id": "a1"}),
			Request{SellerID: "s1", AssetID: "a1", Kind: "vm-image", Bucket: "uploads", Key: "s1/a1/f.zip"}, ""},
		{"both, seller conflict", both, rec("s3:ObjectCreated:Put", "s1%2Fa1%2Ff.zip",
			map[string]string{"X-Amz-Meta-Seller-Id": "s2"}), Request{}, "contradicts"},
		{"bad escape", Mapping{FromKeyLayout: true}, rec("s3:ObjectCreated:Put", "s1%2Fa1%2F%zz", nil), Request{}, "bad object key"},
		{"no mapping", Mapping{}, rec("s3:ObjectCreated:Put", "s1%2Fa1%2Ff", nil), Request{}, "FromMetadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.Request(c.r)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want containing %q", err, c.err)
				}
				if c.m.Validate() == nil && !errors.Is(err, ErrPermanent) {
					t.Errorf("err %v does not wrap ErrPermanent", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseEventMalformed(t *testing.T) {
	for _, raw := range []string{``, `not json`, `{"Event":`, `[]`, `[{"Event":[]}]`, `[{"Event":[{"eventName":"s3:ObjectCreated:Put"}]}]`, `42`} {
		if _, err := ParseEvent(raw); !errors.Is(err, ErrPermanent) {
			t.Errorf("%q: err %v, want ErrPermanent", raw, err)
		}
	}
	// A plain S3 notification is accepted too.
	recs, err := ParseEvent(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%v %v", recs, err)
	}
}

func TestIsUpload(t *testing.T) {
	for name, want := range map[string]bool{
		"s3:ObjectCreated:Put": true, "s3:ObjectCreated:Post": true, "s3:ObjectCreated:Copy": true,
		"s3:ObjectCreated:CompleteMultipartUpload": true, "s3:ObjectCreated:PutTagging": false,
		"s3:ObjectCreated:DeleteTagging": false, "s3:ObjectCreated:PutRetention": false,
		"s3:ObjectRemoved:Delete": false, "s3:ObjectAccessed:Get": false,
	} {
		if IsUpload(name) != want {
			t.Errorf("IsUpload(%q) = %v", name, !want)
		}
	}
}
