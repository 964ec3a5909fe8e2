package e2e

import (
	"archive/tar"
	"cmp"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/archive"
	"github.com/assetscan/assetscan/archive/archivetest"
	"github.com/assetscan/assetscan/scanner/clamav"
)

// TestScaleOut is the scale-out proof (issue 15), run in both setups:
// many scans through two workers that share one queue; every scan gets
// its verdict (none lost, none run twice, both workers take a share), and
// every verdict is the one its content calls for. Each package is
// unique (no verdict is reused), so every scan runs on a worker.
//
// ASSETSCAN_E2E_SCALE_SCANS sets the number of scans (default 120, a
// multiple of the 8 cases is best). With ASSETSCAN_E2E_VERDICTS=FILE the
// test writes one line per scan ("<case> <n> <verdict> <failed rules>"),
// sorted, so scripts/test.sh can diff the single-node run against the
// scale-out one, and the run's figures to FILE.summary.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	n := 120
	if v, err := strconv.Atoi(os.Getenv("ASSETSCAN_E2E_SCALE_SCANS")); err == nil && v > 0 {
		n = v
	}
	s := newStack(t, stackOpts{noWorker: true})
	workers := []*proc{s.startWorker(), s.startWorker()}

	// id makes package i's content unique.
	id := func(i int) []byte { return []byte(fmt.Sprintf("build %d of %s\n", i, t.Name())) }
	cases := []struct {
		name    string
		key     string // format with the scan's number
		verdict assetscan.Outcome
		rule    string
		data    func(i int) []byte
	}{
		{"clean", "s/clean-%02d.zip", assetscan.Pass, "", func(i int) []byte {
			return pkg(t, archive.FormatZip, map[string][]byte{"app/README.txt": id(i),
				"app/package-lock.json": []byte(strings.ReplaceAll(lodashLock, "4.17.11", "4.17.21"))})
		}},
		{"vulnerable", "s/lodash-%02d.tar.gz", assetscan.Fail, "vulnerability.cvss", func(i int) []byte {
			return pkg(t, archive.FormatTarGz, map[string][]byte{"app/id.txt": id(i), "app/package-lock.json": []byte(lodashLock)})
		}},
		{"secret", "s/key-%02d.tgz", assetscan.Fail, "secret.asymmetricprivatekey", func(i int) []byte {
			return pkg(t, archive.FormatTarGz, map[string][]byte{"app/id.txt": id(i), "app/tests/id_rsa": []byte(testRSAKey)})
		}},
		{"malware", "s/eicar-%02d.tar", assetscan.Fail, "malware.detected", func(i int) []byte {
			return pkg(t, archive.FormatTar, map[string][]byte{"app/id.txt": id(i),
				"app/inner.zip": pkg(t, archive.FormatZip, map[string][]byte{"x/eicar.com": clamav.EICAR()})})
		}},
		{"traversal", "s/slip-%02d.zip", assetscan.Fail, "archive.traversal", func(i int) []byte {
			return entries(t, archive.FormatZip, []archivetest.Entry{{Name: "../../evil-slip.txt", Body: id(i)}, {Name: "ok.txt", Body: []byte("ok")}})
		}},
		{"link", "s/link-%02d.tar", assetscan.Fail, "archive.link_escape", func(i int) []byte {
			return entries(t, archive.FormatTar, []archivetest.Entry{
				{Name: "app/etc", Type: tar.TypeSymlink, Linkname: "../../../../../../etc"},
				{Name: "app/etc/evil-link.txt", Body: id(i)}})
		}},
		{"name", "s/my app %02d.zip", assetscan.Fail, "format.name", func(i int) []byte {
			return pkg(t, archive.FormatZip, map[string][]byte{"a.txt": id(i)})
		}},
		{"not-an-archive", "s/fake-%02d.zip", assetscan.Fail, "format.unsupported", func(i int) []byte {
			return append([]byte("this is not a zip file at all: "), id(i)...)
		}},
	}
	type scan struct {
		c  int // index in cases
		n  int
		id string
	}
	scans := make([]scan, n)
	t0 := time.Now()
	for i := range scans {
		c := cases[i%len(cases)]
		key := fmt.Sprintf(c.key, i)
		s.upload(key, c.data(i))
		scans[i] = scan{c: i % len(cases), n: i, id: s.submit(fmt.Sprintf("scale-%s-%02d", c.name, i), key)}
	}
	submitted := time.Since(t0)

	var lines []string
	verdicts := map[assetscan.Outcome]int{}
	for _, sc := range scans {
		c := cases[sc.c]
		v := s.wait(sc.id, 5*time.Minute)
		verdicts[v.Verdict]++
		rules := make([]string, 0, len(v.FailedRules))
		for _, r := range v.FailedRules {
			rules = append(rules, r.Rule)
		}
		slices.Sort(rules)
		lines = append(lines, fmt.Sprintf("%s %02d %s %s", c.name, sc.n, v.Verdict, cmp.Or(strings.Join(rules, ","), "-")))
		if v.Verdict != c.verdict || (c.rule != "" && !hasRule(v, c.rule)) {
			t.Errorf("%s #%d (%s): %s [%s] (%s), want %s [%s]", c.name, sc.n, sc.id, v.Verdict, ruleList(v), v.Reason, c.verdict, c.rule)
		}
		if v.Attempts != 1 || v.Reused {
			t.Errorf("%s #%d (%s): %d attempts, reused %v; want one run of its own", c.name, sc.n, sc.id, v.Attempts, v.Reused)
		}
	}
	elapsed := time.Since(t0)

	// Every scan ran exactly once, and both workers took a share.
	started := regexp.MustCompile(`"msg":"scan started","scan_id":"(scn_[0-9a-f]+)"`)
	runs, perWorker := map[string]int{}, map[string]int{}
	for _, w := range workers {
		b, _ := os.ReadFile(w.log)
		for _, m := range started.FindAllStringSubmatch(string(b), -1) {
			runs[m[1]]++
			perWorker[w.name]++
		}
	}
	for _, sc := range scans {
		if runs[sc.id] != 1 {
			t.Errorf("%s #%d (%s) ran %d times", cases[sc.c].name, sc.n, sc.id, runs[sc.id])
		}
	}
	for _, w := range workers {
		if perWorker[w.name] == 0 {
			t.Errorf("%s ran no scan: the workers did not share the queue (%v)", w.name, perWorker)
		}
	}
	setup := "a single Redis"
	if testEnv.cluster {
		setup = "Redis Cluster " + testEnv.redisAddr
	}
	setup += fmt.Sprintf(", %d MinIO node(s) %s", len(testEnv.s3Endpoints), strings.Join(testEnv.s3Endpoints, ","))
	counts := make([]string, 0, len(verdicts))
	for _, o := range slices.Sorted(maps.Keys(verdicts)) {
		counts = append(counts, fmt.Sprintf("%s=%d", o, verdicts[o]))
	}
	summary := fmt.Sprintf("%d scans on %s, 2 workers (%v): verdicts %s; submitted in %s, all done in %s",
		n, setup, perWorker, strings.Join(counts, " "), submitted.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	t.Log(summary)

	if path := os.Getenv("ASSETSCAN_E2E_VERDICTS"); path != "" {
		slices.Sort(lines)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// The figures for scripts/test.sh, which runs without -v.
		if err := os.WriteFile(path+".summary", []byte(summary+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
