package queue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/assetscan/assetscan/storage"
)

func TestJobSizing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		size    int64
		queue   string
		timeout time.Duration
	}{
		{1 << 20, QueueSmall, 10 * time.Minute},
		{255 << 20, QueueSmall, 12 * time.Minute},
		{256 << 20, QueueLarge, 12 * time.Minute},
		{20 << 30, QueueLarge, 10*time.Minute + 204*time.Minute},
		{1 << 40, QueueLarge, 8 * time.Hour},
	}
	for _, tt := range tests {
		if q := QueueFor(tt.size); q != tt.queue {
			t.Errorf("QueueFor(%d) = %s, want %s", tt.size, q, tt.queue)
		}
		if d := Timeout(tt.size); d != tt.timeout {
			t.Errorf("Timeout(%d) = %s, want %s", tt.size, d, tt.timeout)
		}
	}
}

func TestRetryDelayBacksOff(t *testing.T) {
	t.Parallel()
	f := RetryDelay(10 * time.Second)
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for n, w := range want {
		if d := f(n, nil, nil); d != w {
			t.Errorf("retry %d: %s, want %s", n, d, w)
		}
	}
	if d := f(30, nil, nil); d != 10*time.Minute {
		t.Errorf("cap: %s", d)
	}
}

func TestReasonClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{ErrNotReady, "not_ready"},
		{storage.ErrUnavailable, "storage"},
		{errors.New("required check did not complete: malware: dial clamd"), "malware_engine"},
		{errors.New("open trivy: vulnerability database unavailable"), "vulndb"},
		{errors.New("context deadline exceeded"), "timeout"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		if got := reasonClass(tt.err); got != tt.want {
			t.Errorf("reasonClass(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestValidateQueuePrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"staging:", true},
		{"e2e-12-3f9a.", true},
		{"{tenant}:", false},
		{"a}b", false},
		{"with space:", false},
		{"tab\t", false},
		{strings.Repeat("p", 65), false},
	}
	for _, tt := range tests {
		err := ValidateQueuePrefix(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateQueuePrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
		cfg := ServerConfig{QueuePrefix: tt.prefix, Queues: map[string]int{QueueSmall: 1}}
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("ServerConfig{QueuePrefix: %q}.Validate() = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}
