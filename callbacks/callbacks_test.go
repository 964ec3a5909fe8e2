package callbacks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
)

// realRedisDB is the only database of the real Redis these tests use.
const realRedisDB = 14

// eachRedis runs f against a fresh miniredis and, when
// ASSETSCAN_TEST_REDIS_ADDR is set (scripts/test.sh), against database 14
// of that real Redis, flushed before and after.
func eachRedis(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { rdb.Close() })
		f(t, rdb)
	})
	addr := os.Getenv("ASSETSCAN_TEST_REDIS_ADDR")
	t.Run("redis", func(t *testing.T) {
		if addr == "" {
			t.Skip("ASSETSCAN_TEST_REDIS_ADDR not set: real Redis not tested (scripts/test.sh sets it)")
		}
		if strings.Contains(addr, ",") {
			// A cluster has only database 0, shared with every package
			// under test: flushing it would wipe their keys.
			t.Skip("ASSETSCAN_TEST_REDIS_ADDR is a Redis Cluster: these tests flush their database; run them on a single Redis")
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr, DB: realRedisDB})
		t.Cleanup(func() { rdb.Close() })
		if err := rdb.FlushDB(t.Context()).Err(); err != nil {
			t.Fatalf("flush redis %s db %d: %v", addr, realRedisDB, err)
		}
		t.Cleanup(func() { rdb.FlushDB(context.Background()) })
		f(t, rdb)
	})
}

const testPrefix = "assetscan-test:"

func testVerdict(scanID string) assetscan.Verdict {
	return assetscan.Verdict{
		ScanID: scanID, AssetID: "asset-1", SellerID: "acme", Kind: assetscan.KindPackage,
		Status: assetscan.StatusDone, Verdict: assetscan.Fail, SHA256: strings.Repeat("a", 64),
		FailedRules: []assetscan.FailedRule{{Rule: "vulnerability.cvss", Count: 1, Example: "CVE-2021-44228"}},
		Object:      assetscan.Object{Name: "app.zip", Size: 1234},
		Policy:      assetscan.PolicyRef{ID: "default", Version: 1},
		Findings:    []assetscan.JudgedFinding{}, Checks: []assetscan.CheckRun{},
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
	got := Sign("whsec_test", time.Unix(1700000000, 0), []byte(`{"a":1}`))
	if want := "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_s3cret"
	body := []byte(`{"event":"verdict.final","verdict":{"scan_id":"scn_1"}}`)
	now := time.Unix(1_750_000_000, 0)
	signed := func(ts time.Time, b []byte) http.Header {
		h := http.Header{}
		h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderSignature, Sign(secret, ts, b))
		return h
	}
	tests := []struct {
		name   string
		h      http.Header
		body   []byte
		secret string
		window time.Duration
		want   error
	}{
		{name: "valid", h: signed(now, body), want: nil},
		{name: "valid, 4 min old", h: signed(now.Add(-4*time.Minute), body), want: nil},
		{name: "valid, clock 4 min ahead", h: signed(now.Add(4*time.Minute), body), want: nil},
		{name: "tampered body", h: signed(now, body), body: []byte(`{"event":"verdict.final","verdict":{"scan_id":"scn_2"}}`), want: ErrBadSignature},
		{name: "tampered timestamp", h: func() http.Header {
			h := signed(now.Add(-10*time.Minute), body)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10)) // make a stale capture look fresh
			return h
		}(), want: ErrBadSignature},
		{name: "stale (replay)", h: signed(now.Add(-6*time.Minute), body), want: ErrStale},
		{name: "too far in the future", h: signed(now.Add(6*time.Minute), body), want: ErrStale},
		{name: "custom window", h: signed(now.Add(-2*time.Minute), body), window: time.Minute, want: ErrStale},
		{name: "wrong secret", h: signed(now, body), secret: "whsec_other", want: ErrBadSignature},
		{name: "missing timestamp", h: func() http.Header { h := signed(now, body); h.Del(HeaderTimestamp); return h }(), want: ErrMissingHeader},
		{name: "missing signature", h: func() http.Header { h := signed(now, body); h.Del(HeaderSignature); return h }(), want: ErrMissingHeader},
		{name: "no headers", h: http.Header{}, want: ErrMissingHeader},
		{name: "malformed timestamp", h: func() http.Header { h := signed(now, body); h.Set(HeaderTimestamp, "soon"); return h }(), want: ErrBadSignature},
		{name: "no v1 entry", h: func() http.Header {
			h := signed(now, body)
			h.Set(HeaderSignature, strings.Replace(h.Get(HeaderSignature), "v1=", "v0=", 1))
			return h
		}(), want: ErrBadSignature},
		{name: "not hex", h: func() http.Header { h := signed(now, body); h.Set(HeaderSignature, "v1=zz"); return h }(), want: ErrBadSignature},
		{name: "several entries, one good", h: func() http.Header {
			h := signed(now, body)
			h.Set(HeaderSignature, "v2=abc, v1=00ff, "+h.Get(HeaderSignature))
			return h
		}(), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, s := tt.body, tt.secret
			if b == nil {
				b = body
			}
			if s == "" {
				s = secret
			}
			err := Verify(s, tt.h, b, now, tt.window)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStore(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		s := newTestStore(rdb)
		a, err := s.Add(ctx, "https://asset-center.example/hooks/assetscan?tenant=1", "ac")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.ID, "sub_") || !strings.HasPrefix(a.Secret, "whsec_") || len(a.Secret) != len("whsec_")+43 {
			t.Fatalf("Add = %+v: want id sub_..., secret whsec_ + 43 characters", a)
		}
		if a.CreatedBy != "ac" || a.CreatedAt.IsZero() {
			t.Fatalf("Add = %+v", a)
		}
		b, err := s.Add(ctx, "HTTP://10.0.0.5:8080/cb", "ac")
		if err != nil {
			t.Fatal(err)
		}
		if b.URL != "http://10.0.0.5:8080/cb" || b.Secret == a.Secret || b.ID == a.ID {
			t.Fatalf("second subscriber %+v", b)
		}

		// The secret is stored (signing needs it) under the documented key...
		raw, err := rdb.HGet(ctx, testPrefix+"callbacks:subscribers", a.ID).Result()
		if err != nil || !strings.Contains(raw, a.Secret) {
			t.Fatalf("stored %q, %v: want the subscriber with its secret", raw, err)
		}
		// ...but never listed.
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
			t.Fatalf("List = %+v", list)
		}
		for _, sub := range list {
			if sub.Secret != "" {
				t.Errorf("List returned a secret for %s", sub.ID)
			}
		}
		js, _ := json.Marshal(list)
		if strings.Contains(string(js), "secret") || strings.Contains(string(js), "whsec_") {
			t.Errorf("listed JSON carries a secret: %s", js)
		}
		if got, err := s.get(ctx, a.ID); err != nil || got.Secret != a.Secret || got.URL != a.URL {
			t.Fatalf("get = %+v, %v", got, err)
		}

		if err := s.Remove(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, a.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Remove = %v, want ErrNotFound", err)
		}
		if _, err := s.get(ctx, a.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get removed = %v", err)
		}
		list, _ = s.List(ctx)
		if len(list) != 1 || list[0].ID != b.ID {
			t.Fatalf("List after Remove = %+v", list)
		}
	})
}

