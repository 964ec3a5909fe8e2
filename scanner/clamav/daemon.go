package clamav

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clamdConf is the clamd.conf template shared with scripts/clamd.sh.
//
//go:embed clamd.conf.in
var clamdConf string

// ErrNoClamd: no clamd binary was found.
var ErrNoClamd = errors.New("clamd is not installed (looked for /usr/sbin/clamd and clamd in PATH)")

// DaemonReadyTimeout bounds how long StartDaemon waits for clamd to answer
// PING.
const DaemonReadyTimeout = 30 * time.Second

// ClamdPath returns the clamd binary: /usr/sbin/clamd, or clamd in PATH.
func ClamdPath() (string, error) {
	if st, err := os.Stat("/usr/sbin/clamd"); err == nil && st.Mode().IsRegular() {
		return "/usr/sbin/clamd", nil
	}
	if p, err := exec.LookPath("clamd"); err == nil {
		return p, nil
	}
	return "", ErrNoClamd
}

// Setting is one clamd.conf option overriding (or adding to) the shipped
// configuration, e.g. {"StreamMaxLength", "1M"}.
type Setting struct{ Key, Value string }

var settingKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// WriteConfig writes dir/clamd.conf from the shipped template (the file
// clamd.conf.in next to this package's source), creating dir and dir/tmp,
// and returns its path. The daemon's socket is dir/clamd.sock, its database
// directory dir/db, its pid file dir/clamd.pid and its log dir/clamd.log.
// With foreground, clamd stays in the foreground (for a parent that owns
// the process); otherwise it forks once ready.
func WriteConfig(dir string, foreground bool, settings ...Setting) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("clamd config: %w", err)
	}
	if strings.ContainsAny(dir, "\n\r") {
		return "", fmt.Errorf("clamd config: directory %q holds a line break", dir)
	}
	// sockaddr_un holds 108 bytes including the terminating NUL.
	if sock := filepath.Join(dir, "clamd.sock"); len(sock) > 107 {
		return "", fmt.Errorf("clamd config: socket path %q is longer than 107 bytes; use a shorter directory", sock)
	}
	fg := "no"
	if foreground {
		fg = "yes"
	}
	lines := strings.Split(strings.NewReplacer("@DIR@", dir, "@FOREGROUND@", fg).Replace(clamdConf), "\n")
	for _, s := range settings {
		if !settingKey.MatchString(s.Key) || s.Value == "" || strings.ContainsAny(s.Value, "\n\r") {
			return "", fmt.Errorf("clamd config: bad setting %q = %q", s.Key, s.Value)
		}
		line := s.Key + " " + s.Value
		replaced := false
		for i, l := range lines {
			if strings.HasPrefix(l, s.Key+" ") {
				lines[i], replaced = line, true
			}
		}
		if !replaced {
			lines = append(lines, line)
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "db")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("clamd config: %w", err)
		}
	}
	conf := filepath.Join(dir, "clamd.conf")
	text := strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("clamd config: %w", err)
	}
	return conf, nil
}

// Daemon is a private clamd owned by this process.
type Daemon struct {
	dir  string
	conf string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done

	stopOnce sync.Once
	stopErr  error
}

// StartDaemon runs a private clamd in dir: it writes the shipped signatures
// into dir/db (other files there are kept and loaded too), writes
// dir/clamd.conf (see WriteConfig; settings override the shipped values),
// starts clamd in the foreground and waits until it answers PING (at most
// DaemonReadyTimeout). The daemon runs until Stop is called or ctx is done
// (then it gets SIGTERM, like exec.CommandContext). clamd's stderr goes to
// dir/clamd.stderr. It returns an error wrapping ErrNoClamd when clamd is
// not installed.
func StartDaemon(ctx context.Context, dir string, settings ...Setting) (*Daemon, error) {
	return startDaemon(ctx, dir, SignatureFiles(), settings...)
}

// startDaemon is StartDaemon writing only the shipped signature files
// named in sigs.
func startDaemon(ctx context.Context, dir string, sigs []string, settings ...Setting) (*Daemon, error) {
	bin, err := ClamdPath()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	if err := writeSignatures(filepath.Join(dir, "db"), sigs); err != nil {
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	conf, err := WriteConfig(dir, true, settings...)
	if err != nil {
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	stderr, err := os.Create(filepath.Join(dir, "clamd.stderr"))
	if err != nil {
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	defer stderr.Close() // the child has its own copy

	cmd := exec.CommandContext(ctx, bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	d := &Daemon{dir: dir, conf: conf, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()

	c, err := NewClient(Config{Addr: d.Addr(), DialTimeout: time.Second, CommandTimeout: 2 * time.Second})
	if err != nil {
		d.Stop()
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	deadline := time.NewTimer(DaemonReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-d.done:
			return nil, fmt.Errorf("start clamd: exited before answering PING (%v): %s", d.err, d.stderrTail())
		case <-ctx.Done():
			d.Stop()
			return nil, fmt.Errorf("start clamd: %w", ctx.Err())
		case <-deadline.C:
			d.Stop()
			return nil, fmt.Errorf("start clamd: no PONG within %s: %s", DaemonReadyTimeout, d.stderrTail())
		case <-tick.C:
			if c.Ping(ctx) == nil {
				return d, nil
			}
		}
	}
}

// Addr returns the daemon's address, "unix:<dir>/clamd.sock".
func (d *Daemon) Addr() string { return "unix:" + filepath.Join(d.dir, "clamd.sock") }

// SignatureDir returns the daemon's DatabaseDirectory (dir/db), for
// CheckConfig.SignatureDir.
func (d *Daemon) SignatureDir() string { return filepath.Join(d.dir, "db") }

// Dir returns the daemon's directory.
func (d *Daemon) Dir() string { return d.dir }

// ConfigPath returns the daemon's clamd.conf.
func (d *Daemon) ConfigPath() string { return d.conf }

// PID returns the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Stop sends SIGTERM and waits for clamd to exit (SIGKILL after 15 s). It
// may be called more than once.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() {
		select {
		case <-d.done:
			return
		default:
		}
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			select {
			case <-d.done:
				return
			default:
			}
		}
		select {
		case <-d.done:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
			d.stopErr = fmt.Errorf("stop clamd: killed after SIGTERM was ignored for 15 s")
		}
	})
	return d.stopErr
}

// kill simulates a crash (SIGKILL) and waits for the process to go.
func (d *Daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

func (d *Daemon) stderrTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "clamd.stderr"))
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return string(b)
}
