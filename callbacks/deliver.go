package callbacks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/queue"
)

// TypeDeliver is the asynq task type of one callback delivery.
const TypeDeliver = "assetscan:callback"

// Queue is the asynq queue deliveries go to, after the deployment's queue
// prefix (Notifier.QueuePrefix, ServerConfig.QueuePrefix).
const Queue = "callbacks"

// Delivery limits.
const (
	// Timeout bounds one HTTP attempt (connect, send, answer headers, and
	// reading the capped answer).
	Timeout = 10 * time.Second
	// MaxResponseBytes is how much of a receiver's answer is read.
	MaxResponseBytes = 64 << 10
	// DefaultMaxRetry is the retries after the first attempt.
	DefaultMaxRetry = 10
	// DefaultRetention keeps finished deliveries visible in the queue UI,
	// and makes a repeated Notify of the same verdict a no-op meanwhile.
	DefaultRetention = 24 * time.Hour
)

// deliveryTask is the task payload. It never holds the secret.
type deliveryTask struct {
	SubscriberID string          `json:"subscriber_id"`
	Event        string          `json:"event"`
	DeliveryID   string          `json:"delivery_id"`
	Body         json.RawMessage `json:"body"` // the Message, exactly as POSTed
}

// Notifier enqueues deliveries.
type Notifier struct {
	Client *asynq.Client
	Store  *Store
	// MaxRetry is the retries after the first attempt. Default 10.
	MaxRetry int
	// Retention keeps finished delivery tasks in Redis. Default 24 h.
	Retention time.Duration
	// QueuePrefix is prepended to Queue: the deployment's --queue-prefix
	// (queue.ValidateQueuePrefix), "" by default.
	QueuePrefix string
}