func TestStoreRejectsInvalidURLs(t *testing.T) {
	bad := []string{
		"", "ftp://example.com/cb", "file:///etc/passwd", "javascript:alert(1)", "mailto:ops@example.com",
		"gopher://example.com", "http://", "https:///path", "http://:8080/x", "/relative/path",
		"example.com/cb", "//example.com/cb", "http://user:pw@example.com/cb", "https://token@example.com/",
		"https://example.com/cb#frag", " http://example.com", "http://exa mple.com/",
		"http:example.com", "https://example.com/" + strings.Repeat("a", MaxURLLength),
	}
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		s := newTestStore(rdb)
		for _, u := range bad {
			sub, err := s.Add(t.Context(), u, "ac")
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("Add(%q) = %+v, %v; want ErrInvalidURL", u, sub, err)
			}
		}
		if n, _ := rdb.HLen(t.Context(), testPrefix+"callbacks:subscribers").Result(); n != 0 {
			t.Fatalf("%d subscribers stored from invalid URLs", n)
		}
	})
}

// receiver is an httptest server that records requests and answers with
// the codes given, then 200.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	codes []int
}

type recorded struct {
	h    http.Header
	body []byte
	at   time.Time
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	r := &receiver{codes: codes}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs = append(r.reqs, recorded{req.Header.Clone(), body, time.Now()})
		code := 200
		if n < len(r.codes) {
			code = r.codes[n]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "attempt "+strconv.Itoa(n+1))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// testServer starts a callbacks asynq server with a short retry delay.
func testServer(t *testing.T, rdb redis.UniversalClient, h asynq.Handler) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              2,
		Queues:                   map[string]int{Queue: 1},
		TaskCheckInterval:        50 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 100 * time.Millisecond },
		ShutdownTimeout:          2 * time.Second,
		LogLevel:                 asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(TypeDeliver, h)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestDeliveryRetriesUntil2xx(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		rcv := newReceiver(t, 500, 500) // then 200
		store := newTestStore(rdb)
		sub, err := store.Add(ctx, rcv.URL+"/hooks/assetscan", "ac")
		if err != nil {
			t.Fatal(err)
		}
		client := asynq.NewClientFromRedisClient(rdb)
		defer client.Close()
		n := &Notifier{Client: client, Store: store}
		v := testVerdict("scn_0001")
		if err := n.Notify(ctx, EventFinal, v); err != nil {
			t.Fatal(err)
		}
		// The package's own server, with a test retry delay.
		srv, mux := NewServer(rdb, &Deliverer{Store: store}, ServerConfig{
			RetryDelay:               func(int, error, *asynq.Task) time.Duration { return 100 * time.Millisecond },
			TaskCheckInterval:        50 * time.Millisecond,
			DelayedTaskCheckInterval: 100 * time.Millisecond,
		})
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)

		waitFor(t, "3 attempts", 20*time.Second, func() bool { return len(rcv.requests()) >= 3 })
		time.Sleep(700 * time.Millisecond) // a 4th attempt would come within this
		reqs := rcv.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d attempts, want exactly 3", len(reqs))
		}
		var delivery string
		for i, r := range reqs {
			if i == 0 {
				delivery = r.h.Get(HeaderDelivery)
			}
			if r.h.Get(HeaderDelivery) != delivery || delivery == "" {
				t.Errorf("attempt %d: delivery id %q, first was %q", i+1, r.h.Get(HeaderDelivery), delivery)
			}
			if r.h.Get(HeaderEvent) != EventFinal || r.h.Get("Content-Type") != "application/json" {
				t.Errorf("attempt %d: headers %v", i+1, r.h)
			}
			if strings.Contains(string(r.body), sub.Secret) {
				t.Errorf("attempt %d: body carries the secret", i+1)
			}
		}
		last := reqs[2]
		if err := Verify(sub.Secret, last.h, last.body, time.Now(), 0); err != nil {
			t.Fatalf("third attempt does not verify: %v", err)
		}
		if err := Verify(sub.Secret, last.h, append(last.body, ' '), time.Now(), 0); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("tampered third attempt: %v", err)
		}
		var m Message
		if err := json.Unmarshal(last.body, &m); err != nil {
			t.Fatal(err)
		}
		if m.Event != EventFinal || m.DeliveryID != delivery || m.CreatedAt.IsZero() ||
			m.Verdict.ScanID != v.ScanID || m.Verdict.Verdict != assetscan.Fail || len(m.Verdict.FailedRules) != 1 {
			t.Fatalf("message %+v", m)
		}

		insp := asynq.NewInspectorFromRedisClient(rdb)
		waitFor(t, "task completed", 5*time.Second, func() bool {
			info, err := insp.GetTaskInfo(Queue, delivery)
			return err == nil && info.State == asynq.TaskStateCompleted
		})
		info, _ := insp.GetTaskInfo(Queue, delivery)
		if info.Type != TypeDeliver || strings.Contains(string(info.Payload), sub.Secret) {
			t.Fatalf("task %s: type %s, payload %s", info.ID, info.Type, info.Payload)
		}
	})
}

