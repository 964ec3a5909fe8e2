package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan/internal/keyslot"
)

// byKey indexes list entries by their (decoded) object key.
func byKey(t *testing.T, raws []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, r := range raws {
		recs, err := ParseEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		k, err := recs[0].Key()
		if err != nil {
			t.Fatal(err)
		}
		m[k] = r
	}
	return m
}

func newConsumer(t *testing.T, sub Submitter, m Mapping) *Consumer {
	list, processing, dead := privateLists(t)
	return &Consumer{
		Redis: svc.rdb, List: list, Processing: processing, Dead: dead,
		Submitter: sub, Mapping: m, Log: testLogger(t),
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, Block: time.Second,
	}
}

func (c *Consumer) push(t *testing.T, key string, raws ...string) {
	t.Helper()
	for _, r := range raws {
		if err := svc.rdb.RPush(t.Context(), key, r).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *Consumer) lens(t *testing.T) (list, processing, dead int64) {
	t.Helper()
	ctx := t.Context()
	return svc.rdb.LLen(ctx, c.List).Val(), svc.rdb.LLen(ctx, c.Processing).Val(), svc.rdb.LLen(ctx, c.Dead).Val()
}

// waitDrained waits until List and Processing are empty.
func (c *Consumer) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l, p, _ := c.lens(t); l == 0 && p == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	l, p, d := c.lens(t)
	t.Fatalf("not drained: list %d, processing %d, dead %d", l, p, d)
}

// TestUploadEventFromMinIO checks, against the real MinIO, what an upload
// event carries and that HandleOne maps it to the right request, by user
// metadata and by key layout, with an escaped key and a version id.
func TestUploadEventFromMinIO(t *testing.T) {
	needServices(t)
	b := newBucket(t, true)
	key := "seller-1/asset-9/my (1).zip"
	info := put(t, b, key, map[string]string{"Asset-Id": "asset-9", "Seller-Id": "seller-1", "Asset-Kind": "container-image"})
	key2 := "seller-2/asset-3/a+b c&d.tar.gz"
	info2 := put(t, b, key2, nil)
	m := byKey(t, waitEvents(t, b, 2))
	raws := []string{m[key], m[key2]}

	recs, err := ParseEvent(raws[0])
	if err != nil {
		t.Fatal(err)
	}
	r := recs[0]
	t.Logf("record object: %+v", r.S3.Object)
	if r.EventName != "s3:ObjectCreated:Put" || r.S3.Object.Key != "seller-1%2Fasset-9%2Fmy+%281%29.zip" {
		t.Errorf("event %q key %q", r.EventName, r.S3.Object.Key)
	}
	wantMeta := map[string]string{"X-Amz-Meta-Asset-Id": "asset-9", "X-Amz-Meta-Seller-Id": "seller-1", "X-Amz-Meta-Asset-Kind": "container-image"}
	for k, v := range wantMeta {
		if r.S3.Object.UserMetadata[k] != v {
			t.Errorf("userMetadata[%q] = %q, want %q (all: %v)", k, r.S3.Object.UserMetadata[k], v, r.S3.Object.UserMetadata)
		}
	}
	if r.S3.Object.VersionID == "" || r.S3.Object.VersionID != info.VersionID {
		t.Errorf("versionId %q, want %q", r.S3.Object.VersionID, info.VersionID)
	}

	for _, m := range []Mapping{{FromMetadata: true}, {FromKeyLayout: true}, {FromMetadata: true, FromKeyLayout: true}} {
		sub := &fakeSubmitter{}
		c := &Consumer{Submitter: sub, Mapping: m, Log: testLogger(t)}
		if err := c.HandleOne(t.Context(), raws[0]); err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		want := []Request{{AssetID: "asset-9", SellerID: "seller-1", Kind: "container-image", Bucket: b, Key: key, VersionID: info.VersionID}}
		if !slices.Equal(sub.calls, want) {
			t.Errorf("%+v: calls %+v, want %+v", m, sub.calls, want)
		}
	}

	// No metadata: the key layout maps it; metadata alone cannot.
	sub := &fakeSubmitter{}
	c := &Consumer{Submitter: sub, Mapping: Mapping{FromMetadata: true, FromKeyLayout: true, DefaultKind: "vm-image"}}
	if err := c.HandleOne(t.Context(), raws[1]); err != nil {
		t.Fatal(err)
	}
	want := []Request{{AssetID: "asset-3", SellerID: "seller-2", Kind: "vm-image", Bucket: b, Key: key2, VersionID: info2.VersionID}}
	if !slices.Equal(sub.calls, want) {
		t.Errorf("calls %+v, want %+v", sub.calls, want)
	}
	c.Mapping = Mapping{FromMetadata: true}
	if err := c.HandleOne(t.Context(), raws[1]); !errors.Is(err, ErrPermanent) {
		t.Errorf("metadata mapping without metadata: %v, want ErrPermanent", err)
	}
}

