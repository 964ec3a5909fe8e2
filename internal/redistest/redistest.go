// Package redistest gives tests a client of the Redis that scripts/test.sh
// started. ASSETSCAN_TEST_REDIS_ADDR holds one address (a single server:
// each package uses its own database) or several, comma-separated (a
// Redis Cluster: database 0 only, so tests keep apart by key prefix, and
// KEYS or SCAN must ask every master).
package redistest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Addrs returns the addresses in ASSETSCAN_TEST_REDIS_ADDR (none if unset).
func Addrs() []string {
	var out []string
	for _, a := range strings.Split(os.Getenv("ASSETSCAN_TEST_REDIS_ADDR"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Cluster reports whether the test Redis is a Redis Cluster (several
// addresses).
func Cluster() bool { return len(Addrs()) > 1 }

// Client returns a client of the test Redis, closed at the end of the
// test: database db of a single server, or the cluster (db is ignored).
// It skips the test when ASSETSCAN_TEST_REDIS_ADDR is not set.
func Client(t testing.TB, db int) redis.UniversalClient {
	t.Helper()
	c := New(db)
	if c == nil {
		t.Skip("ASSETSCAN_TEST_REDIS_ADDR not set: real Redis not tested (scripts/test.sh sets it)")
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// New is Client for TestMain and helpers: nil when
// ASSETSCAN_TEST_REDIS_ADDR is not set; the caller closes it.
func New(db int) redis.UniversalClient {
	addrs := Addrs()
	switch {
	case len(addrs) == 0:
		return nil
	case len(addrs) > 1:
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	default:
		return redis.NewClient(&redis.Options{Addr: addrs[0], DB: db})
	}
}

// Keys returns the keys matching pattern, from every master of a cluster.
func Keys(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	scan := func(ctx context.Context, n redis.Cmdable) ([]string, error) {
		var out []string
		it := n.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			out = append(out, it.Val())
		}
		return out, it.Err()
	}
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, c)
	}
	var mu sync.Mutex
	var out []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := scan(ctx, n)
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	})
	return out, err
}

// Delete deletes the keys matching pattern (one DEL per key: on a cluster
// they may lie in different slots) and returns how many it deleted.
func Delete(ctx context.Context, c redis.UniversalClient, pattern string) (int, error) {
	keys, err := Keys(ctx, c, pattern)
	if err != nil {
		return 0, fmt.Errorf("redistest: keys %s: %w", pattern, err)
	}
	for _, k := range keys {
		if err := c.Del(ctx, k).Err(); err != nil {
			return 0, fmt.Errorf("redistest: del %s: %w", k, err)
		}
	}
	return len(keys), nil
}