func TestRemovedSubscriberIsNotRetried(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		rcv := newReceiver(t)
		store := newTestStore(rdb)
		sub, err := store.Add(ctx, rcv.URL, "ac")
		if err != nil {
			t.Fatal(err)
		}
		client := asynq.NewClientFromRedisClient(rdb)
		defer client.Close()
		if err := (&Notifier{Client: client, Store: store}).Notify(ctx, EventFinal, testVerdict("scn_0002")); err != nil {
			t.Fatal(err)
		}
		if err := store.Remove(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int32
		var lastErr atomic.Value
		d := &Deliverer{Store: store}
		testServer(t, rdb, asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
			calls.Add(1)
			err := d.ProcessTask(ctx, task)
			if err != nil {
				lastErr.Store(err)
			}
			return err
		}))
		insp := asynq.NewInspectorFromRedisClient(rdb)
		waitFor(t, "task archived", 10*time.Second, func() bool {
			tasks, err := insp.ListArchivedTasks(Queue)
			return err == nil && len(tasks) == 1
		})
		time.Sleep(500 * time.Millisecond)
		if c := calls.Load(); c != 1 {
			t.Fatalf("handler ran %d times, want 1", c)
		}
		if err, _ := lastErr.Load().(error); !errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("handler error %v, want SkipRetry", err)
		}
		if n := len(rcv.requests()); n != 0 {
			t.Fatalf("receiver got %d requests", n)
		}
		tasks, _ := insp.ListArchivedTasks(Queue)
		if tasks[0].Retried != 0 {
			t.Fatalf("task retried %d times", tasks[0].Retried)
		}
	})
}

