package clamav

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetscan/assetscan/scanner"
)

// The tests run against a real clamd: the one named by ASSETSCAN_TEST_CLAMD
// (set by the project's test script), or else a private one started here.
// Without clamd they fail, unless ASSETSCAN_SKIP_SERVICES=1.
var (
	testAddr   string // the shared clamd; "" when services are skipped
	testDBDir  string // the shared daemon's signature directory, if readable
	testDigest string // DigestDir(testDBDir)
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if a := os.Getenv("ASSETSCAN_TEST_CLAMD"); a != "" {
		testAddr = a
		if conf := os.Getenv("ASSETSCAN_TEST_CLAMD_CONF"); conf != "" {
			if dir, err := DatabaseDirectory(conf); err == nil {
				if dg, err := DigestDir(dir); err == nil {
					testDBDir, testDigest = dir, dg
				}
			}
		}
		return m.Run()
	}
	if _, err := ClamdPath(); err != nil {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			return m.Run()
		}
		fmt.Fprintf(os.Stderr, "scanner/clamav tests need a real clamd: %v.\n"+
			"Install clamav-daemon, set ASSETSCAN_TEST_CLAMD=unix:/path/clamd.sock, or set ASSETSCAN_SKIP_SERVICES=1 to skip.\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "clamd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	d, err := StartDaemon(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.Stop()
	testAddr = d.Addr()
	testDBDir = filepath.Join(dir, "db")
	if testDigest, err = DigestDir(testDBDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// needClamd returns a client of the shared clamd, or skips.
func needClamd(t testing.TB) *Client {
	t.Helper()
	if testAddr == "" {
		t.Skip("ASSETSCAN_SKIP_SERVICES=1 and no clamd")
	}
	c, err := NewClient(Config{Addr: testAddr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startPrivate starts a clamd of the test's own (for tests that stop it or
// change its limits).
func startPrivate(t testing.TB, settings ...Setting) *Daemon {
	t.Helper()
	return startPrivateWith(t, SignatureFiles(), settings...)
}

// startPrivateWith starts a private clamd loading only the shipped
// signature files named in sigs.
func startPrivateWith(t testing.TB, sigs []string, settings ...Setting) *Daemon {
	t.Helper()
	if _, err := ClamdPath(); err != nil {
		if os.Getenv("ASSETSCAN_SKIP_SERVICES") == "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	// Short directory: the socket path must fit in sockaddr_un.
	dir, err := os.MkdirTemp("", "clamd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d, err := startDaemon(context.Background(), dir, sigs, settings...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	return d
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCheck(t testing.TB, c *Client, cfg CheckConfig) *Check {
	t.Helper()
	k, err := NewCheck(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tfile is a file to put in a test target.
type tfile struct {
	path string
	data []byte
}

// target writes files under a temp dir and returns the target listing them.
func target(t testing.TB, files ...tfile) *scanner.Target {
	t.Helper()
	root := t.TempDir()
	tg := &scanner.Target{Root: root, WorkDir: t.TempDir()}
	for i, f := range files {
		disk := filepath.Join(root, fmt.Sprintf("f%04d", i))
		if err := os.WriteFile(disk, f.data, 0o644); err != nil {
			t.Fatal(err)
		}
		tg.Files = append(tg.Files, scanner.File{Path: f.path, DiskPath: disk, Size: int64(len(f.data))})
	}
	return tg
}

// fakeClamd serves handle on a TCP port of its own and returns its
// address ("tcp:127.0.0.1:port").
func fakeClamd(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Never let a handler outlive the test.
				go func() { <-done; c.Close() }()
				handle(c)
			}()
		}
	}()
	return "tcp:" + ln.Addr().String()
}

// readCommand reads a NUL-terminated command ("zINSTREAM").
func readCommand(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 64 {
		if _, err := io.ReadFull(c, one); err != nil {
			return string(b), err
		}
		if one[0] == 0 {
			return string(b), nil
		}
		b = append(b, one[0])
	}
	return string(b), errors.New("command too long")
}

// readStream reads INSTREAM chunks up to the terminator; it returns the
// data and the longest chunk.
func readStream(c net.Conn) ([]byte, int, error) {
	var data bytes.Buffer
	longest := 0
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return data.Bytes(), longest, err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n == 0 {
			return data.Bytes(), longest, nil
		}
		longest = max(longest, n)
		if _, err := io.CopyN(&data, c, int64(n)); err != nil {
			return data.Bytes(), longest, err
		}
	}
}

// replyAfterStream returns a handler that reads a whole INSTREAM request and
// then answers reply (as is: include the NUL).
func replyAfterStream(reply string) func(net.Conn) {
	return func(c net.Conn) {
		cmd, err := readCommand(c)
		if err != nil {
			return
		}
		switch cmd {
		case "zPING":
			io.WriteString(c, "PONG\x00")
			return
		case "zVERSION":
			io.WriteString(c, "ClamAV 9.9.9\x00")
			return
		}
		if _, _, err := readStream(c); err != nil {
			return
		}
		io.WriteString(c, reply)
	}
}

func isTransient(err error) bool { return errors.Is(err, scanner.ErrTransient) }

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
