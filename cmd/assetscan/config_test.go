package main

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

// TestRedisClusterConfig: several --redis-addr select a Redis Cluster,
// which has only database 0; deployments sharing one keep apart by key
// and queue prefix.
func TestRedisClusterConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		cluster bool
		wantErr string // substring; "" = valid
	}{
		{name: "single", args: []string{"--redis-addr", "r:6379", "--redis-db", "3"}},
		{name: "cluster", args: []string{"--redis-addr", "n1:6379, n2:6379,n3:6379"}, cluster: true},
		{name: "sentinel is not a cluster", args: []string{"--redis-addr", "s1:26379,s2:26379", "--redis-master-name", "m", "--redis-db", "2"}},
		{name: "cluster with a database", args: []string{"--redis-addr", "n1:6379,n2:6379", "--redis-db", "1"}, cluster: true,
			wantErr: "--redis-db 1: a Redis Cluster"},
		{name: "events list on the cluster", args: []string{"--redis-addr", "n1:6379,n2:6379",
			"--events-list", "assetscan:events"}, cluster: true, wantErr: "--events-list on a Redis Cluster needs --events-redis-addr"},
		{name: "events list on the cluster with a database", args: []string{"--redis-addr", "n1:6379,n2:6379",
			"--events-list", "assetscan:events", "--events-redis-db", "2"}, cluster: true, wantErr: "--events-redis-addr"},
		{name: "events list on its own Redis", args: []string{"--redis-addr", "n1:6379,n2:6379",
			"--events-list", "assetscan:events", "--events-redis-addr", "ev:6379", "--events-redis-db", "2"}, cluster: true},
		{name: "queue prefix", args: []string{"--redis-addr", "n1:6379,n2:6379", "--redis-prefix", "staging:", "--queue-prefix", "staging:"}, cluster: true},
		{name: "queue prefix with a brace", args: []string{"--queue-prefix", "{staging}:"}, wantErr: "--queue-prefix"},
		{name: "cluster, key prefix alone", args: []string{"--redis-addr", "n1:6379,n2:6379", "--redis-prefix", "staging:"}, cluster: true,
			wantErr: "set both or neither"},
		{name: "cluster, queue prefix alone", args: []string{"--redis-addr", "n1:6379,n2:6379", "--queue-prefix", "staging:"}, cluster: true,
			wantErr: "set both or neither"},
		{name: "one server, key prefix alone", args: []string{"--redis-prefix", "staging:"}},
		{name: "key prefix with its own hash tag", args: []string{"--redis-addr", "n1:6379,n2:6379", "--redis-prefix", "{staging}:", "--queue-prefix", "staging:"}, cluster: true},
		{name: "key prefix with an empty hash tag", args: []string{"--redis-prefix", "x{}:"}, wantErr: "would not share a hash slot"},
		{name: "key prefix with a stray brace", args: []string{"--redis-prefix", "x{"}}, // tag "{index": still one slot
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ASSETSCAN_REDIS_ADDR", "")
			var cfg serviceConfig
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.bind(fs)
			args := append([]string{"--s3-endpoint", "s3:9000", "--s3-access-key", "k", "--s3-secret-key", "secret-key"}, tt.args...)
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			if got := cfg.redisCluster(); got != tt.cluster {
				t.Errorf("redisCluster() = %v, want %v", got, tt.cluster)
			}
			err := cfg.validate(false)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("validate() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestQueueNames: the metrics' queues carry the deployment's prefix, as
// the queues asynq holds.
func TestQueueNames(t *testing.T) {
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"scan-small", "scan-large", "callbacks"}},
		{"e2e-4-ab:", []string{"e2e-4-ab:scan-small", "e2e-4-ab:scan-large", "e2e-4-ab:callbacks"}},
	}
	for _, tt := range tests {
		cfg := serviceConfig{QueuePrefix: tt.prefix}
		if got := cfg.queueNames(); !slices.Equal(got, tt.want) {
			t.Errorf("queueNames() with prefix %q = %v, want %v", tt.prefix, got, tt.want)
		}
	}
}
