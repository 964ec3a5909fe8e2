package clamav

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr, network, address string
		wantErr                string
	}{
		{addr: "unix:/run/clamav/clamd.sock", network: "unix", address: "/run/clamav/clamd.sock"},
		{addr: "tcp:127.0.0.1:3310", network: "tcp", address: "127.0.0.1:3310"},
		{addr: "tcp:[::1]:3310", network: "tcp", address: "[::1]:3310"},
		{addr: "tcp:clamd.internal:3310", network: "tcp", address: "clamd.internal:3310"},
		{addr: "", wantErr: "missing scheme"},
		{addr: "/run/clamd.sock", wantErr: "missing scheme"},
		{addr: "127.0.0.1:3310", wantErr: `unknown scheme "127.0.0.1"`},
		{addr: "unix:", wantErr: "empty socket path"},
		{addr: "unix:clamd.sock", wantErr: "must be absolute"},
		{addr: "tcp:127.0.0.1", wantErr: "missing port"},
		{addr: "tcp::3310", wantErr: "empty host"},
		{addr: "tcp:127.0.0.1:http", wantErr: "bad port"},
		{addr: "tcp:127.0.0.1:0", wantErr: "bad port"},
		{addr: "tcp:127.0.0.1:70000", wantErr: "bad port"},
		{addr: "udp:127.0.0.1:3310", wantErr: "unknown scheme"},
		{addr: "http://127.0.0.1:3310", wantErr: "unknown scheme"},
	}
	for _, tt := range tests {
		network, address, err := ParseAddr(tt.addr)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAddr(%q) error = %v, want it to contain %q", tt.addr, err, tt.wantErr)
			} else if !strings.Contains(err.Error(), `want "unix:/path/to/clamd.sock" or "tcp:host:port"`) {
				t.Errorf("ParseAddr(%q) error %q does not show the accepted forms", tt.addr, err)
			}
			continue
		}
		if err != nil || network != tt.network || address != tt.address {
			t.Errorf("ParseAddr(%q) = %q, %q, %v; want %q, %q", tt.addr, network, address, err, tt.network, tt.address)
		}
	}
}

func TestConfigValidateAndDefaults(t *testing.T) {
	t.Parallel()
	bad := []Config{
		{Addr: "nope"},
		{Addr: "unix:/x", DialTimeout: -1},
		{Addr: "unix:/x", ReadTimeout: -1},
		{Addr: "unix:/x", ChunkSize: -1},
		{Addr: "unix:/x", ChunkSize: MaxChunkSize + 1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
		if _, err := NewClient(c); err == nil {
			t.Errorf("NewClient(%+v) = nil error", c)
		}
	}
	c := newClient(t, Config{Addr: "unix:/x"})
	got := c.Config()
	want := Config{Addr: "unix:/x", DialTimeout: 5 * time.Second, WriteTimeout: time.Minute, ReadTimeout: 330 * time.Second, CommandTimeout: 10 * time.Second, ChunkSize: 1 << 20}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		status  Status
		sig     string
		wantErr error
	}{
		{raw: "stream: OK", status: StatusOK},
		{raw: "stream: Assetscan.Test.EICAR.UNOFFICIAL FOUND", status: StatusFound, sig: "Assetscan.Test.EICAR.UNOFFICIAL"},
		{raw: "stream: Heuristics.Encrypted.Zip FOUND", status: StatusFound, sig: "Heuristics.Encrypted.Zip"},
		// ExtendedDetectionInfo yes
		{raw: "stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND", status: StatusFound, sig: "Win.Test.EICAR_HDB-1"},
		{raw: "INSTREAM size limit exceeded. ERROR", wantErr: ErrSizeLimit},
		{raw: "stream: Can't create temporary file ERROR", wantErr: ErrEngine},
		{raw: "stream: OK ", wantErr: ErrProtocol},
		{raw: "stream:OK", wantErr: ErrProtocol},
		{raw: "STREAM: OK", wantErr: ErrProtocol},
		{raw: "OK", wantErr: ErrProtocol},
		{raw: "", wantErr: ErrProtocol},
		{raw: "stream:  FOUND", wantErr: ErrProtocol},
		{raw: "stream: two words FOUND", wantErr: ErrProtocol},
		{raw: "UNKNOWN COMMAND", wantErr: ErrProtocol},
		{raw: "PONG", wantErr: ErrProtocol},
	}
	for _, tt := range tests {
		r, err := ParseReply(tt.raw)
		if r.Raw != tt.raw {
			t.Errorf("ParseReply(%q).Raw = %q", tt.raw, r.Raw)
		}
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || r.Status != StatusError {
				t.Errorf("ParseReply(%q) = %v, %v; want StatusError, %v", tt.raw, r.Status, err, tt.wantErr)
			}
			continue
		}
		if err != nil || r.Status != tt.status || r.Signature != tt.sig {
			t.Errorf("ParseReply(%q) = %+v, %v; want %v %q", tt.raw, r, err, tt.status, tt.sig)
		}
	}
	if (Reply{}).Status != StatusError {
		t.Error("the zero Reply must not be clean")
	}
	if isTransient(ErrSizeLimit) || isTransient(ErrProtocol) || !isTransient(ErrEngine) {
		t.Error("ErrSizeLimit and ErrProtocol must be final, ErrEngine transient")
	}
}

