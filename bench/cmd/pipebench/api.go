package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/assetscan/assetscan"
	"github.com/assetscan/assetscan/storage"
)

// s3FromEnv is the MinIO that scripts/services.sh started (its DIR/env).
func s3FromEnv() (*storage.Objects, error) {
	return storage.NewObjects(storage.S3Config{
		Endpoint:  os.Getenv("ASSETSCAN_TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("ASSETSCAN_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("ASSETSCAN_TEST_S3_SECRET_KEY"),
	})
}

type client struct {
	api, token string
	hc         *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// submit posts a package scan and returns its scan id.
func (c *client) submit(ctx context.Context, assetID, bucket, key string) (string, error) {
	body, _ := json.Marshal(map[string]string{"asset_id": assetID, "seller_id": "bench-seller", "kind": "package", "bucket": bucket, "key": key})
	code, b, err := c.do(ctx, http.MethodPost, "/v1/scans", body)
	if err != nil {
		return "", err
	}
	if code != http.StatusAccepted && code != http.StatusOK {
		return "", fmt.Errorf("submit %s: %d %s", key, code, b)
	}
	var r struct {
		ScanID string `json:"scan_id"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ScanID == "" {
		return "", fmt.Errorf("submit %s: bad answer %s", key, b)
	}
	return r.ScanID, nil
}

// verdict returns the scan's document; done says whether it is final.
func (c *client) verdict(ctx context.Context, id string) (assetscan.Verdict, bool, error) {
	code, b, err := c.do(ctx, http.MethodGet, "/v1/scans/"+id, nil)
	if err != nil {
		return assetscan.Verdict{}, false, err
	}
	if code != http.StatusOK {
		return assetscan.Verdict{}, false, fmt.Errorf("GET scan %s: %d %s", id, code, b)
	}
	var v assetscan.Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return v, false, err
	}
	return v, v.Status == assetscan.StatusDone, nil
}

func newClient(api, token string) *client {
	return &client{api: strings.TrimRight(api, "/"), token: token,
		hc: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

// procs is "name=pid,name=pid": the processes whose CPU time is summed.
type procs []struct {
	name string
	pid  int
}

func parseProcs(s string) (procs, error) {
	var ps procs
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, pid, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(pid)
		if !ok || err != nil {
			return nil, fmt.Errorf("-pids: %q is not name=pid", part)
		}
		ps = append(ps, struct {
			name string
			pid  int
		}{name, n})
	}
	return ps, nil
}

// cpuSeconds reads utime+stime of pid from /proc/PID/stat (0 if gone).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ is 100 on Linux
}

func (ps procs) cpu() map[string]float64 {
	m := make(map[string]float64, len(ps))
	for _, p := range ps {
		m[p.name] += cpuSeconds(p.pid)
	}
	return m
}

func cpuDelta(a, b map[string]float64) (map[string]float64, float64) {
	d := map[string]float64{}
	var total float64
	for k, v := range b {
		d[k] = round(v-a[k], 2)
		total += v - a[k]
	}
	return d, round(total, 2)
}

func round(x float64, n int) float64 {
	p := 1.0
	for range n {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// vmHWM is the peak resident set of pid in bytes (/proc/PID/status).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cmdUpload(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory of packages")
	bucket := fs.String("bucket", "bench-uploads", "bucket")
	keyPrefix := fs.String("key-prefix", "", "prefix of the object keys (the file name follows)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	obj, err := s3FromEnv()
	if err != nil {
		return nil, err
	}
	if err := obj.EnsureBucket(ctx, *bucket); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(*dir)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var n int
	var total int64
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := obj.Client().FPutObject(ctx, *bucket, *keyPrefix+e.Name(), filepath.Join(*dir, e.Name()), minio.PutObjectOptions{PartSize: 64 << 20})
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", e.Name(), err)
		}
		n++
		total += info.Size
	}
	return map[string]any{"objects": n, "bytes": total, "seconds": round(time.Since(start).Seconds(), 2)}, nil
}

type batchResult struct {
	Packages    int                `json:"packages"`
	WallS       float64            `json:"wall_s"`
	PkgsPerS    float64            `json:"pkgs_per_s"`
	CPUS        float64            `json:"cpu_s"`
	CPUPerPkg   float64            `json:"cpu_s_per_pkg"`
	CPUByProc   map[string]float64 `json:"cpu_by_process"`
	Pass        int                `json:"pass"`
	Fail        int                `json:"fail"`
	Error       int                `json:"error"`
	Wrong       int                `json:"wrong"`
	WrongSample []string           `json:"wrong_sample,omitempty"`
}

func readExpected(path string) (map[string]string, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	m := map[string]string{}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		name, want, ok := strings.Cut(line, "\t")
		if ok {
			m[name] = want
			names = append(names, name)
		}
	}
	return m, names, nil
}

// cmdBatch submits every package listed in -expected (already uploaded
// to -bucket as -key-prefix + its file name) through the API as fast as it can, waits
// for every verdict and reports throughput, CPU of -pids over the run and
// the verdicts against the expected ones. Wall time runs from the first
// submission to the last verdict's "scan done" log line (-logs).
func cmdBatch(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("batch", flag.ContinueOnError)
	api := fs.String("api", "", "API base URL")
	token := fs.String("token", "", "asset-center API key")
	bucket := fs.String("bucket", "bench-uploads", "bucket of the packages")
	expected := fs.String("expected", "", "expected.tsv of gen-small")
	prefix := fs.String("asset-prefix", "bench", "asset id prefix (a new prefix makes new scans)")
	keyPrefix := fs.String("key-prefix", "", "prefix of the object keys (as uploaded)")
	pidList := fs.String("pids", "", "name=pid,... whose CPU time is summed")
	logs := fs.String("logs", "", "worker log files (comma-separated): the end is the last \"scan done\" line")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	ps, err := parseProcs(*pidList)
	if err != nil {
		return nil, err
	}
	want, names, err := readExpected(*expected)
	if err != nil {
		return nil, err
	}
	c := newClient(*api, *token)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	cpu0 := ps.cpu()
	t0 := time.Now()
	ids := make([]string, len(names))
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	sem := make(chan struct{}, 8)
	for i, name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			id, err := c.submit(ctx, fmt.Sprintf("%s-%s", *prefix, strings.NewReplacer(".", "-").Replace(name)), *bucket, *keyPrefix+name)
			if err != nil {
				errs <- err
				return
			}
			ids[i] = id
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	verdicts := make([]assetscan.Verdict, len(ids))
	pending := make([]int, len(ids))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		// In submission order; stop at the first unfinished scan, so
		// waiting costs the API about one request per round.
		var still []int
		for k, i := range pending {
			v, done, err := c.verdict(ctx, ids[i])
			if err != nil {
				return nil, err
			}
			if !done {
				still = append(still, pending[k:]...)
				break
			}
			verdicts[i] = v
		}
		pending = still
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%d scans not done: %w", len(pending), ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	cpu1 := ps.cpu()
	// The end is the last verdict's "scan done" log line (the verdict's
	// completed_at is stamped when the scan begins); without logs, when
	// polling saw the last verdict.
	last := time.Now()
	if *logs != "" {
		done, err := logTimes(strings.Split(*logs, ","), "scan done")
		if err != nil {
			return nil, err
		}
		last = time.Time{}
		for _, id := range ids {
			t, ok := done[id]
			if !ok {
				return nil, fmt.Errorf("scan %s: no \"scan done\" line in %s", id, *logs)
			}
			if t.After(last) {
				last = t
			}
		}
	}
	res := batchResult{Packages: len(names)}
	for i, v := range verdicts {
		switch v.Verdict {
		case assetscan.Pass:
			res.Pass++
		case assetscan.Fail:
			res.Fail++
		default:
			res.Error++
		}
		if string(v.Verdict) != want[names[i]] {
			res.Wrong++
			if len(res.WrongSample) < 5 {
				res.WrongSample = append(res.WrongSample, fmt.Sprintf("%s: %s (want %s) %s", names[i], v.Verdict, want[names[i]], v.Reason))
			}
		}
	}
	wall := last.Sub(t0).Seconds()
	res.WallS = round(wall, 2)
	res.PkgsPerS = round(float64(len(names))/wall, 2)
	res.CPUByProc, res.CPUS = cpuDelta(cpu0, cpu1)
	res.CPUPerPkg = round(res.CPUS/float64(len(names)), 3)
	return res, nil
}

type seqResult struct {
	N            int     `json:"n"`
	Mode         string  `json:"mode"`
	VerdictP50MS float64 `json:"verdict_p50_ms"`
	VerdictP99MS float64 `json:"verdict_p99_ms"`
	StartP50MS   float64 `json:"start_p50_ms,omitempty"`
	StartP99MS   float64 `json:"start_p99_ms,omitempty"`
	StartSamples int     `json:"start_samples"`
	Reused       int     `json:"reused"`
	Verdicts     map[assetscan.Outcome]int
}

// cmdSeq submits -n scans one after the other, each once the previous one
// has its verdict (idle workers), and reports submit → verdict (observed
// by polling every 5 ms) and submit → the worker's "scan started" log line.
// Mode reuse resubmits -key (same bytes) under new asset ids; mode fresh
// uploads a new tiny package before each (untimed) submission.
func cmdSeq(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("seq", flag.ContinueOnError)
	api := fs.String("api", "", "API base URL")
	token := fs.String("token", "", "asset-center API key")
	bucket := fs.String("bucket", "bench-uploads", "bucket")
	key := fs.String("key", "", "object resubmitted (mode reuse)")
	mode := fs.String("mode", "reuse", "reuse or fresh")
	n := fs.Int("n", 50, "submissions")
	prefix := fs.String("asset-prefix", "seq", "asset id prefix")
	logs := fs.String("logs", "", "worker log files (comma-separated) with the \"scan started\" lines")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c := newClient(*api, *token)
	obj, err := s3FromEnv()
	if err != nil {
		return nil, err
	}
	if err := obj.EnsureBucket(ctx, *bucket); err != nil {
		return nil, err
	}
	rnd := rand.New(rand.NewPCG(5, uint64(time.Now().UnixNano())))
	submitted := map[string]time.Time{}
	var verdictMS []float64
	res := seqResult{N: *n, Mode: *mode, Verdicts: map[assetscan.Outcome]int{}}
	for i := range *n {
		k := *key
		if *mode == "fresh" {
			k = fmt.Sprintf("tiny-%s-%03d.tar.gz", *prefix, i)
			p := filepath.Join(os.TempDir(), k)
			if err := writeTarGz(p, map[string][]byte{"app/README.txt": fmt.Appendf(nil, "tiny package %d %x\n", i, rnd.Uint64())}); err != nil {
				return nil, err
			}
			_, err := obj.Client().FPutObject(ctx, *bucket, k, p, minio.PutObjectOptions{})
			os.Remove(p)
			if err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		id, err := c.submit(ctx, fmt.Sprintf("%s-%03d-%d", *prefix, i, t0.UnixNano()), *bucket, k)
		if err != nil {
			return nil, err
		}
		submitted[id] = t0
		for {
			v, done, err := c.verdict(ctx, id)
			if err != nil {
				return nil, err
			}
			if done {
				verdictMS = append(verdictMS, float64(time.Since(t0).Microseconds())/1000)
				res.Verdicts[v.Verdict]++
				if v.Reused {
					res.Reused++
				}
				break
			}
			if time.Since(t0) > 10*time.Minute {
				return nil, fmt.Errorf("scan %s not done after 10 min", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	res.VerdictP50MS, res.VerdictP99MS = pct(verdictMS, 50), pct(verdictMS, 99)
	if *logs != "" {
		started, err := logTimes(strings.Split(*logs, ","), "scan started")
		if err != nil {
			return nil, err
		}
		var startMS []float64
		for id, t0 := range submitted {
			if t, ok := started[id]; ok {
				startMS = append(startMS, float64(t.Sub(t0).Microseconds())/1000)
			}
		}
		res.StartSamples = len(startMS)
		res.StartP50MS, res.StartP99MS = pct(startMS, 50), pct(startMS, 99)
	}
	return res, nil
}

// pct is the nearest-rank percentile p of xs, rounded to 0.1.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(float64(len(s))*p/100+0.999999) - 1
	return round(s[max(0, min(k, len(s)-1))], 1)
}

// logLine is one JSON log line of a worker.
type logLine struct {
	Time     time.Time `json:"time"`
	Msg      string    `json:"msg"`
	ScanID   string    `json:"scan_id"`
	Check    string    `json:"check"`
	Duration int64     `json:"duration"` // nanoseconds (slog's JSON handler)
	Bytes    int64     `json:"bytes"`
	Files    int64     `json:"files"`
}

func readLogs(paths []string, each func(logLine)) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.ScanID != "" {
				each(l)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return err
		}
	}
	return nil
}

// logTimes maps scan id → time of its first log line with message msg.
func logTimes(paths []string, msg string) (map[string]time.Time, error) {
	m := map[string]time.Time{}
	err := readLogs(paths, func(l logLine) {
		if _, ok := m[l.ScanID]; !ok && l.Msg == msg {
			m[l.ScanID] = l.Time
		}
	})
	return m, err
}

// duBytes is `du -sB1 DIR`: the bytes allocated to everything under dir
// (files vanishing during the walk are skipped).
func duBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		// Allocated blocks, as du counts them: a package whose extracted
		// bytes were released (punched holes) keeps its apparent size.
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	return n
}

type sample struct {
	t   time.Time
	cpu map[string]float64
}

// cpuAt interpolates the cumulative CPU seconds of process name (every
// process when name is "") at t.
func cpuAt(ss []sample, t time.Time, name string) float64 {
	sum := func(m map[string]float64) float64 {
		if name != "" {
			return m[name]
		}
		var s float64
		for _, v := range m {
			s += v
		}
		return s
	}
	if len(ss) == 0 {
		return 0
	}
	if !t.After(ss[0].t) {
		return sum(ss[0].cpu)
	}
	for i := 1; i < len(ss); i++ {
		if !t.After(ss[i].t) {
			a, b := sum(ss[i-1].cpu), sum(ss[i].cpu)
			f := float64(t.Sub(ss[i-1].t)) / float64(ss[i].t.Sub(ss[i-1].t))
			return a + f*(b-a)
		}
	}
	return sum(ss[len(ss)-1].cpu)
}

type stage struct {
	WallS     float64            `json:"wall_s"`
	CPUS      float64            `json:"cpu_s"`
	CPUPerGB  float64            `json:"cpu_s_per_gb"`
	CPUByProc map[string]float64 `json:"cpu_by_process"`
}

type largeResult struct {
	Bytes        int64              `json:"bytes"`
	Expanded     int64              `json:"expanded_bytes"`
	Verdict      assetscan.Outcome  `json:"verdict"`
	Reason       string             `json:"reason,omitempty"`
	UploadS      float64            `json:"upload_s"`
	WallS        float64            `json:"wall_s"`    // submit → the worker's "scan done" (work dir removed)
	VerdictS     float64            `json:"verdict_s"` // submit → the verdict seen by polling (every second)
	CPUS         float64            `json:"cpu_s"`
	CPUPerGB     float64            `json:"cpu_s_per_gb"`
	CPUByProc    map[string]float64 `json:"cpu_by_process"`
	Stages       map[string]stage   `json:"stages"`
	CheckWallS   map[string]float64 `json:"check_wall_s"`
	PeakRSS      int64              `json:"worker_peak_rss_bytes"`
	PeakWorkDisk int64              `json:"peak_work_disk_bytes"`
	DiskRatio    float64            `json:"peak_work_disk_over_expanded"`
}

// cmdLarge uploads one package, submits it and, until its verdict,
// samples every -interval the CPU time of -pids and the size of
// -work-dir; then it splits wall and CPU time by stage from the worker's
// log (-log: "downloaded", "extracted", "check done" with durations) and
// reads the worker's VmHWM. Stage CPU is every sampled process's CPU
// (worker, clamd, MinIO, Redis, API) within the stage's window.
func cmdLarge(ctx context.Context, args []string) (any, error) {
	fs := flag.NewFlagSet("large", flag.ContinueOnError)
	api := fs.String("api", "", "API base URL")
	token := fs.String("token", "", "asset-center API key")
	bucket := fs.String("bucket", "bench-uploads", "bucket")
	file := fs.String("file", "", "package to upload and scan")
	pidList := fs.String("pids", "", "name=pid,... (include worker=PID)")
	workDir := fs.String("work-dir", "", "the worker's ASSETSCAN_WORK_DIR")
	logPath := fs.String("log", "", "the worker's log")
	interval := fs.Duration("interval", 500*time.Millisecond, "sampling interval")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	ps, err := parseProcs(*pidList)
	if err != nil {
		return nil, err
	}
	workerPID := 0
	for _, p := range ps {
		if p.name == "worker" {
			workerPID = p.pid
		}
	}
	if workerPID == 0 {
		return nil, errors.New("-pids must name worker=PID")
	}
	obj, err := s3FromEnv()
	if err != nil {
		return nil, err
	}
	if err := obj.EnsureBucket(ctx, *bucket); err != nil {
		return nil, err
	}
	key := filepath.Base(*file)
	up := time.Now()
	info, err := obj.Client().FPutObject(ctx, *bucket, key, *file, minio.PutObjectOptions{PartSize: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	res := largeResult{Bytes: info.Size, UploadS: round(time.Since(up).Seconds(), 1)}
	fmt.Fprintf(os.Stderr, "pipebench large: uploaded %s (%d bytes) in %.1f s\n", key, info.Size, res.UploadS)

	c := newClient(*api, *token)
	samples := []sample{{t: time.Now(), cpu: ps.cpu()}}
	t0 := time.Now()
	id, err := c.submit(ctx, fmt.Sprintf("large-%d", t0.UnixNano()), *bucket, key)
	if err != nil {
		return nil, err
	}
	var v assetscan.Verdict
	lastPoll := time.Time{}
	for {
		if d := duBytes(*workDir); d > res.PeakWorkDisk {
			res.PeakWorkDisk = d
		}
		samples = append(samples, sample{t: time.Now(), cpu: ps.cpu()})
		if time.Since(lastPoll) >= time.Second {
			lastPoll = time.Now()
			var done bool
			if v, done, err = c.verdict(ctx, id); err != nil {
				return nil, err
			}
			if done {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(*interval):
		}
	}
	end := time.Now()
	samples = append(samples, sample{t: end, cpu: ps.cpu()})
	res.Verdict, res.Reason = v.Verdict, v.Reason
	res.WallS = round(end.Sub(t0).Seconds(), 1)
	res.PeakRSS = vmHWM(workerPID)
	res.CPUByProc, res.CPUS = cpuDelta(samples[0].cpu, samples[len(samples)-1].cpu)
	gb := float64(res.Bytes) / 1e9
	res.CPUPerGB = round(res.CPUS/gb, 1)

	// The verdict is readable before the worker logs "scan done" (after
	// removing the work dir): wait for that line, up to a minute.
	for wait := time.Now(); time.Since(wait) < time.Minute; time.Sleep(200 * time.Millisecond) {
		done, err := logTimes([]string{*logPath}, "scan done")
		if err != nil {
			return nil, err
		}
		if _, ok := done[id]; ok {
			break
		}
	}
	res.VerdictS = round(end.Sub(t0).Seconds(), 1)
	samples = append(samples, sample{t: time.Now(), cpu: ps.cpu()})
	res.CPUByProc, res.CPUS = cpuDelta(samples[0].cpu, samples[len(samples)-1].cpu)
	res.CPUPerGB = round(res.CPUS/gb, 1)

	// Stages from the worker's log lines of this scan.
	var started, downloaded, extracted, checksEnd, scanDone time.Time
	var dlDur, exDur int64
	res.CheckWallS = map[string]float64{}
	err = readLogs([]string{*logPath}, func(l logLine) {
		if l.ScanID != id {
			return
		}
		switch l.Msg {
		case "scan started":
			if started.IsZero() {
				started = l.Time
			}
		case "downloaded":
			downloaded, dlDur = l.Time, l.Duration
		case "extracted":
			extracted, exDur, res.Expanded = l.Time, l.Duration, l.Bytes
		case "scan done":
			scanDone = l.Time
		case "check done":
			if checksEnd.IsZero() {
				checksEnd = l.Time
			}
			res.CheckWallS[l.Check] = round(float64(l.Duration)/1e9, 2)
		}
	})
	if err != nil {
		return nil, err
	}
	if !scanDone.IsZero() {
		res.WallS = round(scanDone.Sub(t0).Seconds(), 1)
	}
	res.Stages = map[string]stage{}
	window := func(name string, from, to time.Time) {
		if from.IsZero() || to.IsZero() || to.Before(from) {
			return
		}
		cpu := cpuAt(samples, to, "") - cpuAt(samples, from, "")
		by := map[string]float64{}
		for _, p := range ps {
			by[p.name] = round(cpuAt(samples, to, p.name)-cpuAt(samples, from, p.name), 2)
		}
		res.Stages[name] = stage{WallS: round(to.Sub(from).Seconds(), 2), CPUS: round(cpu, 2), CPUPerGB: round(cpu/gb, 2), CPUByProc: by}
	}
	window("queue", t0, started)
	if !downloaded.IsZero() {
		window("download+sha256", downloaded.Add(-time.Duration(dlDur)), downloaded)
	}
	if !extracted.IsZero() {
		window("extract", extracted.Add(-time.Duration(exDur)), extracted)
		window("checks", extracted, checksEnd)
	}
	if !checksEnd.IsZero() {
		window("verdict+save+cleanup", checksEnd, scanDone)
	}
	if res.Expanded > 0 {
		res.DiskRatio = round(float64(res.PeakWorkDisk)/float64(res.Expanded), 2)
	}
	return res, nil
}
