package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assetscan/assetscan/policies"
	"github.com/assetscan/assetscan/reeval"
)

// cmdPolicy: `assetscan policy check FILE` validates a policy file offline;
// `assetscan policy test FILE` is the what-if against a running API: which
// verdicts would change under the draft (nothing is saved).
func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: assetscan policy check FILE | assetscan policy test [--api URL] [--key KEY] [--last N] [--scan ID]... FILE")
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			return fmt.Errorf("usage: assetscan policy check FILE")
		}
		p, err := policies.Load(args[1])
		if err != nil {
			return err
		}
		r := p.Ref()
		fmt.Fprintf(stdout, "%s: valid (%s v%d, kind %s, %s)\n", args[1], r.ID, r.Version, p.Kind, r.Digest)
		return nil
	case "test":
	default:
		return fmt.Errorf("unknown policy command %q (check, test)", args[0])
	}
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api", envOr("ASSETSCAN_API", "http://127.0.0.1:8080"), "assetscan API base URL")
	key := fs.String("key", os.Getenv("ASSETSCAN_API_KEY"), "security-staff API key")
	last := fs.Int("last", 100, "evaluate the last N finished scans of the policy's kind")
	var scans multiFlag
	fs.Var(&scans, "scan", "evaluate this scan id (repeatable; overrides --last)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 1 {
		return fmt.Errorf("usage: assetscan policy test [--api URL] [--key KEY] [--last N] [--scan ID]... FILE")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	p, err := policies.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	body, _ := json.Marshal(map[string]any{"document": string(raw), "scan_ids": []string(scans), "last": *last})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*apiURL, "/")+"/v1/policies/"+p.ID+"/evaluate", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+*key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("what-if: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var res reeval.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d verdicts evaluated, %d would change\n", res.Evaluated, len(res.Changes))
	if len(res.Changes) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SCAN\tASSET\tSELLER\tFROM\tTO\tRULES NOW\tRULES THEN")
		for _, c := range res.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ScanID, c.AssetID, c.SellerID, c.From, c.To,
				strings.Join(c.FromRules, ","), strings.Join(c.ToRules, ","))
		}
		_ = tw.Flush()
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