// Notify enqueues one delivery per current subscriber of event (EventFinal
// or EventChanged) for verdict v. The delivery id is derived from the
// subscriber, the event and the verdict, so notifying the same verdict
// twice (a worker re-running a finished task) enqueues nothing new while
// the first delivery is retained. With no subscribers it does nothing.
// If some enqueues fail it still tries the others and returns their errors.
func (n *Notifier) Notify(ctx context.Context, event string, v assetscan.Verdict) error {
	if event != EventFinal && event != EventChanged {
		return fmt.Errorf("notify: unknown event %q", event)
	}
	if v.ScanID == "" {
		return errors.New("notify: verdict has no scan id")
	}
	ids, err := n.Store.ids(ctx)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	vdata, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	maxRetry := n.MaxRetry
	if maxRetry <= 0 {
		maxRetry = DefaultMaxRetry
	}
	ret := n.Retention
	if ret <= 0 {
		ret = DefaultRetention
	}
	now := time.Now().UTC()
	var errs []error
	for _, id := range ids {
		did := deliveryID(id, event, vdata)
		body, err := json.Marshal(struct {
			Event      string          `json:"event"`
			DeliveryID string          `json:"delivery_id"`
			CreatedAt  time.Time       `json:"created_at"`
			Verdict    json.RawMessage `json:"verdict"`
		}{event, did, now, vdata})
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		payload, err := json.Marshal(deliveryTask{SubscriberID: id, Event: event, DeliveryID: did, Body: body})
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		t := asynq.NewTask(TypeDeliver, payload,
			asynq.TaskID(did),
			asynq.Queue(n.QueuePrefix+Queue),
			asynq.MaxRetry(maxRetry),
			asynq.Timeout(Timeout+20*time.Second),
			asynq.Retention(ret),
		)
		if _, err := n.Client.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			errs = append(errs, fmt.Errorf("notify subscriber %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// deliveryID is a UUID (version 8, RFC 9562: custom, here SHA-256 based)
// of subscriber, event and verdict.
func deliveryID(subscriberID, event string, verdict []byte) string {
	h := sha256.New()
	for _, p := range [][]byte{[]byte(subscriberID), []byte(event), verdict} {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write(p)
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// Deliverer is the asynq handler for TypeDeliver: it looks the subscriber
// up, signs the body and POSTs it.
type Deliverer struct {
	// Store holds the subscribers and the egress policy every delivery
	// goes through (Store.WithEgress).
	Store *Store
	Log   *slog.Logger

	once   sync.Once
	client *http.Client
}

// ProcessTask implements asynq.Handler. A 2xx answer completes the
// delivery; any other answer or a transport error returns an error so
// asynq retries (see RetryDelay). A subscriber that no longer exists, or
// a malformed task, ends the task with asynq.SkipRetry.
func (d *Deliverer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var p deliveryTask
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.SubscriberID == "" || p.DeliveryID == "" ||
		(p.Event != EventFinal && p.Event != EventChanged) {
		log.ErrorContext(ctx, "malformed callback task dropped", "error", err)
		return fmt.Errorf("callback: malformed task: %w", asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	log = log.With("subscriber", p.SubscriberID, "event", p.Event, "delivery", p.DeliveryID, "attempt", retried+1)

	sub, err := d.Store.get(ctx, p.SubscriberID)
	if errors.Is(err, ErrNotFound) {
		log.InfoContext(ctx, "callback dropped: subscriber removed")
		return fmt.Errorf("callback %s: subscriber %s was removed: %w", p.DeliveryID, p.SubscriberID, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("callback %s: %w", p.DeliveryID, err)
	}
	u, err := ValidateURL(sub.URL) // the hash may have been edited by hand
	if err == nil && !d.Store.egress.policy().AllowHTTP && !strings.HasPrefix(u, "https://") {
		err = fmt.Errorf("%w: only https receivers are allowed", ErrRefusedDestination)
	}
	if err != nil {
		log.ErrorContext(ctx, "callback dropped: stored URL refused", "error", err)
		return fmt.Errorf("callback %s: subscriber %s: %w: %w", p.DeliveryID, p.SubscriberID, err, asynq.SkipRetry)
	}
	host := hostOf(u)
	log = log.With("host", host)

	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("callback %s: %w: %w", p.DeliveryID, err, asynq.SkipRetry)
	}
	ts := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "assetscan-callbacks/1")
	req.Header.Set(HeaderEvent, p.Event)
	req.Header.Set(HeaderDelivery, p.DeliveryID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(sub.Secret, ts, p.Body))

	resp, err := d.httpClient().Do(req)
	if err != nil {
		// Report a class of failure only: not the URL (its path or query
		// may be a credential of the receiver's), nor addresses, ports or
		// the resolver's words, which would make the queue UI a network
		// scanner's console.
		class := failureClass(err)
		log.WarnContext(ctx, "callback failed", "failure", class)
		log.DebugContext(ctx, "callback failure detail", "error", err)
		return fmt.Errorf("callback %s to %s: delivery failed (%s)", p.DeliveryID, host, class)
	}
	defer resp.Body.Close()
	// Read (bounded) so the connection can be reused; the answer is not
	// reported.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		log.InfoContext(ctx, "callback delivered", "status", resp.StatusCode)
		return nil
	}
	why := fmt.Sprintf("answered %d", resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		why = fmt.Sprintf("answered %d (redirect, not followed)", resp.StatusCode)
	}
	log.WarnContext(ctx, "callback refused", "status", resp.StatusCode)
	return fmt.Errorf("callback %s to %s: %s", p.DeliveryID, host, why)
}

// httpClient sends through the store's egress policy and never follows
// redirects.
func (d *Deliverer) httpClient() *http.Client {
	d.once.Do(func() {
		d.client = &http.Client{Timeout: Timeout, Transport: d.Store.egress.Transport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	})
	return d.client
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "?"
	}
	return u.Scheme + "://" + u.Host
}

// RetryDelay is the backoff between delivery attempts: 5 s for the first
// retry, doubling (10 s, 20 s, ...) up to 1 h, each plus up to 25 % random
// jitter (never above 1 h). n is the number of retries so far (asynq's
// RetryDelayFunc convention). With DefaultMaxRetry (10) a delivery is
// retried for about 1.5 h.
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := 5 * time.Second << min(max(n, 0), 10)
	d = min(d, time.Hour)
	d += time.Duration(rand.Int64N(int64(d/4) + 1))
	return min(d, time.Hour)
}

// RetryDelayOr returns a RetryDelayFunc for a server that runs both
// callback deliveries and other tasks: RetryDelay for TypeDeliver, other
// (asynq.DefaultRetryDelayFunc if nil) for everything else. E.g. in
// queue.NewServer: RetryDelayFunc: callbacks.RetryDelayOr(RetryDelay(cfg.RetryBase)).
func RetryDelayOr(other asynq.RetryDelayFunc) asynq.RetryDelayFunc {
	if other == nil {
		other = asynq.DefaultRetryDelayFunc
	}
	return func(n int, err error, t *asynq.Task) time.Duration {
		if t != nil && t.Type() == TypeDeliver {
			return RetryDelay(n, err, t)
		}
		return other(n, err, t)
	}
}

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Concurrency is the number of deliveries sent at once. Default 4.
	Concurrency int
	// RetryDelay overrides RetryDelay (tests).
	RetryDelay asynq.RetryDelayFunc
	// TaskCheckInterval: how often idle workers poll. Default 1 s.
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval: how often due retries are moved back to
	// pending. Default 5 s.
	DelayedTaskCheckInterval time.Duration
	// ShutdownTimeout: how long Shutdown waits for running deliveries.
	// Default 15 s (more than Timeout).
	ShutdownTimeout time.Duration
	// QueuePrefix is prepended to Queue, as the Notifier's.
	QueuePrefix string
	Log         *slog.Logger
}

// NewServer returns an asynq server that serves only Queue (after
// cfg.QueuePrefix) with d, with its own concurrency, so callbacks are not
// stuck behind hours-long scans in a shared worker. Run it with srv.Start(mux) / srv.Shutdown(), in the
// API process or the worker.
func NewServer(rdb redis.UniversalClient, d *Deliverer, cfg ServerConfig) (*asynq.Server, *asynq.ServeMux) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.RetryDelay == nil {
		cfg.RetryDelay = RetryDelay
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = Timeout + 5*time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{cfg.QueuePrefix + Queue: 1},
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		RetryDelayFunc:           cfg.RetryDelay,
		Logger:                   queue.Logger(cfg.Log),
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.Handle(TypeDeliver, d)
	return srv, mux
}
