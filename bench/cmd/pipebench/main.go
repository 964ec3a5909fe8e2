// Command pipebench is the helper of bench/pipeline.sh: it generates the
// benchmark's packages, writes API keys, drives the HTTP API (batches,
// sequential submissions, one large package while sampling the worker's
// processes) and seeds stored verdicts for the re-evaluation figure. It
// never links trivy, so it builds in seconds.
//
//	pipebench gen-small -dir DIR -expected F   N small packages and their expected verdicts
//	pipebench gen-large -out FILE -bytes N     a tar of about N bytes (many small files, a few large)
//	pipebench keys -out FILE                   keys file; prints TOKEN=... and STAFF_TOKEN=...
//	pipebench upload -dir DIR -bucket B        upload every file of DIR (S3 from ASSETSCAN_TEST_S3_*), -key-prefix P
//	pipebench batch ...                        submit every package of a dir, wait for all verdicts
//	pipebench seq ...                          submissions one at a time: latency percentiles
//	pipebench large ...                        one large package: stages, CPU, RSS, work disk
//	pipebench reeval ...                       seed N verdicts in MinIO + Redis, time reeval.Apply
//
// Every subcommand prints one JSON object on stdout (the figures) and its
// progress on stderr.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pipebench gen-small|gen-large|keys|upload|batch|seq|large|reeval [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) (any, error){
		"gen-small": cmdGenSmall,
		"gen-large": cmdGenLarge,
		"keys":      cmdKeys,
		"upload":    cmdUpload,
		"batch":     cmdBatch,
		"seq":       cmdSeq,
		"large":     cmdLarge,
		"reeval":    cmdReeval,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "pipebench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	out, err := f(ctx, os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipebench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if out != nil {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(out); err != nil {
			fmt.Fprintf(os.Stderr, "pipebench %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
	}
}
