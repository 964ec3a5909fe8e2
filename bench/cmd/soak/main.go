// Command soak is the client side of bench/soak.sh, the fault soak of
// issue 12: while the script's chaos loop kills workers, Redis and MinIO,
// this program uploads and submits small packages (a share of them holding
// the EICAR test file) like the asset center would, waits for every
// verdict, and checks the invariants against the API and the reports
// bucket.
//
//	soak keys DIR       write DIR/keys.yaml (serve's ASSETSCAN_KEYS_FILE) and
//	                    DIR/token (the asset center's API key)
//	soak prepare        create the uploads bucket and the reports bucket,
//	                    the latter versioned so every write of a verdict
//	                    object is counted
//	soak submit         upload and submit -n packages, paced -interval apart;
//	                    one JSON line per scan in -manifest
//	soak wait           poll the API until every scan in -manifest is done
//	                    or -timeout passes
//	soak report         check every scan, print the counts, exit 1 when an
//	                    invariant breaks
//
// S3 settings come from ASSETSCAN_TEST_S3_ENDPOINT, _ACCESS_KEY and
// _SECRET_KEY (what scripts/services.sh writes to its env file).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/assetscan/assetscan/auth"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		var ie *invariantError
		if errors.As(err, &ie) {
			fmt.Fprintln(os.Stderr, "soak: FAILED:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: soak keys|prepare|submit|wait|report [flags]")
	}
	switch args[0] {
	case "keys":
		if len(args) != 2 {
			return errors.New("usage: soak keys DIR")
		}
		return writeKeys(args[1])
	case "prepare":
		return cmdPrepare(ctx, args[1:])
	case "submit":
		return cmdSubmit(ctx, args[1:], stdout)
	case "wait":
		return cmdWait(ctx, args[1:], stdout)
	case "report":
		return cmdReport(ctx, args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// writeKeys writes a keys file with one asset-center key (the soak's
// client) and the key itself to dir/token.
func writeKeys(dir string) error {
	tok, hash := auth.NewKey()
	keys := fmt.Sprintf("keys:\n  - name: soak-asset-center\n    role: asset-center\n    key_sha256: %s\n", hash)
	if err := os.WriteFile(filepath.Join(dir, "keys.yaml"), []byte(keys), 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func s3Client() (*minio.Client, error) {
	ep := os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT")
	if ep == "" {
		return nil, errors.New("ASSETSCAN_TEST_S3_ENDPOINT is not set (source the env file scripts/services.sh writes)")
	}
	c, err := minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4(
		os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"), os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY"), "")})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return c, nil
}

func cmdPrepare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	uploads := fs.String("uploads", "soak-uploads", "bucket the packages are uploaded to")
	reports := fs.String("reports", "soak-reports", "the service's reports bucket (created versioned)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := s3Client()
	if err != nil {
		return err
	}
	for _, b := range []string{*uploads, *reports} {
		if ok, err := c.BucketExists(ctx, b); err != nil {
			return fmt.Errorf("prepare: %w", err)
		} else if !ok {
			if err := c.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
				return fmt.Errorf("prepare: make bucket %s: %w", b, err)
			}
		}
	}
	// Versioning makes a second write of verdicts/<id>.json visible even
	// when it wrote the same bytes.
	if err := c.EnableVersioning(ctx, *reports); err != nil {
		return fmt.Errorf("prepare: versioning on %s: %w", *reports, err)
	}
	return nil
}

// manifestEntry is one line of the manifest: a package and the scan the
// API gave for it.
type manifestEntry struct {
	Index    int    `json:"i"`
	Key      string `json:"key"`
	EICAR    bool   `json:"eicar"`
	ScanID   string `json:"scan_id,omitempty"`
	Existing bool   `json:"existing,omitempty"`
	// Rejected is the API's answer when the submission was refused for
	// good (4xx), or the last error when it never went through.
	Rejected string `json:"rejected,omitempty"`
	Attempts int    `json:"attempts"`
}

func readManifest(path string) ([]manifestEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	var out []manifestEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var e manifestEntry
		if err := jsonUnmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return out, nil
}