func TestNotify(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := t.Context()
		store := newTestStore(rdb)
		client := asynq.NewClientFromRedisClient(rdb)
		defer client.Close()
		n := &Notifier{Client: client, Store: store, MaxRetry: 3}
		insp := asynq.NewInspectorFromRedisClient(rdb)
		pending := func() []*asynq.TaskInfo {
			tasks, err := insp.ListPendingTasks(Queue)
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				t.Fatal(err)
			}
			return tasks
		}
		v := testVerdict("scn_0003")

		if err := n.Notify(ctx, EventFinal, v); err != nil {
			t.Fatalf("Notify without subscribers: %v", err)
		}
		if len(pending()) != 0 {
			t.Fatal("tasks enqueued without subscribers")
		}
		a, _ := store.Add(ctx, "https://a.example/cb", "ac")
		b, _ := store.Add(ctx, "https://b.example/cb", "ac")
		if err := n.Notify(ctx, EventFinal, v); err != nil {
			t.Fatal(err)
		}
		if got := len(pending()); got != 2 {
			t.Fatalf("%d tasks, want one per subscriber (2)", got)
		}
		if err := n.Notify(ctx, EventFinal, v); err != nil { // same verdict again: no new deliveries
			t.Fatal(err)
		}
		if got := len(pending()); got != 2 {
			t.Fatalf("%d tasks after a repeated Notify, want 2", got)
		}
		v2 := v
		v2.Verdict, v2.Supersedes = assetscan.Pass, v.ScanID
		if err := n.Notify(ctx, EventChanged, v2); err != nil {
			t.Fatal(err)
		}
		tasks := pending()
		if len(tasks) != 4 {
			t.Fatalf("%d tasks, want 4", len(tasks))
		}
		subs := map[string]int{}
		for _, ti := range tasks {
			var p deliveryTask
			if err := json.Unmarshal(ti.Payload, &p); err != nil {
				t.Fatal(err)
			}
			subs[p.SubscriberID]++
			if ti.Type != TypeDeliver || ti.Queue != Queue || ti.MaxRetry != 3 || ti.ID != p.DeliveryID {
				t.Errorf("task %+v", ti)
			}
			for _, s := range []string{a.Secret, b.Secret} {
				if strings.Contains(string(ti.Payload), s) {
					t.Errorf("task payload carries a secret")
				}
			}
		}
		if subs[a.ID] != 2 || subs[b.ID] != 2 {
			t.Fatalf("tasks per subscriber %v", subs)
		}
		if err := n.Notify(ctx, "verdict.maybe", v); err == nil {
			t.Fatal("unknown event accepted")
		}
		if err := n.Notify(ctx, EventFinal, assetscan.Verdict{}); err == nil {
			t.Fatal("verdict without scan id accepted")
		}
	})
}

// deliverOnce runs the Deliverer on a hand-made task for sub.
func deliverOnce(t *testing.T, d *Deliverer, sub Subscriber) error {
	t.Helper()
	payload, _ := json.Marshal(deliveryTask{SubscriberID: sub.ID, Event: EventChanged,
		DeliveryID: "00000000-0000-8000-8000-000000000000", Body: json.RawMessage(`{"event":"verdict.changed"}`)})
	return d.ProcessTask(t.Context(), asynq.NewTask(TypeDeliver, payload))
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		target := newReceiver(t)
		redirector := httptest.NewServer(http.RedirectHandler(target.URL+"/elsewhere", http.StatusTemporaryRedirect))
		defer redirector.Close()
		store := newTestStore(rdb)
		sub, err := store.Add(t.Context(), redirector.URL+"/cb", "ac")
		if err != nil {
			t.Fatal(err)
		}
		err = deliverOnce(t, &Deliverer{Store: store}, sub)
		if err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "not followed") {
			t.Fatalf("redirect: %v; want a retryable error", err)
		}
		if n := len(target.requests()); n != 0 {
			t.Fatalf("redirect followed: target got %d requests", n)
		}
	})
}