// TestConsumerStartsAfterUploads: the consumer is down while 5 objects are
// uploaded; started afterwards, it submits each exactly once.
func TestConsumerStartsAfterUploads(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	var keys []string
	for i := range 5 {
		k := fmt.Sprintf("seller-%d/asset-%d/file %d.zip", i, i, i)
		keys = append(keys, k)
		put(t, b, k, nil)
	}
	raws := waitEvents(t, b, 5)
	sub := &fakeSubmitter{}
	c := newConsumer(t, sub, Mapping{FromKeyLayout: true})
	c.push(t, c.List, raws...)

	runConsumer(t, c)
	got := sub.waitFor(t, 5)
	c.waitDrained(t)
	time.Sleep(300 * time.Millisecond) // nothing more arrives
	got = sub.submitted()
	if len(got) != 5 || sub.ncalls() != 5 {
		t.Fatalf("%d submissions in %d calls, want 5: %+v", len(got), sub.ncalls(), got)
	}
	// MinIO does not keep the upload order in the list: compare as sets.
	slices.SortFunc(got, func(a, b Request) int { return strings.Compare(a.Key, b.Key) })
	var gotKeys []string
	for i, r := range got {
		gotKeys = append(gotKeys, r.Key)
		if r.SellerID != fmt.Sprintf("seller-%d", i) || r.AssetID != fmt.Sprintf("asset-%d", i) || r.Bucket != b || r.Kind != "package" {
			t.Errorf("submission %d: %+v", i, r)
		}
	}
	if !slices.Equal(gotKeys, keys) {
		t.Errorf("keys %q, want %q", gotKeys, keys)
	}
	if _, _, d := c.lens(t); d != 0 {
		t.Errorf("%d dead events", d)
	}
}

// TestConsumerDeadLettersMalformed: a malformed event goes to Dead and the
// consumer goes on with the next one.
func TestConsumerDeadLettersMalformed(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	put(t, b, "s/a/ok.zip", nil)
	raws := waitEvents(t, b, 1)
	sub := &fakeSubmitter{}
	c := newConsumer(t, sub, Mapping{FromKeyLayout: true})
	malformed := `[{"Event":[{"eventName":"s3:ObjectCreated:Put",` // truncated
	unmappable := strings.Replace(raws[0], "s%2Fa%2Fok.zip", "ok.zip", 1)
	c.push(t, c.List, malformed, unmappable, raws[0])

	runConsumer(t, c)
	sub.waitFor(t, 1)
	c.waitDrained(t)
	dead, err := svc.rdb.LRange(t.Context(), c.Dead, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dead, []string{malformed, unmappable}) {
		t.Errorf("dead %q, want the malformed and the unmappable event unchanged", dead)
	}
	if got := sub.submitted(); len(got) != 1 || got[0].Key != "s/a/ok.zip" {
		t.Errorf("submitted %+v", got)
	}
}

// TestConsumerRetriesTransient: Submit fails transiently twice, then
// succeeds: the event stays in Processing meanwhile and is submitted once.
func TestConsumerRetriesTransient(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	put(t, b, "s/a/retry.zip", nil)
	raws := waitEvents(t, b, 1)
	sub := &fakeSubmitter{}
	c := newConsumer(t, sub, Mapping{FromKeyLayout: true})
	var inProcessing []string
	sub.fail = func(n int, _ Request) error {
		if n > 2 {
			return nil
		}
		p, _ := svc.rdb.LRange(context.Background(), c.Processing, 0, -1).Result()
		inProcessing = append(inProcessing, p...)
		return errors.New("queue unavailable, retry later")
	}
	c.push(t, c.List, raws[0])

	runConsumer(t, c)
	sub.waitFor(t, 1)
	c.waitDrained(t)
	time.Sleep(200 * time.Millisecond)
	if sub.ncalls() != 3 || len(sub.submitted()) != 1 {
		t.Errorf("%d calls, %d submissions; want 3 and 1", sub.ncalls(), len(sub.submitted()))
	}
	if !slices.Equal(inProcessing, []string{raws[0], raws[0]}) {
		t.Errorf("processing during the failures: %q", inProcessing)
	}
	if _, _, d := c.lens(t); d != 0 {
		t.Errorf("%d dead events", d)
	}
}

