package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan/internal/keyslot"
)

// Consumer turns upload events from MinIO's Redis list into scans.
type Consumer struct {
	// Redis is the client of the database MinIO's notification target
	// writes to (database 0 by default).
	Redis redis.UniversalClient
	// List is MinIO's list key, e.g. "assetscan:events".
	List string
	// Processing holds the event being handled (BLMOVE List -> Processing,
	// LREM when done). Default "{<List>}:processing" ("<List>:processing"
	// when List has a hash tag of its own). One per consumer.
	Processing string
	// Dead receives malformed and permanently failing events, unchanged.
	// Default "{<List>}:dead", like Processing.
	//
	// List, Processing and Dead must hash to one Redis Cluster slot: BLMOVE
	// and the transaction that finishes an event span them. The defaults
	// do; Run refuses keys that do not.
	Dead string

	Submitter Submitter
	Mapping   Mapping
	// S3, if set, is used to tag every uploaded object
	// assetscan-verdict=pending (TagPending) before it is submitted; see the
	// package documentation for why.
	S3 *minio.Client
	// Log defaults to discarding.
	Log *slog.Logger

	// RetryMin and RetryMax bound the backoff between attempts of an event
	// that failed transiently, and after Redis errors. Defaults 500 ms and
	// 30 s.
	RetryMin, RetryMax time.Duration
	// Block is how long one BLMOVE waits for an event; it bounds how long
	// Run takes to notice cancellation. Default 2 s, at least 1 s (go-redis
	// rounds blocking timeouts to whole seconds).
	Block time.Duration
}

func (c *Consumer) defaults() error {
	if c.Redis == nil || c.Submitter == nil || c.List == "" {
		return errors.New("events: Consumer needs Redis, List and Submitter")
	}
	if err := c.Mapping.Validate(); err != nil {
		return err
	}
	if c.Processing == "" {
		c.Processing = SlotKey(c.List, "processing")
	}
	if c.Dead == "" {
		c.Dead = SlotKey(c.List, "dead")
	}
	if c.Processing == c.List || c.Dead == c.List || c.Dead == c.Processing {
		return errors.New("events: List, Processing and Dead must be different keys")
	}
	if !keyslot.Same(c.List, c.Processing, c.Dead) {
		return fmt.Errorf("events: List %q, Processing %q and Dead %q must hash to one Redis Cluster slot (BLMOVE and MULTI span them): give them a common hash tag", c.List, c.Processing, c.Dead)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 500 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(30*time.Second, c.RetryMin)
	}
	if c.Block <= 0 {
		c.Block = 2 * time.Second
	}
	c.Block = max(c.Block, time.Second)
	return nil
}

// SlotKey names a key in list's Redis Cluster slot: "{list}:suffix", or
// "list:suffix" when list already carries a hash tag.
func SlotKey(list, suffix string) string {
	if keyslot.Tag(list) != list {
		return list + ":" + suffix
	}
	return "{" + list + "}:" + suffix
}

// Run consumes events until ctx is done, then returns nil. It first
// handles what a previous run left in Processing. It returns an error only
// for a configuration it cannot run with.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.defaults(); err != nil {
		return err
	}
	c.Log.InfoContext(ctx, "upload event consumer started", "list", c.List, "processing", c.Processing, "dead", c.Dead)
	leftovers := true // after a start or a Redis error: an event may sit in Processing
	wait := c.RetryMin
	for ctx.Err() == nil {
		var raw string
		var err error
		if leftovers {
			raw, err = c.Redis.LIndex(ctx, c.Processing, 0).Result()
			if errors.Is(err, redis.Nil) {
				leftovers = false
				continue
			}
			if err == nil {
				c.Log.InfoContext(ctx, "resuming an event left in processing")
			}
		} else {
			raw, err = c.Redis.BLMove(ctx, c.List, c.Processing, "LEFT", "RIGHT", c.Block).Result()
			if errors.Is(err, redis.Nil) {
				continue // nothing within Block
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			// A BLMOVE whose reply was lost may have moved an event.
			leftovers = true
			c.Log.WarnContext(ctx, "reading upload events", "error", err, "retry_in", wait)
			sleep(ctx, wait)
			wait = min(wait*2, c.RetryMax)
			continue
		}
		wait = c.RetryMin
		c.process(ctx, raw)
	}
	c.Log.InfoContext(ctx, "upload event consumer stopped")
	return nil
}