// TestFakeServer drives the client against an in-process server that
// misbehaves in every way we could think of.
func TestFakeServer(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	big := bytes.Repeat([]byte{'z'}, 16<<20)                  // more than socket buffers hold
	hang := func(c net.Conn) { readCommand(c); readStream(c); io.Copy(io.Discard, c) }
	stall := func(c net.Conn) { c.(*net.TCPConn).SetReadBuffer(4096); time.Sleep(time.Hour) }

	tests := []struct {
		name      string
		handle    func(net.Conn)
		data      []byte
		cfg       Config
		ctxTO     time.Duration
		status    Status
		sig       string
		wantErr   error
		transient bool
		maxTime   time.Duration
	}{
		{name: "ok", handle: replyAfterStream("stream: OK\x00"), status: StatusOK},
		{name: "found", handle: replyAfterStream("stream: Some.Sig FOUND\x00"), status: StatusFound, sig: "Some.Sig"},
		{name: "garbage", handle: replyAfterStream("hello there\x00"), wantErr: ErrProtocol},
		{name: "binary garbage", handle: replyAfterStream("\xff\xfe\x00"), wantErr: ErrProtocol},
		{name: "empty reply", handle: replyAfterStream("\x00"), wantErr: ErrProtocol},
		{name: "OK without NUL then close", handle: replyAfterStream("stream: OK"), wantErr: ErrNoReply, transient: true},
		{name: "close without reply", handle: replyAfterStream(""), wantErr: ErrNoReply, transient: true},
		{name: "close at once", handle: func(c net.Conn) {}, data: big, wantErr: ErrNoReply, transient: true},
		{name: "engine error", handle: replyAfterStream("stream: Can't allocate memory ERROR\x00"), wantErr: ErrEngine, transient: true},
		{name: "endless reply", handle: func(c net.Conn) {
			readCommand(c)
			readStream(c)
			c.Write(bytes.Repeat([]byte("x"), maxReplyBytes+10000))
		}, wantErr: ErrProtocol},
		{name: "size limit while writing", handle: func(c net.Conn) {
			readCommand(c)
			io.CopyN(io.Discard, c, 1<<20)
			io.WriteString(c, "INSTREAM size limit exceeded. ERROR\x00")
		}, data: big, wantErr: ErrSizeLimit},
		{name: "OK before the stream ended", handle: func(c net.Conn) {
			readCommand(c)
			io.CopyN(io.Discard, c, 1<<20)
			io.WriteString(c, "stream: OK\x00")
		}, data: big, wantErr: ErrProtocol},
		{name: "hang after stream, read timeout", handle: hang, cfg: Config{ReadTimeout: 200 * time.Millisecond},
			wantErr: ErrTimeout, transient: true, maxTime: 3 * time.Second},
		{name: "hang after stream, ctx deadline", handle: hang, ctxTO: 200 * time.Millisecond,
			wantErr: context.DeadlineExceeded, transient: true, maxTime: 3 * time.Second},
		{name: "never reads, write timeout", handle: stall, data: big,
			cfg: Config{WriteTimeout: 200 * time.Millisecond}, wantErr: ErrTimeout, transient: true, maxTime: 3 * time.Second},
		{name: "never reads, ctx deadline", handle: stall, data: big,
			ctxTO: 200 * time.Millisecond, wantErr: ErrTimeout, transient: true, maxTime: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Addr = fakeClamd(t, tt.handle)
			c := newClient(t, cfg)
			ctx := context.Background()
			if tt.ctxTO > 0 {
				ctx = ctxTimeout(t, tt.ctxTO)
			}
			data := tt.data
			if data == nil {
				data = payload
			}
			start := time.Now()
			r, err := c.Scan(ctx, bytes.NewReader(data))
			if el := time.Since(start); tt.maxTime > 0 && el > tt.maxTime {
				t.Errorf("took %s, want under %s", el, tt.maxTime)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Scan = %+v, %v; want %v", r, err, tt.wantErr)
				}
				if r.Status != StatusError {
					t.Errorf("Scan status = %v with error %v", r.Status, err)
				}
				if isTransient(err) != tt.transient {
					t.Errorf("transient = %v, want %v (%v)", isTransient(err), tt.transient, err)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil || r.Status != tt.status || r.Signature != tt.sig {
				t.Fatalf("Scan = %+v, %v; want %v %q", r, err, tt.status, tt.sig)
			}
		})
	}
}

