package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ServerConfig configures a worker's asynq server.
type ServerConfig struct {
	// Concurrency is the number of scans run at once. Default 2.
	Concurrency int
	// Queues maps queue name to weight. Default: scan-small 6, scan-large 2.
	// A worker given only QueueLarge serves large objects alone.
	Queues map[string]int
	// QueuePrefix is prepended to the names in Queues, as the Enqueuer's
	// (the deployment's --queue-prefix).
	QueuePrefix string
	// TaskCheckInterval is how often idle workers poll for tasks. Default
	// 100 ms (asynq's 1 s default adds 0.5–1.5 s of pick-up latency).
	TaskCheckInterval time.Duration
	// ShutdownTimeout is how long SIGTERM waits for running scans before
	// handing them back to the queue. Default 30 s.
	ShutdownTimeout time.Duration
	// RetryBase is the first retry delay, doubled per attempt. Default 10 s.
	RetryBase time.Duration
	Log       *slog.Logger
}

func (c *ServerConfig) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if len(c.Queues) == 0 {
		c.Queues = map[string]int{QueueSmall: 6, QueueLarge: 2}
	}
	if c.TaskCheckInterval <= 0 {
		c.TaskCheckInterval = 100 * time.Millisecond
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports configuration errors.
func (c ServerConfig) Validate() error {
	if err := ValidateQueuePrefix(c.QueuePrefix); err != nil {
		return err
	}
	for q, w := range c.Queues {
		if q != QueueSmall && q != QueueLarge {
			return fmt.Errorf("unknown queue %q (known: %s, %s)", q, QueueSmall, QueueLarge)
		}
		if w <= 0 {
			return fmt.Errorf("queue %q: weight must be positive", q)
		}
	}
	return nil
}

// NewServer returns an asynq server running h for scan tasks. Run it with
// srv.Run(mux) or Start/Shutdown.
func NewServer(rdb redis.UniversalClient, cfg ServerConfig, h *Handler) (*asynq.Server, *asynq.ServeMux) {
	cfg.defaults()
	queues := make(map[string]int, len(cfg.Queues))
	for q, w := range cfg.Queues {
		queues[cfg.QueuePrefix+q] = w
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       cfg.Concurrency,
		Queues:            queues,
		TaskCheckInterval: cfg.TaskCheckInterval,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		RetryDelayFunc:    RetryDelay(cfg.RetryBase),
		// A worker that is not ready hands jobs back without spending one
		// of their attempts.
		IsFailure: func(err error) bool { return !errors.Is(err, ErrNotReady) },
		Logger:    Logger(cfg.Log),
		LogLevel:  asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			cfg.Log.WarnContext(ctx, "task failed", "type", t.Type(), "error", err)
		}),
	})
	mux := asynq.NewServeMux()
	mux.Handle(TypeScan, h)
	return srv, mux
}

// Logger routes an asynq server's logs to slog; every asynq server of
// assetscan (scans, callback deliveries) uses it.
func Logger(l *slog.Logger) asynq.Logger { return slogAdapter{l} }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a slogAdapter) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
}
