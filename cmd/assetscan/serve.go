package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/api"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/queue"
	"github.com/assetscan/assetscan/reeval"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/storage"
)

// supportedKinds are the asset kinds workers handle.
var supportedKinds = []assetscan.Kind{assetscan.KindPackage}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg serviceConfig
	cfg.bind(fs)
	embedded := fs.Bool("embedded", false, "zero-setup demo: in-process Redis and S3 stand-ins, an in-process worker, the fixture DB")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var demo *embeddedServices
	if *embedded {
		var err error
		demo, err = startEmbedded(ctx, &cfg)
		if err != nil {
			return fmt.Errorf("embedded services: %w", err)
		}
		defer demo.Close()
	}
	if err := cfg.validate(*embedded); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(stderr, cfg.LogLevel)
	rdb := cfg.redisClient()
	defer rdb.Close()
	obj, err := storage.NewObjects(cfg.S3)
	if err != nil {
		return err
	}
	if err := obj.EnsureBucket(ctx, cfg.ReportsBucket); err != nil {
		return fmt.Errorf("reports bucket %q: %w", cfg.ReportsBucket, err)
	}
	store := storage.NewStore(rdb, obj, cfg.ReportsBucket, cfg.KeyPrefix)
	client := asynq.NewClientFromRedisClient(rdb)
	pstore := policies.NewStore(rdb, cfg.KeyPrefix)
	if err := pstore.Seed(ctx); err != nil {
		return fmt.Errorf("seed policies: %w", err)
	}
	ev := &reeval.Evaluator{Verdicts: store, Log: log}
	if cfg.PolicyDir != "" {
		applied, err := pstore.LoadDir(ctx, cfg.PolicyDir)
		if err != nil {
			log.Error("policy files not applied; the last good policies stay in force", "dir", cfg.PolicyDir, "error", err)
		}
		for _, p := range applied {
			log.Info("policy file applied", "policy", p.ID, "version", p.Version)
			if _, err := ev.Apply(ctx, p); err != nil {
				log.Error("re-evaluation", "policy", p.ID, "error", err)
			}
		}
	}
	srv := &api.Server{
		Scans: store, Objects: obj,
		Enqueuer:      &queue.Enqueuer{Client: client, MaxRetry: cfg.MaxRetry},
		Kinds:         supportedKinds,
		ReportsBucket: cfg.ReportsBucket,
		Policies:      pstore,
		Reeval:        ev,
		PolicyDir:     cfg.PolicyDir,
		Log:           log,
	}

	var wg sync.WaitGroup
	wctx, cancelWorker := context.WithCancel(ctx)
	defer cancelWorker()
	if *embedded {
		eng, err := openEngines(ctx, engineConfig{DBDir: cfg.DBDir, Clamd: cfg.Clamd,
			PrivateDir: filepath.Join(demo.dir, "engines"), ClamdConcurrency: cfg.ClamdConcurrency,
			CanaryInterval: cfg.CanaryInterval, Log: log})
		if err != nil {
			return err
		}
		defer eng.Close()
		wg.Go(func() {
			if err := runWorker(wctx, &cfg, rdb, obj, store, eng, log); err != nil {
				log.Error("embedded worker", "error", err)
			}
		})
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("api listening", "addr", ln.Addr().String())
	if demo != nil {
		demo.printHelp(stdout, ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	cancelWorker()
	wg.Wait()
	return nil
}

func cmdWorker(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg serviceConfig
	cfg.bind(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	err := cfg.validate(true)
	if cfg.DBDir == "" {
		err = errors.Join(err, errors.New("--db-dir (ASSETSCAN_DB_DIR) is required: a trivy cache dir; `assetscan db build-fixture DIR` writes the fixture DB"))
	}
	if cfg.Clamd == "" {
		err = errors.Join(err, errors.New("--clamd (ASSETSCAN_CLAMD) is required: unix:/path/clamd.sock or tcp:host:port"))
	}
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(stderr, cfg.LogLevel)
	rdb := cfg.redisClient()
	defer rdb.Close()
	obj, err := storage.NewObjects(cfg.S3)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o750); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	store := storage.NewStore(rdb, obj, cfg.ReportsBucket, cfg.KeyPrefix)
	eng, err := openEngines(ctx, engineConfig{DBDir: cfg.DBDir, Clamd: cfg.Clamd, NoPrivateClamd: true,
		PrivateDir: filepath.Join(cfg.WorkDir, "engines"), ClamdConcurrency: cfg.ClamdConcurrency,
		CanaryInterval: cfg.CanaryInterval, Log: log})
	if err != nil {
		return err
	}
	defer eng.Close()
	return runWorker(ctx, &cfg, rdb, obj, store, eng, log)
}

// runWorker runs the asynq server and the reaper until ctx ends, then shuts
// down gracefully: running scans get ShutdownTimeout to finish, then are
// handed back to the queue.
func runWorker(ctx context.Context, cfg *serviceConfig, rdb redis.UniversalClient, obj *storage.Objects,
	store *storage.Store, eng *engines, log *slog.Logger) error {
	weights, err := cfg.queueWeights()
	if err != nil {
		return err
	}
	pstore := policies.NewStore(rdb, cfg.KeyPrefix)
	if err := pstore.Seed(ctx); err != nil {
		return fmt.Errorf("seed policies: %w", err)
	}
	policy := pstore.ForKind
	h := &queue.Handler{
		Content:  store,
		DBDigest: eng.DBDigest,
		Records:  store,
		Fetcher:  obj,
		Scanner:  &scanner.Scanner{Checks: eng.Checks, Log: log},
		Policy:   policy,
		WorkRoot: filepath.Join(cfg.WorkDir, "scans"),
		Ready:    eng.Ready,
		Log:      log,
	}
	srv, mux := queue.NewServer(rdb, queue.ServerConfig{
		Concurrency: cfg.Concurrency, Queues: weights, ShutdownTimeout: cfg.ShutdownTimeout,
		RetryBase: cfg.RetryBase, Log: log,
	}, h)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	log.Info("worker started", "concurrency", cfg.Concurrency, "queues", weights)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	reaper := &queue.Reaper{Inspector: insp, Records: store, Policy: policy,
		Queues: []string{queue.QueueSmall, queue.QueueLarge}, Log: log}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go reaper.Run(rctx, time.Minute)
	if cfg.HealthListen != "" {
		hs, err := serveWorkerHealth(cfg.HealthListen, store, obj, cfg.ReportsBucket, eng, log)
		if err != nil {
			srv.Shutdown()
			return err
		}
		defer hs.Close()
	}

	<-ctx.Done()
	log.Info("worker stopping: finishing or handing back running scans", "timeout", cfg.ShutdownTimeout)
	srv.Shutdown()
	return nil
}

// serveWorkerHealth serves the worker's /healthz (alive) and /readyz: Redis
// and storage reachable, the vulnerability DB open, the malware engine's
// canary passing. A worker that is not ready takes no jobs (the handler
// hands them back), so /readyz and job intake agree.
func serveWorkerHealth(addr string, store *storage.Store, obj *storage.Objects, bucket string, eng *engines, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		checks := map[string]string{"redis": "ok", "storage": "ok", "vulndb": "ok", "malware": "ok"}
		ok := true
		if err := store.PingRedis(ctx); err != nil {
			checks["redis"], ok = err.Error(), false
		}
		if err := obj.Ping(ctx, bucket); err != nil {
			checks["storage"], ok = err.Error(), false
		}
		if eng.Trivy == nil {
			checks["vulndb"], ok = "vulnerability database not open", false
		}
		if err := eng.Ready(ctx); err != nil {
			checks["malware"], ok = err.Error(), false
		}
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "checks": checks})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Info("worker health listening", "addr", ln.Addr().String())
	return hs, nil
}