// TestConsumerPermanentSubmitError: ErrPermanent from Submit dead-letters
// the event without retrying it.
func TestConsumerPermanentSubmitError(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	put(t, b, "s/a/gone.zip", nil)
	put(t, b, "s/a/fine.zip", nil)
	raws := waitEvents(t, b, 2)
	gone := byKey(t, raws)["s/a/gone.zip"]
	sub := &fakeSubmitter{fail: func(_ int, r Request) error {
		if strings.HasSuffix(r.Key, "gone.zip") {
			return fmt.Errorf("object not found: %w", ErrPermanent)
		}
		return nil
	}}
	c := newConsumer(t, sub, Mapping{FromKeyLayout: true})
	c.push(t, c.List, raws...)
	runConsumer(t, c)
	sub.waitFor(t, 1)
	c.waitDrained(t)
	if n := sub.ncalls(); n != 2 {
		t.Errorf("%d calls, want 2 (no retry of a permanent failure)", n)
	}
	dead, _ := svc.rdb.LRange(t.Context(), c.Dead, 0, -1).Result()
	if !slices.Equal(dead, []string{gone}) {
		t.Errorf("dead %q", dead)
	}
}

// TestConsumerIgnoresOtherEvents: removals and tagging (which MinIO sends
// as s3:ObjectCreated:PutTagging) are consumed without a scan and without
// being dead-lettered.
func TestConsumerIgnoresOtherEvents(t *testing.T) {
	needServices(t)
	b := newBucket(t, false, notification.ObjectCreatedAll, notification.ObjectRemovedAll)
	key := "s/a/x.zip"
	put(t, b, key, nil)
	raws := waitEvents(t, b, 1)
	if err := TagVerdict(t.Context(), svc.s3, b, key, "", "pass"); err != nil {
		t.Fatal(err)
	}
	raws = append(raws, waitEvents(t, b, 1)...)
	if err := svc.s3.RemoveObject(t.Context(), b, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	raws = append(raws, waitEvents(t, b, 1)...)
	var names []string
	for _, r := range raws {
		recs, err := ParseEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, recs[0].EventName)
	}
	if want := []string{"s3:ObjectCreated:Put", "s3:ObjectCreated:PutTagging", "s3:ObjectRemoved:Delete"}; !slices.Equal(names, want) {
		t.Fatalf("events %q, want %q", names, want)
	}

	sub := &fakeSubmitter{}
	c := newConsumer(t, sub, Mapping{FromKeyLayout: true})
	c.push(t, c.List, raws[1], raws[2], raws[0])
	runConsumer(t, c)
	sub.waitFor(t, 1)
	c.waitDrained(t)
	if n := sub.ncalls(); n != 1 {
		t.Errorf("%d calls, want 1 (the Put only)", n)
	}
	if _, _, d := c.lens(t); d != 0 {
		t.Errorf("%d dead events", d)
	}
}

// TestConsumerResumesProcessing: an event left in Processing by a consumer
// that died is handled first when a consumer starts.
func TestConsumerResumesProcessing(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	put(t, b, "s/a/left.zip", nil)
	put(t, b, "s/a/next.zip", nil)
	raws := byKey(t, waitEvents(t, b, 2))
	sub := &fakeSubmitter{}
	c := newConsumer(t, sub, Mapping{FromKeyLayout: true})
	c.push(t, c.Processing, raws["s/a/left.zip"])
	c.push(t, c.List, raws["s/a/next.zip"])
	runConsumer(t, c)
	got := sub.waitFor(t, 2)
	c.waitDrained(t)
	if got[0].Key != "s/a/left.zip" || got[1].Key != "s/a/next.zip" || sub.ncalls() != 2 {
		t.Errorf("submitted %+v", got)
	}
}