// process handles one event that is in Processing until it is done with:
// submitted, ignored or dead-lettered, then removes it from Processing. On
// cancellation the event stays in Processing for the next run.
func (c *Consumer) process(ctx context.Context, raw string) {
	wait := c.RetryMin
	for attempt := 1; ; attempt++ {
		err := c.HandleOne(ctx, raw)
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, ErrPermanent) {
			if err != nil {
				c.Log.ErrorContext(ctx, "upload event dead-lettered", "error", err, "dead", c.Dead, "event", truncate(raw, 2048))
			}
			c.finish(ctx, raw, err != nil)
			return
		}
		c.Log.WarnContext(ctx, "upload event failed, will retry", "error", err, "attempt", attempt, "retry_in", wait)
		sleep(ctx, wait)
		wait = min(wait*2, c.RetryMax)
	}
}

// finish removes raw from Processing, and pushes it to Dead if dead, in
// one transaction, retrying Redis errors.
func (c *Consumer) finish(ctx context.Context, raw string, dead bool) {
	wait := c.RetryMin
	for {
		_, err := c.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.LRem(ctx, c.Processing, 1, raw)
			if dead {
				p.RPush(ctx, c.Dead, raw)
			}
			return nil
		})
		if err == nil || ctx.Err() != nil {
			return
		}
		c.Log.WarnContext(ctx, "removing handled event from processing", "error", err, "retry_in", wait)
		sleep(ctx, wait)
		wait = min(wait*2, c.RetryMax)
	}
}

// HandleOne parses one list entry and submits a scan for each upload
// record in it; other events are ignored (nil). It returns an error
// wrapping ErrPermanent for malformed events, records the Mapping cannot
// map, and Submit's permanent errors; any other error is transient and the
// whole entry should be retried (Submit dedups what was already
// submitted).
func (c *Consumer) HandleOne(ctx context.Context, raw string) error {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := c.Mapping.Validate(); err != nil {
		return err
	}
	recs, err := ParseEvent(raw)
	if err != nil {
		return err
	}
	var permanent []error
	for _, r := range recs {
		if !IsUpload(r.EventName) {
			log.DebugContext(ctx, "ignoring event", "event", r.EventName, "bucket", r.S3.Bucket.Name, "key", r.S3.Object.Key)
			continue
		}
		req, err := c.Mapping.Request(r)
		if err != nil {
			permanent = append(permanent, err)
			continue
		}
		if c.S3 != nil {
			if _, err := TagPending(ctx, c.S3, req.Bucket, req.Key, req.VersionID); err != nil {
				if isNotFound(err) {
					permanent = append(permanent, fmt.Errorf("%w: tag pending: %v", ErrPermanent, err))
					continue
				}
				return fmt.Errorf("tag pending %s/%s: %w", req.Bucket, req.Key, err)
			}
		}
		id, created, err := c.Submitter.Submit(ctx, req)
		if err != nil {
			if errors.Is(err, ErrPermanent) {
				permanent = append(permanent, fmt.Errorf("submit %s/%s: %w", req.Bucket, req.Key, err))
				continue
			}
			return fmt.Errorf("submit %s/%s: %w", req.Bucket, req.Key, err)
		}
		log.InfoContext(ctx, "scan submitted on upload", "scan_id", id, "created", created,
			"asset_id", req.AssetID, "seller_id", req.SellerID, "kind", req.Kind,
			"bucket", req.Bucket, "key", req.Key, "version_id", req.VersionID, "event", r.EventName)
	}
	return errors.Join(permanent...)
}

func isNotFound(err error) bool {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound":
		return true
	}
	return resp.StatusCode == http.StatusNotFound
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