func TestDeliverAnswers(t *testing.T) {
	eachRedis(t, func(t *testing.T, rdb redis.UniversalClient) {
		store := newTestStore(rdb)
		huge := strings.Repeat("x", 1<<20)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/ok":
				w.WriteHeader(http.StatusNoContent)
			case "/huge":
				w.WriteHeader(http.StatusBadGateway)
				_, _ = io.WriteString(w, huge)
			default:
				http.NotFound(w, r)
			}
		}))
		defer srv.Close()
		d := &Deliverer{Store: store}
		for path, wantErr := range map[string]string{"/ok": "", "/huge": "answered 502", "/gone": "answered 404"} {
			sub, err := store.Add(t.Context(), srv.URL+path+"?token=receiver-credential", "ac")
			if err != nil {
				t.Fatal(err)
			}
			err = deliverOnce(t, d, sub)
			switch {
			case wantErr == "" && err != nil:
				t.Errorf("%s: %v", path, err)
			case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr) || errors.Is(err, asynq.SkipRetry)):
				t.Errorf("%s: %v; want a retryable error with %q", path, err, wantErr)
			case err != nil && (len(err.Error()) > 600 || strings.Contains(err.Error(), "receiver-credential")):
				t.Errorf("%s: error too long or carries the URL's query: %.300s", path, err)
			}
		}
		// Transport error: nothing listens there any more.
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		sub, _ := store.Add(t.Context(), deadURL+"/cb?token=receiver-credential", "ac")
		err := deliverOnce(t, d, sub)
		if err == nil || errors.Is(err, asynq.SkipRetry) || strings.Contains(err.Error(), "receiver-credential") {
			t.Fatalf("dead receiver: %v", err)
		}
		// A malformed task is dropped, not retried.
		if err := d.ProcessTask(t.Context(), asynq.NewTask(TypeDeliver, []byte("{"))); !errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("malformed task: %v", err)
		}
	})
}

func TestRetryDelay(t *testing.T) {
	prev := time.Duration(0)
	for n := range 15 {
		lo := min(5*time.Second<<n, time.Hour)
		for range 50 {
			d := RetryDelay(n, nil, nil)
			if d < lo || d > min(lo+lo/4, time.Hour) {
				t.Fatalf("RetryDelay(%d) = %s, want in [%s, %s]", n, d, lo, min(lo+lo/4, time.Hour))
			}
		}
		if lo < prev {
			t.Fatalf("delay shrinks at %d", n)
		}
		prev = lo
	}
	other := func(int, error, *asynq.Task) time.Duration { return 42 * time.Second }
	f := RetryDelayOr(other)
	if d := f(0, nil, asynq.NewTask("assetscan:scan", nil)); d != 42*time.Second {
		t.Fatalf("other task type: %s", d)
	}
	if d := f(0, nil, asynq.NewTask(TypeDeliver, nil)); d < 5*time.Second || d > 7*time.Second {
		t.Fatalf("callback task: %s", d)
	}
}

func TestDeliveryID(t *testing.T) {
	a := deliveryID("sub_1", EventFinal, []byte(`{}`))
	if a != deliveryID("sub_1", EventFinal, []byte(`{}`)) {
		t.Fatal("not deterministic")
	}
	for _, b := range []string{deliveryID("sub_2", EventFinal, []byte(`{}`)), deliveryID("sub_1", EventChanged, []byte(`{}`)),
		deliveryID("sub_1", EventFinal, []byte(`{ }`))} {
		if a == b {
			t.Fatal("collision")
		}
	}
	if len(a) != 36 || a[14] != '8' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Fatalf("%s is not a version 8 UUID", a)
	}
}

// TestNotifyQueuePrefix: a deployment's deliveries go to its own queue
// (another deployment may share the Redis), and its delivery server
// serves that queue.
func TestNotifyQueuePrefix(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := t.Context()
	rcv := newReceiver(t)
	store := newTestStore(rdb)
	if _, err := store.Add(ctx, rcv.URL+"/cb", "ac"); err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	n := &Notifier{Client: client, Store: store, QueuePrefix: "tenant-a:"}
	if err := n.Notify(ctx, EventFinal, testVerdict("scn_0042")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	tests := []struct {
		queue string
		want  int
	}{
		{"tenant-a:" + Queue, 1},
		{Queue, 0},
	}
	for _, tt := range tests {
		tasks, err := insp.ListPendingTasks(tt.queue)
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		if len(tasks) != tt.want {
			t.Errorf("queue %q: %d tasks, want %d", tt.queue, len(tasks), tt.want)
		}
	}
	srv, mux := NewServer(rdb, &Deliverer{Store: store}, ServerConfig{QueuePrefix: "tenant-a:", TaskCheckInterval: 50 * time.Millisecond})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	waitFor(t, "the delivery", 10*time.Second, func() bool { return len(rcv.requests()) == 1 })
}
