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
	// stall: answer VERSION, but on an IDSESSION connection read nothing
	// after the IDSESSION command.
	stall bool
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
				fs.serve(c.(*net.UnixConn), done)
			}()
		}
	}()
	return "unix:" + sock
}

func (fs fakeSession) serve(c *net.UnixConn, done <-chan struct{}) {
	if fs.stall {
		var cmd []byte
		b := make([]byte, 1)
		for len(cmd) == 0 || cmd[len(cmd)-1] != 0 {
			if _, err := c.Read(b); err != nil {
				return
			}
			cmd = append(cmd, b[0])
		}
		if string(cmd) == "zVERSION\x00" {
			c.Write([]byte("ClamAV 9.9.9\x00"))
			return
		}
		<-done // read nothing more
		return
	}
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
			// clamd's rule: the descriptor comes with the byte after
			// "zFILDES\0" (in the same read as the command, or alone).
			if !bytes.HasSuffix(buf[:n], []byte("zFILDES\x00\x00")) && !bytes.Equal(buf[:n], []byte{0}) {
				c.Write([]byte("PROTOCOL ERROR: ancillary data sent without FILDES. ERROR\x00"))
				return
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
		// The fake answers only at END: every file must fit in the
		// session's window.
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
		cfg    Config // Addr is the fake's
		conc   int    // 0: 1
		want   error
		transi bool
	}{
		{name: "closed with requests outstanding", fake: fakeSession{answer: okOrFound, closeAfter: 1}, want: ErrNoReply, transi: true},
		{name: "unknown reply", fake: fakeSession{answer: func(id int, _ []byte) string {
			if id == 2 {
				return "fd[9]: something odd"
			}
			return "fd[9]: OK"
		}}, want: ErrProtocol, transi: false},
		{name: "engine error", fake: fakeSession{answer: func(int, []byte) string { return "fd[9]: Can't allocate memory ERROR" }}, want: ErrEngine, transi: true},
		{name: "reply to a request never sent", fake: fakeSession{answer: func(id int, _ []byte) string { return "fd[9]: OK\x0099: fd[9]: OK" }}, want: ErrProtocol, transi: false},
		{name: "unnumbered reply", fake: fakeSession{answer: func(int, []byte) string { return "OK\x00COMMAND READ TIMED OUT" }}, want: ErrProtocol, transi: false},
		{name: "partial reply", fake: fakeSession{answer: func(int, []byte) string { return "RAW:1: fd[9]: OK\x002: fd[9]: O" }, closeAfter: 1}, want: ErrNoReply, transi: true},
		// clamd hung: no reply within ReadTimeout.
		{name: "no reply in time", fake: fakeSession{answer: func(int, []byte) string { return "RAW:" }},
			cfg: Config{ReadTimeout: 300 * time.Millisecond}, want: ErrTimeout, transi: true},
		// clamd stopped reading (its socket full): no room within
		// WriteTimeout for thousands of requests in flight.
		{name: "no room to write in time", fake: fakeSession{stall: true}, cfg: Config{WriteTimeout: 300 * time.Millisecond},
			conc: 100000, want: ErrTimeout, transi: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Addr = tt.fake.start(t)
			fs := files
			if tt.conc > len(files) {
				fs = nil
				for i := range 5000 {
					fs = append(fs, tfile{fmt.Sprintf("f%d", i), []byte("x")})
				}
			}
			k := newCheck(t, newClient(t, cfg), CheckConfig{Concurrency: max(1, tt.conc)})
			res, err := k.Run(ctxTimeout(t, time.Minute), target(t, fs...))
			if !errors.Is(err, tt.want) || isTransient(err) != tt.transi {
				t.Fatalf("Run = %+v, %v; want %v (transient %v)", res, err, tt.want, tt.transi)
			}
			t.Logf("error: %v", err)
		})
	}

	t.Run("a file not of the size extracted", func(t *testing.T) {
		t.Parallel()
		addr := fakeSession{answer: okOrFound}.start(t)
		k := newCheck(t, newClient(t, Config{Addr: addr}), CheckConfig{Concurrency: 2})
		tg := target(t, files...)
		tg.Files[3].Size++
		if _, err := k.Run(ctxTimeout(t, time.Minute), tg); !errors.Is(err, errChanged) || !strings.Contains(err.Error(), `"d"`) {
			t.Fatalf("Run = %v, want errChanged for d", err)
		}
	})

	t.Run("closed session refuses to send", func(t *testing.T) {
		t.Parallel()
		addr := fakeSession{answer: okOrFound}.start(t)
		s, err := newClient(t, Config{Addr: addr}).OpenSession(t.Context(), 1, func(int, Reply, error) {})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := s.SendFile(1, f); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SendFile after Close = %v, want net.ErrClosed", err)
		}
	})

	t.Run("nothing listening", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, Config{Addr: "unix:" + filepath.Join(t.TempDir(), "none.sock")})
		if _, err := c.OpenSession(t.Context(), 1, nil); !errors.Is(err, ErrUnavailable) || !isTransient(err) {
			t.Fatalf("OpenSession = %v, want ErrUnavailable", err)
		}
	})

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
	for i := range 1000 {
		data := filler(100+i%300*37, uint64(i))
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
	// The same files streamed, passed with the default window, and all
	// at once: with more requests in flight than clamd queues (MaxQueue)
	// clamd stops reading and the client must take replies while it
	// waits to write, or both would wait for each other.
	cfgs := []CheckConfig{{Mode: ModeInstream}, {Mode: ModeFDPass}, {Mode: ModeFDPass, Concurrency: len(files)}}
	got := make([][]string, len(cfgs))
	for j, cfg := range cfgs {
		res, err := newCheck(t, c, cfg).Run(ctxTimeout(t, time.Minute), tg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		for _, f := range res.Findings {
			got[j] = append(got[j], f.Path+" "+unofficial(f.Malware.Signature))
		}
		if !strings.Contains(res.Detail, "mode "+cfg.Mode) {
			t.Errorf("%+v: Detail %q", cfg, res.Detail)
		}
		t.Logf("%+v: %s", cfg, res.Detail)
		if len(got[j]) != 3*len(files)/50 || fmt.Sprint(got[j]) != fmt.Sprint(got[0]) {
			t.Fatalf("%+v: findings %v\ninstream findings %v", cfg, got[j], got[0])
		}
	}
}
