package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/diskimage"
	"github.com/assetscan/assetscan/image"
	"github.com/assetscan/assetscan/scan"
	"github.com/assetscan/assetscan/scanner"
	"github.com/assetscan/assetscan/scanner/accounts"
	"github.com/assetscan/assetscan/scanner/clamav"
	"github.com/assetscan/assetscan/scanner/hygiene"
	"github.com/assetscan/assetscan/scanner/trivy"
	"github.com/assetscan/assetscan/vulndb"
)

// engineConfig says where the engines are.
type engineConfig struct {
	// DBDir is a trivy cache dir; "" builds the shipped fixture DB into
	// PrivateDir.
	DBDir string
	// Clamd is the clamd address; "" starts a private clamd with the
	// shipped signatures when clamd is installed (CLI and embedded mode),
	// or, with NoPrivateClamd, leaves the malware check out (its verdicts
	// are then "error", never "pass").
	Clamd          string
	NoPrivateClamd bool
	// ClamdConcurrency is the number of files in flight to clamd; 0: twice
	// its MaxThreads (fd passing) or 2 (INSTREAM).
	ClamdConcurrency int
	// ClamdMode is how files reach clamd: auto (fd passing over a unix
	// socket, INSTREAM over TCP), fdpass or instream.
	ClamdMode string
	// ClamdConf is the clamd.conf of an external clamd this process can
	// read; its DatabaseDirectory names the signatures the verdicts record.
	ClamdConf string
	// CanaryInterval is how often the malware engine canary runs.
	CanaryInterval time.Duration
	// PrivateDir holds the fixture DB and the private clamd.
	PrivateDir string
	Log        *slog.Logger
}

// engines are the checks and the things to stop at exit.
type engines struct {
	Checks  []scanner.Check
	Trivy   *trivy.Engine // nil when the DB could not be opened
	Monitor *clamav.Monitor
	// Preparers unpack and convert image assets.
	Preparers map[assetscan.Kind]scanner.Preparer
	closers   []func()
}

// DB describes the vulnerability DB in use (zero without one).
func (e *engines) DB() assetscan.DBRef {
	if e.Trivy == nil {
		return assetscan.DBRef{}
	}
	return e.Trivy.DB()
}

func (e *engines) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// Ready is nil when the engines can scan: the malware canary passed.
func (e *engines) Ready(context.Context) error {
	if e.Monitor != nil {
		if ok, why := e.Monitor.Healthy(); !ok {
			return fmt.Errorf("malware engine unhealthy: %s", why)
		}
	}
	return nil
}

