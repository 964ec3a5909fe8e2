package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/assetscan/assetscan/dbsync"
	"github.com/assetscan/assetscan/scanner/clamav"
	"github.com/assetscan/assetscan/scanner/trivy"
	"github.com/assetscan/assetscan/storage"
	"github.com/assetscan/assetscan/vulndb"
)

func cmdDB(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "publish" {
		return cmdDBPublish(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "download" {
		fs := flag.NewFlagSet("db download", flag.ContinueOnError)
		repos := fs.String("repository", "ghcr.io/aquasecurity/trivy-db:2", "OCI repositories of the trivy DB, comma-separated, tried in order (a private mirror in production)")
		insecure := fs.Bool("insecure", false, "allow a plain-HTTP or self-signed registry")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
			return fmt.Errorf("usage: assetscan db download [--repository REF,...] [--insecure] DIR")
		}
		if err := trivy.DownloadDB(ctx, fs.Arg(0), strings.Split(*repos, ","), *insecure); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "vulnerability DB downloaded into %s\n", fs.Arg(0))
		return nil
	}
	if len(args) != 2 || args[0] != "build-fixture" {
		return fmt.Errorf("usage: assetscan db build-fixture DIR | db download [--repository REF] DIR | db publish --db-bucket BUCKET DIR")
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

// cmdDBPublish uploads a trivy cache dir's DB to object storage for the
// workers' pollers (--db-bucket on the worker).
func cmdDBPublish(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("db publish", flag.ContinueOnError)
	var cfg serviceConfig
	cfg.bind(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 || cfg.DBBucket == "" {
		return fmt.Errorf("usage: assetscan db publish --db-bucket BUCKET [s3 flags] DIR")
	}
	if err := cfg.S3.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	obj, err := storage.NewObjects(cfg.S3)
	if err != nil {
		return err
	}
	if err := obj.EnsureBucket(ctx, cfg.DBBucket); err != nil {
		return err
	}
	pub, err := dbsync.Publish(ctx, obj.Client(), cfg.DBBucket, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s (built %s, %s) to %s/%s\n", fs.Arg(0), pub.UpdatedAt.Format("2006-01-02T15:04:05Z07:00"), pub.Digest, cfg.DBBucket, pub.Path)
	return nil
}
