package diskimage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/assetscan/assetscan"
)

// ConvertConfig configures Prepare. The zero value is usable.
type ConvertConfig struct {
	// QemuImg is the path of qemu-img; "" looks it up in PATH.
	QemuImg string
	// MaxVirtualSize is the largest virtual disk size accepted, in bytes;
	// 0 means DefaultMaxVirtualSize. It also caps the converted output
	// (which is sparse: it takes only the space of the data written).
	MaxVirtualSize int64
	// Timeout bounds each qemu-img conversion; 0 means DefaultTimeout.
	// "qemu-img info" is bounded by min(Timeout, 1 minute).
	Timeout time.Duration
}

// Defaults of ConvertConfig.
const (
	// DefaultMaxVirtualSize is 512 GiB: far above any marketplace VM image
	// (cloud images are 2-50 GiB), far below what a worker's scratch disk
	// could hold if a hostile image were written out fully.
	DefaultMaxVirtualSize int64 = 512 << 30
	DefaultTimeout              = time.Hour
	infoTimeout                 = time.Minute
)

// Resource limits applied to qemu-img through prlimit(1) when installed
// (util-linux). The info limits are the ones OpenStack uses against
// hostile images.
const (
	infoAddressSpace    = 1 << 30
	infoCPUSeconds      = 30
	convertAddressSpace = 2 << 30
	maxQemuOutput       = 1 << 20 // stdout/stderr kept per run
)

