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
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/api"
	"github.com/assetscan/assetscan/auth"
	"github.com/assetscan/assetscan/callbacks"
	"github.com/assetscan/assetscan/dbsync"
	"github.com/assetscan/assetscan/events"
	"github.com/assetscan/assetscan/metrics"
	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/queue"
	"github.com/assetscan/assetscan/reeval"
	"github.com/assetscan/assetscan/scan"
	"github.com/assetscan/assetscan/storage"
)

// supportedKinds are the asset kinds workers handle.
var supportedKinds = []assetscan.Kind{assetscan.KindPackage, assetscan.KindContainerImage, assetscan.KindVMImage}

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
	verr := cfg.validate(*embedded)
	if cfg.KeysFile == "" && !*embedded {
		verr = errors.Join(verr, errors.New("--keys-file (ASSETSCAN_KEYS_FILE) is required: every endpoint but health needs an API key"))
	}
	if verr != nil {
		return fmt.Errorf("configuration:\n%w", verr)
	}
	var keys *auth.Keyring
	if cfg.KeysFile != "" {
		k, err := auth.LoadKeys(cfg.KeysFile)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		keys = k
	} else {
		k, tokens, err := demoKeys()
		if err != nil {
			return err
		}
		keys, demo.tokens = k, tokens
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
	pstore := policies.NewStore(rdb, cfg.KeyPrefix).WithObjects(obj, cfg.ReportsBucket)
	if err := pstore.Seed(ctx); err != nil {
		return fmt.Errorf("seed policies: %w", err)
	}
	reg := prometheus.NewRegistry()
	met := metrics.New(reg)
	reg.MustRegister(metrics.QueueCollector(asynq.NewInspectorFromRedisClient(rdb), cfg.queueNames()))
	cbStore := callbacks.NewStore(rdb, cfg.KeyPrefix).WithEgress(cfg.callbackEgress())
	notifier := &callbacks.Notifier{Client: client, Store: cbStore, QueuePrefix: cfg.QueuePrefix}
	ev := &reeval.Evaluator{Verdicts: store, Log: log, Notify: notifier.Notify}
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
		Enqueuer:      &queue.Enqueuer{Client: client, MaxRetry: cfg.MaxRetry, QueuePrefix: cfg.QueuePrefix},
		Kinds:         supportedKinds,
		ReportsBucket: cfg.ReportsBucket,
		Scope:         cfg.submitScope(),
		Policies:      pstore,
		Reeval:        ev,
		PolicyDir:     cfg.PolicyDir,
		Keys:          keys,
		Callbacks:     cbStore,
		Metrics:       met,
		Log:           log,
		Mounts: []api.Mount{
			{Prefix: "/metrics", Action: auth.ActQueueUI, Handler: metrics.Handler(reg)},
			{Prefix: "/queues/", Action: auth.ActQueueUI, Handler: queueUI(&cfg)},
		},
	}
	if cfg.EventsList != "" {
		c, err := eventsConsumer(&cfg, srv, obj, log)
		if err != nil {
			return err
		}
		go func() { _ = c.Run(ctx) }()
		log.Info("scanning uploads from bucket events", "list", cfg.EventsList, "ids_from", cfg.EventsIDs)
	}

	var wg sync.WaitGroup
	wctx, cancelWorker := context.WithCancel(ctx)
	defer cancelWorker()
	if *embedded {
		eng, err := openEngines(ctx, engineConfig{DBDir: cfg.DBDir, Clamd: cfg.Clamd,
			PrivateDir: filepath.Join(demo.dir, "engines"), ClamdConcurrency: cfg.ClamdConcurrency, ClamdMode: cfg.ClamdMode, ClamdConf: cfg.ClamdConf,
			CanaryInterval: cfg.CanaryInterval, Log: log})
		if err != nil {
			return err
		}
		defer eng.Close()
		wg.Go(func() {
			if err := runWorker(wctx, &cfg, rdb, obj, store, eng, nil, log); err != nil {
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
	// Policies are durable in the reports bucket; the worker reads them.
	// Object storage may still be coming up (a restart of the whole
	// stack): wait for it rather than exit.
	if err := retryStart(ctx, log, "reports bucket", func(ctx context.Context) error {
		return obj.EnsureBucket(ctx, cfg.ReportsBucket)
	}); err != nil {
		return fmt.Errorf("reports bucket %q: %w", cfg.ReportsBucket, err)
	}
	store := storage.NewStore(rdb, obj, cfg.ReportsBucket, cfg.KeyPrefix)
	eng, err := openEngines(ctx, engineConfig{DBDir: cfg.DBDir, Clamd: cfg.Clamd, NoPrivateClamd: true,
		PrivateDir: filepath.Join(cfg.WorkDir, "engines"), ClamdConcurrency: cfg.ClamdConcurrency, ClamdMode: cfg.ClamdMode, ClamdConf: cfg.ClamdConf,
		CanaryInterval: cfg.CanaryInterval, Log: log})
	if err != nil {
		return err
	}
	defer eng.Close()
	reg := prometheus.NewRegistry()
	return runWorker(ctx, &cfg, rdb, obj, store, eng, reg, log)
}

// queueUI is asynqmon at /queues/: read-only unless --queue-ui-writable.
// A task deleted there would leave its scan without a verdict until the
// sweeper re-enqueues it; staff look, they do not edit the queue.
func queueUI(cfg *serviceConfig) http.Handler {
	return asynqmon.New(asynqmon.Options{RootPath: "/queues", RedisConnOpt: cfg.asynqRedis(), ReadOnly: !cfg.QueueUIWritable})
}

// runWorker runs the asynq server and the sweeper until ctx ends, then shuts
// down gracefully: running scans get ShutdownTimeout to finish, then are
// handed back to the queue.
func runWorker(ctx context.Context, cfg *serviceConfig, rdb redis.UniversalClient, obj *storage.Objects,
	store *storage.Store, eng *engines, reg *prometheus.Registry, log *slog.Logger) error {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met := metrics.New(reg)
	reg.MustRegister(metrics.QueueCollector(asynq.NewInspectorFromRedisClient(rdb), cfg.queueNames()))
	if eng.Trivy != nil {
		met.SetVulnDBSource(eng.Trivy.DB)
	}
	cbStore := callbacks.NewStore(rdb, cfg.KeyPrefix).WithEgress(cfg.callbackEgress())
	notifier := &callbacks.Notifier{Client: asynq.NewClientFromRedisClient(rdb), Store: cbStore, QueuePrefix: cfg.QueuePrefix}
	cbSrv, cbMux := callbacks.NewServer(rdb, &callbacks.Deliverer{Store: cbStore, Log: log}, callbacks.ServerConfig{QueuePrefix: cfg.QueuePrefix, Log: log})
	if err := cbSrv.Start(cbMux); err != nil {
		return fmt.Errorf("start callback delivery: %w", err)
	}
	defer cbSrv.Shutdown()
	weights, err := cfg.queueWeights()
	if err != nil {
		return err
	}
	pstore := policies.NewStore(rdb, cfg.KeyPrefix).WithObjects(obj, cfg.ReportsBucket)
	if err := retryStart(ctx, log, "seed policies", pstore.Seed); err != nil {
		return fmt.Errorf("seed policies: %w", err)
	}
	policy := pstore.ForKind
	workRoot := filepath.Join(cfg.WorkDir, "scans")
	if n, err := scan.CleanWorkRoot(workRoot); err != nil {
		log.Warn("work dirs left by an earlier run could not all be removed", "dir", workRoot, "removed", n, "error", err)
	} else if n > 0 {
		log.Info("removed work dirs left by an earlier run", "dir", workRoot, "count", n)
	}
	svc := eng.service(pstore, workRoot, log)
	svc.Scanner.OnCheck = met.ObserveCheck
	svc.Fetcher, svc.Records, svc.Reuse = obj, store, store
	svc.Finalizer = &finalizer{obj: obj, tag: cfg.TagVerdicts, notify: notifier.Notify, log: log}
	h := &queue.Handler{Service: svc, Records: store, Ready: eng.Ready, Metrics: met, Log: log}
	srv, mux := queue.NewServer(rdb, queue.ServerConfig{
		Concurrency: cfg.Concurrency, Queues: weights, QueuePrefix: cfg.QueuePrefix, ShutdownTimeout: cfg.ShutdownTimeout,
		RetryBase: cfg.RetryBase, Log: log,
	}, h)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	log.Info("worker started", "concurrency", cfg.Concurrency, "queues", weights, "queue_prefix", cfg.QueuePrefix)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	sweeper := &queue.Sweeper{Inspector: insp, Records: store, Finisher: svc,
		Enqueuer:   &queue.Enqueuer{Client: asynq.NewClientFromRedisClient(rdb), MaxRetry: cfg.MaxRetry, QueuePrefix: cfg.QueuePrefix},
		StuckAfter: cfg.StuckAfter, Deadline: cfg.ScanDeadline, Log: log}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sweeper.Run(rctx, cfg.SweepInterval)
	go watchReadiness(rctx, eng, met, cfg.NotReadyAlertAfter, log)
	if eng.Monitor != nil {
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				ok, _ := eng.Monitor.Healthy()
				met.SetMalwareEngineHealthy(ok)
				select {
				case <-rctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	if cfg.DBBucket != "" && eng.Trivy != nil {
		ev := &reeval.Evaluator{Verdicts: store, Log: log, Notify: notifier.Notify}
		swap := func(ctx context.Context, dir string) error {
			if err := eng.Trivy.SwapDB(ctx, dir); err != nil {
				return err
			}
			ref := eng.Trivy.DB()
			log.Info("vulnerability DB swapped", "updated_at", ref.UpdatedAt, "digest", ref.Digest)
			// One worker of the fleet re-matches the stored inventories.
			if ok, err := store.Lock(ctx, "rematch:"+ref.Digest+":"+ref.UpdatedAt.String(), 24*time.Hour); err != nil || !ok {
				return nil
			}
			go func() {
				res, err := ev.RematchDB(rctx, store, func(ctx context.Context, c []assetscan.Component, os *assetscan.OSInfo) ([]assetscan.Finding, *assetscan.DBRef, error) {
					r, err := eng.Trivy.Rematch(ctx, c, os)
					return r.Findings, r.DB, err
				}, policy)
				if err != nil {
					log.Error("re-matching stored inventories after the DB update", "error", err)
					return
				}
				log.Info("stored inventories re-matched against the new DB", "evaluated", res.Evaluated, "changed", len(res.Changes))
			}()
			return nil
		}
		p := &dbsync.Poller{S3: obj.Client(), Bucket: cfg.DBBucket, Root: filepath.Join(cfg.WorkDir, "vulndb"),
			Interval: cfg.DBPollInterval, Current: eng.Trivy.DB, Swap: swap, Log: log}
		go p.Run(rctx)
		log.Info("polling for published vulnerability DBs", "bucket", cfg.DBBucket, "interval", cfg.DBPollInterval)
	}
	if cfg.HealthListen != "" {
		hs, err := serveWorkerHealth(cfg.HealthListen, store, obj, cfg.ReportsBucket, eng, reg, log)
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
func serveWorkerHealth(addr string, store *storage.Store, obj *storage.Objects, bucket string, eng *engines, reg *prometheus.Registry, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
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

// eventsConsumer builds the scan-on-upload consumer: MinIO's Redis
// notification target pushes bucket events to a list; each upload becomes
// a submission through the same path as POST /v1/scans.
func eventsConsumer(cfg *serviceConfig, srv *api.Server, obj *storage.Objects, log *slog.Logger) (*events.Consumer, error) {
	m := events.Mapping{}
	for _, part := range strings.Split(cfg.EventsIDs, ",") {
		switch strings.TrimSpace(part) {
		case "metadata":
			m.FromMetadata = true
		case "key":
			m.FromKeyLayout = true
		default:
			return nil, fmt.Errorf("--events-ids: %q is not metadata or key", part)
		}
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("--events-ids: %w", err)
	}
	var erdb redis.UniversalClient
	if cfg.EventsRedisAddr == "" {
		// Not a cluster (validate refuses that): the list is on --redis-addr.
		ec := *cfg
		ec.RedisDB = cfg.EventsRedisDB
		erdb = ec.redisClient()
	} else {
		erdb = redis.NewClient(&redis.Options{Addr: cfg.EventsRedisAddr, Password: cfg.RedisPassword, DB: cfg.EventsRedisDB})
	}
	return &events.Consumer{Redis: erdb, List: cfg.EventsList, Submitter: apiSubmitter{srv}, Mapping: m,
		S3: obj.Client(), Log: log}, nil
}

// apiSubmitter submits upload events through the API's own path.
type apiSubmitter struct{ srv *api.Server }

func (a apiSubmitter) Submit(ctx context.Context, r events.Request) (string, bool, error) {
	resp, created, err := a.srv.Submit(ctx, api.SubmitRequest{AssetID: r.AssetID, SellerID: r.SellerID,
		Kind: assetscan.Kind(r.Kind), Bucket: r.Bucket, Key: r.Key, VersionID: r.VersionID})
	var se *api.SubmitError
	if errors.As(err, &se) && se.Permanent() {
		return "", false, fmt.Errorf("%w: %w", events.ErrPermanent, err)
	}
	return resp.ScanID, created, err
}

// demoKeys makes throwaway API keys for the embedded demo.
func demoKeys() (*auth.Keyring, map[string]string, error) {
	tokens := map[string]string{}
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, e := range []struct{ name, role, seller string }{
		{"asset-center", "asset-center", ""}, {"seller-1", "seller", "seller-1"}, {"staff", "security-staff", ""},
	} {
		tok, hash := auth.NewKey()
		tokens[e.name] = tok
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    key_sha256: %s\n", e.name, e.role, hash)
		if e.seller != "" {
			fmt.Fprintf(&b, "    seller_id: %s\n", e.seller)
		}
	}
	k, err := auth.ParseKeys([]byte(b.String()))
	return k, tokens, err
}
