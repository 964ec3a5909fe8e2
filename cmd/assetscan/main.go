// Command assetscan decides whether a seller's package or image is safe to
// publish.
//
//	assetscan scan [--kind KIND] [--db-dir DIR] [--policy FILE] [--clamd ADDR] [--format table|json] PATH
//	assetscan serve [--embedded]     HTTP API (and, with --embedded, a worker and in-process Redis/S3)
//	assetscan worker                 scan jobs from the queue
//	assetscan db build-fixture DIR   write the fixture vulnerability DB (trivy cache layout)
//	assetscan version
//
// Every flag has an ASSETSCAN_* environment variable; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/assetscan/assetscan/scanner/trivy"
)

// Exit codes of `assetscan scan`.
const (
	exitPass  = 0
	exitFail  = 1
	exitError = 2
)

func main() {
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	trivy.CleanupTemp() // once per process: trivy's temp dir is process-wide
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "scan":
		return cmdScan(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "worker":
		err = cmdWorker(ctx, args[1:], stderr)
	case "db":
		err = cmdDB(ctx, args[1:], stdout)
	case "policy":
		err = cmdPolicy(ctx, args[1:], stdout, stderr)
	case "clamd-signatures":
		err = cmdSignatures(args[1:])
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "assetscan: unknown command %q\n", args[0])
		usage(stderr)
		return exitError
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			return exitError
		}
		fmt.Fprintf(stderr, "assetscan %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: assetscan COMMAND [flags]

commands:
  scan PATH            scan a local file in-process; exit 0 pass, 1 fail, 2 error
  serve [--embedded]   run the HTTP API (--embedded: with a worker and in-process Redis and S3)
  worker               run scan jobs from the queue
  db build-fixture DIR write the shipped fixture vulnerability DB into DIR
  db publish DIR       upload a trivy DB dir for the workers (--db-bucket)
  policy check FILE    validate a policy file
  policy test FILE     what-if: which verdicts a draft policy would change (--api, --key)
  clamd-signatures DIR write the shipped ClamAV signatures into DIR
  version              print versions

Run "assetscan COMMAND -h" for the flags of a command.
`)
}

// newLogger returns assetscan's JSON logger. It also installs a JSON
// default logger for the libraries that log through slog's default (trivy):
// at warn level or above, so that every info line comes from assetscan and
// carries the scan, asset and seller ids; trivy's own default handler
// buffers, races and grows the heap.
func newLogger(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	slog.SetDefault(slog.New(trivy.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: max(lv, slog.LevelWarn)}))).With("component", "trivy"))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv}))
}
