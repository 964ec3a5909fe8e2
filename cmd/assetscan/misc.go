package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/assetscan/assetscan/scanner/clamav"
	"github.com/assetscan/assetscan/scanner/trivy"
	"github.com/assetscan/assetscan/vulndb"
)

func cmdDB(_ context.Context, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "build-fixture" {
		return fmt.Errorf("usage: assetscan db build-fixture DIR")
	}
	if err := vulndb.BuildDefault(args[1]); err != nil {
		return err
	}
	ref, err := vulndb.ReadMetadata(args[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fixture vulnerability DB written to %s (schema %d, built %s, %s)\n",
		args[1], ref.SchemaVersion, ref.UpdatedAt.Format("2006-01-02T15:04:05Z07:00"), ref.Digest)
	return nil
}

func cmdSignatures(args []string) error {
	fs := flag.NewFlagSet("clamd-signatures", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return fmt.Errorf("usage: assetscan clamd-signatures DIR")
	}
	return clamav.WriteSignatures(fs.Arg(0))
}

func versionString() string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("assetscan %s (trivy %s)", v, trivy.Version())
}