// TestConsumerStopsMidRetry: cancelled while an event fails, the consumer
// leaves it in Processing; the next consumer submits it.
func TestConsumerStopsMidRetry(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	put(t, b, "s/a/later.zip", nil)
	raws := waitEvents(t, b, 1)
	failing := &fakeSubmitter{fail: func(int, Request) error { return errors.New("redis down") }}
	c := newConsumer(t, failing, Mapping{FromKeyLayout: true})
	c.push(t, c.List, raws[0])
	stop := runConsumer(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for failing.ncalls() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if l, p, d := c.lens(t); l != 0 || p != 1 || d != 0 {
		t.Fatalf("after stop: list %d processing %d dead %d, want 0 1 0", l, p, d)
	}
	sub := &fakeSubmitter{}
	c2 := *c
	c2.Submitter = sub
	runConsumer(t, &c2)
	sub.waitFor(t, 1)
	c2.waitDrained(t)
}

// TestConsumerTagsPending: with S3 set, a new upload is tagged pending
// before it is submitted, and a re-delivered event does not reset a
// verdict tag.
func TestConsumerTagsPending(t *testing.T) {
	needServices(t)
	b := newBucket(t, false)
	key := "s/a/p.zip"
	put(t, b, key, nil)
	raws := waitEvents(t, b, 1)
	sub := &fakeSubmitter{}
	c := &Consumer{Submitter: sub, Mapping: Mapping{FromKeyLayout: true}, S3: svc.s3}
	tagsAt := func() string {
		tg, err := svc.s3.GetObjectTagging(t.Context(), b, key, minio.GetObjectTaggingOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tg.ToMap()[VerdictTag]
	}
	sub.fail = func(int, Request) error {
		if v := tagsAt(); v != "pending" {
			t.Errorf("tag at submit: %q, want pending", v)
		}
		return nil
	}
	if err := c.HandleOne(t.Context(), raws[0]); err != nil {
		t.Fatal(err)
	}
	sub.fail = nil
	if err := TagVerdict(t.Context(), svc.s3, b, key, "", "pass"); err != nil {
		t.Fatal(err)
	}
	if err := c.HandleOne(t.Context(), raws[0]); err != nil {
		t.Fatal(err)
	}
	if v := tagsAt(); v != "pass" {
		t.Errorf("tag after re-delivery: %q, want pass", v)
	}
	// The object is gone: permanent.
	if err := svc.s3.RemoveObject(t.Context(), b, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.HandleOne(t.Context(), raws[0]); !errors.Is(err, ErrPermanent) {
		t.Errorf("removed object: %v, want ErrPermanent", err)
	}
	takeEvents(t.Context(), b)
}

func TestConsumerConfig(t *testing.T) {
	for _, c := range []*Consumer{
		{},
		{Redis: svc.rdb, List: "l", Submitter: &fakeSubmitter{}},
		{Redis: svc.rdb, List: "l", Processing: "l", Submitter: &fakeSubmitter{}, Mapping: Mapping{FromKeyLayout: true}},
	} {
		if err := c.Run(t.Context()); err == nil {
			t.Errorf("%+v: Run accepted a bad config", c)
		}
	}
}

// TestConsumerKeysShareASlot: BLMOVE List→Processing and the MULTI over
// Processing and Dead need one Redis Cluster slot; the defaults put them
// there and keys that are not are refused before anything runs.
func TestConsumerKeysShareASlot(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	tests := []struct {
		name, list, processing, dead string
		wantProcessing, wantDead     string
		wantErr                      bool
	}{
		{name: "defaults", list: "assetscan:events",
			wantProcessing: "{assetscan:events}:processing", wantDead: "{assetscan:events}:dead"},
		{name: "list with a hash tag", list: "{tenant-a}:events",
			wantProcessing: "{tenant-a}:events:processing", wantDead: "{tenant-a}:events:dead"},
		{name: "explicit keys in the slot", list: "{q}", processing: "{q}:p-1", dead: "{q}:d",
			wantProcessing: "{q}:p-1", wantDead: "{q}:d"},
		{name: "old-style names span slots", list: "assetscan:events", processing: "assetscan:events:processing",
			dead: "assetscan:events:dead", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Consumer{Redis: rdb, List: tt.list, Processing: tt.processing, Dead: tt.dead,
				Submitter: &fakeSubmitter{}, Mapping: Mapping{FromKeyLayout: true}}
			err := c.defaults()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "slot") {
					t.Fatalf("defaults() = %v, want a slot error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Processing != tt.wantProcessing || c.Dead != tt.wantDead {
				t.Errorf("processing, dead = %q, %q; want %q, %q", c.Processing, c.Dead, tt.wantProcessing, tt.wantDead)
			}
			if !keyslot.Same(c.List, c.Processing, c.Dead) {
				t.Errorf("keys in different slots: %q %q %q", c.List, c.Processing, c.Dead)
			}
		})
	}
}