// openEngines opens trivy and the malware engine. An engine that cannot be
// opened becomes a check that always errors: scans then end in "error",
// never "pass", and the reason is in the verdict.
func openEngines(ctx context.Context, cfg engineConfig) (*engines, error) {
	e := &engines{}
	if err := os.MkdirAll(cfg.PrivateDir, 0o700); err != nil {
		return nil, fmt.Errorf("engine dir: %w", err)
	}
	dbDir := cfg.DBDir
	if dbDir == "" {
		dbDir = filepath.Join(cfg.PrivateDir, "trivy-cache")
		if err := vulndb.BuildDefault(dbDir); err != nil {
			return nil, fmt.Errorf("build fixture vulnerability DB: %w", err)
		}
	}
	te, err := trivy.Open(ctx, trivy.Config{CacheDir: dbDir})
	if err != nil {
		cfg.Log.Error("vulnerability DB unusable; scans will end in error", "db_dir", dbDir, "error", err)
		e.Checks = append(e.Checks, brokenCheck{name: "trivy",
			covers: []string{assetscan.CheckVulnerability, assetscan.CheckSecret},
			err:    fmt.Errorf("%w: %w", scanner.ErrTransient, err)})
	} else {
		e.Trivy = te
		e.Checks = append(e.Checks, te.Check())
		e.closers = append(e.closers, func() { _ = te.Close() })
	}

	e.Checks = append(e.Checks, accounts.Check{}, hygiene.New(hygiene.Options{}))
	e.Preparers = map[assetscan.Kind]scanner.Preparer{
		assetscan.KindContainerImage: image.Preparer{},
		assetscan.KindVMImage:        diskimage.Preparer{},
	}

	addr := cfg.Clamd
	// The signature directory clamd loads, when this process can read it:
	// the malware check's identity is its digest (else "unknown", and
	// findings are never reused).
	ccfg := clamav.CheckConfig{Concurrency: cfg.ClamdConcurrency, Mode: cfg.ClamdMode}
	if cfg.ClamdConf != "" {
		dir, err := clamav.DatabaseDirectory(cfg.ClamdConf)
		if err != nil {
			return nil, fmt.Errorf("--clamd-conf: %w", err)
		}
		ccfg.SignatureDir = dir
	}
	if addr == "" && !cfg.NoPrivateClamd {
		d, err := clamav.StartDaemon(ctx, filepath.Join(cfg.PrivateDir, "clamd"))
		switch {
		case errors.Is(err, clamav.ErrNoClamd):
			cfg.Log.Warn("clamd is not installed and --clamd is not set: the malware check cannot run, verdicts will be error")
		case err != nil:
			cfg.Log.Error("private clamd did not start", "error", err)
		default:
			addr = d.Addr()
			// assetscan manages this directory: the check proves clamd
			// loaded what is in it (a generation signature, RELOAD).
			ccfg.SignatureDir, ccfg.ProveLoaded = d.SignatureDir(), true
			e.closers = append(e.closers, func() { _ = d.Stop() })
		}
	}
	if addr == "" {
		e.Checks = append(e.Checks, brokenCheck{name: assetscan.CheckMalware,
			err: errors.New("malware engine not configured (set --clamd or install clamav-daemon)")})
		return e, nil
	}
	client, err := clamav.NewClient(clamav.Config{Addr: addr})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("--clamd: %w", err)
	}
	chk, err := clamav.NewCheck(client, ccfg)
	if err != nil {
		e.Close()
		return nil, err
	}
	if ccfg.ProveLoaded {
		// The first identity asks clamd to load the generation signature;
		// wait (briefly) until clamd proves it, so the first scan's
		// identity is known and its findings can be reused.
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if id, err := chk.EngineIdentity(ctx); err == nil && id.Known {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	e.Checks = append(e.Checks, chk)
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var canaryFiles []string
	if _, err := os.Stat(clamav.ClamAVTestFile); err == nil {
		canaryFiles = append(canaryFiles, clamav.ClamAVTestFile)
	} else {
		cfg.Log.Warn("ClamAV test file not installed (Debian clamav-testfiles): the canary sends EICAR only", "path", clamav.ClamAVTestFile)
	}
	e.Monitor = clamav.NewMonitor(client, clamav.MonitorConfig{Interval: cfg.CanaryInterval, CanaryFiles: canaryFiles})
	e.Monitor.Start(mctx)
	e.closers = append(e.closers, cancel)
	return e, nil
}

// service is the scan service over these engines: the one flow the CLI,
// the worker and the embedded mode run. The caller adds storage, reuse and
// finalization where it has them.
func (e *engines) service(pol scan.Policies, workRoot string, log *slog.Logger) *scan.Service {
	return &scan.Service{
		Scanner:  &scanner.Scanner{Checks: e.Checks, Preparers: e.Preparers, Log: log},
		Policies: pol,
		DB:       e.DB,
		WorkRoot: workRoot,
		Log:      log,
	}
}

// brokenCheck stands in for an engine that could not be opened: it always
// reports that the check did not run.
type brokenCheck struct {
	name   string
	covers []string
	err    error
}

func (b brokenCheck) Name() string { return b.name }
func (b brokenCheck) Covers() []string {
	if len(b.covers) == 0 {
		return []string{b.name}
	}
	return b.covers
}
func (b brokenCheck) Run(context.Context, *scanner.Target) (scanner.Result, error) {
	return scanner.Result{}, b.err
}
