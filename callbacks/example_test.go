package callbacks_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/assetscan/assetscan/callbacks"
)

// A receiver (the asset center's endpoint) verifies each callback before
// trusting it: read the raw body (bounded), check the signature and the
// timestamp with Verify, then decode. Answer 2xx once the message is
// stored; anything else is retried. Deduplicate on delivery_id.
func ExampleVerify() {
	secret := "whsec_the-secret-returned-at-registration"

	receiver := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := callbacks.Verify(secret, r.Header, body, time.Now(), callbacks.DefaultWindow); err != nil {
			switch {
			case errors.Is(err, callbacks.ErrStale):
				fmt.Println("rejected: replayed or clock skew")
			case errors.Is(err, callbacks.ErrBadSignature), errors.Is(err, callbacks.ErrMissingHeader):
				fmt.Println("rejected: not signed by assetscan")
			}
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m callbacks.Message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		fmt.Printf("%s: scan %s is %s (delivery %s)\n", m.Event, m.Verdict.ScanID, m.Verdict.Verdict, m.DeliveryID)
		w.WriteHeader(http.StatusNoContent)
	})

	// What assetscan sends (the Deliverer does this).
	send := func(body []byte, ts time.Time, tamper func([]byte) []byte) int {
		sig := callbacks.Sign(secret, ts, body)
		if tamper != nil { // a man in the middle changes the body after signing
			body = tamper(body)
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/assetscan", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(callbacks.HeaderEvent, callbacks.EventFinal)
		req.Header.Set(callbacks.HeaderDelivery, "5f0c2a4e-8d1b-8c3e-9a7f-2b6d4e1c0a93")
		req.Header.Set(callbacks.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set(callbacks.HeaderSignature, sig)
		w := httptest.NewRecorder()
		receiver.ServeHTTP(w, req)
		return w.Code
	}
	body := []byte(`{"event":"verdict.final","delivery_id":"5f0c2a4e-8d1b-8c3e-9a7f-2b6d4e1c0a93",` +
		`"created_at":"2025-01-02T03:04:05Z","verdict":{"scan_id":"scn_0195f2a1b3c4d5e6f7a8b9c0d1","kind":"package",` +
		`"status":"done","verdict":"fail","object":{"name":"app.zip","size":1},"policy":{"id":"default","version":1,"digest":""},` +
		`"findings":[],"checks":[],"components":0}}`)

	fmt.Println(send(body, time.Now(), nil))
	fmt.Println(send(body, time.Now(), func(b []byte) []byte { return bytes.Replace(b, []byte(`"fail"`), []byte(`"pass"`), 1) }))
	fmt.Println(send(body, time.Now().Add(-time.Hour), nil)) // a captured request, replayed an hour later
	// Output:
	// verdict.final: scan scn_0195f2a1b3c4d5e6f7a8b9c0d1 is fail (delivery 5f0c2a4e-8d1b-8c3e-9a7f-2b6d4e1c0a93)
	// 204
	// rejected: not signed by assetscan
	// 401
	// rejected: replayed or clock skew
	// 401
}
