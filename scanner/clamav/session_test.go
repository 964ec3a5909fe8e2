package clamav

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSession is a fake clamd on a unix socket that speaks IDSESSION and
// FILDES: it receives each descriptor, reads the file and lets answer
// decide the reply text for request id (1-based) of the file's content
// ("RAW:text" is written as is, without the id and the NUL).
// With reverse, it answers every request at END, last first.
type fakeSession struct {
	answer  func(id int, content []byte) string
	reverse bool
	// closeAfter > 0 closes the connection once that many requests were
	// answered.
	closeAfter int
}

func (fs fakeSession) start(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
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
				go func() { <-done; c.Close() }()
				fs.serve(c.(*net.UnixConn))
			}()
		}
	}()
	return "unix:" + sock
}

func (fs fakeSession) serve(c *net.UnixConn) {
	var (
		data    []byte
		fds     []int
		nfildes int // FILDES commands not yet matched with a descriptor
		id      int
		held    []string
	)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	// match answers the FILDES commands whose descriptors have arrived;
	// true: close the connection now.
	match := func() bool {
		for nfildes > 0 && len(fds) > 0 {
			fd := fds[0]
			fds, nfildes = fds[1:], nfildes-1
			f := os.NewFile(uintptr(fd), "passed")
			var b bytes.Buffer
			b.ReadFrom(f)
			f.Close()
			id++
			text := fs.answer(id, b.Bytes())
			reply := fmt.Sprintf("%d: %s\x00", id, text)
			if raw, ok := strings.CutPrefix(text, "RAW:"); ok {
				reply = raw
			}
			if fs.reverse {
				held = append(held, reply)
			} else {
				c.Write([]byte(reply))
			}
			if fs.closeAfter > 0 && id >= fs.closeAfter {
				return true
			}
		}
		return false
	}
	buf, oob := make([]byte, 4096), make([]byte, 4096)
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		n, oobn = max(n, 0), max(oobn, 0)
		if oobn > 0 {
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if r, err := syscall.ParseUnixRights(&m); err == nil {
					fds = append(fds, r...)
				}
			}
		}
		data = append(data, buf[:n]...)
		for {
			i := bytes.IndexByte(data, 0)
			if i < 0 {
				break
			}
			tok := string(data[:i])
			data = data[i+1:]
			switch tok {
			case "zIDSESSION", "":
			case "zFILDES":
				nfildes++
			case "zVERSION":
				c.Write([]byte("ClamAV 9.9.9\x00"))
				return
			case "zSTATS":
				c.Write([]byte("THREADS: live 1 idle 0 max 3 idle-timeout 30\nEND\x00"))
				return
			case "zEND":
				if match() {
					return
				}
				for j := len(held) - 1; j >= 0; j-- {
					c.Write([]byte(held[j]))
				}
				return
			default:
				c.Write([]byte("UNKNOWN COMMAND\x00"))
				return
			}
		}
		if match() {
			return
		}
		if err != nil {
			return
		}
	}
}

func okOrFound(_ int, content []byte) string {
	if bytes.Contains(content, []byte("BAD")) {
		return "fd[9]: Fake.Bad FOUND"
	}
	return "fd[9]: OK"
}