func TestFakeServerProtocol(t *testing.T) {
	t.Parallel()
	type got struct {
		cmd     string
		data    []byte
		longest int
	}
	ch := make(chan got, 1)
	addr := fakeClamd(t, func(c net.Conn) {
		cmd, _ := readCommand(c)
		data, longest, _ := readStream(c)
		ch <- got{cmd, data, longest}
		io.WriteString(c, "stream: OK\x00")
	})
	c := newClient(t, Config{Addr: addr, ChunkSize: 1000})
	payload := bytes.Repeat([]byte("abcdefg"), 1001) // 7007 bytes: 7 full chunks and a short one
	r, err := c.Scan(context.Background(), bytes.NewReader(payload))
	if err != nil || r.Status != StatusOK {
		t.Fatalf("Scan = %+v, %v", r, err)
	}
	g := <-ch
	if g.cmd != "zINSTREAM" || !bytes.Equal(g.data, payload) || g.longest != 1000 {
		t.Errorf("server got command %q, %d bytes (equal: %v), longest chunk %d", g.cmd, len(g.data), bytes.Equal(g.data, payload), g.longest)
	}

	// Empty input: just the terminator.
	r, err = c.Scan(context.Background(), bytes.NewReader(nil))
	if err != nil || r.Status != StatusOK {
		t.Fatalf("empty Scan = %+v, %v", r, err)
	}
	if g := <-ch; len(g.data) != 0 {
		t.Errorf("empty stream sent %d bytes", len(g.data))
	}
}

func TestFakeServerCommands(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{Addr: fakeClamd(t, replyAfterStream(""))})
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if v, err := c.Version(context.Background()); err != nil || v != "ClamAV 9.9.9" {
		t.Errorf("Version = %q, %v", v, err)
	}

	wrong := newClient(t, Config{Addr: fakeClamd(t, func(c net.Conn) { readCommand(c); io.WriteString(c, "UNKNOWN COMMAND\x00") })})
	if err := wrong.Ping(context.Background()); !errors.Is(err, ErrProtocol) {
		t.Errorf("Ping to a wrong server = %v, want ErrProtocol", err)
	}
	if _, err := wrong.Version(context.Background()); !errors.Is(err, ErrProtocol) {
		t.Errorf("Version from a wrong server = %v, want ErrProtocol", err)
	}

	hung := newClient(t, Config{Addr: fakeClamd(t, func(c net.Conn) { io.Copy(io.Discard, c) }), CommandTimeout: 100 * time.Millisecond})
	if err := hung.Ping(context.Background()); !errors.Is(err, ErrTimeout) || !isTransient(err) {
		t.Errorf("Ping to a hung server = %v, want ErrTimeout", err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp:" + ln.Addr().String()
	ln.Close()
	for _, a := range []string{addr, "unix:/nonexistent/clamd.sock"} {
		c := newClient(t, Config{Addr: a})
		_, err := c.Scan(context.Background(), strings.NewReader("x"))
		if !errors.Is(err, ErrUnavailable) || !isTransient(err) {
			t.Errorf("Scan via %s = %v, want ErrUnavailable (transient)", a, err)
		}
		if err := c.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Ping via %s = %v, want ErrUnavailable", a, err)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{Addr: fakeClamd(t, func(c net.Conn) { io.Copy(io.Discard, c) })})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Scan(ctx, strings.NewReader("x"))
	if !errors.Is(err, context.Canceled) || isTransient(err) {
		t.Errorf("Scan after cancel = %v, want context.Canceled, not transient", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("cancel took %s", el)
	}
	if _, err := c.Scan(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled ctx = %v", err)
	}
}