func (c ConvertConfig) withDefaults() ConvertConfig {
	if c.MaxVirtualSize <= 0 {
		c.MaxVirtualSize = DefaultMaxVirtualSize
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Prepare turns the uploaded disk image at path into a raw disk that Open
// (and trivy's VM artifact) can read.
//
// The format is detected from magic bytes (see package doc). A raw image
// (anything without a known container magic) is returned as is: readPath
// is path made absolute. qcow2, VMDK (monolithicSparse and streamOptimized:
// both are converted, so that one reader, the raw one, sees every disk),
// VHD, VHDX and VDI are converted with qemu-img into a sparse raw file in a
// new private directory under workDir; readPath is that file, which the
// caller removes with workDir.
//
// Findings (rules RuleExternalReference, RuleTooLarge, RuleUnreadable) mean
// the image was refused or could not be converted: readPath is then "" and
// nothing is left in workDir. format is the detected format (Format*) in
// every case, also with findings.
//
// Errors mean the work could not be done: the file is not a readable
// regular file, workDir is unusable, qemu-img is missing (ErrQemuImg), the
// disk is full, qemu-img ran longer than cfg.Timeout (ErrTimeout; its
// process group is killed), or ctx ended.
func Prepare(ctx context.Context, path, workDir string, cfg ConvertConfig) (readPath string, format string, findings []assetscan.Finding, err error) {
	cfg = cfg.withDefaults()
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", nil, fmt.Errorf("diskimage: %w", err)
	}
	f, st, err := openRegular(abs)
	if err != nil {
		return "", "", nil, err
	}
	h, err := sniff(f, st.Size())
	f.Close()
	if err != nil {
		return "", "", nil, fmt.Errorf("diskimage: %w", err)
	}
	if len(h.findings) > 0 {
		return "", h.format, h.findings, nil
	}
	if h.virtualSize > cfg.MaxVirtualSize {
		return "", h.format, []assetscan.Finding{tooLarge(h.virtualSize, cfg.MaxVirtualSize)}, nil
	}
	if h.format == FormatRaw {
		return abs, FormatRaw, nil, nil
	}

	q := cfg.QemuImg
	if q == "" {
		if q, err = exec.LookPath("qemu-img"); err != nil {
			return "", h.format, nil, fmt.Errorf("%w: %w", ErrQemuImg, err)
		}
	}
	if q, err = filepath.Abs(q); err != nil {
		return "", h.format, nil, fmt.Errorf("%w: %w", ErrQemuImg, err)
	}
	wd, err := filepath.Abs(workDir)
	if err != nil {
		return "", h.format, nil, fmt.Errorf("diskimage: work dir: %w", err)
	}
	dir, err := os.MkdirTemp(wd, "diskimage-")
	if err != nil {
		return "", h.format, nil, fmt.Errorf("diskimage: work dir: %w", err)
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		os.RemoveAll(dir)
		return "", h.format, nil, fmt.Errorf("diskimage: work dir: %w", err)
	}
	out := filepath.Join(dir, "disk.raw")
	r := &qemuRunner{
		qemuImg: q,
		dir:     tmp,
		image:   abs,
		output:  out,
		workDir: wd,
	}
	if p, err := exec.LookPath("prlimit"); err == nil {
		r.prlimit, _ = filepath.Abs(p)
	}

	readPath, findings, err = r.prepare(ctx, h, cfg)
	os.RemoveAll(tmp)
	if readPath == "" {
		os.RemoveAll(dir)
	}
	return readPath, h.format, findings, err
}

// openRegular opens path for reading if it is a regular file (checked
// before opening: opening a fifo would block).
func openRegular(path string) (*os.File, os.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("diskimage: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("diskimage: %s is not a regular file", filepath.Base(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("diskimage: %w", err)
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("diskimage: %s is not a regular file", filepath.Base(path))
	}
	return f, st, nil
}

func tooLarge(size, max int64) assetscan.Finding {
	return finding(RuleTooLarge, "", fmt.Sprintf("virtual disk size %s exceeds the limit of %s", humanBytes(size), humanBytes(max)))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// qemuInfo is the part of "qemu-img info --output=json" we look at.
type qemuInfo struct {
	VirtualSize         int64  `json:"virtual-size"`
	Format              string `json:"format"`
	BackingFilename     string `json:"backing-filename"`
	FullBackingFilename string `json:"full-backing-filename"`
	Encrypted           bool   `json:"encrypted"`
	FormatSpecific      struct {
		Type string `json:"type"`
		Data struct {
			DataFile   string          `json:"data-file"`
			CreateType string          `json:"create-type"`
			Encrypt    json.RawMessage `json:"encrypt"`
			Extents    []struct {
				Filename string `json:"filename"`
			} `json:"extents"`
		} `json:"data"`
	} `json:"format-specific"`
}

type qemuRunner struct {
	qemuImg, prlimit string
	dir              string // private cwd and TMPDIR
	image, output    string
	workDir          string
}

func (r *qemuRunner) prepare(ctx context.Context, h header, cfg ConvertConfig) (string, []assetscan.Finding, error) {
	fmtName := h.format
	// 1. qemu-img info, as a second opinion on the header checks.
	stdout, stderr, err := r.run(ctx, min(cfg.Timeout, infoTimeout),
		[]string{"--as=" + strconv.Itoa(infoAddressSpace), "--cpu=" + strconv.Itoa(infoCPUSeconds)},
		"info", "--output=json", "-f", fmtName, r.image)
	if err != nil {
		if fails, ferr := r.failure(err, stderr, "read"); ferr == nil {
			return "", fails, nil
		}
		return "", nil, err
	}
	var info qemuInfo
	if err := json.Unmarshal(stdout, &info); err != nil {
		return "", []assetscan.Finding{finding(RuleUnreadable, "", "qemu-img could not describe the "+fmtName+" image")}, nil
	}
	if fs := checkInfo(info, fmtName, r.image); len(fs) > 0 {
		return "", fs, nil
	}
	if info.VirtualSize <= 0 {
		return "", []assetscan.Finding{finding(RuleUnreadable, "", fmtName+" image has no virtual size")}, nil
	}
	if info.VirtualSize > cfg.MaxVirtualSize {
		return "", []assetscan.Finding{tooLarge(info.VirtualSize, cfg.MaxVirtualSize)}, nil
	}

	// 2. Convert to a sparse raw file, no larger than the virtual size.
	fsize := (info.VirtualSize + 1<<20 - 1) &^ (1<<20 - 1)
	_, stderr, err = r.run(ctx, cfg.Timeout,
		[]string{"--as=" + strconv.Itoa(convertAddressSpace), "--fsize=" + strconv.FormatInt(fsize, 10)},
		"convert", "-q", "-f", fmtName, "-O", "raw", "-S", "4k", r.image, r.output)
	if err != nil {
		if fails, ferr := r.failure(err, stderr, "convert"); ferr == nil {
			return "", fails, nil
		}
		return "", nil, err
	}
	st, err := os.Stat(r.output)
	if err != nil {
		return "", nil, fmt.Errorf("diskimage: converted image: %w", err)
	}
	if st.Size() != info.VirtualSize {
		return "", []assetscan.Finding{finding(RuleUnreadable, "", fmt.Sprintf("converted %s image has %d bytes, not its virtual size %d", fmtName, st.Size(), info.VirtualSize))}, nil
	}
	return r.output, nil, nil
}

// checkInfo checks qemu-img's description of the image at path (absolute,
// as given to qemu-img) for references to other files and encryption.
func checkInfo(info qemuInfo, fmtName, image string) []assetscan.Finding {
	var fs []assetscan.Finding
	if info.Format != fmtName {
		fs = append(fs, finding(RuleUnreadable, "", "qemu-img reads the image as "+printable(info.Format, 20)+", not "+fmtName))
	}
	if info.BackingFilename != "" || info.FullBackingFilename != "" {
		fs = append(fs, finding(RuleExternalReference, "", fmtName+" image has a backing file: only self-contained images are accepted"))
	}
	if info.FormatSpecific.Data.DataFile != "" {
		fs = append(fs, finding(RuleExternalReference, "", fmtName+" image keeps its data in an external data file: only self-contained images are accepted"))
	}
	for _, e := range info.FormatSpecific.Data.Extents {
		if e.Filename != image {
			fs = append(fs, finding(RuleExternalReference, "", "VMDK extent names another file: only self-contained images are accepted"))
			break
		}
	}
	if fmtName == FormatVMDK {
		switch info.FormatSpecific.Data.CreateType {
		case "monolithicSparse", "streamOptimized":
		default:
			fs = append(fs, finding(RuleUnreadable, "", "VMDK create type "+printable(info.FormatSpecific.Data.CreateType, 40)+" is not a single-file disk"))
		}
	}
	if info.Encrypted || len(info.FormatSpecific.Data.Encrypt) > 0 {
		fs = append(fs, finding(RuleUnreadable, "", fmtName+" image is encrypted: its content cannot be inspected"))
	}
	return fs
}

// failure turns a failed qemu-img run into an unreadable finding, or
// returns the error when it is not about the image (time-out, cancelled,
// disk full, qemu-img could not start).
func (r *qemuRunner) failure(err error, stderr []byte, what string) ([]assetscan.Finding, error) {
	if errors.Is(err, errQemuOutput) {
		return []assetscan.Finding{finding(RuleUnreadable, "", "qemu-img could not "+what+" the image: "+err.Error())}, nil
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return nil, err
	}
	reason := r.reason(stderr)
	if strings.Contains(reason, "No space left on device") || strings.Contains(reason, "Disk quota exceeded") {
		return nil, fmt.Errorf("diskimage: qemu-img %s: %s", what, reason)
	}
	if reason == "" {
		reason = exit.String()
	}
	return []assetscan.Finding{finding(RuleUnreadable, "", "qemu-img could not "+what+" the image: "+reason)}, nil
}

// reason is the last line qemu-img wrote to stderr, without host paths.
func (r *qemuRunner) reason(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	s := strings.TrimSpace(lines[len(lines)-1])
	s = strings.TrimPrefix(s, "qemu-img: ")
	for _, p := range []struct{ from, to string }{
		{r.image, "<image>"}, {r.output, "<output>"}, {r.dir, "<tmp>"}, {r.workDir, "<workdir>"},
		{r.qemuImg, "qemu-img"}, {filepath.Dir(r.image), "<dir>"},
	} {
		if p.from != "" && p.from != "/" {
			s = strings.ReplaceAll(s, p.from, p.to)
		}
	}
	return printable(s, 200)
}

// run runs qemu-img with args under prlimit (when available), an empty
// environment, in its own process group, killed as a group when timeout
// passes or ctx ends. The error is ErrTimeout for the time-out, ctx.Err()
// when ctx ended, an *exec.ExitError for a failed run.
func (r *qemuRunner) run(ctx context.Context, timeout time.Duration, limits []string, args ...string) (stdout, stderr []byte, err error) {
	rctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	defer cancel()
	name, argv := r.qemuImg, args
	if r.prlimit != "" {
		name = r.prlimit
		argv = append(append(append([]string{"--core=0"}, limits...), "--", r.qemuImg), args...)
	}
	cmd := exec.CommandContext(rctx, name, argv...)
	cmd.Dir = r.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=" + r.dir, "HOME=" + r.dir, "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// The whole group: qemu-img (or a wrapper) and anything it
		// started.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	var out, errb capBuffer
	out.max, errb.max = maxQemuOutput, maxQemuOutput
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if cmd.Process != nil {
		// Reap stragglers of the group even after a normal exit.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if rctx.Err() != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("diskimage: qemu-img %s: %w", args[0], ctx.Err())
		}
		return nil, nil, fmt.Errorf("%w after %s (qemu-img %s)", ErrTimeout, timeout, args[0])
	}
	if err != nil {
		return out.Bytes(), errb.Bytes(), err
	}
	if out.truncated {
		return nil, errb.Bytes(), errQemuOutput
	}
	return out.Bytes(), errb.Bytes(), nil
}

var errQemuOutput = errors.New("qemu-img wrote too much output")

// capBuffer keeps the first max bytes written to it.
type capBuffer struct {
	bytes.Buffer
	max       int
	truncated bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