func TestSessionFake(t *testing.T) {
	t.Parallel()
	files := []tfile{{"a", []byte("fine")}, {"b", []byte("BAD")}, {"c", nil}, {"d", []byte("x")}, {"e", []byte("more BAD")}}

	t.Run("replies out of order map to their files", func(t *testing.T) {
		t.Parallel()
		// The fake answers only at END: every file must fit in one
		// session's window (Concurrency/2 each).
		addr := fakeSession{answer: okOrFound, reverse: true}.start(t)
		k := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{Concurrency: 2 * len(files)})
		res, err := k.Run(ctxTimeout(t, time.Minute), target(t, files...))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Findings) != 2 || res.Findings[0].Path != "b" || res.Findings[1].Path != "e" || res.Findings[0].Malware.Signature != "Fake.Bad" {
			t.Fatalf("findings = %+v", res.Findings)
		}
		if !strings.Contains(res.Detail, "mode fdpass, 10 in flight (configured)") {
			t.Errorf("Detail = %q", res.Detail)
		}
	})
	t.Run("concurrency from STATS", func(t *testing.T) {
		t.Parallel()
		addr := fakeSession{answer: okOrFound}.start(t)
		k := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{})
		res, err := k.Run(ctxTimeout(t, time.Minute), target(t, files...))
		if err != nil || len(res.Findings) != 2 || !strings.Contains(res.Detail, "6 in flight (2 × clamd MaxThreads)") {
			t.Fatalf("Run = %+v, %v", res, err)
		}
	})

	// Every way the session can go wrong fails the whole run.
	for _, tt := range []struct {
		name   string
		fake   fakeSession
		want   error
		transi bool
	}{
		{"closed with requests outstanding", fakeSession{answer: okOrFound, closeAfter: 1}, ErrNoReply, true},
		{"unknown reply", fakeSession{answer: func(id int, _ []byte) string {
			if id == 2 {
				return "fd[9]: something odd"
			}
			return "fd[9]: OK"
		}}, ErrProtocol, false},
		{"engine error", fakeSession{answer: func(int, []byte) string { return "fd[9]: Can't allocate memory ERROR" }}, ErrEngine, true},
		{"reply to a request never sent", fakeSession{answer: func(id int, _ []byte) string { return "fd[9]: OK\x0099: fd[9]: OK" }}, ErrProtocol, false},
		{"unnumbered reply", fakeSession{answer: func(int, []byte) string { return "OK\x00COMMAND READ TIMED OUT" }}, ErrProtocol, false},
		{"partial reply", fakeSession{answer: func(int, []byte) string { return "RAW:1: fd[9]: OK\x002: fd[9]: O" }, closeAfter: 1}, ErrNoReply, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := tt.fake.start(t)
			k := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{Concurrency: 1})
			res, err := k.Run(ctxTimeout(t, time.Minute), target(t, files...))
			if !errors.Is(err, tt.want) || isTransient(err) != tt.transi {
				t.Fatalf("Run = %+v, %v; want %v (transient %v)", res, err, tt.want, tt.transi)
			}
			t.Logf("error: %v", err)
		})
	}

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		block := make(chan struct{})
		t.Cleanup(func() { close(block) })
		addr := fakeSession{answer: func(int, []byte) string { <-block; return "fd[9]: OK" }}.start(t)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		k := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{Concurrency: 2})
		if _, err := k.Run(ctx, target(t, files...)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run cancelled = %v", err)
		}
	})
}

// TestCheckFDPassRealClamd: the same files give the same findings passed
// as descriptors and streamed, with the real clamd.
func TestCheckFDPassRealClamd(t *testing.T) {
	t.Parallel()
	c := needClamd(t)
	if c.network != "unix" {
		t.Skip("shared clamd is not on a unix socket")
	}
	var files []tfile
	for i := range 300 {
		data := filler(100+i*37, uint64(i))
		switch i % 50 {
		case 7:
			data = append(data, EICAR()...)
		case 21:
			data = FabricatedSample()
		case 33:
			data = YARAMarkerSample()
		}
		files = append(files, tfile{fmt.Sprintf("d/f%03d", i), data})
	}
	tg := target(t, files...)
	var got [2][]string
	for j, mode := range []string{ModeFDPass, ModeInstream} {
		res, err := newCheck(t, c, CheckConfig{Mode: mode}).Run(ctxTimeout(t, time.Minute), tg)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, f := range res.Findings {
			got[j] = append(got[j], f.Path+" "+unofficial(f.Malware.Signature))
		}
		if !strings.Contains(res.Detail, "mode "+mode) {
			t.Errorf("%s: Detail %q", mode, res.Detail)
		}
		t.Logf("%s: %s", mode, res.Detail)
	}
	if len(got[0]) != 18 || fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
		t.Fatalf("fdpass findings %v\ninstream findings %v", got[0], got[1])
	}
}
