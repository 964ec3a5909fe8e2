// Package callbacks tells the asset center when a verdict is final or
// changes, by POSTing a signed JSON message to the URLs it registered.
//
// # Subscribers
//
// The asset center registers a receiver URL (https, with a host, no
// user:password part) that the egress policy allows ([Egress]: public
// addresses only, checked at registration and at every delivery; http
// and exceptions only by configuration). Registration returns the subscriber's id and a
// shared secret, "whsec_" + base64url of 32 random bytes. The secret is
// shown once, in the answer to the registration, and never again: lists
// blank it. To rotate a secret, register the URL again and remove the old
// subscriber.
//
// Subscribers live in Redis, in the hash <prefix>callbacks:subscribers
// (field: subscriber id, value: JSON {id, url, secret, created_at,
// created_by}). Signing needs the secret in clear, so Redis holds it as is:
// Redis must be protected (password, no public listener, TLS off-host)
// as it already must be for the job queue it holds.
//
// # Messages
//
// Every callback is an HTTP POST with Content-Type: application/json and
// the body [Message]:
//
//	{
//	  "event": "verdict.final",          // or "verdict.changed"
//	  "delivery_id": "3b0c...-...",
//	  "created_at": "2025-01-02T03:04:05.123Z",
//	  "verdict": { ...the verdict document, as GET /v1/scans/{scan_id} returns it... }
//	}
//
// verdict.final: a scan finished (pass, fail or error). verdict.changed: a
// verdict was replaced (re-evaluation under another policy); the new
// verdict names the old one in "supersedes".
//
// Delivery is at least once and not ordered: a receiver may see one
// delivery more than once (same X-Assetscan-Delivery) and may see an older
// event after a newer one (retries). Deduplicate on the delivery id and
// order by created_at, or treat a callback as a hint and GET the scan.
//
// # Signature (scheme v1)
//
// Each request carries four headers:
//
//	X-Assetscan-Event:     verdict.final | verdict.changed
//	X-Assetscan-Delivery:  <delivery id, a UUID; the same on every retry of a delivery>
//	X-Assetscan-Timestamp: <unix time in seconds, decimal, when this attempt was signed>
//	X-Assetscan-Signature: v1=<lower-case hex of HMAC-SHA256(key = secret, message = timestamp + "." + body)>
//
// where secret is the subscriber's secret as returned at registration (the
// whole string, "whsec_" included, as bytes), timestamp is the exact
// X-Assetscan-Timestamp header value and body is the raw request body
// bytes, before any JSON parsing. The signature header may list several
// comma-separated "scheme=value" entries; a receiver accepts the request
// if any v1 entry matches and ignores schemes it does not know.
//
// A receiver verifies (this is [Verify]; see the Verify example):
//
//  1. both headers are present;
//  2. HMAC-SHA256(secret, timestamp + "." + body) equals a v1 value,
//     compared in constant time (hmac.Equal);
//  3. |now - timestamp| <= 5 minutes (the replay window), so a captured
//     request cannot be replayed later. Each retry is signed afresh.
//
// It answers 2xx once it has the message. Anything else (or no answer
// within 10 s) is retried with exponential backoff, 5 s doubling up to 1 h
// with jitter, 10 retries by default; redirects are not followed (a 3xx is
// a failure) and at most 64 KiB of the answer is read. A failure is
// reported (task error, logs) as a class only, never with addresses,
// ports or the answer's body.
//
// # Delivery
//
// [Notifier.Notify] enqueues one asynq task (type [TypeDeliver], queue
// [Queue]) per subscriber; the task holds the subscriber id and the body,
// never the secret. [Deliverer] is the asynq handler that signs and sends.
// A subscriber removed before its delivery is dropped without retrying.
package callbacks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/assetscan/assetscan"
)

// Events.
const (
	EventFinal   = "verdict.final"
	EventChanged = "verdict.changed"
)

// Headers of a callback request.
const (
	HeaderEvent     = "X-Assetscan-Event"
	HeaderDelivery  = "X-Assetscan-Delivery"
	HeaderTimestamp = "X-Assetscan-Timestamp"
	HeaderSignature = "X-Assetscan-Signature"
)

// DefaultWindow is the replay window Verify uses when given none.
const DefaultWindow = 5 * time.Minute

// Message is the body of every callback.
type Message struct {
	Event      string            `json:"event"`
	DeliveryID string            `json:"delivery_id"`
	CreatedAt  time.Time         `json:"created_at"`
	Verdict    assetscan.Verdict `json:"verdict"`
}

// Verification errors. Verify wraps them with detail; test with errors.Is.
var (
	ErrMissingHeader = errors.New("callback: missing signature header")
	ErrBadSignature  = errors.New("callback: bad signature")
	ErrStale         = errors.New("callback: timestamp outside the replay window")
)

// Sign returns the X-Assetscan-Signature value for body sent at ts:
// "v1=" + hex(HMAC-SHA256(secret, "<unix seconds>." + body)).
func Sign(secret string, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a callback the way a receiver should: the signature over
// the timestamp and the raw body, then the timestamp against now. window
// is the replay window (<= 0: DefaultWindow). It returns nil, or an error
// wrapping ErrMissingHeader, ErrBadSignature (also for a malformed
// timestamp or signature) or ErrStale.
func Verify(secret string, h http.Header, body []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultWindow
	}
	tsHeader := h.Get(HeaderTimestamp)
	sigHeader := h.Get(HeaderSignature)
	switch {
	case tsHeader == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderTimestamp)
	case sigHeader == "":
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil || ts <= 0 {
		return fmt.Errorf("%w: malformed %s %q", ErrBadSignature, HeaderTimestamp, tsHeader)
	}
	want := mac(secret, tsHeader, body)
	found := false
	for entry := range strings.SplitSeq(sigHeader, ",") {
		scheme, value, _ := strings.Cut(strings.TrimSpace(entry), "=")
		if scheme != "v1" {
			continue
		}
		found = true
		got, err := hex.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			age := now.Sub(time.Unix(ts, 0))
			if age > window || age < -window {
				return fmt.Errorf("%w: signed at %s, %s from now (window %s)", ErrStale,
					time.Unix(ts, 0).UTC().Format(time.RFC3339), age.Round(time.Second), window)
			}
			return nil
		}
	}
	if !found {
		return fmt.Errorf("%w: no v1 entry in %s", ErrBadSignature, HeaderSignature)
	}
	return ErrBadSignature
}
