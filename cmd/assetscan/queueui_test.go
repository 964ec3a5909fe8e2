package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alicebob/miniredis/v2"
)

// Issue 12 item 4: the queue UI cannot delete a pending scan task unless
// an operator turned writing on.
func TestQueueUIIsReadOnly(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	for _, tt := range []struct {
		writable bool
		want     int
	}{{false, http.StatusMethodNotAllowed}, {true, http.StatusNoContent}} {
		cfg := &serviceConfig{RedisAddr: mr.Addr(), QueueUIWritable: tt.writable}
		h := queueUI(cfg)
		req := httptest.NewRequest("DELETE", "/queues/api/queues/scan-small/pending_tasks/scn_x", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if tt.writable && rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("writable UI refused DELETE")
		}
		if !tt.writable && rec.Code != tt.want {
			t.Errorf("read-only UI: DELETE answered %d, want %d", rec.Code, tt.want)
		}
		get := httptest.NewRecorder()
		h.ServeHTTP(get, httptest.NewRequest("GET", "/queues/api/queues", nil))
		if get.Code != http.StatusOK {
			t.Errorf("GET queues = %d", get.Code)
		}
	}
}
