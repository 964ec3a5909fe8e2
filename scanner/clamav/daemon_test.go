package clamav

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf, err := WriteConfig(dir, true, Setting{"StreamMaxLength", "1M"}, Setting{"MaxThreads", "4"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		"LocalSocket " + dir + "/clamd.sock\n",
		"DatabaseDirectory " + dir + "/db\n",
		"TemporaryDirectory " + dir + "/tmp\n",
		"PidFile " + dir + "/clamd.pid\n",
		"Foreground yes\n",
		"AlertExceedsMax yes\n", "AlertEncrypted yes\n", "HeuristicAlerts yes\n", "AlertBrokenExecutables no\n",
		"MaxFileSize 2000M\n", "MaxScanSize 4000M\n", "MaxScanTime 300000\n",
		"StreamMaxLength 1M\n", "MaxThreads 4\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("clamd.conf lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "StreamMaxLength 2000M") || strings.Contains(text, "@") || strings.Contains(text, "\nUser ") {
		t.Errorf("clamd.conf:\n%s", text)
	}
	if st, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || !st.IsDir() {
		t.Errorf("tmp dir: %v", err)
	}
	// The shipped limits agree with the check's default window.
	conf, _ = WriteConfig(t.TempDir(), false)
	b, _ = os.ReadFile(conf)
	if !strings.Contains(string(b), "StreamMaxLength 2000M\n") || DefaultMaxStreamBytes != 2000<<20 || !strings.Contains(string(b), "Foreground no\n") {
		t.Error("shipped StreamMaxLength and DefaultMaxStreamBytes disagree")
	}

	for _, bad := range []Setting{{"Bad Key", "x"}, {"Key", ""}, {"Key", "a\nUser root"}} {
		if _, err := WriteConfig(t.TempDir(), true, bad); err == nil {
			t.Errorf("WriteConfig(%+v) = nil error", bad)
		}
	}
	if _, err := WriteConfig("/tmp/"+strings.Repeat("d", 100), true); err == nil {
		t.Error("WriteConfig accepted a socket path too long for sockaddr_un")
	}
}

// TestClamdScript runs scripts/clamd.sh start, scans through the daemon it
// started, and stops it.
func TestClamdScript(t *testing.T) {
	t.Parallel()
	if _, err := ClamdPath(); err != nil {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../../scripts/clamd.sh")
	dir, err := os.MkdirTemp("", "clamd-sh-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("clamd.sh %v: %v\n%s%s", args, err, out, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	addr := run("start", dir)
	stopped := false
	defer func() {
		if !stopped {
			exec.Command("bash", script, "stop", dir).Run()
		}
	}()
	if addr != "unix:"+dir+"/clamd.sock" {
		t.Errorf("clamd.sh start printed %q", addr)
	}
	c := newClient(t, Config{Addr: addr})
	if err := VerifySignatures(ctxTimeout(t, time.Minute), c); err != nil {
		t.Error(err)
	}
	if dg, err := DigestDir(filepath.Join(dir, "db")); err != nil || dg != testDigestOfShipped(t) {
		t.Errorf("script's db digest %q, %v", dg, err)
	}
	run("stop", dir)
	stopped = true
	if err := c.Ping(context.Background()); err == nil {
		t.Error("clamd still answers after clamd.sh stop")
	}
}

func testDigestOfShipped(t *testing.T) string {
	d := t.TempDir()
	if err := WriteSignatures(d); err != nil {
		t.Fatal(err)
	}
	s, err := DigestDir(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
